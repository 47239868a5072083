//! `ecs-preflight import` and `wait` against an in-process emulator: the happy path, cloud
//! rules that refuse before ImportImage, a failing task, rerun idempotency, Ctrl-C (cancel or
//! detach), and parity of the ImportImage query with Alibaba's official Python SDK.

use crate::common::EmuEnv;
use std::process::{Command, Output, Stdio};

use preflight_emulator::{Config, Faults, DEFAULT_ACCESS_KEY_ID};
use serde_json::Value;

crate::common::emu_env!();

impl Env {
    fn new(task_seconds: f64, import_role: bool) -> Self {
        Env::with(task_seconds, import_role, |_| {})
    }

    /// An emulator whose configuration `tweak` adjusts (denied actions, ...).
    fn with(task_seconds: f64, import_role: bool, tweak: impl FnOnce(&mut Config)) -> Self {
        let env = Env(EmuEnv::start(|data_dir| {
            let mut cfg = crate::common::strict_config(data_dir);
            cfg.buckets = vec![
                "images@cn-hangzhou".parse().unwrap(),
                "faraway@cn-beijing".parse().unwrap(),
            ];
            cfg.task_seconds = task_seconds;
            cfg.import_role = import_role;
            tweak(&mut cfg);
            cfg
        }));
        env.put("images", "web.raw", 0x5a, 8192);
        env.put("faraway", "web.raw", 0x5a, 8192);
        env
    }

    /// PutObject of `len` bytes of `byte` (the oss client, V4-signed; MD5s precomputed).
    fn put(&self, bucket: &str, key: &str, byte: u8, len: u64) {
        let md5 = match (byte, len) {
            (0x5a, 8192) => "UXgm4XqfEGI28QCn2xPgpQ==",
            (0x01, 4096) => "qo85ln3rRBpudISWOUWpYA==",
            other => panic!("no MD5 for {other:?}"),
        };
        let path = self
            .dir
            .path()
            .join(format!("{bucket}-{}", key.replace('/', "_")));
        std::fs::write(&path, vec![byte; usize::try_from(len).unwrap()]).unwrap();
        let region = if bucket == "faraway" {
            "cn-beijing"
        } else {
            "cn-hangzhou"
        };
        let cfg =
            preflight_oss::ClientConfig::new(region, bucket).with_endpoint(self.emu().endpoint());
        let client = preflight_oss::Client::new(cfg, crate::common::emulator_creds()).unwrap();
        self.rt
            .block_on(client.put_object_file(key, &path, len, md5))
            .unwrap();
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.command();
        c.args(args)
            .args(crate::common::endpoint_flags(self.emu(), true));
        c
    }

    fn import(&self, bucket: &str, name: &str, extra: &[&str]) -> Command {
        let mut args = vec![
            "import",
            "--region",
            "cn-hangzhou",
            "--bucket",
            bucket,
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
        ];
        args.extend_from_slice(extra);
        self.cmd(&args)
    }
}

use crate::common::json_of;

