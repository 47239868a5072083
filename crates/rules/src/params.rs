//! Rules on the request-level parameters: region, name, description,
//! architecture / OS / platform / boot mode / license, tags, features,
//! client token, detection strategy, CloudBox ARN.

use crate::input::{GuestFacts, ImportParams};
use crate::tables::{self, OsFamily};
use preflight_report::{Finding, Rule, Severity};

/// No `--region`: the plan has no `RegionId`, which ImportImage requires.
pub static REGION_MISSING: Rule = Rule::new(
    "MissingParameter.RegionId",
    Severity::Info,
    "No region given: the plan has no RegionId, which ImportImage requires",
    "Pass --region, e.g. --region cn-hangzhou: the region of the bucket the image is uploaded to.",
);

/// A `RegionId` that cannot be a region id; prevents `InvalidRegionId.NotFound`.
pub static REGION_MALFORMED: Rule = Rule::new(
    "InvalidRegionId.NotFound",
    Severity::Error,
    "RegionId does not look like a region id (lower-case words and digits joined by hyphens, e.g. cn-hangzhou)",
    "Pass the region id, not its name or endpoint: e.g. --region cn-hangzhou, ap-southeast-1.",
);

/// `ImageName` breaks the naming rule.
pub static IMAGE_NAME: Rule = Rule::new(
    "InvalidImageName.Malformed",
    Severity::Error,
    "ImageName: 2–128 characters, starts with a letter or a Chinese character, not with aliyun or acs:, no http:// or https://, only letters, digits, . : _ -",
    "Choose a name such as ubuntu-22.04-web: letters, digits, '.', ':', '_', '-', starting with a letter.",
);

/// `Description` breaks the rule.
pub static DESCRIPTION: Rule = Rule::new(
    "InvalidDescription.Malformed",
    Severity::Error,
    "Description: 2–256 characters, not starting with http:// or https://",
    "Write a description of 2 to 256 characters that does not start with a URL.",
);

/// `Architecture` is not a value the API takes.
pub static ARCHITECTURE: Rule = Rule::new(
    "InvalidArchitecture.Malformed",
    Severity::Error,
    "Architecture must be i386, x86_64 or arm64",
    "Pass --architecture x86_64, arm64 or i386 (amd64 is x86_64, aarch64 is arm64).",
);

/// `OSType` is not a value the API takes.
pub static OS_TYPE: Rule = Rule::new(
    "InvalidOSType.Malformed",
    Severity::Error,
    "OSType must be windows or linux",
    "Pass --os-type linux or --os-type windows.",
);

/// `Platform` is not a value the API takes.
pub static PLATFORM: Rule = Rule::new(
    "InvalidPlatform.Malformed",
    Severity::Error,
    "Platform must be one of the values of the Jun-2026 ImportImage page",
    "Pass one of the Platform values exactly as spelled (`ecs-preflight rules` lists them), or \"Others Linux\".",
);

/// `BootMode` is not a value the API takes.
pub static BOOT_MODE: Rule = Rule::new(
    "InvalidBootMode.Malformed",
    Severity::Error,
    "BootMode must be BIOS or UEFI",
    "Pass --boot-mode BIOS or --boot-mode UEFI (upper case).",
);

/// `BootMode=BIOS` with `Architecture=arm64`.
pub static BOOT_MODE_NOT_SUPPORTED: Rule = Rule::new(
    "InvalidBootMode.NotSupport",
    Severity::Error,
    "arm64 images boot only with UEFI",
    "Pass --boot-mode UEFI (or leave it out: arm64 defaults to UEFI).",
);

/// The platform is not offered on the architecture (e.g. Windows on arm64).
pub static PLATFORM_ARCHITECTURE: Rule = Rule::new(
    "InvalidArchitecture.PlatformUnsupported",
    Severity::Error,
    "The platform is not offered on the architecture (Windows on arm64, Windows Server 2012 and later on i386)",
    "Check --architecture and --platform: the image's OS must exist for that architecture.",
);

/// `LicenseType` is not a value the API takes.
pub static LICENSE_TYPE: Rule = Rule::new(
    "InvalidLicenseType.NotSupported",
    Severity::Error,
    "LicenseType must be Auto, Aliyun or BYOL",
    "Pass --license-type Auto, Aliyun or BYOL.",
);

