//! `check` with guest inspection on real Debian guests built from packages
//! (fixtures/guest/build-debian.sh, shared with the guest crate's tests).

use crate::common::*;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Builds the Debian images once per run (the script is idempotent and
/// locked, and keeps its output in the shared target tmp dir).
pub(crate) fn debian() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guest-fixtures");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/guest/build-debian.sh"
        );
        sh("bash", &[script, out.to_str().unwrap()]);
        out
    })
    .clone()
}

#[test]
fn debian_guest_fills_the_plan_in_every_format() {
    let dir = debian();
    let work = tempdir();
    let raw = dir.join("debian-bios.raw");
    let qcow2 = path_in(work.path(), "debian.qcow2");
    qemu_convert_raw(&raw, "qcow2", &[], &qcow2);
    let vhd = path_in(work.path(), "debian.vhd");
    qemu_convert_raw(
        &raw,
        "vpc",
        &["-o", "subformat=dynamic,force_size=on"],
        &vhd,
    );
    for image in [raw, qcow2, vhd] {
        let (code, json) = run_json(&[
            "check",
            image.to_str().unwrap(),
            "--output",
            "json",
            "--region",
            "cn-hangzhou",
            "--bucket",
            "images",
            "--image-name",
            "debian-12",
        ]);
        let name = image.display();
        assert_eq!(code, 0, "{name}: {json:#}");
        let plan = &json["plan"];
        assert_eq!(plan["platform"], "Debian", "{name}");
        assert_eq!(plan["os_type"], "linux", "{name}");
        assert_eq!(plan["architecture"], "x86_64", "{name}");
        assert_eq!(plan["boot_mode"], "BIOS", "{name}");
        assert!(
            json["guest"]["facts"].is_object(),
            "{name}: guest facts in the report"
        );
    }
}

#[test]
fn user_values_that_disagree_with_the_guest_are_findings() {
    let raw = debian().join("debian-bios.raw");
    let (code, json) = run_json(&[
        "check",
        raw.to_str().unwrap(),
        "--output",
        "json",
        "--boot-mode",
        "UEFI",
        "--architecture",
        "arm64",
    ]);
    assert_eq!(code, 1, "{json:#}");
    let codes = codes(&json);
    assert!(
        codes.contains(&"GuestMismatch.BootMode".to_string()),
        "{codes:?}"
    );
    assert!(
        codes.contains(&"GuestMismatch.Architecture".to_string()),
        "{codes:?}"
    );
}

#[test]
fn a_disk_that_boots_both_ways_accepts_either_boot_mode() {
    // The UEFI guest made hybrid: a BIOS boot partition in the gap before the ESP and
    // GRUB's boot code in the protective MBR, as grub-install --target=i386-pc does.
    let dir = crate::common::tempdir();
    let hybrid = dir.path().join("hybrid.raw");
    sh(
        "cp",
        &[
            "--sparse=always",
            debian().join("debian-uefi-xfs.raw").to_str().unwrap(),
            hybrid.to_str().unwrap(),
        ],
    );
    let disk = hybrid.to_str().unwrap();
    // The image's GPT starts its usable area at LBA 2048: rewrite the table with the same
    // two partitions, a first usable LBA of 34, and the BIOS boot partition at LBA 40.
    let table = String::from_utf8(sh("sfdisk", &["-d", disk]).stdout)
        .unwrap()
        .replace("first-lba: 2048", "first-lba: 34")
        + "start=40, size=2000, type=21686148-6449-6E6F-744E-656564454649\n";
    let mut sfdisk = std::process::Command::new("sfdisk")
        .args(["-q", disk])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(table.as_bytes())
        .unwrap();
    assert!(sfdisk.wait().unwrap().success());
    sh(
        "dd",
        &[
            "if=/usr/lib/grub/i386-pc/boot.img",
            &format!("of={disk}"),
            "bs=440",
            "count=1",
            "conv=notrunc",
            "status=none",
        ],
    );
    for mode in ["UEFI", "BIOS"] {
        let (_, json) = run_json(&["check", disk, "--output", "json", "--boot-mode", mode]);
        let boot = &json["guest"]["facts"]["boot"];
        assert_eq!(boot["bios"], true, "{json:#}");
        assert_eq!(boot["uefi"], true, "{json:#}");
        assert!(
            !codes(&json).contains(&"GuestMismatch.BootMode".to_string()),
            "--boot-mode {mode}: {:?}",
            codes(&json)
        );
        assert_eq!(json["plan"]["boot_mode"], mode);
    }
}

