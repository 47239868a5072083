//! Unit tests on images built in memory with fixed CRCs.
#![allow(clippy::cast_possible_truncation)] // test builders with small known sizes

use super::*;
use crate::header::build::fix_crc;
use crate::header::*;
use preflight_disk::{BlockRead, DiskImage, Format, ReadError};
use std::io;

const H1: usize = 64 * 1024;
const H2: usize = 128 * 1024;
const RT1: usize = 192 * 1024;
const RT2: usize = 256 * 1024;
const META: usize = 1 << 20;
const BAT: usize = 2 << 20;
const DATA: usize = 3 << 20;

/// What to build: layout is fixed (metadata at 1 MiB, BAT at 2 MiB, blocks
/// from 3 MiB in list order).
struct Spec {
    virtual_size: u64,
    block_size: u32,
    logical: u32,
    flags: u32,
    /// (payload block, fill byte)
    blocks: Vec<(u64, u8)>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            virtual_size: 2 << 20,
            block_size: 1 << 20,
            logical: 512,
            flags: 0,
            blocks: vec![(1, 0xab)],
        }
    }
}

fn put(buf: &mut [u8], at: usize, v: &[u8]) {
    buf[at..at + v.len()].copy_from_slice(v);
}

fn build(spec: &Spec) -> Vec<u8> {
    let bs = spec.block_size as usize;
    let mut img = vec![0u8; DATA + spec.blocks.len() * bs];
    put(&mut img, 0, b"vhdxfile");
    let creator: Vec<u8> = "unit test"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    put(&mut img, 8, &creator);
    for (at, seq) in [(H1, 1u64), (H2, 2)] {
        let h = &mut img[at..at + 4096];
        put(h, 0, b"head");
        put(h, 8, &seq.to_le_bytes());
        put(h, 66, &1u16.to_le_bytes());
        fix_crc(h);
    }
    for at in [RT1, RT2] {
        let t = &mut img[at..at + 65536];
        put(t, 0, b"regi");
        put(t, 8, &2u32.to_le_bytes());
        put(t, 16, &BAT_GUID);
        put(t, 32, &(BAT as u64).to_le_bytes());
        put(t, 40, &(1u32 << 20).to_le_bytes());
        put(t, 44, &1u32.to_le_bytes());
        put(t, 48, &METADATA_GUID);
        put(t, 64, &(META as u64).to_le_bytes());
        put(t, 72, &(1u32 << 20).to_le_bytes());
        put(t, 76, &1u32.to_le_bytes());
        fix_crc(t);
    }
    let m = &mut img[META..META + (1 << 20)];
    put(m, 0, b"metadata");
    put(m, 10, &5u16.to_le_bytes());
    let items: [([u8; 16], u32, u32); 5] = [
        (FILE_PARAMETERS, 0, 8),
        (VIRTUAL_DISK_SIZE, 8, 8),
        (VIRTUAL_DISK_ID, 16, 16),
        (LOGICAL_SECTOR_SIZE, 32, 4),
        (PHYSICAL_SECTOR_SIZE, 36, 4),
    ];
    for (n, (guid, off, len)) in items.iter().enumerate() {
        let e = 32 + n * 32;
        put(m, e, guid);
        put(m, e + 16, &(65536 + off).to_le_bytes());
        put(m, e + 20, &len.to_le_bytes());
        put(m, e + 24, &6u32.to_le_bytes());
    }
    put(m, 65536, &spec.block_size.to_le_bytes());
    put(m, 65540, &spec.flags.to_le_bytes());
    put(m, 65544, &spec.virtual_size.to_le_bytes());
    put(m, 65552, &[7u8; 16]);
    put(m, 65568, &spec.logical.to_le_bytes());
    put(m, 65572, &4096u32.to_le_bytes());
    let g = tables::Geometry::new(
        spec.virtual_size,
        u64::from(spec.block_size),
        u64::from(spec.logical),
        spec.flags & 2 != 0,
    );
    for (k, &(block, fill)) in spec.blocks.iter().enumerate() {
        let at = DATA + k * bs;
        let entry = at as u64 | tables::PAYLOAD_FULLY_PRESENT;
        put(
            &mut img,
            BAT + 8 * g.payload_index(block) as usize,
            &entry.to_le_bytes(),
        );
        img[at..at + bs].fill(fill);
    }
    img
}

