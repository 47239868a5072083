//! The VHD rules and the integrity check.
//!
//! # `InvalidVHDImage.IncorrectSize`
//!
//! ECS answers `403 InvalidVHDImage.IncorrectSize` when "the size of the VHD
//! image does not meet the 'header.MaxTableEntries * header.BlockSize'
//! specification". Whether ECS wants equality or only coverage is not
//! documented. qemu refuses a dynamic disk whose table does not cover it
//! (`max_table_entries * block_size < current_size`, "Page table too
//! small"), and that is certainly broken, so that case is the **error**
//! `InvalidVHDImage.IncorrectSize`. qemu itself writes
//! `ceil(current_size / block_size)` entries, so a qemu-made disk whose size
//! is not a multiple of the 2 MiB block has a table slightly larger than the
//! disk; Hyper-V sizes are block multiples and match exactly. Because ECS's
//! wording could mean equality, a table larger than the disk is the
//! **warning** `VHD.TableSizeNotExact`, whose hint shows how to make them
//! equal (`force_size=on` and a size that is a multiple of 2 MiB).
//!
//! # `InvalidBlockSize.NotSupport`
//!
//! The ECS code is used for a block size that is not a power of two of at
//! least 512 bytes (qemu: "Invalid block size"), which stops the open. Every
//! VHD tool writes 2 MiB blocks; another valid size is the warning
//! `VHD.UnusualBlockSize`, because ECS may answer
//! `InvalidBlockSize.NotSupport` for it.

use crate::header::{self, Footer};
use crate::{tables, FooterAt, Layout, Sparse, VhdImage};
use preflight_disk::{human_bytes, Regions};
use preflight_report::{Finding, FindingSink, Rule, Severity};

/// Most findings of one code listed before they are summarised: enough to
/// see a pattern, few enough to read, and bounded memory.
pub(crate) const MAX_PER_CODE: usize = 20;

/// The VHD size limit: qemu's `VHD_MAX_SECTORS` (0xff000000 sectors =
/// 2040 GiB), the most a CHS geometry can describe.
const MAX_SIZE: u64 = 0xff00_0000 * 512;

/// The block size every VHD tool (Hyper-V, Virtual PC, qemu) writes.
const USUAL_BLOCK_SIZE: u64 = 2 << 20;

const RECONVERT: &str = "Re-create the VHD from the source disk, e.g. \
    `qemu-img convert -O vpc -o subformat=dynamic,force_size=on in.img out.vhd`.";

pub(crate) static TOO_SMALL: Rule = Rule::new(
    "VHD.TooSmall",
    Severity::Error,
    "The file holds at least the 512-byte footer",
    RECONVERT,
);
pub(crate) static COOKIE: Rule = Rule::new(
    "VHD.Cookie",
    Severity::Error,
    "A `conectix` footer is in the last 512 bytes (dynamic disks: also at offset 0)",
    "The file is not a VHD, or it was truncated (copy it again), or re-create it: \
     `qemu-img convert -O vpc -o subformat=dynamic,force_size=on in.img out.vhd`.",
);
pub(crate) static IO: Rule = Rule::new(
    "VHD.Io",
    Severity::Error,
    "The file can be read",
    "Check that the file is readable and its storage healthy.",
);
pub(crate) static DISK_TYPE: Rule = Rule::new(
    "VHD.DiskType",
    Severity::Error,
    "The disk type is 2 (fixed), 3 (dynamic) or 4 (differencing)",
    RECONVERT,
);
pub(crate) static DATA_OFFSET: Rule = Rule::new(
    "VHD.DataOffset",
    Severity::Error,
    "The dynamic header at the footer's data offset lies inside the file",
    RECONVERT,
);
pub(crate) static DYN_COOKIE: Rule = Rule::new(
    "VHD.DynamicHeaderCookie",
    Severity::Error,
    "The dynamic header starts with `cxsparse`",
    RECONVERT,
);
pub(crate) static BLOCK_SIZE: Rule = Rule::new("InvalidBlockSize.NotSupport", Severity::Error, "The block size is a power of two of at least 512 bytes (ECS InvalidBlockSize.NotSupport; qemu: Invalid block size)", "Re-create the VHD with qemu-img, which writes 2 MiB blocks: \
     `qemu-img convert -O vpc -o subformat=dynamic,force_size=on in.img out.vhd`.");
