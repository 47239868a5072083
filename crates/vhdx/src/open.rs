//! Opening: headers, region tables, metadata and the BAT, with the fatal
//! errors that stop it.

use crate::header::{self, Header, MetadataTable, RegionEntry, RegionTable, KIB64};
use crate::tables::{self, Geometry};
use crate::{check, guid_str, Meta, VhdxImage};
use preflight_disk::{read_vec, BoundsError, Format, ImageInfo, Source};
use preflight_report::Finding;
use std::sync::Arc;

/// Smallest block size (MS-VHDX, qemu `VHDX_BLOCK_SIZE_MIN`).
const BLOCK_SIZE_MIN: u64 = 1 << 20;
/// Largest block size (MS-VHDX, qemu `VHDX_BLOCK_SIZE_MAX`).
const BLOCK_SIZE_MAX: u64 = 256 << 20;
/// Largest virtual size: 64 TiB (MS-VHDX, qemu `VHDX_MAX_IMAGE_SIZE`). Also
/// what bounds the BAT, see [`tables::MAX_BAT_ENTRIES`].
pub(crate) const MAX_VIRTUAL_SIZE: u64 = 64 << 40;
/// Largest metadata item read: MS-VHDX caps items at 1 MiB.
const MAX_ITEM_SIZE: u64 = 1 << 20;

/// Why [`crate::open`] could not understand a file. Each variant maps to
/// one rule of [`crate::RULES`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("reading {what}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("no `vhdxfile` signature at offset 0 (the file is only {0} bytes)")]
    FileTooSmall(u64),
    #[error("no `vhdxfile` signature at offset 0 (found {0:02x?})")]
    Signature([u8; 8]),
    #[error("neither header is valid: {}; {}", .0[0], .0[1])]
    NoValidHeader([CopyState; 2]),
    #[error("neither region table is valid: {}; {}", .0[0], .0[1])]
    RegionTable([CopyState; 2]),
    #[error("{0}")]
    RegionEntry(RegionEntryFault),
    #[error("the region table lists an unknown region {} marked required", guid_str(.0))]
    UnknownRequiredRegion([u8; 16]),
    #[error("{what} at offset {offset} ({len} bytes) passes the end of the {file_size}-byte file")]
    RegionPastEof {
        what: &'static str,
        offset: u64,
        len: u64,
        file_size: u64,
    },
    #[error("{0}")]
    MetadataTable(MetadataTableFault),
    #[error("the metadata table lists an unknown item {} marked required", guid_str(.0))]
    UnknownRequiredMetadata([u8; 16]),
    #[error("{0}")]
    MetadataItem(MetadataItemFault),
    #[error("the metadata has no {0} item")]
    MetadataMissing(&'static str),
    #[error("block size {0} is not a power of two from 1 MiB to 256 MiB")]
    BlockSize(u32),
    #[error("logical sector size {0} is not 512 or 4096")]
    LogicalSectorSize(u32),
    #[error("virtual size {0} is over the VHDX limit of 64 TiB")]
    VirtualSize(u64),
    #[error("the BAT region is {region} bytes but the disk needs {entries} entries ({} bytes)", entries.saturating_mul(8))]
    BatTooSmall { region: u32, entries: u64 },
}

impl OpenError {
    pub(crate) fn finding(&self) -> Finding {
        let rule = match self {
            OpenError::Io { .. } => &check::IO,
            OpenError::FileTooSmall(_) | OpenError::Signature(_) => &check::SIGNATURE,
            OpenError::NoValidHeader(_) => &check::NO_VALID_HEADER,
            OpenError::RegionTable(_) => &check::REGION_TABLE,
            OpenError::RegionEntry(_) => &check::REGION_ENTRY,
            OpenError::UnknownRequiredRegion(_) => &check::UNKNOWN_REQUIRED_REGION,
            OpenError::RegionPastEof { .. } => &check::REGION_PAST_EOF,
            OpenError::MetadataTable(_) => &check::METADATA_TABLE,
            OpenError::UnknownRequiredMetadata(_) => &check::UNKNOWN_REQUIRED_METADATA,
            OpenError::MetadataItem(_) => &check::METADATA_ITEM,
            OpenError::MetadataMissing(_) => &check::METADATA_MISSING,
            OpenError::BlockSize(_) => &check::BLOCK_SIZE,
            OpenError::LogicalSectorSize(_) => &check::LOGICAL_SECTOR_SIZE,
            OpenError::VirtualSize(_) => &check::VIRTUAL_SIZE,
            OpenError::BatTooSmall { .. } => &check::BAT_TOO_SMALL,
        };
        rule.finding(preflight_disk::error_chain(self))
    }
}

