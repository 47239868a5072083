//! Unit tests over images built in memory.
#![allow(clippy::cast_possible_truncation)]

use super::*;
use preflight_report::Severity;
use std::collections::HashMap;

#[path = "../tests/common/writer.rs"]
mod writer;

use writer::{pattern_disk, write, Layout, Options};

fn findings(bytes: Vec<u8>) -> Vec<Finding> {
    match open(Arc::new(bytes)) {
        Ok(img) => {
            let mut f = img.check();
            // Reading must not panic either.
            let mut buf = vec![0u8; 4096];
            let size = img.size();
            for off in [0, size / 2, size.saturating_sub(4096)] {
                let n = usize::try_from((size - off).min(4096)).unwrap();
                if let Err(e) = img.read_at(off, &mut buf[..n]) {
                    f.push(rules::IO.finding(format!("read: {e}")));
                }
            }
            f
        }
        Err(f) => vec![f],
    }
}

fn codes(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.code.as_str()).collect()
}

fn has(bytes: Vec<u8>, code: &str) -> Vec<Finding> {
    let f = findings(bytes);
    assert!(codes(&f).contains(&code), "want {code}, got {f:#?}");
    f
}

fn read_all(img: &VmdkImage) -> Vec<u8> {
    let mut out = vec![0u8; usize::try_from(img.size()).unwrap()];
    // Odd-sized pieces cross grain and extent boundaries.
    let mut off = 0usize;
    while off < out.len() {
        let n = 3001.min(out.len() - off);
        img.read_at(off as u64, &mut out[off..off + n]).unwrap();
        off += n;
    }
    out
}

