//! Smoke fuzzing: a few thousand deterministic pseudo-random mutations of a
//! real qemu-made image go through open, info, check and read_at without a
//! panic, and findings always carry a code. The same harness as
//! `fuzz/fuzz_targets/vhd.rs`, which runs it under libFuzzer.
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::*;
use preflight_testkit::{mutation_smoke, Mutated};
use std::sync::Arc;

#[test]
fn mutations_of_a_real_image_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    write_raw(&raw, 6 << 20, 21);
    let vhd = dir.path().join("d.vhd");
    qemu::convert_raw(
        &raw,
        "vpc",
        &["-o", "subformat=dynamic,force_size=on"],
        &vhd,
    );
    let base = Arc::new(std::fs::read(&vhd).unwrap());
    let n = base.len() as u64;
    let reported = mutation_smoke(&base, 0x5eed, 3000, preflight_vhd::open, |rng, round| {
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
        Mutated {
            base: base.clone(),
            patches,
            len,
        }
    });
    // Most mutations of metadata must be noticed.
    assert!(
        reported > 1500,
        "only {reported} of 3000 mutations were reported"
    );
}
