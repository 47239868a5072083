//! QCOW2 images: a bounded, synchronous, panic-free parser, an integrity
//! check like `qemu-img check`, and a guest block reader.
//!
//! * [`open`] reads and validates the header and its extensions, and loads
//!   the active L1 table. It fails (with one finding) only when the header
//!   cannot be understood or qemu would refuse to open the image.
//! * [`Qcow2Image`] implements [`DiskImage`]: [`DiskImage::info`] says what
//!   the header says (backing file, encryption, features), and
//!   [`DiskImage::check`] reports everything that makes the image unfit for
//!   import, plus the reference-count consistency qemu-img check verifies.
//! * [`BlockRead::read_at`] reads the guest disk: unallocated and zero
//!   clusters read as zeros (a backing file is never opened), compressed
//!   clusters are inflated (zlib or zstd), extended-L2 subclusters honoured.
//!
//! Hostile input: every table is checked to lie inside the file and under
//! qemu's limits before it is read; memory is bounded by the file size,
//! never by the virtual size; every walk is bounded.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Parser crates: every offset comes from hostile input, so arithmetic is checked or
// saturating and conversions are `try_from` (tests may compute freely).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::as_conversions)
)]

mod check;
mod error;
mod header;
mod reader;
pub mod rules;
mod tables;

pub use reader::{DecompressFault, ReadFault};
pub use rules::RULES;

use preflight_disk::{BlockRead, DiskImage, Format, ImageInfo, ReadError, Source};
use preflight_report::Finding;
use std::sync::Arc;

use error::OpenError;

use header::{
    Parsed, AUTOCLEAR_BITMAPS, AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, COMPRESSION_ZSTD,
    CRYPT_AES, CRYPT_LUKS, INCOMPAT_CORRUPT, INCOMPAT_DATA_FILE, INCOMPAT_DIRTY, INCOMPAT_EXTL2,
};
use tables::{Cluster, L1E_OFFSET_MASK};

/// An opened QCOW2 image.
///
/// [`DiskImage::info`] gives `subformat` and `version` `"0.10"` (v2) or
/// `"1.1"` (v3), the names of qemu-img's `compat` option, the cluster size,
/// feature names (`dirty`, `corrupt`, `external_data_file`,
/// `extended_l2`, `compression_zstd`, `lazy_refcounts`, `bitmaps`,
/// `data_file_raw`, and `compatible_bit_N` / `autoclear_bit_N` for unknown
/// bits), the backing file name and the encryption method (`aes`, `luks`).
/// Its `allocated_size` counts each allocated data cluster of the active L1
/// as one cluster, and each compressed cluster by its compressed size (as
/// its L2 descriptor gives it, in 512-byte sectors); zero clusters count
/// nothing.
///
/// Reads are safe from several threads at once; a small cache of L2 tables
/// and inflated clusters is shared behind a mutex.
pub struct Qcow2Image {
    src: Arc<dyn Source>,
    parsed: Parsed,
    /// The active L1 table; `None` when it passes the end of the file (reads report it).
    l1: Option<Vec<u64>>,
    info: ImageInfo,
    cache: reader::Cache,
}

impl std::fmt::Debug for Qcow2Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qcow2Image")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Opens a QCOW2 image. Fails with one error finding when the header
/// cannot be understood (bad magic or version, cluster_bits out of range,
/// unknown incompatible features, absurd sizes, tables over qemu's limits…).
/// Backing files, encryption, external data files and the dirty/corrupt
/// bits do not make it fail: see [`DiskImage::info`] and [`DiskImage::check`].
pub fn open(src: Arc<dyn Source>) -> Result<Qcow2Image, Finding> {
    open_typed(src).map_err(|e| e.finding())
}

/// [`open`] with the typed error, mapped to its finding at the boundary.
fn open_typed(src: Arc<dyn Source>) -> Result<Qcow2Image, OpenError> {
    let parsed = header::parse(src.as_ref())?;
    let l1 = load_l1(src.as_ref(), &parsed)?;
    let mut img = Qcow2Image {
        info: image_info(&parsed),
        src,
        parsed,
        l1,
        cache: reader::Cache::default(),
    };
    img.info.allocated_size = img.allocated_size()?;
    Ok(img)
}

