//! `info` and `check` on images of every format, made by qemu-img, compared
//! with what `qemu-img info` says; refused formats; corrupt images.

use crate::common::*;
use std::path::Path;

/// Converts `raw` to `format` with `options` and returns the new path.
fn convert(
    dir: &Path,
    raw: &Path,
    name: &str,
    format: &str,
    options: &[&str],
) -> std::path::PathBuf {
    let out = path_in(dir, name);
    let mut args = vec!["convert", "-f", "raw", "-O", format];
    args.extend_from_slice(options);
    args.push(raw.to_str().unwrap());
    args.push(out.to_str().unwrap());
    sh("qemu-img", &args);
    out
}

#[test]
fn info_matches_qemu_img_for_every_format() {
    let dir = tempdir();
    let raw = path_in(dir.path(), "disk.raw");
    make_raw(&raw, 24 << 20);
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("v3.qcow2", "qcow2", "qcow2", &["-o", "compat=1.1"]),
        ("v2.qcow2", "qcow2", "qcow2", &["-o", "compat=0.10"]),
        (
            "small-clusters.qcow2",
            "qcow2",
            "qcow2",
            &["-o", "cluster_size=512"],
        ),
        (
            "big-clusters.qcow2",
            "qcow2",
            "qcow2",
            &["-o", "cluster_size=2M"],
        ),
        ("compressed.qcow2", "qcow2", "qcow2", &["-c"]),
        (
            "zstd.qcow2",
            "qcow2",
            "qcow2",
            &["-c", "-o", "compression_type=zstd"],
        ),
        ("extl2.qcow2", "qcow2", "qcow2", &["-o", "extended_l2=on"]),
        ("dynamic.vhd", "vpc", "vhd", &["-o", "subformat=dynamic"]),
        (
            "forced.vhd",
            "vpc",
            "vhd",
            &["-o", "subformat=dynamic,force_size=on"],
        ),
        (
            "fixed.vhd",
            "vpc",
            "vhd",
            &["-o", "subformat=fixed,force_size=on"],
        ),
        (
            "sparse.vmdk",
            "vmdk",
            "vmdk",
            &["-o", "subformat=monolithicSparse"],
        ),
        (
            "stream.vmdk",
            "vmdk",
            "vmdk",
            &["-o", "subformat=streamOptimized"],
        ),
        (
            "flat.vmdk",
            "vmdk",
            "vmdk",
            &["-o", "subformat=monolithicFlat"],
        ),
        ("dynamic.vhdx", "vhdx", "vhdx", &["-o", "subformat=dynamic"]),
        ("fixed.vhdx", "vhdx", "vhdx", &["-o", "subformat=fixed"]),
    ];
    for (name, qemu_format, our_format, options) in cases {
        let image = convert(dir.path(), &raw, name, qemu_format, options);
        let (code, ours) = run_json(&["info", image.to_str().unwrap(), "--output", "json"]);
        let theirs = qemu_info(qemu_format, &image);
        assert_eq!(ours["format"], *our_format, "{name}: format");
        assert_eq!(
            ours["virtual_size"], theirs["virtual-size"],
            "{name}: virtual size ours vs qemu-img"
        );
        assert_eq!(
            code, 0,
            "{name}: info (no integrity check) exits 0: {ours:#}"
        );
        assert_eq!(ours["schema_version"], 1);
        for key in ["subformat", "file_size", "allocated_size", "findings"] {
            assert!(ours.get(key).is_some(), "{name}: {key} present");
        }
        // check, too: a clean qemu-made image has no error finding.
        let (code, checked) = run_json(&[
            "check",
            image.to_str().unwrap(),
            "--output",
            "json",
            "--skip-guest",
        ]);
        let refusal = match *our_format {
            // A descriptor plus a data file is two objects; ECS takes one.
            _ if *name == "flat.vmdk" => Some("VMDK.MultiFile"),
            // ImportImage takes RAW, QCOW2, VHD and VMDK only.
            "vhdx" => Some("VHDX.NotImportable"),
            _ => None,
        };
        if let Some(expected) = refusal {
            assert_eq!(code, 1, "{name}: {checked:#}");
            assert!(
                codes(&checked).contains(&expected.to_string()),
                "{name}: {expected}"
            );
        } else {
            assert_eq!(code, 0, "{name}: check exits 0: {checked:#}");
            assert_eq!(checked["verdict"], "pass");
        }
    }
}

