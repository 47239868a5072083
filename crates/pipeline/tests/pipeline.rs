//! The pipeline as a library, against the in-process emulator over HTTP.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::{creds, start_emulator};
use preflight_pipeline::{
    Event, ImportParams, Pipeline, PipelineError, RunEnd, Stage, UploadOptions,
};

// The example's own code: the test runs it whichever targets cargo built.
#[allow(dead_code)]
#[path = "../examples/upload_and_import.rs"]
mod upload_and_import_example;

fn qcow2(dir: &Path, name: &str, size: &str) -> PathBuf {
    let p = dir.join(name);
    preflight_testkit::qemu::create("qcow2", &p, size);
    p
}

async fn emulator(dir: &Path, import_role: bool) -> preflight_emulator::Emulator {
    start_emulator(dir, &["images@cn-hangzhou", "faraway@cn-beijing"], |cfg| {
        cfg.task_seconds = 1.0;
        cfg.import_role = import_role;
    })
    .await
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_uploads_and_imports_against_the_emulator_with_progress() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), true).await;
    let sys = qcow2(dir.path(), "ex.qcow2", "5G");
    let args = [
        sys.display().to_string(),
        "--emulator".into(),
        emu.endpoint().to_string(),
        "--bucket".into(),
        "images".into(),
        "--skip-guest".into(),
        "--image-name".into(),
        "ex-01".into(),
    ];
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    // The example's builder, with test credentials and checkpoints, its lines collected.
    let outcome = upload_and_import_example::builder_for(args)
        .unwrap()
        .credentials(creds())
        .upload_options(UploadOptions {
            checkpoint_dir: dir.path().join("checkpoints"),
            ..UploadOptions::default()
        })
        .on_event(move |e: &Event| {
            seen.lock()
                .unwrap()
                .extend(upload_and_import_example::progress_line(e))
        })
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert!(outcome.image_id.starts_with("m-"), "{outcome:?}");
    assert_eq!(outcome.region, "cn-hangzhou");
    let lines = lines.lock().unwrap().clone();
    for stage in ["== check", "== upload", "== import", "== wait"] {
        assert!(lines.iter().any(|l| l == stage), "{stage}: {lines:#?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("image {}", outcome.image_id))),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("disk 0 uploaded, ETag")),
        "{lines:#?}"
    );
    emu.shutdown().await;
}

#[test]
fn the_example_needs_a_disk() {
    let usage = upload_and_import_example::builder_for(Vec::<String>::new())
        .err()
        .unwrap();
    assert!(usage.starts_with("usage:"), "{usage}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_returns_once_importing_and_a_stop_while_waiting_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), true).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    // Not waiting: back as soon as ImportImage answered.
    let p = pipeline(dir.path(), &emu.endpoint(), "images", events.clone())
        .build()
        .unwrap();
    let end = p
        .run_until(false, false, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Importing { image_id, task_id } = end else {
        panic!("{end:?}");
    };
    assert!(image_id.starts_with("m-") && task_id.starts_with("t-"));

    // A stop once the wait began: CancelTask for the task that run started.
    let waiting = Arc::new(tokio::sync::Notify::new());
    let w = waiting.clone();
    let p = pipeline(dir.path(), &emu.endpoint(), "images", events.clone())
        .params(ImportParams {
            image_name: Some("lib-02".into()),
            skip_guest: true,
            ..ImportParams::default()
        })
        .on_event(move |e: &Event| {
            if matches!(e, Event::WaitStarted { .. }) {
                w.notify_one();
            }
        })
        .build()
        .unwrap();
    let end = p
        .run_until(true, false, async move { waiting.notified().await })
        .await
        .unwrap();
    let RunEnd::Cancelled { error, .. } = end else {
        panic!("{end:?}");
    };
    assert!(error.is_none(), "{error:?}");
    assert_eq!(emu.counters().requests_for("CancelTask"), 1);

    // A stop before any import: nothing to cancel, the upload resumes on the next run.
    let p = pipeline(dir.path(), &emu.endpoint(), "images", events)
        .build()
        .unwrap();
    let end = p.run_until(true, false, async {}).await.unwrap();
    assert!(matches!(end, RunEnd::Interrupted), "{end:?}");
    assert_eq!(emu.counters().requests_for("CancelTask"), 1);
    emu.shutdown().await;
}

/// `run_until`'s stop between CopyImage's answer and the CopyStarted event (while the copy's
/// liveness is checked, every answer slowed down) still cancels the copy: the copy step
/// records it from CopyImage's answer, not from the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_cancels_a_copy_stopped_before_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Arc::new(
        start_emulator(dir.path(), &["images@cn-hangzhou"], |cfg| {
            cfg.task_seconds = 0.3;
            cfg.copy_seconds = 60.0;
            cfg.import_role = true;
        })
        .await,
    );
    let events = Arc::new(Mutex::new(Vec::new()));
    let (seen, slow) = (events.clone(), emu.clone());
    let p = pipeline(dir.path(), &emu.endpoint(), "images", events.clone())
        .fleet(preflight_pipeline::fleet::FleetPlan {
            copy_regions: vec!["cn-beijing".into()],
            copy_names: vec!["lib-01-bj".into()],
            share_accounts: Vec::new(),
        })
        .on_event(move |e: &Event| {
            // Before the copy step sends anything: every answer from now on takes 400 ms.
            if matches!(e, Event::StageStarted(Stage::Copy)) {
                slow.set_faults(preflight_emulator::Faults {
                    delay_ms: 400,
                    ..preflight_emulator::Faults::default()
                });
            }
            seen.lock().unwrap().push(e.clone());
        })
        .build()
        .unwrap();
    let counted = emu.clone();
    let stop = async move {
        while counted.counters().requests_for("CopyImage") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let end = p.run_until(true, false, stop).await.unwrap();
    drop(p);
    let RunEnd::InterruptedCopying { copies, .. } = end else {
        panic!("{end:?}");
    };
    assert!(
        !events.lock().unwrap().iter().any(|e| matches!(
            e,
            Event::Fleet(preflight_pipeline::fleet::FleetEvent::CopyStarted { .. })
        )),
        "the stop came after CopyStarted, not before"
    );
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(
        copies[0].state,
        preflight_pipeline::fleet::CopyStopState::Cancelled,
        "{copies:?}"
    );
    assert_eq!(emu.counters().requests_for("CancelCopyImage"), 1);
    Arc::try_unwrap(emu).unwrap().shutdown().await;
}
