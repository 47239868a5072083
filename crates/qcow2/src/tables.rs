//! L1/L2 entries, refcount entries, snapshot and bitmap directories, and a
//! batched cluster reader.

use crate::header::Geometry;
use preflight_disk::Source;

use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32, be_u64, u8 as be_u8};
use nom::{IResult, Parser};

/// L1 entry: bits 9-55 are the L2 table offset (qemu L1E_OFFSET_MASK).
pub(crate) const L1E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// L1 entry bits that must be zero (qemu L1E_RESERVED_MASK).
pub(crate) const L1E_RESERVED_MASK: u64 = 0x7f00_0000_0000_01ff;
/// Standard L2 entry: bits 9-55 are the host cluster offset.
pub(crate) const L2E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Standard L2 entry bits that must be zero (qemu L2E_STD_RESERVED_MASK).
pub(crate) const L2E_STD_RESERVED_MASK: u64 = 0x3f00_0000_0000_01fe;
/// Refcount is exactly 1 (L1 and L2 entries).
pub(crate) const OFLAG_COPIED: u64 = 1 << 63;
/// L2 entry describes a compressed cluster.
pub(crate) const OFLAG_COMPRESSED: u64 = 1 << 62;
/// L2 entry reads as zeros (v3, without extended L2).
pub(crate) const OFLAG_ZERO: u64 = 1;
/// Refcount table entry: bits 9-63 are the refcount block offset.
pub(crate) const REFT_OFFSET_MASK: u64 = 0xffff_ffff_ffff_fe00;
/// Refcount table entry bits that must be zero.
pub(crate) const REFT_RESERVED_MASK: u64 = 0x1ff;
/// Subclusters per cluster with extended L2 entries.
pub(crate) const SUBCLUSTERS: u64 = 32;
/// Low half of an extended L2 bitmap: "subcluster allocated" bits.
const BITMAP_ALLOC_MASK: u64 = 0xffff_ffff;
/// Compressed data is addressed in 512-byte sectors.
const COMPRESSED_SECTOR: u64 = 512;
/// Coalesced metadata reads are at most this big (or one cluster): big
/// enough to make a scan of L2 tables or refcount blocks fast, small enough
/// that the buffer does not matter.
const BATCH_BYTES: u64 = 4 << 20;
/// qemu's QCOW_MAX_SNAPSHOT_EXTRA_DATA.
pub(crate) const MAX_SNAPSHOT_EXTRA_DATA: u32 = 1024;
/// qemu's QCOW_MAX_SNAPSHOTS_SIZE: the whole snapshot table is at most 64 MiB.
pub(crate) const MAX_SNAPSHOTS_BYTES: u64 = 64 << 20;
/// A v3 snapshot's extra data must hold vm_state_size_large and disk_size.
const V3_SNAPSHOT_EXTRA_MIN: u32 = 16;
/// qemu's BME_MAX_TABLE_SIZE: entries of one bitmap table.
pub(crate) const MAX_BITMAP_TABLE_ENTRIES: u32 = 0x0800_0000;
/// qemu's BME_MAX_NAME_SIZE.
const MAX_BITMAP_NAME: u16 = 1023;
/// qemu's BME_MIN/MAX_GRANULARITY_BITS.
const BITMAP_GRANULARITY_BITS: std::ops::RangeInclusive<u8> = 9..=31;
/// Bitmap flags bits 0-2 are defined (in_use, auto, extra_data_compatible).
const BITMAP_RESERVED_FLAGS: u32 = !0x7;
/// Bitmap type 1: dirty tracking bitmap, the only one defined.
const BITMAP_TYPE_DIRTY_TRACKING: u8 = 1;
/// Bitmap table entry: bits 9-55 offset of the data cluster.
pub(crate) const BME_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Bitmap table entry bits that must be zero.
pub(crate) const BME_RESERVED_MASK: u64 = 0xff00_0000_0000_01fe;

/// One L2 entry: the descriptor and, with extended L2, the subcluster bitmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct L2Entry {
    pub raw: u64,
    pub bitmap: u64,
}

/// What a guest cluster maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cluster {
    /// Nothing stored; reads from the backing file, or zeros.
    Unallocated,
    /// Reads as zeros, no host cluster.
    ZeroPlain,
    /// Reads as zeros; a host cluster is reserved at this offset.
    ZeroAlloc(u64),
    /// Data at this host offset (alignment not yet checked).
    Normal(u64),
    /// Compressed data: host byte offset and the length the descriptor covers.
    Compressed { offset: u64, size: u64 },
}

