//! Proof with Alibaba's own SDK: an object our uploader made (300 MiB, 8 MiB parts, 4 in
//! parallel) downloads with oss2 (which checks the CRC-64 itself) byte for byte equal to the
//! source, and its CRC-64 is the source's.

mod common;

use common::*;
use preflight_emulator::{DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
use preflight_oss::upload::upload_file;

const SCRIPT: &str = r#"
import sys, oss2
endpoint, bucket, key, out, ak, sk = sys.argv[1:7]
b = oss2.Bucket(oss2.Auth(ak, sk), endpoint, bucket, enable_crc=True)
r = b.get_object_to_file(key, out)
print(r.headers.get('x-oss-hash-crc64ecma'))
"#;

#[tokio::test]
async fn oss2_downloads_what_we_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    // oss2 signs with V1, so the account must accept it.
    let emu = emulator_accepting_v1(dir.path()).await;
    let c = client(&emu, "images");
    let src = dir.path().join("300m.raw");
    write_file(&src, 300 * MIB, 9);
    let out = upload_file(
        &c,
        &src,
        "300m.raw",
        &options(dir.path(), 8 * MIB, 4),
        recorder().0,
    )
    .await
    .unwrap();
    assert_eq!(out.parts, 38);
    let expected_crc = crc_of_file(&src);
    assert_eq!(out.crc64, expected_crc);

    let dst = dir.path().join("downloaded.raw");
    let py = preflight_testkit::sdk_python();
    let endpoint = emu.endpoint();
    let args: Vec<String> = [
        endpoint.as_str(),
        "images",
        "300m.raw",
        dst.to_str().unwrap(),
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_ACCESS_KEY_SECRET,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let res = tokio::task::spawn_blocking(move || {
        std::process::Command::new(py)
            .arg("-c")
            .arg(SCRIPT)
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        res.status.success(),
        "oss2 failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let server_crc: u64 = String::from_utf8_lossy(&res.stdout).trim().parse().unwrap();
    assert_eq!(server_crc, expected_crc);
    assert_eq!(crc_of_file(&dst), expected_crc);
    assert!(
        std::fs::read(&src).unwrap() == std::fs::read(&dst).unwrap(),
        "bytes differ"
    );
    emu.shutdown().await;
}
