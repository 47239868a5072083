//! `ecs-preflight upload-and-import`: the whole flow in one command, via `preflight-pipeline`:
//! check (local and cloud rules) → upload every disk (resumable) → ImportImage → wait.
//!
//! Exit codes: 0 image available; 1 refused by a rule (nothing uploaded), ImportImage refused,
//! the import failed or timed out, or an upload failed verification; 2 usage or environment
//! error; 130 interrupted by Ctrl-C (a rerun resumes: upload checkpoint, same ClientToken),
//! except that with `--detach` a Ctrl-C while waiting leaves the import running and exits 0.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use preflight_oss::upload;
use preflight_oss::UploadEvent;
use preflight_pipeline::{ConvertMode, Event, Pipeline, PipelineError};
use serde_json::{json, Value};

use crate::upload_cmd::parse_parallel;
use crate::OutputFormat;

/// Flags of `ecs-preflight upload-and-import`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    ecs-preflight upload-and-import web.qcow2 --region cn-hangzhou --bucket images --image-name web-01\n  \
    ecs-preflight upload-and-import sys.qcow2 --data-disk data.qcow2 --region cn-hangzhou --bucket images --part-size 64MiB --output json\n  \
    ecs-preflight upload-and-import blank.qcow2 --region cn-hangzhou --bucket images --allow GUEST.NoOperatingSystem --delete-object-after\n  \
    ecs-preflight upload-and-import web.qcow2 --region cn-hangzhou --bucket ecs-preflight --emulator http://127.0.0.1:9090 --skip-guest\n  \
    ecs-preflight upload-and-import web.qcow2 --region cn-hangzhou --bucket images --oss-internal   # on ECS in cn-hangzhou\n  \
    ecs-preflight upload-and-import web.raw --region cn-hangzhou --bucket images --no-wait   # sends web.qcow2 (only the data)\n  \
    ecs-preflight upload-and-import web.qcow2 --region cn-hangzhou --bucket images --image-name web-01 --dry-run\n\n\
    Stages: check (the image and every rule; an error finding stops it before any byte is sent, \
    unless --allow CODE accepts it), upload every disk (resumable, CRC-64-verified), ImportImage \
    with every disk in DiskDeviceMapping, wait until the image is Available.\n\
    A rerun after an interruption resumes where it stopped (upload checkpoint, same ClientToken: \
    no duplicate image).\n\
    Ctrl-C while waiting cancels the import (CancelTask), unless --detach: then it exits 0 and \
    prints the `ecs-preflight wait` command that follows the import.\n\n\
    Exit codes: 0 image available (or import started with --no-wait / --detach, or --dry-run \
    passed), 1 refused or failed, 2 usage or environment error, 130 interrupted.")]
pub struct OneShotArgs {
    /// The system disk image.
    pub image: PathBuf,

    #[command(flatten)]
    pub import: crate::request_args::RequestArgs,

    /// Accept error findings with this code (e.g. GUEST.NoOperatingSystem). Repeatable.
    #[arg(help_heading = "Pipeline options", long, value_name = "CODE")]
    pub allow: Vec<String>,

    /// Delete the uploaded objects once the image is Available (never before).
    #[arg(help_heading = "Pipeline options", long)]
    pub delete_object_after: bool,

    #[command(flatten, next_help_heading = "Endpoints")]
    pub endpoints: crate::endpoint_args::EndpointArgs,

    #[command(flatten, next_help_heading = "Pipeline options")]
    pub upload: crate::shared_flags::UploadFlags,

    #[command(flatten, next_help_heading = "Pipeline options")]
    pub timing: crate::shared_flags::WaitFlags,

