//! A hosted sparse extent (`KDMV`): monolithicSparse, streamOptimized and
//! the `-sNNN` files of twoGbMaxExtentSparse. Opening validates the header
//! and loads the grain directory; grain tables are read on demand.

use crate::descriptor::{self, BadLine, Descriptor};
use crate::error::{show_bytes, OpenError};
use crate::header::{
    self, Geometry, Marker, SparseHeader, FLAG_COMPRESSED, FLAG_NL_DETECT, FLAG_ZERO_GRAIN,
    FOOTER_LEN, GD_AT_END, GRAIN_MARKER_LEN, HEADER_LEN, KNOWN_FLAGS, MARKER_FOOTER,
    MAX_DESCRIPTOR_BYTES, MAX_L1_ENTRIES, NEWLINE_CHECK, SECTOR,
};
use crate::rules;
use flate2::{Decompress, FlushDecompress, Status};
use preflight_disk::{read_vec, BoundsError, ReadError, Source};
use preflight_report::Finding;
use std::sync::{Arc, Mutex};

/// A compressed grain's data may take at most two grains of the file
/// (qemu reads two clusters for one compressed grain).
pub(crate) const MAX_COMPRESSED_GRAINS: u64 = 2;
/// Compressed input is read and inflated in pieces of this size, so memory
/// does not follow the marker's size field.
const INFLATE_CHUNK: u64 = 64 * 1024;
/// Grains up to this size are inflated whole and kept (one grain) for the
/// next read; larger ones are inflated only up to the bytes asked for.
const GRAIN_CACHE_MAX: u64 = 1 << 20;

/// Where one grain's data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grain {
    /// Not allocated: reads as zeros.
    Unallocated,
    /// Grain table entry 1 with the zeroed-grain flag: reads as zeros.
    Zeroed,
    /// Uncompressed data at this file offset.
    Data(u64),
    /// A compressed grain (with its marker, if markers are on) here.
    Compressed(u64),
}

/// Where a compressed grain's deflate data lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompressedRange {
    /// File offset of the data.
    pub data: u64,
    /// Length of the data (for grains without a marker: what is left of
    /// the file, at most the limit).
    pub len: u64,
    /// The marker's sector number, if the grain has a marker.
    pub lba: Option<u64>,
}

/// An opened sparse extent.
pub(crate) struct SparseExtent {
    pub src: Arc<dyn Source>,
    pub name: String,
    /// The header in force: the footer's copy when the GD is at the end.
    pub header: SparseHeader,
    pub geo: Geometry,
    /// Grain directory: sector offsets of grain tables, 0 = none.
    pub gd: Vec<u32>,
    pub gd_at_end: bool,
    /// The embedded descriptor, if there is one and it is readable.
    pub descriptor: Option<Descriptor>,
    /// The embedded descriptor's byte range.
    pub desc_range: Option<(u64, u64)>,
    /// Problems found at open that do not stop reading.
    pub notes: Vec<Finding>,
    /// Bytes of the file holding guest data: see [`SparseExtent::count_allocated`].
    pub allocated_bytes: u64,
    cache: Mutex<Option<(u64, Vec<u8>)>>,
}

fn io_err(file: &str, error: std::io::Error) -> OpenError {
    OpenError::Io {
        file: file.to_string(),
        error,
    }
}

/// Decodes little-endian u32s; a trailing partial entry is ignored.
pub(crate) fn le_u32s(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| <[u8; 4]>::try_from(c).map_or(0, u32::from_le_bytes))
}

/// `sectors × 512`, or `None` on overflow.
pub(crate) fn sectors_to_bytes(sectors: u64) -> Option<u64> {
    sectors.checked_mul(SECTOR)
}

