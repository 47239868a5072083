//! Unit tests on images built in memory with fixed checksums.
#![allow(clippy::cast_possible_truncation)] // test builders with small known sizes

use super::*;
use crate::check::MAX_PER_CODE;
use crate::header::build::{dyn_header, fix_dyn, fix_footer, footer, put};
use crate::header::{DISK_DIFFERENCING, DISK_DYNAMIC, DISK_FIXED};
use preflight_disk::{BlockRead, DiskImage, ReadError};

const MIB2: u32 = 2 << 20;

/// A dynamic disk: footer copy, header at 512, BAT at 1536, then the listed
/// blocks in order (bitmap all ones, data filled with `fill`), then the footer.
fn dynamic(block_size: u32, entries: u32, size: u64, blocks: &[(u32, u8)]) -> Vec<u8> {
    let bs = u64::from(block_size);
    let bitmap = tables::bitmap_size(bs);
    let bat_len = (u64::from(entries) * 4).div_ceil(512) * 512;
    let mut bat = vec![0xffu8; bat_len as usize];
    let mut img = vec![0u8; 1536];
    let f = footer(DISK_DYNAMIC, size, 512);
    img[..512].copy_from_slice(&f);
    img[512..1536].copy_from_slice(&dyn_header(1536, entries, block_size));
    let mut next = 1536 + bat_len;
    let mut data = Vec::new();
    for &(idx, fill) in blocks {
        put(
            &mut bat,
            idx as usize * 4,
            &((next / 512) as u32).to_be_bytes(),
        );
        data.extend(std::iter::repeat_n(0xffu8, bitmap as usize));
        data.extend(std::iter::repeat_n(fill, bs as usize));
        next += bitmap + bs;
    }
    img.extend_from_slice(&bat);
    img.extend_from_slice(&data);
    img.extend_from_slice(&f);
    img
}

fn fixed(data: &[u8]) -> Vec<u8> {
    let mut img = data.to_vec();
    img.extend_from_slice(&footer(DISK_FIXED, data.len() as u64, u64::MAX));
    img
}

fn codes(img: &VhdImage) -> Vec<String> {
    img.check().into_iter().map(|f| f.code).collect()
}

fn open_err(data: Vec<u8>) -> String {
    open(Arc::new(data)).expect_err("open must fail").code
}

/// Overwrites the end footer and its copy at 0 with a mutated footer.
fn mutate_footers(img: &mut [u8], f: impl Fn(&mut [u8])) {
    let n = img.len();
    let mut foot = img[n - 512..].to_vec();
    f(&mut foot);
    fix_footer(&mut foot);
    img[n - 512..].copy_from_slice(&foot);
    img[..512].copy_from_slice(&foot);
}

fn mutate_header(img: &mut [u8], f: impl Fn(&mut [u8])) {
    f(&mut img[512..1536]);
    fix_dyn(&mut img[512..1536]);
}

#[test]
fn clean_dynamic_opens_reads_and_checks_clean() {
    let img = open(Arc::new(dynamic(
        MIB2,
        2,
        2 * u64::from(MIB2),
        &[(1, 0xab)],
    )))
    .unwrap();
    let info = img.info();
    assert_eq!(info.format, Format::Vhd);
    assert_eq!(info.subformat.as_deref(), Some("dynamic"));
    assert_eq!(info.virtual_size, 4 << 20);
    assert_eq!(info.allocated_size, 2 << 20);
    assert_eq!(info.cluster_size, Some(2 << 20));
    assert_eq!(info.version.as_deref(), Some("1.0"));
    assert!(info.features.contains(&"creator:qem2".to_string()));
    assert_eq!(img.check(), Vec::<Finding>::new());
    let mut buf = vec![1u8; 4096];
    img.read_at((2 << 20) - 2048, &mut buf).unwrap();
    assert!(buf[..2048].iter().all(|&b| b == 0));
    assert!(buf[2048..].iter().all(|&b| b == 0xab));
    assert!(img.read_at(4 << 20, &mut buf[..1]).is_err());
    img.read_at((4 << 20) - 1, &mut buf[..1]).unwrap();
    assert_eq!(buf[0], 0xab);
}