fn put_u32(b: &mut [u8], at: u64, v: u32) {
    let at = usize::try_from(at).unwrap();
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn sparse(raw: &[u8]) -> Layout {
    write(raw, &Options::sparse())
}

#[test]
fn monolithic_sparse_reads_back() {
    let raw = pattern_disk(300, 7);
    let l = sparse(&raw);
    let img = open(Arc::new(l.bytes.clone())).unwrap();
    assert_eq!(img.size(), 300 * 512);
    assert_eq!(read_all(&img), raw);
    let info = img.info();
    assert_eq!(info.format, Format::Vmdk);
    assert_eq!(info.subformat.as_deref(), Some("monolithicSparse"));
    assert_eq!(info.cluster_size, Some(8192));
    assert_eq!(info.version.as_deref(), Some("1"));
    assert_eq!(info.file_size, l.bytes.len() as u64);
    assert_eq!(info.allocated_size, l.grains.len() as u64 * 8192);
    assert!(info.allocated_size < info.virtual_size);
    assert!(info.features.contains(&"redundant_gd".to_string()));
    assert_eq!(img.adapter_type(), Some("lsilogic"));
    assert!(img.check().is_empty(), "{:#?}", img.check());
    assert!(img.check_grains().is_empty());
    assert!(img.read_at(300 * 512 - 1, &mut [0u8; 2]).is_err());
}

#[test]
fn stream_optimized_both_layouts_read_back() {
    let raw = pattern_disk(333, 9);
    for gd_at_end in [false, true] {
        let l = write(&raw, &Options::stream(gd_at_end));
        let img = open(Arc::new(l.bytes.clone())).unwrap();
        assert_eq!(read_all(&img), raw, "gd_at_end={gd_at_end}");
        let info = img.info();
        assert_eq!(info.subformat.as_deref(), Some("streamOptimized"));
        for f in ["compressed", "markers"] {
            assert!(info.features.contains(&f.to_string()));
        }
        assert_eq!(info.features.contains(&"gd_at_end".to_string()), gd_at_end);
        // Bytes of the file holding data, as for qcow2's compressed clusters:
        // each grain's marker and deflate data, in whole sectors.
        let stored: u64 = l
            .grains
            .iter()
            .map(|&(_, at)| {
                let at = usize::try_from(at).unwrap();
                let len = u32::from_le_bytes(l.bytes[at + 8..at + 12].try_into().unwrap());
                (12 + u64::from(len)).div_ceil(512) * 512
            })
            .sum();
        assert_eq!(info.allocated_size, stored, "gd_at_end={gd_at_end}");
        assert!(info.allocated_size <= info.file_size);
        assert!(img.check().is_empty(), "{:#?}", img.check());
        assert!(img.check_grains().is_empty());
    }
}

/// streamOptimized counts the bytes its compressed grains take in the file
/// (like qcow2's compressed clusters), not their inflated size; a grain
/// whose marker is bad counts nothing.
#[test]
fn stream_optimized_allocated_size_is_stored_bytes() {
    // Compressible grains: a repeated byte each.
    let mut raw = vec![0u8; 64 * 8192];
    for (g, chunk) in raw.chunks_mut(8192).enumerate() {
        if g % 2 == 0 {
            chunk.fill(u8::try_from(g).unwrap() | 1);
        }
    }
    let l = write(&raw, &Options::stream(false));
    assert_eq!(l.grains.len(), 32);
    let img = open(Arc::new(l.bytes.clone())).unwrap();
    let info = img.info();
    // Each grain deflates to a few bytes: marker + data fit one sector.
    assert_eq!(info.allocated_size, 32 * 512);
    assert!(info.allocated_size < info.file_size);
    // The same data uncompressed (monolithicSparse) counts whole grains.
    let s = open(Arc::new(sparse(&raw).bytes)).unwrap();
    assert_eq!(s.info().allocated_size, 32 * 8192);
    // A marker with an absurd compressed size: that grain counts nothing.
    let mut bad = l.bytes.clone();
    let at = usize::try_from(l.grains[3].1).unwrap();
    bad[at + 8..at + 12].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let img = open(Arc::new(bad)).unwrap();
    assert_eq!(img.info().allocated_size, 31 * 512);
}

#[test]
fn header_mutations_give_their_code() {
    let raw = pattern_disk(300, 1);
    let base = sparse(&raw).bytes;
    type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("VMDK.Magic", Box::new(|b| b[0] = b'X')),
        ("VMDK.Cowd", Box::new(|b| b[..4].copy_from_slice(b"COWD"))),
        ("VMDK.Version", Box::new(|b| put_u32(b, 4, 4))),
        ("VMDK.GrainSize", Box::new(|b| put_u64(b, 20, 100))),
        ("VMDK.GtesPerGt", Box::new(|b| put_u32(b, 44, 0))),
        ("VMDK.GtesPerGt", Box::new(|b| put_u32(b, 44, 100_000))),
        ("VMDK.Capacity", Box::new(|b| put_u64(b, 12, 1 << 62))),
        ("VMDK.GdOffset", Box::new(|b| put_u64(b, 56, 1 << 40))),
        ("VMDK.GdOffset", Box::new(|b| put_u64(b, 56, u64::MAX - 1))),
        ("VMDK.GdOffset", Box::new(|b| put_u64(b, 48, 1 << 40))),
        ("VMDK.Compression", Box::new(|b| b[77] = 2)),
        ("VMDK.Newline", Box::new(|b| b[75] = b'\n')),
        ("VMDK.UncleanShutdown", Box::new(|b| b[72] = 1)),
        ("VMDK.Flags", Box::new(|b| put_u32(b, 8, 0x103))),
        (
            "VMDK.DescriptorOffset",
            Box::new(|b| put_u64(b, 36, 1 << 30)),
        ),
        (
            "VMDK.DescriptorOffset",
            Box::new(|b| put_u64(b, 28, u64::MAX)),
        ),
        ("VMDK.Truncated", Box::new(|b| put_u64(b, 64, 1 << 30))),
        ("VMDK.Truncated", Box::new(|b| b.truncate(300))),
        ("VMDK.Magic", Box::new(|b| b.truncate(2))),
        ("VMDK.Footer", Box::new(|b| put_u64(b, 56, u64::MAX))),
        (
            "VMDK.L1Size",
            Box::new(|b| {
                put_u64(b, 12, 1 << 41);
                put_u64(b, 20, 16);
                put_u32(b, 44, 1);
            }),
        ),
    ];
    for (want, mutate) in cases {
        let mut b = base.clone();
        mutate(&mut b);
        has(b, want);
    }
}

#[test]
fn severities_follow_the_rules() {
    let raw = pattern_disk(300, 1);
    let mut b = sparse(&raw).bytes;
    b[72] = 1;
    let f = has(b, "VMDK.UncleanShutdown");
    assert!(f.iter().all(|f| f.severity == Severity::Warning));
}

