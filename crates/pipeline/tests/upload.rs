//! The rules `upload` runs before sending a byte, against the in-process emulator.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use preflight_emulator::{Config, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
use preflight_pipeline::upload::upload_check;
use preflight_pipeline::Endpoints;

fn qcow2(dir: &Path) -> PathBuf {
    let p = dir.join("sys.qcow2");
    preflight_testkit::qemu::create("qcow2", &p, "5G");
    p
}

fn client(endpoint: &str, region: &str, bucket: &str) -> preflight_oss::Client {
    let creds = Arc::new(preflight_aliyun::CredentialProvider::fixed(
        preflight_aliyun::Credentials::new(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
    ));
    let cfg = Endpoints::emulator(endpoint).oss_config(region, bucket);
    preflight_oss::Client::new(cfg, creds).unwrap()
}

/// The codes `upload_check` finds for `key` in `bucket`, probed from `region`.
async fn codes(endpoint: &str, image: &Path, region: &str, bucket: &str, key: &str) -> Vec<String> {
    let c = client(endpoint, region, bucket);
    let found = upload_check(&c, image, region, key, "qcow2").await.unwrap();
    found.findings.into_iter().map(|f| f.code).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_and_bucket_rules_run_before_any_upload() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::for_tests(dir.path().join("emu"));
    cfg.buckets = vec![
        "images@cn-hangzhou".parse().unwrap(),
        "faraway@cn-beijing".parse().unwrap(),
    ];
    let emu = preflight_emulator::start(cfg).await.unwrap();
    let url = emu.endpoint().to_string();
    let image = qcow2(dir.path());

    let clean = codes(&url, &image, "cn-hangzhou", "images", "sys.qcow2").await;
    assert!(clean.is_empty(), "{clean:?}");
    let c = client(&url, "cn-hangzhou", "images");
    let found = upload_check(&c, &image, "cn-hangzhou", "sys.qcow2", "qcow2")
        .await
        .unwrap();
    assert_eq!(found.bucket.region.as_deref(), Some("cn-hangzhou"));

    // A key naming another format: the suffix rule, with the key to use instead.
    let c = client(&url, "cn-hangzhou", "images");
    let found = upload_check(&c, &image, "cn-hangzhou", "sys.raw", "qcow2")
        .await
        .unwrap();
    let suffix = found
        .findings
        .iter()
        .find(|f| f.code == "UnsupportedSuffix.OSSObject")
        .unwrap_or_else(|| panic!("{:?}", found.findings));
    assert!(
        suffix.hint.contains("--object sys.qcow2"),
        "{}",
        suffix.hint
    );

    let elsewhere = codes(&url, &image, "cn-hangzhou", "faraway", "sys.qcow2").await;
    assert!(
        elsewhere.contains(&"InvalidOSSBucket.NotMatched".to_string()),
        "{elsewhere:?}"
    );
    let missing = codes(&url, &image, "cn-hangzhou", "nobucket", "sys.qcow2").await;
    assert!(
        missing.contains(&"InvalidOSSBucket.NotFound".to_string()),
        "{missing:?}"
    );
    // Only the destination's rules: the image's own (e.g. its size) are check's business.
    for code in clean.iter().chain(&elsewhere).chain(&missing) {
        assert!(
            code.starts_with("InvalidOSS") || code.starts_with("UnsupportedSuffix"),
            "{code}"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_image_is_a_read_error() {
    let c = client("http://127.0.0.1:9", "cn-hangzhou", "images");
    let e = upload_check(
        &c,
        Path::new("/nonexistent.qcow2"),
        "cn-hangzhou",
        "k.qcow2",
        "qcow2",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, preflight_pipeline::PipelineError::Read { .. }),
        "{e}"
    );
}
