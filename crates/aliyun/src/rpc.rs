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

#[cfg(test)]
mod tests {
    use super::*;

    // The signers take any `(K, V)` pairs of strings: the vectors are given as `&str`s.

    #[test]
    fn r1_official_describe_regions() {
        let params = [
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ];
        assert_eq!(
            rpc_v1::string_to_sign("GET", &params),
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        let sig = rpc_v1::signature("testsecret", "GET", &params);
        assert_eq!(sig, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
        assert_eq!(percent_encode(&sig), "OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D");
    }

    #[test]
    fn r2_official_utf8() {
        let params = [
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", "{\"customer\":\"test\"}"),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ];
        let sts = rpc_v1::string_to_sign("GET", &params);
        assert!(sts.contains("SignName%3D%25E9%2598%25BF%25E9%2587%258C"));
        assert!(sts.contains("TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D"));
        assert_eq!(
            rpc_v1::signature("testSecret", "GET", &params),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
    }
}
