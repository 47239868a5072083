//! A Windows root: product and build from the SOFTWARE hive; the virtio
//! storage and network services of the current control set and their files
//! from SYSTEM; architecture from the PE header of cmd.exe.

use crate::fs::{Fs, FsError};
use crate::regf::{Hive, HiveError, Key};
use crate::{exe, rules, GuestFacts, OsInfo, Sink, Volume};
use serde::Serialize;

/// Largest hive read (a big SOFTWARE hive is 100-200 MiB).
const MAX_HIVE: u64 = 512 * 1024 * 1024;
/// Largest executable read for its PE header.
const MAX_EXE: u64 = 64 * 1024 * 1024;

/// Services checked, with the driver file of each.
const SERVICES: &[&str] = &["viostor", "vioscsi", "netkvm", "stornvme"];

/// One driver service.
#[derive(Debug, Clone, Serialize)]
pub struct WindowsDriver {
    /// Service name (`viostor`).
    pub service: String,
    /// The service key exists in the current control set.
    pub registered: bool,
    /// `Start` (0 boot, 1 system, 2 automatic, 3 manual, 4 disabled).
    pub start: Option<u32>,
    /// `ImagePath`.
    pub image_path: Option<String>,
    /// `System32\drivers\<service>.sys` exists.
    pub file_present: bool,
}

/// Windows details.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WindowsInfo {
    /// The system root (`/Windows`).
    pub systemroot: String,
    /// `ProductName`.
    pub product_name: Option<String>,
    /// `EditionID`.
    pub edition: Option<String>,
    /// `InstallationType` (`Server`, `Client`).
    pub installation_type: Option<String>,
    /// `CurrentBuildNumber`.
    pub build: Option<String>,
    /// `DisplayVersion` (`21H2`).
    pub display_version: Option<String>,
    /// The current control set (`ControlSet001`).
    pub control_set: Option<String>,
    /// Driver services.
    pub drivers: Vec<WindowsDriver>,
    /// A hive was dirty (pending .LOG changes not read).
    pub dirty_hives: Vec<String>,
}

/// True when the filesystem holds a Windows system root.
pub(crate) fn is_root(fs: &mut dyn Fs) -> bool {
    fs.is_dir("/Windows/System32/config")
}

/// The ImportImage platform for a product name.
pub(crate) fn platform_of(product: &str) -> &'static str {
    for (needle, p) in [
        ("Windows Server 2022", "Windows Server 2022"),
        ("Windows Server 2019", "Windows Server 2019"),
        ("Windows Server 2016", "Windows Server 2016"),
        ("Windows Server 2012", "Windows Server 2012"),
        ("Windows Server 2008", "Windows Server 2008"),
        ("Windows Server 2003", "Windows Server 2003"),
    ] {
        if product.contains(needle) {
            return p;
        }
    }
    "Other Windows"
}

/// What is not checked when a hive cannot be read.
fn unchecked(name: &str) -> &'static str {
    if name == "SYSTEM" {
        "the virtio drivers (viostor, netkvm) were not checked"
    } else {
        "the Windows version was not read"
    }
}

fn read_hive(fs: &mut dyn Fs, path: &str, sink: &mut Sink) -> Option<Vec<u8>> {
    let name = path.rsplit('/').next().unwrap_or(path);
    match fs.read(path, MAX_HIVE) {
        Ok(b) => Some(b),
        Err(FsError::NotFound) => {
            sink.push(rules::HIVE_CORRUPT.finding(format!("{path} is missing")));
            None
        }
        // Over our limits: the hive is not known to be bad, the verdict is incomplete.
        Err(FsError::TooLarge(n)) => {
            sink.push(rules::READ_LIMIT.finding(format!(
                "NTFS: the registry hive {path} is {n} bytes, over the {MAX_HIVE}-byte read limit; {}; the verdict is incomplete",
                unchecked(name)
            )));
            None
        }
        Err(e @ FsError::NotRead { .. }) => {
            sink.push(rules::READ_LIMIT.finding(format!(
                "NTFS: {e}; {}; the verdict is incomplete",
                unchecked(name)
            )));
            None
        }
        Err(e) => {
            sink.push(rules::FS_CORRUPT.finding(format!(
                "NTFS: the registry hive {path} cannot be read ({e}); {}",
                unchecked(name)
            )));
            None
        }
    }
}

/// The name Windows 11 goes by: its registry still says "Windows 10" in ProductName; the
/// build number (22000 and up) tells them apart.
pub(crate) fn product_display_name(product: &str, build: Option<&str>) -> String {
    let build = build.and_then(|b| b.trim().parse::<u32>().ok());
    match (product.strip_prefix("Windows 10"), build) {
        (Some(rest), Some(b)) if b >= 22000 => format!("Windows 11{rest}"),
        _ => product.to_string(),
    }
}

