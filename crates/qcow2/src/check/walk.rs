//! The walks that rebuild the references: L1 tables (active and
//! snapshots), L2 tables and their data clusters, the refcount table, the
//! snapshot table and the persistent bitmaps.

use super::{Checker, Kind, L2Use, SNAPSHOTS_NAMED};
use crate::header;
use crate::rules;
use crate::tables::{self, Cluster, L1E_OFFSET_MASK, L1E_RESERVED_MASK, L2E_STD_RESERVED_MASK};
use crate::tables::{BME_OFFSET_MASK, BME_RESERVED_MASK, OFLAG_COPIED, REFT_OFFSET_MASK};
use crate::tables::{MAX_SNAPSHOTS_BYTES, REFT_RESERVED_MASK};
use preflight_disk::{read_vec, BoundsError};
use preflight_report::report;

use std::sync::Arc;

impl Checker<'_> {
    pub(super) fn active_l1(&mut self) {
        let img = self.img;
        let h = &img.parsed.header;
        let (off, size) = (h.l1_table_offset, u64::from(h.l1_size));
        match &img.l1 {
            None => self.push(&rules::TABLE_OUT_OF_BOUNDS, img.l1_past_end().to_string()),
            Some(l1) => {
                if self.region(
                    Kind::L1,
                    || "active L1 table".to_string(),
                    off,
                    size.saturating_mul(8),
                    1,
                    &rules::TABLE_OUT_OF_BOUNDS,
                ) {
                    for (i, &e) in l1.iter().enumerate() {
                        self.l1_entry(0, "active L1", i, e, true);
                    }
                }
            }
        }
    }

    /// One L1 entry of table `table` (0 = active).
    pub(super) fn l1_entry(&mut self, table: u32, what: &str, i: usize, e: u64, active: bool) {
        if e & L1E_RESERVED_MASK != 0 {
            report!(
                self.sink,
                &rules::L1_ENTRY,
                "{what} entry {i} is {e:#x}: reserved bits {:#x} are set",
                e & L1E_RESERVED_MASK
            );
        }
        let off = e & L1E_OFFSET_MASK;
        if off == 0 {
            return;
        }
        let geo = self.geo;
        if geo.offset_in_cluster(off) != 0 {
            report!(
                self.sink,
                &rules::L1_ENTRY,
                "{what} entry {i} points at L2 table offset {off:#x}, which is not cluster aligned"
            );
            return;
        }
        if off
            .checked_add(geo.cluster_size)
            .is_none_or(|end| end > geo.file_size)
        {
            report!(
                self.sink,
                &rules::TABLE_OUT_OF_BOUNDS,
                "{what} entry {i} points at an L2 table at {off:#x}, past the end of the \
                file ({} bytes)",
                geo.file_size
            );
            return;
        }
        let u = self.l2s.entry(off).or_insert(L2Use {
            mult: 0,
            last_table: u32::MAX,
            last_index: 0,
            active: false,
        });
        let dup = (u.last_table == table).then_some(u.last_index);
        u.mult = u.mult.saturating_add(1);
        u.last_table = table;
        u.last_index = i;
        u.active |= active;
        if let Some(j) = dup {
            report!(
                self.sink,
                &rules::L1_ENTRY,
                "{what} entries {j} and {i} both point at the L2 table at {off:#x}"
            );
        }
        if active {
            self.copied(off, e);
        }
    }

    pub(super) fn snapshots(&mut self) {
        let h = &self.img.parsed.header;
        let (nb, off, version) = (h.nb_snapshots, h.snapshots_offset, h.version);
        if nb == 0 {
            return;
        }
        let geo = self.geo;
        if self.data_file {
            report!(
                self.sink,
                &rules::SNAPSHOT_TABLE,
                "the image has {nb} internal snapshots and an external data \
                file; snapshots are not allowed with a data file"
            );
        }
        if off >= geo.file_size {
            report!(
                self.sink,
                &rules::TABLE_OUT_OF_BOUNDS,
                "the snapshot table ({nb} snapshots) at {off:#x} is past the end of the \
                file ({} bytes)",
                geo.file_size
            );
            return;
        }
        let room = geo.file_size.saturating_sub(off);
        let len = room.min(MAX_SNAPSHOTS_BYTES);
        let buf = match read_vec(
            self.src.as_ref(),
            "snapshot table",
            off,
            len,
            MAX_SNAPSHOTS_BYTES,
        ) {
            Ok(b) => b,
            Err(e) => return self.push(&rules::IO, preflight_disk::error_chain(&e)),
        };
        let table = tables::parse_snapshots(&buf, nb, version, room > MAX_SNAPSHOTS_BYTES);
        drop(buf);
        if let Some(p) = &table.problem {
            self.push(&rules::SNAPSHOT_TABLE, p.clone());
        }
        for s in &table.short_extra {
            self.push(&rules::SNAPSHOT_TABLE, s.clone());
        }
        self.region(
            Kind::SnapshotTable,
            || "snapshot table".to_string(),
            off,
            table.size,
            1,
            &rules::TABLE_OUT_OF_BOUNDS,
        );
        let named: Vec<String> = table
            .snapshots
            .iter()
            .take(SNAPSHOTS_NAMED)
            .map(|s| format!("{} \"{}\"", s.id, s.name))
            .collect();
        let more = if table.snapshots.len() > SNAPSHOTS_NAMED {
            ", …"
        } else {
            ""
        };
        report!(
            self.sink,
            &rules::SNAPSHOTS,
            "the image holds {nb} internal snapshots ({}{more}); only the current state is \
            imported",
            named.join(", ")
        );

        for (n, s) in table.snapshots.iter().enumerate() {
            let what = format!("snapshot {} L1", s.id);
            if geo.offset_in_cluster(s.l1_table_offset) != 0 {
                report!(
                    self.sink,
                    &rules::SNAPSHOT_TABLE,
                    "snapshot {} (entry {n}): L1 table offset {:#x} is not cluster aligned",
                    s.id,
                    s.l1_table_offset
                );
                continue;
            }
            let max = header::MAX_L1_BYTES / 8;
            if u64::from(s.l1_size) > max {
                report!(
                    self.sink,
                    &rules::SNAPSHOT_TABLE,
                    "snapshot {} (entry {n}): L1 table has {} entries; at most {max}",
                    s.id,
                    s.l1_size
                );
                continue;
            }
            let bytes = u64::from(s.l1_size).saturating_mul(8);
            if !self.region(
                Kind::SnapshotL1,
                || format!("{what} table"),
                s.l1_table_offset,
                bytes,
                1,
                &rules::TABLE_OUT_OF_BOUNDS,
            ) {
                continue;
            }
            if !self.spend(bytes, "snapshot L1 tables") {
                return;
            }
            let Some(l1) = self.read_table(
                &format!("{what} table"),
                s.l1_table_offset,
                bytes,
                header::MAX_L1_BYTES,
            ) else {
                continue;
            };
            let table_id = u32::try_from(n.saturating_add(1)).unwrap_or(u32::MAX);
            for (i, c) in l1.chunks_exact(8).enumerate() {
                self.l1_entry(table_id, &what, i, tables::be_u64_at(c, 0), false);
            }
        }
    }

    /// Reads a metadata table that [`Checker::region`] has accepted. The
    /// region check works in whole clusters, as qemu's does (the last
    /// cluster of a file may be partly written), so a table that starts in
    /// that last cluster can still end past the end of the file: that is
    /// `TableOutOfBounds`, naming the offset, the length and the file size,
    /// like every other table past the end. `None` after a finding.
    pub(super) fn read_table(
        &mut self,
        what: &str,
        offset: u64,
        len: u64,
        limit: u64,
    ) -> Option<Vec<u8>> {
        match read_vec(self.src.as_ref(), "metadata table", offset, len, limit) {
            Ok(t) => Some(t),
            Err(BoundsError::PastEnd { file_size, .. }) => {
                report!(
                    self.sink,
                    &rules::TABLE_OUT_OF_BOUNDS,
                    "the {what} at {offset:#x} ({len} bytes) passes the end of the file \
                    ({file_size} bytes)"
                );
                None
            }
            Err(BoundsError::TooLarge { limit, .. }) => {
                report!(
                    self.sink,
                    &rules::IO,
                    "the {what} at {offset:#x} is {len} bytes, over the limit of {limit} bytes"
                );
                None
            }
            Err(BoundsError::Io { source, .. }) => {
                report!(
                    self.sink,
                    &rules::IO,
                    "reading the {what} ({len} bytes at {offset:#x}): {source}"
                );
                None
            }
            Err(other) => {
                let cause = preflight_disk::error_chain(&other);
                report!(
                    self.sink,
                    &rules::IO,
                    "reading the {what} ({len} bytes at {offset:#x}): {cause}"
                );
                None
            }
        }
    }

    /// Takes `bytes` from the read budget; false (after a finding) if spent.
    pub(super) fn spend(&mut self, bytes: u64, what: &str) -> bool {
        if bytes > self.budget {
            report!(
                self.sink,
                &rules::CHECK_LIMIT,
                "the {what} add up to more than the file size; stopped reading them (the tables \
                must overlap)"
            );
            self.budget = 0;
            return false;
        }
        self.budget = self.budget.saturating_sub(bytes);
        true
    }

    /// Walks every distinct L2 table once.
    pub(super) fn l2_tables(&mut self) {
        let l2s = std::mem::take(&mut self.l2s);
        let offsets: Vec<u64> = l2s.keys().copied().collect();
        let src = Arc::clone(&self.src);
        let cs = self.geo.cluster_size;
        let res = tables::for_each_cluster(src.as_ref(), &offsets, cs, |off, table| {
            if let Some(u) = l2s.get(&off) {
                self.l2_table(off, table, u.mult, u.active);
            }
        });
        if let Err((off, e)) = res {
            self.push(&rules::IO, format!("reading the L2 table at {off:#x}: {e}"));
        }
    }

    pub(super) fn l2_table(&mut self, off: u64, table: &[u8], mult: u64, active: bool) {
        let geo = self.geo;
        self.region(
            Kind::L2,
            || "L2 table".to_string(),
            off,
            geo.cluster_size,
            mult,
            &rules::TABLE_OUT_OF_BOUNDS,
        );
        for j in 0..geo.l2_entries() {
            let e = tables::l2_entry(&geo, table, j);
            if e.raw == 0 && e.bitmap == 0 {
                continue;
            }
            let at = || format!("L2 table at {off:#x} entry {j}");
            let cluster = tables::classify(&geo, e);
            if geo.extended_l2 {
                if let Some(why) = tables::bitmap_problem(cluster, e.bitmap) {
                    report!(
                        self.sink,
                        &rules::L2_ENTRY,
                        "{}: {why} (bitmap {:#x})",
                        at(),
                        e.bitmap
                    );
                }
            }
            match cluster {
                Cluster::Compressed { offset, size } => {
                    if self.data_file {
                        report!(
                            self.sink,
                            &rules::L2_ENTRY,
                            "{}: compressed cluster in an image with an external data file",
                            at()
                        );
                        continue;
                    }
                    if e.raw & OFLAG_COPIED != 0 {
                        report!(
                            self.sink,
                            &rules::L2_ENTRY,
                            "{}: compressed cluster {:#x} has the COPIED flag set",
                            at(),
                            e.raw
                        );
                    }
                    if self.region(
                        Kind::Data,
                        || format!("compressed cluster of {}", at()),
                        offset,
                        size,
                        mult,
                        &rules::L2_ENTRY,
                    ) && self.last_compressed.is_none_or(|(o, _)| offset > o)
                    {
                        self.last_compressed = Some((offset, size));
                    }
                }
                Cluster::Normal(host) | Cluster::ZeroAlloc(host) => {
                    if e.raw & L2E_STD_RESERVED_MASK != 0 {
                        report!(
                            self.sink,
                            &rules::L2_ENTRY,
                            "{}: {:#x} has reserved bits {:#x} set",
                            at(),
                            e.raw,
                            e.raw & L2E_STD_RESERVED_MASK
                        );
                    }
                    if geo.offset_in_cluster(host) != 0 {
                        report!(
                            self.sink,
                            &rules::L2_ENTRY,
                            "{}: data cluster offset {host:#x} is not cluster aligned",
                            at()
                        );
                        continue;
                    }
                    if self.data_file {
                        continue;
                    }
                    let inside = self.region(
                        Kind::Data,
                        || format!("data cluster of {}", at()),
                        host,
                        geo.cluster_size,
                        mult,
                        &rules::L2_ENTRY,
                    );
                    // qemu writes whole clusters; with extended L2, whole
                    // subclusters, so the file may end after the last
                    // allocated one.
                    let needed = match cluster {
                        Cluster::Normal(_) if geo.extended_l2 => {
                            let alloc = e.bitmap & 0xffff_ffff;
                            let subclusters =
                                64u64.saturating_sub(u64::from(alloc.leading_zeros()));
                            subclusters.saturating_mul(geo.cluster_size / tables::SUBCLUSTERS)
                        }
                        Cluster::Normal(_) => geo.cluster_size,
                        _ => 0,
                    };
                    let data_end = host.saturating_add(needed);
                    if inside && data_end > geo.file_size {
                        report!(
                            self.sink,
                            &rules::TRUNCATED,
                            "{}: the guest data at {host:#x} end {} bytes past the end of \
                            the file ({} bytes)",
                            at(),
                            data_end.saturating_sub(geo.file_size),
                            geo.file_size
                        );
                    }
                    if inside && active {
                        self.copied(host, e.raw);
                    }
                }
                Cluster::Unallocated | Cluster::ZeroPlain => {
                    if e.raw & L2E_STD_RESERVED_MASK != 0 {
                        report!(
                            self.sink,
                            &rules::L2_ENTRY,
                            "{}: {:#x} has reserved bits {:#x} set",
                            at(),
                            e.raw,
                            e.raw & L2E_STD_RESERVED_MASK
                        );
                    }
                }
            }
        }
    }

    /// A file cut inside its last compressed cluster passes the reference
    /// check (the descriptor may legitimately reach past the end): inflate
    /// that one cluster to be sure.
    pub(super) fn last_compressed_cluster(&mut self) {
        let Some((off, size)) = self.last_compressed else {
            return;
        };
        let geo = self.geo;
        if off.saturating_add(size) <= geo.file_size || self.img.parsed.header.crypt_method != 0 {
            return;
        }
        let len = geo.file_size.saturating_sub(off);
        let zstd = self.img.parsed.header.compression_type == header::COMPRESSION_ZSTD;
        let result = read_vec(
            self.src.as_ref(),
            "compressed cluster",
            off,
            len,
            geo.cluster_size.saturating_mul(2),
        )
        .map_err(|e| preflight_disk::error_chain(&e))
        .and_then(|input| {
            crate::reader::decompress(&input, geo.cluster_size, zstd).map_err(|e| e.to_string())
        });
        if let Err(why) = result {
            report!(
                self.sink,
                &rules::TRUNCATED,
                "the last compressed cluster, at {off:#x}, does not decompress ({why}): the file \
                ({} bytes) ends inside it",
                geo.file_size
            );
        }
    }

    /// Walks the refcount table; returns the valid refcount blocks as
    /// (table index, offset), or None if the table could not be read.
    pub(super) fn refcount_table(&mut self) -> Option<Vec<(u64, u64)>> {
        let h = &self.img.parsed.header;
        let geo = self.geo;
        let (off, clusters) = (
            h.refcount_table_offset,
            u64::from(h.refcount_table_clusters),
        );
        if clusters == 0 {
            self.push(
                &rules::REFCOUNT_TABLE,
                "refcount_table_clusters is 0: the image has no refcount table".to_string(),
            );
            return Some(Vec::new());
        }
        let len = clusters.saturating_mul(geo.cluster_size);
        if !self.region(
            Kind::RefcountTable,
            || "refcount table".to_string(),
            off,
            len,
            1,
            &rules::TABLE_OUT_OF_BOUNDS,
        ) {
            return None;
        }
        let table = self.read_table("refcount table", off, len, header::MAX_REFTABLE_BYTES)?;
        // Only blocks that cover clusters of the file matter for the
        // comparison, but every block is a reference.
        let mut blocks = Vec::new();
        for (i, c) in table.chunks_exact(8).enumerate() {
            let e = tables::be_u64_at(c, 0);
            if e & REFT_RESERVED_MASK != 0 {
                report!(
                    self.sink,
                    &rules::REFCOUNT_TABLE,
                    "refcount table entry {i} is {e:#x}: reserved bits {:#x} are set",
                    e & REFT_RESERVED_MASK
                );
            }
            let b = e & REFT_OFFSET_MASK;
            if b == 0 {
                continue;
            }
            if geo.offset_in_cluster(b) != 0 {
                report!(
                    self.sink,
                    &rules::REFCOUNT_TABLE,
                    "refcount table entry {i} points at {b:#x}, which is not cluster aligned"
                );
                continue;
            }
            if self.region(
                Kind::RefcountBlock,
                || format!("refcount block {i}"),
                b,
                geo.cluster_size,
                1,
                &rules::TABLE_OUT_OF_BOUNDS,
            ) && b.saturating_add(geo.cluster_size) <= geo.file_size
            {
                blocks.push((u64::try_from(i).unwrap_or(u64::MAX), b));
            }
        }
        Some(blocks)
    }

    pub(super) fn bitmaps(&mut self) {
        let Some(bm) = self.img.parsed.ext.bitmaps else {
            return;
        };
        let geo = self.geo;
        let (off, size) = (bm.directory_offset, bm.directory_size);
        if !self.region(
            Kind::BitmapDirectory,
            || "bitmap directory".to_string(),
            off,
            size,
            1,
            &rules::TABLE_OUT_OF_BOUNDS,
        ) {
            return;
        }
        let Some(dir) = self.read_table(
            "bitmap directory",
            off,
            size,
            header::MAX_BITMAP_DIRECTORY_BYTES,
        ) else {
            return;
        };
        let (entries, problem) =
            tables::parse_bitmap_directory(&dir, bm.nb_bitmaps, geo.cluster_size);
        if let Some(p) = problem {
            self.push(&rules::BITMAPS, p);
        }
        for b in entries {
            let bytes = u64::from(b.table_size).saturating_mul(8);
            let what = format!("bitmap table of \"{}\"", b.name);
            if !self.region(
                Kind::BitmapTable,
                || what.clone(),
                b.table_offset,
                bytes,
                1,
                &rules::TABLE_OUT_OF_BOUNDS,
            ) {
                continue;
            }
            if !self.spend(bytes, "bitmap tables") {
                return;
            }
            let Some(t) = self.read_table(&what, b.table_offset, bytes, bytes) else {
                continue;
            };
            for (i, c) in t.chunks_exact(8).enumerate() {
                let e = tables::be_u64_at(c, 0);
                if e & BME_RESERVED_MASK != 0 {
                    report!(
                        self.sink,
                        &rules::BITMAPS,
                        "{what} entry {i} is {e:#x}: reserved bits are set"
                    );
                    continue;
                }
                let d = e & BME_OFFSET_MASK;
                if d != 0 {
                    let w = || format!("data cluster {i} of bitmap \"{}\"", b.name);
                    self.region(
                        Kind::BitmapData,
                        w,
                        d,
                        geo.cluster_size,
                        1,
                        &rules::TABLE_OUT_OF_BOUNDS,
                    );
                }
            }
        }
    }
}
