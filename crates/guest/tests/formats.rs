//! The same Debian guests converted by qemu-img to every container format
//! must give exactly the facts the RAW image gives: the inspector sees only
//! a block reader.

mod common;
use common::*;
use preflight_formats::{inspect, InspectOptions};
use std::path::{Path, PathBuf};

/// Converts once (kept beside the RAW image); a temp name and a rename make
/// it safe against a test run that was killed half way.
fn convert(raw: &Path, fmt: &str, opts: &[&str], ext: &str) -> PathBuf {
    let out = raw.with_extension(ext);
    if !out.exists() {
        let tmp = raw.with_extension(format!("{ext}.tmp"));
        preflight_testkit::qemu::convert_raw(raw, fmt, opts, &tmp);
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

fn same_facts_in_every_format(name: &str) {
    let dir = debian();
    let raw = dir.join(name);
    let want = inspect_raw(&raw);
    let want_json = serde_json::to_value(&want.facts).unwrap();
    let virtual_size = std::fs::metadata(&raw).unwrap().len();
    for (fmt, opts, ext) in [
        ("qcow2", &[][..], "qcow2"),
        ("vpc", &["-o", "subformat=dynamic,force_size=on"][..], "vhd"),
        ("vmdk", &["-o", "subformat=monolithicSparse"][..], "vmdk"),
        ("vhdx", &[][..], "vhdx"),
    ] {
        let img = convert(&raw, fmt, opts, ext);
        let insp = inspect(&img, InspectOptions { check: false }).expect("open");
        let disk = insp
            .image
            .unwrap_or_else(|| panic!("{fmt}: {:?}", insp.findings));
        let t = std::time::Instant::now();
        let got = preflight_guest::inspect(disk.as_ref());
        let elapsed = t.elapsed();
        println!(
            "{name} as {fmt}: read {} bytes ({:.2}% of {virtual_size}) in {elapsed:?}",
            got.bytes_read,
            got.bytes_read as f64 * 100.0 / virtual_size as f64
        );
        assert_eq!(
            serde_json::to_value(&got.facts).unwrap(),
            want_json,
            "{fmt}"
        );
        assert_eq!(got.findings, want.findings, "{fmt}");
        assert!(
            got.bytes_read * 20 < virtual_size,
            "{fmt}: read {} bytes",
            got.bytes_read
        );
    }
}

#[test]
fn debian_bios_in_every_format() {
    same_facts_in_every_format("debian-bios.raw");
}

#[test]
fn debian_uefi_xfs_in_every_format() {
    same_facts_in_every_format("debian-uefi-xfs.raw");
}
