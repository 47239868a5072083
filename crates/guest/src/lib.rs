//! Offline guest inspection: what is inside a disk image, read in pure
//! userspace through [`preflight_disk::BlockRead`] (no root, loop devices or
//! VM), and whether it will boot on Alibaba Cloud ECS (KVM, virtio, NVMe).
//!
//! [`inspect`] reads the partition table (MBR with logical partitions, GPT
//! with its backup), probes every volume (ext2/3/4, XFS, FAT, NTFS, btrfs
//! read; LVM2 followed; LUKS, swap detected), finds the OS root, and reports:
//!
//! * the OS (family, distro, version, hostname), architecture and the
//!   ImportImage values `platform`, `os_type`, `architecture`, `boot_mode`,
//!   `nvme_support`;
//! * Linux: installed kernels, whether virtio_blk / virtio_scsi / virtio_pci
//!   / virtio_net / nvme are built in or modules, and whether each module is
//!   inside that kernel's initramfs (cpio newc; gzip, zstd, xz, lz4), plus
//!   Alibaba's offline-checkable rules (fstab, GRUB root=, cloud-init,
//!   qemu-guest-agent, SELinux, immutable /etc/shadow, ext4 features,
//!   CONFIG_FW_CFG_SYSFS, RTC);
//! * Windows: product and build from the SOFTWARE hive, the viostor /
//!   vioscsi / netkvm services of the current control set and their files;
//! * the boot mode: BIOS (MBR boot code, GRUB core, BIOS boot partition)
//!   and/or UEFI (ESP with a loader).
//!
//! Every problem is a [`Finding`] with a stable `GUEST.*` code; the rules
//! are listed in [`RULES`]. Nothing in the image can make it panic: corrupt
//! structures become findings, every allocation is bounded by a named limit,
//! and the third-party readers run behind a panic guard.
//!
//! Reads go through a 64 KiB-granule cache and are counted
//! ([`GuestReport::bytes_read`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod boot;
mod bootloader;
mod cache;
mod devnames;
mod exe;
mod foreign;
mod fs;
pub mod initramfs;
mod linux;
mod lvm;
mod md;
mod network;
mod part;
pub mod regf;
pub mod rpmvercmp;
mod rules;
mod windows;

pub use boot::BootInfo;
pub use fs::{FsInfo, FsKind};
pub use linux::{DriverInfo, FstabEntry, KernelInfo, LinuxInfo};
pub use network::{InterfaceConfig, NetworkInfo};
pub use part::{Partition, PartitionTable};
pub use rules::*;
pub use windows::{WindowsDriver, WindowsInfo};

use cache::{CachedDisk, View};
use fs::Fs;
use preflight_disk::BlockRead;
use preflight_report::{Finding, FindingSink};
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Findings kept per code (a badly corrupt disk gives a readable report).
const MAX_FINDINGS_PER_CODE: usize = 20;

/// Logical volumes read from one disk (a real VG has a handful).
const MAX_LOGICAL_VOLUMES: usize = 64;

/// LVM2 physical volumes read from one disk.
const MAX_PHYSICAL_VOLUMES: usize = 64;

pub(crate) type Sink = FindingSink;

/// One filesystem (or detected volume) found on the disk.
#[derive(Debug, Clone, Serialize)]
pub struct Filesystem {
    /// Partition number, or `None` for a filesystem on the whole disk.
    pub partition: Option<u32>,
    /// Offset on the disk, in bytes.
    pub start: u64,
    /// Size of the partition (or disk) that holds it.
    pub size: u64,
    /// What the first bytes say it is.
    pub kind: FsKind,
    /// What the filesystem says about itself.
    #[serde(flatten)]
    pub info: FsInfo,
    /// Where the guest mounts it, from the root's /etc/fstab.
    pub mountpoint: Option<String>,
    /// The LVM logical volume (`vg/lv`) it lives on.
    pub volume: Option<String>,
    /// udev's `dm-uuid-LVM-<vg uuid><lv uuid>` of that logical volume (uuids without dashes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dm_uuid: Option<String>,
    /// The md RAID array (`host:0`, or the uuid for metadata 0.90) whose member holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raid_array: Option<String>,
}

