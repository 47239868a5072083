//! Storage layouts of real on-premises VMs (issue 12), each made by the real
//! tools in fixtures/guest/build-layouts.sh and checked against what those
//! tools said (layouts.env): LVM grown with lvextend over two PVs, Ubuntu's
//! dm-uuid fstab, /dev/sdX names, a separate merged /usr, logical MBR
//! partitions by PARTUUID, 4Kn MBRs, FreeBSD, LUKS and md RAID1.

mod common;

use common::*;
use preflight_guest::GuestReport;
use preflight_report::Severity;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

static LAYOUTS: OnceLock<PathBuf> = OnceLock::new();

fn image(name: &str) -> GuestReport {
    inspect_raw(&build("build-layouts.sh", &LAYOUTS).join(name))
}

fn env() -> HashMap<String, String> {
    let dir = build("build-layouts.sh", &LAYOUTS);
    std::fs::read_to_string(dir.join("layouts.env"))
        .expect("layouts.env")
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect()
}

fn messages(r: &GuestReport, code: &str) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.code == code)
        .map(|f| f.message.clone())
        .collect()
}

/// The root filesystem, which must have been found.
fn root(r: &GuestReport) -> &preflight_guest::Filesystem {
    let os = r
        .facts
        .os
        .as_ref()
        .unwrap_or_else(|| panic!("no OS: {:#?}", r.findings));
    &r.facts.filesystems[os.root_filesystem]
}

fn default_kernel_found(r: &GuestReport) {
    assert!(!has(r, "GUEST.NoKernel"), "{:#?}", r.findings);
    assert!(!has(r, "GUEST.NoBootLoader"), "{:#?}", r.findings);
    let linux = r.facts.linux.as_ref().unwrap();
    assert!(linux.kernels[0].virtio_boot, "{:#?}", linux.kernels);
}

#[test]
fn lvm_root_grown_with_lvextend_over_two_pvs_is_read() {
    let e = env();
    // What lvs/pvs said: two PVs, root in three segments (PV1, after swap on PV1, PV2).
    assert_eq!(e["GROWN_PVS"], "2");
    assert_eq!(e["GROWN_ROOT_SEGMENTS"], "3");
    let r = image("layout-lvm-grown.raw");
    assert!(!has(&r, "GUEST.NoOperatingSystem"), "{:#?}", r.findings);
    let root = root(&r);
    assert_eq!(root.volume.as_deref(), Some("grownvg/root"));
    // Its first extent is on the first PV, partition 2.
    assert_eq!(root.partition, Some(2));
    assert_eq!(
        root.info.uuid.as_deref(),
        Some(e["GROWN_ROOT_UUID"].as_str())
    );
    assert_eq!(root.size.to_string(), e["GROWN_ROOT_SIZE"]);
    let first: u64 = e["GROWN_ROOT_EXTENTS"]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(root.start, first);
    // /etc/os-release lies in the third segment, on the second PV.
    let osrel: u64 = e["GROWN_OSRELEASE_OFFSET"].parse().unwrap();
    assert!(osrel >= 2 << 20, "{osrel}");
    assert_eq!(r.facts.platform.as_deref(), Some("AlmaLinux"));
    assert_eq!(r.facts.architecture.as_deref(), Some("x86_64"));
    default_kernel_found(&r);
    // The striped LV is named, with why, as a warning.
    assert_eq!(e["GROWN_STRIPES_TYPE"], "striped");
    let skipped = messages(&r, "GUEST.FilesystemNotInspected");
    assert!(
        skipped
            .iter()
            .any(|m| m.contains("grownvg/stripes") && m.contains("striped over 2 PVs")),
        "{skipped:?}"
    );
    let lvm = messages(&r, "GUEST.Lvm");
    assert_eq!(lvm.len(), 2, "{lvm:?}");
    assert!(lvm.iter().all(|m| m.contains("grownvg/root")), "{lvm:?}");
}

