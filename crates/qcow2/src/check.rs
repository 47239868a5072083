//! The integrity check, modelled on qemu's `qcow2_check_refcounts`.
//!
//! References are rebuilt in memory by walking the header cluster, the
//! active and snapshot L1 tables, every distinct L2 table once (weighted by
//! how many L1 entries point at it), the data clusters, the refcount table
//! and blocks, the snapshot table, the bitmaps and the encryption header.
//! They are compared with the refcounts on disk. Memory is two bytes per
//! host cluster (file size / cluster size), never per guest cluster.

mod walk;

use crate::header::{Geometry, CRYPT_AES, CRYPT_LUKS, INCOMPAT_CORRUPT, INCOMPAT_DATA_FILE};
use crate::header::{COMPAT_LAZY_REFCOUNTS, COMPRESSION_ZSTD, INCOMPAT_DIRTY};
use crate::tables::{self, OFLAG_COPIED};
use crate::{rules, Qcow2Image};
use preflight_disk::Source;
use preflight_report::{report, Finding, FindingSink, Rule};

use std::collections::BTreeMap;
use std::sync::Arc;

/// Findings kept per code; the rest are counted in one summary finding.
const MAX_FINDINGS_PER_CODE: usize = 20;
/// Host clusters the check tracks (two bytes each: 512 MiB). Beyond that
/// the refcount comparison is skipped with a CheckLimit warning. 2^28
/// clusters is a 128 GiB file with 512-byte clusters, 16 TiB with 64 KiB.
const MAX_CHECK_CLUSTERS: u64 = 1 << 28;
/// Snapshot L1 tables and bitmap tables are read only up to the file size
/// plus this much in total: in a sound image they are distinct regions of
/// the file, so more means they overlap (and re-reading them is pointless).
const READ_BUDGET_SLACK: u64 = 64 << 20;
/// Snapshots named in the Snapshots info finding.
const SNAPSHOTS_NAMED: usize = 10;

/// What a host cluster holds, kept in the low 4 bits of its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Header = 1,
    L1 = 2,
    L2 = 3,
    RefcountTable = 4,
    RefcountBlock = 5,
    SnapshotTable = 6,
    SnapshotL1 = 7,
    BitmapDirectory = 8,
    BitmapTable = 9,
    BitmapData = 10,
    CryptoHeader = 11,
    Data = 12,
}

impl From<Kind> for u8 {
    #[allow(clippy::as_conversions)] // a #[repr(u8)] fieldless enum's discriminant: lossless
    fn from(kind: Kind) -> u8 {
        kind as u8
    }
}

impl Kind {
    fn from_tag(tag: u8) -> Option<Kind> {
        Some(match tag & KIND_MASK {
            1 => Kind::Header,
            2 => Kind::L1,
            3 => Kind::L2,
            4 => Kind::RefcountTable,
            5 => Kind::RefcountBlock,
            6 => Kind::SnapshotTable,
            7 => Kind::SnapshotL1,
            8 => Kind::BitmapDirectory,
            9 => Kind::BitmapTable,
            10 => Kind::BitmapData,
            11 => Kind::CryptoHeader,
            12 => Kind::Data,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Header => "header cluster",
            Kind::L1 => "active L1 table",
            Kind::L2 => "L2 table",
            Kind::RefcountTable => "refcount table",
            Kind::RefcountBlock => "refcount block",
            Kind::SnapshotTable => "snapshot table",
            Kind::SnapshotL1 => "snapshot L1 table",
            Kind::BitmapDirectory => "bitmap directory",
            Kind::BitmapTable => "bitmap table",
            Kind::BitmapData => "bitmap data cluster",
            Kind::CryptoHeader => "encryption header",
            Kind::Data => "guest data cluster",
        }
    }
}

const KIND_MASK: u8 = 0x0f;
/// An active L1/L2 entry pointing at this cluster has COPIED set.
const COPIED_SET: u8 = 0x10;
/// An active L1/L2 entry pointing at this cluster has COPIED clear.
const COPIED_CLEAR: u8 = 0x20;

/// Rebuilt reference counts and tags, one byte each per host cluster.
/// Counts of 255 or more live in `over`.
struct Counts {
    refs: Vec<u8>,
    over: BTreeMap<u64, u64>,
    tags: Vec<u8>,
}

impl Counts {
    fn new(n: u64) -> Option<Counts> {
        let n = usize::try_from(n).ok()?;
        let mut refs = Vec::new();
        let mut tags = Vec::new();
        refs.try_reserve_exact(n).ok()?;
        tags.try_reserve_exact(n).ok()?;
        refs.resize(n, 0);
        tags.resize(n, 0);
        Some(Counts {
            refs,
            over: BTreeMap::new(),
            tags,
        })
    }

