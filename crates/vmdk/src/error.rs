//! Why a VMDK cannot be opened. Each variant names the offending value and
//! maps, by an exhaustive match, to one rule.

use crate::rules;
use preflight_disk::BoundsError;
use preflight_report::{Finding, Rule};

/// A fatal problem found while opening a VMDK.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("{file}: starts with {found}, which is neither a VMDK sparse header (KDMV) nor a text descriptor")]
    Magic { file: String, found: String },
    #[error("{file}: is an ESX vmfsSparse (COWD) extent, a snapshot delta format")]
    Cowd { file: String },
    #[error("{file}: {detail}")]
    Truncated { file: String, detail: String },
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
    #[error("{file}: {detail}")]
    Footer { file: String, detail: String },
    #[error("{file}: {detail}")]
    Descriptor { file: String, detail: String },
    #[error("{file}: createType \"{create_type}\" is not a known VMDK type")]
    CreateType { file: String, create_type: String },
    #[error("{file}: createType \"{create_type}\" is {what}, which cannot be imported")]
    UnsupportedType {
        file: String,
        create_type: String,
        what: &'static str,
    },
    #[error("{file}: line {line}: extent {detail}")]
    ExtentType {
        file: String,
        line: usize,
        detail: String,
    },
    #[error("{file}: is a delta (child) disk: {detail}")]
    Delta { file: String, detail: String },
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
    /// A grain size that would never advance a read.
    #[error("grain size {grain_bytes} cannot be read")]
    GrainSize {
        /// The grain size in bytes.
        grain_bytes: u64,
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
