//! The 512-byte footer and the 1024-byte dynamic disk header, parsed with nom.
//!
//! Both structures are big-endian and protected by the same checksum: the
//! one's complement of the byte sum of the structure with its checksum field
//! read as zero.

use nom::bytes::complete::take;
use nom::combinator::map_res;
use nom::number::complete::{be_u16, be_u32, be_u64, be_u8};
use nom::{IResult, Parser};

/// Size of the footer (and of its copy at offset 0).
pub const FOOTER_SIZE: u64 = 512;
/// Size of the dynamic disk header.
pub const DYN_HEADER_SIZE: u64 = 1024;
/// Footer cookie.
pub const FOOTER_COOKIE: &[u8; 8] = b"conectix";
/// Dynamic disk header cookie.
pub const DYN_COOKIE: &[u8; 8] = b"cxsparse";
/// The only format version defined (1.0), for the footer and the header.
pub const VERSION_1_0: u32 = 0x0001_0000;
/// Byte offset of the footer's checksum field.
const FOOTER_CHECKSUM_AT: usize = 64;
/// Byte offset of the dynamic header's checksum field.
const DYN_CHECKSUM_AT: usize = 36;

/// Disk type values of the footer.
pub const DISK_FIXED: u32 = 2;
/// Dynamic (sparse) disk.
pub const DISK_DYNAMIC: u32 = 3;
/// Differencing disk: a dynamic disk whose unallocated blocks come from a parent.
pub const DISK_DIFFERENCING: u32 = 4;

/// The VHD footer (the "hard disk footer" of the spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    /// `conectix` on a valid footer.
    pub cookie: [u8; 8],
    /// Bit 0 temporary, bit 1 reserved (must be 1).
    pub features: u32,
    /// Format version, 0x00010000.
    pub version: u32,
    /// Offset of the dynamic header; all ones for a fixed disk.
    pub data_offset: u64,
    /// Creator application, e.g. `qemu`, `win `, `vpc `.
    pub creator_app: [u8; 4],
    /// Creator version.
    pub creator_version: u32,
    /// Creator host OS, e.g. `Wi2k`.
    pub creator_os: [u8; 4],
    /// Size at creation.
    pub original_size: u64,
    /// Current size of the disk, in bytes.
    pub current_size: u64,
    /// CHS geometry: cylinders.
    pub cylinders: u16,
    /// CHS geometry: heads.
    pub heads: u8,
    /// CHS geometry: sectors per track.
    pub sectors: u8,
    /// 2 fixed, 3 dynamic, 4 differencing.
    pub disk_type: u32,
    /// Stored checksum.
    pub checksum: u32,
    /// Saved-state flag.
    pub saved_state: u8,
}

/// The dynamic disk header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynHeader {
    /// `cxsparse` on a valid header.
    pub cookie: [u8; 8],
    /// Offset of the BAT.
    pub table_offset: u64,
    /// Header version, 0x00010000.
    pub version: u32,
    /// Number of BAT entries.
    pub max_table_entries: u32,
    /// Block size in bytes.
    pub block_size: u32,
    /// Stored checksum.
    pub checksum: u32,
    /// Parent file name (differencing disks), UTF-16BE decoded.
    pub parent_name: String,
}

fn arr<const N: usize>(i: &[u8]) -> IResult<&[u8], [u8; N]> {
    map_res(take(N), <[u8; N]>::try_from).parse(i)
}

fn footer_fields(i: &[u8]) -> IResult<&[u8], Footer> {
    let (i, (cookie, features, version, data_offset, _timestamp)) =
        (arr::<8>, be_u32, be_u32, be_u64, be_u32).parse(i)?;
    let (i, (creator_app, creator_version, creator_os, original_size, current_size)) =
        (arr::<4>, be_u32, arr::<4>, be_u64, be_u64).parse(i)?;
    let (i, (cylinders, heads, sectors, disk_type, checksum, _uuid, saved_state)) =
        (be_u16, be_u8, be_u8, be_u32, be_u32, arr::<16>, be_u8).parse(i)?;
    Ok((
        i,
        Footer {
            cookie,
            features,
            version,
            data_offset,
            creator_app,
            creator_version,
            creator_os,
            original_size,
            current_size,
            cylinders,
            heads,
            sectors,
            disk_type,
            checksum,
            saved_state,
        },
    ))
}

