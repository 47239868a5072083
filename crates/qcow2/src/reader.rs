//! Guest reads: L1 → L2 (cached) → data, zero, or compressed clusters.

use crate::header::{Geometry, COMPRESSION_ZSTD};
use crate::tables::{self, Cluster, Sub, L1E_OFFSET_MASK, SUBCLUSTERS};
use crate::Qcow2Image;
use preflight_disk::{check_guest_range, read_vec, ReadError};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Memory for cached L2 tables. 32 MiB of 64 KiB tables maps 256 GiB of
/// guest disk, so a sequential scan never reloads a table.
const L2_CACHE_BYTES: u64 = 32 << 20;
/// At least this many tables, whatever the cluster size (2 MiB clusters).
const L2_CACHE_MIN_TABLES: u64 = 4;
/// At most this many tables (small clusters): the eviction scan stays short.
const L2_CACHE_MAX_TABLES: u64 = 512;
/// Decompressed clusters kept, so that reads in small pieces do not inflate
/// the same cluster again and again (at most 4 × 2 MiB).
const INFLATED_CACHE: usize = 4;
/// Largest zstd window we let the decoder allocate. qemu compresses one
/// cluster (at most 2 MiB) per frame, so its windows are at most that.
const MAX_ZSTD_WINDOW: u64 = 8 << 20;

/// Small caches shared by concurrent readers.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    tick: u64,
    l2: HashMap<u64, (Arc<Vec<u8>>, u64)>,
    inflated: Vec<(u64, Arc<Vec<u8>>)>,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A panic while holding the lock cannot leave the maps inconsistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A run of guest bytes that is contiguous in the file too, read at once.
struct Pending {
    host: u64,
    at: usize,
    len: usize,
}

impl Qcow2Image {
    fn geo(&self) -> &Geometry {
        &self.parsed.geo
    }

    /// Why guest reads are impossible, if they are.
    fn unreadable(&self) -> Option<ReadError> {
        let h = &self.parsed.header;
        if h.crypt_method != crate::header::CRYPT_NONE {
            let how = self.info.encryption.as_deref().unwrap_or("unknown");
            return Some(ReadError::Unsupported(format!(
                "the image is encrypted ({how}); decrypt it first"
            )));
        }
        if h.incompatible_features & crate::header::INCOMPAT_DATA_FILE != 0 {
            return Some(ReadError::Unsupported(
                "the guest data live in an external data file".to_string(),
            ));
        }
        None
    }

    /// Reads guest bytes (see [`preflight_disk::BlockRead::read_at`]).
    pub(crate) fn read_guest(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        check_guest_range(offset, buf.len(), self.geo().virtual_size)?;
        if let Some(e) = self.unreadable() {
            return Err(e);
        }
        let l1 = self
            .l1
            .as_ref()
            .map_err(|e| ReadError::Corrupt(e.clone()))?;
        let geo = *self.geo();
        let cs = geo.cluster_size;
        let mut pending: Option<Pending> = None;
        let mut current: Option<(u64, Arc<Vec<u8>>)> = None;
        let mut pos: usize = 0;
        while pos < buf.len() {
            let guest = offset + pos as u64;
            let in_cluster = geo.offset_in_cluster(guest);
            let room = usize::try_from(cs - in_cluster).unwrap_or(usize::MAX);
            let n = room.min(buf.len() - pos);
            let gc = guest >> geo.cluster_bits;
            let l1_index = gc >> geo.l2_bits;
            let l2_index = gc & (geo.l2_entries() - 1);
            let l1e = usize::try_from(l1_index)
                .ok()
                .and_then(|i| l1.get(i))
                .copied()
                .unwrap_or(0);
            let l2_offset = l1e & L1E_OFFSET_MASK;
            if l2_offset == 0 {
                zero(buf, pos, n);
                pos += n;
                continue;
            }
            let table = match &current {
                Some((off, t)) if *off == l2_offset => Arc::clone(t),
                _ => {
                    let t = self.l2_table(l2_offset, l1_index)?;
                    current = Some((l2_offset, Arc::clone(&t)));
                    t
                }
            };
            let entry = tables::l2_entry(&geo, &table, l2_index);
            let cluster = tables::classify(&geo, entry);
            match cluster {
                Cluster::Unallocated | Cluster::ZeroPlain | Cluster::ZeroAlloc(_)
                    if !geo.extended_l2 =>
                {
                    zero(buf, pos, n)
                }
                Cluster::Compressed { offset: coff, size } => {
                    let data = self.inflate(coff, size, guest)?;
                    let src = usize::try_from(in_cluster)
                        .ok()
                        .and_then(|s| data.get(s..s.checked_add(n)?))
                        .ok_or_else(|| {
                            corrupt(format!("compressed cluster at {coff:#x} is short"))
                        })?;
                    let dst = buf
                        .get_mut(pos..pos + n)
                        .ok_or_else(|| corrupt("internal buffer error".to_string()))?;
                    dst.copy_from_slice(src);
                }
                Cluster::Normal(host) if !geo.extended_l2 => {
                    if geo.offset_in_cluster(host) != 0 {
                        return Err(corrupt(format!(
                            "L2 entry for guest offset {guest:#x} points at unaligned host \
                            offset {host:#x}"
                        )));
                    }
                    self.push_data(&mut pending, buf, host, host + in_cluster, pos, n)?;
                }
                _ => {
                    // Extended L2: walk the subclusters this piece touches.
                    if let Cluster::Normal(host) = cluster {
                        if geo.offset_in_cluster(host) != 0 {
                            return Err(corrupt(format!(
                                "L2 entry for guest offset {guest:#x} points at unaligned \
                                host offset {host:#x}"
                            )));
                        }
                    }
                    let sc_size = cs / SUBCLUSTERS;
                    let mut done: usize = 0;
                    while done < n {
                        let at = in_cluster + done as u64;
                        let sc = at / sc_size;
                        let sc_room = usize::try_from(sc_size - at % sc_size).unwrap_or(usize::MAX);
                        let m = sc_room.min(n - done);
                        match tables::subcluster(&geo, cluster, entry.bitmap, sc) {
                            Ok(Sub::Data(sc_host)) => {
                                let cluster_start = sc_host - sc * sc_size;
                                self.push_data(
                                    &mut pending,
                                    buf,
                                    cluster_start,
                                    sc_host + at % sc_size,
                                    pos + done,
                                    m,
                                )?;
                            }
                            Ok(Sub::Zero | Sub::Unallocated) => zero(buf, pos + done, m),
                            Err(why) => {
                                return Err(corrupt(format!(
                                    "L2 entry for guest offset {guest:#x}: {why} (bitmap {:#x})",
                                    entry.bitmap
                                )))
                            }
                        }
                        done += m;
                    }
                }
            }
            pos += n;
        }
        self.flush(&mut pending, buf)
    }