#[test]
fn clean_fixed() {
    let data: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    let raw = fixed(&data);
    assert!(has_footer_at_end(&raw));
    assert!(!has_footer_at_end(&data));
    let img = open(Arc::new(raw)).unwrap();
    assert_eq!(img.info().subformat.as_deref(), Some("fixed"));
    assert_eq!(img.size(), 8192);
    assert_eq!(img.info().allocated_size, 8192);
    assert!(img.check().is_empty(), "{:?}", img.check());
    let mut buf = vec![0u8; 100];
    img.read_at(1000, &mut buf).unwrap();
    assert_eq!(&buf[..], &data[1000..1100]);
}

#[test]
fn fixed_with_bad_footer_checksum_does_not_open() {
    let data = vec![7u8; 4096];
    let mut raw = fixed(&data);
    let n = raw.len();
    raw[n - 512 + 48] ^= 0x40; // current_size, checksum left stale
    let stored = u32::from_be_bytes(raw[n - 512 + 64..n - 512 + 68].try_into().unwrap());
    let computed = header::footer_checksum(&raw[n - 512..]);
    let f = open(Arc::new(raw)).expect_err("the only footer is not believed");
    assert_eq!(f.code, "VHD.FooterChecksum");
    assert!(
        f.message.contains("at the end of the file"),
        "{}",
        f.message
    );
    assert!(!f.message.contains("offset 0"), "{}", f.message);
    assert!(
        f.message.contains(&format!("{stored:#010x}")),
        "{}",
        f.message
    );
    assert!(
        f.message.contains(&format!("{computed:#010x}")),
        "{}",
        f.message
    );
}

/// A file that merely ends in something starting with `conectix` (the
/// format detector calls it VHD) gives an error, never a size.
#[test]
fn conectix_lookalike_tail_does_not_open() {
    let mut raw = vec![0u8; 8192];
    let n = raw.len();
    raw[n - 512..n - 504].copy_from_slice(b"conectix");
    for (i, b) in raw[n - 504..].iter_mut().enumerate() {
        *b = (i * 37 % 251) as u8;
    }
    assert!(has_footer_at_end(&raw));
    assert_eq!(open_err(raw), "VHD.FooterChecksum");
}

#[test]
fn fixed_size_mismatch() {
    let mut raw = fixed(&[0u8; 4096]);
    mutate_footers(&mut raw, |f| put(f, 48, &8192u64.to_be_bytes()));
    raw[..512].fill(0);
    let img = open(Arc::new(raw)).unwrap();
    assert!(codes(&img).contains(&"VHD.FixedFileSize".to_string()));
    let mut buf = [0u8; 16];
    let Err(ReadError::Corrupt(fault)) = img.read_at(8000, &mut buf) else {
        panic!("a read past the fixed disk's data area succeeds");
    };
    assert!(
        matches!(
            fault.downcast_ref::<crate::ReadFault>(),
            Some(crate::ReadFault::FixedPastEnd { offset: 8000, .. })
        ),
        "{fault:?}"
    );
    img.read_at(0, &mut buf).unwrap();
}

#[test]
fn fatal_open_errors() {
    assert_eq!(open_err(vec![0u8; 100]), "VHD.TooSmall");
    assert_eq!(open_err(vec![0u8; 4096]), "VHD.Cookie");
    let good = dynamic(MIB2, 2, 4 << 20, &[]);

    let mut bad = good.clone();
    mutate_footers(&mut bad, |f| put(f, 60, &5u32.to_be_bytes()));
    assert_eq!(open_err(bad), "VHD.DiskType");

    let mut bad = good.clone();
    mutate_footers(&mut bad, |f| put(f, 16, &(1u64 << 40).to_be_bytes()));
    assert_eq!(open_err(bad), "VHD.DataOffset");

    let mut bad = good.clone();
    mutate_header(&mut bad, |h| h[0] = b'X');
    assert_eq!(open_err(bad), "VHD.DynamicHeaderCookie");

    for bs in [0u32, 256, 3000, 0x8000_0001] {
        let mut bad = good.clone();
        mutate_header(&mut bad, |h| put(h, 32, &bs.to_be_bytes()));
        assert_eq!(
            open_err(bad),
            "InvalidBlockSize.NotSupport",
            "block size {bs}"
        );
    }

    let mut bad = good.clone();
    mutate_header(&mut bad, |h| put(h, 16, &(1u64 << 33).to_be_bytes()));
    assert_eq!(open_err(bad), "VHD.BatPastEof");

    let mut bad = good.clone();
    mutate_header(&mut bad, |h| put(h, 28, &100_000u32.to_be_bytes()));
    assert_eq!(open_err(bad), "VHD.BatPastEof");
}

