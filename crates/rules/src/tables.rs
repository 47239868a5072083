//! Value lists of the ImportImage parameters.
//!
//! Source: the ECS `ImportImage` API reference, Jun-2026 edition ("Request
//! parameters"; seed `004_c643812cd9464953.txt`), which supersedes the older
//! edition's shorter lists (seed `003_977a5385e7ab252d.txt`: no arm64, no
//! BootMode, twelve platforms).

/// `Architecture` values.
pub const ARCHITECTURES: &[&str] = &["i386", "x86_64", "arm64"];

/// `OSType` values.
pub const OS_TYPES: &[&str] = &["windows", "linux"];

/// `BootMode` values.
pub const BOOT_MODES: &[&str] = &["BIOS", "UEFI"];

/// `LicenseType` values (`Auto` is listed by the older edition and the
/// issue; the Jun-2026 edition names `Aliyun` and `BYOL`).
pub const LICENSE_TYPES: &[&str] = &["Auto", "Aliyun", "BYOL"];

/// `Features.ImdsSupport` values.
pub const IMDS_SUPPORT: &[&str] = &["v1", "v2"];

/// `Features.NvmeSupport` values.
pub const NVME_SUPPORT: &[&str] = &["supported", "unsupported"];

/// `DetectionStrategy` values: "Only the Standard detection mode is
/// supported."
pub const DETECTION_STRATEGIES: &[&str] = &["Standard"];

/// `DiskDeviceMapping.N.Format` values, in the API's spelling. VMDK is "in
/// invitational preview".
pub const FORMATS: &[&str] = &["RAW", "VHD", "QCOW2", "VMDK"];

/// Object-key suffixes ECS is known to take. The API has an
/// `UnsupportedSuffix.OSSObject` error but publishes no list; these are the
/// suffixes of the documentation's examples and of ECS's own exports, and
/// `.img`, the usual name of a raw disk image (`root.img`).
pub const OBJECT_SUFFIXES: &[&str] = &[".raw", ".img", ".qcow2", ".vhd", ".vmdk"];

/// The operating-system family of a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsFamily {
    /// `OSType=linux` (and the BSDs, which ECS files under Linux).
    Linux,
    /// `OSType=windows`.
    Windows,
}

impl OsFamily {
    /// The `OSType` value of this family.
    pub fn os_type(self) -> &'static str {
        match self {
            OsFamily::Linux => "linux",
            OsFamily::Windows => "windows",
        }
    }
}

/// One `Platform` value and where ECS offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// The value, exactly as the API spells it.
    pub name: &'static str,
    /// The `OSType` it belongs to.
    pub family: OsFamily,
    /// The architectures it can be imported with.
    pub architectures: &'static [&'static str],
}

const ALL: &[&str] = ARCHITECTURES;
// The Jun-2026 page names the error `InvalidArchitecture.PlatformUnsupported`
// ("The OS platform you selected does not support the specified
// architecture") but publishes no availability matrix. Only what is certain
// is encoded: Windows has no arm64 import (the example), and Windows
// Server 2012 and later have no 32-bit edition, so cannot be i386. Every
// other platform is allowed on every architecture rather than guessed.
const WINDOWS_32_64: &[&str] = &["i386", "x86_64"];
const WINDOWS_64: &[&str] = &["x86_64"];

/// `Platform` values of the Jun-2026 page (and `Windows 7`, from seed 000),
/// with their family and the architectures they can be imported with (see
/// the comment above).
pub const PLATFORMS: &[Platform] = &[
    linux("Aliyun"),
    linux("Anolis"),
    linux("CentOS"),
    linux("Ubuntu"),
    linux("CoreOS"),
    linux("SUSE"),
    linux("Debian"),
    linux("OpenSUSE"),
    linux("FreeBSD"),
    linux("RedHat"),
    linux("Kylin"),
    linux("UOS"),
    linux("Fedora"),
    linux("Fedora CoreOS"),
    linux("CentOS Stream"),
    linux("AlmaLinux"),
    linux("Rocky Linux"),
    linux("Gentoo"),
    linux("Customized Linux"),
    linux("Others Linux"),
    windows("Windows Server 2022", WINDOWS_64),
    windows("Windows Server 2019", WINDOWS_64),
    windows("Windows Server 2016", WINDOWS_64),
    windows("Windows Server 2012", WINDOWS_64),
    windows("Windows Server 2008", WINDOWS_32_64),
    windows("Windows Server 2003", WINDOWS_32_64),
    windows("Other Windows", WINDOWS_32_64),
    // Not on the Jun-2026 page but a value of the ImageImport resource (seed
    // 000: "Valid values: ... `Windows Server 2012`, `Windows 7`, Default is
    // `Others Linux`"), which sends it to ImportImage as given.
    windows("Windows 7", WINDOWS_32_64),
];

const fn linux(name: &'static str) -> Platform {
    Platform {
        name,
        family: OsFamily::Linux,
        architectures: ALL,
    }
}

const fn windows(name: &'static str, architectures: &'static [&'static str]) -> Platform {
    Platform {
        name,
        family: OsFamily::Windows,
        architectures,
    }
}

/// The platform named exactly `name`.
pub fn platform(name: &str) -> Option<&'static Platform> {
    PLATFORMS.iter().find(|p| p.name == name)
}

/// The value of `list` equal to `value` ignoring ASCII case, for a "did you
/// mean" hint.
pub fn case_insensitive_match(list: &[&'static str], value: &str) -> Option<&'static str> {
    list.iter().copied().find(|v| v.eq_ignore_ascii_case(value))
}