#[test]
fn initramfs_without_virtio_is_an_error() {
    let raw = debian().join("debian-novirtio.raw");
    let (code, json) = run_json(&["check", raw.to_str().unwrap(), "--output", "json"]);
    assert_eq!(code, 1, "{json:#}");
    assert!(codes(&json).contains(&"GUEST.NoVirtioBlockDriver".to_string()));
    // --skip-guest skips it.
    let (code, json) = run_json(&[
        "check",
        raw.to_str().unwrap(),
        "--output",
        "json",
        "--skip-guest",
    ]);
    assert_eq!(code, 0, "{json:#}");
    assert!(json.get("guest").is_none());
}

/// A corrupt NTFS volume that once made the ntfs crate panic (fixtures/crashes/), as
/// partition 1 of an MBR disk made by sfdisk: no backtrace, one finding naming the
/// partition and the reader, and no advice to import another disk.
#[test]
fn corrupt_ntfs_partition_is_one_finding_without_a_backtrace() {
    let dir = tempdir();
    let raw = path_in(dir.path(), "ntfs-crash.raw");
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let table = dir.path().join("table");
    std::fs::write(&table, "label: dos\nstart=2048, size=8192, type=7\n").unwrap();
    sh(
        "sh",
        &[
            "-c",
            &format!("sfdisk -q '{}' < '{}'", raw.display(), table.display()),
        ],
    );
    let volume = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/crashes/fs_ntfs-index-entry-range.bin"
    ))
    .unwrap();
    let mut disk = std::fs::read(&raw).unwrap();
    disk[1 << 20..(1 << 20) + volume.len()].copy_from_slice(&volume);
    std::fs::write(&raw, disk).unwrap();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ecs-preflight"))
        .args(["check", raw.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert!(!stdout.contains("GUEST.InternalError"), "{stdout}");
    assert!(!stdout.contains("Import the system disk"), "{stdout}");
    let corrupt: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("GUEST.FilesystemCorrupt"))
        .collect();
    assert_eq!(corrupt.len(), 1, "{stdout}");
    assert!(corrupt[0].contains("partition 1: NTFS"), "{stdout}");
    assert!(stdout.contains("GUEST.InspectionIncomplete"), "{stdout}");
}

/// `--nvme-support supported` reaches the guest inspection: an initramfs with nvme but no
/// virtio_blk (fixtures/guest/build-boot.sh's boot-nvme.raw) fails a plain check
/// (NoVirtioBlockDriver) and passes with a warning when NVMe is requested.
#[test]
fn nvme_support_flag_reaches_the_guest_check() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guest-fixtures");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/guest/build-boot.sh"
    );
    sh("bash", &[script, out.to_str().unwrap()]);
    let image = out.join("boot-nvme.raw");
    let image = image.to_str().unwrap();
    let (code, json) = run_json(&["check", image, "--output", "json"]);
    let text = json.to_string();
    assert_ne!(code, 0, "{json:#}");
    assert!(text.contains("GUEST.NoVirtioBlockDriver"), "{json:#}");
    let (code, json) = run_json(&[
        "check",
        image,
        "--output",
        "json",
        "--nvme-support",
        "supported",
    ]);
    let text = json.to_string();
    assert_eq!(code, 0, "{json:#}");
    assert!(!text.contains("GUEST.NoVirtioBlockDriver"), "{json:#}");
    assert!(text.contains("GUEST.NvmeOnlyStorage"), "{json:#}");
}
