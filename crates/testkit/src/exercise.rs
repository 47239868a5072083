//! The harness every fuzz target and smoke test puts an image through: what `check`
//! and `upload` do with one (info, the integrity check, guest reads at the edges),
//! with the properties that hold for any input, however hostile.
//!
//! The fuzz targets (`fuzz/fuzz_targets/`) run it under libFuzzer; the `fuzz_smoke`
//! tests run it over deterministic mutations of real images on stable CI. One body for
//! both, so what CI exercises is what the fuzzer does.

use preflight_disk::DiskImage;
use preflight_report::Finding;

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
