//! Fixed structures of the header section (MS-VHDX §2.2): the file
//! identifier, the two headers, the two region tables, and the metadata
//! table and items. All little-endian, parsed with nom; headers, region
//! tables and the metadata table are checked with CRC-32C.

use nom::bytes::complete::take;
use nom::combinator::map_res;
use nom::multi::count;
use nom::number::complete::{le_u16, le_u32, le_u64};
use nom::{IResult, Parser};

/// 1 MiB: the alignment unit of regions, the log and payload blocks.
pub const MIB: u64 = 1 << 20;
/// 64 KiB.
pub const KIB64: u64 = 64 * 1024;
/// Signature at offset 0.
pub const FILE_SIGNATURE: &[u8; 8] = b"vhdxfile";
/// Offsets of the two headers.
pub const HEADER_OFFSETS: [u64; 2] = [KIB64, 2 * KIB64];
/// Size of a header.
pub const HEADER_SIZE: u64 = 4096;
/// Offsets of the two region tables.
pub const REGION_TABLE_OFFSETS: [u64; 2] = [3 * KIB64, 4 * KIB64];
/// Size of a region table.
pub const REGION_TABLE_SIZE: u64 = KIB64;
/// End of the header section.
pub const HEADER_SECTION_END: u64 = MIB;
/// Most region table entries (MS-VHDX: EntryCount ≤ 2047, what fits in 64 KiB).
pub const MAX_REGION_ENTRIES: u32 = 2047;
/// Size of the metadata table at the start of the metadata region.
pub const METADATA_TABLE_SIZE: u64 = KIB64;
/// Most metadata table entries (MS-VHDX: ≤ 2047, what fits in 64 KiB).
pub const MAX_METADATA_ENTRIES: u16 = 2047;

/// Builds a GUID's on-disk bytes (the first three fields little-endian).
pub const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// Region: block allocation table.
pub const BAT_GUID: [u8; 16] = guid(
    0x2dc2_7766,
    0xf623,
    0x4200,
    [0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08],
);
/// Region: metadata.
pub const METADATA_GUID: [u8; 16] = guid(
    0x8b7c_a206,
    0x4790,
    0x4b9a,
    [0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e],
);
/// Metadata item: file parameters (block size, flags).
pub const FILE_PARAMETERS: [u8; 16] = guid(
    0xcaa1_6737,
    0xfa36,
    0x4d43,
    [0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b],
);
/// Metadata item: virtual disk size.
pub const VIRTUAL_DISK_SIZE: [u8; 16] = guid(
    0x2fa5_4224,
    0xcd1b,
    0x4876,
    [0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8],
);
/// Metadata item: virtual disk id.
pub const VIRTUAL_DISK_ID: [u8; 16] = guid(
    0xbeca_12ab,
    0xb2e6,
    0x4523,
    [0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46],
);
/// Metadata item: logical sector size.
pub const LOGICAL_SECTOR_SIZE: [u8; 16] = guid(
    0x8141_bf1d,
    0xa96f,
    0x4709,
    [0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f],
);
/// Metadata item: physical sector size.
pub const PHYSICAL_SECTOR_SIZE: [u8; 16] = guid(
    0xcda3_48c7,
    0x445d,
    0x4471,
    [0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56],
);
/// Metadata item: parent locator.
pub const PARENT_LOCATOR: [u8; 16] = guid(
    0xa8d3_5f2d,
    0xb30b,
    0x454d,
    [0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c],
);

/// One of the two headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `head` on a valid header.
    pub signature: [u8; 4],
    /// Stored CRC-32C.
    pub checksum: u32,
    /// CRC-32C of the 4 KiB with the checksum field read as zero.
    pub computed: u32,
    /// The valid header with the higher sequence number is the active one.
    pub sequence: u64,
    /// Non-zero when the log holds entries to replay.
    pub log_guid: [u8; 16],
    /// Log format version (0).
    pub log_version: u16,
    /// Format version (1).
    pub version: u16,
    /// Log size in bytes (a multiple of 1 MiB).
    pub log_length: u32,
    /// Log offset (a multiple of 1 MiB, at least 1 MiB).
    pub log_offset: u64,
}