    /// Parts uploaded in parallel.
    #[arg(help_heading = "Pipeline options", long, value_name = "N", default_value_t = upload::DEFAULT_PARALLEL,
          value_parser = parse_parallel)]
    pub parallel: usize,

    /// Send a qcow2 of only each disk's non-zero clusters instead of the file: auto (RAW or
    /// fixed VHD, when at least 20 % smaller), qcow2 (always), none.
    #[arg(help_heading = "Pipeline options", long, value_name = "MODE", default_value = "auto",
          value_parser = crate::upload_cmd::parse_convert)]
    pub convert: ConvertMode,

    /// On Ctrl-C while waiting, leave the import running instead of cancelling it.
    #[arg(help_heading = "Pipeline options", long)]
    pub detach: bool,

    /// Wait until the image is Available or the import failed [default].
    #[arg(help_heading = "Pipeline options", long, overrides_with = "no_wait")]
    pub wait: bool,

    /// Run every check, local and cloud-side (bucket region and encryption, the role, the
    /// image name), and print what would be sent; upload nothing and send no ImportImage.
    #[arg(
        help_heading = "Pipeline options",
        long,
        conflicts_with_all = ["no_wait", "detach", "delete_object_after"]
    )]
    pub dry_run: bool,

    /// ECS and RAM RPC signature.
    #[arg(help_heading = "Pipeline options", long, value_enum,
          default_value_t = crate::import_cmd::RpcSignature::HmacSha1)]
    pub signature: crate::import_cmd::RpcSignature,

    /// Return once ImportImage has answered: print the image and task ids and the
    /// `ecs-preflight wait` command that follows the import.
    #[arg(
        help_heading = "Pipeline options",
        long,
        overrides_with = "wait",
        conflicts_with = "delete_object_after"
    )]
    pub no_wait: bool,

    #[command(flatten, next_help_heading = "Pipeline options")]
    pub profile: crate::shared_flags::ProfileFlag,

    #[command(flatten, next_help_heading = "Pipeline options")]
    pub output: crate::shared_flags::OutputFlag,

    /// No progress; only the result.
    #[command(flatten)]
    pub fleet: crate::fleet_args::FleetArgs,

    #[arg(help_heading = "Pipeline options", long, short = 'q')]
    pub quiet: bool,
}

/// Runs the command; returns the exit code.
pub fn run(args: OneShotArgs) -> Result<u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run_async(args))
}