#[test]
fn table_corruption_is_found_by_check() {
    let raw = pattern_disk(300, 3);
    let l = sparse(&raw);
    let size = l.bytes.len() as u64;

    // A grain table entry past EOF.
    let mut b = l.bytes.clone();
    put_u32(&mut b, l.gts[0], u32::try_from(size / 512 + 10).unwrap());
    has(b, "VMDK.GrainOffset");

    // A grain table entry pointing into the grain directory.
    let mut b = l.bytes.clone();
    put_u32(&mut b, l.gts[0], u32::try_from(l.gd / 512).unwrap());
    has(b, "VMDK.GrainOffset");

    // A grain directory entry past EOF.
    let mut b = l.bytes.clone();
    put_u32(&mut b, l.gd + 4, u32::MAX);
    has(b, "VMDK.GtOffset");

    // Two directory entries naming the same table.
    let mut b = l.bytes.clone();
    put_u32(&mut b, l.gd + 4, u32::try_from(l.gts[0] / 512).unwrap());
    has(b, "VMDK.TableOverlap");

    // A table on top of the embedded descriptor.
    let mut b = l.bytes.clone();
    put_u32(&mut b, l.gd, 1);
    has(b, "VMDK.TableOverlap");

    // Redundant copy disagreeing.
    let mut b = l.bytes.clone();
    let rgd = l.rgd.unwrap();
    put_u32(&mut b, rgd + 4, 0);
    let f = has(b, "VMDK.RedundantGd");
    assert!(f.iter().all(|f| f.severity == Severity::Warning), "{f:#?}");
}

#[test]
fn findings_are_capped_per_code_and_counted_exactly() {
    // The first 64 entries of a grain table point past the end of the file.
    let l = write(
        &pattern_disk(300, 3),
        &Options {
            gtes: 128,
            ..Options::sparse()
        },
    );
    let mut b = l.bytes.clone();
    let past = u32::try_from(b.len() / 512 + 10).unwrap();
    for j in 0..64 {
        put_u32(
            &mut b,
            l.gts[0] + 4 * j,
            past + 128 * u32::try_from(j).unwrap(),
        );
    }
    let f = findings(b);
    let grain: Vec<_> = f.iter().filter(|f| f.code == "VMDK.GrainOffset").collect();
    assert_eq!(grain.len(), 21, "20 kept plus one summary: {grain:#?}");
    // The messages past the cap are never built, but the violations are all counted.
    let summary = &grain[20].message;
    assert!(
        summary.contains("44 more findings") && summary.contains("(64 in all)"),
        "{summary}"
    );
}

#[test]
fn compressed_grain_problems() {
    let raw = pattern_disk(300, 5);
    let l = write(&raw, &Options::stream(true));
    let size = l.bytes.len() as u64;
    let (_, first) = l.grains[0];

    // Marker size passing EOF.
    let mut b = l.bytes.clone();
    put_u32(&mut b, first + 8, u32::try_from(size).unwrap());
    has(b, "VMDK.GrainMarker");

    // Marker naming the wrong sector.
    let mut b = l.bytes.clone();
    put_u64(&mut b, usize::try_from(first).unwrap(), 12345);
    has(b, "VMDK.GrainMarker");

    // Garbage deflate data: the check (metadata only) passes, reading fails
    // with the code, and the deep check reports it.
    let mut b = l.bytes.clone();
    let at = usize::try_from(first).unwrap() + 12;
    b[at..at + 8].fill(0xff);
    let img = open(Arc::new(b)).unwrap();
    let g = l.grains[0].0 * 8192;
    let err = img.read_at(g, &mut [0u8; 512]).unwrap_err().to_string();
    assert!(err.contains("VMDK.CompressedGrain"), "{err}");
    assert_eq!(codes(&img.check_grains()), ["VMDK.CompressedGrain"]);
}

#[test]
fn zip_bomb_is_capped_at_the_grain_size() {
    // One grain whose deflate stream inflates to 64 grains.
    let raw = pattern_disk(64, 5);
    let mut l = write(&raw, &Options::stream(false));
    let (_, first) = l.grains[0];
    let bomb = writer::deflate(&vec![0u8; 64 * 8192]);
    let at = usize::try_from(first).unwrap();
    let old_len = u32::from_le_bytes(l.bytes[at + 8..at + 12].try_into().unwrap()) as usize;
    assert!(
        bomb.len() <= old_len,
        "bomb {} > slot {old_len}",
        bomb.len()
    );
    l.bytes[at + 8..at + 12].copy_from_slice(&u32::try_from(bomb.len()).unwrap().to_le_bytes());
    l.bytes[at + 12..at + 12 + bomb.len()].copy_from_slice(&bomb);
    let img = open(Arc::new(l.bytes)).unwrap();
    let mut buf = vec![0u8; 8192];
    let err = img.read_at(0, &mut buf).unwrap_err().to_string();
    assert!(err.contains("more than the grain size"), "{err}");
    assert_eq!(codes(&img.check_grains()), ["VMDK.CompressedGrain"]);
}

