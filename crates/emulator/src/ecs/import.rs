//! ImportImage: parameter rules and error codes of the API reference (seeds 003/004), the OSS
//! checks (object exists in a bucket of the same region, bucket not encrypted, object not
//! Archive, not empty), the RAM role, name uniqueness, DryRun and ClientToken idempotency.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::{valid_bucket_name, LimitsProfile};
use crate::ecs::state::{Disk, Image, Task, TokenEntry};
use crate::ecs::{Call, EcsError, Params};
use crate::util::{random_alnum, unix_now_ms};

/// The role ImportImage assumes unless `RoleName` says otherwise.
pub const DEFAULT_ROLE: &str = "AliyunECSImageImportDefaultRole";
/// DiskDeviceMapping.N: 1 is the system disk, 2..=17 data disks; larger N are ignored.
pub const MAX_DISK_INDEX: u32 = 17;
/// Tag.N: N is 1..=20.
pub const MAX_TAGS: u32 = 20;
/// One GiB.
pub const GIB: u64 = 1024 * 1024 * 1024;

/// Regions the emulator knows (DescribeRegions), besides those of configured buckets.
pub const REGIONS: &[&str] = &[
    "cn-qingdao",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-wulanchabu",
    "cn-hangzhou",
    "cn-shanghai",
    "cn-nanjing",
    "cn-fuzhou",
    "cn-shenzhen",
    "cn-heyuan",
    "cn-guangzhou",
    "cn-chengdu",
    "cn-hongkong",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "us-east-1",
    "us-west-1",
    "eu-west-1",
    "eu-central-1",
    "me-east-1",
    "me-central-1",
    "na-south-1",
];

/// Platform values of the current API edition.
pub const PLATFORMS: &[&str] = &[
    "Aliyun",
    "Anolis",
    "CentOS",
    "Ubuntu",
    "CoreOS",
    "SUSE",
    "Debian",
    "OpenSUSE",
    "FreeBSD",
    "RedHat",
    "Kylin",
    "UOS",
    "Fedora",
    "Fedora CoreOS",
    "CentOS Stream",
    "AlmaLinux",
    "Rocky Linux",
    "Gentoo",
    "Customized Linux",
    "Others Linux",
    "Windows Server 2022",
    "Windows Server 2019",
    "Windows Server 2016",
    "Windows Server 2012",
    "Windows Server 2008",
    "Windows Server 2003",
    "Other Windows",
];

fn is_windows_platform(p: &str) -> bool {
    p.starts_with("Windows") || p == "Other Windows"
}

/// Whether `region` is known (static list or a configured bucket's region).
pub fn known_region(call: &Call<'_>, region: &str) -> bool {
    REGIONS.contains(&region)
        || call
            .shared
            .config
            .buckets
            .iter()
            .any(|b| b.region == region)
}

/// `RegionId`: required and known.
pub fn region(call: &Call<'_>) -> Result<String, EcsError> {
    let r = call.params.required("RegionId")?;
    if !known_region(call, r) {
        return Err(EcsError::new(
            400,
            "InvalidRegionId.NotFound",
            "The specified RegionId does not exist.",
        ));
    }
    Ok(r.to_string())
}

fn has_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.contains("http://") || l.contains("https://")
}

/// ImageName rule: 2–128 characters, starts with a letter (or Chinese character), not
/// `aliyun`/`acs:`, no `http(s)://`, only letters, digits, `.`, `:`, `_`, `-`.
pub fn valid_image_name(n: &str) -> bool {
    let count = n.chars().count();
    let lower = n.to_ascii_lowercase();
    (2..=128).contains(&count)
        && n.chars().next().is_some_and(char::is_alphabetic)
        && !lower.starts_with("aliyun")
        && !lower.starts_with("acs:")
        && !has_url(n)
        && n.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | ':' | '_' | '-'))
}

fn one_of(
    call: &Call<'_>,
    name: &str,
    allowed: &[&str],
    default: &str,
    code: &str,
    msg: &str,
) -> Result<String, EcsError> {
    match call.params.get(name) {
        None | Some("") => Ok(default.to_string()),
        Some(v) if allowed.contains(&v) => Ok(v.to_string()),
        Some(_) => Err(EcsError::new(400, code, msg)),
    }
}

