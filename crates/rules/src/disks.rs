//! Rules on the disks: how many, in which order, their format, their
//! `DiskImageSize`, and where in OSS they are (bucket, object key).

use crate::input::{DiskFacts, DiskRole, ImportParams, SizeLimits, GIB, MAX_DISKS};
use crate::plan::DiskDeviceMapping;
use crate::tables;
use crate::Sink;
use preflight_report::{Rule, Severity};
use std::path::Path;

/// No disk at all.
pub static DISKS_MISSING: Rule = Rule::new(
    "MissingParameter.DiskDeviceMapping",
    Severity::Error,
    "ImportImage needs at least one DiskDeviceMapping (the system disk)",
    "Name the system disk image.",
);

/// More than 17 disks.
pub static TOO_MANY_DISKS: Rule = Rule::new(
    "DiskDeviceMapping.TooMany",
    Severity::Error,
    "At most 17 disks: 1 system disk and 16 data disks (the API silently ignores DiskDeviceMapping.18 and later)",
    "Import at most 16 --data-disk images with the system disk; attach further disks to the instance later.",
);

/// A system disk after the first position.
pub static SYSTEM_DISK_NOT_FIRST: Rule = Rule::new(
    "DiskDeviceMapping.SystemDiskNotFirst",
    Severity::Error,
    "Only DiskDeviceMapping.1 is the system disk; every later disk is a data disk",
    "Give the system disk image first and the others with --data-disk.",
);

/// A data disk in the first position.
pub static DATA_DISK_FIRST: Rule = Rule::new(
    "DiskDeviceMapping.DataDiskFirst",
    Severity::Warning,
    "DiskDeviceMapping.1 is always the system disk: a data disk in first position is imported as a system disk",
    "Import data disks with --data-disk after a system disk image; --disk-role data only checks an image against the data-disk limits.",
);

/// Two disks would use the same OSS object.
pub static DUPLICATE_OBJECT: Rule = Rule::new(
    "DiskDeviceMapping.DuplicateObject",
    Severity::Error,
    "Two disks map to the same OSS bucket and object key",
    "Give the images different file names, or different --object keys.",
);

/// System disk `DiskImageSize` out of range or below the image's virtual size.
pub static SYSTEM_DISK_SIZE: Rule = Rule::new(
    "InvalidImageSize",
    Severity::Error,
    "System disk DiskImageSize must be at least the image's virtual size (rounded up to GiB) and within the profile's limits (classic 5–500 GiB, 2026 1–2048 GiB)",
    "Pass a --disk-image-size within the limits and at least the virtual size, or leave it out to let the plan choose.",
);

/// Data disk `DiskImageSize` out of range or below the image's virtual size.
pub static DATA_DISK_SIZE: Rule = Rule::new(
    "InvalidDataDiskSize",
    Severity::Error,
    "Data disk DiskImageSize must be at least the image's virtual size (rounded up to GiB) and within the profile's limits (classic 5–1000 GiB, 2026 1–2048 GiB)",
    "Shrink the data disk image to fit, or choose the size within the limits.",
);

/// The plan raised a small image's `DiskImageSize` to the minimum.
pub static SIZE_RAISED: Rule = Rule::new(
    "DiskImageSize.Raised",
    Severity::Info,
    "The image is smaller than the minimum DiskImageSize; the plan asks for the minimum",
    "Nothing to do: the disk is created at the minimum size and the guest can grow its filesystem.",
);

/// `Format` is not a value the API takes, or contradicts the detected format.
pub static FORMAT: Rule = Rule::new(
    "InvalidImageFormat.Malformed",
    Severity::Error,
    "Format must be RAW, VHD, QCOW2 or VMDK and match the format detected in the file",
    "Leave out --format (ECS detects it, and so does ecs-preflight), or give the detected one.",
);

/// VMDK is importable only in invitational preview.
pub static VMDK_PREVIEW: Rule = Rule::new(
    "VMDK.InvitationalPreview",
    Severity::Warning,
    "ImportImage takes VMDK only in invitational preview: accounts outside it are refused",
    "Convert to qcow2 to be safe: `qemu-img convert -O qcow2 IN.vmdk OUT.qcow2`.",
);

