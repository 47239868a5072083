//! OSS signature V4 (`OSS4-HMAC-SHA256`), header and presigned-query forms (reference §2).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::SignInput;
use crate::util::{pct, pct_path};

/// The algorithm name in the Authorization header and StringToSign.
pub const ALGORITHM: &str = "OSS4-HMAC-SHA256";
/// The scope terminator.
pub const TERMINATOR: &str = "aliyun_v4_request";
/// The query parameter carrying a presigned V4 signature (excluded from the canonical query).
pub const QUERY_SIGNATURE: &str = "x-oss-signature";

/// The parsed `Authorization: OSS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4Header {
    /// AccessKeyId from the credential.
    pub access_key_id: String,
    /// `yyyymmdd`.
    pub date: String,
    /// Region id.
    pub region: String,
    /// Product (`oss`).
    pub product: String,
    /// Terminator (`aliyun_v4_request`).
    pub terminator: String,
    /// Lower-cased AdditionalHeaders names (empty entries dropped).
    pub additional_headers: Vec<String>,
    /// The AdditionalHeaders value exactly as sent, when the field is present.
    pub additional_raw: Option<String>,
    /// Hex signature as sent.
    pub signature: String,
}

/// Why a V4 `Authorization` header is malformed: the OSS error-center code documented for
/// that case (0002-00000203 … 0002-00000227) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    /// EC, e.g. `0002-00000205`.
    pub ec: &'static str,
    /// What is wrong, for `<Message>`.
    pub message: &'static str,
}

const fn herr(ec: &'static str, message: &'static str) -> HeaderError {
    HeaderError { ec, message }
}

/// Parses a credential `ak/yyyymmdd/region/product/aliyun_v4_request`.
pub fn parse_credential(credential: &str) -> Option<(String, String, String, String, String)> {
    // The AccessKeyId cannot contain '/', so split from the right.
    let mut parts = credential.rsplitn(5, '/');
    let terminator = parts.next()?.to_string();
    let product = parts.next()?.to_string();
    let region = parts.next()?.to_string();
    let date = parts.next()?.to_string();
    let ak = parts.next()?.to_string();
    if ak.is_empty() || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((ak, date, region, product, terminator))
}

/// Parses the value after `OSS4-HMAC-SHA256 ` as OSS documents it: comma-separated
/// `key=value` pairs (spaces after a comma allowed, any order — oss2 puts AdditionalHeaders
/// last), `Credential` and `Signature` required, `AdditionalHeaders` optional, nothing else.
/// Each refusal carries the documented EC: 0002-00000203 (a pair without `=`, or an empty
/// pair), -204 (an unknown key), -205 (no Credential), -206 (an AccessKeyId with invalid
/// characters), -207 (no Signature), -208 (an empty Signature), -213 (a Credential not of the
/// form `<AccessKeyId>/<yyyymmdd>/<Region>/oss/aliyun_v4_request`), -227 (a product other than
/// `oss`). The AdditionalHeaders checks (-209/-210/-211) need the request and are in
/// `auth`.
pub fn parse_header(rest: &str) -> Result<V4Header, HeaderError> {
    let format = herr(
        "0002-00000203",
        "The Authorization header format is invalid.",
    );
    let mut credential = None;
    let mut additional = None;
    let mut signature = None;
    for field in rest.split(',') {
        let (k, v) = field.trim().split_once('=').ok_or(format.clone())?;
        let slot = match k.trim() {
            "Credential" => &mut credential,
            "AdditionalHeaders" => &mut additional,
            "Signature" => &mut signature,
            _ => {
                return Err(herr(
                    "0002-00000204",
                    "The Authorization header has an unknown field.",
                ))
            }
        };
        if slot.is_some() {
            return Err(format);
        }
        *slot = Some(v.to_string());
    }
    let credential = credential.ok_or(herr(
        "0002-00000205",
        "The Authorization header has no Credential.",
    ))?;
    let signature = signature.ok_or(herr(
        "0002-00000207",
        "The Authorization header has no Signature.",
    ))?;
    if signature.is_empty() {
        return Err(herr(
            "0002-00000208",
            "The Signature in the Authorization header is empty.",
        ));
    }
    let bad_credential = herr(
        "0002-00000213",
        "The Credential in the Authorization header is invalid; expected <AccessKeyId>/<yyyymmdd>/<Region>/oss/aliyun_v4_request.",
    );
    let (access_key_id, date, region, product, terminator) =
        parse_credential(&credential).ok_or(bad_credential.clone())?;
    if access_key_id
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || !b.is_ascii())
    {
        return Err(herr(
            "0002-00000206",
            "The AccessKeyId in the Credential is invalid.",
        ));
    }
    if region.is_empty() || terminator != TERMINATOR {
        return Err(bad_credential);
    }
    if product != "oss" {
        return Err(herr(
            "0002-00000227",
            "The product in the Credential is invalid; expected oss.",
        ));
    }
    Ok(V4Header {
        access_key_id,
        date,
        region,
        product,
        terminator,
        additional_headers: split_additional(additional.as_deref().unwrap_or("")),
        additional_raw: additional,
        signature,
    })
}