/// `LicenseType=Auto`: taken by the older page, gone from the Jun-2026 one.
/// Seed 003: "Default value: Auto. Valid values: Auto, Aliyun, BYOL"; seed
/// 004 lists only "Aliyun" and "BYOL" ("Default value: Aliyun").
pub static LICENSE_TYPE_AUTO: Rule = Rule::new(
    "LicenseType.AutoNotInJun2026Page",
    Severity::Info,
    "LicenseType Auto is a value of the older ImportImage page; the Jun-2026 page lists only Aliyun and BYOL",
    "Pass --license-type Aliyun or BYOL to rely only on the current page's values.",
);

/// A Windows image with no `Platform` given or found: the API's default is
/// a Linux one. Seed 004 (Platform): "Default value: Others Linux."
pub static PLATFORM_DEFAULT_LINUX: Rule = Rule::new(
    "Platform.DefaultsToOthersLinux",
    Severity::Info,
    "OSType windows with no Platform: ImportImage then takes Platform \"Others Linux\"",
    "Pass --platform with the Windows version, e.g. --platform \"Windows Server 2022\" (or \"Other Windows\").",
);

/// A Windows import without `LicenseType`. The code is ours: the API
/// documents none for it.
pub static LICENSE_TYPE_MISSING: Rule = Rule::new(
    "MissingParameter.LicenseType",
    Severity::Warning,
    "OSType windows: the Jun-2026 page says LicenseType must be set as well",
    "Pass --license-type Aliyun (Alibaba Cloud activates and bills the licence) or BYOL (your own key).",
);

/// `OSType` disagrees with the family of `Platform`.
pub static OS_TYPE_PLATFORM: Rule = Rule::new(
    "OSType.PlatformMismatch",
    Severity::Warning,
    "OSType does not match the platform's family (or is left to its linux default with a Windows platform)",
    "Pass --os-type windows for Windows platforms and --os-type linux for the others.",
);

/// More than 20 tags.
pub static TAG_COUNT: Rule = Rule::new(
    "Tag.TooMany",
    Severity::Error,
    "At most 20 tags (Tag.N, N = 1..20)",
    "Keep at most 20 --tag options; tag the image later with TagResources if you need more.",
);

/// A tag key breaks the rule. The code is ours, in the shape of the API's
/// `Invalid*.Malformed` codes: the API documents the rule but no code.
pub static TAG_KEY: Rule = Rule::new(
    "InvalidTagKey.Malformed",
    Severity::Error,
    "Tag key: 1–128 characters, not starting with aliyun or acs:, no http:// or https://",
    "Rename the tag key: non-empty, at most 128 characters, no aliyun/acs: prefix, no URL.",
);

/// A tag value breaks the rule. The code is ours (see [`TAG_KEY`]).
pub static TAG_VALUE: Rule = Rule::new(
    "InvalidTagValue.Malformed",
    Severity::Error,
    "Tag value: 0–128 characters, not starting with acs:, no http:// or https://",
    "Shorten or change the tag value: at most 128 characters, no acs: prefix, no URL.",
);

/// Two tag keys equal ignoring case.
pub static TAG_DUPLICATE: Rule = Rule::new(
    "TagKey.Duplication",
    Severity::Error,
    "Tag keys must be unique, ignoring case",
    "Give each tag key once; keys differing only in case count as the same key.",
);

/// `ClientToken` breaks the rule.
pub static CLIENT_TOKEN: Rule = Rule::new(
    "InvalidClientToken.Malformed",
    Severity::Error,
    "ClientToken: ASCII only, at most 64 characters (an empty one is none)",
    "Use an ASCII token of at most 64 characters, e.g. a UUID.",
);

/// `DetectionStrategy` other than `Standard`.
pub static DETECTION_STRATEGY: Rule = Rule::new(
    "InvalidParameter.DetectionStrategy",
    Severity::Error,
    "DetectionStrategy must be Standard",
    "Pass --detection-strategy Standard, or leave it out to skip the cloud-side image check.",
);

