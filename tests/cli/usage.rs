//! Help, completions, exit codes for usage and environment errors.

use crate::common::*;

#[test]
fn every_subcommand_has_help_with_examples() {
    for sub in [
        "info",
        "check",
        "rules",
        "emulator",
        "completions",
        "upload",
        "import",
        "wait",
        "upload-and-import",
    ] {
        let out = run(&[sub, "--help"]);
        assert!(out.status.success(), "{sub} --help failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Examples:"),
            "{sub} --help has no examples:\n{text}"
        );
        assert!(
            text.contains("ecs-preflight"),
            "{sub} --help shows no command line"
        );
    }
    let out = run(&["--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit codes"));
}

#[test]
fn completions_for_bash_and_zsh() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("ecs-preflight"),
            "{shell} completion names the command"
        );
        assert!(
            text.contains("check"),
            "{shell} completion lists subcommands"
        );
    }
}

#[test]
fn completions_into_an_unwritable_output_fail_without_a_panic() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ecs-preflight"))
        .args(["completions", "bash"])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an environment error, not a panic (101)"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn missing_file_is_an_environment_error() {
    let out = run(&["info", "/nonexistent/disk.qcow2"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/disk.qcow2"),
        "stderr names the file: {err}"
    );
    let out = run(&["check", "/nonexistent/disk.qcow2", "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_directory_is_an_environment_error() {
    let dir = tempdir();
    let out = run(&["info", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_flag_is_a_usage_error() {
    let out = run(&["check", "x", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn rules_catalogue_lists_codes_from_every_crate() {
    let (code, json) = run_json(&["rules", "--output", "json"]);
    assert_eq!(code, 0);
    let codes: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    for expected in [
        "FORMAT.Unsupported",
        "InvalidVHDImage.IncorrectSize",
        "InvalidImageSize",
        "InvalidImageName.Malformed",
    ] {
        assert!(codes.contains(&expected), "{expected} missing from rules");
    }
    assert!(codes.iter().any(|c| c.starts_with("QCOW2.")));
    assert!(codes.iter().any(|c| c.starts_with("VMDK.")));
    assert!(codes.iter().any(|c| c.starts_with("VHDX.")));
    let mut sorted = codes.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), codes.len(), "codes are unique");
}

/// The error table of the ImportImage API pages (both editions), status and code.
const API_ERROR_TABLE: &[(u16, &str)] = &[
    (400, "Account.Arrearage"),
    (403, "ImageCheckUnsupported.WindowsImage"),
    (403, "ImageIsImporting"),
    (403, "ImportImageFailed"),
    (403, "InvalidAccountStatus.OSSDisabled"),
    (400, "InvalidArchitecture.Malformed"),
    (403, "InvalidArchitecture.PlatformUnsupported"),
    (403, "InvalidBlockSize.NotSupport"),
    (400, "InvalidBootMode.Malformed"),
    (400, "InvalidBootMode.NotSupport"),
    (400, "InvalidClientToken.Malformed"),
    (400, "InvalidDataDiskSize"),
    (400, "InvalidDescription.Malformed"),
    (400, "InvalidImageFormat.Malformed"),
    (400, "InvalidImageFormat.RegionNotSupported"),
    (400, "InvalidImageName.Duplicated"),
    (400, "InvalidImageName.Malformed"),
    (400, "InvalidImageSize"),
    (400, "InvalidLicenseType.BYOLOnly"),
    (400, "InvalidLicenseType.NotSupported"),
    (403, "InvalidOSS.NotAuthorized"),
    (403, "InvalidOSSBucket.EncryptUnsupported"),
    (400, "InvalidOSSBucket.FlowLimit"),
    (400, "InvalidOSSBucket.Malformed"),
    (400, "InvalidOSSBucket.NotFound"),
    (400, "InvalidOSSBucket.NotMatched"),
    (400, "InvalidOSSObject.Malformed"),
    (400, "InvalidOSSObject.NeedRestore"),
    (400, "InvalidOSSObject.NotFound"),
    (400, "InvalidOSSObject.Size"),
    (400, "InvalidOSType.Malformed"),
    (403, "InvalidOperation.CloudBoxImageImportRoleRequired"),
    (403, "InvalidOperation.CloudBoxImageImportUnsupported"),
    (400, "InvalidParameter.DetectionStrategy"),
    (400, "InvalidParameter.FeaturesImdsSupport"),
    (403, "InvalidParameter.Malformed"),
    (400, "InvalidPlatform.Malformed"),
    (400, "InvalidRegion.NotSupport"),
    (400, "InvalidRegionId.NotFound"),
    (404, "InvalidResourceGroup.NotFound"),
    (403, "InvalidStorageLocation.NotFound"),
    (403, "InvalidVHDImage.IncorrectSize"),
    (400, "MissingParameter"),
    (403, "MissingParameter.DiskDeviceMapping"),
    (403, "NoSetRoletoECSServiceAcount"),
    (403, "QuotaExceed.Image"),
    (403, "TagKey.Duplication"),
    (400, "UnsupportedSuffix.OSSObject"),
    (403, "UserNotInTheWhiteList"),
];

#[test]
fn every_api_error_code_is_a_rule_or_a_documented_service_code() {
    use preflight_rules::{service_code, SERVICE_CODES};
    let (status, json) = run_json(&["rules", "--output", "json"]);
    assert_eq!(status, 0);
    let entries = json.as_array().unwrap();
    let rules: Vec<&str> = entries
        .iter()
        .filter(|r| r["decided_by"] == "ecs-preflight")
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    // The JSON lists the service-decided codes too, marked as such.
    let by_service: Vec<&str> = entries
        .iter()
        .filter(|r| r["decided_by"] == "service")
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(by_service.len(), SERVICE_CODES.len());
    assert_eq!(rules.len() + by_service.len(), entries.len());
    for e in entries.iter().filter(|r| r["decided_by"] == "service") {
        assert!(e["fix"].as_str().is_some_and(|f| !f.is_empty()), "{e}");
        assert_eq!(e["code_from"], "API", "{e}");
    }
    // Codes of ours are marked so, the API's too.
    let origin = |code: &str| {
        entries
            .iter()
            .find(|r| r["code"] == code)
            .map(|r| r["code_from"].clone())
    };
    assert_eq!(origin("InvalidTagKey.Malformed"), Some("ours".into()));
    assert_eq!(
        origin("InvalidParameter.FeaturesNvmeSupport"),
        Some("ours".into())
    );
    assert_eq!(origin("InvalidImageName.Malformed"), Some("API".into()));
    let human = String::from_utf8(run(&["rules"]).stdout).unwrap();
    for (status, code) in API_ERROR_TABLE {
        // `MissingParameter` is checked as `MissingParameter.RegionId`, … .
        let rule = rules
            .iter()
            .any(|r| r == code || r.starts_with(&format!("{code}.")));
        if !rule {
            assert!(human.contains(code), "`rules` does not name {code}");
        }
        match (rule, service_code(code)) {
            (true, None) => {}
            (false, Some(s)) => assert_eq!(s.http_status, *status, "{code}"),
            (true, Some(_)) => panic!("{code} is both a rule and a service code"),
            (false, None) => panic!("{code} is neither checked nor listed in SERVICE_CODES"),
        }
    }
    for s in SERVICE_CODES {
        assert!(
            API_ERROR_TABLE.iter().any(|(_, c)| *c == s.code),
            "{} is not in the API's table",
            s.code
        );
    }
}

#[test]
fn docs_rules_md_is_generated_from_the_code() {
    let out = run(&["rules", "--markdown"]);
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rules.md"))
            .expect("docs/rules.md exists");
    assert!(
        generated == committed,
        "docs/rules.md is stale: run `cargo run -p ecs-preflight -- rules --markdown > docs/rules.md`"
    );
}

#[test]
fn emulator_subcommand_serves_until_ctrl_c() {
    use std::io::{BufRead, BufReader, Read, Write};
    let data = tempdir();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ecs-preflight"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut endpoint = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(e) = line.strip_prefix("endpoint: ") {
            endpoint = Some(e.trim_start_matches("http://").to_string());
        }
        if line == "ready" {
            break;
        }
    }
    let addr = endpoint.expect("prints its endpoint before `ready`");
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "GET /_emulator/counters HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    sh("kill", &["-INT", &child.id().to_string()]);
    let status = child.wait().unwrap();
    assert!(status.success(), "stops cleanly on Ctrl-C: {status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
}
