//! Hostile and broken input: corrupt partition tables and filesystems give
//! coded findings, never a panic; deterministic mutation "smoke fuzzing" of
//! a real partition table, ext4 superblock, NTFS volume, cpio archive and
//! registry hive.
// Offsets here are inside small test images; narrowing casts are fine.
#![allow(clippy::cast_possible_truncation)]

mod common;
use common::*;
use preflight_disk::raw::RawImage;
use preflight_disk::{BlockRead, FileSource, ReadError};
use preflight_guest::initramfs;
use preflight_guest::regf::Hive;
use preflight_testkit::Rng;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// A disk image with some bytes replaced, and optionally cut short.
struct Patched {
    base: RawImage,
    size: u64,
    patches: BTreeMap<u64, u8>,
}

impl Patched {
    fn new(path: &Path) -> Self {
        let base = RawImage::new(Arc::new(FileSource::open(path).unwrap()));
        let size = base.size();
        Patched {
            base,
            size,
            patches: BTreeMap::new(),
        }
    }
    fn byte(&self, off: u64) -> u8 {
        let mut b = [0u8];
        self.read_at(off, &mut b).unwrap();
        b[0]
    }
    fn bytes(&self, off: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        self.read_at(off, &mut b).unwrap();
        b
    }
    fn set(&mut self, off: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            self.patches.insert(off + i as u64, b);
        }
    }
}

impl BlockRead for Patched {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        preflight_disk::check_guest_range(offset, buf.len(), self.size)?;
        self.base.read_at(offset, buf)?;
        for (&o, &b) in self.patches.range(offset..offset + buf.len() as u64) {
            buf[(o - offset) as usize] = b;
        }
        Ok(())
    }
}

/// 1-4 random bytes changed somewhere in `range`.
fn mutate(rng: &mut Rng, range: std::ops::Range<u64>) -> Vec<(u64, u8)> {
    let n = 1 + rng.below(4);
    (0..n)
        .map(|_| {
            let off = range.start + rng.below(range.end - range.start);
            let val = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                _ => rng.next() as u8,
            };
            (off, val)
        })
        .collect()
}

fn arm64() -> Patched {
    Patched::new(&small().join("small-arm64.raw"))
}

#[test]
fn gpt_primary_header_corrupt_uses_backup() {
    let mut d = arm64();
    let b = d.byte(512 + 40);
    d.set(512 + 40, &[b ^ 0x55]); // first usable LBA: the header CRC breaks
    let r = preflight_guest::inspect(&d);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.PartitionTableCorrupt")
        .expect("finding");
    assert!(f.message.contains("backup"), "{}", f.message);
    assert_eq!(r.facts.partitions.len(), 2);
    assert_eq!(r.facts.architecture.as_deref(), Some("arm64"));
}

#[test]
fn gpt_entry_array_corrupt_uses_backup() {
    let mut d = arm64();
    d.set(1024 + 56, b"X\0"); // name of entry 1: the array CRC breaks
    let r = preflight_guest::inspect(&d);
    assert!(has(&r, "GUEST.PartitionTableCorrupt"), "{:?}", codes(&r));
    assert_eq!(r.facts.partitions[0].name.as_deref(), Some("EFI"));
}

#[test]
fn gpt_both_headers_corrupt() {
    let mut d = arm64();
    let last = d.size() - 512;
    d.set(512 + 40, &[0xee]);
    d.set(last + 40, &[0xee]);
    let r = preflight_guest::inspect(&d);
    assert!(has(&r, "GUEST.PartitionTableCorrupt"));
    assert!(r.facts.partitions.is_empty());
    assert!(has(&r, "GUEST.NoOperatingSystem"));
}

/// btrfs is read now: a magic over a garbage superblock is a corrupt btrfs.
#[test]
fn btrfs_magic_over_a_bad_superblock_is_corrupt() {
    let mut d = arm64();
    let root = 133120 * 512;
    d.set(root + 1024 + 56, &[0, 0]); // no ext magic
    d.set(root + 0x10040, b"_BHRfS_M");
    let r = preflight_guest::inspect(&d);
    let fs = r
        .facts
        .filesystems
        .iter()
        .find(|f| f.partition == Some(2))
        .unwrap();
    assert_eq!(fs.info.fs_type, "btrfs");
    let bad = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.FilesystemCorrupt")
        .unwrap_or_else(|| panic!("{:?}", codes(&r)));
    assert!(
        bad.message
            .contains("btrfs on partition 2: btrfs: superblock checksum"),
        "{}",
        bad.message
    );
    // The root may be on the unreadable volume: the verdict is incomplete, not "no OS".
    assert!(has(&r, "GUEST.InspectionIncomplete"), "{:?}", codes(&r));
    assert!(!has(&r, "GUEST.NoOperatingSystem"), "{:?}", codes(&r));
}

