//! `ecs-preflight upload-and-import`: the whole flow in one command, via `preflight-pipeline`:
//! check (local and cloud rules) → upload every disk (resumable) → ImportImage → wait.
//!
//! Exit codes: 0 image available; 1 refused by a rule (nothing uploaded), ImportImage refused,
//! the import failed or timed out, or an upload failed verification; 2 usage or environment
//! error; 130 interrupted by Ctrl-C (a rerun resumes: upload checkpoint, same ClientToken),
//! except that with `--detach` a Ctrl-C while waiting leaves the import running and exits 0.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::progress::{Layout, UploadProgress};
use anyhow::{Context, Result};
use preflight_oss::upload;
use preflight_pipeline::{ConvertMode, Event, Pipeline, PipelineError, RunEnd, WaitCommand};

use crate::render::print_result;

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

    #[command(flatten, next_help_heading = "Pipeline options")]
    pub signature: crate::shared_flags::RpcSignatureFlag,

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

    #[command(flatten, next_help_heading = "Pipeline options")]
    pub quiet: crate::shared_flags::QuietFlag,
}

/// Runs the command; returns the exit code.
pub fn run(args: OneShotArgs) -> Result<u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run_async(args))
}

/// The upload's lines, indented under the stage headers and short.
const LAYOUT: Layout = Layout {
    indent: "   ",
    detailed: false,
};

/// The progress bars the event handler draws, ended when the run ends.
#[derive(Default)]
struct Seen {
    upload: Option<UploadProgress>,
    task_bar: Option<crate::task_bar::TaskBar>,
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
            Event::StageStarted(s) => say(format!("== {s}")),
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
                crate::progress::conversion_line(conversion)
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
                let mut upload = UploadProgress::new(LAYOUT, talk, bars);
                upload.started(*size);
                lock(&seen).upload = Some(upload);
            }
            Event::Upload { event, .. } => {
                if let Some(upload) = &lock(&seen).upload {
                    upload.upload(event);
                }
            }
            Event::UploadFinished {
                disk,
                etag,
                parts_reused,
            } => {
                if let Some(mut upload) = lock(&seen).upload.take() {
                    upload.finish();
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
                let again = if *reused {
                    " (already imported by an earlier run: same ClientToken)"
                } else {
                    ""
                };
                say(format!("   image {image_id}, task {task_id}{again}"));
            }
            Event::WaitStarted { .. } => {}
            Event::TaskProgress(p) => lock(&seen)
                .task_bar
                .get_or_insert_with(|| crate::task_bar::TaskBar::new(!talk))
                .update(p),
            Event::ObjectDeleted { bucket, key } => say(format!("   deleted oss://{bucket}/{key}")),
            Event::Note(m) => say(format!("   note: {m}")),
            Event::Fleet(f) => fleet.event(f),
            // `upload`'s own events: the pipeline does not send them.
            Event::DestinationChecked { .. } | Event::PartBuffers { .. } => {}
        }
    }
}

fn build(args: &OneShotArgs, seen: Arc<Mutex<Seen>>) -> Result<Pipeline> {
    let mut params = args.import.to_params()?;
    // The pipeline takes the data disks as paths; the params keep one entry per disk.
    params.disks.truncate(1);
    let endpoints = args.endpoints.endpoints();
    let creds = args.profile.credentials(endpoints.sts.clone());
    let talk = !args.quiet.on;
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
    let resume = WaitCommand {
        region: pipeline.region().to_string(),
        ecs_endpoint: args.endpoints.ecs_for_wait(),
        profile: args.profile.profile.clone(),
    };
    let output = args.output.format;
    if args.dry_run {
        return match pipeline.dry_run().await {
            Ok(d) => {
                print_result(&d.render(), output)?;
                Ok(crate::EXIT_OK)
            }
            Err(e) => failure(output, &resume, &e),
        };
    }
    let result = pipeline
        .run_until(!args.no_wait, args.detach, async {
            // Without a signal handler there is no Ctrl-C to honour: never stop.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await;
    if let Some(mut upload) = lock(&seen).upload.take() {
        upload.abandon();
    }
    if let Some(b) = lock(&seen).task_bar.take() {
        b.finish();
    }
    let end = match result {
        Ok(end) => end,
        Err(e) => return failure(output, &resume, &e),
    };
    let shown = end.render(&resume);
    match end {
        RunEnd::Available(_) | RunEnd::Importing { .. } => {
            print_result(&shown, output)?;
            Ok(crate::EXIT_OK)
        }
        // Detaching is what --detach asked for, as in `import --detach`: the import goes on.
        RunEnd::Detached { .. } => {
            print_result(&shown, output)?;
            Ok(crate::EXIT_OK)
        }
        // An interruption is said on stderr in human mode: stdout holds results only.
        _ => {
            if output == OutputFormat::Json {
                print_result(&shown, output)?;
            } else {
                for line in &shown.lines {
                    eprintln!("{line}");
                }
            }
            Ok(crate::EXIT_INTERRUPTED)
        }
    }
}

/// The run ended in an error: print its result; exit 1 for a refusal, else 2 (and say
/// the error and whether a rerun resumes on stderr).
fn failure(output: OutputFormat, resume: &WaitCommand, e: &PipelineError) -> Result<u8> {
    print_result(&e.render(resume), output)?;
    if e.is_refusal() {
        return Ok(crate::EXIT_FINDINGS);
    }
    eprintln!("ecs-preflight: error: {}", e.full_message());
    if e.is_retryable() {
        eprintln!("run the same command again to resume");
    }
    Ok(crate::EXIT_ENV)
}
