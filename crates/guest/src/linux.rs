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

/// Largest text file read (/etc/fstab, os-release, grub.cfg, config-*).
const MAX_TEXT: u64 = 4 * 1024 * 1024;
/// Largest package database read (/var/lib/dpkg/status: a few MiB on a
/// full desktop).
const MAX_DPKG_STATUS: u64 = 64 * 1024 * 1024;
/// Largest modules.dep / modules.builtin read.
const MAX_MODULE_LIST: u64 = 16 * 1024 * 1024;
/// Largest initramfs file read (compressed); real ones are 10-150 MiB.
const MAX_INITRD_FILE: u64 = 512 * 1024 * 1024;
/// Bytes of an executable read for its ELF header.
const ELF_HEAD: u64 = 64;
/// Kernels inspected (a /boot with more is unusual; each costs an initramfs).
const MAX_KERNELS: usize = 8;

/// The drivers checked, with the kernel config symbol of each.
pub(crate) const DRIVERS: &[(&str, &str)] = &[
    ("virtio_blk", "VIRTIO_BLK"),
    ("virtio_scsi", "SCSI_VIRTIO"),
    ("virtio_pci", "VIRTIO_PCI"),
    ("virtio_net", "VIRTIO_NET"),
    ("nvme", "BLK_DEV_NVME"),
    ("qemu_fw_cfg", "FW_CFG_SYSFS"),
];

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

/// The root with the filesystems /etc/fstab mounts on it.
struct Tree<'x, 'v> {
    vols: &'x mut [Volume<'v>],
    /// (mount point, volume index), longest first.
    mounts: Vec<(String, usize)>,
}

impl Tree<'_, '_> {
    fn locate(&mut self, path: &str) -> Option<(&mut (dyn Fs + '_), String)> {
        let (mp, vi) = self
            .mounts
            .iter()
            .find(|(mp, _)| mp == "/" || path == mp || path.starts_with(&format!("{mp}/")))?
            .clone();
        let rest = if mp == "/" {
            path.to_string()
        } else {
            path[mp.len()..].to_string()
        };
        let rest = if rest.is_empty() {
            "/".to_string()
        } else {
            rest
        };
        let fs = self.vols.get_mut(vi)?.fs.as_deref_mut()?;
        Some((fs, rest))
    }
    fn read(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        match self.locate(path) {
            Some((fs, p)) => fs.read(&p, limit),
            None => Err(FsError::NotFound),
        }
    }
    fn text(&mut self, path: &str) -> Option<String> {
        self.read(path, MAX_TEXT)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
    fn list(&mut self, path: &str) -> Vec<String> {
        match self.locate(path) {
            Some((fs, p)) => fs.list(&p).unwrap_or_default(),
            None => Vec::new(),
        }
    }
    fn exists(&mut self, path: &str) -> bool {
        match self.locate(path) {
            Some((fs, p)) => fs.exists(&p),
            None => false,
        }
    }
    fn head(&mut self, path: &str) -> Option<Vec<u8>> {
        // Executables are big; read through a bounded window.
        match self.read(path, 256 * 1024 * 1024) {
            Ok(mut b) => {
                b.truncate(usize::try_from(ELF_HEAD).unwrap_or(64));
                Some(b)
            }
            Err(_) => None,
        }
    }
}

impl bootloader::Files for Tree<'_, '_> {
    fn text(&mut self, path: &str) -> Option<String> {
        Tree::text(self, path)
    }
    fn list(&mut self, path: &str) -> Vec<String> {
        Tree::list(self, path)
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v);
    let v = v
        .strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .unwrap_or(v);
    v.to_string()
}

/// KEY=VALUE lines (os-release, sysconfig), quotes removed.
pub(crate) fn key_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), unquote(v)))
        })
        .collect()
}

fn parse_version(v: &str) -> (Option<u32>, Option<u32>) {
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major = it.next().and_then(|s| s.parse().ok());
    let minor = it.next().and_then(|s| s.parse().ok());
    (major, minor)
}

