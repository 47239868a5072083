//! Conformance with Alibaba's official Python SDKs (oss2, aliyun-python-sdk-core/-ecs,
//! alibabacloud-ecs20140526): the scripts in tests/sdk run against an in-process emulator and
//! must succeed, including their wrong-secret checks.

mod common;

use preflight_emulator::{
    AccessKey, BucketConfig, Product, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET,
};

fn base_args(endpoint: &str) -> Vec<String> {
    vec![
        "--endpoint".into(),
        endpoint.into(),
        "--ak".into(),
        DEFAULT_ACCESS_KEY_ID.into(),
        "--sk".into(),
        DEFAULT_ACCESS_KEY_SECRET.into(),
        "--bucket".into(),
        "ecs-preflight".into(),
        "--region".into(),
        "cn-hangzhou".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss2_conformance() {
    let (emu, dir) = common::start_with(|c| {
        c.access_keys = vec![
            AccessKey::default_pair(),
            AccessKey {
                id: "STS.emulator".into(),
                secret: "sts-secret".into(),
                security_token: Some("CAIS-emulator-token".into()),
                deny: Vec::new(),
            },
        ];
        c.buckets.push(BucketConfig {
            name: "vault".into(),
            region: "cn-hangzhou".into(),
            encrypted: true,
            v4_only: false,
            storage_class: None,
        });
        // oss_sdk.py checks oss2's V1 signer, and V1 refused only on the v4only bucket.
        c.strict.v4_only = false;
        c.buckets
            .push("locked@cn-hangzhou:v4only".parse::<BucketConfig>().unwrap());
        c.buckets.push(
            "cold-sdk@cn-hangzhou:archive"
                .parse::<BucketConfig>()
                .unwrap(),
        );
        c.restore_seconds = 1.0;
    })
    .await;
    let mut args = base_args(&emu.endpoint());
    args.extend(
        [
            "--encrypted-bucket",
            "vault",
            "--sts-ak",
            "STS.emulator",
            "--sts-sk",
            "sts-secret",
            "--sts-token",
            "CAIS-emulator-token",
            "--v4only-bucket",
            "locked",
            "--archive-bucket",
            "cold-sdk",
            "--workdir",
        ]
        .map(String::from),
    );
    args.push(dir.path().display().to_string());
    let (ok, out) = common::run_script("oss_sdk.py", args).await;
    println!("{out}");
    assert!(ok, "oss_sdk.py failed:\n{out}");
    let c = emu.counters();
    assert!(c.requests_for("UploadPart") >= 11, "{c:?}");
    assert!(c.requests_for("CompleteMultipartUpload") >= 2);
    assert!(c.errors_for("SignatureDoesNotMatch") >= 3);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_sdk_conformance() {
    // Copies take 5 s: long enough for the script to cancel one still in progress.
    let (emu, _dir) = common::start_with(|c| {
        c.task_seconds = 2.0;
        c.copy_seconds = 5.0;
    })
    .await;
    let mut args = base_args(&emu.endpoint());
    args.extend(["--timeout".to_string(), "30".to_string()]);
    let (ok, out) = common::run_script("ecs_sdk.py", args).await;
    println!("{out}");
    assert!(ok, "ecs_sdk.py failed:\n{out}");
    let c = emu.counters();
    assert!(c.requests_for("ImportImage") >= 6, "{c:?}");
    assert!(c.requests_for("GetRole") >= 2);
    assert!(c.requests_for("CopyImage") >= 4, "{c:?}");
    assert!(c.requests_for("CancelCopyImage") >= 4, "{c:?}");
    assert!(c.requests_for("DescribeImageSharePermission") >= 1, "{c:?}");
    assert!(c.errors_for("IncompleteSignature") >= 1);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_sdk_without_import_role() {
    let (emu, _dir) = common::start_with(|c| c.import_role = false).await;
    let mut args = base_args(&emu.endpoint());
    args.push("--expect-no-role".into());
    let (ok, out) = common::run_script("ecs_sdk.py", args).await;
    println!("{out}");
    assert!(ok, "ecs_sdk.py --expect-no-role failed:\n{out}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_sdks_on_service_endpoints_with_a_denied_key() {
    let (emu, _dir) = common::start_with(|c| {
        c.service_endpoints = true;
        c.strict.service_endpoints = true;
        c.access_keys.push(AccessKey {
            id: "LTAI5tDeniedKey".into(),
            secret: DEFAULT_ACCESS_KEY_SECRET.into(),
            security_token: None,
            deny: vec!["ecs:DescribeImages".into(), "ram:GetRole".into()],
        });
    })
    .await;
    let mut args = base_args(&emu.endpoint());
    args.extend([
        "--ecs-endpoint".to_string(),
        emu.service_endpoint(Product::Ecs).unwrap(),
        "--ram-endpoint".to_string(),
        emu.service_endpoint(Product::Ram).unwrap(),
        "--denied-ak".to_string(),
        "LTAI5tDeniedKey".to_string(),
        "--service-checks-only".to_string(),
    ]);
    let (ok, out) = common::run_script("ecs_sdk.py", args).await;
    println!("{out}");
    assert!(ok, "ecs_sdk.py --service-checks-only failed:\n{out}");
    let c = emu.counters();
    assert!(c.errors_for("InvalidVersion") >= 2, "{c:?}");
    assert!(c.errors_for("Forbidden.RAM") >= 1, "{c:?}");
    assert!(c.errors_for("NoPermission") >= 1, "{c:?}");
    emu.shutdown().await;
}
