//! VHDX (Hyper-V) images: parsing, integrity checks and a guest block reader.
//!
//! Layout (MS-VHDX, little-endian): the file identifier `vhdxfile` at 0, two
//! 4 KiB headers at 64 and 128 KiB (the valid one with the higher sequence
//! number is active), two 64 KiB region tables at 192 and 256 KiB, then the
//! log, the metadata region and the BAT region wherever the region table
//! puts them, and payload blocks of 1–256 MiB. Headers, region tables and
//! the metadata table carry a CRC-32C.
//!
//! [`open`] fails, with one error finding, only when the file cannot be
//! understood at all: no signature, no valid header, no valid region table,
//! a missing or unknown *required* region or metadata item, an invalid block
//! size, logical sector size or virtual size, or a BAT that does not fit.
//! Everything else is a finding of [`DiskImage::check`](preflight_disk::DiskImage::check); the codes are in
//! [`RULES`].
//!
//! Decisions:
//! * One corrupt header or region table is a warning (the other copy is
//!   used, as Hyper-V does); both corrupt is fatal.
//! * A non-zero log GUID means the log may hold writes not yet applied.
//!   qemu refuses such a file read-only, so it is the **error**
//!   `VHDX.LogReplay`, and [`BlockRead::read_at`](preflight_disk::BlockRead::read_at) refuses to read (the
//!   metadata and data may be stale until the log is replayed).
//! * Differencing disks (`HasParent`) open, report subformat
//!   `differencing` and the parent path as `backing_file`; check reports
//!   `VHDX.Differencing` and reads return [`ReadError::Unsupported`](preflight_disk::ReadError::Unsupported).
//! * Reads follow qemu: payload states NOT_PRESENT, UNDEFINED, ZERO,
//!   UNMAPPED (and the v0.95 UNMAPPED value 5) read as zeros.
//!
//! [`ImageInfo`]: subformat `fixed` (LeaveBlocksAllocated), `dynamic` or
//! `differencing`; `cluster_size` is the block size; `allocated_size` is
//! the FULLY_PRESENT blocks × block size; `version` is the header version;
//! `features` holds `creator:<creator string>`,
//! `logical_sector_size:<n>`, `physical_sector_size:<n>` and
//! `log_replay_needed` when the log GUID is set.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Parser crates: every offset comes from hostile input, so arithmetic is checked or
// saturating and conversions are `try_from` (tests may compute freely).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::as_conversions)
)]

mod check;
mod header;
mod open;
mod reader;
mod tables;

pub use check::RULES;
pub use reader::ReadFault;

use header::{Header, RegionEntry, RegionTable};
use preflight_disk::{ImageInfo, Source};
use preflight_report::Finding;
use std::sync::Arc;

/// Metadata items, validated.
#[derive(Debug, Clone)]
struct Meta {
    block_size: u64,
    leave_blocks_allocated: bool,
    has_parent: bool,
    virtual_size: u64,
    logical_sector: u32,
    /// `None` when the item is missing.
    physical_sector: Option<u32>,
    disk_id_present: bool,
    parent_locator_present: bool,
    parent_path: Option<String>,
}

/// An opened VHDX image.
pub struct VhdxImage {
    src: Arc<dyn Source>,
    info: ImageInfo,
    headers: [Option<Header>; 2],
    /// Index of the active header in `headers`.
    active: usize,
    region_tables: [Option<RegionTable>; 2],
    /// Index of the region table used.
    used_table: usize,
    bat_region: RegionEntry,
    metadata_region: RegionEntry,
    meta: Meta,
    geometry: tables::Geometry,
    bat: Vec<u64>,
}

impl std::fmt::Debug for VhdxImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhdxImage")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl VhdxImage {
    fn active_header(&self) -> Option<&Header> {
        self.headers.get(self.active).and_then(Option::as_ref)
    }
}

/// Opens a VHDX. Fails only when the file cannot be understood at all;
/// every other problem is reported by [`DiskImage::check`](preflight_disk::DiskImage::check).
pub fn open(src: Arc<dyn Source>) -> Result<VhdxImage, Finding> {
    open::open(src).map_err(|e| e.finding())
}

preflight_disk::forward_disk_image!(VhdxImage {
    read_at: reader::read_at,
    next_data: reader::next_data,
    check: check::check,
});

/// Canonical text form of an on-disk GUID.
fn guid_str(g: &[u8; 16]) -> String {
    let [a0, a1, a2, a3, b0, b1, c0, c1, d @ ..] = *g;
    let d: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{:08x}-{:04x}-{:04x}-{}-{}",
        u32::from_le_bytes([a0, a1, a2, a3]),
        u16::from_le_bytes([b0, b1]),
        u16::from_le_bytes([c0, c1]),
        d.get(..4).unwrap_or(""),
        d.get(4..).unwrap_or("")
    )
}

#[cfg(test)]
mod tests;