/// Reads the active L1 table if it lies inside the file.
fn load_l1(src: &dyn Source, p: &Parsed) -> Result<Option<Vec<u64>>, OpenError> {
    let h = &p.header;
    let len = u64::from(h.l1_size).saturating_mul(8);
    if len == 0 {
        return Ok(Some(Vec::new()));
    }
    match h.l1_table_offset.checked_add(len) {
        Some(end) if end <= p.geo.file_size => {}
        _ => return Ok(None),
    }
    let bytes = preflight_disk::read_vec(
        src,
        "L1 table",
        h.l1_table_offset,
        len,
        header::MAX_L1_BYTES,
    )
    .map_err(OpenError::L1Read)?;
    Ok(Some(
        bytes
            .chunks_exact(8)
            .map(|c| tables::be_u64_at(c, 0))
            .collect(),
    ))
}

fn image_info(p: &Parsed) -> ImageInfo {
    let h = &p.header;
    let mut info = ImageInfo::new(Format::Qcow2, h.size, p.geo.file_size);
    info.cluster_size = Some(p.geo.cluster_size);
    // qemu-img names the two versions by their `compat` option: 0.10 (v2)
    // and 1.1 (v3). That is the subformat, as `fixed`/`dynamic` is a VHD's.
    let compat = if h.version == 2 { "0.10" } else { "1.1" };
    info.subformat = Some(compat.to_string());
    info.version = Some(compat.to_string());
    info.backing_file = p.backing_file.clone();
    info.encryption = match h.crypt_method {
        CRYPT_AES => Some("aes".to_string()),
        CRYPT_LUKS => Some("luks".to_string()),
        _ => None,
    };
    let mut f = Vec::new();
    let incompat = [
        (INCOMPAT_DIRTY, "dirty"),
        (INCOMPAT_CORRUPT, "corrupt"),
        (INCOMPAT_DATA_FILE, "external_data_file"),
        (INCOMPAT_EXTL2, "extended_l2"),
    ];
    for (bit, name) in incompat {
        if h.incompatible_features & bit != 0 {
            f.push(name.to_string());
        }
    }
    if h.compression_type == COMPRESSION_ZSTD {
        f.push("compression_zstd".to_string());
    }
    for bit in 0..64u32 {
        let mask = 1u64 << bit;
        if h.compatible_features & mask != 0 {
            f.push(if mask == COMPAT_LAZY_REFCOUNTS {
                "lazy_refcounts".to_string()
            } else {
                format!("compatible_bit_{bit}")
            });
        }
        if h.autoclear_features & mask != 0 {
            f.push(match mask {
                AUTOCLEAR_BITMAPS => "bitmaps".to_string(),
                AUTOCLEAR_DATA_FILE_RAW => "data_file_raw".to_string(),
                _ => format!("autoclear_bit_{bit}"),
            });
        }
    }
    info.features = f;
    info
}

impl Qcow2Image {
    /// Distinct L2 tables of the active L1 that lie inside the file, sorted.
    fn active_l2_tables(&self) -> Vec<u64> {
        let geo = &self.parsed.geo;
        let mut v: Vec<u64> = self
            .l1
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|e| e & L1E_OFFSET_MASK)
            .filter(|&o| {
                o != 0
                    && geo.offset_in_cluster(o) == 0
                    && o.checked_add(geo.cluster_size)
                        .is_some_and(|end| end <= geo.file_size)
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Bytes of guest data stored: each allocated data cluster of the active
    /// L1 counts one cluster; a compressed cluster counts the bytes its
    /// descriptor covers (its compressed size rounded to 512-byte sectors).
    /// Zero clusters count nothing, even when a host cluster is reserved.
    fn allocated_size(&self) -> Result<u64, OpenError> {
        let geo = self.parsed.geo;
        let mut total: u64 = 0;
        tables::for_each_cluster(
            self.src.as_ref(),
            &self.active_l2_tables(),
            geo.cluster_size,
            |_, table| {
                for i in 0..geo.l2_entries() {
                    let e = tables::l2_entry(&geo, table, i);
                    total = total.saturating_add(match tables::classify(&geo, e) {
                        Cluster::Normal(_) => geo.cluster_size,
                        Cluster::Compressed { size, .. } => size,
                        _ => 0,
                    });
                }
            },
        )
        .map_err(|(offset, source)| OpenError::L2Read { offset, source })?;
        Ok(total)
    }
}

impl BlockRead for Qcow2Image {
    fn size(&self) -> u64 {
        self.info.virtual_size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        self.read_guest(offset, buf)
    }
}

impl DiskImage for Qcow2Image {
    fn info(&self) -> &ImageInfo {
        &self.info
    }

    fn check(&self) -> Vec<Finding> {
        check::check(self)
    }
}

#[cfg(test)]
mod tests;
