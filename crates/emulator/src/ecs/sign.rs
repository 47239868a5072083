//! ECS/RAM request signatures: RPC HMAC-SHA1 (SignatureVersion 1.0) and ACS3-HMAC-SHA256
//! (reference §7).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::util::{pct, QueryParam};

/// The ACS3 algorithm name.
pub const ACS3: &str = "ACS3-HMAC-SHA256";

/// RPC canonicalized query string: every parameter but `Signature`, `pct(k)=pct(v)`, sorted by
/// encoded key (then value), joined by `&`.
pub fn rpc_canonical_query(params: &[QueryParam]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|p| p.key != "Signature")
        .map(|p| (pct(&p.key), pct(&p.value)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `METHOD&%2F&pct(canonical query)`.
pub fn rpc_string_to_sign(method: &str, params: &[QueryParam]) -> String {
    format!("{method}&%2F&{}", pct(&rpc_canonical_query(params)))
}

/// base64(HMAC-SHA1(secret + "&", string_to_sign)).
pub fn rpc_sign(secret: &str, string_to_sign: &str) -> String {
    match Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes()) {
        Ok(mut m) => {
            m.update(string_to_sign.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// The parsed `Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Header {
    /// AccessKeyId.
    pub access_key_id: String,
    /// Lower-cased signed header names, in the order given.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Parses the value after `ACS3-HMAC-SHA256 `.
pub fn parse_acs3(rest: &str) -> Option<Acs3Header> {
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for field in rest.split(',') {
        let (k, v) = field.trim().split_once('=')?;
        let slot = match k.trim() {
            "Credential" => &mut cred,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut sig,
            _ => return None,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(v.trim().to_string());
    }
    let access_key_id: String = cred.filter(|c| !c.is_empty())?;
    let signed_headers: Vec<String> = signed?
        .split(';')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    let signature = sig?;
    if signed_headers.is_empty() || signature.is_empty() {
        return None;
    }
    Some(Acs3Header {
        access_key_id,
        signed_headers,
        signature,
    })
}

/// ACS3 canonical query: `pct(k)=pct(v)` sorted, `&`-joined (empty value gives `k=`).
pub fn acs3_canonical_query(params: &[QueryParam]) -> String {
    rpc_canonical_query_all(params)
}

fn rpc_canonical_query_all(params: &[QueryParam]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|p| (pct(&p.key), pct(&p.value)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The ACS3 canonical request. `headers` are (lower-case name, value) pairs for exactly the
/// signed headers; they are sorted here.
pub fn acs3_canonical_request(
    method: &str,
    path: &str,
    query: &[QueryParam],
    headers: &[(String, String)],
    payload_hash: &str,
) -> String {
    let mut h: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    h.sort();
    let canon_headers: String = h.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let names: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
    format!(
        "{method}\n{path}\n{}\n{canon_headers}\n{}\n{payload_hash}",
        acs3_canonical_query(query),
        names.join(";")
    )
}

/// `ACS3-HMAC-SHA256\nhex(sha256(canonical))`.
pub fn acs3_string_to_sign(canonical: &str) -> String {
    format!(
        "{ACS3}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

/// hex(HMAC-SHA256(secret, string_to_sign)).
pub fn acs3_sign(secret: &str, string_to_sign: &str) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut m) => {
            m.update(string_to_sign.as_bytes());
            hex::encode(m.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// hex(sha256(body)).
pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (action, version, extra parameters, expected signature).
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a str);

    fn params(list: &[(&str, &str)]) -> Vec<QueryParam> {
        list.iter()
            .map(|(k, v)| QueryParam {
                key: (*k).into(),
                value: (*v).into(),
            })
            .collect()
    }

    #[test]
    fn r1_official() {
        let p = params(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
            ("Signature", "ignored"),
        ]);
        let sts = rpc_string_to_sign("GET", &p);
        assert_eq!(sts, "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26");
        assert_eq!(rpc_sign("testsecret", &sts), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
    }

    #[test]
    fn r2_utf8() {
        let p = params(&[
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
        ]);
        let sts = rpc_string_to_sign("GET", &p);
        assert!(sts.contains("SignName%3D%25E9%2598%25BF%25E9%2587%258C"));
        assert!(sts.contains("TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D"));
        assert_eq!(rpc_sign("testSecret", &sts), "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
    }

    fn import_api_params() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Architecture", "x86_64"),
            ("BootMode", "UEFI"),
            ("ClientToken", "0f4a8c2e-2b7d-4e1a-9c3b-5d6e7f8a9b0c"),
            ("Description", "imported by ecs-preflight"),
            ("DiskDeviceMapping.1.DiskImageSize", "40"),
            ("DiskDeviceMapping.1.Format", "QCOW2"),
            ("DiskDeviceMapping.1.OSSBucket", "examplebucket"),
            ("DiskDeviceMapping.1.OSSObject", "images/ubuntu-22.04.qcow2"),
            ("DiskDeviceMapping.2.DiskImageSize", "100"),
            ("DiskDeviceMapping.2.Format", "RAW"),
            ("DiskDeviceMapping.2.OSSBucket", "examplebucket"),
            ("DiskDeviceMapping.2.OSSObject", "images/data disk.raw"),
            ("Features.ImdsSupport", "v2"),
            ("Features.NvmeSupport", "supported"),
            ("ImageName", "ecs-preflight-test"),
            ("LicenseType", "Auto"),
            ("OSType", "linux"),
            ("Platform", "Ubuntu"),
            ("RegionId", "cn-hangzhou"),
            ("Tag.1.Key", "owner"),
            ("Tag.1.Value", "team-a"),
            ("Tag.2.Key", "env"),
            ("Tag.2.Value", ""),
        ]
    }

    fn common(action: &str, version: &str) -> Vec<(&'static str, String)> {
        vec![
            ("Action", action.to_string()),
            ("Format", "json".into()),
            ("Version", version.to_string()),
            ("Timestamp", "2024-01-02T03:04:05Z".into()),
            ("SignatureNonce", "d7c4a6b1e0f24d43a9c8b5e6f7a8b9c0".into()),
            ("SignatureMethod", "HMAC-SHA1".into()),
            ("SignatureVersion", "1.0".into()),
            ("AccessKeyId", "testid".into()),
        ]
    }

    fn with_common(action: &str, version: &str, extra: &[(&str, &str)]) -> Vec<QueryParam> {
        let mut v: Vec<QueryParam> = common(action, version)
            .into_iter()
            .map(|(k, v)| QueryParam {
                key: k.into(),
                value: v,
            })
            .collect();
        v.extend(params(extra));
        v
    }

    #[test]
    fn r3_import_image() {
        let mut p = with_common("ImportImage", "2014-05-26", &import_api_params());
        let sts = rpc_string_to_sign("POST", &p);
        assert!(sts.contains("DiskDeviceMapping.2.OSSObject%3Dimages%252Fdata%2520disk.raw"));
        assert!(sts.contains("Tag.2.Value%3D%26Timestamp"));
        assert_eq!(rpc_sign("testsecret", &sts), "+fYkRiY5nYQhrbjWXIP078Mqbcs=");
        p.push(QueryParam {
            key: "SecurityToken".into(),
            value: "CAIS-example-sts-token".into(),
        });
        assert_eq!(
            rpc_sign("testsecret", &rpc_string_to_sign("POST", &p)),
            "tola/996ttO520kPWf/Fic/Hkn8="
        );
    }

    #[test]
    fn r4_other_actions() {
        let cases: Vec<Case> = vec![
            (
                "DescribeTasks",
                "2014-05-26",
                vec![
                    ("RegionId", "cn-hangzhou"),
                    ("TaskAction", "ImportImage"),
                    ("TaskIds", "t-bp67acfmxazb4p1234"),
                    ("PageSize", "100"),
                ],
                "fGAKZ5nEUpymIOFf6CrL5eWdxFE=",
            ),
            (
                "DescribeTaskAttribute",
                "2014-05-26",
                vec![
                    ("RegionId", "cn-hangzhou"),
                    ("TaskId", "t-bp67acfmxazb4p1234"),
                ],
                "AXJSkk26N7D/TMc++3QDh5tjhMk=",
            ),
            (
                "DescribeImages",
                "2014-05-26",
                vec![
                    ("RegionId", "cn-hangzhou"),
                    ("ImageId", "m-bp67acfmxazb4p5678"),
                    (
                        "Status",
                        "Creating,Waiting,Available,CreateFailed,UnAvailable",
                    ),
                ],
                "CZLOMh5/rePXRM7GPizn2PRQGgo=",
            ),
            (
                "CancelTask",
                "2014-05-26",
                vec![
                    ("RegionId", "cn-hangzhou"),
                    ("TaskId", "t-bp67acfmxazb4p1234"),
                ],
                "YwjKRSXxw4T2aUlvFLsw9ROe0CI=",
            ),
            (
                "DescribeRegions",
                "2014-05-26",
                vec![("AcceptLanguage", "en-US")],
                "xKJZKcnBeOgTGE1FIQiYct2LtBc=",
            ),
            (
                "GetRole",
                "2015-05-01",
                vec![("RoleName", "AliyunECSImageImportDefaultRole")],
                "qPARwTH/nB6RhM0bECZztI4tguA=",
            ),
            (
                "ListPoliciesForRole",
                "2015-05-01",
                vec![("RoleName", "AliyunECSImageImportDefaultRole")],
                "GMaC489V6zbTGLAe55h8WHbf9x0=",
            ),
        ];
        for (action, version, extra, want) in cases {
            let p = with_common(action, version, &extra);
            let sts = rpc_string_to_sign("GET", &p);
            if action == "GetRole" {
                assert_eq!(sts, "GET&%2F&AccessKeyId%3Dtestid%26Action%3DGetRole%26Format%3Djson%26RoleName%3DAliyunECSImageImportDefaultRole%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Dd7c4a6b1e0f24d43a9c8b5e6f7a8b9c0%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-02T03%253A04%253A05Z%26Version%3D2015-05-01");
            }
            assert_eq!(rpc_sign("testsecret", &sts), want, "{action}");
        }
    }

    fn acs3_headers(host: &str, action: &str, date: &str, nonce: &str) -> Vec<(String, String)> {
        vec![
            ("host".into(), host.into()),
            ("x-acs-action".into(), action.into()),
            ("x-acs-content-sha256".into(), sha256_hex(b"")),
            ("x-acs-date".into(), date.into()),
            ("x-acs-signature-nonce".into(), nonce.into()),
            ("x-acs-version".into(), "2014-05-26".into()),
        ]
    }

    #[test]
    fn v3_1_official() {
        let q = params(&[
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
            ("RegionId", "cn-shanghai"),
        ]);
        let h = acs3_headers(
            "ecs.cn-shanghai.aliyuncs.com",
            "RunInstances",
            "2023-10-26T10:22:32Z",
            "3156853299f313e23d1673dc12e1703d",
        );
        let canon = acs3_canonical_request("POST", "/", &q, &h, &sha256_hex(b""));
        let sts = acs3_string_to_sign(&canon);
        assert_eq!(
            sts,
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            acs3_sign("YourAccessKeySecret", &sts),
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
        let parsed = parse_acs3("Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0").unwrap();
        assert_eq!(parsed.access_key_id, "YourAccessKeyId");
        assert_eq!(parsed.signed_headers.len(), 6);
        assert!(parse_acs3("Credential=a,Signature=b").is_none());
        assert!(parse_acs3("garbage").is_none());
    }

    #[test]
    fn v3_2_import_image() {
        let q = params(&import_api_params());
        let mut h = acs3_headers(
            "ecs.cn-hangzhou.aliyuncs.com",
            "ImportImage",
            "2024-01-02T03:04:05Z",
            "d7c4a6b1e0f24d43a9c8b5e6f7a8b9c0",
        );
        let canon = acs3_canonical_request("POST", "/", &q, &h, &sha256_hex(b""));
        let sts = acs3_string_to_sign(&canon);
        assert!(sts.ends_with("54880a04319e3407e5c05b746de148039ea9a787d5ace24f78c498099c773e9d"));
        assert_eq!(
            acs3_sign("testsecret", &sts),
            "15b3b08f1e5160289685a1e1e737c799d2f552ccad137030ae28c2b2ce81e490"
        );
        h.push((
            "x-acs-security-token".into(),
            "CAIS-example-sts-token".into(),
        ));
        let canon = acs3_canonical_request("POST", "/", &q, &h, &sha256_hex(b""));
        assert_eq!(
            acs3_sign("testsecret", &acs3_string_to_sign(&canon)),
            "f947c19f0d358f4b2f830189beb3801195fb0d57046acbb9e4af8cfe0106d59b"
        );
    }
}
