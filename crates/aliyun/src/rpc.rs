//! The HMAC-SHA1 RPC signature (`SignatureVersion=1.0`) that ECS, RAM and STS accept, and
//! the RFC 3986 encoding it rests on. Here, below both the ECS client and the STS
//! credential provider, so the two sign with one implementation.

use base64::Engine as _;
use hmac::{Hmac, Mac};

/// Percent-encodes a parameter name or value the way the RPC signatures do (RFC 3986).
pub use crate::encode::percent_encode;

/// `k=v&k=v` with both sides encoded, sorted by encoded key: the canonicalised query string
/// of the RPC signatures, and the query actually sent.
pub fn canonical_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (percent_encode(k.as_ref()), percent_encode(v.as_ref())))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// HMAC-SHA1 RPC signature (version 1.0).
pub mod rpc_v1 {
    use super::*;

    /// `METHOD&%2F&percentEncode(CanonicalizedQueryString)`. `params` are every parameter
    /// sent except `Signature`.
    pub fn string_to_sign<K: AsRef<str>, V: AsRef<str>>(method: &str, params: &[(K, V)]) -> String {
        format!(
            "{method}&{}&{}",
            percent_encode("/"),
            percent_encode(&canonical_query(params))
        )
    }

    /// `base64(HMAC-SHA1(secret + "&", StringToSign))`.
    pub fn signature<K: AsRef<str>, V: AsRef<str>>(
        secret: &str,
        method: &str,
        params: &[(K, V)],
    ) -> String {
        let sts = string_to_sign(method, params);
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes())
            .expect("HMAC accepts any key length");
        mac.update(sts.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }
}
