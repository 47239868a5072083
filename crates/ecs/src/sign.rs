//! The two signatures Alibaba Cloud's RPC APIs (ECS, RAM) accept:
//!
//! * [`rpc_v1`]: `SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`, the signature travels as
//!   the `Signature` parameter (what `aliyun-python-sdk-core` and the Tea SDK's `v2` mode send);
//! * [`acs3`]: `ACS3-HMAC-SHA256`, the signature travels in the `Authorization` header (the
//!   Tea SDK's default).
//!
//! Both are pure functions of their inputs (no clock, no randomness), so they are tested
//! against the published vectors. [`timestamp`] and [`nonce`] supply the two varying inputs.

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::Digest as _;

/// SHA-256 of the empty string, hex: `x-acs-content-sha256` of a request without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// The RPC encoding and the HMAC-SHA1 signature live in `preflight_aliyun::rpc`, which the
// STS credential provider signs with too.
pub use preflight_aliyun::rpc::{canonical_query, percent_encode, rpc_v1};

/// ACS3-HMAC-SHA256 signature.
pub mod acs3 {
    use super::*;

    /// The algorithm name, first word of the `Authorization` header.
    pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

    /// Signed headers: lower-cased names with trimmed values. `host`, `content-type` and every
    /// `x-acs-*` header should be among them (the signer signs exactly what it is given).
    pub fn canonical_request(
        method: &str,
        query: &[(String, String)],
        headers: &[(String, String)],
        payload_sha256: &str,
    ) -> (String, String) {
        let mut hs: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        hs.sort();
        let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed = hs
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let req = format!(
            "{method}\n/\n{}\n{canonical_headers}\n{signed}\n{payload_sha256}",
            canonical_query(query)
        );
        (req, signed)
    }

    /// The `Authorization` header value.
    pub fn authorization(
        access_key_id: &str,
        secret: &str,
        method: &str,
        query: &[(String, String)],
        headers: &[(String, String)],
        payload_sha256: &str,
    ) -> String {
        let (req, signed) = canonical_request(method, query, headers, payload_sha256);
        let sts = format!("{ALGORITHM}\n{}", hex::encode(sha2::Sha256::digest(req)));
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(sts.as_bytes());
        format!(
            "{ALGORITHM} Credential={access_key_id},SignedHeaders={signed},Signature={}",
            hex::encode(mac.finalize().into_bytes())
        )
    }
}

/// `YYYY-MM-DDThh:mm:ssZ` in UTC, the `Timestamp` / `x-acs-date` format (the shared
/// formatter, [`preflight_aliyun::time::iso8601`]).
pub fn timestamp(t: SystemTime) -> String {
    preflight_aliyun::time::iso8601(t)
}