pub(crate) static MAX_TABLE_ENTRIES: Rule = Rule::new(
    "VHD.MaxTableEntries",
    Severity::Error,
    "MaxTableEntries is at most 536870911 (qemu: Max Table Entries too large)",
    RECONVERT,
);
pub(crate) static BAT_PAST_EOF: Rule = Rule::new(
    "VHD.BatPastEof",
    Severity::Error,
    "The BAT lies inside the file",
    "The file was truncated or its header is corrupt: copy it again, or re-create it with \
     `qemu-img convert -O vpc -o subformat=dynamic,force_size=on in.img out.vhd`.",
);
pub(crate) static FOOTER_CHECKSUM: Rule = Rule::new(
    "VHD.FooterChecksum",
    Severity::Error,
    "The footer checksum is right (qemu refuses the image: Incorrect header checksum)",
    RECONVERT,
);
pub(crate) static FOOTER_MISSING: Rule = Rule::new(
    "VHD.FooterMissing",
    Severity::Error,
    "The footer is in the last 512 bytes of the file",
    "The file looks truncated (an interrupted copy or upload?): copy it again from the source.",
);
pub(crate) static FOOTER_COPY: Rule = Rule::new(
    "VHD.FooterCopyMismatch",
    Severity::Warning,
    "A dynamic disk's footer copy at offset 0 equals the footer at the end",
    RECONVERT,
);
pub(crate) static FEATURES: Rule = Rule::new(
    "VHD.Features",
    Severity::Warning,
    "The footer's features field has the reserved bit 0x2 set and no unknown bits",
    RECONVERT,
);
pub(crate) static VERSION: Rule = Rule::new(
    "VHD.Version",
    Severity::Warning,
    "The footer and dynamic header versions are 1.0 (0x00010000)",
    RECONVERT,
);
pub(crate) static HEADER_CHECKSUM: Rule = Rule::new(
    "VHD.HeaderChecksum",
    Severity::Error,
    "The dynamic header checksum is right",
    RECONVERT,
);
pub(crate) static TOO_LARGE: Rule = Rule::new(
    "VHD.TooLarge",
    Severity::Error,
    "The disk is at most 2040 GiB, the VHD format's limit (qemu: VHD_MAX_SECTORS)",
    "Use a format without this limit: `qemu-img convert -O qcow2 in.vhd out.qcow2`.",
);
pub(crate) static FIXED_FILE_SIZE: Rule = Rule::new(
    "VHD.FixedFileSize",
    Severity::Error,
    "A fixed disk's file is its current size plus the 512-byte footer",
    "The file was truncated or padded: copy it again, or re-create it with \
     `qemu-img convert -O vpc -o subformat=fixed,force_size=on in.img out.vhd`.",
);
pub(crate) static CHS_SIZE: Rule = Rule::new(
    "VHD.ChsSize",
    Severity::Warning,
    "For creators `vpc ` and `qemu`, the CHS geometry gives the same size as current_size",
    "qemu sizes disks made by Virtual PC or old qemu by their CHS geometry and other tools by \
     current_size, so the disk size depends on the tool. Re-create it with \
     `qemu-img convert -O vpc -o subformat=dynamic,force_size=on in.img out.vhd` (creator qem2).",
);
pub(crate) static INCORRECT_SIZE: Rule = Rule::new("InvalidVHDImage.IncorrectSize", Severity::Error, "MaxTableEntries × BlockSize covers the disk's current size (ECS InvalidVHDImage.IncorrectSize; qemu: Page table too small)", "Re-create the VHD: `qemu-img convert -O vpc -o subformat=dynamic,force_size=on in.img out.vhd`.");
pub(crate) static TABLE_NOT_EXACT: Rule = Rule::new("VHD.TableSizeNotExact", Severity::Warning, "MaxTableEntries × BlockSize equals the disk's current size", "qemu and Hyper-V accept this, but ECS's check InvalidVHDImage.IncorrectSize may want equality. \
     To be safe, make the disk size a multiple of 2 MiB (`qemu-img resize -f raw in.img <size>`) and \
     convert with `qemu-img convert -O vpc -o subformat=dynamic,force_size=on in.img out.vhd`.");