#[test]
fn hybrid_mbr_is_reported() {
    let mut d = arm64();
    // A second MBR entry (FAT32 over the ESP) beside the 0xEE one.
    let mut e = [0u8; 16];
    e[4] = 0x0c;
    e[8..12].copy_from_slice(&2048u32.to_le_bytes());
    e[12..16].copy_from_slice(&131072u32.to_le_bytes());
    d.set(446 + 16, &e);
    let r = preflight_guest::inspect(&d);
    assert!(r.facts.partition_table.hybrid_mbr);
    assert!(has(&r, "GUEST.HybridMbr"), "{:?}", codes(&r));
    assert_eq!(r.facts.partition_table.kind, "gpt");
}

#[test]
fn truncated_disk_is_reported() {
    let mut d = arm64();
    d.size = 100 * 1024 * 1024; // the upload stopped short of the end
    let r = preflight_guest::inspect(&d);
    assert!(has(&r, "GUEST.GptBackupHeader"), "{:?}", codes(&r));
    assert!(has(&r, "GUEST.PartitionGeometry"), "{:?}", codes(&r));
}

#[test]
fn ext4_superblock_corrupt() {
    let mut d = arm64();
    let sb = 133120 * 512 + 1024;
    d.set(sb + 24, &[30]); // s_log_block_size
    let r = preflight_guest::inspect(&d);
    assert!(has(&r, "GUEST.FilesystemCorrupt"), "{:?}", codes(&r));
    // The root may be on the unread filesystem: not "import the system disk".
    assert!(!has(&r, "GUEST.NoOperatingSystem"), "{:?}", codes(&r));
    let incomplete = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.InspectionIncomplete")
        .unwrap_or_else(|| panic!("{:?}", codes(&r)));
    assert!(
        incomplete.message.contains("partition 2 (ext4)"),
        "{}",
        incomplete.message
    );

    let mut d = arm64();
    let count = u32::from_le_bytes(d.bytes(sb + 4, 4).try_into().unwrap());
    d.set(sb + 4, &(count * 2).to_le_bytes()); // more blocks than the partition
    let r = preflight_guest::inspect(&d);
    assert!(
        has(&r, "GUEST.FilesystemLargerThanPartition"),
        "{:?}",
        codes(&r)
    );
}

