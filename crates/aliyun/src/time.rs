//! The three date formats Alibaba Cloud requests carry, formatted in one place (OSS V1/V4 and
//! the RPC signatures all sign a date, and a date formatted two ways is a signature mismatch
//! waiting to happen). Built on `jiff` for the calendar and `httpdate` for RFC 7231.

use std::time::SystemTime;

/// A `SystemTime` as a `jiff` timestamp; before 1970 or past 9999 clamps (never happens for a
/// signing clock, and must not panic if it does).
fn timestamp(t: SystemTime) -> jiff::Timestamp {
    jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// RFC 7231 HTTP-date, `Sun, 06 Nov 1994 08:49:37 GMT` (OSS `Date`, V1 string to sign).
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// Parses an RFC 7231 HTTP-date (a server's `Date`, to correct clock skew).
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s.trim()).ok()
}

/// ISO 8601 basic format in UTC, `yyyymmddTHHMMSSZ` (OSS V4 `x-oss-date`).
pub fn iso8601_basic(t: SystemTime) -> String {
    timestamp(t).strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// ISO 8601 extended format in UTC, `YYYY-MM-DDThh:mm:ssZ` (RPC `Timestamp`, `x-acs-date`).
pub fn iso8601(t: SystemTime) -> String {
    timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Seconds from the local clock to `server`'s (positive: the server is ahead).
pub fn offset_to(server: SystemTime) -> i64 {
    match server.duration_since(SystemTime::now()) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The local clock moved by `offset_secs` (a correction learnt by [`offset_to`]).
pub fn shifted_now(offset_secs: i64) -> SystemTime {
    let d = std::time::Duration::from_secs(offset_secs.unsigned_abs());
    if offset_secs >= 0 {
        SystemTime::now() + d
    } else {
        SystemTime::now() - d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats() {
        let t = UNIX_EPOCH + Duration::from_secs(1_704_164_645); // 2024-01-02T03:04:05Z
        assert_eq!(iso8601(t), "2024-01-02T03:04:05Z");
        assert_eq!(iso8601_basic(t), "20240102T030405Z");
        assert_eq!(http_date(t), "Tue, 02 Jan 2024 03:04:05 GMT");
        assert_eq!(parse_http_date("Tue, 02 Jan 2024 03:04:05 GMT"), Some(t));
        assert_eq!(parse_http_date("yesterday"), None);
        // A leap day and the epoch.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29T00:00:00Z
        assert_eq!(iso8601(leap), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601_basic(UNIX_EPOCH), "19700101T000000Z");
        assert!(offset_to(SystemTime::now() + Duration::from_secs(3600)) >= 3599);
        assert!(offset_to(SystemTime::now() - Duration::from_secs(3600)) <= -3599);
    }
}