/// `Prefix.N.Field` parameters grouped by N.
fn indexed(
    params: &Params,
    prefix: &str,
) -> Result<BTreeMap<u32, BTreeMap<String, String>>, EcsError> {
    let mut out: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
    for p in &params.0 {
        let Some(rest) = p.key.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let Some((n, field)) = rest.split_once('.') else {
            return Err(EcsError::invalid(&p.key, "expected Name.N.Field"));
        };
        let n: u32 = n
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| EcsError::invalid(&p.key, "N must be a positive integer"))?;
        out.entry(n)
            .or_default()
            .insert(field.to_string(), p.value.clone());
    }
    Ok(out)
}

pub(crate) fn tags(params: &Params) -> Result<Vec<(String, String)>, EcsError> {
    let groups = indexed(params, "Tag")?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (n, fields) in groups {
        if n > MAX_TAGS {
            return Err(EcsError::invalid(
                &format!("Tag.{n}.Key"),
                "N must be 1 to 20",
            ));
        }
        let key = fields.get("Key").cloned().unwrap_or_default();
        let value = fields.get("Value").cloned().unwrap_or_default();
        let kl = key.to_ascii_lowercase();
        if key.is_empty()
            || key.chars().count() > 128
            || kl.starts_with("aliyun")
            || kl.starts_with("acs:")
            || has_url(&key)
        {
            return Err(EcsError::new(
                400,
                "InvalidTagKey.Malformed",
                format!("The specified Tag.{n}.Key is invalid."),
            ));
        }
        if value.chars().count() > 128
            || value.to_ascii_lowercase().starts_with("acs:")
            || has_url(&value)
        {
            return Err(EcsError::new(
                400,
                "InvalidTagValue.Malformed",
                format!("The specified Tag.{n}.Value is invalid."),
            ));
        }
        if !seen.insert(kl) {
            return Err(EcsError::new(
                403,
                "TagKey.Duplication",
                "The TagKey has duplication with others, case-insensitive.",
            ));
        }
        out.push((key, value));
    }
    Ok(out)
}

/// A disk as requested, before the OSS checks.
struct WantDisk {
    index: u32,
    bucket: String,
    object: String,
    format: String,
    size_gib: Option<u64>,
}

fn disks(call: &Call<'_>, limits: LimitsProfile) -> Result<Vec<WantDisk>, EcsError> {
    let groups = indexed(call.params, "DiskDeviceMapping")?;
    let groups: BTreeMap<u32, BTreeMap<String, String>> = groups
        .into_iter()
        .filter(|(n, _)| *n <= MAX_DISK_INDEX)
        .collect();
    if groups.is_empty() {
        return Err(EcsError::new(
            403,
            "MissingParameter.DiskDeviceMapping",
            "The specified parameter DiskDeviceMapping is not supplied.",
        ));
    }
    if !groups.contains_key(&1) {
        return Err(EcsError::missing("DiskDeviceMapping.1.OSSBucket"));
    }
    let mut out = Vec::new();
    for (n, f) in groups {
        let get = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let bucket = get("OSSBucket")
            .ok_or_else(|| EcsError::missing(&format!("DiskDeviceMapping.{n}.OSSBucket")))?;
        let object = get("OSSObject")
            .ok_or_else(|| EcsError::missing(&format!("DiskDeviceMapping.{n}.OSSObject")))?;
        if !valid_bucket_name(bucket) {
            return Err(EcsError::new(
                400,
                "InvalidOSSBucket.Malformed",
                "The specified OSS bucket is wrongly formed.",
            ));
        }
        if object.len() > 1023
            || object.starts_with('/')
            || object.starts_with('\\')
            || object.contains('\0')
        {
            return Err(EcsError::new(
                400,
                "InvalidOSSObject.Malformed",
                "The specified OSS object is wrongly formed.",
            ));
        }
        let format = get("Format").unwrap_or("").to_string();
        if !format.is_empty() && !["RAW", "VHD", "QCOW2", "VMDK"].contains(&format.as_str()) {
            return Err(EcsError::new(
                400,
                "InvalidImageFormat.Malformed",
                "The specified Image Format is wrongly formed.",
            ));
        }
        if let Some(dev) = get("Device") {
            let ok = dev.len() == 9
                && dev.starts_with("/dev/xvd")
                && dev.as_bytes()[8].is_ascii_lowercase();
            if !ok {
                return Err(EcsError::new(
                    403,
                    "InvalidParameter.Malformed",
                    "The specified parameter \"DiskDeviceMapping.n.Device \" is not valid.",
                ));
            }
        }
        let (lo, hi) = if n == 1 {
            limits.system_disk_gib()
        } else {
            limits.data_disk_gib()
        };
        let size_gib = match get("DiskImageSize").or_else(|| get("DiskImSize")) {
            None => None,
            Some(s) => {
                let v = s.parse::<u64>().ok().filter(|v| (lo..=hi).contains(v));
                match (v, n) {
                    (Some(v), _) => Some(v),
                    (None, 1) => {
                        return Err(EcsError::new(400, "InvalidImageSize", format!("The specified DiskDeviceMapping.1.DiskImageSize {s:?} is invalid: the system disk must be {lo} to {hi} GiB.")))
                    }
                    (None, _) => {
                        return Err(EcsError::new(400, "InvalidDataDiskSize", format!("The specified DiskDeviceMapping.{n}.DiskImSize should be in the specified range ({lo} to {hi} GiB).")))
                    }
                }
            }
        };
        out.push(WantDisk {
            index: n,
            bucket: bucket.to_string(),
            object: object.to_string(),
            format,
            size_gib,
        });
    }
    Ok(out)
}

