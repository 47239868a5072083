//! OSS signature V1: `Authorization: OSS <AccessKeyId>:<base64 HMAC-SHA1>` and the presigned
//! `?OSSAccessKeyId=&Expires=&Signature=` form (reference §1).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::SignInput;

/// Query parameters that are sub-resources, hence part of the V1 CanonicalizedResource.
/// This is oss2's list (the broadest of the official SDKs; it includes `encryption`, which the
/// v2 SDKs add per operation) — reference §1.1 and gotcha §12.1.
pub const SUBRESOURCES: &[&str] = &[
    "response-content-type",
    "response-content-language",
    "response-cache-control",
    "logging",
    "response-content-encoding",
    "acl",
    "uploadId",
    "uploads",
    "partNumber",
    "group",
    "link",
    "delete",
    "website",
    "location",
    "objectInfo",
    "objectMeta",
    "response-expires",
    "response-content-disposition",
    "cors",
    "lifecycle",
    "restore",
    "qos",
    "referer",
    "stat",
    "bucketInfo",
    "append",
    "position",
    "security-token",
    "live",
    "comp",
    "status",
    "vod",
    "startTime",
    "endTime",
    "x-oss-process",
    "symlink",
    "callback",
    "callback-var",
    "tagging",
    "encryption",
    "versions",
    "versioning",
    "versionId",
    "policy",
    "requestPayment",
    "x-oss-traffic-limit",
    "qosInfo",
    "asyncFetch",
    "x-oss-request-payer",
    "sequential",
    "inventory",
    "inventoryId",
    "continuation-token",
    "worm",
    "wormId",
    "wormExtend",
    "replication",
    "replicationLocation",
    "replicationProgress",
    "transferAcceleration",
    "cname",
    "metaQuery",
    "x-oss-ac-source-ip",
    "x-oss-ac-subnet-mask",
    "x-oss-ac-vpc-id",
    "x-oss-ac-forward-allow",
    "resourceGroup",
    "style",
    "styleName",
    "x-oss-async-process",
    "regionList",
    "x-oss-write-get-object-response",
    "bucketArchiveDirectRead",
    "httpsConfig",
    "redundancyTransition",
    "x-oss-target-redundancy-type",
    "x-oss-redundancy-transition-taskid",
    "accessPoint",
    "accessPointPolicy",
    "publicAccessBlock",
    "x-oss-access-point-name",
    "requesterQosInfo",
    "qosRequester",
    "resourcePoolInfo",
    "resourcePool",
    "resourcePoolBuckets",
];

