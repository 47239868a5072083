//! Uploads a disk image (and data disks) to OSS and imports it into ECS, printing events.
//!
//! Against the local emulator (nothing leaves the machine):
//!
//! ```text
//! ecs-preflight emulator --listen 127.0.0.1:9090      # terminal 1: prints the access keys
//! qemu-img create -f qcow2 /tmp/sys.qcow2 5G            # terminal 2
//! export ALIBABA_CLOUD_ACCESS_KEY_ID=... ALIBABA_CLOUD_ACCESS_KEY_SECRET=...
//! export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true
//! cargo run -p preflight-pipeline --example upload_and_import -- \
//!     /tmp/sys.qcow2 --emulator http://127.0.0.1:9090 --skip-guest
//! ```
//!
//! Arguments: `SYSTEM_DISK [DATA_DISK]... [--emulator URL] [--region R] [--bucket B]
//! [--image-name NAME] [--skip-guest] [--allow CODE]...`. The endpoint may also come from
//! `ECS_PREFLIGHT_EMULATOR`; region and bucket default to the emulator's `cn-hangzhou` and
//! `ecs-preflight`. Without an endpoint, the real Alibaba Cloud endpoints are used.

use std::time::Duration;

use preflight_pipeline::{Event, ImportParams, Pipeline};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut disks = Vec::new();
    let mut endpoint = std::env::var("ECS_PREFLIGHT_EMULATOR").ok();
    let mut region = "cn-hangzhou".to_string();
    let mut bucket = "ecs-preflight".to_string();
    let mut params = ImportParams::default();
    let mut allow = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--emulator" => endpoint = args.next(),
            "--region" => region = args.next().unwrap_or_default(),
            "--bucket" => bucket = args.next().unwrap_or_default(),
            "--image-name" => params.image_name = args.next(),
            "--skip-guest" => params.skip_guest = true,
            "--allow" => allow.extend(args.next()),
            _ => disks.push(a),
        }
    }
    let Some((system, data)) = disks.split_first() else {
        eprintln!(
            "usage: upload_and_import SYSTEM_DISK [DATA_DISK]... [--emulator URL] [--skip-guest]"
        );
        return std::process::ExitCode::from(2);
    };
    let mut builder = Pipeline::builder()
        .system_disk(system)
        .region(region)
        .bucket(bucket)
        .params(params)
        .poll_interval(Duration::from_millis(500))
        .on_event(|e: &Event| match e {
            Event::StageStarted(s) => eprintln!("== {s}"),
            Event::StageFinished { stage, seconds } => eprintln!("   {stage} took {seconds:.1} s"),
            Event::UploadFinished { disk, etag, .. } => {
                eprintln!("   disk {disk} uploaded, ETag {etag}")
            }
            Event::ImportStarted {
                image_id, task_id, ..
            } => eprintln!("   image {image_id}, task {task_id}"),
            Event::TaskProgress(p) => eprintln!("   task {} {}", p.task_status, p.task_process),
            Event::Finding { finding, .. } => {
                eprintln!("   {}: {}", finding.finding.code, finding.finding.message)
            }
            _ => {}
        });
    for d in data {
        builder = builder.data_disk(d);
    }
    for code in allow {
        builder = builder.allow(code);
    }
    if let Some(e) = endpoint {
        builder = builder.emulator(&e);
    }
    let result = match builder.build() {
        Ok(p) => p.run().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(o) => {
            println!(
                "{}",
                serde_json::json!({"image_id": o.image_id, "task_id": o.task_id, "region": o.region,
                                   "stage_seconds": o.stage_seconds})
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            std::process::ExitCode::from(if e.is_refusal() { 1 } else { 2 })
        }
    }
}
