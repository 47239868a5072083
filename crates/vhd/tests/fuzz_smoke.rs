//! Smoke fuzzing: a few thousand deterministic pseudo-random mutations of a
//! real qemu-made image go through open, info, check and read_at without a
//! panic, and findings always carry a code. The same body as
//! `fuzz/fuzz_targets/vhd.rs`, which runs it under libFuzzer.
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::*;
use preflight_disk::{BlockRead, DiskImage, Source};
use std::io;
use std::sync::Arc;

/// The base image with a few bytes overwritten and maybe truncated, without
/// copying the base.
struct Mutated {
    base: Arc<Vec<u8>>,
    patches: Vec<(u64, u8)>,
    len: u64,
}

impl Source for Mutated {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.len);
        let end = end.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "past end"))?;
        self.base.as_slice().read_exact_at(offset, buf)?;
        for &(at, v) in &self.patches {
            if at >= offset && at < end {
                buf[(at - offset) as usize] = v;
            }
        }
        Ok(())
    }
}

/// Returns whether something was reported: open failed or check found a problem.
fn exercise(src: Arc<dyn Source>) -> bool {
    match preflight_vhd::open(src) {
        Err(f) => {
            assert!(f.is_error() && !f.code.is_empty());
            true
        }
        Ok(img) => {
            let _ = img.info();
            let findings = img.check();
            for f in &findings {
                assert!(!f.code.is_empty() && !f.message.is_empty());
            }
            let size = img.size();
            let mut buf = vec![0u8; 70_000];
            for off in [
                0,
                size / 3,
                size.saturating_sub(1),
                size.saturating_sub(70_000),
                size,
            ] {
                let len = (size - off.min(size)).min(70_000) as usize;
                let _ = img.read_at(off, &mut buf[..len]);
            }
            assert!(img.read_at(size, &mut buf[..1]).is_err());
            !findings.is_empty()
        }
    }
}

#[test]
fn mutations_of_a_real_image_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    write_raw(&raw, 6 << 20, 21);
    let vhd = dir.path().join("d.vhd");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vpc",
        "-o",
        "subformat=dynamic,force_size=on",
        raw.to_str().unwrap(),
        vhd.to_str().unwrap(),
    ]);
    let base = Arc::new(std::fs::read(&vhd).unwrap());
    let n = base.len() as u64;
    let clean = Mutated {
        base: base.clone(),
        patches: Vec::new(),
        len: n,
    };
    assert!(
        !exercise(Arc::new(clean)),
        "the unmodified image must check clean"
    );
    let mut rng = Rng(0x5eed);
    let mut reported = 0;
    for round in 0..3000 {
        let mut patches = Vec::new();
        for _ in 0..1 + rng.below(4) {
            // Metadata lives in the first 4 KiB and the last 512 bytes.
            let at = match rng.below(4) {
                0 | 1 => rng.below(4096),
                2 => n - 1 - rng.below(512),
                _ => rng.below(n),
            };
            let v = match rng.below(3) {
                0 => rng.next() as u8,
                1 => 0xff,
                _ => 0,
            };
            patches.push((at, v));
        }
        let len = if round % 10 == 0 { rng.below(n + 1) } else { n };
        reported += usize::from(exercise(Arc::new(Mutated {
            base: base.clone(),
            patches,
            len,
        })));
    }
    println!("{reported} of 3000 mutations reported");
    // Most mutations of metadata must be noticed.
    assert!(
        reported > 1500,
        "only {reported} of 3000 mutations were reported"
    );
}