/// What a subcluster of an extended L2 entry maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sub {
    Data(u64),
    Zero,
    Unallocated,
}

/// Big-endian u64 at `index` of a table of u64s; 0 if out of range.
pub(crate) fn be_u64_at(table: &[u8], index: u64) -> u64 {
    let Ok(i) = usize::try_from(index) else {
        return 0;
    };
    let Some(start) = i.checked_mul(8) else {
        return 0;
    };
    table
        .get(start..start.saturating_add(8))
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The L2 entry at `index` of an L2 table.
pub(crate) fn l2_entry(geo: &Geometry, table: &[u8], index: u64) -> L2Entry {
    if geo.extended_l2 {
        let i = index.saturating_mul(2);
        L2Entry {
            raw: be_u64_at(table, i),
            bitmap: be_u64_at(table, i.saturating_add(1)),
        }
    } else {
        L2Entry {
            raw: be_u64_at(table, index),
            bitmap: 0,
        }
    }
}

/// Classifies an L2 entry as qemu's `qcow2_get_cluster_type` does.
pub(crate) fn classify(geo: &Geometry, e: L2Entry) -> Cluster {
    if e.raw & OFLAG_COMPRESSED != 0 {
        let offset = e.raw & (1u64 << geo.csize_shift).saturating_sub(1);
        // The field holds sectors less one; it is at most 2^21 / 512 wide.
        let sectors = ((e.raw >> geo.csize_shift) & geo.csize_mask).saturating_add(1);
        let size = sectors
            .saturating_mul(COMPRESSED_SECTOR)
            .saturating_sub(offset & (COMPRESSED_SECTOR - 1));
        return Cluster::Compressed { offset, size };
    }
    let host = e.raw & L2E_OFFSET_MASK;
    if e.raw & OFLAG_ZERO != 0 && !geo.extended_l2 {
        return if host != 0 {
            Cluster::ZeroAlloc(host)
        } else {
            Cluster::ZeroPlain
        };
    }
    if host == 0 {
        Cluster::Unallocated
    } else {
        Cluster::Normal(host)
    }
}

/// Why an extended L2 bitmap is invalid, if it is.
pub(crate) fn bitmap_problem(cluster: Cluster, bitmap: u64) -> Option<&'static str> {
    match cluster {
        Cluster::Normal(_) if (bitmap >> 32) & bitmap & BITMAP_ALLOC_MASK != 0 => {
            Some("a subcluster is marked both allocated and zero")
        }
        Cluster::Unallocated if bitmap & BITMAP_ALLOC_MASK != 0 => {
            Some("an unallocated cluster has subclusters marked allocated")
        }
        Cluster::Compressed { .. } if bitmap != 0 => {
            Some("a compressed cluster has a non-zero subcluster bitmap")
        }
        _ => None,
    }
}

/// The mapping of subcluster `sc` of an extended L2 entry (qemu's
/// `qcow2_get_subcluster_type`). Errors on an invalid bitmap.
pub(crate) fn subcluster(
    geo: &Geometry,
    cluster: Cluster,
    bitmap: u64,
    sc: u64,
) -> Result<Sub, &'static str> {
    if let Some(why) = bitmap_problem(cluster, bitmap) {
        return Err(why);
    }
    let alloc = (bitmap >> sc) & 1 != 0;
    let zero = (bitmap >> sc.saturating_add(32)) & 1 != 0;
    let sc_size = geo.cluster_size / SUBCLUSTERS;
    Ok(match cluster {
        Cluster::Normal(_) if zero => Sub::Zero,
        Cluster::Normal(host) if alloc => {
            Sub::Data(host.saturating_add(sc.saturating_mul(sc_size)))
        }
        Cluster::Unallocated if zero => Sub::Zero,
        Cluster::ZeroPlain | Cluster::ZeroAlloc(_) => Sub::Zero,
        _ => Sub::Unallocated,
    })
}

