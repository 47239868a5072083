//! `ecs-preflight upload-and-import` against an in-process emulator over HTTP: the full flow
//! with a data disk, refusals before any upload (bucket in another region, missing role, a
//! guest finding unless allowed), a failing task, rerun idempotency, --delete-object-after.

use crate::common::EmuEnv;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use preflight_emulator::{Config, Faults};
use serde_json::Value;

/// APIs that put bytes or an import in the cloud.
const WRITES: [&str; 4] = [
    "PutObject",
    "InitiateMultipartUpload",
    "UploadPart",
    "ImportImage",
];

crate::common::emu_env!();

impl Env {
    fn new(import_role: bool) -> Self {
        Env::with_task_seconds(import_role, 1.0)
    }

    /// An emulator whose import tasks end after `task_seconds`.
    fn with_task_seconds(import_role: bool, task_seconds: f64) -> Self {
        Env::with(import_role, task_seconds, |_| {})
    }

    /// An emulator whose configuration `tweak` adjusts after the suite's strict defaults.
    fn with(import_role: bool, task_seconds: f64, tweak: impl FnOnce(&mut Config)) -> Self {
        Env(EmuEnv::start(|data_dir| {
            let mut cfg = crate::common::strict_config(data_dir);
            cfg.buckets = vec![
                "images@cn-hangzhou".parse().unwrap(),
                "faraway@cn-beijing".parse().unwrap(),
                // A bucket created since 1 September 2025: OSS refuses V1 on it.
                "v4only@cn-hangzhou:v4only".parse().unwrap(),
            ];
            cfg.task_seconds = task_seconds;
            cfg.import_role = import_role;
            tweak(&mut cfg);
            cfg
        }))
    }

    /// A sparse qcow2 image (tiny on disk).
    fn qcow2(&self, name: &str, size: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        crate::common::sh(
            "qemu-img",
            &["create", "-q", "-f", "qcow2", p.to_str().unwrap(), size],
        );
        p
    }

    fn cmd(&self, image: &Path, bucket: &str, extra: &[&str]) -> Command {
        self.cmd_in("cn-hangzhou", image, bucket, extra)
    }

    /// [`Env::cmd`] for `region`.
    fn cmd_in(&self, region: &str, image: &Path, bucket: &str, extra: &[&str]) -> Command {
        let mut c = self.command();
        c.arg("upload-and-import")
            .arg(image)
            .args(["--region", region, "--bucket", bucket])
            .args(crate::common::endpoint_flags(self.emu(), true))
            .args(if extra.contains(&"--poll-interval") {
                &[][..]
            } else {
                &["--poll-interval", "200ms"][..]
            })
            .args(extra)
            .args(if extra.contains(&"--output") {
                &[][..]
            } else {
                &["--output", "json"][..]
            });
        c
    }