/// The operating system found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OsInfo {
    /// `linux` or `windows`.
    pub family: String,
    /// Distribution id (`debian`, `ubuntu`, `centos`, `rhel`, `windows`…).
    pub distro: Option<String>,
    /// Human name (`Debian GNU/Linux 12 (bookworm)`, `Windows Server 2022
    /// Datacenter`).
    pub name: Option<String>,
    /// Version as the OS writes it (`12`, `22.04`, `10.0`).
    pub version: Option<String>,
    /// Major version.
    pub major: Option<u32>,
    /// Minor version.
    pub minor: Option<u32>,
    /// Host name.
    pub hostname: Option<String>,
    /// Index in [`GuestFacts::filesystems`] of the root filesystem.
    pub root_filesystem: usize,
}

/// Everything the inspector learned. Field names are the JSON report's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GuestFacts {
    /// The partition table.
    pub partition_table: PartitionTable,
    /// Partitions, in table order.
    pub partitions: Vec<Partition>,
    /// Filesystems and volumes found.
    pub filesystems: Vec<Filesystem>,
    /// The OS, when a root was found.
    pub os: Option<OsInfo>,
    /// ImportImage `OSType`: `linux` or `windows`.
    pub os_type: Option<String>,
    /// ImportImage `Platform` (`Debian`, `Ubuntu`, `CentOS`, `Windows Server
    /// 2022`, `Others Linux`…).
    pub platform: Option<String>,
    /// ImportImage `Architecture`: `x86_64`, `i386` or `arm64`.
    pub architecture: Option<String>,
    /// ImportImage `BootMode`: `BIOS` or `UEFI`.
    pub boot_mode: Option<String>,
    /// ImportImage `Features.NvmeSupport`: `supported` or `unsupported`.
    pub nvme_support: Option<String>,
    /// How the disk boots.
    pub boot: BootInfo,
    /// Linux details.
    pub linux: Option<LinuxInfo>,
    /// Windows details.
    pub windows: Option<WindowsInfo>,
}

/// The result of [`inspect`].
#[derive(Debug, Clone, Serialize)]
pub struct GuestReport {
    /// What was found.
    pub facts: GuestFacts,
    /// Problems, with codes from [`RULES`].
    pub findings: Vec<Finding>,
    /// Bytes read from the disk (through the cache: each 64 KiB granule
    /// counts once while cached).
    pub bytes_read: u64,
}

/// A volume during inspection.
pub(crate) struct Volume<'v> {
    /// Index in `facts.filesystems`.
    pub(crate) fs_index: usize,
    pub(crate) fs: Option<Box<dyn Fs + 'v>>,
    /// Where it is, for findings: `partition 1`, `logical volume vg/root`, `the whole disk`.
    pub(crate) place: String,
    /// The reader's name for findings (`NTFS`, `ext4`…).
    pub(crate) reader: &'static str,
}

impl Volume<'_> {
    /// Drops a reader that panicked (so later steps neither repeat the panic nor trust
    /// it) and says so once: the input is at fault, the filesystem is corrupt.
    fn reader_failed(&mut self, sink: &mut Sink, unread: &mut Vec<String>, caught: &Caught) {
        self.fs = None;
        sink.push(rules::FS_CORRUPT.finding(format!(
            "{}: {} is corrupt ({caught})",
            self.place, self.reader
        )));
        unread.push(format!("{} ({})", self.place, self.reader));
    }
}

thread_local! {
    /// How many [`catch`] sections this thread is inside (the quiet hook's switch).
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    /// Where the last panic caught on this thread happened, from the quiet hook.
    static CAUGHT_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Makes the panics that [`inspect`] catches silent: they become findings, so the default
/// hook's message and backtrace on stderr are noise. Panics anywhere else, or with
/// `RUST_BACKTRACE` set (not `0`), still go to the hook that was installed before. For
/// binaries; a fuzzer's hook (which aborts on every panic) is kept by not calling this.
pub fn quiet_caught_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        let debugging = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) == 0 || debugging {
                previous(info);
            }
            if let Some(at) = info.location() {
                let file = at.file().rsplit(['/', '\\']).next().unwrap_or(at.file());
                let at = format!("{file}:{}", at.line());
                CAUGHT_AT.with(|c| *c.borrow_mut() = Some(at));
            }
        }));
    });
}