fn codes(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["code"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn import_waits_for_available_and_a_rerun_returns_the_same_image() {
    let env = Env::new(1.0, true);
    let out = env.import("images", "web-01", &[]).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "available");
    assert_eq!(v["region"], "cn-hangzhou");
    let image_id = v["image_id"].as_str().unwrap().to_string();
    assert!(image_id.starts_with("m-"));
    assert!(v["task_id"].as_str().unwrap().starts_with("t-"));
    let disks = &v["image"]["disk_device_mappings"];
    assert_eq!(disks.as_array().unwrap().len(), 1);
    assert_eq!(disks[0]["import_oss_bucket"], "images");
    assert_eq!(disks[0]["import_oss_object"], "web.raw");
    assert_eq!(disks[0]["format"], "RAW");
    assert_eq!(disks[0]["size"], "20");
    assert_eq!(v["image"]["platform"], "Ubuntu");
    assert_eq!(env.requests("ImportImage"), 1);

    // The same command again (ACS3-signed this time): same ClientToken, same image.
    let out = env
        .import("images", "web-01", &["--signature", "acs3"])
        .output()
        .unwrap();
    let again = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{again}");
    assert_eq!(again["image_id"], image_id.as_str());
    assert_eq!(again["reused"], true);
    let listed = env.images_named("web-01");
    assert_eq!(listed.len(), 1, "{listed:?}");

    // Another object under the same name is refused before ImportImage.
    env.put("images", "other.raw", 0x01, 4096);
    let before = env.requests("ImportImage");
    let mut c = env.cmd(&[
        "import",
        "--region",
        "cn-hangzhou",
        "--bucket",
        "images",
        "--object",
        "other.raw",
        "--image-name",
        "web-01",
        "--output",
        "json",
    ]);
    let out = c.output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(
        codes(&v).contains(&"InvalidImageName.Duplicated".to_string()),
        "{v}"
    );
    assert_eq!(env.requests("ImportImage"), before);
}

/// `--data-disk vm/d1.raw` is the object key, whole: the emulator receives
/// `DiskDeviceMapping.2.OSSObject=vm/d1.raw`, not `d1.raw`. Seed 004
/// (OSSObject): "The file name (key) of the image file stored in the OSS
/// bucket after the image is uploaded to OSS."
#[test]
fn a_data_disk_key_is_sent_whole() {
    let env = Env::new(0.2, true);
    env.put("images", "vm/d1.raw", 0x01, 4096);
    let out = env
        .import("images", "web-dd", &["--data-disk", "vm/d1.raw"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    let disks = &v["image"]["disk_device_mappings"];
    assert_eq!(disks[1]["import_oss_object"], "vm/d1.raw", "{v}");
    let listed = env.images_named("web-dd");
    assert_eq!(
        listed[0].disk_device_mappings[1].import_oss_object,
        "vm/d1.raw"
    );
}

/// Seed 004: "Import an image file by using CloudBox: ... Create a role named
/// AliyunECSCloudBoxImageImportDefaultRole". The default role exists here,
/// the CloudBox one does not.
#[test]
fn a_cloudbox_import_looks_up_the_cloudbox_role() {
    let env = Env::new(1.0, true);
    let arn = "arn:acs:cloudbox:cn-hangzhou:123456:cloudbox/cb-1";
    let out = env
        .import("images", "web-cb", &["--storage-location-arn", arn])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(
        codes(&v).contains(&"InvalidOperation.CloudBoxImageImportRoleRequired".to_string()),
        "{v}"
    );
    assert!(
        v.to_string()
            .contains("AliyunECSCloudBoxImageImportDefaultRole"),
        "{v}"
    );
    assert_eq!(
        v["fix"]["attach_policy"],
        "AliyunECSCloudBoxImageImportRolePolicy"
    );
    assert_eq!(env.requests("ImportImage"), 0);
}

#[test]
fn bucket_in_another_region_is_refused_before_import_image() {
    let env = Env::new(1.0, true);
    let out = env.import("faraway", "web-02", &[]).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(
        codes(&v).contains(&"InvalidOSSBucket.NotMatched".to_string()),
        "{v}"
    );
    assert_eq!(env.requests("ImportImage"), 0);
    // A missing object too.
    let mut c = env.cmd(&[
        "import",
        "--region",
        "cn-hangzhou",
        "--bucket",
        "images",
        "--object",
        "nope.raw",
        "--output",
        "json",
    ]);
    let out = c.output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(
        codes(&v).contains(&"InvalidOSSObject.NotFound".to_string()),
        "{v}"
    );
    assert_eq!(env.requests("ImportImage"), 0);
}

#[test]
fn missing_role_is_explained_and_nothing_is_imported() {
    let env = Env::new(1.0, false);
    let out = env.import("images", "web-03", &[]).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(
        codes(&v).contains(&"NoSetRoletoECSServiceAcount".to_string()),
        "{v}"
    );
    assert_eq!(v["fix"]["attach_policy"], "AliyunECSImageImportRolePolicy");
    assert!(v["fix"]["trust_policy"]
        .to_string()
        .contains("ecs.aliyuncs.com"));
    assert_eq!(env.requests("ImportImage"), 0);
    // Human output names the fix too.
    let mut c = env.cmd(&[
        "import",
        "--region",
        "cn-hangzhou",
        "--bucket",
        "images",
        "--object",
        "web.raw",
    ]);
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("AliyunECSImageImportRolePolicy")
            && text.contains("AssumeRolePolicyDocument"),
        "{text}"
    );
}

#[test]
fn a_failing_task_exits_1_with_the_reason_quickly() {
    let env = Env::new(1.0, true);
    let mut f = env.emu().faults();
    f.fail_import = true;
    env.emu().set_faults(f);
    let out = env.import("images", "web-04", &[]).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"]["code"], "ImportImageFailed");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("fail_import"));
    // No timing assertion: a client that kept waiting on a failed task would
    // poll until its 6-hour timeout, and this test would never finish.
}

#[test]
fn a_refusal_only_the_service_decides_comes_with_its_fix() {
    // The emulator, like a region without CloudBox import, refuses any StorageLocationArn.
    let env = Env::new(1.0, true);
    let out = env
        .import(
            "images",
            "web-11",
            &[
                "--storage-location-arn",
                "arn:acs:cloudbox:cn-hangzhou:1234567890123456:cloudbox/cb-abc",
                "--role-name",
                "AliyunECSImageImportDefaultRole",
            ],
        )
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["status"], "refused", "{v}");
    let code = "InvalidOperation.CloudBoxImageImportUnsupported";
    assert_eq!(v["error"]["code"], code, "{v}");
    let fix = preflight_rules::service_code(code).unwrap().fix;
    assert_eq!(v["error"]["fix"], fix, "{v}");
    assert_eq!(env.requests("ImportImage"), 1);
}

#[test]
fn dry_run_reports_success_and_creates_nothing() {
    let env = Env::new(1.0, true);
    let out = env
        .import("images", "web-05", &["--dry-run"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "dry_run_passed");
    assert_eq!(env.requests("ImportImage"), 1);
    assert!(env.images_named("web-05").is_empty());
}

#[test]
fn timeout_exits_1_and_names_the_wait_command() {
    let env = Env::new(30.0, true);
    let out = env
        .import("images", "web-08", &["--timeout", "1s"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["status"], "timed_out");
    assert_eq!(env.requests("CancelTask"), 0);
    let mut c = env.cmd(&[
        "import",
        "--region",
        "cn-hangzhou",
        "--bucket",
        "images",
        "--object",
        "web.raw",
        "--image-name",
        "web-09",
        "--timeout",
        "1s",
        "--poll-interval",
        "200ms",
    ]);
    let text = String::from_utf8_lossy(&c.output().unwrap().stdout).to_string();
    assert!(
        text.contains("ecs-preflight wait --region cn-hangzhou --task-id t-"),
        "{text}"
    );
}

/// ECS failing for longer than every retry (503 on each attempt): `wait` and a waiting
/// `import` stop with exit 2, say the import goes on and print the `wait` command, which
/// finishes the import once ECS answers again.
#[test]
fn a_wait_error_that_outlasts_the_retries_prints_the_wait_command() {
    let env = Env::new(1.0, true);
    let out = env
        .import("images", "web-22", &["--no-wait"])
        .output()
        .unwrap();
    let started = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{started}");
    let printed = started["wait_command"].as_str().unwrap().to_string();
    let outage = |actions: &[&str]| Faults {
        unavailable_actions: actions.iter().map(|a| a.to_string()).collect(),
        // The gateway's x-acs-retry-after: 0 keeps the ten attempts quick.
        unavailable_retry_after: Some(0),
        ..Faults::default()
    };

    // `wait`: its lookup of the task (DescribeTasks) fails on every attempt.
    env.emu()
        .set_faults(outage(&["DescribeTasks", "DescribeTaskAttribute"]));
    env.emu().reset_counters();
    let home = env.dir.path();
    let out = crate::common::run_printed(&printed, home, &["--poll-interval", "200ms"]);
    let human = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{human}");
    assert!(
        human.contains(&format!("pick it up again with: {printed}")),
        "{human}"
    );
    assert_eq!(env.requests("DescribeTasks"), 10, "every retry was spent");
    let out = crate::common::run_printed(&printed, home, &["--output", "json"]);
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(2), "{v}");
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["error"]["code"], "ServiceUnavailable", "{v}");
    assert_eq!(v["wait_command"], printed.as_str(), "{v}");

    // A waiting `import`: polling (DescribeTaskAttribute) fails on every attempt.
    env.emu().set_faults(outage(&["DescribeTaskAttribute"]));
    let out = env.import("images", "web-23", &[]).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(2), "{v}");
    assert_eq!(v["status"], "error", "{v}");
    let second = v["wait_command"].as_str().unwrap().to_string();
    assert!(
        second.starts_with("ecs-preflight wait --region cn-hangzhou --task-id t-"),
        "{v}"
    );

    // ECS answers again: each printed command, exactly as printed, finishes its import.
    env.emu().set_faults(Faults::default());
    crate::common::printed_wait_reaches_available(&printed, home, &started["image_id"]);
    crate::common::printed_wait_reaches_available(&second, home, &v["image_id"]);
}

