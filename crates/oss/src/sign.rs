//! Request signing, V4 (default) and V1, for every OSS request.
//!
//! Our own implementation, not reqsign-aliyun-oss's: reqsign's V4 writes an empty
//! `AdditionalHeaders=` field, which real OSS refuses (EC 0002-00000209), and it cannot sign at
//! a corrected clock after `RequestTimeTooSkewed`. The header has the official SDKs' exact
//! shape (`Credential=…,Signature=…`, the optional field left out). Checked against the
//! published vectors (here), and request by request against Alibaba's Python SDKs' signers
//! (`tests/cli/signatures.rs`).

use std::fmt::Write as _;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use percent_encoding::utf8_percent_encode;
use preflight_aliyun::Credentials;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// OSS signature versions. With the `clap` feature it is also the CLI's `--signature-version`
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum SignatureVersion {
    /// OSS4-HMAC-SHA256, region-scoped. The default, as in Alibaba's v2 SDKs.
    #[default]
    #[cfg_attr(feature = "clap", value(help = "OSS4-HMAC-SHA256 (default)"))]
    V4,
    /// HMAC-SHA1 (`Authorization: OSS id:sig`), for old endpoints and tools.
    #[cfg_attr(feature = "clap", value(help = "HMAC-SHA1, for old endpoints"))]
    V1,
}

// The encode sets are the one RFC 3986 encoding of `preflight_aliyun`.
pub use preflight_aliyun::encode::{UNRESERVED, UNRESERVED_SLASH};

/// Query parameters that V1 signs (its "sub-resources"); other parameters are not signed.
/// oss2's list, which (unlike the v2 SDKs' global list) includes `encryption`.
const V1_SUBRESOURCES: &[&str] = &[
    "acl",
    "bucketInfo",
    "cors",
    "delete",
    "encryption",
    "lifecycle",
    "location",
    "logging",
    "objectMeta",
    "partNumber",
    "policy",
    "qos",
    "referer",
    "replication",
    "resourceGroup",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "security-token",
    "stat",
    "symlink",
    "tagging",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
    "x-oss-process",
];

type HmacSha1 = Hmac<sha1::Sha1>;
type HmacSha256 = Hmac<Sha256>;

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

// HMAC takes keys of any length; new_from_slice cannot fail.
fn unreachable_hmac<T>() -> T {
    panic!("HMAC accepts any key length")
}

/// The resource a request addresses.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    /// Bucket, unless service-level.
    pub bucket: Option<&'a str>,
    /// Object key, unless bucket-level.
    pub key: Option<&'a str>,
}

impl Resource<'_> {
    /// `/bucket/key` raw (V1), `/bucket/`, or `/`.
    fn v1(&self) -> String {
        match (self.bucket, self.key) {
            (Some(b), Some(k)) => format!("/{b}/{k}"),
            (Some(b), None) => format!("/{b}/"),
            _ => "/".to_string(),
        }
    }
    /// The same, percent-encoded (V4 canonical URI).
    fn v4(&self) -> String {
        match (self.bucket, self.key) {
            (Some(b), Some(k)) => format!(
                "/{}/{}",
                utf8_percent_encode(b, UNRESERVED),
                utf8_percent_encode(k, UNRESERVED_SLASH)
            ),
            (Some(b), None) => format!("/{}/", utf8_percent_encode(b, UNRESERVED)),
            _ => "/".to_string(),
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn insert(h: &mut HeaderMap, name: &'static str, value: &str) -> Result<()> {
    let v = HeaderValue::from_str(value)
        .map_err(|_| Error::Signing(format!("invalid value for header {name}")))?;
    h.insert(HeaderName::from_static(name), v);
    Ok(())
}

/// V1 StringToSign. `date` is the Date line.
pub fn v1_string_to_sign(
    method: &str,
    res: Resource<'_>,
    query: &[(String, String)],
    headers: &HeaderMap,
    date: &str,
) -> String {
    let mut s = format!(
        "{method}\n{}\n{}\n{date}\n",
        header(headers, "content-md5"),
        header(headers, "content-type")
    );
    let mut oss: Vec<(String, &str)> = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-oss-"))
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("")))
        .collect();
    oss.sort();
    for (k, v) in oss {
        let _ = writeln!(s, "{k}:{v}");
    }
    s.push_str(&res.v1());
    let mut sub: Vec<&(String, String)> = query
        .iter()
        .filter(|(k, _)| V1_SUBRESOURCES.contains(&k.as_str()))
        .collect();
    sub.sort();
    for (i, (k, v)) in sub.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        if !v.is_empty() {
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

/// V4 canonical request (header mode; payload `UNSIGNED-PAYLOAD`, no additional headers).
pub fn v4_canonical_request(
    method: &str,
    res: Resource<'_>,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> String {
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| {
            (
                utf8_percent_encode(k, UNRESERVED).to_string(),
                utf8_percent_encode(v, UNRESERVED).to_string(),
            )
        })
        .collect();
    q.sort();
    let q: Vec<String> = q
        .into_iter()
        .map(|(k, v)| if v.is_empty() { k } else { format!("{k}={v}") })
        .collect();
    let mut h: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k.starts_with("x-oss-") || k == "content-type" || k == "content-md5"
        })
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or("").trim().to_string(),
            )
        })
        .collect();
    h.sort();
    let mut s = format!("{method}\n{}\n{}\n", res.v4(), q.join("&"));
    for (k, v) in h {
        let _ = writeln!(s, "{k}:{v}");
    }
    s.push_str("\n\nUNSIGNED-PAYLOAD");
    s
}

