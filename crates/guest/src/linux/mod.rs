//! A Linux root: release, hostname, architecture, kernels and their virtio
//! drivers (built in, module, inside the initramfs), and Alibaba's offline
//! rules (fstab, GRUB root=, cloud-init, qemu-guest-agent, SELinux,
//! immutable /etc/shadow, CONFIG_FW_CFG_SYSFS, RTC).

use crate::bootloader::{self, DefaultEntry};
use crate::fs::{Fs, FsError};
use crate::initramfs::{self, module_name};
use crate::rpmvercmp::rpmvercmp;
use crate::{devnames, exe, network, rules, GuestFacts, OsInfo, Sink, Volume};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

mod fstab;
mod kernel;
mod release;
mod tree;

use fstab::{boot_device_name_breaks, fstab, is_kernel_device_name};
use kernel::*;
pub(crate) use release::key_values;
use release::*;
use tree::Tree;

/// Largest text file read (/etc/fstab, os-release, grub.cfg, config-*).
const MAX_TEXT: u64 = 4 * 1024 * 1024;
/// Largest package database read (/var/lib/dpkg/status: a few MiB on a
/// full desktop).
const MAX_DPKG_STATUS: u64 = 64 * 1024 * 1024;
/// Kernels inspected (a /boot with more is unusual; each costs an initramfs).
const MAX_KERNELS: usize = 8;

/// One driver of one kernel.
#[derive(Debug, Clone, Serialize)]
pub struct DriverInfo {
    /// Module name (`virtio_blk`).
    pub name: String,
    /// In the kernel: `builtin`, `module` or `absent`.
    pub kernel: String,
    /// For a module: whether it is inside the kernel's initramfs (`None`
    /// when the initramfs could not be read).
    pub in_initramfs: Option<bool>,
    /// Modules it needs (modules.dep, followed through) that are neither built in nor
    /// inside the initramfs: without them it does not load.
    pub missing_dependencies: Vec<String>,
    /// Usable while the initramfs runs: built in, or a module inside it with every module it
    /// depends on.
    pub at_boot: bool,
}

/// One installed kernel.
#[derive(Debug, Clone, Serialize)]
pub struct KernelInfo {
    /// Version (`6.1.0-18-cloud-amd64`).
    pub version: String,
    /// Path of the kernel image.
    pub image: String,
    /// Path of its initramfs, if found.
    pub initramfs: Option<String>,
    /// Compression of each archive in the initramfs (`none`, `zstd`…).
    pub initramfs_layers: Vec<String>,
    /// Number of kernel modules inside the initramfs.
    pub initramfs_modules: usize,
    /// `/lib/modules/<version>` exists.
    pub modules_dir: bool,
    /// `/boot/config-<version>` was read.
    pub config: bool,
    /// The checked drivers.
    pub drivers: Vec<DriverInfo>,
    /// virtio_blk and virtio_pci usable at boot (ECS system disks are virtio-blk; virtio_scsi
    /// does not reach them).
    pub virtio_boot: bool,
    /// Kernel versions whose module trees (`lib/modules/<v>/`) the initramfs holds.
    pub initramfs_kernels: Vec<String>,
    /// nvme usable at boot.
    pub nvme_boot: bool,
}

/// One /etc/fstab line.
#[derive(Debug, Clone, Serialize)]
pub struct FstabEntry {
    /// First field (`UUID=…`, `/dev/sda1`).
    pub spec: String,
    /// Mount point.
    pub mountpoint: String,
    /// Filesystem type.
    pub fstype: String,
    /// Options.
    pub options: String,
    /// Index in `facts.filesystems` of the filesystem it names, if any.
    pub filesystem: Option<usize>,
}

