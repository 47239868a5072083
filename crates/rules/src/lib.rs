//! Every Alibaba Cloud ECS `ImportImage` rule, checked before any byte is
//! uploaded, and the plan: the exact request that would be sent.
//!
//! Input: the facts the format engine found in each image ([`DiskFacts`]),
//! what guest inspection found in the system disk ([`GuestFacts`], optional)
//! and the parameters the user gave ([`ImportParams`]). Output
//! ([`evaluate`]): findings, each attributed to a disk or to the request as a
//! whole ([`ScopedFinding`]), and a [`Plan`]. Rules that need the cloud are
//! defined here too and checked by [`evaluate_cloud`] once the upload and
//! import code has gathered the [`CloudFacts`]. This crate does no I/O and
//! knows nothing about HTTP or container formats: formats arrive as names.
//!
//! The rules come from the two editions of the ImportImage API page (the
//! older one and the Jun-2026 one); each is reported with the API error code
//! it prevents, or with a code of ours (`Family.What`) where the API has
//! none; [`is_api_code`] tells them apart ([`API_CODES`] is the API's
//! table). Codes marked *(ours)* below are ecs-preflight's even where they
//! take the API's shape. [`RULES`] lists them all. The API's codes that only the service can
//! decide (quota, billing, allow lists, …) are in [`SERVICE_CODES`], each with
//! the reason and the fix.
//!
//! # Size limits profiles
//!
//! The editions disagree on `DiskDeviceMapping.N.DiskImageSize` (GiB):
//!
//! | profile ([`SizeLimits`]) | system disk | data disk | source |
//! |---|---|---|---|
//! | `classic` (default) | 5–500 | 5–1000 | older API page, Pulumi/Terraform; the user's rule |
//! | `2026` | 1–2048 | 1–2048 | Jun-2026 API page |
//!
//! In both, `DiskImageSize` must be at least the image's virtual size
//! rounded up to GiB: our rule, `DiskImageSize.BelowVirtualSize` (the pages
//! ask for the space the filesystems use, or the image file's size). The
//! first disk is always checked against the system-disk limits: ImportImage
//! takes `DiskDeviceMapping.1` as the system disk whatever the user meant. When the user gives no size, the plan asks for the
//! virtual size rounded up, raised to the profile's minimum (a 2 GiB image
//! plans 5 GiB under `classic`, 2 GiB under `2026`); a too-small image is
//! therefore not an error.
//!
//! # Codes
//!
//! Request parameters ([`params`]):
//!
//! | code | severity | prevents / means |
//! |---|---|---|
//! | `MissingParameter.RegionId` *(ours)* | info | `MissingParameter`: no `RegionId` (the plan is incomplete) |
//! | `InvalidRegionId.NotFound` | error | a `RegionId` that is not shaped like a region id |
//! | `InvalidImageName.Malformed` | error | `ImageName` not 2–128 chars, bad first char, `aliyun`/`acs:` prefix, URL, bad chars |
//! | `InvalidDescription.Malformed` | error | `Description` not 2–256 chars or starting with a URL |
//! | `InvalidArchitecture.Malformed` | error | `Architecture` ∉ {i386, x86_64, arm64} |
//! | `InvalidOSType.Malformed` | error | `OSType` ∉ {windows, linux} |
//! | `InvalidPlatform.Malformed` | error | `Platform` not in [`tables::PLATFORMS`] |
//! | `InvalidBootMode.Malformed` | error | `BootMode` ∉ {BIOS, UEFI} |
//! | `InvalidBootMode.NotSupport` | error | BIOS on arm64 |
//! | `InvalidArchitecture.PlatformUnsupported` | error | platform not offered on the architecture (Windows on arm64) |
//! | `InvalidLicenseType.NotSupported` | error | `LicenseType` ∉ {Auto, Aliyun, BYOL} |
//! | `LicenseType.AutoNotInJun2026Page` | info | `LicenseType=Auto`, a value of the older page only |
//! | `Platform.DefaultsToOthersLinux` | info | Windows with no Platform given or found: the API takes "Others Linux" |
//! | `MissingParameter.LicenseType` *(ours)* | warning | Windows without `LicenseType` (the Jun-2026 page requires it) |
//! | `OSType.PlatformMismatch` | warning | `OSType` not the platform's family (or defaulted to linux for Windows) |
//! | `Tag.TooMany` | error | more than 20 tags |
//! | `InvalidTagKey.Malformed` / `InvalidTagValue.Malformed` *(ours)* | error | tag key 1–128 chars, value ≤ 128, reserved prefixes, URLs (lower case, as the page writes them) |
//! | `TagKey.Duplication` | error | two tag keys equal ignoring case |
//! | `InvalidClientToken.Malformed` | error | `ClientToken` non-ASCII, empty or over 64 chars |
//! | `InvalidParameter.DetectionStrategy` | error | `DetectionStrategy` other than Standard |
//! | `ImageCheckUnsupported.WindowsImage` | info | `DetectionStrategy` with a Windows image (most versions are supported) |
//! | `InvalidParameter.FeaturesImdsSupport` | error | `Features.ImdsSupport` ∉ {v1, v2} |
//! | `InvalidParameter.FeaturesNvmeSupport` *(ours)* | error | `Features.NvmeSupport` ∉ {supported, unsupported} |
//! | `InvalidStorageLocation.NotFound` | error | `StorageLocationArn` not `arn:acs:cloudbox:{RegionId}:{AliUid}:cloudbox/{CloudBoxId}` |
//!
//! Disks ([`disks`]):
//!
//! | code | severity | prevents / means |
//! |---|---|---|
//! | `MissingParameter.DiskDeviceMapping` | error | no disk |
//! | `DiskDeviceMapping.TooMany` | error | more than 17 disks (the API drops the extra ones silently) |
//! | `DiskDeviceMapping.SystemDiskNotFirst` | error | a system disk after position 1 |
//! | `DiskDeviceMapping.DataDiskFirst` | warning | a data disk at position 1, which the API takes as the system disk |
//! | `DiskDeviceMapping.DuplicateObject` | error | two disks mapped to the same bucket and key |
//! | `InvalidImageSize` | error | first disk's `DiskImageSize` outside the system-disk limits |
//! | `InvalidDataDiskSize` | error | data `DiskImageSize` outside the profile |
//! | `DiskImageSize.BelowVirtualSize` | error | a given `DiskImageSize` below the virtual size (our rule) |
//! | `DiskImageSize.Raised` | info | the plan raised a small image to the minimum size |
//! | `InvalidImageFormat.Malformed` | error | `Format` not RAW/VHD/QCOW2/VMDK |
//! | `Format.DetectedPrevails` | warning | `Format` differs from the detected one; the plan sends the detected one |
//! | `VMDK.InvitationalPreview` | warning | VMDK is importable only in preview |
//! | `VHDX.NotImportable` | error | VHDX cannot be imported |
//! | `MissingParameter.OSSBucket` *(ours)* | info | no bucket (the plan is incomplete) |
//! | `InvalidOSSBucket.Malformed` | error | bucket name not 3–63 of `[a-z0-9-]` |
//! | `InvalidOSSObject.Malformed` | error | object key empty, over 1023 bytes, leading `/` |
//! | `UnsupportedSuffix.OSSObject` | warning | key not ending in .raw, .img, .qcow2, .vhd, .vmdk |
//!
//! Guest inspection ([`guest`]): `GuestMismatch.Architecture`,
//! `GuestMismatch.OSType`, `GuestMismatch.BootMode` (errors),
//! `GuestMismatch.Platform`, `GuestMismatch.NvmeSupport` (warnings): a given
//! value differs from the one found in the guest.
//!
//! Cloud ([`cloud`], [`evaluate_cloud`]): `CLOUD.NotVerified` (a warning), `InvalidOSSBucket.NotFound`,
//! `InvalidOSSBucket.NotMatched` (bucket in another region),
//! `InvalidOSSBucket.EncryptUnsupported`, `InvalidOSSObject.NotFound`,
//! `InvalidOSSObject.Size` (empty), `InvalidOSSObject.NeedRestore` (Archive,
//! ColdArchive), `NoSetRoletoECSServiceAcount` (sic, the API's spelling),
//! `InvalidOperation.CloudBoxImageImportRoleRequired`,
//! `InvalidImageName.Duplicated`.
//!
//! Image-level findings of the format engine (backing file, encryption, the
//! VHD size rule, differencing VHD, …) arrive in [`DiskFacts::findings`] and
//! are passed through, attributed to their disk.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cloud;
pub mod disks;
pub mod guest;
mod input;
pub mod params;
mod plan;
pub mod service;
pub mod tables;

