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
// Every byte comes from a hostile image: an index out of range would be a panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod boot;
mod bootloader;
mod bytes;
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
#[cfg(test)]
mod test_fixtures;
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
    /// Makes findings of the reader's notes not taken yet; true if one says a path was
    /// not read over the inspector's limits.
    fn take_notes(&mut self, sink: &mut Sink) -> bool {
        let Some(f) = self.fs.as_mut() else {
            return false;
        };
        let notes = match catch(sink, |_| f.notes()) {
            Ok(notes) => notes,
            Err(_) => return false,
        };
        let mut limited = false;
        for (rule, note) in notes {
            limited |= rule.code == rules::READ_LIMIT.code;
            sink.push(rule.finding(format!("{}: {note}", self.place)));
        }
        limited
    }

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
    /// The volume (its `fs_index`) whose reader is running on this thread. A panic leaves
    /// it set as it unwinds, so [`catch`] knows which volume's reader failed.
    static IN_READER: Cell<Option<usize>> = const { Cell::new(None) };
}

/// A volume's reader that marks itself as running while it runs, so a panic caught in a
/// step over several volumes (the Linux or Windows inspection, the boot checks, btrfs
/// subvolume mounts) is blamed on the volume whose reader failed.
struct MarkedFs<'v> {
    inner: Box<dyn Fs + 'v>,
    fs_index: usize,
}

impl MarkedFs<'_> {
    fn run<T>(&mut self, f: impl FnOnce(&mut dyn Fs) -> T) -> T {
        let outer = IN_READER.with(|r| r.replace(Some(self.fs_index)));
        let result = f(self.inner.as_mut());
        // Not reached on a panic: the mark stays for `catch`.
        IN_READER.with(|r| r.set(outer));
        result
    }
}

