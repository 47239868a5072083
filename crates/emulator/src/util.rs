//! Small helpers shared by the OSS and ECS halves: UTC time formats, percent-encoding, ids.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986 unreserved characters are kept; everything else is `%XX` (upper-case hex).
/// This is the set used by OSS V4 canonical URIs/queries and by the ECS RPC `percentEncode`.
pub const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Like [`RFC3986`] but keeps `/` (OSS V4 canonical URI).
pub const RFC3986_PATH: &AsciiSet = &RFC3986.remove(b'/');

/// Percent-encodes `s` with the RFC 3986 unreserved set.
pub fn pct(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// Percent-encodes `s`, keeping `/`.
pub fn pct_path(s: &str) -> String {
    utf8_percent_encode(s, RFC3986_PATH).to_string()
}

/// Decodes `%XX` escapes into bytes. `+` is kept literally. Invalid escapes are kept as they are.
pub fn pct_decode_bytes(s: &str) -> Vec<u8> {
    percent_decode_str(s).collect()
}

/// Decodes `%XX` escapes; `None` when the result is not UTF-8.
pub fn pct_decode(s: &str) -> Option<String> {
    String::from_utf8(pct_decode_bytes(s)).ok()
}

/// One query parameter as received: decoded key and value, and whether `=` was present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParam {
    /// Decoded name.
    pub key: String,
    /// Decoded value (empty when absent).
    pub value: String,
}

/// Splits a raw query string (`a=1&b&c=`) into decoded parameters, in order.
/// `form` decodes `+` as a space (application/x-www-form-urlencoded); URLs keep `+`.
/// Returns `None` if a name or value is not valid UTF-8 after decoding.
pub fn parse_query(raw: &str, form: bool) -> Option<Vec<QueryParam>> {
    let mut out = Vec::new();
    for piece in raw.split('&') {
        if piece.is_empty() {
            continue;
        }
        let (k, v) = match piece.split_once('=') {
            Some((k, v)) => (k, v),
            None => (piece, ""),
        };
        let dec = |s: &str| {
            if form {
                pct_decode(&s.replace('+', " "))
            } else {
                pct_decode(s)
            }
        };
        out.push(QueryParam {
            key: dec(k)?,
            value: dec(v)?,
        });
    }
    Some(out)
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    // d is 1..=31 and m is 1..=12 by construction.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// Days since 1970-01-01 for a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    /// Year.
    pub year: i64,
    /// Month 1..=12.
    pub month: u32,
    /// Day 1..=31.
    pub day: u32,
    /// Hour.
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
}

impl Utc {
    /// Converts Unix seconds.
    pub fn from_unix(secs: u64) -> Self {
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let rem = u32::try_from(rem).unwrap_or(0);
        Utc {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// Back to Unix seconds (`None` before 1970).
    pub fn to_unix(self) -> Option<u64> {
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        u64::try_from(secs).ok()
    }

    /// `2024-01-02T03:04:05Z` (ECS RPC Timestamp / ACS3 x-acs-date).
    pub fn iso8601(self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `2024-01-02T03:04Z` (minute precision, DescribeTasks times).
    pub fn iso8601_minutes(self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }

    /// `2024-01-02T03:04:05.000Z` (OSS XML times).
    pub fn iso8601_millis(self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `20221228T102741Z` (OSS V4 x-oss-date).
    pub fn basic(self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn checked_utc(year: u32, month: u32, day: u32, h: u32, mi: u32, s: u32) -> Option<u64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Utc {
        year: i64::from(year),
        month,
        day,
        hour: h,
        minute: mi,
        second: s,
    }
    .to_unix()
}

/// Parses `20221228T102741Z`.
pub fn parse_basic(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    checked_utc(
        digits(s.get(0..4)?)?,
        digits(s.get(4..6)?)?,
        digits(s.get(6..8)?)?,
        digits(s.get(9..11)?)?,
        digits(s.get(11..13)?)?,
        digits(s.get(13..15)?)?,
    )
}

/// Parses `2024-01-02T03:04:05Z` (also accepts a fractional second `…05.123Z`).
pub fn parse_iso8601(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let frac = s.get(19..s.len() - 1)?;
    if !(frac.is_empty() || (frac.starts_with('.') && digits(&frac[1..]).is_some())) {
        return None;
    }
    checked_utc(
        digits(s.get(0..4)?)?,
        digits(s.get(5..7)?)?,
        digits(s.get(8..10)?)?,
        digits(s.get(11..13)?)?,
        digits(s.get(14..16)?)?,
        digits(s.get(17..19)?)?,
    )
}

/// Parses an RFC 1123 HTTP date (`Wed, 28 Dec 2022 10:27:41 GMT`).
pub fn parse_http_date(s: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(s).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Formats Unix seconds as an RFC 1123 HTTP date.
pub fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Absolute difference between two instants in seconds.
pub fn skew(a: u64, b: u64) -> u64 {
    a.abs_diff(b)
}

/// A random id of `n` upper-case hex characters.
pub fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(b"0123456789ABCDEF"[rng.random_range(0..16)]))
        .collect()
}

/// A random lower-case alphanumeric id of `n` characters (ECS resource ids).
pub fn random_alnum(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

/// An ECS-style request id `8-4-4-4-12` upper-case hex.
pub fn request_id_uuid() -> String {
    let h = random_hex(32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Escapes text for XML element content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {
                out.push_str(&format!("&#x{:X};", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips() {
        assert_eq!(parse_basic("20221228T102741Z"), Some(1_672_223_261));
        assert_eq!(Utc::from_unix(1_672_223_261).basic(), "20221228T102741Z");
        assert_eq!(
            parse_iso8601("2024-01-02T03:04:05Z").map(|t| Utc::from_unix(t).iso8601()),
            Some("2024-01-02T03:04:05Z".to_string())
        );
        assert_eq!(
            parse_http_date("Wed, 28 Dec 2022 10:27:41 GMT"),
            Some(1_672_223_261)
        );
        assert_eq!(http_date(1_672_223_261), "Wed, 28 Dec 2022 10:27:41 GMT");
        assert_eq!(
            Utc::from_unix(951_782_400).iso8601(),
            "2000-02-29T00:00:00Z"
        );
        assert!(parse_basic("2022122xT102741Z").is_none());
        assert!(parse_iso8601("2024-13-02T03:04:05Z").is_none());
    }

    #[test]
    fn encoding() {
        assert_eq!(pct("a b+c*~/"), "a%20b%2Bc%2A~%2F");
        assert_eq!(pct_path("1234+-/123/1.txt"), "1234%2B-/123/1.txt");
        let q = parse_query("uploads&partNumber=1&x=a%2Fb+c", false).unwrap();
        assert_eq!(q[0].key, "uploads");
        assert_eq!(q[2].value, "a/b+c");
        let f = parse_query("x=a+b", true).unwrap();
        assert_eq!(f[0].value, "a b");
    }
}