#[cfg(test)]
mod tests;

pub use cloud::{
    evaluate_cloud, import_role, BucketFacts, CloudFacts, ObjectFacts, CLOUDBOX_ROLE_POLICY,
    DEFAULT_CLOUDBOX_ROLE, DEFAULT_ROLE, DEFAULT_ROLE_POLICY,
};
pub use input::{
    DiskFacts, DiskParams, DiskRole, GuestFacts, ImportParams, ParseError, SizeLimits, GIB,
    MAX_DISKS,
};
pub use params::MAX_TAGS;
pub use plan::{DiskDeviceMapping, Features, Plan, Tag};
pub use service::{is_api_code, service_code, ServiceCode, API_CODES, SERVICE_CODES};

use preflight_report::{Finding, Rule};
use serde::{Deserialize, Serialize};

/// Every rule of this crate, for the catalogue.
pub static RULES: &[&Rule] = &[
    // Request parameters.
    &params::REGION_MISSING,
    &params::REGION_MALFORMED,
    &params::IMAGE_NAME,
    &params::DESCRIPTION,
    &params::ARCHITECTURE,
    &params::OS_TYPE,
    &params::PLATFORM,
    &params::BOOT_MODE,
    &params::BOOT_MODE_NOT_SUPPORTED,
    &params::PLATFORM_ARCHITECTURE,
    &params::LICENSE_TYPE,
    &params::LICENSE_TYPE_MISSING,
    &params::LICENSE_TYPE_AUTO,
    &params::PLATFORM_DEFAULT_LINUX,
    &params::OS_TYPE_PLATFORM,
    &params::TAG_COUNT,
    &params::TAG_KEY,
    &params::TAG_VALUE,
    &params::TAG_DUPLICATE,
    &params::CLIENT_TOKEN,
    &params::DETECTION_STRATEGY,
    &params::DETECTION_WINDOWS,
    &params::IMDS_SUPPORT,
    &params::NVME_SUPPORT,
    &params::STORAGE_LOCATION,
    // Disks.
    &disks::DISKS_MISSING,
    &disks::TOO_MANY_DISKS,
    &disks::SYSTEM_DISK_NOT_FIRST,
    &disks::DATA_DISK_FIRST,
    &disks::DUPLICATE_OBJECT,
    &disks::SYSTEM_DISK_SIZE,
    &disks::DATA_DISK_SIZE,
    &disks::BELOW_VIRTUAL_SIZE,
    &disks::SIZE_RAISED,
    &disks::FORMAT,
    &disks::FORMAT_MISMATCH,
    &disks::VMDK_PREVIEW,
    &disks::VHDX,
    &disks::BUCKET_MISSING,
    &disks::BUCKET_MALFORMED,
    &disks::OBJECT_MALFORMED,
    &disks::OBJECT_SUFFIX,
    // Guest inspection.
    &guest::ARCHITECTURE,
    &guest::OS_TYPE,
    &guest::PLATFORM,
    &guest::BOOT_MODE,
    &guest::NVME_SUPPORT,
    &guest::NVME_DRIVER_MISSING,
    // Cloud.
    &cloud::BUCKET_NOT_FOUND,
    &cloud::BUCKET_REGION,
    &cloud::BUCKET_ENCRYPTED,
    &cloud::OBJECT_NOT_FOUND,
    &cloud::OBJECT_EMPTY,
    &cloud::OBJECT_NEEDS_RESTORE,
    &cloud::ROLE_MISSING,
    &cloud::CLOUDBOX_ROLE_MISSING,
    &cloud::IMAGE_NAME_TAKEN,
    &cloud::CLOUD_NOT_VERIFIED,
];

