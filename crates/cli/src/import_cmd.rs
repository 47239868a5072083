//! `ecs-preflight import` and `ecs-preflight wait`: import an image that is already in OSS.
//!
//! Local rules, then the cloud rules (object, bucket, RAM role, image name), then ImportImage
//! with a ClientToken derived from the objects' ETags and the parameters (a rerun returns the
//! same image), then a watch of the task until the image is Available or has failed. Ctrl-C
//! cancels the import (CancelTask) unless `--detach`, which leaves it running and prints the
//! `wait` command that picks it up again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use preflight_ecs::WaitOutcome;
use preflight_pipeline::import::{ImportJob, ImportResult};
use preflight_pipeline::wait::{Followed, WaitJob};
use preflight_pipeline::{Event, PipelineError, Rendered, Stage, WaitCommand};

use crate::task_bar::TaskBar;
use crate::OutputFormat;

/// Exit codes (same meaning as the rest of the CLI).
const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;

/// `ecs-preflight import`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    ecs-preflight import --region cn-hangzhou --bucket images --object web.qcow2 --format QCOW2 --image-name web-01\n  \
    ecs-preflight import --region cn-hangzhou --bucket images --object web.qcow2 --image-name web-01 --dry-run\n  \
    ecs-preflight import --region cn-hangzhou --bucket images --object web.qcow2 --image-name web-01 --detach --output json\n\n\
    Ctrl-C while waiting cancels the import (CancelTask), unless --detach: then the import goes on and\n\
    `ecs-preflight wait --region R --task-id T` picks it up.\n\n\
    Exit codes: 0 image available (or started with --no-wait, or detached), 1 refused or failed, \
    2 usage or environment error, 130 interrupted (the import was cancelled).")]
pub struct ImportCmdArgs {
    #[command(flatten)]
    pub import: crate::request_args::RequestArgs,

    #[command(flatten, next_help_heading = "Endpoints")]
    pub endpoints: crate::endpoint_args::EndpointArgs,

    /// OSS signature version of the bucket and object probes (V1 only for old endpoints).
    #[arg(help_heading = "Import options", long, value_enum,
          default_value_t = crate::upload_cmd::SignatureFlag::V4)]
    pub signature_version: crate::upload_cmd::SignatureFlag,

    /// Wait until the image is Available or the import failed [default].
    #[arg(help_heading = "Import options", long, overrides_with = "no_wait")]
    pub wait: bool,

    /// Start the import and return at once with the task id.
    #[arg(help_heading = "Import options", long, overrides_with = "wait")]
    pub no_wait: bool,

    /// On Ctrl-C, leave the import running (print the task id and the `wait` command)
    /// instead of cancelling it.
    #[arg(help_heading = "Import options", long)]
    pub detach: bool,

    #[command(flatten, next_help_heading = "Import options")]
    pub timing: crate::shared_flags::WaitFlags,

    /// Send DryRun=true: the API validates the request and imports nothing.
    #[arg(help_heading = "Import options", long)]
    pub dry_run: bool,

    #[command(flatten, next_help_heading = "Import options")]
    pub profile: crate::shared_flags::ProfileFlag,

    #[command(flatten, next_help_heading = "Import options")]
    pub signature: crate::shared_flags::RpcSignatureFlag,

    #[command(flatten, next_help_heading = "Import options")]
    pub output: crate::shared_flags::OutputFlag,

    #[command(flatten, next_help_heading = "Import options")]
    pub quiet: crate::shared_flags::QuietFlag,

    #[command(flatten)]
    pub fleet: crate::fleet_args::FleetArgs,
}

/// `ecs-preflight wait`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    ecs-preflight wait --region cn-hangzhou --task-id t-bp67acfmxazb4p1234\n\n\
    Ctrl-C stops waiting; the import goes on.\n\
    Exit codes: 0 image available, 1 import failed or timed out, 2 usage or environment error.")]
pub struct WaitArgs {
    /// RegionId of the import.
    #[arg(long, value_name = "REGION_ID")]
    pub region: String,

    /// The import task (t-…), as printed by `import`.
    #[arg(long, value_name = "TASK_ID")]
    pub task_id: String,

    /// ECS endpoint URL [default: https://ecs.REGION.aliyuncs.com, or the official map's].
    #[arg(long, value_name = "URL")]
    pub ecs_endpoint: Option<String>,

    /// Ask a local emulator at URL (`ecs-preflight emulator`); --ecs-endpoint wins.
    #[arg(long, value_name = "URL")]
    pub emulator: Option<String>,

