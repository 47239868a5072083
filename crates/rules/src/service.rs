//! ImportImage error codes whose cause only the service can see.
//!
//! Every other code of the API's error table is a [`Rule`](preflight_report::Rule) checked
//! before the request. These are listed so that nothing in the table is silently unchecked:
//! each says why no local or pre-request check can decide it, and what fixes it when
//! `ImportImage` answers with it (the CLI prints that fix next to the service's message).

use serde::Serialize;

/// One error code decided by the service alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ServiceCode {
    /// The API's error code.
    pub code: &'static str,
    /// The HTTP status the API documents for it.
    pub http_status: u16,
    /// Why it cannot be checked before the request.
    pub why_unchecked: &'static str,
    /// What fixes it.
    pub fix: &'static str,
}

/// The ImportImage error codes of the Jun-2026 API page that no rule checks.
pub static SERVICE_CODES: &[ServiceCode] = &[
    ServiceCode {
        code: "Account.Arrearage",
        http_status: 400,
        why_unchecked: "billing state is visible only to the billing service",
        fix: "Settle the overdue payment in the Billing Management console, then run the same command again.",
    },
    ServiceCode {
        code: "ImageIsImporting",
        http_status: 403,
        why_unchecked: "it answers a call on an image still being imported; the tool never manages an importing image, and a rerun with the same inputs waits for it instead",
        fix: "Wait for the import (`ecs-preflight wait --region R --task-id T`), then retry the call.",
    },
    ServiceCode {
        code: "ImportImageFailed",
        http_status: 403,
        why_unchecked: "a failure inside the import service, after every documented rule passed",
        fix: "Run `ecs-preflight check` on the image for anything the rules flag, then retry; if it fails again, open a ticket with the task id.",
    },
    ServiceCode {
        code: "InvalidAccountStatus.OSSDisabled",
        http_status: 403,
        why_unchecked: "the account's OSS status is not exposed by any API the tool calls",
        fix: "Restore the account's OSS service (usually an overdue payment), then run the same command again.",
    },
    ServiceCode {
        code: "InvalidImageFormat.RegionNotSupported",
        http_status: 400,
        why_unchecked: "the API publishes no per-region list of image formats",
        fix: "Import the image as QCOW2 or RAW (`ecs-preflight upload --convert qcow2`, or `qemu-img convert -O qcow2`), or import in another region.",
    },
    ServiceCode {
        code: "InvalidLicenseType.BYOLOnly",
        http_status: 400,
        why_unchecked: "the API publishes no list of the platforms that accept only BYOL",
        fix: "Pass --license-type BYOL.",
    },
    ServiceCode {
        code: "InvalidOSS.NotAuthorized",
        http_status: 403,
        why_unchecked: "the check runs with your credentials; ECS reads the object with the import role's, whose policies a RAM GetRole does not show",
        fix: "Attach the policy AliyunECSImageImportRolePolicy to the import role (or grant it oss:GetObject on the bucket).",
    },
    ServiceCode {
        code: "InvalidOSSBucket.FlowLimit",
        http_status: 400,
        why_unchecked: "the bucket's flow control is applied by OSS at import time",
        fix: "Wait and run the same command again (the upload is not repeated), or raise the bucket's bandwidth limit.",
    },
    ServiceCode {
        code: "InvalidOperation.CloudBoxImageImportUnsupported",
        http_status: 403,
        why_unchecked: "whether a CloudBox accepts imports is known only to the service",
        fix: "Import without --storage-location-arn (into the region), or ask Alibaba Cloud to enable imports on the CloudBox.",
    },
    ServiceCode {
        code: "InvalidParameter.Malformed",
        http_status: 403,
        why_unchecked: "it concerns DiskDeviceMapping.N.Device, a deprecated parameter ecs-preflight never sends",
        fix: "Remove DiskDeviceMapping.N.Device from the request.",
    },
    ServiceCode {
        code: "InvalidRegion.NotSupport",
        http_status: 400,
        why_unchecked: "the API publishes no list of regions without image import",
        fix: "Import in another region (upload to a bucket there), then copy the image with CopyImage.",
    },
    ServiceCode {
        code: "InvalidResourceGroup.NotFound",
        http_status: 404,
        why_unchecked: "resource groups belong to the Resource Management API, which the tool does not call",
        fix: "Pass an existing resource group id (`aliyun resourcemanager ListResourceGroups`), or drop --resource-group-id.",
    },
    ServiceCode {
        code: "UserNotInTheWhiteList",
        http_status: 403,
        why_unchecked: "the allow list of accounts that may import is internal to the service",
        fix: "Ask Alibaba Cloud support to enable image import for the account.",
    },
    ServiceCode {
        code: "QuotaExceed.Image",
        http_status: 403,
        why_unchecked: "the account's custom-image quota is not exposed by the ECS API",
        fix: "Delete custom images you no longer need (DeleteImage) or raise the quota in the Quota Center, then run the same command again.",
    },
];

