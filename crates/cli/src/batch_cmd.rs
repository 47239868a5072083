//! `ecs-preflight batch MANIFEST`: many images from one TOML manifest (see
//! `preflight_pipeline::batch` for the manifest and the scheduling). This file holds the
//! flags and the rendering only.
//!
//! Exit codes: 0 every image checked clean / Available; 1 at least one image has an error
//! finding or failed; 2 a bad manifest or flag (nothing started); 130 interrupted by Ctrl-C.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use preflight_oss::upload;
use preflight_pipeline::batch::{
    self, BatchOptions, Manifest, DEFAULT_MAX_IMPORTS, DEFAULT_MAX_UPLOADS,
};
use preflight_pipeline::{rendering, Event};

use crate::upload_cmd::parse_parallel;
use crate::OutputFormat;

/// Flags of `ecs-preflight batch`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    ecs-preflight batch fleet.toml --check-only\n  \
    ecs-preflight batch fleet.toml --parallel 4 --max-uploads 2 --max-imports 5\n  \
    ecs-preflight batch fleet.toml --output json\n\n\
    The manifest (TOML): a [defaults] table and one [[image]] table per image; keys are the \
    upload-and-import flags with '_' for '-' (path, data_disk = [..], image_name, region, \
    bucket, platform, tag = [\"k=v\"], skip_guest, allow = [..], convert, ...). A relative \
    path is relative to the manifest. A bad manifest is refused, naming the line, before \
    anything starts.\n\n\
    Without --check-only every image goes through upload-and-import. One failing image never \
    stops the others. Ctrl-C starts nothing new, leaves uploads resumable and running imports \
    running; run the same command again to continue (finished images are found again, not \
    redone: same objects, same ClientToken).\n\n\
    --output json: with --check-only an array (one object per image: verdict, errors, \
    warnings, the check report); otherwise {\"status\": \"complete\" or \"interrupted\", \
    \"images\": [...], \"continue_command\" when interrupted}.\n\n\
    Exit codes: 0 every image clean / Available, 1 at least one image failed or has an error \
    finding, 2 bad manifest or usage, 130 interrupted.")]
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
    pub signature: crate::shared_flags::RpcSignatureFlag,

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
            eprintln!("ecs-preflight: error: {e}");
            return Ok(crate::EXIT_ENV);
        }
    };
    let parallel = args
        .parallel
        .unwrap_or_else(|| BatchOptions::default().parallel);
    if args.check_only {
        return check_only(&args, &manifest, parallel);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run_all(&args, &manifest, parallel))
}

fn check_only(args: &BatchArgs, manifest: &Manifest, parallel: usize) -> Result<u8> {
    let rows = batch::check_all(&manifest.images, parallel, rendering::check_row);
    let failed = rows.iter().any(|r| r["verdict"] != "pass");
    if args.output.format == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for line in rendering::check_lines(&rows) {
            println!("{line}");
        }
    }
    Ok(if failed {
        crate::EXIT_FINDINGS
    } else {
        crate::EXIT_OK
    })
}

/// The command line that continues an interrupted batch: this very one.
fn continue_command() -> String {
    let mut words = vec!["ecs-preflight".to_string()];
    for a in std::env::args().skip(1) {
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
        words.push(if plain {
            a
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        });
    }
    words.join(" ")
}

fn progress_line(name: &str, e: &Event) -> Option<String> {
    Some(match e {
        Event::StageStarted(s) => format!("[{name}] == {s}"),
        Event::UploadStarted { disk, key, size, .. } => {
            format!("[{name}] disk {disk} → {key} ({size} bytes)")
        }
        Event::UploadFinished {
            disk, parts_reused, ..
        } => format!("[{name}] disk {disk} uploaded and verified ({parts_reused} parts kept from an earlier run)"),
        Event::ImportStarted {
            image_id,
            task_id,
            reused,
        } => format!(
            "[{name}] image {image_id}, task {task_id}{}",
            if *reused { " (from an earlier run)" } else { "" }
        ),
        Event::Finding {
            finding,
            allowed: true,
        } => format!(
            "[{name}] {} {} (allowed): {}",
            finding.finding.severity, finding.finding.code, finding.finding.message
        ),
        Event::Note(m) => format!("[{name}] note: {m}"),
        _ => return None,
    })
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
            .oss_signature(args.upload.signature_version.version())
            .rpc_signature(args.signature.method())
    });
    let names: Vec<String> = manifest.images.iter().map(|i| i.name.clone()).collect();
    let talk = !args.quiet.on;
    let on_event = {
        let names = names.clone();
        Arc::new(move |i: usize, e: &Event| {
            if talk {
                if let Some(line) = progress_line(&names[i], e) {
                    eprintln!("{line}");
                }
            }
        })
    };
    let options = BatchOptions {
        parallel,
        max_uploads: args.max_uploads,
        max_imports: args.max_imports,
    };
    if talk {
        eprintln!(
            "batch: {} images, {parallel} at once, {} uploading at once, {} import tasks per region",
            names.len(),
            options.max_uploads,
            options.max_imports
        );
    }
    let stop = async {
        // Without a signal handler there is no Ctrl-C to honour: never stop.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let report = batch::run_batch(jobs, &options, on_event, stop).await;

    let resume = continue_command();
    if args.output.format == OutputFormat::Json {
        let v = report.to_json(&manifest.images, &resume);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for line in report.lines(&manifest.images) {
            println!("{line}");
        }
    }
    if report.interrupted {
        eprintln!(
            "interrupted: uploads stopped where their checkpoints are; imports already started go on in ECS."
        );
        eprintln!("continue with: {resume}");
        return Ok(crate::EXIT_INTERRUPTED);
    }
    Ok(if report.all_available() {
        crate::EXIT_OK
    } else {
        crate::EXIT_FINDINGS
    })
}