pub(crate) static TOO_MANY_BLOCKS: Rule = Rule::new(
    "VHD.TooManyBlocks",
    Severity::Error,
    "current_size / block_size fits in 32 bits (qemu: Too many blocks)",
    RECONVERT,
);
pub(crate) static UNUSUAL_BLOCK_SIZE: Rule = Rule::new(
    "VHD.UnusualBlockSize",
    Severity::Warning,
    "The block size is 2 MiB, the size every VHD tool writes",
    "ECS may answer InvalidBlockSize.NotSupport. Re-create the VHD with \
     `qemu-img convert -O vpc -o subformat=dynamic,force_size=on in.img out.vhd` (2 MiB blocks).",
);
pub(crate) static METADATA_OVERLAP: Rule = Rule::new(
    "VHD.MetadataOverlap",
    Severity::Error,
    "The footer copy, the dynamic header, the BAT and the footer do not overlap",
    RECONVERT,
);
pub(crate) static BLOCK_PAST_EOF: Rule = Rule::new("VHD.BlockPastEof", Severity::Error, "Each allocated block (sector bitmap + data) lies inside the file, before the footer", "The file was truncated (qemu: free_data_block_offset points after the end of file): copy it again \
     from the source, or re-create it from the original disk.");
pub(crate) static BLOCK_OVERLAP: Rule = Rule::new(
    "VHD.BlockOverlap",
    Severity::Error,
    "Allocated blocks overlap neither each other nor the metadata",
    RECONVERT,
);
pub(crate) static DIFFERENCING: Rule = Rule::new("VHD.Differencing", Severity::Error, "The disk is not a differencing disk (it is incomplete without its parent)", "Merge it into its parent in Hyper-V (Edit Disk > Merge), or write a standalone copy: \
     `qemu-img convert -O vpc -o subformat=fixed,force_size=on child.vhd out.vhd` (with the parent beside it).");
pub(crate) static SAVED_STATE: Rule = Rule::new("VHD.SavedState", Severity::Warning, "The footer's saved-state flag is clear", "The disk belongs to a VM in a saved state: shut the VM down cleanly, then export the disk again.");

/// Every rule this crate checks, for `ecs-preflight rules`.
pub static RULES: &[&Rule] = &[
    &TOO_SMALL,
    &COOKIE,
    &IO,
    &DISK_TYPE,
    &DATA_OFFSET,
    &DYN_COOKIE,
    &BLOCK_SIZE,
    &MAX_TABLE_ENTRIES,
    &BAT_PAST_EOF,
    &FOOTER_CHECKSUM,
    &FOOTER_MISSING,
    &FOOTER_COPY,
    &FEATURES,
    &VERSION,
    &HEADER_CHECKSUM,
    &TOO_LARGE,
    &FIXED_FILE_SIZE,
    &CHS_SIZE,
    &INCORRECT_SIZE,
    &TABLE_NOT_EXACT,
    &TOO_MANY_BLOCKS,
    &UNUSUAL_BLOCK_SIZE,
    &METADATA_OVERLAP,
    &BLOCK_PAST_EOF,
    &BLOCK_OVERLAP,
    &DIFFERENCING,
    &SAVED_STATE,
];