    /// The L2 table at `offset`, from the cache or the file.
    fn l2_table(&self, offset: u64, l1_index: u64) -> Result<Arc<Vec<u8>>, ReadError> {
        let geo = self.geo();
        if geo.offset_in_cluster(offset) != 0 {
            return Err(corrupt(format!(
                "L1 entry {l1_index} points at unaligned L2 table offset {offset:#x}"
            )));
        }
        {
            let mut c = self.cache.lock();
            c.tick += 1;
            let tick = c.tick;
            if let Some((t, used)) = c.l2.get_mut(&offset) {
                *used = tick;
                return Ok(Arc::clone(t));
            }
        }
        let table = read_vec(
            self.src.as_ref(),
            "L2 table",
            offset,
            geo.cluster_size,
            geo.cluster_size,
        )
        .map_err(|e| {
            corrupt(format!(
                "L1 entry {l1_index}: {}",
                preflight_disk::error_chain(&e)
            ))
        })?;
        let table = Arc::new(table);
        let cap =
            (L2_CACHE_BYTES / geo.cluster_size).clamp(L2_CACHE_MIN_TABLES, L2_CACHE_MAX_TABLES);
        let mut c = self.cache.lock();
        if c.l2.len() as u64 >= cap {
            if let Some(oldest) =
                c.l2.iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| *k)
            {
                c.l2.remove(&oldest);
            }
        }
        let tick = c.tick;
        c.l2.insert(offset, (Arc::clone(&table), tick));
        Ok(table)
    }

    /// Queues `len` bytes of file at `host` for `buf[at..]`, merging with the
    /// previous piece when both are contiguous. `cluster_start` is the host
    /// cluster the bytes belong to, named when it lies past the end of the
    /// file.
    fn push_data(
        &self,
        pending: &mut Option<Pending>,
        buf: &mut [u8],
        cluster_start: u64,
        host: u64,
        at: usize,
        len: usize,
    ) -> Result<(), ReadError> {
        let file_size = self.geo().file_size;
        if cluster_start >= file_size {
            return Err(corrupt(format!(
                "data cluster at host offset {cluster_start:#x} is past the end of the file \
                ({file_size} bytes)"
            )));
        }
        if let Some(p) = pending.as_mut() {
            if p.host.checked_add(p.len as u64) == Some(host) && p.at + p.len == at {
                p.len += len;
                return Ok(());
            }
        }
        self.flush(pending, buf)?;
        *pending = Some(Pending { host, at, len });
        Ok(())
    }

    fn flush(&self, pending: &mut Option<Pending>, buf: &mut [u8]) -> Result<(), ReadError> {
        let Some(p) = pending.take() else {
            return Ok(());
        };
        let dst = buf
            .get_mut(p.at..p.at.saturating_add(p.len))
            .ok_or_else(|| corrupt("internal buffer error".to_string()))?;
        // qemu writes whole clusters (with extended L2, whole subclusters),
        // so guest data past the end of the file means the file was cut.
        let file_size = self.geo().file_size;
        let end = p.host.saturating_add(p.len as u64);
        if end > file_size {
            return Err(corrupt(format!(
                "guest data at host offset {:#x}..{end:#x} pass the end of the file ({file_size} \
                bytes): the file is truncated",
                p.host
            )));
        }
        self.src.read_exact_at(p.host, dst)?;
        Ok(())
    }

    /// The decompressed cluster whose data start at host byte `coff`.
    fn inflate(&self, coff: u64, size: u64, guest: u64) -> Result<Arc<Vec<u8>>, ReadError> {
        {
            let c = self.cache.lock();
            if let Some((_, d)) = c.inflated.iter().find(|(k, _)| *k == coff) {
                return Ok(Arc::clone(d));
            }
        }
        let geo = self.geo();
        if coff >= geo.file_size {
            return Err(corrupt(format!(
                "compressed cluster for guest offset {guest:#x} starts at {coff:#x}, past the end \
                of the file ({} bytes)",
                geo.file_size
            )));
        }
        // The descriptor rounds up to whole sectors; the last compressed
        // cluster of a file may end before that.
        let len = size.min(geo.file_size - coff);
        let input = read_vec(
            self.src.as_ref(),
            "compressed cluster",
            coff,
            len,
            2 * geo.cluster_size,
        )
        .map_err(|e| corrupt(preflight_disk::error_chain(&e)))?;
        let out = decompress(
            &input,
            geo.cluster_size,
            self.parsed.header.compression_type == COMPRESSION_ZSTD,
        )
        .map_err(|why| {
            corrupt(format!(
                "compressed cluster at {coff:#x} (guest offset {guest:#x}) does not \
                decompress: {why}"
            ))
        })?;
        let out = Arc::new(out);
        let mut c = self.cache.lock();
        if c.inflated.len() >= INFLATED_CACHE {
            c.inflated.remove(0);
        }
        c.inflated.push((coff, Arc::clone(&out)));
        Ok(out)
    }
}

