//! Shared test helpers: fixture building and inspection of image files.
#![allow(dead_code)]

use preflight_disk::raw::RawImage;
use preflight_disk::FileSource;
use preflight_guest::GuestReport;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

/// Runs `cmd ARGS`, fails the test with its stderr unless it succeeds; its stdout.
pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where the fixture scripts leave their images (kept between runs).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guest-fixtures")
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/guest")
        .join(name)
}

/// Runs a fixture script (idempotent, locked) once per test binary.
pub fn build(name: &str, cell: &'static OnceLock<PathBuf>) -> PathBuf {
    cell.get_or_init(|| {
        let out = fixtures_dir();
        let st = Command::new("bash")
            .arg(script(name))
            .arg(&out)
            .status()
            .expect("run fixture script");
        assert!(st.success(), "{name} failed");
        out
    })
    .clone()
}

static DEBIAN: OnceLock<PathBuf> = OnceLock::new();

/// Builds (or finds) the Debian images; returns their directory.
pub fn debian() -> PathBuf {
    build("build-debian.sh", &DEBIAN)
}

static WINDOWS: OnceLock<PathBuf> = OnceLock::new();

/// Builds (or finds) the Windows-shaped images.
pub fn windows() -> PathBuf {
    build("build-windows.sh", &WINDOWS)
}

static SMALL: OnceLock<PathBuf> = OnceLock::new();

/// Builds (or finds) the small synthetic images.
pub fn small() -> PathBuf {
    build("build-small.sh", &SMALL)
}

pub fn inspect_raw(path: &Path) -> GuestReport {
    let src = FileSource::open(path).expect("open image");
    let img = RawImage::new(Arc::new(src));
    preflight_guest::inspect(&img)
}

pub fn codes(r: &GuestReport) -> Vec<String> {
    r.findings.iter().map(|f| f.code.clone()).collect()
}

pub fn has(r: &GuestReport, code: &str) -> bool {
    r.findings.iter().any(|f| f.code == code)
}

/// KEY=VALUE lines of facts.env.
pub fn facts_env(dir: &Path) -> std::collections::HashMap<String, String> {
    std::fs::read_to_string(dir.join("facts.env"))
        .expect("facts.env")
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Output of a command, which must succeed.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
