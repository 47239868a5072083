//! The ImportImage request this client sends, checked against the two authorities: R3's
//! published signature (`../shared/reference`), and the query Alibaba's official Python SDK
//! (`alibabacloud_ecs20140526`) sends for the same request. One request, [`r3_request`], serves
//! both, so the two checks cannot drift apart.

use std::io::{Read, Write};
use std::process::Command;

use preflight_ecs::{
    import_image_params, sign::rpc_v1, ImportDisk, ImportFeatures, ImportImageRequest,
    ImportOptions, ImportTag,
};

/// R3's ImportImage request, its second disk's object named `data_object`.
fn r3_request(data_object: &str) -> ImportImageRequest {
    ImportImageRequest {
        region_id: Some("cn-hangzhou".into()),
        image_name: Some("ecs-preflight-test".into()),
        description: Some("imported by ecs-preflight".into()),
        architecture: Some("x86_64".into()),
        os_type: Some("linux".into()),
        platform: Some("Ubuntu".into()),
        boot_mode: Some("UEFI".into()),
        license_type: Some("Auto".into()),
        tags: vec![
            ImportTag {
                key: "owner".into(),
                value: "team-a".into(),
            },
            ImportTag {
                key: "env".into(),
                value: String::new(),
            },
        ],
        features: Some(ImportFeatures {
            nvme_support: Some("supported".into()),
            imds_support: Some("v2".into()),
        }),
        client_token: Some("0f4a8c2e-2b7d-4e1a-9c3b-5d6e7f8a9b0c".into()),
        disk_device_mappings: vec![
            ImportDisk {
                format: Some("QCOW2".into()),
                oss_bucket: Some("examplebucket".into()),
                oss_object: Some("images/ubuntu-22.04.qcow2".into()),
                disk_image_size: Some(40),
            },
            ImportDisk {
                format: Some("RAW".into()),
                oss_bucket: Some("examplebucket".into()),
                oss_object: Some(data_object.into()),
                disk_image_size: Some(100),
            },
        ],
        ..ImportImageRequest::default()
    }
}

#[test]
fn r3_request_flattens_to_r3s_signature() {
    let request = r3_request("images/data disk.raw");
    let mut params = import_image_params(&request, &ImportOptions::default());
    // With the R3 common parameters this must give the R3 signature.
    for (k, v) in [
        ("Action", "ImportImage"),
        ("Format", "json"),
        ("Version", "2014-05-26"),
        ("Timestamp", "2024-01-02T03:04:05Z"),
        ("SignatureNonce", "d7c4a6b1e0f24d43a9c8b5e6f7a8b9c0"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("AccessKeyId", "testid"),
    ] {
        params.push((k.into(), v.into()));
    }
    assert_eq!(
        rpc_v1::signature("testsecret", "POST", &params),
        "+fYkRiY5nYQhrbjWXIP078Mqbcs="
    );
    let dry = import_image_params(&request, &ImportOptions { dry_run: true });
    assert!(dry.contains(&("DryRun".into(), "true".into())));
}

/// Decodes `%XX` (and `+` as space) in a query component.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Accepts `n` HTTP requests, answers each with an ImportImage-like JSON, returns the
/// request targets (`/?query`).
fn capture(n: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..n {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") {
                if s.read(&mut byte).unwrap() == 0 {
                    break;
                }
                buf.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&buf).to_string();
            let target = head
                .lines()
                .next()
                .unwrap_or_default()
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_string();
            seen.push(target);
            let body =
                r#"{"RequestId":"R","ImageId":"m-1","TaskId":"t-1","RegionId":"cn-hangzhou"}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        seen
    });
    (port, h)
}

fn query_params(target: &str) -> Vec<(String, String)> {
    let q = target.split_once('?').map(|x| x.1).unwrap_or_default();
    let mut v: Vec<(String, String)> = q
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .filter(|(k, _)| !["Signature", "SignatureNonce", "Timestamp"].contains(&k.as_str()))
        .collect();
    v.sort();
    v
}

const SDK_SCRIPT: &str = r#"
import sys
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_ecs20140526.client import Client
from alibabacloud_ecs20140526 import models as m
port = sys.argv[1]
cfg = open_api_models.Config(access_key_id="testid", access_key_secret="testsecret",
    endpoint="127.0.0.1:" + port, protocol="http", region_id="cn-hangzhou", signature_algorithm="v2")
c = Client(cfg)
req = m.ImportImageRequest(
    region_id="cn-hangzhou", image_name="ecs-preflight-test", description="imported by ecs-preflight",
    architecture="x86_64", ostype="linux", platform="Ubuntu", boot_mode="UEFI", license_type="Auto",
    client_token="0f4a8c2e-2b7d-4e1a-9c3b-5d6e7f8a9b0c", role_name="AliyunECSImageImportDefaultRole",
    detection_strategy="Standard", resource_group_id="rg-aek2",
    features=m.ImportImageRequestFeatures(nvme_support="supported", imds_support="v2"),
    tag=[m.ImportImageRequestTag(key="owner", value="team-a"), m.ImportImageRequestTag(key="env", value="")],
    disk_device_mapping=[
        m.ImportImageRequestDiskDeviceMapping(format="QCOW2", ossbucket="examplebucket", ossobject="images/ubuntu-22.04.qcow2", disk_image_size=40),
        m.ImportImageRequestDiskDeviceMapping(format="RAW", ossbucket="examplebucket", ossobject="images/data disk+1.raw", disk_image_size=100),
    ])
r = c.import_image(req)
print(r.body.image_id)
"#;

#[test]
fn import_image_query_matches_the_official_python_sdk() {
    let py = preflight_testkit::sdk_python();
    // The SDK script's request: R3's, with the role, detection and resource group, and a
    // `+` in an object name (encoded as %2B, not as a space).
    let request = ImportImageRequest {
        role_name: Some("AliyunECSImageImportDefaultRole".into()),
        detection_strategy: Some("Standard".into()),
        resource_group_id: Some("rg-aek2".into()),
        ..r3_request("images/data disk+1.raw")
    };
    let (port, h) = capture(2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = preflight_ecs::Client::new(
        preflight_ecs::ClientConfig::new("cn-hangzhou")
            .with_endpoint(&format!("http://127.0.0.1:{port}")),
        std::sync::Arc::new(preflight_aliyun::CredentialProvider::fixed(
            preflight_aliyun::Credentials::new("testid", "testsecret"),
        )),
    )
    .unwrap();
    let ours = rt
        .block_on(client.import_image(&request, &ImportOptions::default()))
        .unwrap();
    assert!(matches!(ours, preflight_ecs::ImportOutcome::Started(_)));
    let out = Command::new(&py)
        .args(["-c", SDK_SCRIPT, &port.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    assert!(
        out.status.success(),
        "the Python SDK failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = h.join().unwrap();
    let (ours, theirs) = (query_params(&seen[0]), query_params(&seen[1]));
    assert!(ours
        .iter()
        .any(|(k, _)| k == "DiskDeviceMapping.2.OSSObject"));
    assert_eq!(ours, theirs, "\nours:   {}\ntheirs: {}", seen[0], seen[1]);
}