#[test]
fn ubuntu_fstab_by_dm_uuid_and_dm_name_resolves() {
    let e = env();
    let r = image("layout-ubuntu-lvm.raw");
    assert!(!has(&r, "GUEST.RootNotOnSystemDisk"), "{:#?}", r.findings);
    assert!(!has(&r, "GUEST.FstabUnknownDevice"), "{:#?}", r.findings);
    let root = root(&r);
    assert_eq!(root.volume.as_deref(), Some("ubuntu-vg/ubuntu-lv"));
    assert_eq!(root.dm_uuid.as_deref(), Some(e["UBUNTU_DM_UUID"].as_str()));
    assert_eq!(
        root.info.uuid.as_deref(),
        Some(e["UBUNTU_ROOT_UUID"].as_str())
    );
    let linux = r.facts.linux.as_ref().unwrap();
    let by_mount = |mp: &str| {
        let entry = linux.fstab.iter().find(|f| f.mountpoint == mp).unwrap();
        entry.filesystem.map(|i| &r.facts.filesystems[i])
    };
    assert_eq!(
        by_mount("/").and_then(|f| f.volume.as_deref()),
        Some("ubuntu-vg/ubuntu-lv")
    );
    assert_eq!(
        by_mount("/srv").and_then(|f| f.info.uuid.as_deref()),
        Some(e["UBUNTU_SRV_UUID"].as_str())
    );
    assert_eq!(r.facts.platform.as_deref(), Some("Ubuntu"));
    default_kernel_found(&r);
}

#[test]
fn sda_names_resolve_to_the_image_and_break_boot_on_ecs() {
    let e = env();
    let r = image("layout-sda-boot.raw");
    // /boot on /dev/sda1 is partition 1: its kernel is found.
    default_kernel_found(&r);
    let linux = r.facts.linux.as_ref().unwrap();
    let boot = linux
        .fstab
        .iter()
        .find(|f| f.mountpoint == "/boot")
        .unwrap();
    let fs = &r.facts.filesystems[boot.filesystem.expect("/boot resolved")];
    assert_eq!(fs.partition, Some(1));
    assert_eq!(fs.info.uuid.as_deref(), Some(e["SDA_BOOT_UUID"].as_str()));
    assert_eq!(root(&r).partition, Some(2));
    // /, /boot and root= are errors; /dev/sdb1 (another disk) is a warning.
    let errors = messages(&r, "GUEST.BootDeviceName");
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors.iter().any(|m| m.contains("root=/dev/sda2")),
        "{errors:?}"
    );
    assert!(r
        .findings
        .iter()
        .filter(|f| f.code == "GUEST.BootDeviceName")
        .all(|f| f.severity == Severity::Error));
    let warnings = messages(&r, "GUEST.FstabDeviceName");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("/dev/sdb1"));
    assert!(!has(&r, "GUEST.FstabUnknownDevice"), "{:#?}", r.findings);
}

#[test]
fn merged_usr_on_its_own_partition_is_a_root() {
    let r = image("layout-usr-split.raw");
    assert!(!has(&r, "GUEST.NoOperatingSystem"), "{:#?}", r.findings);
    assert_eq!(root(&r).partition, Some(2));
    assert_eq!(r.facts.platform.as_deref(), Some("Fedora"));
    // /usr/bin/ls, on the /usr partition, gives the architecture.
    assert_eq!(r.facts.architecture.as_deref(), Some("x86_64"));
    // The modules are under /usr/lib/modules, on /usr.
    default_kernel_found(&r);
    let usr = r
        .facts
        .filesystems
        .iter()
        .find(|f| f.mountpoint.as_deref() == Some("/usr"))
        .unwrap();
    assert_eq!(usr.partition, Some(3));
}

#[test]
fn root_on_logical_partition_ten_by_partuuid() {
    let e = env();
    let r = image("layout-logical.raw");
    let p10 = r.facts.partitions.iter().find(|p| p.number == 10).unwrap();
    // partx (libblkid) says 1b2c3d4e-0a: hexadecimal, like Linux.
    assert_eq!(
        p10.partuuid.as_deref(),
        Some(e["LOGICAL_PARTUUID"].as_str())
    );
    assert_eq!(p10.start.to_string(), e["LOGICAL_ROOT_START"]);
    assert!(!has(&r, "GUEST.RootNotOnSystemDisk"), "{:#?}", r.findings);
    assert_eq!(root(&r).partition, Some(10));
    let linux = r.facts.linux.as_ref().unwrap();
    assert_eq!(
        linux.fstab[0].filesystem,
        Some(r.facts.os.as_ref().unwrap().root_filesystem)
    );
    let p5 = r.facts.partitions.iter().find(|p| p.number == 5).unwrap();
    assert_eq!(p5.partuuid.as_deref(), Some("1b2c3d4e-05"));
}

