//! A small VMDK sparse writer for tests: monolithicSparse, qemu-style
//! streamOptimized (grain directory inline) and VMware-style
//! streamOptimized (grain directory at the end, found through the footer).
//! Shared by the unit tests (`#[path]`) and the integration tests.
#![allow(dead_code, clippy::cast_possible_truncation)]

use flate2::write::ZlibEncoder;
use flate2::Compression;
use std::io::Write;

/// How to write the image.
#[derive(Debug, Clone)]
pub struct Options {
    pub grain_sectors: u64,
    pub gtes: u32,
    pub compressed: bool,
    pub gd_at_end: bool,
    pub redundant: bool,
    pub version: u32,
    /// The embedded descriptor; `None` for the default one.
    pub descriptor: Option<String>,
}

impl Options {
    pub fn sparse() -> Self {
        Options {
            grain_sectors: 16,
            gtes: 4,
            compressed: false,
            gd_at_end: false,
            redundant: true,
            version: 1,
            descriptor: None,
        }
    }

    pub fn stream(gd_at_end: bool) -> Self {
        Options {
            compressed: true,
            gd_at_end,
            redundant: !gd_at_end,
            version: 3,
            ..Options::sparse()
        }
    }
}

/// Where things were put, for targeted corruption.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub bytes: Vec<u8>,
    /// Byte offset of the (primary) grain directory.
    pub gd: u64,
    /// Byte offset of the redundant grain directory, if any.
    pub rgd: Option<u64>,
    /// Byte offsets of the grain tables, by directory index (0 = none).
    pub gts: Vec<u64>,
    /// Byte offsets of the grains (or their markers), by grain index.
    pub grains: Vec<(u64, u64)>,
    /// Byte offset of the footer header copy (GD at end).
    pub footer: Option<u64>,
}

const S: u64 = 512;

