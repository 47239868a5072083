//! Streams a qcow2 v3 image holding only the non-zero clusters of a guest
//! disk, with no temporary file.
//!
//! 1. [`map_clusters`] reads the whole disk once (in parallel) and records
//!    which clusters are not all zero.
//! 2. [`Qcow2Layout::new`] computes the file layout from that map: header at
//!    cluster 0, then the L1 table, the refcount table, the refcount blocks,
//!    the L2 tables and the data clusters, each cluster aligned.
//! 3. [`Qcow2Layout::read_at`] produces the bytes of the output file at any
//!    offset, deterministically: metadata is computed on the fly and data
//!    clusters are read from the source disk. A resumed multipart upload can
//!    therefore regenerate exactly the parts it needs.
//!
//! The header's virtual size is the disk size rounded up to 512 bytes (qemu
//! floors a qcow2's size to whole sectors). The output is qcow2 version 3, header_length 104, no incompatible
//! features, 16-bit refcounts, every used cluster with refcount 1 and the
//! COPIED bit set in L1 and L2 entries.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use preflight_disk::{BlockRead, ReadError};
use rayon::prelude::*;

/// Version of the output layout. Bumped whenever the bytes produced for a
/// given map change, so a resumed upload never mixes parts of two layouts.
pub const LAYOUT_VERSION: u32 = 1;

/// Default cluster size: 64 KiB (cluster_bits 16), as qemu-img uses.
pub const DEFAULT_CLUSTER_SIZE: u64 = 65536;

/// Clusters read per parallel task in [`map_clusters`] (bounded by 4 MiB).
const MAP_CHUNK_BYTES: u64 = 4 << 20;

/// COPIED flag of L1 and L2 entries (refcount is exactly 1).
const COPIED: u64 = 1 << 63;

/// Refcount width: refcount_order 4 means 16-bit refcounts.
const REFCOUNT_ORDER: u32 = 4;

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The cluster size is not a power of two between 512 B and 2 MiB.
    #[error("cluster size {0} is not a power of two between 512 and 2097152")]
    ClusterSize(u64),
    /// The virtual size does not fit the layout arithmetic.
    #[error("virtual size {0} is too large")]
    TooLarge(u64),
    /// The request reaches past the end of the output file.
    #[error("read of {len} bytes at offset {offset} is past the end of the qcow2 ({size} bytes)")]
    OutOfRange {
        /// Offset asked for.
        offset: u64,
        /// Bytes asked for.
        len: u64,
        /// Size of the output file.
        size: u64,
    },
    /// The source disk's size differs from the map's.
    #[error("source disk is {actual} bytes but the cluster map was made for {expected}")]
    SizeMismatch {
        /// Virtual size in the map.
        expected: u64,
        /// Size of the source given.
        actual: u64,
    },
    /// Reading the source disk failed (the read error is the source, printed once by
    /// [`preflight_disk::error_chain`]).
    #[error("reading the source disk")]
    Read(#[from] ReadError),
}

/// Which clusters of a guest disk hold non-zero bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMap {
    cluster_size: u64,
    virtual_size: u64,
    /// Indices of non-zero clusters, sorted, unique.
    data: Vec<u64>,
}

impl ClusterMap {
    /// A map from its parts. `data` is sorted and deduplicated here; indices
    /// past the disk are dropped.
    pub fn new(
        cluster_size: u64,
        virtual_size: u64,
        mut data: Vec<u64>,
    ) -> Result<Self, ConvertError> {
        check_cluster_size(cluster_size)?;
        let n = virtual_size.div_ceil(cluster_size);
        data.sort_unstable();
        data.dedup();
        data.retain(|&c| c < n);
        Ok(ClusterMap {
            cluster_size,
            virtual_size,
            data,
        })
    }

    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        self.cluster_size
    }

    /// Size of the guest disk in bytes.
    pub fn virtual_size(&self) -> u64 {
        self.virtual_size
    }

    /// Indices of the non-zero clusters, sorted.
    pub fn data_clusters(&self) -> &[u64] {
        &self.data
    }

    /// Bytes of guest data that will be stored (non-zero clusters).
    pub fn data_bytes(&self) -> u64 {
        self.data.len() as u64 * self.cluster_size
    }

    /// Number of guest clusters (the last one may be partial).
    pub fn guest_clusters(&self) -> u64 {
        self.virtual_size.div_ceil(self.cluster_size)
    }
}

