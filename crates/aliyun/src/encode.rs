//! The one RFC 3986 percent-encoding every Alibaba Cloud signature uses: everything but the
//! unreserved `A-Z a-z 0-9 - _ . ~` is `%XX` (space is `%20`, `*` is `%2A`, `~` is kept).
//! OSS keys in a path keep their `/` ([`UNRESERVED_SLASH`]).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986 unreserved characters stay, everything else is `%XX`.
pub const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// [`UNRESERVED`], keeping `/` (object keys in URL paths and OSS V4 canonical URIs).
pub const UNRESERVED_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

/// `s` encoded with [`UNRESERVED`].
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// `s` encoded with [`UNRESERVED_SLASH`].
pub fn percent_encode_path(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED_SLASH).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3986() {
        assert_eq!(
            percent_encode("a b*c~d-e_f.g/h+"),
            "a%20b%2Ac~d-e_f.g%2Fh%2B"
        );
        assert_eq!(percent_encode_path("dir/a b"), "dir/a%20b");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