/// Reads a fixed-size structure; `Ok(None)` when it is past the end of the file.
fn read_struct(
    src: &dyn Source,
    what: &'static str,
    offset: u64,
    len: u64,
) -> Result<Option<Vec<u8>>, OpenError> {
    match read_vec(src, what, offset, len, len) {
        Ok(v) => Ok(Some(v)),
        Err(BoundsError::Io { source, .. }) => Err(OpenError::Io { what, source }),
        Err(_) => Ok(None),
    }
}

/// Reads a region's content, failing with `RegionPastEof`.
fn read_region(
    src: &dyn Source,
    what: &'static str,
    offset: u64,
    len: u64,
    limit: u64,
) -> Result<Vec<u8>, OpenError> {
    read_vec(src, what, offset, len, limit).map_err(|e| match e {
        BoundsError::Io { source, .. } => OpenError::Io { what, source },
        _ => OpenError::RegionPastEof {
            what,
            offset,
            len,
            file_size: src.size(),
        },
    })
}

/// The state of one copy of a structure kept twice (a header, a region table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{structure} {n} {fault}")]
pub(crate) struct CopyState {
    /// `header` or `region table`.
    structure: &'static str,
    /// Which copy, from 1.
    n: usize,
    fault: CopyFault,
}

/// What is wrong with one copy, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CopyFault {
    #[error("is past the end of the file")]
    PastEnd,
    #[error("has signature {0:02x?}, not `{expected}`", expected = String::from_utf8_lossy(.1.as_slice()))]
    Signature([u8; 4], &'static [u8; 4]),
    #[error("stores CRC-32C {stored:#010x} but its bytes give {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("has version {0}, not 1")]
    Version(u16),
    #[error("has {0} entries, over 2047")]
    TooManyEntries(u32),
    #[error("is valid")]
    Valid,
}

fn describe_header(n: usize, h: &Option<Header>) -> CopyState {
    let fault = match h {
        None => CopyFault::PastEnd,
        Some(h) if &h.signature != b"head" => CopyFault::Signature(h.signature, b"head"),
        Some(h) if h.checksum != h.computed => CopyFault::Checksum {
            stored: h.checksum,
            computed: h.computed,
        },
        Some(h) if h.version != 1 => CopyFault::Version(h.version),
        Some(_) => CopyFault::Valid,
    };
    CopyState {
        structure: "header",
        n,
        fault,
    }
}

pub(crate) fn describe_table(n: usize, t: &Option<RegionTable>) -> CopyState {
    let fault = match t {
        None => CopyFault::PastEnd,
        Some(t) if &t.signature != b"regi" => CopyFault::Signature(t.signature, b"regi"),
        Some(t) if t.checksum != t.computed => CopyFault::Checksum {
            stored: t.checksum,
            computed: t.computed,
        },
        Some(t) if t.entry_count > header::MAX_REGION_ENTRIES => {
            CopyFault::TooManyEntries(t.entry_count)
        }
        Some(_) => CopyFault::Valid,
    };
    CopyState {
        structure: "region table",
        n,
        fault,
    }
}

/// What is wrong with the region table's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegionEntryFault {
    #[error("the region table lists region {} twice", guid_str(.0))]
    Twice([u8; 16]),
    #[error("the region table has no {0} region")]
    Missing(&'static str),
}