/// Starts the import, waits for the "waiting for import task" line, sends SIGINT.
fn interrupt_while_waiting(env: &Env, name: &str, extra: &[&str]) -> (Output, Value) {
    let out = crate::common::interrupt_after(
        env.import("images", name, extra),
        "waiting for import task",
    );
    let v = json_of(&out);
    (out, v)
}

#[test]
fn waiting_on_a_terminal_draws_a_progress_bar_and_a_pipe_gets_lines() {
    let env = Env::new(2.0, true);
    // On a pseudo-terminal (script(1)), the wait is a bar.
    let cmd = env.import("images", "web-09", &[]);
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_str().unwrap().to_string())
        .collect();
    let typescript = env.dir.path().join("typescript");
    let mut script = Command::new("script");
    script
        .args(["-qec", &line.join(" "), typescript.to_str().unwrap()])
        .stdout(Stdio::null());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    assert!(script.status().unwrap().success());
    let shown = std::fs::read_to_string(&typescript).unwrap();
    assert!(
        shown.contains('\u{2588}'),
        "a filled bar on the terminal:\n{shown}"
    );
    assert!(shown.contains("100%"), "{shown}");
    // Through a pipe: one plain line per change, no redraws.
    let out = env.import("images", "web-10", &[]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // The last line shows the image Available at 100%; the task's own status in that line
    // may still lag a poll behind (ECS lists the image before the task says Finished).
    assert!(
        err.lines().any(|l| l.contains("image Available 100%")),
        "{err}"
    );
    assert!(!err.contains('\u{2588}') && !err.contains('\r'), "{err}");
}

