//! The block allocation table (BAT) of dynamic and differencing disks.

use preflight_disk::{read_vec, BoundsError, Source};

/// A BAT entry meaning "block not allocated".
pub const UNALLOCATED: u32 = 0xFFFF_FFFF;

/// Most BAT entries accepted: qemu's limit (`vpc_open`: `max_table_entries >
/// INT_MAX / 4` → "Max Table Entries too large"), so what qemu refuses we
/// refuse. It also caps the table we hold in memory at 2 GiB; on top of that
/// the table must fit inside the file, so memory never exceeds the file size.
pub const MAX_TABLE_ENTRIES: u32 = 0x7fff_ffff / 4;

/// Size of the sector bitmap in front of each block: one bit per 512-byte
/// sector, padded to a 512-byte sector (Microsoft's spec). qemu computes
/// `(block_size / 4096 + 511) & ~511`, which is 0 for blocks under 4 KiB;
/// such blocks are not written by any known tool, and we follow the spec.
pub fn bitmap_size(block_size: u64) -> u64 {
    block_size.div_ceil(4096).div_ceil(512).saturating_mul(512)
}

/// Reads `entries` big-endian u32 entries at `offset`. Fails if the table is
/// past the end of the file or over [`MAX_TABLE_ENTRIES`].
pub fn read_bat(src: &dyn Source, offset: u64, entries: u32) -> Result<Vec<u32>, BoundsError> {
    let len = u64::from(entries) * 4;
    let bytes = read_vec(src, "BAT", offset, len, u64::from(MAX_TABLE_ENTRIES) * 4)?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| <[u8; 4]>::try_from(c).map_or(UNALLOCATED, u32::from_be_bytes))
        .collect())
}

/// The allocated entries (sector numbers of block bitmaps), sorted. Memory is
/// at most that of the BAT itself.
pub fn sorted_allocated(bat: &[u32]) -> Vec<u32> {
    let mut v: Vec<u32> = bat.iter().copied().filter(|&e| e != UNALLOCATED).collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_sizes() {
        assert_eq!(bitmap_size(512), 512);
        assert_eq!(bitmap_size(4096), 512);
        assert_eq!(bitmap_size(2 << 20), 512);
        assert_eq!(bitmap_size(4 << 20), 1024);
        assert_eq!(bitmap_size(1 << 31), 512 * 1024);
    }

    #[test]
    fn bat_bounds() {
        let mut data = vec![0u8; 1024];
        data[512..516].copy_from_slice(&7u32.to_be_bytes());
        data[516..520].copy_from_slice(&UNALLOCATED.to_be_bytes());
        let bat = read_bat(&data, 512, 2).unwrap();
        assert_eq!(bat, vec![7, UNALLOCATED]);
        assert!(read_bat(&data, 512, 129).is_err());
        assert!(read_bat(&data, u64::MAX - 2, 1).is_err());
        assert!(read_bat(&data, 0, MAX_TABLE_ENTRIES + 1).is_err());
    }

    #[test]
    fn allocated_blocks_sorted() {
        let s = sorted_allocated(&[20, UNALLOCATED, 10, 14, 30]);
        assert_eq!(s, vec![10, 14, 20, 30]);
    }
}