fn open_vec(data: Vec<u8>) -> Result<VhdxImage, Finding> {
    open(Arc::new(data))
}

fn codes(img: &VhdxImage) -> Vec<String> {
    img.check().into_iter().map(|f| f.code).collect()
}

fn open_err(data: Vec<u8>) -> String {
    open_vec(data).expect_err("open must fail").code
}

fn set_meta_item(img: &mut [u8], off: usize, v: &[u8]) {
    put(img, META + 65536 + off, v);
}

fn set_bat(img: &mut [u8], index: usize, entry: u64) {
    put(img, BAT + 8 * index, &entry.to_le_bytes());
}

#[test]
fn clean_dynamic() {
    let img = open_vec(build(&Spec::default())).unwrap();
    let info = img.info();
    assert_eq!(info.format, Format::Vhdx);
    assert_eq!(info.subformat.as_deref(), Some("dynamic"));
    assert_eq!(info.virtual_size, 2 << 20);
    assert_eq!(info.allocated_size, 1 << 20);
    assert_eq!(info.cluster_size, Some(1 << 20));
    assert_eq!(info.version.as_deref(), Some("1"));
    assert!(info.features.contains(&"creator:unit test".to_string()));
    assert!(info
        .features
        .contains(&"logical_sector_size:512".to_string()));
    assert!(info
        .features
        .contains(&"physical_sector_size:4096".to_string()));
    assert_eq!(img.check(), Vec::<Finding>::new());
    let mut buf = vec![1u8; 4096];
    img.read_at((1 << 20) - 2048, &mut buf).unwrap();
    assert!(buf[..2048].iter().all(|&b| b == 0));
    assert!(buf[2048..].iter().all(|&b| b == 0xab));
    assert!(img.read_at(2 << 20, &mut buf[..1]).is_err());
    // Header 2 has the higher sequence number.
    assert_eq!(img.active, 1);
}

#[test]
fn fixed_flag_and_zero_states() {
    let mut raw = build(&Spec {
        flags: 1,
        ..Spec::default()
    });
    set_bat(&mut raw, 0, tables::PAYLOAD_ZERO | (5 << 20));
    let img = open_vec(raw).unwrap();
    assert_eq!(img.info().subformat.as_deref(), Some("fixed"));
    let mut buf = [1u8; 16];
    img.read_at(0, &mut buf).unwrap();
    assert_eq!(buf, [0; 16]);
    assert!(img.check().is_empty());
}

#[test]
fn headers() {
    let good = build(&Spec::default());
    // Both CRCs broken: fatal.
    let mut bad = good.clone();
    bad[H1 + 200] ^= 1;
    bad[H2 + 200] ^= 1;
    let f = open_vec(bad).unwrap_err();
    assert_eq!(f.code, "VHDX.NoValidHeader");
    assert!(f.message.contains("CRC-32C"), "{}", f.message);
    // One broken: a warning, the other is used.
    let mut bad = good.clone();
    bad[H2 + 200] ^= 1;
    let img = open_vec(bad).unwrap();
    assert_eq!(img.active, 0);
    assert_eq!(codes(&img), vec!["VHDX.HeaderCorrupt"]);
    assert!(!preflight_report::has_errors(&img.check()));
    // Version 2 makes a header invalid too.
    let mut bad = good.clone();
    put(&mut bad, H1 + 66, &2u16.to_le_bytes());
    fix_crc(&mut bad[H1..H1 + 4096]);
    let img = open_vec(bad).unwrap();
    assert_eq!(codes(&img), vec!["VHDX.HeaderCorrupt"]);
    // Signature.
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(open_err(bad), "VHDX.Signature");
    assert_eq!(open_err(vec![0u8; 10]), "VHDX.Signature");
    assert_eq!(open_err(good[..68_000].to_vec()), "VHDX.NoValidHeader");
}