/// A panic caught by [`catch`].
pub(crate) struct Caught {
    message: String,
    /// `file.rs:line`, when [`quiet_caught_panics`] is installed.
    at: Option<String>,
}

impl std::fmt::Display for Caught {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.at {
            Some(at) => write!(f, "reader failed at {at}: {}", self.message),
            None => write!(f, "reader failed: {}", self.message),
        }
    }
}

/// Runs `f`, catching a panic in it (a bug, here or in a reader crate, that a hostile
/// input reached). Findings `f` made before panicking are kept.
pub(crate) fn catch<T>(sink: &mut Sink, f: impl FnOnce(&mut Sink) -> T) -> Result<T, Caught> {
    let mut local = Sink::new(MAX_FINDINGS_PER_CODE);
    CATCHING.with(|c| c.set(c.get() + 1));
    CAUGHT_AT.with(|c| c.borrow_mut().take());
    let r = catch_unwind(AssertUnwindSafe(|| f(&mut local)));
    CATCHING.with(|c| c.set(c.get() - 1));
    for finding in local.into_findings() {
        sink.push(finding);
    }
    r.map_err(|p| Caught {
        message: p
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default(),
        at: CAUGHT_AT.with(|c| c.borrow_mut().take()),
    })
}

/// Runs `f`, turning a panic in it into an internal-error finding (for the steps that
/// are not one filesystem's reader).
pub(crate) fn guarded<T>(sink: &mut Sink, what: &str, f: impl FnOnce(&mut Sink) -> T) -> Option<T> {
    match catch(sink, f) {
        Ok(v) => Some(v),
        Err(caught) => {
            sink.push(rules::INTERNAL.finding(format!("{what}: {caught}")));
            None
        }
    }
}

/// What the import asks of the guest, which changes what it needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InspectOptions {
    /// `--nvme-support supported`: NVMe instance types, whose system disk the
    /// guest reaches through `nvme` (Linux) or a boot-start `stornvme` (Windows).
    pub nvme_requested: bool,
}

impl InspectOptions {
    /// The options for an import's `NvmeSupport` value (`supported` requests NVMe).
    pub fn for_nvme_support(nvme_support: Option<&str>) -> Self {
        InspectOptions {
            nvme_requested: nvme_support == Some("supported"),
        }
    }
}

/// Inspects a guest disk. Never panics; corrupt structures become findings.
pub fn inspect(disk: &dyn BlockRead) -> GuestReport {
    inspect_with(disk, InspectOptions::default())
}

/// [`inspect`] for an import that asks what `options` say.
pub fn inspect_with(disk: &dyn BlockRead, options: InspectOptions) -> GuestReport {
    let cache = CachedDisk::new(disk);
    let mut sink = Sink::new(MAX_FINDINGS_PER_CODE);
    let mut facts = GuestFacts::default();
    inspect_cached(&cache, &mut facts, &mut sink, options);
    GuestReport {
        facts,
        findings: sink.into_findings(),
        bytes_read: cache.bytes_read(),
    }
}

/// Opens the whole of `disk` as a filesystem of `kind` (ext, XFS, FAT, NTFS or btrfs) and walks it:
/// every directory down to eight levels, every file up to 1 MiB read, at most 10,000 entries.
/// Returns the entries seen, or why the filesystem could not be opened. For fuzzing one
/// reader at a time and for tests; [`inspect`] reads only what it needs.
pub fn walk_filesystem(kind: FsKind, disk: &dyn BlockRead) -> Result<usize, String> {
    const MAX_ENTRIES: usize = 10_000;
    const MAX_DEPTH: usize = 8;
    let cache = CachedDisk::new(disk);
    let view = View::new(&cache, 0, cache.size());
    let (mut fs, _) = fs::open(kind, view).map_err(|e| e.to_string())?;
    let mut seen = 0usize;
    let mut dirs = vec![(String::new(), 0usize)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(names) = fs.list(if dir.is_empty() { "/" } else { &dir }) else {
            continue;
        };
        for name in names {
            if seen >= MAX_ENTRIES {
                return Ok(seen);
            }
            seen += 1;
            let path = format!("{dir}/{name}");
            let _ = fs.immutable(&path);
            if fs.is_dir(&path) {
                if depth < MAX_DEPTH {
                    dirs.push((path, depth + 1));
                }
            } else {
                let _ = fs.read(&path, 1 << 20);
            }
        }
    }
    Ok(seen)
}

