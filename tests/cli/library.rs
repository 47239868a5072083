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

/// `import`'s JSON from the library ([`ImportResult::render`]) and from the binary, for the
/// same emulator state and the same request.
mod import {
    use super::*;
    use preflight_emulator::{Emulator, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
    use preflight_pipeline::import::{run_import, ImportJob, ImportResult};
    use preflight_pipeline::{Endpoints, Event, WaitCommand};
    use preflight_rules::ImportParams;
    use std::process::Command;
    use std::time::Duration;

    /// The suite's strict emulator with `images` (cn-hangzhou) holding `web.raw`.
    fn emulator(rt: &tokio::runtime::Runtime, dir: &std::path::Path, role: bool) -> Emulator {
        let mut cfg = strict_config(dir.join("emu"));
        cfg.buckets = vec!["images@cn-hangzhou".parse().unwrap()];
        cfg.task_seconds = 0.5;
        cfg.import_role = role;
        let emu = rt.block_on(preflight_emulator::start(cfg)).unwrap();
        let oss = preflight_oss::Client::new(
            preflight_oss::ClientConfig::new("cn-hangzhou", "images").with_endpoint(emu.endpoint()),
            crate::common::emulator_creds(),
        )
        .unwrap();
        // Content-MD5 of 8192 bytes of 0x5a.
        rt.block_on(oss.put_object(
            "web.raw",
            vec![0x5a; 8192].into(),
            "UXgm4XqfEGI28QCn2xPgpQ==",
        ))
        .unwrap();
        emu
    }

    /// What `ecs-preflight import ... --output json` prints (exit code, stdout).
    fn cli_import(emu: &Emulator, home: &std::path::Path, name: &str) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_ecs-preflight"))
            .args([
                "import",
                "--region",
                "cn-hangzhou",
                "--bucket",
                "images",
                "--object",
                "web.raw",
                "--format",
                "RAW",
                "--image-name",
                name,
                "--disk-image-size",
                "20",
                "--platform",
                "Ubuntu",
                "--tag",
                "env=prod",
                "--poll-interval",
                "200ms",
                "--output",
                "json",
            ])
            .args(endpoint_flags(emu, true))
            .env_remove("ALIBABA_CLOUD_PROFILE")
            .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
            .env("HOME", home)
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ACCESS_KEY_SECRET)
            .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .output()
            .expect("run ecs-preflight");
        let code = out.status.code().expect("exit code");
        (code, String::from_utf8(out.stdout).unwrap())
    }

    /// The same import through the library, rendered and serialised as the CLI prints it.
    fn library(rt: &tokio::runtime::Runtime, emu: &Emulator, name: &str) -> (ImportResult, String) {
        let params = ImportParams {
            region: Some("cn-hangzhou".into()),
            bucket: Some("images".into()),
            image_name: Some(name.into()),
            platform: Some("Ubuntu".into()),
            tags: vec![("env".into(), "prod".into())],
            disks: vec![DiskParams {
                object: Some("web.raw".into()),
                format: Some("RAW".into()),
                disk_image_size: Some(20),
                ..DiskParams::default()
            }],
            ..ImportParams::default()
        };
        let mut job = ImportJob::new(params, crate::common::emulator_creds());
        let ecs = ecs_endpoint(emu);
        job.endpoints = Endpoints {
            oss: Some(emu.endpoint()),
            ecs: Some(ecs.clone()),
            ram: emu.service_endpoint(preflight_emulator::Product::Ram),
            sts: emu.service_endpoint(preflight_emulator::Product::Sts),
            ..Endpoints::default()
        };
        job.poll_interval = Duration::from_millis(200);
        let result = rt
            .block_on(run_import(&job, |_: &Event| {}, std::future::pending()))
            .unwrap();
        let resume = WaitCommand {
            region: "cn-hangzhou".into(),
            ecs_endpoint: Some(ecs),
            profile: None,
        };
        let json = serde_json::to_string_pretty(&result.render(&resume).json).unwrap() + "\n";
        (result, json)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_refused_import_is_byte_identical_to_the_cli_json() {
        let dir = tempdir();
        let rt = runtime();
        // No import role: the cloud rules refuse, with the role's fix.
        let emu = emulator(&rt, dir.path(), false);
        let (cli_code, cli) = cli_import(&emu, dir.path(), "lib-import-01");
        let (result, lib) = library(&rt, &emu, "lib-import-01");
        assert_eq!(cli_code, 1, "{cli}");
        assert!(matches!(result, ImportResult::Refused { .. }), "{result:?}");
        assert!(cli.contains("\"trust_policy\""), "{cli}");
        assert_eq!(lib, cli);
        rt.block_on(emu.shutdown());
    }

    #[test]
    fn an_available_import_is_the_cli_json_but_for_its_request_id() {
        let dir = tempdir();
        let rt = runtime();
        let emu = emulator(&rt, dir.path(), true);
        // The CLI imports; the library's rerun finds the same image (same ClientToken), as
        // a second CLI run would. Only ImportImage's RequestId differs from call to call.
        let (cli_code, cli) = cli_import(&emu, dir.path(), "lib-import-02");
        assert_eq!(cli_code, 0, "{cli}");
        let (_, again) = cli_import(&emu, dir.path(), "lib-import-02");
        let (result, lib) = library(&rt, &emu, "lib-import-02");
        assert!(
            matches!(result, ImportResult::Finished { .. }),
            "{result:?}"
        );
        let strip = |s: &str| {
            let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
            assert!(v["request_id"].is_string(), "{v:#}");
            v["request_id"] = "-".into();
            v
        };
        assert_eq!(strip(&lib), strip(&again));
        assert_eq!(strip(&again)["reused"], true);
        assert_eq!(strip(&cli)["image_id"], strip(&lib)["image_id"]);
        rt.block_on(emu.shutdown());
    }
}

