//! /etc/fstab: each entry mapped to the image's filesystems, and device names ECS breaks.

use super::*;

/// Resolves an fstab spec to a filesystem index.
pub(super) fn resolve_spec(facts: &GuestFacts, spec: &str) -> Option<usize> {
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
pub(super) fn is_kernel_device_name(spec: &str) -> bool {
    devnames::parse(spec).is_some()
}

/// A kernel device name for `/` or `/boot` that no ECS system disk has
/// (anything but vda and nvme0n1, which some instance types have): the boot
/// stops there.
pub(super) fn boot_device_name_breaks(mountpoint: &str, spec: &str) -> bool {
    matches!(mountpoint, "/" | "/boot")
        && devnames::parse(spec).is_some_and(|d| !d.is_ecs_system_disk())
}

pub(super) fn fstab(
    tree: &mut Tree<'_, '_>,
    facts: &GuestFacts,
    sink: &mut Sink,
) -> Vec<FstabEntry> {
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
        let [spec, mp, fstype, rest @ ..] = f.as_slice() else {
            continue;
        };
        let (spec, mp, fstype) = (*spec, *mp, *fstype);
        let options = rest.first().copied().unwrap_or("defaults");
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