    fn add(&mut self, k: u64, n: u64) {
        let Some(r) = usize::try_from(k).ok().and_then(|i| self.refs.get_mut(i)) else {
            return;
        };
        let total = if *r == u8::MAX {
            self.over.get(&k).copied().unwrap_or(255)
        } else {
            u64::from(*r)
        }
        .saturating_add(n);
        match u8::try_from(total) {
            Ok(v) if v < u8::MAX => *r = v,
            _ => {
                *r = u8::MAX;
                self.over.insert(k, total);
            }
        }
    }

    fn get(&self, k: u64) -> u64 {
        match usize::try_from(k).ok().and_then(|i| self.refs.get(i)) {
            Some(&u8::MAX) => self.over.get(&k).copied().unwrap_or(255),
            Some(&r) => u64::from(r),
            None => 0,
        }
    }

    fn tag(&self, k: u64) -> u8 {
        usize::try_from(k)
            .ok()
            .and_then(|i| self.tags.get(i))
            .copied()
            .unwrap_or(0)
    }

    fn tag_mut(&mut self, k: u64) -> Option<&mut u8> {
        usize::try_from(k).ok().and_then(|i| self.tags.get_mut(i))
    }
}

/// How an L2 table is used by the L1 tables.
struct L2Use {
    /// L1 entries (all tables) pointing at it.
    mult: u64,
    /// Table that last pointed at it, and the entry, to spot an L1 table
    /// using the same L2 table twice.
    last_table: u32,
    last_index: usize,
    /// Pointed at by the active L1.
    active: bool,
}

struct Checker<'a> {
    img: &'a Qcow2Image,
    src: Arc<dyn Source>,
    geo: Geometry,
    sink: FindingSink,
    counts: Option<Counts>,
    budget: u64,
    data_file: bool,
    l2s: BTreeMap<u64, L2Use>,
    last_compressed: Option<(u64, u64)>,
}

/// Runs the whole check.
pub(crate) fn check(img: &Qcow2Image) -> Vec<Finding> {
    let geo = img.parsed.geo;
    let mut ck = Checker {
        img,
        src: Arc::clone(&img.src),
        geo,
        sink: FindingSink::new(MAX_FINDINGS_PER_CODE),
        counts: None,
        budget: geo.file_size.saturating_add(READ_BUDGET_SLACK),
        data_file: img.parsed.header.incompatible_features & INCOMPAT_DATA_FILE != 0,
        l2s: BTreeMap::new(),
        last_compressed: None,
    };
    ck.header_findings();
    let n = geo.host_clusters();
    ck.counts = if n <= MAX_CHECK_CLUSTERS {
        Counts::new(n)
    } else {
        None
    };
    if ck.counts.is_none() {
        ck.sink.push(rules::CHECK_LIMIT.finding(format!(
            "the file has {n} clusters of {} bytes; reference counts are compared for at most \
            {MAX_CHECK_CLUSTERS}",
            geo.cluster_size
        )));
    }
    ck.region(
        Kind::Header,
        || "header cluster".to_string(),
        0,
        geo.cluster_size,
        1,
        &rules::TABLE_OUT_OF_BOUNDS,
    );
    ck.active_l1();
    ck.snapshots();
    ck.l2_tables();
    ck.last_compressed_cluster();
    let blocks = ck.refcount_table();
    ck.bitmaps();
    if let Some((off, len)) = img.parsed.ext.crypto_header {
        ck.region(
            Kind::CryptoHeader,
            || "encryption header".to_string(),
            off,
            len,
            1,
            &rules::TABLE_OUT_OF_BOUNDS,
        );
    }
    if let Some(blocks) = blocks {
        ck.compare(&blocks);
    }
    ck.sink.into_findings()
}

