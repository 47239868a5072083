//! The 512-byte sparse extent header (`KDMV`, little-endian), its limits,
//! and the streamOptimized footer and markers.

use crate::error::OpenError;
use nom::bytes::complete::{tag, take};
use nom::number::complete::{le_u16, le_u32, le_u64, u8 as le_u8};
use nom::Parser;

/// Bytes in a sector: every VMDK offset and size is counted in them.
pub(crate) const SECTOR: u64 = 512;
/// Size of the sparse header.
pub(crate) const HEADER_LEN: usize = 512;
/// Magic of a hosted sparse extent.
pub(crate) const MAGIC_KDMV: &[u8; 4] = b"KDMV";
/// Magic of an ESX vmfsSparse (COWD) extent.
pub(crate) const MAGIC_COWD: &[u8; 4] = b"COWD";
/// `gd_offset` value saying the grain directory is found through the
/// footer at the end of the file (streamOptimized).
pub(crate) const GD_AT_END: u64 = u64::MAX;

/// Flag: the newline check bytes are valid.
pub(crate) const FLAG_NL_DETECT: u32 = 0x1;
/// Flag: a redundant grain directory is kept.
pub(crate) const FLAG_RGD: u32 = 0x2;
/// Flag: grain table entry 1 means "zeroed grain".
pub(crate) const FLAG_ZERO_GRAIN: u32 = 0x4;
/// Flag: grains are compressed.
pub(crate) const FLAG_COMPRESSED: u32 = 0x1_0000;
/// Flag: the extent carries markers (streamOptimized).
pub(crate) const FLAG_MARKERS: u32 = 0x2_0000;
/// Every flag the format defines.
pub(crate) const KNOWN_FLAGS: u32 =
    FLAG_NL_DETECT | FLAG_RGD | FLAG_ZERO_GRAIN | FLAG_COMPRESSED | FLAG_MARKERS;

/// The newline check bytes, `\n \r\n`: a text-mode transfer changes them.
pub(crate) const NEWLINE_CHECK: [u8; 4] = [b'\n', b' ', b'\r', b'\n'];

/// Compression algorithm: none.
pub(crate) const COMPRESSION_NONE: u16 = 0;
/// Compression algorithm: deflate (zlib-wrapped).
pub(crate) const COMPRESSION_DEFLATE: u16 = 1;

/// Largest grain: 0x200000 sectors (1 GiB), qemu's `Invalid granularity`.
pub(crate) const MAX_GRAIN_SECTORS: u64 = 0x20_0000;
/// Smallest grain: the format wants a power of two above 8 sectors.
pub(crate) const MIN_GRAIN_SECTORS: u64 = 16;
/// Most entries per grain table: 512, qemu's `L2 table size too big`.
pub(crate) const MAX_GTES_PER_GT: u32 = 512;
/// Largest grain directory: 32M entries, qemu's `L1 size too big`.
pub(crate) const MAX_L1_ENTRIES: u64 = 32 * 1024 * 1024;
/// Largest virtual disk: 1 PiB (2^41 sectors). VMware stops at 62 TiB; this
/// keeps every offset computation far from overflow and still accepts any
/// real disk.
pub(crate) const MAX_CAPACITY_SECTORS: u64 = 1 << 41;
/// Largest descriptor, embedded or a file: 1 MiB, as qemu reads at most.
pub(crate) const MAX_DESCRIPTOR_BYTES: u64 = 1 << 20;

/// Marker type: end of stream.
pub(crate) const MARKER_EOS: u32 = 0;
/// Marker type: footer.
pub(crate) const MARKER_FOOTER: u32 = 3;
/// Size of a marker's fixed part: `{u64 value, u32 size}`; a metadata
/// marker adds `u32 type`.
pub(crate) const GRAIN_MARKER_LEN: u64 = 12;
/// The footer: footer marker, header copy, end-of-stream marker.
pub(crate) const FOOTER_LEN: u64 = 3 * SECTOR;

/// The sparse extent header, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SparseHeader {
    pub version: u32,
    pub flags: u32,
    pub capacity: u64,
    pub grain_sectors: u64,
    pub desc_offset: u64,
    pub desc_size: u64,
    pub gtes_per_gt: u32,
    pub rgd_offset: u64,
    pub gd_offset: u64,
    pub overhead: u64,
    pub unclean_shutdown: u8,
    pub check_bytes: [u8; 4],
    pub compression: u16,
}

type NomError<'a> = nom::error::Error<&'a [u8]>;

impl SparseHeader {
    /// Parses the fixed fields; `None` if `bytes` is not a `KDMV` header of
    /// at least 79 bytes.
    pub(crate) fn parse(bytes: &[u8]) -> Option<SparseHeader> {
        let mut fields = (
            tag::<_, _, NomError<'_>>(&MAGIC_KDMV[..]),
            le_u32,
            le_u32,
            le_u64,
            le_u64,
            le_u64,
            le_u64,
            le_u32,
            le_u64,
            le_u64,
            le_u64,
            le_u8,
            take(4usize),
            le_u16,
        );
        let (_, parsed) = fields.parse(bytes).ok()?;
        let (
            _,
            version,
            flags,
            capacity,
            grain_sectors,
            desc_offset,
            desc_size,
            gtes_per_gt,
            rgd_offset,
            gd_offset,
            overhead,
            unclean_shutdown,
            check,
            compression,
        ) = parsed;
        let check_bytes: [u8; 4] = check.try_into().ok()?;
        Some(SparseHeader {
            version,
            flags,
            capacity,
            grain_sectors,
            desc_offset,
            desc_size,
            gtes_per_gt,
            rgd_offset,
            gd_offset,
            overhead,
            unclean_shutdown,
            check_bytes,
            compression,
        })
    }

