//! A hosted sparse extent (`KDMV`): monolithicSparse, streamOptimized and
//! the `-sNNN` files of twoGbMaxExtentSparse. Opening validates the header
//! and loads the grain directory; grain tables are read on demand.
//!
//! [`header`] opens the extent (header, footer, embedded descriptor),
//! [`tables`] walks the grain directory and tables, [`reader`] reads and
//! inflates grains.

mod header;
mod reader;
mod tables;

pub(crate) use tables::load_directory;

use crate::descriptor::Descriptor;
use crate::header::{Geometry, Marker, SparseHeader, FLAG_ZERO_GRAIN, SECTOR};
use preflight_disk::Source;
use preflight_report::Finding;
use std::sync::{Arc, Mutex};

/// A compressed grain's data may take at most two grains of the file
/// (qemu reads two clusters for one compressed grain).
pub(crate) const MAX_COMPRESSED_GRAINS: u64 = 2;

/// Where one grain's data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grain {
    /// Not allocated: reads as zeros.
    Unallocated,
    /// Grain table entry 1 with the zeroed-grain flag: reads as zeros.
    Zeroed,
    /// Uncompressed data at this file offset.
    Data(u64),
    /// A compressed grain (with its marker, if markers are on) here.
    Compressed(u64),
}

/// Where a compressed grain's deflate data lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompressedRange {
    /// File offset of the data.
    pub data: u64,
    /// Length of the data (for grains without a marker: what is left of
    /// the file, at most the limit).
    pub len: u64,
    /// The marker's sector number, if the grain has a marker.
    pub lba: Option<u64>,
}

/// An opened sparse extent.
pub(crate) struct SparseExtent {
    pub src: Arc<dyn Source>,
    pub name: String,
    /// The header in force: the footer's copy when the GD is at the end.
    pub header: SparseHeader,
    pub geo: Geometry,
    /// Grain directory: sector offsets of grain tables, 0 = none.
    pub gd: Vec<u32>,
    pub gd_at_end: bool,
    /// The embedded descriptor, if there is one and it is readable.
    pub descriptor: Option<Descriptor>,
    /// The embedded descriptor's byte range.
    pub desc_range: Option<(u64, u64)>,
    /// Problems found at open that do not stop reading.
    pub notes: Vec<Finding>,
    /// Bytes of the file holding guest data: see [`SparseExtent::count_allocated`].
    pub allocated_bytes: u64,
    cache: Mutex<Option<(u64, Vec<u8>)>>,
}

/// Decodes little-endian u32s; a trailing partial entry is ignored.
pub(crate) fn le_u32s(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| <[u8; 4]>::try_from(c).map_or(0, u32::from_le_bytes))
}

/// `sectors × 512`, or `None` on overflow.
pub(crate) fn sectors_to_bytes(sectors: u64) -> Option<u64> {
    sectors.checked_mul(SECTOR)
}

impl SparseExtent {
    pub(crate) fn file_size(&self) -> u64 {
        self.src.size()
    }

    pub(crate) fn compressed(&self) -> bool {
        self.header.compressed()
    }

    pub(crate) fn zero_grain(&self) -> bool {
        self.header.flags & FLAG_ZERO_GRAIN != 0
    }

    fn ends_with_eos(&self) -> bool {
        let size = self.file_size();
        let Some(at) = size.checked_sub(SECTOR) else {
            return false;
        };
        let mut b = [0u8; 16];
        self.src.read_exact_at(at, &mut b).is_ok() && Marker::parse(&b).is_some_and(|m| m.is_eos())
    }
}