/// The documented AdditionalHeaders refusals: present but empty (0002-00000209), an empty
/// entry such as `host;` (0002-00000210), an entry naming a header the request does not
/// carry or containing `_` (0002-00000211).
pub fn check_additional(raw: &str, input: &SignInput<'_>) -> Result<(), HeaderError> {
    if raw.trim().is_empty() {
        return Err(herr(
            "0002-00000209",
            "The AdditionalHeaders in the Authorization header is empty.",
        ));
    }
    for entry in raw.split(';') {
        let name = entry.trim();
        if name.is_empty() {
            return Err(herr(
                "0002-00000210",
                "The AdditionalHeaders in the Authorization header has an empty entry.",
            ));
        }
        let present = http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .is_ok_and(|n| input.headers.contains_key(n));
        if name.contains('_') || !present {
            return Err(herr(
                "0002-00000211",
                "The AdditionalHeaders in the Authorization header names a header the request does not carry.",
            ));
        }
    }
    Ok(())
}

/// Splits a `;`-joined AdditionalHeaders list into lower-case names.
pub fn split_additional(list: &str) -> Vec<String> {
    list.split(';')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn default_signed(name: &str) -> bool {
    name.starts_with("x-oss-") || name == "content-type" || name == "content-md5"
}

/// The AdditionalHeaders that take part: present in the request, not signed by default; sorted.
pub fn effective_additional(input: &SignInput<'_>, additional: &[String]) -> Vec<String> {
    let mut v: Vec<String> = additional
        .iter()
        .filter(|n| !default_signed(n) && input.headers.contains_key(n.as_str()))
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The canonical request. `additional` must already be [`effective_additional`].
pub fn canonical_request(
    input: &SignInput<'_>,
    additional: &[String],
    payload_hash: &str,
) -> String {
    let mut uri = String::from("/");
    if let Some(bucket) = input.bucket {
        uri.push_str(bucket);
        uri.push('/');
        if let Some(key) = input.key {
            uri.push_str(&pct_path(key));
        }
    }
    let mut q: Vec<(String, String)> = input
        .query
        .iter()
        .filter(|p| p.key != QUERY_SIGNATURE)
        .map(|p| (pct(&p.key), pct(&p.value)))
        .collect();
    q.sort();
    let query: Vec<String> = q
        .into_iter()
        .map(|(k, v)| if v.is_empty() { k } else { format!("{k}={v}") })
        .collect();
    let mut names: Vec<String> = input
        .headers
        .keys()
        .map(|n| n.as_str().to_ascii_lowercase())
        .filter(|n| default_signed(n) || additional.contains(n))
        .collect();
    names.sort();
    names.dedup();
    let mut headers = String::new();
    for n in &names {
        headers.push_str(n);
        headers.push(':');
        headers.push_str(input.header_joined(n).trim());
        headers.push('\n');
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method,
        uri,
        query.join("&"),
        headers,
        additional.join(";"),
        payload_hash
    )
}

/// `OSS4-HMAC-SHA256\n<datetime>\n<scope>\nhex(sha256(canonical))`.
pub fn string_to_sign(datetime: &str, scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{datetime}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

/// `yyyymmdd/region/product/aliyun_v4_request`.
pub fn scope(date: &str, region: &str, product: &str) -> String {
    format!("{date}/{region}/{product}/{TERMINATOR}")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// hex(HMAC-SHA256(k4, string_to_sign)) with the derived key chain of §2.3.
pub fn sign(secret: &str, date: &str, region: &str, product: &str, string_to_sign: &str) -> String {
    let k1 = hmac(format!("aliyun_v4{secret}").as_bytes(), date.as_bytes());
    let k2 = hmac(&k1, region.as_bytes());
    let k3 = hmac(&k2, product.as_bytes());
    let k4 = hmac(&k3, TERMINATOR.as_bytes());
    hex::encode(hmac(&k4, string_to_sign.as_bytes()))
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

    const Q: &str = "param1=value1&%2Bparam1=value3&%7Cparam1=value4&%2Bparam2=&%7Cparam2=&param2=";

    fn base_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("x-oss-head1", "value"),
            ("abc", "value"),
            ("ZAbc", "value"),
            ("XYZ", "value"),
            ("content-type", "text/plain"),
            ("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
        ]
    }

    fn check(
        headers: &[(&str, &str)],
        query: &str,
        datetime: &str,
        additional: &[String],
        expected_hash: Option<&str>,
        expected_sig: &str,
    ) {
        let i = input(
            "PUT",
            Some("bucket"),
            Some("1234+-/123/1.txt"),
            query,
            headers,
        );
        let inp = i.as_input();
        let add = effective_additional(&inp, additional);
        let canon = canonical_request(&inp, &add, "UNSIGNED-PAYLOAD");
        let sc = scope(&datetime[..8], "cn-hangzhou", "oss");
        let sts = string_to_sign(datetime, &sc, &canon);
        if let Some(h) = expected_hash {
            assert!(sts.ends_with(h), "{canon}\n---\n{sts}");
        }
        assert_eq!(
            sign("sk", &datetime[..8], "cn-hangzhou", "oss", &sts),
            expected_sig
        );
    }

    #[test]
    fn v4_1_header() {
        let mut h = base_headers();
        h.push(("x-oss-date", "20231216T162057Z"));
        let i = input("PUT", Some("bucket"), Some("1234+-/123/1.txt"), Q, &h);
        let canon = canonical_request(&i.as_input(), &[], "UNSIGNED-PAYLOAD");
        assert_eq!(canon, "PUT\n/bucket/1234%2B-/123/1.txt\n%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2\ncontent-type:text/plain\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20231216T162057Z\nx-oss-head1:value\n\n\nUNSIGNED-PAYLOAD");
        check(
            &h,
            Q,
            "20231216T162057Z",
            &[],
            Some("f4613657f1b108998e8dbd10a1aa5da621dc2c6e02c9ddec0f163664848704c4"),
            "e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe",
        );
    }

    #[test]
    fn v4_2_sts_and_v4_3_additional() {
        let mut h = base_headers();
        h.push(("x-oss-date", "20231217T034736Z"));
        h.push(("x-oss-security-token", "token"));
        check(
            &h,
            Q,
            "20231217T034736Z",
            &[],
            Some("69494678fb11579d4ee12996e2796d9e2ba43c34aa4c723c4aec018f3d6b86b8"),
            "b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea",
        );
        let mut h = base_headers();
        h.push(("x-oss-date", "20231216T172512Z"));
        for add in [
            vec!["zabc".to_string(), "abc".to_string()],
            split_additional("x-oss-no-exist;ZAbc;x-oss-head1;abc"),
        ] {
            check(
                &h,
                Q,
                "20231216T172512Z",
                &add,
                Some("16b86004ed2cc3406dd7a13081bd940ef6a5ad49e508da2d4fdf84e8a5dd2145"),
                "4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f",
            );
        }
    }

    #[test]
    fn v4_presigned() {
        let h = vec![
            ("x-oss-head1", "value"),
            ("abc", "value"),
            ("ZAbc", "value"),
            ("XYZ", "value"),
            ("content-type", "application/octet-stream"),
        ];
        let cred = "ak%2F20231217%2Fcn-hangzhou%2Foss%2Faliyun_v4_request";
        let q = format!("{Q}&x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-date=20231217T025437Z&x-oss-expires=599&x-oss-credential={cred}&x-oss-signature=ignored");
        check(
            &h,
            &q,
            "20231217T025437Z",
            &[],
            None,
            "a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe",
        );
        let q = format!("{Q}&x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-date=20231217T035628Z&x-oss-expires=599&x-oss-credential={cred}&x-oss-security-token=token");
        check(
            &h,
            &q,
            "20231217T035628Z",
            &[],
            None,
            "3817ac9d206cd6dfc90f1c09c00be45005602e55898f26f5ddb06d7892e1f8b5",
        );
        let q = format!("{Q}&x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-date=20231217T033009Z&x-oss-expires=599&x-oss-credential={cred}&x-oss-additional-headers=abc%3Bzabc");
        check(
            &h,
            &q,
            "20231217T033009Z",
            &split_additional("abc;zabc"),
            None,
            "6bd984bfe531afb6db1f7550983a741b103a8c58e5e14f83ea474c2322dfa2b7",
        );
        let q = format!("{Q}&x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-date=20231217T025437Z&x-oss-expires=432000&x-oss-credential={cred}");
        check(
            &h,
            &q,
            "20231217T025437Z",
            &[],
            None,
            "31029123dc7732d2d2cfd4006ea4fdb6cf86da6478f813e2bf8f87877c7b9fec",
        );
    }

    #[test]
    fn v4_cloudbox() {
        let mut h = base_headers();
        h.push(("x-oss-date", "20231216T162057Z"));
        let i = input("PUT", Some("bucket"), Some("1234+-/123/1.txt"), Q, &h);
        let canon = canonical_request(&i.as_input(), &[], "UNSIGNED-PAYLOAD");
        let sts = string_to_sign(
            "20231216T162057Z",
            &scope("20231216", "cb-123", "oss-cloudbox"),
            &canon,
        );
        assert_eq!(
            sign("sk", "20231216", "cb-123", "oss-cloudbox", &sts),
            "94ce1f12c17d148ea681030275a94449d3357f5b5b21133996eec80af3e08a43"
        );
    }

    #[test]
    fn header_parsing() {
        let h = parse_header("Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,AdditionalHeaders=abc;zabc,Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f").unwrap();
        assert_eq!(h.additional_headers, vec!["abc", "zabc"]);
        let h2 = parse_header("Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request, Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f, AdditionalHeaders=abc;zabc").unwrap();
        assert_eq!(h, h2);
        let ec = |h: &str| parse_header(h).unwrap_err().ec;
        let sig = "4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f";
        let cred = "Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request";
        assert_eq!(ec(&format!("{cred},Signature={sig},")), "0002-00000203");
        assert_eq!(
            ec(&format!(
                "Credentialak/20231216/cn-hangzhou/oss/aliyun_v4_request,Signature={sig}"
            )),
            "0002-00000203"
        );
        assert_eq!(ec(""), "0002-00000203");
        assert_eq!(
            ec(&format!("{cred},Signature={sig},UnknownKey=1")),
            "0002-00000204"
        );
        assert_eq!(ec(&format!("Signature={sig}")), "0002-00000205");
        assert_eq!(
            ec(&format!(
                "Credential=\rak/20231216/cn-hangzhou/oss/aliyun_v4_request,Signature={sig}"
            )),
            "0002-00000206"
        );
        assert_eq!(ec(cred), "0002-00000207");
        assert_eq!(ec(&format!("{cred},Signature=")), "0002-00000208");
        assert_eq!(
            ec(&format!(
                "Credential=ak/20231216/cn-hangzhou/oss/abc,Signature={sig}"
            )),
            "0002-00000213"
        );
        assert_eq!(
            ec(&format!(
                "Credential=ak/2023-12-16/cn-hangzhou/oss/aliyun_v4_request,Signature={sig}"
            )),
            "0002-00000213"
        );
        assert_eq!(
            ec(&format!(
                "Credential=ak/20231216/cn-hangzhou/s3/aliyun_v4_request,Signature={sig}"
            )),
            "0002-00000227"
        );
        // An empty AdditionalHeaders parses; `auth` refuses it when strict.
        let h = parse_header(&format!("{cred},AdditionalHeaders=,Signature={sig}")).unwrap();
        assert_eq!(h.additional_raw.as_deref(), Some(""));
        let i = input("GET", Some("b"), None, "", &[("range", "bytes=0-1")]);
        let chk = |raw: &str| check_additional(raw, &i.as_input()).map_err(|e| e.ec);
        assert_eq!(chk(""), Err("0002-00000209"));
        assert_eq!(chk("range;"), Err("0002-00000210"));
        assert_eq!(chk("host;range"), Err("0002-00000211"));
        assert_eq!(chk("x_range"), Err("0002-00000211"));
        assert_eq!(chk("range"), Ok(()));
    }

    /// Appendix A, V4 column: the ten operations, plain and with an STS token.
    #[test]
    fn appendix_a_vectors() {
        let key = "images/ubuntu 22.04+lts.qcow2";
        let up = "0004B9894A22E5B1888A1E29F8236E2F";
        let secret = "OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV";
        let cases: Vec<Case> = vec![
            (
                "POST",
                Some(key),
                "uploads&encoding-type=url".into(),
                vec![("Content-Type", "application/octet-stream")],
                "ce3c2432738ab2841f8529b76247e598d13172a04fa7a12a5c570475e7f3b123",
                "bb943383bb455e3ed5be584169b89ee1dcb90fede8195df030357e559b21b587",
            ),
            (
                "PUT",
                Some(key),
                format!("partNumber=1&uploadId={up}"),
                vec![
                    ("Content-Type", "application/octet-stream"),
                    ("Content-MD5", "JfnnlDI7RTiF9RgfG2JNCw=="),
                ],
                "a5af49b28dc5dd923a764582ad5cdac0f88cb8bc2be112eda3d57f63f62dd25c",
                "9d85f15873b4cbc3ef4db4e4b0a0d50bfcbe6c920c1b50bb2ceceb2816da93a6",
            ),
            (
                "POST",
                Some(key),
                format!("uploadId={up}&encoding-type=url"),
                vec![
                    ("Content-Type", "application/xml"),
                    ("Content-MD5", "0wK20yVovbh9ghUDeGfTpw=="),
                ],
                "15172c4d4c59d18a344c82c6cb1ca29d34ab64f52da2c7ffa6d6cee85a187c4a",
                "e995859e158f75edf9745838efdf5a99b0f81df260f5559e2ca505b1a1c84771",
            ),
            (
                "GET",
                Some(key),
                format!("uploadId={up}&max-parts=1000&part-number-marker=0&encoding-type=url"),
                vec![],
                "59108def22982e3addac8604f8e494d46e964d4bbfcd5939468c770a3cfa3baa",
                "1a8b4bdc4fb525814d3e55623fd4d6c050b5826469d2bf63372d33a9b370199b",
            ),
            (
                "DELETE",
                Some(key),
                format!("uploadId={up}"),
                vec![],
                "3d44bde38d4e5d4a0e7f3ca49eeb6b3ff4b385906702c7a848908bc309202416",
                "72a6dd5d186eead57a07ff8a0e505483083fc9b6036a86973e66761cfe6f4b7d",
            ),
            (
                "GET",
                None,
                "uploads&max-uploads=1000&encoding-type=url".into(),
                vec![],
                "13a45c76d0369eb5deb46999da01c32427f0c69043df14963bf51ad318cea848",
                "16e8a5f137d8a5e2080ed0c7a2b4ceeff231d3e9da2f37d7b5e26e11609ab2cf",
            ),
            (
                "GET",
                None,
                "bucketInfo".into(),
                vec![],
                "61b0ca6de490c84dd5d6f44d1dce597119709bc5ed65dd9ba551effc6d75a60c",
                "91286d9c8b4e58a23eb2fe5cb078167da360d1f1f727d6e6059074008706d214",
            ),
            (
                "GET",
                None,
                "location".into(),
                vec![],
                "141530aaa64c8cdea1228d90d20e46c1d923100279b49b54a0bc61934c2c09eb",
                "fe82e5fa80c5e83a0a36cac1d21cf4a861b1e3fbc71116c8607684e5d73407ec",
            ),
            (
                "GET",
                None,
                "encryption".into(),
                vec![],
                "0e8169a7eb0be18d906ce5467087f434eb8d62e91f47963dcfd5d727b12df16b",
                "bcf712cee44c3c5c08eee0a8de586c75ad4fa4cf3adb2eba94f5afa8229ae865",
            ),
            (
                "HEAD",
                Some(key),
                String::new(),
                vec![],
                "57e7809f8c94c0d1e1313f638a2ec9faa75ba673062ab5f7bc9990360cf8031e",
                "a94e759c5b47bbb3f627f77ca645622f9a8785af08c6e986d317acf89f7e37fe",
            ),
        ];
        let dt = "20221228T102741Z";
        for (method, k, q, headers, plain, sts) in cases {
            let mut h = headers.clone();
            h.push(("x-oss-content-sha256", "UNSIGNED-PAYLOAD"));
            h.push(("x-oss-date", dt));
            h.push(("Date", "Wed, 28 Dec 2022 10:27:41 GMT"));
            for (extra, want) in [(None, plain), (Some("CAIS-example-sts-token"), sts)] {
                let mut h = h.clone();
                if let Some(t) = extra {
                    h.push(("x-oss-security-token", t));
                }
                let i = input(method, Some("examplebucket"), k, &q, &h);
                let canon = canonical_request(&i.as_input(), &[], "UNSIGNED-PAYLOAD");
                let s = string_to_sign(dt, &scope("20221228", "cn-hangzhou", "oss"), &canon);
                assert_eq!(
                    sign(secret, "20221228", "cn-hangzhou", "oss", &s),
                    want,
                    "{method} {q} {extra:?}"
                );
            }
        }
    }
}
