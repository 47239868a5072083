//! The harness every fuzz target and smoke test puts an image through: what `check`
//! and `upload` do with one (info, the integrity check, guest reads at the edges),
//! with the properties that hold for any input, however hostile.
//!
//! The fuzz targets (`fuzz/fuzz_targets/`) run it under libFuzzer; the `fuzz_smoke`
//! tests run it over deterministic mutations of real images on stable CI. One body for
//! both, so what CI exercises is what the fuzzer does.

use crate::{Mutated, Rng};
use preflight_disk::{DiskImage, Source};
use preflight_report::Finding;
use std::sync::Arc;

/// The largest guest read, past a 64 KiB cluster so a read spans two.
const READ_LEN: usize = 70_000;

/// Puts what a parser's `open` returned through [`exercise_image`]: the open's refusal,
/// or the image's findings. Panics if a property fails: a refusal must be an error
/// finding with a code.
pub fn exercise<I: DiskImage>(opened: Result<I, Finding>) -> Result<Vec<Finding>, Finding> {
    match opened {
        Err(refusal) => {
            assert!(
                refusal.is_error() && !refusal.code.is_empty(),
                "a refusal is an error with a code: {refusal:?}"
            );
            Err(refusal)
        }
        Ok(img) => Ok(exercise_image(&img)),
    }
}

/// Runs info, the check and guest reads at the start, the middle and the end of `img`,
/// and returns the check's findings. Panics if a property fails: every finding has a
/// code and a message, and a read past the end is an error, never a panic.
pub fn exercise_image(img: &dyn DiskImage) -> Vec<Finding> {
    let _ = img.info();
    let findings = img.check();
    for f in &findings {
        assert!(
            !f.code.is_empty() && !f.message.is_empty(),
            "a finding without a code or a message: {f:?}"
        );
    }
    let size = img.size();
    let mut buf = vec![0u8; READ_LEN];
    let len_cap = u64::try_from(READ_LEN).unwrap_or(u64::MAX);
    for offset in [
        0,
        512,
        65_535,
        size / 3,
        size / 2,
        size.saturating_sub(1),
        size.saturating_sub(65_536),
        size.saturating_sub(len_cap),
        size,
    ] {
        let len = size.saturating_sub(offset).min(len_cap);
        let len = usize::try_from(len).unwrap_or(READ_LEN);
        // Errors are allowed (a corrupt table); only a panic or a hang is a bug.
        let _ = img.read_at(offset, &mut buf[..len]);
    }
    assert!(
        img.read_at(size, &mut buf[..1]).is_err(),
        "a read past the end ({size}) must fail"
    );
    findings
}

/// Whether [`exercise`] reported something: the open refused the image, or its check
/// found a problem.
pub fn reported<I: DiskImage>(opened: Result<I, Finding>) -> bool {
    match exercise(opened) {
        Err(_) => true,
        Ok(findings) => !findings.is_empty(),
    }
}

/// Smoke fuzzing on stable CI: `base` unmodified must open and check clean; then `rounds`
/// mutations of it, each made by `mutate` from the PRNG (seeded with `seed`) and the round
/// number, go through `open` and [`exercise`]. Returns how many were [`reported`].
pub fn mutation_smoke<I: DiskImage>(
    base: &Arc<Vec<u8>>,
    seed: u64,
    rounds: u32,
    open: impl Fn(Arc<dyn Source>) -> Result<I, Finding>,
    mut mutate: impl FnMut(&mut Rng, u32) -> Mutated,
) -> u32 {
    assert!(
        !reported(open(Arc::new(Mutated::new(base.clone())))),
        "the unmodified image must check clean"
    );
    let mut rng = Rng(seed);
    let mut count = 0;
    for round in 0..rounds {
        let mutated = mutate(&mut rng, round);
        count += u32::from(reported(open(Arc::new(mutated))));
    }
    println!("{count} of {rounds} mutations reported");
    count
}