/// What is wrong with the metadata table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MetadataTableFault {
    #[error("the metadata region is {0} bytes, smaller than its 64 KiB table")]
    RegionTooSmall(u32),
    #[error("the metadata table cannot be parsed")]
    Unparsable,
    #[error("the metadata table has signature {0:02x?}, not `metadata`")]
    Signature([u8; 8]),
    #[error("the metadata table has {0} entries, over 2047")]
    TooManyEntries(u16),
    #[error("the metadata table lists the {0} item twice")]
    ItemTwice(&'static str),
}

/// What is wrong with a metadata item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MetadataItemFault {
    #[error("the {name} item at {offset} ({len} bytes) is not inside the {region_len}-byte metadata region after its table")]
    Outside {
        name: &'static str,
        offset: u64,
        len: u64,
        region_len: u32,
    },
    #[error("the {name} item is {len} bytes, too short")]
    Short { name: &'static str, len: usize },
}

pub(crate) fn open(src: Arc<dyn Source>) -> Result<VhdxImage, OpenError> {
    let s = src.as_ref();
    let file_size = s.size();
    let ident =
        read_struct(s, "file identifier", 0, 520)?.ok_or(OpenError::FileTooSmall(file_size))?;
    let creator = header::utf16le(ident.get(8..).unwrap_or(&[]));
    if ident.get(..8) != Some(header::FILE_SIGNATURE.as_slice()) {
        let found = ident.get(..8).and_then(|b| b.try_into().ok());
        return Err(OpenError::Signature(found.unwrap_or_default()));
    }

    // Headers: the valid one with the higher sequence number is active.
    let [h1, h2] = header::HEADER_OFFSETS;
    let headers = [
        read_struct(s, "header 1", h1, header::HEADER_SIZE)?.and_then(|b| Header::parse(&b)),
        read_struct(s, "header 2", h2, header::HEADER_SIZE)?.and_then(|b| Header::parse(&b)),
    ];
    let seq = |i: usize| {
        headers
            .get(i)
            .and_then(Option::as_ref)
            .filter(|h| h.is_valid())
            .map(|h| h.sequence)
    };
    let active = match (seq(0), seq(1)) {
        (Some(a), Some(b)) => usize::from(b > a),
        (Some(_), None) => 0,
        (None, Some(_)) => 1,
        (None, None) => {
            return Err(OpenError::NoValidHeader([
                describe_header(1, &headers[0]),
                describe_header(2, &headers[1]),
            ]))
        }
    };

    // Region tables: the first valid copy.
    let [r1, r2] = header::REGION_TABLE_OFFSETS;
    let region_tables = [
        read_struct(s, "region table 1", r1, header::REGION_TABLE_SIZE)?
            .and_then(|b| RegionTable::parse(&b)),
        read_struct(s, "region table 2", r2, header::REGION_TABLE_SIZE)?
            .and_then(|b| RegionTable::parse(&b)),
    ];
    let (used_table, table) = region_tables
        .iter()
        .enumerate()
        .find_map(|(i, t)| t.as_ref().filter(|t| t.is_valid()).map(|t| (i, t)))
        .ok_or_else(|| {
            OpenError::RegionTable([
                describe_table(1, &region_tables[0]),
                describe_table(2, &region_tables[1]),
            ])
        })?;
    let mut bat_region: Option<RegionEntry> = None;
    let mut metadata_region: Option<RegionEntry> = None;
    for e in &table.entries {
        let slot = if e.guid == header::BAT_GUID {
            &mut bat_region
        } else if e.guid == header::METADATA_GUID {
            &mut metadata_region
        } else if e.required {
            return Err(OpenError::UnknownRequiredRegion(e.guid));
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(OpenError::RegionEntry(RegionEntryFault::Twice(e.guid)));
        }
        *slot = Some(e.clone());
    }
    let bat_region = bat_region.ok_or(OpenError::RegionEntry(RegionEntryFault::Missing("BAT")))?;
    let metadata_region = metadata_region.ok_or(OpenError::RegionEntry(
        RegionEntryFault::Missing("metadata"),
    ))?;

    let meta = read_metadata(s, &metadata_region)?;
    let geometry = Geometry::new(
        meta.virtual_size,
        meta.block_size,
        u64::from(meta.logical_sector),
        meta.has_parent,
    );
    if geometry.entries.saturating_mul(8) > u64::from(bat_region.length) {
        return Err(OpenError::BatTooSmall {
            region: bat_region.length,
            entries: geometry.entries,
        });
    }
    let bat = tables::read_bat(s, bat_region.offset, geometry.entries).map_err(|e| match e {
        BoundsError::Io { source, .. } => OpenError::Io {
            what: "BAT",
            source,
        },
        _ => OpenError::RegionPastEof {
            what: "BAT",
            offset: bat_region.offset,
            len: geometry.entries.saturating_mul(8),
            file_size,
        },
    })?;

    let log_in_use = headers
        .get(active)
        .and_then(Option::as_ref)
        .is_some_and(Header::log_in_use);
    let version = headers
        .get(active)
        .and_then(Option::as_ref)
        .map(|h| h.version.to_string());
    let info = make_info(
        &meta, &geometry, &bat, file_size, &creator, log_in_use, version,
    );
    Ok(VhdxImage {
        src,
        info,
        headers,
        active,
        region_tables,
        used_table,
        bat_region,
        metadata_region,
        meta,
        geometry,
        bat,
    })
}

