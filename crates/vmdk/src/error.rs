//! Why a VMDK cannot be opened. Each variant names the offending value and
//! maps, by an exhaustive match, to one rule.

use crate::descriptor::{self, BadLine, Descriptor};
use crate::rules;
use preflight_disk::BoundsError;
use preflight_report::{Finding, Rule};
use std::fmt;

/// A fatal problem found while opening a VMDK.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("{file}: starts with {found}, which is neither a VMDK sparse header (KDMV) nor a text descriptor")]
    Magic { file: String, found: LeadingBytes },
    #[error("{file}: is an ESX vmfsSparse (COWD) extent, a snapshot delta format")]
    Cowd { file: String },
    #[error(
        "{file}: the file is {file_size} bytes, shorter than the {header_len}-byte sparse header",
        header_len = crate::header::HEADER_LEN
    )]
    Truncated { file: String, file_size: u64 },
    #[error("{file}: sparse header version {version} is not 1, 2 or 3")]
    Version { file: String, version: u32 },
    #[error("{file}: capacity of {sectors} sectors is over the limit of {limit} sectors")]
    Capacity {
        file: String,
        sectors: u64,
        limit: u64,
    },
    #[error("{file}: grain size of {sectors} sectors is not a power of two between 16 and {max}")]
    GrainSize {
        file: String,
        sectors: u64,
        max: u64,
    },
    #[error("{file}: {gtes} entries per grain table is not between 1 and {max}")]
    GtesPerGt { file: String, gtes: u32, max: u32 },
    #[error("{file}: the grain directory would have {entries} entries, over the limit of {max} (L1 size too big)")]
    L1Size {
        file: String,
        entries: u64,
        max: u64,
    },
    #[error("{file}: compression algorithm {algorithm} is not 0 (none) or 1 (deflate)")]
    Compression { file: String, algorithm: u16 },
    #[error("{file}")]
    GdOffset {
        file: String,
        #[source]
        source: BoundsError,
    },
    #[error("{file}")]
    Footer {
        file: String,
        #[source]
        fault: FooterFault,
    },
    #[error("{file}")]
    Descriptor {
        file: String,
        #[source]
        fault: DescriptorFault,
    },
    #[error("{file}: createType \"{create_type}\" is not a known VMDK type")]
    CreateType { file: String, create_type: String },
    #[error("{file}: createType \"{create_type}\" is {what}, which cannot be imported")]
    UnsupportedType {
        file: String,
        create_type: String,
        what: &'static str,
    },
    #[error("{file}: line {line}: extent {fault}")]
    ExtentType {
        file: String,
        line: usize,
        fault: ExtentFault,
    },
    #[error("{file}: is a delta (child) disk: {parent}; the file holds only the blocks changed since its parent")]
    Delta { file: String, parent: DeltaParent },
    #[error("{file}: extent file name \"{name}\" {why}")]
    ExtentPath {
        file: String,
        name: String,
        why: &'static str,
    },
    #[error("{file}: extent file \"{name}\" cannot be opened")]
    MissingExtent {
        file: String,
        name: String,
        #[source]
        error: std::io::Error,
    },
    #[error("{file}: read error")]
    Io {
        file: String,
        #[source]
        error: std::io::Error,
    },
}

/// Why a streamOptimized footer (the grain directory's real place) is unusable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FooterFault {
    #[error("the header puts the grain directory in a footer, but the file ({file_size} bytes) is too short to hold one")]
    TooShort { file_size: u64 },
    #[error(transparent)]
    Unreadable(BoundsError),
    #[error("the footer's header also says the grain directory is at the end")]
    AlsoAtEnd,
    #[error(
        "no valid footer (footer marker, KDMV header copy, end-of-stream marker) in the last {footer_len} bytes: the stream is truncated or incomplete",
        footer_len = crate::header::FOOTER_LEN
    )]
    Missing,
}

/// Why a descriptor file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DescriptorFault {
    #[error(
        "the descriptor file is {size} bytes, over the limit of {limit}",
        limit = crate::header::MAX_DESCRIPTOR_BYTES
    )]
    TooLarge { size: u64 },
    #[error(transparent)]
    Unreadable(BoundsError),
    /// The first bad line, and how many more there are.
    #[error("line {}: {}{}", .first.line, .first.detail, more_bad_lines(.more))]
    BadLine { first: BadLine, more: usize },
    #[error("no createType line")]
    NoCreateType,
    #[error("no extent lines")]
    NoExtents,
}

fn more_bad_lines(more: &usize) -> String {
    if *more > 0 {
        format!(" (and {more} more bad lines)")
    } else {
        String::new()
    }
}

