//! Differential tests against `qemu-img`: images made by `qemu-img convert`
//! read back through `read_at` must hash like `qemu-img convert -O raw`.
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::writer;
use preflight_disk::{BlockRead, DiskImage};
use preflight_testkit::qemu;
use preflight_vmdk::{open, open_path, VmdkImage};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// 40 MiB + 12 KiB: two grain tables' worth, and a partial last grain.
const RAW_SIZE: u64 = 40 * 1024 * 1024 + 12 * 1024;

struct Fixtures {
    dir: tempfile::TempDir,
    raw: PathBuf,
    raw_sha: String,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        let data = common::random_disk(RAW_SIZE, 42);
        std::fs::write(&raw, &data).unwrap();
        let raw_sha = hex(&Sha256::digest(&data));
        Fixtures { dir, raw, raw_sha }
    })
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of what `qemu-img convert -O raw` makes of `path`.
fn qemu_raw_sha(path: &Path) -> String {
    let data = qemu::read_as_raw("vmdk", path, path.parent().unwrap());
    hex(&Sha256::digest(&data))
}

/// sha256 of the whole guest disk read in odd-sized chunks.
fn read_sha(img: &dyn BlockRead) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 100_003];
    let mut off = 0u64;
    while off < img.size() {
        let n = (img.size() - off).min(buf.len() as u64) as usize;
        img.read_at(off, &mut buf[..n]).unwrap();
        h.update(&buf[..n]);
        off += n as u64;
    }
    hex(&h.finalize())
}

