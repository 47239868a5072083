//! `--convert`: a sparse RAW or fixed VHD goes to OSS as a qcow2 of its non-zero clusters,
//! produced on the fly. The object, downloaded, must pass `qemu-img check` and be identical
//! to the source by `qemu-img compare`, also after a kill -9 and a resumed upload.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::common::{qemu_convert_raw, sh};
use crate::upload::{json_of, kill_half_way_with, Env, MULTIPART};
use preflight_testkit::Rng;

const MIB: u64 = 1 << 20;

/// A sparse RAW of `virtual_mib` MiB holding random runs of `run_mib` MiB at `at_mib` offsets
/// (and a last byte, so the size is not only a hole).
fn sparse_raw(dir: &Path, name: &str, virtual_mib: u64, runs: &[(u64, u64)]) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.set_len(virtual_mib * MIB).unwrap();
    for (i, &(at_mib, run_mib)) in runs.iter().enumerate() {
        let run = dir.join(format!("{name}.run{i}"));
        Rng::write_file(&run, run_mib * MIB, 17 + i as u64);
        f.seek(SeekFrom::Start(at_mib * MIB)).unwrap();
        f.write_all(&std::fs::read(&run).unwrap()).unwrap();
        std::fs::remove_file(run).unwrap();
    }
    f.seek(SeekFrom::Start(virtual_mib * MIB - 1)).unwrap();
    f.write_all(&[0xA5]).unwrap();
    path
}

/// Downloads `key` and proves it is a sound qcow2 with the same guest bytes as `source`.
fn assert_object_is(env: &Env, key: &str, source: &Path, source_format: &str) {
    let object = env.dir().join(format!("downloaded-{key}"));
    std::fs::write(&object, env.download("images", key)).unwrap();
    let check = sh(
        "qemu-img",
        &["check", "-f", "qcow2", object.to_str().unwrap()],
    );
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("No errors were found"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let cmp = sh(
        "qemu-img",
        &[
            "compare",
            "-f",
            source_format,
            "-F",
            "qcow2",
            source.to_str().unwrap(),
            object.to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&cmp.stdout).contains("Images are identical"));
}

#[test]
fn auto_sends_a_sparse_raw_as_a_qcow2_of_its_data() {
    let env = Env::new();
    let image = sparse_raw(env.dir(), "web.raw", 256, &[(0, 3), (100, 2), (200, 1)]);
    let out = env.cmd(&image, "images", MULTIPART).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = json_of(&out);
    assert_eq!(json["format"], "qcow2");
    assert_eq!(json["key"], "web.qcow2", "the key names the format sent");
    assert_eq!(json["conversion"]["converted"], true);
    assert_eq!(json["conversion"]["from"], "raw");
    // 6 MiB of data and one cluster for the last byte, plus a few metadata clusters.
    let sent = json["size"].as_u64().unwrap();
    assert!(
        (6 * MIB..7 * MIB).contains(&sent),
        "sent {sent} bytes for 6 MiB of data"
    );
    let received: u64 = env
        .emu()
        .counters()
        .parts
        .iter()
        .map(|p| p.bytes_received)
        .sum();
    assert_eq!(received, sent, "the wire carried only the qcow2");
    assert_object_is(&env, "web.qcow2", &image, "raw");
}

#[test]
fn a_fixed_vhd_is_converted_and_any_format_on_request() {
    let env = Env::new();
    let raw = sparse_raw(env.dir(), "src.raw", 64, &[(1, 2), (40, 1)]);
    let vhd = env.dir().join("fixed.vhd");
    qemu_convert_raw(&raw, "vpc", &["-o", "subformat=fixed,force_size=on"], &vhd);
    let out = env.cmd(&vhd, "images", &["-o", "json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = json_of(&out);
    assert_eq!(json["key"], "fixed.qcow2");
    assert_eq!(json["conversion"]["from"], "vhd");
    assert_object_is(&env, "fixed.qcow2", &vhd, "vpc");

    // A dynamic VMDK is not converted by auto (already sparse), but is with --convert qcow2.
    let vmdk = env.dir().join("disk.vmdk");
    qemu_convert_raw(&raw, "vmdk", &[], &vmdk);
    let out = env.cmd(&vmdk, "images", &["-o", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json = json_of(&out);
    assert_eq!(json["format"], "vmdk");
    assert_eq!(json["key"], "disk.vmdk");
    assert!(json["conversion"].is_null());
    let out = env
        .cmd(&vmdk, "images", &["-o", "json", "--convert", "qcow2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["key"], "disk.qcow2");
    assert_object_is(&env, "disk.qcow2", &vmdk, "vmdk");
}

#[test]
fn random_data_without_holes_is_sent_as_it_is() {
    let env = Env::new();
    let image = env.image("full.raw", 8 * MIB, 5);
    let out = env.cmd(&image, "images", &["-o", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json = json_of(&out);
    assert_eq!(json["format"], "raw");
    assert_eq!(json["key"], "full.raw");
    assert_eq!(json["size"], 8 * MIB);
    assert_eq!(
        json["conversion"]["converted"], false,
        "auto considered and declined"
    );
    assert_eq!(
        env.download("images", "full.raw"),
        std::fs::read(&image).unwrap()
    );
    // --convert none does not even consider it.
    let out = env
        .cmd(
            &image,
            "images",
            &["-o", "json", "--convert", "none", "--force"],
        )
        .output()
        .unwrap();
    assert!(json_of(&out)["conversion"].is_null());
}

#[test]
fn a_key_naming_another_format_is_kept_or_refused() {
    let env = Env::new();
    let image = sparse_raw(env.dir(), "sys.raw", 32, &[(0, 1)]);
    let out = env
        .cmd(
            &image,
            "images",
            &["-o", "json", "--convert", "qcow2", "--object", "vm/sys.raw"],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a contradiction in the flags");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ends in .raw"));
    // Under auto, a key naming the raw format keeps the file as it is.
    let out = env
        .cmd(&image, "images", &["-o", "json", "--object", "vm/sys.raw"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["format"], "raw");
    assert_eq!(env.emu().counters().requests_for("PutObject"), 1);
    let n = env.emu().counters();
    assert_eq!(n.requests_for("UploadPart"), 0);
}

#[test]
fn kill_9_mid_conversion_then_rerun_gives_the_same_disk() {
    let env = Env::new();
    // 24 MiB of data in 1 MiB parts: 24+ parts of the qcow2.
    let image = sparse_raw(env.dir(), "big.raw", 512, &[(10, 12), (300, 12)]);
    let mut flags = MULTIPART.to_vec();
    flags.extend(["--convert", "qcow2"]);
    let stored = kill_half_way_with(&env, &image, 24, &flags);
    let out = env.cmd(&image, "images", &flags).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = json_of(&out);
    let parts = json["parts"].as_u64().unwrap();
    let n = env.emu().counters();
    assert_eq!(n.requests_for("InitiateMultipartUpload"), 0, "resumed");
    assert_eq!(n.requests_for("UploadPart"), parts - stored.len() as u64);
    assert_eq!(json["parts_reused"].as_u64(), Some(stored.len() as u64));
    assert_object_is(&env, "big.qcow2", &image, "raw");
}