fn table_in_4k_sectors(label: &str) {
    let e = env();
    let r = image(&format!("layout-4kn-{label}.raw"));
    assert_eq!(r.facts.partition_table.kind, label);
    assert_eq!(r.facts.partition_table.sector_size, 4096);
    let root = root(&r);
    assert_eq!(root.info.label.as_deref(), Some("root4k"));
    let start = &e[&format!("KN_{}_ROOT_START", label.to_uppercase())];
    assert_eq!(root.start.to_string(), *start);
    let w = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.Sector4Kn")
        .unwrap();
    assert_eq!(w.severity, Severity::Warning);
    default_kernel_found(&r);
}

#[test]
fn mbr_in_4k_sectors_is_read_with_a_warning() {
    table_in_4k_sectors("mbr");
}

#[test]
fn gpt_in_4k_sectors_is_read_with_a_warning() {
    table_in_4k_sectors("gpt");
}

#[test]
fn freebsd_is_recognised_not_inspected() {
    let e = env();
    assert_eq!(e["FREEBSD_UFS_TYPE"], "ufs");
    assert_eq!(e["FREEBSD_TYPES"], "A501,A502,A503");
    let r = image("layout-freebsd.raw");
    assert!(!has(&r, "GUEST.NoOperatingSystem"), "{:#?}", r.findings);
    assert!(!has(&r, "GUEST.NoBootLoader"), "{:#?}", r.findings);
    let w = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.OsNotInspected")
        .unwrap();
    assert_eq!(w.severity, Severity::Warning);
    assert!(w.message.contains("UFS2 on partition 3"), "{}", w.message);
    assert_eq!(r.facts.platform.as_deref(), Some("FreeBSD"));
    assert_eq!(root(&r).info.fs_type, "ufs");
    let types: Vec<_> = r
        .facts
        .partitions
        .iter()
        .map(|p| p.type_name.clone())
        .collect();
    assert_eq!(
        types,
        [
            Some("freebsd-boot".into()),
            Some("freebsd-swap".into()),
            Some("freebsd-ufs".into())
        ]
    );
}

static ZFS: OnceLock<PathBuf> = OnceLock::new();

/// FreeBSD on ZFS with a real pool (zfs-fuse's `zpool create`, which blkid calls
/// zfs_member and names by its pool): recognised, platform FreeBSD, not inspected (a
/// warning), never NoOperatingSystem or NoBootLoader.
#[test]
fn freebsd_on_a_real_zfs_pool_is_recognised_not_inspected() {
    let dir = build("build-zfs.sh", &ZFS);
    let e: HashMap<String, String> = std::fs::read_to_string(dir.join("zfs.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect();
    assert_eq!(e["ZFS_TYPE"], "zfs_member");
    assert_eq!(e["ZFS_LABEL"], e["ZFS_POOL"]);
    let r = inspect_raw(&dir.join("layout-freebsd-zfs.raw"));
    assert!(!has(&r, "GUEST.NoOperatingSystem"), "{:#?}", r.findings);
    assert!(!has(&r, "GUEST.NoBootLoader"), "{:#?}", r.findings);
    let w = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.OsNotInspected")
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(w.severity, Severity::Warning);
    assert!(w.message.contains("ZFS on partition 3"), "{}", w.message);
    assert_eq!(r.facts.platform.as_deref(), Some("FreeBSD"));
    let zfs = r
        .facts
        .filesystems
        .iter()
        .find(|f| f.partition == Some(3))
        .unwrap();
    assert_eq!(zfs.info.fs_type, e["ZFS_TYPE"]);
}

#[test]
fn luks_root_is_an_encryption_error() {
    let e = env();
    assert_eq!(e["LUKS_TYPE"], "crypto_LUKS");
    let r = image("layout-luks.raw");
    assert!(!has(&r, "GUEST.NoOperatingSystem"), "{:#?}", r.findings);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.EncryptedDisk")
        .unwrap();
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message.contains("partition 2") && f.message.contains("LUKS"),
        "{}",
        f.message
    );
}

fn md_member(version: &str) {
    let e = env();
    let key = format!("MD_{}", version.replace('.', "_"));
    assert_eq!(e[&format!("{key}_VERSION")], version);
    assert_eq!(e[&format!("{key}_LEVEL")], "raid1");
    let r = image(&format!("layout-md-{version}.raw"));
    assert!(!has(&r, "GUEST.NoOperatingSystem"), "{:#?}", r.findings);
    let root = root(&r);
    let name = &e[&format!("{key}_NAME")];
    assert_eq!(root.raid_array.as_deref(), Some(name.as_str()));
    if version == "1.2" {
        let sectors: u64 = e[&format!("{key}_DATA_OFFSET")].parse().unwrap();
        assert_eq!(root.start, r.facts.partitions[0].start + sectors * 512);
    } else {
        assert_eq!(root.start, r.facts.partitions[0].start);
    }
    let w = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.MdRaidMember")
        .unwrap();
    assert_eq!(w.severity, Severity::Warning);
    assert!(w.message.contains(name.as_str()) && w.message.contains("one plain disk"));
    assert_eq!(r.facts.platform.as_deref(), Some("Rocky Linux"));
    default_kernel_found(&r);
}

#[test]
fn md_raid1_member_metadata_1_2() {
    md_member("1.2");
}

#[test]
fn md_raid1_member_metadata_1_0() {
    md_member("1.0");
}

/// A fixture with some bytes replaced.
struct Patched {
    base: preflight_disk::raw::RawImage,
    patches: std::collections::BTreeMap<u64, u8>,
}

impl Patched {
    fn new(name: &str) -> Self {
        let path = build("build-layouts.sh", &LAYOUTS).join(name);
        let src = preflight_disk::FileSource::open(&path).unwrap();
        Patched {
            base: preflight_disk::raw::RawImage::new(std::sync::Arc::new(src)),
            patches: Default::default(),
        }
    }
    fn set(&mut self, off: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            self.patches.insert(off + i as u64, b);
        }
    }
    fn partition_start(&self, number: u32) -> u64 {
        let (_, parts, _) = preflight_guest::read_partitions(self);
        parts.iter().find(|p| p.number == number).unwrap().start
    }
}

