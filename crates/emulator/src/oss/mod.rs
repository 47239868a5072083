//! The OSS half: addressing, signature verification, and the object, multipart and bucket APIs.

pub mod api;
pub mod auth;
pub mod body;
pub mod bucket;
pub mod error;
pub mod multipart;
pub mod object;
pub mod sign_v1;
pub mod sign_v4;
pub mod xml;

use http::HeaderMap;

use crate::util::QueryParam;

/// What the signers look at: method, bucket/key (decoded), query (decoded) and headers.
#[derive(Debug, Clone, Copy)]
pub struct SignInput<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Bucket, for bucket- and object-level requests.
    pub bucket: Option<&'a str>,
    /// Object key (decoded), for object-level requests.
    pub key: Option<&'a str>,
    /// Query parameters, decoded, in order.
    pub query: &'a [QueryParam],
    /// Request headers.
    pub headers: &'a HeaderMap,
}

impl SignInput<'_> {
    /// All values of a header joined by `,` (empty string when absent).
    pub fn header_joined(&self, name: &str) -> String {
        let vals: Vec<String> = self
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        vals.join(",")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    /// An owned request description for signer tests.
    pub struct Owned {
        method: String,
        bucket: Option<String>,
        key: Option<String>,
        query: Vec<QueryParam>,
        headers: HeaderMap,
    }

    impl Owned {
        pub fn as_input(&self) -> SignInput<'_> {
            SignInput {
                method: &self.method,
                bucket: self.bucket.as_deref(),
                key: self.key.as_deref(),
                query: &self.query,
                headers: &self.headers,
            }
        }
    }

    pub fn input(
        method: &str,
        bucket: Option<&str>,
        key: Option<&str>,
        raw_query: &str,
        headers: &[(&str, &str)],
    ) -> Owned {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        Owned {
            method: method.to_string(),
            bucket: bucket.map(str::to_string),
            key: key.map(str::to_string),
            query: crate::util::parse_query(raw_query, false).unwrap(),
            headers: map,
        }
    }
}
