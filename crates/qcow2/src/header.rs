//! The fixed header and the header extensions, parsed with nom and validated
//! in the order qemu's `qcow2_do_open` does, so that the first problem we
//! report is the one qemu would refuse the image for.

use crate::error::{OpenError, Placement};
use preflight_disk::Source;

use nom::bytes::complete::take;
use nom::number::complete::{be_u32, be_u64, u8 as be_u8};
use nom::{IResult, Parser};

/// `QFI\xfb`.
pub(crate) const QCOW_MAGIC: u32 = 0x5146_49fb;
/// Length of a version 2 header; version 3 fields follow it.
pub(crate) const V2_HEADER_LEN: u32 = 72;
/// Minimum v3 header_length: every v3 field up to `header_length` itself.
pub(crate) const V3_MIN_HEADER_LEN: u32 = 104;
/// Offset of the optional compression_type byte in a v3 header.
const COMPRESSION_TYPE_OFFSET: u32 = 104;
/// Smallest cluster qemu accepts (block/qcow2.h MIN_CLUSTER_BITS).
pub(crate) const MIN_CLUSTER_BITS: u32 = 9;
/// Largest cluster qemu accepts (block/qcow2.h MAX_CLUSTER_BITS): 2 MiB.
pub(crate) const MAX_CLUSTER_BITS: u32 = 21;
/// Extended L2 splits a cluster into 32 subclusters that must be at least
/// 512 bytes (qemu: "Unsupported subcluster size"), so clusters >= 16 KiB.
pub(crate) const MIN_CLUSTER_BITS_EXTENDED_L2: u32 = 14;
/// Widest refcount entry: 2^6 = 64 bits (qemu: "may not exceed 64 bits").
pub(crate) const MAX_REFCOUNT_ORDER: u32 = 6;
/// qemu's QCOW_MAX_L1_SIZE: 32 MiB of L1 table ("Active L1 table too large").
pub(crate) const MAX_L1_BYTES: u64 = 32 << 20;
/// qemu's QCOW_MAX_REFTABLE_SIZE: 8 MiB of refcount table.
pub(crate) const MAX_REFTABLE_BYTES: u64 = 8 << 20;
/// qemu's QCOW_MAX_SNAPSHOTS: at most 65536 snapshots.
pub(crate) const MAX_SNAPSHOTS: u32 = 65536;
/// qemu bounds `l1_vm_state_index` (L1 entries needed for the virtual size)
/// by INT_MAX ("Image is too big"): `i32::MAX`, written out as `as` is linted here.
const MAX_L1_INDEX: u64 = 0x7fff_ffff;
/// qemu stores the backing file name in a 1024-byte C string.
pub(crate) const MAX_BACKING_FILE_NAME: u32 = 1023;
/// qemu stores the backing format name in a 16-byte C string.
pub(crate) const MAX_BACKING_FORMAT_NAME: u32 = 15;
/// qemu's QCOW2_MAX_BITMAPS.
pub(crate) const MAX_BITMAPS: u32 = 65535;
/// qemu's QCOW2_MAX_BITMAP_DIRECTORY_SIZE: 1 KiB per bitmap.
pub(crate) const MAX_BITMAP_DIRECTORY_BYTES: u64 = 1024 * 65535;

/// Incompatible feature bits.
pub(crate) const INCOMPAT_DIRTY: u64 = 1 << 0;
pub(crate) const INCOMPAT_CORRUPT: u64 = 1 << 1;
pub(crate) const INCOMPAT_DATA_FILE: u64 = 1 << 2;
pub(crate) const INCOMPAT_COMPRESSION: u64 = 1 << 3;
pub(crate) const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 = 0x1f;
/// Compatible feature bits.
pub(crate) const COMPAT_LAZY_REFCOUNTS: u64 = 1 << 0;
/// Autoclear feature bits.
pub(crate) const AUTOCLEAR_BITMAPS: u64 = 1 << 0;
pub(crate) const AUTOCLEAR_DATA_FILE_RAW: u64 = 1 << 1;