fn check_cluster_size(cs: u64) -> Result<(), ConvertError> {
    if cs.is_power_of_two() && (512..=2 << 20).contains(&cs) {
        Ok(())
    } else {
        Err(ConvertError::ClusterSize(cs))
    }
}

fn usize_of(v: u64) -> usize {
    // Only called on values bounded by the cluster size (≤ 2 MiB) or a
    // buffer length, so this cannot fail on 32- or 64-bit targets.
    usize::try_from(v).expect("value bounded by the cluster size or a buffer length")
}

/// Reads every cluster of `src` (in parallel) and keeps those that are not
/// all zero. Stretches the source reports as holes
/// ([`BlockRead::next_data`], e.g. `SEEK_HOLE` on a sparse RAW file) are
/// not read at all.
pub fn map_clusters(src: &dyn BlockRead, cluster_size: u64) -> Result<ClusterMap, ConvertError> {
    map_clusters_with_progress(src, cluster_size, &|_| {})
}

/// [`map_clusters`], calling `progress` with the number of bytes just
/// scanned (from several threads; the sum reaches the bytes that may hold
/// data, not the virtual size).
pub fn map_clusters_with_progress(
    src: &dyn BlockRead,
    cluster_size: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ClusterMap, ConvertError> {
    check_cluster_size(cluster_size)?;
    let size = src.size();
    let chunks = data_chunks(src, cluster_size)?;
    let parts: Vec<Vec<u64>> = chunks
        .into_par_iter()
        .map(|(start, end)| -> Result<Vec<u64>, ConvertError> {
            let mut buf = vec![0u8; usize_of(end - start)];
            src.read_at(start, &mut buf)?;
            progress(end - start);
            Ok(buf
                .chunks(usize_of(cluster_size))
                .zip(start / cluster_size..)
                .filter(|(c, _)| c.iter().any(|&b| b != 0))
                .map(|(_, i)| i)
                .collect())
        })
        .collect::<Result<_, _>>()?;
    Ok(ClusterMap {
        cluster_size,
        virtual_size: size,
        data: parts.into_iter().flatten().collect(),
    })
}

/// The byte ranges to scan: the source's data stretches widened to whole
/// clusters, in order, without overlap, cut into pieces of at most
/// [`MAP_CHUNK_BYTES`] (and at least one cluster).
fn data_chunks(src: &dyn BlockRead, cs: u64) -> Result<Vec<(u64, u64)>, ConvertError> {
    let size = src.size();
    let per_chunk = (MAP_CHUNK_BYTES / cs).max(1) * cs;
    let mut chunks = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let (start, end) = match src.next_data(pos)? {
            None => break,
            Some((start, _)) if start >= size => break,
            // A hint that goes backwards or is empty is not trusted: scan the rest.
            Some((start, end)) if start < pos || end <= start => (pos, size),
            Some(stretch) => stretch,
        };
        let start = start / cs * cs;
        let end = end.min(size).div_ceil(cs).saturating_mul(cs).min(size);
        let mut at = start;
        while at < end {
            let next = (at + per_chunk).min(end);
            chunks.push((at, next));
            at = next;
        }
        // `end` (> `pos`) is a cluster boundary or the disk's end, so the
        // next stretch starts at or after a boundary: no cluster is scanned twice.
        pos = end;
    }
    Ok(chunks)
}

/// Where everything goes in the output qcow2. All positions are in clusters.
#[derive(Debug, Clone)]
pub struct Qcow2Layout {
    map: ClusterMap,
    /// Entries in the L1 table.
    l1_size: u64,
    /// L1 indices that have an L2 table, sorted; the L2 of `l2_used[p]` is
    /// cluster `l2_start + p`.
    l2_used: Vec<u64>,
    l1_start: u64,
    rt_start: u64,
    rt_clusters: u64,
    rb_start: u64,
    rb_clusters: u64,
    l2_start: u64,
    data_start: u64,
    total_clusters: u64,
}