impl preflight_disk::BlockRead for Patched {
    fn size(&self) -> u64 {
        self.base.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), preflight_disk::ReadError> {
        self.base.read_at(offset, buf)?;
        for (&o, &b) in self.patches.range(offset..offset + buf.len() as u64) {
            buf[usize::try_from(o - offset).unwrap()] = b;
        }
        Ok(())
    }
}

#[test]
fn zfs_pool_member_is_freebsd_too() {
    let mut d = Patched::new("layout-freebsd.raw");
    let p3 = d.partition_start(3);
    d.set(p3 + 65536 + 1372, &[0; 4]);
    d.set(p3 + 128 * 1024, &0x00ba_b10cu64.to_le_bytes());
    let r = preflight_guest::inspect(&d);
    let w = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.OsNotInspected")
        .unwrap();
    assert!(w.message.contains("ZFS on partition 3"), "{}", w.message);
    assert!(!has(&r, "GUEST.NoOperatingSystem"));
}

#[test]
fn bitlocker_volume_is_an_encryption_error() {
    let mut d = Patched::new("layout-luks.raw");
    let p2 = d.partition_start(2);
    d.set(p2, b"\xeb\x58\x90-FVE-FS-");
    let r = preflight_guest::inspect(&d);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "GUEST.EncryptedDisk")
        .unwrap();
    assert!(f.message.contains("BitLocker"), "{}", f.message);
}

#[test]
fn lv_with_a_segment_on_a_missing_pv_is_named_not_read() {
    // Wipe the second PV's label: the root's third segment is then on no PV of this disk.
    let mut d = Patched::new("layout-lvm-grown.raw");
    let p3 = d.partition_start(3);
    d.set(p3 + 512, &[0; 8]);
    let r = preflight_guest::inspect(&d);
    let skipped = messages(&r, "GUEST.FilesystemNotInspected");
    assert!(
        skipped
            .iter()
            .any(|m| m.contains("grownvg/root") && m.contains("not on this disk")),
        "{skipped:?}"
    );
    assert!(!has(&r, "GUEST.InternalError"), "{:#?}", r.findings);
}

#[test]
fn md_superblock_pointing_past_the_member_is_ignored() {
    let mut d = Patched::new("layout-md-1.2.raw");
    let p1 = d.partition_start(1);
    d.set(p1 + 4096 + 128, &u64::MAX.to_le_bytes());
    let r = preflight_guest::inspect(&d);
    assert!(!has(&r, "GUEST.MdRaidMember"), "{:#?}", r.findings);
    assert!(!has(&r, "GUEST.InternalError"), "{:#?}", r.findings);
}