#[test]
fn stream_footer_and_end_marker() {
    let raw = pattern_disk(300, 5);
    let l = write(&raw, &Options::stream(true));
    let n = l.bytes.len();
    // Without the footer the directory cannot be found.
    has(l.bytes[..n - 1024].to_vec(), "VMDK.Footer");
    let mut b = l.bytes.clone();
    b[n - 1024] = b'X';
    has(b, "VMDK.Footer");
    // Inline layout without the end-of-stream marker: a warning, since
    // qemu-img writes such files and the inline directory finds every grain.
    let l = write(&raw, &Options::stream(false));
    let mut b = l.bytes.clone();
    let n = b.len();
    b[n - 512] = 1;
    has(b, "VMDK.NoEndOfStream");
}

#[test]
fn embedded_delta_is_refused() {
    let raw = pattern_disk(64, 5);
    let mut o = Options::sparse();
    o.descriptor = Some(
        "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=abcdef01\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"base.vmdk\"\nRW 64 SPARSE \"x.vmdk\"\n".into(),
    );
    let f = has(write(&raw, &o).bytes, "VMDK.Delta");
    assert!(f[0].message.contains("abcdef01"), "{}", f[0].message);
    // A bad line in an embedded descriptor is reported but reading works.
    o.descriptor = Some("createType=\"monolithicSparse\"\nthis line is junk\n".into());
    let img = open(Arc::new(write(&raw, &o).bytes)).unwrap();
    let f = img.check();
    assert_eq!(codes(&f), ["VMDK.Descriptor"]);
    assert!(f[0].message.contains("junk"));
    assert_eq!(read_all(&img), raw);
}

#[test]
fn truncation_never_panics_and_is_reported() {
    let raw = pattern_disk(300, 11);
    for o in [
        Options::sparse(),
        Options::stream(false),
        Options::stream(true),
    ] {
        let l = write(&raw, &o);
        let full = l.bytes.len();
        let mut cut = 0;
        while cut < full {
            let f = findings(l.bytes[..cut].to_vec());
            // Dropping only the padding after the end-of-stream marker of
            // the inline layout loses nothing; everything else must show.
            assert!(has_errors(&f), "cut at {cut} of {full} ({o:?}): {f:#?}");
            cut += 509;
        }
    }
}

use preflight_report::has_errors;

fn mem_files(files: &[(&str, Vec<u8>)]) -> HashMap<String, Arc<dyn Source>> {
    files
        .iter()
        .map(|(n, b)| (n.to_string(), Arc::new(b.clone()) as Arc<dyn Source>))
        .collect()
}

fn open_desc(desc: &str, files: &HashMap<String, Arc<dyn Source>>) -> Result<VmdkImage, Finding> {
    let src: Arc<dyn Source> = Arc::new(desc.as_bytes().to_vec());
    open_with(src, &|name| {
        files
            .get(name)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    })
}

#[test]
fn descriptor_with_flat_sparse_and_zero_extents() {
    let a = pattern_disk(100, 21);
    let b = pattern_disk(200, 22);
    let mut flat = vec![0xAAu8; 1024]; // 2 sectors before the extent's offset
    flat.extend_from_slice(&a);
    let sp = sparse(&b).bytes;
    let files = mem_files(&[("a-flat.vmdk", flat.clone()), ("b-s001.vmdk", sp.clone())]);
    let desc = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\nRW 100 FLAT \"a-flat.vmdk\" 2\nRW 50 ZERO\nRW 200 SPARSE \"b-s001.vmdk\"\nRDONLY 100 FLAT \"a-flat.vmdk\" 2\n";
    let img = open_desc(desc, &files).unwrap();
    let mut want = a.clone();
    want.extend_from_slice(&[0u8; 50 * 512]);
    want.extend_from_slice(&b);
    want.extend_from_slice(&a);
    assert_eq!(img.size(), want.len() as u64);
    assert_eq!(read_all(&img), want);
    let info = img.info();
    assert_eq!(info.subformat.as_deref(), Some("twoGbMaxExtentSparse"));
    assert_eq!(info.file_size, (desc.len() + flat.len() + sp.len()) as u64);
    assert_eq!(info.cluster_size, Some(8192));
    assert!(info.features.contains(&"multi_file".to_string()));
    let f = img.check();
    assert_eq!(codes(&f), ["VMDK.MultiFile"], "{f:#?}");
    assert!(f[0].hint.contains("subformat=streamOptimized"));
}