/// VHDX cannot be imported.
pub static VHDX: Rule = Rule::new(
    "VHDX.NotImportable",
    Severity::Error,
    "ImportImage does not take VHDX (only RAW, VHD, QCOW2 and VMDK)",
    "Convert it: `qemu-img convert -O qcow2 IN.vhdx OUT.qcow2`.",
);

/// No bucket: the plan has no `OSSBucket`.
pub static BUCKET_MISSING: Rule = Rule::new(
    "MissingParameter.OSSBucket",
    Severity::Info,
    "No bucket given: the plan's DiskDeviceMapping has no OSSBucket, which ImportImage requires",
    "Pass --bucket: an OSS bucket in the import region.",
);

/// A bucket name OSS cannot have.
pub static BUCKET_MALFORMED: Rule = Rule::new(
    "InvalidOSSBucket.Malformed",
    Severity::Error,
    "Bucket names are 3–63 characters: lower-case letters, digits and hyphens, starting and ending with a letter or digit",
    "Pass the bucket's name only (not oss://bucket or its endpoint), e.g. --bucket my-images.",
);

/// An object key OSS cannot have.
pub static OBJECT_MALFORMED: Rule = Rule::new(
    "InvalidOSSObject.Malformed",
    Severity::Error,
    "Object keys are 1–1023 bytes of UTF-8, not starting with '/' or '\\', without line breaks",
    "Pass the key inside the bucket, e.g. --object images/web.qcow2 (no leading '/', no oss:// prefix).",
);

/// An object key whose suffix ECS is not known to take.
pub static OBJECT_SUFFIX: Rule = Rule::new(
    "UnsupportedSuffix.OSSObject",
    Severity::Warning,
    "The object key does not end in .raw, .qcow2, .vhd or .vmdk; ECS refuses some suffixes and publishes no list",
    "Name the object after its format, e.g. --object NAME.qcow2.",
);

/// Longest OSS object key, in bytes.
const OBJECT_KEY_MAX_BYTES: usize = 1023;
/// OSS bucket name length limits.
const BUCKET_CHARS: std::ops::RangeInclusive<usize> = 3..=63;

/// Checks every disk and returns its planned mapping, index-aligned.
pub(crate) fn check(
    disks: &[DiskFacts],
    params: &ImportParams,
    limits: SizeLimits,
    sink: &mut Sink<'_>,
) -> Vec<DiskDeviceMapping> {
    if disks.is_empty() {
        sink.request(DISKS_MISSING.finding("no disk image given"));
    }
    if disks.len() > MAX_DISKS {
        sink.request(TOO_MANY_DISKS.finding(format!(
            "{} disks given: 1 system disk and {} data disks; at most 17 are allowed",
            disks.len(),
            disks.len() - 1
        )));
    }
    if let Some(bucket) = params.bucket.as_deref() {
        if let Some(f) = bucket_name(bucket) {
            sink.request(f);
        }
    }
    let mut mappings: Vec<DiskDeviceMapping> = Vec::with_capacity(disks.len());
    let mut missing_bucket = false;
    for (index, disk) in disks.iter().enumerate() {
        let dp = params.disk(index);
        for f in &disk.findings {
            sink.disk(index, f.clone());
        }
        match (index, disk.role) {
            (0, DiskRole::Data) => sink.disk(
                index,
                DATA_DISK_FIRST.finding(format!(
                    "{:?} is a data disk in first position, which ImportImage takes as the system disk",
                    disk.path
                )),
            ),
            (1.., DiskRole::System) => sink.disk(
                index,
                SYSTEM_DISK_NOT_FIRST.finding(format!(
                    "{:?} is a system disk in position {}; only the first disk is the system disk",
                    disk.path,
                    index + 1
                )),
            ),
            _ => {}
        }
        let format = format(disk, dp.format.as_deref(), index, sink);
        let disk_image_size = size(disk, dp.disk_image_size, limits, index, sink);

        if let Some(bucket) = dp.bucket.as_deref() {
            if let Some(f) = bucket_name(bucket) {
                sink.disk(index, f);
            }
        }
        let oss_bucket = dp.bucket.clone().or_else(|| params.bucket.clone());
        missing_bucket |= oss_bucket.is_none();
        let oss_object = dp.object.clone().or_else(|| file_name(&disk.path));
        if let Some(key) = oss_object.as_deref() {
            if let Some(f) = object_key(key) {
                sink.disk(index, f);
            } else if let Some(f) = object_suffix(key, format.as_deref()) {
                sink.disk(index, f);
            }
            let earlier = mappings
                .iter()
                .position(|m| m.oss_object.as_deref() == Some(key) && m.oss_bucket == oss_bucket);
            if let Some(first) = earlier {
                sink.disk(
                    index,
                    DUPLICATE_OBJECT.finding(format!(
                        "disk {} ({:?}) and disk {} ({:?}) both map to object {key:?} in bucket {}",
                        first + 1,
                        disks[first].path,
                        index + 1,
                        disk.path,
                        oss_bucket
                            .as_deref()
                            .map_or("(none given)".to_string(), |b| format!("{b:?}"))
                    )),
                );
            }
        }
        mappings.push(DiskDeviceMapping {
            format,
            oss_bucket,
            oss_object,
            disk_image_size,
        });
    }
    if missing_bucket {
        sink.request(
            BUCKET_MISSING.finding("no --bucket given: DiskDeviceMapping has no OSSBucket"),
        );
    }
    mappings
}

