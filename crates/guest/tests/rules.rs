//! Small synthetic guests that break Alibaba's offline rules on purpose
//! (fixtures/guest/build-small.sh): each rule gives its coded finding, and
//! the facts agree with blkid, debugfs and lsinitramfs.

mod common;
use common::*;
use preflight_report::Severity;

fn finding<'a>(r: &'a preflight_guest::GuestReport, code: &str) -> &'a preflight_report::Finding {
    r.findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:?}", codes(r)))
}

#[test]
fn rules_image_breaks_each_rule() {
    let dir = small();
    let img = dir.join("small-rules.raw");
    let r = inspect_raw(&img);
    let f = &r.facts;
    // MBR with an extended partition: Linux numbering (logicals from 5).
    assert_eq!(f.partition_table.kind, "mbr");
    let numbers: Vec<u32> = f.partitions.iter().map(|p| p.number).collect();
    assert_eq!(numbers, vec![1, 2, 5, 6]);
    let kinds: Vec<&str> = f
        .filesystems
        .iter()
        .map(|x| x.info.fs_type.as_str())
        .collect();
    assert_eq!(kinds, vec!["ext4", "swap", "LVM2_member"]);
    // blkid agrees on the root's UUID and on the swap area.
    for fs in &f.filesystems[..2] {
        let blkid = run(
            "blkid",
            &[
                "-p",
                "-O",
                &fs.start.to_string(),
                "-o",
                "export",
                img.to_str().unwrap(),
            ],
        );
        assert!(
            blkid.contains(&format!("TYPE={}", fs.info.fs_type)),
            "{blkid}"
        );
    }
    let root = &f.filesystems[0];
    let blkid = run(
        "blkid",
        &[
            "-p",
            "-O",
            &root.start.to_string(),
            "-o",
            "export",
            img.to_str().unwrap(),
        ],
    );
    assert!(blkid.contains(&format!("UUID={}", root.info.uuid.as_deref().unwrap())));

    assert_eq!(f.platform.as_deref(), Some("CentOS Stream"));
    assert_eq!(f.os.as_ref().unwrap().major, Some(9));
    assert_eq!(f.boot_mode.as_deref(), Some("BIOS"));
    let linux = f.linux.as_ref().unwrap();
    assert_eq!(linux.default_kernel.as_deref(), Some("5.14.0-300.el9"));
    let k = &linux.kernels[0];
    assert_eq!(k.initramfs_layers, vec!["none", "xz"]);
    assert!(k.virtio_boot);
    // lsinitramfs sees the same modules in the early+xz initramfs.
    let initrd = dir.join("k1.initrd.tmp");
    let debugfs_img = format!("{}?offset={}", img.display(), root.start);
    run(
        "debugfs",
        &[
            "-R",
            &format!(
                "dump /boot/initramfs-5.14.0-300.el9.img {}",
                initrd.display()
            ),
            &debugfs_img,
        ],
    );
    let listed = run("lsinitramfs", &[initrd.to_str().unwrap()]);
    std::fs::remove_file(&initrd).ok();
    assert_eq!(
        k.initramfs_modules,
        listed.lines().filter(|l| l.ends_with(".ko.xz")).count(),
        "{listed}"
    );
    assert_eq!(linux.kernels[1].initramfs_layers, vec!["lz4"]);
    assert!(!linux.kernels[1].virtio_boot);

    // debugfs agrees that /etc/shadow is immutable (flag 0x10).
    let stat = run("debugfs", &["-R", "stat /etc/shadow", &debugfs_img]);
    assert!(stat.contains("Flags: 0x80010"), "{stat}");
    assert_eq!(linux.shadow_immutable, Some(true));

    for (code, sev) in [
        // `/dev/sda1 /` in fstab and root=/dev/sda1: gone on ECS (vda, nvme0n1).
        ("GUEST.BootDeviceName", Severity::Error),
        ("GUEST.FstabUnknownDevice", Severity::Error),
        ("GUEST.SelinuxEnforcing", Severity::Warning),
        ("GUEST.QemuGuestAgent", Severity::Warning),
        ("GUEST.ShadowImmutable", Severity::Error),
        ("GUEST.Ext4ProjectQuota", Severity::Error),
        ("GUEST.FwCfgSysfs", Severity::Warning),
        ("GUEST.KernelWithoutVirtio", Severity::Warning),
        ("GUEST.DecompressionLimit", Severity::Warning),
        ("GUEST.CloudInitMissing", Severity::Warning),
        ("GUEST.Lvm", Severity::Warning),
    ] {
        assert_eq!(finding(&r, code).severity, sev, "{code}");
    }
    assert!(finding(&r, "GUEST.FstabUnknownDevice")
        .message
        .contains("/data"));
    // The nofail LABEL and the swap entry are not errors; the default
    // kernel boots from virtio.
    assert_eq!(
        r.findings
            .iter()
            .filter(|x| x.code == "GUEST.FstabUnknownDevice")
            .count(),
        1
    );
    assert!(!has(&r, "GUEST.NoVirtioBlockDriver"));
    assert!(finding(&r, "GUEST.DecompressionLimit")
        .message
        .contains("5.14.0-100.el9"));
}

