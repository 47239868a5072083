//! Differential tests against qemu-img: images made by qemu-img (and by our
//! own builder for block sizes qemu cannot write) must give the same virtual
//! size and the same guest bytes as `qemu-img info` / `qemu-img convert`.

#![allow(clippy::cast_possible_truncation)] // test data from a PRNG

mod common;

use common::*;
use preflight_disk::{DiskImage, FileSource, Source};
use preflight_report::has_errors;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MIB: u64 = 1 << 20;

fn open_path(path: &Path) -> preflight_vhd::VhdImage {
    let src = Arc::new(FileSource::open(path).unwrap());
    preflight_vhd::open(src).unwrap_or_else(|f| panic!("{}: {f}", path.display()))
}

/// Converts `raw` with `qemu-img convert -O vpc -o <opts>` and compares.
fn convert_and_compare(dir: &Path, raw: &Path, opts: &str, subformat: &str) -> PathBuf {
    let out = dir.join(format!("{}.vhd", opts.replace([',', '='], "_")));
    qemu::convert_raw(raw, "vpc", &["-o", opts], &out);
    compare(dir, &out, subformat);
    out
}

fn compare(dir: &Path, path: &Path, subformat: &str) {
    let img = open_path(path);
    qemu::assert_matches_qemu(&img, "vpc", path, dir, subformat, &[12_345, 1 << 20, 511]);
    let findings = img.check();
    assert!(!has_errors(&findings), "{}: {findings:#?}", path.display());
    let src = FileSource::open(path).unwrap();
    assert!(preflight_vhd::has_footer_at_end(&src));
}

#[test]
fn qemu_made_fixed_and_dynamic() {
    let dir = tempfile::tempdir().unwrap();
    for (size, seed) in [(5 * MIB, 7u64), (3 * MIB + 64 * 1024, 11)] {
        let raw = dir.path().join(format!("in-{seed}.raw"));
        write_raw(&raw, size, seed);
        let fixed = convert_and_compare(dir.path(), &raw, "subformat=fixed", "fixed");
        let img = open_path(&fixed);
        assert_eq!(img.info().allocated_size, img.info().virtual_size);
        assert!(img.info().features.contains(&"creator:qemu".to_string()));
        // force_size keeps the raw size exactly.
        let forced =
            convert_and_compare(dir.path(), &raw, "subformat=fixed,force_size=on", "fixed");
        assert_eq!(open_path(&forced).info().virtual_size, size);
        assert!(open_path(&forced).check().is_empty());

        let dynamic = convert_and_compare(dir.path(), &raw, "subformat=dynamic", "dynamic");
        let img = open_path(&dynamic);
        assert_eq!(img.info().cluster_size, Some(2 * MIB));
        let cap = img.info().virtual_size.div_ceil(2 * MIB) * 2 * MIB;
        assert!(img.info().allocated_size > 0 && img.info().allocated_size <= cap);
        let forced = convert_and_compare(
            dir.path(),
            &raw,
            "subformat=dynamic,force_size=on",
            "dynamic",
        );
        assert_eq!(open_path(&forced).info().virtual_size, size);
        assert!(open_path(&forced)
            .info()
            .features
            .contains(&"creator:qem2".to_string()));
    }
}

/// qemu's default (no force_size) rounds the size up to a CHS geometry and
/// writes a table one partial block larger than the disk: the warning, not
/// the ECS error. With force_size and a 2 MiB multiple, nothing is reported.
#[test]
fn qemu_table_size_rules() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    write_raw(&raw, 4 * MIB, 3);
    let chs = convert_and_compare(dir.path(), &raw, "subformat=dynamic", "dynamic");
    let codes: Vec<String> = open_path(&chs)
        .check()
        .into_iter()
        .map(|f| f.code)
        .collect();
    assert_eq!(codes, vec!["VHD.TableSizeNotExact"]);
    let exact = convert_and_compare(
        dir.path(),
        &raw,
        "subformat=dynamic,force_size=on",
        "dynamic",
    );
    assert!(open_path(&exact).check().is_empty());
}

/// A dynamic VHD written by our own builder, for the block sizes qemu cannot
/// create but reads (any power of two): 4 KiB, 64 KiB, 512 KiB, 2 MiB, 8 MiB.
#[test]
fn own_built_block_sizes_read_like_qemu() {
    let dir = tempfile::tempdir().unwrap();
    for (bs, size) in [
        (4096u32, MIB + 4096),
        (65536, 3 * MIB),
        (512 * 1024, 3 * MIB - 512),
        (2 << 20, 5 * MIB),
        (8 << 20, 9 * MIB),
    ] {
        let path = dir.path().join(format!("bs{bs}.vhd"));
        std::fs::write(&path, build_dynamic(bs, size, u64::from(bs) * 31)).unwrap();
        compare(dir.path(), &path, "dynamic");
        assert_eq!(open_path(&path).info().cluster_size, Some(u64::from(bs)));
    }
}