/// The API's spelling of a detected format, when ImportImage takes it.
fn api_format(detected: &str) -> Option<&'static str> {
    tables::case_insensitive_match(tables::FORMATS, detected)
}

/// The format checks; returns the planned `Format`: the detected format when
/// importable, else the given one (normalised to upper case when valid).
fn format(
    disk: &DiskFacts,
    given: Option<&str>,
    index: usize,
    sink: &mut Sink<'_>,
) -> Option<String> {
    let detected = disk.detected_format.as_deref();
    if detected.is_some_and(|d| d.eq_ignore_ascii_case("vhdx")) {
        sink.disk(
            index,
            VHDX.finding_with_hint(
                format!(
                    "{:?} is a VHDX image, which ImportImage does not take",
                    disk.path
                ),
                format!(
                    "Convert it: `qemu-img convert -O qcow2 {} {}`.",
                    disk.path,
                    with_extension(&disk.path, "qcow2")
                ),
            ),
        );
    }
    let detected_api = detected.and_then(api_format);
    let given_api = match given {
        None => None,
        Some(g) => match api_format(g) {
            Some(api) => {
                if let Some(d) = detected.filter(|d| !d.eq_ignore_ascii_case(api)) {
                    sink.disk(
                        index,
                        FORMAT.finding_with_hint(
                            format!("format {g:?} was given but {:?} is {d}", disk.path),
                            match detected_api {
                                Some(d) => format!("Pass --format {d} or leave --format out."),
                                None => {
                                    "Leave --format out; the detected format is not importable."
                                        .to_string()
                                }
                            },
                        ),
                    );
                }
                Some(api.to_string())
            }
            None => {
                sink.disk(
                    index,
                    FORMAT.finding(format!(
                        "format {g:?} is not one of {}",
                        tables::FORMATS.join(", ")
                    )),
                );
                Some(g.to_string())
            }
        },
    };
    let planned = detected_api.map(str::to_string).or(given_api);
    if planned.as_deref() == Some("VMDK") {
        sink.disk(
            index,
            VMDK_PREVIEW.finding_with_hint(
                format!(
                    "{:?} would be imported as VMDK, which is in invitational preview",
                    disk.path
                ),
                format!(
                    "Convert it to be safe: `qemu-img convert -O qcow2 {} {}`.",
                    disk.path,
                    with_extension(&disk.path, "qcow2")
                ),
            ),
        );
    }
    planned
}

