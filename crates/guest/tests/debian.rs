//! A real Debian 12 guest, debootstrapped from real packages
//! (fixtures/guest/build-debian.sh), inspected in every layout and compared
//! with what standard tools (sfdisk, blkid, dumpe2fs, lsinitramfs) say.

mod common;
use common::*;
use preflight_guest::GuestReport;
use std::collections::BTreeSet;
use std::path::Path;

fn kernel_drivers(r: &GuestReport) -> &preflight_guest::KernelInfo {
    let linux = r.facts.linux.as_ref().expect("linux facts");
    let def = linux.default_kernel.as_ref().expect("default kernel");
    linux
        .kernels
        .iter()
        .find(|k| &k.version == def)
        .expect("kernel")
}

fn driver<'a>(k: &'a preflight_guest::KernelInfo, name: &str) -> &'a preflight_guest::DriverInfo {
    k.drivers.iter().find(|d| d.name == name).expect(name)
}

/// Module names inside an initrd, as `lsinitramfs` lists them.
fn lsinitramfs_modules(initrd: &Path) -> BTreeSet<String> {
    run("lsinitramfs", &[initrd.to_str().unwrap()])
        .lines()
        .filter_map(|l| {
            let f = l.rsplit('/').next()?;
            let stem = [".ko.zst", ".ko.xz", ".ko.gz", ".ko"]
                .iter()
                .find_map(|e| f.strip_suffix(e))?;
            Some(stem.replace('-', "_"))
        })
        .collect()
}