/// Header extension types.
const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
const EXT_FEATURE_TABLE: u32 = 0x6803_f857;
const EXT_BITMAPS: u32 = 0x2385_2875;
const EXT_CRYPTO: u32 = 0x0537_be77;
const EXT_DATA_FILE: u32 = 0x4441_5441;

/// Encryption methods.
pub(crate) const CRYPT_NONE: u32 = 0;
pub(crate) const CRYPT_AES: u32 = 1;
pub(crate) const CRYPT_LUKS: u32 = 2;

/// Compression types.
pub(crate) const COMPRESSION_ZLIB: u8 = 0;
pub(crate) const COMPRESSION_ZSTD: u8 = 1;

/// The fixed header fields. v3-only fields are 0 (refcount_order 4,
/// header_length 72) in a v2 image, as qemu treats them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub magic: u32,
    pub version: u32,
    pub backing_file_offset: u64,
    pub backing_file_size: u32,
    pub cluster_bits: u32,
    pub size: u64,
    pub crypt_method: u32,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub nb_snapshots: u32,
    pub snapshots_offset: u64,
    pub incompatible_features: u64,
    pub compatible_features: u64,
    pub autoclear_features: u64,
    pub refcount_order: u32,
    pub header_length: u32,
    pub compression_type: u8,
}

/// The bitmaps extension (only kept when the autoclear bit says it is valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BitmapsExt {
    pub nb_bitmaps: u32,
    pub directory_size: u64,
    pub directory_offset: u64,
}

/// What the header extensions said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Extensions {
    pub backing_format: Option<String>,
    /// Names from the feature name table: (type, bit, name).
    pub feature_names: Vec<(u8, u8, String)>,
    /// Full-disk-encryption header: (offset, length).
    pub crypto_header: Option<(u64, u64)>,
    pub bitmaps: Option<BitmapsExt>,
    pub data_file: Option<String>,
}

/// Values derived from the header that every other module needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub cluster_bits: u32,
    pub cluster_size: u64,
    pub extended_l2: bool,
    /// Bytes per L2 entry: 8, or 16 with extended L2.
    pub l2_entry_size: u64,
    /// log2 of the number of entries in an L2 table.
    pub l2_bits: u32,
    pub refcount_order: u32,
    pub virtual_size: u64,
    pub file_size: u64,
    /// Compressed descriptor: host offset is the low `csize_shift` bits.
    pub csize_shift: u32,
    pub csize_mask: u64,
}

impl Geometry {
    /// Entries per L2 table.
    pub fn l2_entries(&self) -> u64 {
        1u64.checked_shl(self.l2_bits).unwrap_or(0)
    }

    /// Host clusters the file covers (the last one may be partial).
    pub fn host_clusters(&self) -> u64 {
        self.file_size.div_ceil(self.cluster_size)
    }

    /// Offset within a cluster.
    pub fn offset_in_cluster(&self, offset: u64) -> u64 {
        offset & self.cluster_size.saturating_sub(1)
    }
}

/// The low bits of an offset inside a cluster of 2^`cluster_bits` bytes.
fn cluster_mask(cluster_bits: u32) -> u64 {
    1u64.checked_shl(cluster_bits)
        .map_or(u64::MAX, |size| size.saturating_sub(1))
}

/// The header, its extensions, and what follows from them.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub header: Header,
    pub ext: Extensions,
    pub geo: Geometry,
    pub backing_file: Option<String>,
}

fn header_v2(i: &[u8]) -> IResult<&[u8], Header> {
    let (i, (magic, version, backing_file_offset, backing_file_size, cluster_bits, size)) =
        (be_u32, be_u32, be_u64, be_u32, be_u32, be_u64).parse(i)?;
    let (i, (crypt_method, l1_size, l1_table_offset, refcount_table_offset)) =
        (be_u32, be_u32, be_u64, be_u64).parse(i)?;
    let (i, (refcount_table_clusters, nb_snapshots, snapshots_offset)) =
        (be_u32, be_u32, be_u64).parse(i)?;
    Ok((
        i,
        Header {
            magic,
            version,
            backing_file_offset,
            backing_file_size,
            cluster_bits,
            size,
            crypt_method,
            l1_size,
            l1_table_offset,
            refcount_table_offset,
            refcount_table_clusters,
            nb_snapshots,
            snapshots_offset,
            incompatible_features: 0,
            compatible_features: 0,
            autoclear_features: 0,
            refcount_order: 4,
            header_length: V2_HEADER_LEN,
            compression_type: COMPRESSION_ZLIB,
        },
    ))
}

