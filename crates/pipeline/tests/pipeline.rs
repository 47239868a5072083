//! The pipeline as a library, against the in-process emulator over HTTP.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use preflight_emulator::{Config, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
use preflight_pipeline::{Event, ImportParams, Pipeline, PipelineError, Stage, UploadOptions};

fn creds() -> Arc<preflight_aliyun::CredentialProvider> {
    Arc::new(preflight_aliyun::CredentialProvider::fixed(
        preflight_aliyun::Credentials::new(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
    ))
}

fn qcow2(dir: &Path, name: &str, size: &str) -> PathBuf {
    let p = dir.join(name);
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", p.to_str().unwrap(), size])
        .status()
        .expect("qemu-img (run fixtures/install-deps.sh)");
    assert!(st.success());
    p
}

async fn emulator(dir: &Path, import_role: bool) -> preflight_emulator::Emulator {
    let mut cfg = Config::for_tests(dir.join("emu"));
    cfg.buckets = vec![
        "images@cn-hangzhou".parse().unwrap(),
        "faraway@cn-beijing".parse().unwrap(),
    ];
    cfg.task_seconds = 1.0;
    cfg.import_role = import_role;
    preflight_emulator::start(cfg).await.unwrap()
}

fn pipeline(
    dir: &Path,
    endpoint: &str,
    bucket: &str,
    events: Arc<Mutex<Vec<Event>>>,
) -> preflight_pipeline::PipelineBuilder {
    Pipeline::builder()
        .system_disk(qcow2(dir, "sys.qcow2", "5G"))
        .data_disk(qcow2(dir, "data.qcow2", "5G"))
        .region("cn-hangzhou")
        .bucket(bucket)
        .emulator(endpoint)
        .credentials(creds())
        .params(ImportParams {
            image_name: Some("lib-01".into()),
            skip_guest: true,
            ..ImportParams::default()
        })
        .upload_options(UploadOptions {
            checkpoint_dir: dir.join("checkpoints"),
            ..UploadOptions::default()
        })
        .poll_interval(Duration::from_millis(200))
        .on_event(move |e: &Event| events.lock().unwrap().push(e.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_every_stage_and_reports_events() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), true).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let p = pipeline(dir.path(), &emu.endpoint(), "images", events.clone())
        .build()
        .unwrap();
    let out = p.run().await.unwrap();
    assert!(out.image_id.starts_with("m-"));
    assert!(out.task_id.starts_with("t-"));
    assert_eq!(out.region, "cn-hangzhou");
    assert_eq!(out.image.status, "Available");
    assert_eq!(out.image.disk_device_mappings.len(), 2);
    assert_eq!(out.uploads.len(), 2);
    let ev = events.lock().unwrap().clone();
    let stages: Vec<Stage> = ev
        .iter()
        .filter_map(|e| match e {
            Event::StageFinished { stage, .. } => Some(*stage),
            _ => None,
        })
        .collect();
    assert_eq!(
        stages,
        [Stage::Check, Stage::Upload, Stage::Import, Stage::Wait]
    );
    assert!(ev.iter().any(|e| matches!(e, Event::TaskProgress(_))));
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::UploadFinished { .. }))
            .count(),
        2
    );

    // Same inputs again: same image.
    let again = p.run().await.unwrap();
    assert_eq!(again.image_id, out.image_id);
    assert!(again.reused);
    assert_eq!(emu.counters().requests_for("ImportImage"), 2);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_come_before_any_upload() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), false).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let err = pipeline(dir.path(), &emu.endpoint(), "faraway", events.clone())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    let PipelineError::Refused { findings, fix, .. } = &err else {
        panic!("{err:?}");
    };
    let codes: Vec<&str> = findings.iter().map(|f| f.finding.code.as_str()).collect();
    assert!(codes.contains(&"InvalidOSSBucket.NotMatched"), "{codes:?}");
    assert!(codes.contains(&"NoSetRoletoECSServiceAcount"), "{codes:?}");
    assert!(fix.iter().any(|l| l.contains("CreateRole")));
    assert_eq!(err.code(), "PIPELINE.Refused");
    assert!(err.is_refusal());
    for api in [
        "PutObject",
        "InitiateMultipartUpload",
        "UploadPart",
        "ImportImage",
    ] {
        assert_eq!(emu.counters().requests_for(api), 0, "{api}");
    }
    assert!(!events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::UploadStarted { .. })));
    emu.shutdown().await;
}

#[test]
fn the_builder_wants_a_disk_a_region_and_a_bucket() {
    let e = Pipeline::builder()
        .region("r")
        .bucket("b")
        .build()
        .err()
        .unwrap();
    assert_eq!(e.code(), "PIPELINE.Usage");
    let e = Pipeline::builder()
        .system_disk("x")
        .bucket("b")
        .build()
        .err()
        .unwrap();
    assert!(e.to_string().contains("region"), "{e}");
}

/// The example binary (built by `cargo test` next to the test binaries).
fn example() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe
        .parent()?
        .parent()?
        .join("examples")
        .join("upload_and_import");
    p.exists().then_some(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_runs_against_the_emulator() {
    let Some(bin) = example() else {
        eprintln!("the example is not built; skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), true).await;
    let sys = qcow2(dir.path(), "ex.qcow2", "5G");
    let out = tokio::process::Command::new(bin)
        .arg(&sys)
        .args([
            "--bucket",
            "images",
            "--skip-guest",
            "--image-name",
            "ex-01",
        ])
        .env("ECS_PREFLIGHT_EMULATOR", emu.endpoint())
        .env("HOME", dir.path())
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env_remove("ALIBABA_CLOUD_PROFILE")
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ACCESS_KEY_SECRET)
        .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["image_id"].as_str().unwrap().starts_with("m-"), "{v}");
    assert_eq!(v["region"], "cn-hangzhou");
    emu.shutdown().await;
}