#[test]
fn two_roots_and_a_root_elsewhere() {
    let r = inspect_raw(&small().join("small-tworoots.raw"));
    assert_eq!(r.facts.partition_table.kind, "gpt");
    assert!(finding(&r, "GUEST.MultipleRoots").is_error());
    assert!(finding(&r, "GUEST.RootNotOnSystemDisk").is_error());
    assert!(finding(&r, "GUEST.NoKernel").is_error());
    assert!(finding(&r, "GUEST.NoBootLoader").is_error());
    assert_eq!(r.facts.boot_mode, None);
}

#[test]
fn arm64_uefi_guest() {
    let r = inspect_raw(&small().join("small-arm64.raw"));
    let f = &r.facts;
    assert_eq!(f.architecture.as_deref(), Some("arm64"));
    assert_eq!(f.platform.as_deref(), Some("Rocky Linux"));
    assert_eq!(f.boot_mode.as_deref(), Some("UEFI"));
    assert_eq!(f.boot.efi_arch.as_deref(), Some("arm64"));
    assert_eq!(f.boot.esp_partition, Some(1));
    assert_eq!(
        f.linux.as_ref().unwrap().kernels[0].initramfs_layers,
        vec!["gzip"]
    );
    assert!(f.linux.as_ref().unwrap().kernels[0].virtio_boot);
    assert!(has(&r, "GUEST.RtcNotUtc"));
    assert!(has(&r, "GUEST.FwCfgSysfs"));
    // arm64 is UEFI-only by definition: no "import with UEFI" note.
    assert!(!has(&r, "GUEST.UefiOnly"));
    // The root is found by LABEL= in fstab.
    let linux = f.linux.as_ref().unwrap();
    assert_eq!(linux.fstab[0].filesystem, Some(1));
}

/// Root on LVM (made by pvcreate/vgcreate/lvcreate), /boot on a partition:
/// the LVs are found where lvs/pvs put them, fstab's /dev/mapper names
/// resolve, and the kernel is read from the separate /boot.
#[test]
fn root_on_lvm_with_separate_boot() {
    let dir = small();
    let env: std::collections::HashMap<String, u64> =
        std::fs::read_to_string(dir.join("small-lvm.env"))
            .unwrap()
            .lines()
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            })
            .collect();
    let r = inspect_raw(&dir.join("small-lvm.raw"));
    let f = &r.facts;
    let root = f
        .filesystems
        .iter()
        .find(|x| x.volume.as_deref() == Some("pfvg/root"))
        .expect("root LV");
    assert_eq!(root.start, env["ROOT_OFFSET"]);
    assert_eq!(root.size, env["ROOT_SIZE"]);
    assert_eq!(root.info.fs_type, "ext4");
    assert_eq!(root.mountpoint.as_deref(), Some("/"));
    let swap = f
        .filesystems
        .iter()
        .find(|x| x.volume.as_deref() == Some("pfvg/swap"))
        .expect("swap LV");
    assert_eq!(
        (swap.start, swap.info.fs_type.as_str()),
        (env["SWAP_OFFSET"], "swap")
    );
    let boot = f
        .filesystems
        .iter()
        .find(|x| x.partition == Some(1))
        .unwrap();
    assert_eq!(boot.mountpoint.as_deref(), Some("/boot"));
    assert_eq!(f.platform.as_deref(), Some("AlmaLinux"));
    let linux = f.linux.as_ref().unwrap();
    assert_eq!(linux.kernels.len(), 1);
    assert!(linux.kernels[0].virtio_boot);
    assert!(
        linux.fstab.iter().all(|e| e.filesystem.is_some()),
        "{:?}",
        linux.fstab
    );
    assert!(finding(&r, "GUEST.Lvm").message.contains("pfvg/root"));
    assert!(
        !has(&r, "GUEST.FstabUnknownDevice") && !has(&r, "GUEST.NoOperatingSystem"),
        "{:?}",
        codes(&r)
    );
    // root=/dev/mapper/… is not a kernel device name.
    assert!(!has(&r, "GUEST.GrubRootDeviceName") && !has(&r, "GUEST.BootDeviceName"));
}
