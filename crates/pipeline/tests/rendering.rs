//! The results' JSON and lines come from the library ([`preflight_pipeline::rendering`]):
//! each result kind carries the fields the CLI documents, checked without the binary.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{creds, emulator_with_web_raw as emulator, import_job as job};
use preflight_pipeline::batch::{BatchReport, ImageResult, Manifest};
use preflight_pipeline::fleet::{CopyStopState, FleetPlan, StoppedCopy};
use preflight_pipeline::import::{run_import, ImportResult};
use preflight_pipeline::wait::{wait_for_task, WaitJob};
use preflight_pipeline::{
    rendering, Endpoints, Event, ImportParams, Pipeline, PipelineError, Rendered, RunEnd,
    UploadOptions, WaitCommand,
};
use serde_json::Value;

const FRIEND: &str = "1111222233334444";

fn resume() -> WaitCommand {
    WaitCommand {
        region: "cn-hangzhou".into(),
        ecs_endpoint: Some("http://127.0.0.1:9".into()),
        profile: Some("ci".into()),
    }
}

/// Asserts `r.json` has every key in `keys`, that `status` is `status`, and returns it.
fn has(r: &Rendered, status: &str, keys: &[&str]) -> Value {
    assert_eq!(r.json["status"], status, "{:#}", r.json);
    for k in keys {
        assert!(r.json.get(*k).is_some(), "no {k} in {:#}", r.json);
    }
    r.json.clone()
}