/// `DetectionStrategy` with a Windows image: a note, not a refusal. Seed 004
/// (DetectionStrategy): "Most Linux and Windows versions are supported." Its
/// error table still has `ImageCheckUnsupported.WindowsImage` for the
/// versions the check does not cover, which it does not list.
pub static DETECTION_WINDOWS: Rule = Rule::new(
    "ImageCheckUnsupported.WindowsImage",
    Severity::Info,
    "DetectionStrategy with a Windows image: the Jun-2026 page says most Windows versions are supported, but the service refuses the ones its image check does not cover",
    "Nothing to do for a current Windows Server; if ImportImage answers ImageCheckUnsupported.WindowsImage, leave out --detection-strategy.",
);

/// `Features.ImdsSupport` other than `v1`/`v2`.
pub static IMDS_SUPPORT: Rule = Rule::new(
    "InvalidParameter.FeaturesImdsSupport",
    Severity::Error,
    "Features.ImdsSupport must be v1 or v2",
    "Pass --imds-support v1 or v2 (v2 only if the guest's cloud-init supports IMDS hardened mode).",
);

/// `Features.NvmeSupport` other than `supported`/`unsupported`. The code is
/// ours, named after the API's `InvalidParameter.FeaturesImdsSupport`; the
/// API documents no code for NvmeSupport.
pub static NVME_SUPPORT: Rule = Rule::new(
    "InvalidParameter.FeaturesNvmeSupport",
    Severity::Error,
    "Features.NvmeSupport must be supported or unsupported",
    "Pass --nvme-support supported (the guest has an NVMe driver) or unsupported.",
);

/// `StorageLocationArn` does not have the CloudBox ARN shape.
pub static STORAGE_LOCATION: Rule = Rule::new(
    "InvalidStorageLocation.NotFound",
    Severity::Error,
    "StorageLocationArn must be arn:acs:cloudbox:{RegionId}:{AliUid}:cloudbox/{CloudBoxId}",
    "Pass the CloudBox ARN, e.g. arn:acs:cloudbox:cn-hangzhou:123456:cloudbox/cb-xx123, or leave it out when not using OSS on CloudBox.",
);

/// Most tags one image takes.
pub const MAX_TAGS: usize = 20;

/// `ImageName` length limits, in characters.
const IMAGE_NAME_CHARS: std::ops::RangeInclusive<usize> = 2..=128;
/// `Description` length limits, in characters.
const DESCRIPTION_CHARS: std::ops::RangeInclusive<usize> = 2..=256;
/// Tag key and value limits, in characters.
const TAG_KEY_CHARS: std::ops::RangeInclusive<usize> = 1..=128;
const TAG_VALUE_MAX_CHARS: usize = 128;
/// `ClientToken` limit.
const CLIENT_TOKEN_MAX_CHARS: usize = 64;

/// Every request-level check. `guest` supplies values the user left out,
/// for the checks that combine parameters (boot mode × architecture,
/// platform × architecture, detection × Windows).
pub(crate) fn check(params: &ImportParams, guest: Option<&GuestFacts>, out: &mut Vec<Finding>) {
    match params.region.as_deref() {
        None => out.push(REGION_MISSING.finding("no --region given")),
        Some(region) => out.extend(region_id(region)),
    }
    out.extend(params.image_name.as_deref().and_then(image_name));
    out.extend(params.description.as_deref().and_then(description));
    let enums: [(&Rule, &str, &Option<String>, &[&'static str]); 7] = [
        (
            &ARCHITECTURE,
            "architecture",
            &params.architecture,
            tables::ARCHITECTURES,
        ),
        (&OS_TYPE, "OS type", &params.os_type, tables::OS_TYPES),
        (
            &BOOT_MODE,
            "boot mode",
            &params.boot_mode,
            tables::BOOT_MODES,
        ),
        (
            &LICENSE_TYPE,
            "license type",
            &params.license_type,
            tables::LICENSE_TYPES,
        ),
        (
            &IMDS_SUPPORT,
            "IMDS support",
            &params.imds_support,
            tables::IMDS_SUPPORT,
        ),
        (
            &NVME_SUPPORT,
            "NVMe support",
            &params.nvme_support,
            tables::NVME_SUPPORT,
        ),
        (
            &DETECTION_STRATEGY,
            "detection strategy",
            &params.detection_strategy,
            tables::DETECTION_STRATEGIES,
        ),
    ];
    for (rule, what, value, list) in enums {
        if let Some(value) = value {
            out.extend(one_of(rule, what, value, list));
        }
    }
    if let Some(platform) = params.platform.as_deref() {
        out.extend(platform_value(platform));
    }
    out.extend(combinations(params, guest));
    out.extend(tags(&params.tags));
    out.extend(params.client_token.as_deref().and_then(client_token));
    out.extend(
        params
            .storage_location_arn
            .as_deref()
            .and_then(storage_location_arn),
    );
}

/// `given`, else the guest's value.
pub(crate) fn effective<'a>(
    given: &'a Option<String>,
    guest: Option<&'a Option<String>>,
) -> Option<&'a str> {
    given
        .as_deref()
        .or_else(|| guest.and_then(Option::as_deref))
}

