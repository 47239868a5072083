//! A secret string.

use std::fmt;

/// A secret (AccessKeySecret, STS token). `Debug` prints `<redacted>`; there is no `Display`,
/// no `Serialize`: the only way out is [`Secret::expose`], which signing code calls.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_everything() {
        let s = Secret::new("TopSecretValue1234567890");
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains("Top"));
        assert!(!shown.contains("890"));
        assert_eq!(s.expose(), "TopSecretValue1234567890");
    }
}