#[test]
fn the_wait_command_carries_the_endpoint_and_profile() {
    assert_eq!(
        resume().for_task("t-1"),
        "ecs-preflight wait --region cn-hangzhou --task-id t-1 \
         --ecs-endpoint http://127.0.0.1:9 --profile ci"
    );
    let plain = WaitCommand {
        region: "cn-beijing".into(),
        ..WaitCommand::default()
    };
    assert_eq!(
        plain.for_task("t-2"),
        "ecs-preflight wait --region cn-beijing --task-id t-2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_results_render_their_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), 0.5, true).await;

    // Available, with a copy and a share: the image, and every image with its shares.
    let mut j = job(&emu, "render-01");
    j.fleet = FleetPlan {
        copy_regions: vec!["cn-beijing".into()],
        copy_names: Vec::new(),
        share_accounts: vec![FRIEND.into()],
    };
    let r = run_import(&j, |_: &Event| {}, std::future::pending())
        .await
        .unwrap();
    let shown = r.render(&resume());
    let v = has(
        &shown,
        "available",
        &[
            "region",
            "image_id",
            "task_id",
            "image_name",
            "client_token",
            "reused",
            "request_id",
            "image",
            "images",
        ],
    );
    assert_eq!(v["image_name"], "render-01");
    assert_eq!(v["images"].as_array().unwrap().len(), 2, "{v:#}");
    assert_eq!(v["images"][1]["region"], "cn-beijing");
    assert_eq!(v["images"][1]["shared_with"][0], FRIEND);
    let ImportResult::Finished { started, .. } = &r else {
        panic!("{r:?}");
    };
    assert_eq!(
        shown.lines[0],
        format!("image {} is Available in cn-hangzhou", started.image_id)
    );
    assert!(shown.lines.contains(&"  images:".to_string()), "{shown:?}");

    // Not waited for: the ids and the command that follows the task.
    let mut j = job(&emu, "render-02");
    j.wait = false;
    let r = run_import(&j, |_: &Event| {}, std::future::pending())
        .await
        .unwrap();
    let v = has(
        &r.render(&resume()),
        "importing",
        &["image_id", "task_id", "wait_command", "client_token"],
    );
    let task = v["task_id"].as_str().unwrap();
    assert_eq!(v["wait_command"], resume().for_task(task));

    // A stop before ImportImage.
    let r = run_import(&job(&emu, "render-03"), |_: &Event| {}, async {})
        .await
        .unwrap();
    let shown = r.render(&resume());
    has(&shown, "interrupted", &["region"]);
    assert_eq!(
        shown.lines,
        ["interrupted before ImportImage: nothing was imported"]
    );

    // A dry run: the request and its ClientToken.
    let mut j = job(&emu, "render-04");
    j.dry_run = true;
    let r = run_import(&j, |_: &Event| {}, std::future::pending())
        .await
        .unwrap();
    has(
        &r.render(&resume()),
        "dry_run_passed",
        &["region", "request_id", "client_token", "plan"],
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_for_a_missing_role_renders_the_findings_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), 0.5, false).await;
    let r = run_import(
        &job(&emu, "render-05"),
        |_: &Event| {},
        std::future::pending(),
    )
    .await
    .unwrap();
    assert!(matches!(r, ImportResult::Refused { .. }), "{r:?}");
    let shown = r.render(&resume());
    let v = has(&shown, "refused", &["region", "findings", "plan", "fix"]);
    for k in ["trust_policy", "attach_policy", "steps"] {
        assert!(v["fix"].get(k).is_some(), "no fix.{k} in {v:#}");
    }
    assert_eq!(shown.lines[0], "import refused before ImportImage:");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_results_render_their_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), 0.5, true).await;
    let mut j = job(&emu, "render-06");
    j.wait = false;
    let ImportResult::Started(s) = run_import(&j, |_: &Event| {}, std::future::pending())
        .await
        .unwrap()
    else {
        panic!("not started");
    };
    let wait = WaitJob {
        region: "cn-hangzhou".into(),
        task_id: s.task_id.clone(),
        endpoints: Endpoints::emulator(&emu.endpoint()),
        credentials: creds(),
        rpc_signature: preflight_pipeline::SignatureMethod::HmacSha1,
        poll_interval: Duration::from_millis(100),
        timeout: Duration::from_secs(60),
    };
    let w = wait_for_task(&wait, &|_: &Event| {}, std::future::pending())
        .await
        .unwrap();
    let v = has(
        &w.render(&s.task_id, &resume()),
        "available",
        &["region", "task_id", "image_id", "image"],
    );
    assert_eq!(v["image_id"], s.image_id.as_str());
    assert!(v.get("images").is_none(), "no copy was asked: {v:#}");

    // Stopped: the import goes on.
    let w = wait_for_task(&wait, &|_: &Event| {}, async {})
        .await
        .unwrap();
    let shown = w.render(&s.task_id, &resume());
    has(&shown, "detached", &["region", "task_id"]);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_and_import_outcome_renders_its_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), 0.5, true).await;
    let disk = dir.path().join("sys.qcow2");
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", disk.to_str().unwrap(), "5G"])
        .status()
        .expect("qemu-img (run fixtures/install-deps.sh)");
    assert!(st.success());
    let p = Pipeline::builder()
        .system_disk(&disk)
        .region("cn-hangzhou")
        .bucket("images")
        .emulator(&emu.endpoint())
        .credentials(creds())
        .params(ImportParams {
            image_name: Some("render-07".into()),
            skip_guest: true,
            ..ImportParams::default()
        })
        .upload_options(UploadOptions {
            checkpoint_dir: dir.path().join("checkpoints"),
            ..UploadOptions::default()
        })
        .poll_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let end = p
        .run_until(true, false, std::future::pending())
        .await
        .unwrap();
    let shown = end.render(&resume());
    has(
        &shown,
        "available",
        &[
            "image_id",
            "task_id",
            "region",
            "client_token",
            "reused",
            "stage_seconds",
            "objects_deleted",
            "uploads",
            "findings",
            "plan",
            "image",
        ],
    );
    assert!(shown.lines[3].starts_with("  time:   check "), "{shown:?}");

    let dry = p.dry_run().await.unwrap().render();
    has(&dry, "dry_run_passed", &["region", "plan", "uploads"]);
    emu.shutdown().await;
}

