//! Smoke fuzzing: a few thousand deterministic pseudo-random mutations of a
//! real qemu-made VHDX go through open, info, check and read_at without a
//! panic. Mutated headers and region tables get their CRC-32C fixed half of
//! the time so the mutations reach past the checksums. The same harness as
//! `fuzz/fuzz_targets/vhdx.rs`, which runs it under libFuzzer.
#![allow(clippy::cast_possible_truncation)]

// Shared with the VHD tests: raw images with holes, qemu-img helpers, hashing.
#[path = "../../vhd/tests/common/mod.rs"]
mod common;

use common::*;
use preflight_disk::Source;
use preflight_report::Finding;
use preflight_testkit::{mutation_smoke, Mutated};
use std::sync::Arc;

/// The VHDX open, whose refusals must carry a VHDX code.
fn open(src: Arc<dyn Source>) -> Result<preflight_vhdx::VhdxImage, Finding> {
    preflight_vhdx::open(src).inspect_err(|f| assert!(f.code.starts_with("VHDX."), "{f:?}"))
}

#[test]
fn mutations_of_a_real_image_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    write_raw(&raw, 5 << 20, 21);
    let vhdx = dir.path().join("d.vhdx");
    qemu::convert_raw(
        &raw,
        "vhdx",
        &["-o", "subformat=dynamic,block_size=1M"],
        &vhdx,
    );
    let base = Arc::new(std::fs::read(&vhdx).unwrap());
    let n = base.len() as u64;
    // (start, length, CRC-protected) of the structures worth hitting.
    let hot: [(u64, u64, bool); 8] = [
        (0, 600, false),
        (0x10000, 4096, true),
        (0x20000, 4096, true),
        (0x30000, 65536, true),
        (0x40000, 65536, true),
        (2 << 20, 256, false),          // BAT
        (3 << 20, 512, false),          // metadata table
        ((3 << 20) + 65536, 64, false), // metadata items
    ];
    let reported = mutation_smoke(&base, 0x5eed_cafe, 3000, open, |rng, round| {
        let mut m = Mutated::new(base.clone());
        let mut touched = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let at = if rng.below(5) == 0 {
                rng.below(n)
            } else {
                let k = rng.below(hot.len() as u64) as usize;
                let (s, l, crc) = hot[k];
                if crc {
                    touched.push((s, l));
                }
                // Most fields sit near the start of a structure.
                s + rng.below(l.min(160))
            };
            let v = match rng.below(4) {
                0 => rng.next() as u8,
                1 => 0xff,
                2 => 0,
                _ => m.bytes(at as usize, 1)[0] ^ (1 << rng.below(8)),
            };
            m.patches.push((at, v));
        }
        if rng.below(2) == 0 {
            for (s, l) in touched {
                let mut bytes = m.bytes(s as usize, l as usize);
                bytes[4..8].fill(0);
                let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
                d.update(&bytes);
                let c = (d.finalize() as u32).to_le_bytes();
                for (i, b) in c.iter().enumerate() {
                    m.patches.push((s + 4 + i as u64, *b));
                }
            }
        }
        if round % 10 == 0 {
            m.len = rng.below(n + 1);
        }
        m
    });
    // Most mutations of metadata must be noticed.
    assert!(
        reported > 1500,
        "only {reported} of 3000 mutations were reported"
    );
}
