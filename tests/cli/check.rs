//! `check`: ImportImage rules and the plan, through the CLI.

use crate::common::*;

fn qcow2(dir: &std::path::Path, name: &str, size: &str) -> String {
    let path = path_in(dir, name);
    sh(
        "qemu-img",
        &["create", "-q", "-f", "qcow2", path.to_str().unwrap(), size],
    );
    path.to_str().unwrap().to_string()
}

const VALID: &[&str] = &[
    "--region",
    "cn-hangzhou",
    "--bucket",
    "images",
    "--image-name",
    "web-01",
    "--architecture",
    "x86_64",
    "--os-type",
    "linux",
    "--platform",
    "Ubuntu",
    "--boot-mode",
    "BIOS",
    "--license-type",
    "Aliyun",
    // These images hold no OS: guest inspection has its own tests (guest.rs).
    "--skip-guest",
    "",
];

/// `check IMAGE --output json` with the valid parameters, where a flag in
/// `extra` replaces the valid one of the same name.
fn check(image: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["check", image, "--output", "json"];
    for pair in VALID.chunks(2) {
        if !extra.contains(&pair[0]) {
            args.extend(pair.iter().filter(|a| !a.is_empty()));
        }
    }
    args.extend_from_slice(extra);
    run_json(&args)
}

#[test]
fn clean_20g_qcow2_passes_and_plans_20() {
    let dir = tempdir();
    let image = qcow2(dir.path(), "disk.qcow2", "20G");
    let (code, json) = check(&image, &[]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["verdict"], "pass");
    assert_eq!(json["format"], "qcow2");
    assert_eq!(json["virtual_size"], 20u64 << 30);
    let plan = &json["plan"];
    assert_eq!(plan["region_id"], "cn-hangzhou");
    assert_eq!(plan["image_name"], "web-01");
    assert_eq!(plan["architecture"], "x86_64");
    let disk = &plan["disk_device_mappings"][0];
    assert_eq!(disk["disk_image_size"], 20);
    assert_eq!(disk["format"], "QCOW2");
    assert_eq!(disk["oss_bucket"], "images");
    assert_eq!(disk["oss_object"], "disk.qcow2");
    // Values the user did not give are absent, not guessed.
    assert!(plan.get("description").is_none());
    assert!(plan.get("client_token").is_none());
}

#[test]
fn small_image_plans_the_minimum() {
    let dir = tempdir();
    let image = qcow2(dir.path(), "small.qcow2", "2G");
    let (code, json) = check(&image, &[]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(
        json["plan"]["disk_device_mappings"][0]["disk_image_size"],
        5
    );
    let (_, json) = check(&image, &["--size-limits", "2026"]);
    assert_eq!(
        json["plan"]["disk_device_mappings"][0]["disk_image_size"],
        2
    );
}

#[test]
fn too_big_system_disk_is_refused_with_its_code() {
    let dir = tempdir();
    let image = qcow2(dir.path(), "big.qcow2", "501G");
    let (code, json) = check(&image, &[]);
    assert_eq!(code, 1);
    assert!(
        codes(&json).contains(&"InvalidImageSize".to_string()),
        "{json:#}"
    );
    let image = qcow2(dir.path(), "ok.qcow2", "500G");
    let (code, json) = check(&image, &[]);
    assert_eq!(code, 0, "{json:#}");
}

#[test]
fn parameter_violations_exit_1_with_their_codes() {
    let dir = tempdir();
    let image = qcow2(dir.path(), "disk.qcow2", "20G");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--image-name", "aliyun-web"],
            "InvalidImageName.Malformed",
        ),
        (&["--image-name", "x"], "InvalidImageName.Malformed"),
        (
            &["--description", "http://example.com"],
            "InvalidDescription.Malformed",
        ),
        (
            &["--architecture", "sparc"],
            "InvalidArchitecture.Malformed",
        ),
        (&["--boot-mode", "CSM"], "InvalidBootMode.Malformed"),
        (
            &["--license-type", "Free"],
            "InvalidLicenseType.NotSupported",
        ),
        (&["--tag", "a=1", "--tag", "A=2"], "TagKey.Duplication"),
        (&["--format", "ISO"], "InvalidImageFormat.Malformed"),
        (
            &["--client-token", &"x".repeat(65)],
            "InvalidClientToken.Malformed",
        ),
        (
            &["--imds-support", "v3"],
            "InvalidParameter.FeaturesImdsSupport",
        ),
    ];
    for (extra, expected) in cases {
        let (code, json) = check(&image, extra);
        assert_eq!(code, 1, "{extra:?}: {json:#}");
        assert!(
            codes(&json).iter().any(|c| c == expected),
            "{extra:?} gives {expected}: {:?}",
            codes(&json)
        );
    }
    // arm64 with BIOS.
    let mut args: Vec<&str> = vec![
        "check",
        &image,
        "--output",
        "json",
        "--architecture",
        "arm64",
        "--boot-mode",
        "BIOS",
    ];
    args.extend_from_slice(&["--region", "cn-hangzhou", "--image-name", "web-01"]);
    let (code, json) = run_json(&args);
    assert_eq!(code, 1);
    assert!(codes(&json).contains(&"InvalidBootMode.NotSupport".to_string()));
}

