//! End-to-end checks of the streamed qcow2 against qemu-img.
#![allow(missing_docs)]

use preflight_convert::{map_clusters, ClusterMap, Qcow2Layout, DEFAULT_CLUSTER_SIZE};
use preflight_disk::raw::RawImage;
use preflight_disk::{BlockRead, FileSource};
use preflight_testkit::{qemu_img_status, Rng};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

const MIB: u64 = 1 << 20;

fn open_raw(path: &Path) -> RawImage {
    RawImage::new(Arc::new(FileSource::open(path).unwrap()))
}

/// Sparse raw of `size` with `(offset, len)` random extents.
fn make_raw(path: &Path, size: u64, extents: &[(u64, usize)], seed: u64) {
    let mut f = File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut rng = Rng(seed);
    for &(off, len) in extents {
        let mut buf = vec![0u8; len];
        rng.fill(&mut buf);
        f.seek(SeekFrom::Start(off)).unwrap();
        f.write_all(&buf).unwrap();
    }
}

/// Streams the whole qcow2 through `read_at` in odd-sized chunks.
fn stream(layout: &Qcow2Layout, src: &dyn BlockRead, out: &Path) -> Vec<u8> {
    let size = layout.file_size();
    let mut all = Vec::with_capacity(usize::try_from(size).unwrap());
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(out)
        .unwrap();
    let chunks = [1usize, 7, 4093, 65535, 65537, 100_003, 1_000_003];
    let mut pos = 0u64;
    let mut k = 0;
    while pos < size {
        let n = (chunks[k % chunks.len()] as u64).min(size - pos);
        let mut buf = vec![0u8; usize::try_from(n).unwrap()];
        layout.read_at(src, pos, &mut buf).unwrap();
        f.write_all(&buf).unwrap();
        all.extend_from_slice(&buf);
        pos += n;
        k += 1;
    }
    f.sync_all().unwrap();
    all
}

/// Full round trip; returns (raw size, qcow2 size).
fn round_trip(size: u64, extents: &[(u64, usize)], seed: u64) -> (u64, u64) {
    round_trip_cs(size, extents, seed, DEFAULT_CLUSTER_SIZE)
}

fn round_trip_cs(size: u64, extents: &[(u64, usize)], seed: u64, cs: u64) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let raw_path = dir.path().join("src.raw");
    let q_path = dir.path().join("out.qcow2");
    make_raw(&raw_path, size, extents, seed);
    let raw = open_raw(&raw_path);
    let map = map_clusters(&raw, cs).unwrap();
    let layout = Qcow2Layout::new(&map).unwrap();
    let whole = stream(&layout, &raw, &q_path);
    assert_eq!(whole.len() as u64, layout.file_size());

    let (ok, text) = qemu_img_status(&["check", "-f", "qcow2", q_path.to_str().unwrap()]);
    assert!(ok, "qemu-img check failed: {text}");
    assert!(
        text.contains("No errors were found"),
        "check output: {text}"
    );
    assert!(!text.contains("leak"), "check output: {text}");
    let (ok, text) = qemu_img_status(&[
        "compare",
        "-f",
        "raw",
        "-F",
        "qcow2",
        raw_path.to_str().unwrap(),
        q_path.to_str().unwrap(),
    ]);
    assert!(ok, "qemu-img compare failed: {text}");

    // Determinism and part ranges: regenerate slices like multipart parts.
    let fsize = layout.file_size();
    let part = 5 * MIB + 12345;
    let mut start = 0u64;
    while start < fsize {
        let end = (start + part).min(fsize);
        let mut a = vec![0u8; usize::try_from(end - start).unwrap()];
        let mut b = vec![0u8; a.len()];
        layout.read_at(&raw, start, &mut a).unwrap();
        layout.read_at(&raw, start, &mut b).unwrap();
        assert_eq!(a, b, "same offset read twice differs at {start}");
        let s = usize::try_from(start).unwrap();
        assert!(
            a == whole[s..s + a.len()],
            "part at {start} differs from the stream"
        );
        start = end;
    }
    // A second full stream hashes the same.
    let again = stream(&layout, &raw, &dir.path().join("again.qcow2"));
    assert_eq!(Sha256::digest(&whole), Sha256::digest(&again));
    // Past the end is an error.
    let mut one = [0u8; 1];
    assert!(layout.read_at(&raw, fsize, &mut one).is_err());
    (size, fsize)
}

#[test]
fn sparse_raw_is_small_and_valid() {
    let extents = [
        (0, 512 * 1024),
        (3 * MIB + 100, 1_000_000),
        (64 * MIB - 10, 20),
        (100 * MIB, 2 * 1024 * 1024),
        (255 * MIB, 1024 * 1024),
    ];
    let (raw, q) = round_trip(256 * MIB, &extents, 1);
    assert!(
        q < 8 * MIB,
        "qcow2 is {q} bytes for a {raw}-byte sparse raw"
    );
}