#[test]
fn log_guid_needs_replay() {
    let mut raw = build(&Spec::default());
    for h in [H1, H2] {
        put(&mut raw, h + 48, &[9u8; 16]);
        put(&mut raw, h + 68, &(1u32 << 20).to_le_bytes());
        put(&mut raw, h + 72, &(3u64 << 20).to_le_bytes());
        fix_crc(&mut raw[h..h + 4096]);
    }
    raw.resize(5 << 20, 0);
    let img = open_vec(raw).unwrap();
    let f = img.check();
    let replay = f.iter().find(|f| f.code == "VHDX.LogReplay").unwrap();
    assert!(replay.is_error());
    assert!(replay.hint.contains("qemu-img check -r all"));
    assert!(img
        .info()
        .features
        .contains(&"log_replay_needed".to_string()));
    let mut buf = [0u8; 8];
    assert!(matches!(
        img.read_at(0, &mut buf),
        Err(ReadError::Unsupported(
            preflight_disk::Unreadable::LogReplay
        ))
    ));
    // The log sits on the first block, which is also reported.
    assert!(
        codes(&img).contains(&"VHDX.BlockOverlap".to_string()),
        "{:?}",
        codes(&img)
    );
}

#[test]
fn region_tables() {
    let good = build(&Spec::default());
    let mut bad = good.clone();
    bad[RT1 + 100] ^= 1;
    let img = open_vec(bad.clone()).unwrap();
    assert_eq!(img.used_table, 1);
    assert_eq!(codes(&img), vec!["VHDX.RegionTableCopy"]);
    bad[RT2 + 100] ^= 1;
    assert_eq!(open_err(bad), "VHDX.RegionTable");

    let with_entry = |guid: [u8; 16], required: u32| {
        let mut d = good.clone();
        for t in [RT1, RT2] {
            put(&mut d, t + 8, &3u32.to_le_bytes());
            put(&mut d, t + 80, &guid);
            put(&mut d, t + 96, &(8u64 << 20).to_le_bytes());
            put(&mut d, t + 104, &(1u32 << 20).to_le_bytes());
            put(&mut d, t + 108, &required.to_le_bytes());
            fix_crc(&mut d[t..t + 65536]);
        }
        d
    };
    assert_eq!(
        open_err(with_entry([5; 16], 1)),
        "VHDX.UnknownRequiredRegion"
    );
    assert!(open_vec(with_entry([5; 16], 0)).unwrap().check().is_empty());
    assert_eq!(open_err(with_entry(BAT_GUID, 0)), "VHDX.RegionEntry");

    // BAT region past EOF.
    let mut d = good.clone();
    for t in [RT1, RT2] {
        put(&mut d, t + 32, &(1u64 << 40).to_le_bytes());
        fix_crc(&mut d[t..t + 65536]);
    }
    assert_eq!(open_err(d), "VHDX.RegionPastEof");

    // BAT region on top of the metadata region, misaligned.
    let mut d = good.clone();
    for t in [RT1, RT2] {
        put(&mut d, t + 32, &((META + 4096) as u64).to_le_bytes());
        fix_crc(&mut d[t..t + 65536]);
    }
    let c = codes(&open_vec(d).unwrap());
    assert!(c.contains(&"VHDX.RegionOverlap".to_string()), "{c:?}");
    assert!(c.contains(&"VHDX.RegionAlignment".to_string()), "{c:?}");
}