/// Virtual disk size from the image header (qcow2, VHD footer, sparse VMDK), else file size.
pub fn virtual_size(mut f: impl Read + Seek, file_size: u64) -> u64 {
    let mut head = [0u8; 32];
    if f.read_exact(&mut head).is_ok() {
        if &head[0..4] == b"QFI\xfb" {
            return u64::from_be_bytes(head[24..32].try_into().unwrap_or([0; 8]));
        }
        if &head[0..4] == b"KDMV" {
            let sectors = u64::from_le_bytes(head[12..20].try_into().unwrap_or([0; 8]));
            return sectors.saturating_mul(512);
        }
    }
    if file_size >= 512 && f.seek(SeekFrom::Start(file_size - 512)).is_ok() {
        let mut foot = [0u8; 512];
        if f.read_exact(&mut foot).is_ok() && &foot[0..8] == b"conectix" {
            return u64::from_be_bytes(foot[48..56].try_into().unwrap_or([0; 8]));
        }
    }
    file_size
}

/// The format an image file's header or footer names: `QCOW2` (magic `QFI\xfb`), `VMDK`
/// (sparse extent magic `KDMV`), `VHD` (`conectix` footer at the end, or its copy at offset 0),
/// `VHDX` (`vhdxfile`). `None` when no known signature is found (RAW, or anything else).
pub fn detect_format(f: &mut (impl Read + Seek), file_size: u64) -> Option<&'static str> {
    let mut head = [0u8; 8];
    if f.seek(SeekFrom::Start(0)).is_ok() && f.read_exact(&mut head).is_ok() {
        if &head[0..4] == b"QFI\xfb" {
            return Some("QCOW2");
        }
        if &head[0..4] == b"KDMV" {
            return Some("VMDK");
        }
        if &head == b"vhdxfile" {
            return Some("VHDX");
        }
        if &head == b"conectix" {
            return Some("VHD");
        }
    }
    if file_size >= 512 && f.seek(SeekFrom::Start(file_size - 512)).is_ok() {
        let mut cookie = [0u8; 8];
        if f.read_exact(&mut cookie).is_ok() && &cookie == b"conectix" {
            return Some("VHD");
        }
    }
    None
}