/// The entry for `code`, if the service alone decides it.
pub fn service_code(code: &str) -> Option<&'static ServiceCode> {
    SERVICE_CODES.iter().find(|c| c.code == code)
}

/// Every error code of the Jun-2026 ImportImage page's table (seed 004).
/// A rule whose code is not here uses a code of ours (`Family.What`); some
/// of ours mirror the API's shape where the API documents the rule but no
/// code (`InvalidTagKey.Malformed`, `InvalidParameter.FeaturesNvmeSupport`,
/// `MissingParameter.RegionId`, …): [`is_api_code`] tells them apart.
pub static API_CODES: &[&str] = &[
    "Account.Arrearage",
    "DRYRUN.SUCCESS",
    "ImageCheckUnsupported.WindowsImage",
    "ImageIsImporting",
    "ImportImageFailed",
    "InvalidAccountStatus.OSSDisabled",
    "InvalidArchitecture.Malformed",
    "InvalidArchitecture.PlatformUnsupported",
    "InvalidBlockSize.NotSupport",
    "InvalidBootMode.Malformed",
    "InvalidBootMode.NotSupport",
    "InvalidClientToken.Malformed",
    "InvalidDataDiskSize",
    "InvalidDescription.Malformed",
    "InvalidImageFormat.Malformed",
    "InvalidImageFormat.RegionNotSupported",
    "InvalidImageName.Duplicated",
    "InvalidImageName.Malformed",
    "InvalidImageSize",
    "InvalidLicenseType.BYOLOnly",
    "InvalidLicenseType.NotSupported",
    "InvalidOSS.NotAuthorized",
    "InvalidOSSBucket.EncryptUnsupported",
    "InvalidOSSBucket.FlowLimit",
    "InvalidOSSBucket.Malformed",
    "InvalidOSSBucket.NotFound",
    "InvalidOSSBucket.NotMatched",
    "InvalidOSSObject.Malformed",
    "InvalidOSSObject.NeedRestore",
    "InvalidOSSObject.NotFound",
    "InvalidOSSObject.Size",
    "InvalidOSType.Malformed",
    "InvalidOperation.CloudBoxImageImportRoleRequired",
    "InvalidOperation.CloudBoxImageImportUnsupported",
    "InvalidParameter.DetectionStrategy",
    "InvalidParameter.FeaturesImdsSupport",
    "InvalidParameter.Malformed",
    "InvalidPlatform.Malformed",
    "InvalidRegion.NotSupport",
    "InvalidRegionId.NotFound",
    "InvalidResourceGroup.NotFound",
    "InvalidStorageLocation.NotFound",
    "InvalidVHDImage.IncorrectSize",
    "MissingParameter",
    "MissingParameter.DiskDeviceMapping",
    "NoSetRoletoECSServiceAcount",
    "QuotaExceed.Image",
    "TagKey.Duplication",
    "UnsupportedSuffix.OSSObject",
    "UserNotInTheWhiteList",
];

/// Whether `code` is one of the API's own error codes ([`API_CODES`]); if
/// not, it is a code of ecs-preflight's.
pub fn is_api_code(code: &str) -> bool {
    API_CODES.contains(&code)
}