#[test]
fn run_ends_and_errors_render_their_documented_fields() {
    let ids = || ("m-1".to_string(), "t-1".to_string());
    let (image_id, task_id) = ids();
    let v = has(
        &RunEnd::Detached { image_id, task_id }.render(&resume()),
        "detached",
        &["region", "image_id", "task_id", "wait_command"],
    );
    assert_eq!(v["wait_command"], resume().for_task("t-1"));
    let (image_id, task_id) = ids();
    let shown = RunEnd::Cancelled {
        image_id,
        task_id,
        error: None,
    }
    .render(&resume());
    has(&shown, "cancelled", &["region", "image_id", "task_id"]);
    assert_eq!(
        shown.lines,
        ["cancelled import task t-1 (CancelTask sent); image m-1 will not be created"]
    );
    let (image_id, task_id) = ids();
    let copy = |region: &str, state, error: Option<&str>| StoppedCopy {
        region: region.into(),
        image_id: format!("m-{region}"),
        state,
        error: error.map(str::to_string),
    };
    let shown = RunEnd::InterruptedCopying {
        image_id,
        task_id,
        copies: vec![
            copy("cn-shanghai", CopyStopState::Cancelled, None),
            copy("cn-beijing", CopyStopState::Available, None),
            copy(
                "cn-qingdao",
                CopyStopState::CancelFailed,
                Some("Throttling"),
            ),
        ],
    }
    .render(&resume());
    let v = has(
        &shown,
        "interrupted",
        &["image_id", "task_id", "image_status", "copies"],
    );
    assert_eq!(v["copies"][0]["state"], "cancelled", "{v}");
    assert_eq!(v["copies"][1]["state"], "available", "{v}");
    assert_eq!(v["copies"][2]["state"], "cancel_failed", "{v}");
    assert_eq!(v["copies"][2]["error"], "Throttling", "{v}");
    assert!(v["copies"][0].get("error").is_none(), "{v}");
    assert_eq!(
        shown.lines,
        [
            "interrupted while copying: image m-1 is Available in cn-hangzhou",
            "  copy m-cn-shanghai in cn-shanghai: cancelled (CancelCopyImage sent; ECS deletes it)",
            "  copy m-cn-beijing in cn-beijing: Available (kept)",
            "  copy m-cn-qingdao in cn-qingdao: not cancelled, it may go on: Throttling",
            "run the same command again to copy and share",
        ]
    );
    let (image_id, task_id) = ids();
    let left = RunEnd::InterruptedCopying {
        image_id,
        task_id,
        copies: vec![copy("cn-shanghai", CopyStopState::Left, None)],
    }
    .render(&resume());
    assert_eq!(
        left.lines.last().map(String::as_str),
        Some("run the same command again to wait for the copies and share")
    );
    has(
        &RunEnd::Interrupted.render(&resume()),
        "interrupted",
        &["region"],
    );

    let (image_id, task_id) = ids();
    let failed = PipelineError::ImportFailed {
        image_id,
        task_id,
        code: "InvalidImage.Format".into(),
        message: "bad".into(),
    };
    let v = has(
        &failed.render(&resume()),
        "failed",
        &["region", "image_id", "task_id", "error"],
    );
    assert_eq!(v["error"]["code"], "InvalidImage.Format");
    let usage = PipelineError::Usage("no region".into());
    let shown = usage.render(&resume());
    let v = has(&shown, "error", &["region", "error"]);
    assert_eq!(v["error"]["code"], "PIPELINE.Usage");
    assert!(
        shown.lines.is_empty(),
        "an environment error is said on stderr"
    );
}

#[test]
fn a_batch_report_renders_one_row_per_image_and_the_continue_command() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["a.qcow2", "b.qcow2"] {
        std::fs::write(dir.path().join(f), b"x").unwrap();
    }
    let text = "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"images\"\n\n\
                [[image]]\npath = \"a.qcow2\"\n\n[[image]]\npath = \"b.qcow2\"\n";
    let manifest = Manifest::parse(text, &dir.path().join("fleet.toml")).unwrap();
    let report = BatchReport {
        results: vec![
            ImageResult::Failed(PipelineError::ImportFailed {
                image_id: "m-1".into(),
                task_id: "t-1".into(),
                code: "InvalidImage.Format".into(),
                message: "bad".into(),
            }),
            ImageResult::NotStarted,
        ],
        interrupted: true,
    };
    let v = report.to_json(&manifest.images, "ecs-preflight batch fleet.toml");
    assert_eq!(v["status"], "interrupted");
    assert_eq!(v["continue_command"], "ecs-preflight batch fleet.toml");
    let rows = v["images"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for k in ["image", "line", "path", "region", "status", "error", "why"] {
        assert!(rows[0].get(k).is_some(), "no {k} in {:#}", rows[0]);
    }
    // A failed import task is a refusal of the image (exit 1), as the CLI counts it.
    assert_eq!(rows[0]["status"], "refused");
    assert_eq!(rows[0]["image_id"], "m-1");
    assert_eq!(rows[1]["status"], "not_started");
    assert!(!report.all_available());
    let lines = report.lines(&manifest.images);
    assert!(lines[0].starts_with("IMAGE"), "{lines:?}");
    assert_eq!(lines.len(), 3, "{lines:?}");

    // --check-only: a verdict per image; an unreadable disk is an error row, not a panic.
    let row = rendering::check_row(&manifest.images[0]);
    for k in ["image", "line", "path", "verdict", "errors", "warnings"] {
        assert!(row.get(k).is_some(), "no {k} in {row:#}");
    }
    assert_ne!(row["verdict"], "pass", "{row:#}");
    let lines = rendering::check_lines(&[row]);
    assert!(lines[0].starts_with("IMAGE"), "{lines:?}");
}
