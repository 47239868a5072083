//! Why [`crate::open`] refuses a file, as typed values; [`OpenError::finding`]
//! maps each to its rule at the crate's boundary.

use crate::header::{
    MAX_BACKING_FILE_NAME, MAX_BACKING_FORMAT_NAME, MAX_BITMAPS, MAX_BITMAP_DIRECTORY_BYTES,
    MAX_CLUSTER_BITS, MAX_REFCOUNT_ORDER, MIN_CLUSTER_BITS, MIN_CLUSTER_BITS_EXTENDED_L2,
    V3_MIN_HEADER_LEN,
};
use crate::rules;
use preflight_disk::BoundsError;
use preflight_report::{Finding, Rule};
use std::fmt;

/// Why a table offset in the header is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Not a multiple of the cluster size.
    Unaligned { cluster_size: u64 },
    /// Offset plus the table's length passes 2^63.
    PastLimit { len: u64 },
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Unaligned { cluster_size } => {
                write!(f, "not aligned to the {cluster_size}-byte cluster size")
            }
            Placement::PastLimit { len } => write!(f, "with {len} bytes of table it passes 2^63"),
        }
    }
}

/// Why [`crate::open`] could not understand a file, or qemu would refuse it.
/// Each variant maps to one rule of [`crate::RULES`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("reading the {what} at offset {offset}")]
    Io {
        what: &'static str,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("magic is {0:02x?}; a qcow2 image starts with 51 46 49 fb (QFI\\xfb)")]
    MagicBytes([u8; 4]),
    #[error("magic is {0:#010x}; a qcow2 image starts with 0x514649fb (QFI\\xfb)")]
    Magic(u32),
    #[error("the file is {file_size} bytes, shorter than the qcow2 header ({header_len} bytes)")]
    ShorterThanHeader { file_size: u64, header_len: u32 },
    #[error("version is {0}; must be 2 or 3")]
    Version(u32),
    #[error("cluster_bits is {0}; must be {MIN_CLUSTER_BITS} to {MAX_CLUSTER_BITS}")]
    ClusterBits(u32),
    #[error(
        "cluster_bits is {0} with extended L2 entries; must be at least \
        {MIN_CLUSTER_BITS_EXTENDED_L2} so that subclusters are at least 512 bytes"
    )]
    ExtendedL2ClusterBits(u32),
    #[error("header_length is {0}; a version 3 header is at least {V3_MIN_HEADER_LEN} bytes")]
    HeaderLengthTooShort(u32),
    #[error("header_length is {length}; it must fit in the first cluster ({cluster_size} bytes)")]
    HeaderLengthPastCluster { length: u32, cluster_size: u64 },
    #[error("the file is {file_size} bytes, shorter than its {header_length}-byte header")]
    ShorterThanHeaderLength { file_size: u64, header_length: u32 },
    #[error(
        "backing_file_offset is {offset}; the name must lie in the first cluster \
        ({cluster_size} bytes)"
    )]
    BackingFileOffset { offset: u64, cluster_size: u64 },
    #[error(
        "backing_file_size is {len} at offset {offset}; the name must be at most \
        {MAX_BACKING_FILE_NAME} bytes and end inside the first cluster ({cluster_size} bytes)"
    )]
    BackingFileSize {
        len: u64,
        offset: u64,
        cluster_size: u64,
    },
    #[error(
        "incompatible feature bit 3 (compression type) is set but compression_type is 0 \
        (zlib); incompatible_features is {0:#x}"
    )]
    CompressionBitWithZlib(u64),
    #[error(
        "compression_type is 1 (zstd) but incompatible feature bit 3 (compression type) \
        is not set"
    )]
    ZstdWithoutCompressionBit,
    #[error("compression_type is {0}; must be 0 (zlib) or 1 (zstd)")]
    CompressionType(u8),
    #[error("refcount_order is {0}; must be at most {MAX_REFCOUNT_ORDER} (64-bit refcounts)")]
    RefcountOrder(u32),
    #[error("crypt_method is {0}; must be 0 (none), 1 (AES) or 2 (LUKS)")]
    CryptMethod(u32),
    #[error("refcount_table_clusters is {clusters}; at most {max} clusters (8 MiB) are allowed")]
    RefcountTableClusters { clusters: u32, max: u64 },
    #[error("refcount_table_offset is {offset:#x}; {placement}")]
    RefcountTableOffset { offset: u64, placement: Placement },
    #[error("nb_snapshots is {count}; at most {max} are allowed")]
    SnapshotCount { count: u32, max: u32 },
    #[error("snapshots_offset is {offset:#x}; {placement}")]
    SnapshotsOffset { offset: u64, placement: Placement },
    #[error("l1_size is {entries} entries; at most {max} (32 MiB) are allowed")]
    L1TooLarge { entries: u32, max: u64 },
    #[error("l1_table_offset is {offset:#x}; {placement}")]
    L1Offset { offset: u64, placement: Placement },
    #[error(
        "size is {size} bytes; with {cluster_size}-byte clusters that needs {needed} L1 entries, \
        more than {max}"
    )]
    TooBig {
        size: u64,
        cluster_size: u64,
        needed: u64,
        max: u64,
    },
    #[error("l1_size is {entries} entries; the virtual size {size} needs at least {needed}")]
    L1TooSmall {
        entries: u32,
        size: u64,
        needed: u64,
    },
    #[error("incompatible_features has unknown bits {bits:#x}{}", named_bits(.names))]
    UnknownIncompatible {
        bits: u64,
        /// Bits the feature name table names: (bit, name).
        names: Vec<(u8, String)>,
    },
    #[error(
        "autoclear_features {0:#x} sets bit 1 (raw external data) without incompatible bit 2 \
        (external data file)"
    )]
    RawDataWithoutDataFile(u64),
    #[error(
        "header extension {kind:#010x} at offset {offset} is {len} bytes long and passes the \
        end of the extension area ({end})"
    )]
    ExtensionPastArea {
        kind: u32,
        offset: u64,
        len: u32,
        end: u64,
    },
    #[error("backing format extension is {0} bytes; at most {MAX_BACKING_FORMAT_NAME}")]
    BackingFormatLength(u32),
    #[error("full disk encryption header extension present but crypt_method is {0}, not 2 (LUKS)")]
    CryptoWithoutLuks(u32),
    #[error("encryption header offset {0:#x} is not cluster aligned")]
    CryptoHeaderUnaligned(u64),
    #[error("full disk encryption header extension is {0} bytes; must be 16")]
    CryptoExtensionLength(u32),
    #[error("bitmaps extension is {0} bytes; must be 24")]
    BitmapsExtensionLength(u32),
    #[error("bitmaps extension is cut short")]
    BitmapsExtensionShort,
    #[error("bitmaps extension reserved field is {0:#x}; must be 0")]
    BitmapsReserved(u32),
    #[error("bitmaps extension counts {0} bitmaps; must be 1 to {MAX_BITMAPS}")]
    BitmapCount(u32),
    #[error("bitmap directory offset {0:#x} is not cluster aligned")]
    BitmapDirectoryUnaligned(u64),
    #[error("bitmap directory size is {0}; at most {MAX_BITMAP_DIRECTORY_BYTES}")]
    BitmapDirectorySize(u64),
    /// The active L1 table could not be read (its bounds were checked).
    #[error(transparent)]
    L1Read(BoundsError),
    #[error("reading the L2 table at {offset:#x}")]
    L2Read {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

fn named_bits(names: &[(u8, String)]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let list: Vec<String> = names
        .iter()
        .map(|(b, n)| format!("bit {b} \"{n}\""))
        .collect();
    format!(" ({})", list.join(", "))
}

impl OpenError {
    /// The rule this error breaks.
    pub(crate) fn rule(&self) -> &'static Rule {
        use OpenError as E;
        match self {
            E::Io { .. } | E::L1Read(_) | E::L2Read { .. } => &rules::IO,
            E::MagicBytes(_) | E::Magic(_) => &rules::BAD_MAGIC,
            E::ShorterThanHeader { .. } | E::ShorterThanHeaderLength { .. } => &rules::TRUNCATED,
            E::Version(_) => &rules::UNSUPPORTED_VERSION,
            E::ClusterBits(_) | E::ExtendedL2ClusterBits(_) => &rules::CLUSTER_BITS,
            E::HeaderLengthTooShort(_) | E::HeaderLengthPastCluster { .. } => &rules::HEADER_LENGTH,
            E::BackingFileOffset { .. } | E::BackingFileSize { .. } => &rules::BACKING_FILE_NAME,
            E::CompressionBitWithZlib(_) | E::ZstdWithoutCompressionBit | E::CompressionType(_) => {
                &rules::COMPRESSION_TYPE
            }
            E::RefcountOrder(_) => &rules::REFCOUNT_ORDER,
            E::CryptMethod(_) => &rules::ENCRYPTION_METHOD,
            E::RefcountTableClusters { .. } | E::RefcountTableOffset { .. } => {
                &rules::REFCOUNT_TABLE
            }
            E::SnapshotCount { .. } | E::SnapshotsOffset { .. } => &rules::SNAPSHOT_TABLE,
            E::L1TooLarge { .. } => &rules::L1_TOO_LARGE,
            E::L1Offset { .. } => &rules::L1_UNALIGNED,
            E::TooBig { .. } => &rules::TOO_BIG,
            E::L1TooSmall { .. } => &rules::L1_TOO_SMALL,
            E::UnknownIncompatible { .. } => &rules::UNKNOWN_INCOMPATIBLE_FEATURE,
            E::RawDataWithoutDataFile(_) => &rules::EXTERNAL_DATA_FILE,
            E::ExtensionPastArea { .. }
            | E::BackingFormatLength(_)
            | E::CryptoWithoutLuks(_)
            | E::CryptoHeaderUnaligned(_)
            | E::CryptoExtensionLength(_)
            | E::BitmapsExtensionLength(_)
            | E::BitmapsExtensionShort
            | E::BitmapsReserved(_)
            | E::BitmapCount(_)
            | E::BitmapDirectoryUnaligned(_)
            | E::BitmapDirectorySize(_) => &rules::HEADER_EXTENSION,
        }
    }

    /// The finding [`crate::open`] reports: the rule, and the message with its causes.
    pub(crate) fn finding(&self) -> Finding {
        self.rule().finding(preflight_disk::error_chain(self))
    }
}