impl Header {
    /// Signature `head`, right CRC and version 1: qemu's test of a usable header.
    pub fn is_valid(&self) -> bool {
        &self.signature == b"head" && self.checksum == self.computed && self.version == 1
    }

    /// True when the log GUID is not zero: the log may hold entries to replay.
    pub fn log_in_use(&self) -> bool {
        self.log_guid != [0; 16]
    }
}

/// One region table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionEntry {
    /// Region type.
    pub guid: [u8; 16],
    /// File offset (a multiple of 1 MiB).
    pub offset: u64,
    /// Length (a multiple of 1 MiB).
    pub length: u32,
    /// Bit 0: an implementation that does not know the region must refuse the file.
    pub required: bool,
}

/// A region table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionTable {
    /// `regi` on a valid table.
    pub signature: [u8; 4],
    /// Stored CRC-32C.
    pub checksum: u32,
    /// Computed CRC-32C.
    pub computed: u32,
    /// Entry count as stored.
    pub entry_count: u32,
    /// The entries (at most [`MAX_REGION_ENTRIES`]).
    pub entries: Vec<RegionEntry>,
}

impl RegionTable {
    /// Signature, CRC and entry count all right.
    pub fn is_valid(&self) -> bool {
        &self.signature == b"regi"
            && self.checksum == self.computed
            && self.entry_count <= MAX_REGION_ENTRIES
    }
}

/// One metadata table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataEntry {
    /// Item type.
    pub item: [u8; 16],
    /// Offset from the start of the metadata region.
    pub offset: u32,
    /// Length of the item.
    pub length: u32,
    /// Bit 2: IsRequired.
    pub required: bool,
}

/// The metadata table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataTable {
    /// `metadata` on a valid table.
    pub signature: [u8; 8],
    /// Entry count as stored.
    pub entry_count: u16,
    /// The entries (at most [`MAX_METADATA_ENTRIES`]).
    pub entries: Vec<MetadataEntry>,
}

fn arr<const N: usize>(i: &[u8]) -> IResult<&[u8], [u8; N]> {
    map_res(take(N), <[u8; N]>::try_from).parse(i)
}

/// CRC-32C of `bytes` with the 4 bytes at offset 4 read as zero.
pub fn crc32c_skipping_field(bytes: &[u8]) -> u32 {
    let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    match (bytes.get(..4), bytes.get(8..)) {
        (Some(head), Some(tail)) => {
            digest.update(head);
            digest.update(&[0u8; 4]);
            digest.update(tail);
        }
        _ => digest.update(bytes),
    }
    u32::try_from(digest.finalize()).unwrap_or(u32::MAX)
}

fn header_fields(i: &[u8]) -> IResult<&[u8], Header> {
    let (i, (signature, checksum, sequence, _file_write, _data_write, log_guid)) =
        (arr::<4>, le_u32, le_u64, arr::<16>, arr::<16>, arr::<16>).parse(i)?;
    let (i, (log_version, version, log_length, log_offset)) =
        (le_u16, le_u16, le_u32, le_u64).parse(i)?;
    let header = Header {
        signature,
        checksum,
        computed: 0,
        sequence,
        log_guid,
        log_version,
        version,
        log_length,
        log_offset,
    };
    Ok((i, header))
}

impl Header {
    /// Parses a header from its 4 KiB; `None` if shorter.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        let bytes = bytes.get(..4096)?;
        let (_, mut h) = header_fields(bytes).ok()?;
        h.computed = crc32c_skipping_field(bytes);
        Some(h)
    }
}

