//! Kernels, initramfs, boot loaders, network configuration and Windows storage drivers
//! (issue 12), on the small guests of fixtures/guest/build-boot.sh, each checked against
//! what the real tools (lsinitramfs, debugfs, grub-editenv's file, mtools, hivexget) say.

mod common;
use common::*;
use preflight_guest::{GuestReport, KernelInfo};
use std::path::PathBuf;
use std::sync::OnceLock;

static BOOT: OnceLock<PathBuf> = OnceLock::new();

fn boot_dir() -> PathBuf {
    build("build-boot.sh", &BOOT)
}

fn inspect(name: &str) -> GuestReport {
    inspect_raw(&boot_dir().join(format!("boot-{name}.raw")))
}

/// The inspection of an import given `--nvme-support supported`.
fn inspect_nvme(name: &str) -> GuestReport {
    let path = boot_dir().join(format!("boot-{name}.raw"));
    let src = preflight_disk::FileSource::open(&path).unwrap();
    let img = preflight_disk::raw::RawImage::new(std::sync::Arc::new(src));
    preflight_guest::inspect_with(
        &img,
        preflight_guest::InspectOptions::for_nvme_support(Some("supported")),
    )
}

fn finding<'r>(r: &'r GuestReport, code: &str) -> &'r preflight_report::Finding {
    r.findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:#?}", r.findings))
}

fn default_kernel(r: &GuestReport) -> &KernelInfo {
    let linux = r.facts.linux.as_ref().expect("linux");
    let v = linux.default_kernel.as_ref().expect("default kernel");
    linux.kernels.iter().find(|k| &k.version == v).unwrap()
}

/// Module names lsinitramfs lists.
fn lsinitramfs_modules(name: &str) -> Vec<String> {
    let path = boot_dir().join(format!("boot-{name}.initrd"));
    run("lsinitramfs", &[path.to_str().unwrap()])
        .lines()
        .filter_map(|l| {
            let f = l.rsplit('/').next()?;
            let stem = [".ko.zst", ".ko.xz", ".ko"]
                .iter()
                .find_map(|e| f.strip_suffix(e))?;
            Some(stem.replace('-', "_"))
        })
        .collect()
}

/// A file of the ext4 root (partition 1 at 1 MiB) as debugfs reads it.
fn debugfs_cat(name: &str, path: &str) -> String {
    let img = boot_dir().join(format!("boot-{name}.raw"));
    run(
        "debugfs",
        &[
            "-R",
            &format!("cat {path}"),
            &format!("{}?offset=1048576", img.display()),
        ],
    )
}