/// Refcount number `index` of a refcount block with 2^order-bit entries.
/// Sub-byte widths are packed least significant bits first, as qemu does.
pub(crate) fn refcount_at(block: &[u8], order: u32, index: u64) -> u64 {
    let Ok(i) = usize::try_from(index) else {
        return 0;
    };
    let byte = |n: usize| block.get(n).copied().map_or(0, u64::from);
    let be = |n: usize, w: usize| -> u64 {
        let Some(start) = n.checked_mul(w) else {
            return 0;
        };
        block.get(start..start.saturating_add(w)).map_or(0, |b| {
            b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
        })
    };
    match order {
        0 => (byte(i / 8) >> (i % 8)) & 1,
        // Shifts by whole entry widths: 2 bits × (i % 4), 4 bits × (i % 2).
        1 => (byte(i / 4) >> ((i % 4) << 1)) & 3,
        2 => (byte(i / 2) >> ((i % 2) << 2)) & 0xf,
        3 => byte(i),
        4 => be(i, 2),
        5 => be(i, 4),
        _ => be(i, 8),
    }
}

/// Reads the clusters at `offsets` (sorted, distinct, cluster aligned and
/// each wholly inside the file), coalescing neighbours into big reads, and
/// calls `f(offset, cluster_bytes)` for each. An I/O error names the offset.
pub(crate) fn for_each_cluster(
    src: &dyn Source,
    offsets: &[u64],
    cluster_size: u64,
    mut f: impl FnMut(u64, &[u8]),
) -> Result<(), (u64, std::io::Error)> {
    let max_run = BATCH_BYTES.checked_div(cluster_size).unwrap_or(0).max(1);
    let mut buf = Vec::new();
    let mut i = 0;
    while let Some(&start) = offsets.get(i) {
        let mut n: u64 = 1;
        while n < max_run {
            match offsets.get(i.saturating_add(usize::try_from(n).unwrap_or(usize::MAX))) {
                Some(&next) if Some(next) == start.checked_add(n.saturating_mul(cluster_size)) => {
                    n = n.saturating_add(1)
                }
                _ => break,
            }
        }
        let len = usize::try_from(n.saturating_mul(cluster_size)).map_err(|_| {
            (
                start,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "read too large"),
            )
        })?;
        buf.resize(len, 0);
        src.read_exact_at(start, &mut buf).map_err(|e| (start, e))?;
        let cs = usize::try_from(cluster_size).unwrap_or(usize::MAX);
        let mut at = start;
        for chunk in buf.chunks(cs) {
            f(at, chunk);
            at = at.saturating_add(cluster_size);
        }
        i = i.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
    }
    Ok(())
}

/// One internal snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub l1_table_offset: u64,
    pub l1_size: u32,
    pub id: String,
    pub name: String,
}

/// Extra data, id and name of a snapshot entry.
type ThreeParts<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// Fixed part of a snapshot table entry (40 bytes).
type SnapshotFixed = (u64, u32, u16, u16, u32, u32, u64, u32, u32);

fn snapshot_fixed(i: &[u8]) -> IResult<&[u8], SnapshotFixed> {
    (
        be_u64, be_u32, be_u16, be_u16, be_u32, be_u32, be_u64, be_u32, be_u32,
    )
        .parse(i)
}

/// The snapshot table as far as it could be read.
#[derive(Debug, Default)]
pub(crate) struct SnapshotTable {
    pub snapshots: Vec<Snapshot>,
    /// Bytes of table consumed by the entries read.
    pub size: u64,
    /// What is wrong with it, if anything: the entries after the problem are
    /// not read.
    pub problem: Option<String>,
    /// v3 entries whose extra data is too short (still usable).
    pub short_extra: Vec<String>,
}

