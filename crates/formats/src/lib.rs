//! Format detection by content, never by file name, and one entry point that
//! opens any supported image.
//!
//! [`detect`] looks at magic numbers at the start and the end of the file:
//! qcow2, VHD (dynamic: `conectix` at 0; fixed: `conectix` in the last 512
//! bytes only, which qemu's own probe misses), VHDX, VMDK (sparse, COWD, text
//! descriptor), and RAW for anything else. Formats ECS cannot import (every
//! other format qemu-img probes: VDI, QED, qcow v1, LUKS, Parallels, Bochs,
//! cloop, DMG; and ISO 9660, compressed and archived files) are named and
//! refused with a hint saying what to do instead, never taken for RAW.
//!
//! [`inspect`] opens the detected format, runs its integrity check and
//! returns an [`Inspection`] with the facts and every finding.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Parser crates: every offset comes from hostile input, so arithmetic is checked or
// saturating and conversions are `try_from` (tests may compute freely).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::as_conversions)
)]

mod detect;

pub use detect::{detect, Detected, Refusal};

use preflight_disk::{DiskImage, FileSource, Format, ImageInfo, Source};
use preflight_report::{Finding, Rule, Severity};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// An image that could not be read as any format we know.
pub static UNSUPPORTED_FORMAT: Rule = Rule::new(
    "FORMAT.Unsupported",
    Severity::Error,
    "The file is in a format ECS ImportImage does not take (VDI, QED, qcow v1, LUKS, Parallels, Bochs, cloop, DMG, ISO, compressed or archived files)",
    "Convert it to qcow2 with `qemu-img convert -O qcow2 IN OUT.qcow2`, or extract it first.",
);

/// A zero-length file.
pub static EMPTY_IMAGE: Rule = Rule::new(
    "FORMAT.Empty",
    Severity::Error,
    "The image file is empty",
    "Point ecs-preflight at the disk image, not at an empty file.",
);

/// A RAW image whose size is not a whole number of 512-byte sectors.
pub static RAW_UNALIGNED: Rule = Rule::new(
    "RAW.UnalignedSize",
    Severity::Warning,
    "A RAW image's size is not a multiple of 512 bytes: it may be truncated or not a disk image at all",
    "Check that the file is complete; `truncate -s %512 FILE` pads it to whole sectors.",
);

/// A RAW image with neither an MBR nor a GPT.
pub static RAW_NO_PARTITION_TABLE: Rule = Rule::new(
    "RAW.NoPartitionTable",
    Severity::Warning,
    "A RAW image has no MBR boot signature and no GPT header: as a system disk it cannot boot",
    "Make sure this is the whole disk, not a single partition or filesystem image.",
);

/// Rules of this crate, for the catalogue.
pub static RULES: &[&Rule] = &[
    &UNSUPPORTED_FORMAT,
    &EMPTY_IMAGE,
    &RAW_UNALIGNED,
    &RAW_NO_PARTITION_TABLE,
];

/// Every rule of the format engine: this crate's and each parser's.
pub fn all_rules() -> Vec<&'static Rule> {
    let mut all: Vec<&'static Rule> = Vec::new();
    all.extend_from_slice(RULES);
    all.extend_from_slice(preflight_qcow2::RULES);
    all.extend_from_slice(preflight_vhd::RULES);
    all.extend_from_slice(preflight_vhdx::RULES);
    all.extend_from_slice(preflight_vmdk::RULES);
    all
}

/// What inspecting one image found.
pub struct Inspection {
    /// Name of the detected format: one of ours (`qcow2`, `vhd`, …) or a
    /// refused one (`vdi`, `gzip`, …).
    pub detected: String,
    /// Facts, when the image could be opened.
    pub info: Option<ImageInfo>,
    /// Every finding, from detection, opening and the integrity check.
    pub findings: Vec<Finding>,
    /// The opened image, for reading guest data.
    pub image: Option<Box<dyn DiskImage>>,
    /// Size of the file we were given.
    pub file_size: u64,
}