/// A corrupt /etc directory block: the filesystem is reported corrupt (naming /etc), not
/// only "no operating system". debugfs finds the block.
#[test]
fn corrupt_etc_directory_is_a_filesystem_finding() {
    let root = 133120u64 * 512;
    let image = small().join("small-arm64.raw");
    let dev = format!("{}?offset={root}", image.display());
    let blocks = run("debugfs", &["-R", "blocks /etc", &dev]);
    let block: u64 = blocks.split_whitespace().next().unwrap().parse().unwrap();
    let dump = run("dumpe2fs", &["-h", &dev]);
    let block_size: u64 = dump
        .lines()
        .find_map(|l| l.strip_prefix("Block size:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut d = arm64();
    d.set(root + block * block_size, &[0xab; 64]);
    let r = preflight_guest::inspect(&d);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.FilesystemCorrupt")
        .unwrap_or_else(|| panic!("{:?}", codes(&r)));
    assert!(f.message.contains("directory /etc"), "{}", f.message);
    assert!(f.message.starts_with("partition 2: ext4"), "{}", f.message);
    assert!(!has(&r, "GUEST.NoOperatingSystem"), "{:?}", codes(&r));
    assert!(has(&r, "GUEST.InspectionIncomplete"), "{:?}", codes(&r));
}

#[test]
fn mbr_partition_past_the_end_and_ebr_loop() {
    let mut d = Patched::new(&small().join("small-rules.raw"));
    d.set(446 + 12, &0x00ff_ffffu32.to_le_bytes()); // partition 1 sectors
    let (_, _, f) = preflight_guest::read_partitions(&d);
    assert!(
        f.iter().any(|f| f.code == "GUEST.PartitionGeometry"),
        "{f:?}"
    );

    // The second EBR's link points back at itself.
    let mut d = Patched::new(&small().join("small-rules.raw"));
    let ext_start = u64::from(u32::from_le_bytes(
        d.bytes(446 + 16 + 8, 4).try_into().unwrap(),
    ));
    let first = d.bytes(ext_start * 512, 512);
    let rel2 = u32::from_le_bytes(first[446 + 16 + 8..446 + 16 + 12].try_into().unwrap());
    let second = (ext_start + u64::from(rel2)) * 512;
    d.set(second + 446 + 16 + 4, &[0x05]);
    d.set(second + 446 + 16 + 8, &rel2.to_le_bytes());
    d.set(second + 446 + 16 + 12, &1u32.to_le_bytes());
    let (_, parts, f) = preflight_guest::read_partitions(&d);
    assert!(
        f.iter()
            .any(|f| f.code == "GUEST.PartitionTableCorrupt" && f.message.contains("loops")),
        "{f:?}"
    );
    assert_eq!(
        parts.iter().map(|p| p.number).collect::<Vec<_>>(),
        vec![1, 2, 5, 6]
    );
}

#[test]
fn fuzz_partition_tables() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let rules = Patched::new(&small().join("small-rules.raw"));
    let ext_start = u64::from(u32::from_le_bytes(
        rules.bytes(446 + 16 + 8, 4).try_into().unwrap(),
    )) * 512;
    for i in 0..400 {
        let mut d = Patched::new(&small().join(if i % 2 == 0 {
            "small-rules.raw"
        } else {
            "small-arm64.raw"
        }));
        let range = if i % 2 == 0 {
            if i % 4 == 0 {
                440..512
            } else {
                ext_start + 446..ext_start + 512
            }
        } else {
            512..512 + 512 + 256
        };
        for (o, v) in mutate(&mut rng, range) {
            d.set(o, &[v]);
        }
        let (_, _, f) = preflight_guest::read_partitions(&d);
        assert!(
            !f.iter().any(|f| f.code == "GUEST.InternalError"),
            "iteration {i}: {f:?}"
        );
    }
}

/// Whole inspections of mutated filesystems: nothing panics out, and the
/// reader crates' own panics (if any) are caught and counted.
fn fuzz_inspect(image: &str, ranges: &[std::ops::Range<u64>], iterations: u32, seed: u64) -> usize {
    let mut rng = Rng(seed);
    let mut internal = 0;
    for i in 0..iterations {
        let mut d = Patched::new(&small_or_windows(image));
        let r = ranges[i as usize % ranges.len()].clone();
        for (o, v) in mutate(&mut rng, r) {
            d.set(o, &[v]);
        }
        let report = preflight_guest::inspect(&d);
        let n = report
            .findings
            .iter()
            .filter(|f| f.code == "GUEST.InternalError")
            .count();
        if n > 0 {
            println!(
                "{image} iteration {i}: {:?}",
                report
                    .findings
                    .iter()
                    .filter(|f| f.code == "GUEST.InternalError")
                    .collect::<Vec<_>>()
            );
        }
        internal += n;
    }
    internal
}

fn small_or_windows(name: &str) -> std::path::PathBuf {
    if name.starts_with("windows") {
        windows().join(name)
    } else {
        small().join(name)
    }
}

#[test]
fn fuzz_ext4_and_fat() {
    let root = 133120 * 512;
    // Superblock, group descriptors; the ESP's boot sector and FAT.
    let ranges = [
        root + 1024..root + 2048,
        root + 4096..root + 8192,
        1048576..1048576 + 512,
        1048576 + 16384..1048576 + 20480,
    ];
    let internal = fuzz_inspect("small-arm64.raw", &ranges, 300, 0xD1B5_4A32_D192_ED03);
    assert_eq!(internal, 0, "reader panics caught");
}

#[test]
fn fuzz_lvm() {
    let pv = 67584 * 512;
    let d = Patched::new(&small().join("small-lvm.raw"));
    // The current metadata text, where the metadata area header points.
    let mda = d.bytes(pv + 4096, 64);
    assert_eq!(&mda[4..20], b" LVM2 x[5A%r0N*>");
    let loc = u64::from_le_bytes(mda[40..48].try_into().unwrap());
    let len = u64::from_le_bytes(mda[48..56].try_into().unwrap());
    let text = pv + 4096 + loc;
    // PV label and header; metadata area header; metadata text.
    let ranges = [
        pv + 512..pv + 1024,
        pv + 4096..pv + 4096 + 64,
        text..text + len,
    ];
    let internal = fuzz_inspect("small-lvm.raw", &ranges, 400, 0x1F83_D9AB_FB41_BD6B);
    assert_eq!(internal, 0, "reader panics caught");
}

#[test]
fn fuzz_ntfs() {
    let part = 2048 * 512;
    // Boot sector and the first MFT records ($MFT sits at cluster 4 with
    // mkntfs -Q's layout only by chance, so mutate a wide window).
    let ranges = [part..part + 512, part + 16384..part + 16384 + 8192];
    let internal = fuzz_inspect("windows.raw", &ranges, 200, 0x8CB9_2BA7_2F3D_8DD7);
    println!("ntfs: {internal} reader panics caught");
}

#[test]
fn fuzz_cpio_archives() {
    let dir = small();
    // A real newc archive, as cpio(1) writes it.
    let mut rng = Rng(0xA076_1D64_78BD_642F);
    let mut archive = Vec::new();
    let tree = dir.join("cpio-src.tmp");
    std::fs::create_dir_all(tree.join("usr/lib/modules/6.1/kernel/drivers/block")).unwrap();
    std::fs::write(tree.join("init"), "#!/bin/sh\n").unwrap();
    std::fs::write(
        tree.join("usr/lib/modules/6.1/kernel/drivers/block/virtio_blk.ko"),
        "\x7fELF",
    )
    .unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && find . | LC_ALL=C sort | cpio -o -H newc --quiet",
            tree.display()
        ))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&tree).ok();
    archive.extend_from_slice(&out.stdout);
    let good = initramfs::list(&archive, initramfs::MAX_UNPACKED).unwrap();
    assert!(good.names.iter().any(|n| n.ends_with("virtio_blk.ko")));
    let mut gz = Vec::new();
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        e.write_all(&archive).unwrap();
        e.finish().unwrap();
    }
    for i in 0..3000 {
        let base = if i % 3 == 0 { &gz } else { &archive };
        let mut m = base.clone();
        for (o, v) in mutate(&mut rng, 0..m.len() as u64) {
            m[o as usize] = v;
        }
        if i % 7 == 0 {
            m.truncate(rng.below(m.len() as u64) as usize);
        }
        let _ = initramfs::list(&m, 64 * 1024 * 1024);
    }
}

