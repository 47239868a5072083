//! VHD (Virtual PC / Hyper-V generation 1) images: parsing, integrity checks
//! and a guest block reader.
//!
//! A VHD is one of three layouts, told apart by the 512-byte big-endian
//! footer at the end of the file:
//!
//! * **fixed** (type 2): the guest disk, then the footer. qemu's probe looks
//!   only at the start of a file and calls it RAW; [`has_footer_at_end`] lets
//!   the format detector say VHD.
//! * **dynamic** (type 3): a footer copy at 0, a dynamic header (`cxsparse`),
//!   the block allocation table (BAT), blocks of a sector bitmap + data, and
//!   the footer.
//! * **differencing** (type 4): a dynamic disk whose holes come from a parent
//!   file. It opens (its facts are reported) but cannot be read or imported
//!   on its own: [`DiskImage::check`](preflight_disk::DiskImage::check) reports `VHD.Differencing` and
//!   [`BlockRead::read_at`](preflight_disk::BlockRead::read_at) returns [`ReadError::Unsupported`](preflight_disk::ReadError::Unsupported).
//!
//! [`open`] fails, with one error finding, only when the layout cannot be
//! understood at all (no footer, no footer with a valid checksum
//! (`VHD.FooterChecksum`), unknown disk type, unreadable dynamic header,
//! invalid block size, a BAT that does not fit the file). Everything
//! else is a finding of [`DiskImage::check`](preflight_disk::DiskImage::check); the codes are listed in
//! [`RULES`].
//!
//! Facts reported in [`ImageInfo`]: `subformat` is `fixed`, `dynamic` or
//! `differencing`; `virtual_size` is the footer's `current_size` for every
//! type (what Hyper-V and ECS use; qemu's CHS rule is reported by
//! `VHD.ChsSize` when it would differ); `allocated_size` is allocated blocks
//! × block size (fixed: the virtual size); `cluster_size` is the block size;
//! `version` is the footer's `major.minor`; `features` holds
//! `creator:<app>` (e.g. `creator:qemu`, `creator:win`, `creator:qem2`),
//! plus `temporary` and `saved_state` when those flags are set;
//! `backing_file` is a differencing disk's parent name.
//!
//! Reads follow qemu's `vpc` driver: unallocated blocks and blocks past the
//! BAT read as zeros, and the per-block sector bitmap is not consulted (it
//! only matters for differencing disks, which are not read).
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
mod reader;
mod tables;

pub use check::RULES;
pub use reader::ReadFault;

use header::{DynHeader, Footer};
use preflight_disk::{BoundsError, Format, ImageInfo, Source};
use preflight_report::Finding;
use std::sync::Arc;

/// True when the last 512 bytes of `src` start with the VHD cookie
/// `conectix`. This is how a fixed VHD is told from RAW: qemu's own probe
/// calls it RAW and then counts the footer as guest data.
pub fn has_footer_at_end(src: &dyn Source) -> bool {
    let size = src.size();
    let Some(at) = size.checked_sub(header::FOOTER_SIZE) else {
        return false;
    };
    let mut cookie = [0u8; 8];
    src.read_exact_at(at, &mut cookie).is_ok() && &cookie == header::FOOTER_COOKIE
}

/// Why [`open`] could not understand a file at all. Each variant maps to one
/// rule of [`RULES`].
#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error("the file is {0} bytes, smaller than the 512-byte VHD footer")]
    TooSmall(u64),
    #[error("no `conectix` footer in the last 512 bytes of the file nor at offset 0")]
    NoCookie,
    #[error("disk type {0} is not 2 (fixed), 3 (dynamic) or 4 (differencing)")]
    DiskType(u32),
    #[error(
        "the dynamic header at data offset {offset} does not fit in the {file_size}-byte file"
    )]
    DataOffset { offset: u64, file_size: u64 },
    #[error(
        "the dynamic header at offset {offset} starts with {:?}, not `cxsparse`",
        header::printable(found)
    )]
    DynCookie { offset: u64, found: [u8; 8] },
    #[error("block size {0} is not a power of two of at least 512 bytes")]
    BlockSize(u32),
    #[error("MaxTableEntries {0} is over qemu's limit of {max}", max = tables::MAX_TABLE_ENTRIES)]
    MaxTableEntries(u32),
    #[error("BAT of {entries} entries at offset {offset}")]
    Bat {
        offset: u64,
        entries: u32,
        source: BoundsError,
    },
    #[error(
        "no VHD footer has a valid checksum, so the disk size is unknown: {}",
        bad_sums(.0)
    )]
    FooterChecksum(Vec<BadSum>),
    #[error("reading {what}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
}