impl Checker<'_> {
    /// Adds a finding whose message is already built (see [`report!`] for the rest).
    fn push(&mut self, rule: &'static Rule, msg: String) {
        if self.sink.room(rule) {
            self.sink.push(rule.finding(msg));
        }
    }

    /// What makes the image unfit for import whatever its metadata.
    fn header_findings(&mut self) {
        let p = &self.img.parsed;
        let h = &p.header;
        // Conservative: ECS documents neither (formats-inspection.md, qcow2 features).
        if h.compression_type == COMPRESSION_ZSTD {
            self.push(
                &rules::ZSTD_COMPRESSION,
                "compression_type is 1 (zstd)".to_string(),
            );
        }
        if p.geo.extended_l2 {
            self.push(
                &rules::EXTENDED_L2,
                "incompatible feature bit 4 (extended L2 entries) is set".to_string(),
            );
        }
        if let Some(b) = &p.backing_file {
            let fmt = p
                .ext
                .backing_format
                .as_deref()
                .map(|f| format!(" (format {f})"))
                .unwrap_or_default();
            report!(
                self.sink,
                &rules::BACKING_FILE,
                "the image has the backing file \"{b}\"{fmt}: it holds only the changes made on \
                top of that file, so the upload would be incomplete"
            );
        }
        match h.crypt_method {
            CRYPT_AES => self.push(
                &rules::ENCRYPTED,
                "crypt_method is 1: the image is encrypted with legacy AES-CBC".to_string(),
            ),
            CRYPT_LUKS => {
                let missing = if p.ext.crypto_header.is_none() {
                    " (and its LUKS header extension is missing)"
                } else {
                    ""
                };
                report!(
                    self.sink,
                    &rules::ENCRYPTED,
                    "crypt_method is 2: the image is encrypted with LUKS{missing}"
                );
            }
            _ => {}
        }
        if self.data_file {
            let name = p
                .ext
                .data_file
                .as_deref()
                .unwrap_or("(not named in the image)");
            report!(
                self.sink,
                &rules::EXTERNAL_DATA_FILE,
                "incompatible feature bit 2 is set: the guest data live in the external data \
                file \"{name}\", which is not part of this file"
            );
        }
        if h.incompatible_features & INCOMPAT_DIRTY != 0 {
            let lazy = if h.compatible_features & COMPAT_LAZY_REFCOUNTS != 0 {
                " with lazy refcounts"
            } else {
                ""
            };
            report!(
                self.sink,
                &rules::DIRTY,
                "incompatible_features {:#x} has bit 0 (dirty) set: the image was not closed \
                cleanly{lazy}",
                h.incompatible_features
            );
        }
        if h.incompatible_features & INCOMPAT_CORRUPT != 0 {
            report!(
                self.sink,
                &rules::CORRUPT,
                "incompatible_features {:#x} has bit 1 (corrupt) set",
                h.incompatible_features
            );
        }
    }

    /// Counts `mult` references to every cluster of `offset..offset+len`
    /// and tags them `kind`, reporting overlaps. False (after a finding
    /// under `eof`) if the region passes the end of the file.
    fn region(
        &mut self,
        kind: Kind,
        what: impl Fn() -> String,
        offset: u64,
        len: u64,
        mult: u64,
        eof: &'static Rule,
    ) -> bool {
        if len == 0 {
            return true;
        }
        let geo = self.geo;
        let last = offset
            .checked_add(len.saturating_sub(1))
            .map(|end| end >> geo.cluster_bits)
            .filter(|&l| l < geo.host_clusters());
        let Some(last) = last else {
            report!(
                self.sink,
                eof,
                "the {} at {offset:#x} ({len} bytes) passes the end of the file ({} bytes)",
                what(),
                geo.file_size
            );
            return false;
        };
        let Some(counts) = self.counts.as_mut() else {
            return true;
        };
        let mut clash = None;
        for k in (offset >> geo.cluster_bits)..=last {
            counts.add(k, mult);
            let Some(tag) = counts.tag_mut(k) else {
                continue;
            };
            match Kind::from_tag(*tag) {
                None => *tag = (*tag & !KIND_MASK) | u8::from(kind),
                Some(Kind::Data) if kind == Kind::Data => {}
                Some(old) => {
                    if clash.is_none() {
                        clash = Some((k, old));
                    }
                }
            }
        }
        if let Some((k, old)) = clash {
            report!(
                self.sink,
                &rules::OVERLAPPING_METADATA,
                "the {} at {offset:#x} overlaps the {} in the cluster at {:#x}",
                what(),
                old.name(),
                k << geo.cluster_bits
            );
        }
        true
    }

    /// Records the COPIED flag of an active entry pointing at `offset`.
    fn copied(&mut self, offset: u64, entry: u64) {
        let bit = if entry & OFLAG_COPIED != 0 {
            COPIED_SET
        } else {
            COPIED_CLEAR
        };
        let k = offset >> self.geo.cluster_bits;
        if let Some(tag) = self.counts.as_mut().and_then(|c| c.tag_mut(k)) {
            *tag |= bit;
        }
    }

    /// Compares the rebuilt references with the refcounts on disk.
    fn compare(&mut self, blocks: &[(u64, u64)]) {
        let Some(counts) = self.counts.take() else {
            return;
        };
        let geo = self.geo;
        let order = geo.refcount_order;
        // Refcount entries are 2^order bits (order <= 6, checked at open), so a block holds
        // at least cluster_size / 8 >= 64 of them.
        let per_block = (geo.cluster_size.saturating_mul(8) >> order).max(1);
        let max = if order >= 6 {
            u64::MAX
        } else {
            (1u64 << (1u32 << order)).saturating_sub(1)
        };
        let n = geo.host_clusters();
        let mut cmp = Compare {
            counts: &counts,
            sink: &mut self.sink,
            cluster_bits: geo.cluster_bits,
            max,
            leaks: 0,
        };
        // Blocks by offset for batched reads; a table index covers clusters
        // index*per_block .. +per_block.
        let mut by_offset: Vec<(u64, u64)> = blocks
            .iter()
            .map(|&(i, o)| (o, i))
            .filter(|&(_, i)| i.checked_mul(per_block).is_some_and(|s| s < n))
            .collect();
        by_offset.sort_unstable();
        let mut offsets: Vec<u64> = by_offset.iter().map(|&(o, _)| o).collect();
        offsets.dedup();
        let mut covered = vec![false; usize::try_from(n.div_ceil(per_block)).unwrap_or(0)];
        let src = Arc::clone(&self.src);
        let res =
            tables::for_each_cluster(src.as_ref(), &offsets, geo.cluster_size, |off, block| {
                let start = by_offset.partition_point(|&(o, _)| o < off);
                for &(o, idx) in by_offset.get(start..).unwrap_or_default() {
                    if o != off {
                        break;
                    }
                    if let Some(c) = usize::try_from(idx).ok().and_then(|i| covered.get_mut(i)) {
                        if *c {
                            continue;
                        }
                        *c = true;
                    }
                    let first = idx.saturating_mul(per_block);
                    let last = first.saturating_add(per_block).min(n);
                    cmp.range(first, last, |k| {
                        tables::refcount_at(block, order, k.saturating_sub(first))
                    });
                }
            });
        if let Err((off, e)) = res {
            self.push(
                &rules::IO,
                format!("reading the refcount block at {off:#x}: {e}"),
            );
            return;
        }
        for (idx, &c) in covered.iter().enumerate() {
            if !c {
                let first = u64::try_from(idx)
                    .unwrap_or(u64::MAX)
                    .saturating_mul(per_block);
                cmp.range(first, first.saturating_add(per_block).min(n), |_| 0);
            }
        }
        let leaks = cmp.leaks;
        if leaks > 0 {
            report!(
                self.sink,
                &rules::LEAKED_CLUSTERS,
                "{leaks} clusters are leaked: their refcount is higher than the references \
                to them ({} bytes wasted)",
                leaks.saturating_mul(geo.cluster_size)
            );
        }
    }
}