const KNOWN_ITEMS: [([u8; 16], &str); 6] = [
    (header::FILE_PARAMETERS, "file parameters"),
    (header::VIRTUAL_DISK_SIZE, "virtual disk size"),
    (header::VIRTUAL_DISK_ID, "virtual disk ID"),
    (header::LOGICAL_SECTOR_SIZE, "logical sector size"),
    (header::PHYSICAL_SECTOR_SIZE, "physical sector size"),
    (header::PARENT_LOCATOR, "parent locator"),
];

fn read_metadata(s: &dyn Source, region: &RegionEntry) -> Result<Meta, OpenError> {
    if u64::from(region.length) < header::METADATA_TABLE_SIZE {
        return Err(OpenError::MetadataTable(
            MetadataTableFault::RegionTooSmall(region.length),
        ));
    }
    let raw = read_region(
        s,
        "metadata table",
        region.offset,
        header::METADATA_TABLE_SIZE,
        header::METADATA_TABLE_SIZE,
    )?;
    let table = MetadataTable::parse(&raw)
        .ok_or(OpenError::MetadataTable(MetadataTableFault::Unparsable))?;
    if &table.signature != b"metadata" {
        return Err(OpenError::MetadataTable(MetadataTableFault::Signature(
            table.signature,
        )));
    }
    if table.entry_count > header::MAX_METADATA_ENTRIES {
        return Err(OpenError::MetadataTable(
            MetadataTableFault::TooManyEntries(table.entry_count),
        ));
    }
    // Item contents, in KNOWN_ITEMS order.
    let mut items: [Option<Vec<u8>>; 6] = Default::default();
    for e in &table.entries {
        let Some(k) = KNOWN_ITEMS.iter().position(|(g, _)| *g == e.item) else {
            if e.required {
                return Err(OpenError::UnknownRequiredMetadata(e.item));
            }
            continue;
        };
        let name = KNOWN_ITEMS.get(k).map_or("item", |(_, n)| *n);
        // k indexes KNOWN_ITEMS, which has as many entries as items.
        let Some(slot) = items.get_mut(k) else {
            continue;
        };
        if slot.is_some() {
            return Err(OpenError::MetadataTable(MetadataTableFault::ItemTwice(
                name,
            )));
        }
        if e.length == 0 {
            continue;
        }
        let (off, len) = (u64::from(e.offset), u64::from(e.length));
        if off < KIB64 || off.saturating_add(len) > u64::from(region.length) || len > MAX_ITEM_SIZE
        {
            return Err(OpenError::MetadataItem(MetadataItemFault::Outside {
                name,
                offset: off,
                len,
                region_len: region.length,
            }));
        }
        *slot = Some(read_region(
            s,
            "metadata item",
            region.offset.saturating_add(off),
            len,
            MAX_ITEM_SIZE,
        )?);
    }
    let [params, size, disk_id, logical, physical, locator] = items;
    let short = |name: &'static str, len: usize| {
        OpenError::MetadataItem(MetadataItemFault::Short { name, len })
    };
    let params = params.ok_or(OpenError::MetadataMissing("file parameters"))?;
    let (block_size, flags) = match (params.get(..4), params.get(4..8)) {
        (Some(a), Some(b)) => (
            header::le_u32_at(a).unwrap_or(0),
            header::le_u32_at(b).unwrap_or(0),
        ),
        _ => return Err(short("file parameters", params.len())),
    };
    let size = size.ok_or(OpenError::MetadataMissing("virtual disk size"))?;
    let virtual_size =
        header::le_u64_at(&size).ok_or_else(|| short("virtual disk size", size.len()))?;
    let logical = logical.ok_or(OpenError::MetadataMissing("logical sector size"))?;
    let logical_sector =
        header::le_u32_at(&logical).ok_or_else(|| short("logical sector size", logical.len()))?;
    let physical_sector = physical.as_deref().and_then(header::le_u32_at);

    // The block size is what every later computation derives from.
    let bs = u64::from(block_size);
    if !(BLOCK_SIZE_MIN..=BLOCK_SIZE_MAX).contains(&bs) || !bs.is_power_of_two() {
        return Err(OpenError::BlockSize(block_size));
    }
    if logical_sector != 512 && logical_sector != 4096 {
        return Err(OpenError::LogicalSectorSize(logical_sector));
    }
    if virtual_size > MAX_VIRTUAL_SIZE {
        return Err(OpenError::VirtualSize(virtual_size));
    }
    let has_parent = flags & 2 != 0;
    Ok(Meta {
        block_size: bs,
        leave_blocks_allocated: flags & 1 != 0,
        has_parent,
        virtual_size,
        logical_sector,
        physical_sector,
        disk_id_present: disk_id.as_ref().is_some_and(|d| d.len() >= 16),
        parent_locator_present: locator.is_some(),
        parent_path: locator.as_deref().and_then(header::parent_path),
    })
}

