//! `ecs-preflight batch MANIFEST`: many images from one TOML manifest (see
//! `preflight_pipeline::batch` for the manifest and the scheduling). This file holds the
//! flags and the rendering only.
//!
//! Exit codes: 0 every image checked clean / Available; 1 at least one image has an error
//! finding or failed; 2 a bad manifest or flag (nothing started); 130 interrupted by Ctrl-C.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use preflight_oss::upload;
use preflight_pipeline::batch::{
    self, BatchOptions, Manifest, DEFAULT_MAX_IMPORTS, DEFAULT_MAX_UPLOADS,
};
use preflight_pipeline::{exit, rendering, Event};

use crate::progress::{lock, Layout, Progress, Shared};
use crate::render::emit;

use crate::upload_cmd::parse_parallel;
use crate::OutputFormat;

/// Flags of `ecs-preflight batch`.
#[derive(clap::Args, Debug)]
#[command(after_help = include_str!("../help/batch.txt"))]
pub struct BatchArgs {
    /// The TOML manifest.
    pub manifest: PathBuf,

    /// Only check every image (format, integrity, guest, every ImportImage rule), in
    /// parallel; upload nothing.
    #[arg(long)]
    pub check_only: bool,

    /// Images checked or uploaded at once [default: the number of CPU cores]. An image
    /// whose import task is running holds no such slot.
    #[arg(long, value_name = "N", value_parser = parse_parallel)]
    pub parallel: Option<usize>,

    /// Images uploading at once, across the batch.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_UPLOADS, value_parser = parse_parallel)]
    pub max_uploads: usize,

    /// Import tasks running at once per region (ECS queues import tasks per region and
    /// refuses ImportImage beyond its limit; raise this when your account allows more).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_IMPORTS, value_parser = parse_parallel)]
    pub max_imports: usize,

    #[command(flatten)]
    pub rpc: crate::shared_flags::RpcSignatureFlag,

    #[command(flatten)]
    pub timing: crate::shared_flags::WaitFlags,

    #[command(flatten)]
    pub profile: crate::shared_flags::ProfileFlag,

    #[command(flatten)]
    pub output: crate::shared_flags::OutputFlag,

    #[command(flatten)]
    pub quiet: crate::shared_flags::QuietFlag,

    // A flatten's heading carries on to every flag after it, so the headed groups
    // (endpoints, then upload options) come last.
    #[command(flatten, next_help_heading = "Endpoints")]
    pub endpoints: crate::endpoint_args::EndpointArgs,

    #[command(flatten, next_help_heading = "Upload options")]
    pub upload: crate::shared_flags::UploadFlags,

    /// Parts of one upload sent in parallel.
    #[arg(help_heading = "Upload options", long, value_name = "N",
          default_value_t = upload::DEFAULT_PARALLEL, value_parser = parse_parallel)]
    pub upload_parallel: usize,
}

/// Runs the command; returns the exit code.
pub fn run(args: BatchArgs) -> Result<u8> {
    let manifest = match Manifest::load(&args.manifest) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{}", rendering::error_line(&e));
            return Ok(exit::USAGE);
        }
    };
    let parallel = args
        .parallel
        .unwrap_or_else(|| BatchOptions::default().parallel);
    if args.check_only {
        let rows = batch::check_all(&manifest.images, parallel, rendering::check_row);
        return emit(&rendering::check_rows(rows), args.output.format, false);
    }
    crate::block_on(run_all(&args, &manifest, parallel))?
}

async fn run_all(args: &BatchArgs, manifest: &Manifest, parallel: usize) -> Result<u8> {
    let endpoints = args.endpoints.endpoints();
    let creds = args.profile.credentials(endpoints.sts.clone());
    let upload = args.upload.options(args.upload_parallel);
    let jobs = manifest.jobs(|b| {
        b.credentials(creds.clone())
            .endpoints(endpoints.clone())
            .upload_options(upload.clone())
            .poll_interval(args.timing.poll_interval)
            .timeout(args.timing.timeout)
            .oss_signature(args.upload.signature_version)
            .rpc_signature(args.rpc.signature)
    });
    let (output, quiet) = (args.output.format, args.quiet.on);
    // One progress per image, its lines named after it; images run at once, so no bars.
    let progress: Vec<Shared> = (manifest.images.iter())
        .map(|image| {
            let layout = Layout {
                prefix: format!("[{}] ", image.name),
                ..Layout::default()
            };
            Progress::new(layout, quiet, false, output == OutputFormat::Json).shared()
        })
        .collect();
    let on_event = {
        let progress = progress.clone();
        Arc::new(move |i: usize, e: &Event| {
            if let Some(p) = progress.get(i) {
                lock(p).show(e);
            }
        })
    };
    let options = BatchOptions {
        parallel,
        max_uploads: args.max_uploads,
        max_imports: args.max_imports,
    };
    if !quiet {
        eprintln!(
            "batch: {} images, {parallel} at once, {} uploading at once, {} import tasks per region",
            progress.len(),
            options.max_uploads,
            options.max_imports
        );
    }
    let report = batch::run_batch(jobs, &options, on_event, crate::ctrl_c()?).await;
    for p in &progress {
        lock(p).end(report.interrupted);
    }
    // The command that continues an interrupted batch is this very one.
    let again = rendering::command_line(std::env::args().skip(1));
    emit(&report.render(&manifest.images, &again), output, false)
}
