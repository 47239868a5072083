//! The VHDX rules and the integrity check.

use crate::header::{self, HEADER_SECTION_END, MIB};
use crate::open::{describe_table, MAX_VIRTUAL_SIZE};
use crate::tables::{self, Extent};
use crate::VhdxImage;
use preflight_disk::{human_bytes, Regions};
use preflight_report::{Finding, FindingSink, Rule, Severity};

/// Most findings of one code listed before they are summarised: enough to
/// see a pattern, few enough to read, and bounded memory.
const MAX_PER_CODE: usize = 20;

const RECONVERT: &str =
    "Re-create the image from the source disk, or convert it to a format ECS imports: \
    `qemu-img convert -f vhdx -O qcow2 in.vhdx out.qcow2` (if qemu-img can still read it).";
const TRUNCATED: &str =
    "The file looks truncated (an interrupted copy or upload?): copy it again from the source.";

pub(crate) static IO: Rule = Rule::new(
    "VHDX.Io",
    Severity::Error,
    "The file can be read",
    "Check that the file is readable and its storage healthy.",
);
pub(crate) static SIGNATURE: Rule = Rule::new(
    "VHDX.Signature",
    Severity::Error,
    "The file starts with the `vhdxfile` identifier",
    RECONVERT,
);
pub(crate) static NO_VALID_HEADER: Rule = Rule::new(
    "VHDX.NoValidHeader",
    Severity::Error,
    "At least one of the two headers has signature `head`, a right CRC-32C and version 1",
    RECONVERT,
);
pub(crate) static HEADER_CORRUPT: Rule = Rule::new("VHDX.HeaderCorrupt", Severity::Warning, "Both headers are valid (one corrupt header is survivable: the other is used)", "Open and close the disk once in Hyper-V (Mount-VHD, Dismount-VHD) to rewrite its headers, or convert it: \
     `qemu-img convert -f vhdx -O qcow2 in.vhdx out.qcow2`.");
pub(crate) static REGION_TABLE: Rule = Rule::new(
    "VHDX.RegionTable",
    Severity::Error,
    "At least one region table has signature `regi`, a right CRC-32C and at most 2047 entries",
    RECONVERT,
);
pub(crate) static REGION_TABLE_COPY: Rule = Rule::new(
    "VHDX.RegionTableCopy",
    Severity::Warning,
    "Both region tables are valid and equal",
    RECONVERT,
);
pub(crate) static REGION_ENTRY: Rule = Rule::new(
    "VHDX.RegionEntry",
    Severity::Error,
    "The region table lists the BAT and metadata regions once each",
    RECONVERT,
);
pub(crate) static UNKNOWN_REQUIRED_REGION: Rule = Rule::new("VHDX.UnknownRequiredRegion", Severity::Error, "The region table has no unknown region marked required", "The file uses a VHDX extension we do not know: convert it with Hyper-V (Convert-VHD -VHDType Fixed) \
     to a VHD, or with qemu-img to qcow2.");
pub(crate) static REGION_PAST_EOF: Rule = Rule::new(
    "VHDX.RegionPastEof",
    Severity::Error,
    "The BAT and metadata regions lie inside the file",
    TRUNCATED,
);
pub(crate) static REGION_ALIGNMENT: Rule = Rule::new(
    "VHDX.RegionAlignment",
    Severity::Error,
    "Regions start at or after 1 MiB and their offsets and lengths are multiples of 1 MiB",
    RECONVERT,
);
pub(crate) static REGION_OVERLAP: Rule = Rule::new(
    "VHDX.RegionOverlap",
    Severity::Error,
    "The header section, log, metadata and BAT regions do not overlap",
    RECONVERT,
);
pub(crate) static LOG_REPLAY: Rule = Rule::new("VHDX.LogReplay", Severity::Error, "The log GUID is zero: no log entries wait to be replayed", "The disk was not closed cleanly and its log must be replayed before it can be read. Attach and detach it \
     once in Hyper-V (Mount-VHD, Dismount-VHD), or on a copy run `qemu-img check -r all copy.vhdx`, then check again.");