/// Linux details.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinuxInfo {
    /// Installed kernels, newest first.
    pub kernels: Vec<KernelInfo>,
    /// The kernel the boot loader boots by default (or the newest, by rpm's ordering).
    pub default_kernel: Option<String>,
    /// What decided the default kernel (`/boot/grub2/grubenv saved_entry`…), when a boot
    /// loader configuration did.
    pub default_kernel_source: Option<String>,
    /// The network configuration of the primary interface.
    pub network: network::NetworkInfo,
    /// /etc/fstab.
    pub fstab: Vec<FstabEntry>,
    /// GRUB / BLS configuration files read.
    pub boot_configs: Vec<String>,
    /// `root=` values on the kernel command lines.
    pub kernel_roots: Vec<String>,
    /// cloud-init version (or `installed` when the version is unknown).
    pub cloud_init: Option<String>,
    /// /etc/cloud/cloud-init.disabled exists.
    pub cloud_init_disabled: bool,
    /// qemu-guest-agent is installed.
    pub qemu_guest_agent: bool,
    /// SELINUX= from /etc/selinux/config.
    pub selinux: Option<String>,
    /// /etc/shadow has the immutable flag (`None`: not determinable).
    pub shadow_immutable: Option<bool>,
    /// RTC mode from /etc/adjtime (`UTC` or `LOCAL`; absent means UTC).
    pub rtc: Option<String>,
}

/// True when the filesystem looks like a Linux `/`.
pub(crate) fn is_root(fs: &mut dyn Fs) -> bool {
    fs.is_dir("/etc")
        && (fs.exists("/etc/fstab")
            || fs.exists("/etc/os-release")
            || fs.exists("/usr/lib/os-release"))
        && (fs.is_dir("/bin") || fs.is_dir("/usr/bin") || separate_merged_usr(fs))
}

/// A merged-/usr root (`/bin -> usr/bin`) whose /usr is another filesystem:
/// /bin is there, dangling until fstab mounts /usr.
fn separate_merged_usr(fs: &mut dyn Fs) -> bool {
    let Ok(names) = fs.list("/") else {
        return false;
    };
    names.iter().any(|n| n == "bin")
        && fs.is_dir("/usr")
        && fs.read("/etc/fstab", MAX_TEXT).is_ok_and(|t| {
            String::from_utf8_lossy(&t).lines().any(|l| {
                let mut f = l.split_whitespace();
                !l.trim_start().starts_with('#') && f.nth(1) == Some("/usr")
            })
        })
}

/// Installed packages from the dpkg database: name → version.
/// cloud-init's version from its Python package, for systems without dpkg (RPM
/// distributions): `cloudinit/version.py` under the interpreter's site- or dist-packages.
/// The packaged version (`_PACKAGED_VERSION`, e.g. `23.4-7.el9`) wins over `__VERSION__`.
fn cloud_init_python_version(tree: &mut Tree<'_, '_>) -> Option<String> {
    let mut dirs = Vec::new();
    for lib in ["/usr/lib", "/usr/lib64", "/usr/local/lib"] {
        for py in tree.list(lib) {
            if py.starts_with("python3") {
                for pkgs in ["site-packages", "dist-packages"] {
                    dirs.push(format!("{lib}/{py}/{pkgs}"));
                }
            }
        }
    }
    dirs.iter().find_map(|d| {
        let text = tree.text(&format!("{d}/cloudinit/version.py"))?;
        let value = |name: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == name)
                    .then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
            })
        };
        value("_PACKAGED_VERSION")
            .filter(|v| !v.is_empty() && !v.contains("@@"))
            .or_else(|| value("__VERSION__"))
            .filter(|v| !v.is_empty())
    })
}

fn dpkg_packages(tree: &mut Tree<'_, '_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(b) = tree.read("/var/lib/dpkg/status", MAX_DPKG_STATUS) else {
        return out;
    };
    let text = String::from_utf8_lossy(&b);
    for para in text.split("\n\n") {
        let mut name = None;
        let mut version = None;
        let mut installed = false;
        for l in para.lines() {
            if let Some(v) = l.strip_prefix("Package: ") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = l.strip_prefix("Version: ") {
                version = Some(v.trim().to_string());
            } else if let Some(v) = l.strip_prefix("Status: ") {
                installed = v.trim().ends_with(" installed");
            }
        }
        if let (Some(n), true) = (name, installed) {
            out.insert(n, version.unwrap_or_default());
        }
    }
    out
}