#[test]
fn fixed_vhd_is_vhd_although_qemu_probes_raw() {
    let dir = tempdir();
    let raw = path_in(dir.path(), "disk.raw");
    make_raw(&raw, 8 << 20);
    let image = convert(
        dir.path(),
        &raw,
        "fixed.vhd",
        "vpc",
        &["-o", "subformat=fixed,force_size=on"],
    );
    let probed = sh(
        "qemu-img",
        &["info", "--output=json", image.to_str().unwrap()],
    );
    let probed: serde_json::Value = serde_json::from_slice(&probed.stdout).unwrap();
    assert_eq!(probed["format"], "raw", "qemu's probe calls it raw");
    let (_, ours) = run_json(&["info", image.to_str().unwrap(), "--output", "json"]);
    assert_eq!(ours["format"], "vhd");
    assert_eq!(ours["subformat"], "fixed");
    assert_eq!(ours["virtual_size"], 8u64 << 20);
}

/// A Bochs "Redolog/Growing" v2 image of 32 KiB: the 512-byte header (magic,
/// type, subtype, version, header size, catalog entries, bitmap size,
/// extent size, disk size) and a catalog of 8 unallocated extents.
fn bochs_header() -> Vec<u8> {
    let mut b = vec![0u8; 512 + 8 * 4];
    b[..22].copy_from_slice(b"Bochs Virtual HD Image");
    b[32..39].copy_from_slice(b"Redolog");
    b[48..55].copy_from_slice(b"Growing");
    b[64..68].copy_from_slice(&0x0002_0000u32.to_le_bytes());
    b[68..72].copy_from_slice(&512u32.to_le_bytes());
    b[72..76].copy_from_slice(&8u32.to_le_bytes());
    b[76..80].copy_from_slice(&1u32.to_le_bytes());
    b[80..84].copy_from_slice(&4096u32.to_le_bytes());
    b[88..96].copy_from_slice(&(8u64 * 4096).to_le_bytes());
    for entry in b[512..].chunks_mut(4) {
        entry.copy_from_slice(&u32::MAX.to_le_bytes());
    }
    b
}

/// A cloop v2 image with no blocks: the shell preamble (128 bytes), then
/// block size and block count, big-endian.
fn cloop_header() -> Vec<u8> {
    let magic: &[u8] =
        b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";
    let mut c = vec![0u8; 128 + 8];
    c[..magic.len()].copy_from_slice(magic);
    c[128..132].copy_from_slice(&512u32.to_be_bytes());
    c
}

/// The format `qemu-img info` probes for `path`.
fn qemu_probe(path: &std::path::Path) -> String {
    let out = sh(
        "qemu-img",
        &["info", "--output", "json", path.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["format"].as_str().unwrap_or_default().to_string()
}

#[test]
fn refused_formats_are_named_with_a_fix() {
    let dir = tempdir();
    let d = dir.path();
    let raw = path_in(d, "disk.raw");
    make_raw(&raw, 4 << 20);
    let r = raw.to_str().unwrap();
    let mut cases: Vec<(std::path::PathBuf, &str)> = Vec::new();
    for (format, name) in [
        ("vdi", "vdi"),
        ("qed", "qed"),
        ("qcow", "qcow"),
        ("parallels", "parallels"),
    ] {
        let out = path_in(d, &format!("x.{format}"));
        sh(
            "qemu-img",
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                format,
                r,
                out.to_str().unwrap(),
            ],
        );
        cases.push((out, name));
    }
    let luks = path_in(d, "x.luks");
    sh(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "luks",
            "--object",
            "secret,id=s0,data=pw",
            "-o",
            "key-secret=s0,iter-time=10",
            luks.to_str().unwrap(),
            "4M",
        ],
    );
    cases.push((luks, "luks"));
    let gz = path_in(d, "disk.raw.gz");
    std::fs::write(&gz, sh("gzip", &["-c", r]).stdout).unwrap();
    cases.push((gz, "gzip"));
    let xz = path_in(d, "disk.raw.xz");
    std::fs::write(&xz, sh("xz", &["-c", "-0", r]).stdout).unwrap();
    cases.push((xz, "xz"));
    let zst = path_in(d, "disk.raw.zst");
    std::fs::write(&zst, sh("zstd", &["-c", "-q", r]).stdout).unwrap();
    cases.push((zst, "zstd"));
    let bz = path_in(d, "disk.raw.bz2");
    std::fs::write(&bz, sh("bzip2", &["-c", r]).stdout).unwrap();
    cases.push((bz, "bzip2"));
    let zip = path_in(d, "disk.zip");
    sh("zip", &["-q", "-j", zip.to_str().unwrap(), r]);
    cases.push((zip, "zip"));
    let tar = path_in(d, "disk.tar");
    sh(
        "tar",
        &[
            "-cf",
            tar.to_str().unwrap(),
            "-C",
            d.to_str().unwrap(),
            "disk.raw",
        ],
    );
    cases.push((tar, "tar"));
    std::fs::write(path_in(d, "appliance.ovf"), "<Envelope/>").unwrap();
    let ova = path_in(d, "appliance.ova");
    sh(
        "tar",
        &[
            "-cf",
            ova.to_str().unwrap(),
            "-C",
            d.to_str().unwrap(),
            "appliance.ovf",
            "disk.raw",
        ],
    );
    cases.push((ova, "ova"));
    let iso_dir = path_in(d, "iso-root");
    std::fs::create_dir(&iso_dir).unwrap();
    std::fs::write(iso_dir.join("readme.txt"), "hello").unwrap();
    let iso = path_in(d, "cd.iso");
    sh(
        "xorriso",
        &[
            "-as",
            "mkisofs",
            "-quiet",
            "-o",
            iso.to_str().unwrap(),
            iso_dir.to_str().unwrap(),
        ],
    );
    cases.push((iso, "iso"));

    // Formats qemu-img reads but cannot write: hand-made headers, which
    // qemu-img itself names (so they are the real thing, not raw).
    for (name, bytes) in [("bochs", bochs_header()), ("cloop", cloop_header())] {
        let path = path_in(d, &format!("x.{name}"));
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(
            qemu_probe(&path),
            name,
            "qemu-img names the hand-made {name}"
        );
        cases.push((path, name));
    }

    for (path, name) in cases {
        let (code, json) = run_json(&["info", path.to_str().unwrap(), "--output", "json"]);
        assert_eq!(code, 1, "{name}: refused → exit 1: {json:#}");
        assert_eq!(json["format"], name, "{name}: named");
        let finding = &json["findings"][0];
        assert_eq!(finding["code"], "FORMAT.Unsupported", "{name}");
        assert_eq!(finding["severity"], "error");
        assert!(
            !finding["hint"].as_str().unwrap().is_empty(),
            "{name}: has a fix"
        );
        // The human output names the format's fix too.
        let out = run(&["check", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stdout).contains("FORMAT.Unsupported"));
    }
}

