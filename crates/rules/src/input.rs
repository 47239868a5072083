//! What the rules look at: the import parameters the user gives, the facts
//! the format engine found in each image, and (later) what guest inspection
//! found inside the system disk.

use preflight_report::Finding;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One GiB, the unit of `DiskImageSize`.
pub const GIB: u64 = 1 << 30;

/// Most disks one ImportImage request takes: `DiskDeviceMapping.N` with
/// N = 1..17 (1 system disk, 16 data disks); the API silently ignores N > 17.
pub const MAX_DISKS: usize = 17;

/// Whether an image becomes the system disk or a data disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskRole {
    /// `DiskDeviceMapping.1`: the disk the instance boots from.
    #[default]
    System,
    /// `DiskDeviceMapping.2` to `.17`.
    Data,
}

impl DiskRole {
    /// `system` or `data`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskRole::System => "system",
            DiskRole::Data => "data",
        }
    }
}

impl fmt::Display for DiskRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DiskRole {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(DiskRole::System),
            "data" => Ok(DiskRole::Data),
            _ => Err(ParseError::DiskRole(s.to_string())),
        }
    }
}

/// Which edition of the ImportImage page the `DiskImageSize` limits come
/// from. The two editions disagree; the default is the older, stricter one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SizeLimits {
    /// The older API page and the Pulumi/Terraform resources: system disk
    /// 5–500 GiB, data disk 5–1000 GiB. The default: it is the user's rule,
    /// and an image within it is accepted under both editions.
    #[default]
    #[serde(rename = "classic")]
    Classic,
    /// The Jun-2026 API page: 1–2048 GiB for system and data disks.
    #[serde(rename = "2026")]
    Y2026,
}

impl SizeLimits {
    /// Inclusive `(min, max)` of `DiskImageSize` in GiB for a disk of `role`.
    pub fn range(self, role: DiskRole) -> (u64, u64) {
        match (self, role) {
            (SizeLimits::Classic, DiskRole::System) => (5, 500),
            (SizeLimits::Classic, DiskRole::Data) => (5, 1000),
            (SizeLimits::Y2026, _) => (1, 2048),
        }
    }

    /// `classic` or `2026`, as given to `--size-limits`.
    pub fn as_str(self) -> &'static str {
        match self {
            SizeLimits::Classic => "classic",
            SizeLimits::Y2026 => "2026",
        }
    }
}

impl fmt::Display for SizeLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SizeLimits {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "classic" => Ok(SizeLimits::Classic),
            "2026" => Ok(SizeLimits::Y2026),
            _ => Err(ParseError::SizeLimits(s.to_string())),
        }
    }
}

/// A tool option that is not one of its values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// `--disk-role` other than `system` or `data`.
    #[error("unknown disk role {0:?}: expected \"system\" or \"data\"")]
    DiskRole(String),
    /// `--size-limits` other than `classic` or `2026`.
    #[error("unknown size-limits profile {0:?}: expected \"classic\" or \"2026\"")]
    SizeLimits(String),
}

/// The ImportImage parameters as the user gave them, unvalidated: every
/// value is checked by [`evaluate`](crate::evaluate) and reported with the
/// API error code it would cause. `None` / empty means "not given".
///
/// Field names follow the CLI flags (`--os-type` → `os_type`), which are the
/// API's parameter names in kebab-case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportParams {
    /// `RegionId`: the region to import into; the bucket must be there too.
    pub region: Option<String>,
    /// `DiskDeviceMapping.N.OSSBucket` for every disk without its own
    /// [`DiskParams::bucket`].
    pub bucket: Option<String>,
    /// `ImageName`.
    pub image_name: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `Architecture` (`i386`, `x86_64`, `arm64`).
    pub architecture: Option<String>,
    /// `OSType` (`windows`, `linux`).
    pub os_type: Option<String>,
    /// `Platform` (one of [`PLATFORMS`](crate::tables::PLATFORMS)).
    pub platform: Option<String>,
    /// `BootMode` (`BIOS`, `UEFI`).
    pub boot_mode: Option<String>,
    /// `LicenseType` (`Auto`, `Aliyun`, `BYOL`).
    pub license_type: Option<String>,
    /// `Tag.N.Key` / `Tag.N.Value`, in the order given.
    pub tags: Vec<(String, String)>,
    /// `ResourceGroupId`.
    pub resource_group_id: Option<String>,
    /// Role of the first image (`--disk-role`); `None` means system. Every
    /// further image (`--data-disk`) is a data disk. See [`Self::role_of`].
    pub disk_role: Option<DiskRole>,
    /// Per-disk parameters, index-aligned with the `disks` given to
    /// [`evaluate`](crate::evaluate): index 0 is the first image (the
    /// system disk). A disk without an entry uses the defaults.
    pub disks: Vec<DiskParams>,
    /// `DetectionStrategy` (only `Standard`).
    pub detection_strategy: Option<String>,
    /// `Features.NvmeSupport` (`supported`, `unsupported`).
    pub nvme_support: Option<String>,
    /// `Features.ImdsSupport` (`v1`, `v2`).
    pub imds_support: Option<String>,
    /// `ClientToken`: ASCII, at most 64 characters.
    pub client_token: Option<String>,
    /// `RoleName`: the RAM role ECS assumes to read the bucket.
    pub role_name: Option<String>,
    /// `StorageLocationArn`: only for OSS on CloudBox.
    pub storage_location_arn: Option<String>,
    /// Which `DiskImageSize` limits apply (`--size-limits`); default classic.
    pub size_limits: SizeLimits,
    /// `--skip-guest`: do not inspect the guest. Accepted now; guest
    /// inspection comes in its own issue. The rules do not read it.
    pub skip_guest: bool,
}

