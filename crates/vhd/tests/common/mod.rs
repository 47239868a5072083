//! Helpers shared by the integration tests: test data and hashing (qemu-img and the
//! PRNG come from preflight-testkit).
#![allow(dead_code, unused_imports, clippy::cast_possible_truncation)]

use preflight_disk::BlockRead;
use sha2::{Digest, Sha256};
use std::os::unix::fs::FileExt;
use std::path::Path;

pub use preflight_testkit::{qemu, qemu_img, Rng};

/// `virtual-size` from `qemu-img info -f <fmt> --output=json`.
pub fn qemu_virtual_size(fmt: &str, path: &Path) -> u64 {
    preflight_testkit::qemu::virtual_size(fmt, path)
}

/// sha256 of the raw disk qemu-img converts `path` to.
pub fn qemu_raw_sha256(fmt: &str, path: &Path, dir: &Path) -> [u8; 32] {
    let data = qemu::read_as_raw(fmt, path, dir);
    Sha256::digest(&data).into()
}

/// sha256 of the whole guest disk read through `read_at` in `chunk`-byte pieces.
pub fn read_at_sha256(img: &dyn BlockRead, chunk: usize) -> [u8; 32] {
    let mut h = Sha256::new();
    let size = img.size();
    let mut buf = vec![0u8; chunk];
    let mut off = 0u64;
    while off < size {
        let n = usize::try_from((size - off).min(chunk as u64)).unwrap();
        img.read_at(off, &mut buf[..n])
            .unwrap_or_else(|e| panic!("read_at({off}, {n}): {e}"));
        h.update(&buf[..n]);
        off += n as u64;
    }
    h.finalize().into()
}

/// Writes a raw disk of `size` bytes: 64 KiB pieces that are holes, random
/// data, or a few scattered bytes, chosen by `seed`.
pub fn write_raw(path: &Path, size: u64, seed: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut rng = Rng(seed | 1);
    let piece = 64 * 1024u64;
    let mut off = 0;
    while off < size {
        let len = piece.min(size - off);
        match rng.below(4) {
            0 | 1 => {}
            2 => {
                let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                f.write_all_at(&data, off).unwrap();
            }
            _ => {
                for _ in 0..3 {
                    let at = off + rng.below(len);
                    f.write_all_at(&[rng.next() as u8 | 1], at).unwrap();
                }
            }
        }
        off += len;
    }
    // Make sure the first and last sectors hold data.
    f.write_all_at(b"first sector", 0).unwrap();
    f.write_all_at(b"last", size - 4).unwrap();
}