/// Opens the whole of `disk` as a filesystem of `kind` and reads one file of at most `limit`
/// bytes, following symlinks (on btrfs, from the subvolume that holds the root). For tests and
/// fuzzing one reader at a time; [`inspect`] reads only what it needs.
pub fn read_filesystem_file(
    kind: FsKind,
    disk: &dyn BlockRead,
    path: &str,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let cache = CachedDisk::new(disk);
    let view = View::new(&cache, 0, cache.size());
    let (mut fs, _) = fs::open(kind, view).map_err(|e| e.to_string())?;
    fs.read(path, limit).map_err(|e| e.to_string())
}

/// The first directory on the way to a Linux or Windows root that the reader finds corrupt.
fn corrupt_root_path(fs: &mut dyn Fs) -> Option<String> {
    [
        "/",
        "/etc",
        "/usr",
        "/usr/bin",
        "/bin",
        "/Windows",
        "/Windows/System32",
    ]
    .into_iter()
    .find_map(|dir| match fs.list(dir) {
        Err(fs::FsError::Corrupt(m)) => Some(format!("directory {dir}: {m}")),
        _ => None,
    })
}

/// Reads only the partition table (MBR/GPT), with its findings.
pub fn read_partitions(disk: &dyn BlockRead) -> (PartitionTable, Vec<Partition>, Vec<Finding>) {
    let cache = CachedDisk::new(disk);
    let mut sink = Sink::new(MAX_FINDINGS_PER_CODE);
    let (table, parts) =
        guarded(&mut sink, "partition table", |s| part::read(&cache, s)).unwrap_or_default();
    (table, parts, sink.into_findings())
}

