//! Shared helpers: an emulator with the buckets the tests need, clients, files.
#![allow(dead_code, missing_docs)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use preflight_aliyun::{CredentialProvider, Credentials, RetryConfig};
use preflight_emulator::{Config, Emulator, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
use preflight_oss::upload::{EventSink, UploadOptions};
use preflight_oss::{Client, ClientConfig, SignatureVersion, UploadEvent};

pub const MIB: u64 = 1024 * 1024;

pub async fn emulator(dir: &Path) -> Emulator {
    emulator_with(dir, |_| {}).await
}

/// The same emulator for an account created before March 2025, which still accepts V1:
/// only for the tests that check our V1 signing (or use a V1-only SDK such as oss2).
pub async fn emulator_accepting_v1(dir: &Path) -> Emulator {
    emulator_with(dir, |cfg| cfg.strict.v4_only = false).await
}

async fn emulator_with(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Emulator {
    let mut cfg = Config::for_tests(dir.join("emu"));
    cfg.buckets = vec![
        "images@cn-hangzhou".parse().unwrap(),
        "faraway@cn-beijing".parse().unwrap(),
        "vault@cn-hangzhou:encrypted".parse().unwrap(),
    ];
    tweak(&mut cfg);
    preflight_emulator::start(cfg).await.unwrap()
}

pub fn client_with(
    emu: &Emulator,
    bucket: &str,
    version: SignatureVersion,
    tweak: impl FnOnce(&mut ClientConfig),
) -> Client {
    let creds = Arc::new(CredentialProvider::fixed(Credentials::new(
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_ACCESS_KEY_SECRET,
    )));
    let mut cfg = ClientConfig::new("cn-hangzhou", bucket).with_endpoint(emu.endpoint());
    cfg.signature = version;
    // Fast retries: the faults are injected, not real outages.
    cfg.retry = RetryConfig {
        max_attempts: 20,
        base_delay: std::time::Duration::from_millis(5),
        max_delay: std::time::Duration::from_millis(50),
    };
    tweak(&mut cfg);
    Client::new(cfg, creds).unwrap()
}

pub fn client(emu: &Emulator, bucket: &str) -> Client {
    client_with(emu, bucket, SignatureVersion::V4, |_| {})
}

/// Deterministic pseudo-random bytes (incompressible, every part different).
pub fn write_file(path: &Path, len: u64, seed: u64) {
    preflight_testkit::Rng::write_file(path, len, seed);
}

pub fn options(dir: &Path, part: u64, parallel: usize) -> UploadOptions {
    UploadOptions {
        part_size: Some(part),
        parallel,
        multipart_threshold: part,
        checkpoint_dir: dir.join("checkpoints"),
        ..UploadOptions::default()
    }
}

/// An event sink that records everything.
pub fn recorder() -> (EventSink, Arc<Mutex<Vec<UploadEvent>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    (Arc::new(move |e| l.lock().unwrap().push(e)), log)
}

pub fn crc_of_file(path: &Path) -> u64 {
    preflight_oss::crc::crc64(&std::fs::read(path).unwrap())
}
