//! `next_data` tests: a sparse disk with data in a few places, and the check that what
//! lies between the data runs a reader reports is zeros, in the image and in its source.

use std::path::{Path, PathBuf};

use preflight_disk::BlockRead;

/// A disk of `size` bytes, zero but for each `(offset, len)` extent, which holds the
/// non-zero pattern `1, 2, .., 251, 1, ..`. Panics if an extent passes `size`.
pub fn patterned_disk(size: u64, extents: &[(u64, u64)]) -> Vec<u8> {
    let index = |n: u64| usize::try_from(n).expect("a test disk fits in memory");
    let mut disk = vec![0u8; index(size)];
    for &(at, len) in extents {
        let extent = &mut disk[index(at)..index(at + len)];
        for (byte, value) in extent.iter_mut().zip((1..=251u8).cycle()) {
            *byte = value;
        }
    }
    disk
}

/// Asserts that `img` reads zeros between the `runs` (sorted `(start, end)` pairs, as
/// `preflight_disk::data_runs` gives them) and after the last, and that `raw`, the disk
/// the image was made from, is zero there too (where it reaches: qemu may round an
/// image's size up past its source).
pub fn assert_holes_read_zero(img: &dyn BlockRead, runs: &[(u64, u64)], raw: &[u8]) {
    let index = |n: u64| usize::try_from(n).expect("a test disk fits in memory");
    let size = img.size();
    let mut gap_start = 0;
    for &(start, end) in runs.iter().chain(std::iter::once(&(size, size))) {
        let mut gap = vec![1u8; index(start - gap_start)];
        img.read_at(gap_start, &mut gap)
            .unwrap_or_else(|e| panic!("read of the gap {gap_start}..{start}: {e}"));
        assert!(
            gap.iter().all(|&x| x == 0),
            "data in the gap {gap_start}..{start}"
        );
        let in_raw = &raw[index(gap_start).min(raw.len())..index(start).min(raw.len())];
        assert!(
            in_raw.iter().all(|&x| x == 0),
            "the source holds data in the gap {gap_start}..{start}: a run was missed"
        );
        gap_start = end;
    }
}

/// The data runs of [`three_extent_image`] in an image whose blocks are 2 MiB (dynamic VHD,
/// VHDX with `block_size=2097152`): qemu-img allocates only the blocks holding data, 0, 9-11
/// and 31.
pub const THREE_EXTENT_RUNS: [(u64, u64); 3] =
    [(0, MIB2), (9 * MIB2, 12 * MIB2), (31 * MIB2, 32 * MIB2)];
const MIB2: u64 = 2 << 20;

/// A 64 MiB disk with data in three places (inside block 0, across blocks 9 and 10, in the
/// last block), converted by qemu-img to `format` with `-o OPTIONS`: the raw bytes and the
/// image's path in `dir`.
pub fn three_extent_image(dir: &Path, format: &str, options: &str) -> (Vec<u8>, PathBuf) {
    const MIB: u64 = 1 << 20;
    let size = 64 * MIB;
    let raw = patterned_disk(
        size,
        &[(4096, 512), (19 * MIB + 100, 3 * MIB), (size - 1024, 1024)],
    );
    let raw_path = dir.join("three-extents.raw");
    std::fs::write(&raw_path, &raw).expect("write the raw disk");
    let image = dir.join(format!("three-extents.{format}"));
    crate::qemu::convert_raw(&raw_path, format, &["-o", options], &image);
    (raw, image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use preflight_disk::raw::RawImage;
    use std::sync::Arc;

    #[test]
    fn the_pattern_is_non_zero_and_only_in_the_extents() {
        let disk = patterned_disk(1000, &[(10, 300), (990, 10)]);
        assert!(disk[..10].iter().all(|&b| b == 0));
        assert_eq!(&disk[10..13], &[1, 2, 3]);
        assert_eq!(disk[10 + 251], 1);
        assert!(disk[10..310].iter().all(|&b| b != 0));
        assert!(disk[310..990].iter().all(|&b| b == 0));
        let img = RawImage::new(Arc::new(disk.clone()));
        assert_holes_read_zero(&img, &[(0, 512), (512 + 256, 1000)], &disk);
    }

    #[test]
    #[should_panic(expected = "data in the gap")]
    fn a_missed_run_fails() {
        let disk = patterned_disk(1000, &[(600, 10)]);
        assert_holes_read_zero(&RawImage::new(Arc::new(disk.clone())), &[(0, 512)], &disk);
    }
}