/// The v3 fields from offset 72 to 104.
fn header_v3_tail(i: &[u8]) -> IResult<&[u8], (u64, u64, u64, u32, u32)> {
    (be_u64, be_u64, be_u64, be_u32, be_u32).parse(i)
}

/// Parses the fixed header from the first bytes of the file. Only fails if
/// the bytes are too short for the fields the version needs.
pub(crate) fn parse_fixed(bytes: &[u8]) -> Option<Header> {
    let (rest, mut h) = header_v2(bytes).ok()?;
    if h.version == 3 {
        let (rest, (incompat, compat, autoclear, order, len)) = header_v3_tail(rest).ok()?;
        h.incompatible_features = incompat;
        h.compatible_features = compat;
        h.autoclear_features = autoclear;
        h.refcount_order = order;
        h.header_length = len;
        if len > COMPRESSION_TYPE_OFFSET {
            if let Ok((_, t)) = be_u8::<_, nom::error::Error<&[u8]>>(rest) {
                h.compression_type = t;
            }
        }
    }
    Some(h)
}

/// Reads and validates the header and its extensions: the one error that makes the image
/// unreadable, or what they say.
pub(crate) fn parse(src: &dyn Source) -> Result<Parsed, OpenError> {
    let file_size = src.size();
    // The magic first, so that a short non-qcow2 file is called what it is.
    let head_len = file_size.min(u64::from(COMPRESSION_TYPE_OFFSET).saturating_add(8));
    let mut head = vec![0u8; usize::try_from(head_len).unwrap_or(0)];
    src.read_exact_at(0, &mut head)
        .map_err(|source| OpenError::Io {
            what: "header",
            offset: 0,
            source,
        })?;
    if let Some(magic) = head.get(..4).and_then(|m| <[u8; 4]>::try_from(m).ok()) {
        if magic != QCOW_MAGIC.to_be_bytes() {
            return Err(OpenError::MagicBytes(magic));
        }
    }
    let Some(h) = parse_fixed(&head) else {
        return Err(OpenError::ShorterThanHeader {
            file_size,
            header_len: if head.get(4..8) == Some(&[0, 0, 0, 3]) {
                V3_MIN_HEADER_LEN
            } else {
                V2_HEADER_LEN
            },
        });
    };
    let geo = validate(&h, file_size)?;

    // Cluster 0 holds the header, its extensions and the backing file name.
    // It is at most 2 MiB (cluster_bits was checked). Bytes past the end of
    // the file read as zeros, as they do for qemu.
    let c0_len = usize::try_from(geo.cluster_size).unwrap_or(0);
    let mut c0 = vec![0u8; c0_len];
    let avail = usize::try_from(file_size.min(geo.cluster_size)).unwrap_or(0);
    if let Some(part) = c0.get_mut(..avail) {
        src.read_exact_at(0, part).map_err(|source| OpenError::Io {
            what: "header cluster",
            offset: 0,
            source,
        })?;
    }

    let ext_end = if h.backing_file_offset != 0 {
        h.backing_file_offset
    } else {
        geo.cluster_size
    };
    let (ext, ext_error) = parse_extensions(&c0, u64::from(h.header_length), ext_end, &h);

    // Unknown incompatible bits are reported before extension errors, as qemu
    // does, with names from the feature table if there is one.
    let unknown = h.incompatible_features & !INCOMPAT_KNOWN;
    if unknown != 0 {
        let names = ext
            .feature_names
            .iter()
            .filter(|(t, b, _)| {
                *t == 0
                    && 1u64
                        .checked_shl(u32::from(*b))
                        .is_some_and(|bit| unknown & bit != 0)
            })
            .map(|(_, b, n)| (*b, n.clone()))
            .collect();
        return Err(OpenError::UnknownIncompatible {
            bits: unknown,
            names,
        });
    }
    if let Some(f) = ext_error {
        return Err(f);
    }

    if h.autoclear_features & AUTOCLEAR_DATA_FILE_RAW != 0
        && h.incompatible_features & INCOMPAT_DATA_FILE == 0
    {
        return Err(OpenError::RawDataWithoutDataFile(h.autoclear_features));
    }

    let backing_file = if h.backing_file_offset != 0 {
        let len = u64::from(h.backing_file_size);
        let room = geo.cluster_size.saturating_sub(h.backing_file_offset);
        if len > u64::from(MAX_BACKING_FILE_NAME).min(room) {
            return Err(OpenError::BackingFileSize {
                len,
                offset: h.backing_file_offset,
                cluster_size: geo.cluster_size,
            });
        }
        let start = usize::try_from(h.backing_file_offset).unwrap_or(usize::MAX);
        let n = usize::try_from(len).unwrap_or(0);
        let bytes = c0.get(start..start.saturating_add(n)).unwrap_or_default();
        // An empty name means no backing file, as in qemu.
        Some(c_string(bytes)).filter(|n| !n.is_empty())
    } else {
        None
    };

    Ok(Parsed {
        header: h,
        ext,
        geo,
        backing_file,
    })
}