    #[command(flatten)]
    pub timing: crate::shared_flags::WaitFlags,

    #[command(flatten)]
    pub profile: crate::shared_flags::ProfileFlag,

    #[command(flatten)]
    pub output: crate::shared_flags::OutputFlag,

    #[command(flatten)]
    pub quiet: crate::shared_flags::QuietFlag,
}

/// Parses `90s`, `30m`, `6h`, `1d`, `500ms` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 90s, 30m or 6h"))?;
    let secs = |mul: u64| {
        n.checked_mul(mul)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{s:?} is too long"))
    };
    match unit.trim() {
        "" | "s" => secs(1),
        "ms" => Ok(Duration::from_millis(n)),
        "m" | "min" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        other => Err(format!(
            "unknown unit {other:?} in {s:?} (use ms, s, m, h or d)"
        )),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs `import`.
pub fn run(args: ImportCmdArgs) -> Result<u8> {
    runtime()?.block_on(run_import(args))
}

/// Runs `wait`.
pub fn run_wait(args: WaitArgs) -> Result<u8> {
    runtime()?.block_on(run_wait_async(args))
}

/// Ctrl-C, registered when created (so a signal that comes right after is not lost).
struct Interrupt {
    #[cfg(unix)]
    sig: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn new() -> Result<Self> {
        Ok(Interrupt {
            #[cfg(unix)]
            sig: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("cannot catch Ctrl-C")?,
        })
    }

    async fn recv(mut self) {
        #[cfg(unix)]
        {
            self.sig.recv().await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Prints a result: JSON on stdout, or the human lines.
#[derive(Clone, Copy)]
struct Printer {
    output: OutputFormat,
    quiet: bool,
}

impl Printer {
    fn progress(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    fn result(&self, r: &Rendered) -> Result<()> {
        crate::render::print_result(r, self.output)
    }
}

fn required(v: &Option<String>, flag: &str) -> Result<()> {
    match v.as_deref() {
        Some(s) if !s.is_empty() => Ok(()),
        _ => anyhow::bail!("{flag} is required for import"),
    }
}

/// The task bar, shared by the event handler (which draws it) and the result (which ends it).
type SharedBar = Arc<Mutex<Option<TaskBar>>>;

fn end_bar(bar: &SharedBar) {
    if let Some(b) = bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
        b.finish();
    }
}

/// Renders `import`'s and `wait`'s events on stderr. `on_ctrl_c` ends the "waiting" line.
fn progress(
    pr: Printer,
    region: String,
    on_ctrl_c: &'static str,
    bar: SharedBar,
) -> impl Fn(&Event) + Send + Sync + 'static {
    let talk = !pr.quiet;
    let fleet =
        crate::fleet_args::FleetProgress::new(talk, talk && pr.output == OutputFormat::Human);
    move |e: &Event| {
        match e {
        Event::Credentials(source) => pr.progress(&format!("credentials: {source}")),
        Event::Note(m) => pr.progress(m),
        Event::Finding { finding: w, .. } => pr.progress(&format!(
            "{} {}: {}",
            w.finding.severity, w.finding.code, w.finding.message
        )),
        Event::ImportStarted {
            image_id,
            reused: true,
            ..
        } => pr.progress(&format!(
            "image {image_id} was already imported from these objects by an earlier run (same ClientToken)"
        )),
        Event::WaitStarted { task_id, image_id } => {
            pr.progress(&format!(
                "waiting for import task {task_id} (image {image_id}) in {region}; Ctrl-C {on_ctrl_c}"
            ));
            *bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(TaskBar::new(pr.quiet));
        }
        Event::TaskProgress(p) => {
            if let Some(b) = &*bar.lock().unwrap_or_else(|e| e.into_inner()) {
                b.update(p);
            }
        }
        Event::StageStarted(Stage::Copy) => {
            end_bar(&bar);
            pr.progress("copy and share");
        }
        Event::Fleet(f) => fleet.event(f),
        _ => {}
    }
    }
}

/// A library error as `import` reports it: the credential chain's own words; a copy setting
/// refused with its code.
fn import_error(e: PipelineError) -> anyhow::Error {
    match e {
        PipelineError::Credentials(m) => anyhow::anyhow!("{m}"),
        PipelineError::Fleet(f) => anyhow::anyhow!("{}: {f}", f.code()),
        e => e.into(),
    }
}

async fn run_import(args: ImportCmdArgs) -> Result<u8> {
    let pr = Printer {
        output: args.output.format,
        quiet: args.quiet.on,
    };
    required(&args.import.region, "--region")?;
    required(&args.import.bucket, "--bucket")?;
    required(&args.import.object, "--object")?;
    let params = args.import.to_params()?;
    let region = params.region.clone().unwrap_or_default();
    let endpoints = args.endpoints.endpoints();
    let mut job = ImportJob::new(params, args.profile.credentials(endpoints.sts.clone()));
    job.endpoints = endpoints;
    job.data_keys = (args.import.data_disk.iter())
        .map(|k| k.to_string_lossy().into_owned())
        .collect();
    job.oss_signature = args.signature_version.version();
    job.rpc_signature = args.signature.method();
    job.dry_run = args.dry_run;
    job.wait = !args.no_wait;
    job.detach = args.detach;
    job.poll_interval = args.timing.poll_interval;
    job.timeout = args.timing.timeout;
    job.fleet = args.fleet.plan();

    let bar = SharedBar::default();
    let on_ctrl_c = if args.detach {
        "detaches"
    } else {
        "cancels the import"
    };
    let events = progress(pr, region.clone(), on_ctrl_c, bar.clone());
    let interrupt = Interrupt::new()?;
    let result = preflight_pipeline::import::run_import(&job, events, interrupt.recv()).await;
    end_bar(&bar);
    let result = result.map_err(import_error)?;
    if let ImportResult::Cancelled { started, .. } = &result {
        pr.progress(&format!(
            "interrupted: cancelling import task {} (CancelTask)",
            started.task_id
        ));
    }
    let resume = WaitCommand {
        region,
        ecs_endpoint: args.endpoints.ecs_for_wait(),
        profile: args.profile.profile.clone(),
    };
    pr.result(&result.render(&resume))?;
    Ok(match &result {
        ImportResult::DryRunPassed { .. }
        | ImportResult::Started(_)
        | ImportResult::Detached(_) => EXIT_OK,
        ImportResult::Refused { .. } | ImportResult::ApiRefused { .. } => EXIT_FAILED,
        ImportResult::Interrupted
        | ImportResult::Cancelled { .. }
        | ImportResult::CopiesStopped { .. } => crate::EXIT_INTERRUPTED,
        ImportResult::WaitFailed { error, .. } => {
            eprintln!("ecs-preflight: error: {error}");
            crate::EXIT_ENV
        }
        ImportResult::CopyFailed { error, .. } if error.is_usage() => crate::EXIT_ENV,
        ImportResult::CopyFailed { .. } => EXIT_FAILED,
        ImportResult::Finished { outcome, .. } => waited_exit(outcome),
    })
}

/// The exit code of a followed task: 0 only when the image is available.
fn waited_exit(outcome: &WaitOutcome) -> u8 {
    match outcome {
        WaitOutcome::Available(_) => EXIT_OK,
        WaitOutcome::Failed { .. } | WaitOutcome::TimedOut(_) => EXIT_FAILED,
    }
}

async fn run_wait_async(args: WaitArgs) -> Result<u8> {
    let pr = Printer {
        output: args.output.format,
        quiet: args.quiet.on,
    };
    let mut endpoints = match &args.emulator {
        Some(url) => preflight_pipeline::Endpoints::emulator(url),
        None => preflight_pipeline::Endpoints::default(),
    };
    if let Some(e) = &args.ecs_endpoint {
        endpoints.ecs = Some(e.clone());
    }
    let resume = WaitCommand {
        region: args.region.clone(),
        ecs_endpoint: endpoints.ecs.clone(),
        profile: args.profile.profile.clone(),
    };
    let job = WaitJob {
        region: args.region.clone(),
        task_id: args.task_id.clone(),
        endpoints,
        credentials: args.profile.credentials(None),
        rpc_signature: preflight_pipeline::RpcSignature::HmacSha1,
        poll_interval: args.timing.poll_interval,
        timeout: args.timing.timeout,
    };
    let bar = SharedBar::default();
    let events = progress(
        pr,
        args.region.clone(),
        "stops waiting, the import goes on",
        bar.clone(),
    );
    let interrupt = Interrupt::new()?;
    let waited = preflight_pipeline::wait::wait_for_task(&job, &events, interrupt.recv()).await;
    end_bar(&bar);
    let waited = waited?;
    pr.result(&waited.render(&args.task_id, &resume))?;
    Ok(match &waited.followed {
        Followed::Done(w) => waited_exit(w),
        Followed::Lost(e) => {
            eprintln!("ecs-preflight: error: {e}");
            crate::EXIT_ENV
        }
        Followed::Stopped => EXIT_FAILED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