/// Digest of the API parameters (common and signature parameters excluded), so that a retry
/// with the same ClientToken is recognised and a different request with it is refused.
pub(crate) fn fingerprint(params: &Params) -> String {
    const COMMON: &[&str] = &[
        "AccessKeyId",
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "SignatureType",
        "Timestamp",
        "Format",
        "Version",
        "Action",
        "SecurityToken",
        "DryRun",
        "ClientToken",
    ];
    let mut kv: Vec<(&str, &str)> = params
        .0
        .iter()
        .filter(|p| !COMMON.contains(&p.key.as_str()))
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    kv.sort();
    let mut h = Sha256::new();
    for (k, v) in kv {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

fn response(image_id: &str, task_id: &str, region: &str) -> Value {
    json!({ "ImageId": image_id, "TaskId": task_id, "RegionId": region })
}

/// ImportImage.
pub fn import_image(call: &Call<'_>) -> Result<Value, EcsError> {
    let cfg = &call.shared.config;
    let p = call.params;
    let region = region(call)?;
    let name = p.get("ImageName").unwrap_or("").to_string();
    if !name.is_empty() && !valid_image_name(&name) {
        return Err(EcsError::new(
            400,
            "InvalidImageName.Malformed",
            "The specified Image name is wrongly formed.",
        ));
    }
    let description = p.get("Description").unwrap_or("").to_string();
    if !description.is_empty() {
        let l = description.to_ascii_lowercase();
        if !(2..=256).contains(&description.chars().count())
            || l.starts_with("http://")
            || l.starts_with("https://")
        {
            return Err(EcsError::new(
                400,
                "InvalidDescription.Malformed",
                "The specified Image description is wrongly formed.",
            ));
        }
    }
    let arch = one_of(
        call,
        "Architecture",
        &["i386", "x86_64", "arm64"],
        "x86_64",
        "InvalidArchitecture.Malformed",
        "The specified Architecture is wrongly formed.",
    )?;
    let os_type = one_of(
        call,
        "OSType",
        &["linux", "windows"],
        "linux",
        "InvalidOSType.Malformed",
        "The specified OSType is wrongly formed.",
    )?;
    let default_platform = if os_type == "windows" {
        "Other Windows"
    } else {
        "Others Linux"
    };
    let platform = one_of(
        call,
        "Platform",
        PLATFORMS,
        default_platform,
        "InvalidPlatform.Malformed",
        "The specified Platform is wrongly formed.",
    )?;
    if is_windows_platform(&platform) != (os_type == "windows") {
        return Err(EcsError::new(400, "InvalidPlatform.Malformed", format!("The specified Platform is wrongly formed: {platform:?} does not match OSType {os_type:?}.")));
    }
    if arch == "arm64" && os_type == "windows" {
        return Err(EcsError::new(
            403,
            "InvalidArchitecture.PlatformUnsupported",
            "The OS platform you selected does not support the specified architecture.",
        ));
    }
    let default_boot = if arch == "arm64" { "UEFI" } else { "BIOS" };
    let boot = one_of(
        call,
        "BootMode",
        &["BIOS", "UEFI"],
        default_boot,
        "InvalidBootMode.Malformed",
        "The specified parameter \"BootMode\" is malformed.",
    )?;
    if arch == "arm64" && boot != "UEFI" {
        return Err(EcsError::new(
            400,
            "InvalidBootMode.NotSupport",
            "The specified parameter BootMode is not supported for current image architecture.",
        ));
    }
    let license = one_of(
        call,
        "LicenseType",
        &["Auto", "Aliyun", "BYOL"],
        "Auto",
        "InvalidLicenseType.NotSupported",
        "The specified LicenseType is not supported.",
    )?;
    let imds = one_of(
        call,
        "Features.ImdsSupport",
        &["v1", "v2"],
        "v1",
        "InvalidParameter.FeaturesImdsSupport",
        "The specified parameter Features.ImdsSupport is not supported.",
    )?;
    let nvme = one_of(
        call,
        "Features.NvmeSupport",
        &["supported", "unsupported"],
        "unsupported",
        "InvalidParameter",
        "The specified parameter \"Features.NvmeSupport\" is not valid.",
    )?;
    let detection = one_of(
        call,
        "DetectionStrategy",
        &["Standard"],
        "",
        "InvalidParameter.DetectionStrategy",
        "The specified parameter DetectionStrategy is invalid.",
    )?;
    if !detection.is_empty() && os_type == "windows" {
        return Err(EcsError::new(
            403,
            "ImageCheckUnsupported.WindowsImage",
            "Image check is unsupported for windows image.",
        ));
    }
    let token = p.get("ClientToken").unwrap_or("").to_string();
    if token.len() > 64 || !token.is_ascii() {
        return Err(EcsError::new(
            400,
            "InvalidClientToken.Malformed",
            "The specified parameter clientToken is not valid.",
        ));
    }
    // Booleans are parsed case-insensitively (the Tea SDK sends Python's `True`).
    let dry_run = match p.get("DryRun") {
        None | Some("") => false,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(_) => return Err(EcsError::invalid("DryRun", "must be true or false")),
    };
    if p.get("StorageLocationArn").is_some_and(|s| !s.is_empty()) {
        return Err(EcsError::new(
            403,
            "InvalidOperation.CloudBoxImageImportUnsupported",
            "Importing cloud box images is not supported.",
        ));
    }
    let tags = tags(p)?;
    let want = disks(call, cfg.limits)?;
    if !dry_run && !token.is_empty() {
        let data = call.shared.ecs.lock();
        if let Some(e) = data.client_tokens.get(&token) {
            if e.fingerprint != fingerprint(p) {
                return Err(EcsError::new(400, "IdempotentParameterMismatch", "Request uses a client token in a previous request but is not identical to that request."));
            }
            return Ok(response(&e.image_id, &e.task_id, &e.region));
        }
    }
    let role = p
        .get("RoleName")
        .filter(|r| !r.is_empty())
        .unwrap_or(DEFAULT_ROLE);
    if !cfg.import_role || role != DEFAULT_ROLE {
        return Err(EcsError::new(403, "NoSetRoletoECSServiceAcount", "ECS service account Have no right to access your OSS.please attach a role of access your oss to ECS service account."));
    }
    let mut disks_out = Vec::new();
    for d in &want {
        let bucket = cfg
            .buckets
            .iter()
            .find(|b| b.name == d.bucket && b.region == region)
            .ok_or_else(|| {
                EcsError::new(
                    400,
                    "InvalidOSSBucket.NotFound",
                    "The specified OSS bucket does not exist in this region.",
                )
            })?;
        if bucket.encrypted {
            return Err(EcsError::new(
                403,
                "InvalidOSSBucket.EncryptUnsupported",
                "Accessing objects from encrypted OSS bucket is not supported.",
            ));
        }
        let opened = call
            .shared
            .store
            .open_object(&d.bucket, &d.object)
            .ok()
            .flatten();
        let Some((meta, mut file)) = opened else {
            return Err(EcsError::new(
                400,
                "InvalidOSSObject.NotFound",
                "The specified OSS object does not exist in this region.",
            ));
        };
        if meta.size == 0 {
            return Err(EcsError::new(
                400,
                "InvalidOSSObject.Size",
                "The specified OSS object size is zero.",
            ));
        }
        if !meta.readable(crate::util::unix_now_ms()) {
            return Err(EcsError::new(
                400,
                "InvalidOSSObject.NeedRestore",
                "The specified OSS object is a archive object, need restore first.",
            ));
        }
        if let Some(found) = detect_format(&mut file, meta.size) {
            // The seeds document two statuses for this code: 400 "The specified Image Format
            // is wrongly formed." for a Format value the API does not take (checked above),
            // and 403 with a message of its own (%s) for an image that is not what the
            // request says it is. An object whose header names another format is the latter.
            if !d.format.is_empty() && d.format != found {
                return Err(EcsError::new(
                    403,
                    "InvalidImageFormat.Malformed",
                    format!(
                        "The specified DiskDeviceMapping.{}.Format {:?} does not match the image file {:?}, which is {found}.",
                        d.index, d.format, d.object
                    ),
                ));
            }
        }
        if file.seek(SeekFrom::Start(0)).is_err() {
            return Err(EcsError::new(
                500,
                "InternalError",
                "The request processing has failed due to some unknown error.",
            ));
        }
        let vbytes = virtual_size(file, meta.size);
        let (lo, _) = if d.index == 1 {
            cfg.limits.system_disk_gib()
        } else {
            cfg.limits.data_disk_gib()
        };
        let size_gib = d.size_gib.unwrap_or_else(|| vbytes.div_ceil(GIB).max(lo));
        disks_out.push(Disk {
            index: d.index,
            bucket: d.bucket.clone(),
            object: d.object.clone(),
            format: d.format.clone(),
            size_gib,
            virtual_bytes: vbytes,
        });
    }
    let mut data = call.shared.ecs.lock();
    if !name.is_empty()
        && data
            .images
            .values()
            .any(|i| i.region == region && i.name == name)
    {
        return Err(EcsError::new(
            400,
            "InvalidImageName.Duplicated",
            "The destination image is exist.",
        ));
    }
    if dry_run {
        return Err(EcsError::new(
            400,
            "DryRunOperation",
            "Request validation has been passed with DryRun flag set.",
        ));
    }
    let suffix = random_alnum(18);
    let image_id = format!("m-{suffix}");
    let task_id = format!("t-{}", random_alnum(18));
    let now = unix_now_ms();
    let faults = call.shared.faults();
    let too_big = disks_out
        .iter()
        .find(|d| d.virtual_bytes > d.size_gib.saturating_mul(GIB));
    let failure = if faults.fail_import {
        Some((
            "ImportImageFailed".to_string(),
            "Importing image is failed (injected by the emulator's fail_import fault).".to_string(),
        ))
    } else {
        too_big.map(|d| {
            ("InvalidImageSize".to_string(), format!("The virtual size of DiskDeviceMapping.{}.OSSObject ({} bytes) exceeds DiskImageSize {} GiB.", d.index, d.virtual_bytes, d.size_gib))
        })
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let duration_ms = (cfg.task_seconds * 1000.0).round() as u64;
    let image = Image {
        image_id: image_id.clone(),
        region: region.clone(),
        name: if name.is_empty() {
            format!("import-{suffix}")
        } else {
            name
        },
        description,
        architecture: arch,
        os_type,
        platform,
        boot_mode: boot,
        license_type: license,
        nvme_support: nvme,
        imds_support: imds,
        detection_strategy: detection,
        tags,
        disks: disks_out,
        created_ms: now,
        task_id: task_id.clone(),
        copied_from: None,
        ready_ms: None,
        shared_with: Vec::new(),
    };
    data.images.insert(image_id.clone(), image);
    data.tasks.insert(
        task_id.clone(),
        Task {
            task_id: task_id.clone(),
            region: region.clone(),
            image_id: image_id.clone(),
            created_ms: now,
            duration_ms,
            failure,
            cancelled_ms: None,
        },
    );
    if !token.is_empty() {
        data.client_tokens.insert(
            token,
            TokenEntry {
                fingerprint: fingerprint(p),
                image_id: image_id.clone(),
                task_id: task_id.clone(),
                region: region.clone(),
            },
        );
    }
    let snapshot = data.clone();
    drop(data);
    call.shared.ecs.save(&snapshot);
    Ok(response(&image_id, &task_id, &region))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        for ok in ["ab", "ecs-preflight-test", "Ubuntu_22.04:lts", "镜像-1"] {
            assert!(valid_image_name(ok), "{ok}");
        }
        for bad in [
            "a",
            "1abc",
            "aliyun-x",
            "acs:x",
            "has space",
            "x/http://y",
            "-ab",
            &"a".repeat(129),
        ] {
            assert!(!valid_image_name(bad), "{bad}");
        }
    }

    #[test]
    fn virtual_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q");
        let mut q = vec![0u8; 64];
        q[0..4].copy_from_slice(b"QFI\xfb");
        q[24..32].copy_from_slice(&(10 * GIB).to_be_bytes());
        std::fs::write(&p, &q).unwrap();
        assert_eq!(virtual_size(std::fs::File::open(&p).unwrap(), 64), 10 * GIB);
        let mut v = vec![0u8; 1024];
        v[512..520].copy_from_slice(b"conectix");
        v[560..568].copy_from_slice(&(3 * GIB).to_be_bytes());
        std::fs::write(&p, &v).unwrap();
        assert_eq!(
            virtual_size(std::fs::File::open(&p).unwrap(), 1024),
            3 * GIB
        );
        std::fs::write(&p, b"raw").unwrap();
        assert_eq!(virtual_size(std::fs::File::open(&p).unwrap(), 3), 3);
    }
}