/// Bytes up to the first NUL, as text (qemu treats names as C strings).
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
}

/// Checks the fixed fields, in qemu's order, and derives the geometry.
pub(crate) fn validate(h: &Header, file_size: u64) -> Result<Geometry, OpenError> {
    if h.magic != QCOW_MAGIC {
        return Err(OpenError::Magic(h.magic));
    }
    if h.version != 2 && h.version != 3 {
        return Err(OpenError::Version(h.version));
    }
    if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&h.cluster_bits) {
        return Err(OpenError::ClusterBits(h.cluster_bits));
    }
    let cluster_size = 1u64
        .checked_shl(h.cluster_bits)
        .ok_or(OpenError::ClusterBits(h.cluster_bits))?;
    if h.version >= 3 && h.header_length < V3_MIN_HEADER_LEN {
        return Err(OpenError::HeaderLengthTooShort(h.header_length));
    }
    if u64::from(h.header_length) > cluster_size {
        return Err(OpenError::HeaderLengthPastCluster {
            length: h.header_length,
            cluster_size,
        });
    }
    if u64::from(h.header_length) > file_size {
        return Err(OpenError::ShorterThanHeaderLength {
            file_size,
            header_length: h.header_length,
        });
    }
    if h.backing_file_offset > cluster_size {
        return Err(OpenError::BackingFileOffset {
            offset: h.backing_file_offset,
            cluster_size,
        });
    }
    match h.compression_type {
        COMPRESSION_ZLIB if h.incompatible_features & INCOMPAT_COMPRESSION != 0 => {
            return Err(OpenError::CompressionBitWithZlib(h.incompatible_features))
        }
        COMPRESSION_ZSTD if h.incompatible_features & INCOMPAT_COMPRESSION == 0 => {
            return Err(OpenError::ZstdWithoutCompressionBit)
        }
        COMPRESSION_ZLIB | COMPRESSION_ZSTD => {}
        other => return Err(OpenError::CompressionType(other)),
    }
    // Unknown incompatible bits are reported by the caller, which has the
    // feature name table.
    let extended_l2 = h.incompatible_features & INCOMPAT_EXTL2 != 0;
    if extended_l2 && h.cluster_bits < MIN_CLUSTER_BITS_EXTENDED_L2 {
        return Err(OpenError::ExtendedL2ClusterBits(h.cluster_bits));
    }
    if h.refcount_order > MAX_REFCOUNT_ORDER {
        return Err(OpenError::RefcountOrder(h.refcount_order));
    }
    if h.crypt_method > CRYPT_LUKS {
        return Err(OpenError::CryptMethod(h.crypt_method));
    }
    let l2_entry_size: u64 = if extended_l2 { 16 } else { 8 };
    let l2_bits = h
        .cluster_bits
        .saturating_sub(l2_entry_size.trailing_zeros());

    // qemu's qcow2_validate_table for the refcount table, the snapshot table
    // and the active L1 table, in that order.
    let max_reftable_clusters = MAX_REFTABLE_BYTES.checked_div(cluster_size).unwrap_or(0);
    if u64::from(h.refcount_table_clusters) > max_reftable_clusters {
        return Err(OpenError::RefcountTableClusters {
            clusters: h.refcount_table_clusters,
            max: max_reftable_clusters,
        });
    }
    table_offset_ok(
        h.refcount_table_offset,
        u64::from(h.refcount_table_clusters).saturating_mul(cluster_size),
        cluster_size,
    )
    .map_err(|placement| OpenError::RefcountTableOffset {
        offset: h.refcount_table_offset,
        placement,
    })?;
    if h.nb_snapshots > MAX_SNAPSHOTS {
        return Err(OpenError::SnapshotCount {
            count: h.nb_snapshots,
            max: MAX_SNAPSHOTS,
        });
    }
    table_offset_ok(
        h.snapshots_offset,
        u64::from(h.nb_snapshots).saturating_mul(40),
        cluster_size,
    )
    .map_err(|placement| OpenError::SnapshotsOffset {
        offset: h.snapshots_offset,
        placement,
    })?;
    let max_l1 = MAX_L1_BYTES / 8;
    if u64::from(h.l1_size) > max_l1 {
        return Err(OpenError::L1TooLarge {
            entries: h.l1_size,
            max: max_l1,
        });
    }
    table_offset_ok(
        h.l1_table_offset,
        u64::from(h.l1_size).saturating_mul(8),
        cluster_size,
    )
    .map_err(|placement| OpenError::L1Offset {
        offset: h.l1_table_offset,
        placement,
    })?;
    // Entries of L1 needed to map the virtual size.
    let per_l1_entry = 1u64
        .checked_shl(h.cluster_bits.saturating_add(l2_bits))
        .unwrap_or(u64::MAX);
    let needed = h.size.div_ceil(per_l1_entry);
    if needed > MAX_L1_INDEX {
        return Err(OpenError::TooBig {
            size: h.size,
            cluster_size,
            needed,
            max: MAX_L1_INDEX,
        });
    }
    if u64::from(h.l1_size) < needed {
        return Err(OpenError::L1TooSmall {
            entries: h.l1_size,
            size: h.size,
            needed,
        });
    }
    Ok(Geometry {
        cluster_bits: h.cluster_bits,
        cluster_size,
        extended_l2,
        l2_entry_size,
        l2_bits,
        refcount_order: h.refcount_order,
        virtual_size: h.size,
        file_size,
        // The compressed-size field takes cluster_bits - 8 bits below bit 62.
        csize_shift: 62u32.saturating_sub(h.cluster_bits.saturating_sub(8)),
        csize_mask: cluster_mask(h.cluster_bits.saturating_sub(8)),
    })
}