impl std::fmt::Debug for Inspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspection")
            .field("detected", &self.detected)
            .field("info", &self.info)
            .field("findings", &self.findings)
            .field("file_size", &self.file_size)
            .finish_non_exhaustive()
    }
}

/// How much to do.
#[derive(Debug, Clone, Copy)]
pub struct InspectOptions {
    /// Run the metadata integrity check (walks every table). `info` skips it.
    pub check: bool,
}

/// Opens the file at `path`, detects its format and inspects it. Errors are
/// environment errors only (missing or unreadable file); everything wrong
/// with the image itself is a finding.
pub fn inspect(path: &Path, options: InspectOptions) -> io::Result<Inspection> {
    let file = FileSource::open(path)?;
    let src: Arc<dyn Source> = Arc::new(file);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let open_extent = move |name: &str| -> io::Result<Arc<dyn Source>> {
        let s: Arc<dyn Source> = Arc::new(FileSource::open(dir.join(name))?);
        Ok(s)
    };
    inspect_source(src, &open_extent, options)
}

/// [`inspect`] over any source. `open_extent` opens a file a VMDK
/// descriptor names (relative to the image).
pub fn inspect_source(
    src: Arc<dyn Source>,
    open_extent: &dyn Fn(&str) -> io::Result<Arc<dyn Source>>,
    options: InspectOptions,
) -> io::Result<Inspection> {
    let file_size = src.size();
    let mut inspection = Inspection {
        detected: String::new(),
        info: None,
        findings: Vec::new(),
        image: None,
        file_size,
    };
    let format = match detect(src.as_ref())? {
        Detected::Refused(refusal) => {
            inspection.detected = refusal.name.to_string();
            inspection.findings.push(refusal.finding);
            return Ok(inspection);
        }
        Detected::Empty => {
            inspection.detected = "raw".to_string();
            inspection
                .findings
                .push(EMPTY_IMAGE.finding("the file is 0 bytes long"));
            return Ok(inspection);
        }
        Detected::Format(format) => format,
    };
    inspection.detected = format.as_str().to_string();
    let opened: Result<Box<dyn DiskImage>, Finding> = match format {
        Format::Raw => {
            let raw = preflight_disk::raw::RawImage::new(src.clone());
            inspection.findings.extend(raw_findings(src.as_ref()));
            Ok(Box::new(raw))
        }
        Format::Qcow2 => preflight_qcow2::open(src).map(|i| -> Box<dyn DiskImage> { Box::new(i) }),
        Format::Vhd => preflight_vhd::open(src).map(|i| -> Box<dyn DiskImage> { Box::new(i) }),
        Format::Vhdx => preflight_vhdx::open(src).map(|i| -> Box<dyn DiskImage> { Box::new(i) }),
        Format::Vmdk => preflight_vmdk::open_with(src, open_extent)
            .map(|i| -> Box<dyn DiskImage> { Box::new(i) }),
    };
    match opened {
        Ok(image) => {
            inspection.info = Some(image.info().clone());
            if options.check {
                inspection.findings.extend(image.check());
            }
            inspection.image = Some(image);
        }
        Err(finding) => inspection.findings.push(finding),
    }
    Ok(inspection)
}

/// Cheap facts about a RAW image: sector alignment and a partition table.
fn raw_findings(src: &dyn Source) -> Vec<Finding> {
    let mut findings = Vec::new();
    let size = src.size();
    if size % 512 != 0 {
        findings.push(RAW_UNALIGNED.finding(format!(
            "the file is {size} bytes, {} bytes past a whole sector",
            size % 512
        )));
    }
    let mut sector = [0u8; 1024];
    let has_table = if size >= 1024 && src.read_exact_at(0, &mut sector).is_ok() {
        sector[510..512] == [0x55, 0xAA] || &sector[512..520] == b"EFI PART"
    } else {
        false
    };
    if !has_table {
        findings.push(
            RAW_NO_PARTITION_TABLE
                .finding("no 55 AA boot signature at byte 510 and no `EFI PART` at byte 512"),
        );
    }
    findings
}