/// `yyyymmddTHHMMSSZ` (the shared formatter, [`preflight_aliyun::time::iso8601_basic`]).
pub use preflight_aliyun::time::iso8601_basic;

/// How to sign: version, region (V4) and the time to sign at.
#[derive(Debug, Clone, Copy)]
pub struct Signing<'a> {
    /// Signature version.
    pub version: SignatureVersion,
    /// Region id, for V4.
    pub region: &'a str,
    /// Signing time (the corrected clock).
    pub now: SystemTime,
}

/// Signs with our own implementation at `signing.now`.
pub fn sign_own(
    signing: &Signing<'_>,
    method: &str,
    res: Resource<'_>,
    query: &[(String, String)],
    headers: &mut HeaderMap,
    cred: &Credentials,
) -> Result<()> {
    let (version, region, now) = (signing.version, signing.region, signing.now);
    let date = preflight_aliyun::time::http_date(now);
    insert(headers, "date", &date)?;
    if let Some(t) = &cred.security_token {
        insert(headers, "x-oss-security-token", t.expose())?;
    }
    let auth = match version {
        SignatureVersion::V1 => {
            headers.remove("x-oss-date");
            let sts = v1_string_to_sign(method, res, query, headers, &date);
            let mut m = HmacSha1::new_from_slice(cred.access_key_secret.expose().as_bytes())
                .unwrap_or_else(|_| unreachable_hmac());
            m.update(sts.as_bytes());
            use base64::Engine as _;
            let sig = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
            format!("OSS {}:{sig}", cred.access_key_id)
        }
        SignatureVersion::V4 => {
            let stamp = iso8601_basic(now);
            insert(headers, "x-oss-date", &stamp)?;
            insert(headers, "x-oss-content-sha256", "UNSIGNED-PAYLOAD")?;
            let day = &stamp[..8];
            let scope = format!("{day}/{region}/oss/aliyun_v4_request");
            let creq = v4_canonical_request(method, res, query, headers);
            let sts = format!(
                "OSS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
                hex::encode(Sha256::digest(creq.as_bytes()))
            );
            let k = hmac_sha256(
                format!("aliyun_v4{}", cred.access_key_secret.expose()).as_bytes(),
                day.as_bytes(),
            );
            let k = hmac_sha256(&k, region.as_bytes());
            let k = hmac_sha256(&k, b"oss");
            let k = hmac_sha256(&k, b"aliyun_v4_request");
            let sig = hex::encode(hmac_sha256(&k, sts.as_bytes()));
            format!(
                "OSS4-HMAC-SHA256 Credential={}/{scope},Signature={sig}",
                cred.access_key_id
            )
        }
    };
    let mut v =
        HeaderValue::from_str(&auth).map_err(|_| Error::Signing("invalid Authorization".into()))?;
    v.set_sensitive(true);
    headers.insert(AUTHORIZATION, v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const AK: &str = "44CF9590006BF252F707";
    const SK: &str = "OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV";
    const KEY: &str = "images/ubuntu 22.04+lts.qcow2";
    const UPLOAD: &str = "0004B9894A22E5B1888A1E29F8236E2F";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }
    // 2022-12-28T10:27:41Z
    const T: u64 = 1_672_223_261;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn auth(
        version: SignatureVersion,
        method: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        hdrs: &[(&'static str, &str)],
        token: Option<&str>,
    ) -> String {
        let mut h = HeaderMap::new();
        for (k, v) in hdrs {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let mut c = Credentials::new(AK, SK);
        if let Some(t) = token {
            c = c.with_security_token(t);
        }
        let res = Resource {
            bucket: Some("examplebucket"),
            key,
        };
        let signing = Signing {
            version,
            region: "cn-hangzhou",
            now: at(T),
        };
        sign_own(&signing, method, res, &q(query), &mut h, &c).unwrap();
        h.get(AUTHORIZATION).unwrap().to_str().unwrap().to_string()
    }

    #[test]
    fn clock_formats() {
        assert_eq!(iso8601_basic(at(T)), "20221228T102741Z");
        assert_eq!(iso8601_basic(at(1_702_743_657)), "20231216T162057Z");
        assert_eq!(iso8601_basic(at(951_782_400)), "20000229T000000Z");
        assert_eq!(
            httpdate::fmt_http_date(at(T)),
            "Wed, 28 Dec 2022 10:27:41 GMT"
        );
    }

    #[test]
    fn official_v1_vector() {
        let mut h = HeaderMap::new();
        h.insert(
            "content-md5",
            HeaderValue::from_static("ODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM="),
        );
        h.insert("content-type", HeaderValue::from_static("text/html"));
        h.insert("x-oss-magic", HeaderValue::from_static("abracadabra"));
        h.insert("x-oss-meta-author", HeaderValue::from_static("foo@bar.com"));
        let res = Resource {
            bucket: Some("oss-example"),
            key: Some("nelson"),
        };
        let sts = v1_string_to_sign("PUT", res, &[], &h, "Thu, 17 Nov 2005 18:49:58 GMT");
        let mut m = HmacSha1::new_from_slice(b"OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV").unwrap();
        m.update(sts.as_bytes());
        use base64::Engine as _;
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes()),
            "26NBxoKdsyly4EDv6inkoDft/yA="
        );
    }

    #[test]
    fn appendix_a_v1() {
        use SignatureVersion::V1;
        let ct = ("content-type", "application/octet-stream");
        assert_eq!(
            auth(
                V1,
                "POST",
                Some(KEY),
                &[("uploads", ""), ("encoding-type", "url")],
                &[ct],
                None
            ),
            format!("OSS {AK}:SgzUCkhykhWfrQksoTcwXIU1kfU=")
        );
        let part = [("partNumber", "1"), ("uploadId", UPLOAD)];
        let md5 = ("content-md5", "JfnnlDI7RTiF9RgfG2JNCw==");
        assert_eq!(
            auth(V1, "PUT", Some(KEY), &part, &[ct, md5], None),
            format!("OSS {AK}:BIjH/n7WrA6lvLrG8outlo43lkw=")
        );
        assert_eq!(
            auth(
                V1,
                "PUT",
                Some(KEY),
                &part,
                &[ct, md5],
                Some("CAIS-example-sts-token")
            ),
            format!("OSS {AK}:3Ulgapn8UDSCDHb5OqSMc3vTL5w=")
        );
        assert_eq!(
            auth(
                V1,
                "GET",
                Some(KEY),
                &[
                    ("uploadId", UPLOAD),
                    ("max-parts", "1000"),
                    ("part-number-marker", "0"),
                    ("encoding-type", "url")
                ],
                &[],
                None
            ),
            format!("OSS {AK}:62ZENE5jBca8ZHnFtSTX74Jyo4I=")
        );
        assert_eq!(
            auth(V1, "GET", None, &[("encryption", "")], &[], None),
            format!("OSS {AK}:OPgTDNORiu5wTr14+pOhcEm40eY=")
        );
        assert_eq!(
            auth(V1, "GET", None, &[("bucketInfo", "")], &[], None),
            format!("OSS {AK}:Br4k8N62N6DhFbJkncOSI7LGB3c=")
        );
        assert_eq!(
            auth(
                V1,
                "HEAD",
                Some(KEY),
                &[],
                &[],
                Some("CAIS-example-sts-token")
            ),
            format!("OSS {AK}:l2R2BhVG/MosfkkvIEUy3y5qetQ=")
        );
    }

    #[test]
    fn appendix_a_v4() {
        use SignatureVersion::V4;
        let cred = format!("OSS4-HMAC-SHA256 Credential={AK}/20221228/cn-hangzhou/oss/aliyun_v4_request,Signature=");
        let ct = ("content-type", "application/octet-stream");
        assert_eq!(
            auth(
                V4,
                "POST",
                Some(KEY),
                &[("uploads", ""), ("encoding-type", "url")],
                &[ct],
                None
            ),
            format!("{cred}ce3c2432738ab2841f8529b76247e598d13172a04fa7a12a5c570475e7f3b123")
        );
        let part = [("partNumber", "1"), ("uploadId", UPLOAD)];
        let md5 = ("content-md5", "JfnnlDI7RTiF9RgfG2JNCw==");
        assert_eq!(
            auth(V4, "PUT", Some(KEY), &part, &[ct, md5], None),
            format!("{cred}a5af49b28dc5dd923a764582ad5cdac0f88cb8bc2be112eda3d57f63f62dd25c")
        );
        assert_eq!(
            auth(
                V4,
                "PUT",
                Some(KEY),
                &part,
                &[ct, md5],
                Some("CAIS-example-sts-token")
            ),
            format!("{cred}9d85f15873b4cbc3ef4db4e4b0a0d50bfcbe6c920c1b50bb2ceceb2816da93a6")
        );
        assert_eq!(
            auth(
                V4,
                "GET",
                None,
                &[
                    ("uploads", ""),
                    ("max-uploads", "1000"),
                    ("encoding-type", "url")
                ],
                &[],
                None
            ),
            format!("{cred}13a45c76d0369eb5deb46999da01c32427f0c69043df14963bf51ad318cea848")
        );
        assert_eq!(
            auth(V4, "GET", None, &[("encryption", "")], &[], None),
            format!("{cred}0e8169a7eb0be18d906ce5467087f434eb8d62e91f47963dcfd5d727b12df16b")
        );
        assert_eq!(
            auth(V4, "HEAD", Some(KEY), &[], &[], None),
            format!("{cred}57e7809f8c94c0d1e1313f638a2ec9faa75ba673062ab5f7bc9990360cf8031e")
        );
    }

    #[test]
    fn sdk_v4_vector_with_odd_query() {
        let mut h = HeaderMap::new();
        h.insert("x-oss-head1", HeaderValue::from_static("value"));
        h.insert("abc", HeaderValue::from_static("value"));
        h.insert("zabc", HeaderValue::from_static("value"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        let query = q(&[
            ("param1", "value1"),
            ("+param1", "value3"),
            ("|param1", "value4"),
            ("+param2", ""),
            ("|param2", ""),
            ("param2", ""),
        ]);
        let res = Resource {
            bucket: Some("bucket"),
            key: Some("1234+-/123/1.txt"),
        };
        sign_own(
            &Signing {
                version: SignatureVersion::V4,
                region: "cn-hangzhou",
                now: at(1_702_743_657),
            },
            "PUT",
            res,
            &query,
            &mut h,
            &Credentials::new("ak", "sk"),
        )
        .unwrap();
        assert_eq!(
            h.get(AUTHORIZATION).unwrap().to_str().unwrap(),
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"
        );
        assert!(!format!("{:?}", h.get(AUTHORIZATION).unwrap()).contains("e21d"));
    }
}