/// Inflates one cluster: zlib clusters are raw deflate streams, zstd
/// clusters one zstd frame. The output must fill the cluster exactly, as
/// qemu requires; trailing input (sector padding) is ignored.
pub(crate) fn decompress(input: &[u8], cluster_size: u64, zstd: bool) -> Result<Vec<u8>, String> {
    let n = usize::try_from(cluster_size).map_err(|_| "cluster too big".to_string())?;
    let mut out = vec![0u8; n];
    if zstd {
        let window = zstd_window(input)?;
        if window > MAX_ZSTD_WINDOW {
            return Err(format!(
                "zstd window is {window} bytes; at most {MAX_ZSTD_WINDOW} are accepted"
            ));
        }
        let mut src = input;
        let mut dec =
            ruzstd::decoding::StreamingDecoder::new(&mut src).map_err(|e| e.to_string())?;
        std::io::Read::read_exact(&mut dec, &mut out).map_err(|e| e.to_string())?;
    } else {
        let mut d = flate2::Decompress::new(false);
        d.decompress(input, &mut out, flate2::FlushDecompress::Finish)
            .map_err(|e| e.to_string())?;
        if d.total_out() != cluster_size {
            return Err(format!(
                "deflate stream gives {} bytes, not the {cluster_size} of a cluster",
                d.total_out()
            ));
        }
    }
    Ok(out)
}

/// The window size a zstd frame header asks for (RFC 8878 §3.1.1.1).
fn zstd_window(input: &[u8]) -> Result<u64, String> {
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    if input.get(..4) != Some(&MAGIC[..]) {
        return Err("no zstd frame magic".to_string());
    }
    let fhd = *input.get(4).ok_or("zstd frame header cut short")?;
    let single_segment = fhd & 0x20 != 0;
    if !single_segment {
        let wd = *input.get(5).ok_or("zstd frame header cut short")?;
        let log = 10 + u64::from(wd >> 3);
        if log > 41 {
            return Err(format!("zstd window log {log} is invalid"));
        }
        let base = 1u64 << log;
        return Ok(base + (base / 8) * u64::from(wd & 7));
    }
    let dict_len = match fhd & 3 {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 4,
    };
    let fcs_len = match fhd >> 6 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let start = 5 + dict_len;
    let bytes = input
        .get(start..start + fcs_len)
        .ok_or("zstd frame header cut short")?;
    let mut v = bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if fcs_len == 2 {
        v += 256;
    }
    Ok(v)
}

fn zero(buf: &mut [u8], at: usize, len: usize) {
    if let Some(d) = buf.get_mut(at..at.saturating_add(len)) {
        d.fill(0);
    }
}

fn corrupt(msg: String) -> ReadError {
    ReadError::Corrupt(msg)
}