fn convert(name: &str, opts: &str) -> PathBuf {
    let f = fixtures();
    let out = f.dir.path().join(name).join("disk.vmdk");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    qemu::convert_raw(&f.raw, "vmdk", &["-o", opts], &out);
    out
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// Converts, opens, and compares with qemu-img. Returns the image.
fn differential(name: &str, opts: &str, subformat: &str) -> (PathBuf, VmdkImage) {
    let path = convert(name, opts);
    let img = open_path(&path).unwrap_or_else(|f| panic!("{opts}: {f:#?}"));
    let info = img.info();
    assert_eq!(
        info.virtual_size,
        qemu::virtual_size("vmdk", &path),
        "{opts}"
    );
    assert_eq!(info.virtual_size, RAW_SIZE);
    assert_eq!(info.subformat.as_deref(), Some(subformat), "{opts}");
    assert_eq!(info.file_size, dir_size(&path), "{opts}: sum of the files");
    assert!(
        info.allocated_size > 0 && info.allocated_size <= info.virtual_size,
        "{opts}"
    );
    let sha = read_sha(&img);
    assert_eq!(
        sha,
        qemu_raw_sha(&path),
        "{opts}: read_at vs qemu-img convert -O raw"
    );
    assert_eq!(sha, fixtures().raw_sha, "{opts}: read_at vs the source raw");
    (path, img)
}

fn codes(img: &VmdkImage) -> Vec<String> {
    img.check().into_iter().map(|f| f.code).collect()
}

#[test]
fn monolithic_sparse() {
    let (_, img) = differential("ms", "subformat=monolithicSparse", "monolithicSparse");
    assert!(codes(&img).is_empty(), "{:#?}", img.check());
    let info = img.info();
    assert_eq!(info.cluster_size, Some(65536));
    assert_eq!(info.version.as_deref(), Some("1"));
    assert_eq!(img.adapter_type(), Some("ide"));
}

#[test]
fn stream_optimized_inline_gd() {
    let (_, img) = differential("so", "subformat=streamOptimized", "streamOptimized");
    assert!(codes(&img).is_empty(), "{:#?}", img.check());
    assert!(img.check_grains().is_empty());
    let info = img.info();
    assert_eq!(info.version.as_deref(), Some("3"));
    for f in ["compressed", "markers"] {
        assert!(info.features.iter().any(|x| x == f), "{:?}", info.features);
    }
}

#[test]
fn monolithic_flat() {
    let (_, img) = differential("mf", "subformat=monolithicFlat", "monolithicFlat");
    assert_eq!(codes(&img), ["VMDK.MultiFile"]);
    assert_eq!(img.info().allocated_size, RAW_SIZE);
}

#[test]
fn two_gb_max_extent_sparse() {
    let (_, img) = differential(
        "tgs",
        "subformat=twoGbMaxExtentSparse",
        "twoGbMaxExtentSparse",
    );
    assert_eq!(codes(&img), ["VMDK.MultiFile"]);
}

#[test]
fn two_gb_max_extent_flat() {
    let (_, img) = differential("tgf", "subformat=twoGbMaxExtentFlat", "twoGbMaxExtentFlat");
    assert_eq!(codes(&img), ["VMDK.MultiFile"]);
}

#[test]
fn compat6_and_lsilogic() {
    let (_, img) = differential("c6", "compat6", "monolithicSparse");
    assert!(codes(&img).is_empty());
    assert_eq!(
        img.descriptor().unwrap().get("ddb.virtualHWVersion"),
        Some("6")
    );
    let (_, img) = differential("lsi", "adapter_type=lsilogic", "monolithicSparse");
    assert!(codes(&img).is_empty());
    assert_eq!(img.adapter_type(), Some("lsilogic"));
    let (_, img) = differential(
        "so6",
        "subformat=streamOptimized,compat6,adapter_type=lsilogic",
        "streamOptimized",
    );
    assert!(codes(&img).is_empty());
}

/// Split images over 2 GiB have several extents; compare the bytes around
/// the extent boundary with the source.
#[test]
fn two_gb_extents_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("big.raw");
    let size: u64 = 2 * 1024 * 1024 * 1024 + 3 * 1024 * 1024;
    let f = std::fs::File::create(&raw).unwrap();
    f.set_len(size).unwrap();
    let boundary = 2u64 * 1024 * 1024 * 1024;
    let piece = common::random_bytes(1024 * 1024, 7);
    use std::os::unix::fs::FileExt;
    f.write_all_at(&piece, boundary - 512 * 1024).unwrap();
    f.write_all_at(&piece[..4096], 12345 * 512).unwrap();
    f.write_all_at(&piece[..4096], size - 4096).unwrap();
    drop(f);
    for sub in ["twoGbMaxExtentSparse", "twoGbMaxExtentFlat"] {
        let out = dir.path().join(sub).join("d.vmdk");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        qemu::convert_raw(&raw, "vmdk", &["-o", &format!("subformat={sub}")], &out);
        let img = open_path(&out).unwrap();
        assert_eq!(img.size(), qemu::virtual_size("vmdk", &out));
        assert_eq!(img.descriptor().unwrap().extents.len(), 2, "{sub}");
        let src = std::fs::File::open(&raw).unwrap();
        for (at, len) in [
            (0u64, 1 << 20),
            (12345 * 512 - 7, 5000),
            (boundary - 600 * 1024 - 3, 1200 * 1024 + 11),
            (size - (1 << 20), 1 << 20),
        ] {
            let mut want = vec![0u8; len];
            src.read_exact_at(&mut want, at).unwrap();
            let mut got = vec![0u8; len];
            img.read_at(at, &mut got).unwrap();
            assert!(got == want, "{sub}: bytes at {at}+{len} differ");
        }
        assert_eq!(codes(&img), ["VMDK.MultiFile"]);
    }
}

/// A VMware-style streamOptimized file (grain directory at the end, found
/// through the footer) from our test writer: qemu-img must agree it is the
/// same disk, and so must we.
#[test]
fn stream_optimized_gd_at_end() {
    let f = fixtures();
    let raw = std::fs::read(&f.raw).unwrap();
    let mut o = writer::Options::stream(true);
    o.grain_sectors = 128;
    o.gtes = 512;
    let l = writer::write(&raw, &o);
    let path = f.dir.path().join("gdend").join("disk.vmdk");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &l.bytes).unwrap();
    assert_eq!(qemu::virtual_size("vmdk", &path), RAW_SIZE);
    assert_eq!(
        qemu_raw_sha(&path),
        f.raw_sha,
        "qemu reads our writer's file"
    );
    let img = open_path(&path).unwrap();
    assert!(img.info().features.iter().any(|x| x == "gd_at_end"));
    assert_eq!(read_sha(&img), f.raw_sha);
    assert!(img.check().is_empty(), "{:#?}", img.check());
    assert!(img.check_grains().is_empty());
}

fn findings_of(bytes: Vec<u8>) -> Vec<preflight_report::Finding> {
    match open(Arc::new(bytes)) {
        Ok(img) => {
            let mut out = img.check();
            let mut buf = vec![0u8; 70_000];
            for at in [0, img.size() / 2, img.size().saturating_sub(70_000)] {
                let n = (img.size() - at).min(70_000) as usize;
                if let Err(e) = img.read_at(at, &mut buf[..n]) {
                    out.push(preflight_vmdk::rules::IO.finding(e.to_string()));
                }
            }
            out
        }
        Err(f) => vec![f],
    }
}