/// `/bucket/key?subresources` (key raw, values decoded).
pub fn canonical_resource(input: &SignInput<'_>) -> String {
    let mut out = String::from("/");
    if let Some(bucket) = input.bucket {
        out.push_str(bucket);
        out.push('/');
        if let Some(key) = input.key {
            out.push_str(key);
        }
    }
    let mut subs: Vec<(&str, &str)> = input
        .query
        .iter()
        .filter(|p| SUBRESOURCES.contains(&p.key.as_str()))
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    subs.sort_by(|a, b| a.0.cmp(b.0));
    if !subs.is_empty() {
        out.push('?');
        let parts: Vec<String> = subs
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    (*k).to_string()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

/// `x-oss-*` headers, lower-cased, sorted, each `name:value\n` (repeated values joined by `,`).
pub fn canonical_oss_headers(input: &SignInput<'_>) -> String {
    let mut names: Vec<String> = input
        .headers
        .keys()
        .map(|n| n.as_str().to_ascii_lowercase())
        .filter(|n| n.starts_with("x-oss-"))
        .collect();
    names.sort();
    names.dedup();
    let mut out = String::new();
    for n in names {
        out.push_str(&n);
        out.push(':');
        out.push_str(&input.header_joined(&n));
        out.push('\n');
    }
    out
}

/// The V1 StringToSign. `date_line` is the Date / x-oss-date header value, or `Expires` for a
/// presigned URL.
pub fn string_to_sign(input: &SignInput<'_>, date_line: &str) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}{}",
        input.method,
        input.header_joined("content-md5"),
        input.header_joined("content-type"),
        date_line,
        canonical_oss_headers(input),
        canonical_resource(input)
    )
}

/// base64(HMAC-SHA1(secret, string_to_sign)).
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (method, key, query, headers, plain signature, STS signature).
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        String,
        Vec<(&'a str, &'a str)>,
        &'a str,
        &'a str,
    );
    use crate::oss::tests::input;

    const AK_SECRET: &str = "OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV";

    #[test]
    fn official_doc_vector() {
        let sts = "PUT\nODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=\ntext/html\nThu, 17 Nov 2005 18:49:58 GMT\nx-oss-magic:abracadabra\nx-oss-meta-author:foo@bar.com\n/oss-example/nelson";
        assert_eq!(sign(AK_SECRET, sts), "26NBxoKdsyly4EDv6inkoDft/yA=");
        let i = input(
            "PUT",
            Some("oss-example"),
            Some("nelson"),
            "",
            &[
                (
                    "Content-MD5",
                    "ODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=",
                ),
                ("Content-Type", "text/html"),
                ("X-OSS-Meta-Author", "foo@bar.com"),
                ("X-OSS-Magic", "abracadabra"),
                ("Date", "Thu, 17 Nov 2005 18:49:58 GMT"),
            ],
        );
        assert_eq!(
            string_to_sign(&i.as_input(), "Thu, 17 Nov 2005 18:49:58 GMT"),
            sts
        );
        assert_eq!(
            sign(AK_SECRET, "PUT\n\n\nThu, 17 Nov 2005 18:49:58 GMT\n/"),
            "PPaaX3Rt4ntpD31O9aqkyCf2pd4="
        );
        assert_eq!(
            sign(
                AK_SECRET,
                "PUT\n\napplication/x-www-form-urlencoded\nThu, 17 Nov 2005 18:49:58 GMT\n/"
            ),
            "HPW2mvmSOvwZ3J7wuyO751PIUkc="
        );
        assert_eq!(
            sign(AK_SECRET, "GET\n\n\n1141889120\n/oss-example/oss-api.pdf"),
            "EwaNTn1erJGkimiJ9WmXgwnANLc="
        );
    }

    #[test]
    fn sdk_vectors() {
        let date = "Wed, 28 Dec 2022 10:27:41 GMT";
        let headers = [
            ("Content-MD5", "eB5eJF1ptWaXm4bijSPyxw=="),
            ("Content-Type", "text/html"),
            ("x-oss-meta-author", "alice"),
            ("x-oss-meta-magic", "abracadabra"),
            ("x-oss-date", date),
        ];
        let i = input("PUT", Some("examplebucket"), Some("nelson"), "", &headers);
        let s = string_to_sign(&i.as_input(), date);
        assert_eq!(s, "PUT\neB5eJF1ptWaXm4bijSPyxw==\ntext/html\nWed, 28 Dec 2022 10:27:41 GMT\nx-oss-date:Wed, 28 Dec 2022 10:27:41 GMT\nx-oss-meta-author:alice\nx-oss-meta-magic:abracadabra\n/examplebucket/nelson");
        assert_eq!(sign("sk", &s), "kSHKmLxlyEAKtZPkJhG9bZb5k7M=");
        let i = input(
            "PUT",
            Some("examplebucket"),
            Some("nelson"),
            "acl",
            &headers,
        );
        assert_eq!(
            sign("sk", &string_to_sign(&i.as_input(), date)),
            "/afkugFbmWDQ967j1vr6zygBLQk="
        );
        let h = [("x-oss-date", date)];
        let i = input(
            "GET",
            Some("examplebucket"),
            None,
            "resourceGroup&non-resousce=null",
            &h,
        );
        let s = string_to_sign(&i.as_input(), date);
        assert!(s.ends_with("/examplebucket/?resourceGroup"));
        assert_eq!(sign("sk", &s), "vkQmfuUDyi1uDi3bKt67oemssIs=");
        let i = input("GET", Some("examplebucket"), None, "resourceGroup&acl", &h);
        assert_eq!(
            sign("sk", &string_to_sign(&i.as_input(), date)),
            "x3E5TgOvl/i7PN618s5mEvpJDYk="
        );
        // Presigned: the date line is Expires; OSSAccessKeyId/Expires/Signature are not signed.
        let i = input(
            "GET",
            Some("bucket"),
            Some("key"),
            "versionId=versionId&OSSAccessKeyId=ak&Expires=1699807420",
            &[],
        );
        assert_eq!(
            sign("sk", &string_to_sign(&i.as_input(), "1699807420")),
            "dcLTea+Yh9ApirQ8o8dOPqtvJXQ="
        );
        let i = input(
            "GET",
            Some("bucket"),
            Some("key+123"),
            "versionId=versionId&security-token=token",
            &[],
        );
        assert_eq!(
            sign("sk", &string_to_sign(&i.as_input(), "1699808204")),
            "jzKYRrM5y6Br0dRFPaTGOsbrDhY="
        );
    }

    /// Appendix A: the ten operations, without and with an STS token.
    #[test]
    fn appendix_a_vectors() {
        let key = "images/ubuntu 22.04+lts.qcow2";
        let up = "0004B9894A22E5B1888A1E29F8236E2F";
        let cases: Vec<Case> = vec![
            (
                "POST",
                Some(key),
                "uploads&encoding-type=url".into(),
                vec![("Content-Type", "application/octet-stream")],
                "SgzUCkhykhWfrQksoTcwXIU1kfU=",
                "YBIp11dE180ZRPFLbvco4z152XQ=",
            ),
            (
                "PUT",
                Some(key),
                format!("partNumber=1&uploadId={up}"),
                vec![
                    ("Content-Type", "application/octet-stream"),
                    ("Content-MD5", "JfnnlDI7RTiF9RgfG2JNCw=="),
                ],
                "BIjH/n7WrA6lvLrG8outlo43lkw=",
                "3Ulgapn8UDSCDHb5OqSMc3vTL5w=",
            ),
            (
                "POST",
                Some(key),
                format!("uploadId={up}&encoding-type=url"),
                vec![
                    ("Content-Type", "application/xml"),
                    ("Content-MD5", "0wK20yVovbh9ghUDeGfTpw=="),
                ],
                "+u1gSjKbWW3sSEVDmzkdeKpLe9I=",
                "3idglbTBtcsQU35LwmlnyonnTbQ=",
            ),
            (
                "GET",
                Some(key),
                format!("uploadId={up}&max-parts=1000&part-number-marker=0&encoding-type=url"),
                vec![],
                "62ZENE5jBca8ZHnFtSTX74Jyo4I=",
                "kiCtVQ6O9Fj+guWoADFq4Z5YLZs=",
            ),
            (
                "DELETE",
                Some(key),
                format!("uploadId={up}"),
                vec![],
                "7fAIx9cNnlOJbN6iW6zIFC5A6x0=",
                "DRae8J72Q7xltxECRlBehxqeo2s=",
            ),
            (
                "GET",
                None,
                "uploads&max-uploads=1000&encoding-type=url".into(),
                vec![],
                "nUVx9AwM0hCfmvCO81TelyqrNjM=",
                "8Tq7Y+le5W4UfXRw30tiAgDlqxw=",
            ),
            (
                "GET",
                None,
                "bucketInfo".into(),
                vec![],
                "Br4k8N62N6DhFbJkncOSI7LGB3c=",
                "ctB2AZdDOtkl+20v5oNaP+RN+SI=",
            ),
            (
                "GET",
                None,
                "location".into(),
                vec![],
                "DrRxabNPV2KEmUoLq+aiJMTAnDg=",
                "Oiao8eZPZ2wgq8HjSNLCObMv6+M=",
            ),
            (
                "GET",
                None,
                "encryption".into(),
                vec![],
                "OPgTDNORiu5wTr14+pOhcEm40eY=",
                "AAq4z4G3VUaHWUxp0TdjGfWHf3g=",
            ),
            (
                "HEAD",
                Some(key),
                String::new(),
                vec![],
                "CJjV655W7tQnifcwx7Pzsh1yuWU=",
                "l2R2BhVG/MosfkkvIEUy3y5qetQ=",
            ),
        ];
        let date = "Wed, 28 Dec 2022 10:27:41 GMT";
        for (method, k, q, headers, plain, sts) in cases {
            let mut h = headers.clone();
            h.push(("Date", date));
            let i = input(method, Some("examplebucket"), k, &q, &h);
            assert_eq!(
                sign(AK_SECRET, &string_to_sign(&i.as_input(), date)),
                plain,
                "{method} {q}"
            );
            h.push(("x-oss-security-token", "CAIS-example-sts-token"));
            let i = input(method, Some("examplebucket"), k, &q, &h);
            assert_eq!(
                sign(AK_SECRET, &string_to_sign(&i.as_input(), date)),
                sts,
                "sts {method} {q}"
            );
        }
    }
}
