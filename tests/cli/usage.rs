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
