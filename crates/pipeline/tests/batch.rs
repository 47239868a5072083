//! The batch scheduler against the in-process emulator: the upload and import limits hold
//! across images, and a failing image never stops the others.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::{creds, start_emulator};
use preflight_pipeline::batch::{run_batch, BatchJob, BatchOptions, ImageResult, Manifest};
use preflight_pipeline::{Event, Stage, UploadOptions};

fn qcow2(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    preflight_testkit::qemu::create("qcow2", &p, "5G");
    p
}

/// The most images that were between `from` starting and `to` finishing at one time.
fn most_at_once(events: &[(usize, Event)], from: Stage, to: Stage) -> usize {
    let (mut now, mut most) = (0usize, 0usize);
    for (_, e) in events {
        match e {
            Event::StageStarted(s) if *s == from => {
                now += 1;
                most = most.max(now);
            }
            Event::StageFinished { stage, .. } if *stage == to => now -= 1,
            _ => {}
        }
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_images_and_a_failure_stops_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(dir.path(), &["images@cn-hangzhou"], |cfg| {
        cfg.task_seconds = 0.6;
        cfg.import_role = true;
    })
    .await;
    for n in ["a.qcow2", "b.qcow2", "c.qcow2", "d.qcow2"] {
        qcow2(dir.path(), n);
    }
    // d has no OS and its guest is inspected: refused by the check.
    let text = "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"images\"\nskip_guest = true\n\
        [[image]]\npath = \"a.qcow2\"\nimage_name = \"a-01\"\n\
        [[image]]\npath = \"b.qcow2\"\nimage_name = \"b-01\"\n\
        [[image]]\npath = \"d.qcow2\"\nimage_name = \"d-01\"\nskip_guest = false\n\
        [[image]]\npath = \"c.qcow2\"\nimage_name = \"c-01\"\n";
    let manifest = Manifest::parse(text, &dir.path().join("m.toml")).unwrap();
    let creds = creds();
    let jobs = manifest
        .images
        .iter()
        .map(|i| BatchJob {
            name: i.name.clone(),
            region: i.region().to_string(),
            builder: i
                .builder()
                .emulator(&emu.endpoint())
                .credentials(creds.clone())
                .upload_options(UploadOptions {
                    checkpoint_dir: dir.path().join("checkpoints"),
                    ..UploadOptions::default()
                })
                .poll_interval(Duration::from_millis(100)),
        })
        .collect();
    let events: Arc<Mutex<Vec<(usize, Event)>>> = Arc::default();
    let sink = events.clone();
    let options = BatchOptions {
        parallel: 4,
        max_uploads: 1,
        max_imports: 2,
    };
    let report = run_batch(
        jobs,
        &options,
        Arc::new(move |i, e: &Event| sink.lock().unwrap().push((i, e.clone()))),
        std::future::pending(),
    )
    .await;
    assert!(!report.interrupted);
    for (i, r) in report.results.iter().enumerate() {
        match (i, r) {
            (2, ImageResult::Failed(e)) => assert!(e.is_refusal(), "{e}"),
            (2, other) => panic!("d-01 should be refused: {other:?}"),
            (_, ImageResult::Available(o)) => assert_eq!(o.image.status, "Available"),
            (_, other) => panic!("image {i}: {other:?}"),
        }
    }
    let events = events.lock().unwrap().clone();
    assert_eq!(most_at_once(&events, Stage::Upload, Stage::Upload), 1);
    let imports = most_at_once(&events, Stage::Import, Stage::Wait);
    assert!((1..=2).contains(&imports), "{imports} imports at once");
    assert_eq!(emu.counters().requests_for("ImportImage"), 3);
    emu.shutdown().await;
}