/// A finding and what it is about: a disk, or the request as a whole.
///
/// `disk` is the index into the `disks` given to [`evaluate`] (0 = the
/// system disk, `DiskDeviceMapping.{disk + 1}`), `path` that disk's
/// [`DiskFacts::path`]; both are absent for request-level findings
/// (parameters, tags, disk count). In JSON the finding's own fields are
/// flattened in: `{"disk": 0, "path": "a.qcow2", "code": …, "severity": …,
/// "message": …, "hint": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedFinding {
    /// Index of the disk the finding is about; `None` for the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<usize>,
    /// Path of that disk, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Request-level findings first, then each disk's in disk order.
    pub findings: Vec<ScopedFinding>,
    /// The ImportImage request that would be sent.
    pub plan: Plan,
}

impl Evaluation {
    /// True when any finding is an error (`check` exits 1).
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.finding.is_error())
    }

    /// The findings without their scope.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().map(|f| &f.finding)
    }
}

/// Collects scoped findings.
pub(crate) struct Sink<'a> {
    disks: &'a [DiskFacts],
    findings: Vec<ScopedFinding>,
}

impl Sink<'_> {
    fn request(&mut self, finding: Finding) {
        self.findings.push(ScopedFinding {
            disk: None,
            path: None,
            finding,
        });
    }

    fn disk(&mut self, index: usize, finding: Finding) {
        self.findings.push(ScopedFinding {
            disk: Some(index),
            path: self.disks.get(index).map(|d| d.path.clone()),
            finding,
        });
    }
}

