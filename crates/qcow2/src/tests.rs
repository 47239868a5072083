//! Golden tiny images built byte by byte, and one-field mutations of them.

use super::*;
use preflight_report::Severity;

const CS: usize = 512;

/// The header of the golden image, byte for byte: v3, 512-byte clusters,
/// 64 KiB virtual, L1 (2 entries) at 0x600, refcount table at 0x200 (one
/// cluster), 16-bit refcounts, header_length 112, zlib.
const GOLDEN_HEADER: [u8; 112] = [
    0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3, // magic, version
    0, 0, 0, 0, 0, 0, 0, 0, // backing_file_offset
    0, 0, 0, 0, 0, 0, 0, 9, // backing_file_size, cluster_bits
    0, 0, 0, 0, 0, 1, 0, 0, // size = 65536
    0, 0, 0, 0, 0, 0, 0, 2, // crypt_method, l1_size
    0, 0, 0, 0, 0, 0, 6, 0, // l1_table_offset = 0x600
    0, 0, 0, 0, 0, 0, 2, 0, // refcount_table_offset = 0x200
    0, 0, 0, 1, 0, 0, 0, 0, // refcount_table_clusters, nb_snapshots
    0, 0, 0, 0, 0, 0, 0, 0, // snapshots_offset
    0, 0, 0, 0, 0, 0, 0, 0, // incompatible_features
    0, 0, 0, 0, 0, 0, 0, 0, // compatible_features
    0, 0, 0, 0, 0, 0, 0, 0, // autoclear_features
    0, 0, 0, 4, 0, 0, 0, 112, // refcount_order, header_length
    0, 0, 0, 0, 0, 0, 0, 0, // compression_type, padding
];

