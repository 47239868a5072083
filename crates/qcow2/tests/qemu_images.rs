//! Images made by qemu-img: our info must match `qemu-img info`, our guest
//! reads must match `qemu-img convert -O raw`, and our check must agree with
//! `qemu-img check`.

mod common;

use common::*;
use preflight_disk::{BlockRead, DiskImage, ReadError};
use std::path::Path;

const MB: usize = 1 << 20;

/// Opens `img`, compares info with qemu-img, guest bytes with qemu-img
/// convert, and expects a check with only the `allowed` codes; qemu-img
/// check must say the image is clean.
fn verify(img_path: &Path, dir: &Path, allowed: &[&str]) -> preflight_qcow2::Qcow2Image {
    let img = open(img_path).unwrap_or_else(|f| panic!("open failed: {f}"));
    assert_info(&img, &info_json(img_path, &[]));
    assert_eq!(
        sha_guest(&img),
        sha_qemu(img_path, dir),
        "guest bytes differ from qemu's"
    );
    let findings = img.check();
    for f in &findings {
        assert!(allowed.contains(&f.code.as_str()), "unexpected finding {f}");
    }
    assert_eq!(qemu_check_rc(img_path), 0, "qemu-img check rc");
    img
}

/// Bytes qemu-img map says hold data (for uncompressed images).
fn mapped_data_bytes(path: &Path) -> u64 {
    let out = qemu_img(&["map", "--output=json", s(path)]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"].as_bool() == Some(true))
        .map(|e| e["length"].as_u64().unwrap())
        .sum()
}

fn converted(dir: &Path, opts: &[&str], compress: bool) -> std::path::PathBuf {
    let raw = p(dir, "src.raw");
    make_raw(&raw, 8 * MB);
    let img = p(dir, "img.qcow2");
    let mut args = vec!["convert", "-O", "qcow2"];
    if compress {
        args.push("-c");
    }
    args.extend_from_slice(opts);
    args.push(s(&raw));
    args.push(s(&img));
    qemu_img(&args);
    std::fs::remove_file(raw).unwrap();
    img
}

#[test]
fn compat_0_10() {
    let d = tempfile::tempdir().unwrap();
    let path = converted(d.path(), &["-o", "compat=0.10"], false);
    let img = verify(&path, d.path(), &[]);
    assert_eq!(img.info().version.as_deref(), Some("0.10"));
    assert_eq!(img.info().allocated_size, mapped_data_bytes(&path));
}

#[test]
fn compat_1_1_default() {
    let d = tempfile::tempdir().unwrap();
    let path = converted(d.path(), &[], false);
    let img = verify(&path, d.path(), &[]);
    assert_eq!(img.info().version.as_deref(), Some("1.1"));
    assert!(img.info().features.is_empty(), "{:?}", img.info().features);
    assert_eq!(img.info().allocated_size, mapped_data_bytes(&path));
}

#[test]
fn cluster_512() {
    let d = tempfile::tempdir().unwrap();
    let path = converted(d.path(), &["-o", "cluster_size=512"], false);
    let img = verify(&path, d.path(), &[]);
    assert_eq!(img.info().cluster_size, Some(512));
    assert_eq!(img.info().allocated_size, mapped_data_bytes(&path));
}

#[test]
fn cluster_2m() {
    let d = tempfile::tempdir().unwrap();
    let path = converted(d.path(), &["-o", "cluster_size=2M"], false);
    let img = verify(&path, d.path(), &[]);
    assert_eq!(img.info().cluster_size, Some(2 << 20));
}

#[test]
fn refcount_bits_1_16_64() {
    for bits in ["1", "16", "64"] {
        let d = tempfile::tempdir().unwrap();
        let opt = format!("refcount_bits={bits}");
        let path = converted(d.path(), &["-o", &opt], false);
        verify(&path, d.path(), &[]);
    }
}

#[test]
fn preallocation_metadata_and_full() {
    for mode in ["metadata", "full"] {
        let d = tempfile::tempdir().unwrap();
        let path = p(d.path(), "img.qcow2");
        let opt = format!("preallocation={mode}");
        qemu_img(&["create", "-f", "qcow2", "-o", &opt, s(&path), "8M"]);
        qemu_io(
            &path,
            &[
                "write -P 0x11 0 100k",
                "write -P 0x22 3M 1M",
                "write -z 3M 64k",
            ],
        );
        verify(&path, d.path(), &[]);
    }
}

#[test]
fn compressed_zlib() {
    let d = tempfile::tempdir().unwrap();
    let path = converted(d.path(), &[], true);
    let img = verify(&path, d.path(), &[]);
    // Compressed clusters count by their compressed size: less than the
    // data qemu maps.
    assert!(img.info().allocated_size > 0);
    assert!(img.info().allocated_size < mapped_data_bytes(&path));
}

#[test]
fn compressed_zlib_512_byte_clusters() {
    let d = tempfile::tempdir().unwrap();
    let path = converted(d.path(), &["-o", "cluster_size=512"], true);
    verify(&path, d.path(), &[]);
}

#[test]
fn compressed_zstd() {
    let d = tempfile::tempdir().unwrap();
    let path = converted(d.path(), &["-o", "compression_type=zstd"], true);
    let img = verify(&path, d.path(), &["QCOW2.ZstdCompression"]);
    assert!(img.info().features.iter().any(|f| f == "compression_zstd"));
    // ECS documents zlib only: a warning, not silence.
    assert!(img
        .check()
        .iter()
        .any(|f| f.code == "QCOW2.ZstdCompression"));
}

#[test]
fn compressed_zstd_2m_clusters() {
    let d = tempfile::tempdir().unwrap();
    let path = converted(
        d.path(),
        &["-o", "compression_type=zstd,cluster_size=2M"],
        true,
    );
    verify(&path, d.path(), &["QCOW2.ZstdCompression"]);
}

#[test]
fn extended_l2() {
    let d = tempfile::tempdir().unwrap();
    let path = p(d.path(), "img.qcow2");
    qemu_img(&[
        "create",
        "-f",
        "qcow2",
        "-o",
        "extended_l2=on",
        s(&path),
        "8M",
    ]);
    qemu_io(
        &path,
        &[
            "write -P 0x11 4k 4k",
            "write -P 0x22 70k 10k",
            "write -P 0x33 1M 192k",
            "write -z 1040k 8k",
            "write -z 5M 64k",
            "write -P 0x44 8180k 12k",
        ],
    );
    let img = verify(&path, d.path(), &["QCOW2.ExtendedL2"]);
    assert!(img.info().features.iter().any(|f| f == "extended_l2"));
    assert!(img.check().iter().any(|f| f.code == "QCOW2.ExtendedL2"));

    // Converted from raw, too.
    let d2 = tempfile::tempdir().unwrap();
    let path2 = converted(
        d2.path(),
        &["-o", "extended_l2=on,cluster_size=128k"],
        false,
    );
    verify(&path2, d2.path(), &["QCOW2.ExtendedL2"]);
}

#[test]
fn extended_l2_file_ends_inside_the_last_cluster() {
    // qemu writes only the subclusters touched: the file ends mid-cluster.
    let d = tempfile::tempdir().unwrap();
    let path = p(d.path(), "img.qcow2");
    qemu_img(&[
        "create",
        "-f",
        "qcow2",
        "-o",
        "extended_l2=on",
        s(&path),
        "8M",
    ]);
    qemu_io(&path, &["write -P 0x11 0 4k", "write -P 0x12 3M 2k"]);
    assert_ne!(std::fs::metadata(&path).unwrap().len() % 65536, 0);
    verify(&path, d.path(), &["QCOW2.ExtendedL2"]);
}

#[test]
fn lazy_refcounts() {
    let d = tempfile::tempdir().unwrap();
    let path = p(d.path(), "img.qcow2");
    qemu_img(&[
        "create",
        "-f",
        "qcow2",
        "-o",
        "lazy_refcounts=on",
        s(&path),
        "8M",
    ]);
    qemu_io(&path, &["write -P 0x5 0 2M", "write -P 0x6 6M 100k"]);
    let img = verify(&path, d.path(), &[]);
    assert!(img.info().features.iter().any(|f| f == "lazy_refcounts"));
}

#[test]
fn zero_clusters_and_discard() {
    let d = tempfile::tempdir().unwrap();
    let path = converted(d.path(), &[], false);
    qemu_io(
        &path,
        &["write -z 0 256k", "discard 2M 128k", "write -z -u 3M 64k"],
    );
    verify(&path, d.path(), &[]);
}

#[test]
fn empty_fresh_image() {
    let d = tempfile::tempdir().unwrap();
    let path = p(d.path(), "img.qcow2");
    qemu_img(&["create", "-f", "qcow2", s(&path), "16M"]);
    let img = verify(&path, d.path(), &[]);
    assert_eq!(img.info().allocated_size, 0);
    let mut buf = vec![1u8; 100_000];
    img.read_at(16 * MB as u64 - 100_000, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    assert!(matches!(
        img.read_at(16 * MB as u64 - 10, &mut [0u8; 11]),
        Err(ReadError::OutOfRange { .. })
    ));
}

#[test]
fn zero_sized_image() {
    let d = tempfile::tempdir().unwrap();
    let path = p(d.path(), "img.qcow2");
    qemu_img(&["create", "-f", "qcow2", s(&path), "0"]);
    let img = verify(&path, d.path(), &[]);
    img.read_at(0, &mut []).unwrap();
}

#[test]
fn internal_snapshots() {
    let d = tempfile::tempdir().unwrap();
    let path = converted(d.path(), &[], false);
    qemu_img(&["snapshot", "-c", "first", s(&path)]);
    qemu_io(&path, &["write -P 0x77 1M 1M", "write -P 0x78 7M 4k"]);
    qemu_img(&["snapshot", "-c", "second", s(&path)]);
    qemu_io(&path, &["write -P 0x79 0 64k"]);
    let img = verify(&path, d.path(), &["QCOW2.Snapshots"]);
    let f = img.check();
    let snap = f
        .iter()
        .find(|f| f.code == "QCOW2.Snapshots")
        .expect("snapshot info");
    assert!(
        snap.message.contains("2 internal snapshots"),
        "{}",
        snap.message
    );
    assert!(snap.message.contains("second"), "{}", snap.message);
}

#[test]
fn persistent_bitmaps() {
    let d = tempfile::tempdir().unwrap();
    let path = p(d.path(), "img.qcow2");
    qemu_img(&["create", "-f", "qcow2", s(&path), "8M"]);
    qemu_img(&["bitmap", "--add", s(&path), "b0"]);
    qemu_io(&path, &["write -P 1 0 1M", "write -P 2 5M 64k"]);
    qemu_img(&["bitmap", "--add", s(&path), "b1"]);
    let img = verify(&path, d.path(), &[]);
    assert!(img.info().features.iter().any(|f| f == "bitmaps"));
}

#[test]
fn backing_file_overlay() {
    let d = tempfile::tempdir().unwrap();
    let base = converted(d.path(), &[], false);
    let overlay = p(d.path(), "overlay.qcow2");
    qemu_img(&[
        "create",
        "-f",
        "qcow2",
        "-b",
        s(&base),
        "-F",
        "qcow2",
        s(&overlay),
    ]);
    qemu_io(&overlay, &["write -P 0xab 0 1M"]);
    let img = open(&overlay).unwrap();
    assert_info(&img, &info_json(&overlay, &[]));
    assert_eq!(img.info().backing_file.as_deref(), Some(s(&base)));
    let findings = img.check();
    assert_eq!(codes(&findings), ["QCOW2.BackingFile"], "{findings:?}");
    assert!(findings[0].is_error());
    assert!(findings[0].hint.contains("qemu-img convert"));
    // We never follow the backing file: unallocated clusters read as zeros,
    // as qemu reads the overlay with the backing chain cut.
    let raw = p(d.path(), "overlay.raw");
    let spec = format!(
        r#"json:{{"driver":"qcow2","backing":null,"file":{{"driver":"file","filename":"{}"}}}}"#,
        s(&overlay)
    );
    qemu_img(&["convert", "-O", "raw", &spec, s(&raw)]);
    assert_eq!(sha_guest(&img), sha_file(&raw));
    assert_eq!(img.info().allocated_size, 1 << 20);
}

#[test]
fn luks_encrypted() {
    let d = tempfile::tempdir().unwrap();
    let path = p(d.path(), "img.qcow2");
    qemu_img(&[
        "create",
        "-f",
        "qcow2",
        "--object",
        "secret,id=sec0,data=abc",
        "-o",
        "encrypt.format=luks,encrypt.key-secret=sec0",
        s(&path),
        "4M",
    ]);
    let img = open(&path).unwrap();
    assert_info(&img, &info_json(&path, &[]));
    assert_eq!(img.info().encryption.as_deref(), Some("luks"));
    let findings = img.check();
    assert_eq!(codes(&findings), ["QCOW2.Encrypted"], "{findings:?}");
    assert!(findings[0].hint.contains("secret"));
    assert!(matches!(
        img.read_at(0, &mut [0u8; 512]),
        Err(ReadError::Unsupported(_))
    ));
}

#[test]
fn check_is_fast_on_a_big_sparse_image() {
    // 100 GiB virtual with a little data spread out: check and info read
    // metadata only.
    let d = tempfile::tempdir().unwrap();
    let path = p(d.path(), "img.qcow2");
    qemu_img(&["create", "-f", "qcow2", s(&path), "100G"]);
    qemu_io(
        &path,
        &[
            "write -P 1 0 1M",
            "write -P 2 50G 1M",
            "write -P 3 99G 2M",
            "write -P 4 107374178304 4k",
        ],
    );
    let img = open(&path).unwrap();
    assert_info(&img, &info_json(&path, &[]));
    assert!(img.check().is_empty());
    assert_eq!(img.info().allocated_size, mapped_data_bytes(&path));
    let mut buf = vec![0u8; 4096];
    img.read_at(100 * 1024 * MB as u64 - 4096, &mut buf)
        .unwrap();
    assert!(buf.iter().all(|&b| b == 4));
    img.read_at(50 * 1024 * MB as u64 - 2048, &mut buf).unwrap();
    assert!(buf[..2048].iter().all(|&b| b == 0) && buf[2048..].iter().all(|&b| b == 2));
}

#[test]
fn concurrent_reads_agree() {
    let d = tempfile::tempdir().unwrap();
    let path = converted(d.path(), &["-o", "compression_type=zstd"], true);
    let img = open(&path).unwrap();
    let expected = sha_guest(&img);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| assert_eq!(sha_guest(&img), expected));
        }
    });
    assert_eq!(expected, sha_qemu(&path, d.path()));
}

