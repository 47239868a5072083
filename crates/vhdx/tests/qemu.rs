//! Differential tests against qemu-img: VHDX images made by qemu-img must
//! give the same virtual size and guest bytes as `qemu-img info` and
//! `qemu-img convert -O raw`, and their corruptions the expected codes.

// Shared with the VHD tests: raw images with holes, qemu-img helpers, hashing.
#[path = "../../vhd/tests/common/mod.rs"]
mod common;

use common::*;
use preflight_disk::{DiskImage, FileSource};
use preflight_report::has_errors;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MIB: u64 = 1 << 20;

fn open_path(path: &Path) -> preflight_vhdx::VhdxImage {
    let src = Arc::new(FileSource::open(path).unwrap());
    preflight_vhdx::open(src).unwrap_or_else(|f| panic!("{}: {f}", path.display()))
}

fn convert(dir: &Path, raw: &Path, opts: &str) -> PathBuf {
    let out = dir.join(format!("{}.vhdx", opts.replace([',', '='], "_")));
    qemu::convert_raw(raw, "vhdx", &["-o", opts], &out);
    out
}

fn compare(dir: &Path, path: &Path, subformat: &str) {
    let img = open_path(path);
    qemu::assert_matches_qemu(
        &img,
        "vhdx",
        path,
        dir,
        subformat,
        &[12_345, (3 << 20) + 7, 4096],
    );
    let findings = img.check();
    assert!(findings.is_empty(), "{}: {findings:#?}", path.display());
}

#[test]
fn qemu_made_fixed_and_dynamic_with_block_sizes() {
    let dir = tempfile::tempdir().unwrap();
    for (size, seed) in [(5 * MIB, 7u64), (3 * MIB + 64 * 1024, 11)] {
        let raw = dir.path().join(format!("in-{seed}.raw"));
        write_raw(&raw, size, seed);
        for sub in ["fixed", "dynamic"] {
            for bs in [
                "",
                ",block_size=1M",
                ",block_size=2M",
                ",block_size=4M",
                ",block_size=32M",
            ] {
                let path = convert(dir.path(), &raw, &format!("subformat={sub}{bs}"));
                compare(dir.path(), &path, sub);
                let img = open_path(&path);
                assert_eq!(img.info().virtual_size, size);
                let block = img.info().cluster_size.unwrap();
                assert!(block.is_power_of_two() && block >= MIB);
                if !bs.is_empty() {
                    let want: u64 = bs[12..bs.len() - 1].parse::<u64>().unwrap() * MIB;
                    assert_eq!(block, want);
                }
                assert!(img.info().allocated_size <= size.div_ceil(block) * block);
                assert!(
                    img.info()
                        .features
                        .iter()
                        .any(|f| f.starts_with("creator:QEMU")),
                    "{:?}",
                    img.info().features
                );
            }
        }
    }
}

/// A 4096-byte logical sector disk is not something qemu writes; at least
/// check the 512-byte one is reported.
#[test]
fn sector_sizes_reported() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    write_raw(&raw, 2 * MIB, 1);
    let path = convert(dir.path(), &raw, "subformat=dynamic");
    let img = open_path(&path);
    let f = &img.info().features;
    assert!(f.contains(&"logical_sector_size:512".to_string()), "{f:?}");
}

fn crc_fix(d: &mut [u8], at: usize, len: usize) {
    d[at + 4..at + 8].fill(0);
    let mut digest = crc_fast_digest();
    digest.update(&d[at..at + len]);
    let c = u32::try_from(digest.finalize()).unwrap();
    d[at + 4..at + 8].copy_from_slice(&c.to_le_bytes());
}

fn crc_fast_digest() -> crc_fast::Digest {
    crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi)
}

fn codes_of(data: Vec<u8>) -> Vec<String> {
    match preflight_vhdx::open(Arc::new(data)) {
        Err(f) => vec![f.code],
        Ok(img) => img.check().into_iter().map(|f| f.code).collect(),
    }
}