fn div_ceil(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

fn pad(v: &mut Vec<u8>) {
    let len = v.len().div_ceil(512) * 512;
    v.resize(len, 0);
}

fn sector_of(v: &[u8]) -> u64 {
    v.len() as u64 / S
}

#[allow(clippy::too_many_arguments)]
fn header(
    o: &Options,
    capacity: u64,
    desc_sectors: u64,
    rgd: u64,
    gd: u64,
    overhead: u64,
) -> Vec<u8> {
    let mut flags = 0x1u32;
    if o.redundant {
        flags |= 0x2;
    }
    if o.compressed {
        flags |= 0x1_0000 | 0x2_0000;
    }
    let mut b = Vec::new();
    b.extend_from_slice(b"KDMV");
    b.extend_from_slice(&o.version.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&capacity.to_le_bytes());
    b.extend_from_slice(&o.grain_sectors.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&desc_sectors.to_le_bytes());
    b.extend_from_slice(&o.gtes.to_le_bytes());
    b.extend_from_slice(&rgd.to_le_bytes());
    b.extend_from_slice(&gd.to_le_bytes());
    b.extend_from_slice(&overhead.to_le_bytes());
    b.push(0);
    b.extend_from_slice(b"\n \r\n");
    b.extend_from_slice(&(if o.compressed { 1u16 } else { 0 }).to_le_bytes());
    b.resize(512, 0);
    b
}

fn marker(value: u64, kind: u32) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&value.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(&kind.to_le_bytes());
    m.resize(512, 0);
    m
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// Writes `raw` (its length a multiple of 512) as a sparse VMDK. All-zero
/// grains are left unallocated.
pub fn write(raw: &[u8], o: &Options) -> Layout {
    assert_eq!(raw.len() % 512, 0);
    let capacity = raw.len() as u64 / S;
    let grain_bytes = o.grain_sectors * S;
    let gtes = u64::from(o.gtes);
    let grains = div_ceil(capacity, o.grain_sectors);
    let l1 = div_ceil(capacity, gtes * o.grain_sectors);
    let gt_sectors = div_ceil(gtes * 4, S);
    let gd_sectors = div_ceil(l1 * 4, S).max(1);
    let create_type = if o.compressed {
        "streamOptimized"
    } else {
        "monolithicSparse"
    };
    let desc = o.descriptor.clone().unwrap_or_else(|| {
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"{create_type}\"\n\n# Extent description\nRW {capacity} SPARSE \"test.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"6\"\n"
        )
    });
    let desc_sectors = div_ceil(desc.len() as u64, S).max(1);

    // Grain table contents: sector of each grain (0 = unallocated).
    let mut gte = vec![0u32; (l1 * gtes) as usize];
    let mut layout = Layout::default();

    let mut meta = Vec::new(); // sectors 1.. (descriptor, directories, tables)
    meta.extend_from_slice(desc.as_bytes());
    pad(&mut meta);
    meta.resize((desc_sectors * S) as usize, 0);
    let mut next = 1 + desc_sectors; // next free sector
    let (mut rgd_sector, mut rgt_start, mut gd_sector, mut gt_start) = (0, 0, 0, 0);
    if !o.gd_at_end {
        if o.redundant {
            rgd_sector = next;
            next += gd_sectors;
            rgt_start = next;
            next += l1 * gt_sectors;
        }
        gd_sector = next;
        next += gd_sectors;
        gt_start = next;
        next += l1 * gt_sectors;
    }
    let overhead = div_ceil(next, o.grain_sectors) * o.grain_sectors;

    // Data after the overhead.
    let mut data = Vec::new();
    for g in 0..grains {
        let start = (g * grain_bytes) as usize;
        let end = (start + grain_bytes as usize).min(raw.len());
        let chunk = &raw[start..end];
        if chunk.iter().all(|&b| b == 0) {
            continue;
        }
        let sector = overhead + sector_of(&data);
        gte[g as usize] = sector as u32;
        if o.compressed {
            let mut full = chunk.to_vec();
            full.resize(grain_bytes as usize, 0);
            let z = deflate(&full);
            data.extend_from_slice(&(g * o.grain_sectors).to_le_bytes());
            data.extend_from_slice(&(z.len() as u32).to_le_bytes());
            data.extend_from_slice(&z);
            pad(&mut data);
            layout.grains.push((g, sector * S));
        } else {
            data.extend_from_slice(chunk);
            data.resize(data.len() + grain_bytes as usize - chunk.len(), 0);
            layout.grains.push((g, sector * S));
        }
    }

    let table_bytes = |t: u64| -> Vec<u8> {
        let mut b = Vec::new();
        for e in &gte[(t * gtes) as usize..((t + 1) * gtes) as usize] {
            b.extend_from_slice(&e.to_le_bytes());
        }
        b.resize((gt_sectors * S) as usize, 0);
        b
    };
    let dir_bytes = |entries: &[u32]| -> Vec<u8> {
        let mut b = Vec::new();
        for e in entries {
            b.extend_from_slice(&e.to_le_bytes());
        }
        b.resize((gd_sectors * S) as usize, 0);
        b
    };

    let mut out;
    if !o.gd_at_end {
        let gd: Vec<u32> = (0..l1)
            .map(|t| (gt_start + t * gt_sectors) as u32)
            .collect();
        let rgd: Vec<u32> = (0..l1)
            .map(|t| (rgt_start + t * gt_sectors) as u32)
            .collect();
        if o.redundant {
            meta.extend_from_slice(&dir_bytes(&rgd));
            for t in 0..l1 {
                meta.extend_from_slice(&table_bytes(t));
            }
            layout.rgd = Some(rgd_sector * S);
        }
        meta.extend_from_slice(&dir_bytes(&gd));
        for t in 0..l1 {
            meta.extend_from_slice(&table_bytes(t));
        }
        layout.gd = gd_sector * S;
        layout.gts = gd.iter().map(|&s| u64::from(s) * S).collect();
        out = header(o, capacity, desc_sectors, rgd_sector, gd_sector, overhead);
        out.extend_from_slice(&meta);
        out.resize((overhead * S) as usize, 0);
        out.extend_from_slice(&data);
        if o.compressed {
            out.extend_from_slice(&marker(0, 0));
        }
    } else {
        out = header(o, capacity, desc_sectors, 0, u64::MAX, overhead);
        out.extend_from_slice(&meta);
        out.resize((overhead * S) as usize, 0);
        out.extend_from_slice(&data);
        let mut gd = vec![0u32; l1 as usize];
        for t in 0..l1 {
            let entries = &gte[(t * gtes) as usize..((t + 1) * gtes) as usize];
            if entries.iter().all(|&e| e == 0) {
                continue;
            }
            out.extend_from_slice(&marker(gt_sectors, 1));
            gd[t as usize] = sector_of(&out) as u32;
            out.extend_from_slice(&table_bytes(t));
        }
        out.extend_from_slice(&marker(gd_sectors, 2));
        let gd_at = sector_of(&out);
        out.extend_from_slice(&dir_bytes(&gd));
        out.extend_from_slice(&marker(1, 3));
        layout.footer = Some(out.len() as u64);
        out.extend_from_slice(&header(o, capacity, desc_sectors, 0, gd_at, overhead));
        out.extend_from_slice(&marker(0, 0));
        layout.gd = gd_at * S;
        layout.gts = gd.iter().map(|&s| u64::from(s) * S).collect();
    }
    layout.bytes = out;
    layout
}

/// A deterministic test disk: patterned grains, holes, a zero grain, and a
/// partial last grain when `sectors` is not a multiple of the grain.
pub fn pattern_disk(sectors: u64, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; (sectors * S) as usize];
    let mut x = seed | 1;
    for (i, chunk) in v.chunks_mut(4096).enumerate() {
        if (i / 4) % 3 == 1 {
            continue; // a 16 KiB hole
        }
        for b in chunk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
    }
    v
}