/// The ImportImage platform of a Linux distribution.
pub(crate) fn platform_of(id: &str, name: &str) -> &'static str {
    let name_l = name.to_ascii_lowercase();
    match id {
        "debian" => "Debian",
        "ubuntu" => "Ubuntu",
        "centos" if name_l.contains("stream") => "CentOS Stream",
        "centos" => "CentOS",
        "rhel" => "RedHat",
        "fedora" if name_l.contains("coreos") => "Fedora CoreOS",
        "fedora" => "Fedora",
        "almalinux" => "AlmaLinux",
        "rocky" => "Rocky Linux",
        "anolis" => "Anolis",
        "alinux" => "Aliyun",
        "sles" | "sled" | "sles_sap" => "SUSE",
        "opensuse" | "opensuse-leap" | "opensuse-tumbleweed" => "OpenSUSE",
        "kylin" => "Kylin",
        "uos" | "uniontech" => "UOS",
        "gentoo" => "Gentoo",
        "coreos" | "flatcar" => "CoreOS",
        "freebsd" => "FreeBSD",
        _ => "Others Linux",
    }
}

/// Platforms whose ImportImage notes ask for CONFIG_FW_CFG_SYSFS.
const FW_CFG_PLATFORMS: &[&str] = &[
    "CentOS Stream",
    "Anolis",
    "AlmaLinux",
    "UOS",
    "Kylin",
    "Rocky Linux",
];

/// The distribution named by the first line of /etc/redhat-release, which every RHEL
/// rebuild writes (CentOS 5 has no centos-release).
fn redhat_release_id(line: &str) -> &'static str {
    let l = line.to_ascii_lowercase();
    [
        ("centos stream", "centos"),
        ("centos", "centos"),
        ("red hat", "rhel"),
        ("oracle", "ol"),
        ("scientific", "scientific"),
        ("rocky", "rocky"),
        ("almalinux", "almalinux"),
        ("fedora", "fedora"),
        ("anolis", "anolis"),
        ("alibaba cloud linux", "alinux"),
    ]
    .into_iter()
    .find(|(p, _)| l.starts_with(p))
    .map_or("rhel", |(_, id)| id)
}

/// The ImportImage platform: from ID, or, for a distribution we do not know, from the
/// first of its ID_LIKE that we do (Linux Mint → Ubuntu). Oracle Linux is known and
/// has no platform of its own.
fn platform_with_like(id: &str, name: &str, id_like: Option<&str>) -> &'static str {
    let own = platform_of(id, name);
    if own != "Others Linux" || id == "ol" {
        return own;
    }
    id_like
        .unwrap_or("")
        .split_whitespace()
        .map(|like| platform_of(&like.to_ascii_lowercase(), name))
        .find(|p| *p != "Others Linux")
        .unwrap_or(own)
}