#[test]
fn seventeen_disks_pass_eighteen_do_not() {
    let dir = tempdir();
    let system = qcow2(dir.path(), "sys.qcow2", "20G");
    let data: Vec<String> = (0..17)
        .map(|i| qcow2(dir.path(), &format!("data{i}.qcow2"), "10G"))
        .collect();
    let mut extra: Vec<&str> = Vec::new();
    for d in data.iter().take(16) {
        extra.extend_from_slice(&["--data-disk", d]);
    }
    let (code, json) = check(&system, &extra);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(
        json["plan"]["disk_device_mappings"]
            .as_array()
            .unwrap()
            .len(),
        17
    );
    assert_eq!(json["disks"].as_array().unwrap().len(), 17);
    extra.extend_from_slice(&["--data-disk", &data[16]]);
    let (code, json) = check(&system, &extra);
    assert_eq!(code, 1);
    assert!(codes(&json).contains(&"DiskDeviceMapping.TooMany".to_string()));
}

#[test]
fn image_findings_flow_into_the_check_report() {
    let dir = tempdir();
    let base = qcow2(dir.path(), "base.qcow2", "20G");
    let overlay = path_in(dir.path(), "overlay.qcow2");
    sh(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            &base,
            "-F",
            "qcow2",
            overlay.to_str().unwrap(),
        ],
    );
    let (code, json) = check(overlay.to_str().unwrap(), &[]);
    assert_eq!(code, 1, "a backing file is not importable: {json:#}");
    let backing: Vec<_> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"].as_str().unwrap().starts_with("QCOW2."))
        .collect();
    assert!(!backing.is_empty(), "{json:#}");
    assert_eq!(backing[0]["disk"], 0);
    assert_eq!(json["disks"][0]["backing_file"], base.as_str());
}

#[test]
fn human_output_groups_errors_first_with_fixes() {
    let dir = tempdir();
    let image = qcow2(dir.path(), "disk.qcow2", "20G");
    let out = run(&[
        "check",
        &image,
        "--image-name",
        "aliyun-x",
        "--tag",
        "a=1",
        "--tag",
        "A=1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("InvalidImageName.Malformed"), "{text}");
    assert!(text.contains("fix:"), "{text}");
    assert!(text.contains("verdict: FAIL"), "{text}");
    assert!(!text.contains("\x1b["), "no colour when not a terminal");
    let first_error = text.find("error [").unwrap();
    if let Some(first_info) = text.find("info [") {
        assert!(first_error < first_info, "errors before infos");
    }
}

#[test]
fn human_output_groups_findings_by_disk() {
    let dir = tempdir();
    let sys = qcow2(dir.path(), "sys.qcow2", "2G");
    let data = qcow2(dir.path(), "data.qcow2", "1001G");
    let out = run(&[
        "check",
        &sys,
        "--skip-guest",
        "--data-disk",
        &data,
        "--image-name",
        "aliyun-x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from\n{text}"))
    };
    let (sys_group, data_group, request) =
        (at("[system disk 0]"), at("[data disk 1]"), at("[request]"));
    assert!(sys_group < data_group && data_group < request, "{text}");
    // Each finding sits in its disk's group: the raised size under the system disk, the
    // oversized data disk under the data disk, the image name under the request.
    let raised = at("DiskImageSize.Raised");
    assert!(sys_group < raised && raised < data_group, "{text}");
    let too_big = at("InvalidDataDiskSize");
    assert!(data_group < too_big && too_big < request, "{text}");
    assert!(at("InvalidImageName.Malformed") > request, "{text}");
    assert!(at("verdict: FAIL") > request, "{text}");
}

#[test]
fn quiet_prints_nothing_and_keeps_the_exit_code() {
    let dir = tempdir();
    let image = qcow2(dir.path(), "disk.qcow2", "20G");
    let out = run(&[
        "check",
        &image,
        "--quiet",
        "--skip-guest",
        "--image-name",
        "aliyun-x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let out = run(&["check", &image, "--quiet", "--skip-guest"]);
    assert_eq!(out.status.code(), Some(0));
}

/// `--quiet` silences the human report only: asked-for JSON is printed.
#[test]
fn quiet_with_json_still_prints_the_json() {
    let dir = tempdir();
    let image = qcow2(dir.path(), "disk.qcow2", "20G");
    let out = run(&[
        "check",
        &image,
        "--quiet",
        "--output",
        "json",
        "--skip-guest",
        "--image-name",
        "aliyun-x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert!(codes(&v).contains(&"InvalidImageName.Malformed".to_string()));
}

/// Seed 004 (Format): "The detected format prevails." A warning, and the
/// plan sends the detected format.
#[test]
fn a_format_other_than_the_detected_one_warns_and_the_detected_one_is_planned() {
    let dir = tempdir();
    let image = qcow2(dir.path(), "disk.qcow2", "20G");
    let (code, json) = check(&image, &["--format", "VHD"]);
    assert_eq!(code, 0, "{json:#}");
    assert!(codes(&json).contains(&"Format.DetectedPrevails".to_string()));
    assert_eq!(json["plan"]["disk_device_mappings"][0]["format"], "QCOW2");
}

/// Seed 004: "When N is 1, the value specifies the system disk size": the
/// first disk is the system disk whatever --disk-role says.
#[test]
fn disk_role_data_does_not_hide_a_system_disk_size_error() {
    let dir = tempdir();
    let image = qcow2(dir.path(), "big.qcow2", "501G");
    let (code, json) = check(&image, &["--disk-role", "data"]);
    assert_eq!(code, 1, "{json:#}");
    let c = codes(&json);
    assert!(c.contains(&"InvalidImageSize".to_string()), "{c:?}");
    assert!(
        c.contains(&"DiskDeviceMapping.DataDiskFirst".to_string()),
        "{c:?}"
    );
}

#[test]
fn shipped_demo_image_passes() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo-20g.qcow2");
    let (code, json) = check(demo, &[]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(
        json["plan"]["disk_device_mappings"][0]["disk_image_size"],
        20
    );
}