impl Qcow2Layout {
    /// Computes the layout for `map`.
    pub fn new(map: &ClusterMap) -> Result<Self, ConvertError> {
        let cs = map.cluster_size;
        check_cluster_size(cs)?;
        let too_large = || ConvertError::TooLarge(map.virtual_size);
        // qemu's limit is 32 MiB of L1 table; keep far from overflow.
        if map.virtual_size > (1u64 << 56) - 512 {
            return Err(too_large());
        }
        let l2_entries = cs / 8;
        let l1_size = map.guest_clusters().div_ceil(l2_entries);
        if l1_size > u64::from(u32::MAX) {
            return Err(too_large());
        }
        let mut l2_used: Vec<u64> = map.data.iter().map(|&g| g / l2_entries).collect();
        l2_used.dedup();
        // An empty disk has no L1 table (offset 0), as qemu-img creates it.
        let l1_clusters = (l1_size * 8).div_ceil(cs);
        let fixed = 1 + l1_clusters + l2_used.len() as u64 + map.data.len() as u64;
        let rb_entries = cs * 8 / (1 << REFCOUNT_ORDER);
        let (mut rt_clusters, mut rb_clusters) = (1u64, 1u64);
        loop {
            let total = fixed + rt_clusters + rb_clusters;
            let rb = total.div_ceil(rb_entries).max(1);
            let rt = (rb * 8).div_ceil(cs).max(1);
            if rb == rb_clusters && rt == rt_clusters {
                break;
            }
            rb_clusters = rb_clusters.max(rb);
            rt_clusters = rt_clusters.max(rt);
        }
        let l1_start = 1;
        let rt_start = l1_start + l1_clusters;
        let rb_start = rt_start + rt_clusters;
        let l2_start = rb_start + rb_clusters;
        let data_start = l2_start + l2_used.len() as u64;
        let total_clusters = data_start + map.data.len() as u64;
        if rt_clusters > u64::from(u32::MAX) {
            return Err(too_large());
        }
        Ok(Qcow2Layout {
            map: map.clone(),
            l1_size,
            l2_used,
            l1_start,
            rt_start,
            rt_clusters,
            rb_start,
            rb_clusters,
            l2_start,
            data_start,
            total_clusters,
        })
    }

    /// Size of the output qcow2 file in bytes.
    pub fn file_size(&self) -> u64 {
        self.total_clusters * self.map.cluster_size
    }

    /// The virtual size written in the header: the disk size rounded up to a
    /// multiple of 512 (qemu ignores a partial last sector of a qcow2).
    pub fn qcow2_virtual_size(&self) -> u64 {
        self.map.virtual_size.div_ceil(512) * 512
    }

    /// Bytes of metadata (header, tables) at the start of the file; the data
    /// clusters follow, in guest order.
    pub fn metadata_bytes(&self) -> u64 {
        self.data_start * self.map.cluster_size
    }

    /// The cluster map this layout was made from.
    pub fn map(&self) -> &ClusterMap {
        &self.map
    }

    /// Fills `buf` with the bytes of the output qcow2 starting at `offset`.
    /// Data clusters are read from `src`, which must be the disk the map was
    /// made from.
    pub fn read_at(
        &self,
        src: &dyn BlockRead,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), ConvertError> {
        let len = buf.len() as u64;
        let size = self.file_size();
        match offset.checked_add(len) {
            Some(end) if end <= size => {}
            _ => return Err(ConvertError::OutOfRange { offset, len, size }),
        }
        if src.size() != self.map.virtual_size {
            return Err(ConvertError::SizeMismatch {
                expected: self.map.virtual_size,
                actual: src.size(),
            });
        }
        let cs = self.map.cluster_size;
        let mut scratch = Vec::new();
        let mut done = 0u64;
        while done < len {
            let pos = offset + done;
            let cluster = pos / cs;
            let within = pos % cs;
            let mut n = (cs - within).min(len - done);
            if cluster >= self.data_start {
                let q = usize_of(cluster - self.data_start);
                let first = self.map.data[q];
                // Output clusters whose guest clusters follow each other are read with one
                // call: a run of data is one pread, not one per cluster.
                let mut run = 1;
                while done + n < len && self.map.data.get(q + run) == Some(&(first + run as u64)) {
                    n += cs.min(len - done - n);
                    run += 1;
                }
                let out = &mut buf[usize_of(done)..usize_of(done + n)];
                self.read_data(src, first, within, out)?;
            } else {
                let out = &mut buf[usize_of(done)..usize_of(done + n)];
                scratch.resize(usize_of(cs), 0);
                self.metadata_cluster(cluster, &mut scratch);
                out.copy_from_slice(&scratch[usize_of(within)..usize_of(within + n)]);
            }
            done += n;
        }
        Ok(())
    }