#[test]
fn metadata_values() {
    let good = build(&Spec::default());
    for bs in [0u32, 512 << 10, 3 << 20, 512 << 20] {
        let mut d = good.clone();
        set_meta_item(&mut d, 0, &bs.to_le_bytes());
        assert_eq!(open_err(d), "VHDX.BlockSize", "{bs}");
    }
    let mut d = good.clone();
    set_meta_item(&mut d, 32, &1000u32.to_le_bytes());
    assert_eq!(open_err(d), "VHDX.LogicalSectorSize");
    let mut d = good.clone();
    set_meta_item(&mut d, 8, &((64u64 << 40) + 512).to_le_bytes());
    assert_eq!(open_err(d), "VHDX.VirtualSize");
    let mut d = good.clone();
    set_meta_item(&mut d, 8, &(1u64 << 40).to_le_bytes());
    assert_eq!(open_err(d), "VHDX.BatTooSmall");
    let mut d = good.clone();
    set_meta_item(&mut d, 8, &((2u64 << 20) - 100).to_le_bytes());
    assert_eq!(codes(&open_vec(d).unwrap()), vec!["VHDX.VirtualSize"]);
    let mut d = good.clone();
    set_meta_item(&mut d, 36, &1000u32.to_le_bytes());
    assert_eq!(
        codes(&open_vec(d).unwrap()),
        vec!["VHDX.PhysicalSectorSize"]
    );
    // Table problems.
    let mut d = good.clone();
    d[META] = b'X';
    assert_eq!(open_err(d), "VHDX.MetadataTable");
    let mut d = good.clone();
    put(&mut d, META + 32, &[3u8; 16]); // file parameters entry becomes unknown, required
    assert_eq!(open_err(d), "VHDX.UnknownRequiredMetadata");
    let mut d = good.clone();
    put(&mut d, META + 32 + 24, &0u32.to_le_bytes());
    put(&mut d, META + 32, &[3u8; 16]); // now unknown and optional: params missing
    assert_eq!(open_err(d), "VHDX.MetadataMissing");
    let mut d = good.clone();
    put(&mut d, META + 64, &FILE_PARAMETERS); // listed twice
    assert_eq!(open_err(d), "VHDX.MetadataTable");
    let mut d = good.clone();
    put(&mut d, META + 32 + 16, &(2u32 << 20).to_le_bytes()); // item outside the region
    assert_eq!(open_err(d), "VHDX.MetadataItem");
    let mut d = good.clone();
    put(&mut d, META + 32 + 20, &4u32.to_le_bytes()); // too short
    assert_eq!(open_err(d), "VHDX.MetadataItem");
}

#[test]
fn bat_entries() {
    let good = build(&Spec {
        virtual_size: 4 << 20,
        blocks: vec![(0, 1), (1, 2), (3, 3)],
        ..Spec::default()
    });
    // Past EOF.
    let mut d = good.clone();
    set_bat(&mut d, 1, (1 << 30) | tables::PAYLOAD_FULLY_PRESENT);
    let img = open_vec(d).unwrap();
    assert_eq!(codes(&img), vec!["VHDX.BlockPastEof"]);
    let mut buf = [0u8; 8];
    let Err(ReadError::Corrupt(fault)) = img.read_at(1 << 20, &mut buf) else {
        panic!("a block past the end of the file reads");
    };
    assert!(
        matches!(
            fault.downcast_ref::<crate::ReadFault>(),
            Some(crate::ReadFault::BlockPastEnd { block: 1, start, .. }) if *start == 1 << 30
        ),
        "{fault:?}"
    );
    img.read_at(0, &mut buf).unwrap();
    assert_eq!(buf, [1; 8]);
    // Two entries on one block.
    let mut d = good.clone();
    set_bat(&mut d, 3, DATA as u64 | tables::PAYLOAD_FULLY_PRESENT);
    assert_eq!(codes(&open_vec(d).unwrap()), vec!["VHDX.BlockOverlap"]);
    // A block on the metadata region.
    let mut d = good.clone();
    set_bat(&mut d, 2, META as u64 | tables::PAYLOAD_FULLY_PRESENT);
    assert_eq!(codes(&open_vec(d).unwrap()), vec!["VHDX.BlockOverlap"]);
    // Invalid states.
    for state in [4u64, tables::PAYLOAD_PARTIALLY_PRESENT] {
        let mut d = good.clone();
        set_bat(&mut d, 2, (5 << 20) | state);
        let img = open_vec(d).unwrap();
        assert_eq!(codes(&img), vec!["VHDX.BatEntryState"]);
        let mut buf = [0u8; 8];
        assert!(img.read_at(2 << 20, &mut buf).is_err());
    }
}