    fn object_exists(&self, bucket: &str, key: &str) -> bool {
        let cfg = preflight_oss::ClientConfig::new("cn-hangzhou", bucket)
            .with_endpoint(self.emu().endpoint());
        let client = preflight_oss::Client::new(cfg, crate::common::emulator_creds()).unwrap();
        match self.rt.block_on(client.head_object(key)) {
            Ok(_) => true,
            Err(e) if e.kind() == preflight_oss::ErrorKind::NotFound => false,
            Err(e) => panic!("HeadObject {key}: {e}"),
        }
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

fn assert_nothing_written(env: &Env) {
    for api in WRITES {
        assert_eq!(env.requests(api), 0, "{api} was called");
    }
}

#[test]
fn full_flow_imports_every_disk_and_a_rerun_returns_the_same_image() {
    let env = Env::new(true);
    let sys = env.qcow2("sys.qcow2", "5G");
    let data = env.qcow2("data.qcow2", "6G");
    let extra = [
        "--data-disk",
        data.to_str().unwrap(),
        "--skip-guest",
        "--image-name",
        "web-01",
        "--platform",
        "Ubuntu",
    ];
    let out = env.cmd(&sys, "images", &extra).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "available");
    assert_eq!(v["region"], "cn-hangzhou");
    let image_id = v["image_id"].as_str().unwrap().to_string();
    assert!(image_id.starts_with("m-"), "{v}");
    assert!(v["task_id"].as_str().unwrap().starts_with("t-"), "{v}");
    for stage in ["check", "upload", "import", "wait"] {
        assert!(v["stage_seconds"][stage].as_f64().is_some(), "{v}");
    }
    // The emulator's image: Available, its disks exactly the plan's mappings.
    assert_eq!(v["image"]["status"], "Available", "{v}");
    let plan = v["plan"]["disk_device_mappings"].as_array().unwrap();
    let disks = v["image"]["disk_device_mappings"].as_array().unwrap();
    assert_eq!(plan.len(), 2, "{v}");
    assert_eq!(disks.len(), 2, "{v}");
    for (p, d) in plan.iter().zip(disks) {
        assert_eq!(d["import_oss_bucket"], p["oss_bucket"]);
        assert_eq!(d["import_oss_object"], p["oss_object"]);
        assert_eq!(d["format"], p["format"]);
        assert_eq!(d["size"], p["disk_image_size"].to_string());
    }
    assert_eq!(plan[0]["oss_object"], "sys.qcow2");
    assert_eq!(plan[1]["oss_object"], "data.qcow2");
    assert_eq!(plan[0]["format"], "QCOW2");
    let listed = env.images_named("web-01");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "Available");
    assert_eq!(env.requests("ImportImage"), 1);
    assert!(env.object_exists("images", "sys.qcow2"));

    // Rerun: same ClientToken, same image, no second one, and no byte sent again.
    env.emu().reset_counters();
    let out = env.cmd(&sys, "images", &extra).output().unwrap();
    let again = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{again}");
    assert_eq!(env.requests("PutObject") + env.requests("UploadPart"), 0);
    assert_eq!(again["uploads"][0]["already_there"], true, "{again}");
    assert_eq!(again["uploads"][1]["already_there"], true, "{again}");
    assert_eq!(again["image_id"], image_id.as_str());
    assert_eq!(again["client_token"], v["client_token"]);
    assert_eq!(again["reused"], true);
    assert_eq!(env.images_named("web-01").len(), 1);

    // Human output names the image, task, region and the seconds per stage.
    let out = env
        .cmd(
            &sys,
            "images",
            &[&extra[..], &["--output", "human", "--quiet"]].concat(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&image_id) && text.contains("cn-hangzhou") && text.contains("upload"),
        "{text}"
    );
}

#[test]
fn a_sparse_raw_is_imported_as_the_qcow2_of_its_data() {
    let env = Env::new(true);
    let sys = env.dir.path().join("sys.raw");
    let p = sys.to_str().unwrap();
    crate::common::sh("qemu-img", &["create", "-q", "-f", "raw", p, "5G"]);
    crate::common::sh(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0x5a 1M 3M",
            "-c",
            "write -P 0xa5 3G 1M",
            p,
        ],
    );
    let out = env
        .cmd(&sys, "images", &["--skip-guest", "--image-name", "conv-01"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    let mapping = &v["plan"]["disk_device_mappings"][0];
    assert_eq!(mapping["format"], "QCOW2", "{v}");
    assert_eq!(mapping["oss_object"], "sys.qcow2", "{v}");
    assert_eq!(mapping["disk_image_size"], 5, "{v}");
    assert_eq!(v["image"]["disk_device_mappings"][0]["format"], "QCOW2");
    let upload = &v["uploads"][0];
    assert_eq!(upload["conversion"]["converted"], true, "{v}");
    assert!(upload["size"].as_u64().unwrap() < 5 << 20, "{v}");
    // The object ECS imports is the same disk.
    let cfg = preflight_oss::ClientConfig::new("cn-hangzhou", "images")
        .with_endpoint(env.emu().endpoint());
    let client = preflight_oss::Client::new(cfg, crate::common::emulator_creds()).unwrap();
    let bytes = env.rt.block_on(client.get_object("sys.qcow2")).unwrap();
    let object = env.dir.path().join("object.qcow2");
    std::fs::write(&object, bytes).unwrap();
    let cmp = crate::common::sh(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "qcow2",
            p,
            object.to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&cmp.stdout).contains("identical"));
}