    /// Reads bytes `within..within+out.len()` of guest cluster `guest`,
    /// zero-filling past the end of the disk.
    fn read_data(
        &self,
        src: &dyn BlockRead,
        guest: u64,
        within: u64,
        out: &mut [u8],
    ) -> Result<(), ConvertError> {
        let start = guest * self.map.cluster_size + within;
        let avail = self
            .map
            .virtual_size
            .saturating_sub(start)
            .min(out.len() as u64);
        let (head, tail) = out.split_at_mut(usize_of(avail));
        src.read_at(start, head)?;
        tail.fill(0);
        Ok(())
    }

    /// Writes metadata cluster `cluster` (below `data_start`) into `out`,
    /// which is one cluster long.
    fn metadata_cluster(&self, cluster: u64, out: &mut [u8]) {
        out.fill(0);
        let cs = self.map.cluster_size;
        let per = usize_of(cs / 8);
        let put = |out: &mut [u8], i: usize, v: u64| {
            out[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes())
        };
        if cluster == 0 {
            self.header(out);
        } else if cluster < self.rt_start {
            // L1 table.
            let first = (cluster - self.l1_start) * cs / 8;
            for i in 0..per {
                let l1 = first + i as u64;
                if l1 >= self.l1_size {
                    break;
                }
                if let Ok(p) = self.l2_used.binary_search(&l1) {
                    put(out, i, ((self.l2_start + p as u64) * cs) | COPIED);
                }
            }
        } else if cluster < self.rb_start {
            // Refcount table.
            let first = (cluster - self.rt_start) * cs / 8;
            for i in 0..per {
                let j = first + i as u64;
                if j >= self.rb_clusters {
                    break;
                }
                put(out, i, (self.rb_start + j) * cs);
            }
        } else if cluster < self.l2_start {
            // Refcount block: 16-bit entries, 1 for every used cluster.
            let entries = cs / 2;
            let first = (cluster - self.rb_start) * entries;
            let used = self.total_clusters.saturating_sub(first).min(entries);
            for e in 0..usize_of(used) {
                out[e * 2..e * 2 + 2].copy_from_slice(&1u16.to_be_bytes());
            }
        } else {
            // L2 table.
            let l1 = self.l2_used[usize_of(cluster - self.l2_start)];
            let l2_entries = cs / 8;
            let lo = l1 * l2_entries;
            let hi = lo + l2_entries;
            let a = self.map.data.partition_point(|&g| g < lo);
            let b = self.map.data.partition_point(|&g| g < hi);
            for (q, &g) in self.map.data[a..b]
                .iter()
                .enumerate()
                .map(|(k, g)| (k + a, g))
            {
                put(
                    out,
                    usize_of(g - lo),
                    ((self.data_start + q as u64) * cs) | COPIED,
                );
            }
        }
    }

    /// The 104-byte qcow2 v3 header; the rest of cluster 0 stays zero (which
    /// is also the end-of-extensions marker).
    fn header(&self, out: &mut [u8]) {
        let cs = self.map.cluster_size;
        let mut w = |off: usize, bytes: &[u8]| out[off..off + bytes.len()].copy_from_slice(bytes);
        w(0, b"QFI\xfb");
        w(4, &3u32.to_be_bytes());
        // 8: backing_file_offset 0, 16: backing_file_size 0.
        w(20, &cs.trailing_zeros().to_be_bytes());
        // qemu's qcow2 driver floors the size to 512-byte sectors, so round
        // up: the padding reads as zeros, as qemu's raw driver shows it too.
        w(24, &self.qcow2_virtual_size().to_be_bytes());
        // 32: crypt_method 0.
        let l1_size = u32::try_from(self.l1_size).expect("checked in new");
        w(36, &l1_size.to_be_bytes());
        if self.l1_size > 0 {
            w(40, &(self.l1_start * cs).to_be_bytes());
        }
        w(48, &(self.rt_start * cs).to_be_bytes());
        let rt_clusters = u32::try_from(self.rt_clusters).expect("checked in new");
        w(56, &rt_clusters.to_be_bytes());
        // 60: nb_snapshots 0, 64: snapshots_offset 0, 72/80/88: features 0.
        w(96, &REFCOUNT_ORDER.to_be_bytes());
        w(100, &104u32.to_be_bytes());
    }
}
