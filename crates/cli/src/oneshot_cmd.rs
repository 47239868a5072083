//! `ecs-preflight upload-and-import`: the whole flow in one command, via `preflight-pipeline`:
//! check (local and cloud rules) → upload every disk (resumable) → ImportImage → wait.
//!
//! Exit codes: 0 image available; 1 refused by a rule (nothing uploaded), ImportImage refused,
//! the import failed or timed out, or an upload failed verification; 2 usage or environment
//! error; 130 interrupted by Ctrl-C (a rerun resumes: upload checkpoint, same ClientToken),
//! except that with `--detach` a Ctrl-C while waiting leaves the import running and exits 0.

use std::path::PathBuf;

use crate::progress::{handler, lock, Layout, Progress};
use anyhow::Result;
use preflight_oss::upload;
use preflight_pipeline::{ConvertMode, Event, Pipeline, PipelineError, WaitCommand};

use crate::render::emit;

use crate::upload_cmd::parse_parallel;
use crate::OutputFormat;

/// Flags of `ecs-preflight upload-and-import`.
#[derive(clap::Args, Debug)]
#[command(after_help = include_str!("../help/upload-and-import.txt"))]
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
    pub rpc: crate::shared_flags::RpcSignatureFlag,

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
    crate::block_on(run_async(args))?
}

fn build(
    args: &OneShotArgs,
    on_event: impl Fn(&Event) + Send + Sync + 'static,
) -> Result<Pipeline> {
    let mut params = args.import.to_params()?;
    // The pipeline takes the data disks as paths; the params keep one entry per disk.
    params.disks.truncate(1);
    let endpoints = args.endpoints.endpoints();
    let creds = args.profile.credentials(endpoints.sts.clone());
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
        .oss_signature(args.upload.signature_version)
        .rpc_signature(args.rpc.signature)
        .fleet(args.fleet.plan())
        .on_event(on_event);
    for d in &args.import.data_disk {
        b = b.data_disk(d);
    }
    for code in &args.allow {
        b = b.allow(code);
    }
    Ok(b.build()?)
}

async fn run_async(args: OneShotArgs) -> Result<u8> {
    let output = args.output.format;
    // The upload's lines are indented under the stage headers, and short.
    let layout = Layout {
        indent: true,
        ctrl_c: Some(crate::import_cmd::ctrl_c_while_waiting(args.detach)),
        ..Layout::default()
    };
    let disks = std::iter::once(&args.image).chain(&args.import.data_disk);
    let progress = Progress::new(layout, args.quiet.on, true, output == OutputFormat::Json)
        .disks(disks.cloned().collect())
        .shared();
    let pipeline = match build(&args, handler(&progress)) {
        Ok(p) => p,
        Err(e) => {
            return match e.downcast_ref::<PipelineError>() {
                Some(PipelineError::Usage(m)) => {
                    anyhow::bail!("{m}: pass --region and --bucket")
                }
                _ => Err(e),
            }
        }
    };
    let resume = WaitCommand {
        region: pipeline.region().to_string(),
        ecs_endpoint: args.endpoints.ecs_for_wait(),
        profile: args.profile.profile.clone(),
    };
    let shown = if args.dry_run {
        match pipeline.dry_run().await {
            Ok(d) => d.render(),
            Err(e) => e.render(&resume),
        }
    } else {
        let stop = crate::ctrl_c()?;
        let result = pipeline.run_until(!args.no_wait, args.detach, stop).await;
        lock(&progress).end(true);
        match result {
            Ok(end) => end.render(&resume),
            Err(e) => e.render(&resume),
        }
    };
    emit(&shown, output, false)
}
