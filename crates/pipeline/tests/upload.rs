//! The rules `upload` runs before sending a byte, against the in-process emulator.

use std::path::{Path, PathBuf};
use std::sync::Arc;

mod common;

use common::{creds, recorder, start_emulator};
use preflight_pipeline::upload::upload_check;
use preflight_pipeline::Endpoints;

fn qcow2(dir: &Path) -> PathBuf {
    let p = dir.join("sys.qcow2");
    preflight_testkit::qemu::create("qcow2", &p, "5G");
    p
}

fn client(endpoint: &str, region: &str, bucket: &str) -> preflight_oss::Client {
    let cfg = Endpoints::emulator(endpoint).oss_config(region, bucket);
    preflight_oss::Client::new(cfg, creds()).unwrap()
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
    let emu = emulator(dir.path()).await;
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

// The `upload` use case end to end against the in-process emulator: no binary is spawned.

use preflight_emulator::Faults;
use preflight_oss::UploadEvent;
use preflight_pipeline::{ConvertMode, Event, ImageUpload, PipelineError};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// `size` bytes no two runs of which compress away (a raw disk full of data).
fn data_image(dir: &Path, name: &str, size: u64) -> PathBuf {
    let p = dir.join(name);
    preflight_testkit::Rng::write_file(&p, size, 0x9E37_79B9_7F4A_7C15);
    p
}

/// `image` to `bucket` in cn-hangzhou at the emulator, in 256 KiB parts, one at a time.
fn job(url: &str, dir: &Path, image: &Path, bucket: &str) -> ImageUpload {
    let mut job = ImageUpload::new(image, "cn-hangzhou", bucket, creds());
    job.endpoints = Endpoints::emulator(url);
    job.convert = ConvertMode::None;
    job.options.checkpoint_dir = dir.join("checkpoints");
    job.options.part_size = Some(256 * KIB);
    job.options.multipart_threshold = MIB;
    job.options.parallel = 1;
    job
}

fn parts_done(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Upload {
                    event: UploadEvent::PartDone { .. },
                    ..
                }
            )
        })
        .count()
}

/// An emulator with buckets `images` (cn-hangzhou) and `faraway` (cn-beijing).
async fn emulator(dir: &Path) -> preflight_emulator::Emulator {
    start_emulator(dir, &["images@cn-hangzhou", "faraway@cn-beijing"], |_| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_upload_is_verified_and_a_rerun_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let image = data_image(dir.path(), "disk.raw", 3 * MIB);
    let job = job(&emu.endpoint(), dir.path(), &image, "images");

    let (seen, on_event) = recorder();
    let out = job.run(on_event).await.unwrap();
    let crc = preflight_oss::crc::crc64(&std::fs::read(&image).unwrap());
    assert_eq!(
        (
            out.object.key.as_str(),
            out.object.size,
            out.object.crc64,
            out.object.parts,
            out.object.parts_sent
        ),
        ("disk.raw", 3 * MIB, crc, 12, 12)
    );
    assert_eq!(
        (out.object.parts_reused, out.object.already_there),
        (0, false)
    );
    assert_eq!(out.format, "raw");
    assert!(out.findings.is_empty(), "{:?}", out.findings);
    assert_eq!(out.bucket_facts.region.as_deref(), Some("cn-hangzhou"));
    assert_eq!(emu.counters().requests_for("UploadPart"), 12);

    // The events, in the order a progress display needs them.
    let seen = seen.lock().unwrap().clone();
    let kinds: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Credentials(_) => Some("credentials"),
            Event::DestinationChecked { .. } => Some("checked"),
            Event::PartBuffers { .. } => Some("memory"),
            Event::UploadStarted { .. } => Some("started"),
            Event::UploadFinished { .. } => Some("finished"),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        ["credentials", "checked", "memory", "started", "finished"]
    );
    assert_eq!(parts_done(&seen), 12);
    assert!(seen.contains(&Event::PartBuffers {
        disk: 0,
        bytes: 256 * KIB,
        parallel: 1
    }));

    // The same object again: compared by size and CRC-64, nothing sent.
    emu.reset_counters();
    let again = job.run(|_: &Event| {}).await.unwrap();
    assert!(again.object.already_there);
    assert_eq!(again.object.crc64, crc);
    let n = emu.counters();
    assert_eq!(
        n.requests_for("UploadPart") + n.requests_for("PutObject"),
        0
    );
    emu.shutdown().await;
}

