//! The grain directory and grain tables: which grains hold data and where.

use super::{le_u32s, sectors_to_bytes, Grain, SparseExtent};
use crate::error::ReadFault;
use crate::header::{Geometry, MAX_L1_ENTRIES, SECTOR};
use preflight_disk::{read_vec, BoundsError, ReadError, Source};

impl SparseExtent {
    /// File offsets of grain tables in file order, for one pass over each
    /// distinct table: entries outside the file or overlapping an earlier
    /// table are left out (the check reports them).
    pub(crate) fn distinct_tables(&self, dir: &[u32]) -> Vec<(usize, u64)> {
        let gt_bytes = self.geo.gt_bytes();
        let size = self.file_size();
        let mut tables: Vec<(usize, u64)> = dir
            .iter()
            .enumerate()
            .filter(|(_, &e)| e != 0)
            .map(|(i, &e)| (i, u64::from(e).saturating_mul(SECTOR)))
            .filter(|&(_, off)| off.checked_add(gt_bytes).is_some_and(|end| end <= size))
            .collect();
        tables.sort_by_key(|&(_, off)| off);
        let mut end = 0u64;
        tables.retain(|&(_, off)| {
            let keep = off >= end;
            if keep {
                end = off.saturating_add(gt_bytes);
            }
            keep
        });
        tables
    }

    /// Reads one grain table.
    pub(crate) fn read_table(&self, offset: u64) -> std::io::Result<Vec<u32>> {
        let len = usize::try_from(self.geo.gt_bytes()).unwrap_or(0);
        let mut buf = vec![0u8; len];
        self.src.read_exact_at(offset, &mut buf)?;
        Ok(le_u32s(&buf).collect())
    }

    /// True if a grain table entry holds data.
    pub(crate) fn entry_has_data(&self, e: u32) -> bool {
        e != 0 && !(e == 1 && self.zero_grain())
    }

    /// Bytes of the file holding guest data, as every format counts them
    /// (a qcow2 compressed cluster counts its compressed size): a grain
    /// table entry with data counts one grain, except a compressed grain
    /// with a marker (streamOptimized), which counts the whole sectors its
    /// marker and deflate data take in the file. A compressed grain whose
    /// marker is past the end of the file or invalid holds nothing readable
    /// and counts nothing (the check reports it); one without a marker,
    /// whose length the file does not record, counts one grain.
    pub(super) fn count_allocated(&self) -> std::io::Result<u64> {
        let sized = self.compressed() && self.header.markers();
        let mut n = 0u64;
        for (i, off) in self.distinct_tables(&self.gd) {
            let first = u64::try_from(i)
                .unwrap_or(u64::MAX)
                .saturating_mul(self.geo.gtes);
            let table = self.read_table(off)?;
            for (j, e) in table.into_iter().enumerate() {
                let grain = first.saturating_add(u64::try_from(j).unwrap_or(u64::MAX));
                if grain < self.geo.grains && self.entry_has_data(e) {
                    let bytes = if sized {
                        self.stored_grain_bytes(u64::from(e).saturating_mul(SECTOR))
                    } else {
                        self.geo.grain_bytes
                    };
                    n = n.saturating_add(bytes);
                }
            }
        }
        Ok(n)
    }

    /// The bytes a compressed grain with a marker takes in the file: its
    /// marker and data rounded up to whole sectors (0 if the marker is bad).
    fn stored_grain_bytes(&self, base: u64) -> u64 {
        let Ok(r) = self.compressed_range(base) else {
            return 0;
        };
        let end = r.data.saturating_add(r.len);
        let sectors = end.saturating_sub(base).div_ceil(SECTOR);
        sectors
            .saturating_mul(SECTOR)
            .min(self.file_size().saturating_sub(base))
    }