/// Parses `nb` snapshot entries from `buf`, the start of the table
/// (`limited` says the buffer was cut at qemu's 64 MiB table limit rather
/// than at the end of the file).
pub(crate) fn parse_snapshots(buf: &[u8], nb: u32, version: u32, limited: bool) -> SnapshotTable {
    let mut t = SnapshotTable::default();
    let mut pos: usize = 0;
    for n in 0..nb {
        let entry = buf.get(pos..).unwrap_or_default();
        let parsed = snapshot_fixed(entry).ok().and_then(|(rest, fixed)| {
            let (l1_off, l1_size, id_len, name_len, _, _, _, _, extra) = fixed;
            if extra > MAX_SNAPSHOT_EXTRA_DATA {
                return Some(Err(format!(
                    "snapshot table entry {n} has {extra} bytes of extra data; at most \
                    {MAX_SNAPSHOT_EXTRA_DATA} are allowed"
                )));
            }
            let r: IResult<&[u8], ThreeParts<'_>> = (
                take(usize::try_from(extra).unwrap_or(usize::MAX)),
                take(usize::from(id_len)),
                take(usize::from(name_len)),
            )
                .parse(rest);
            let (_, (_, id, name)) = r.ok()?;
            let used = 40usize
                .checked_add(usize::try_from(extra).ok()?)?
                .checked_add(usize::from(id_len))?
                .checked_add(usize::from(name_len))?;
            Some(Ok((
                Snapshot {
                    l1_table_offset: l1_off,
                    l1_size,
                    id: String::from_utf8_lossy(id).into_owned(),
                    name: String::from_utf8_lossy(name).into_owned(),
                },
                extra,
                used,
            )))
        });
        match parsed {
            Some(Ok((snap, extra, used))) => {
                if version >= 3 && extra < V3_SNAPSHOT_EXTRA_MIN {
                    t.short_extra.push(format!(
                        "snapshot table entry {n} (id {}) has {extra} bytes of extra data; a \
                        version 3 image needs at least {V3_SNAPSHOT_EXTRA_MIN}",
                        snap.id
                    ));
                }
                t.snapshots.push(snap);
                pos = pos.saturating_add(used.div_ceil(8).saturating_mul(8));
                t.size = u64::try_from(pos).unwrap_or(u64::MAX);
            }
            Some(Err(msg)) => {
                t.problem = Some(msg);
                return t;
            }
            None => {
                t.problem = Some(if limited {
                    format!("snapshot table entry {n} passes qemu's 64 MiB snapshot table limit")
                } else {
                    format!("snapshot table entry {n} is incomplete: it passes the end of the file")
                });
                return t;
            }
        }
    }
    t
}

/// One persistent bitmap's directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BitmapEntry {
    pub table_offset: u64,
    pub table_size: u32,
    pub name: String,
}

type BitmapFixed = (u64, u32, u32, u8, u8, u16, u32);

fn bitmap_fixed(i: &[u8]) -> IResult<&[u8], BitmapFixed> {
    (be_u64, be_u32, be_u32, be_u8, be_u8, be_u16, be_u32).parse(i)
}

/// Parses the bitmap directory; stops at the first invalid entry.
pub(crate) fn parse_bitmap_directory(
    buf: &[u8],
    nb: u32,
    cluster_size: u64,
) -> (Vec<BitmapEntry>, Option<String>) {
    let mut out = Vec::new();
    let mut pos: usize = 0;
    for n in 0..nb {
        let entry = buf.get(pos..).unwrap_or_default();
        let Ok((rest, (table_offset, table_size, flags, kind, gran, name_size, extra))) =
            bitmap_fixed(entry)
        else {
            return (
                out,
                Some(format!("bitmap directory entry {n} is incomplete")),
            );
        };
        let r: IResult<&[u8], (&[u8], &[u8])> = (
            take(usize::try_from(extra).unwrap_or(usize::MAX)),
            take(usize::from(name_size)),
        )
            .parse(rest);
        let Ok((_, (_, name))) = r else {
            return (
                out,
                Some(format!("bitmap directory entry {n} is incomplete")),
            );
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let problem = if table_offset & cluster_size.saturating_sub(1) != 0 {
            Some(format!(
                "bitmap table offset {table_offset:#x} is not cluster aligned"
            ))
        } else if table_size > MAX_BITMAP_TABLE_ENTRIES {
            Some(format!(
                "bitmap table has {table_size} entries; at most {MAX_BITMAP_TABLE_ENTRIES}"
            ))
        } else if flags & BITMAP_RESERVED_FLAGS != 0 {
            Some(format!("flags {flags:#x} set reserved bits"))
        } else if kind != BITMAP_TYPE_DIRTY_TRACKING {
            Some(format!(
                "type is {kind}; only 1 (dirty tracking) is defined"
            ))
        } else if !BITMAP_GRANULARITY_BITS.contains(&gran) {
            Some(format!("granularity_bits is {gran}; must be 9 to 31"))
        } else if name_size > MAX_BITMAP_NAME {
            Some(format!(
                "name is {name_size} bytes; at most {MAX_BITMAP_NAME}"
            ))
        } else {
            None
        };
        if let Some(p) = problem {
            return (
                out,
                Some(format!("bitmap directory entry {n} (\"{name}\"): {p}")),
            );
        }
        out.push(BitmapEntry {
            table_offset,
            table_size,
            name,
        });
        let used = 24usize
            .saturating_add(usize::try_from(extra).unwrap_or(usize::MAX))
            .saturating_add(usize::from(name_size));
        pos = pos.saturating_add(used.div_ceil(8).saturating_mul(8));
    }
    (out, None)
}