fn make_info(
    meta: &Meta,
    g: &Geometry,
    bat: &[u64],
    file_size: u64,
    creator: &str,
    log_in_use: bool,
    version: Option<String>,
) -> ImageInfo {
    let mut info = ImageInfo::new(Format::Vhdx, meta.virtual_size, file_size);
    info.subformat = Some(
        if meta.has_parent {
            "differencing"
        } else if meta.leave_blocks_allocated {
            "fixed"
        } else {
            "dynamic"
        }
        .to_string(),
    );
    info.cluster_size = Some(meta.block_size);
    let present = (0..g.data_blocks)
        .filter_map(|b| usize::try_from(g.payload_index(b)).ok())
        .filter_map(|i| bat.get(i))
        .filter(|&&e| e & tables::STATE_MASK == tables::PAYLOAD_FULLY_PRESENT)
        .count();
    info.allocated_size = u64::try_from(present)
        .unwrap_or(u64::MAX)
        .saturating_mul(meta.block_size);
    info.version = version;
    let creator = creator.trim();
    if !creator.is_empty() {
        info.features.push(format!("creator:{creator}"));
    }
    info.features
        .push(format!("logical_sector_size:{}", meta.logical_sector));
    if let Some(p) = meta.physical_sector {
        info.features.push(format!("physical_sector_size:{p}"));
    }
    if log_in_use {
        info.features.push("log_replay_needed".to_string());
    }
    if meta.has_parent {
        info.backing_file = meta.parent_path.clone();
    }
    info
}