/// Why an extent line of a descriptor cannot be imported.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExtentFault {
    #[error("access is NOACCESS: its data cannot be read")]
    NoAccess,
    #[error("type {kind} is a snapshot or raw-device extent, which cannot be imported")]
    NotImportable { kind: String },
    #[error("type {kind:?} is not a known extent type")]
    Unknown { kind: String },
}

/// What a delta (child) disk's descriptor says of its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeltaParent {
    /// `parentCID`, when it names a parent.
    pub(crate) cid: Option<u32>,
    /// `parentFileNameHint`.
    pub(crate) file_name_hint: Option<String>,
}

impl DeltaParent {
    pub(crate) fn of(d: &Descriptor) -> Self {
        DeltaParent {
            cid: d.parent_cid.filter(|&p| p != descriptor::NO_PARENT_CID),
            file_name_hint: d.parent_file_name_hint.clone(),
        }
    }
}

impl fmt::Display for DeltaParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = self.cid {
            parts.push(format!("parentCID={p:08x}"));
        }
        if let Some(h) = &self.file_name_hint {
            parts.push(format!("parentFileNameHint=\"{h}\""));
        }
        f.write_str(&parts.join(", "))
    }
}

/// The first bytes of a file (at most [`LeadingBytes::MAX`]), shown as [`show_bytes`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeadingBytes(Vec<u8>);

impl LeadingBytes {
    const MAX: usize = 16;

    pub(crate) fn of(bytes: &[u8]) -> Self {
        LeadingBytes(bytes.iter().take(Self::MAX).copied().collect())
    }
}

impl fmt::Display for LeadingBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&show_bytes(&self.0))
    }
}

impl OpenError {
    /// The rule this error violates.
    pub(crate) fn rule(&self) -> &'static Rule {
        match self {
            OpenError::Magic { .. } => &rules::MAGIC,
            OpenError::Cowd { .. } => &rules::COWD,
            OpenError::Truncated { .. } => &rules::TRUNCATED,
            OpenError::Version { .. } => &rules::VERSION,
            OpenError::Capacity { .. } => &rules::CAPACITY,
            OpenError::GrainSize { .. } => &rules::GRAIN_SIZE,
            OpenError::GtesPerGt { .. } => &rules::GTES_PER_GT,
            OpenError::L1Size { .. } => &rules::L1_SIZE,
            OpenError::Compression { .. } => &rules::COMPRESSION,
            OpenError::GdOffset { .. } => &rules::GD_OFFSET,
            OpenError::Footer { .. } => &rules::FOOTER,
            OpenError::Descriptor { .. } => &rules::DESCRIPTOR,
            OpenError::CreateType { .. } => &rules::CREATE_TYPE,
            OpenError::UnsupportedType { .. } => &rules::UNSUPPORTED_TYPE,
            OpenError::ExtentType { .. } => &rules::EXTENT_TYPE,
            OpenError::Delta { .. } => &rules::DELTA,
            OpenError::ExtentPath { .. } => &rules::EXTENT_PATH,
            OpenError::MissingExtent { .. } => &rules::MISSING_EXTENT,
            OpenError::Io { .. } => &rules::IO,
        }
    }
}

impl From<OpenError> for Finding {
    fn from(e: OpenError) -> Finding {
        e.rule().finding(preflight_disk::error_chain(&e))
    }
}

/// Shows the first bytes of a file in a message: printable ASCII as is,
/// anything else as `\xNN`.
pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes.iter().take(16) {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s.push('"');
    s
}

/// Quotes a descriptor line for a message, cut to a readable length.
pub(crate) fn show_line(line: &str) -> String {
    const MAX: usize = 120;
    let mut out: String = line.chars().take(MAX).collect();
    if line.chars().count() > MAX {
        out.push('…');
    }
    format!("{out:?}")
}

/// Why a guest read of an opened VMDK failed: the extent, the structure and the offending
/// values. The text starts with the rule code the check reports for the same problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadFault {
    /// A grain directory entry points at a grain table past the end of the extent file.
    #[error("{code}: {extent}: grain table {gd_index} at file offset {offset} passes the end of the file ({file_size} bytes)", code = rules::GT_OFFSET.code)]
    GrainTablePastEnd {
        /// The extent file.
        extent: String,
        /// Grain directory index.
        gd_index: u64,
        /// File offset of the table.
        offset: u64,
        /// Size of the extent file.
        file_size: u64,
    },
    /// A grain table entry points at a grain past the end of the extent file.
    #[error("{code}: {extent}: grain {index} at file offset {offset} passes the end of the file ({file_size} bytes)", code = rules::GRAIN_OFFSET.code)]
    GrainPastEnd {
        /// The extent file.
        extent: String,
        /// Grain number in the extent.
        index: u64,
        /// File offset of the grain.
        offset: u64,
        /// Size of the extent file.
        file_size: u64,
    },
    /// A compressed grain cannot be inflated.
    #[error("{code}: {extent}: compressed grain {index} at file offset {offset}: {fault}", code = rules::COMPRESSED_GRAIN.code)]
    CompressedGrain {
        /// The extent file.
        extent: String,
        /// Grain number in the extent.
        index: u64,
        /// File offset of the grain (its marker, if it has one).
        offset: u64,
        /// What is wrong with it (part of the text, not a source: printed once).
        fault: GrainFault,
    },
    /// No extent of the descriptor covers a guest offset inside the disk.
    #[error("no extent covers guest offset {offset}")]
    NoExtent {
        /// The guest offset.
        offset: u64,
    },
}