/// The size checks; returns the planned `DiskImageSize`.
fn size(
    disk: &DiskFacts,
    given: Option<u64>,
    limits: SizeLimits,
    index: usize,
    sink: &mut Sink<'_>,
) -> Option<u64> {
    let role = disk.role;
    let (lo, hi) = limits.range(role);
    let rule = match role {
        DiskRole::System => &SYSTEM_DISK_SIZE,
        DiskRole::Data => &DATA_DISK_SIZE,
    };
    let needed = disk.virtual_size.map(|v| v.div_ceil(GIB));
    let virtual_note = |gib: u64| {
        let bytes = disk.virtual_size.unwrap_or(0);
        format!("{gib} GiB ({bytes} bytes, rounded up)")
    };
    match given {
        Some(s) => {
            if !(lo..=hi).contains(&s) {
                sink.disk(
                    index,
                    rule.finding_with_hint(
                        format!(
                            "DiskImageSize {s} GiB for the {role} disk {:?} is outside {lo}–{hi} GiB (size limits {limits})",
                            disk.path
                        ),
                        format!(
                            "Choose a size from {} to {hi} GiB, or leave --disk-image-size out to let the plan choose.",
                            needed.map_or(lo, |n| n.max(lo))
                        ),
                    ),
                );
            }
            if let Some(n) = needed.filter(|&n| s < n) {
                sink.disk(
                    index,
                    rule.finding_with_hint(
                        format!(
                            "DiskImageSize {s} GiB for {:?} is smaller than the image's virtual size, {}",
                            disk.path,
                            virtual_note(n)
                        ),
                        format!("Pass --disk-image-size {} or more, or leave it out.", n.max(lo)),
                    ),
                );
            }
            Some(s)
        }
        None => {
            let n = needed?;
            if n > hi {
                let hint = match limits {
                    SizeLimits::Classic => "Shrink the guest's filesystems and the virtual disk (e.g. `virt-resize --shrink`), or pass --size-limits 2026 if the Jun-2026 limits (up to 2048 GiB) apply to your account.",
                    SizeLimits::Y2026 => "ECS imports disks of at most 2048 GiB: shrink the guest's filesystems and the virtual disk (e.g. `virt-resize --shrink`).",
                };
                sink.disk(
                    index,
                    rule.finding_with_hint(
                        format!(
                            "the virtual size of {role} disk {:?} is {}, over the {hi} GiB limit (size limits {limits})",
                            disk.path,
                            virtual_note(n)
                        ),
                        hint,
                    ),
                );
            }
            if n < lo {
                sink.disk(
                    index,
                    SIZE_RAISED.finding(format!(
                        "{:?} is {}; the plan asks for DiskImageSize {lo} GiB, the {role} disk minimum (size limits {limits})",
                        disk.path,
                        virtual_note(n)
                    )),
                );
            }
            Some(n.max(lo))
        }
    }
}

/// The last component of `path`, the uploader's default object key.
fn file_name(path: &str) -> Option<String> {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
}

/// `path`'s file name with its extension replaced.
fn with_extension(path: &str, ext: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(
            || Path::new("image").to_path_buf(),
            |n| Path::new(n).to_path_buf(),
        )
        .with_extension(ext)
        .display()
        .to_string()
}

/// The OSS bucket naming rule.
pub(crate) fn bucket_name(bucket: &str) -> Option<preflight_report::Finding> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let n = bucket.chars().count();
    let why = if !BUCKET_CHARS.contains(&n) {
        format!("is {n} characters long; it must be 3 to 63")
    } else if let Some(bad) = bucket.chars().find(|&c| !ok_char(c)) {
        format!("contains {bad:?}; only lower-case letters, digits and '-' are allowed")
    } else if bucket.starts_with('-') || bucket.ends_with('-') {
        "starts or ends with '-'".to_string()
    } else {
        return None;
    };
    Some(BUCKET_MALFORMED.finding(format!("bucket name {bucket:?} {why}")))
}

/// The OSS object key rule.
pub(crate) fn object_key(key: &str) -> Option<preflight_report::Finding> {
    let why = if key.is_empty() {
        "is empty".to_string()
    } else if key.len() > OBJECT_KEY_MAX_BYTES {
        format!("is {} bytes long; at most 1023 are allowed", key.len())
    } else if key.starts_with('/') || key.starts_with('\\') {
        format!("starts with {:?}", &key[..1])
    } else if key.contains(['\r', '\n']) {
        "contains a line break".to_string()
    } else {
        return None;
    };
    Some(OBJECT_MALFORMED.finding(format!("object key {key:?} {why}")))
}

/// The known-suffix rule. Suffixes are compared ignoring case.
pub(crate) fn object_suffix(key: &str, format: Option<&str>) -> Option<preflight_report::Finding> {
    let lower = key.to_ascii_lowercase();
    if tables::OBJECT_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
        return None;
    }
    let ext = format
        .and_then(api_format)
        .map_or("qcow2".to_string(), str::to_ascii_lowercase);
    Some(OBJECT_SUFFIX.finding_with_hint(
        format!(
            "object key {key:?} does not end in {}",
            tables::OBJECT_SUFFIXES.join(", ")
        ),
        format!(
            "Name the object after its format: --object {}",
            Path::new(key).with_extension(ext).display()
        ),
    ))
}