/// Like qemu's sample afl5.img: 1073741825 entries of 512-byte blocks.
#[test]
fn afl5_like_huge_table() {
    let mut img = dynamic(512, 2, 34816, &[]);
    mutate_header(&mut img, |h| put(h, 28, &1_073_741_825u32.to_be_bytes()));
    assert_eq!(open_err(img), "VHD.MaxTableEntries");
}

#[test]
fn checksums_and_copies() {
    let good = dynamic(MIB2, 2, 4 << 20, &[(0, 1)]);
    let n = good.len();

    // Bad checksum at the end: the copy at 0 is used, both problems reported.
    let mut bad = good.clone();
    bad[n - 512 + 70] ^= 1;
    let img = open(Arc::new(bad)).unwrap();
    let c = codes(&img);
    assert!(c.contains(&"VHD.FooterChecksum".to_string()), "{c:?}");
    assert!(c.contains(&"VHD.FooterCopyMismatch".to_string()), "{c:?}");

    // Bad checksum in the copy at 0 only: opens by the end footer, reported.
    let mut bad = good.clone();
    bad[70] ^= 1;
    let img = open(Arc::new(bad)).unwrap();
    assert_eq!(img.size(), 4 << 20);
    let c = codes(&img);
    assert!(c.contains(&"VHD.FooterChecksum".to_string()), "{c:?}");

    // Both footers' checksums bad: nothing is believed, open fails.
    let mut bad = good.clone();
    bad[64] ^= 1;
    bad[n - 512 + 64] ^= 1;
    let stored = u32::from_be_bytes(bad[64..68].try_into().unwrap());
    let computed = header::footer_checksum(&bad[..512]);
    let f = open(Arc::new(bad)).expect_err("no footer to believe");
    assert_eq!(f.code, "VHD.FooterChecksum");
    assert!(f.is_error());
    for place in ["at the end of the file", "copy at offset 0"] {
        assert!(f.message.contains(place), "{}", f.message);
    }
    assert!(
        f.message.contains(&format!("{stored:#010x}"))
            && f.message.contains(&format!("{computed:#010x}")),
        "{}",
        f.message
    );

    // A bad size field in both footers (checksums left stale) yields no size.
    let mut bad = good.clone();
    put(&mut bad, 48, &(1u64 << 40).to_be_bytes());
    put(&mut bad, n - 512 + 48, &(1u64 << 40).to_be_bytes());
    assert_eq!(open_err(bad), "VHD.FooterChecksum");

    // End footer gone (truncated): opens by the copy, FooterMissing.
    let mut bad = good.clone();
    bad.truncate(n - 512);
    let img = open(Arc::new(bad)).unwrap();
    assert!(codes(&img).contains(&"VHD.FooterMissing".to_string()));
    let mut buf = [0u8; 8];
    img.read_at(0, &mut buf).unwrap();
    assert_eq!(buf, [1u8; 8]);

    let mut bad = good.clone();
    bad[512 + 40] ^= 1;
    let img = open(Arc::new(bad)).unwrap();
    assert_eq!(codes(&img), vec!["VHD.HeaderChecksum"]);
}