#[test]
fn fuzz_registry_hive() {
    let data = std::fs::read(windows().join("windows.SYSTEM")).unwrap();
    let mut rng = Rng(0xE703_7ED1_A0B4_28DB);
    let mut opened = 0;
    for i in 0..3000 {
        let mut m = data.clone();
        // Mostly the hbin area (cells), sometimes the base block.
        let range = if i % 5 == 0 {
            0..512
        } else {
            4096..m.len() as u64
        };
        for (o, v) in mutate(&mut rng, range) {
            m[o as usize] = v;
        }
        if let Ok(h) = Hive::new(&m) {
            opened += 1;
            if let Ok(root) = h.root_key() {
                let _ = root
                    .subpath("ControlSet001\\Services\\viostor")
                    .map(|k| k.map(|k| k.dword("Start")));
                let _ = root
                    .subpath("Select")
                    .map(|k| k.map(|k| k.dword("Current")));
                let _ = walk(&root, 0);
            }
        }
    }
    assert!(
        opened > 1000,
        "most single-cell mutations still open: {opened}"
    );
}

fn walk(k: &preflight_guest::regf::Key<'_>, depth: u32) -> usize {
    if depth > 16 {
        return 0;
    }
    let mut n = 1;
    if let Ok(subs) = k.subkeys() {
        for s in subs {
            let _ = s.name();
            n += walk(&s, depth + 1);
        }
    }
    n
}
