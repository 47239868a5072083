//! `ecs-preflight import` and `ecs-preflight wait`: import an image that is already in OSS.
//!
//! Local rules, then the cloud rules (object, bucket, RAM role, image name), then ImportImage
//! with a ClientToken derived from the objects' ETags and the parameters (a rerun returns the
//! same image), then a watch of the task until the image is Available or has failed. Ctrl-C
//! cancels the import (CancelTask) unless `--detach`, which leaves it running and prints the
//! `wait` command that picks it up again.

use std::time::Duration;

use anyhow::Result;
use preflight_pipeline::import::ImportJob;
use preflight_pipeline::wait::WaitJob;
use preflight_pipeline::WaitCommand;

use crate::progress::{handler, lock, Layout, Progress};
use crate::render::emit;
use crate::OutputFormat;

/// `ecs-preflight import`.
#[derive(clap::Args, Debug)]
#[command(after_help = include_str!("../help/import.txt"))]
pub struct ImportCmdArgs {
    #[command(flatten)]
    pub import: crate::request_args::RequestArgs,

    #[command(flatten, next_help_heading = "Endpoints")]
    pub endpoints: crate::endpoint_args::EndpointArgs,

    /// OSS signature version of the bucket and object probes (V1 only for old endpoints).
    #[arg(help_heading = "Import options", long, value_enum,
          default_value_t = preflight_oss::SignatureVersion::V4)]
    pub signature_version: preflight_oss::SignatureVersion,

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
    pub rpc: crate::shared_flags::RpcSignatureFlag,

    #[command(flatten, next_help_heading = "Import options")]
    pub output: crate::shared_flags::OutputFlag,

    #[command(flatten, next_help_heading = "Import options")]
    pub quiet: crate::shared_flags::QuietFlag,

    #[command(flatten)]
    pub fleet: crate::fleet_args::FleetArgs,
}

/// `ecs-preflight wait`.
#[derive(clap::Args, Debug)]
#[command(after_help = include_str!("../help/wait.txt"))]
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

/// Parses `90s`, `30m`, `6h`, `1d`, `500ms` (humantime's syntax) or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(seconds) = s.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration such as 90s, 30m or 6h: {e}"))
}

/// Runs `import`.
pub fn run(args: ImportCmdArgs) -> Result<u8> {
    crate::block_on(run_import(args))?
}

/// Runs `wait`.
pub fn run_wait(args: WaitArgs) -> Result<u8> {
    crate::block_on(run_wait_async(args))?
}

fn required(v: &Option<String>, flag: &str) -> Result<()> {
    match v.as_deref() {
        Some(s) if !s.is_empty() => Ok(()),
        _ => anyhow::bail!("{flag} is required for import"),
    }
}

/// What Ctrl-C does while an import is waited for.
pub fn ctrl_c_while_waiting(detach: bool) -> &'static str {
    if detach {
        "detaches"
    } else {
        "cancels the import"
    }
}

async fn run_import(args: ImportCmdArgs) -> Result<u8> {
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
    job.oss_signature = args.signature_version;
    job.rpc_signature = args.rpc.signature;
    job.dry_run = args.dry_run;
    job.wait = !args.no_wait;
    job.detach = args.detach;
    job.poll_interval = args.timing.poll_interval;
    job.timeout = args.timing.timeout;
    job.fleet = args.fleet.plan();

    let output = args.output.format;
    let layout = Layout {
        ctrl_c: Some(ctrl_c_while_waiting(args.detach)),
        ..Layout::default()
    };
    let progress =
        Progress::new(layout, args.quiet.on, true, output == OutputFormat::Json).shared();
    let stop = crate::ctrl_c()?;
    let result = preflight_pipeline::import::run_import(&job, handler(&progress), stop).await;
    lock(&progress).end(false);
    let resume = WaitCommand {
        region,
        ecs_endpoint: args.endpoints.ecs_for_wait(),
        profile: args.profile.profile.clone(),
    };
    emit(&result.map_err(crate::fail)?.render(&resume), output, false)
}

async fn run_wait_async(args: WaitArgs) -> Result<u8> {
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
        rpc_signature: preflight_pipeline::SignatureMethod::HmacSha1,
        poll_interval: args.timing.poll_interval,
        timeout: args.timing.timeout,
    };
    let output = args.output.format;
    let layout = Layout {
        ctrl_c: Some("stops waiting, the import goes on"),
        ..Layout::default()
    };
    let progress =
        Progress::new(layout, args.quiet.on, true, output == OutputFormat::Json).shared();
    let stop = crate::ctrl_c()?;
    let waited = preflight_pipeline::wait::wait_for_task(&job, &handler(&progress), stop).await;
    lock(&progress).end(false);
    emit(&waited?.render(&args.task_id, &resume), output, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
