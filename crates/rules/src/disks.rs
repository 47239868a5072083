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
    "Import data disks with --data-disk after a system disk image; --disk-role data does not change how ImportImage treats the first disk, which is checked against the system-disk limits.",
);

/// Two disks would use the same OSS object.
pub static DUPLICATE_OBJECT: Rule = Rule::new(
    "DiskDeviceMapping.DuplicateObject",
    Severity::Error,
    "Two disks map to the same OSS bucket and object key",
    "Give the images different file names, or different --object keys.",
);

/// System disk `DiskImageSize` out of the profile's range. The first disk is
/// checked against these limits whatever role was declared: "When N is 1,
/// the value specifies the system disk size" (seed 004; seed 003: "When N
/// is set to 1, the disk is a system disk and its size ranges from 5 GiB to
/// 500 GiB").
pub static SYSTEM_DISK_SIZE: Rule = Rule::new(
    "InvalidImageSize",
    Severity::Error,
    "System disk (DiskDeviceMapping.1) DiskImageSize must be within the profile's limits (classic 5–500 GiB, 2026 1–2048 GiB)",
    "Pass a --disk-image-size within the limits, or leave it out to let the plan choose.",
);

/// Data disk `DiskImageSize` out of the profile's range.
pub static DATA_DISK_SIZE: Rule = Rule::new(
    "InvalidDataDiskSize",
    Severity::Error,
    "Data disk DiskImageSize must be within the profile's limits (classic 5–1000 GiB, 2026 1–2048 GiB)",
    "Shrink the data disk image to fit, or choose the size within the limits.",
);

/// A given `DiskImageSize` below the image's virtual size. Our rule, not the
/// API's words: the pages ask for at least "the actual space used by file
/// systems" (seed 003) or "the size of the imported image file" (seed 004).
/// Both are at most the virtual size, but the guest's partition table spans
/// the virtual disk (a GPT keeps its backup header in the last sector) and
/// its partitions and filesystems are laid out up to it: a disk cut below
/// the virtual size loses what lies past the cut.
pub static BELOW_VIRTUAL_SIZE: Rule = Rule::new(
    "DiskImageSize.BelowVirtualSize",
    Severity::Error,
    "ecs-preflight's rule (not the API's): DiskImageSize must be at least the image's virtual size rounded up to GiB, since the partitions reach the end of the virtual disk",
    "Pass a --disk-image-size of at least the virtual size, or leave it out to let the plan choose.",
);

/// The plan raised a small image's `DiskImageSize` to the minimum.
pub static SIZE_RAISED: Rule = Rule::new(
    "DiskImageSize.Raised",
    Severity::Info,
    "The image is smaller than the minimum DiskImageSize; the plan asks for the minimum",
    "Nothing to do: the disk is created at the minimum size and the guest can grow its filesystem.",
);

/// `Format` is not a value the API takes.
pub static FORMAT: Rule = Rule::new(
    "InvalidImageFormat.Malformed",
    Severity::Error,
    "Format must be RAW, VHD, QCOW2 or VMDK",
    "Leave out --format (ECS detects it, and so does ecs-preflight), or give one of RAW, VHD, QCOW2, VMDK.",
);

/// `Format` differs from the format detected in the file: the service uses
/// the detected one. Seed 004 (Format): "Default value: null, which
/// indicates that Alibaba Cloud automatically detects the image format. The
/// detected format prevails." The plan sends the detected format.
pub static FORMAT_MISMATCH: Rule = Rule::new(
    "Format.DetectedPrevails",
    Severity::Warning,
    "The given Format differs from the format detected in the file; ECS uses the detected one, and so does the plan",
    "Leave out --format, or give the detected one.",
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
    "The object key does not end in .raw, .img, .qcow2, .vhd or .vmdk; ECS refuses some suffixes and publishes no list",
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
                    "{:?} is a data disk in first position, which ImportImage takes as the system disk (checked against the system-disk limits)",
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
        // ImportImage takes DiskDeviceMapping.1 as the system disk and the
        // others as data disks, whatever role was declared (DataDiskFirst
        // and SystemDiskNotFirst say so): the limits follow the position.
        let role = if index == 0 {
            DiskRole::System
        } else {
            DiskRole::Data
        };
        let disk_image_size = size(disk, role, dp.disk_image_size, limits, index, sink);

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
                    let (sent, hint) = match detected_api {
                        Some(d) => (
                            format!("the plan sends Format={d}, the detected format, which ECS uses (\"The detected format prevails\")"),
                            format!("Pass --format {d} or leave --format out."),
                        ),
                        None => (
                            format!("the detected format is not importable, so the plan sends Format={api} as given"),
                            "Convert the image (see the other findings) and leave --format out.".to_string(),
                        ),
                    };
                    sink.disk(
                        index,
                        FORMAT_MISMATCH.finding_with_hint(
                            format!("format {g:?} was given but {:?} is {d}; {sent}", disk.path),
                            hint,
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
    role: DiskRole,
    given: Option<u64>,
    limits: SizeLimits,
    index: usize,
    sink: &mut Sink<'_>,
) -> Option<u64> {
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
                let from = needed.map_or(lo, |n| n.max(lo));
                let hint = if from > hi {
                    // No size fits: the image itself is over the limit.
                    too_big_hint(limits).to_string()
                } else {
                    format!(
                        "Choose a size from {from} to {hi} GiB, or leave --disk-image-size out to let the plan choose."
                    )
                };
                sink.disk(
                    index,
                    rule.finding_with_hint(
                        format!(
                            "DiskImageSize {s} GiB for the {role} disk {:?} is outside {lo}–{hi} GiB (size limits {limits})",
                            disk.path
                        ),
                        hint,
                    ),
                );
            }
            if let Some(n) = needed.filter(|&n| s < n) {
                let hint = if n.max(lo) > hi {
                    too_big_hint(limits).to_string()
                } else {
                    format!(
                        "Pass --disk-image-size {} or more, or leave it out.",
                        n.max(lo)
                    )
                };
                sink.disk(
                    index,
                    BELOW_VIRTUAL_SIZE.finding_with_hint(
                        format!(
                            "DiskImageSize {s} GiB for {:?} is smaller than the image's virtual size, {} (ecs-preflight's rule, not the API's)",
                            disk.path,
                            virtual_note(n)
                        ),
                        hint,
                    ),
                );
            }
            Some(s)
        }
        None => {
            let n = needed?;
            if n > hi {
                let hint = too_big_hint(limits);
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

/// What to do when the image's virtual size is over the profile's limit.
fn too_big_hint(limits: SizeLimits) -> &'static str {
    match limits {
        SizeLimits::Classic => "Shrink the guest's filesystems and the virtual disk (e.g. `virt-resize --shrink`), or pass --size-limits 2026 if the Jun-2026 limits (up to 2048 GiB) apply to your account.",
        SizeLimits::Y2026 => "ECS imports disks of at most 2048 GiB: shrink the guest's filesystems and the virtual disk (e.g. `virt-resize --shrink`).",
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