#[test]
fn footer_field_findings() {
    let good = dynamic(MIB2, 2, 4 << 20, &[]);
    let cases: [(usize, &[u8], &str); 4] = [
        (8, &[0, 0, 0, 0], "VHD.Features"),
        (12, &[0, 2, 0, 0], "VHD.Version"),
        (84, &[1], "VHD.SavedState"),
        (48, &(0xff00_0001u64 * 512).to_be_bytes(), "VHD.TooLarge"),
    ];
    for (at, bytes, code) in cases {
        let mut bad = good.clone();
        mutate_footers(&mut bad, |f| put(f, at, bytes));
        let img = open(Arc::new(bad)).unwrap();
        assert!(
            codes(&img).contains(&code.to_string()),
            "{code}: {:?}",
            codes(&img)
        );
    }
    // qemu's CHS rule for creator "qemu".
    let mut bad = good.clone();
    mutate_footers(&mut bad, |f| {
        put(f, 28, b"qemu");
        put(f, 56, &[0, 100, 4, 17]);
    });
    let img = open(Arc::new(bad)).unwrap();
    assert_eq!(codes(&img), vec!["VHD.ChsSize"]);
}

#[test]
fn table_size_rules() {
    // Table smaller than the disk: ECS InvalidVHDImage.IncorrectSize.
    let img = open(Arc::new(dynamic(MIB2, 2, 5 << 20, &[]))).unwrap();
    assert_eq!(codes(&img), vec!["InvalidVHDImage.IncorrectSize"]);
    // Reads past the table are zeros, like qemu.
    let mut buf = [1u8; 4];
    img.read_at(4 << 20, &mut buf).unwrap();
    assert_eq!(buf, [0; 4]);
    // Table larger than the disk (what qemu writes without force_size).
    let img = open(Arc::new(dynamic(MIB2, 3, 5 << 20, &[]))).unwrap();
    assert_eq!(codes(&img), vec!["VHD.TableSizeNotExact"]);
    // Unusual block size.
    let img = open(Arc::new(dynamic(4096, 4, 16384, &[(3, 9)]))).unwrap();
    assert_eq!(codes(&img), vec!["VHD.UnusualBlockSize"]);
    let mut buf = [0u8; 4];
    img.read_at(16380, &mut buf).unwrap();
    assert_eq!(buf, [9; 4]);
}

#[test]
fn bat_entry_problems() {
    let good = dynamic(4096, 4, 16384, &[(0, 1), (1, 2)]);
    let bat = 1536;
    // Entry past EOF.
    let mut bad = good.clone();
    put(&mut bad, bat + 4, &0x00ff_0000u32.to_be_bytes());
    let img = open(Arc::new(bad)).unwrap();
    assert!(codes(&img).contains(&"VHD.BlockPastEof".to_string()));
    let mut buf = [0u8; 8];
    let Err(ReadError::Corrupt(fault)) = img.read_at(4096, &mut buf) else {
        panic!("a block past the data area reads");
    };
    assert!(
        matches!(
            fault.downcast_ref::<crate::ReadFault>(),
            Some(crate::ReadFault::BlockPastEnd { block_start, .. }) if *block_start == 0x00ff_0000 * 512
        ),
        "{fault:?}"
    );
    img.read_at(0, &mut buf).unwrap();

    // Two entries pointing at the same block, and one into the next block.
    let first = u32::from_be_bytes(good[bat..bat + 4].try_into().unwrap());
    let mut bad = good.clone();
    put(&mut bad, bat + 4, &(first + 1).to_be_bytes());
    put(&mut bad, bat + 8, &first.to_be_bytes());
    let img = open(Arc::new(bad)).unwrap();
    let overlaps = img
        .check()
        .into_iter()
        .filter(|f| f.code == "VHD.BlockOverlap")
        .count();
    assert_eq!(overlaps, 2, "{:?}", img.check());

    // A block on top of the dynamic header.
    let mut bad = good.clone();
    put(&mut bad, bat + 12, &1u32.to_be_bytes());
    let img = open(Arc::new(bad)).unwrap();
    assert!(codes(&img).contains(&"VHD.BlockOverlap".to_string()));

    // The BAT on top of the dynamic header.
    let mut bad = good.clone();
    mutate_header(&mut bad, |h| put(h, 16, &1024u64.to_be_bytes()));
    let img = open(Arc::new(bad)).unwrap();
    assert!(
        codes(&img).contains(&"VHD.MetadataOverlap".to_string()),
        "{:?}",
        codes(&img)
    );
}