impl SparseExtent {
    /// Opens the sparse extent in `src`; `name` is used in messages.
    pub(crate) fn open(src: Arc<dyn Source>, name: &str) -> Result<SparseExtent, OpenError> {
        let file_size = src.size();
        let head = match read_vec(&*src, "sparse header", 0, 512, 512) {
            Ok(h) => h,
            Err(BoundsError::Io { source, .. }) => return Err(io_err(name, source)),
            Err(_) => {
                return Err(OpenError::Truncated {
                    file: name.to_string(),
                    detail: format!(
                        "the file is {file_size} bytes, shorter than the {HEADER_LEN}-byte sparse header"
                    ),
                })
            }
        };
        if head.starts_with(header::MAGIC_COWD) {
            return Err(OpenError::Cowd {
                file: name.to_string(),
            });
        }
        let primary = SparseHeader::parse(&head).ok_or_else(|| OpenError::Magic {
            file: name.to_string(),
            found: show_bytes(&head),
        })?;
        let gd_at_end = primary.gd_offset == GD_AT_END;
        let header = if gd_at_end {
            read_footer(&*src, name)?
        } else {
            primary.clone()
        };
        let geo = header.geometry(name)?;
        let mut notes = header_notes(&primary, &header, name, file_size);

        let (descriptor, desc_range) = match embedded_descriptor(&*src, &primary, name) {
            Ok(Some((text, range))) => {
                let (d, bad) = descriptor::parse(&text);
                if d.is_delta() {
                    return Err(OpenError::Delta {
                        file: name.to_string(),
                        detail: delta_detail(&d),
                    });
                }
                notes.extend(bad_line_notes(name, &bad));
                (Some(d), Some(range))
            }
            Ok(None) => (None, None),
            Err(f) => {
                notes.push(f);
                (None, None)
            }
        };

        let gd =
            load_directory(&*src, "grain directory", header.gd_offset, &geo).map_err(|source| {
                match source {
                    BoundsError::Io { source, .. } => io_err(name, source),
                    source => OpenError::GdOffset {
                        file: name.to_string(),
                        source,
                    },
                }
            })?;

        let mut extent = SparseExtent {
            src,
            name: name.to_string(),
            header,
            geo,
            gd,
            gd_at_end,
            descriptor,
            desc_range,
            notes,
            allocated_bytes: 0,
            cache: Mutex::new(None),
        };
        if extent.header.markers() && !gd_at_end && !extent.ends_with_eos() {
            extent.notes.push(rules::NO_END_OF_STREAM.finding(format!(
                "{name}: the stream does not end with an end-of-stream marker"
            )));
        }
        extent.allocated_bytes = extent.count_allocated().map_err(|e| io_err(name, e))?;
        Ok(extent)
    }

    pub(crate) fn file_size(&self) -> u64 {
        self.src.size()
    }

    pub(crate) fn compressed(&self) -> bool {
        self.header.compressed()
    }

    pub(crate) fn zero_grain(&self) -> bool {
        self.header.flags & FLAG_ZERO_GRAIN != 0
    }

    fn ends_with_eos(&self) -> bool {
        let size = self.file_size();
        let Some(at) = size.checked_sub(SECTOR) else {
            return false;
        };
        let mut b = [0u8; 16];
        self.src.read_exact_at(at, &mut b).is_ok() && Marker::parse(&b).is_some_and(|m| m.is_eos())
    }

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
            .map(|(i, &e)| (i, u64::from(e) * SECTOR))
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
    fn count_allocated(&self) -> std::io::Result<u64> {
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
                        self.stored_grain_bytes(u64::from(e) * SECTOR)
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
        let gd_index = index / self.geo.gtes;
        let gt_index = index % self.geo.gtes;
        let Some(&table) = usize::try_from(gd_index).ok().and_then(|i| self.gd.get(i)) else {
            return Ok(Grain::Unallocated);
        };
        if table == 0 {
            return Ok(Grain::Unallocated);
        }
        let at = u64::from(table) * SECTOR + gt_index * 4;
        let mut b = [0u8; 4];
        self.src.read_exact_at(at, &mut b).map_err(|_| {
            ReadError::Corrupt(format!(
                "{}: {}: grain table {gd_index} at file offset {} passes the end of the file ({} bytes)",
                rules::GT_OFFSET.code,
                self.name,
                u64::from(table) * SECTOR,
                self.file_size()
            ))
        })?;
        let e = u32::from_le_bytes(b);
        Ok(match e {
            0 => Grain::Unallocated,
            1 if self.zero_grain() => Grain::Zeroed,
            _ if self.compressed() => Grain::Compressed(u64::from(e) * SECTOR),
            _ => Grain::Data(u64::from(e) * SECTOR),
        })
    }

