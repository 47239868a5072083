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

use preflight_pipeline::{Event, ImportParams, Pipeline, PipelineBuilder};

/// The pipeline for a command line (without the program name), its progress printed by
/// [`progress_line`] to stderr. A usage error is `Err` with the usage line.
pub fn builder_for(args: impl IntoIterator<Item = String>) -> Result<PipelineBuilder, String> {
    let mut args = args.into_iter();
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
        return Err(
            "usage: upload_and_import SYSTEM_DISK [DATA_DISK]... [--emulator URL] [--skip-guest]"
                .to_string(),
        );
    };
    let mut builder = Pipeline::builder()
        .system_disk(system)
        .region(region)
        .bucket(bucket)
        .params(params)
        .poll_interval(Duration::from_millis(500))
        .on_event(|e: &Event| {
            if let Some(line) = progress_line(e) {
                eprintln!("{line}");
            }
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
    Ok(builder)
}

/// The line this example prints for an event, if it shows that kind.
pub fn progress_line(e: &Event) -> Option<String> {
    Some(match e {
        Event::StageStarted(s) => format!("== {s}"),
        Event::StageFinished { stage, seconds } => format!("   {stage} took {seconds:.1} s"),
        Event::UploadFinished { disk, etag, .. } => format!("   disk {disk} uploaded, ETag {etag}"),
        Event::ImportStarted {
            image_id, task_id, ..
        } => format!("   image {image_id}, task {task_id}"),
        Event::TaskProgress(p) => format!("   task {} {}", p.task_status, p.task_process),
        Event::Finding { finding, .. } => {
            format!("   {}: {}", finding.finding.code, finding.finding.message)
        }
        _ => return None,
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let builder = match builder_for(std::env::args().skip(1)) {
        Ok(b) => b,
        Err(usage) => {
            eprintln!("{usage}");
            return std::process::ExitCode::from(2);
        }
    };
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