impl Fs for MarkedFs<'_> {
    fn read(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, fs::FsError> {
        self.run(|f| f.read(path, limit))
    }
    fn list(&mut self, path: &str) -> Result<Vec<String>, fs::FsError> {
        self.run(|f| f.list(path))
    }
    fn list_typed(&mut self, path: &str) -> Result<Vec<(String, bool)>, fs::FsError> {
        self.run(|f| f.list_typed(path))
    }
    fn exists(&mut self, path: &str) -> bool {
        self.run(|f| f.exists(path))
    }
    fn is_dir(&mut self, path: &str) -> bool {
        self.run(|f| f.is_dir(path))
    }
    fn immutable(&mut self, path: &str) -> Option<bool> {
        self.run(|f| f.immutable(path))
    }
    fn notes(&mut self) -> Vec<(&'static preflight_report::Rule, String)> {
        self.run(|f| f.notes())
    }
    fn mount_subvolume(&mut self, at: &str, options: &str) -> Result<bool, fs::FsError> {
        self.run(|f| f.mount_subvolume(at, options))
    }
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
    /// The `fs_index` of the volume whose (marked) reader was running when it panicked.
    in_reader: Option<usize>,
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
    let outer_reader = IN_READER.with(|r| r.replace(None));
    let r = catch_unwind(AssertUnwindSafe(|| f(&mut local)));
    let in_reader = IN_READER.with(|r| r.replace(outer_reader));
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
        in_reader,
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

/// Runs `step` (the Linux or Windows inspection, the boot checks), which reads several
/// volumes. A panic in one volume's reader drops that reader, is that filesystem's
/// `GUEST.FilesystemCorrupt` finding, and makes the verdict incomplete
/// (`GUEST.InspectionIncomplete`), as for a single volume; a panic outside every reader is
/// our bug, an internal error.
fn guarded_volumes<'v, T>(
    sink: &mut Sink,
    what: &str,
    volumes: &mut [Volume<'v>],
    unread: &mut Vec<String>,
    step: impl FnOnce(&mut [Volume<'v>], &mut Sink) -> T,
) -> Option<T> {
    let caught = match catch(sink, |s| step(volumes, s)) {
        Ok(v) => return Some(v),
        Err(caught) => caught,
    };
    let Some(v) = caught
        .in_reader
        .and_then(|i| volumes.iter_mut().find(|v| v.fs_index == i))
    else {
        sink.push(rules::INTERNAL.finding(format!("{what}: {caught}")));
        return None;
    };
    v.reader_failed(sink, unread, &caught);
    sink.push(rules::INCOMPLETE.finding(format!(
        "the {what} checks stopped because {} ({}) could not be read; the guest checks \
         (OS, drivers, boot) are incomplete",
        v.place, v.reader
    )));
    None
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
    inspect_cached(&cache, &mut facts, &mut sink, &METADATA_READERS, options);
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
    let cache = CachedDisk::new(disk);
    let view = View::new(&cache, 0, cache.size());
    let (mut fs, _) = fs::open(kind, view).map_err(|e| e.to_string())?;
    Ok(fs.walk(fs::WalkLimits {
        max_entries: 10_000,
        max_depth: 8,
        file_limit: 1 << 20,
    }))
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
    readers: &MetadataReaders,
    options: InspectOptions,
) {
    let (table, parts) =
        guarded(sink, "partition table", |s| part::read(cache, s)).unwrap_or_default();
    facts.partition_table = table;
    facts.partitions = parts;

    // Volumes that could hold the root but could not be read: `partition 1 (NTFS)`.
    let mut unread: Vec<String> = Vec::new();
    // Volumes read only in part, over the inspector's own limits (`GUEST.ReadLimit`).
    let mut limited: Vec<String> = Vec::new();
    let regions = regions(cache, facts, sink, &mut unread, readers);
    let mut volumes: Vec<Volume<'_>> = Vec::new();
    // Encrypted volumes, and FreeBSD filesystems: (filesystem index, kind).
    let mut unread_roots: Vec<(usize, FsKind)> = Vec::new();
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
        let where_ = region.place();
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
                        opened = Some(Box::new(MarkedFs { inner: f, fs_index }) as Box<dyn Fs>);
                        None
                    }
                    // Our limit, not the filesystem's fault: a warning, the verdict incomplete.
                    Ok(Err(e @ fs::FsError::NotRead { .. })) => {
                        sink.push(rules::READ_LIMIT.finding(format!(
                            "{where_}: {reader}: {e}; the filesystem was not inspected and the verdict is incomplete"
                        )));
                        limited.push(format!("{where_} ({reader})"));
                        None
                    }
                    Ok(Err(e)) => Some(format!("{} on {where_}: {e}", fs::blkid_type(kind))),
                    Err(caught) => Some(format!("{where_}: {reader} is corrupt ({caught})")),
                };
                if let Some(why) = failed {
                    sink.push(rules::FS_CORRUPT.finding(why));
                    unread.push(format!("{where_} ({reader})"));
                }
                if opened.is_none() {
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
                .filter_map(|&i| volumes.get(i).map(|v| v.fs_index))
                .collect::<Vec<_>>()
        )));
    }
    if let Some(&root) = linux_roots.first() {
        guarded_volumes(sink, "Linux", &mut volumes, &mut unread, |v, s| {
            linux::inspect(v, root, facts, s, options)
        });
    } else if let Some(&root) = windows_roots.first() {
        guarded_volumes(sink, "Windows", &mut volumes, &mut unread, |v, s| {
            windows::inspect(v, root, facts, s, options)
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
                // A root behind a path over our limits is not absent: the verdict is incomplete.
                if v.take_notes(sink) {
                    limited.push(format!("{} ({})", v.place, v.reader));
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
        } else if !limited.is_empty() {
            sink.push(rules::READ_LIMIT.finding(format!(
                "no Linux or Windows root was found, but {} was read only in part (over the \
                 inspector's limits); the guest checks (OS, drivers, boot) did not run and the \
                 verdict is incomplete",
                limited.join(", ")
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
    guarded_volumes(sink, "boot", &mut volumes, &mut unread, |v, s| {
        boot::inspect(cache, v, facts, s)
    });
    // What the readers left unread over their limits while the checks ran.
    for v in &mut volumes {
        v.take_notes(sink);
    }
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

impl Region {
    /// Where it is, for findings: `partition 1`, `logical volume vg/root`, `the whole disk`.
    fn place(&self) -> String {
        match (&self.volume, &self.array, self.partition) {
            (Some(lv), _, _) => format!("logical volume {lv}"),
            (None, Some(a), Some(n)) => format!("md array {a} (member partition {n})"),
            (None, Some(a), None) => format!("md array {a} (member: the whole disk)"),
            (None, None, Some(n)) => format!("partition {n}"),
            (None, None, None) => "the whole disk".to_string(),
        }
    }
}

/// The readers of volume-manager metadata that [`regions`] runs. Tests swap in one that
/// panics, as no known input makes the real ones panic.
struct MetadataReaders {
    md: fn(&View<'_, '_>) -> Option<md::Member>,
    lvm: fn(&View<'_, '_>) -> Result<lvm::PhysicalVolume, String>,
    assemble: fn(&[(u64, u64, lvm::PhysicalVolume)]) -> Assembled,
}

/// The logical volumes mapped, and those skipped with why.
type Assembled = (Vec<lvm::LogicalVolume>, Vec<lvm::SkippedVolume>);

/// The readers [`inspect`] uses.
const METADATA_READERS: MetadataReaders = MetadataReaders {
    md: md::read,
    lvm: lvm::read,
    assemble: lvm::assemble,
};

/// Every volume of the disk: partitions (or the whole disk), the data of md
/// RAID members, then the logical volumes of every LVM2 PV found, mapped
/// across all of them.
/// A reader panic on volume-manager metadata is that volume's `GUEST.FilesystemCorrupt`
/// finding, and the volume is one that could not be read.
fn regions(
    cache: &CachedDisk<'_>,
    facts: &GuestFacts,
    sink: &mut Sink,
    unread: &mut Vec<String>,
    readers: &MetadataReaders,
) -> Vec<Region> {
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
    while let Some(region) = regions.get_mut(i) {
        let view = View::new(cache, region.start, region.len);
        // An array's data is not searched for another array.
        if region.array.is_none() {
            let member = match catch(sink, |_| (readers.md)(&view)) {
                Ok(m) => m,
                Err(caught) => {
                    let where_ = region.place();
                    sink.push(
                        rules::FS_CORRUPT
                            .finding(format!("{where_}: md RAID metadata is corrupt ({caught})")),
                    );
                    unread.push(format!("{where_} (md RAID metadata)"));
                    None
                }
            };
            if let Some(m) = member {
                let where_ = region.place();
                if m.level == 1 {
                    sink.push(rules::MD_RAID.finding(format!(
                        "{where_} is a member of md RAID1 array {} (metadata {}, {} members); its data was read, but ECS sees one plain disk",
                        m.name, m.version, m.raid_disks
                    )));
                    let mut data = plain(
                        region.partition,
                        region.start.saturating_add(m.data_offset),
                        m.data_size,
                    );
                    data.array = Some(m.name);
                    region.md_member = true;
                    regions.push(data);
                } else {
                    sink.push(rules::MD_RAID.finding(format!(
                        "{where_} is a member of md RAID{} array {} (metadata {}); only RAID1 members are read, ECS sees one plain disk",
                        m.level, m.name, m.version
                    )));
                    region.md_member = true;
                }
                i += 1;
                continue;
            }
        }
        if guarded(sink, "probe", |_| fs::probe(&view)).flatten() == Some(FsKind::Lvm2) {
            match catch(sink, |_| (readers.lvm)(&view)) {
                Ok(Ok(pv)) => {
                    region.pv = Some(Ok(pv.vg.clone()));
                    if pvs.len() < MAX_PHYSICAL_VOLUMES {
                        pvs.push((region.start, region.len, pv));
                    }
                }
                Ok(Err(e)) => region.pv = Some(Err(e)),
                Err(caught) => {
                    let where_ = region.place();
                    sink.push(rules::FS_CORRUPT.finding(format!(
                        "{where_}: LVM2 metadata is corrupt ({caught}); its logical volumes were not inspected"
                    )));
                    unread.push(format!("{where_} (LVM2 metadata)"));
                }
            }
        }
        i += 1;
    }
    let (lvs, skipped) = match catch(sink, |_| (readers.assemble)(&pvs)) {
        Ok(mapped) => mapped,
        Err(caught) => {
            // The volume groups span these PVs: one finding names them all.
            let places: Vec<String> = regions
                .iter_mut()
                .filter(|r| matches!(r.pv, Some(Ok(_))))
                .map(|r| {
                    r.pv = None;
                    r.place()
                })
                .collect();
            let places = places.join(", ");
            sink.push(rules::FS_CORRUPT.finding(format!(
                "{places}: LVM2 metadata is corrupt ({caught}); no logical volume was inspected"
            )));
            unread.push(format!("{places} (LVM2 metadata)"));
            return regions;
        }
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
        let Some(f) = facts.filesystems.get(i) else {
            continue;
        };
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
    let where_ = facts
        .filesystems
        .get(i)
        .and_then(|f| f.partition)
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

    /// A reader that reads nothing and panics nowhere.
    struct EmptyFs;

    impl Fs for EmptyFs {
        fn read(&mut self, _: &str, _: u64) -> Result<Vec<u8>, fs::FsError> {
            Err(fs::FsError::NotFound)
        }
        fn list(&mut self, _: &str) -> Result<Vec<String>, fs::FsError> {
            Ok(Vec::new())
        }
        fn exists(&mut self, _: &str) -> bool {
            false
        }
    }

    /// Two volumes as `inspect` opens them: marked readers, the second one panicking.
    fn two_volumes() -> Vec<Volume<'static>> {
        let marked = |inner: Box<dyn Fs>, fs_index: usize| -> Option<Box<dyn Fs>> {
            Some(Box::new(MarkedFs { inner, fs_index }))
        };
        vec![
            Volume {
                fs_index: 0,
                fs: marked(Box::new(EmptyFs), 0),
                place: "partition 1".into(),
                reader: "ext4",
            },
            Volume {
                fs_index: 1,
                fs: marked(Box::new(PanickingFs), 1),
                place: "partition 2".into(),
                reader: "NTFS",
            },
        ]
    }

    fn codes(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn a_reader_panic_in_a_step_over_several_volumes_blames_that_volume() {
        quiet_caught_panics();
        let mut sink = Sink::new(MAX_FINDINGS_PER_CODE);
        let mut unread = Vec::new();
        let mut volumes = two_volumes();
        // As the Linux step does: read the root, then a filesystem fstab names.
        let r = guarded_volumes(&mut sink, "Linux", &mut volumes, &mut unread, |v, _| {
            for vol in v.iter_mut() {
                let _ = vol.fs.as_mut().map(|f| f.list("/boot"));
            }
        });
        assert!(r.is_none());
        let findings = sink.into_findings();
        assert_eq!(
            codes(&findings),
            ["GUEST.FilesystemCorrupt", "GUEST.InspectionIncomplete"],
            "{findings:?}"
        );
        let m = &findings[0].message;
        assert!(
            m.starts_with("partition 2: NTFS is corrupt (reader failed at lib.rs:"),
            "{m}"
        );
        assert!(
            findings[1]
                .message
                .starts_with("the Linux checks stopped because partition 2 (NTFS)"),
            "{}",
            findings[1].message
        );
        assert!(volumes[0].fs.is_some() && volumes[1].fs.is_none());
        assert_eq!(unread, ["partition 2 (NTFS)"]);
    }

    #[test]
    fn a_panic_outside_every_reader_is_an_internal_error() {
        quiet_caught_panics();
        let mut sink = Sink::new(MAX_FINDINGS_PER_CODE);
        let mut unread = Vec::new();
        let mut volumes = two_volumes();
        guarded_volumes(&mut sink, "boot", &mut volumes, &mut unread, |v, _| {
            // A reader call that returned, then our own bug.
            let _ = v[0].fs.as_mut().map(|f| f.list("/"));
            let fields: Vec<u8> = Vec::new();
            fields[std::hint::black_box(3)]
        });
        let findings = sink.into_findings();
        assert_eq!(codes(&findings), ["GUEST.InternalError"], "{findings:?}");
        assert!(findings[0]
            .message
            .starts_with("boot: reader failed at lib.rs:"));
        assert!(volumes.iter().all(|v| v.fs.is_some()) && unread.is_empty());
    }

    /// A disk with an MBR whose partition 1 (at 1 MiB, 1 MiB long) starts with `volume`.
    fn mbr_disk(volume: &[u8]) -> preflight_disk::raw::RawImage {
        let mut d = vec![0u8; 2 << 20];
        let e = 446;
        d[e + 4] = 0x8e;
        d[e + 8..e + 12].copy_from_slice(&2048u32.to_le_bytes());
        d[e + 12..e + 16].copy_from_slice(&2048u32.to_le_bytes());
        d[510] = 0x55;
        d[511] = 0xaa;
        d[1 << 20..(1 << 20) + volume.len()].copy_from_slice(volume);
        preflight_disk::raw::RawImage::new(std::sync::Arc::new(d))
    }

    /// An LVM2 PV label in sector 1, so the probe sends the partition to the LVM reader.
    fn pv_label() -> Vec<u8> {
        let mut v = vec![0u8; 1024];
        v[512..520].copy_from_slice(b"LABELONE");
        v[512 + 24..512 + 32].copy_from_slice(b"LVM2 001");
        v
    }

    fn inspect_with(disk: &dyn BlockRead, readers: &MetadataReaders) -> Vec<Finding> {
        quiet_caught_panics();
        let cache = CachedDisk::new(disk);
        let mut sink = Sink::new(MAX_FINDINGS_PER_CODE);
        let mut facts = GuestFacts::default();
        inspect_cached(
            &cache,
            &mut facts,
            &mut sink,
            readers,
            InspectOptions::default(),
        );
        sink.into_findings()
    }

    fn no_md(_: &View<'_, '_>) -> Option<md::Member> {
        None
    }
    fn panicking_md(_: &View<'_, '_>) -> Option<md::Member> {
        panic!("index out of bounds in the md superblock")
    }
    fn panicking_lvm(_: &View<'_, '_>) -> Result<lvm::PhysicalVolume, String> {
        panic!("index out of bounds in the LVM metadata")
    }
    fn one_pv(_: &View<'_, '_>) -> Result<lvm::PhysicalVolume, String> {
        lvm::parse_metadata(
            r#"vg0 { id = "v" seqno = 1 extent_size = 8 physical_volumes { pv0 { id = "p" pe_start = 2048 } } }"#,
            "p",
        )
    }
    fn panicking_assemble(_: &[(u64, u64, lvm::PhysicalVolume)]) -> Assembled {
        panic!("extent arithmetic overflowed")
    }

    #[test]
    fn a_panic_in_the_lvm_reader_is_that_partition_being_corrupt() {
        let findings = inspect_with(
            &mbr_disk(&pv_label()),
            &MetadataReaders {
                md: no_md,
                lvm: panicking_lvm,
                assemble: lvm::assemble,
            },
        );
        let m: Vec<String> = findings
            .iter()
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect();
        assert!(!codes(&findings).contains(&"GUEST.InternalError"), "{m:?}");
        assert!(
            m.iter().any(|m| m.starts_with(
                "GUEST.FilesystemCorrupt: partition 1: LVM2 metadata is corrupt (reader failed at lib.rs:"
            ) && m.contains("index out of bounds in the LVM metadata")),
            "{m:?}"
        );
        // No root, and a volume that could hold it was not read: incomplete, not "no OS".
        assert!(
            m.iter()
                .any(|m| m.starts_with("GUEST.InspectionIncomplete: ")
                    && m.contains("partition 1 (LVM2 metadata) could not be read")),
            "{m:?}"
        );
        assert!(
            !codes(&findings).contains(&"GUEST.NoOperatingSystem"),
            "{m:?}"
        );
    }

    #[test]
    fn a_panic_assembling_the_volume_group_names_its_physical_volumes() {
        let findings = inspect_with(
            &mbr_disk(&pv_label()),
            &MetadataReaders {
                md: no_md,
                lvm: one_pv,
                assemble: panicking_assemble,
            },
        );
        let m: Vec<String> = findings
            .iter()
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect();
        assert!(!codes(&findings).contains(&"GUEST.InternalError"), "{m:?}");
        assert!(
            m.iter().any(|m| m.starts_with(
                "GUEST.FilesystemCorrupt: partition 1: LVM2 metadata is corrupt (reader failed at lib.rs:"
            ) && m.contains("no logical volume was inspected")),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|m| m.starts_with("GUEST.InspectionIncomplete: ")),
            "{m:?}"
        );
    }

    #[test]
    fn a_panic_in_the_md_reader_is_that_volume_being_corrupt() {
        let disk = preflight_disk::raw::RawImage::new(std::sync::Arc::new(vec![0u8; 1 << 20]));
        let findings = inspect_with(
            &disk,
            &MetadataReaders {
                md: panicking_md,
                lvm: lvm::read,
                assemble: lvm::assemble,
            },
        );
        let m: Vec<String> = findings
            .iter()
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect();
        assert!(!codes(&findings).contains(&"GUEST.InternalError"), "{m:?}");
        assert!(
            m.iter().any(|m| m.starts_with(
                "GUEST.FilesystemCorrupt: the whole disk: md RAID metadata is corrupt (reader failed at lib.rs:"
            )),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|m| m.starts_with("GUEST.InspectionIncomplete: ")
                    && m.contains("the whole disk (md RAID metadata)")),
            "{m:?}"
        );
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

    /// A sound ext4 made by mkfs.ext4 whose /etc needs more of the disk at once than
    /// the reader's store keeps: that is our limit, so a warning naming /etc and an
    /// incomplete verdict, never `GUEST.FilesystemCorrupt` or another error.
    #[test]
    fn an_ext4_lookup_over_the_store_limit_is_a_warning_not_corrupt() {
        let img =
            crate::test_fixtures::fixture_image("build-ext4-scattered.sh", "fs-ext4-scattered.raw");

        // 128 KiB: the filesystem opens, but listing /etc (each entry a symlink to
        // follow, from an inode table far from the directory's) needs more at once.
        // (512 KiB is enough since each symlink is followed on its own.)
        fs::ext4::TEST_STORE_CHUNKS.with(|c| c.set(Some(2)));
        let r = inspect(&img);
        fs::ext4::TEST_STORE_CHUNKS.with(|c| c.set(None));
        let errors: Vec<&Finding> = r.findings.iter().filter(|f| f.is_error()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let unread = r
            .findings
            .iter()
            .find(|f| f.code == "GUEST.ReadLimit" && f.message.contains("/etc was not read"))
            .unwrap_or_else(|| panic!("no ReadLimit finding for /etc: {:#?}", r.findings));
        assert_eq!(unread.severity, preflight_report::Severity::Warning);
        assert!(
            unread
                .message
                .starts_with("partition 1: ext4: /etc was not read: "),
            "{}",
            unread.message
        );
        assert!(unread.message.contains("128 KiB"), "{}", unread.message);
        assert!(
            unread.message.contains("the verdict is incomplete"),
            "{}",
            unread.message
        );
        // No root was seen, and the finding says why rather than "no operating system".
        assert!(r.findings.iter().any(|f| f.code == "GUEST.ReadLimit"
            && f.message.starts_with("no Linux or Windows root was found")));

        // With the real store the same filesystem is read whole: the root is there.
        let r = inspect(&img);
        assert!(
            !r.findings.iter().any(|f| f.code == "GUEST.ReadLimit"),
            "{:#?}",
            r.findings
        );
        assert_eq!(
            r.facts.os.as_ref().and_then(|o| o.distro.as_deref()),
            Some("debian")
        );
    }
}