fn expect(bytes: Vec<u8>, code: &str) {
    let f = findings_of(bytes);
    assert!(f.iter().any(|f| f.code == code), "want {code}: {f:#?}");
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn corrupt_qemu_images() {
    let ms = std::fs::read(convert("c-ms", "subformat=monolithicSparse")).unwrap();
    let so = std::fs::read(convert("c-so", "subformat=streamOptimized")).unwrap();
    let set32 =
        |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let set64 =
        |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    let gd = (le64(&ms, 56) * 512) as usize;
    let rgd = (le64(&ms, 48) * 512) as usize;
    let gt0 = le32(&ms, gd) as usize * 512;
    assert_ne!(le32(&ms, gd + 4), 0, "the fixture has two grain tables");

    let mut b = ms.clone();
    b[..4].copy_from_slice(b"COWD");
    expect(b, "VMDK.Cowd");
    let mut b = ms.clone();
    b[1] = b'X';
    expect(b, "VMDK.Magic");
    let mut b = ms.clone();
    set32(&mut b, 4, 7);
    expect(b, "VMDK.Version");
    let mut b = ms.clone();
    set64(&mut b, 20, 96);
    expect(b, "VMDK.GrainSize");
    for gtes in [0, 100_000] {
        let mut b = ms.clone();
        set32(&mut b, 44, gtes);
        expect(b, "VMDK.GtesPerGt");
    }
    let mut b = ms.clone();
    set64(&mut b, 12, 1 << 62);
    expect(b, "VMDK.Capacity");
    let mut b = ms.clone();
    set64(&mut b, 56, ms.len() as u64 / 512 + 1);
    expect(b, "VMDK.GdOffset");
    // First allocated grain table entry past EOF.
    let mut b = ms.clone();
    let j = (0..512).find(|j| le32(&ms, gt0 + j * 4) != 0).unwrap();
    set32(&mut b, gt0 + j * 4, (ms.len() / 512 + 100) as u32);
    expect(b, "VMDK.GrainOffset");
    // Grain table 1 on top of grain table 0.
    let mut b = ms.clone();
    set32(&mut b, gd + 4, le32(&ms, gd));
    expect(b, "VMDK.TableOverlap");
    // Grain table 0 on top of the redundant directory.
    let mut b = ms.clone();
    set32(&mut b, gd, (rgd / 512) as u32);
    expect(b, "VMDK.TableOverlap");

    // streamOptimized: a grain whose marker's size passes EOF.
    let sgd = (le64(&so, 56) * 512) as usize;
    let sgt0 = le32(&so, sgd) as usize * 512;
    let j = (0..512).find(|j| le32(&so, sgt0 + j * 4) != 0).unwrap();
    let marker = le32(&so, sgt0 + j * 4) as usize * 512;
    let mut b = so.clone();
    set32(&mut b, marker + 8, so.len() as u32);
    expect(b, "VMDK.GrainMarker");
}

#[test]
fn truncated_qemu_images() {
    for (name, opts) in [
        ("t-ms", "subformat=monolithicSparse"),
        ("t-so", "subformat=streamOptimized"),
    ] {
        let full = std::fs::read(convert(name, opts)).unwrap();
        // The inline streamOptimized file ends with an end-of-stream marker
        // followed by zero sectors: cutting those loses nothing.
        let eos = if opts.contains("stream") {
            full.len() - full.iter().rev().position(|&b| b != 0).unwrap()
        } else {
            full.len()
        };
        let mut cut = 0usize;
        while cut < eos {
            let f = findings_of(full[..cut].to_vec());
            assert!(
                preflight_report::has_errors(&f),
                "{opts}: cut at {cut} of {}: {f:#?}",
                full.len()
            );
            cut += 4093;
        }
    }
}

#[test]
fn descriptor_path_traversal_and_missing_extent() {
    let dir = tempfile::tempdir().unwrap();
    let desc = dir.path().join("d.vmdk");
    std::fs::write(
        &desc,
        "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"../etc/passwd\" 0\n",
    )
    .unwrap();
    let f = open_path(&desc).err().unwrap();
    assert_eq!(f.code, "VMDK.ExtentPath");
    assert!(f.message.contains("../etc/passwd"));
    std::fs::write(
        &desc,
        "# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"gone-flat.vmdk\" 0\n",
    )
    .unwrap();
    let f = open_path(&desc).err().unwrap();
    assert_eq!(f.code, "VMDK.MissingExtent");
    assert!(f.message.contains("gone-flat.vmdk"));
    // The same descriptor opened without extent access.
    let f = open(Arc::new(std::fs::read(&desc).unwrap())).err().unwrap();
    assert_eq!(f.code, "VMDK.MissingExtent");
}

/// Deterministic pseudo-random mutations of real images: open, info, check
/// and reads must never panic.
#[test]
fn smoke_fuzz_mutations() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("small.raw");
    let mut data = vec![0u8; 2 * 1024 * 1024];
    let rnd = common::random_bytes(256 * 1024, 3);
    data[100_000..100_000 + rnd.len()].copy_from_slice(&rnd);
    data[1_500_000..1_600_000].fill(0x5a);
    std::fs::write(&raw, &data).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let iterations: usize = std::env::var("VMDK_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    if let Some(s) = std::env::var("VMDK_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        seed = s;
    }
    let mut bases = Vec::new();
    for sub in ["streamOptimized", "monolithicSparse"] {
        let out = dir.path().join(format!("{sub}.vmdk"));
        qemu::convert_raw(&raw, "vmdk", &["-o", &format!("subformat={sub}")], &out);
        bases.push((sub, std::fs::read(&out).unwrap()));
    }
    let mut o = writer::Options::stream(true);
    o.grain_sectors = 128;
    o.gtes = 512;
    bases.push(("gd_at_end", writer::write(&data, &o).bytes));
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (sub, base) in bases {
        let mut opened = 0;
        for _ in 0..iterations {
            let mut b = base.clone();
            let edits = 1 + next() % 6;
            for _ in 0..edits {
                let r = next();
                // Mostly metadata: header, descriptor, directories, tables,
                // and the footer at the end.
                let at = match r % 5 {
                    0 | 1 => (r >> 8) as usize % 4096.min(b.len()),
                    2 => (r >> 8) as usize % b.len(),
                    3 => b.len().saturating_sub(1 + (r >> 8) as usize % 2048),
                    _ => 0x3000 + (r >> 8) as usize % 0x1000,
                };
                if at < b.len() {
                    b[at] = (r >> 40) as u8;
                }
            }
            if next() % 8 == 0 {
                let len = next() as usize % b.len();
                b.truncate(len);
            }
            if let Ok(img) = open(Arc::new(b)) {
                opened += 1;
                let _ = img.info();
                let _ = img.check();
                let _ = img.check_grains();
                let size = img.size();
                let mut buf = vec![0u8; 65_536];
                for at in [0, next() % size.max(1), size.saturating_sub(512)] {
                    let n = (size - at.min(size)).min(65_536) as usize;
                    let _ = img.read_at(at, &mut buf[..n]);
                }
            }
        }
        assert!(
            opened > iterations / 10,
            "{sub}: only {opened} mutants opened"
        );
    }
}