/// Dropping the future is the cancellation: the next run resumes from the checkpoint and
/// sends only the parts OSS lacks; `abort` then finds nothing left to cancel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_upload_resumes_on_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let image = data_image(dir.path(), "disk.raw", 3 * MIB);
    let job = job(&emu.endpoint(), dir.path(), &image, "images");
    // 256 KiB parts at 1 MiB/s: a quarter of a second each, so the cancel lands mid-upload.
    emu.set_faults(Faults {
        bandwidth_bytes_per_sec: MIB,
        ..Faults::default()
    });
    let third_part = Arc::new(tokio::sync::Notify::new());
    let (seen, record) = recorder();
    let on_event = {
        let (third_part, seen) = (third_part.clone(), seen.clone());
        move |e: &Event| {
            record(e);
            if parts_done(&seen.lock().unwrap()) == 3 {
                third_part.notify_one();
            }
        }
    };
    tokio::select! {
        r = job.run(on_event) => panic!("finished before the cancel: {r:?}"),
        _ = third_part.notified() => {}
    }
    emu.set_faults(Faults::default());
    // Requests the cancelled run had written may still be in the emulator's socket buffers:
    // let it take them before counting the rerun's, or a loaded machine counts them twice.
    let mut last = u64::MAX;
    for _ in 0..100 {
        let now = emu.counters().requests_for("UploadPart");
        if now == last {
            break;
        }
        last = now;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let stored = emu.counters().parts.iter().filter(|p| p.stored > 0).count();
    assert!((3..12).contains(&stored), "{stored} parts stored");

    emu.reset_counters();
    let (seen, on_event) = recorder();
    let out = job.run(on_event).await.unwrap();
    assert!(out.object.parts_reused >= 3, "{out:?}");
    assert_eq!(out.object.parts_sent + out.object.parts_reused, 12);
    let crc = preflight_oss::crc::crc64(&std::fs::read(&image).unwrap());
    assert_eq!(out.object.crc64, crc);
    let n = emu.counters();
    assert_eq!(n.requests_for("InitiateMultipartUpload"), 0);
    assert_eq!(
        n.requests_for("UploadPart"),
        u64::from(out.object.parts_sent)
    );
    assert!(seen.lock().unwrap().iter().any(|e| matches!(
        e,
        Event::Upload {
            event: UploadEvent::Resuming { .. },
            ..
        }
    )));
    let none = job.abort(|_: &Event| {}).await.unwrap();
    assert!(none.aborted.is_empty(), "{none:?}");
    emu.shutdown().await;
}

/// `abort` cancels the interrupted upload recorded here and deletes its parts; run again it
/// finds none, and says OSS has nothing in progress for the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_cancels_the_interrupted_upload() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let image = data_image(dir.path(), "disk.raw", 2 * MIB);
    let job = job(&emu.endpoint(), dir.path(), &image, "images");
    emu.set_faults(Faults {
        bandwidth_bytes_per_sec: MIB,
        ..Faults::default()
    });
    let first_part = Arc::new(tokio::sync::Notify::new());
    let on_event = {
        let first_part = first_part.clone();
        move |e: &Event| {
            if let Event::Upload {
                event: UploadEvent::PartDone { .. },
                ..
            } = e
            {
                first_part.notify_one();
            }
        }
    };
    tokio::select! {
        r = job.run(on_event) => panic!("finished before the cancel: {r:?}"),
        _ = first_part.notified() => {}
    }
    emu.set_faults(Faults::default());

    let (seen, on_event) = recorder();
    let done = job.abort(on_event).await.unwrap();
    assert_eq!(done.aborted.len(), 1, "{done:?}");
    assert_eq!(done.aborted[0].key, "disk.raw");
    assert!(done.not_recorded.is_empty());
    assert!(matches!(
        seen.lock().unwrap().first(),
        Some(Event::Credentials(_))
    ));
    assert_eq!(emu.counters().requests_for("AbortMultipartUpload"), 1);

    let again = job.abort(|_: &Event| {}).await.unwrap();
    assert!(again.aborted.is_empty());
    // The file name and its .qcow2 twin (a converted run's key) are both looked at.
    let keys: Vec<&str> = again.not_recorded.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["disk.raw", "disk.qcow2"]);
    assert!(again.not_recorded.iter().all(|k| k.on_oss.is_empty()));

    // A fresh run starts a new upload.
    emu.reset_counters();
    let out = job.run(|_: &Event| {}).await.unwrap();
    assert_eq!((out.object.parts_sent, out.object.parts_reused), (8, 0));
    assert_eq!(emu.counters().requests_for("InitiateMultipartUpload"), 1);
    emu.shutdown().await;
}

/// A bucket in another region: refused with the rule's finding, and not a byte sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_destination_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let image = data_image(dir.path(), "disk.raw", 2 * MIB);
    let job = job(&emu.endpoint(), dir.path(), &image, "faraway");

    let (seen, on_event) = recorder();
    let e = job.run(on_event).await.unwrap_err();
    let PipelineError::Refused { findings, plan, .. } = &e else {
        panic!("{e}")
    };
    let codes: Vec<&str> = findings.iter().map(|f| f.finding.code.as_str()).collect();
    assert_eq!(codes, ["InvalidOSSBucket.NotMatched"], "{e}");
    assert_eq!(
        plan.disk_device_mappings[0].oss_object.as_deref(),
        Some("disk.raw")
    );
    let seen = seen.lock().unwrap().clone();
    let checked = seen.iter().find_map(|e| match e {
        Event::DestinationChecked { key, findings, .. } => Some((key.clone(), findings.len())),
        _ => None,
    });
    assert_eq!(checked, Some(("disk.raw".to_string(), 1)));
    assert!(!seen
        .iter()
        .any(|e| matches!(e, Event::UploadStarted { .. })));
    let n = emu.counters();
    let sent: u64 = ["PutObject", "InitiateMultipartUpload", "UploadPart"]
        .iter()
        .map(|api| n.requests_for(api))
        .sum();
    assert_eq!(sent, 0);

    // A file that is not there: a read error, before any request.
    emu.reset_counters();
    let gone = job_for_missing(&emu.endpoint(), dir.path());
    let e = gone.run(|_: &Event| {}).await.unwrap_err();
    assert!(matches!(e, PipelineError::Read { .. }), "{e}");
    assert!(emu.counters().requests.is_empty());
    emu.shutdown().await;
}

fn job_for_missing(url: &str, dir: &Path) -> ImageUpload {
    job(url, dir, &dir.join("missing.raw"), "images")
}