fn put64(img: &mut [u8], at: usize, v: u64) {
    img[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

fn put32(img: &mut [u8], at: usize, v: u32) {
    img[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn put16(img: &mut [u8], at: usize, v: u16) {
    img[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// The golden image: header, refcount table, refcount block, L1, one L2
/// table, one data cluster of 0xab (guest cluster 0). 3072 bytes.
fn golden() -> Vec<u8> {
    let mut img = vec![0u8; 6 * CS];
    img[..112].copy_from_slice(&GOLDEN_HEADER);
    // cluster 0 after the header: the end-of-extensions marker (zeros).
    put64(&mut img, CS, 2 * CS as u64); // refcount table[0] -> block at cluster 2
    for k in 0..6 {
        put16(&mut img, 2 * CS + 2 * k, 1);
    }
    put64(&mut img, 3 * CS, (4 * CS as u64) | tables::OFLAG_COPIED); // L1[0]
    put64(&mut img, 4 * CS, (5 * CS as u64) | tables::OFLAG_COPIED); // L2[0]
    img[5 * CS..].fill(0xab);
    img
}

fn open_bytes(b: Vec<u8>) -> Result<Qcow2Image, Finding> {
    open(Arc::new(b))
}

/// Opens, checks and reads everything; returns the codes (open failure or
/// check findings). Must never panic.
fn exercise(b: Vec<u8>) -> Vec<String> {
    match open_bytes(b) {
        Err(f) => {
            assert_eq!(f.severity, Severity::Error, "{f}");
            vec![f.code]
        }
        Ok(img) => {
            let _ = img.info();
            let mut buf = vec![0u8; 1000];
            let size = img.size();
            for off in [0, 100, 511, 4096, size.saturating_sub(1000)] {
                let n = usize::try_from(size.saturating_sub(off).min(1000)).unwrap();
                let _ = img.read_at(off, &mut buf[..n]);
            }
            img.check().into_iter().map(|f| f.code).collect()
        }
    }
}

#[test]
fn golden_header_is_what_the_builder_writes() {
    let img = golden();
    assert_eq!(&img[..112], &GOLDEN_HEADER[..]);
    let h = header::parse_fixed(&img).unwrap();
    assert_eq!(h.version, 3);
    assert_eq!(h.cluster_bits, 9);
    assert_eq!(h.size, 65536);
    assert_eq!(h.l1_size, 2);
    assert_eq!(h.l1_table_offset, 0x600);
    assert_eq!(h.refcount_table_offset, 0x200);
    assert_eq!(h.header_length, 112);
}

#[test]
fn golden_image_opens_reads_and_checks_clean() {
    let img = open_bytes(golden()).unwrap();
    let info = img.info();
    assert_eq!(info.virtual_size, 65536);
    assert_eq!(info.file_size, 3072);
    assert_eq!(info.cluster_size, Some(512));
    assert_eq!(info.allocated_size, 512);
    assert_eq!(info.version.as_deref(), Some("1.1"));
    assert_eq!(info.subformat.as_deref(), Some("1.1"));
    let mut buf = vec![0u8; 1024];
    img.read_at(0, &mut buf).unwrap();
    assert!(buf[..512].iter().all(|&b| b == 0xab));
    assert!(buf[512..].iter().all(|&b| b == 0));
    assert_eq!(img.check(), vec![]);
}

/// The subformat is what qemu-img calls the version: compat 0.10 or 1.1.
#[test]
fn version_2_is_compat_0_10() {
    let mut b = golden();
    put32(&mut b, 4, 2);
    let img = open_bytes(b).unwrap();
    assert_eq!(img.info().subformat.as_deref(), Some("0.10"));
    assert_eq!(img.info().version.as_deref(), Some("0.10"));
}

#[test]
fn golden_image_is_clean_for_qemu_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("golden.qcow2");
    std::fs::write(&path, golden()).unwrap();
    let (clean, out) =
        preflight_testkit::qemu_img_status(&["check", "-f", "qcow2", path.to_str().unwrap()]);
    assert!(clean, "{out}");
}

/// (what, mutation, expected code).
type Case = (&'static str, fn(&mut Vec<u8>), &'static str);

#[test]
fn one_field_mutations_give_their_code() {
    let cases: &[Case] = &[
        ("magic", |b| b[0] = b'X', "QCOW2.BadMagic"),
        ("version 1", |b| put32(b, 4, 1), "QCOW2.UnsupportedVersion"),
        ("version 4", |b| put32(b, 4, 4), "QCOW2.UnsupportedVersion"),
        ("cluster_bits 8", |b| put32(b, 20, 8), "QCOW2.ClusterBits"),
        ("cluster_bits 22", |b| put32(b, 20, 22), "QCOW2.ClusterBits"),
        ("cluster_bits 63", |b| put32(b, 20, 63), "QCOW2.ClusterBits"),
        ("size 2^60", |b| put64(b, 24, 1 << 60), "QCOW2.TooBig"),
        ("size 2^40", |b| put64(b, 24, 1 << 40), "QCOW2.L1TooSmall"),
        ("crypt 3", |b| put32(b, 32, 3), "QCOW2.EncryptionMethod"),
        ("crypt aes", |b| put32(b, 32, 1), "QCOW2.Encrypted"),
        ("l1_size 0", |b| put32(b, 36, 0), "QCOW2.L1TooSmall"),
        (
            "l1_size 2^31",
            |b| put32(b, 36, 1 << 31),
            "QCOW2.L1TooLarge",
        ),
        ("l1 unaligned", |b| put64(b, 40, 0x601), "QCOW2.L1Unaligned"),
        (
            "l1 past eof",
            |b| put64(b, 40, 0x10000),
            "QCOW2.TableOutOfBounds",
        ),
        (
            "reftable unaligned",
            |b| put64(b, 48, 0x208),
            "QCOW2.RefcountTable",
        ),
        (
            "reftable past eof",
            |b| put64(b, 48, 0x10000),
            "QCOW2.TableOutOfBounds",
        ),
        (
            "reftable 2^24 clusters",
            |b| put32(b, 56, 1 << 24),
            "QCOW2.RefcountTable",
        ),
        ("no reftable", |b| put32(b, 56, 0), "QCOW2.RefcountTable"),
        (
            "nb_snapshots 2^20",
            |b| put32(b, 60, 1 << 20),
            "QCOW2.SnapshotTable",
        ),
        (
            "snapshots unaligned",
            |b| put64(b, 64, 0x10),
            "QCOW2.SnapshotTable",
        ),
        (
            "snapshot at header",
            |b| put32(b, 60, 1),
            "QCOW2.SnapshotTable",
        ),
        ("dirty", |b| b[79] = 1, "QCOW2.Dirty"),
        ("corrupt", |b| b[79] = 2, "QCOW2.Corrupt"),
        ("data file", |b| b[79] = 4, "QCOW2.ExternalDataFile"),
        (
            "compression bit with zlib",
            |b| b[79] = 8,
            "QCOW2.CompressionType",
        ),
        (
            "compression type 2",
            |b| b[104] = 2,
            "QCOW2.CompressionType",
        ),
        ("zstd without bit", |b| b[104] = 1, "QCOW2.CompressionType"),
        (
            "ext l2 with 512 B clusters",
            |b| b[79] = 16,
            "QCOW2.ClusterBits",
        ),
        (
            "unknown incompat bit 20",
            |b| b[77] = 0x10,
            "QCOW2.UnknownIncompatibleFeature",
        ),
        (
            "data-file-raw alone",
            |b| b[95] = 2,
            "QCOW2.ExternalDataFile",
        ),
        (
            "refcount_order 7",
            |b| put32(b, 96, 7),
            "QCOW2.RefcountOrder",
        ),
        (
            "refcount_order 0",
            |b| put32(b, 96, 0),
            "QCOW2.RefcountMismatch",
        ),
        (
            "header_length 100",
            |b| put32(b, 100, 100),
            "QCOW2.HeaderLength",
        ),
        (
            "header_length 70000",
            |b| put32(b, 100, 70000),
            "QCOW2.HeaderLength",
        ),
        (
            "backing name too long",
            |b| {
                put64(b, 8, 0x100);
                put32(b, 16, 2000);
            },
            "QCOW2.BackingFileName",
        ),
        (
            "backing offset past cluster",
            |b| {
                put64(b, 8, 0x1000);
                put32(b, 16, 3);
            },
            "QCOW2.BackingFileName",
        ),
        (
            "backing file",
            |b| {
                put64(b, 8, 0x100);
                put32(b, 16, 4);
                b[0x100..0x104].copy_from_slice(b"base");
            },
            "QCOW2.BackingFile",
        ),
        (
            "extension too long",
            |b| {
                put32(b, 112, 0x1234_5678);
                put32(b, 116, 1000);
            },
            "QCOW2.HeaderExtension",
        ),
        (
            "crypto extension without luks",
            |b| {
                put32(b, 112, 0x0537_be77);
                put32(b, 116, 16);
            },
            "QCOW2.HeaderExtension",
        ),
        ("L1 reserved bits", |b| b[3 * CS + 7] |= 1, "QCOW2.L1Entry"),
        (
            "L1 unaligned L2",
            |b| put64(b, 3 * CS, 0x810 | tables::OFLAG_COPIED),
            "QCOW2.L1Entry",
        ),
        (
            "L1 L2 past eof",
            |b| put64(b, 3 * CS, 0x10000),
            "QCOW2.TableOutOfBounds",
        ),
        (
            "L1 twice the same L2",
            |b| put64(b, 3 * CS + 8, 0x800 | tables::OFLAG_COPIED),
            "QCOW2.L1Entry",
        ),
        ("L2 reserved bits", |b| b[4 * CS + 7] |= 2, "QCOW2.L2Entry"),
        (
            "L2 unaligned",
            |b| put64(b, 4 * CS, 0xa10 | tables::OFLAG_COPIED),
            "QCOW2.L2Entry",
        ),
        (
            "L2 past eof",
            |b| put64(b, 4 * CS, 0x10000 | tables::OFLAG_COPIED),
            "QCOW2.L2Entry",
        ),
        (
            "L2 points at refcount block",
            |b| put64(b, 4 * CS, 0x400 | tables::OFLAG_COPIED),
            "QCOW2.OverlappingMetadata",
        ),
        (
            "L1 entry 0 with only COPIED",
            |b| put64(b, 3 * CS, tables::OFLAG_COPIED),
            "QCOW2.LeakedClusters",
        ),
        (
            "L2 is the refcount table",
            |b| put64(b, 3 * CS, 0x200 | tables::OFLAG_COPIED),
            "QCOW2.OverlappingMetadata",
        ),
        (
            "L2 is the L1",
            |b| put64(b, 3 * CS, 0x600 | tables::OFLAG_COPIED),
            "QCOW2.OverlappingMetadata",
        ),
        (
            "compressed with COPIED",
            |b| put64(b, 4 * CS, 0xa00 | 3 << 62),
            "QCOW2.L2Entry",
        ),
        (
            "refcount bumped",
            |b| put16(b, 2 * CS, 2),
            "QCOW2.LeakedClusters",
        ),
        (
            "refcount of data zeroed",
            |b| put16(b, 2 * CS + 10, 0),
            "QCOW2.RefcountMismatch",
        ),
        (
            "COPIED missing",
            |b| put64(b, 4 * CS, 0xa00),
            "QCOW2.CopiedFlag",
        ),
        (
            "reftable entry reserved",
            |b| b[CS + 7] |= 1,
            "QCOW2.RefcountTable",
        ),
        (
            "refblock past eof",
            |b| put64(b, CS, 0x10000),
            "QCOW2.TableOutOfBounds",
        ),
        (
            "truncated data",
            |b| b.truncate(5 * CS + 100),
            "QCOW2.Truncated",
        ),
        ("truncated header", |b| b.truncate(100), "QCOW2.Truncated"),
        ("empty file", |b| b.clear(), "QCOW2.Truncated"),
    ];
    for (what, mutate, code) in cases {
        let mut b = golden();
        mutate(&mut b);
        let codes = exercise(b);
        if *code == "none" {
            assert_eq!(codes, Vec::<String>::new(), "{what}");
            continue;
        }
        assert!(
            codes.iter().any(|c| c == code),
            "{what}: expected {code}, got {codes:?}"
        );
    }
}

/// A refcount table that starts in the file's last, partly written cluster
/// (which the cluster-granular bounds check accepts, as qemu's does) but
/// ends past the end of the file is out of bounds, not an I/O error.
#[test]
fn refcount_table_ending_past_eof_is_out_of_bounds() {
    let mut b = golden();
    b.extend_from_slice(&[0u8; 8]); // 3080 bytes: cluster 6 holds 8 bytes
    put64(&mut b, 48, 6 * CS as u64);
    let img = open_bytes(b).unwrap();
    let findings = img.check();
    let codes: Vec<&str> = findings.iter().map(|f| f.code.as_str()).collect();
    assert!(!codes.contains(&"QCOW2.Io"), "{findings:#?}");
    let f = findings
        .iter()
        .find(|f| f.code == "QCOW2.TableOutOfBounds")
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert!(f.is_error());
    for part in ["refcount table", "0xc00", "512 bytes", "3080 bytes"] {
        assert!(f.message.contains(part), "{part}: {}", f.message);
    }
}

/// Snapshot L1 tables and bitmap tables are read the same way.
#[test]
fn snapshot_l1_ending_past_eof_is_out_of_bounds() {
    // One snapshot whose L1 table (2 entries = 16 bytes) sits 8 bytes
    // before the end of the file.
    let mut b = golden();
    let table = b.len();
    b.resize(table + CS, 0);
    put64(&mut b, table, 0x2000); // snapshot L1 at cluster 16...
    put32(&mut b, table + 8, 2); // ...with 2 entries
    put64(&mut b, 64, table as u64); // snapshots_offset
    put32(&mut b, 60, 1); // nb_snapshots
    b.resize(0x2000 + 8, 0);
    let codes = exercise(b);
    assert!(!codes.contains(&"QCOW2.Io".to_string()), "{codes:?}");
    assert!(
        codes.contains(&"QCOW2.TableOutOfBounds".to_string()),
        "{codes:?}"
    );
}

#[test]
fn l1_past_eof_opens_but_reads_fail() {
    let mut b = golden();
    put64(&mut b, 40, 0x10000);
    let img = open_bytes(b).unwrap();
    let Err(ReadError::Corrupt(fault)) = img.read_at(0, &mut [0u8; 16]) else {
        panic!("an L1 table past the end of the file reads");
    };
    // The payload is the typed fault, with the values it names.
    let fault = fault
        .downcast_ref::<crate::ReadFault>()
        .expect("a qcow2 ReadFault");
    assert!(
        matches!(
            fault,
            crate::ReadFault::L1PastEnd {
                offset: 0x10000,
                ..
            }
        ),
        "{fault:?}"
    );
    assert!(
        fault.to_string().starts_with("the active L1 table ("),
        "{fault}"
    );
}

#[test]
fn data_file_and_encryption_refuse_reads() {
    for byte in [(79usize, 4u8), (35, 1)] {
        let mut b = golden();
        b[byte.0] = byte.1;
        let img = open_bytes(b).unwrap();
        let e = img.read_at(0, &mut [0u8; 16]).unwrap_err();
        let want = if byte.0 == 79 {
            preflight_disk::Unreadable::ExternalDataFile
        } else {
            preflight_disk::Unreadable::Encrypted { method: "aes" }
        };
        assert!(
            matches!(&e, ReadError::Unsupported(u) if *u == want),
            "{e:?}"
        );
    }
}

#[test]
fn every_header_byte_mutated_never_panics() {
    for at in 0..GOLDEN_HEADER.len() + 16 {
        for v in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut b = golden();
            b[at] = v;
            let _ = exercise(b);
        }
    }
}

#[test]
fn every_table_byte_mutated_never_panics() {
    for at in CS..5 * CS {
        for v in [0u8, 0x01, 0x40, 0x80, 0xff] {
            let mut b = golden();
            b[at] = v;
            let _ = exercise(b);
        }
    }
}

#[test]
fn findings_name_the_value() {
    let mut b = golden();
    put32(&mut b, 20, 22);
    let f = open_bytes(b).unwrap_err();
    assert_eq!(f.code, "QCOW2.ClusterBits");
    assert!(f.message.contains("22"), "{}", f.message);
    assert!(f.message.contains("9 to 21"), "{}", f.message);
}

#[test]
fn findings_are_capped_per_code() {
    // Every L2 entry points past the end of the file.
    let mut b = golden();
    for j in 0..64 {
        put64(
            &mut b,
            4 * CS + 8 * j,
            (0x100000 + 512 * j as u64) | tables::OFLAG_COPIED,
        );
    }
    let img = open_bytes(b).unwrap();
    let f = img.check();
    let l2: Vec<_> = f.iter().filter(|f| f.code == "QCOW2.L2Entry").collect();
    assert_eq!(l2.len(), 21, "20 kept plus one summary");
    // The findings past the cap are never built, but still counted exactly.
    let summary = &l2[20].message;
    assert!(
        summary.contains("44 more findings") && summary.contains("(64 in all)"),
        "{summary}"
    );
}

#[test]
fn rules_are_unique_and_listed() {
    let mut codes: Vec<&str> = RULES.iter().map(|r| r.code).collect();
    let n = codes.len();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), n);
    for r in RULES {
        assert!(r.code.starts_with("QCOW2."));
        assert!(!r.hint.is_empty() && !r.summary.is_empty());
    }
}

#[test]
fn refcount_widths_decode() {
    let block = [
        0b1011_0001u8,
        0x12,
        0x34,
        0x56,
        0x78,
        0x9a,
        0xbc,
        0xde,
        0xf0,
    ];
    assert_eq!(tables::refcount_at(&block, 0, 0), 1);
    assert_eq!(tables::refcount_at(&block, 0, 4), 1);
    assert_eq!(tables::refcount_at(&block, 0, 1), 0);
    assert_eq!(tables::refcount_at(&block, 1, 0), 1);
    assert_eq!(tables::refcount_at(&block, 1, 3), 2);
    assert_eq!(tables::refcount_at(&block, 2, 1), 0xb);
    assert_eq!(tables::refcount_at(&block, 3, 1), 0x12);
    assert_eq!(tables::refcount_at(&block, 4, 1), 0x3456);
    assert_eq!(tables::refcount_at(&block, 5, 1), 0x789a_bcde);
    assert_eq!(tables::refcount_at(&block, 6, 0), 0xb112_3456_789a_bcde);
    assert_eq!(tables::refcount_at(&block, 6, 1), 0);
}