/// `upload`'s JSON from the library ([`UploadResult::render`], [`upload_refusal`]) and from
/// the binary, for the same emulator state and the same image.
mod upload {
    use super::*;
    use preflight_emulator::{Emulator, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
    use preflight_pipeline::{Endpoints, Event, ImageUpload, PipelineError};
    use std::path::Path;
    use std::process::Command;
    use std::sync::{Arc, Mutex};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// The suite's strict emulator with an empty bucket `images` in cn-hangzhou.
    fn emulator(rt: &tokio::runtime::Runtime, dir: &Path) -> Emulator {
        let mut cfg = strict_config(dir.join("emu"));
        cfg.buckets = vec!["images@cn-hangzhou".parse().unwrap()];
        rt.block_on(preflight_emulator::start(cfg)).unwrap()
    }

    /// What `ecs-preflight upload IMAGE --region cn-hangzhou --bucket BUCKET --output json`
    /// prints (exit code, stdout).
    fn cli_upload(emu: &Emulator, home: &Path, image: &Path, bucket: &str) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_ecs-preflight"))
            .arg("upload")
            .arg(image)
            .args(["--region", "cn-hangzhou", "--bucket", bucket])
            .args(["--output", "json"])
            .args(endpoint_flags(emu, false))
            .env_remove("ALIBABA_CLOUD_PROFILE")
            .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
            .env("HOME", home)
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ACCESS_KEY_SECRET)
            .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .output()
            .expect("run ecs-preflight");
        let code = out.status.code().expect("exit code");
        (code, String::from_utf8(out.stdout).unwrap())
    }

    /// The same upload through the library, rendered and serialised as the CLI prints it;
    /// a refusal is rendered from the findings its `DestinationChecked` event carried.
    fn library(rt: &tokio::runtime::Runtime, emu: &Emulator, image: &Path, bucket: &str) -> String {
        let mut job = ImageUpload::new(
            image,
            "cn-hangzhou",
            bucket,
            crate::common::emulator_creds(),
        );
        job.endpoints = Endpoints {
            oss: Some(emu.endpoint()),
            ..Endpoints::default()
        };
        let checked = Arc::new(Mutex::new(None));
        let on_event = {
            let checked = checked.clone();
            move |e: &Event| {
                if let Event::DestinationChecked { key, findings, .. } = e {
                    *checked.lock().unwrap() = Some((key.clone(), findings.clone()));
                }
            }
        };
        let rendered = match rt.block_on(job.run(on_event)) {
            Ok(done) => done.render(),
            Err(PipelineError::Refused { .. }) => {
                let (key, findings) = checked.lock().unwrap().clone().expect("rules ran");
                preflight_pipeline::upload_refusal(bucket, &key, &findings)
            }
            Err(e) => panic!("{e}"),
        };
        serde_json::to_string_pretty(&rendered.json).unwrap() + "\n"
    }

    #[test]
    fn a_refused_upload_is_byte_identical_to_the_cli_json() {
        let dir = tempdir();
        let rt = runtime();
        let emu = emulator(&rt, dir.path());
        let image = path_in(dir.path(), "web.raw");
        make_raw(&image, 2 << 20);
        let (cli_code, cli) = cli_upload(&emu, dir.path(), &image, "missing");
        assert_eq!(cli_code, 1, "{cli}");
        assert!(cli.contains("\"refused\""), "{cli}");
        assert_eq!(library(&rt, &emu, &image, "missing"), cli);
        rt.block_on(emu.shutdown());
    }

    #[test]
    fn an_upload_is_the_cli_json_but_for_its_timing() {
        let dir = tempdir();
        let rt = runtime();
        let emu = emulator(&rt, dir.path());
        let image = path_in(dir.path(), "web.raw");
        make_raw(&image, 2 << 20);
        // The CLI uploads; its rerun and the library's both find the object there (same
        // size and CRC-64) and send nothing. Only the seconds and MiB/s differ per call.
        let (code, first) = cli_upload(&emu, dir.path(), &image, "images");
        assert_eq!(code, 0, "{first}");
        let (code, again) = cli_upload(&emu, dir.path(), &image, "images");
        assert_eq!(code, 0, "{again}");
        let lib = library(&rt, &emu, &image, "images");
        let mask = |s: &str| {
            let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
            assert!(
                v["seconds"].is_number() && v["mib_per_s"].is_number(),
                "{v:#}"
            );
            v["seconds"] = "-".into();
            v["mib_per_s"] = "-".into();
            v
        };
        assert_eq!(mask(&lib), mask(&again));
        assert_eq!(mask(&lib)["already_there"], true);
        assert_eq!(mask(&first)["crc64"], mask(&lib)["crc64"]);
        rt.block_on(emu.shutdown());
    }
}