pub(crate) fn check(img: &VhdImage) -> Vec<Finding> {
    let mut out = FindingSink::new(MAX_PER_CODE);
    let file_size = img.src.size();
    check_footers(img, &mut out);
    check_footer_fields(&img.footer, &mut out);
    match &img.layout {
        Layout::Fixed => {
            let expected = img.footer.current_size.saturating_add(header::FOOTER_SIZE);
            if file_size != expected {
                out.push(FIXED_FILE_SIZE.finding(format!(
                    "the file is {} but a fixed disk of {} needs {} (data + footer)",
                    human_bytes(file_size),
                    human_bytes(img.footer.current_size),
                    human_bytes(expected)
                )));
            }
        }
        Layout::Sparse(s) => {
            if img.footer.disk_type == header::DISK_DIFFERENCING {
                let parent = if s.header.parent_name.is_empty() {
                    "(unnamed)"
                } else {
                    &s.header.parent_name
                };
                out.push(DIFFERENCING.finding(format!(
                    "this is a differencing VHD (disk type 4) whose parent is {parent}: it holds only the \
                     changes to the parent and cannot be imported alone"
                )));
            }
            check_sparse(img, s, file_size, &mut out);
        }
    }
    out.into_findings()
}

fn check_footers(img: &VhdImage, out: &mut FindingSink) {
    let sparse = matches!(img.layout, Layout::Sparse(_));
    let bad_sum = |f: &FooterAt, place: &str| {
        FOOTER_CHECKSUM.finding(format!(
            "the footer {place} stores checksum {:#010x} but its bytes give {:#010x}",
            f.footer.checksum,
            header::footer_checksum(&f.raw)
        ))
    };
    if let Some(end) = img.end.as_ref().filter(|f| !f.checksum_ok) {
        out.push(bad_sum(end, "at the end of the file"));
    }
    if sparse {
        if let Some(start) = img.start.as_ref().filter(|f| !f.checksum_ok) {
            out.push(bad_sum(start, "copy at offset 0"));
        }
    }
    if img.end.is_none() {
        out.push(FOOTER_MISSING.finding(format!(
            "the last 512 bytes of the {}-byte file are not a VHD footer; only the copy at offset 0 was found",
            img.src.size()
        )));
    }
    if sparse {
        match (&img.start, &img.end) {
            (Some(s), Some(e)) if s.raw != e.raw => out.push(FOOTER_COPY.finding(
                "the footer copy at offset 0 differs from the footer at the end of the file",
            )),
            (None, _) => {
                out.push(FOOTER_COPY.finding("a dynamic disk has no footer copy at offset 0"))
            }
            _ => {}
        }
    }
}

fn check_footer_fields(f: &Footer, out: &mut FindingSink) {
    if f.features & 2 == 0 || f.features & !3 != 0 {
        out.push(FEATURES.finding(format!(
            "features is {:#010x}; it must be 0x00000002 (or 0x00000003 for a temporary disk)",
            f.features
        )));
    }
    if f.version != header::VERSION_1_0 {
        out.push(VERSION.finding(format!(
            "the footer version is {:#010x}, not 0x00010000",
            f.version
        )));
    }
    if f.current_size > MAX_SIZE {
        out.push(TOO_LARGE.finding(format!(
            "the disk is {}, over the VHD limit of {}",
            human_bytes(f.current_size),
            human_bytes(MAX_SIZE)
        )));
    }
    let creator = f.creator();
    if (creator == "vpc" || creator == "qemu") && !f.chs_is_max() && f.chs_size() != f.current_size
    {
        out.push(CHS_SIZE.finding(format!(
            "creator `{creator}`: CHS {}/{}/{} gives {} bytes but current_size is {}; qemu would show \
             the guest {} bytes, other tools (and this check) {}",
            f.cylinders,
            f.heads,
            f.sectors,
            f.chs_size(),
            f.current_size,
            f.chs_size(),
            f.current_size
        )));
    }
    if f.saved_state != 0 {
        out.push(SAVED_STATE.finding(format!("the saved-state flag is {}", f.saved_state)));
    }
}

