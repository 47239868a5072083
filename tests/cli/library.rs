//! The library's reports are the CLI's: a Rust build pipeline gets from `preflight-pipeline`
//! byte for byte what `ecs-preflight check --output json` prints for the same disks.

use crate::common::*;
use preflight_pipeline::ImportParams;
use preflight_rules::{DiskParams, SizeLimits};
use std::path::PathBuf;

/// What the CLI prints for `check --output json` (exit code, stdout).
fn cli_json(disks: &[PathBuf], flags: &[&str]) -> (i32, String) {
    let mut args = vec!["check".to_string(), disks[0].display().to_string()];
    for data in &disks[1..] {
        args.push("--data-disk".into());
        args.push(data.display().to_string());
    }
    args.extend(flags.iter().map(|f| f.to_string()));
    args.extend(["--output".into(), "json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    let code = out.status.code().expect("exit code");
    (code, String::from_utf8(out.stdout).unwrap())
}

/// The library's report, serialised as the CLI writes it.
fn library_json(disks: &[PathBuf], params: &ImportParams) -> (i32, String) {
    let report = preflight_pipeline::check(disks, params).unwrap();
    let code = i32::from(report.has_errors());
    (code, serde_json::to_string_pretty(&report).unwrap() + "\n")
}

#[test]
fn check_report_is_byte_identical_to_the_cli_json() {
    let dir = tempdir();
    let system = path_in(dir.path(), "sys.qcow2");
    sh(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            system.to_str().unwrap(),
            "20G",
        ],
    );
    // A data disk below the minimum size and an architecture ECS does not know: findings
    // about a disk and about the request, both in the report.
    let data = path_in(dir.path(), "data.raw");
    make_raw(&data, 3 << 20);
    let disks = vec![system, data];
    let flags = [
        "--region",
        "cn-hangzhou",
        "--bucket",
        "images",
        "--image-name",
        "web-01",
        "--architecture",
        "amd64",
        "--tag",
        "env=prod",
        "--size-limits",
        "2026",
        "--skip-guest",
    ];
    let params = ImportParams {
        region: Some("cn-hangzhou".into()),
        bucket: Some("images".into()),
        image_name: Some("web-01".into()),
        architecture: Some("amd64".into()),
        tags: vec![("env".into(), "prod".into())],
        disks: vec![DiskParams::default(), DiskParams::default()],
        size_limits: SizeLimits::Y2026,
        skip_guest: true,
        ..Default::default()
    };
    let (cli_code, cli) = cli_json(&disks, &flags);
    let (lib_code, lib) = library_json(&disks, &params);
    assert_eq!(cli_code, 1, "{cli}");
    assert_eq!(lib_code, cli_code);
    assert_eq!(lib, cli);
    assert!(cli.contains("\"disks\""), "{cli}");
}

#[test]
fn check_report_with_a_guest_is_byte_identical_to_the_cli_json() {
    let system = crate::guest::debian().join("debian-bios.raw");
    let disks = vec![system];
    let (cli_code, cli) = cli_json(&disks, &["--region", "cn-hangzhou"]);
    let params = ImportParams {
        region: Some("cn-hangzhou".into()),
        disks: vec![DiskParams::default()],
        ..Default::default()
    };
    let (lib_code, lib) = library_json(&disks, &params);
    assert_eq!(lib_code, cli_code);
    assert_eq!(lib, cli);
    // The guest report is part of what must match.
    assert!(cli.contains("\"guest\""), "{cli}");
}

#[test]
fn info_report_is_byte_identical_to_the_cli_json() {
    let dir = tempdir();
    let image = path_in(dir.path(), "disk.vhd");
    let raw = path_in(dir.path(), "disk.raw");
    make_raw(&raw, 8 << 20);
    qemu_convert_raw(&raw, "vpc", &[], &image);
    let out = run(&["info", image.to_str().unwrap(), "--output", "json"]);
    let report = preflight_pipeline::info(&image).unwrap();
    let lib = serde_json::to_string_pretty(&report).unwrap() + "\n";
    assert_eq!(lib, String::from_utf8(out.stdout).unwrap());
}