/// Fills the release facts; returns os-release's ID_LIKE.
fn release(tree: &mut Tree<'_, '_>, os: &mut OsInfo) -> Option<String> {
    let mut id_like = None;
    let text = tree
        .text("/etc/os-release")
        .or_else(|| tree.text("/usr/lib/os-release"));
    if let Some(t) = text {
        let kv = key_values(&t);
        id_like = kv.get("ID_LIKE").cloned();
        os.distro = kv.get("ID").map(|s| s.to_ascii_lowercase());
        os.name = kv.get("PRETTY_NAME").or_else(|| kv.get("NAME")).cloned();
        os.version = kv.get("VERSION_ID").cloned();
    }
    // Older systems, and a more precise version (Debian's VERSION_ID has no
    // minor; /etc/debian_version does).
    if os.distro.is_none() || os.distro.as_deref() == Some("debian") {
        if let Some(v) = tree.text("/etc/debian_version") {
            let v = v.trim().to_string();
            if v.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                os.distro.get_or_insert_with(|| "debian".into());
                let (maj, min) = parse_version(&v);
                os.major = maj;
                os.minor = min;
            }
        }
    }
    if os.distro.is_none() {
        for (file, id) in [
            ("/etc/centos-release", "centos"),
            ("/etc/rocky-release", "rocky"),
            ("/etc/almalinux-release", "almalinux"),
            ("/etc/oracle-release", "ol"),
            ("/etc/redhat-release", "rhel"),
            ("/etc/SuSE-release", "sles"),
            ("/etc/alpine-release", "alpine"),
        ] {
            if let Some(t) = tree.text(file) {
                let line = t.lines().next().unwrap_or("").trim().to_string();
                let id = if file == "/etc/redhat-release" {
                    redhat_release_id(&line)
                } else {
                    id
                };
                os.distro = Some(id.into());
                let v: String = line
                    .split_whitespace()
                    .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
                    .unwrap_or("")
                    .to_string();
                os.version = (!v.is_empty()).then_some(v);
                os.name = Some(line);
                break;
            }
        }
    }
    if os.distro.is_none() {
        if let Some(t) = tree.text("/etc/lsb-release") {
            let kv = key_values(&t);
            os.distro = kv.get("DISTRIB_ID").map(|s| s.to_ascii_lowercase());
            os.version = kv.get("DISTRIB_RELEASE").cloned();
            os.name = kv.get("DISTRIB_DESCRIPTION").cloned();
        }
    }
    if os.major.is_none() {
        if let Some(v) = &os.version {
            let (maj, min) = parse_version(v);
            os.major = maj;
            os.minor = min;
        }
    }
    for f in ["/etc/hostname", "/etc/HOSTNAME"] {
        if let Some(h) = tree.text(f) {
            let h = h
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'));
            if let Some(h) = h {
                os.hostname = Some(h.to_string());
                return id_like;
            }
        }
    }
    if let Some(t) = tree.text("/etc/sysconfig/network") {
        os.hostname = key_values(&t).get("HOSTNAME").cloned();
    }
    id_like
}

fn arch(tree: &mut Tree<'_, '_>) -> Option<String> {
    for p in [
        "/bin/sh",
        "/bin/ls",
        "/bin/bash",
        "/usr/bin/ls",
        "/bin/busybox",
    ] {
        if let Some(b) = tree.head(p) {
            if let Some(a) = exe::elf_arch(&b) {
                return Some(a);
            }
        }
    }
    None
}

/// Resolves an fstab spec to a filesystem index.
fn resolve_spec(facts: &GuestFacts, spec: &str) -> Option<usize> {
    let eq = |a: &Option<String>, b: &str| a.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(b));
    let by = |f: &dyn Fn(&crate::Filesystem) -> bool| facts.filesystems.iter().position(f);
    if let Some(u) = spec
        .strip_prefix("UUID=")
        .or_else(|| spec.strip_prefix("/dev/disk/by-uuid/"))
    {
        return by(&|f| eq(&f.info.uuid, &unquote(u)));
    }
    if let Some(l) = spec
        .strip_prefix("LABEL=")
        .or_else(|| spec.strip_prefix("/dev/disk/by-label/"))
    {
        return by(&|f| f.info.label.as_deref() == Some(unquote(l).as_str()));
    }
    if let Some(p) = spec
        .strip_prefix("PARTUUID=")
        .or_else(|| spec.strip_prefix("/dev/disk/by-partuuid/"))
    {
        let part = facts.partitions.iter().find(|x| {
            x.partuuid
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(&unquote(p)))
        })?;
        return by(&|f| f.partition == Some(part.number));
    }
    if let Some(m) = spec.strip_prefix("/dev/mapper/") {
        return by(&|f| {
            f.volume
                .as_deref()
                .and_then(|v| v.split_once('/'))
                .is_some_and(|(vg, lv)| {
                    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--")) == m
                })
        });
    }
    if let Some(p) = spec.strip_prefix("/dev/") {
        if let Some(i) = by(&|f| f.volume.as_deref() == Some(p)) {
            return Some(i);
        }
    }
    if let Some(l) = spec.strip_prefix("PARTLABEL=") {
        let part = facts
            .partitions
            .iter()
            .find(|x| x.name.as_deref() == Some(unquote(l).as_str()))?;
        return by(&|f| f.partition == Some(part.number));
    }
    None
}

/// `/dev/sda1`, `/dev/vdb`, `/dev/xvda2`, `/dev/hda1`, `/dev/nvme0n1p1`.
fn is_kernel_device_name(spec: &str) -> bool {
    devnames::parse(spec).is_some()
}