pub(crate) fn inspect(
    vols: &mut [Volume<'_>],
    root: usize,
    facts: &mut GuestFacts,
    sink: &mut Sink,
    options: crate::InspectOptions,
) {
    let Some(root_fs) = vols.get(root).map(|v| v.fs_index) else {
        return;
    };
    let mut tree = Tree {
        vols,
        mounts: vec![("/".to_string(), root)],
    };
    let mut info = LinuxInfo {
        fstab: fstab(&mut tree, facts, sink),
        ..Default::default()
    };
    // Mount what fstab names and we found, so /boot, /usr… resolve.
    let mut mounts = vec![("/".to_string(), root)];
    for e in &info.fstab {
        if let Some(fi) = e.filesystem {
            if let Some(f) = facts.filesystems.get_mut(fi) {
                f.mountpoint = Some(e.mountpoint.clone());
            }
            if !e.mountpoint.starts_with('/') {
                continue;
            }
            let Some(vi) = tree
                .vols
                .iter()
                .position(|v| v.fs_index == fi && v.fs.is_some())
            else {
                continue;
            };
            // A btrfs subvolume: the root's own filesystem mounts it at its
            // place; another filesystem is rooted at it.
            let at = if vi == root {
                e.mountpoint.as_str()
            } else {
                "/"
            };
            let fs = tree.vols.get_mut(vi).and_then(|v| v.fs.as_deref_mut());
            match fs.map(|f| f.mount_subvolume(at, &e.options)) {
                Some(Ok(true)) if vi == root => continue,
                Some(Err(err @ FsError::NotRead { .. })) => {
                    sink.push(rules::READ_LIMIT.finding(format!(
                        "/etc/fstab mounts {} from {} ({}): {err}; the verdict is incomplete",
                        e.mountpoint, e.spec, e.options
                    )))
                }
                Some(Err(err)) => sink.push(rules::FS_CORRUPT.finding(format!(
                    "/etc/fstab mounts {} from {} ({}), which cannot be read: {err}",
                    e.mountpoint, e.spec, e.options
                ))),
                _ => {}
            }
            if e.mountpoint != "/" {
                mounts.push((e.mountpoint.trim_end_matches('/').to_string(), vi));
            }
        } else if e.mountpoint == "/" {
            // fstab's / not found here: keep ours.
        }
    }
    if let Some(f) = facts.filesystems.get_mut(root_fs) {
        f.mountpoint = Some("/".into());
    }
    mounts.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
    tree.mounts = mounts;

    let mut os = OsInfo {
        family: "linux".into(),
        root_filesystem: root_fs,
        ..Default::default()
    };
    let id_like = release(&mut tree, &mut os);
    let platform = platform_with_like(
        os.distro.as_deref().unwrap_or(""),
        os.name.as_deref().unwrap_or(""),
        id_like.as_deref(),
    );
    if platform == "Others Linux" {
        sink.push(rules::PLATFORM_OTHER.finding(format!(
            "distribution {:?} ({}) is not an ECS platform; it maps to Others Linux",
            os.distro.as_deref().unwrap_or("unknown"),
            os.name.as_deref().unwrap_or("no name")
        )));
    }
    facts.platform = Some(platform.into());
    facts.os_type = Some("linux".into());
    facts.architecture = arch(&mut tree);
    if facts.architecture.is_none() {
        sink.push(rules::ARCH_UNKNOWN.finding("no ELF executable found in /bin or /usr/bin"));
    }

    // Kernels.
    let mut versions: Vec<(String, String)> = tree
        .list("/boot")
        .into_iter()
        .filter_map(|n| {
            let v = ["vmlinuz-", "vmlinux-", "Image-", "kernel-"]
                .iter()
                .find_map(|p| n.strip_prefix(p))?
                .to_string();
            (!v.contains("rescue") && !v.ends_with(".old") && !v.contains("kdump"))
                .then(|| (v, format!("/boot/{n}")))
        })
        .collect();
    versions.sort_by(|a, b| rpmvercmp(&b.0, &a.0));
    versions.dedup_by(|a, b| a.0 == b.0);
    let default_entry = boot_configs(&mut tree, &mut info);
    let default_file = default_entry
        .as_ref()
        .map(|d| d.entry.kernel_file().to_string());
    let is_default = |image: &str| {
        default_file
            .as_deref()
            .is_some_and(|f| image.rsplit('/').next() == Some(f))
    };
    // The default kernel is inspected even when more than MAX_KERNELS are installed.
    if let Some(i) = versions.iter().position(|(_, img)| is_default(img)) {
        if i >= MAX_KERNELS {
            let d = versions.remove(i);
            versions.insert(0, d);
        }
    }
    versions.truncate(MAX_KERNELS);
    for (v, image) in versions {
        let initrds = match &default_entry {
            Some(d) if is_default(&image) => initrd_from_entry(&d.entry.initrds),
            _ => Vec::new(),
        };
        info.kernels
            .push(kernel(&mut tree, &v, image, initrds, sink));
    }
    // What the boot loader boots; the newest (rpm's order) when no configuration says.
    let default = info
        .kernels
        .iter()
        .position(|k| is_default(&k.image))
        .unwrap_or(0);
    if info
        .kernels
        .get(default)
        .is_some_and(|k| is_default(&k.image))
    {
        info.default_kernel_source = default_entry.map(|d| d.source);
    }
    info.default_kernel = info.kernels.get(default).map(|k| k.version.clone());
    match info.kernels.get(default) {
        None => sink.push(rules::NO_KERNEL.finding("no vmlinuz-* kernel image in /boot")),
        Some(k) => {
            if k.initramfs.is_none() {
                sink.push(
                    rules::INITRAMFS_MISSING
                        .finding(format!("kernel {} has no initramfs in /boot", k.version)),
                );
            }
            let unread = k.initramfs.is_some() && k.initramfs_layers.is_empty();
            if !k.virtio_boot && !unread && options.nvme_requested && k.nvme_boot {
                // An NVMe instance reaches its system disk through nvme.
                sink.push(rules::NVME_ONLY_STORAGE.finding(format!(
                    "kernel {}: nvme is usable at boot, but {}: only NVMe instance types boot this image",
                    k.version,
                    describe_missing(k, &["virtio_blk", "virtio_pci"])
                )));
            } else if !k.virtio_boot && !unread {
                sink.push(rules::NO_VIRTIO_BLK.finding(format!(
                    "kernel {}: {}{}",
                    k.version,
                    describe_missing(k, &["virtio_blk", "virtio_pci"]),
                    scsi_only_note(k)
                )));
            }
            let net = k
                .drivers
                .iter()
                .any(|d| d.name == "virtio_net" && d.kernel != "absent");
            if !net {
                sink.push(
                    rules::NO_VIRTIO_NET.finding(format!("kernel {} has no virtio_net", k.version)),
                );
            }
            facts.nvme_support = Some(
                if k.nvme_boot {
                    "supported"
                } else {
                    "unsupported"
                }
                .into(),
            );
            if !k.nvme_boot && !unread {
                sink.push(rules::NO_NVME.finding(format!(
                    "kernel {}: {}",
                    k.version,
                    describe_missing(k, &["nvme"])
                )));
            }
            let needs_fw_cfg = facts.architecture.as_deref() == Some("arm64")
                || FW_CFG_PLATFORMS.contains(&platform);
            if needs_fw_cfg && k.config {
                let ok = k
                    .drivers
                    .iter()
                    .any(|d| d.name == "qemu_fw_cfg" && d.kernel != "absent");
                if !ok {
                    sink.push(rules::FW_CFG.finding(format!(
                        "kernel {} ({platform}, {}) lacks CONFIG_FW_CFG_SYSFS",
                        k.version,
                        facts.architecture.as_deref().unwrap_or("?")
                    )));
                }
            }
        }
    }
    for (i, k) in info.kernels.iter().enumerate() {
        let unread = k.initramfs.is_some() && k.initramfs_layers.is_empty();
        if i != default && !k.virtio_boot && !unread {
            sink.push(rules::OTHER_KERNEL_NO_VIRTIO.finding(format!(
                "kernel {} (not the default): {}",
                k.version,
                describe_missing(k, &["virtio_blk", "virtio_pci"])
            )));
        }
    }
    for r in &info.kernel_roots {
        if boot_device_name_breaks("/", r) {
            sink.push(rules::BOOT_DEVICE_NAME.finding(format!(
                "the kernel command line has root={r}; ECS names the system disk /dev/vda or /dev/nvme0n1, so the root is not found"
            )));
        } else if is_kernel_device_name(r) {
            sink.push(
                rules::GRUB_ROOT_DEVICE.finding(format!("the kernel command line has root={r}")),
            );
        }
    }

    // Packages and services.
    let pkgs = dpkg_packages(&mut tree);
    info.cloud_init = pkgs
        .get("cloud-init")
        .cloned()
        .or_else(|| cloud_init_python_version(&mut tree))
        .or_else(|| {
            (tree.exists("/usr/bin/cloud-init") || tree.exists("/etc/cloud/cloud.cfg"))
                .then(|| "installed".to_string())
        });
    info.cloud_init_disabled = tree.exists("/etc/cloud/cloud-init.disabled");
    if info.cloud_init.is_none() {
        sink.push(rules::NO_CLOUD_INIT.finding("cloud-init is not installed"));
    } else if info.cloud_init_disabled {
        sink.push(
            rules::NO_CLOUD_INIT
                .finding("cloud-init is installed but disabled by /etc/cloud/cloud-init.disabled"),
        );
    }
    let network_manager = pkgs.contains_key("network-manager")
        || tree.exists("/usr/sbin/NetworkManager")
        || tree.exists("/usr/bin/NetworkManager");
    info.network = network::inspect(
        &mut tree,
        info.cloud_init.is_some() && !info.cloud_init_disabled,
        network_manager,
        sink,
    );
    info.qemu_guest_agent = pkgs.contains_key("qemu-guest-agent")
        || tree.exists("/usr/bin/qemu-ga")
        || tree.exists("/usr/sbin/qemu-ga");
    if info.qemu_guest_agent {
        sink.push(rules::QEMU_GA.finding("qemu-guest-agent is installed"));
    }
    if let Some(t) = tree.text("/etc/selinux/config") {
        info.selinux = key_values(&t).get("SELINUX").cloned();
        if info.selinux.as_deref() == Some("enforcing") {
            sink.push(rules::SELINUX.finding("/etc/selinux/config sets SELINUX=enforcing"));
        }
    }
    info.shadow_immutable = tree
        .locate("/etc/shadow")
        .and_then(|(fs, p)| fs.immutable(&p));
    if info.shadow_immutable == Some(true) {
        sink.push(
            rules::SHADOW_IMMUTABLE.finding("/etc/shadow has the immutable flag (chattr +i)"),
        );
    }
    if let Some(t) = tree.text("/etc/adjtime") {
        info.rtc = t
            .lines()
            .nth(2)
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty());
    }
    if facts.architecture.as_deref() == Some("arm64") && info.rtc.as_deref() == Some("LOCAL") {
        sink.push(
            rules::RTC_LOCAL.finding("/etc/adjtime keeps the RTC in local time on an arm64 guest"),
        );
    }
    facts.os = Some(os);
    facts.linux = Some(info);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert!(is_kernel_device_name("/dev/sda1"));
        assert!(is_kernel_device_name("/dev/xvda"));
        assert!(!is_kernel_device_name("/dev/mapper/vg-root"));
        assert!(!is_kernel_device_name("UUID=x"));
        assert_eq!(platform_of("centos", "CentOS Stream 9"), "CentOS Stream");
        assert_eq!(platform_of("debian", ""), "Debian");
        assert_eq!(redhat_release_id("CentOS release 5.11 (Final)"), "centos");
        assert_eq!(
            redhat_release_id("Red Hat Enterprise Linux Server release 6.10 (Santiago)"),
            "rhel"
        );
        assert_eq!(
            platform_with_like("linuxmint", "Linux Mint 21", Some("ubuntu debian")),
            "Ubuntu"
        );
        assert_eq!(
            platform_with_like("ol", "Oracle Linux Server 8.9", Some("fedora")),
            "Others Linux"
        );
        assert_eq!(
            platform_with_like("eurolinux", "EuroLinux 9", Some("rhel fedora centos")),
            "RedHat"
        );
        let kv = key_values("ID=debian\nVERSION_ID=\"12\"\n# x\n");
        assert_eq!(kv.get("VERSION_ID").map(String::as_str), Some("12"));
        let m = module_list(
            "kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko.xz\n",
        );
        assert!(m.contains("virtio_blk"));
    }
}
