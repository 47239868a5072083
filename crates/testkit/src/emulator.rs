//! The emulator's test client: requests signed with the emulator crate's own public
//! signing helpers (OSS V1, RPC HMAC-SHA1), so a test can send exactly the bytes it
//! wants, tampered or not, without our OSS and ECS clients: the emulator shares no code
//! with them, and neither do its tests. The transport is the caller's (reqwest in the
//! emulator's tests, a raw socket in the CLI's).

use preflight_emulator::ecs::sign::{rpc_sign, rpc_string_to_sign};
use preflight_emulator::oss::{sign_v1, SignInput};
use preflight_emulator::util::{
    http_date, parse_query, pct, pct_decode_bytes, request_id_uuid, unix_now, QueryParam, Utc,
};
use preflight_emulator::{Counters, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};

/// A credential: access key id, secret, and an STS token if any.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// AccessKeyId.
    pub id: &'a str,
    /// AccessKeySecret.
    pub secret: &'a str,
    /// SecurityToken of a temporary credential.
    pub token: Option<&'a str>,
}

/// The key every emulator accepts unless configured otherwise.
pub const DEFAULT_KEY: Key<'static> = Key {
    id: DEFAULT_ACCESS_KEY_ID,
    secret: DEFAULT_ACCESS_KEY_SECRET,
    token: None,
};

/// An OSS request, path style.
#[derive(Debug, Clone)]
pub struct OssReq<'a> {
    /// Method.
    pub method: &'a str,
    /// Bucket.
    pub bucket: &'a str,
    /// Key as it appears in the URL path (already percent-encoded), empty for bucket level.
    pub raw_key: &'a str,
    /// Raw query string (without `?`).
    pub query: &'a str,
    /// Extra headers.
    pub headers: Vec<(&'a str, String)>,
}

impl OssReq<'_> {
    /// The request target: `/bucket/key?query`.
    pub fn target(&self) -> String {
        let mut target = format!("/{}/{}", self.bucket, self.raw_key);
        if !self.query.is_empty() {
            target.push('?');
            target.push_str(self.query);
        }
        target
    }

    /// Every header to send, signed with OSS V1 by `key` at `date` (an HTTP date): the
    /// request's own, the STS token's, `Date` and `Authorization`.
    pub fn signed_headers(&self, key: Key<'_>, date: &str) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        if let Some(token) = key.token {
            headers.push(("x-oss-security-token".into(), token.into()));
        }
        let mut map = http::HeaderMap::new();
        for (k, v) in &headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("a valid header name"),
                http::HeaderValue::from_str(v).expect("a valid header value"),
            );
        }
        map.insert(
            "date",
            http::HeaderValue::from_str(date).expect("an HTTP date"),
        );
        let query = parse_query(self.query, false).expect("a valid query");
        let decoded = String::from_utf8_lossy(&pct_decode_bytes(self.raw_key)).into_owned();
        let input = SignInput {
            method: self.method,
            bucket: Some(self.bucket),
            key: (!self.raw_key.is_empty()).then_some(decoded.as_str()),
            query: &query,
            headers: &map,
        };
        let string_to_sign = sign_v1::string_to_sign(&input, date);
        headers.push(("Date".into(), date.into()));
        headers.push((
            "Authorization".into(),
            format!(
                "OSS {}:{}",
                key.id,
                sign_v1::sign(key.secret, &string_to_sign)
            ),
        ));
        headers
    }
}

/// Now as an HTTP date.
pub fn now_http() -> String {
    http_date(unix_now())
}

/// The query string (without `?`) of an ECS/RAM RPC call signed with HMAC-SHA1, signature
/// 1.0, by `key`. `tamper` may change the common parameters (and `params`, which follow
/// them) before signing.
pub fn rpc_query(
    key: Key<'_>,
    version: &str,
    action: &str,
    params: &[(&str, &str)],
    tamper: impl FnOnce(&mut Vec<(String, String)>),
) -> String {
    let mut all: Vec<(String, String)> = vec![
        ("Action".into(), action.into()),
        ("Version".into(), version.into()),
        ("Format".into(), "JSON".into()),
        ("AccessKeyId".into(), key.id.into()),
        ("SignatureMethod".into(), "HMAC-SHA1".into()),
        ("SignatureVersion".into(), "1.0".into()),
        ("SignatureNonce".into(), request_id_uuid()),
        ("Timestamp".into(), Utc::from_unix(unix_now()).iso8601()),
    ];
    if let Some(token) = key.token {
        all.push(("SecurityToken".into(), token.into()));
    }
    all.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    tamper(&mut all);
    let signed: Vec<QueryParam> = all
        .iter()
        .map(|(k, v)| QueryParam {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    let signature = rpc_sign(key.secret, &rpc_string_to_sign("GET", &signed));
    all.push(("Signature".into(), signature));
    all.iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The numbers of the parts the emulator has stored, in its order (upload id, then part
/// number): a part whose body was cut short is seen but not stored.
pub fn stored_parts(counters: &Counters) -> Vec<u32> {
    counters
        .parts
        .iter()
        .filter(|p| p.stored > 0)
        .map(|p| p.part_number)
        .collect()
}