fn dyn_fields(i: &[u8]) -> IResult<&[u8], DynHeader> {
    let (i, (cookie, _next, table_offset, version, max_table_entries, block_size, checksum)) =
        (arr::<8>, be_u64, be_u64, be_u32, be_u32, be_u32, be_u32).parse(i)?;
    let (i, (_parent_uuid, _parent_ts, _reserved, name)) =
        (arr::<16>, be_u32, be_u32, take(512usize)).parse(i)?;
    Ok((
        i,
        DynHeader {
            cookie,
            table_offset,
            version,
            max_table_entries,
            block_size,
            checksum,
            parent_name: utf16be_name(name),
        },
    ))
}

/// Decodes a NUL-terminated UTF-16BE name, replacing invalid units.
fn utf16be_name(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| {
            u16::from_be_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

impl Footer {
    /// Parses a footer from at least 512 bytes; `None` if shorter.
    pub fn parse(bytes: &[u8]) -> Option<Footer> {
        let bytes = bytes.get(..512)?;
        footer_fields(bytes).ok().map(|(_, f)| f)
    }

    /// True when the cookie is `conectix`.
    pub fn has_cookie(&self) -> bool {
        &self.cookie == FOOTER_COOKIE
    }

    /// The creator application, printable and trimmed (`qemu`, `win`, `vpc`).
    pub fn creator(&self) -> String {
        printable(&self.creator_app)
    }

    /// Size given by the CHS geometry: cylinders × heads × sectors × 512.
    pub fn chs_size(&self) -> u64 {
        // At most 65535 × 16 × 255 × 512: never saturates.
        u64::from(self.cylinders)
            .saturating_mul(u64::from(self.heads))
            .saturating_mul(u64::from(self.sectors))
            .saturating_mul(512)
    }

    /// True when the geometry is the maximum 65535/16/255, which qemu takes
    /// to mean "use current_size".
    pub fn chs_is_max(&self) -> bool {
        self.cylinders == 65535 && self.heads == 16 && self.sectors == 255
    }
}

impl DynHeader {
    /// Parses a dynamic header from at least 1024 bytes; `None` if shorter.
    pub fn parse(bytes: &[u8]) -> Option<DynHeader> {
        let bytes = bytes.get(..1024)?;
        dyn_fields(bytes).ok().map(|(_, h)| h)
    }
}

/// Printable ASCII of a four-character code, trailing spaces and NULs trimmed;
/// other bytes become `?`.
pub fn printable(code: &[u8]) -> String {
    let s: String = code
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else if b == 0 {
                ' '
            } else {
                '?'
            }
        })
        .collect();
    s.trim_end().to_string()
}

/// One's complement of the byte sum, with the 4 bytes at `skip` read as 0.
fn vhd_checksum(bytes: &[u8], skip: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !(skip..skip.saturating_add(4)).contains(i))
        .fold(0u32, |acc, (_, &b)| acc.wrapping_add(u32::from(b)));
    !sum
}

/// The checksum a footer (512 bytes) should carry.
pub fn footer_checksum(bytes: &[u8]) -> u32 {
    vhd_checksum(bytes, FOOTER_CHECKSUM_AT)
}

/// The checksum a dynamic header (1024 bytes) should carry.
pub fn dyn_checksum(bytes: &[u8]) -> u32 {
    vhd_checksum(bytes, DYN_CHECKSUM_AT)
}