/// State of the refcount comparison.
struct Compare<'a> {
    counts: &'a Counts,
    sink: &'a mut FindingSink,
    cluster_bits: u32,
    max: u64,
    leaks: u64,
}

impl Compare<'_> {
    fn range(&mut self, first: u64, last: u64, refcount: impl Fn(u64) -> u64) {
        for k in first..last {
            let r = refcount(k);
            let f = self.counts.get(k);
            let tag = self.counts.tag(k);
            let kind = Kind::from_tag(tag).map_or("cluster", Kind::name);
            let at = k << self.cluster_bits;
            if f > self.max {
                report!(
                    self.sink,
                    &rules::REFCOUNT_OVERFLOW,
                    "the {kind} at {at:#x} has {f} references; refcounts hold at most {}",
                    self.max
                );
            } else if r < f {
                report!(
                    self.sink,
                    &rules::REFCOUNT_MISMATCH,
                    "the {kind} at {at:#x} (cluster {k}) has refcount {r} but {f} references"
                );
            } else if r > f {
                self.leaks = self.leaks.saturating_add(1);
            }
            let set = tag & COPIED_SET != 0;
            let clear = tag & COPIED_CLEAR != 0;
            if (set && r != 1) || (clear && r == 1) {
                let flag = if set { "set" } else { "clear" };
                report!(self.sink, &rules::COPIED_FLAG,
                    "the {kind} at {at:#x} has refcount {r} but an active entry pointing at it has \
                    the COPIED flag {flag}"
                );
            }
        }
    }
}
