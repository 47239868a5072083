//! Integrity check of a sparse extent: grain directories, grain tables and
//! grain entries against the file and each other. Reads metadata (and the
//! 12-byte marker of each compressed grain) only.

use crate::header::{FLAG_RGD, FOOTER_LEN, HEADER_LEN, SECTOR};
use crate::rules;
use crate::sparse::{load_directory, sectors_to_bytes, SparseExtent};
use preflight_report::FindingSink;

/// A piece of metadata in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Header,
    Descriptor,
    Gd,
    Rgd,
    Footer,
    Gt(usize),
    Rgt(usize),
}

impl What {
    fn describe(self) -> String {
        match self {
            What::Header => "the header".to_string(),
            What::Descriptor => "the embedded descriptor".to_string(),
            What::Gd => "the grain directory".to_string(),
            What::Rgd => "the redundant grain directory".to_string(),
            What::Footer => "the footer".to_string(),
            What::Gt(i) => format!("grain table {i}"),
            What::Rgt(i) => format!("redundant grain table {i}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Interval {
    start: u64,
    end: u64,
    what: What,
}

/// Sorted metadata intervals with a running maximum of their ends, to ask
/// "does this range touch any metadata?" in O(log n).
struct MetadataMap {
    intervals: Vec<Interval>,
    /// `reach[k]`: index of the interval with the largest end among `..=k`.
    reach: Vec<usize>,
}

impl MetadataMap {
    fn new(intervals: Vec<Interval>) -> Self {
        let mut reach = Vec::with_capacity(intervals.len());
        let mut best = 0usize;
        for (k, iv) in intervals.iter().enumerate() {
            if intervals.get(best).is_none_or(|b| iv.end > b.end) {
                best = k;
            }
            reach.push(best);
        }
        MetadataMap { intervals, reach }
    }

    fn overlapping(&self, start: u64, end: u64) -> Option<Interval> {
        let k = self.intervals.partition_point(|iv| iv.start < end);
        let idx = *self.reach.get(k.checked_sub(1)?)?;
        let iv = *self.intervals.get(idx)?;
        (iv.end > start).then_some(iv)
    }
}

impl SparseExtent {
    /// Reports every problem of this extent into `sink`.
    pub(crate) fn check(&self, sink: &mut FindingSink) {
        for n in &self.notes {
            sink.push(n.clone());
        }
        let name = &self.name;
        let size = self.file_size();
        let gt_bytes = self.geo.gt_bytes();
        let gd_bytes = self.geo.gd_bytes();

        let mut regions = vec![Interval {
            start: 0,
            end: u64::try_from(HEADER_LEN).unwrap_or(SECTOR),
            what: What::Header,
        }];
        if let Some((off, len)) = self.desc_range {
            regions.push(Interval {
                start: off,
                end: off.saturating_add(len),
                what: What::Descriptor,
            });
        }
        if let Some(off) = sectors_to_bytes(self.header.gd_offset) {
            regions.push(Interval {
                start: off,
                end: off.saturating_add(gd_bytes),
                what: What::Gd,
            });
        }
        if self.gd_at_end {
            regions.push(Interval {
                start: size.saturating_sub(FOOTER_LEN),
                end: size,
                what: What::Footer,
            });
        }
        let rgd = if self.header.flags & FLAG_RGD != 0 && self.header.rgd_offset != 0 {
            match load_directory(
                &*self.src,
                "redundant grain directory",
                self.header.rgd_offset,
                &self.geo,
            ) {
                Ok(v) => {
                    let off = self.header.rgd_offset.saturating_mul(SECTOR);
                    regions.push(Interval {
                        start: off,
                        end: off.saturating_add(gd_bytes),
                        what: What::Rgd,
                    });
                    Some(v)
                }
                Err(e) => {
                    sink.report(&rules::GD_OFFSET, || format!("{name}: {e}"));
                    None
                }
            }
        } else {
            None
        };

        let tables = |dir: &[u32],
                      redundant: bool,
                      regions: &mut Vec<Interval>,
                      sink: &mut FindingSink| {
            for (i, &e) in dir.iter().enumerate() {
                if e == 0 {
                    continue;
                }
                let off = u64::from(e).saturating_mul(SECTOR);
                let what = if redundant { What::Rgt(i) } else { What::Gt(i) };
                if off.checked_add(gt_bytes).is_none_or(|end| end > size) {
                    sink.report(&rules::GT_OFFSET, || format!(
                        "{name}: {} is at file offset {off} (sector {e}), past the end of the file ({size} bytes)",
                        what.describe()
                    ));
                } else {
                    regions.push(Interval {
                        start: off,
                        end: off.saturating_add(gt_bytes),
                        what,
                    });
                }
            }
        };
        tables(&self.gd, false, &mut regions, sink);
        if let Some(r) = &rgd {
            tables(r, true, &mut regions, sink);
        }

        // Overlaps: sweep in file order, remembering the furthest end.
        regions.retain(|r| r.end > r.start);
        regions.sort_by_key(|r| (r.start, r.end));
        let mut clean_gt = vec![false; self.gd.len()];
        let mut clean_rgt = vec![false; rgd.as_ref().map_or(0, Vec::len)];
        let mut reach: Option<Interval> = None;
        for r in &regions {
            let clash = reach.filter(|p| r.start < p.end);
            if let Some(p) = clash {
                sink.report(&rules::TABLE_OVERLAP, || {
                    format!(
                        "{name}: {} at file offset {} overlaps {} at file offset {}",
                        r.what.describe(),
                        r.start,
                        p.what.describe(),
                        p.start
                    )
                });
            } else {
                match r.what {
                    What::Gt(i) => set(&mut clean_gt, i),
                    What::Rgt(i) => set(&mut clean_rgt, i),
                    _ => {}
                }
            }
            if reach.is_none_or(|p| r.end > p.end) {
                reach = Some(*r);
            }
        }
        let map = MetadataMap::new(regions);

        // Walk each clean grain table once.
        for (i, &e) in self.gd.iter().enumerate() {
            if !clean_gt.get(i).copied().unwrap_or(false) {
                continue;
            }
            let off = u64::from(e).saturating_mul(SECTOR);
            let table = match self.read_table(off) {
                Ok(t) => t,
                Err(err) => {
                    sink.report(&rules::IO, || format!("{name}: grain table {i}: {err}"));
                    continue;
                }
            };
            self.check_table(i, &table, &map, sink);
            if let Some(r) = &rgd {
                let re = r.get(i).copied().unwrap_or(0);
                if re != 0 && clean_rgt.get(i).copied().unwrap_or(false) {
                    if let Ok(copy) = self.read_table(u64::from(re).saturating_mul(SECTOR)) {
                        if copy != table {
                            sink.report(&rules::REDUNDANT_GD, || format!(
                                "{name}: grain table {i} (sector {e}) differs from its redundant copy (sector {re})"
                            ));
                        }
                    }
                }
            }
        }
        if let Some(r) = &rgd {
            for (i, (&a, &b)) in self.gd.iter().zip(r.iter()).enumerate() {
                if (a == 0) != (b == 0) {
                    sink.report(&rules::REDUNDANT_GD, || {
                        format!(
                        "{name}: grain directory entry {i} is {a} but the redundant copy says {b}"
                    )
                    });
                }
            }
        }
    }

    /// Inflates every compressed grain of the distinct grain tables.
    pub(crate) fn check_grains(&self, sink: &mut FindingSink) {
        if !self.compressed() {
            return;
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, off) in self.distinct_tables(&self.gd) {
            let Ok(table) = self.read_table(off) else {
                continue;
            };
            for (j, &e) in table.iter().enumerate() {
                if !self.entry_has_data(e) || !seen.insert(e) {
                    continue;
                }
                let base = u64::from(e).saturating_mul(SECTOR);
                if let Err(why) = self.verify_grain(base) {
                    sink.report(&rules::COMPRESSED_GRAIN, || format!(
                        "{}: grain table {i} entry {j}: compressed grain at file offset {base}: {why}",
                        self.name
                    ));
                }
            }
        }
    }

    fn check_table(&self, i: usize, table: &[u32], map: &MetadataMap, sink: &mut FindingSink) {
        let name = &self.name;
        let size = self.file_size();
        let first = u64::try_from(i)
            .unwrap_or(u64::MAX)
            .saturating_mul(self.geo.gtes);
        for (j, &e) in table.iter().enumerate() {
            if !self.entry_has_data(e) {
                continue;
            }
            let grain = first.saturating_add(u64::try_from(j).unwrap_or(u64::MAX));
            let guest = grain.saturating_mul(self.geo.grain_bytes);
            let base = u64::from(e).saturating_mul(SECTOR);
            let end = if self.compressed() {
                match self.compressed_range(base) {
                    Ok(r) => {
                        let want = grain.saturating_mul(self.geo.grain_sectors);
                        if let Some(lba) = r.lba.filter(|&l| l != want) {
                            sink.report(&rules::GRAIN_MARKER, || format!(
                                "{name}: grain table {i} entry {j} (guest offset {guest}): the marker at file offset {base} names sector {lba}, not {want}"
                            ));
                        }
                        r.data.saturating_add(r.len)
                    }
                    Err(why) => {
                        let rule = if base >= size {
                            &rules::GRAIN_OFFSET
                        } else {
                            &rules::GRAIN_MARKER
                        };
                        sink.report(rule, || {
                            format!(
                                "{name}: grain table {i} entry {j} (guest offset {guest}): {why}"
                            )
                        });
                        continue;
                    }
                }
            } else {
                let end = base.saturating_add(self.geo.grain_bytes);
                if end > size {
                    sink.report(&rules::GRAIN_OFFSET, || format!(
                        "{name}: grain table {i} entry {j} (guest offset {guest}) points to file offset {base}; the grain passes the end of the file ({size} bytes)"
                    ));
                    continue;
                }
                end
            };
            if let Some(m) = map.overlapping(base, end) {
                sink.report(&rules::GRAIN_OFFSET, || format!(
                    "{name}: grain table {i} entry {j} (guest offset {guest}) points to file offset {base}, inside {} at file offset {}",
                    m.what.describe(),
                    m.start
                ));
            }
        }
    }
}

fn set(v: &mut [bool], i: usize) {
    if let Some(x) = v.get_mut(i) {
        *x = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_map_finds_overlaps() {
        let iv = |start, end| Interval {
            start,
            end,
            what: What::Header,
        };
        let map = MetadataMap::new(vec![iv(0, 100), iv(10, 20), iv(200, 300)]);
        assert!(map.overlapping(50, 60).is_some());
        assert!(map.overlapping(100, 200).is_none());
        assert!(map.overlapping(299, 400).is_some());
        assert!(map.overlapping(300, 400).is_none());
        assert!(MetadataMap::new(vec![]).overlapping(0, 10).is_none());
    }
}