/// What is wrong with a compressed grain (its marker or its deflate data).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrainFault {
    /// A grain without a marker starts at or past the end of the file.
    #[error("data at file offset {offset} is past the end of the file ({file_size} bytes)")]
    DataPastEnd {
        /// File offset of the grain.
        offset: u64,
        /// Size of the extent file.
        file_size: u64,
    },
    /// The grain marker is past the end of the file.
    #[error("marker at file offset {offset} is past the end of the file ({file_size} bytes)")]
    MarkerPastEnd {
        /// File offset of the marker.
        offset: u64,
        /// Size of the extent file.
        file_size: u64,
    },
    /// The marker's size field is 0 or over the limit.
    #[error("marker at file offset {offset} gives a compressed size of {len} bytes (allowed 1 to {max})")]
    MarkerSize {
        /// File offset of the marker.
        offset: u64,
        /// Its size field.
        len: u64,
        /// The largest size accepted.
        max: u64,
    },
    /// The marker's size field passes the end of the file.
    #[error("marker at file offset {offset} gives a compressed size of {len} bytes, which passes the end of the file ({file_size} bytes)")]
    MarkerPastEof {
        /// File offset of the marker.
        offset: u64,
        /// Its size field.
        len: u64,
        /// Size of the extent file.
        file_size: u64,
    },
    /// The grain size does not fit this machine's memory space.
    #[error("grain too large")]
    GrainTooLarge,
    /// The compressed data could not be read (the cause is part of the text, printed once).
    #[error("reading compressed data: {0}")]
    Read(std::io::Error),
    /// The deflate data are invalid (the decoder's error is part of the text, printed once).
    #[error("invalid deflate data: {0}")]
    Deflate(flate2::DecompressError),
    /// The stream inflates to more than a grain.
    #[error("inflates to more than the grain size of {limit} bytes")]
    TooLong {
        /// The grain size.
        limit: u64,
    },
    /// The compressed data end before the deflate stream does.
    #[error("the compressed data ({len} bytes) ends before the deflate stream does")]
    EndsEarly {
        /// Bytes of compressed data.
        len: u64,
    },
    /// The decoder neither reads nor writes.
    #[error("the deflate stream makes no progress")]
    NoProgress,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: OpenError) -> String {
        Finding::from(e).message
    }

    #[test]
    fn open_errors_carry_typed_values_and_print_them_once() {
        let e = OpenError::Descriptor {
            file: "d.vmdk".into(),
            fault: DescriptorFault::BadLine {
                first: BadLine {
                    line: 3,
                    detail: "\"RW x\" is not a descriptor line".into(),
                },
                more: 2,
            },
        };
        assert_eq!(
            text(e),
            "d.vmdk: line 3: \"RW x\" is not a descriptor line (and 2 more bad lines)"
        );
        let e = OpenError::Footer {
            file: "s.vmdk".into(),
            fault: FooterFault::TooShort { file_size: 700 },
        };
        assert!(text(e).starts_with(
            "s.vmdk: the header puts the grain directory in a footer, but the file (700 bytes)"
        ));
        let e = OpenError::Delta {
            file: "c.vmdk".into(),
            parent: DeltaParent {
                cid: Some(0xab),
                file_name_hint: Some("base.vmdk".into()),
            },
        };
        assert_eq!(
            text(e),
            "c.vmdk: is a delta (child) disk: parentCID=000000ab, parentFileNameHint=\"base.vmdk\"; \
             the file holds only the blocks changed since its parent"
        );
        let e = OpenError::Magic {
            file: "m.vmdk".into(),
            found: LeadingBytes::of(b"QFI\xfbrest-of-a-long-header"),
        };
        assert!(text(e).starts_with("m.vmdk: starts with \"QFI\\xfbrest-of-a-lo\", which"));
        let e = OpenError::Truncated {
            file: "t.vmdk".into(),
            file_size: 100,
        };
        assert_eq!(
            text(e),
            "t.vmdk: the file is 100 bytes, shorter than the 512-byte sparse header"
        );
    }
}