fn inspect_cached(
    cache: &CachedDisk<'_>,
    facts: &mut GuestFacts,
    sink: &mut Sink,
    options: InspectOptions,
) {
    let (table, parts) =
        guarded(sink, "partition table", |s| part::read(cache, s)).unwrap_or_default();
    facts.partition_table = table;
    facts.partitions = parts;

    let regions = regions(cache, facts, sink);
    let mut volumes: Vec<Volume<'_>> = Vec::new();
    // Encrypted volumes, and FreeBSD filesystems: (filesystem index, kind).
    let mut unread_roots: Vec<(usize, FsKind)> = Vec::new();
    // Volumes that could hold the root but could not be read: `partition 1 (NTFS)`.
    let mut unread: Vec<String> = Vec::new();
    for region in regions.iter().filter(|r| !r.md_member) {
        let (number, lv, start, len) = (region.partition, &region.volume, region.start, region.len);
        let view = View {
            disk: cache,
            start,
            len,
            extents: &region.extents,
        };
        let probed = guarded(sink, "probe", |_| {
            fs::probe(&view).or_else(|| foreign::probe(&view))
        });
        let Some(kind) = probed.flatten() else {
            continue;
        };
        let fs_index = facts.filesystems.len();
        let mut fsys = Filesystem {
            partition: number,
            start,
            size: len,
            kind,
            info: FsInfo {
                fs_type: fs::blkid_type(kind).into(),
                ..Default::default()
            },
            mountpoint: None,
            volume: lv.clone(),
            dm_uuid: region.dm_uuid.clone(),
            raid_array: region.array.clone(),
        };
        let where_ = match (&lv, &region.array, number) {
            (Some(lv), _, _) => format!("logical volume {lv}"),
            (None, Some(a), Some(n)) => format!("md array {a} (member partition {n})"),
            (None, Some(a), None) => format!("md array {a} (member: the whole disk)"),
            (None, None, Some(n)) => format!("partition {n}"),
            (None, None, None) => "the whole disk".to_string(),
        };
        let reader = fs::reader_name(kind);
        let mut opened = None;
        match kind {
            FsKind::Ext | FsKind::Xfs | FsKind::Fat | FsKind::Ntfs | FsKind::Btrfs => {
                let failed = match catch(sink, |_| fs::open(kind, view)) {
                    Ok(Ok((mut f, info))) => {
                        for (rule, note) in f.notes() {
                            sink.push(rule.finding(format!("{where_}: {note}")));
                        }
                        fsys.info = info;
                        opened = Some(f);
                        None
                    }
                    Ok(Err(e)) => Some(format!("{} on {where_}: {e}", fs::blkid_type(kind))),
                    Err(caught) => Some(format!("{where_}: {reader} is corrupt ({caught})")),
                };
                if let Some(why) = failed {
                    sink.push(rules::FS_CORRUPT.finding(why));
                    unread.push(format!("{where_} ({reader})"));
                    if let Some(info) =
                        guarded(sink, "superblock", |_| fs::raw_info(kind, &view)).flatten()
                    {
                        fsys.info = info;
                    }
                }
            }
            // A PV inside a logical volume is not followed (a crafted one
            // could point back at itself).
            FsKind::Lvm2 if lv.is_some() => sink.push(rules::FS_UNSUPPORTED.finding(format!(
                "{where_} holds another LVM2 physical volume, which is not read"
            ))),
            FsKind::Lvm2 => match &region.pv {
                Some(Ok(vg)) => {
                    let prefix = format!("{vg}/");
                    let names: Vec<&str> = regions
                        .iter()
                        .filter_map(|r| r.volume.as_deref())
                        .filter(|v| v.starts_with(&prefix))
                        .collect();
                    sink.push(rules::LVM.finding(format!(
                        "{where_} is an LVM2 physical volume of volume group {vg}; logical volumes read: {}",
                        if names.is_empty() { "none".to_string() } else { names.join(", ") }
                    )));
                    fsys.info.label = Some(vg.clone());
                }
                Some(Err(e)) => {
                    sink.push(rules::LVM.finding(format!(
                        "{where_} is an LVM2 physical volume whose metadata could not be read ({e}); its logical volumes were not inspected"
                    )));
                    unread.push(format!("{where_} ({reader})"));
                }
                None => {}
            },
            FsKind::Luks | FsKind::BitLocker => {
                unread_roots.push((fs_index, kind));
                sink.push(rules::FS_UNSUPPORTED.finding(format!(
                    "{where_} is encrypted ({}) and was not read",
                    fs::blkid_type(kind)
                )))
            }
            FsKind::Ufs | FsKind::Zfs => {
                unread_roots.push((fs_index, kind));
                sink.push(rules::FS_UNSUPPORTED.finding(format!(
                    "{where_} holds FreeBSD's {}, which is detected but not read",
                    fs::blkid_type(kind)
                )))
            }
            FsKind::Exfat => sink.push(rules::FS_UNSUPPORTED.finding(format!(
                "{where_} holds {}, which is detected but not read",
                fs::blkid_type(kind)
            ))),
            FsKind::Swap | FsKind::Iso9660 => {}
        }
        if let Some(declared) = fsys.info.declared_size {
            if declared > len {
                sink.push(rules::FS_LARGER_THAN_PARTITION.finding(format!(
                    "{} on {where_} declares {declared} bytes but the partition holds {len}",
                    fsys.info.fs_type
                )));
            }
        }
        if fsys.info.fs_type == "ext4" {
            let has = |f: &str| fsys.info.features.iter().any(|x| x == f);
            if has("64bit") {
                sink.push(
                    rules::EXT4_64BIT.finding(format!("ext4 on {where_} has the 64bit feature")),
                );
            }
            if has("project") && has("quota") {
                sink.push(rules::EXT4_PROJECT_QUOTA.finding(format!(
                    "ext4 on {where_} has both the project and quota features"
                )));
            }
        }
        facts.filesystems.push(fsys);
        volumes.push(Volume {
            fs_index,
            fs: opened,
            place: where_,
            reader,
        });
    }

    // Roots.
    let mut linux_roots = Vec::new();
    let mut windows_roots = Vec::new();
    for (i, v) in volumes.iter_mut().enumerate() {
        if let Some(f) = v.fs.as_mut() {
            let r = catch(sink, |_| {
                (linux::is_root(f.as_mut()), windows::is_root(f.as_mut()))
            });
            match r {
                Ok((true, _)) => linux_roots.push(i),
                Ok((_, true)) => windows_roots.push(i),
                Ok(_) => {}
                Err(caught) => v.reader_failed(sink, &mut unread, &caught),
            }
        }
    }
    let roots = linux_roots.len() + windows_roots.len();
    if roots > 1 {
        sink.push(rules::MULTIPLE_ROOTS.finding(format!(
            "{roots} operating system roots found (filesystems {:?}); the first was inspected",
            linux_roots
                .iter()
                .chain(&windows_roots)
                .map(|&i| volumes[i].fs_index)
                .collect::<Vec<_>>()
        )));
    }
    if let Some(&root) = linux_roots.first() {
        guarded(sink, "linux", |s| {
            linux::inspect(&mut volumes, root, facts, s, options)
        });
    } else if let Some(&root) = windows_roots.first() {
        guarded(sink, "windows", |s| {
            windows::inspect(&mut volumes, root, facts, s, options)
        });
    } else {
        // A corrupt directory on the way to /etc or /Windows hides the root: say so, so
        // the fix is a filesystem repair rather than a search for the OS.
        for v in &mut volumes {
            if let Some(f) = v.fs.as_mut() {
                match catch(sink, |_| corrupt_root_path(f.as_mut())) {
                    Ok(Some(why)) => {
                        sink.push(rules::FS_CORRUPT.finding(format!(
                            "{}: {} is corrupt ({why}); an operating system on it cannot be seen",
                            v.place, v.reader
                        )));
                        unread.push(format!("{} ({})", v.place, v.reader));
                    }
                    Ok(None) => {}
                    Err(caught) => v.reader_failed(sink, &mut unread, &caught),
                }
            }
        }
        // An encrypted or FreeBSD root is named for what it is; "import the system disk" is
        // wrong advice when the root may be on a volume that could not be read: say the
        // verdict is incomplete instead.
        if not_inspected_root(&unread_roots, facts, sink) {
            // Named above.
        } else if !unread.is_empty() {
            sink.push(rules::INCOMPLETE.finding(format!(
                "no Linux or Windows root was found, but {} could not be read; the guest checks \
                 (OS, drivers, boot) are incomplete",
                unread.join(", ")
            )));
        } else {
            let lvm = facts.filesystems.iter().any(|f| f.kind == FsKind::Lvm2);
            sink.push(rules::NO_OS.finding(if lvm {
                "no Linux or Windows root filesystem was found; the root is probably inside LVM, which is not read"
                    .to_string()
            } else {
                format!(
                    "no Linux or Windows root filesystem among {} volume(s)",
                    facts.filesystems.len()
                )
            }));
        }
    }
    guarded(sink, "boot", |s| {
        boot::inspect(cache, &mut volumes, facts, s)
    });
}