/// Checks `disks` (the first is the system disk) and `params` against every
/// ImportImage rule that needs no cloud, with the `DiskImageSize` limits of
/// `limits` (normally `params.size_limits`), and plans the request.
///
/// The plan carries the user's values as given; where the user gave none it
/// uses the guest's (`architecture`, `os_type`, `platform`, `boot_mode`,
/// `nvme_support`), the detected format, the image's file name as the
/// object key (the uploader's default) and the virtual size rounded up to
/// GiB and raised to the profile's minimum. Anything else is left absent
/// for the API's default, never guessed.
pub fn evaluate(
    disks: &[DiskFacts],
    params: &ImportParams,
    guest: Option<&GuestFacts>,
    limits: SizeLimits,
) -> Evaluation {
    let mut sink = Sink {
        disks,
        findings: Vec::new(),
    };
    let mut request = Vec::new();
    params::check(params, guest, &mut request);
    if let Some(g) = guest {
        request.extend(guest::check(params, g));
    }
    for f in request {
        sink.request(f);
    }
    let disk_device_mappings = disks::check(disks, params, limits, &mut sink);

    let from_guest = |given: &Option<String>, found: fn(&GuestFacts) -> &Option<String>| {
        params::effective(given, guest.map(found)).map(str::to_string)
    };
    let nvme_support = from_guest(&params.nvme_support, |g| &g.nvme_support);
    let imds_support = params.imds_support.clone();
    let features = (nvme_support.is_some() || imds_support.is_some()).then_some(Features {
        nvme_support,
        imds_support,
    });
    let plan = Plan {
        region_id: params.region.clone(),
        image_name: params.image_name.clone(),
        description: params.description.clone(),
        architecture: from_guest(&params.architecture, |g| &g.architecture),
        os_type: from_guest(&params.os_type, |g| &g.os_type),
        platform: from_guest(&params.platform, |g| &g.platform),
        boot_mode: from_guest(&params.boot_mode, |g| &g.boot_mode),
        license_type: params.license_type.clone(),
        tags: params
            .tags
            .iter()
            .map(|(key, value)| Tag {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        features,
        // An empty ClientToken is no token.
        client_token: params.client_token.clone().filter(|t| !t.is_empty()),
        resource_group_id: params.resource_group_id.clone(),
        role_name: params.role_name.clone(),
        detection_strategy: params.detection_strategy.clone(),
        storage_location_arn: params.storage_location_arn.clone(),
        disk_device_mappings,
    };
    Evaluation {
        findings: sink.findings,
        plan,
    }
}