#[test]
fn corrupt_images_give_coded_errors_not_panics() {
    let dir = tempdir();
    let raw = path_in(dir.path(), "disk.raw");
    make_raw(&raw, 8 << 20);
    for (name, format, options) in [
        ("c.qcow2", "qcow2", vec![]),
        ("c.vhd", "vpc", vec!["-o", "subformat=dynamic"]),
        ("c.vmdk", "vmdk", vec![]),
        ("c.vhdx", "vhdx", vec![]),
    ] {
        let image = convert(dir.path(), &raw, name, format, &options);
        let bytes = std::fs::read(&image).unwrap();
        // Truncations at a spread of offsets, and a flipped byte in the header.
        let len = bytes.len();
        let mut variants: Vec<(String, Vec<u8>)> = [1usize, 3, 7, 20, 100, 1000]
            .iter()
            .map(|&k| {
                (
                    format!("truncated at {}", len * k / 1001),
                    bytes[..len * k / 1001].to_vec(),
                )
            })
            .collect();
        let mut flipped = bytes.clone();
        flipped[4] ^= 0xff;
        variants.push(("byte 4 flipped".into(), flipped));
        for (what, data) in variants {
            let path = path_in(dir.path(), "mutant");
            std::fs::write(&path, &data).unwrap();
            let out = run(&["check", path.to_str().unwrap(), "--output", "json"]);
            let code = out.status.code();
            assert!(
                code == Some(0) || code == Some(1),
                "{name} {what}: exit {code:?}, stderr {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let json: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| panic!("{name} {what}: JSON report"));
            assert!(json["findings"].is_array());
            if code == Some(1) {
                assert!(
                    json["findings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|f| f["severity"] == "error"),
                    "{name} {what}: exit 1 comes with an error finding"
                );
            }
        }
    }
}

#[test]
fn truncated_qcow2_is_an_error() {
    let dir = tempdir();
    let raw = path_in(dir.path(), "disk.raw");
    make_raw(&raw, 8 << 20);
    let image = convert(dir.path(), &raw, "t.qcow2", "qcow2", &[]);
    let bytes = std::fs::read(&image).unwrap();
    std::fs::write(&image, &bytes[..bytes.len() / 2]).unwrap();
    let (code, json) = run_json(&["check", image.to_str().unwrap(), "--output", "json"]);
    assert_eq!(code, 1, "{json:#}");
    assert!(codes(&json).iter().any(|c| c.starts_with("QCOW2.")));
}

/// The VHD footer checksum: one's complement of the byte sum of the 512
/// bytes with the checksum field (bytes 64..68) read as zero.
fn vhd_footer_checksum(footer: &[u8]) -> u32 {
    let sum = footer
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |acc, (_, &b)| acc.wrapping_add(u32::from(b)));
    !sum
}

/// Corrupts the VHD footer at `at` (its size field, so that a reader that
/// believed it would print a wrong size), leaving the stored checksum stale.
/// Returns (stored, computed) checksums.
fn corrupt_vhd_footer(bytes: &mut [u8], at: usize) -> (u32, u32) {
    bytes[at + 48] ^= 0x01; // current_size, top byte: +2^56 bytes
    let footer = &bytes[at..at + 512];
    let stored = u32::from_be_bytes(footer[64..68].try_into().unwrap());
    (stored, vhd_footer_checksum(footer))
}

/// `info` and `check` refuse a VHD none of whose footers has a valid
/// checksum: exit 1, `VHD.FooterChecksum` naming the stored and computed
/// checksums, and no virtual size (the size field cannot be trusted).
#[test]
fn vhd_without_a_valid_footer_checksum_is_an_error_without_a_size() {
    let dir = tempdir();
    let raw = path_in(dir.path(), "disk.raw");
    make_raw(&raw, 8 << 20);
    let dynamic = convert(
        dir.path(),
        &raw,
        "dyn.vhd",
        "vpc",
        &["-o", "subformat=dynamic"],
    );
    let fixed = convert(
        dir.path(),
        &raw,
        "fixed.vhd",
        "vpc",
        &["-o", "subformat=fixed,force_size=on"],
    );
    // (what, file bytes, (stored, computed) checksum of each footer).
    type Case = (&'static str, Vec<u8>, Vec<(u32, u32)>);
    let mut cases: Vec<Case> = Vec::new();

    let mut b = std::fs::read(&dynamic).unwrap();
    let end = b.len() - 512;
    let sums = vec![
        corrupt_vhd_footer(&mut b, end),
        corrupt_vhd_footer(&mut b, 0),
    ];
    cases.push(("dynamic, both footers", b, sums));

    let mut b = std::fs::read(&fixed).unwrap();
    let end = b.len() - 512;
    let sums = vec![corrupt_vhd_footer(&mut b, end)];
    cases.push(("fixed, its only footer", b, sums));

    // Not a VHD at all: a file that merely ends in `conectix` and garbage.
    let mut b = vec![0u8; 1 << 20];
    let end = b.len() - 512;
    b[end..end + 8].copy_from_slice(b"conectix");
    for (i, x) in b[end + 8..].iter_mut().enumerate() {
        *x = u8::try_from(i * 131 % 251).unwrap();
    }
    let footer = &b[end..];
    let sums = vec![(
        u32::from_be_bytes(footer[64..68].try_into().unwrap()),
        vhd_footer_checksum(footer),
    )];
    cases.push(("conectix look-alike", b, sums));

    for (what, bytes, sums) in cases {
        let path = path_in(dir.path(), "bad.vhd");
        std::fs::write(&path, &bytes).unwrap();
        let p = path.to_str().unwrap();
        for args in [
            vec!["info", p, "--output", "json"],
            vec!["check", p, "--output", "json", "--skip-guest"],
        ] {
            let (code, json) = run_json(&args);
            assert_eq!(code, 1, "{what} {}: {json:#}", args[0]);
            assert_eq!(json["format"], "vhd", "{what}");
            assert!(json["virtual_size"].is_null(), "{what}: no size: {json:#}");
            let f = json["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["code"] == "VHD.FooterChecksum")
                .unwrap_or_else(|| panic!("{what}: VHD.FooterChecksum in {json:#}"));
            assert_eq!(f["severity"], "error");
            let msg = f["message"].as_str().unwrap();
            for (stored, computed) in &sums {
                assert!(
                    msg.contains(&format!("{stored:#010x}"))
                        && msg.contains(&format!("{computed:#010x}")),
                    "{what}: checksums {stored:#010x}/{computed:#010x} named: {msg}"
                );
            }
        }
        // The human output of info exits 1 too and prints no size.
        let out = run(&["info", p]);
        assert_eq!(out.status.code(), Some(1), "{what}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("virtual size"), "{what}: {text}");
        assert!(text.contains("VHD.FooterChecksum"), "{what}: {text}");
    }
}

/// A refcount table that starts in the last, partly written cluster of the
/// file and ends past its end is `QCOW2.TableOutOfBounds` (like an L1 or L2
/// table past the end), naming offset, length and file size; not `QCOW2.Io`.
#[test]
fn qcow2_refcount_table_past_eof_has_its_code() {
    let dir = tempdir();
    let image = path_in(dir.path(), "r.qcow2");
    sh(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            image.to_str().unwrap(),
            "64M",
        ],
    );
    let mut b = std::fs::read(&image).unwrap();
    let cluster_bits = u32::from_be_bytes(b[20..24].try_into().unwrap());
    let cs = 1usize << cluster_bits;
    if b.len() % cs == 0 {
        b.extend_from_slice(&[0u8; 8]); // a partly written last cluster
    }
    let offset = b.len() / cs * cs;
    b[48..56].copy_from_slice(&(offset as u64).to_be_bytes());
    let clusters = u32::from_be_bytes(b[56..60].try_into().unwrap()) as usize;
    std::fs::write(&image, &b).unwrap();

    let (code, json) = run_json(&[
        "check",
        image.to_str().unwrap(),
        "--output",
        "json",
        "--skip-guest",
    ]);
    assert_eq!(code, 1, "{json:#}");
    let codes = codes(&json);
    assert!(!codes.contains(&"QCOW2.Io".to_string()), "{json:#}");
    let f = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["code"] == "QCOW2.TableOutOfBounds"
                && f["message"].as_str().unwrap().contains("refcount table")
        })
        .unwrap_or_else(|| panic!("QCOW2.TableOutOfBounds for the refcount table: {json:#}"));
    assert_eq!(f["severity"], "error");
    let msg = f["message"].as_str().unwrap();
    for part in [
        format!("{offset:#x}"),
        format!("{} bytes", clusters * cs),
        format!("{} bytes", b.len()),
    ] {
        assert!(msg.contains(&part), "{part} in {msg}");
    }
}

/// A qcow2's subformat is its compat level, named as qemu-img names it.
#[test]
fn qcow2_subformat_is_the_compat_level() {
    let dir = tempdir();
    for compat in ["0.10", "1.1"] {
        let image = path_in(dir.path(), &format!("c{compat}.qcow2"));
        sh(
            "qemu-img",
            &[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-o",
                &format!("compat={compat}"),
                image.to_str().unwrap(),
                "16M",
            ],
        );
        let theirs = qemu_info("qcow2", &image);
        assert_eq!(theirs["format-specific"]["data"]["compat"], compat);
        let (code, ours) = run_json(&["info", image.to_str().unwrap(), "--output", "json"]);
        assert_eq!(code, 0, "{ours:#}");
        assert_eq!(ours["subformat"], compat, "{ours:#}");
    }
}

/// `allocated_size` means the same for every format: bytes of the file
/// holding guest data. A streamOptimized VMDK counts its compressed grains
/// as stored, as a compressed qcow2 counts its compressed clusters, so on
/// compressible data neither is more than the file.
#[test]
fn stream_optimized_vmdk_allocated_size_is_bytes_in_the_file() {
    let dir = tempdir();
    let raw = path_in(dir.path(), "text.raw");
    let line = b"ecs-preflight checks disk images before ImportImage.\n";
    let mut data: Vec<u8> = line.iter().copied().cycle().take(8 << 20).collect();
    data[4 << 20..6 << 20].fill(0); // a hole
    std::fs::write(&raw, &data).unwrap();
    let stream = convert(
        dir.path(),
        &raw,
        "s.vmdk",
        "vmdk",
        &["-o", "subformat=streamOptimized"],
    );
    let sparse = convert(
        dir.path(),
        &raw,
        "m.vmdk",
        "vmdk",
        &["-o", "subformat=monolithicSparse"],
    );
    let compressed = convert(dir.path(), &raw, "c.qcow2", "qcow2", &["-c"]);
    let info = |p: &Path| run_json(&["info", p.to_str().unwrap(), "--output", "json"]).1;
    let (s, m, c) = (info(&stream), info(&sparse), info(&compressed));
    assert_eq!(s["subformat"], "streamOptimized");
    // Uncompressed: 6 MiB of data in whole grains.
    assert_eq!(m["allocated_size"], 6u64 << 20, "{m:#}");
    for (what, j) in [("streamOptimized", &s), ("compressed qcow2", &c)] {
        let allocated = j["allocated_size"].as_u64().unwrap();
        let file = j["file_size"].as_u64().unwrap();
        assert!(
            allocated > 0 && allocated <= file,
            "{what}: allocated {allocated} within the {file}-byte file"
        );
    }
}