#[test]
fn differencing_opens_but_is_refused() {
    let mut raw = build(&Spec {
        flags: 2,
        ..Spec::default()
    });
    let img = open_vec(raw.clone()).unwrap();
    assert_eq!(img.info().subformat.as_deref(), Some("differencing"));
    let c = codes(&img);
    assert!(c.contains(&"VHDX.Differencing".to_string()));
    assert!(c.contains(&"VHDX.MetadataMissing".to_string()));
    let mut buf = [0u8; 4];
    assert!(matches!(
        img.read_at(0, &mut buf),
        Err(ReadError::Unsupported(_))
    ));

    // With a parent locator naming the parent.
    let key: Vec<u8> = "relative_path"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let val: Vec<u8> = "base.vhdx"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut item = vec![0u8; 20];
    item[18..20].copy_from_slice(&1u16.to_le_bytes());
    item.extend_from_slice(&32u32.to_le_bytes());
    item.extend_from_slice(&(32 + key.len() as u32).to_le_bytes());
    item.extend_from_slice(&(key.len() as u16).to_le_bytes());
    item.extend_from_slice(&(val.len() as u16).to_le_bytes());
    item.extend_from_slice(&key);
    item.extend_from_slice(&val);
    put(&mut raw, META + 10, &6u16.to_le_bytes());
    put(&mut raw, META + 32 * 6, &PARENT_LOCATOR);
    put(
        &mut raw,
        META + 32 * 6 + 16,
        &(65536u32 + 1024).to_le_bytes(),
    );
    put(
        &mut raw,
        META + 32 * 6 + 20,
        &(item.len() as u32).to_le_bytes(),
    );
    put(&mut raw, META + 32 * 6 + 24, &6u32.to_le_bytes());
    set_meta_item(&mut raw, 1024, &item);
    let img = open_vec(raw).unwrap();
    assert_eq!(img.info().backing_file.as_deref(), Some("base.vhdx"));
    assert_eq!(codes(&img), vec!["VHDX.Differencing"]);
    assert!(img.check()[0].message.contains("base.vhdx"));
}

#[test]
fn rules_are_unique() {
    let mut seen = std::collections::BTreeSet::new();
    for r in RULES {
        assert!(seen.insert(r.code), "duplicate {}", r.code);
        assert!(r.code.starts_with("VHDX."));
    }
}

#[test]
fn guid_text() {
    assert_eq!(guid_str(&BAT_GUID), "2dc27766-f623-4200-9d64-115e9bfd4a08");
}

/// `base` with some bytes replaced, without copying it.
struct Patched {
    base: Arc<Vec<u8>>,
    patches: Vec<(u64, u8)>,
}

impl Source for Patched {
    fn size(&self) -> u64 {
        self.base.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.base.as_slice().read_exact_at(offset, buf)?;
        for &(at, v) in &self.patches {
            if at >= offset && at < offset + buf.len() as u64 {
                buf[(at - offset) as usize] = v;
            }
        }
        Ok(())
    }
}

/// One-byte changes of every field that matters (with the CRCs left
/// wrong, and in the metadata and BAT, which carry none) never panic.
#[test]
fn byte_mutations_are_safe() {
    let base = Arc::new(build(&Spec {
        virtual_size: 3 << 20,
        blocks: vec![(0, 1), (2, 2)],
        ..Spec::default()
    }));
    let mut positions: Vec<usize> = (0..16).collect();
    for at in [H1, H2, RT1, RT2] {
        positions.extend(at..at + 128);
    }
    positions.extend(META..META + 256);
    positions.extend(META + 65536..META + 65536 + 48);
    positions.extend(BAT..BAT + 32);
    for pos in positions {
        for v in [0u8, 0xff, 0x80, 0x07, 0x40] {
            let src = Patched {
                base: base.clone(),
                patches: vec![(pos as u64, v)],
            };
            if let Ok(img) = open(Arc::new(src)) {
                let _ = img.check();
                let mut buf = vec![0u8; 70_000];
                let size = img.size();
                for off in [0, size / 2, size.saturating_sub(70_000)] {
                    let len = (size - off.min(size)).min(70_000) as usize;
                    let _ = img.read_at(off, &mut buf[..len]);
                }
            }
        }
    }
}