pub(crate) static LOG_REGION: Rule = Rule::new("VHDX.LogRegion", Severity::Error, "The log starts at or after 1 MiB, its offset and length are multiples of 1 MiB, and it lies inside the file", RECONVERT);
pub(crate) static METADATA_TABLE: Rule = Rule::new(
    "VHDX.MetadataTable",
    Severity::Error,
    "The metadata table has signature `metadata`, at most 2047 entries, and lists each item once",
    RECONVERT,
);
pub(crate) static UNKNOWN_REQUIRED_METADATA: Rule = Rule::new(
    "VHDX.UnknownRequiredMetadata",
    Severity::Error,
    "The metadata table has no unknown item marked required",
    "The file uses a VHDX extension we do not know: convert it with Hyper-V or qemu-img.",
);
pub(crate) static METADATA_ITEM: Rule = Rule::new(
    "VHDX.MetadataItem",
    Severity::Error,
    "Each metadata item lies inside the metadata region, after its table, and is long enough",
    RECONVERT,
);
pub(crate) static METADATA_MISSING: Rule = Rule::new("VHDX.MetadataMissing", Severity::Error, "The metadata holds file parameters, virtual disk size, virtual disk ID, logical and physical sector size \
     (and a parent locator for a differencing disk)", RECONVERT);
pub(crate) static BLOCK_SIZE: Rule = Rule::new(
    "VHDX.BlockSize",
    Severity::Error,
    "The block size is a power of two from 1 MiB to 256 MiB",
    RECONVERT,
);
pub(crate) static LOGICAL_SECTOR_SIZE: Rule = Rule::new(
    "VHDX.LogicalSectorSize",
    Severity::Error,
    "The logical sector size is 512 or 4096",
    RECONVERT,
);
pub(crate) static PHYSICAL_SECTOR_SIZE: Rule = Rule::new(
    "VHDX.PhysicalSectorSize",
    Severity::Warning,
    "The physical sector size is 512 or 4096",
    RECONVERT,
);
pub(crate) static VIRTUAL_SIZE: Rule = Rule::new(
    "VHDX.VirtualSize",
    Severity::Error,
    "The virtual size is at most 64 TiB and a multiple of the logical sector size",
    RECONVERT,
);
pub(crate) static BAT_TOO_SMALL: Rule = Rule::new(
    "VHDX.BatTooSmall",
    Severity::Error,
    "The BAT region holds an entry for every block of the virtual size",
    RECONVERT,
);
pub(crate) static BAT_ENTRY_STATE: Rule = Rule::new(
    "VHDX.BatEntryState",
    Severity::Error,
    "Each BAT entry has a state valid for its kind (payload or sector bitmap) and disk type",
    RECONVERT,
);
pub(crate) static BLOCK_PAST_EOF: Rule = Rule::new(
    "VHDX.BlockPastEof",
    Severity::Error,
    "Each allocated block (and sector bitmap) lies inside the file",
    TRUNCATED,
);
pub(crate) static BLOCK_OVERLAP: Rule = Rule::new(
    "VHDX.BlockOverlap",
    Severity::Error,
    "Allocated blocks overlap neither each other nor the header section, log, metadata or BAT",
    RECONVERT,
);
pub(crate) static DIFFERENCING: Rule = Rule::new("VHDX.Differencing", Severity::Error, "The disk is not a differencing disk (it is incomplete without its parent)", "Merge it into its parent in Hyper-V (Edit Disk > Merge), or write a standalone copy: \
     `qemu-img convert -O vpc -o subformat=fixed,force_size=on child.vhdx out.vhd` (with the parent beside it).");

/// Every rule this crate checks, for `ecs-preflight rules`.
pub static RULES: &[&Rule] = &[
    &IO,
    &SIGNATURE,
    &NO_VALID_HEADER,
    &HEADER_CORRUPT,
    &REGION_TABLE,
    &REGION_TABLE_COPY,
    &REGION_ENTRY,
    &UNKNOWN_REQUIRED_REGION,
    &REGION_PAST_EOF,
    &REGION_ALIGNMENT,
    &REGION_OVERLAP,
    &LOG_REPLAY,
    &LOG_REGION,
    &METADATA_TABLE,
    &UNKNOWN_REQUIRED_METADATA,
    &METADATA_ITEM,
    &METADATA_MISSING,
    &BLOCK_SIZE,
    &LOGICAL_SECTOR_SIZE,
    &PHYSICAL_SECTOR_SIZE,
    &VIRTUAL_SIZE,
    &BAT_TOO_SMALL,
    &BAT_ENTRY_STATE,
    &BLOCK_PAST_EOF,
    &BLOCK_OVERLAP,
    &DIFFERENCING,
];

pub(crate) fn check(img: &VhdxImage) -> Vec<Finding> {
    let mut out = FindingSink::new(MAX_PER_CODE);
    check_headers(img, &mut out);
    let regions = check_regions(img, &mut out);
    check_metadata(img, &mut out);
    check_bat(img, &regions, &mut out);
    out.into_findings()
}