/// Every entry of a 60,000-entry BAT at sector 0 (a zeroed table): each breaks two rules,
/// the first 20 findings of a code are written out and the rest only counted.
#[test]
fn zeroed_bat_is_capped_and_counted() {
    let entries = 60_000u32;
    let mut img = dynamic(MIB2, entries, u64::from(entries) * u64::from(MIB2), &[]);
    let bat = 1536;
    img[bat..bat + entries as usize * 4].fill(0);
    let findings = open(Arc::new(img)).unwrap().check();
    let of = |code: &str| {
        findings
            .iter()
            .filter(|f| f.code == code)
            .collect::<Vec<_>>()
    };
    let past_eof = of("VHD.BlockPastEof");
    assert_eq!(past_eof.len(), MAX_PER_CODE + 1);
    assert!(
        past_eof[MAX_PER_CODE]
            .message
            .contains(&format!("({entries} in all)")),
        "{}",
        past_eof[MAX_PER_CODE].message
    );
    // Each entry overlaps the metadata at offset 0 and its neighbour in the sorted table.
    let overlap = of("VHD.BlockOverlap");
    assert_eq!(overlap.len(), MAX_PER_CODE + 1);
    assert!(
        overlap[MAX_PER_CODE]
            .message
            .contains(&format!("({} in all)", 2 * entries - 1)),
        "{}",
        overlap[MAX_PER_CODE].message
    );
}

#[test]
fn differencing_opens_but_is_refused() {
    let mut raw = dynamic(MIB2, 2, 4 << 20, &[(0, 3)]);
    mutate_footers(&mut raw, |f| put(f, 60, &DISK_DIFFERENCING.to_be_bytes()));
    let name: Vec<u8> = "parent.vhd"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    mutate_header(&mut raw, |h| put(h, 64, &name));
    let img = open(Arc::new(raw)).unwrap();
    assert_eq!(img.info().subformat.as_deref(), Some("differencing"));
    assert_eq!(img.info().backing_file.as_deref(), Some("parent.vhd"));
    let f = img.check();
    let d = f.iter().find(|f| f.code == "VHD.Differencing").unwrap();
    assert!(d.is_error());
    assert!(d.message.contains("parent.vhd"));
    let mut buf = [0u8; 4];
    assert!(matches!(
        img.read_at(0, &mut buf),
        Err(ReadError::Unsupported(_))
    ));
}

#[test]
fn rules_are_unique_and_cover_open_errors() {
    let mut seen = std::collections::BTreeSet::new();
    for r in RULES {
        assert!(seen.insert(r.code), "duplicate {}", r.code);
        assert!(!r.hint.is_empty() && !r.summary.is_empty());
    }
    assert!(seen.contains("InvalidVHDImage.IncorrectSize"));
    assert!(seen.contains("InvalidBlockSize.NotSupport"));
}

/// Every one-byte change of the metadata (footer copy, header, BAT, footer)
/// opens or fails cleanly; checks and reads never panic.
#[test]
fn every_metadata_byte_mutation_is_safe() {
    let good = dynamic(4096, 4, 16384, &[(0, 1), (2, 2)]);
    let n = good.len();
    let positions: Vec<usize> = (0..2048).chain(n - 512..n).collect();
    for pos in positions {
        for v in [0x00u8, 0xff, 0x80, 0x01] {
            let mut bad = good.clone();
            bad[pos] = v;
            exercise(bad);
            let mut fixed_sums = good.clone();
            fixed_sums[pos] = v;
            fix_footer(&mut fixed_sums[..512]);
            fix_dyn(&mut fixed_sums[512..1536]);
            let len = fixed_sums.len();
            fix_footer(&mut fixed_sums[len - 512..]);
            exercise(fixed_sums);
        }
    }
}

fn exercise(data: Vec<u8>) {
    if let Ok(img) = open(Arc::new(data)) {
        let _ = img.check();
        let size = img.size();
        let mut buf = vec![0u8; 5000];
        for off in [
            0,
            size / 2,
            size.saturating_sub(5000),
            size.saturating_sub(1),
        ] {
            let len = buf
                .len()
                .min(usize::try_from(size - off.min(size)).unwrap_or(0));
            let _ = img.read_at(off, &mut buf[..len]);
        }
    }
}