#[test]
fn sigint_cancels_the_import() {
    let env = Env::new(6.0, true);
    let (out, v) = interrupt_while_waiting(&env, "web-06", &[]);
    assert_eq!(out.status.code(), Some(130), "{v}");
    assert_eq!(v["status"], "cancelled");
    assert_eq!(env.requests("CancelTask"), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("CancelTask"));
}

#[test]
fn detach_leaves_the_import_running_and_wait_finishes_it() {
    let env = Env::new(4.0, true);
    let (out, v) = interrupt_while_waiting(&env, "web-07", &["--detach"]);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "detached");
    assert_eq!(env.requests("CancelTask"), 0);
    // The printed command, exactly as printed (it names the endpoint this run used).
    let printed = v["wait_command"].as_str().unwrap();
    assert!(printed.starts_with("ecs-preflight wait "), "{printed}");
    assert!(
        printed.contains(&crate::common::ecs_endpoint(env.emu())),
        "{printed}"
    );
    crate::common::printed_wait_reaches_available(printed, env.dir.path(), &v["image_id"]);
}

/// The emulator's ECS client (on the ECS port of its own).
fn ecs_of(env: &Env) -> preflight_ecs::Client {
    preflight_ecs::Client::new(
        preflight_ecs::ClientConfig::new("cn-hangzhou")
            .with_endpoint(&crate::common::ecs_endpoint(env.emu())),
        crate::common::emulator_creds(),
    )
    .unwrap()
}

