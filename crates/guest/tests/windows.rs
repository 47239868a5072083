//! Windows-shaped disks (fixtures/guest/build-windows.sh): NTFS made by
//! mkntfs and filled through ntfs-3g, registry hives written by
//! hivexregedit. Our answers are compared with hivexget's and blkid's.

mod common;
use common::*;
use preflight_guest::regf::{Hive, Value};

fn hivexget(hive: &std::path::Path, key: &str, value: &str) -> String {
    run("hivexget", &[hive.to_str().unwrap(), key, value])
        .trim()
        .to_string()
}

#[test]
fn windows_with_viostor() {
    let dir = windows();
    let img = dir.join("windows.raw");
    let r = inspect_raw(&img);
    println!("{}", serde_json::to_string_pretty(&r).unwrap());
    assert_eq!(r.facts.os_type.as_deref(), Some("windows"));
    assert_eq!(r.facts.platform.as_deref(), Some("Windows Server 2022"));
    assert_eq!(r.facts.architecture.as_deref(), Some("x86_64"));
    assert_eq!(r.facts.boot_mode.as_deref(), Some("BIOS"));
    assert_eq!(r.facts.boot.mbr_boot_code.as_deref(), Some("windows"));
    let os = r.facts.os.as_ref().unwrap();
    let software = dir.join("windows.SOFTWARE");
    let system = dir.join("windows.SYSTEM");
    // stornvme is registered demand-start (Start=3): not loaded in time for an NVMe system
    // disk, so no NVMe support (a boot-start stornvme is in tests/boot.rs).
    assert_eq!(
        hivexget(&system, "\\ControlSet001\\Services\\stornvme", "Start"),
        "3"
    );
    assert_eq!(r.facts.nvme_support.as_deref(), Some("unsupported"));
    assert_eq!(
        os.name.as_deref().unwrap(),
        hivexget(
            &software,
            "\\Microsoft\\Windows NT\\CurrentVersion",
            "ProductName"
        )
    );
    assert_eq!(os.version.as_deref(), Some("10.0"));
    assert_eq!(os.hostname.as_deref(), Some("preflight-win"));
    let w = r.facts.windows.as_ref().unwrap();
    assert_eq!(w.build.as_deref(), Some("20348"));
    assert_eq!(w.control_set.as_deref(), Some("ControlSet001"));
    let viostor = w.drivers.iter().find(|d| d.service == "viostor").unwrap();
    assert!(viostor.registered && viostor.file_present);
    assert_eq!(
        viostor.start.unwrap().to_string(),
        hivexget(&system, "\\ControlSet001\\Services\\viostor", "Start")
    );
    assert_eq!(
        viostor.image_path.as_deref(),
        Some("System32\\drivers\\viostor.sys")
    );
    assert!(
        !preflight_report::has_errors(&r.findings),
        "{:?}",
        r.findings
    );
    // NTFS identity as blkid sees it.
    let ntfs = &r.facts.filesystems[0];
    let blkid = run(
        "blkid",
        &[
            "-p",
            "-O",
            &ntfs.start.to_string(),
            "-o",
            "export",
            img.to_str().unwrap(),
        ],
    );
    assert!(blkid.contains("TYPE=ntfs"), "{blkid}");
    assert!(
        blkid.contains(&format!("UUID={}", ntfs.info.uuid.as_deref().unwrap())),
        "{blkid}"
    );
    assert!(blkid.contains("LABEL=Windows"), "{blkid}");
    assert_eq!(ntfs.mountpoint.as_deref(), Some("C:\\"));
}

#[test]
fn windows_without_viostor_is_an_error() {
    let dir = windows();
    let r = inspect_raw(&dir.join("windows-noviostor.raw"));
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.WindowsNoVirtioStorage")
        .expect("finding");
    assert!(f.is_error());
    assert!(
        f.message.contains("viostor: no service, no file"),
        "{}",
        f.message
    );
    assert!(!has(&r, "GUEST.WindowsNoVirtioNet"));
}

