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

#[test]
fn refused_formats_are_named_with_a_fix() {
    let dir = tempdir();
    let d = dir.path();
    let raw = path_in(d, "disk.raw");
    make_raw(&raw, 4 << 20);
    let r = raw.to_str().unwrap();
    let mut cases: Vec<(std::path::PathBuf, &str)> = Vec::new();
    for (format, name) in [("vdi", "vdi"), ("qed", "qed"), ("qcow", "qcow")] {
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