/// virtio_scsi with virtio_pci in the initramfs but no virtio_blk: ECS system disks are
/// virtio-blk, so this boots into a dracut shell. It used to pass.
#[test]
fn virtio_scsi_without_virtio_blk_is_an_error() {
    let r = inspect("scsi");
    let theirs = lsinitramfs_modules("scsi");
    assert!(theirs.contains(&"virtio_scsi".into()) && !theirs.contains(&"virtio_blk".into()));
    let k = default_kernel(&r);
    assert_eq!(k.version, "5.14.0-427.el9.x86_64");
    assert_eq!(k.initramfs_modules, theirs.len());
    assert!(!k.virtio_boot);
    let scsi = k.drivers.iter().find(|d| d.name == "virtio_scsi").unwrap();
    assert!(scsi.at_boot);
    let f = finding(&r, "GUEST.NoVirtioBlockDriver");
    assert!(f.is_error());
    assert!(
        f.message
            .contains("virtio_blk: module NOT in the initramfs"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("virtio_scsi is usable at boot"),
        "{}",
        f.message
    );
}

/// An initramfs holding another kernel's module tree: its modules do not load.
#[test]
fn initramfs_of_another_kernel_is_named() {
    let r = inspect("scsi");
    let linux = r.facts.linux.as_ref().unwrap();
    let old = linux
        .kernels
        .iter()
        .find(|k| k.version == "5.14.0-362.el9.x86_64")
        .unwrap();
    assert_eq!(old.initramfs_kernels, vec!["5.14.0-427.el9.x86_64"]);
    assert_eq!(old.initramfs_modules, 0);
    let f = finding(&r, "GUEST.InitramfsKernelMismatch");
    assert!(!f.is_error());
    assert!(
        f.message.contains(
            "holds modules for kernel 5.14.0-427.el9.x86_64, not for 5.14.0-362.el9.x86_64"
        ),
        "{}",
        f.message
    );
}

/// virtio_blk and virtio_pci are in the initramfs, virtio_ring (which modules.dep says both
/// need) is not: modprobe fails at boot.
#[test]
fn a_module_without_what_it_needs_does_not_load() {
    let r = inspect("deps");
    let dep = debugfs_cat("deps", "/lib/modules/3.16.0-11-amd64/modules.dep");
    assert!(
        dep.contains("virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko"),
        "{dep}"
    );
    let theirs = lsinitramfs_modules("deps");
    assert!(theirs.contains(&"virtio_blk".into()) && !theirs.contains(&"virtio_ring".into()));
    let k = default_kernel(&r);
    let blk = k.drivers.iter().find(|d| d.name == "virtio_blk").unwrap();
    assert_eq!(blk.in_initramfs, Some(true));
    assert_eq!(blk.missing_dependencies, vec!["virtio_ring"]);
    assert!(!blk.at_boot);
    let f = finding(&r, "GUEST.NoVirtioBlockDriver");
    assert!(f.is_error());
    assert!(
        f.message.contains("without virtio_ring, which it needs"),
        "{}",
        f.message
    );
}

/// ifupdown with a static eth0, and udev's persistent-net rules pinning it to a MAC.
#[test]
fn static_ifupdown_and_persistent_net_rules_are_warned() {
    let r = inspect("deps");
    let f = finding(&r, "GUEST.NetworkStatic");
    assert!(!f.is_error());
    assert!(
        f.message
            .contains("/etc/network/interfaces gives eth0 the static address 192.168.10.21"),
        "{}",
        f.message
    );
    let f = finding(&r, "GUEST.NetworkMacPinned");
    assert!(
        f.message.contains("52:54:00:6b:3c:01 -> eth0"),
        "{}",
        f.message
    );
    let net = &r.facts.linux.as_ref().unwrap().network;
    assert_eq!(
        net.primary.map(|i| net.interfaces[i].interface.as_str()),
        Some("eth0")
    );
}

/// RHEL 9: the default is the BLS entry grubenv's saved_entry names, 5.14.0-362.8.1.el9_3,
/// which rpm ranks above 5.14.0-362.el9 (our old order did not) and whose initramfs has no
/// virtio. The old inspector checked 5.14.0-362.el9 and passed.
#[test]
fn rhel_default_kernel_is_grubenvs_saved_bls_entry() {
    let r = inspect("rpm");
    let env = debugfs_cat("rpm", "/boot/grub2/grubenv");
    assert!(env.starts_with("# GRUB Environment Block"), "{env}");
    assert!(
        env.contains("saved_entry=0c5f1e7a2b3d4c5e8f9a0b1c2d3e4f50-5.14.0-362.8.1.el9_3.x86_64")
    );
    let linux = r.facts.linux.as_ref().unwrap();
    assert_eq!(
        linux.kernels[0].version, "5.14.0-362.8.1.el9_3.x86_64",
        "rpm order"
    );
    assert_eq!(
        linux.default_kernel.as_deref(),
        Some("5.14.0-362.8.1.el9_3.x86_64")
    );
    assert_eq!(
        linux.default_kernel_source.as_deref(),
        Some("/boot/grub2/grubenv saved_entry")
    );
    assert!(linux
        .boot_configs
        .iter()
        .any(|c| c.starts_with("/boot/loader/entries/")));
    assert!(linux.kernel_roots.contains(&"LABEL=rpm-root".to_string()));
    let theirs = lsinitramfs_modules("rpm");
    assert_eq!(theirs, vec!["ata_piix"]);
    let k = default_kernel(&r);
    assert_eq!(k.initramfs_layers, vec!["xz"]);
    assert!(finding(&r, "GUEST.NoVirtioBlockDriver").is_error());
    assert!(!has(&r, "GUEST.KernelWithoutVirtio"), "362.el9 has virtio");
}

/// A NetworkManager keyfile with a static address and a MAC binding.
#[test]
fn networkmanager_keyfile_static_and_mac() {
    let r = inspect("rpm");
    assert!(finding(&r, "GUEST.NetworkStatic")
        .message
        .contains("ens3 the static address 10.20.30.40/24"));
    assert!(finding(&r, "GUEST.NetworkMacPinned")
        .message
        .contains("52:54:00:4E:21:9A"));
}

/// CentOS 5: no os-release, /etc/redhat-release says CentOS; GRUB legacy's default=1 boots
/// the older kernel, whose initrd has no virtio.
#[test]
fn centos5_grub_legacy_default() {
    let r = inspect("legacy");
    let os = r.facts.os.as_ref().unwrap();
    assert_eq!(os.distro.as_deref(), Some("centos"));
    assert_eq!((os.major, os.minor), (Some(5), Some(11)));
    assert_eq!(r.facts.platform.as_deref(), Some("CentOS"));
    let conf = debugfs_cat("legacy", "/boot/grub/grub.conf");
    assert!(conf.contains("default=1"));
    let linux = r.facts.linux.as_ref().unwrap();
    assert_eq!(linux.default_kernel.as_deref(), Some("2.6.18-398.el5"));
    assert_eq!(
        linux.default_kernel_source.as_deref(),
        Some("/boot/grub/grub.conf default=1")
    );
    assert_eq!(lsinitramfs_modules("legacy"), vec!["ata_piix"]);
    assert!(finding(&r, "GUEST.NoVirtioBlockDriver")
        .message
        .contains("2.6.18-398.el5"));
    // ifcfg-eth0 is DHCP but bound to the old NIC's MAC.
    assert!(!has(&r, "GUEST.NetworkStatic"));
    assert!(
        finding(&r, "GUEST.NetworkMacPinned")
            .message
            .contains("HWADDR")
            || finding(&r, "GUEST.NetworkMacPinned")
                .message
                .contains("52:54:00:C5:05:11")
    );
}

/// Arch: vmlinuz-linux has no version in its name; the version and modules come from its
/// lzma initramfs (usr/lib/modules/6.7.4-arch1-1); the microcode archive GRUB loads first is
/// passed over. It used to be "no virtio" (a false FAIL).
#[test]
fn kernels_without_a_version_suffix() {
    let r = inspect("arch");
    let linux = r.facts.linux.as_ref().unwrap();
    assert_eq!(linux.default_kernel.as_deref(), Some("6.7.4-arch1-1"));
    let k = default_kernel(&r);
    assert_eq!(k.image, "/boot/vmlinuz-linux");
    assert_eq!(k.initramfs.as_deref(), Some("/boot/initramfs-linux.img"));
    assert_eq!(k.initramfs_layers, vec!["lzma"]);
    let theirs = lsinitramfs_modules("arch");
    assert_eq!(k.initramfs_modules, theirs.len());
    assert!(k.modules_dir && k.virtio_boot && k.nvme_boot);
    assert!(!has(&r, "GUEST.NoVirtioBlockDriver"), "{:#?}", r.findings);
    // The lts kernel's initramfs is bzip2 and the zen kernel's lzop: both read (they used
    // to be "not checked" warnings), each holding its own kernel's modules, as lsinitramfs
    // lists them.
    for (image, version, layer, file) in [
        ("linux-lts", "6.6.16-1-lts", "bzip2", "boot-arch-lts.initrd"),
        ("linux-zen", "6.7.4-zen1-1", "lzo", "boot-arch-zen.initrd"),
    ] {
        let k = linux
            .kernels
            .iter()
            .find(|k| k.image == format!("/boot/vmlinuz-{image}"))
            .unwrap();
        assert_eq!(k.version, version);
        assert_eq!(k.initramfs_layers, vec![layer]);
        let listed = run("lsinitramfs", &[boot_dir().join(file).to_str().unwrap()]);
        let theirs = listed.lines().filter(|l| l.contains(".ko")).count();
        assert!(listed.contains(&format!("usr/lib/modules/{version}/")));
        assert_eq!(k.initramfs_modules, theirs, "{image}");
        assert!(k.virtio_boot && k.nvme_boot, "{image}");
        assert!(k.initramfs_kernels.iter().all(|v| v == version));
    }
    assert!(!has(&r, "GUEST.InitramfsUnreadable"), "{:#?}", r.findings);
    assert!(
        !has(&r, "GUEST.InitramfsKernelMismatch"),
        "{:#?}",
        r.findings
    );
    assert!(
        !preflight_report::has_errors(&r.findings),
        "{:#?}",
        r.findings
    );
}

/// CentOS 7 under UEFI: the ESP holds only \EFI\centos\ (no \EFI\BOOT\BOOTX64.EFI), and its
/// grub.cfg and grubenv decide the default kernel.
#[test]
fn esp_without_fallback_loader_and_its_grub_cfg() {
    let r = inspect("uefi");
    let img = boot_dir().join("boot-uefi.raw");
    let listing = run(
        "mdir",
        &["-b", "-i", &format!("{}@@1048576", img.display()), "::/EFI"],
    );
    assert!(
        listing.contains("centos") && !listing.to_ascii_uppercase().contains("/BOOT"),
        "{listing}"
    );
    assert_eq!(r.facts.boot_mode.as_deref(), Some("UEFI"));
    assert!(r.facts.boot.uefi && !r.facts.boot.efi_fallback_loader);
    let f = finding(&r, "GUEST.EfiNoFallbackLoader");
    assert!(!f.is_error());
    assert!(
        f.message.contains("no \\EFI\\BOOT\\BOOTX64.EFI"),
        "{}",
        f.message
    );
    let linux = r.facts.linux.as_ref().unwrap();
    assert_eq!(
        linux.default_kernel.as_deref(),
        Some("3.10.0-957.el7.x86_64")
    );
    assert_eq!(
        linux.default_kernel_source.as_deref(),
        Some("/boot/efi/EFI/centos/grubenv saved_entry")
    );
    assert!(finding(&r, "GUEST.NoVirtioBlockDriver").is_error());
    // No network configuration and no cloud-init to write one.
    assert!(has(&r, "GUEST.NetworkNotConfigured"));
}

/// hivexget's view of a hive file.
fn hivexget(hive: &str, key: &str, value: &str) -> Option<String> {
    let out = std::process::Command::new("hivexget")
        .args([boot_dir().join(hive).to_str().unwrap(), key, value])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Windows with vioscsi as its only boot-start virtio driver: an error (ECS system disks are
/// virtio-blk). Windows 11 is named from its build, although its registry says Windows 10.
#[test]
fn windows_vioscsi_alone_is_an_error_and_windows_11_is_named() {
    assert_eq!(
        hivexget(
            "boot-win11.SYSTEM",
            "\\ControlSet001\\Services\\vioscsi",
            "Start"
        )
        .as_deref(),
        Some("0")
    );
    assert_eq!(
        hivexget(
            "boot-win11.SYSTEM",
            "\\ControlSet001\\Services\\viostor",
            "Start"
        ),
        None
    );
    assert_eq!(
        hivexget(
            "boot-win11.SOFTWARE",
            "\\Microsoft\\Windows NT\\CurrentVersion",
            "ProductName"
        )
        .as_deref(),
        Some("Windows 10 Pro")
    );
    let r = inspect("win11");
    let f = finding(&r, "GUEST.WindowsNoVirtioStorage");
    assert!(f.is_error());
    assert!(
        f.message.contains("vioscsi (virtio-scsi) is boot-start"),
        "{}",
        f.message
    );
    let os = r.facts.os.as_ref().unwrap();
    assert_eq!(os.name.as_deref(), Some("Windows 11 Pro"));
    assert_eq!(
        r.facts.windows.as_ref().unwrap().build.as_deref(),
        Some("22631")
    );
}

/// A SYSTEM hive with a broken header: the filesystem's content is corrupt, and the drivers
/// were not checked, which is not the same as "drivers missing".
#[test]
fn corrupt_system_hive_is_filesystem_corrupt_not_missing_drivers() {
    let r = inspect("wincorrupt");
    let f = finding(&r, "GUEST.FilesystemCorrupt");
    assert!(f.is_error());
    assert!(
        f.message.contains("SYSTEM") && f.message.contains("were not checked"),
        "{}",
        f.message
    );
    assert!(
        !has(&r, "GUEST.WindowsNoVirtioStorage"),
        "{:#?}",
        r.findings
    );
    assert!(!has(&r, "GUEST.WindowsNoVirtioNet"));
}

/// dracut's squash module: the modules are inside squash-root.img (a squashfs, unsquashfs
/// lists them). It is read: the same modules unsquashfs lists, for the kernel they belong to
/// (it used to be a warning that nothing was checked).
#[test]
fn dracut_squash_initramfs_is_read() {
    let dir = boot_dir();
    let outer = run(
        "lsinitramfs",
        &[dir.join("boot-squash.initrd").to_str().unwrap()],
    );
    assert!(outer.lines().any(|l| l == "squash-root.img"), "{outer}");
    let inner = run(
        "unsquashfs",
        &["-l", dir.join("boot-squash.squashfs").to_str().unwrap()],
    );
    assert!(inner.contains("virtio_blk.ko.xz"), "{inner}");
    let theirs = inner.lines().filter(|l| l.contains(".ko")).count();
    let r = inspect("squash");
    assert!(!has(&r, "GUEST.InitramfsUnreadable"), "{:#?}", r.findings);
    let k = default_kernel(&r);
    assert_eq!(k.version, "6.5.6-300.fc39.x86_64");
    assert_eq!(k.initramfs_layers, vec!["zstd", "squashfs"]);
    assert_eq!(k.initramfs_kernels, vec!["6.5.6-300.fc39.x86_64"]);
    assert_eq!(k.initramfs_modules, theirs);
    assert!(k.virtio_boot, "{k:#?}");
    // nvme is in the root's module tree but not in the squash image.
    assert!(!k.nvme_boot);
    assert!(!has(&r, "GUEST.NoVirtioBlockDriver"), "{:#?}", r.findings);
    assert!(
        !preflight_report::has_errors(&r.findings),
        "{:#?}",
        r.findings
    );
}

/// The lzop and bzip2 decoders on a real archive of ~2 MB (GRUB modules, which
/// install-deps.sh installs), at lzop's fastest and best levels (they use different match
/// kinds): the names are the ones `cpio -t` lists.
#[test]
fn lzop_and_bzip2_archives_list_as_cpio_does() {
    let tree = "/usr/lib/grub/x86_64-efi";
    let work = fixtures_dir().join(format!("lzo-check-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let cpio = work.join("tree.cpio");
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {tree} && find . -name '*.mod' | LC_ALL=C sort | head -n 150 | cpio -o -H newc --quiet > {}",
            cpio.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let theirs: Vec<String> = run("cpio", &["-t", "--quiet", "-F", cpio.to_str().unwrap()])
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect();
    assert!(theirs.len() > 100, "{}", theirs.len());
    for (tool, args, layer) in [
        ("lzop", &["-1", "-c"][..], "lzo"),
        ("lzop", &["-9", "-c"][..], "lzo"),
        ("bzip2", &["-c"][..], "bzip2"),
    ] {
        let out = std::process::Command::new(tool)
            .args(args)
            .arg(&cpio)
            .output()
            .unwrap();
        assert!(out.status.success());
        let l =
            preflight_guest::initramfs::list(&out.stdout, preflight_guest::initramfs::MAX_UNPACKED)
                .unwrap_or_else(|e| panic!("{tool} {args:?}: {e}"));
        assert_eq!(l.layers, vec![layer]);
        assert_eq!(l.names, theirs, "{tool} {args:?}");
        // Hostile copies of the head of the stream (the header and first blocks): an
        // answer or an error, never a panic or a hang.
        let mut bad = out.stdout[..out.stdout.len().min(64 * 1024)].to_vec();
        for i in (0..bad.len()).step_by(bad.len() / 50 + 1) {
            let keep = bad[i];
            for v in [0u8, 0xff, keep ^ 0x40] {
                bad[i] = v;
                let _ = preflight_guest::initramfs::list(&bad, 16 << 20);
            }
            bad[i] = keep;
        }
    }
    std::fs::remove_dir_all(&work).unwrap();
}

/// The squashfs lister on images mksquashfs makes of GRUB's module tree (a few thousand
/// entries, directories over several metadata blocks) with each compressor dracut may use:
/// the paths are the ones `unsquashfs -l` lists.
#[test]
fn squashfs_lists_as_unsquashfs_does() {
    let work = fixtures_dir().join(format!("squash-check-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    for comp in ["gzip", "xz", "lzo", "lz4", "zstd"] {
        let img = work.join(format!("{comp}.sqfs"));
        run(
            "mksquashfs",
            &[
                "/usr/lib/grub",
                img.to_str().unwrap(),
                "-quiet",
                "-noappend",
                "-no-progress",
                // Data stored as is: only the tables we read are compressed (fast).
                "-noD",
                "-noF",
                "-comp",
                comp,
            ],
        );
        let mut theirs: Vec<String> = run("unsquashfs", &["-l", "-d", "", img.to_str().unwrap()])
            .lines()
            .filter_map(|l| l.strip_prefix('/'))
            .map(str::to_string)
            .collect();
        theirs.sort();
        assert!(theirs.len() > 500, "{comp}: {}", theirs.len());
        let data = std::fs::read(&img).unwrap();
        let mut ours = preflight_guest::initramfs::squashfs::list(&data, 1_000_000)
            .unwrap_or_else(|e| panic!("{comp}: {e}"));
        ours.sort();
        assert_eq!(ours, theirs, "{comp}");
        // Hostile copies: each byte of the superblock and tables rewritten in turn gives an
        // answer or an error, never a panic or a hang.
        let tables = usize::try_from(u64::from_le_bytes(data[64..72].try_into().unwrap())).unwrap();
        let mut bad = data.clone();
        for i in (0..96).chain((tables..data.len()).step_by(61)).take(1500) {
            let keep = bad[i];
            for v in [0u8, 0xff, keep ^ 0x80] {
                bad[i] = v;
                let _ = preflight_guest::initramfs::squashfs::list(&bad, 10_000);
            }
            bad[i] = keep;
        }
    }
    std::fs::remove_dir_all(&work).unwrap();
}

/// An initramfs with nvme but no virtio_blk: an error for an import that did not ask for
/// NVMe (the disk is virtio-blk), a warning when `--nvme-support supported` was given (the
/// guest inspection used to ignore the flag and fail it).
#[test]
fn nvme_requested_needs_nvme_not_virtio_blk() {
    let theirs = lsinitramfs_modules("nvme");
    assert!(theirs.contains(&"nvme".into()) && !theirs.contains(&"virtio_blk".into()));
    let plain = inspect("nvme");
    assert!(finding(&plain, "GUEST.NoVirtioBlockDriver").is_error());
    assert_eq!(plain.facts.nvme_support.as_deref(), Some("supported"));
    let r = inspect_nvme("nvme");
    assert!(!has(&r, "GUEST.NoVirtioBlockDriver"), "{:#?}", r.findings);
    let f = finding(&r, "GUEST.NvmeOnlyStorage");
    assert!(!f.is_error());
    assert!(
        f.message.contains("5.15.0-105-generic") && f.message.contains("virtio_blk"),
        "{}",
        f.message
    );
    assert!(
        !preflight_report::has_errors(&r.findings),
        "{:#?}",
        r.findings
    );
    // NVMe requested for a guest without nvme at boot: the guest says so, and the facts the
    // rules compare with NvmeSupport say "unsupported".
    let r = inspect_nvme("scsi");
    assert_eq!(r.facts.nvme_support.as_deref(), Some("unsupported"));
    assert!(has(&r, "GUEST.NoNvmeDriver"));
}

/// Windows: stornvme must be boot-start for an NVMe disk. A demand-start stornvme
/// (Start=3) is "unsupported" (it used to count as NVMe support); a boot-start stornvme
/// without viostor is a warning when NVMe is requested, an error when it is not.
#[test]
fn windows_nvme_needs_a_boot_start_stornvme() {
    assert_eq!(
        hivexget(
            "boot-win11.SYSTEM",
            "\\ControlSet001\\Services\\stornvme",
            "Start"
        )
        .as_deref(),
        Some("3")
    );
    let r = inspect_nvme("win11");
    assert_eq!(r.facts.nvme_support.as_deref(), Some("unsupported"));
    assert!(finding(&r, "GUEST.WindowsNoVirtioStorage").is_error());

    assert_eq!(
        hivexget(
            "boot-winnvme.SYSTEM",
            "\\ControlSet001\\Services\\stornvme",
            "Start"
        )
        .as_deref(),
        Some("0")
    );
    let plain = inspect("winnvme");
    assert_eq!(plain.facts.nvme_support.as_deref(), Some("supported"));
    assert!(finding(&plain, "GUEST.WindowsNoVirtioStorage").is_error());
    let r = inspect_nvme("winnvme");
    assert!(
        !has(&r, "GUEST.WindowsNoVirtioStorage"),
        "{:#?}",
        r.findings
    );
    let f = finding(&r, "GUEST.NvmeOnlyStorage");
    assert!(
        !f.is_error() && f.message.contains("stornvme is boot-start"),
        "{}",
        f.message
    );
}

/// An ESP whose FAT cannot be read (its BIOS parameter block wiped; fsck.fat refuses it):
/// the loaders were not checked, which is a warning saying so, not `NoBootLoader` (an error
/// telling the user to install a boot loader the disk may well have).
#[test]
fn unreadable_esp_is_a_warning_not_no_boot_loader() {
    let img = boot_dir().join("boot-espbad.raw");
    let out = std::process::Command::new("mdir")
        .args(["-i", &format!("{}@@1048576", img.display()), "::/"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "mtools reads the wiped ESP");
    let r = inspect("espbad");
    assert!(!has(&r, "GUEST.NoBootLoader"), "{:#?}", r.findings);
    let f = finding(&r, "GUEST.EspUnreadable");
    assert!(!f.is_error());
    assert!(
        f.message.contains("partition 1") && f.message.contains("incomplete"),
        "{}",
        f.message
    );
    assert!(!r.facts.boot.uefi);
    // The same disk with its ESP intact has a loader and no such warning.
    let ok = inspect("uefi");
    assert!(!has(&ok, "GUEST.EspUnreadable") && !has(&ok, "GUEST.NoBootLoader"));
}