#[test]
fn no_wait_returns_after_import_image_and_the_printed_wait_finishes() {
    let env = Env::new(true);
    let sys = env.qcow2("sys.qcow2", "5G");
    let out = env
        .cmd(
            &sys,
            "images",
            &["--skip-guest", "--image-name", "nw-01", "--no-wait"],
        )
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "importing", "{v}");
    assert_eq!(env.requests("ImportImage"), 1);
    assert_eq!(env.requests("CancelTask"), 0);
    let printed = v["wait_command"].as_str().unwrap();
    assert!(
        printed.contains(v["task_id"].as_str().unwrap()),
        "{printed}"
    );
    crate::common::printed_wait_reaches_available(printed, env.dir.path(), &v["image_id"]);
}

#[test]
fn bucket_in_another_region_is_refused_before_any_upload() {
    let env = Env::new(true);
    let sys = env.qcow2("sys.qcow2", "5G");
    let out = env
        .cmd(&sys, "faraway", &["--skip-guest"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["status"], "refused");
    assert!(
        codes(&v).contains(&"InvalidOSSBucket.NotMatched".to_string()),
        "{v}"
    );
    assert_nothing_written(&env);
}

/// A well-formed region the tool does not know is asked of DescribeRegions first: a made-up
/// one is refused before any OSS request, one that ECS lists goes on.
#[test]
fn an_unknown_region_is_checked_with_describe_regions_before_any_upload() {
    let env = Env::with(true, 1.0, |cfg| {
        // A region only the emulator's DescribeRegions lists (it lists its buckets' regions).
        cfg.buckets.push("edge@ap-test-9".parse().unwrap());
    });
    let sys = env.qcow2("sys.qcow2", "5G");
    let out = env
        .cmd_in("ap-madeup-9", &sys, "images", &["--skip-guest"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["status"], "refused", "{v}");
    assert!(
        codes(&v).contains(&"InvalidRegionId.NotFound".to_string()),
        "{v}"
    );
    assert!(v.to_string().contains("DescribeRegions"), "{v}");
    assert_eq!(env.requests("DescribeRegions"), 1);
    for api in ["GetBucketInfo", "GetBucketLocation", "GetBucketEncryption"] {
        assert_eq!(env.requests(api), 0, "{api} sent for a made-up region");
    }
    assert_nothing_written(&env);

    let out = env
        .cmd_in("ap-test-9", &sys, "edge", &["--skip-guest", "--dry-run"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(env.requests("DescribeRegions"), 2);
    assert!(
        !codes(&v).contains(&"InvalidRegionId.NotFound".to_string()),
        "{v}"
    );
    // A region the tool knows costs no DescribeRegions.
    let out = env
        .cmd(&sys, "images", &["--skip-guest", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", json_of(&out));
    assert_eq!(env.requests("DescribeRegions"), 2);
    assert_nothing_written(&env);
}

#[test]
fn missing_role_is_explained_and_nothing_is_uploaded() {
    let env = Env::new(false);
    let sys = env.qcow2("sys.qcow2", "5G");
    let out = env.cmd(&sys, "images", &["--skip-guest"]).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(
        codes(&v).contains(&"NoSetRoletoECSServiceAcount".to_string()),
        "{v}"
    );
    assert_eq!(v["fix"]["attach_policy"], "AliyunECSImageImportRolePolicy");
    assert_nothing_written(&env);
    let out = env
        .cmd(&sys, "images", &["--skip-guest", "--output", "human"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("aliyun ram CreateRole") && text.contains("AliyunECSImageImportRolePolicy"),
        "{text}"
    );
    assert!(!env.object_exists("images", "sys.qcow2"));
}

/// Seed 004: "Import an image file by using CloudBox: ... Create a role named
/// AliyunECSCloudBoxImageImportDefaultRole". The default import role exists
/// here, the CloudBox one does not: the one-shot looks up the latter.
#[test]
fn a_cloudbox_import_looks_up_the_cloudbox_role() {
    let env = Env::new(true);
    let sys = env.qcow2("sys.qcow2", "5G");
    let arn = "arn:acs:cloudbox:cn-hangzhou:123456:cloudbox/cb-1";
    let out = env
        .cmd(
            &sys,
            "images",
            &["--skip-guest", "--storage-location-arn", arn],
        )
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
    assert_nothing_written(&env);
}

#[test]
fn a_failing_task_exits_1_with_the_reason_and_keeps_the_objects() {
    let env = Env::new(true);
    let mut f = env.emu().faults();
    f.fail_import = true;
    env.emu().set_faults(f);
    let sys = env.qcow2("sys.qcow2", "5G");
    let out = env
        .cmd(&sys, "images", &["--skip-guest", "--delete-object-after"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"]["code"], "ImportImageFailed");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fail_import"),
        "{v}"
    );
    assert!(v["task_id"].as_str().unwrap().starts_with("t-"));
    // Not Available: the uploaded object stays.
    assert_eq!(env.requests("DeleteObject"), 0);
    assert!(env.object_exists("images", "sys.qcow2"));
}

#[test]
fn a_failed_task_ends_the_run_at_the_first_poll_that_sees_it() {
    // The task has failed by the first poll; the next poll would come an hour later, and the
    // 20 s timeout would end a client that missed the failure with `timed_out`.
    let env = Env::with_task_seconds(true, 0.0);
    let mut f = env.emu().faults();
    f.fail_import = true;
    env.emu().set_faults(f);
    let sys = env.qcow2("sys.qcow2", "5G");
    let out = env
        .cmd(
            &sys,
            "images",
            &["--skip-guest", "--poll-interval", "1h", "--timeout", "20s"],
        )
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["code"], "ImportImageFailed");
    assert_eq!(
        env.requests("DescribeTaskAttribute"),
        1,
        "one status query, the one that saw the failure"
    );
}

/// Starts the one-shot, waits for its wait stage, sends SIGINT; returns its output.
fn interrupt_while_waiting(env: &Env, image: &Path, extra: &[&str]) -> (Output, Value) {
    let out = crate::common::interrupt_after(env.cmd(image, "images", extra), "== wait");
    let v = json_of(&out);
    (out, v)
}

#[test]
fn sigint_while_waiting_cancels_the_import_unless_detached() {
    let env = Env::with_task_seconds(true, 8.0);
    let sys = env.qcow2("sys.qcow2", "5G");
    let (out, v) = interrupt_while_waiting(&env, &sys, &["--skip-guest", "--image-name", "c-01"]);
    assert_eq!(out.status.code(), Some(130), "{v}");
    assert_eq!(v["status"], "cancelled", "{v}");
    assert_eq!(env.requests("CancelTask"), 1);

    let (out, v) = interrupt_while_waiting(
        &env,
        &sys,
        &["--skip-guest", "--image-name", "d-01", "--detach"],
    );
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "detached", "{v}");
    assert_eq!(env.requests("CancelTask"), 1, "no second CancelTask");
    crate::common::printed_wait_reaches_available(
        v["wait_command"].as_str().unwrap(),
        env.dir.path(),
        &v["image_id"],
    );
}

/// A V4-only bucket (OSS refuses V1 there, EC 0002-00000080): the default run signs every
/// OSS request, probes included, with V4 and imports; a run that asks for V1 is refused at
/// the first probe, before any byte is uploaded.
#[test]
fn a_v4_only_bucket_takes_the_default_run_and_refuses_v1() {
    let env = Env::new(true);
    let sys = env.qcow2("sys.qcow2", "2G");
    let out = env
        .cmd(&sys, "v4only", &["--skip-guest", "--image-name", "v4-only"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "available", "{v}");
    assert_eq!(env.emu().counters().signatures_for("OSS-HMAC-SHA1"), 0);
    let uploads = env.requests("PutObject") + env.requests("UploadPart");
    assert!(uploads > 0);

    let data = env.qcow2("data.qcow2", "1G");
    let out = env
        .cmd(
            &data,
            "v4only",
            &[
                "--skip-guest",
                "--image-name",
                "v1-refused",
                "--signature-version",
                "v1",
            ],
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("AccessDenied"), "{err}");
    assert_eq!(
        env.requests("PutObject") + env.requests("UploadPart"),
        uploads,
        "nothing uploaded with V1"
    );
}

#[test]
fn signature_flags_choose_what_every_request_carries() {
    // This test asks for V1 on purpose: an account created before March 2025 still takes it.
    let env = Env::with(true, 1.0, |cfg| cfg.strict.v4_only = false);
    let sys = env.qcow2("sys.qcow2", "5G");
    let sig = |scheme: &str| env.emu().counters().signatures_for(scheme);
    let out = env
        .cmd(
            &sys,
            "images",
            &["--skip-guest", "--image-name", "sig-default"],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", json_of(&out));
    let (oss_v4, rpc_sha1) = (sig("OSS4-HMAC-SHA256"), sig("HMAC-SHA1"));
    assert!(
        oss_v4 > 0 && rpc_sha1 > 0,
        "defaults: V4 uploads, HMAC-SHA1 RPC"
    );
    assert_eq!(sig("ACS3-HMAC-SHA256"), 0);

    let data = env.qcow2("data.qcow2", "1G");
    let out = env
        .cmd(
            &data,
            "images",
            &[
                "--skip-guest",
                "--image-name",
                "sig-flags",
                "--signature",
                "acs3",
                "--signature-version",
                "v1",
            ],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", json_of(&out));
    assert_eq!(
        sig("OSS4-HMAC-SHA256"),
        oss_v4,
        "no V4 request in the second run"
    );
    assert_eq!(
        sig("HMAC-SHA1"),
        rpc_sha1,
        "no HMAC-SHA1 RPC in the second run"
    );
    assert!(sig("ACS3-HMAC-SHA256") > 0);
    assert!(env.requests("PutObject") + env.requests("UploadPart") > 0);
}

#[test]
fn dry_run_runs_every_check_and_sends_nothing() {
    let env = Env::new(true);
    let sys = env.qcow2("sys.qcow2", "5G");
    let data = env.qcow2("data.qcow2", "1G");
    let out = env
        .cmd(
            &sys,
            "images",
            &[
                "--skip-guest",
                "--image-name",
                "dry-01",
                "--data-disk",
                data.to_str().unwrap(),
                "--dry-run",
            ],
        )
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "dry_run_passed", "{v}");
    assert_eq!(v["uploads"][0]["key"], "sys.qcow2");
    assert_eq!(v["uploads"][1]["key"], "data.qcow2");
    assert_eq!(
        v["uploads"][0]["size"].as_u64(),
        Some(std::fs::metadata(&sys).unwrap().len())
    );
    assert_eq!(v["plan"]["image_name"], "dry-01", "{v}");
    // The cloud-side rules ran: the role and the image name were looked up.
    assert_eq!(env.requests("GetRole"), 1);
    assert!(env.requests("DescribeImages") >= 1);
    assert_nothing_written(&env);
    assert!(env.images_named("dry-01").is_empty());

    // The same dry run against a bucket in another region is refused, still sending nothing.
    let out = env
        .cmd(&sys, "faraway", &["--skip-guest", "--dry-run"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(
        codes(&v).contains(&"InvalidOSSBucket.NotMatched".to_string()),
        "{v}"
    );
    assert_nothing_written(&env);
}

#[test]
fn delete_object_after_removes_the_objects_once_available() {
    let env = Env::new(true);
    let sys = env.qcow2("sys.qcow2", "5G");
    let data = env.qcow2("data.qcow2", "5G");
    let out = env
        .cmd(
            &sys,
            "images",
            &[
                "--skip-guest",
                "--data-disk",
                data.to_str().unwrap(),
                "--image-name",
                "web-del",
                "--delete-object-after",
            ],
        )
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["image"]["status"], "Available");
    assert_eq!(v["objects_deleted"], true);
    assert_eq!(env.requests("DeleteObject"), 2);
    assert!(!env.object_exists("images", "sys.qcow2"));
    assert!(!env.object_exists("images", "data.qcow2"));
    assert_eq!(env.images_named("web-del")[0].status, "Available");
}

#[test]
fn a_guest_error_stops_it_unless_allowed() {
    let env = Env::new(true);
    // A blank disk: no partition table, no OS.
    let sys = env.qcow2("blank.qcow2", "5G");
    let out = env.cmd(&sys, "images", &[]).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    let errors = codes(&v);
    assert!(!errors.is_empty(), "{v}");
    assert!(errors.iter().all(|c| c.starts_with("GUEST.")), "{v}");
    assert_nothing_written(&env);

    let mut extra = Vec::new();
    for c in &errors {
        extra.push("--allow");
        extra.push(c.as_str());
    }
    let out = env.cmd(&sys, "images", &extra).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "available");
    let kept = codes(&v);
    assert!(errors.iter().all(|c| kept.contains(c)), "{v}");
}

#[test]
fn a_rerun_after_kill_9_resumes_the_upload_and_imports_once() {
    const MIB: u64 = 1 << 20;
    let env = Env::new(true);
    let sys = env.qcow2("sys.qcow2", "5G");
    let data = env.dir.path().join("data.raw");
    preflight_testkit::Rng::write_file(&data, 16 * MIB, 9);
    let args = [
        "--skip-guest",
        "--data-disk",
        data.to_str().unwrap(),
        "--image-name",
        "web-resume",
        "--part-size",
        "1MiB",
        "--multipart-threshold",
        "1MiB",
        "--parallel",
        "2",
    ];
    env.emu().set_faults(Faults {
        bandwidth_bytes_per_sec: 4 * MIB,
        ..Faults::default()
    });
    let mut child = env
        .cmd(&sys, "images", &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = env
            .emu()
            .counters()
            .parts
            .iter()
            .filter(|p| p.stored > 0)
            .count();
        if stored >= 8 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup.
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    env.emu().set_faults(Faults::default());
    assert_eq!(env.requests("ImportImage"), 0);
    let sent_before = env.requests("UploadPart");

    let out = env.cmd(&sys, "images", &args).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "available");
    let reused = v["uploads"][1]["parts_reused"].as_u64().unwrap();
    assert!(reused >= 1, "{v}");
    assert_eq!(
        env.requests("UploadPart") - sent_before,
        16 - reused,
        "only the missing parts are sent"
    );
    assert_eq!(env.requests("ImportImage"), 1);
    assert_eq!(env.images_named("web-resume").len(), 1);
}

/// The whole one-shot over a 16 KiB/s link, against the suite's strict emulator (V4 only,
/// each service on its own endpoint): the upload crawls but is never dropped, and the image
/// ends Available. (That an idle timeout, not a total one, bounds a slow body is pinned by
/// the paused-clock unit test in `crates/oss/src/client.rs`: loopback buffers the body.)
#[test]
fn a_16_kib_per_second_link_still_imports() {
    let env = Env::new(true);
    let sys = env.qcow2("slow.qcow2", "2G");
    let size = std::fs::metadata(&sys).unwrap().len();
    env.emu().set_faults(Faults {
        bandwidth_bytes_per_sec: 16 << 10,
        ..Faults::default()
    });
    let started = Instant::now();
    let out = env
        .cmd(
            &sys,
            "images",
            &["--skip-guest", "--image-name", "slow-link"],
        )
        .output()
        .unwrap();
    let took = started.elapsed();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "available", "{v}");
    // The link really was 16 KiB/s: the body alone needs size / 16 KiB seconds.
    let floor = Duration::from_secs_f64(size as f64 / f64::from(16u32 << 10) * 0.9);
    assert!(took >= floor, "{took:?} < {floor:?} for {size} bytes");
    assert_eq!(env.emu().counters().signatures_for("OSS-HMAC-SHA1"), 0);
}