fn check_headers(img: &VhdxImage, out: &mut FindingSink) {
    let [h1, h2] = &img.headers;
    match (h1, h2) {
        (Some(a), Some(b)) if a.is_valid() && b.is_valid() => {
            if a.sequence == b.sequence && a != b {
                out.push(HEADER_CORRUPT.finding(format!(
                    "both headers have sequence number {} but differ; header 1 is used",
                    a.sequence
                )));
            }
        }
        _ => {
            let bad = if img.active == 0 { 2 } else { 1 };
            let h = if bad == 1 { h1 } else { h2 };
            let why = match h {
                None => "is past the end of the file".to_string(),
                Some(h) if &h.signature != b"head" => {
                    format!("has signature {:02x?}, not `head`", h.signature)
                }
                Some(h) if h.checksum != h.computed => format!(
                    "stores CRC-32C {:#010x} but its bytes give {:#010x}",
                    h.checksum, h.computed
                ),
                Some(h) => format!("has version {}, not 1", h.version),
            };
            out.push(HEADER_CORRUPT.finding(format!(
                "header {bad} {why}; header {} is used",
                img.active.saturating_add(1)
            )));
        }
    }
    let Some(h) = img.active_header() else { return };
    if h.log_in_use() {
        out.push(LOG_REPLAY.finding(format!(
            "the active header's log GUID is {}: the log ({} bytes at offset {}) may hold writes not yet applied",
            crate::guid_str(&h.log_guid),
            h.log_length,
            h.log_offset
        )));
    }
    if h.log_length > 0 {
        let len = u64::from(h.log_length);
        let end = h.log_offset.saturating_add(len);
        let file_size = img.src.size();
        if h.log_offset % MIB != 0
            || len % MIB != 0
            || h.log_offset < HEADER_SECTION_END
            || end > file_size
        {
            out.push(LOG_REGION.finding(format!(
                "the log is {len} bytes at offset {} (ending at {end}) in a {file_size}-byte file",
                h.log_offset
            )));
        }
    }
}

/// Checks the regions; returns the file areas blocks must not touch.
fn check_regions(img: &VhdxImage, out: &mut FindingSink) -> Vec<preflight_disk::Region> {
    let [t1, t2] = &img.region_tables;
    let valid =
        |t: &Option<header::RegionTable>| t.as_ref().is_some_and(header::RegionTable::is_valid);
    if !valid(t1) || !valid(t2) {
        let bad: usize = if valid(t1) { 1 } else { 0 };
        let t = if bad == 0 { t1 } else { t2 };
        out.push(REGION_TABLE_COPY.finding(format!(
            "{}; region table {} is used",
            describe_table(bad.saturating_add(1), t),
            img.used_table.saturating_add(1)
        )));
    } else if let (Some(a), Some(b)) = (t1, t2) {
        if a.entries != b.entries {
            out.push(
                REGION_TABLE_COPY
                    .finding("the two region tables list different regions; table 1 is used"),
            );
        }
    }

    let file_size = img.src.size();
    let mut regions = Regions::new();
    regions.add("header section", 0, HEADER_SECTION_END);
    if let Some(h) = img.active_header().filter(|h| h.log_length > 0) {
        add_region(
            &mut regions,
            out,
            "log",
            h.log_offset,
            u64::from(h.log_length),
        );
    }
    for (name, r) in [
        ("metadata region", &img.metadata_region),
        ("BAT region", &img.bat_region),
    ] {
        let len = u64::from(r.length);
        add_region(&mut regions, out, name, r.offset, len);
        if r.offset % MIB != 0 || len % MIB != 0 || r.offset < HEADER_SECTION_END {
            out.push(
                REGION_ALIGNMENT
                    .finding(format!("the {name} is {len} bytes at offset {}", r.offset)),
            );
        }
        let end = r.offset.saturating_add(len);
        if end > file_size {
            out.push(REGION_PAST_EOF.finding(format!(
                "the {name} ends at {end}, past the end of the {file_size}-byte file"
            )));
        }
    }
    regions.all().to_vec()
}

fn add_region(regions: &mut Regions, out: &mut FindingSink, name: &str, start: u64, len: u64) {
    if let Some(other) = regions.add(name, start, len) {
        out.push(REGION_OVERLAP.finding(format!(
            "the {name} at {start}..{} overlaps the {} at {}..{}",
            start.saturating_add(len),
            other.name,
            other.start,
            other.end
        )));
    }
}

