//! The block allocation table (MS-VHDX §2.5): geometry and entry states.

use preflight_disk::{read_vec, BoundsError, Source};

/// Bits 0-2 of an entry: its state.
pub const STATE_MASK: u64 = 7;
/// Bits 20-63: the file offset in MiB (kept in place, so the mask gives bytes).
pub const OFFSET_MASK: u64 = 0xFFFF_FFFF_FFF0_0000;

/// Payload: not stored (a hole; for differencing disks, read the parent).
pub const PAYLOAD_NOT_PRESENT: u64 = 0;
/// Payload: contents undefined (reads as zeros here, as in qemu).
pub const PAYLOAD_UNDEFINED: u64 = 1;
/// Payload: zeros.
pub const PAYLOAD_ZERO: u64 = 2;
/// Payload: unmapped (trimmed); reads as zeros.
pub const PAYLOAD_UNMAPPED: u64 = 3;
/// Payload: "unmapped" in the v0.95 draft of the spec; qemu reads zeros.
pub const PAYLOAD_UNMAPPED_V095: u64 = 5;
/// Payload: stored in the file.
pub const PAYLOAD_FULLY_PRESENT: u64 = 6;
/// Payload: partly stored, partly from the parent (differencing only).
pub const PAYLOAD_PARTIALLY_PRESENT: u64 = 7;
/// Sector bitmap: not stored.
pub const SB_NOT_PRESENT: u64 = 0;
/// Sector bitmap: stored.
pub const SB_PRESENT: u64 = 6;

/// Size of a sector bitmap block.
pub const SECTOR_BITMAP_SIZE: u64 = 1 << 20;

/// Most BAT entries accepted. The virtual size is capped at 64 TiB (qemu's
/// `VHDX_MAX_IMAGE_SIZE`) and blocks are at least 1 MiB, so there are at
/// most 2^26 payload entries; the sector-bitmap entries add at most one per
/// 16 (the smallest chunk ratio). This caps the table held in memory at
/// about 544 MiB; it must also fit its region and the file, so in practice
/// memory never exceeds the file size.
pub const MAX_BAT_ENTRIES: u64 = (1 << 26) + (1 << 22) + 32;

/// How guest blocks map to BAT entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Payload block size.
    pub block_size: u64,
    /// Payload blocks per sector-bitmap block: 2^23 × logical sector / block.
    pub chunk_ratio: u64,
    /// Payload blocks covering the virtual size.
    pub data_blocks: u64,
    /// BAT entries the file must hold.
    pub entries: u64,
}

impl Geometry {
    /// Geometry from validated metadata: `block_size` a power of two in
    /// 1..=256 MiB, `logical_sector` 512 or 4096, `virtual_size` ≤ 64 TiB.
    pub fn new(
        virtual_size: u64,
        block_size: u64,
        logical_sector: u64,
        has_parent: bool,
    ) -> Geometry {
        let block_size = block_size.max(1);
        let chunk_ratio = (1u64 << 23)
            .saturating_mul(logical_sector)
            .checked_div(block_size)
            .unwrap_or(1)
            .max(1);
        let data_blocks = virtual_size.div_ceil(block_size);
        let entries = if has_parent {
            data_blocks
                .div_ceil(chunk_ratio)
                .saturating_mul(chunk_ratio.saturating_add(1))
        } else if data_blocks == 0 {
            0
        } else {
            data_blocks.saturating_add(
                data_blocks
                    .saturating_sub(1)
                    .checked_div(chunk_ratio)
                    .unwrap_or(0),
            )
        };
        Geometry {
            block_size,
            chunk_ratio,
            data_blocks,
            entries,
        }
    }

    /// The BAT index of payload block `block`.
    pub fn payload_index(&self, block: u64) -> u64 {
        // chunk_ratio is at least 1 (Geometry::new).
        block.saturating_add(block.checked_div(self.chunk_ratio).unwrap_or(0))
    }

    /// True when BAT entry `index` is a sector-bitmap entry.
    pub fn is_bitmap_entry(&self, index: u64) -> bool {
        index
            .saturating_add(1)
            .checked_rem(self.chunk_ratio.saturating_add(1))
            == Some(0)
    }
}

/// Reads `entries` little-endian u64 BAT entries at `offset`.
pub fn read_bat(src: &dyn Source, offset: u64, entries: u64) -> Result<Vec<u64>, BoundsError> {
    let len = entries.saturating_mul(8);
    let bytes = read_vec(src, "BAT", offset, len, MAX_BAT_ENTRIES * 8)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| <[u8; 8]>::try_from(c).map_or(0, u64::from_le_bytes))
        .collect())
}

/// An allocated extent of the file: (offset, length, BAT index).
pub type Extent = preflight_disk::Extent<u64>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_qemu() {
        // 5 MiB, 8 MiB blocks, 512-byte sectors: 1 block, chunk ratio 512.
        let g = Geometry::new(5 << 20, 8 << 20, 512, false);
        assert_eq!((g.chunk_ratio, g.data_blocks, g.entries), (512, 1, 1));
        // 1 MiB blocks: chunk ratio 4096; 4097 blocks need one bitmap entry.
        let g = Geometry::new(4097 << 20, 1 << 20, 512, false);
        assert_eq!(
            (g.chunk_ratio, g.data_blocks, g.entries),
            (4096, 4097, 4098)
        );
        assert_eq!(g.payload_index(4095), 4095);
        assert_eq!(g.payload_index(4096), 4097);
        assert!(g.is_bitmap_entry(4096));
        assert!(!g.is_bitmap_entry(4095));
        let g = Geometry::new(1 << 20, 1 << 20, 4096, true);
        assert_eq!((g.chunk_ratio, g.entries), (32768, 32769));
        assert_eq!(Geometry::new(0, 1 << 20, 512, false).entries, 0);
        // The cap covers the largest geometry.
        let g = Geometry::new(64 << 40, 1 << 20, 512, true);
        assert!(g.entries <= MAX_BAT_ENTRIES);
        let g = Geometry::new(64 << 40, 256 << 20, 512, true);
        assert!(g.entries <= MAX_BAT_ENTRIES);
    }

    #[test]
    fn overlap_sweep() {
        let mut v = vec![(10, 5, 0), (30, 5, 1), (12, 1, 2), (14, 20, 3), (40, 1, 4)];
        let o = preflight_disk::overlapping_extents(&mut v);
        let pairs: Vec<(u64, u64)> = o.iter().map(|(a, b)| (a.2, b.2)).collect();
        assert_eq!(pairs, vec![(0, 2), (0, 3), (3, 1)]);
        assert!(preflight_disk::overlapping_extents::<u64>(&mut []).is_empty());
    }
}