fn open_hive<'h>(
    data: &'h [u8],
    name: &str,
    info: &mut WindowsInfo,
    sink: &mut Sink,
) -> Option<Hive<'h>> {
    match Hive::new(data) {
        Ok(h) => {
            if h.is_dirty() {
                info.dirty_hives.push(name.into());
                sink.push(rules::HIVE_DIRTY.finding(format!("the {name} hive is dirty")));
            }
            Some(h)
        }
        Err(e) => {
            sink.push(rules::FS_CORRUPT.finding(format!(
                "the registry hive {name} (\\Windows\\System32\\config\\{name}) is corrupt: {e}; {}",
                unchecked(name)
            )));
            None
        }
    }
}

fn key_or_finding<'h>(
    r: Result<Option<Key<'h>>, HiveError>,
    what: &str,
    sink: &mut Sink,
) -> Option<Key<'h>> {
    match r {
        Ok(k) => k,
        Err(e) => {
            sink.push(rules::HIVE_CORRUPT.finding(format!("{what}: {e}")));
            None
        }
    }
}

pub(crate) fn inspect(
    vols: &mut [Volume<'_>],
    root: usize,
    facts: &mut GuestFacts,
    sink: &mut Sink,
    options: crate::InspectOptions,
) {
    let Some(root_vol) = vols.get_mut(root) else {
        return;
    };
    let fs_index = root_vol.fs_index;
    let Some(fs) = root_vol.fs.as_deref_mut() else {
        return;
    };
    let sysroot = "/Windows";
    let mut info = WindowsInfo {
        systemroot: sysroot.into(),
        ..Default::default()
    };
    let mut os = OsInfo {
        family: "windows".into(),
        distro: Some("windows".into()),
        root_filesystem: fs_index,
        ..Default::default()
    };
    facts.os_type = Some("windows".into());

    for exe_path in [
        "/Windows/System32/cmd.exe",
        "/Windows/System32/ntoskrnl.exe",
        "/Windows/explorer.exe",
    ] {
        if let Ok(b) = fs.read(exe_path, MAX_EXE) {
            if let Some(a) = exe::pe_arch(&b) {
                facts.architecture = Some(a);
                break;
            }
        }
    }
    if facts.architecture.is_none() {
        sink.push(
            rules::ARCH_UNKNOWN
                .finding("no PE executable (cmd.exe, ntoskrnl.exe) found under \\Windows"),
        );
    }

    if let Some(data) = read_hive(fs, "/Windows/System32/config/SOFTWARE", sink) {
        if let Some(h) = open_hive(&data, "SOFTWARE", &mut info, sink) {
            if let Some(root_key) = key_or_finding(h.root_key().map(Some), "SOFTWARE", sink) {
                let cv = key_or_finding(
                    root_key.subpath("Microsoft\\Windows NT\\CurrentVersion"),
                    "SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion",
                    sink,
                );
                if let Some(cv) = cv {
                    info.product_name = cv.string("ProductName");
                    info.edition = cv.string("EditionID");
                    info.installation_type = cv.string("InstallationType");
                    info.build = cv
                        .string("CurrentBuildNumber")
                        .or_else(|| cv.string("CurrentBuild"));
                    info.display_version = cv.string("DisplayVersion");
                    os.major = cv.dword("CurrentMajorVersionNumber");
                    os.minor = cv.dword("CurrentMinorVersionNumber");
                    let cur = cv.string("CurrentVersion");
                    if os.major.is_none() {
                        if let Some((a, b)) = cur.as_deref().and_then(|c| c.split_once('.')) {
                            os.major = a.parse().ok();
                            os.minor = b.parse().ok();
                        }
                    }
                    os.version = match (os.major, os.minor) {
                        (Some(a), Some(b)) => Some(format!("{a}.{b}")),
                        _ => cur,
                    };
                    os.name = info
                        .product_name
                        .as_deref()
                        .map(|p| product_display_name(p, info.build.as_deref()));
                }
            }
        }
    }

    let mut drivers: Vec<WindowsDriver> = SERVICES
        .iter()
        .map(|s| WindowsDriver {
            service: (*s).into(),
            registered: false,
            start: None,
            image_path: None,
            file_present: false,
        })
        .collect();
    for d in drivers.iter_mut() {
        d.file_present = fs.exists(&format!("/Windows/System32/drivers/{}.sys", d.service));
    }
    // The driver verdict needs the services of the current control set, read without error.
    let mut services_read = false;
    if let Some(data) = read_hive(fs, "/Windows/System32/config/SYSTEM", sink) {
        if let Some(h) = open_hive(&data, "SYSTEM", &mut info, sink) {
            if let Some(root_key) = key_or_finding(h.root_key().map(Some), "SYSTEM", sink) {
                let current = key_or_finding(root_key.subpath("Select"), "SYSTEM\\Select", sink)
                    .and_then(|k| k.dword("Current"))
                    .unwrap_or(1);
                let ccs = format!("ControlSet{current:03}");
                info.control_set = Some(ccs.clone());
                if let Some(set) = key_or_finding(root_key.subpath(&ccs), &ccs, sink) {
                    os.hostname = set
                        .subpath("Services\\Tcpip\\Parameters")
                        .ok()
                        .flatten()
                        .and_then(|k| k.string("Hostname"))
                        .or_else(|| {
                            set.subpath("Control\\ComputerName\\ComputerName")
                                .ok()
                                .flatten()
                                .and_then(|k| k.string("ComputerName"))
                        });
                    services_read = true;
                    for d in drivers.iter_mut() {
                        let path = format!("Services\\{}", d.service);
                        let key = set.subpath(&path);
                        services_read &= key.is_ok();
                        if let Some(k) = key_or_finding(key, &path, sink) {
                            d.registered = true;
                            d.start = k.dword("Start");
                            d.image_path = k.string("ImagePath");
                        }
                    }
                } else {
                    sink.push(
                        rules::HIVE_CORRUPT
                            .finding(format!("SYSTEM has no {ccs} (Select\\Current = {current})")),
                    );
                }
            }
        }
    }

    let boot_start = |name: &str| {
        drivers
            .iter()
            .any(|d| d.service == name && d.registered && d.start == Some(0) && d.file_present)
    };
    // ECS system disks are virtio-blk (viostor) or NVMe; vioscsi drives neither.
    let storage_ok = boot_start("viostor");
    if !storage_ok && services_read && options.nvme_requested && boot_start("stornvme") {
        sink.push(rules::NVME_ONLY_STORAGE.finding(
            "stornvme is boot-start, but viostor (virtio-blk) is not: only NVMe instance types boot this image",
        ));
    } else if !storage_ok && services_read {
        let mut why: Vec<String> = drivers
            .iter()
            .filter(|d| d.service == "viostor" || d.service == "vioscsi")
            .map(|d| match (d.registered, d.start, d.file_present) {
                (false, _, false) => format!("{}: no service, no file", d.service),
                (false, _, true) => format!("{}: file present but no service", d.service),
                (true, s, f) => format!(
                    "{}: Start={}{}",
                    d.service,
                    s.map_or("unset".into(), |v| v.to_string()),
                    if f { "" } else { ", driver file missing" }
                ),
            })
            .collect();
        if boot_start("vioscsi") {
            why.push("vioscsi (virtio-scsi) is boot-start, but ECS system disks are virtio-blk, which it does not drive".into());
        }
        if boot_start("stornvme") {
            why.push("stornvme is boot-start: only an NVMe system disk would boot".into());
        }
        sink.push(rules::WIN_NO_VIOSTOR.finding(format!(
            "no boot-start virtio-blk storage driver ({})",
            why.join("; ")
        )));
    }
    let net_ok = drivers
        .iter()
        .any(|d| d.service == "netkvm" && d.registered && d.file_present);
    if !net_ok && services_read {
        sink.push(rules::WIN_NO_NETKVM.finding("the netkvm service or netkvm.sys is missing"));
    }
    // Windows loads a storage driver for its system disk only if it is boot-start: a
    // demand-start stornvme (Start=3, Windows' default off NVMe) ends in
    // INACCESSIBLE_BOOT_DEVICE on an NVMe disk.
    let nvme = boot_start("stornvme");
    facts.nvme_support = Some(if nvme { "supported" } else { "unsupported" }.into());
    let platform = platform_of(info.product_name.as_deref().unwrap_or(""));
    if platform == "Other Windows" {
        sink.push(rules::PLATFORM_OTHER.finding(format!(
            "product {:?} is not an ECS Windows Server platform; it maps to Other Windows",
            os.name.as_deref().unwrap_or("unknown")
        )));
    }
    facts.platform = Some(platform.into());
    if let Some(f) = facts.filesystems.get_mut(fs_index) {
        f.mountpoint = Some("C:\\".into());
    }
    info.drivers = drivers;
    facts.os = Some(os);
    facts.windows = Some(info);
}