    /// The first run of grains holding data at or after extent offset
    /// `from`, clipped to `len` (the extent's length). Reads each grain table
    /// it passes once; a directory entry of 0 skips its whole table.
    pub(crate) fn next_data(&self, from: u64, len: u64) -> Result<Option<(u64, u64)>, ReadError> {
        let gb = self.geo.grain_bytes.max(1);
        let gtes = self.geo.gtes.max(1);
        let total = len.div_ceil(gb);
        let mut index = from / gb;
        let mut start: Option<u64> = None;
        let run =
            |s: u64, end_grain: u64| Some((s.max(from), end_grain.saturating_mul(gb).min(len)));
        while index < total {
            let gd_index = index / gtes;
            let table = usize::try_from(gd_index)
                .ok()
                .and_then(|i| self.gd.get(i))
                .copied()
                .unwrap_or(0);
            if table == 0 {
                if let Some(s) = start {
                    return Ok(run(s, index));
                }
                index = (gd_index + 1).saturating_mul(gtes);
                continue;
            }
            let entries = self.read_table(u64::from(table) * SECTOR).map_err(|_| {
                ReadError::Corrupt(format!(
                    "{}: {}: grain table {gd_index} at file offset {} passes the end of the file ({} bytes)",
                    rules::GT_OFFSET.code,
                    self.name,
                    u64::from(table) * SECTOR,
                    self.file_size()
                ))
            })?;
            let first = usize::try_from(index % gtes).unwrap_or(usize::MAX);
            for &e in entries.get(first..).unwrap_or_default() {
                if index >= total {
                    break;
                }
                match (self.entry_has_data(e), start) {
                    (true, None) => start = Some(index * gb),
                    (false, Some(s)) => return Ok(run(s, index)),
                    _ => {}
                }
                index += 1;
            }
            // A short table (cut off by the file's end) ends here too.
            index = index.max((gd_index + 1).saturating_mul(gtes));
        }
        Ok(start.and_then(|s| run(s, total)))
    }