/// viostor registered but loaded on demand (Start=3) cannot boot the disk; no netkvm is a
/// warning. The hive says so to hivexget too.
#[test]
fn demand_start_viostor_is_an_error_and_missing_netkvm_a_warning() {
    let dir = windows();
    assert_eq!(
        hivexget(
            &dir.join("windows-demand.SYSTEM"),
            "\\ControlSet001\\Services\\viostor",
            "Start"
        ),
        "3"
    );
    let r = inspect_raw(&dir.join("windows-demand.raw"));
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.WindowsNoVirtioStorage")
        .expect("finding");
    assert!(f.is_error());
    assert!(f.message.contains("viostor: Start=3"), "{}", f.message);
    let net = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.WindowsNoVirtioNet")
        .expect("netkvm finding");
    assert!(!net.is_error(), "a missing virtio NIC driver is a warning");
}

/// Our regf reader against hivex on every value the fixture wrote.
#[test]
fn regf_reader_agrees_with_hivexget() {
    let dir = windows();
    let system = dir.join("windows.SYSTEM");
    let data = std::fs::read(&system).unwrap();
    let hive = Hive::new(&data).unwrap();
    assert!(!hive.is_dirty());
    let root = hive.root_key().unwrap();
    for (key, value) in [
        ("ControlSet001\\Services\\viostor", "Start"),
        ("ControlSet001\\Services\\viostor", "ErrorControl"),
        ("ControlSet001\\Services\\viostor", "Group"),
        ("ControlSet001\\Services\\netkvm", "ImagePath"),
        ("Select", "Current"),
        (
            "ControlSet001\\Control\\ComputerName\\ComputerName",
            "ComputerName",
        ),
    ] {
        let k = root
            .subpath(key)
            .unwrap()
            .unwrap_or_else(|| panic!("{key}"));
        let ours = match k.value(value).unwrap().unwrap() {
            Value::String(s) => s,
            Value::Dword(d) => d.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            ours,
            hivexget(&system, &format!("\\{key}"), value),
            "{key}\\{value}"
        );
    }
    // Case-insensitive like Windows.
    assert!(root
        .subpath("controlset001\\SERVICES\\VioStor")
        .unwrap()
        .is_some());
    assert!(root
        .subpath("ControlSet001\\Services\\vioscsi")
        .unwrap()
        .is_none());
}

#[test]
fn windows_uefi_gpt() {
    let r = inspect_raw(&windows().join("windows-uefi.raw"));
    let f = &r.facts;
    assert_eq!(f.partition_table.kind, "gpt");
    let types: Vec<Option<&str>> = f
        .partitions
        .iter()
        .map(|p| p.type_name.as_deref())
        .collect();
    assert_eq!(
        types,
        vec![
            Some("efi-system"),
            Some("microsoft-reserved"),
            Some("microsoft-basic-data")
        ]
    );
    assert_eq!(f.boot_mode.as_deref(), Some("UEFI"));
    assert!(!f.boot.bios);
    assert!(
        f.boot
            .efi_loaders
            .iter()
            .any(|l| l.eq_ignore_ascii_case("/EFI/Microsoft/Boot/bootmgfw.efi")),
        "{:?}",
        f.boot.efi_loaders
    );
    assert_eq!(f.platform.as_deref(), Some("Windows Server 2022"));
    assert!(has(&r, "GUEST.UefiOnly"));
    assert!(
        !preflight_report::has_errors(&r.findings),
        "{:?}",
        r.findings
    );
}

/// A hive whose sequence numbers differ (Windows was not shut down
/// cleanly) is read, and reported dirty.
#[test]
fn dirty_hive_is_detected() {
    let mut data = std::fs::read(windows().join("windows.SYSTEM")).unwrap();
    data[8] = data[8].wrapping_add(1); // secondary sequence number
    let mut x = 0u32;
    for i in 0..127 {
        x ^= u32::from_le_bytes(data[i * 4..i * 4 + 4].try_into().unwrap());
    }
    data[508..512].copy_from_slice(&x.to_le_bytes());
    let hive = Hive::new(&data).unwrap();
    assert!(hive.is_dirty());
    // A wrong checksum is refused.
    data[508] ^= 1;
    assert!(Hive::new(&data).is_err());
}