/// A kernel device name for `/` or `/boot` that no ECS system disk has
/// (anything but vda and nvme0n1, which some instance types have): the boot
/// stops there.
fn boot_device_name_breaks(mountpoint: &str, spec: &str) -> bool {
    matches!(mountpoint, "/" | "/boot")
        && devnames::parse(spec).is_some_and(|d| !d.is_ecs_system_disk())
}

fn fstab(tree: &mut Tree<'_, '_>, facts: &GuestFacts, sink: &mut Sink) -> Vec<FstabEntry> {
    let Some(text) = tree.text("/etc/fstab") else {
        return Vec::new();
    };
    let this_disk = devnames::this_disk(text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let spec = f.next()?;
        (!spec.starts_with('#') && f.next() == Some("/")).then_some(spec)
    }));
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let (spec, mp, fstype) = (f[0], f[1], f[2]);
        let options = f.get(3).copied().unwrap_or("defaults");
        let fs = resolve_spec(facts, spec)
            .or_else(|| devnames::resolve(facts, spec, this_disk.as_deref()));
        let by_id = [
            "UUID=",
            "LABEL=",
            "PARTUUID=",
            "PARTLABEL=",
            "/dev/disk/by-",
        ]
        .iter()
        .any(|p| spec.starts_with(p));
        let optional = options.split(',').any(|o| o == "nofail" || o == "noauto");
        if boot_device_name_breaks(mp, spec) {
            sink.push(rules::BOOT_DEVICE_NAME.finding(format!(
                "/etc/fstab mounts {mp} from {spec}; ECS names the system disk /dev/vda or /dev/nvme0n1, so the boot stops"
            )));
        } else if is_kernel_device_name(spec) {
            sink.push(rules::FSTAB_DEVICE_NAME.finding(format!(
                "/etc/fstab mounts {mp} from {spec}, a kernel device name"
            )));
        } else if by_id && fs.is_none() && fstype != "swap" && !optional {
            if mp == "/" {
                sink.push(rules::ROOT_NOT_ON_DISK.finding(format!(
                    "/etc/fstab mounts / from {spec}, which is no filesystem on this disk"
                )));
            } else {
                sink.push(rules::FSTAB_UNKNOWN.finding(format!(
                    "/etc/fstab mounts {mp} from {spec}, which is no filesystem in the image"
                )));
            }
        }
        out.push(FstabEntry {
            spec: spec.into(),
            mountpoint: mp.into(),
            fstype: fstype.into(),
            options: options.into(),
            filesystem: fs,
        });
    }
    out
}

/// Names of the modules listed in modules.dep or modules.builtin.
fn module_list(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| module_name(l.split(':').next()?.trim()))
        .collect()
}