#[test]
fn compat_0_10_compressed() {
    let d = tempfile::tempdir().unwrap();
    let path = converted(d.path(), &["-o", "compat=0.10,cluster_size=4k"], true);
    verify(&path, d.path(), &[]);
}

#[test]
fn crashed_image_with_lazy_refcounts() {
    // A VM that died with lazy refcounts leaves the dirty bit set and the
    // refcounts of new clusters at 0. qemu-img check calls it corrupt; the
    // guest data are intact.
    let d = tempfile::tempdir().unwrap();
    let path = p(d.path(), "img.qcow2");
    qemu_img(&[
        "create",
        "-f",
        "qcow2",
        "-o",
        "lazy_refcounts=on",
        s(&path),
        "8M",
    ]);
    let status = std::process::Command::new("qemu-io")
        .args([
            "-f",
            "qcow2",
            "-c",
            "write -P 1 0 1M",
            "-c",
            "write -P 2 5M 64k",
            "-c",
            "abort",
        ])
        .arg(&path)
        .output()
        .unwrap()
        .status;
    assert!(!status.success(), "qemu-io abort should kill qemu-io");
    let img = open(&path).unwrap();
    assert_info(&img, &info_json(&path, &[]));
    assert!(img.info().features.iter().any(|f| f == "dirty"));
    assert_eq!(sha_guest(&img), sha_qemu(&path, d.path()));
    let f = img.check();
    let count = |c: &str| f.iter().filter(|x| x.code == c).count();
    assert_eq!(count("QCOW2.Dirty"), 1, "{f:?}");
    // qemu: 17 "refcount=0 reference=1" and 17 OFLAG_COPIED errors.
    assert_eq!(count("QCOW2.RefcountMismatch"), 17, "{f:?}");
    assert_eq!(count("QCOW2.CopiedFlag"), 17, "{f:?}");
    assert_eq!(qemu_check_rc(&path), 2);
}