    /// Fills `buf` from extent offset `offset` (the caller keeps the range
    /// inside the extent).
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let gb = self.geo.grain_bytes;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset.saturating_add(u64::try_from(done).unwrap_or(u64::MAX));
            let index = pos / gb;
            let in_grain = pos % gb;
            let left = buf.len() - done;
            let n = usize::try_from(gb - in_grain).map_or(left, |g| g.min(left));
            let part = buf.get_mut(done..done + n).unwrap_or_default();
            match self.lookup(index)? {
                Grain::Unallocated | Grain::Zeroed => part.fill(0),
                Grain::Data(base) => {
                    let at = base.saturating_add(in_grain);
                    self.src.read_exact_at(at, part).map_err(|_| {
                        ReadError::Corrupt(format!(
                            "{}: {}: grain {index} at file offset {base} passes the end of the file ({} bytes)",
                            rules::GRAIN_OFFSET.code,
                            self.name,
                            self.file_size()
                        ))
                    })?;
                }
                Grain::Compressed(base) => self.read_compressed(index, base, in_grain, part)?,
            }
            done += n;
        }
        Ok(())
    }

    /// The compressed data of the grain whose entry points at `base`:
    /// `(file offset, length)`, checked against the file and the limit.
    pub(crate) fn compressed_range(&self, base: u64) -> Result<CompressedRange, String> {
        let size = self.file_size();
        let max = self.geo.grain_bytes.saturating_mul(MAX_COMPRESSED_GRAINS);
        if !self.header.markers() {
            let left = size.checked_sub(base).filter(|&l| l > 0).ok_or_else(|| {
                format!("data at file offset {base} is past the end of the file ({size} bytes)")
            })?;
            return Ok(CompressedRange {
                data: base,
                len: left.min(max),
                lba: None,
            });
        }
        let mut m = [0u8; 12];
        self.src.read_exact_at(base, &mut m).map_err(|_| {
            format!("marker at file offset {base} is past the end of the file ({size} bytes)")
        })?;
        let (lba, len) = header::parse_grain_marker(&m).unwrap_or((0, 0));
        let len = u64::from(len);
        if len == 0 || len > max {
            return Err(format!(
                "marker at file offset {base} gives a compressed size of {len} bytes (allowed 1 to {max})"
            ));
        }
        let data = base.saturating_add(GRAIN_MARKER_LEN);
        if data.checked_add(len).is_none_or(|end| end > size) {
            return Err(format!(
                "marker at file offset {base} gives a compressed size of {len} bytes, which passes the end of the file ({size} bytes)"
            ));
        }
        Ok(CompressedRange {
            data,
            len,
            lba: Some(lba),
        })
    }

    fn read_compressed(
        &self,
        index: u64,
        base: u64,
        in_grain: u64,
        part: &mut [u8],
    ) -> Result<(), ReadError> {
        let corrupt = |why: String| {
            ReadError::Corrupt(format!(
                "{}: {}: compressed grain {index} at file offset {base}: {why}",
                rules::COMPRESSED_GRAIN.code,
                self.name
            ))
        };
        let gb = self.geo.grain_bytes;
        if gb > GRAIN_CACHE_MAX {
            let r = self.compressed_range(base).map_err(corrupt)?;
            let n = inflate(&*self.src, r.data, r.len, in_grain, part, false).map_err(corrupt)?;
            part.get_mut(n..).unwrap_or_default().fill(0);
            return Ok(());
        }
        let start = usize::try_from(in_grain).unwrap_or(usize::MAX);
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((key, data)) = cache.as_ref() {
                if *key == base {
                    copy_out(data, start, part);
                    return Ok(());
                }
            }
        }
        let data = self.inflate_grain(base).map_err(corrupt)?;
        copy_out(&data, start, part);
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((base, data));
        Ok(())
    }

    /// Inflates a grain without keeping it: an error unless it is a valid
    /// deflate stream of at most the grain size.
    pub(crate) fn verify_grain(&self, base: u64) -> Result<(), String> {
        let r = self.compressed_range(base)?;
        inflate(
            &*self.src,
            r.data,
            r.len,
            self.geo.grain_bytes,
            &mut [],
            true,
        )
        .map(|_| ())
    }

    /// Inflates a whole grain (at most the grain size; more is an error).
    pub(crate) fn inflate_grain(&self, base: u64) -> Result<Vec<u8>, String> {
        let r = self.compressed_range(base)?;
        let gb =
            usize::try_from(self.geo.grain_bytes).map_err(|_| "grain too large".to_string())?;
        let mut data = vec![0u8; gb];
        let n = inflate(&*self.src, r.data, r.len, 0, &mut data, true)?;
        data.truncate(n);
        Ok(data)
    }
}

/// Copies `data[start..]` into `out`, zeros past the end of `data`.
fn copy_out(data: &[u8], start: usize, out: &mut [u8]) {
    let avail = data.get(start..).unwrap_or_default();
    let n = avail.len().min(out.len());
    if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
        dst.copy_from_slice(src);
    }
    out.get_mut(n..).unwrap_or_default().fill(0);
}