/// CONFIG_X=y|m lines.
fn kconfig(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.strip_prefix("CONFIG_")?.split_once('=')?;
            Some((k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// modules.dep: each module and the modules it needs.
fn module_deps(text: &str) -> BTreeMap<String, Vec<String>> {
    text.lines()
        .filter_map(|l| {
            let (m, deps) = l.split_once(':')?;
            let deps = deps.split_whitespace().filter_map(module_name).collect();
            Some((module_name(m.trim())?, deps))
        })
        .collect()
}

/// The kernel versions whose module trees (`lib/modules/<v>/`, `usr/lib/modules/<v>/`) an
/// initramfs holds, with the module names under each.
fn initrd_modules(names: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for n in names {
        let n = n.strip_prefix("usr/").unwrap_or(n);
        let Some(rest) = n.strip_prefix("lib/modules/") else {
            continue;
        };
        let (v, file) = rest.split_once('/').unwrap_or((rest, ""));
        if v.is_empty() {
            continue;
        }
        let set = out.entry(v.to_string()).or_default();
        if let Some(m) = module_name(file) {
            set.insert(m);
        }
    }
    out
}

/// Where an initramfs named by a boot entry (`/initramfs-x.img $tuned_initrd`,
/// `(hd0,0)/initrd-x`) is in the tree. Microcode archives are passed over.
fn initrd_from_entry(initrds: &[String]) -> Vec<String> {
    let Some(first) = initrds
        .iter()
        .filter_map(|i| i.split_whitespace().next())
        .map(|i| i.rsplit_once(')').map_or(i, |(_, p)| p))
        .find(|i| !i.contains("ucode") && !i.starts_with('$') && i.contains('/'))
    else {
        return Vec::new();
    };
    if first.starts_with("/boot/") {
        vec![first.to_string()]
    } else {
        vec![format!("/boot{first}"), first.to_string()]
    }
}

/// Reads one kernel: its module tree, config and initramfs. `initrd_paths` are the boot
/// entry's own initramfs paths, tried before the names the distributions use. A kernel whose
/// file name has no version (`vmlinuz-linux`) takes it from the module tree in its initramfs.
fn kernel(
    tree: &mut Tree<'_, '_>,
    name: &str,
    image: String,
    initrd_paths: Vec<String>,
    sink: &mut Sink,
) -> KernelInfo {
    let mut initramfs = None;
    let mut layers = Vec::new();
    let mut listing: Option<Vec<String>> = None;
    let mut candidates = initrd_paths;
    candidates.extend([
        format!("/boot/initrd.img-{name}"),
        format!("/boot/initramfs-{name}.img"),
        format!("/boot/initrd-{name}"),
        format!("/boot/initrd-{name}.img"),
        format!("/boot/initramfs-{name}"),
    ]);
    for cand in candidates {
        match tree.read(&cand, MAX_INITRD_FILE) {
            Ok(data) => {
                initramfs = Some(cand.clone());
                match initramfs::list(&data, initramfs::MAX_UNPACKED) {
                    Ok(l) => {
                        layers = l.layers;
                        listing = Some(l.names);
                    }
                    Err(e @ initramfs::InitramfsError::TooLarge { .. }) => {
                        sink.push(rules::DECOMPRESSION_LIMIT.finding(format!("{cand}: {e}")));
                    }
                    Err(e) => sink.push(rules::INITRAMFS_UNREADABLE.finding(format!(
                        "{cand}: {e}; virtio_blk, virtio_pci and nvme in it were not checked"
                    ))),
                }
                break;
            }
            Err(FsError::NotFound) => {}
            Err(FsError::TooLarge(n)) => {
                initramfs = Some(cand.clone());
                sink.push(rules::DECOMPRESSION_LIMIT.finding(format!(
                    "{cand} is {n} bytes, over the {MAX_INITRD_FILE}-byte read limit"
                )));
                break;
            }
            Err(e) => {
                initramfs = Some(cand.clone());
                sink.push(rules::INITRAMFS_UNREADABLE.finding(format!(
                    "{cand}: {e}; virtio_blk, virtio_pci and nvme in it were not checked"
                )));
                break;
            }
        }
    }
    let by_version = listing.as_deref().map(initrd_modules).unwrap_or_default();
    // dracut's squash module keeps the modules in a squashfs inside the archive; the
    // initramfs reader lists it unless it is over its size limit.
    let squashed = listing.as_ref().and_then(|names| {
        names
            .iter()
            .find(|n| n.ends_with("squash-root.img") || n.ends_with("squash/root.img"))
            .cloned()
    });
    if let (Some(sq), Some(path), false) = (
        &squashed,
        &initramfs,
        layers.iter().any(|l| l == "squashfs"),
    ) {
        sink.push(rules::INITRAMFS_UNREADABLE.finding(format!(
            "{path} keeps its modules in {sq} (dracut's squash module, a squashfs), which is too large to read; virtio_blk, virtio_pci and nvme in it were not checked"
        )));
        listing = None;
    }
    let moddir_of = |tree: &mut Tree<'_, '_>, v: &str| {
        [format!("/lib/modules/{v}"), format!("/usr/lib/modules/{v}")]
            .into_iter()
            .find(|d| tree.exists(d))
    };
    // The version: the file name's, or (vmlinuz-linux, vmlinuz-lts) the one module tree of the
    // initramfs that the root also has.
    let mut version = name.to_string();
    let mut moddir = moddir_of(tree, name);
    if moddir.is_none() {
        let found = by_version
            .keys()
            .find_map(|v| moddir_of(tree, v).map(|d| (v.clone(), d)));
        // Arch writes the package name beside each module tree (`pkgbase`): the way to a
        // version when the initramfs could not be read.
        let found = found.or_else(|| {
            tree.list("/usr/lib/modules").into_iter().find_map(|v| {
                let d = format!("/usr/lib/modules/{v}");
                let base = tree.text(&format!("{d}/pkgbase"))?;
                (base.trim() == name).then_some((v, d))
            })
        });
        if let Some((v, d)) = found {
            version = v;
            moddir = Some(d);
        }
    }
    let modules_dir = moddir.is_some();
    let moddir = moddir.unwrap_or_else(|| format!("/lib/modules/{version}"));
    let read_text = |tree: &mut Tree<'_, '_>, file: &str| {
        tree.read(&format!("{moddir}/{file}"), MAX_MODULE_LIST)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let builtin = module_list(&read_text(tree, "modules.builtin"));
    let deps = module_deps(&read_text(tree, "modules.dep"));
    let config_text = tree
        .text(&format!("/boot/config-{version}"))
        .or_else(|| tree.text(&format!("{moddir}/config")));
    let config = config_text.as_deref().map(kconfig).unwrap_or_default();

    // Only modules built for this kernel load: another version's tree in the initramfs is
    // dead weight.
    let in_initrd: Option<BTreeSet<String>> = listing
        .as_ref()
        .map(|_| by_version.get(&version).cloned().unwrap_or_default());
    if let (Some(path), true) = (&initramfs, listing.is_some()) {
        if !by_version.is_empty() && !by_version.contains_key(&version) {
            sink.push(rules::INITRAMFS_KERNEL_MISMATCH.finding(format!(
                "{path} holds modules for kernel {}, not for {version}, the kernel it belongs to",
                by_version.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let mut drivers = Vec::new();
    for (name, sym) in DRIVERS {
        let cfg = config.get(*sym).map(String::as_str);
        let status = if builtin.contains(*name) || cfg == Some("y") {
            "builtin"
        // A module counts when modules.dep lists it; the config's `=m` only says the kernel
        // was built with it, so it decides only when there is no modules.dep to read (a
        // stripped module tree lacks what its config promises).
        } else if deps.contains_key(*name) || (cfg == Some("m") && deps.is_empty()) {
            "module"
        } else {
            "absent"
        };
        let in_initramfs = match status {
            "module" => in_initrd.as_ref().map(|s| s.contains(*name)),
            _ => None,
        };
        let missing_dependencies = match (in_initramfs, &in_initrd) {
            (Some(true), Some(inside)) => missing_deps(name, &deps, &builtin, inside),
            _ => Vec::new(),
        };
        drivers.push(DriverInfo {
            name: (*name).into(),
            kernel: status.into(),
            in_initramfs,
            at_boot: status == "builtin"
                || (in_initramfs == Some(true) && missing_dependencies.is_empty()),
            missing_dependencies,
        });
    }
    let at_boot = |n: &str| drivers.iter().any(|d| d.name == n && d.at_boot);
    let virtio_boot = at_boot("virtio_blk") && at_boot("virtio_pci");
    let nvme_boot = at_boot("nvme");
    KernelInfo {
        version,
        image,
        initramfs,
        initramfs_layers: if listing.is_some() {
            layers
        } else {
            Vec::new()
        },
        initramfs_modules: in_initrd.as_ref().map_or(0, BTreeSet::len),
        initramfs_kernels: by_version.into_keys().collect(),
        modules_dir,
        config: config_text.is_some(),
        drivers,
        virtio_boot,
        nvme_boot,
    }
}

/// The modules `name` needs (modules.dep, followed through) that are neither built in nor in
/// the initramfs.
fn missing_deps(
    name: &str,
    deps: &BTreeMap<String, Vec<String>>,
    builtin: &BTreeSet<String>,
    inside: &BTreeSet<String>,
) -> Vec<String> {
    let mut missing = Vec::new();
    let mut seen = BTreeSet::from([name.to_string()]);
    let mut todo = deps.get(name).cloned().unwrap_or_default();
    while let Some(d) = todo.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        if builtin.contains(&d) {
            continue;
        }
        if inside.contains(&d) {
            todo.extend(deps.get(&d).into_iter().flatten().cloned());
        } else {
            missing.push(d);
        }
    }
    missing.sort();
    missing
}

/// Kernel command lines from GRUB and BLS configs, and the entry the boot loader boots.
fn boot_configs(tree: &mut Tree<'_, '_>, info: &mut LinuxInfo) -> Option<DefaultEntry> {
    let mut configs = Vec::new();
    let default = bootloader::default_entry(tree, &mut configs);
    let mut cmdlines: Vec<String> = default
        .iter()
        .flat_map(|d| d.all.iter().map(|e| d.options(e)))
        .collect();
    for p in ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"] {
        if let Some(t) = tree.text(p) {
            info.boot_configs.push(p.into());
            for l in t.lines() {
                let l = l.trim();
                let mut w = l.split_whitespace();
                if matches!(w.next(), Some("linux" | "linuxefi" | "linux16")) {
                    w.next();
                    cmdlines.push(w.collect::<Vec<_>>().join(" "));
                }
            }
        }
    }
    let entries = tree.list("/boot/loader/entries");
    for e in entries.iter().filter(|e| e.ends_with(".conf")) {
        let p = format!("/boot/loader/entries/{e}");
        if let Some(t) = tree.text(&p) {
            info.boot_configs.push(p);
            for l in t.lines() {
                if let Some(o) = l.trim().strip_prefix("options") {
                    cmdlines.push(o.trim().to_string());
                }
            }
        }
    }
    if let Some(t) = tree.text("/etc/default/grub") {
        let kv = key_values(&t);
        for k in ["GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"] {
            if let Some(v) = kv.get(k) {
                cmdlines.push(v.clone());
            }
        }
    }
    for c in configs {
        if !info.boot_configs.contains(&c) {
            info.boot_configs.push(c);
        }
    }
    for c in cmdlines {
        for w in c.split_whitespace() {
            if let Some(r) = w.strip_prefix("root=") {
                if !info.kernel_roots.iter().any(|x| x == r) {
                    info.kernel_roots.push(r.to_string());
                }
            }
        }
    }
    default
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
    let root_fs = vols[root].fs_index;
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
            facts.filesystems[fi].mountpoint = Some(e.mountpoint.clone());
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
            let fs = tree.vols[vi].fs.as_deref_mut();
            match fs.map(|f| f.mount_subvolume(at, &e.options)) {
                Some(Ok(true)) if vi == root => continue,
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
    facts.filesystems[root_fs].mountpoint = Some("/".into());
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

/// Says so when virtio_scsi is usable at boot: it does not reach an ECS system disk.
fn scsi_only_note(k: &KernelInfo) -> &'static str {
    if k.drivers
        .iter()
        .any(|d| d.name == "virtio_scsi" && d.at_boot)
    {
        "; virtio_scsi is usable at boot, but ECS system disks are virtio-blk (or NVMe), which it does not drive"
    } else {
        ""
    }
}

fn describe_missing(k: &KernelInfo, names: &[&str]) -> String {
    let mut parts = Vec::new();
    for n in names {
        if let Some(d) = k.drivers.iter().find(|d| d.name == *n) {
            let s = match (d.kernel.as_str(), d.in_initramfs) {
                ("builtin", _) => "built in".to_string(),
                ("module", Some(true)) if !d.missing_dependencies.is_empty() => format!(
                    "module in the initramfs without {}, which it needs",
                    d.missing_dependencies.join(", ")
                ),
                ("module", Some(true)) => "module in the initramfs".to_string(),
                ("module", Some(false)) => "module NOT in the initramfs".to_string(),
                ("module", None) => "module (no initramfs)".to_string(),
                _ => "absent".to_string(),
            };
            parts.push(format!("{n}: {s}"));
        }
    }
    parts.join(", ")
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
