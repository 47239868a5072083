//! The `check` and `info` use cases as a library user calls them: no binary, no network.

use std::path::{Path, PathBuf};

use preflight_pipeline::{ImportParams, PipelineError};

// The example's own code, so the example is exercised whichever targets cargo built.
#[allow(dead_code)]
#[path = "../examples/check.rs"]
mod check_example;

fn qcow2(dir: &Path, name: &str, size: &str) -> PathBuf {
    let path = dir.join(name);
    preflight_testkit::qemu::create("qcow2", &path, size);
    path
}

fn valid_params() -> ImportParams {
    ImportParams {
        region: Some("cn-hangzhou".into()),
        bucket: Some("images".into()),
        image_name: Some("web-01".into()),
        architecture: Some("x86_64".into()),
        os_type: Some("linux".into()),
        platform: Some("Ubuntu".into()),
        boot_mode: Some("BIOS".into()),
        license_type: Some("Aliyun".into()),
        skip_guest: true,
        ..Default::default()
    }
}

#[test]
fn a_clean_image_passes_and_plans_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let sys = qcow2(dir.path(), "sys.qcow2", "20G");
    let report = preflight_pipeline::check(std::slice::from_ref(&sys), &valid_params()).unwrap();
    assert!(!report.has_errors(), "{:#?}", report.findings);
    assert_eq!(report.verdict, "pass");
    assert_eq!(report.system.format, "qcow2");
    assert_eq!(report.system.virtual_size, Some(20 << 30));
    assert_eq!(report.disks.len(), 1);
    assert!(report.guest.is_none(), "skip_guest leaves the guest out");
    let mapping = &report.plan.disk_device_mappings[0];
    assert_eq!(mapping.disk_image_size, Some(20));
    assert_eq!(mapping.format.as_deref(), Some("QCOW2"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["schema_version"], preflight_report::SCHEMA_VERSION);
    assert_eq!(json["path"], sys.display().to_string());
}

#[test]
fn request_and_disk_findings_fail_the_check_errors_first() {
    let dir = tempfile::tempdir().unwrap();
    let sys = qcow2(dir.path(), "sys.qcow2", "20G");
    let data = qcow2(dir.path(), "data.qcow2", "2000G");
    let params = ImportParams {
        architecture: Some("amd64".into()),
        ..valid_params()
    };
    let report = preflight_pipeline::check(&[sys, data], &params).unwrap();
    assert_eq!(report.verdict, "fail");
    let codes: Vec<&str> = report
        .findings
        .iter()
        .map(|f| f.finding.code.as_str())
        .collect();
    assert!(
        codes.contains(&"InvalidArchitecture.Malformed"),
        "{codes:?}"
    );
    assert!(codes.contains(&"InvalidDataDiskSize"), "{codes:?}");
    // The data disk's finding names the disk it is about.
    let size = report
        .findings
        .iter()
        .find(|f| f.finding.code == "InvalidDataDiskSize");
    assert_eq!(size.and_then(|f| f.disk), Some(1));
    let first_non_error = report.findings.iter().position(|f| !f.finding.is_error());
    if let Some(i) = first_non_error {
        assert!(report.findings[i..].iter().all(|f| !f.finding.is_error()));
    }
}

#[test]
fn an_unreadable_disk_is_a_read_error_naming_it() {
    let missing = PathBuf::from("/nonexistent/disk.qcow2");
    match preflight_pipeline::check(std::slice::from_ref(&missing), &valid_params()) {
        Err(PipelineError::Read { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        preflight_pipeline::info(&missing),
        Err(PipelineError::Read { .. })
    ));
}

#[test]
fn info_reports_the_format_without_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let sys = qcow2(dir.path(), "sys.qcow2", "1G");
    let report = preflight_pipeline::info(&sys).unwrap();
    assert_eq!(report.facts.format, "qcow2");
    assert_eq!(report.facts.virtual_size, Some(1 << 30));
    assert!(!report.has_errors());
}

#[test]
fn the_check_example_prints_the_library_report() {
    let dir = tempfile::tempdir().unwrap();
    let sys = qcow2(dir.path(), "sys.qcow2", "20G");
    let args = [sys.display().to_string(), "--skip-guest".into()];
    let from_example = check_example::report_for(args).unwrap();
    let params = ImportParams {
        skip_guest: true,
        ..Default::default()
    };
    let direct = preflight_pipeline::check(&[sys], &params).unwrap();
    assert_eq!(
        serde_json::to_string_pretty(&from_example).unwrap(),
        serde_json::to_string_pretty(&direct).unwrap()
    );
}
