//! Kernel device names (`/dev/sda1`, `/dev/xvdb`, `/dev/nvme0n1p2`) in fstab
//! and on the kernel command line: which partition of the image they mean,
//! and whether the name survives on ECS, whose system disk is `/dev/vda`
//! (virtio-blk) or `/dev/nvme0n1` (NVMe instance types).

/// A kernel device name split into its disk and partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceName {
    /// `sda`, `xvdb`, `nvme0n1`.
    pub(crate) disk: String,
    /// Partition number, `None` for the whole disk.
    pub(crate) partition: Option<u32>,
}

impl DeviceName {
    /// The ECS system disk has this name on some instance types: `vda`
    /// (virtio-blk) or `nvme0n1` (NVMe); every other name is gone there.
    pub(crate) fn is_ecs_system_disk(&self) -> bool {
        self.disk == "vda" || self.disk == "nvme0n1"
    }
}

/// Parses `/dev/sdXN`, `/dev/hdXN`, `/dev/vdXN`, `/dev/xvdXN` and
/// `/dev/nvmeXnY[pZ]`.
pub(crate) fn parse(spec: &str) -> Option<DeviceName> {
    let rest = spec.strip_prefix("/dev/")?;
    if let Some(nv) = rest.strip_prefix("nvme") {
        let (ctrl, tail) = split_digits(nv);
        let tail = tail.strip_prefix('n')?;
        let (ns, tail) = split_digits(tail);
        if ctrl.is_empty() || ns.is_empty() {
            return None;
        }
        let disk = format!("nvme{ctrl}n{ns}");
        return match tail {
            "" => Some(DeviceName {
                disk,
                partition: None,
            }),
            t => {
                let p = t.strip_prefix('p')?;
                Some(DeviceName {
                    disk,
                    partition: Some(p.parse().ok()?),
                })
            }
        };
    }
    let prefix = ["xvd", "sd", "hd", "vd"]
        .into_iter()
        .find(|p| rest.starts_with(p))?;
    let tail = &rest[prefix.len()..];
    let letters: String = tail.chars().take_while(char::is_ascii_lowercase).collect();
    let digits = &tail[letters.len()..];
    if letters.is_empty() || letters.len() > 3 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(DeviceName {
        disk: format!("{prefix}{letters}"),
        partition: if digits.is_empty() {
            None
        } else {
            Some(digits.parse().ok()?)
        },
    })
}

fn split_digits(s: &str) -> (&str, &str) {
    let n = s.chars().take_while(char::is_ascii_digit).count();
    s.split_at(n)
}

/// The first disk of each naming scheme: the image is that disk unless the
/// fstab's `/` says otherwise.
pub(crate) fn is_first_disk(disk: &str) -> bool {
    matches!(disk, "sda" | "hda" | "vda" | "xvda" | "nvme0n1")
}

/// Resolves the fstab names the LVM metadata and the partition table answer
/// and [`crate::linux`]'s UUID/LABEL lookup does not: udev's
/// `/dev/disk/by-id/dm-uuid-LVM-<vg uuid><lv uuid>` (how curtin writes
/// Ubuntu Server's fstab) and `/dev/disk/by-id/dm-name-<vg>-<lv>`, and kernel
/// names of the image's own partitions (`this_disk` is the disk the image
/// was, e.g. `sda`).
pub(crate) fn resolve(
    facts: &crate::GuestFacts,
    spec: &str,
    this_disk: Option<&str>,
) -> Option<usize> {
    let fss = &facts.filesystems;
    if let Some(u) = spec.strip_prefix("/dev/disk/by-id/dm-uuid-LVM-") {
        return fss.iter().position(|f| {
            f.dm_uuid
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(u))
        });
    }
    if let Some(m) = spec.strip_prefix("/dev/disk/by-id/dm-name-") {
        return fss.iter().position(|f| {
            f.volume
                .as_deref()
                .and_then(|v| v.split_once('/'))
                .is_some_and(|(vg, lv)| {
                    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--")) == m
                })
        });
    }
    let name = parse(spec)?;
    let ours = this_disk.map_or_else(|| is_first_disk(&name.disk), |d| d == name.disk);
    if !ours {
        return None;
    }
    fss.iter()
        .position(|f| f.partition == name.partition && f.volume.is_none() && f.raid_array.is_none())
}

/// The disk the image was in its VM, when fstab's `/` names it (else the
/// first disk of any naming scheme is taken to be the image).
pub(crate) fn this_disk(root_spec: Option<&str>) -> Option<String> {
    root_spec.and_then(parse).map(|d| d.disk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let d = |s: &str| parse(s).map(|d| (d.disk, d.partition));
        assert_eq!(d("/dev/sda1"), Some(("sda".into(), Some(1))));
        assert_eq!(d("/dev/xvdb12"), Some(("xvdb".into(), Some(12))));
        assert_eq!(d("/dev/hda"), Some(("hda".into(), None)));
        assert_eq!(d("/dev/nvme0n1p2"), Some(("nvme0n1".into(), Some(2))));
        assert_eq!(d("/dev/nvme1n1"), Some(("nvme1n1".into(), None)));
        assert_eq!(d("/dev/sr0"), None);
        assert_eq!(d("/dev/mapper/vg-root"), None);
        assert_eq!(d("/dev/sda1x"), None);
        assert_eq!(d("/dev/nvme0n1q1"), None);
        assert!(parse("/dev/vda2").unwrap().is_ecs_system_disk());
        assert!(parse("/dev/nvme0n1p2").unwrap().is_ecs_system_disk());
        assert!(!parse("/dev/vdb1").unwrap().is_ecs_system_disk());
        assert!(!parse("/dev/sda1").unwrap().is_ecs_system_disk());
    }
}
