//! Helpers shared by the integration tests: qemu-img check codes, source data, hashes
//! of guest reads (qemu-img, qemu-io and the PRNG come from preflight-testkit).
#![allow(dead_code)]

use preflight_disk::{BlockRead, DiskImage, FileSource};
use preflight_qcow2::Qcow2Image;
use preflight_report::Finding;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use preflight_testkit::{qemu_img, Rng};

/// Exit code of `qemu-img check` on `path`: 0 clean, 1 corrupt, 2 leaks, 3 both.
pub fn qemu_check_rc(path: &Path) -> i32 {
    preflight_testkit::qemu::check_code("qcow2", path)
}

/// Runs qemu-io commands on a qcow2 image; panics if qemu-io fails.
pub fn qemu_io(path: &Path, cmds: &[&str]) {
    preflight_testkit::qemu_io("qcow2", path, cmds);
}

/// Writes a raw image of `size` bytes (a multiple of 1 MiB, at least 4 MiB):
/// random data, repeated text (compresses well), zeros, random again, and a
/// few bytes at the very end.
pub fn make_raw(path: &Path, size: usize) {
    let mb = 1 << 20;
    let mut data = vec![0u8; size];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    rng.fill(&mut data[..mb + 12345]);
    let text = b"ecs-preflight checks images before they are imported. ";
    for (i, b) in data[2 * mb..3 * mb].iter_mut().enumerate() {
        *b = text[i % text.len()];
    }
    rng.fill(&mut data[3 * mb + 777..3 * mb + 777 + 300_000]);
    let n = data.len();
    data[n - 100..].copy_from_slice(&[0x5a; 100]);
    std::fs::write(path, data).unwrap();
}

/// Opens an image file with our parser.
pub fn open(path: &Path) -> Result<Qcow2Image, Finding> {
    preflight_qcow2::open(Arc::new(FileSource::open(path).unwrap()))
}

/// sha256 of the whole guest disk, read in odd-sized chunks.
pub fn sha_guest(img: &dyn BlockRead) -> String {
    let sizes = [4097usize, 65537, 511, 1_000_003, 12345, 1, 2 << 20];
    let mut h = Sha256::new();
    let mut off = 0u64;
    let mut i = 0;
    let size = img.size();
    let mut buf = Vec::new();
    while off < size {
        let n = sizes[i % sizes.len()].min(usize::try_from(size - off).unwrap());
        buf.resize(n, 0);
        img.read_at(off, &mut buf)
            .unwrap_or_else(|e| panic!("read at {off}: {e}"));
        h.update(&buf);
        off += n as u64;
        i += 1;
    }
    hex(&h.finalize())
}

/// sha256 of a file.
pub fn sha_file(path: &Path) -> String {
    hex(&Sha256::digest(std::fs::read(path).unwrap()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// sha256 of what qemu-img reads from the image (converted to raw).
pub fn sha_qemu(path: &Path, dir: &Path) -> String {
    let raw = dir.join("qemu-out.raw");
    qemu_img(&[
        "convert",
        "-O",
        "raw",
        path.to_str().unwrap(),
        raw.to_str().unwrap(),
    ]);
    let s = sha_file(&raw);
    std::fs::remove_file(raw).unwrap();
    s
}

/// `qemu-img info --output=json`.
pub fn info_json(path: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["info", "--output=json"];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    serde_json::from_str(&qemu_img(&args)).unwrap()
}

/// Asserts that our info agrees with qemu-img info.
pub fn assert_info(img: &Qcow2Image, j: &serde_json::Value) {
    let info = img.info();
    assert_eq!(info.format.as_str(), "qcow2");
    assert_eq!(
        Some(info.virtual_size),
        j["virtual-size"].as_u64(),
        "virtual-size"
    );
    assert_eq!(
        info.cluster_size,
        j["cluster-size"].as_u64(),
        "cluster-size"
    );
    let data = &j["format-specific"]["data"];
    assert_eq!(info.version.as_deref(), data["compat"].as_str(), "compat");
    assert_eq!(
        info.backing_file.as_deref(),
        j["backing-filename"].as_str(),
        "backing-filename"
    );
    let encrypted = j["encrypted"].as_bool().unwrap_or(false);
    assert_eq!(info.encryption.is_some(), encrypted, "encrypted");
    let has = |f: &str| info.features.iter().any(|x| x == f);
    assert_eq!(
        has("extended_l2"),
        data["extended-l2"].as_bool().unwrap_or(false)
    );
    assert_eq!(
        has("lazy_refcounts"),
        data["lazy-refcounts"].as_bool().unwrap_or(false)
    );
    assert_eq!(
        has("compression_zstd"),
        data["compression-type"].as_str() == Some("zstd")
    );
    assert_eq!(has("dirty"), j["dirty-flag"].as_bool().unwrap_or(false));
    assert_eq!(has("corrupt"), data["corrupt"].as_bool().unwrap_or(false));
}

/// Codes of a list of findings.
pub fn codes(f: &[Finding]) -> Vec<String> {
    f.iter().map(|x| x.code.clone()).collect()
}

/// A path in `dir` as a String.
pub fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// A path as &str.
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}