fn region_entry(i: &[u8]) -> IResult<&[u8], RegionEntry> {
    let (i, (guid, offset, length, required)) = (arr::<16>, le_u64, le_u32, le_u32).parse(i)?;
    Ok((
        i,
        RegionEntry {
            guid,
            offset,
            length,
            required: required & 1 != 0,
        },
    ))
}

impl RegionTable {
    /// Parses a region table from its 64 KiB; `None` if shorter. Entries are
    /// read up to the stored count or [`MAX_REGION_ENTRIES`], whichever is less.
    pub fn parse(bytes: &[u8]) -> Option<RegionTable> {
        let bytes = bytes.get(..65536)?;
        let (i, (signature, checksum, entry_count, _reserved)) =
            (arr::<4>, le_u32, le_u32, le_u32).parse(bytes).ok()?;
        let n = usize::try_from(entry_count.min(MAX_REGION_ENTRIES)).ok()?;
        let (_, entries) = count(region_entry, n).parse(i).ok()?;
        Some(RegionTable {
            signature,
            checksum,
            computed: crc32c_skipping_field(bytes),
            entry_count,
            entries,
        })
    }
}

fn metadata_entry(i: &[u8]) -> IResult<&[u8], MetadataEntry> {
    let (i, (item, offset, length, flags, _reserved)) =
        (arr::<16>, le_u32, le_u32, le_u32, le_u32).parse(i)?;
    Ok((
        i,
        MetadataEntry {
            item,
            offset,
            length,
            required: flags & 4 != 0,
        },
    ))
}

impl MetadataTable {
    /// Parses the metadata table from its 64 KiB; `None` if shorter.
    pub fn parse(bytes: &[u8]) -> Option<MetadataTable> {
        let bytes = bytes.get(..65536)?;
        let (i, (signature, _reserved, entry_count, _reserved2)) =
            (arr::<8>, le_u16, le_u16, take(20usize))
                .parse(bytes)
                .ok()?;
        let n = usize::from(entry_count.min(MAX_METADATA_ENTRIES));
        let (_, entries) = count(metadata_entry, n).parse(i).ok()?;
        Some(MetadataTable {
            signature,
            entry_count,
            entries,
        })
    }
}

/// Reads a little-endian u32 or u64 item value from the start of `bytes`.
pub fn le_u32_at(bytes: &[u8]) -> Option<u32> {
    le_u32::<_, nom::error::Error<&[u8]>>(bytes)
        .ok()
        .map(|(_, v)| v)
}

/// See [`le_u32_at`].
pub fn le_u64_at(bytes: &[u8]) -> Option<u64> {
    le_u64::<_, nom::error::Error<&[u8]>>(bytes)
        .ok()
        .map(|(_, v)| v)
}

/// Decodes UTF-16LE (stopping at a NUL), replacing invalid units.
pub fn utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| <[u8; 2]>::try_from(c).map_or(0, u16::from_le_bytes))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

fn locator_entry(i: &[u8]) -> IResult<&[u8], (u32, u32, u16, u16)> {
    (le_u32, le_u32, le_u16, le_u16).parse(i)
}

/// The parent path in a parent locator item (MS-VHDX §2.6.2.6): the value
/// of `relative_path`, else `absolute_win32_path`, else `volume_path`.
/// `None` when the item is malformed or names no path.
pub fn parent_path(item: &[u8]) -> Option<String> {
    let (i, (_locator_type, _reserved, n)) = (arr::<16>, le_u16, le_u16).parse(item).ok()?;
    let (_, entries) = count(locator_entry, usize::from(n)).parse(i).ok()?;
    let text = |off: u32, len: u16| -> Option<String> {
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::from(len))?;
        Some(utf16le(item.get(start..end)?))
    };
    let pairs: Vec<(String, String)> = entries
        .into_iter()
        .filter_map(|(ko, vo, kl, vl)| Some((text(ko, kl)?, text(vo, vl)?)))
        .collect();
    ["relative_path", "absolute_win32_path", "volume_path"]
        .iter()
        .find_map(|k| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        })
}