/// What the event handler remembers for the Ctrl-C handling.
#[derive(Default)]
struct Seen {
    import: Option<(String, String)>,
    /// Signalled when ImportImage has answered (for --no-wait).
    import_started: Arc<tokio::sync::Notify>,
    bar: Option<ProgressBar>,
    task_bar: Option<crate::task_bar::TaskBar>,
    /// The image is available and the copy and share step has begun.
    copying: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn on_event(
    seen: Arc<Mutex<Seen>>,
    talk: bool,
    bars: bool,
) -> impl Fn(&Event) + Send + Sync + 'static {
    let fleet = crate::fleet_args::FleetProgress::new(talk, bars);
    move |e: &Event| {
        let say = |m: String| {
            if talk {
                eprintln!("{m}");
            }
        };
        match e {
            Event::StageStarted(s) => {
                if *s == preflight_pipeline::Stage::Copy {
                    lock(&seen).copying = true;
                }
                say(format!("== {s}"));
            }
            Event::StageFinished { stage, seconds } => {
                if let Some(bar) = lock(&seen).task_bar.take() {
                    bar.finish();
                }
                say(format!("   {stage}: {seconds:.1} s"));
            }
            Event::Credentials(source) => say(format!("   credentials: {source}")),
            Event::Finding { finding, allowed } => {
                let f = &finding.finding;
                let tag = if *allowed { " (allowed)" } else { "" };
                say(format!("   {} {}{tag}: {}", f.severity, f.code, f.message));
            }
            Event::Mapping { .. } => {}
            Event::Conversion { disk, conversion } => say(format!(
                "   disk {disk}: {}",
                crate::upload_cmd::conversion_line(conversion)
            )),
            Event::UploadStarted {
                disk,
                path,
                key,
                size,
            } => {
                say(format!(
                    "   disk {disk}: {} → {key} ({size} bytes)",
                    path.display()
                ));
                let bar = ProgressBar::with_draw_target(
                    Some(*size),
                    if bars {
                        ProgressDrawTarget::stderr()
                    } else {
                        ProgressDrawTarget::hidden()
                    },
                );
                bar.set_style(
                    ProgressStyle::with_template(
                        "   {bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                lock(&seen).bar = Some(bar);
            }
            Event::Upload { event, .. } => {
                let bar = lock(&seen).bar.clone();
                match event {
                    UploadEvent::PartDone { bytes, .. } => {
                        if let Some(b) = bar {
                            b.inc(*bytes);
                        }
                    }
                    UploadEvent::Resuming {
                        upload_id,
                        parts_on_server,
                    } => say(format!(
                        "   resuming upload {upload_id}: OSS has {parts_on_server} parts"
                    )),
                    UploadEvent::StaleUploadAborted { upload_id } => say(format!(
                        "   the file changed since upload {upload_id} began: starting afresh"
                    )),
                    UploadEvent::Completing => {
                        if let Some(b) = bar {
                            b.set_message("verifying");
                        }
                    }
                    UploadEvent::NotVerified { what } => say(format!("   warning: {what}")),
                    UploadEvent::AlreadyThere { .. } => say(
                        "   OSS already has this exact object (same size and CRC-64): nothing to send"
                            .to_string(),
                    ),
                    _ => {}
                }
            }
            Event::UploadFinished {
                disk,
                etag,
                parts_reused,
            } => {
                if let Some(b) = lock(&seen).bar.take() {
                    b.finish_and_clear();
                }
                say(format!(
                    "   disk {disk} uploaded and verified (ETag {etag}, {parts_reused} parts kept from an earlier run)"
                ));
            }
            Event::ImportStarted {
                image_id,
                task_id,
                reused,
            } => {
                {
                    let mut seen = lock(&seen);
                    seen.import = Some((image_id.clone(), task_id.clone()));
                    seen.import_started.notify_one();
                }
                let again = if *reused {
                    " (already imported by an earlier run: same ClientToken)"
                } else {
                    ""
                };
                say(format!("   image {image_id}, task {task_id}{again}"));
            }
            Event::TaskProgress(p) => lock(&seen)
                .task_bar
                .get_or_insert_with(|| crate::task_bar::TaskBar::new(!talk))
                .update(p),
            Event::ObjectDeleted { bucket, key } => say(format!("   deleted oss://{bucket}/{key}")),
            Event::Note(m) => say(format!("   note: {m}")),
            Event::Fleet(f) => fleet.event(f),
        }
    }
}

fn build(args: &OneShotArgs, seen: Arc<Mutex<Seen>>) -> Result<Pipeline> {
    let mut params = args.import.to_params()?;
    // The pipeline takes the data disks as paths; the params keep one entry per disk.
    params.disks.truncate(1);
    let endpoints = args.endpoints.endpoints();
    let creds = args.profile.credentials(endpoints.sts.clone());
    let talk = !args.quiet;
    let bars = talk && args.output.format == OutputFormat::Human;
    let mut b = Pipeline::builder()
        .system_disk(&args.image)
        .params(params)
        .credentials(creds)
        .endpoints(endpoints)
        .delete_objects_after(args.delete_object_after)
        .poll_interval(args.timing.poll_interval)
        .timeout(args.timing.timeout)
        .upload_options(args.upload.options(args.parallel))
        .convert(args.convert)
        .oss_signature(args.upload.signature_version.version())
        .rpc_signature(args.signature.method())
        .fleet(args.fleet.plan())
        .on_event(on_event(seen, talk, bars));
    for d in &args.import.data_disk {
        b = b.data_disk(d);
    }
    if let Some(r) = &args.import.region {
        b = b.region(r);
    }
    if let Some(r) = &args.import.bucket {
        b = b.bucket(r);
    }
    for code in &args.allow {
        b = b.allow(code);
    }
    Ok(b.build()?)
}

async fn run_async(args: OneShotArgs) -> Result<u8> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let pipeline = match build(&args, seen.clone()) {
        Ok(p) => p,
        Err(e) => {
            return match e.downcast_ref::<PipelineError>() {
                Some(PipelineError::Usage(m)) => {
                    anyhow::bail!("{m}: pass --region and --bucket")
                }
                Some(PipelineError::Fleet(f)) => anyhow::bail!("{}: {f}", f.code()),
                _ => Err(e),
            }
        }
    };
    let region = pipeline.region().to_string();
    if args.dry_run {
        return match pipeline.dry_run().await {
            Ok(d) => dry_run_passed(&args, &d),
            Err(e) => failure(&args, &region, e),
        };
    }
    let import_started = lock(&seen).import_started.clone();
    let result = tokio::select! {
        r = pipeline.run() => Some(r),
        () = import_started.notified(), if args.no_wait => {
            return not_waiting(&args, &region, &seen);
        }
        _ = tokio::signal::ctrl_c() => None,
    };
    if let Some(b) = lock(&seen).bar.take() {
        b.abandon();
    }
    let Some(result) = result else {
        return interrupted(&args, &pipeline, &region, &seen).await;
    };
    match result {
        Ok(o) => {
            let v = json!({
                "status": "available",
                "image_id": o.image_id,
                "task_id": o.task_id,
                "region": o.region,
                "client_token": o.client_token,
                "reused": o.reused,
                "stage_seconds": o.stage_seconds,
                "objects_deleted": o.objects_deleted,
                "uploads": o.uploads,
                "findings": o.findings,
                "plan": o.plan,
                "image": o.image,
            });
            let (images, fleet_lines) = crate::fleet_args::render(&o.fleet);
            let mut v = v;
            if !o.fleet.images.is_empty() {
                v["images"] = images;
            }
            let s = o.stage_seconds;
            let mut human = vec![
                format!("image {} is Available in {}", o.image_id, o.region),
                format!("  task:   {}", o.task_id),
                format!("  region: {}", o.region),
                format!(
                    "  time:   check {:.2} s, upload {:.2} s, import {:.2} s, wait {:.2} s",
                    s.check, s.upload, s.import, s.wait
                ),
            ];
            if !o.fleet.images.is_empty() {
                human.push(format!("  copy:   {:.2} s", s.copy));
            }
            human.extend(fleet_lines);
            print(&args, &v, &human)?;
            Ok(crate::EXIT_OK)
        }
        Err(e) => failure(&args, &region, e),
    }
}

/// `--dry-run`: every check passed; say what a run would send.
fn dry_run_passed(args: &OneShotArgs, d: &preflight_pipeline::DryRun) -> Result<u8> {
    let mut v = serde_json::to_value(d)?;
    v["status"] = json!("dry_run_passed");
    let mut human = vec![format!(
        "dry run passed: every check holds in {}; nothing was uploaded or imported",
        d.region
    )];
    for (disk, u) in d.uploads.iter().enumerate() {
        human.push(format!(
            "  disk {disk}: {} → oss://{}/{} ({} bytes, {})",
            u.path.display(),
            u.bucket,
            u.key,
            u.size,
            u.format
        ));
    }
    if let Some(id) = &d.earlier_image {
        human.push(format!(
            "  an earlier run already imported image {id} from these objects: a run reports it"
        ));
    }
    print(args, &v, &human)?;
    Ok(crate::EXIT_OK)
}

/// `--no-wait`: ImportImage answered; the import goes on in the cloud.
fn not_waiting(args: &OneShotArgs, region: &str, seen: &Mutex<Seen>) -> Result<u8> {
    if let Some(b) = lock(seen).task_bar.take() {
        b.finish();
    }
    let Some((image_id, task_id)) = lock(seen).import.clone() else {
        anyhow::bail!("ImportImage answered without an image and task id");
    };
    let resume = crate::import_cmd::wait_command(
        region,
        &task_id,
        args.endpoints.ecs_for_wait().as_deref(),
        args.profile.profile.as_deref(),
    );
    let v = json!({"status": "importing", "region": region, "image_id": image_id,
                   "task_id": task_id, "wait_command": resume});
    print(
        args,
        &v,
        &[
            format!("import started: image {image_id} task {task_id} in {region}"),
            format!("follow it with: {resume}"),
        ],
    )?;
    Ok(crate::EXIT_OK)
}

fn print(args: &OneShotArgs, v: &Value, human: &[String]) -> Result<()> {
    match args.output.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(v)?),
        OutputFormat::Human => {
            for l in human {
                println!("{l}");
            }
        }
    }
    Ok(())
}