/// Test builders: well-formed footers and headers with fixed checksums.
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    /// Writes `v` big-endian at `at`.
    pub fn put(buf: &mut [u8], at: usize, v: &[u8]) {
        buf[at..at + v.len()].copy_from_slice(v);
    }

    /// A qemu-like footer: creator `qemu`, the given type, size and data offset.
    pub fn footer(disk_type: u32, size: u64, data_offset: u64) -> Vec<u8> {
        let mut f = vec![0u8; 512];
        put(&mut f, 0, FOOTER_COOKIE);
        put(&mut f, 8, &2u32.to_be_bytes());
        put(&mut f, 12, &VERSION_1_0.to_be_bytes());
        put(&mut f, 16, &data_offset.to_be_bytes());
        put(&mut f, 28, b"qem2");
        put(&mut f, 32, &0x0005_0003u32.to_be_bytes());
        put(&mut f, 36, b"Wi2k");
        put(&mut f, 40, &size.to_be_bytes());
        put(&mut f, 48, &size.to_be_bytes());
        put(&mut f, 56, &[0xff, 0xff, 16, 255]);
        put(&mut f, 60, &disk_type.to_be_bytes());
        fix_footer(&mut f);
        f
    }

    /// Recomputes the footer checksum.
    pub fn fix_footer(f: &mut [u8]) {
        let c = footer_checksum(f);
        put(f, 64, &c.to_be_bytes());
    }

    /// A dynamic header with the given BAT offset, entries and block size.
    pub fn dyn_header(table_offset: u64, entries: u32, block_size: u32) -> Vec<u8> {
        let mut h = vec![0u8; 1024];
        put(&mut h, 0, DYN_COOKIE);
        put(&mut h, 8, &u64::MAX.to_be_bytes());
        put(&mut h, 16, &table_offset.to_be_bytes());
        put(&mut h, 24, &VERSION_1_0.to_be_bytes());
        put(&mut h, 28, &entries.to_be_bytes());
        put(&mut h, 32, &block_size.to_be_bytes());
        fix_dyn(&mut h);
        h
    }

    /// Recomputes the dynamic header checksum.
    pub fn fix_dyn(h: &mut [u8]) {
        let c = dyn_checksum(h);
        put(h, 36, &c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trip_and_checksum() {
        let f = build::footer(DISK_DYNAMIC, 1 << 20, 512);
        let p = Footer::parse(&f).unwrap();
        assert!(p.has_cookie());
        assert_eq!(p.current_size, 1 << 20);
        assert_eq!(p.data_offset, 512);
        assert_eq!(p.disk_type, DISK_DYNAMIC);
        assert_eq!(p.checksum, footer_checksum(&f));
        assert_eq!(p.creator(), "qem2");
        assert!(p.chs_is_max());
        assert!(Footer::parse(&f[..100]).is_none());
    }

    #[test]
    fn qemu_footer_checksum_matches() {
        // The first 84 bytes of a footer written by qemu-img 10.0.2 (5 MiB raw,
        // subformat=dynamic); the rest is zero. Its stored checksum ffffebc8
        // must be what we compute.
        let head: [u8; 84] = [
            0x63, 0x6f, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x78, 0, 0, 0, 2, // cookie, features
            0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, // version, data offset
            0x32, 0x99, 0x79, 0x6b, 0x71, 0x65, 0x6d, 0x75, 0, 5, 0,
            3, // time, "qemu", creator version
            0x57, 0x69, 0x32, 0x6b, 0, 0, 0, 0, 0, 0x50, 0x38, 0, // "Wi2k", original size
            0, 0, 0, 0, 0, 0x50, 0x38, 0, 0, 0x97, 4, 0x11, // current size, CHS 151/4/17
            0, 0, 0, 3, 0xff, 0xff, 0xeb, 0xc8, 0xb0, 0x7b, 0x8a,
            0xe5, // type 3, checksum, uuid
            0xea, 0x64, 0x4e, 0xbd, 0x9c, 0xb5, 0xfa, 0xe8, 0x6f, 0x33, 0xb7, 0xcb, // uuid
        ];
        let mut f = vec![0u8; 512];
        f[..84].copy_from_slice(&head);
        let p = Footer::parse(&f).unwrap();
        assert_eq!(p.checksum, 0xffff_ebc8);
        assert_eq!(footer_checksum(&f), 0xffff_ebc8);
        assert_eq!(p.chs_size(), 5257216);
        assert_eq!(p.current_size, 5257216);
        assert_eq!(p.creator(), "qemu");
        assert!(!p.chs_is_max());
    }

    #[test]
    fn dyn_header_parse() {
        let mut h = build::dyn_header(1536, 3, 2 << 20);
        let name: Vec<u8> = "p.vhd".encode_utf16().flat_map(u16::to_be_bytes).collect();
        h[64..64 + name.len()].copy_from_slice(&name);
        build::fix_dyn(&mut h);
        let p = DynHeader::parse(&h).unwrap();
        assert_eq!(p.cookie, *DYN_COOKIE);
        assert_eq!(p.table_offset, 1536);
        assert_eq!(p.max_table_entries, 3);
        assert_eq!(p.block_size, 2 << 20);
        assert_eq!(p.checksum, dyn_checksum(&h));
        assert_eq!(p.parent_name, "p.vhd");
        assert!(DynHeader::parse(&h[..500]).is_none());
    }

    #[test]
    fn printable_codes() {
        assert_eq!(printable(b"win "), "win");
        assert_eq!(printable(b"d2v\0"), "d2v");
        assert_eq!(printable(b"a\x01b "), "a?b");
    }
}