    /// Checks the fields everything else depends on, in dependency order,
    /// and derives the geometry.
    pub(crate) fn geometry(&self, file: &str) -> Result<Geometry, OpenError> {
        if self.version == 0 || self.version > 3 {
            return Err(OpenError::Version {
                file: file.to_string(),
                version: self.version,
            });
        }
        let g = self.grain_sectors;
        if !g.is_power_of_two() || !(MIN_GRAIN_SECTORS..=MAX_GRAIN_SECTORS).contains(&g) {
            return Err(OpenError::GrainSize {
                file: file.to_string(),
                sectors: g,
                max: MAX_GRAIN_SECTORS,
            });
        }
        if self.gtes_per_gt == 0 || self.gtes_per_gt > MAX_GTES_PER_GT {
            return Err(OpenError::GtesPerGt {
                file: file.to_string(),
                gtes: self.gtes_per_gt,
                max: MAX_GTES_PER_GT,
            });
        }
        if self.capacity > MAX_CAPACITY_SECTORS {
            return Err(OpenError::Capacity {
                file: file.to_string(),
                sectors: self.capacity,
                limit: MAX_CAPACITY_SECTORS,
            });
        }
        if self.compression != COMPRESSION_NONE && self.compression != COMPRESSION_DEFLATE {
            return Err(OpenError::Compression {
                file: file.to_string(),
                algorithm: self.compression,
            });
        }
        // All bounded above: grain <= 2^21, gtes <= 2^9, capacity <= 2^41.
        let gtes = u64::from(self.gtes_per_gt);
        let l1_entry_sectors = gtes.saturating_mul(g);
        let l1_entries = self.capacity.div_ceil(l1_entry_sectors.max(1));
        if l1_entries > MAX_L1_ENTRIES {
            return Err(OpenError::L1Size {
                file: file.to_string(),
                entries: l1_entries,
                max: MAX_L1_ENTRIES,
            });
        }
        Ok(Geometry {
            grain_bytes: g.saturating_mul(SECTOR),
            grain_sectors: g,
            gtes,
            l1_entries,
            capacity_bytes: self.capacity.saturating_mul(SECTOR),
            grains: self.capacity.div_ceil(g),
        })
    }

    /// True if grains are deflate-compressed (qemu decides by the algorithm
    /// field, not the flag).
    pub(crate) fn compressed(&self) -> bool {
        self.compression == COMPRESSION_DEFLATE
    }

    /// True if grains carry markers.
    pub(crate) fn markers(&self) -> bool {
        self.flags & FLAG_MARKERS != 0
    }
}

/// Sizes derived from a validated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Grain size in bytes (at most 1 GiB).
    pub grain_bytes: u64,
    /// Grain size in sectors.
    pub grain_sectors: u64,
    /// Entries per grain table (1..=512).
    pub gtes: u64,
    /// Entries in the grain directory (at most 32M).
    pub l1_entries: u64,
    /// Capacity in bytes (at most 1 PiB).
    pub capacity_bytes: u64,
    /// Grains covering the capacity.
    pub grains: u64,
}

impl Geometry {
    /// Bytes in one grain table.
    pub(crate) fn gt_bytes(&self) -> u64 {
        self.gtes.saturating_mul(4)
    }

    /// Bytes in the grain directory.
    pub(crate) fn gd_bytes(&self) -> u64 {
        self.l1_entries.saturating_mul(4)
    }
}

/// A metadata marker `{u64 value, u32 size = 0, u32 type}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Marker {
    pub value: u64,
    pub size: u32,
    pub kind: u32,
}

impl Marker {
    /// Parses the first 16 bytes of a marker sector.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Marker> {
        let (_, (value, size, kind)) = (le_u64::<_, NomError<'_>>, le_u32, le_u32)
            .parse(bytes)
            .ok()?;
        Some(Marker { value, size, kind })
    }

    /// True for an end-of-stream marker (all zero).
    pub(crate) fn is_eos(&self) -> bool {
        self.value == 0 && self.size == 0 && self.kind == MARKER_EOS
    }
}