/// ECS answers a reused ClientToken with the earlier task even when that task was cancelled:
/// the identical command after a CancelTask must start a new import (a token salted with the
/// dead task's id), and a rerun of that one must find it again, not start a third.
#[test]
fn a_rerun_after_cancel_task_starts_a_new_import() {
    let env = Env::new(30.0, true);
    // Count only the tool's requests, not the setup's PutObject.
    env.emu().reset_counters();
    let out = env
        .import("images", "web-20", &["--no-wait"])
        .output()
        .unwrap();
    let first = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{first}");
    let dead = first["task_id"].as_str().unwrap().to_string();
    let ecs = ecs_of(&env);
    env.rt.block_on(ecs.cancel_task(&dead)).unwrap();

    let out = env
        .import("images", "web-20", &["--no-wait"])
        .output()
        .unwrap();
    let second = json_of(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{second}\n{err}");
    let fresh = second["task_id"].as_str().unwrap().to_string();
    assert_ne!(fresh, dead, "the cancelled task came back: {second}");
    assert_ne!(second["client_token"], first["client_token"]);
    assert!(
        err.contains(&dead) && err.contains("new ClientToken"),
        "says why the token changed: {err}"
    );
    let attr = env
        .rt
        .block_on(ecs.describe_task_attribute(&fresh))
        .unwrap();
    assert!(
        matches!(attr.task.task_status.as_str(), "Waiting" | "Processing"),
        "{attr:?}"
    );
    // The same command once more: the live import is found again (same salted token).
    let out = env
        .import("images", "web-20", &["--no-wait"])
        .output()
        .unwrap();
    let third = json_of(&out);
    assert_eq!(third["task_id"], fresh.as_str(), "{third}");
    assert_eq!(third["client_token"], second["client_token"]);
    // Every OSS probe was V4-signed: V1 only when asked for.
    assert_eq!(env.emu().counters().signatures_for("OSS-HMAC-SHA1"), 0);
    assert!(env.emu().counters().signatures_for("OSS4-HMAC-SHA256") > 0);
}

/// A least-privilege key: GetBucketEncryption, HeadObject, DescribeImages and GetRole denied.
/// Each becomes a warning naming what was not verified; the import goes on.
#[test]
fn a_key_denied_the_optional_probes_imports_with_warnings() {
    let env = Env::with(1.0, true, |cfg| {
        // RAM actions: HeadObject is authorised as oss:GetObject.
        for key in cfg
            .access_keys
            .iter_mut()
            .filter(|k| k.id == DEFAULT_ACCESS_KEY_ID)
        {
            key.deny = [
                "oss:GetBucketEncryption",
                "oss:GetObject",
                "ecs:DescribeImages",
                "ram:GetRole",
            ]
            .map(String::from)
            .to_vec();
        }
    });
    let out = env.import("images", "web-21", &[]).output().unwrap();
    let v = json_of(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{v}\n{err}");
    assert_eq!(v["status"], "available", "{v}");
    for what in [
        "GetBucketEncryption",
        "HeadObject",
        "DescribeImages",
        "GetRole",
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains("CLOUD.NotVerified") && l.contains(what)),
            "no warning for {what}: {err}"
        );
    }
}
