//! The plan: exactly the ImportImage request the tool would send.

use serde::{Deserialize, Serialize};

/// The ImportImage request that would be sent, its fields named as the
/// API's parameters in snake_case. A value the user did not give and
/// nothing could derive is `None` and absent from the JSON, never guessed:
/// the API then applies its own default. A value the user gave is carried
/// as given, even when a finding says it is wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// `RegionId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_id: Option<String>,
    /// `ImageName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    /// `Description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `Architecture`: given, else from guest inspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// `OSType`: given, else from guest inspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    /// `Platform`: given, else from guest inspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `BootMode`: given, else from guest inspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<String>,
    /// `LicenseType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_type: Option<String>,
    /// `Tag.N`, in the order given; absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// `Features`; absent when neither feature is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Features>,
    /// `ClientToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// `ResourceGroupId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group_id: Option<String>,
    /// `RoleName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    /// `DetectionStrategy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_strategy: Option<String>,
    /// `StorageLocationArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_location_arn: Option<String>,
    /// `DiskDeviceMapping.N`, N = index + 1: the first is the system disk.
    /// Always present, possibly empty.
    #[serde(default)]
    pub disk_device_mappings: Vec<DiskDeviceMapping>,
}

/// One `Tag.N`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// `Tag.N.Key`.
    pub key: String,
    /// `Tag.N.Value` (may be empty).
    pub value: String,
}

/// `Features`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    /// `Features.NvmeSupport`: given, else from guest inspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvme_support: Option<String>,
    /// `Features.ImdsSupport`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imds_support: Option<String>,
}

/// One `DiskDeviceMapping.N`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskDeviceMapping {
    /// `Format` in the API's spelling (`RAW`, `QCOW2`, `VHD`, `VMDK`): the
    /// detected format when it is importable, else the given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `OSSBucket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oss_bucket: Option<String>,
    /// `OSSObject`: given, else the image's file name (the uploader's
    /// default key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oss_object: Option<String>,
    /// `DiskImageSize` in GiB: given, else the virtual size rounded up to
    /// GiB and raised to the profile's minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_image_size: Option<u64>,
}