#[test]
fn descriptor_refusals() {
    let files = mem_files(&[("d.vmdk", vec![0u8; 512 * 10])]);
    let head = "# Disk DescriptorFile\nversion=1\nparentCID=ffffffff\n";
    let cases = [
        (
            "createType=\"monolithicFlat\"\nRW 10 FLAT \"../etc/passwd\" 0\n",
            "VMDK.ExtentPath",
        ),
        (
            "createType=\"monolithicFlat\"\nRW 10 FLAT \"/etc/passwd\" 0\n",
            "VMDK.ExtentPath",
        ),
        (
            "createType=\"monolithicFlat\"\nRW 10 FLAT \"a\\\\..\\\\b\" 0\n",
            "VMDK.ExtentPath",
        ),
        (
            "createType=\"monolithicFlat\"\nRW 10 FLAT \"C:\\\\x\" 0\n",
            "VMDK.ExtentPath",
        ),
        (
            "createType=\"monolithicFlat\"\nRW 10 FLAT \"missing.vmdk\" 0\n",
            "VMDK.MissingExtent",
        ),
        (
            "createType=\"monolithicFlat\"\nRW 10 FLAT \"d.vmdk\"\n",
            "VMDK.Descriptor",
        ),
        ("createType=\"monolithicFlat\"\n", "VMDK.Descriptor"),
        ("RW 10 FLAT \"d.vmdk\" 0\n", "VMDK.Descriptor"),
        (
            "createType=\"monolithicFlat\"\nhello\nRW 10 FLAT \"d.vmdk\" 0\n",
            "VMDK.Descriptor",
        ),
        (
            "createType=\"fancyNewType\"\nRW 10 FLAT \"d.vmdk\" 0\n",
            "VMDK.CreateType",
        ),
        (
            "createType=\"seSparse\"\nRW 10 SESPARSE \"d.vmdk\"\n",
            "VMDK.UnsupportedType",
        ),
        (
            "createType=\"vmfsSparse\"\nRW 10 VMFSSPARSE \"d.vmdk\"\n",
            "VMDK.UnsupportedType",
        ),
        (
            "createType=\"vmfsRawDeviceMap\"\nRW 10 VMFSRDM \"d.vmdk\"\n",
            "VMDK.UnsupportedType",
        ),
        (
            "createType=\"fullDevice\"\nRW 10 FLAT \"/dev/sda\" 0\n",
            "VMDK.UnsupportedType",
        ),
        (
            "createType=\"custom\"\nRW 10 VMFSRDM \"d.vmdk\"\n",
            "VMDK.ExtentType",
        ),
        (
            "createType=\"custom\"\nRW 10 WEIRD \"d.vmdk\"\n",
            "VMDK.ExtentType",
        ),
        (
            "createType=\"custom\"\nNOACCESS 10 FLAT \"d.vmdk\" 0\n",
            "VMDK.ExtentType",
        ),
        (
            "createType=\"custom\"\nRW 10 SPARSE \"d.vmdk\"\n",
            "VMDK.Magic",
        ),
        (
            "createType=\"custom\"\nRW 99999999999999 FLAT \"d.vmdk\" 0\n",
            "VMDK.Capacity",
        ),
        (
            "createType=\"custom\"\nparentCID=12345678\nRW 10 FLAT \"d.vmdk\" 0\n",
            "VMDK.Delta",
        ),
        (
            "createType=\"custom\"\nparentFileNameHint=\"p.vmdk\"\nRW 10 FLAT \"d.vmdk\" 0\n",
            "VMDK.Delta",
        ),
    ];
    for (body, want) in cases {
        let desc = format!("{head}{body}");
        match open_desc(&desc, &files) {
            Ok(img) => panic!("{body}: opened, check: {:#?}", img.check()),
            Err(f) => assert_eq!(f.code, want, "{body}: {f:#?}"),
        }
    }
    let f = open_desc(
        &format!("{head}createType=\"monolithicFlat\"\nRW 10 FLAT \"missing.vmdk\" 0\n"),
        &files,
    )
    .err()
    .unwrap();
    assert!(f.message.contains("missing.vmdk"), "{}", f.message);
}