/// Inflates the zlib stream of `len` bytes at `at`, drops the first `skip`
/// output bytes and writes the following ones to `out`. Returns how many
/// bytes were written. Input is read in chunks and output never goes past
/// `skip + out.len()`; with `want_end`, output beyond that (a stream longer
/// than the grain) is an error.
pub(crate) fn inflate(
    src: &dyn Source,
    at: u64,
    len: u64,
    skip: u64,
    out: &mut [u8],
    want_end: bool,
) -> Result<usize, String> {
    let mut z = Decompress::new(true);
    let chunk = usize::try_from(len.min(INFLATE_CHUNK)).unwrap_or(0);
    let mut input = vec![0u8; chunk];
    let (mut in_pos, mut in_len) = (0usize, 0usize);
    let mut read_so_far = 0u64;
    let mut scratch = vec![0u8; usize::try_from(skip.min(INFLATE_CHUNK)).unwrap_or(0).max(1)];
    let mut written = 0usize;
    loop {
        if in_pos == in_len && read_so_far < len {
            let n = (len - read_so_far).min(INFLATE_CHUNK);
            let n = usize::try_from(n).unwrap_or(0);
            let dst = input.get_mut(..n).unwrap_or_default();
            src.read_exact_at(at.saturating_add(read_so_far), dst)
                .map_err(|e| format!("reading compressed data: {e}"))?;
            read_so_far = read_so_far.saturating_add(u64::try_from(n).unwrap_or(0));
            in_pos = 0;
            in_len = n;
        }
        let produced = z.total_out();
        let probing = produced >= skip && written == out.len();
        if probing && !want_end {
            return Ok(written);
        }
        let target: &mut [u8] = if produced < skip {
            let n =
                usize::try_from(skip - produced).map_or(scratch.len(), |s| s.min(scratch.len()));
            scratch.get_mut(..n).unwrap_or_default()
        } else if probing {
            scratch.get_mut(..1).unwrap_or_default()
        } else {
            out.get_mut(written..).unwrap_or_default()
        };
        let (in_before, out_before) = (z.total_in(), z.total_out());
        let status = z
            .decompress(
                input.get(in_pos..in_len).unwrap_or_default(),
                target,
                FlushDecompress::None,
            )
            .map_err(|e| format!("invalid deflate data: {e}"))?;
        let used = usize::try_from(z.total_in() - in_before).unwrap_or(0);
        let made = usize::try_from(z.total_out() - out_before).unwrap_or(0);
        in_pos = in_pos.saturating_add(used).min(in_len);
        if probing && made > 0 {
            let limit = skip.saturating_add(u64::try_from(out.len()).unwrap_or(u64::MAX));
            return Err(format!(
                "inflates to more than the grain size of {limit} bytes"
            ));
        }
        if produced >= skip && !probing {
            written = written.saturating_add(made);
        }
        if status == Status::StreamEnd {
            return Ok(written);
        }
        if used == 0 && made == 0 && in_pos == in_len && read_so_far >= len {
            return Err(format!(
                "the compressed data ({len} bytes) ends before the deflate stream does"
            ));
        }
        if used == 0 && made == 0 && in_pos < in_len {
            return Err("the deflate stream makes no progress".to_string());
        }
    }
}

/// Reads the footer at EOF-1024 of a streamOptimized file whose header says
/// the grain directory is at the end; returns the footer's header.
fn read_footer(src: &dyn Source, name: &str) -> Result<SparseHeader, OpenError> {
    let size = src.size();
    let footer_err = |detail: String| OpenError::Footer {
        file: name.to_string(),
        detail,
    };
    let at = size
        .checked_sub(FOOTER_LEN)
        .filter(|&a| a >= SECTOR)
        .ok_or_else(|| {
            footer_err(format!(
                "the header puts the grain directory in a footer, but the file ({size} bytes) is too short to hold one"
            ))
        })?;
    let bytes = read_vec(src, "footer", at, FOOTER_LEN, FOOTER_LEN).map_err(|e| match e {
        BoundsError::Io { source, .. } => io_err(name, source),
        other => footer_err(other.to_string()),
    })?;
    let sector = |i: u64| {
        let s = usize::try_from(i * SECTOR).unwrap_or(usize::MAX);
        bytes.get(s..).unwrap_or_default()
    };
    let marker = Marker::parse(sector(0));
    let header = SparseHeader::parse(sector(1));
    let eos = Marker::parse(sector(2));
    match (marker, header, eos) {
        (Some(m), Some(h), Some(e)) if m.size == 0 && m.kind == MARKER_FOOTER && e.is_eos() => {
            if h.gd_offset == GD_AT_END {
                return Err(footer_err(
                    "the footer's header also says the grain directory is at the end".to_string(),
                ));
            }
            Ok(h)
        }
        _ => Err(footer_err(format!(
            "no valid footer (footer marker, KDMV header copy, end-of-stream marker) in the last {FOOTER_LEN} bytes: the stream is truncated or incomplete"
        ))),
    }
}