fn check_metadata(img: &VhdxImage, out: &mut FindingSink) {
    let m = &img.meta;
    if let Some(p) = m.physical_sector.filter(|&p| p != 512 && p != 4096) {
        out.push(PHYSICAL_SECTOR_SIZE.finding(format!("the physical sector size is {p}")));
    }
    if m.physical_sector.is_none() {
        out.push(METADATA_MISSING.finding("the metadata has no physical sector size item"));
    }
    if !m.disk_id_present {
        out.push(METADATA_MISSING.finding("the metadata has no virtual disk ID item"));
    }
    if m.virtual_size.checked_rem(u64::from(m.logical_sector)) != Some(0)
        || m.virtual_size > MAX_VIRTUAL_SIZE
    {
        out.push(VIRTUAL_SIZE.finding(format!(
            "the virtual size {} is not a multiple of the {}-byte logical sector",
            m.virtual_size, m.logical_sector
        )));
    }
    if m.has_parent {
        if !m.parent_locator_present {
            out.push(METADATA_MISSING.finding("a differencing disk has no parent locator item"));
        }
        let parent = m.parent_path.as_deref().unwrap_or("(not named)");
        out.push(DIFFERENCING.finding(format!(
            "this is a differencing VHDX (HasParent) whose parent is {parent}: it holds only the changes to \
             the parent and cannot be imported alone"
        )));
    }
}

fn check_bat(img: &VhdxImage, regions: &[preflight_disk::Region], out: &mut FindingSink) {
    let g = &img.geometry;
    let diff = img.meta.has_parent;
    let file_size = img.src.size();
    // Allocated extents, for the overlap sweep: memory at most three times the BAT.
    let mut extents: Vec<Extent> = Vec::new();
    for (i, &e) in img.bat.iter().enumerate() {
        let index = u64::try_from(i).unwrap_or(u64::MAX);
        let state = e & tables::STATE_MASK;
        let offset = e & tables::OFFSET_MASK;
        let bitmap = g.is_bitmap_entry(index);
        let (kind, len, present) = if bitmap {
            match state {
                tables::SB_NOT_PRESENT => ("sector bitmap", tables::SECTOR_BITMAP_SIZE, false),
                tables::SB_PRESENT => ("sector bitmap", tables::SECTOR_BITMAP_SIZE, true),
                _ => {
                    out.push(BAT_ENTRY_STATE.finding(format!(
                        "BAT entry {index} (a sector bitmap entry) has state {state}, not 0 or 6"
                    )));
                    continue;
                }
            }
        } else {
            match state {
                tables::PAYLOAD_NOT_PRESENT
                | tables::PAYLOAD_UNDEFINED
                | tables::PAYLOAD_ZERO
                | tables::PAYLOAD_UNMAPPED
                | tables::PAYLOAD_UNMAPPED_V095 => ("block", g.block_size, false),
                tables::PAYLOAD_FULLY_PRESENT => ("block", g.block_size, true),
                tables::PAYLOAD_PARTIALLY_PRESENT if diff => ("block", g.block_size, true),
                _ => {
                    let why = if state == tables::PAYLOAD_PARTIALLY_PRESENT {
                        "PARTIALLY_PRESENT, which only a differencing disk may use".to_string()
                    } else {
                        format!("{state}, which is not a payload state")
                    };
                    out.push(BAT_ENTRY_STATE.finding(format!(
                        "BAT entry {index} (a payload block) has state {why}"
                    )));
                    continue;
                }
            }
        };
        if !present {
            continue;
        }
        let end = offset.saturating_add(len);
        if end > file_size {
            out.push(BLOCK_PAST_EOF.finding(format!(
                "the {kind} of BAT entry {index} occupies file bytes {offset}..{end}, past the end of the \
                 {}-byte file",
                human_bytes(file_size)
            )));
        }
        if let Some(r) = regions.iter().find(|r| offset < r.end && r.start < end) {
            out.push(BLOCK_OVERLAP.finding(format!(
                "the {kind} of BAT entry {index} at file bytes {offset}..{end} overlaps the {} at {}..{}",
                r.name, r.start, r.end
            )));
        }
        extents.push((offset, len, index));
    }
    for (a, b) in preflight_disk::overlapping_extents(&mut extents) {
        out.push(BLOCK_OVERLAP.finding(format!(
            "BAT entries {} and {} overlap: file bytes {}..{} and {}..{}",
            a.2,
            b.2,
            a.0,
            a.0.saturating_add(a.1),
            b.0,
            b.0.saturating_add(b.1)
        )));
    }
}
