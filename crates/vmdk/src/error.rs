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