#[test]
fn corruptions_of_a_qemu_image() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    write_raw(&raw, 5 * MIB, 9);
    let path = convert(dir.path(), &raw, "subformat=dynamic,block_size=1M");
    compare(dir.path(), &path, "dynamic");
    let good = std::fs::read(&path).unwrap();
    let (h1, h2, rt1, rt2) = (0x10000, 0x20000, 0x30000, 0x40000);

    // Both header CRCs broken: fatal.
    let mut d = good.clone();
    d[h1 + 300] ^= 1;
    d[h2 + 300] ^= 1;
    assert_eq!(codes_of(d), vec!["VHDX.NoValidHeader"]);

    // One broken: a warning; the image still reads like qemu reads it.
    for h in [h1, h2] {
        let mut d = good.clone();
        d[h + 4] ^= 1;
        assert_eq!(codes_of(d.clone()), vec!["VHDX.HeaderCorrupt"]);
        let p = dir.path().join("one-bad-header.vhdx");
        std::fs::write(&p, &d).unwrap();
        let img = open_path(&p);
        assert_eq!(
            read_at_sha256(&img, 65_537),
            qemu_raw_sha256("vhdx", &p, dir.path())
        );
    }

    // Log GUID set in both headers.
    let mut d = good.clone();
    for h in [h1, h2] {
        d[h + 48..h + 64].copy_from_slice(&[0x5a; 16]);
        crc_fix(&mut d, h, 4096);
    }
    let c = codes_of(d);
    assert!(c.contains(&"VHDX.LogReplay".to_string()), "{c:?}");

    // BAT region moved past EOF in both region tables.
    let bat_entry = (0..2)
        .map(|i| rt1 + 16 + 32 * i)
        .find(|&e| good[e..e + 4] == [0x66, 0x77, 0xc2, 0x2d])
        .unwrap();
    let mut d = good.clone();
    for t in [rt1, rt2] {
        let e = bat_entry - rt1 + t;
        d[e + 16..e + 24].copy_from_slice(&(1u64 << 40).to_le_bytes());
        crc_fix(&mut d, t, 65536);
    }
    assert_eq!(codes_of(d), vec!["VHDX.RegionPastEof"]);

    // Region table 1 broken: table 2 is used, a warning.
    let mut d = good.clone();
    d[rt1 + 1000] ^= 1;
    assert_eq!(codes_of(d), vec!["VHDX.RegionTableCopy"]);

    // A BAT entry past EOF, and two on one block.
    let bat_off = usize::try_from(u64::from_le_bytes(
        good[bat_entry + 16..bat_entry + 24].try_into().unwrap(),
    ))
    .unwrap();
    let entries: Vec<u64> = (0..5)
        .map(|i| {
            u64::from_le_bytes(
                good[bat_off + 8 * i..bat_off + 8 * i + 8]
                    .try_into()
                    .unwrap(),
            )
        })
        .collect();
    let present: Vec<usize> = (0..5).filter(|&i| entries[i] & 7 == 6).collect();
    assert!(
        present.len() >= 2,
        "test data must allocate two blocks: {entries:x?}"
    );
    let mut d = good.clone();
    d[bat_off + 8 * present[0]..][..8].copy_from_slice(&((1u64 << 40) | 6).to_le_bytes());
    assert_eq!(codes_of(d), vec!["VHDX.BlockPastEof"]);
    let mut d = good.clone();
    d[bat_off + 8 * present[1]..][..8].copy_from_slice(&entries[present[0]].to_le_bytes());
    assert_eq!(codes_of(d), vec!["VHDX.BlockOverlap"]);
}

/// Truncating a qemu-made image anywhere before its end gives a coded
/// error and never a panic.
#[test]
fn truncation_anywhere_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    write_raw(&raw, 3 * MIB, 5);
    for opts in [
        "subformat=dynamic,block_size=1M",
        "subformat=fixed,block_size=1M",
    ] {
        let path = convert(dir.path(), &raw, opts);
        let full = Arc::new(std::fs::read(&path).unwrap());
        let mut cuts: Vec<usize> = (0..full.len()).step_by(65_521).collect();
        cuts.extend([0, 7, 520, 0x10000 + 10, 0x30000 + 10]);
        cuts.extend(full.len() - 600..full.len());
        for cut in cuts {
            let opened = preflight_vhdx::open(Arc::new(full[..cut].to_vec()));
            match preflight_testkit::exercise(opened) {
                Err(f) => assert!(f.code.starts_with("VHDX."), "{cut}: {f}"),
                Ok(findings) => assert!(
                    has_errors(&findings),
                    "{opts} cut at {cut}: no error in {findings:?}"
                ),
            }
        }
    }
}

/// `next_data` of a dynamic VHDX: the runs are the blocks qemu-img allocated, and what lies
/// between them reads as zeros.
#[test]
fn dynamic_next_data_finds_the_holes_and_misses_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, vhdx) = preflight_testkit::three_extent_image(
        dir.path(),
        "vhdx",
        "subformat=dynamic,block_size=2097152",
    );
    let img = open_path(&vhdx);
    let runs = preflight_disk::data_runs(&img).unwrap();
    assert_eq!(runs, preflight_testkit::THREE_EXTENT_RUNS);
    preflight_testkit::assert_holes_read_zero(&img, &runs, &raw);
}