#[test]
fn short_flat_extent_is_reported_and_reads_zeros() {
    let files = mem_files(&[("d.vmdk", vec![7u8; 512 * 5])]);
    let img = open_desc(
        "# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 10 FLAT \"d.vmdk\" 0\n",
        &files,
    )
    .unwrap();
    assert_eq!(codes(&img.check()), ["VMDK.ExtentSize", "VMDK.MultiFile"]);
    let all = read_all(&img);
    assert!(all[..2560].iter().all(|&b| b == 7));
    assert!(all[2560..].iter().all(|&b| b == 0));
}

#[test]
fn sparse_extent_size_mismatch() {
    let sp = sparse(&pattern_disk(64, 1)).bytes;
    let files = mem_files(&[("s.vmdk", sp)]);
    let img = open_desc(
        "createType=\"twoGbMaxExtentSparse\"\nRW 100 SPARSE \"s.vmdk\"\n",
        &files,
    )
    .unwrap();
    assert!(codes(&img.check()).contains(&"VMDK.ExtentSize"));
    // Past the extent's own capacity reads as zeros.
    let mut buf = [1u8; 512];
    img.read_at(99 * 512, &mut buf).unwrap();
    assert_eq!(buf, [0u8; 512]);
}

#[test]
fn open_without_extent_access_names_the_file() {
    let f = open(Arc::new(
        b"# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 10 FLAT \"x-flat.vmdk\" 0\n"
            .to_vec(),
    ))
    .err()
    .unwrap();
    assert_eq!(f.code, "VMDK.MissingExtent");
    assert!(f.message.contains("x-flat.vmdk"));
}

#[test]
fn descriptor_detection() {
    assert!(is_descriptor(b"# Disk DescriptorFile\n"));
    assert!(is_descriptor(
        b"version=1\ncreateType=\"monolithicFlat\"\n\0\0\0"
    ));
    assert!(is_descriptor(b"  createType = \"x\"\r\n"));
    assert!(!is_descriptor(b"version=1\n"));
    assert!(!is_descriptor(b"createType=\"x\"\n\x01binary"));
    assert!(!is_descriptor(b"createType=\"x\"\n\0\0junk"));
    assert!(!is_descriptor(b"KDMV"));
    assert!(!is_descriptor(b""));
    let mut big = vec![b'#'; DETECT_WINDOW];
    big.extend_from_slice(b"\ncreateType=\"x\"\n");
    assert!(!is_descriptor(&big));
}

#[test]
fn text_descriptor_size_limit() {
    let mut d = b"# Disk DescriptorFile\n".to_vec();
    d.resize(usize::try_from(MAX_DESCRIPTOR_BYTES).unwrap() + 1, b'#');
    let f = open(Arc::new(d)).err().unwrap();
    assert_eq!(f.code, "VMDK.Descriptor");
}

#[test]
fn rules_are_unique_and_prefixed() {
    let mut seen = std::collections::HashSet::new();
    for r in RULES {
        assert!(r.code.starts_with("VMDK."), "{}", r.code);
        assert!(seen.insert(r.code), "duplicate {}", r.code);
        assert!(!r.hint.is_empty() && !r.summary.is_empty());
    }
}

#[test]
fn descriptor_mutations_never_panic() {
    let sp = sparse(&pattern_disk(64, 1)).bytes;
    let files = mem_files(&[("s.vmdk", sp), ("f.vmdk", vec![3u8; 512 * 20])]);
    let base = b"# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\nRW 64 SPARSE \"s.vmdk\"\nRW 16 FLAT \"f.vmdk\" 4\nRW 8 ZERO\nddb.adapterType = \"ide\"\n";
    let alphabet = b"\"= \n\r\t0123456789.,/\\RWFLATSPZEOabcf#\0\xff";
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut opened = 0;
    for _ in 0..3000 {
        let mut d = base.to_vec();
        for _ in 0..1 + next() % 4 {
            let r = next();
            let at = (r >> 8) as usize % d.len();
            let c = alphabet[(r >> 40) as usize % alphabet.len()];
            match r % 3 {
                0 => d[at] = c,
                1 => d.insert(at, c),
                _ => {
                    d.remove(at);
                }
            }
        }
        let src: Arc<dyn Source> = Arc::new(d);
        let res = open_with(src, &|name| {
            files
                .get(name)
                .cloned()
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "gone"))
        });
        if let Ok(img) = res {
            opened += 1;
            let _ = img.check();
            let size = img.size();
            let mut buf = vec![0u8; usize::try_from(size.min(50_000)).unwrap()];
            img.read_at(0, &mut buf).unwrap();
        }
    }
    assert!(opened > 300, "{opened}");
}