/// A volume to probe: a partition, the whole disk, an md array's data, or an LVM logical volume.
struct Region {
    partition: Option<u32>,
    /// `vg/lv` of a logical volume.
    volume: Option<String>,
    dm_uuid: Option<String>,
    /// The md array whose data this is.
    array: Option<String>,
    /// An md member: its data is the next region, this one is not probed.
    md_member: bool,
    start: u64,
    len: u64,
    /// The pieces of a logical volume on the disk.
    extents: Vec<cache::Extent>,
    /// An LVM2 PV: its volume group, or why its metadata was not read.
    pv: Option<Result<String, String>>,
}

/// Every volume of the disk: partitions (or the whole disk), the data of md
/// RAID members, then the logical volumes of every LVM2 PV found, mapped
/// across all of them.
fn regions(cache: &CachedDisk<'_>, facts: &GuestFacts, sink: &mut Sink) -> Vec<Region> {
    let plain = |partition, start, len| Region {
        partition,
        volume: None,
        dm_uuid: None,
        array: None,
        md_member: false,
        start,
        len,
        extents: Vec::new(),
        pv: None,
    };
    let mut regions: Vec<Region> = facts
        .partitions
        .iter()
        .filter(|p| p.type_name.as_deref() != Some("extended"))
        .map(|p| {
            plain(
                Some(p.number),
                p.start,
                p.size.min(cache.size().saturating_sub(p.start)),
            )
        })
        .collect();
    if regions.is_empty() && facts.partition_table.kind == "none" {
        regions.push(plain(None, 0, cache.size()));
    }
    let mut pvs = Vec::new();
    let mut i = 0;
    while i < regions.len() {
        let view = View::new(cache, regions[i].start, regions[i].len);
        // An array's data is not searched for another array.
        if regions[i].array.is_none() {
            if let Some(Some(m)) = guarded(sink, "md", |_| md::read(&view)) {
                let r = &regions[i];
                let where_ = r
                    .partition
                    .map_or("the whole disk".to_string(), |n| format!("partition {n}"));
                if m.level == 1 {
                    sink.push(rules::MD_RAID.finding(format!(
                        "{where_} is a member of md RAID1 array {} (metadata {}, {} members); its data was read, but ECS sees one plain disk",
                        m.name, m.version, m.raid_disks
                    )));
                    let mut data = plain(
                        r.partition,
                        r.start.saturating_add(m.data_offset),
                        m.data_size,
                    );
                    data.array = Some(m.name);
                    regions[i].md_member = true;
                    regions.push(data);
                } else {
                    sink.push(rules::MD_RAID.finding(format!(
                        "{where_} is a member of md RAID{} array {} (metadata {}); only RAID1 members are read, ECS sees one plain disk",
                        m.level, m.name, m.version
                    )));
                    regions[i].md_member = true;
                }
                i += 1;
                continue;
            }
        }
        if guarded(sink, "probe", |_| fs::probe(&view)).flatten() == Some(FsKind::Lvm2) {
            match guarded(sink, "lvm", |_| lvm::read(&view)) {
                Some(Ok(pv)) => {
                    regions[i].pv = Some(Ok(pv.vg.clone()));
                    if pvs.len() < MAX_PHYSICAL_VOLUMES {
                        pvs.push((regions[i].start, regions[i].len, pv));
                    }
                }
                Some(Err(e)) => regions[i].pv = Some(Err(e)),
                None => {}
            }
        }
        i += 1;
    }
    let Some((lvs, skipped)) = guarded(sink, "lvm", |_| lvm::assemble(&pvs)) else {
        return regions;
    };
    for s in &skipped {
        sink.push(
            rules::FS_UNSUPPORTED
                .finding(format!("logical volume {} was not read: {}", s.name, s.why)),
        );
    }
    for lv in lvs.into_iter().take(MAX_LOGICAL_VOLUMES) {
        // The partition of the PV that holds the LV's first extent.
        let first = lv.extents.first().map_or(0, |e| e.disk);
        let partition = regions
            .iter()
            .find(|r| {
                matches!(r.pv, Some(Ok(_)))
                    && r.start <= first
                    && first < r.start.saturating_add(r.len)
            })
            .and_then(|r| r.partition);
        let mut r = plain(partition, first, lv.len);
        r.volume = Some(lv.name);
        r.dm_uuid = Some(lv.dm_uuid);
        r.extents = lv.extents;
        regions.push(r);
    }
    regions
}