/// Builds a dynamic VHD (creator `win `, like Hyper-V) holding pseudo-random
/// data in about half of its blocks, allocated in a shuffled file order.
fn build_dynamic(block_size: u32, size: u64, seed: u64) -> Vec<u8> {
    let bs = u64::from(block_size);
    let entries = size.div_ceil(bs);
    let bitmap = (bs / 4096).div_ceil(512).max(1) * 512;
    let bat_len = (entries * 4).div_ceil(512) * 512;
    let mut footer = vec![0u8; 512];
    footer[..8].copy_from_slice(b"conectix");
    footer[8..12].copy_from_slice(&2u32.to_be_bytes());
    footer[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    footer[16..24].copy_from_slice(&512u64.to_be_bytes());
    footer[28..32].copy_from_slice(b"win ");
    footer[40..48].copy_from_slice(&size.to_be_bytes());
    footer[48..56].copy_from_slice(&size.to_be_bytes());
    footer[56..60].copy_from_slice(&[0xff, 0xff, 16, 255]);
    footer[60..64].copy_from_slice(&3u32.to_be_bytes());
    let sum = !footer
        .iter()
        .fold(0u32, |a, &b| a.wrapping_add(u32::from(b)));
    footer[64..68].copy_from_slice(&sum.to_be_bytes());
    let mut header = vec![0u8; 1024];
    header[..8].copy_from_slice(b"cxsparse");
    header[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    header[16..24].copy_from_slice(&1536u64.to_be_bytes());
    header[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    header[28..32].copy_from_slice(&u32::try_from(entries).unwrap().to_be_bytes());
    header[32..36].copy_from_slice(&block_size.to_be_bytes());
    let sum = !header
        .iter()
        .fold(0u32, |a, &b| a.wrapping_add(u32::from(b)));
    header[36..40].copy_from_slice(&sum.to_be_bytes());

    let mut rng = Rng(seed | 1);
    let mut allocated: Vec<u64> = (0..entries).filter(|_| rng.below(2) == 0).collect();
    for i in (1..allocated.len()).rev() {
        let j = usize::try_from(rng.below(i as u64 + 1)).unwrap();
        allocated.swap(i, j);
    }
    let mut bat = vec![0xffu8; usize::try_from(bat_len).unwrap()];
    let mut img = Vec::new();
    img.extend_from_slice(&footer);
    img.extend_from_slice(&header);
    let data_start = 1536 + bat_len;
    let mut blocks = Vec::new();
    for (n, &idx) in allocated.iter().enumerate() {
        let at = data_start + n as u64 * (bitmap + bs);
        let i = usize::try_from(idx * 4).unwrap();
        bat[i..i + 4].copy_from_slice(&u32::try_from(at / 512).unwrap().to_be_bytes());
        blocks.extend(std::iter::repeat_n(
            0xffu8,
            usize::try_from(bitmap).unwrap(),
        ));
        blocks.extend((0..bs).map(|_| rng.next() as u8));
    }
    img.extend_from_slice(&bat);
    img.extend_from_slice(&blocks);
    img.extend_from_slice(&footer);
    img
}

/// Truncating a qemu-made image anywhere gives a coded error, never a panic
/// and never a clean report.
#[test]
fn truncation_anywhere_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    write_raw(&raw, 3 * MIB, 5);
    for opts in ["subformat=dynamic", "subformat=fixed"] {
        let path = convert_and_compare(dir.path(), &raw, opts, &opts[10..]);
        let full = std::fs::read(&path).unwrap();
        let mut cuts: Vec<usize> = (0..4096).step_by(97).collect();
        cuts.extend((0..full.len()).step_by(65_521));
        cuts.extend(full.len() - 1024..full.len());
        for cut in cuts {
            let data = full[..cut].to_vec();
            match preflight_testkit::exercise(preflight_vhd::open(Arc::new(data))) {
                Err(f) => assert!(f.code.contains('.'), "{cut}: {f}"),
                Ok(findings) => assert!(
                    has_errors(&findings),
                    "{opts} cut at {cut}: no error in {findings:?}"
                ),
            }
        }
    }
}

/// Corruptions of a qemu-made dynamic image, each with its code.
#[test]
fn corruptions_of_a_qemu_image() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    write_raw(&raw, 5 * MIB, 9);
    let path = convert_and_compare(dir.path(), &raw, "subformat=dynamic", "dynamic");
    let good = std::fs::read(&path).unwrap();
    let n = good.len();
    let codes_of = |data: Vec<u8>| -> Vec<String> {
        match preflight_vhd::open(Arc::new(data)) {
            Err(f) => vec![f.code],
            Ok(img) => img.check().into_iter().map(|f| f.code).collect(),
        }
    };
    let fix_footer = |d: &mut [u8], at: usize| {
        d[at + 64..at + 68].fill(0);
        let sum = !d[at..at + 512]
            .iter()
            .fold(0u32, |a, &b| a.wrapping_add(u32::from(b)));
        d[at + 64..at + 68].copy_from_slice(&sum.to_be_bytes());
    };
    let fix_header = |d: &mut [u8]| {
        d[512 + 36..512 + 40].fill(0);
        let sum = !d[512..1536]
            .iter()
            .fold(0u32, |a, &b| a.wrapping_add(u32::from(b)));
        d[512 + 36..512 + 40].copy_from_slice(&sum.to_be_bytes());
    };

    // Bad cookie in both footers.
    let mut d = good.clone();
    d[0] = b'X';
    d[n - 512] = b'X';
    assert_eq!(codes_of(d), vec!["VHD.Cookie"]);
    // Bad checksum.
    let mut d = good.clone();
    d[n - 512 + 100] ^= 0x40;
    assert!(codes_of(d).contains(&"VHD.FooterChecksum".to_string()));
    // BAT entry past EOF (BAT at 1536).
    let mut d = good.clone();
    let first = d[1536..1540].to_vec();
    d[1536..1540].copy_from_slice(&0x0100_0000u32.to_be_bytes());
    assert!(codes_of(d).contains(&"VHD.BlockPastEof".to_string()));
    // Two BAT entries on the same block.
    let mut d = good.clone();
    let second = d[1540..1544].to_vec();
    assert_ne!(second, [0xff; 4], "test data must allocate block 1");
    d[1540..1544].copy_from_slice(&first);
    assert!(codes_of(d).contains(&"VHD.BlockOverlap".to_string()));
    // Huge MaxTableEntries, like afl5.img.
    let mut d = good.clone();
    d[512 + 28..512 + 32].copy_from_slice(&1_073_741_825u32.to_be_bytes());
    d[512 + 32..512 + 36].copy_from_slice(&512u32.to_be_bytes());
    fix_header(&mut d);
    assert_eq!(codes_of(d), vec!["VHD.MaxTableEntries"]);
    // Block size not a power of two.
    let mut d = good.clone();
    d[512 + 32..512 + 36].copy_from_slice(&3_000_000u32.to_be_bytes());
    fix_header(&mut d);
    assert_eq!(codes_of(d), vec!["InvalidBlockSize.NotSupport"]);
    // BAT offset past EOF.
    let mut d = good.clone();
    d[512 + 16..512 + 24].copy_from_slice(&(n as u64).to_be_bytes());
    fix_header(&mut d);
    assert_eq!(codes_of(d), vec!["VHD.BatPastEof"]);
    // Current size beyond the table: the ECS rule.
    let mut d = good.clone();
    for at in [0, n - 512] {
        d[at + 48..at + 56].copy_from_slice(&(64 * MIB).to_be_bytes());
        d[at + 28..at + 32].copy_from_slice(b"win ");
        fix_footer(&mut d, at);
    }
    assert_eq!(codes_of(d), vec!["InvalidVHDImage.IncorrectSize"]);
}

/// Reading a RAW file is not our business, but the detector's helper must
/// not mistake one for a fixed VHD.
#[test]
fn raw_has_no_footer() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    write_raw(&raw, MIB, 1);
    let src = FileSource::open(&raw).unwrap();
    assert!(!preflight_vhd::has_footer_at_end(&src));
    assert!(src.size() == MIB);
}