/// `next_data` of sparse VMDKs (monolithicSparse, streamOptimized): runs cover every non-zero
/// byte, what lies between them reads as zeros, and a mostly empty disk's holes are found.
#[test]
fn sparse_next_data_finds_the_holes_and_misses_no_data() {
    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let size = 80 * MIB;
    // Data inside one grain, across grain tables (32 MiB each with 64 KiB grains), at the end.
    let raw = preflight_testkit::patterned_disk(
        size,
        &[(4096, 512), (31 * MIB + 100, 3 * MIB), (size - 1024, 1024)],
    );
    let raw_path = dir.path().join("sparse.raw");
    std::fs::write(&raw_path, &raw).unwrap();
    for sub in ["monolithicSparse", "streamOptimized"] {
        let out = dir.path().join(format!("{sub}.vmdk"));
        qemu::convert_raw(
            &raw_path,
            "vmdk",
            &["-o", &format!("subformat={sub}")],
            &out,
        );
        let img = open_path(&out).unwrap();
        let runs = preflight_disk::data_runs(&img).unwrap();
        let data: u64 = runs.iter().map(|(a, b)| b - a).sum();
        assert!(data <= 4 * MIB, "{sub}: holes skipped: {runs:?}");
        preflight_testkit::assert_holes_read_zero(&img, &runs, &raw);
    }
}