/// Test builders for the structures, with CRCs fixed.
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    /// Stores the CRC-32C of `buf` at offset 4.
    pub fn fix_crc(buf: &mut [u8]) {
        let c = crc32c_skipping_field(buf);
        buf[4..8].copy_from_slice(&c.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_bytes_match_disk_order() {
        // As stored by qemu-img in a region table.
        assert_eq!(
            BAT_GUID,
            [
                0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd,
                0x4a, 0x08
            ]
        );
    }

    #[test]
    fn crc32c_check_value() {
        let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
        digest.update(b"123456789");
        assert_eq!(digest.finalize(), 0xe306_9283);
        // The field at 4..8 does not matter.
        let mut a = vec![7u8; 64];
        let c = crc32c_skipping_field(&a);
        a[4..8].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(crc32c_skipping_field(&a), c);
        assert_eq!(
            crc32c_skipping_field(&[1, 2]),
            crc32c_skipping_field(&[1, 2])
        );
    }

    #[test]
    fn header_parse_and_validity() {
        let mut h = vec![0u8; 4096];
        h[..4].copy_from_slice(b"head");
        h[8..16].copy_from_slice(&5u64.to_le_bytes());
        h[66..68].copy_from_slice(&1u16.to_le_bytes());
        h[68..72].copy_from_slice(&(1u32 << 20).to_le_bytes());
        h[72..80].copy_from_slice(&(1u64 << 20).to_le_bytes());
        build::fix_crc(&mut h);
        let p = Header::parse(&h).unwrap();
        assert!(p.is_valid());
        assert_eq!(p.sequence, 5);
        assert_eq!(p.log_offset, 1 << 20);
        assert!(!p.log_in_use());
        h[100] = 1;
        assert!(!Header::parse(&h).unwrap().is_valid());
        assert!(Header::parse(&h[..4095]).is_none());
    }

    #[test]
    fn region_table_parse() {
        let mut t = vec![0u8; 65536];
        t[..4].copy_from_slice(b"regi");
        t[8..12].copy_from_slice(&2u32.to_le_bytes());
        t[16..32].copy_from_slice(&BAT_GUID);
        t[32..40].copy_from_slice(&(2u64 << 20).to_le_bytes());
        t[40..44].copy_from_slice(&(1u32 << 20).to_le_bytes());
        t[44..48].copy_from_slice(&1u32.to_le_bytes());
        t[48..64].copy_from_slice(&METADATA_GUID);
        build::fix_crc(&mut t);
        let p = RegionTable::parse(&t).unwrap();
        assert!(p.is_valid());
        assert_eq!(p.entries.len(), 2);
        assert!(p.entries[0].required && !p.entries[1].required);
        t[8..12].copy_from_slice(&100_000u32.to_le_bytes());
        build::fix_crc(&mut t);
        let p = RegionTable::parse(&t).unwrap();
        assert!(!p.is_valid());
        assert_eq!(p.entries.len(), 2047);
    }

    #[test]
    fn parent_locator_paths() {
        let key: Vec<u8> = "relative_path"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let val: Vec<u8> = "..\\p.vhdx"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut item = vec![0u8; 20];
        item[18..20].copy_from_slice(&1u16.to_le_bytes());
        let ko = 32u32;
        let vo = ko + u32::try_from(key.len()).unwrap();
        item.extend_from_slice(&ko.to_le_bytes());
        item.extend_from_slice(&vo.to_le_bytes());
        item.extend_from_slice(&u16::try_from(key.len()).unwrap().to_le_bytes());
        item.extend_from_slice(&u16::try_from(val.len()).unwrap().to_le_bytes());
        item.extend_from_slice(&key);
        item.extend_from_slice(&val);
        assert_eq!(parent_path(&item).as_deref(), Some("..\\p.vhdx"));
        assert_eq!(parent_path(&item[..40]), None);
        assert_eq!(parent_path(&[]), None);
    }
}