#[test]
fn full_raw_without_holes() {
    let size = 24 * MIB;
    let (_, q) = round_trip(size, &[(0, usize::try_from(size).unwrap())], 2);
    assert!(q > size);
}

#[test]
fn all_zero_raw() {
    let (_, q) = round_trip(64 * MIB, &[], 3);
    assert!(q <= 5 * DEFAULT_CLUSTER_SIZE);
}

#[test]
fn size_not_a_cluster_multiple() {
    let size = 10 * MIB + 4096 + 512 + 7;
    round_trip(size, &[(size - 3000, 3000), (MIB, 70_000)], 4);
}

#[test]
fn large_sparse_disk_spans_many_l2_tables() {
    // 3 GiB sparse: 7 L1 entries (an L2 covers 512 MiB), data in three.
    let g = 1u64 << 30;
    round_trip(
        3 * g + 65536 * 3,
        &[(17, 100), (2 * g + 5, 70_000), (3 * g + 65536 * 2, 65536)],
        5,
    );
}

#[test]
fn map_keeps_only_nonzero_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.raw");
    make_raw(&p, 8 * MIB, &[(65536 * 3 + 1, 1), (65536 * 100 - 1, 2)], 6);
    let map = map_clusters(&open_raw(&p), DEFAULT_CLUSTER_SIZE).unwrap();
    assert_eq!(map.data_clusters(), &[3, 99, 100]);
    assert_eq!(
        map,
        ClusterMap::new(65536, 8 * MIB, vec![100, 3, 99, 99]).unwrap()
    );
}

#[test]
fn bad_cluster_size_is_rejected() {
    assert!(ClusterMap::new(1000, 1, vec![]).is_err());
    assert!(ClusterMap::new(256, 1, vec![]).is_err());
}

#[test]
fn small_clusters_need_several_refcount_table_clusters() {
    // 512-byte clusters: 8 L1 clusters, 512 L2 tables, over 32768 used
    // clusters, so the refcount table needs several clusters and must count
    // itself.
    let size = 16 * MIB;
    round_trip_cs(size, &[(0, usize::try_from(size).unwrap())], 7, 512);
}

#[test]
fn zero_size_disk() {
    let (_, q) = round_trip(0, &[], 8);
    assert!(q <= 4 * DEFAULT_CLUSTER_SIZE);
}

/// A disk that reads like `inner` but reports stretches from a fixed list.
struct Hinted<'a> {
    inner: &'a dyn BlockRead,
    stretches: Vec<(u64, u64)>,
}

impl BlockRead for Hinted<'_> {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), preflight_disk::ReadError> {
        self.inner.read_at(offset, buf)
    }

    fn next_data(&self, offset: u64) -> Result<Option<(u64, u64)>, preflight_disk::ReadError> {
        Ok(self
            .stretches
            .iter()
            .find(|s| s.1 > offset)
            .map(|&(a, b)| (a.max(offset), b)))
    }
}

#[test]
fn the_map_skips_holes_the_file_reports_and_finds_the_same_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("h.raw");
    // Data at unaligned edges: the stretch boundaries fall inside clusters.
    let extents = [(65536 * 7 + 100, 5), (20 * MIB - 3, 10), (60 * MIB, 70_000)];
    make_raw(&p, 64 * MIB, &extents, 9);
    let raw = open_raw(&p);
    // The filesystem reports holes: far less than the disk may hold data.
    let mut reported = 0;
    let mut at = 0;
    while let Some((a, b)) = raw.next_data(at).unwrap() {
        assert!(a >= at && b > a);
        reported += b - a;
        at = b;
    }
    assert!(
        reported < 8 * MIB,
        "SEEK_HOLE reported {reported} bytes of data"
    );
    let everything = Hinted {
        inner: &raw,
        stretches: vec![(0, 64 * MIB)],
    };
    let expected = map_clusters(&everything, DEFAULT_CLUSTER_SIZE).unwrap();
    assert_eq!(expected.data_clusters(), &[7, 319, 320, 960, 961]);
    assert_eq!(map_clusters(&raw, DEFAULT_CLUSTER_SIZE).unwrap(), expected);
    // Stretches that start and end mid-cluster, and one that overlaps the previous.
    let ragged = Hinted {
        inner: &raw,
        stretches: vec![
            (65536 * 7 + 100, 65536 * 7 + 105),
            (20 * MIB - 3, 20 * MIB + 7),
            (20 * MIB, 20 * MIB + 9),
            (60 * MIB + 1, 60 * MIB + 70_000),
        ],
    };
    assert_eq!(
        map_clusters(&ragged, DEFAULT_CLUSTER_SIZE).unwrap(),
        expected
    );
}