impl ImportParams {
    /// The role of disk `index`: the first image takes `disk_role` (default
    /// system), every further one is a data disk.
    pub fn role_of(&self, index: usize) -> DiskRole {
        if index == 0 {
            self.disk_role.unwrap_or_default()
        } else {
            DiskRole::Data
        }
    }

    /// The parameters of disk `index`, or the defaults.
    pub fn disk(&self, index: usize) -> DiskParams {
        self.disks.get(index).cloned().unwrap_or_default()
    }
}

/// Parameters of one `DiskDeviceMapping.N`. The CLI's `--object`,
/// `--format` and `--disk-image-size` fill the first disk's entry; data
/// disks get the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskParams {
    /// `OSSBucket`; `None` uses [`ImportParams::bucket`].
    pub bucket: Option<String>,
    /// `OSSObject`; `None` uses the image's file name, which is the key the
    /// uploader uses by default.
    pub object: Option<String>,
    /// `Format` as given (`RAW`, `VHD`, `QCOW2`, `VMDK`, any case); `None`
    /// uses the detected format.
    pub format: Option<String>,
    /// `DiskImageSize` in GiB; `None` plans the image's virtual size rounded
    /// up to GiB, raised to the profile's minimum.
    pub disk_image_size: Option<u64>,
}

/// What the format engine found about one image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskFacts {
    /// The image file as the user named it; its file name is the default
    /// object key.
    pub path: String,
    /// Detected format: `raw`, `qcow2`, `vhd`, `vmdk`, `vhdx`, or the name of
    /// a refused format (`vdi`, `gzip`, …); `None` when unknown.
    pub detected_format: Option<String>,
    /// Virtual (guest-visible) size in bytes; `None` when the image could not
    /// be opened.
    pub virtual_size: Option<u64>,
    /// System or data disk (usually [`ImportParams::role_of`]).
    pub role: DiskRole,
    /// Image-level findings of the format engine (backing file, encryption,
    /// the VHD size rule, differencing VHD, …); passed through into the
    /// report, attributed to this disk.
    pub findings: Vec<Finding>,
}

impl DiskFacts {
    /// Facts without format-engine findings.
    pub fn new(
        path: impl Into<String>,
        detected_format: Option<&str>,
        virtual_size: Option<u64>,
        role: DiskRole,
    ) -> Self {
        DiskFacts {
            path: path.into(),
            detected_format: detected_format.map(str::to_string),
            virtual_size,
            role,
            findings: Vec::new(),
        }
    }
}

/// What guest inspection found inside the system disk, in the API's
/// spelling (`x86_64`, `linux`, `Ubuntu`, `UEFI`, `supported`). Every field
/// is optional: `None` means "could not tell". A value fills the plan when
/// the user gave none; a value that differs from the user's is a
/// `GuestMismatch.*` finding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestFacts {
    /// `Architecture` of the installed OS.
    pub architecture: Option<String>,
    /// `OSType` of the installed OS.
    pub os_type: Option<String>,
    /// `Platform` of the installed OS.
    pub platform: Option<String>,
    /// `BootMode` the plan takes when the user gives none (BIOS on a disk that boots both
    /// ways).
    pub boot_mode: Option<String>,
    /// Every `BootMode` the disk has a boot loader for; a given `--boot-mode` among them is
    /// no mismatch. Empty: only `boot_mode` is known.
    #[serde(default)]
    pub boot_modes: Vec<String>,
    /// `Features.NvmeSupport`: whether the guest has an NVMe driver.
    pub nvme_support: Option<String>,
    /// The ESP has EFI loaders but not the removable-media fallback (`\EFI\BOOT\BOOTX64.EFI`)
    /// that UEFI firmware boots without an NVRAM entry: `BootMode=UEFI` cannot start.
    #[serde(default)]
    pub uefi_without_fallback: bool,
}