fn check_sparse(img: &VhdImage, s: &Sparse, file_size: u64, out: &mut FindingSink) {
    let h = &s.header;
    let stored = h.checksum;
    if stored != s.header_checksum {
        out.push(HEADER_CHECKSUM.finding(format!(
            "the dynamic header at offset {} stores checksum {stored:#010x} but its bytes give {:#010x}",
            s.header_offset, s.header_checksum
        )));
    }
    if h.version != header::VERSION_1_0 {
        out.push(VERSION.finding(format!(
            "the dynamic header version is {:#010x}, not 0x00010000",
            h.version
        )));
    }
    let size = img.footer.current_size;
    let entries = u64::from(h.max_table_entries);
    let covered = entries.saturating_mul(s.block_size); // ≤ 2^29 × 2^31: never saturates
    if covered < size {
        out.push(INCORRECT_SIZE.finding(format!(
            "current size {size} is larger than MaxTableEntries {entries} × BlockSize {} = {covered}",
            s.block_size
        )));
    } else if covered > size {
        out.push(TABLE_NOT_EXACT.finding(format!(
            "MaxTableEntries {entries} × BlockSize {} = {covered}, {} bytes more than the current size {size}",
            s.block_size,
            covered.saturating_sub(size)
        )));
    }
    // The block size was checked at open to be a power of two >= 512.
    let blocks = size.checked_div(s.block_size).unwrap_or(0);
    if blocks > u64::from(u32::MAX) {
        out.push(TOO_MANY_BLOCKS.finding(format!(
            "current size {size} / block size {} = {blocks} blocks, over 2^32 - 1",
            s.block_size,
        )));
    }
    if s.block_size != USUAL_BLOCK_SIZE {
        out.push(UNUSUAL_BLOCK_SIZE.finding(format!(
            "the block size is {}, not 2 MiB",
            human_bytes(s.block_size)
        )));
    }

    // Metadata regions: footer copy, dynamic header, BAT, end footer.
    let mut meta = Regions::new();
    meta.add("footer copy", 0, header::FOOTER_SIZE);
    let bat_len = entries * 4;
    let mut add = |name: &str, start: u64, len: u64| {
        if let Some(other) = meta.add(name, start, len) {
            out.push(METADATA_OVERLAP.finding(format!(
                "the {name} at {start}..{} overlaps the {} at {}..{}",
                start.saturating_add(len),
                other.name,
                other.start,
                other.end
            )));
        }
    };
    add("dynamic header", s.header_offset, header::DYN_HEADER_SIZE);
    add("BAT", h.table_offset, bat_len);
    if img.end.is_some() {
        add(
            "footer",
            file_size.saturating_sub(header::FOOTER_SIZE),
            header::FOOTER_SIZE,
        );
    }
    let meta = meta.all().to_vec();

    // Each block: inside the data area, clear of the metadata.
    let span = s.bitmap_size.saturating_add(s.block_size);
    // A hostile BAT breaks these rules once per entry: `report` builds only the messages kept.
    for (index, &e) in s.bat.iter().enumerate() {
        if e == tables::UNALLOCATED {
            continue;
        }
        let start = u64::from(e).saturating_mul(512);
        let end = start.saturating_add(span);
        if end > s.data_end {
            out.report(&BLOCK_PAST_EOF, || {
                format!(
                    "block {index} (BAT entry {e:#x}) occupies file bytes {start}..{end}, past the end of the \
                     data area at {} (file size {file_size})",
                    s.data_end
                )
            });
        }
        if let Some(r) = meta.iter().find(|r| start < r.end && r.start < end) {
            out.report(&BLOCK_OVERLAP, || {
                format!(
                    "block {index} at file bytes {start}..{end} overlaps the {} at {}..{}",
                    r.name, r.start, r.end
                )
            });
        }
    }

    // Blocks against each other: all have the same span.
    let mut extents: Vec<preflight_disk::Extent<u32>> = tables::sorted_allocated(&s.bat)
        .into_iter()
        .map(|sector| (u64::from(sector) * 512, span, sector))
        .collect();
    for ((_, _, a), (_, _, b)) in preflight_disk::overlapping_extents(&mut extents) {
        // Naming the block numbers costs a scan of the BAT: only for the findings shown.
        out.report(&BLOCK_OVERLAP, || {
            let ia = s.bat.iter().position(|&e| e == a).unwrap_or(0);
            let ib = s.bat.iter().rposition(|&e| e == b).unwrap_or(0);
            format!(
                "block {ia} at file offset {} and block {ib} at file offset {} overlap ({span} bytes each)",
                u64::from(a) * 512,
                u64::from(b) * 512
            )
        });
    }
}
