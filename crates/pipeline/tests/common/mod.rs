//! Setup shared by the pipeline's tests against the in-process emulator: its key, its
//! start, a seeded bucket, an ImportImage job, and an event recorder. Each test file uses
//! what it needs.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use preflight_aliyun::{CredentialProvider, Credentials};
use preflight_emulator::{Config, Emulator, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
use preflight_pipeline::import::ImportJob;
use preflight_pipeline::{Endpoints, Event};
use preflight_rules::{DiskParams, ImportParams};

/// The key every emulator accepts, as a credential provider.
pub fn creds() -> Arc<CredentialProvider> {
    Arc::new(CredentialProvider::fixed(Credentials::new(
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_ACCESS_KEY_SECRET,
    )))
}

/// An emulator keeping its state under `dir/emu`, with `buckets` (`name@region`; none:
/// the emulator's default bucket), and whatever `tune` sets on its configuration.
pub async fn start_emulator(
    dir: &Path,
    buckets: &[&str],
    tune: impl FnOnce(&mut Config),
) -> Emulator {
    let mut cfg = Config::for_tests(dir.join("emu"));
    if !buckets.is_empty() {
        cfg.buckets = buckets.iter().map(|b| b.parse().unwrap()).collect();
    }
    tune(&mut cfg);
    preflight_emulator::start(cfg).await.unwrap()
}

/// An emulator with bucket `images` in cn-hangzhou holding `web.raw` (8 KiB), whose
/// import tasks take `task_seconds`, and which has the import role or not.
pub async fn emulator_with_web_raw(dir: &Path, task_seconds: f64, import_role: bool) -> Emulator {
    emulator_copying(dir, task_seconds, import_role, 0.5).await
}

/// [`emulator_with_web_raw`] whose copies take `copy_seconds`.
pub async fn emulator_copying(
    dir: &Path,
    task_seconds: f64,
    import_role: bool,
    copy_seconds: f64,
) -> Emulator {
    let emu = start_emulator(dir, &["images@cn-hangzhou"], |cfg| {
        cfg.task_seconds = task_seconds;
        cfg.copy_seconds = copy_seconds;
        cfg.import_role = import_role;
    })
    .await;
    let oss = preflight_oss::Client::new(
        Endpoints::emulator(&emu.endpoint()).oss_config("cn-hangzhou", "images"),
        creds(),
    )
    .unwrap();
    // Content-MD5 of 8192 bytes of 0x5a.
    oss.put_object(
        "web.raw",
        vec![0x5a; 8192].into(),
        "UXgm4XqfEGI28QCn2xPgpQ==",
    )
    .await
    .unwrap();
    emu
}

/// The import of `web.raw` (see [`emulator_with_web_raw`]) as `image_name`, polled every
/// 100 ms.
pub fn import_job(emu: &Emulator, image_name: &str) -> ImportJob {
    let params = ImportParams {
        region: Some("cn-hangzhou".into()),
        bucket: Some("images".into()),
        image_name: Some(image_name.into()),
        disks: vec![DiskParams {
            object: Some("web.raw".into()),
            format: Some("RAW".into()),
            disk_image_size: Some(5),
            ..DiskParams::default()
        }],
        ..ImportParams::default()
    };
    let mut job = ImportJob::new(params, creds());
    job.endpoints = Endpoints::emulator(&emu.endpoint());
    job.poll_interval = Duration::from_millis(100);
    job
}

/// An event callback, and every event it saw.
pub fn recorder() -> (
    Arc<Mutex<Vec<Event>>>,
    impl Fn(&Event) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (seen, move |e: &Event| s.lock().unwrap().push(e.clone()))
}