impl OpenError {
    fn finding(&self) -> Finding {
        let rule = match self {
            OpenError::TooSmall(_) => &check::TOO_SMALL,
            OpenError::NoCookie => &check::COOKIE,
            OpenError::DiskType(_) => &check::DISK_TYPE,
            OpenError::DataOffset { .. } => &check::DATA_OFFSET,
            OpenError::DynCookie { .. } => &check::DYN_COOKIE,
            OpenError::BlockSize(_) => &check::BLOCK_SIZE,
            OpenError::MaxTableEntries(_) => &check::MAX_TABLE_ENTRIES,
            OpenError::Bat { source, .. } => match source {
                BoundsError::PastEnd { .. } => &check::BAT_PAST_EOF,
                BoundsError::TooLarge { .. } => &check::MAX_TABLE_ENTRIES,
                _ => &check::IO,
            },
            OpenError::FooterChecksum(_) => &check::FOOTER_CHECKSUM,
            OpenError::Io { .. } => &check::IO,
        };
        rule.finding(preflight_disk::error_chain(self))
    }
}

/// A footer whose stored checksum is not the one its bytes give.
#[derive(Debug)]
struct BadSum {
    place: &'static str,
    stored: u32,
    computed: u32,
}

fn bad_sums(sums: &[BadSum]) -> String {
    sums.iter()
        .map(|b| {
            format!(
                "the footer {} stores checksum {:#010x} but its bytes give {:#010x}",
                b.place, b.stored, b.computed
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One footer found in the file.
#[derive(Debug, Clone)]
struct FooterAt {
    raw: Vec<u8>,
    footer: Footer,
    checksum_ok: bool,
}

/// Dynamic and differencing disks: the header and the BAT.
#[derive(Debug)]
struct Sparse {
    header_offset: u64,
    header: DynHeader,
    header_checksum: u32,
    bat: Vec<u32>,
    block_size: u64,
    bitmap_size: u64,
    /// End of the area blocks may use: the end footer, or the end of the
    /// file when that footer is missing.
    data_end: u64,
}

#[derive(Debug)]
enum Layout {
    Fixed,
    Sparse(Sparse),
}

/// An opened VHD image.
pub struct VhdImage {
    src: Arc<dyn Source>,
    info: ImageInfo,
    /// The footer the image is read by.
    footer: Footer,
    /// The footer in the last 512 bytes, if it has the cookie.
    end: Option<FooterAt>,
    /// The footer copy at offset 0, if it has the cookie (files ≥ 1 KiB).
    start: Option<FooterAt>,
    layout: Layout,
}

impl std::fmt::Debug for VhdImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhdImage")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn read_footer(src: &dyn Source, at: u64) -> Result<Option<FooterAt>, OpenError> {
    let mut raw = vec![0u8; 512];
    src.read_exact_at(at, &mut raw)
        .map_err(|source| OpenError::Io {
            what: "footer",
            source,
        })?;
    Ok(Footer::parse(&raw)
        .filter(Footer::has_cookie)
        .map(|footer| FooterAt {
            checksum_ok: footer.checksum == header::footer_checksum(&raw),
            raw,
            footer,
        }))
}

/// Opens a VHD. Fails only when the file cannot be understood at all; every
/// other problem is reported by [`DiskImage::check`](preflight_disk::DiskImage::check).
pub fn open(src: Arc<dyn Source>) -> Result<VhdImage, Finding> {
    open_inner(src).map_err(|e| e.finding())
}

fn open_inner(src: Arc<dyn Source>) -> Result<VhdImage, OpenError> {
    let file_size = src.size();
    let end_at = file_size
        .checked_sub(header::FOOTER_SIZE)
        .ok_or(OpenError::TooSmall(file_size))?;
    let end = read_footer(src.as_ref(), end_at)?;
    let start = if file_size >= 2 * header::FOOTER_SIZE {
        read_footer(src.as_ref(), 0)?
    } else {
        None
    };
    if end.is_none() && start.is_none() {
        return Err(OpenError::NoCookie);
    }
    // Only a footer whose checksum is right is believed, the one at the end
    // first. Without one, every field (the size first) could be anything:
    // a damaged footer, or a file that merely ends in `conectix`. qemu
    // refuses such a file too ("Incorrect header checksum").
    let chosen = [&end, &start].into_iter().flatten().find(|f| f.checksum_ok);
    let Some(chosen) = chosen else {
        let sums = [
            (&end, "at the end of the file"),
            (&start, "copy at offset 0"),
        ]
        .into_iter()
        .filter_map(|(f, place)| {
            f.as_ref().map(|f| BadSum {
                place,
                stored: f.footer.checksum,
                computed: header::footer_checksum(&f.raw),
            })
        })
        .collect();
        return Err(OpenError::FooterChecksum(sums));
    };
    let footer = chosen.footer.clone();

    let layout = match footer.disk_type {
        header::DISK_FIXED => Layout::Fixed,
        header::DISK_DYNAMIC | header::DISK_DIFFERENCING => {
            let data_end = if end.is_some() { end_at } else { file_size };
            Layout::Sparse(open_sparse(src.as_ref(), &footer, data_end)?)
        }
        other => return Err(OpenError::DiskType(other)),
    };
    let info = make_info(&footer, &layout, file_size);
    Ok(VhdImage {
        src,
        info,
        footer,
        end,
        start,
        layout,
    })
}

fn open_sparse(src: &dyn Source, footer: &Footer, data_end: u64) -> Result<Sparse, OpenError> {
    let file_size = src.size();
    let offset = footer.data_offset;
    let bad_offset = OpenError::DataOffset { offset, file_size };
    let raw = preflight_disk::read_vec(
        src,
        "dynamic header",
        offset,
        header::DYN_HEADER_SIZE,
        header::DYN_HEADER_SIZE,
    )
    .map_err(|e| match e {
        BoundsError::Io { source, .. } => OpenError::Io {
            what: "dynamic header",
            source,
        },
        _ => bad_offset,
    })?;
    let dyn_header = DynHeader::parse(&raw).ok_or(OpenError::DataOffset { offset, file_size })?;
    if &dyn_header.cookie != header::DYN_COOKIE {
        return Err(OpenError::DynCookie {
            offset,
            found: dyn_header.cookie,
        });
    }
    // The block size is what every later computation derives from: check it first.
    let bs = dyn_header.block_size;
    if bs < 512 || !bs.is_power_of_two() {
        return Err(OpenError::BlockSize(bs));
    }
    let entries = dyn_header.max_table_entries;
    if entries > tables::MAX_TABLE_ENTRIES {
        return Err(OpenError::MaxTableEntries(entries));
    }
    let bat = tables::read_bat(src, dyn_header.table_offset, entries).map_err(|source| {
        OpenError::Bat {
            offset: dyn_header.table_offset,
            entries,
            source,
        }
    })?;
    let block_size = u64::from(bs);
    Ok(Sparse {
        header_offset: offset,
        header_checksum: header::dyn_checksum(&raw),
        header: dyn_header,
        bat,
        block_size,
        bitmap_size: tables::bitmap_size(block_size),
        data_end,
    })
}

fn make_info(footer: &Footer, layout: &Layout, file_size: u64) -> ImageInfo {
    let mut info = ImageInfo::new(Format::Vhd, footer.current_size, file_size);
    info.version = Some(format!(
        "{}.{}",
        footer.version >> 16,
        footer.version & 0xffff
    ));
    let creator = footer.creator();
    if !creator.is_empty() {
        info.features.push(format!("creator:{creator}"));
    }
    if footer.features & 1 != 0 {
        info.features.push("temporary".to_string());
    }
    if footer.saved_state != 0 {
        info.features.push("saved_state".to_string());
    }
    match layout {
        Layout::Fixed => {
            info.subformat = Some("fixed".to_string());
            info.allocated_size = footer.current_size;
        }
        Layout::Sparse(s) => {
            let differencing = footer.disk_type == header::DISK_DIFFERENCING;
            info.subformat = Some(
                if differencing {
                    "differencing"
                } else {
                    "dynamic"
                }
                .to_string(),
            );
            let allocated = s.bat.iter().filter(|&&e| e != tables::UNALLOCATED).count();
            info.allocated_size = u64::try_from(allocated)
                .unwrap_or(u64::MAX)
                .saturating_mul(s.block_size);
            info.cluster_size = Some(s.block_size);
            if differencing && !s.header.parent_name.is_empty() {
                info.backing_file = Some(s.header.parent_name.clone());
            }
        }
    }
    info
}

preflight_disk::forward_disk_image!(VhdImage {
    read_at: reader::read_at,
    next_data: reader::next_data,
    check: check::check,
});

#[cfg(test)]
mod tests;