/// qemu's rule for a table offset: cluster aligned, and offset + length
/// below 2^63.
fn table_offset_ok(offset: u64, len: u64, cluster_size: u64) -> Result<(), Placement> {
    if offset & cluster_size.saturating_sub(1) != 0 {
        return Err(Placement::Unaligned { cluster_size });
    }
    match offset.checked_add(len) {
        Some(end) if end <= i64::MAX.unsigned_abs() => Ok(()),
        _ => Err(Placement::PastLimit { len }),
    }
}

/// One extension record: (type, data).
fn extension(i: &[u8]) -> IResult<&[u8], (u32, u32)> {
    (be_u32, be_u32).parse(i)
}

/// A feature name table entry: type, bit, 46-byte name.
fn feature_name(i: &[u8]) -> IResult<&[u8], (u8, u8, &[u8])> {
    (be_u8, be_u8, take(46usize)).parse(i)
}

/// Bitmaps extension body.
fn bitmaps_ext(i: &[u8]) -> IResult<&[u8], (u32, u32, u64, u64)> {
    (be_u32, be_u32, be_u64, be_u64).parse(i)
}

/// Walks the extensions in `c0[start..end]` as qemu's
/// `qcow2_read_extensions` does. On error, returns what was read so far
/// (for the feature names) with the error.
fn parse_extensions(
    c0: &[u8],
    start: u64,
    end: u64,
    h: &Header,
) -> (Extensions, Option<OpenError>) {
    let mut ext = Extensions::default();
    let mut offset = start;
    // Each pass moves `offset` forward by at least 8 bytes, and
    // end <= cluster size, so the loop is bounded.
    while offset < end {
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        let Some(Ok((_, (kind, len)))) = c0.get(at..).map(extension) else {
            break; // past the end of the file: reads as zeros, i.e. the end marker
        };
        let record = offset;
        offset = offset.saturating_add(8);
        let len64 = u64::from(len);
        if offset > end || len64 > end.saturating_sub(offset) {
            let f = OpenError::ExtensionPastArea {
                kind,
                offset: record,
                len,
                end,
            };
            return (ext, Some(f));
        }
        let data_at = usize::try_from(offset).unwrap_or(usize::MAX);
        let data_len = usize::try_from(len).unwrap_or(0);
        // `end` <= cluster size == c0.len(), so this slice exists.
        let data = c0
            .get(data_at..data_at.saturating_add(data_len))
            .unwrap_or_default();
        match kind {
            EXT_END => return (ext, None),
            EXT_BACKING_FORMAT => {
                if len > MAX_BACKING_FORMAT_NAME {
                    let f = OpenError::BackingFormatLength(len);
                    return (ext, Some(f));
                }
                ext.backing_format = Some(c_string(data));
            }
            EXT_FEATURE_TABLE => {
                let mut rest = data;
                while let Ok((r, (t, b, name))) = feature_name(rest) {
                    ext.feature_names.push((t, b, c_string(name)));
                    rest = r;
                }
            }
            EXT_CRYPTO => {
                if h.crypt_method != CRYPT_LUKS {
                    let f = OpenError::CryptoWithoutLuks(h.crypt_method);
                    return (ext, Some(f));
                }
                let parsed: IResult<&[u8], (u64, u64)> = (be_u64, be_u64).parse(data);
                match parsed {
                    Ok((_, (off, length))) if len == 16 => {
                        if off & cluster_mask(h.cluster_bits) != 0 {
                            let f = OpenError::CryptoHeaderUnaligned(off);
                            return (ext, Some(f));
                        }
                        ext.crypto_header = Some((off, length));
                    }
                    _ => {
                        let f = OpenError::CryptoExtensionLength(len);
                        return (ext, Some(f));
                    }
                }
            }
            EXT_BITMAPS => {
                if len != 24 {
                    let f = OpenError::BitmapsExtensionLength(len);
                    return (ext, Some(f));
                }
                // Without the autoclear bit, a program unaware of bitmaps
                // wrote the image: qemu ignores the extension.
                if h.autoclear_features & AUTOCLEAR_BITMAPS != 0 {
                    let Ok((_, (nb, reserved, dir_size, dir_offset))) = bitmaps_ext(data) else {
                        let f = OpenError::BitmapsExtensionShort;
                        return (ext, Some(f));
                    };
                    let problem = if reserved != 0 {
                        Some(OpenError::BitmapsReserved(reserved))
                    } else if nb == 0 || nb > MAX_BITMAPS {
                        Some(OpenError::BitmapCount(nb))
                    } else if dir_offset & cluster_mask(h.cluster_bits) != 0 {
                        Some(OpenError::BitmapDirectoryUnaligned(dir_offset))
                    } else if dir_size > MAX_BITMAP_DIRECTORY_BYTES {
                        Some(OpenError::BitmapDirectorySize(dir_size))
                    } else {
                        None
                    };
                    if problem.is_some() {
                        return (ext, problem);
                    }
                    ext.bitmaps = Some(BitmapsExt {
                        nb_bitmaps: nb,
                        directory_size: dir_size,
                        directory_offset: dir_offset,
                    });
                }
            }
            EXT_DATA_FILE => ext.data_file = Some(c_string(data)),
            _ => {} // unknown extensions may be ignored
        }
        offset = offset.saturating_add(len64.div_ceil(8).saturating_mul(8));
    }
    (ext, None)
}