/// The checks that combine parameters, on the effective values (given, else
/// the guest's).
fn combinations(params: &ImportParams, guest: Option<&GuestFacts>) -> Vec<Finding> {
    let mut out = Vec::new();
    let architecture = effective(&params.architecture, guest.map(|g| &g.architecture));
    let os_type = effective(&params.os_type, guest.map(|g| &g.os_type));
    let platform = effective(&params.platform, guest.map(|g| &g.platform));
    let boot_mode = effective(&params.boot_mode, guest.map(|g| &g.boot_mode));
    let platform_entry = platform.and_then(tables::platform);

    if architecture == Some("arm64") && boot_mode == Some("BIOS") {
        out.push(BOOT_MODE_NOT_SUPPORTED.finding(
            "boot mode \"BIOS\" with architecture \"arm64\": arm64 images boot only with UEFI",
        ));
    }
    if let Some(p) = platform_entry {
        // The API's default architecture is x86_64.
        let arch = architecture.unwrap_or("x86_64");
        if tables::ARCHITECTURES.contains(&arch) && !p.architectures.contains(&arch) {
            out.push(PLATFORM_ARCHITECTURE.finding(format!(
                "platform {:?} is not offered on architecture {arch:?} (only on {})",
                p.name,
                p.architectures.join(", ")
            )));
        }
        match (p.family, os_type) {
            (OsFamily::Windows, None) => out.push(OS_TYPE_PLATFORM.finding(format!(
                "platform {:?} is Windows but no OS type is given, and ImportImage defaults OSType to linux",
                p.name
            ))),
            (family, Some(os)) if tables::OS_TYPES.contains(&os) && family.os_type() != os => {
                out.push(OS_TYPE_PLATFORM.finding(format!(
                    "OS type {os:?} does not match platform {:?}, a {} platform",
                    p.name,
                    family.os_type()
                )))
            }
            _ => {}
        }
    }
    let windows =
        os_type == Some("windows") || platform_entry.is_some_and(|p| p.family == OsFamily::Windows);
    if os_type == Some("windows") && params.license_type.is_none() {
        out.push(LICENSE_TYPE_MISSING.finding("OS type \"windows\" without a license type"));
    }
    if os_type == Some("windows") && platform.is_none() {
        out.push(PLATFORM_DEFAULT_LINUX.finding(
            "OS type \"windows\" with no --platform and none found in the guest: ImportImage will set Platform to \"Others Linux\"",
        ));
    }
    if params.license_type.as_deref() == Some("Auto") {
        out.push(LICENSE_TYPE_AUTO.finding(
            "license type \"Auto\" is not among the Jun-2026 page's values (Aliyun, BYOL); the older page's services take it",
        ));
    }
    if windows {
        if let Some(strategy) = params.detection_strategy.as_deref() {
            out.push(DETECTION_WINDOWS.finding(format!(
                "detection strategy {strategy:?} with a Windows image: supported for most Windows versions, refused for those the image check does not cover"
            )));
        }
    }
    out
}

