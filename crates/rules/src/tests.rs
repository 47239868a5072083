//! One test per rule (violation → code, boundaries pass), plan derivation,
//! JSON shape.

use super::*;
use preflight_report::Severity;

const QCOW2_20G: u64 = 20 * GIB;

fn valid_params() -> ImportParams {
    ImportParams {
        region: Some("cn-hangzhou".into()),
        bucket: Some("my-images".into()),
        image_name: Some("ubuntu-22.04_web:v1".into()),
        description: Some("Web server image".into()),
        architecture: Some("x86_64".into()),
        os_type: Some("linux".into()),
        platform: Some("Ubuntu".into()),
        boot_mode: Some("BIOS".into()),
        license_type: Some("Aliyun".into()),
        tags: vec![("env".into(), "prod".into())],
        ..ImportParams::default()
    }
}

fn disk(path: &str, format: &str, bytes: u64) -> DiskFacts {
    DiskFacts::new(path, Some(format), Some(bytes), DiskRole::System)
}

fn data_disk(path: &str, bytes: u64) -> DiskFacts {
    DiskFacts::new(path, Some("qcow2"), Some(bytes), DiskRole::Data)
}

fn codes(ev: &Evaluation) -> Vec<&str> {
    ev.findings().map(|f| f.code.as_str()).collect()
}

/// Evaluates a clean 20 GiB qcow2 with `valid_params()` changed by `edit`.
fn with(edit: impl FnOnce(&mut ImportParams)) -> Evaluation {
    let mut p = valid_params();
    edit(&mut p);
    evaluate(
        &[disk("disk.qcow2", "qcow2", QCOW2_20G)],
        &p,
        None,
        SizeLimits::Classic,
    )
}

#[track_caller]
fn assert_error(ev: &Evaluation, code: &str) {
    assert!(
        codes(ev).contains(&code),
        "expected {code}, got {:?}",
        codes(ev)
    );
    assert!(ev.has_errors(), "{code} should make check exit 1");
}

#[track_caller]
fn assert_only(ev: &Evaluation, code: &str, severity: Severity) {
    assert_eq!(codes(ev), vec![code], "{:#?}", ev.findings);
    assert_eq!(ev.findings[0].finding.severity, severity);
}

#[track_caller]
fn assert_clean(ev: &Evaluation) {
    assert!(
        ev.findings.is_empty(),
        "expected no findings, got {:#?}",
        ev.findings
    );
}

fn message(ev: &Evaluation, code: &str) -> String {
    ev.findings()
        .find(|f| f.code == code)
        .map(|f| f.message.clone())
        .unwrap_or_default()
}

// ---------- plan derivation ----------

#[test]
fn clean_20_gib_qcow2_has_no_findings_and_plans_20() {
    let ev = with(|_| {});
    assert_clean(&ev);
    assert!(!ev.has_errors());
    let m = &ev.plan.disk_device_mappings;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].disk_image_size, Some(20));
    assert_eq!(m[0].format.as_deref(), Some("QCOW2"));
    assert_eq!(m[0].oss_bucket.as_deref(), Some("my-images"));
    assert_eq!(m[0].oss_object.as_deref(), Some("disk.qcow2"));
    assert_eq!(ev.plan.region_id.as_deref(), Some("cn-hangzhou"));
}