fn failure(args: &OneShotArgs, region: &str, e: PipelineError) -> Result<u8> {
    let code = if e.is_refusal() {
        crate::EXIT_FINDINGS
    } else {
        crate::EXIT_ENV
    };
    let (v, human) = match &e {
        PipelineError::Refused {
            findings,
            fix,
            plan,
        } => {
            let mut v = json!({"status": "refused", "region": region, "error_code": e.code(),
                               "findings": findings, "plan": plan});
            let mut human = vec!["refused before any upload or ImportImage:".to_string()];
            for f in findings {
                human.push(format!(
                    "  {} {}: {}",
                    f.finding.severity, f.finding.code, f.finding.message
                ));
                if !f.finding.hint.is_empty() {
                    human.push(format!("    fix: {}", f.finding.hint));
                }
            }
            if !fix.is_empty() {
                v["fix"] = json!({
                    "trust_policy": serde_json::from_str::<Value>(preflight_pipeline::TRUST_POLICY).unwrap_or(Value::Null),
                    "attach_policy": preflight_rules::import_role(plan).1,
                    "steps": fix,
                });
                human.extend(fix.iter().cloned());
            }
            if findings
                .iter()
                .any(|f| f.finding.code.starts_with("GUEST.") || f.disk.is_some())
            {
                human.push("  (accept a finding on purpose with --allow CODE)".to_string());
            }
            (v, human)
        }
        PipelineError::ImportFailed {
            image_id,
            task_id,
            code: c,
            message,
        } => (
            json!({"status": "failed", "region": region, "image_id": image_id, "task_id": task_id,
                   "error": {"code": c, "message": message}}),
            vec![format!(
                "import failed: {c}: {message} (image {image_id}, task {task_id})"
            )],
        ),
        PipelineError::TimedOut {
            image_id, task_id, ..
        } => (
            json!({"status": "timed_out", "region": region, "image_id": image_id, "task_id": task_id}),
            vec![
                e.to_string(),
                crate::import_cmd::wait_command(
                    region,
                    task_id,
                    args.endpoints.ecs_for_wait().as_deref(),
                    args.profile.profile.as_deref(),
                ),
            ],
        ),
        PipelineError::WaitFailed {
            image_id, task_id, ..
        } => {
            let resume = crate::import_cmd::wait_command(
                region,
                task_id,
                args.endpoints.ecs_for_wait().as_deref(),
                args.profile.profile.as_deref(),
            );
            (
                json!({"status": "error", "region": region, "image_id": image_id, "task_id": task_id,
                       "error": {"code": e.code(), "message": e.full_message()}, "wait_command": resume}),
                vec![e.full_message(), format!("pick it up again with: {resume}")],
            )
        }
        PipelineError::ImportRefused { code: c, message } => {
            let mut v = json!({"status": "refused", "region": region,
                               "error": {"code": c, "message": message}});
            let mut human = vec![e.to_string()];
            if let Some(fix) = preflight_pipeline::catalogue::fix_for_api_code(c) {
                v["error"]["fix"] = json!(fix);
                human.push(format!("  fix: {fix}"));
            }
            (v, human)
        }
        _ => {
            let mut v = json!({"status": "error", "region": region,
                               "error": {"code": e.code(), "message": e.full_message()}});
            if e.is_retryable() {
                v["resumable"] = json!(true);
            }
            (v, Vec::new())
        }
    };
    if args.output.format == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if !human.is_empty() {
        for l in &human {
            println!("{l}");
        }
    }
    if code == crate::EXIT_ENV {
        eprintln!("ecs-preflight: error: {}", e.full_message());
        if e.is_retryable() {
            eprintln!("run the same command again to resume");
        }
    }
    Ok(code)
}