/// `value` is in `list`, else a finding naming it (with a "did you mean"
/// hint when only the case differs).
fn one_of(rule: &Rule, what: &str, value: &str, list: &[&'static str]) -> Option<Finding> {
    if list.contains(&value) {
        return None;
    }
    let message = format!("{what} {value:?} is not one of {}", list.join(", "));
    Some(match tables::case_insensitive_match(list, value) {
        Some(fix) => rule.finding_with_hint(message, format!("Use the API's spelling: {fix:?}.")),
        None => rule.finding(message),
    })
}

/// `Platform` is one of the page's values.
pub(crate) fn platform_value(platform: &str) -> Option<Finding> {
    if tables::platform(platform).is_some() {
        return None;
    }
    let names: Vec<&str> = tables::PLATFORMS.iter().map(|p| p.name).collect();
    let message = format!("platform {platform:?} is not a Platform value ImportImage takes");
    Some(match tables::case_insensitive_match(&names, platform) {
        Some(fix) => {
            PLATFORM.finding_with_hint(message, format!("Use the API's spelling: {fix:?}."))
        }
        None => PLATFORM.finding_with_hint(
            message,
            format!(
                "Pass one of: {} (\"Others Linux\" when none fits).",
                names.join(", ")
            ),
        ),
    })
}

/// A region id: lower-case ASCII words and digits joined by single hyphens,
/// starting with letters, at least two parts (`cn-hangzhou`,
/// `ap-southeast-1`, `cn-beijing-finance-1`).
pub(crate) fn region_id(region: &str) -> Option<Finding> {
    if let Some(rest) = region.strip_prefix("oss-") {
        let id = rest.split('.').next().unwrap_or(rest);
        return Some(REGION_MALFORMED.finding_with_hint(
            format!("region {region:?} is an OSS location or endpoint, not a region id"),
            format!("Pass the region id: --region {id}"),
        ));
    }
    let parts: Vec<&str> = region.split('-').collect();
    let well_formed = parts.len() >= 2
        && region.len() <= 64
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts[0].len() >= 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase());
    if well_formed {
        None
    } else {
        Some(REGION_MALFORMED.finding(format!("region {region:?} does not look like a region id")))
    }
}

/// A Chinese (CJK unified ideograph) character.
fn is_chinese(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2A6DF}')
}

/// `http://` or `https://` in `s`, compared as the pages write them: lower
/// case ("It cannot contain http:// or https://", seed 004).
fn contains_url(s: &str) -> Option<&'static str> {
    ["http://", "https://"].into_iter().find(|u| s.contains(u))
}