/// The assertions every Debian layout shares.
fn common_debian(r: &GuestReport) {
    let os = r.facts.os.as_ref().expect("os");
    assert_eq!(os.family, "linux");
    assert_eq!(os.distro.as_deref(), Some("debian"));
    assert_eq!(os.major, Some(12));
    assert_eq!(os.name.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    assert_eq!(os.hostname.as_deref(), Some("preflight-debian"));
    assert_eq!(r.facts.os_type.as_deref(), Some("linux"));
    assert_eq!(r.facts.platform.as_deref(), Some("Debian"));
    assert_eq!(r.facts.architecture.as_deref(), Some("x86_64"));
    let linux = r.facts.linux.as_ref().unwrap();
    assert!(
        linux
            .cloud_init
            .as_deref()
            .is_some_and(|v| v.starts_with("22.4")),
        "{:?}",
        linux.cloud_init
    );
    assert!(!linux.qemu_guest_agent);
    assert_ne!(linux.shadow_immutable, Some(true));
    // No error other than the ones a variant expects.
    assert!(
        !has(r, "GUEST.FstabUnknownDevice") && !has(r, "GUEST.RootNotOnSystemDisk"),
        "{:?}",
        codes(r)
    );
    assert!(
        !has(r, "GUEST.InternalError") && !has(r, "GUEST.FilesystemCorrupt"),
        "{:?}",
        r.findings
    );
}

#[test]
fn debian_bios_ext4_raw() {
    let dir = debian();
    let env = facts_env(&dir);
    let img = dir.join("debian-bios.raw");
    let t = std::time::Instant::now();
    let r = inspect_raw(&img);
    println!(
        "bytes_read={} of {} elapsed={:?}",
        r.bytes_read,
        std::fs::metadata(&img).unwrap().len(),
        t.elapsed()
    );
    common_debian(&r);
    assert_eq!(r.facts.boot_mode.as_deref(), Some("BIOS"));
    assert_eq!(r.facts.boot.mbr_boot_code.as_deref(), Some("grub"));
    assert!(r.facts.boot.grub_core_after_mbr);
    assert!(!r.facts.boot.uefi);
    assert_eq!(r.facts.nvme_support.as_deref(), Some("supported"));
    assert!(
        !preflight_report::has_errors(&r.findings),
        "{:?}",
        r.findings
    );

    // Partition table against sfdisk.
    let sf: serde_json::Value =
        serde_json::from_str(&run("sfdisk", &["-J", img.to_str().unwrap()])).unwrap();
    let p0 = &sf["partitiontable"]["partitions"][0];
    assert_eq!(r.facts.partition_table.kind, "mbr");
    assert_eq!(
        r.facts.partitions[0].start,
        p0["start"].as_u64().unwrap() * 512
    );
    assert_eq!(
        r.facts.partitions[0].size,
        p0["size"].as_u64().unwrap() * 512
    );
    assert!(r.facts.partitions[0].bootable);

    // Filesystem against blkid and dumpe2fs.
    let fs = &r.facts.filesystems[0];
    let offset = (p0["start"].as_u64().unwrap() * 512).to_string();
    let blkid = run(
        "blkid",
        &["-p", "-O", &offset, "-o", "export", img.to_str().unwrap()],
    );
    assert!(
        blkid.contains(&format!("UUID={}", fs.info.uuid.as_deref().unwrap())),
        "{blkid}"
    );
    assert!(blkid.contains("TYPE=ext4"));
    assert_eq!(fs.info.uuid.as_deref(), Some(env["ROOT_UUID"].as_str()));
    assert_eq!(fs.info.label.as_deref(), Some("debian-root"));
    // e2fsprogs' unix io takes an offset option after '?'.
    let dump = run(
        "dumpe2fs",
        &["-h", &format!("{}?offset={offset}", img.display())],
    );
    let feat_line = dump
        .lines()
        .find(|l| l.starts_with("Filesystem features:"))
        .unwrap();
    let theirs: BTreeSet<&str> = feat_line
        .split(':')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    let ours: BTreeSet<&str> = fs.info.features.iter().map(String::as_str).collect();
    assert_eq!(ours, theirs);
    assert_eq!(has(&r, "GUEST.Ext4Feature64bit"), theirs.contains("64bit"));

    // Kernel and initramfs against the tree debootstrap made and lsinitramfs.
    let k = kernel_drivers(&r);
    assert_eq!(k.version, env["KVER"]);
    let initrd = dir
        .join("rootfs/boot")
        .join(format!("initrd.img-{}", env["KVER"]));
    let theirs = lsinitramfs_modules(&initrd);
    assert_eq!(k.initramfs_modules, theirs.len());
    assert_eq!(k.initramfs_layers, vec!["zstd"]);
    let config = std::fs::read_to_string(
        dir.join("rootfs/boot")
            .join(format!("config-{}", env["KVER"])),
    )
    .unwrap();
    for (name, sym) in [
        ("virtio_blk", "VIRTIO_BLK"),
        ("virtio_pci", "VIRTIO_PCI"),
        ("virtio_net", "VIRTIO_NET"),
        ("virtio_scsi", "SCSI_VIRTIO"),
        ("nvme", "BLK_DEV_NVME"),
    ] {
        let d = driver(k, name);
        let want = if config.contains(&format!("CONFIG_{sym}=y\n")) {
            "builtin"
        } else {
            "module"
        };
        assert_eq!(d.kernel, want, "{name}");
        if want == "module" {
            assert_eq!(d.in_initramfs, Some(theirs.contains(name)), "{name}");
        }
    }
    assert!(driver(k, "virtio_blk").at_boot);
    assert!(k.virtio_boot);
}

#[test]
fn debian_uefi_xfs_raw() {
    let dir = debian();
    let env = facts_env(&dir);
    let img = dir.join("debian-uefi-xfs.raw");
    let r = inspect_raw(&img);
    common_debian(&r);
    assert_eq!(r.facts.partition_table.kind, "gpt");
    assert_eq!(r.facts.partition_table.gpt_backup_ok, Some(true));
    assert_eq!(r.facts.boot_mode.as_deref(), Some("UEFI"));
    assert!(r.facts.boot.uefi && !r.facts.boot.bios);
    assert_eq!(r.facts.boot.efi_arch.as_deref(), Some("x86_64"));
    assert!(
        r.facts
            .boot
            .efi_loaders
            .iter()
            .any(|l| l.eq_ignore_ascii_case("/EFI/BOOT/BOOTX64.EFI")),
        "{:?}",
        r.facts.boot.efi_loaders
    );
    assert!(has(&r, "GUEST.UefiOnly"));
    assert!(
        !preflight_report::has_errors(&r.findings),
        "{:?}",
        r.findings
    );
    // sfdisk and blkid agree on the layout and identities.
    let sf: serde_json::Value =
        serde_json::from_str(&run("sfdisk", &["-J", img.to_str().unwrap()])).unwrap();
    let parts = sf["partitiontable"]["partitions"].as_array().unwrap();
    assert_eq!(r.facts.partitions.len(), parts.len());
    for (ours, theirs) in r.facts.partitions.iter().zip(parts) {
        assert_eq!(ours.start, theirs["start"].as_u64().unwrap() * 512);
        assert_eq!(ours.type_id, theirs["type"].as_str().unwrap());
        assert_eq!(
            ours.partuuid.as_deref().unwrap(),
            theirs["uuid"].as_str().unwrap().to_lowercase()
        );
    }
    let esp = r
        .facts
        .filesystems
        .iter()
        .find(|f| f.info.fs_type == "vfat")
        .expect("esp");
    let xfs = r
        .facts
        .filesystems
        .iter()
        .find(|f| f.info.fs_type == "xfs")
        .expect("xfs");
    assert_eq!(xfs.info.uuid.as_deref(), Some(env["XFS_UUID"].as_str()));
    assert_eq!(xfs.mountpoint.as_deref(), Some("/"));
    assert_eq!(esp.mountpoint.as_deref(), Some("/boot/efi"));
    for f in [esp, xfs] {
        let blkid = run(
            "blkid",
            &[
                "-p",
                "-O",
                &f.start.to_string(),
                "-o",
                "export",
                img.to_str().unwrap(),
            ],
        );
        assert!(
            blkid.contains(&format!("UUID={}", f.info.uuid.as_deref().unwrap())),
            "{blkid}"
        );
        assert!(
            blkid.contains(&format!("TYPE={}", f.info.fs_type)),
            "{blkid}"
        );
    }
    let k = kernel_drivers(&r);
    assert!(k.virtio_boot);
    assert_eq!(driver(k, "virtio_blk").in_initramfs, Some(true));
}

#[test]
fn debian_without_virtio_net_is_a_warning_and_boots_from_virtio() {
    let dir = debian();
    let raw = dir.join("debian-nonet.raw");
    let r = inspect_raw(&raw);
    common_debian(&r);
    let k = kernel_drivers(&r);
    assert!(k.virtio_boot, "the block path is intact");
    assert_eq!(driver(k, "virtio_net").kernel, "absent");
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.NoVirtioNetDriver")
        .expect("finding");
    assert!(!f.is_error(), "a missing NIC driver is a warning");
    assert!(!has(&r, "GUEST.NoVirtioBlockDriver"));
    // debugfs reads the same modules.dep from the image's root filesystem.
    let env = facts_env(&dir);
    let start = r.facts.filesystems[0].start;
    let dep = run(
        "debugfs",
        &[
            "-R",
            &format!("cat /lib/modules/{}/modules.dep", env["KVER"]),
            &format!("{}?offset={start}", raw.display()),
        ],
    );
    assert!(dep.contains("virtio_blk.ko"), "debugfs read modules.dep");
    assert!(!dep.contains("virtio_net.ko"));
}

#[test]
fn debian_without_virtio_in_initramfs_is_an_error() {
    let dir = debian();
    let r = inspect_raw(&dir.join("debian-novirtio.raw"));
    common_debian(&r);
    let k = kernel_drivers(&r);
    assert!(!k.virtio_boot);
    assert_eq!(driver(k, "virtio_blk").kernel, "module");
    assert_eq!(driver(k, "virtio_blk").in_initramfs, Some(false));
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.NoVirtioBlockDriver")
        .expect("finding");
    assert!(f.is_error());
    assert!(
        f.message
            .contains("virtio_blk: module NOT in the initramfs"),
        "{}",
        f.message
    );
    // The network driver is a module on disk: only the block path matters.
    assert!(!has(&r, "GUEST.NoVirtioNetDriver"));
}
