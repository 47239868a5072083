//! `~/.alibabacloud/credentials.ini`, the profile file of Alibaba's credentials libraries:
//!
//! ```ini
//! [default]
//! enable = true
//! type = access_key            # or sts, ram_role_arn, ecs_ram_role, oidc_role_arn, rsa_key_pair
//! access_key_id = ...
//! access_key_secret = ...
//! ```

use std::fmt;

use ini::Ini;

/// One section. `Debug` shows the type and the field names, never a value.
pub struct Entry {
    /// `type`.
    pub kind: String,
    fields: Vec<(String, String)>,
}

impl Entry {
    /// A field's value, if set and not empty.
    pub fn get(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("kind", &self.kind)
            .field(
                "fields",
                &self.fields.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The section `profile` of the file's text: `Ok(None)` when absent or `enable = false`;
/// `Err` (no value quoted) when the text is not INI or the section has no `type`.
pub fn parse(text: &str, profile: &str) -> Result<Option<Entry>, String> {
    let ini = Ini::load_from_str(text)
        .map_err(|e| format!("not an INI file (line {}, column {})", e.line, e.col))?;
    let Some(section) = ini.section(Some(profile)) else {
        return Ok(None);
    };
    if section.get("enable").is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "false" | "0" | "no" | "off"
        )
    }) {
        return Ok(None);
    }
    // Values may carry a trailing `# comment`, as Alibaba's reader allows.
    let clean = |v: &str| v.split(" #").next().unwrap_or_default().trim().to_string();
    let kind = section
        .get("type")
        .map(clean)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| format!("section [{profile}] has no type"))?;
    Ok(Some(Entry {
        kind,
        fields: section
            .iter()
            .map(|(k, v)| (k.to_string(), clean(v)))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_types_and_switches() {
        let text = "[default]\ntype = access_key  # keys\naccess_key_id = LTAIini\naccess_key_secret = ini-secret-123\n\n[off]\nenable = false\ntype = access_key\n\n[bad]\naccess_key_id = x\n";
        let e = parse(text, "default").unwrap().unwrap();
        assert_eq!(e.kind, "access_key");
        assert_eq!(e.get("access_key_id").as_deref(), Some("LTAIini"));
        assert!(!format!("{e:?}").contains("ini-secret"));
        assert!(parse(text, "off").unwrap().is_none());
        assert!(parse(text, "missing").unwrap().is_none());
        assert!(parse(text, "bad").unwrap_err().contains("no type"));
    }
}
