//! Guest reads: L1 → L2 (cached) → data, zero, or compressed clusters.

use crate::header::{Geometry, COMPRESSION_ZSTD};
use crate::tables::{self, Cluster, Sub, L1E_OFFSET_MASK, SUBCLUSTERS};
use crate::Qcow2Image;
use preflight_disk::{
    check_guest_range, error_chain, read_vec, BoundsError, ReadError, Unreadable,
};

/// Why a guest read of an opened qcow2 image failed: the structure and the offending values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadFault {
    /// The active L1 table passes the end of the file.
    #[error("the active L1 table ({len} bytes at {offset:#x}) passes the end of the file ({file_size} bytes)")]
    L1PastEnd {
        /// Bytes of the table.
        len: u64,
        /// Its file offset.
        offset: u64,
        /// Size of the file.
        file_size: u64,
    },
    /// An L1 entry points at an L2 table that is not cluster-aligned.
    #[error("L1 entry {l1_index} points at unaligned L2 table offset {offset:#x}")]
    UnalignedL2 {
        /// L1 index.
        l1_index: u64,
        /// The L2 table offset.
        offset: u64,
    },
    /// An L2 table cannot be read (the cause is part of the text: this is a payload, not a
    /// source, so it is printed once).
    #[error("L1 entry {l1_index}: {}", error_chain(.cause))]
    L2Table {
        /// L1 index.
        l1_index: u64,
        /// Why the table cannot be read.
        cause: BoundsError,
    },
    /// An L2 entry points at a data cluster that is not cluster-aligned.
    #[error("L2 entry for guest offset {guest:#x} points at unaligned host offset {host:#x}")]
    UnalignedData {
        /// Guest offset read.
        guest: u64,
        /// The host offset in the entry.
        host: u64,
    },
    /// An extended L2 entry's subcluster bitmap is invalid.
    #[error("L2 entry for guest offset {guest:#x}: {why} (bitmap {bitmap:#x})")]
    Bitmap {
        /// Guest offset read.
        guest: u64,
        /// What is wrong with the bitmap.
        why: &'static str,
        /// The bitmap.
        bitmap: u64,
    },
    /// A data cluster starts past the end of the file.
    #[error(
        "data cluster at host offset {cluster:#x} is past the end of the file ({file_size} bytes)"
    )]
    DataPastEnd {
        /// Host offset of the cluster.
        cluster: u64,
        /// Size of the file.
        file_size: u64,
    },
    /// Guest data run past the end of the file: it was cut.
    #[error("guest data at host offset {start:#x}..{end:#x} pass the end of the file ({file_size} bytes): the file is truncated")]
    Truncated {
        /// First host byte.
        start: u64,
        /// One past the last.
        end: u64,
        /// Size of the file.
        file_size: u64,
    },
    /// A compressed cluster starts past the end of the file.
    #[error("compressed cluster for guest offset {guest:#x} starts at {offset:#x}, past the end of the file ({file_size} bytes)")]
    CompressedPastEnd {
        /// Guest offset read.
        guest: u64,
        /// Host offset of the compressed data.
        offset: u64,
        /// Size of the file.
        file_size: u64,
    },
    /// A compressed cluster cannot be read (the cause is part of the text, printed once).
    #[error("{}", error_chain(.0))]
    CompressedRead(BoundsError),
    /// A compressed cluster does not decompress to a whole cluster.
    #[error(
        "compressed cluster at {offset:#x} (guest offset {guest:#x}) does not decompress: {why}"
    )]
    Decompress {
        /// Host offset of the compressed data.
        offset: u64,
        /// Guest offset read.
        guest: u64,
        /// The decoder's complaint (part of the text, printed once).
        why: DecompressFault,
    },
    /// A piece of the caller's buffer the reader computed is not inside it (a reader bug,
    /// reported rather than panicking).
    #[error("internal buffer error")]
    Buffer,
    /// A decompressed cluster is shorter than the bytes asked of it.
    #[error("compressed cluster at {offset:#x} is short")]
    CompressedShort {
        /// Host offset of the compressed data.
        offset: u64,
    },
}

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

    /// The fault of an active L1 table that passes the end of the file (why `l1` is `None`).
    pub(crate) fn l1_past_end(&self) -> ReadFault {
        let h = &self.parsed.header;
        ReadFault::L1PastEnd {
            len: u64::from(h.l1_size).saturating_mul(8),
            offset: h.l1_table_offset,
            file_size: self.geo().file_size,
        }
    }

    /// Why guest reads are impossible, if they are.
    fn unreadable(&self) -> Option<ReadError> {
        let h = &self.parsed.header;
        if h.crypt_method != crate::header::CRYPT_NONE {
            let how = match h.crypt_method {
                crate::header::CRYPT_AES => "aes",
                crate::header::CRYPT_LUKS => "luks",
                _ => "unknown",
            };
            return Some(ReadError::Unsupported(Unreadable::Encrypted {
                method: how,
            }));
        }
        if h.incompatible_features & crate::header::INCOMPAT_DATA_FILE != 0 {
            return Some(ReadError::Unsupported(Unreadable::ExternalDataFile));
        }
        None
    }

    /// Reads guest bytes (see [`preflight_disk::BlockRead::read_at`]).
    pub(crate) fn read_guest(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        check_guest_range(offset, buf.len(), self.geo().virtual_size)?;
        if let Some(e) = self.unreadable() {
            return Err(e);
        }
        let Some(l1) = self.l1.as_ref() else {
            return Err(corrupt(self.l1_past_end()));
        };
        let geo = *self.geo();
        let cs = geo.cluster_size;
        let mut pending: Option<Pending> = None;
        let mut current: Option<(u64, Arc<Vec<u8>>)> = None;
        let mut pos: usize = 0;
        while pos < buf.len() {
            // check_guest_range keeps offset + buf.len() inside the disk.
            let guest = offset.saturating_add(len64(pos));
            let in_cluster = geo.offset_in_cluster(guest);
            let room = usize::try_from(cs.saturating_sub(in_cluster)).unwrap_or(usize::MAX);
            let n = room.min(buf.len().saturating_sub(pos));
            let gc = guest.checked_shr(geo.cluster_bits).unwrap_or(0);
            let l1_index = gc.checked_shr(geo.l2_bits).unwrap_or(0);
            let l2_index = gc & geo.l2_entries().saturating_sub(1);
            let l1e = usize::try_from(l1_index)
                .ok()
                .and_then(|i| l1.get(i))
                .copied()
                .unwrap_or(0);
            let l2_offset = l1e & L1E_OFFSET_MASK;
            if l2_offset == 0 {
                zero(buf, pos, n);
                pos = pos.saturating_add(n);
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
                        .ok_or_else(|| corrupt(ReadFault::CompressedShort { offset: coff }))?;
                    let dst = buf
                        .get_mut(pos..pos.saturating_add(n))
                        .ok_or_else(|| corrupt(ReadFault::Buffer))?;
                    dst.copy_from_slice(src);
                }
                Cluster::Normal(host) if !geo.extended_l2 => {
                    if geo.offset_in_cluster(host) != 0 {
                        return Err(corrupt(ReadFault::UnalignedData { guest, host }));
                    }
                    let at = host.saturating_add(in_cluster);
                    self.push_data(&mut pending, buf, host, at, pos, n)?;
                }
                _ => {
                    // Extended L2: walk the subclusters this piece touches.
                    if let Cluster::Normal(host) = cluster {
                        if geo.offset_in_cluster(host) != 0 {
                            return Err(corrupt(ReadFault::UnalignedData { guest, host }));
                        }
                    }
                    // Extended L2 needs clusters of at least 16 KiB, so this is >= 512.
                    let sc_size = (cs / SUBCLUSTERS).max(1);
                    let mut done: usize = 0;
                    while done < n {
                        let at = in_cluster.saturating_add(len64(done));
                        let sc = at.checked_div(sc_size).unwrap_or(0);
                        let in_sc = at.checked_rem(sc_size).unwrap_or(0);
                        let sc_room =
                            usize::try_from(sc_size.saturating_sub(in_sc)).unwrap_or(usize::MAX);
                        let m = sc_room.min(n.saturating_sub(done));
                        match tables::subcluster(&geo, cluster, entry.bitmap, sc) {
                            Ok(Sub::Data(sc_host)) => {
                                let cluster_start =
                                    sc_host.saturating_sub(sc.saturating_mul(sc_size));
                                self.push_data(
                                    &mut pending,
                                    buf,
                                    cluster_start,
                                    sc_host.saturating_add(in_sc),
                                    pos.saturating_add(done),
                                    m,
                                )?;
                            }
                            Ok(Sub::Zero | Sub::Unallocated) => {
                                zero(buf, pos.saturating_add(done), m)
                            }
                            Err(why) => {
                                return Err(corrupt(ReadFault::Bitmap {
                                    guest,
                                    why,
                                    bitmap: entry.bitmap,
                                }))
                            }
                        }
                        done = done.saturating_add(m);
                    }
                }
            }
            pos = pos.saturating_add(n);
        }
        self.flush(&mut pending, buf)
    }

    /// The L2 table at `offset`, from the cache or the file.
    fn l2_table(&self, offset: u64, l1_index: u64) -> Result<Arc<Vec<u8>>, ReadError> {
        let geo = self.geo();
        if geo.offset_in_cluster(offset) != 0 {
            return Err(corrupt(ReadFault::UnalignedL2 { l1_index, offset }));
        }
        {
            let mut c = self.cache.lock();
            c.tick = c.tick.saturating_add(1);
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
        .map_err(|cause| corrupt(ReadFault::L2Table { l1_index, cause }))?;
        let table = Arc::new(table);
        let cap = L2_CACHE_BYTES
            .checked_div(geo.cluster_size)
            .unwrap_or(0)
            .clamp(L2_CACHE_MIN_TABLES, L2_CACHE_MAX_TABLES);
        let mut c = self.cache.lock();
        if len64(c.l2.len()) >= cap {
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
            return Err(corrupt(ReadFault::DataPastEnd {
                cluster: cluster_start,
                file_size,
            }));
        }
        if let Some(p) = pending.as_mut() {
            if p.host.checked_add(len64(p.len)) == Some(host) && p.at.checked_add(p.len) == Some(at)
            {
                p.len = p.len.saturating_add(len);
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
            .ok_or_else(|| corrupt(ReadFault::Buffer))?;
        // qemu writes whole clusters (with extended L2, whole subclusters),
        // so guest data past the end of the file means the file was cut.
        let file_size = self.geo().file_size;
        let end = p.host.saturating_add(len64(p.len));
        if end > file_size {
            return Err(corrupt(ReadFault::Truncated {
                start: p.host,
                end,
                file_size,
            }));
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
            return Err(corrupt(ReadFault::CompressedPastEnd {
                guest,
                offset: coff,
                file_size: geo.file_size,
            }));
        }
        // The descriptor rounds up to whole sectors; the last compressed
        // cluster of a file may end before that.
        let len = size.min(geo.file_size.saturating_sub(coff));
        let input = read_vec(
            self.src.as_ref(),
            "compressed cluster",
            coff,
            len,
            geo.cluster_size.saturating_mul(2),
        )
        .map_err(|e| corrupt(ReadFault::CompressedRead(e)))?;
        let out = decompress(
            &input,
            geo.cluster_size,
            self.parsed.header.compression_type == COMPRESSION_ZSTD,
        )
        .map_err(|why| {
            corrupt(ReadFault::Decompress {
                offset: coff,
                guest,
                why,
            })
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

/// Why a compressed cluster does not decompress to a whole cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecompressFault {
    /// The cluster size does not fit this machine's memory space.
    #[error("cluster too big")]
    ClusterTooBig(u64),
    /// A zstd frame asks for a window larger than qemu's clusters need.
    #[error("zstd window is {window} bytes; at most {max} are accepted")]
    ZstdWindow {
        /// The window the frame asks for.
        window: u64,
        /// The largest accepted.
        max: u64,
    },
    /// The data do not start with a zstd frame.
    #[error("no zstd frame magic")]
    NoZstdMagic,
    /// The data end inside the zstd frame header.
    #[error("zstd frame header cut short")]
    ZstdHeaderShort,
    /// The frame header's window log is out of range.
    #[error("zstd window log {0} is invalid")]
    ZstdWindowLog(u32),
    /// The zstd decoder refused the frame (its text is the payload's, printed once).
    #[error("{0}")]
    ZstdFrame(ruzstd::decoding::errors::FrameDecoderError),
    /// The zstd data end or fail before a whole cluster.
    #[error("{0}")]
    ZstdData(std::io::Error),
    /// The deflate decoder refused the data.
    #[error("{0}")]
    Deflate(flate2::DecompressError),
    /// The deflate stream gives another size than a cluster.
    #[error("deflate stream gives {got} bytes, not the {want} of a cluster")]
    DeflateSize {
        /// Bytes the stream gives.
        got: u64,
        /// The cluster size.
        want: u64,
    },
}

/// Inflates one cluster: zlib clusters are raw deflate streams, zstd
/// clusters one zstd frame. The output must fill the cluster exactly, as
/// qemu requires; trailing input (sector padding) is ignored.
pub(crate) fn decompress(
    input: &[u8],
    cluster_size: u64,
    zstd: bool,
) -> Result<Vec<u8>, DecompressFault> {
    let n =
        usize::try_from(cluster_size).map_err(|_| DecompressFault::ClusterTooBig(cluster_size))?;
    let mut out = vec![0u8; n];
    if zstd {
        let window = zstd_window(input)?;
        if window > MAX_ZSTD_WINDOW {
            return Err(DecompressFault::ZstdWindow {
                window,
                max: MAX_ZSTD_WINDOW,
            });
        }
        let mut src = input;
        let mut dec = ruzstd::decoding::StreamingDecoder::new(&mut src)
            .map_err(DecompressFault::ZstdFrame)?;
        std::io::Read::read_exact(&mut dec, &mut out).map_err(DecompressFault::ZstdData)?;
    } else {
        let mut d = flate2::Decompress::new(false);
        d.decompress(input, &mut out, flate2::FlushDecompress::Finish)
            .map_err(DecompressFault::Deflate)?;
        if d.total_out() != cluster_size {
            return Err(DecompressFault::DeflateSize {
                got: d.total_out(),
                want: cluster_size,
            });
        }
    }
    Ok(out)
}

/// The window size a zstd frame header asks for (RFC 8878 §3.1.1.1).
fn zstd_window(input: &[u8]) -> Result<u64, DecompressFault> {
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    if input.get(..4) != Some(&MAGIC[..]) {
        return Err(DecompressFault::NoZstdMagic);
    }
    let fhd = *input.get(4).ok_or(DecompressFault::ZstdHeaderShort)?;
    let single_segment = fhd & 0x20 != 0;
    if !single_segment {
        let wd = *input.get(5).ok_or(DecompressFault::ZstdHeaderShort)?;
        // Exponent 10 plus the descriptor's top five bits; mantissa its low three.
        let log = u32::from(wd >> 3).saturating_add(10);
        if log > 41 {
            return Err(DecompressFault::ZstdWindowLog(log));
        }
        let base = 1u64.checked_shl(log).unwrap_or(u64::MAX);
        return Ok(base.saturating_add((base / 8).saturating_mul(u64::from(wd & 7))));
    }
    // The frame content size follows the descriptor and the dictionary ID.
    let start: usize = match fhd & 3 {
        0 => 5,
        1 => 6,
        2 => 7,
        _ => 9,
    };
    let fcs_len: usize = match fhd >> 6 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let bytes = input
        .get(start..start.saturating_add(fcs_len))
        .ok_or(DecompressFault::ZstdHeaderShort)?;
    let mut le = [0u8; 8];
    if let Some(dst) = le.get_mut(..bytes.len()) {
        dst.copy_from_slice(bytes);
    }
    let v = u64::from_le_bytes(le);
    // A two-byte size is stored less 256.
    Ok(if fcs_len == 2 {
        v.saturating_add(256)
    } else {
        v
    })
}

/// `n` as a byte count in a file or disk (saturating: a `usize` never exceeds `u64` on the
/// targets we build for).
fn len64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn zero(buf: &mut [u8], at: usize, len: usize) {
    if let Some(d) = buf.get_mut(at..at.saturating_add(len)) {
        d.fill(0);
    }
}

fn corrupt(fault: ReadFault) -> ReadError {
    ReadError::corrupt(fault)
}