/// The fixed part of a compressed grain's marker: `{u64 lba, u32 size}`.
pub(crate) fn parse_grain_marker(bytes: &[u8]) -> Option<(u64, u32)> {
    let (_, v) = (le_u64::<_, NomError<'_>>, le_u32).parse(bytes).ok()?;
    Some(v)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a 512-byte header; tests mutate single fields.
    #[derive(Clone)]
    pub(crate) struct HeaderBuilder {
        pub h: SparseHeader,
    }

    impl HeaderBuilder {
        pub(crate) fn new(capacity: u64) -> Self {
            HeaderBuilder {
                h: SparseHeader {
                    version: 1,
                    flags: FLAG_NL_DETECT | FLAG_RGD,
                    capacity,
                    grain_sectors: 128,
                    desc_offset: 1,
                    desc_size: 20,
                    gtes_per_gt: 512,
                    rgd_offset: 21,
                    gd_offset: 26,
                    overhead: 128,
                    unclean_shutdown: 0,
                    check_bytes: NEWLINE_CHECK,
                    compression: 0,
                },
            }
        }

        pub(crate) fn bytes(&self) -> Vec<u8> {
            let h = &self.h;
            let mut b = Vec::with_capacity(HEADER_LEN);
            b.extend_from_slice(MAGIC_KDMV);
            b.extend_from_slice(&h.version.to_le_bytes());
            b.extend_from_slice(&h.flags.to_le_bytes());
            b.extend_from_slice(&h.capacity.to_le_bytes());
            b.extend_from_slice(&h.grain_sectors.to_le_bytes());
            b.extend_from_slice(&h.desc_offset.to_le_bytes());
            b.extend_from_slice(&h.desc_size.to_le_bytes());
            b.extend_from_slice(&h.gtes_per_gt.to_le_bytes());
            b.extend_from_slice(&h.rgd_offset.to_le_bytes());
            b.extend_from_slice(&h.gd_offset.to_le_bytes());
            b.extend_from_slice(&h.overhead.to_le_bytes());
            b.push(h.unclean_shutdown);
            b.extend_from_slice(&h.check_bytes);
            b.extend_from_slice(&h.compression.to_le_bytes());
            b.resize(HEADER_LEN, 0);
            b
        }
    }

    #[test]
    fn round_trips_a_header() {
        let hb = HeaderBuilder::new(10240);
        let bytes = hb.bytes();
        assert_eq!(&bytes[..4], b"KDMV");
        assert_eq!(&bytes[73..77], b"\n \r\n");
        assert_eq!(SparseHeader::parse(&bytes), Some(hb.h.clone()));
        let g = hb.h.geometry("t").unwrap();
        assert_eq!(g.grain_bytes, 65536);
        assert_eq!(g.l1_entries, 1);
        assert_eq!(g.grains, 80);
    }

    #[test]
    fn short_or_wrong_magic_does_not_parse() {
        let bytes = HeaderBuilder::new(1).bytes();
        assert!(SparseHeader::parse(&bytes[..78]).is_none());
        assert!(SparseHeader::parse(&bytes[..79]).is_some());
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(SparseHeader::parse(&bad).is_none());
    }

    fn code(h: &SparseHeader) -> &'static str {
        match h.geometry("t") {
            Ok(_) => "ok",
            Err(e) => e.rule().code,
        }
    }

    #[test]
    fn one_field_mutations_give_their_code() {
        let base = HeaderBuilder::new(10240).h;
        type Mutation = Box<dyn Fn(&mut SparseHeader)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|h| h.version = 4), "VMDK.Version"),
            (Box::new(|h| h.version = 0), "VMDK.Version"),
            (Box::new(|h| h.version = 3), "ok"),
            (Box::new(|h| h.grain_sectors = 100), "VMDK.GrainSize"),
            (Box::new(|h| h.grain_sectors = 8), "VMDK.GrainSize"),
            (Box::new(|h| h.grain_sectors = 0), "VMDK.GrainSize"),
            (Box::new(|h| h.grain_sectors = 0x40_0000), "VMDK.GrainSize"),
            (Box::new(|h| h.grain_sectors = 0x20_0000), "ok"),
            (Box::new(|h| h.gtes_per_gt = 0), "VMDK.GtesPerGt"),
            (Box::new(|h| h.gtes_per_gt = 100_000), "VMDK.GtesPerGt"),
            (Box::new(|h| h.gtes_per_gt = 1), "ok"),
            (Box::new(|h| h.capacity = 1 << 62), "VMDK.Capacity"),
            (Box::new(|h| h.capacity = u64::MAX), "VMDK.Capacity"),
            (Box::new(|h| h.compression = 2), "VMDK.Compression"),
            (
                Box::new(|h| {
                    h.capacity = 1 << 41;
                    h.grain_sectors = 16;
                    h.gtes_per_gt = 1;
                }),
                "VMDK.L1Size",
            ),
        ];
        for (mutate, want) in cases {
            let mut h = base.clone();
            mutate(&mut h);
            assert_eq!(code(&h), want, "{h:?}");
        }
    }

    #[test]
    fn markers_parse() {
        let mut b = [0u8; 16];
        assert!(Marker::parse(&b).unwrap().is_eos());
        b[0] = 1;
        b[12] = 3;
        let m = Marker::parse(&b).unwrap();
        assert_eq!((m.value, m.size, m.kind), (1, 0, MARKER_FOOTER));
        assert_eq!(parse_grain_marker(&b[..12]), Some((1, 0)));
        assert!(Marker::parse(&b[..15]).is_none());
    }
}