/// qemu sizes a disk whose creator is `vpc ` (Virtual PC) by its CHS
/// geometry; we report current_size (what Hyper-V and ECS use) and explain
/// the difference with `VHD.ChsSize`.
#[test]
fn virtual_pc_creator_chs_rule() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    write_raw(&raw, 4 * MIB, 13);
    let path = convert_and_compare(
        dir.path(),
        &raw,
        "subformat=dynamic,force_size=on",
        "dynamic",
    );
    let mut d = std::fs::read(&path).unwrap();
    let n = d.len();
    for at in [0, n - 512] {
        d[at + 28..at + 32].copy_from_slice(b"vpc ");
        d[at + 56..at + 60].copy_from_slice(&[0, 100, 4, 17]);
        d[at + 64..at + 68].fill(0);
        let sum = !d[at..at + 512]
            .iter()
            .fold(0u32, |a, &b| a.wrapping_add(u32::from(b)));
        d[at + 64..at + 68].copy_from_slice(&sum.to_be_bytes());
    }
    let vpc = dir.path().join("vpc.vhd");
    std::fs::write(&vpc, &d).unwrap();
    assert_eq!(qemu_virtual_size("vpc", &vpc), 100 * 4 * 17 * 512);
    let img = open_path(&vpc);
    assert_eq!(img.info().virtual_size, 4 * MIB);
    let codes: Vec<String> = img.check().into_iter().map(|f| f.code).collect();
    assert_eq!(codes, vec!["VHD.ChsSize"]);
}

/// `next_data` of a dynamic VHD: its runs cover every non-zero byte, what lies between them
/// reads as zeros, and the holes of a mostly empty disk are found.
#[test]
fn dynamic_next_data_finds_the_holes_and_misses_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, vhd) = preflight_testkit::three_extent_image(dir.path(), "vpc", "subformat=dynamic");
    let img = open_path(&vhd);
    let runs = preflight_disk::data_runs(&img).unwrap();
    assert_eq!(runs, preflight_testkit::THREE_EXTENT_RUNS);
    // qemu rounds the disk up to its CHS geometry: past the raw, the disk is zeros.
    preflight_testkit::assert_holes_read_zero(&img, &runs, &raw);
}
