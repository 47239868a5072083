//! Reading grains: plain grains are copied, compressed ones inflated in
//! bounded pieces.

use super::{CompressedRange, Grain, SparseExtent, MAX_COMPRESSED_GRAINS};
use crate::error::{GrainFault, ReadFault};
use crate::header::{self, GRAIN_MARKER_LEN};
use flate2::{Decompress, FlushDecompress, Status};
use preflight_disk::{read_blockwise, ReadError, Source};

/// Compressed input is read and inflated in pieces of this size, so memory
/// does not follow the marker's size field.
const INFLATE_CHUNK: u64 = 64 * 1024;
/// Grains up to this size are inflated whole and kept (one grain) for the
/// next read; larger ones are inflated only up to the bytes asked for.
const GRAIN_CACHE_MAX: u64 = 1 << 20;

impl SparseExtent {
    /// Fills `buf` from extent offset `offset` (the caller keeps the range
    /// inside the extent).
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        // Opening keeps the grain size at least one sector.
        read_blockwise(
            offset,
            buf,
            self.geo.grain_bytes,
            |index, in_grain, part| {
                match self.lookup(index)? {
                    Grain::Unallocated | Grain::Zeroed => part.fill(0),
                    Grain::Data(base) => {
                        let at = base.saturating_add(in_grain);
                        self.src.read_exact_at(at, part).map_err(|_| {
                            ReadError::corrupt(ReadFault::GrainPastEnd {
                                extent: self.name.clone(),
                                index,
                                offset: base,
                                file_size: self.file_size(),
                            })
                        })?;
                    }
                    Grain::Compressed(base) => self.read_compressed(index, base, in_grain, part)?,
                }
                Ok(())
            },
        )
    }

    /// The compressed data of the grain whose entry points at `base`:
    /// `(file offset, length)`, checked against the file and the limit.
    pub(crate) fn compressed_range(&self, base: u64) -> Result<CompressedRange, GrainFault> {
        let size = self.file_size();
        let max = self.geo.grain_bytes.saturating_mul(MAX_COMPRESSED_GRAINS);
        if !self.header.markers() {
            let left =
                size.checked_sub(base)
                    .filter(|&l| l > 0)
                    .ok_or(GrainFault::DataPastEnd {
                        offset: base,
                        file_size: size,
                    })?;
            return Ok(CompressedRange {
                data: base,
                len: left.min(max),
                lba: None,
            });
        }
        let mut m = [0u8; 12];
        self.src
            .read_exact_at(base, &mut m)
            .map_err(|_| GrainFault::MarkerPastEnd {
                offset: base,
                file_size: size,
            })?;
        let (lba, len) = header::parse_grain_marker(&m).unwrap_or((0, 0));
        let len = u64::from(len);
        if len == 0 || len > max {
            return Err(GrainFault::MarkerSize {
                offset: base,
                len,
                max,
            });
        }
        let data = base.saturating_add(GRAIN_MARKER_LEN);
        if data.checked_add(len).is_none_or(|end| end > size) {
            return Err(GrainFault::MarkerPastEof {
                offset: base,
                len,
                file_size: size,
            });
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
        let corrupt = |fault: GrainFault| {
            ReadError::corrupt(ReadFault::CompressedGrain {
                extent: self.name.clone(),
                index,
                offset: base,
                fault,
            })
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
    pub(crate) fn verify_grain(&self, base: u64) -> Result<(), GrainFault> {
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
    pub(crate) fn inflate_grain(&self, base: u64) -> Result<Vec<u8>, GrainFault> {
        let r = self.compressed_range(base)?;
        let gb = usize::try_from(self.geo.grain_bytes).map_err(|_| GrainFault::GrainTooLarge)?;
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
) -> Result<usize, GrainFault> {
    let mut z = Decompress::new(true);
    let chunk = usize::try_from(len.min(INFLATE_CHUNK)).unwrap_or(0);
    let mut input = vec![0u8; chunk];
    let (mut in_pos, mut in_len) = (0usize, 0usize);
    let mut read_so_far = 0u64;
    let mut scratch = vec![0u8; usize::try_from(skip.min(INFLATE_CHUNK)).unwrap_or(0).max(1)];
    let mut written = 0usize;
    loop {
        if in_pos == in_len && read_so_far < len {
            let n = len.saturating_sub(read_so_far).min(INFLATE_CHUNK);
            let n = usize::try_from(n).unwrap_or(0);
            let dst = input.get_mut(..n).unwrap_or_default();
            src.read_exact_at(at.saturating_add(read_so_far), dst)
                .map_err(GrainFault::Read)?;
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
            let n = usize::try_from(skip.saturating_sub(produced))
                .map_or(scratch.len(), |s| s.min(scratch.len()));
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
            .map_err(GrainFault::Deflate)?;
        let used = usize::try_from(z.total_in().saturating_sub(in_before)).unwrap_or(0);
        let made = usize::try_from(z.total_out().saturating_sub(out_before)).unwrap_or(0);
        in_pos = in_pos.saturating_add(used).min(in_len);
        if probing && made > 0 {
            let limit = skip.saturating_add(u64::try_from(out.len()).unwrap_or(u64::MAX));
            return Err(GrainFault::TooLong { limit });
        }
        if produced >= skip && !probing {
            written = written.saturating_add(made);
        }
        if status == Status::StreamEnd {
            return Ok(written);
        }
        if used == 0 && made == 0 && in_pos == in_len && read_so_far >= len {
            return Err(GrainFault::EndsEarly { len });
        }
        if used == 0 && made == 0 && in_pos < in_len {
            return Err(GrainFault::NoProgress);
        }
    }
}