#[test]
fn two_gib_image_plans_five_with_an_info_finding() {
    let ev = evaluate(
        &[disk("small.qcow2", "qcow2", 2 * GIB)],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_only(&ev, "DiskImageSize.Raised", Severity::Info);
    assert!(!ev.has_errors());
    assert_eq!(ev.plan.disk_device_mappings[0].disk_image_size, Some(5));
}

#[test]
fn two_and_a_half_gib_rounds_up_to_three_then_raised_to_five() {
    let ev = evaluate(
        &[disk("d.raw", "raw", 5 * GIB / 2)],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_eq!(ev.plan.disk_device_mappings[0].disk_image_size, Some(5));
    assert!(message(&ev, "DiskImageSize.Raised").contains("3 GiB"));
    let ev = evaluate(
        &[disk("d.raw", "raw", 5 * GIB / 2)],
        &valid_params(),
        None,
        SizeLimits::Y2026,
    );
    assert_eq!(ev.plan.disk_device_mappings[0].disk_image_size, Some(3));
}

#[test]
fn one_byte_over_a_gib_rounds_up() {
    let ev = evaluate(
        &[disk("d.raw", "raw", QCOW2_20G + 1)],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_eq!(ev.plan.disk_device_mappings[0].disk_image_size, Some(21));
}

#[test]
fn profile_2026_plans_two_gib_as_two() {
    let ev = evaluate(
        &[disk("d.qcow2", "qcow2", 2 * GIB)],
        &valid_params(),
        None,
        SizeLimits::Y2026,
    );
    assert_clean(&ev);
    assert_eq!(ev.plan.disk_device_mappings[0].disk_image_size, Some(2));
}

#[test]
fn given_size_is_planned_as_given() {
    let ev = with(|p| {
        p.disks = vec![DiskParams {
            disk_image_size: Some(40),
            ..DiskParams::default()
        }]
    });
    assert_clean(&ev);
    assert_eq!(ev.plan.disk_device_mappings[0].disk_image_size, Some(40));
}

#[test]
fn unknown_virtual_size_leaves_the_size_absent() {
    let d = DiskFacts::new("x.qcow2", Some("qcow2"), None, DiskRole::System);
    let ev = evaluate(&[d], &valid_params(), None, SizeLimits::Classic);
    assert_clean(&ev);
    assert_eq!(ev.plan.disk_device_mappings[0].disk_image_size, None);
}

// ---------- DiskImageSize ----------

fn system_with_size(size: u64, limits: SizeLimits) -> Evaluation {
    let mut p = valid_params();
    p.disks = vec![DiskParams {
        disk_image_size: Some(size),
        ..DiskParams::default()
    }];
    evaluate(&[disk("d.qcow2", "qcow2", GIB)], &p, None, limits)
}

fn data_with_size(size: u64, limits: SizeLimits) -> Evaluation {
    let mut p = valid_params();
    p.disks = vec![
        DiskParams::default(),
        DiskParams {
            disk_image_size: Some(size),
            ..DiskParams::default()
        },
    ];
    evaluate(
        &[
            disk("sys.qcow2", "qcow2", QCOW2_20G),
            data_disk("data.qcow2", GIB),
        ],
        &p,
        None,
        limits,
    )
}

#[test]
fn classic_system_disk_5_and_500_pass_4_and_501_fail() {
    for ok in [5, 500] {
        assert_clean(&system_with_size(ok, SizeLimits::Classic));
    }
    for bad in [4, 501] {
        let ev = system_with_size(bad, SizeLimits::Classic);
        assert_error(&ev, "InvalidImageSize");
        assert!(message(&ev, "InvalidImageSize").contains(&format!("{bad} GiB")));
    }
}

#[test]
fn classic_data_disk_5_and_1000_pass_4_and_1001_fail() {
    for ok in [5, 1000] {
        assert_clean(&data_with_size(ok, SizeLimits::Classic));
    }
    for bad in [4, 1001] {
        let ev = data_with_size(bad, SizeLimits::Classic);
        assert_error(&ev, "InvalidDataDiskSize");
        assert_eq!(ev.findings[0].disk, Some(1));
        assert_eq!(ev.findings[0].path.as_deref(), Some("data.qcow2"));
    }
}

#[test]
fn profile_2026_takes_1_to_2048_for_both_roles() {
    for ok in [1, 2048] {
        assert_clean(&system_with_size(ok, SizeLimits::Y2026));
        assert_clean(&data_with_size(ok, SizeLimits::Y2026));
    }
    for bad in [0, 2049] {
        assert_error(
            &system_with_size(bad, SizeLimits::Y2026),
            "InvalidImageSize",
        );
        assert_error(
            &data_with_size(bad, SizeLimits::Y2026),
            "InvalidDataDiskSize",
        );
    }
}

#[test]
fn given_size_below_virtual_size_fails_with_a_code_of_ours() {
    let ev = with(|p| {
        p.disks = vec![DiskParams {
            disk_image_size: Some(19),
            ..DiskParams::default()
        }]
    });
    // Not the API's words (seed 004: "greater than or equal to the size of
    // the imported image file"), so not the API's code.
    assert_only(&ev, "DiskImageSize.BelowVirtualSize", Severity::Error);
    let m = message(&ev, "DiskImageSize.BelowVirtualSize");
    assert!(
        m.contains("smaller than the image's virtual size, 20 GiB") && m.contains("not the API's"),
        "{m}"
    );
    assert!(!is_api_code("DiskImageSize.BelowVirtualSize"));
}

#[test]
fn size_hint_never_offers_an_empty_range() {
    // A 501 GiB image with a given size out of range: no size fits the
    // classic system-disk limits, so no "from 501 to 500 GiB".
    let mut p = valid_params();
    p.disks = vec![DiskParams {
        disk_image_size: Some(600),
        ..DiskParams::default()
    }];
    let ev = evaluate(
        &[disk("big.raw", "raw", 501 * GIB)],
        &p,
        None,
        SizeLimits::Classic,
    );
    assert_error(&ev, "InvalidImageSize");
    for f in ev.findings() {
        assert!(!f.hint.contains("from 501 to 500"), "{}", f.hint);
    }
    let hint = &ev
        .findings()
        .find(|f| f.code == "InvalidImageSize")
        .unwrap()
        .hint;
    assert!(hint.contains("--size-limits 2026"), "{hint}");
    // Below the virtual size as well as over the limit: same.
    p.disks[0].disk_image_size = Some(400);
    let ev = evaluate(
        &[disk("big.raw", "raw", 501 * GIB)],
        &p,
        None,
        SizeLimits::Classic,
    );
    for f in ev.findings() {
        assert!(!f.hint.contains("501 or more"), "{}", f.hint);
    }
}

/// Seed 004: "When N is 1, the value specifies the system disk size"; seed
/// 003: "When N is set to 1, the disk is a system disk and its size ranges
/// from 5 GiB to 500 GiB". `--disk-role data` does not change that.
#[test]
fn first_disk_is_checked_as_a_system_disk_whatever_its_declared_role() {
    let ev = evaluate(
        &[data_disk("d.raw", 800 * GIB)],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_error(&ev, "InvalidImageSize");
    assert!(codes(&ev).contains(&"DiskDeviceMapping.DataDiskFirst"));
    let mut p = valid_params();
    p.disks = vec![DiskParams {
        disk_image_size: Some(700),
        ..DiskParams::default()
    }];
    let ev = evaluate(&[data_disk("d.raw", GIB)], &p, None, SizeLimits::Classic);
    assert_error(&ev, "InvalidImageSize");
}

#[test]
fn system_image_over_500_gib_fails_classic_passes_2026() {
    let d = [disk("big.raw", "raw", 600 * GIB)];
    let ev = evaluate(&d, &valid_params(), None, SizeLimits::Classic);
    assert_error(&ev, "InvalidImageSize");
    assert_eq!(ev.plan.disk_device_mappings[0].disk_image_size, Some(600));
    assert_clean(&evaluate(&d, &valid_params(), None, SizeLimits::Y2026));
    let ev = evaluate(
        &[disk("huge.raw", "raw", 2049 * GIB)],
        &valid_params(),
        None,
        SizeLimits::Y2026,
    );
    assert_error(&ev, "InvalidImageSize");
}

#[test]
fn data_disk_of_800_gib_passes_classic_where_a_system_disk_fails() {
    let sys = disk("sys.qcow2", "qcow2", QCOW2_20G);
    let ev = evaluate(
        &[sys.clone(), data_disk("d.raw", 800 * GIB)],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_clean(&ev);
    let ev = evaluate(
        &[disk("d.raw", "raw", 800 * GIB)],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_error(&ev, "InvalidImageSize");
    let ev = evaluate(
        &[sys, data_disk("d.raw", 1001 * GIB)],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_error(&ev, "InvalidDataDiskSize");
}

// ---------- disks ----------

fn many_disks(n: usize) -> Vec<DiskFacts> {
    (0..n)
        .map(|i| match i {
            0 => disk("sys.qcow2", "qcow2", QCOW2_20G),
            _ => data_disk(&format!("data{i}.qcow2"), 10 * GIB),
        })
        .collect()
}

#[test]
fn seventeen_disks_pass_eighteen_fail() {
    let ev = evaluate(&many_disks(17), &valid_params(), None, SizeLimits::Classic);
    assert_clean(&ev);
    assert_eq!(ev.plan.disk_device_mappings.len(), 17);
    let ev = evaluate(&many_disks(18), &valid_params(), None, SizeLimits::Classic);
    assert_error(&ev, "DiskDeviceMapping.TooMany");
    assert!(message(&ev, "DiskDeviceMapping.TooMany").starts_with("18 disks"));
}

#[test]
fn no_disk_fails() {
    let ev = evaluate(&[], &valid_params(), None, SizeLimits::Classic);
    assert_only(&ev, "MissingParameter.DiskDeviceMapping", Severity::Error);
}

#[test]
fn system_disk_after_the_first_fails_data_disk_first_warns() {
    let ev = evaluate(
        &[
            disk("a.qcow2", "qcow2", QCOW2_20G),
            disk("b.qcow2", "qcow2", QCOW2_20G),
        ],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_error(&ev, "DiskDeviceMapping.SystemDiskNotFirst");
    let ev = evaluate(
        &[data_disk("d.qcow2", QCOW2_20G)],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_only(&ev, "DiskDeviceMapping.DataDiskFirst", Severity::Warning);
}

#[test]
fn two_disks_with_the_same_object_fail() {
    let ev = evaluate(
        &[
            disk("sys.qcow2", "qcow2", QCOW2_20G),
            data_disk("a/data.qcow2", GIB * 10),
            data_disk("b/data.qcow2", GIB * 10),
        ],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_error(&ev, "DiskDeviceMapping.DuplicateObject");
    assert_eq!(ev.findings.len(), 1);
    assert_eq!(ev.findings[0].disk, Some(2));
}

#[test]
fn role_of_first_and_later_disks() {
    let mut p = ImportParams::default();
    assert_eq!(p.role_of(0), DiskRole::System);
    p.disk_role = Some(DiskRole::Data);
    assert_eq!(p.role_of(0), DiskRole::Data);
    assert_eq!(p.role_of(3), DiskRole::Data);
}

#[test]
fn format_engine_findings_flow_through_attributed_to_their_disk() {
    static BACKING: Rule = Rule::new(
        "QCOW2.BackingFile",
        Severity::Error,
        "backing file",
        "flatten it",
    );
    let mut d = disk("overlay.qcow2", "qcow2", QCOW2_20G);
    d.findings
        .push(BACKING.finding("backing file \"base.qcow2\""));
    let ev = evaluate(&[d], &valid_params(), None, SizeLimits::Classic);
    assert_error(&ev, "QCOW2.BackingFile");
    assert_eq!(ev.findings[0].disk, Some(0));
    assert_eq!(ev.findings[0].path.as_deref(), Some("overlay.qcow2"));
}

// ---------- format ----------

#[test]
/// Seed 004 (Format): "The detected format prevails." A warning, and the
/// plan sends the detected format.
fn format_different_from_detected_warns_and_the_detected_one_is_sent() {
    let ev = with(|p| {
        p.disks = vec![DiskParams {
            format: Some("RAW".into()),
            ..DiskParams::default()
        }]
    });
    assert_only(&ev, "Format.DetectedPrevails", Severity::Warning);
    let m = message(&ev, "Format.DetectedPrevails");
    assert!(
        m.contains("\"RAW\"") && m.contains("sends Format=QCOW2"),
        "{m}"
    );
    assert_eq!(
        ev.plan.disk_device_mappings[0].format.as_deref(),
        Some("QCOW2")
    );
}

#[test]
fn format_in_any_case_matching_detected_passes_and_is_normalised() {
    let ev = with(|p| {
        p.disks = vec![DiskParams {
            format: Some("qcow2".into()),
            ..DiskParams::default()
        }]
    });
    assert_clean(&ev);
    assert_eq!(
        ev.plan.disk_device_mappings[0].format.as_deref(),
        Some("QCOW2")
    );
}

#[test]
fn unknown_format_value_fails() {
    let ev = with(|p| {
        p.disks = vec![DiskParams {
            format: Some("ISO".into()),
            ..DiskParams::default()
        }]
    });
    assert_error(&ev, "InvalidImageFormat.Malformed");
}

#[test]
fn given_format_is_planned_when_nothing_was_detected() {
    let mut p = valid_params();
    p.disks = vec![DiskParams {
        format: Some("raw".into()),
        ..DiskParams::default()
    }];
    let d = DiskFacts::new("d.raw", None, Some(QCOW2_20G), DiskRole::System);
    let ev = evaluate(&[d], &p, None, SizeLimits::Classic);
    assert_clean(&ev);
    assert_eq!(
        ev.plan.disk_device_mappings[0].format.as_deref(),
        Some("RAW")
    );
}

#[test]
fn vmdk_is_a_preview_warning() {
    let ev = evaluate(
        &[disk("d.vmdk", "vmdk", QCOW2_20G)],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_only(&ev, "VMDK.InvitationalPreview", Severity::Warning);
    assert_eq!(
        ev.plan.disk_device_mappings[0].format.as_deref(),
        Some("VMDK")
    );
}

#[test]
fn vhdx_is_not_importable_and_the_hint_converts_it() {
    let ev = evaluate(
        &[disk("/img/w.vhdx", "vhdx", QCOW2_20G)],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_error(&ev, "VHDX.NotImportable");
    let f = ev
        .findings()
        .find(|f| f.code == "VHDX.NotImportable")
        .unwrap();
    assert_eq!(
        f.hint,
        "Convert it: `qemu-img convert -O qcow2 /img/w.vhdx w.qcow2`."
    );
    assert_eq!(ev.plan.disk_device_mappings[0].format, None);
}

// ---------- bucket, object, region ----------

#[test]
fn object_defaults_to_the_file_name_and_can_be_given() {
    let ev = evaluate(
        &[disk("/srv/images/web.qcow2", "qcow2", QCOW2_20G)],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    assert_eq!(
        ev.plan.disk_device_mappings[0].oss_object.as_deref(),
        Some("web.qcow2")
    );
    let ev = with(|p| {
        p.disks = vec![DiskParams {
            object: Some("img/x.qcow2".into()),
            ..DiskParams::default()
        }]
    });
    assert_clean(&ev);
    assert_eq!(
        ev.plan.disk_device_mappings[0].oss_object.as_deref(),
        Some("img/x.qcow2")
    );
}

#[test]
fn unknown_object_suffix_warns() {
    let ev = with(|p| {
        p.disks = vec![DiskParams {
            object: Some("img/web.disk".into()),
            ..DiskParams::default()
        }]
    });
    assert_only(&ev, "UnsupportedSuffix.OSSObject", Severity::Warning);
    let f = ev.findings().next().unwrap();
    assert!(f.hint.ends_with("--object img/web.qcow2"), "{}", f.hint);
    for ok in ["a.raw", "a.qcow2", "a.vhd", "a.vmdk", "A.QCOW2", "root.img"] {
        assert_clean(&with(|p| {
            p.disks = vec![DiskParams {
                object: Some(ok.into()),
                ..DiskParams::default()
            }]
        }));
    }
}

#[test]
fn malformed_object_key_fails() {
    for bad in ["/web.qcow2", ""] {
        let ev = with(|p| {
            p.disks = vec![DiskParams {
                object: Some(bad.into()),
                ..DiskParams::default()
            }]
        });
        assert_error(&ev, "InvalidOSSObject.Malformed");
    }
    let long = format!("{}.raw", "k".repeat(1020));
    let ev = with(|p| {
        p.disks = vec![DiskParams {
            object: Some(long),
            ..DiskParams::default()
        }]
    });
    assert_error(&ev, "InvalidOSSObject.Malformed");
}

#[test]
fn malformed_bucket_fails() {
    for bad in ["My_Bucket", "oss://my-images", "ab", "-abc"] {
        let ev = with(|p| p.bucket = Some(bad.into()));
        assert_error(&ev, "InvalidOSSBucket.Malformed");
    }
    assert_clean(&with(|p| p.bucket = Some("abc".into())));
    assert_clean(&with(|p| p.bucket = Some("a".repeat(63))));
}

#[test]
fn per_disk_bucket_overrides_the_default() {
    let ev = with(|p| {
        p.disks = vec![DiskParams {
            bucket: Some("other-bucket".into()),
            ..DiskParams::default()
        }]
    });
    assert_eq!(
        ev.plan.disk_device_mappings[0].oss_bucket.as_deref(),
        Some("other-bucket")
    );
}

#[test]
fn missing_region_and_bucket_are_info_only() {
    let ev = with(|p| {
        p.region = None;
        p.bucket = None;
    });
    assert_eq!(
        codes(&ev),
        vec!["MissingParameter.RegionId", "MissingParameter.OSSBucket"]
    );
    assert!(!ev.has_errors());
}

#[test]
fn region_id_shape() {
    for ok in [
        "cn-hangzhou",
        "ap-southeast-1",
        "cn-beijing-finance-1",
        "us-east-1",
    ] {
        assert_clean(&with(|p| p.region = Some(ok.into())));
    }
    for bad in ["Hangzhou", "cn_hangzhou", "hangzhou", "cn-", "杭州"] {
        assert_error(
            &with(|p| p.region = Some(bad.into())),
            "InvalidRegionId.NotFound",
        );
    }
    let ev = with(|p| p.region = Some("oss-cn-hangzhou.aliyuncs.com".into()));
    assert_error(&ev, "InvalidRegionId.NotFound");
    assert_eq!(
        ev.findings[0].finding.hint,
        "Pass the region id: --region cn-hangzhou"
    );
}

// ---------- image name, description ----------

#[test]
fn image_name_of_2_and_128_characters_passes_1_and_129_fail() {
    for ok in ["ab".to_string(), format!("a{}", "b".repeat(127))] {
        assert_clean(&with(|p| p.image_name = Some(ok)));
    }
    for bad in ["a".to_string(), format!("a{}", "b".repeat(128))] {
        assert_error(
            &with(|p| p.image_name = Some(bad)),
            "InvalidImageName.Malformed",
        );
    }
}

#[test]
fn image_name_message_names_the_value() {
    let ev = with(|p| p.image_name = Some("aliyun-x".into()));
    assert_eq!(
        message(&ev, "InvalidImageName.Malformed"),
        "image name \"aliyun-x\" starts with \"aliyun\""
    );
}

#[test]
fn image_name_rules() {
    for bad in [
        "aliyun-x",
        "acs:x",
        "x-http://y",
        "1abc",
        "_abc",
        "a b",
        "web/1",
        "é-name",
    ] {
        assert_error(
            &with(|p| p.image_name = Some(bad.into())),
            "InvalidImageName.Malformed",
        );
    }
    // Seed 004 writes the prefixes in lower case: "cannot start with aliyun
    // or acs:. It cannot contain http:// or https://".
    for ok in [
        "中文镜像",
        "web中文-1.0:a_b",
        "Ubuntu",
        "aliyu",
        "AliyunLinux3-web",
        "ACS:x",
    ] {
        assert_clean(&with(|p| p.image_name = Some(ok.into())));
    }
}

#[test]
fn description_rules() {
    for ok in [
        "ab".to_string(),
        "d".repeat(256),
        "see https://example.com".into(),
        // "cannot start with http:// or https://" (seed 004), lower case.
        "HTTP://x".into(),
    ] {
        assert_clean(&with(|p| p.description = Some(ok)));
    }
    for bad in [
        "a".to_string(),
        "d".repeat(257),
        "https://example.com".into(),
    ] {
        assert_error(
            &with(|p| p.description = Some(bad)),
            "InvalidDescription.Malformed",
        );
    }
}

// ---------- enumerations and combinations ----------

#[test]
fn architecture_values() {
    for ok in ["i386", "x86_64", "arm64"] {
        let ev = with(|p| {
            p.architecture = Some(ok.into());
            p.boot_mode = Some("UEFI".into());
        });
        assert_clean(&ev);
    }
    let ev = with(|p| p.architecture = Some("X86_64".into()));
    assert_error(&ev, "InvalidArchitecture.Malformed");
    assert_eq!(
        ev.findings[0].finding.hint,
        "Use the API's spelling: \"x86_64\"."
    );
    assert_error(
        &with(|p| p.architecture = Some("amd64".into())),
        "InvalidArchitecture.Malformed",
    );
}

#[test]
fn os_type_values() {
    assert_error(
        &with(|p| p.os_type = Some("Linux".into())),
        "InvalidOSType.Malformed",
    );
    assert_error(
        &with(|p| p.os_type = Some("unix".into())),
        "InvalidOSType.Malformed",
    );
}

#[test]
fn platform_values() {
    for ok in tables::PLATFORMS
        .iter()
        .filter(|p| p.family == tables::OsFamily::Linux)
    {
        assert_clean(&with(|p| p.platform = Some(ok.name.into())));
    }
    assert_eq!(tables::PLATFORMS.len(), 28);
    let ev = with(|p| p.platform = Some("ubuntu".into()));
    assert_error(&ev, "InvalidPlatform.Malformed");
    assert_eq!(
        ev.findings[0].finding.hint,
        "Use the API's spelling: \"Ubuntu\"."
    );
    assert_error(
        &with(|p| p.platform = Some("Arch Linux".into())),
        "InvalidPlatform.Malformed",
    );
}

#[test]
fn boot_mode_values_and_arm64_only_uefi() {
    assert_error(
        &with(|p| p.boot_mode = Some("bios".into())),
        "InvalidBootMode.Malformed",
    );
    assert_error(
        &with(|p| p.boot_mode = Some("CSM".into())),
        "InvalidBootMode.Malformed",
    );
    let ev = with(|p| p.architecture = Some("arm64".into()));
    assert_only(&ev, "InvalidBootMode.NotSupport", Severity::Error);
    let ev = with(|p| {
        p.architecture = Some("arm64".into());
        p.boot_mode = None;
    });
    assert_clean(&ev);
    assert_eq!(ev.plan.boot_mode, None);
}

fn windows(platform: &str, architecture: &str) -> Evaluation {
    with(|p| {
        p.platform = Some(platform.into());
        p.os_type = Some("windows".into());
        p.architecture = Some(architecture.into());
        p.boot_mode = Some("UEFI".into());
        p.license_type = Some("BYOL".into());
    })
}

#[test]
fn platform_not_offered_on_the_architecture_fails() {
    let ev = windows("Windows Server 2019", "arm64");
    assert_only(
        &ev,
        "InvalidArchitecture.PlatformUnsupported",
        Severity::Error,
    );
    assert!(
        message(&ev, "InvalidArchitecture.PlatformUnsupported").contains("\"Windows Server 2019\"")
    );
    assert_error(
        &windows("Windows Server 2022", "i386"),
        "InvalidArchitecture.PlatformUnsupported",
    );
    assert_clean(&windows("Windows Server 2019", "x86_64"));
    assert_clean(&windows("Windows Server 2008", "i386"));
    assert_clean(&with(|p| {
        p.architecture = Some("arm64".into());
        p.boot_mode = Some("UEFI".into());
    }));
}

#[test]
fn license_type_values() {
    for ok in ["Aliyun", "BYOL"] {
        assert_clean(&with(|p| p.license_type = Some(ok.into())));
    }
    // Seed 003: "Default value: Auto. Valid values: Auto, Aliyun, BYOL";
    // seed 004 names only Aliyun and BYOL. Accepted, with a note.
    assert_only(
        &with(|p| p.license_type = Some("Auto".into())),
        "LicenseType.AutoNotInJun2026Page",
        Severity::Info,
    );
    assert_error(
        &with(|p| p.license_type = Some("byol".into())),
        "InvalidLicenseType.NotSupported",
    );
}

/// Seed 000 (ImageImport, platform): "Valid values: ... `Windows Server
/// 2012`, `Windows 7`, Default is `Others Linux`".
#[test]
fn windows_7_is_a_platform() {
    let ev = with(|p| {
        p.platform = Some("Windows 7".into());
        p.os_type = Some("windows".into());
    });
    assert_clean(&ev);
    assert_eq!(ev.plan.platform.as_deref(), Some("Windows 7"));
}

/// Seed 004 (Platform): "Default value: Others Linux."
#[test]
fn windows_without_platform_notes_the_linux_default() {
    let ev = with(|p| {
        p.platform = None;
        p.os_type = Some("windows".into());
    });
    assert_only(&ev, "Platform.DefaultsToOthersLinux", Severity::Info);
    assert!(message(&ev, "Platform.DefaultsToOthersLinux").contains("\"Others Linux\""));
    // A platform found in the guest fills the plan: no note.
    let g = GuestFacts {
        os_type: Some("windows".into()),
        platform: Some("Windows Server 2019".into()),
        ..GuestFacts::default()
    };
    let mut p = valid_params();
    p.platform = None;
    p.os_type = None;
    let ev = evaluate(
        &[disk("d.qcow2", "qcow2", QCOW2_20G)],
        &p,
        Some(&g),
        SizeLimits::Classic,
    );
    assert!(!codes(&ev).contains(&"Platform.DefaultsToOthersLinux"));
}

#[test]
fn our_codes_in_the_api_shape_are_known_as_ours() {
    let ours_like_api: Vec<&str> = RULES
        .iter()
        .map(|r| r.code)
        .filter(|c| !is_api_code(c))
        .filter(|c| c.starts_with("Invalid") || c.starts_with("Missing"))
        .collect();
    assert_eq!(
        ours_like_api,
        [
            "MissingParameter.RegionId",
            "MissingParameter.LicenseType",
            "InvalidTagKey.Malformed",
            "InvalidTagValue.Malformed",
            "InvalidParameter.FeaturesNvmeSupport",
            "MissingParameter.OSSBucket",
        ]
    );
    // Every code of ours is `Family.What`.
    for r in RULES.iter().filter(|r| !is_api_code(r.code)) {
        let (family, what) = r.code.split_once('.').unwrap_or_default();
        assert!(!family.is_empty() && !what.is_empty(), "{}", r.code);
    }
}

#[test]
fn windows_without_license_type_warns() {
    let ev = with(|p| {
        p.platform = Some("Windows Server 2019".into());
        p.os_type = Some("windows".into());
        p.license_type = None;
    });
    assert_only(&ev, "MissingParameter.LicenseType", Severity::Warning);
}

#[test]
fn os_type_and_platform_family_must_agree() {
    let ev = with(|p| p.platform = Some("Windows Server 2019".into()));
    assert_only(&ev, "OSType.PlatformMismatch", Severity::Warning);
    let ev = with(|p| {
        p.platform = Some("Windows Server 2019".into());
        p.os_type = None;
    });
    assert_only(&ev, "OSType.PlatformMismatch", Severity::Warning);
    assert!(message(&ev, "OSType.PlatformMismatch").contains("defaults OSType to linux"));
    let ev = with(|p| {
        p.os_type = Some("windows".into());
        p.license_type = Some("BYOL".into());
    });
    assert_only(&ev, "OSType.PlatformMismatch", Severity::Warning);
}

// ---------- tags ----------

fn n_tags(n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("k{i}"), format!("v{i}"))).collect()
}

#[test]
fn twenty_tags_pass_twenty_one_fail() {
    assert_clean(&with(|p| p.tags = n_tags(20)));
    let ev = with(|p| p.tags = n_tags(21));
    assert_only(&ev, "Tag.TooMany", Severity::Error);
    assert_eq!(ev.plan.tags.len(), 21);
}

#[test]
fn tag_key_rules() {
    // Seed 004 (Tag.N.Key): "cannot start with aliyun or acs:", lower case.
    for ok in [
        "k".to_string(),
        "k".repeat(128),
        "Aliyu".into(),
        "AliyunCost".into(),
        "Acs:x".into(),
        "see-HTTP://x".into(),
    ] {
        assert_clean(&with(|p| p.tags = vec![(ok, "v".into())]));
    }
    for bad in [
        "".to_string(),
        "k".repeat(129),
        "aliyun:x".into(),
        "acs:x".into(),
        "see-http://x".into(),
    ] {
        assert_error(
            &with(|p| p.tags = vec![(bad, "v".into())]),
            "InvalidTagKey.Malformed",
        );
    }
}

#[test]
fn tag_value_rules() {
    for ok in [
        "".to_string(),
        "v".repeat(128),
        "aliyun-ok".into(),
        "ACS:ok".into(),
    ] {
        assert_clean(&with(|p| p.tags = vec![("k".into(), ok)]));
    }
    for bad in ["v".repeat(129), "acs:x".into(), "x https://y".into()] {
        assert_error(
            &with(|p| p.tags = vec![("k".into(), bad)]),
            "InvalidTagValue.Malformed",
        );
    }
}

#[test]
fn tag_keys_equal_ignoring_case_fail() {
    let ev = with(|p| p.tags = vec![("Env".into(), "a".into()), ("env".into(), "b".into())]);
    assert_only(&ev, "TagKey.Duplication", Severity::Error);
    assert_eq!(
        message(&ev, "TagKey.Duplication"),
        "tag key \"env\" repeats \"Env\" (keys are compared ignoring case)"
    );
}

// ---------- client token, detection, features, CloudBox ----------

#[test]
fn client_token_rules() {
    assert_clean(&with(|p| p.client_token = Some("t".repeat(64))));
    assert_clean(&with(|p| {
        p.client_token = Some("123e4567-e89b-12d3-a456-426655440000".into())
    }));
    for bad in ["t".repeat(65), "tök".into()] {
        assert_error(
            &with(|p| p.client_token = Some(bad)),
            "InvalidClientToken.Malformed",
        );
    }
    // Seed 004 (ClientToken): "can contain only ASCII characters and cannot
    // exceed 64 characters": empty is no token, and the plan has none.
    let ev = with(|p| p.client_token = Some(String::new()));
    assert_clean(&ev);
    assert_eq!(ev.plan.client_token, None);
}

#[test]
fn detection_strategy_only_standard() {
    assert_clean(&with(|p| p.detection_strategy = Some("Standard".into())));
    assert_error(
        &with(|p| p.detection_strategy = Some("Deep".into())),
        "InvalidParameter.DetectionStrategy",
    );
}

#[test]
/// Seed 004 (DetectionStrategy): "Most Linux and Windows versions are
/// supported." A note, not a refusal.
fn detection_strategy_with_windows_is_a_note() {
    let ev = with(|p| {
        p.platform = Some("Windows Server 2019".into());
        p.os_type = Some("windows".into());
        p.license_type = Some("BYOL".into());
        p.detection_strategy = Some("Standard".into());
    });
    assert_only(&ev, "ImageCheckUnsupported.WindowsImage", Severity::Info);
    assert_eq!(ev.plan.detection_strategy.as_deref(), Some("Standard"));
}

#[test]
fn features_values() {
    for (imds, nvme) in [("v1", "supported"), ("v2", "unsupported")] {
        let ev = with(|p| {
            p.imds_support = Some(imds.into());
            p.nvme_support = Some(nvme.into());
        });
        assert_clean(&ev);
        let f = ev.plan.features.unwrap();
        assert_eq!(
            (f.imds_support.as_deref(), f.nvme_support.as_deref()),
            (Some(imds), Some(nvme))
        );
    }
    assert_error(
        &with(|p| p.imds_support = Some("v3".into())),
        "InvalidParameter.FeaturesImdsSupport",
    );
    assert_error(
        &with(|p| p.nvme_support = Some("yes".into())),
        "InvalidParameter.FeaturesNvmeSupport",
    );
}

#[test]
fn storage_location_arn_shape() {
    assert_clean(&with(|p| {
        p.storage_location_arn =
            Some("arn:acs:cloudbox:cn-hangzhou:123456:cloudbox/cb-xx123".into())
    }));
    for bad in [
        "arn:acs:cloudbox:cn-hangzhou:123456:cloudbox/",
        "arn:acs:cloudbox:cn-hangzhou:abc:cloudbox/cb-1",
        "arn:acs:oss:cn-hangzhou:123456:cloudbox/cb-1",
        "cb-xx123",
        "arn:acs:cloudbox:Hangzhou:123456:cloudbox/cb-1",
    ] {
        assert_error(
            &with(|p| p.storage_location_arn = Some(bad.into())),
            "InvalidStorageLocation.NotFound",
        );
    }
}

// ---------- guest facts ----------

fn guest() -> GuestFacts {
    GuestFacts {
        architecture: Some("x86_64".into()),
        os_type: Some("linux".into()),
        platform: Some("Debian".into()),
        boot_mode: Some("UEFI".into()),
        boot_modes: vec!["UEFI".into()],
        nvme_support: Some("supported".into()),
        uefi_without_fallback: false,
    }
}

#[test]
fn nvme_given_for_a_guest_without_the_driver_is_an_error() {
    let g = GuestFacts {
        nvme_support: Some("unsupported".into()),
        ..guest()
    };
    let p = ImportParams {
        nvme_support: Some("supported".into()),
        ..valid_params()
    };
    let ev = evaluate(
        &[disk("d.qcow2", "qcow2", QCOW2_20G)],
        &p,
        Some(&g),
        SizeLimits::Classic,
    );
    assert_error(&ev, "GuestMismatch.NvmeDriverMissing");
    assert!(!codes(&ev).contains(&"GuestMismatch.NvmeSupport"));
}

#[test]
fn uefi_given_without_a_fallback_loader_is_an_error() {
    let g = GuestFacts {
        uefi_without_fallback: true,
        ..guest()
    };
    let mut p = valid_params();
    p.boot_mode = Some("UEFI".into());
    let ev = evaluate(
        &[disk("d.qcow2", "qcow2", QCOW2_20G)],
        &p,
        Some(&g),
        SizeLimits::Classic,
    );
    assert_error(&ev, "GuestMismatch.BootMode");
    // Not given: the guest's own warning speaks; no mismatch.
    p.boot_mode = None;
    let ev = evaluate(
        &[disk("d.qcow2", "qcow2", QCOW2_20G)],
        &p,
        Some(&g),
        SizeLimits::Classic,
    );
    assert!(!codes(&ev).contains(&"GuestMismatch.BootMode"));
}

#[test]
fn a_disk_that_boots_both_ways_takes_either_boot_mode() {
    let hybrid = GuestFacts {
        boot_mode: Some("BIOS".into()),
        boot_modes: vec!["BIOS".into(), "UEFI".into()],
        ..guest()
    };
    for given in ["BIOS", "UEFI"] {
        let mut p = valid_params();
        p.boot_mode = Some(given.into());
        let ev = evaluate(
            &[disk("d.qcow2", "qcow2", QCOW2_20G)],
            &p,
            Some(&hybrid),
            SizeLimits::Classic,
        );
        assert!(
            !codes(&ev).contains(&"GuestMismatch.BootMode"),
            "{given}: {:?}",
            codes(&ev)
        );
        assert_eq!(ev.plan.boot_mode.as_deref(), Some(given));
    }
    // A UEFI-only disk still refuses BIOS.
    let mut p = valid_params();
    p.boot_mode = Some("BIOS".into());
    let ev = evaluate(
        &[disk("d.qcow2", "qcow2", QCOW2_20G)],
        &p,
        Some(&guest()),
        SizeLimits::Classic,
    );
    assert_error(&ev, "GuestMismatch.BootMode");
}

#[test]
fn guest_facts_fill_the_plan_when_not_given() {
    let mut p = valid_params();
    p.architecture = None;
    p.os_type = None;
    p.platform = None;
    p.boot_mode = None;
    let ev = evaluate(
        &[disk("d.qcow2", "qcow2", QCOW2_20G)],
        &p,
        Some(&guest()),
        SizeLimits::Classic,
    );
    assert_clean(&ev);
    assert_eq!(ev.plan.architecture.as_deref(), Some("x86_64"));
    assert_eq!(ev.plan.os_type.as_deref(), Some("linux"));
    assert_eq!(ev.plan.platform.as_deref(), Some("Debian"));
    assert_eq!(ev.plan.boot_mode.as_deref(), Some("UEFI"));
    assert_eq!(
        ev.plan.features.unwrap().nvme_support.as_deref(),
        Some("supported")
    );
}

#[test]
fn given_values_differing_from_the_guest_are_findings() {
    // valid_params: x86_64, linux, Ubuntu, BIOS.
    let mut g = guest();
    g.architecture = Some("arm64".into());
    g.os_type = Some("windows".into());
    let ev = evaluate(
        &[disk("d.qcow2", "qcow2", QCOW2_20G)],
        &ImportParams {
            nvme_support: Some("unsupported".into()),
            ..valid_params()
        },
        Some(&g),
        SizeLimits::Classic,
    );
    let c = codes(&ev);
    for code in [
        "GuestMismatch.Architecture",
        "GuestMismatch.OSType",
        "GuestMismatch.Platform",
        "GuestMismatch.BootMode",
        "GuestMismatch.NvmeSupport",
    ] {
        assert!(c.contains(&code), "{code} missing from {c:?}");
    }
    assert_eq!(
        message(&ev, "GuestMismatch.BootMode"),
        "boot mode \"BIOS\" was given but the guest is \"UEFI\""
    );
    // The plan keeps what the user gave.
    assert_eq!(ev.plan.boot_mode.as_deref(), Some("BIOS"));
}

#[test]
fn guest_windows_with_detection_strategy_is_a_note() {
    let p = ImportParams {
        detection_strategy: Some("Standard".into()),
        ..ImportParams::default()
    };
    let g = GuestFacts {
        os_type: Some("windows".into()),
        platform: Some("Windows Server 2019".into()),
        ..GuestFacts::default()
    };
    let ev = evaluate(
        &[disk("d.qcow2", "qcow2", QCOW2_20G)],
        &p,
        Some(&g),
        SizeLimits::Classic,
    );
    assert!(codes(&ev).contains(&"ImageCheckUnsupported.WindowsImage"));
    assert!(!ev.has_errors(), "{:#?}", ev.findings);
}

// ---------- JSON ----------

#[test]
fn plan_json_uses_the_api_names_in_snake_case() {
    let mut p = valid_params();
    p.resource_group_id = Some("rg-x".into());
    p.client_token = Some("tok".into());
    p.role_name = Some("AliyunECSImageImportDefaultRole".into());
    p.detection_strategy = Some("Standard".into());
    p.imds_support = Some("v2".into());
    p.nvme_support = Some("supported".into());
    p.storage_location_arn = Some("arn:acs:cloudbox:cn-hangzhou:1:cloudbox/cb-1".into());
    let ev = evaluate(
        &[disk("disk.qcow2", "qcow2", QCOW2_20G)],
        &p,
        None,
        SizeLimits::Classic,
    );
    let json = serde_json::to_value(&ev.plan).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "architecture",
            "boot_mode",
            "client_token",
            "description",
            "detection_strategy",
            "disk_device_mappings",
            "features",
            "image_name",
            "license_type",
            "os_type",
            "platform",
            "region_id",
            "resource_group_id",
            "role_name",
            "storage_location_arn",
            "tags",
        ]
    );
    assert_eq!(
        json["features"],
        serde_json::json!({"nvme_support": "supported", "imds_support": "v2"})
    );
    assert_eq!(
        json["tags"],
        serde_json::json!([{"key": "env", "value": "prod"}])
    );
    assert_eq!(
        json["disk_device_mappings"],
        serde_json::json!([{"format": "QCOW2", "oss_bucket": "my-images", "oss_object": "disk.qcow2", "disk_image_size": 20}])
    );
    let back: Plan = serde_json::from_value(json).unwrap();
    assert_eq!(back, ev.plan);
}

#[test]
fn absent_values_are_absent_from_the_json() {
    let d = DiskFacts::new(
        "disk.qcow2",
        Some("qcow2"),
        Some(QCOW2_20G),
        DiskRole::System,
    );
    let ev = evaluate(&[d], &ImportParams::default(), None, SizeLimits::Classic);
    let json = serde_json::to_value(&ev.plan).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"disk_device_mappings": [{"format": "QCOW2", "oss_object": "disk.qcow2", "disk_image_size": 20}]})
    );
}

#[test]
fn scoped_findings_flatten_in_json() {
    let ev = evaluate(
        &[disk("small.qcow2", "qcow2", GIB)],
        &valid_params(),
        None,
        SizeLimits::Classic,
    );
    let json = serde_json::to_value(&ev).unwrap();
    let f = &json["findings"][0];
    assert_eq!(f["disk"], 0);
    assert_eq!(f["path"], "small.qcow2");
    assert_eq!(f["code"], "DiskImageSize.Raised");
    assert_eq!(f["severity"], "info");
    let ev = with(|p| p.region = None);
    let json = serde_json::to_value(&ev.findings[0]).unwrap();
    assert!(json.get("disk").is_none() && json.get("path").is_none());
}

#[test]
fn options_parse_and_serialise_by_their_flag_values() {
    assert_eq!("classic".parse::<SizeLimits>(), Ok(SizeLimits::Classic));
    assert_eq!("2026".parse::<SizeLimits>(), Ok(SizeLimits::Y2026));
    assert!("2020".parse::<SizeLimits>().is_err());
    assert_eq!("data".parse::<DiskRole>(), Ok(DiskRole::Data));
    assert!("boot".parse::<DiskRole>().is_err());
    assert_eq!(serde_json::to_value(SizeLimits::Y2026).unwrap(), "2026");
    assert_eq!(serde_json::to_value(DiskRole::System).unwrap(), "system");
    assert_eq!(SizeLimits::default(), SizeLimits::Classic);
}

// ---------- cloud ----------

fn planned() -> Plan {
    with(|_| {}).plan
}

fn bucket(region: &str) -> BucketFacts {
    BucketFacts {
        name: "my-images".into(),
        exists: true,
        region: Some(region.into()),
        encrypted: Some(false),
        storage_class: None,
    }
}

fn object() -> ObjectFacts {
    ObjectFacts {
        bucket: "my-images".into(),
        key: "disk.qcow2".into(),
        exists: true,
        size: Some(1 << 20),
        storage_class: Some("Standard".into()),
        restored: None,
    }
}

fn cloud_codes(facts: &CloudFacts) -> Vec<String> {
    evaluate_cloud(&planned(), facts)
        .into_iter()
        .map(|f| f.finding.code)
        .collect()
}

#[test]
fn cloud_all_good_or_unknown_has_no_findings() {
    assert!(cloud_codes(&CloudFacts::default()).is_empty());
    let facts = CloudFacts {
        buckets: vec![bucket("oss-cn-hangzhou")],
        objects: vec![object()],
        role_exists: Some(true),
        image_name_taken: Some(false),
        not_verified: Vec::new(),
    };
    assert!(cloud_codes(&facts).is_empty());
    let partial = CloudFacts {
        not_verified: vec!["GetBucketEncryption was denied".into()],
        ..facts
    };
    let found = evaluate_cloud(&planned(), &partial);
    assert_eq!(cloud_codes(&partial), ["CLOUD.NotVerified"]);
    assert!(!found[0].finding.is_error());
}

#[test]
fn cloud_bucket_rules() {
    let missing = BucketFacts {
        exists: false,
        ..bucket("cn-hangzhou")
    };
    assert_eq!(
        cloud_codes(&CloudFacts {
            buckets: vec![missing],
            ..CloudFacts::default()
        }),
        ["InvalidOSSBucket.NotFound"]
    );
    let facts = CloudFacts {
        buckets: vec![bucket("oss-cn-shanghai")],
        ..CloudFacts::default()
    };
    let found = evaluate_cloud(&planned(), &facts);
    assert_eq!(found[0].finding.code, "InvalidOSSBucket.NotMatched");
    assert_eq!(
        found[0].finding.message,
        "bucket \"my-images\" is in cn-shanghai but the import is in cn-hangzhou"
    );
    assert_eq!(found[0].disk, Some(0));
    let enc = BucketFacts {
        encrypted: Some(true),
        ..bucket("cn-hangzhou")
    };
    assert_eq!(
        cloud_codes(&CloudFacts {
            buckets: vec![enc],
            ..CloudFacts::default()
        }),
        ["InvalidOSSBucket.EncryptUnsupported"]
    );
}

#[test]
fn cloud_object_rules() {
    let check = |o: ObjectFacts| {
        cloud_codes(&CloudFacts {
            objects: vec![o],
            ..CloudFacts::default()
        })
    };
    assert_eq!(
        check(ObjectFacts {
            exists: false,
            ..object()
        }),
        ["InvalidOSSObject.NotFound"]
    );
    assert_eq!(
        check(ObjectFacts {
            size: Some(0),
            ..object()
        }),
        ["InvalidOSSObject.Size"]
    );
    for class in ["Archive", "ColdArchive", "DeepColdArchive"] {
        let cold = ObjectFacts {
            storage_class: Some(class.into()),
            ..object()
        };
        assert_eq!(check(cold.clone()), ["InvalidOSSObject.NeedRestore"]);
        assert!(check(ObjectFacts {
            restored: Some(true),
            ..cold
        })
        .is_empty());
    }
    assert!(check(ObjectFacts {
        storage_class: Some("IA".into()),
        ..object()
    })
    .is_empty());
    // An object the plan does not name is not checked.
    assert!(check(ObjectFacts {
        key: "other.qcow2".into(),
        exists: false,
        ..object()
    })
    .is_empty());
}

#[test]
fn cloud_role_and_image_name_rules() {
    let found = evaluate_cloud(
        &planned(),
        &CloudFacts {
            role_exists: Some(false),
            ..CloudFacts::default()
        },
    );
    assert_eq!(found[0].finding.code, "NoSetRoletoECSServiceAcount");
    assert!(found[0].finding.message.contains(DEFAULT_ROLE));
    assert_eq!(found[0].disk, None);
    let mut plan = planned();
    plan.storage_location_arn = Some("arn:acs:cloudbox:cn-hangzhou:1:cloudbox/cb-1".into());
    let found = evaluate_cloud(
        &plan,
        &CloudFacts {
            role_exists: Some(false),
            ..CloudFacts::default()
        },
    );
    assert_eq!(
        found[0].finding.code,
        "InvalidOperation.CloudBoxImageImportRoleRequired"
    );
    assert!(found[0].finding.message.contains(DEFAULT_CLOUDBOX_ROLE));
    let found = evaluate_cloud(
        &planned(),
        &CloudFacts {
            image_name_taken: Some(true),
            ..CloudFacts::default()
        },
    );
    assert_eq!(found[0].finding.code, "InvalidImageName.Duplicated");
    assert_eq!(
        found[0].finding.message,
        "an image named \"ubuntu-22.04_web:v1\" already exists in cn-hangzhou"
    );
}

// ---------- catalogue ----------

#[test]
fn rules_have_unique_codes_and_hints() {
    let mut seen = std::collections::BTreeSet::new();
    for rule in RULES {
        assert!(seen.insert(rule.code), "duplicate code {}", rule.code);
        assert!(
            !rule.hint.is_empty() && !rule.summary.is_empty(),
            "{}",
            rule.code
        );
    }
    assert_eq!(RULES.len(), 58);
}

#[test]
fn service_codes_are_unique_and_carry_a_fix() {
    for (i, s) in SERVICE_CODES.iter().enumerate() {
        assert!(
            !s.fix.is_empty() && !s.why_unchecked.is_empty(),
            "{}",
            s.code
        );
        assert!(
            SERVICE_CODES[..i].iter().all(|o| o.code != s.code),
            "{} twice",
            s.code
        );
        assert!(
            RULES.iter().all(|r| r.code != s.code),
            "{} is also a rule",
            s.code
        );
    }
    assert_eq!(
        service_code("QuotaExceed.Image").map(|s| s.http_status),
        Some(403)
    );
    assert!(service_code("InvalidImageSize").is_none());
}
