//! Real qemu-img images, damaged on purpose: each damage gives its coded
//! error (from open or check), never a panic, and our verdict agrees with
//! `qemu-img check` where qemu can judge.

mod common;

use common::*;
use preflight_disk::{BlockRead, DiskImage, ReadError};
use preflight_report::{has_errors, Finding, Severity};
use std::path::{Path, PathBuf};

const CS: u64 = 65536;

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

fn put64(b: &mut [u8], at: u64, v: u64) {
    let at = usize::try_from(at).unwrap();
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

fn put32(b: &mut [u8], at: u64, v: u32) {
    let at = usize::try_from(at).unwrap();
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn put16(b: &mut [u8], at: u64, v: u16) {
    let at = usize::try_from(at).unwrap();
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// An 8 MiB image with data, converted by qemu-img (64 KiB clusters).
fn base(dir: &Path) -> PathBuf {
    let raw = p(dir, "src.raw");
    make_raw(&raw, 8 << 20);
    let img = p(dir, "base.qcow2");
    qemu_img(&["convert", "-O", "qcow2", s(&raw), s(&img)]);
    img
}

/// Where things are in an image: (L1 offset, first L2 offset, first
/// refcount block offset).
fn layout(b: &[u8]) -> (u64, u64, u64) {
    let l1 = be64(b, 40);
    let l2 = be64(b, usize::try_from(l1).unwrap()) & 0x00ff_ffff_ffff_fe00;
    let rt = be64(b, 48);
    let rb = be64(b, usize::try_from(rt).unwrap());
    (l1, l2, rb)
}

/// Writes a patched copy of `src` and returns its path.
fn patched(src: &Path, name: &str, f: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut b = std::fs::read(src).unwrap();
    f(&mut b);
    let out = src.with_file_name(name);
    std::fs::write(&out, b).unwrap();
    out
}

/// Open, info, check, and a few reads. Returns the open failure or the
/// check findings.
fn judge(path: &Path) -> Result<Vec<Finding>, Finding> {
    let img = open(path)?;
    let _ = img.info();
    let mut buf = vec![0u8; 70000];
    for off in [0u64, 65536 * 3 + 5, img.size().saturating_sub(70000)] {
        let n = buf
            .len()
            .min(usize::try_from(img.size().saturating_sub(off)).unwrap());
        let _ = img.read_at(off, &mut buf[..n]);
    }
    Ok(img.check())
}

/// Expects `code` as an error from open (qemu must refuse to open too).
fn expect_open_error(path: &Path, code: &str) {
    match judge(path) {
        Err(f) => {
            assert_eq!(f.code, code, "{f}");
            assert_eq!(f.severity, Severity::Error);
        }
        Ok(found) => panic!("expected open to fail with {code}, check gave {found:?}"),
    }
    assert_eq!(qemu_check_rc(path), 1, "qemu-img should refuse to open it");
}

/// Expects open to succeed and check to report `code`; qemu-img check must
/// exit with `qemu_rc` (2 = corruption, 3 = leaks only).
fn expect_check(path: &Path, code: &str, qemu_rc: i32) -> Vec<Finding> {
    let found = judge(path).unwrap_or_else(|f| panic!("open failed: {f}"));
    assert!(
        found.iter().any(|f| f.code == code),
        "expected {code}, got {found:?}"
    );
    let ours_rc = if has_errors(&found) {
        2
    } else if found.iter().any(|f| f.code == "QCOW2.LeakedClusters") {
        3
    } else {
        0
    };
    assert_eq!(
        ours_rc, qemu_rc,
        "our verdict vs expected qemu rc: {found:?}"
    );
    assert_eq!(qemu_check_rc(path), qemu_rc, "qemu-img check rc");
    found
}

/// (what, patch, expected code).
type Case = (&'static str, Box<dyn Fn(&mut Vec<u8>)>, &'static str);

#[test]
fn header_fields_qemu_refuses() {
    let d = tempfile::tempdir().unwrap();
    let b = base(d.path());
    let file_len = std::fs::metadata(&b).unwrap().len();
    let cases: Vec<Case> = vec![
        ("magic", Box::new(|x| x[1] ^= 0xff), "QCOW2.BadMagic"),
        (
            "version 1",
            Box::new(|x| put32(x, 4, 1)),
            "QCOW2.UnsupportedVersion",
        ),
        (
            "version 4",
            Box::new(|x| put32(x, 4, 4)),
            "QCOW2.UnsupportedVersion",
        ),
        (
            "cluster_bits 8",
            Box::new(|x| put32(x, 20, 8)),
            "QCOW2.ClusterBits",
        ),
        (
            "cluster_bits 22",
            Box::new(|x| put32(x, 20, 22)),
            "QCOW2.ClusterBits",
        ),
        (
            "cluster_bits 63",
            Box::new(|x| put32(x, 20, 63)),
            "QCOW2.ClusterBits",
        ),
        (
            "size 2^60",
            Box::new(|x| put64(x, 24, 1 << 60)),
            "QCOW2.TooBig",
        ),
        (
            "size 2^62",
            Box::new(|x| put64(x, 24, 1 << 62)),
            "QCOW2.TooBig",
        ),
        (
            "crypt 3",
            Box::new(|x| put32(x, 32, 3)),
            "QCOW2.EncryptionMethod",
        ),
        (
            "l1_size 0",
            Box::new(|x| put32(x, 36, 0)),
            "QCOW2.L1TooSmall",
        ),
        (
            "l1_size 2^25",
            Box::new(|x| put32(x, 36, 1 << 25)),
            "QCOW2.L1TooLarge",
        ),
        (
            "l1_size 2^31",
            Box::new(|x| put32(x, 36, 1 << 31)),
            "QCOW2.L1TooLarge",
        ),
        (
            "l1 unaligned",
            Box::new(|x| {
                let v = be64(x, 40);
                put64(x, 40, v + 8)
            }),
            "QCOW2.L1Unaligned",
        ),
        (
            "reftable unaligned",
            Box::new(|x| {
                let v = be64(x, 48);
                put64(x, 48, v + 512)
            }),
            "QCOW2.RefcountTable",
        ),
        (
            "reftable 2^24 clusters",
            Box::new(|x| put32(x, 56, 1 << 24)),
            "QCOW2.RefcountTable",
        ),
        (
            "nb_snapshots 2^20",
            Box::new(|x| put32(x, 60, 1 << 20)),
            "QCOW2.SnapshotTable",
        ),
        (
            "snapshots unaligned",
            Box::new(|x| put64(x, 64, 0x10)),
            "QCOW2.SnapshotTable",
        ),
        (
            "compression bit with zlib",
            Box::new(|x| x[79] |= 8),
            "QCOW2.CompressionType",
        ),
        (
            "compression type 2",
            Box::new(|x| x[104] = 2),
            "QCOW2.CompressionType",
        ),
        (
            "unknown incompat bit 20",
            Box::new(|x| x[77] |= 0x10),
            "QCOW2.UnknownIncompatibleFeature",
        ),
        (
            "data-file-raw alone",
            Box::new(|x| x[95] |= 2),
            "QCOW2.ExternalDataFile",
        ),
        (
            "refcount_order 7",
            Box::new(|x| put32(x, 96, 7)),
            "QCOW2.RefcountOrder",
        ),
        (
            "header_length 100",
            Box::new(|x| put32(x, 100, 100)),
            "QCOW2.HeaderLength",
        ),
        (
            "header_length 70000",
            Box::new(|x| put32(x, 100, 70000)),
            "QCOW2.HeaderLength",
        ),
        (
            "backing_file_size 2000",
            Box::new(|x| {
                put64(x, 8, 0x1000);
                put32(x, 16, 2000)
            }),
            "QCOW2.BackingFileName",
        ),
    ];
    assert!(file_len > 3 * CS);
    for (i, (what, f, code)) in cases.iter().enumerate() {
        let path = patched(&b, &format!("case{i}.qcow2"), f);
        eprintln!("case: {what}");
        expect_open_error(&path, code);
    }
}

#[test]
fn header_bits_that_open_but_fail_the_check() {
    let d = tempfile::tempdir().unwrap();
    let b = base(d.path());
    // qemu-img check is happy with the dirty and corrupt bits (rc 0), but
    // an import of such an image is refused by us.
    let dirty = patched(&b, "dirty.qcow2", |x| x[79] |= 1);
    let f = judge(&dirty).unwrap();
    assert!(
        f.iter().any(|f| f.code == "QCOW2.Dirty" && f.is_error()),
        "{f:?}"
    );
    assert_eq!(qemu_check_rc(&dirty), 0);
    let img = open(&dirty).unwrap();
    assert_info(&img, &info_json(&dirty, &[]));

    let corrupt = patched(&b, "corrupt.qcow2", |x| x[79] |= 2);
    let f = judge(&corrupt).unwrap();
    assert!(
        f.iter().any(|f| f.code == "QCOW2.Corrupt" && f.is_error()),
        "{f:?}"
    );
    let img = open(&corrupt).unwrap();
    assert_info(&img, &info_json(&corrupt, &[]));
    assert_eq!(sha_guest(&img), sha_guest(&open(&b).unwrap()));

    // External data file: qemu needs the data file to open it at all.
    let ext = patched(&b, "ext.qcow2", |x| x[79] |= 4);
    let f = judge(&ext).unwrap();
    assert!(
        f.iter().any(|f| f.code == "QCOW2.ExternalDataFile"),
        "{f:?}"
    );
    assert!(matches!(
        open(&ext).unwrap().read_at(0, &mut [0u8; 8]),
        Err(ReadError::Unsupported(_))
    ));
    assert_eq!(qemu_check_rc(&ext), 1);

    // Legacy AES: opens, reports, refuses reads.
    let aes = patched(&b, "aes.qcow2", |x| put32(x, 32, 1));
    let f = judge(&aes).unwrap();
    assert!(f.iter().any(|f| f.code == "QCOW2.Encrypted"), "{f:?}");
    assert_eq!(
        open(&aes).unwrap().info().encryption.as_deref(),
        Some("aes")
    );

    // Extended L2 bit on a normal image: qemu opens it and misreads L2.
    let extl2 = patched(&b, "extl2.qcow2", |x| x[79] |= 16);
    let _ = judge(&extl2);

    // header_length 104 (no compression byte) and 106 (not a multiple of
    // 8) are accepted by qemu.
    for len in [104, 106] {
        let h = patched(&b, "hl.qcow2", |x| put32(x, 100, len));
        assert_eq!(judge(&h).unwrap(), vec![]);
        assert_eq!(qemu_check_rc(&h), 0);
    }
}

#[test]
fn tables_past_eof() {
    let d = tempfile::tempdir().unwrap();
    let b = base(d.path());
    let len = std::fs::metadata(&b).unwrap().len();
    let far = (len / CS + 10) * CS;
    let l1 = patched(&b, "l1.qcow2", |x| put64(x, 40, far));
    expect_check(&l1, "QCOW2.TableOutOfBounds", 2);
    assert!(matches!(
        open(&l1).unwrap().read_at(0, &mut [0u8; 8]),
        Err(ReadError::Corrupt(_))
    ));
    let rt = patched(&b, "rt.qcow2", |x| put64(x, 48, far));
    expect_check(&rt, "QCOW2.TableOutOfBounds", 2);
}

#[test]
fn snapshot_table_at_offset_zero() {
    let d = tempfile::tempdir().unwrap();
    let b = base(d.path());
    let s1 = patched(&b, "s.qcow2", |x| put32(x, 60, 1));
    expect_check(&s1, "QCOW2.SnapshotTable", 2);
}

#[test]
fn l2_entry_past_eof() {
    let d = tempfile::tempdir().unwrap();
    let b = base(d.path());
    let len = std::fs::metadata(&b).unwrap().len();
    let far = (len / CS + 100) * CS;
    let path = patched(&b, "l2.qcow2", |x| {
        let (_, l2, _) = layout(x);
        put64(x, l2, far | 1 << 63);
    });
    expect_check(&path, "QCOW2.L2Entry", 2);
    let img = open(&path).unwrap();
    assert!(matches!(
        img.read_at(0, &mut [0u8; 8]),
        Err(ReadError::Corrupt(_))
    ));
    // The rest of the disk still reads.
    img.read_at(CS, &mut [0u8; 8]).unwrap();
}

#[test]
fn reserved_and_unaligned_entries() {
    let d = tempfile::tempdir().unwrap();
    let b = base(d.path());
    let l1r = patched(&b, "l1r.qcow2", |x| {
        let (l1, _, _) = layout(x);
        x[usize::try_from(l1).unwrap()] |= 0x01; // bit 56: reserved
    });
    expect_check(&l1r, "QCOW2.L1Entry", 2);
    let l2r = patched(&b, "l2r.qcow2", |x| {
        let (_, l2, _) = layout(x);
        x[usize::try_from(l2).unwrap() + 7] |= 0x02; // bit 1: reserved
    });
    expect_check(&l2r, "QCOW2.L2Entry", 2);
    let l2u = patched(&b, "l2u.qcow2", |x| {
        let (_, l2, _) = layout(x);
        let e = be64(x, usize::try_from(l2).unwrap());
        put64(x, l2, e + 4096);
    });
    expect_check(&l2u, "QCOW2.L2Entry", 2);
}

#[test]
fn two_l1_entries_share_an_l2_table() {
    let d = tempfile::tempdir().unwrap();
    let path = p(d.path(), "big.qcow2");
    qemu_img(&["create", "-f", "qcow2", s(&path), "1G"]);
    qemu_io(&path, &["write -P 1 0 128k", "write -P 2 600M 64k"]);
    let shared = patched(&path, "shared.qcow2", |x| {
        let l1 = be64(x, 40);
        let e0 = be64(x, usize::try_from(l1).unwrap());
        put64(x, l1 + 8, e0);
    });
    let f = expect_check(&shared, "QCOW2.L1Entry", 2);
    assert!(
        f.iter().any(|f| f.code == "QCOW2.RefcountMismatch"),
        "{f:?}"
    );
    // Guest reads follow the damaged map: the second half shows the first.
    let img = open(&shared).unwrap();
    let mut buf = [0u8; 4];
    img.read_at(512 << 20, &mut buf).unwrap();
    assert_eq!(buf, [1; 4]);
}

#[test]
fn refcount_bumped_is_a_leak() {
    let d = tempfile::tempdir().unwrap();
    let b = base(d.path());
    let path = patched(&b, "leak.qcow2", |x| {
        let (_, _, rb) = layout(x);
        put16(x, rb, 2); // the header cluster
    });
    let f = expect_check(&path, "QCOW2.LeakedClusters", 3);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(f[0].message.starts_with("1 clusters"), "{}", f[0].message);
}

#[test]
fn refcount_zeroed_is_corruption() {
    let d = tempfile::tempdir().unwrap();
    let b = base(d.path());
    let path = patched(&b, "zero.qcow2", |x| {
        let (_, l2, rb) = layout(x);
        put16(x, rb + 2 * (l2 / CS), 0); // the L2 table's refcount
    });
    let f = expect_check(&path, "QCOW2.RefcountMismatch", 2);
    assert!(f.iter().any(|f| f.code == "QCOW2.CopiedFlag"), "{f:?}");
    let m = f
        .iter()
        .find(|f| f.code == "QCOW2.RefcountMismatch")
        .unwrap();
    assert!(
        m.message.contains("L2 table") && m.message.contains("refcount 0"),
        "{}",
        m.message
    );
}

#[test]
fn l2_table_overlapping_refcount_block() {
    let d = tempfile::tempdir().unwrap();
    let b = base(d.path());
    let path = patched(&b, "ov.qcow2", |x| {
        let (l1, _, rb) = layout(x);
        put64(x, l1, rb | 1 << 63);
    });
    expect_check(&path, "QCOW2.OverlappingMetadata", 2);
}

/// Cuts the file at `len` and expects an error from open or check.
fn expect_truncation_error(b: &Path, len: u64, name: &str) {
    let path = patched(b, name, |x| x.truncate(usize::try_from(len).unwrap()));
    let verdict = judge(&path);
    match &verdict {
        Err(f) => assert!(f.is_error()),
        Ok(found) => assert!(has_errors(found), "cut at {len}: {found:?}"),
    }
}

#[test]
fn truncated_at_many_offsets() {
    let d = tempfile::tempdir().unwrap();
    let b = base(d.path());
    let len = std::fs::metadata(&b).unwrap().len();
    let mut cuts = vec![
        0,
        3,
        4,
        50,
        71,
        72,
        100,
        104,
        111,
        112,
        4096,
        CS - 1,
        CS,
        CS + 1,
    ];
    let mut c = 2 * CS;
    while c < len {
        cuts.extend([c - 4096, c, c + 8]);
        c += CS * 7;
    }
    cuts.extend([len - CS, len - 4096, len - 512, len - 1]);
    for (i, cut) in cuts.into_iter().filter(|&c| c < len).enumerate() {
        expect_truncation_error(&b, cut, &format!("cut{i}.qcow2"));
    }
    // Where qemu can tell (whole clusters missing), it agrees.
    let path = patched(&b, "cut-half.qcow2", |x| {
        x.truncate(usize::try_from(len / 2 / CS * CS).unwrap())
    });
    assert_eq!(qemu_check_rc(&path), 2);
}

#[test]
fn truncated_compressed_image() {
    let d = tempfile::tempdir().unwrap();
    let raw = p(d.path(), "src.raw");
    make_raw(&raw, 8 << 20);
    for ty in ["zlib", "zstd"] {
        let img = p(d.path(), &format!("c-{ty}.qcow2"));
        let opt = format!("compression_type={ty}");
        qemu_img(&["convert", "-c", "-O", "qcow2", "-o", &opt, s(&raw), s(&img)]);
        let len = std::fs::metadata(&img).unwrap().len();
        let intact: Vec<String> = judge(&img).unwrap().into_iter().map(|f| f.code).collect();
        let expected: &[&str] = if ty == "zstd" {
            &["QCOW2.ZstdCompression"]
        } else {
            &[]
        };
        assert_eq!(intact, expected);
        for cut in [1u64, 100, 1000, 5000] {
            expect_truncation_error(&img, len - cut, &format!("c-{ty}-{cut}.qcow2"));
        }
        // A truncated cluster never reads as garbage: it fails.
        let path = patched(&img, "c-cut.qcow2", |x| {
            x.truncate(usize::try_from(len - 1000).unwrap())
        });
        let img2 = open(&path).unwrap();
        let mut buf = vec![0u8; 8 << 20];
        assert!(img2.read_at(0, &mut buf).is_err());
    }
}