/// An encrypted root, or a FreeBSD one, when no Linux or Windows root was
/// found: says so (instead of "no operating system") and returns true.
fn not_inspected_root(unread: &[(usize, FsKind)], facts: &mut GuestFacts, sink: &mut Sink) -> bool {
    let mut said = false;
    for &(i, kind) in unread {
        let f = &facts.filesystems[i];
        let where_ = match (&f.volume, f.partition) {
            (Some(lv), _) => format!("logical volume {lv}"),
            (None, Some(n)) => format!("partition {n}"),
            (None, None) => "the whole disk".to_string(),
        };
        if matches!(kind, FsKind::Luks | FsKind::BitLocker) {
            sink.push(rules::ENCRYPTED.finding(format!(
                "{where_} is encrypted ({}); no readable root was found, so the system is inside it, and ECS cannot unlock it at boot",
                if kind == FsKind::Luks { "LUKS" } else { "BitLocker" }
            )));
            said = true;
        }
    }
    if said {
        return true;
    }
    let Some(&(i, kind)) = unread
        .iter()
        .find(|(_, k)| matches!(k, FsKind::Ufs | FsKind::Zfs))
    else {
        return false;
    };
    let where_ = facts.filesystems[i]
        .partition
        .map_or("the whole disk".to_string(), |n| format!("partition {n}"));
    sink.push(rules::OS_NOT_INSPECTED.finding(format!(
        "a FreeBSD guest ({} on {where_}); it is not inspected: drivers, boot configuration and fstab were not checked",
        if kind == FsKind::Ufs { "UFS2" } else { "ZFS" }
    )));
    facts.os = Some(OsInfo {
        family: "freebsd".into(),
        distro: Some("freebsd".into()),
        name: Some("FreeBSD".into()),
        root_filesystem: i,
        ..Default::default()
    });
    facts.platform = Some("FreeBSD".into());
    facts.os_type = Some("linux".into());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that panics on every directory, as a reader crate did on a corrupt index.
    struct PanickingFs;

    impl Fs for PanickingFs {
        fn read(&mut self, _: &str, _: u64) -> Result<Vec<u8>, fs::FsError> {
            Err(fs::FsError::NotFound)
        }
        fn list(&mut self, _: &str) -> Result<Vec<String>, fs::FsError> {
            panic!("range start index 8 out of range for slice of length 0")
        }
        fn exists(&mut self, _: &str) -> bool {
            false
        }
    }

    fn volume() -> Volume<'static> {
        Volume {
            fs_index: 0,
            fs: Some(Box::new(PanickingFs)),
            place: "partition 1".into(),
            reader: "NTFS",
        }
    }

    #[test]
    fn a_reader_panic_is_one_corrupt_finding_naming_reader_and_place() {
        quiet_caught_panics();
        let mut sink = Sink::new(MAX_FINDINGS_PER_CODE);
        let mut unread = Vec::new();
        let mut v = volume();
        for _ in 0..4 {
            let Some(f) = v.fs.as_mut() else { continue };
            if let Err(caught) = catch(&mut sink, |_| f.list("/etc")) {
                v.reader_failed(&mut sink, &mut unread, &caught);
            }
        }
        let findings = sink.into_findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
        let m = &findings[0].message;
        assert_eq!(findings[0].code, "GUEST.FilesystemCorrupt");
        assert!(
            m.starts_with("partition 1: NTFS is corrupt (reader failed at lib.rs:"),
            "{m}"
        );
        assert!(m.contains("range start index 8"), "{m}");
        assert_eq!(unread, ["partition 1 (NTFS)"]);
    }

    /// Run by `a_caught_panic_prints_nothing` in a child process, whose stderr it reads.
    #[test]
    fn caught_panic_child() {
        if std::env::var_os("PREFLIGHT_PANIC_CHILD").is_none() {
            return;
        }
        quiet_caught_panics();
        let mut sink = Sink::new(MAX_FINDINGS_PER_CODE);
        let mut fs = PanickingFs;
        if let Err(caught) = catch(&mut sink, |_| fs.list("/")) {
            println!("caught: {caught}");
        }
    }

    #[test]
    fn a_caught_panic_prints_nothing() {
        let child = |backtrace: &str| {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "tests::caught_panic_child", "--nocapture"])
                .env("PREFLIGHT_PANIC_CHILD", "1")
                .env("RUST_BACKTRACE", backtrace)
                .output()
                .unwrap();
            (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (stdout, stderr) = child("0");
        assert!(
            stdout.contains("caught: reader failed at lib.rs:"),
            "{stdout}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        // RUST_BACKTRACE=1 still shows it, for debugging.
        let (_, stderr) = child("1");
        assert!(stderr.contains("panicked at"), "{stderr}");
    }
}