async fn interrupted(
    args: &OneShotArgs,
    pipeline: &Pipeline,
    region: &str,
    seen: &Mutex<Seen>,
) -> Result<u8> {
    let started = lock(seen).import.clone();
    let copying = lock(seen).copying;
    let (v, line) = match started {
        // The image is there: nothing to cancel; the copies go on in the cloud.
        Some((image_id, task_id)) if copying => (
            json!({"status": "interrupted", "region": region, "image_id": image_id,
                   "task_id": task_id, "image_status": "Available"}),
            format!("interrupted while copying: image {image_id} is Available in {region}; the copies go on in the cloud; run the same command again to wait for them and share"),
        ),
        None => (
            json!({"status": "interrupted", "region": region}),
            "interrupted: run the same command again to resume (the upload continues from its checkpoint)".to_string(),
        ),
        Some((image_id, task_id)) if args.detach => {
            let resume = crate::import_cmd::wait_command(
                region,
                &task_id,
                args.endpoints.ecs_for_wait().as_deref(),
                args.profile.profile.as_deref(),
            );
            (
                json!({"status": "detached", "region": region, "image_id": image_id,
                       "task_id": task_id, "wait_command": resume}),
                format!("detached: import task {task_id} (image {image_id}) goes on; {resume}"),
            )
        }
        Some((image_id, task_id)) => match pipeline.cancel_import(&task_id).await {
            Ok(()) => (
                json!({"status": "cancelled", "region": region, "image_id": image_id, "task_id": task_id}),
                format!("cancelled import task {task_id} (CancelTask sent); image {image_id} will not be created"),
            ),
            Err(e) => (
                json!({"status": "interrupted", "region": region, "image_id": image_id, "task_id": task_id,
                       "error": {"code": e.code(), "message": e.full_message()}}),
                format!("CancelTask for {task_id} failed: {}", e.full_message()),
            ),
        },
    };
    let detached = v["status"] == "detached";
    if args.output.format == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if detached {
        println!("{line}");
    } else {
        eprintln!("{line}");
    }
    // Detaching is what --detach asked for, as in `import --detach`: the import goes on.
    Ok(if detached {
        crate::EXIT_OK
    } else {
        crate::EXIT_INTERRUPTED
    })
}
