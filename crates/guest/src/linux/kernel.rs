//! Kernels: their module trees, initramfs contents and the drivers usable at boot,
//! and which one the boot loader boots.

use super::*;

/// Largest modules.dep / modules.builtin read.
pub(super) const MAX_MODULE_LIST: u64 = 16 * 1024 * 1024;
/// Largest initramfs file read (compressed); real ones are 10-150 MiB.
pub(super) const MAX_INITRD_FILE: u64 = 512 * 1024 * 1024;
/// The drivers checked, with the kernel config symbol of each.
pub(crate) const DRIVERS: &[(&str, &str)] = &[
    ("virtio_blk", "VIRTIO_BLK"),
    ("virtio_scsi", "SCSI_VIRTIO"),
    ("virtio_pci", "VIRTIO_PCI"),
    ("virtio_net", "VIRTIO_NET"),
    ("nvme", "BLK_DEV_NVME"),
    ("qemu_fw_cfg", "FW_CFG_SYSFS"),
];

/// Names of the modules listed in modules.dep or modules.builtin.
pub(super) fn module_list(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| module_name(l.split(':').next()?.trim()))
        .collect()
}

/// CONFIG_X=y|m lines.
pub(super) fn kconfig(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.strip_prefix("CONFIG_")?.split_once('=')?;
            Some((k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// modules.dep: each module and the modules it needs.
pub(super) fn module_deps(text: &str) -> BTreeMap<String, Vec<String>> {
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
pub(super) fn initrd_modules(names: &[String]) -> BTreeMap<String, BTreeSet<String>> {
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
pub(super) fn initrd_from_entry(initrds: &[String]) -> Vec<String> {
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
pub(super) fn kernel(
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
            // Over one of the reader's own limits: its `GUEST.ReadLimit` note names the file
            // and says the checks that need it did not run (one finding per cause); the
            // drivers inside it are not judged.
            Err(FsError::NotRead { .. }) => {
                initramfs = Some(cand.clone());
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
pub(super) fn missing_deps(
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
pub(super) fn boot_configs(tree: &mut Tree<'_, '_>, info: &mut LinuxInfo) -> Option<DefaultEntry> {
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

/// Says so when virtio_scsi is usable at boot: it does not reach an ECS system disk.
pub(super) fn scsi_only_note(k: &KernelInfo) -> &'static str {
    if k.drivers
        .iter()
        .any(|d| d.name == "virtio_scsi" && d.at_boot)
    {
        "; virtio_scsi is usable at boot, but ECS system disks are virtio-blk (or NVMe), which it does not drive"
    } else {
        ""
    }
}

pub(super) fn describe_missing(k: &KernelInfo, names: &[&str]) -> String {
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