/// Non-fatal header findings.
fn header_notes(primary: &SparseHeader, h: &SparseHeader, name: &str, size: u64) -> Vec<Finding> {
    let mut notes = Vec::new();
    let unknown = h.flags & !KNOWN_FLAGS;
    if unknown != 0 {
        notes.push(rules::FLAGS.finding(format!(
            "{name}: unknown header flags {unknown:#x} (flags {:#x})",
            h.flags
        )));
    }
    if (h.flags & FLAG_COMPRESSED != 0) != h.compressed() {
        notes.push(rules::FLAGS.finding(format!(
            "{name}: the compressed-grains flag ({}) disagrees with compression algorithm {}",
            h.flags & FLAG_COMPRESSED != 0,
            h.compression
        )));
    }
    if primary.flags & FLAG_NL_DETECT != 0 && primary.check_bytes != NEWLINE_CHECK {
        notes.push(rules::NEWLINE.finding(format!(
            "{name}: newline check bytes are {} instead of \"\\n \\r\\n\"",
            show_bytes(&primary.check_bytes)
        )));
    }
    if primary.unclean_shutdown != 0 {
        notes.push(rules::UNCLEAN_SHUTDOWN.finding(format!(
            "{name}: the unclean-shutdown flag is set ({})",
            primary.unclean_shutdown
        )));
    }
    if size % SECTOR != 0 {
        notes.push(rules::TRUNCATED.finding(format!(
            "{name}: the file is {size} bytes, not a whole number of 512-byte sectors: it is truncated"
        )));
    }
    match sectors_to_bytes(h.overhead) {
        Some(need) if need <= size => {}
        _ => notes.push(rules::TRUNCATED.finding(format!(
            "{name}: file truncated: the header's overhead is {} sectors, so the file needs at least {} bytes, but it has {size}",
            h.overhead,
            h.overhead.saturating_mul(SECTOR)
        ))),
    }
    notes
}

/// An embedded descriptor's text and its `(offset, length)` in the file.
type EmbeddedText = (String, (u64, u64));

/// Reads the embedded descriptor, if the header names one.
fn embedded_descriptor(
    src: &dyn Source,
    h: &SparseHeader,
    name: &str,
) -> Result<Option<EmbeddedText>, Finding> {
    if h.desc_size == 0 {
        return Ok(None);
    }
    let bad = |detail: String| {
        rules::DESCRIPTOR_OFFSET.finding(format!(
            "{name}: embedded descriptor at sector {} of {} sectors: {detail}",
            h.desc_offset, h.desc_size
        ))
    };
    let (Some(off), Some(len)) = (
        sectors_to_bytes(h.desc_offset),
        sectors_to_bytes(h.desc_size),
    ) else {
        return Err(bad("offset or size overflows".to_string()));
    };
    if off == 0 {
        return Err(bad("it would overlap the header".to_string()));
    }
    let bytes = read_vec(src, "embedded descriptor", off, len, MAX_DESCRIPTOR_BYTES)
        .map_err(|e| bad(preflight_disk::error_chain(&e)))?;
    Ok(Some((descriptor::text_of(&bytes), (off, len))))
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

pub(crate) fn delta_detail(d: &Descriptor) -> String {
    let mut parts = Vec::new();
    if let Some(p) = d.parent_cid.filter(|&p| p != descriptor::NO_PARENT_CID) {
        parts.push(format!("parentCID={p:08x}"));
    }
    if let Some(h) = &d.parent_file_name_hint {
        parts.push(format!("parentFileNameHint=\"{h}\""));
    }
    format!(
        "{}; the file holds only the blocks changed since its parent",
        parts.join(", ")
    )
}

pub(crate) fn bad_line_notes(name: &str, bad: &[BadLine]) -> Vec<Finding> {
    bad.iter()
        .map(|b| {
            rules::DESCRIPTOR.finding(format!("{name}: descriptor line {}: {}", b.line, b.detail))
        })
        .collect()
}