    /// Where grain `index` (counted from the extent's start) lives.
    pub(crate) fn lookup(&self, index: u64) -> Result<Grain, ReadError> {
        // Opening keeps gtes at least 1.
        let gd_index = index.checked_div(self.geo.gtes).unwrap_or(0);
        let gt_index = index.checked_rem(self.geo.gtes).unwrap_or(0);
        let Some(&table) = usize::try_from(gd_index).ok().and_then(|i| self.gd.get(i)) else {
            return Ok(Grain::Unallocated);
        };
        if table == 0 {
            return Ok(Grain::Unallocated);
        }
        let at = u64::from(table)
            .saturating_mul(SECTOR)
            .saturating_add(gt_index.saturating_mul(4));
        let mut b = [0u8; 4];
        self.src
            .read_exact_at(at, &mut b)
            .map_err(|_| self.table_past_end(gd_index, table))?;
        let e = u32::from_le_bytes(b);
        Ok(match e {
            0 => Grain::Unallocated,
            1 if self.zero_grain() => Grain::Zeroed,
            _ if self.compressed() => Grain::Compressed(u64::from(e).saturating_mul(SECTOR)),
            _ => Grain::Data(u64::from(e).saturating_mul(SECTOR)),
        })
    }

    /// The read error for grain table `gd_index` (directory entry `table`, in sectors) that
    /// passes the end of the file.
    fn table_past_end(&self, gd_index: u64, table: u32) -> ReadError {
        ReadError::corrupt(ReadFault::GrainTablePastEnd {
            extent: self.name.clone(),
            gd_index,
            offset: u64::from(table).saturating_mul(SECTOR),
            file_size: self.file_size(),
        })
    }

    /// The first run of grains holding data at or after extent offset
    /// `from`, clipped to `len` (the extent's length). Reads each grain table
    /// it passes once; a directory entry of 0 skips its whole table.
    pub(crate) fn next_data(&self, from: u64, len: u64) -> Result<Option<(u64, u64)>, ReadError> {
        let gb = self.geo.grain_bytes.max(1);
        let gtes = self.geo.gtes.max(1);
        let total = len.div_ceil(gb);
        let mut index = from.checked_div(gb).unwrap_or(0);
        let mut start: Option<u64> = None;
        let run =
            |s: u64, end_grain: u64| Some((s.max(from), end_grain.saturating_mul(gb).min(len)));
        while index < total {
            let gd_index = index.checked_div(gtes).unwrap_or(0);
            let table = usize::try_from(gd_index)
                .ok()
                .and_then(|i| self.gd.get(i))
                .copied()
                .unwrap_or(0);
            if table == 0 {
                if let Some(s) = start {
                    return Ok(run(s, index));
                }
                index = gd_index.saturating_add(1).saturating_mul(gtes);
                continue;
            }
            let entries = self
                .read_table(u64::from(table).saturating_mul(SECTOR))
                .map_err(|_| self.table_past_end(gd_index, table))?;
            let first = usize::try_from(index.checked_rem(gtes).unwrap_or(0)).unwrap_or(usize::MAX);
            for &e in entries.get(first..).unwrap_or_default() {
                if index >= total {
                    break;
                }
                match (self.entry_has_data(e), start) {
                    (true, None) => start = Some(index.saturating_mul(gb)),
                    (false, Some(s)) => return Ok(run(s, index)),
                    _ => {}
                }
                index = index.saturating_add(1);
            }
            // A short table (cut off by the file's end) ends here too.
            index = index.max(gd_index.saturating_add(1).saturating_mul(gtes));
        }
        Ok(start.and_then(|s| run(s, total)))
    }
}

/// Loads a grain directory of `geo.l1_entries` entries at sector `sector`.
pub(crate) fn load_directory(
    src: &dyn Source,
    what: &'static str,
    sector: u64,
    geo: &Geometry,
) -> Result<Vec<u32>, BoundsError> {
    if geo.l1_entries == 0 {
        return Ok(Vec::new());
    }
    let len = geo.gd_bytes();
    let offset = sectors_to_bytes(sector).ok_or(BoundsError::PastEnd {
        what,
        offset: u64::MAX,
        len,
        file_size: src.size(),
    })?;
    let bytes = read_vec(src, what, offset, len, MAX_L1_ENTRIES * 4)?;
    Ok(le_u32s(&bytes).collect())
}