/// The `ImageName` rule. Prefixes are compared case-sensitively, as seed 004
/// writes them ("cannot start with aliyun or acs:"): `AliyunLinux3-web` is a
/// valid name, `aliyun-x` is not.
pub(crate) fn image_name(name: &str) -> Option<Finding> {
    let f = |why: String| Some(IMAGE_NAME.finding(format!("image name {name:?} {why}")));
    let n = name.chars().count();
    if !IMAGE_NAME_CHARS.contains(&n) {
        return f(format!("is {n} characters long; it must be 2 to 128"));
    }
    for prefix in ["aliyun", "acs:"] {
        if name.starts_with(prefix) {
            return f(format!("starts with {prefix:?}"));
        }
    }
    if let Some(url) = contains_url(name) {
        return f(format!("contains {url:?}"));
    }
    if let Some(first) = name.chars().next() {
        if !(first.is_ascii_alphabetic() || is_chinese(first)) {
            return f(format!(
                "starts with {first:?}; it must start with a letter or a Chinese character"
            ));
        }
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || is_chinese(c) || ".:_-".contains(c);
    if let Some(bad) = name.chars().find(|&c| !allowed(c)) {
        return f(format!(
            "contains {bad:?}; only letters, digits, '.', ':', '_' and '-' are allowed"
        ));
    }
    None
}

/// The `Description` rule.
pub(crate) fn description(text: &str) -> Option<Finding> {
    let n = text.chars().count();
    if !DESCRIPTION_CHARS.contains(&n) {
        return Some(DESCRIPTION.finding(format!(
            "description {text:?} is {n} characters long; it must be 2 to 256"
        )));
    }
    for url in ["http://", "https://"] {
        if text.starts_with(url) {
            return Some(DESCRIPTION.finding(format!("description {text:?} starts with {url:?}")));
        }
    }
    None
}

/// The tag rules: count, key, value, duplicates.
pub(crate) fn tags(tags: &[(String, String)]) -> Vec<Finding> {
    let mut out = Vec::new();
    if tags.len() > MAX_TAGS {
        out.push(TAG_COUNT.finding(format!(
            "{} tags given; at most {MAX_TAGS} are allowed",
            tags.len()
        )));
    }
    let mut seen: Vec<(String, &str)> = Vec::new();
    for (key, value) in tags {
        out.extend(tag_key(key));
        out.extend(tag_value(key, value));
        let folded = key.to_lowercase();
        match seen.iter().find(|(k, _)| *k == folded) {
            Some((_, first)) => out.push(TAG_DUPLICATE.finding(format!(
                "tag key {key:?} repeats {first:?} (keys are compared ignoring case)"
            ))),
            None => seen.push((folded, key)),
        }
    }
    out
}

/// Seed 004 (Tag.N.Key): "cannot start with aliyun or acs:. It cannot
/// contain http:// or https://", compared case-sensitively (`AliyunCost` is
/// a valid key).
fn tag_key(key: &str) -> Option<Finding> {
    let f = |why: String| Some(TAG_KEY.finding(format!("tag key {key:?} {why}")));
    let n = key.chars().count();
    if !TAG_KEY_CHARS.contains(&n) {
        return f(format!("is {n} characters long; it must be 1 to 128"));
    }
    for prefix in ["aliyun", "acs:"] {
        if key.starts_with(prefix) {
            return f(format!("starts with {prefix:?}"));
        }
    }
    contains_url(key).and_then(|url| f(format!("contains {url:?}")))
}

/// Seed 004 (Tag.N.Value): "cannot start with acs:. It cannot contain
/// http:// or https://", compared case-sensitively.
fn tag_value(key: &str, value: &str) -> Option<Finding> {
    let f = |why: String| Some(TAG_VALUE.finding(format!("value {value:?} of tag {key:?} {why}")));
    let n = value.chars().count();
    if n > TAG_VALUE_MAX_CHARS {
        return f(format!("is {n} characters long; it must be at most 128"));
    }
    if value.starts_with("acs:") {
        return f("starts with \"acs:\"".to_string());
    }
    contains_url(value).and_then(|url| f(format!("contains {url:?}")))
}

/// The `ClientToken` rule. An empty token is no token (the plan drops it):
/// seed 004 sets only "ASCII characters and cannot exceed 64 characters".
pub(crate) fn client_token(token: &str) -> Option<Finding> {
    if let Some(bad) = token.chars().find(|c| !c.is_ascii()) {
        return Some(CLIENT_TOKEN.finding(format!(
            "client token {token:?} contains the non-ASCII character {bad:?}"
        )));
    }
    if token.len() > CLIENT_TOKEN_MAX_CHARS {
        return Some(CLIENT_TOKEN.finding(format!(
            "client token {token:?} is {} characters long; it must be at most 64",
            token.len()
        )));
    }
    None
}

/// `arn:acs:cloudbox:{RegionId}:{AliUid}:cloudbox/{CloudBoxId}`: a region
/// id, a numeric account id, a non-empty CloudBox id without `/` or `:`.
pub(crate) fn storage_location_arn(arn: &str) -> Option<Finding> {
    let parts: Vec<&str> = arn.split(':').collect();
    let well_formed = match parts.as_slice() {
        ["arn", "acs", "cloudbox", region, uid, resource] => {
            region_id(region).is_none()
                && !uid.is_empty()
                && uid.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("cloudbox/").is_some_and(|id| {
                    !id.is_empty() && !id.contains('/') && !id.chars().any(char::is_whitespace)
                })
        }
        _ => false,
    };
    if well_formed {
        None
    } else {
        Some(STORAGE_LOCATION.finding(format!(
            "storage location ARN {arn:?} is not of the form arn:acs:cloudbox:{{RegionId}}:{{AliUid}}:cloudbox/{{CloudBoxId}}"
        )))
    }
}