/// A fresh random nonce: 32 lower-case hex digits (128 random bits).
pub fn nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const COMMON: &[(&str, &str)] = &[
        ("Format", "json"),
        ("Version", "2014-05-26"),
        ("Timestamp", "2024-01-02T03:04:05Z"),
        ("SignatureNonce", "d7c4a6b1e0f24d43a9c8b5e6f7a8b9c0"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("AccessKeyId", "testid"),
    ];

    /// The R3 API parameters (ImportImage, two disks, features, two tags).
    fn r3_api() -> Vec<(String, String)> {
        p(&[
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
        ])
    }

    #[test]
    fn r3_import_image_post() {
        let mut params = p(COMMON);
        params.push(("Action".into(), "ImportImage".into()));
        params.extend(r3_api());
        assert_eq!(
            rpc_v1::signature("testsecret", "POST", &params),
            "+fYkRiY5nYQhrbjWXIP078Mqbcs="
        );
        assert!(rpc_v1::string_to_sign("POST", &params).contains("%26Tag.2.Value%3D%26"));
        params.push(("SecurityToken".into(), "CAIS-example-sts-token".into()));
        assert_eq!(
            rpc_v1::signature("testsecret", "POST", &params),
            "tola/996ttO520kPWf/Fic/Hkn8="
        );
    }

    #[test]
    fn r4_other_actions() {
        /// (action, version, extra params, signature)
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case<'_>] = &[
            (
                "DescribeTasks",
                "2014-05-26",
                &[
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
                &[
                    ("RegionId", "cn-hangzhou"),
                    ("TaskId", "t-bp67acfmxazb4p1234"),
                ],
                "AXJSkk26N7D/TMc++3QDh5tjhMk=",
            ),
            (
                "DescribeImages",
                "2014-05-26",
                &[
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
                &[
                    ("RegionId", "cn-hangzhou"),
                    ("TaskId", "t-bp67acfmxazb4p1234"),
                ],
                "YwjKRSXxw4T2aUlvFLsw9ROe0CI=",
            ),
            (
                "DescribeRegions",
                "2014-05-26",
                &[("AcceptLanguage", "en-US")],
                "xKJZKcnBeOgTGE1FIQiYct2LtBc=",
            ),
            (
                "GetRole",
                "2015-05-01",
                &[("RoleName", "AliyunECSImageImportDefaultRole")],
                "qPARwTH/nB6RhM0bECZztI4tguA=",
            ),
            (
                "ListPoliciesForRole",
                "2015-05-01",
                &[("RoleName", "AliyunECSImageImportDefaultRole")],
                "GMaC489V6zbTGLAe55h8WHbf9x0=",
            ),
        ];
        for (action, version, extra, want) in cases {
            let mut params: Vec<(String, String)> = p(COMMON)
                .into_iter()
                .filter(|(k, _)| k != "Version")
                .collect();
            params.push(("Version".into(), version.to_string()));
            params.push(("Action".into(), action.to_string()));
            params.extend(p(extra));
            if *action == "GetRole" {
                assert_eq!(
                    rpc_v1::string_to_sign("GET", &params),
                    "GET&%2F&AccessKeyId%3Dtestid%26Action%3DGetRole%26Format%3Djson%26RoleName%3DAliyunECSImageImportDefaultRole%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Dd7c4a6b1e0f24d43a9c8b5e6f7a8b9c0%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-02T03%253A04%253A05Z%26Version%3D2015-05-01"
                );
            }
            assert_eq!(
                rpc_v1::signature("testsecret", "GET", &params),
                *want,
                "{action}"
            );
        }
    }

    fn acs_headers(host: &str, action: &str, date: &str, nonce: &str) -> Vec<(String, String)> {
        p(&[
            ("host", host),
            ("x-acs-action", action),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", date),
            ("x-acs-signature-nonce", nonce),
            ("x-acs-content-sha256", EMPTY_SHA256),
        ])
    }

    #[test]
    fn v3_1_official_run_instances() {
        let query = p(&[
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
            ("RegionId", "cn-shanghai"),
        ]);
        let headers = acs_headers(
            "ecs.cn-shanghai.aliyuncs.com",
            "RunInstances",
            "2023-10-26T10:22:32Z",
            "3156853299f313e23d1673dc12e1703d",
        );
        let (req, _) = acs3::canonical_request("POST", &query, &headers, EMPTY_SHA256);
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&req)),
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            acs3::authorization("YourAccessKeyId", "YourAccessKeySecret", "POST", &query, &headers, EMPTY_SHA256),
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    #[test]
    fn v3_2_import_image() {
        let query = r3_api();
        let mut headers = acs_headers(
            "ecs.cn-hangzhou.aliyuncs.com",
            "ImportImage",
            "2024-01-02T03:04:05Z",
            "d7c4a6b1e0f24d43a9c8b5e6f7a8b9c0",
        );
        let (req, _) = acs3::canonical_request("POST", &query, &headers, EMPTY_SHA256);
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&req)),
            "54880a04319e3407e5c05b746de148039ea9a787d5ace24f78c498099c773e9d"
        );
        assert!(acs3::authorization(
            "testid",
            "testsecret",
            "POST",
            &query,
            &headers,
            EMPTY_SHA256
        )
        .ends_with("Signature=15b3b08f1e5160289685a1e1e737c799d2f552ccad137030ae28c2b2ce81e490"));
        headers.push((
            "x-acs-security-token".into(),
            "CAIS-example-sts-token".into(),
        ));
        let auth = acs3::authorization(
            "testid",
            "testsecret",
            "POST",
            &query,
            &headers,
            EMPTY_SHA256,
        );
        assert!(auth.contains("x-acs-date;x-acs-security-token;x-acs-signature-nonce"));
        assert!(auth.ends_with(
            "Signature=f947c19f0d358f4b2f830189beb3801195fb0d57046acbb9e4af8cfe0106d59b"
        ));
    }

    #[test]
    fn timestamps_and_nonces() {
        use std::time::UNIX_EPOCH;
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_704_164_645);
        assert_eq!(timestamp(t), "2024-01-02T03:04:05Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(t), "2000-02-29T00:00:00Z");
        let (a, b) = (nonce(), nonce());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn encoding() {
        assert_eq!(percent_encode("a b*c~d/é"), "a%20b%2Ac~d%2F%C3%A9");
    }
}
