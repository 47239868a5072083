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
    self, BatchJob, BatchOptions, ImageResult, Manifest, ManifestImage, DEFAULT_MAX_IMPORTS,
    DEFAULT_MAX_UPLOADS,
};
use preflight_pipeline::{Event, PipelineError};
use preflight_report::Severity;
use serde_json::{json, Value};

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

    /// ECS and RAM RPC signature.
    #[arg(long, value_enum, default_value_t = crate::import_cmd::RpcSignature::HmacSha1)]
    pub signature: crate::import_cmd::RpcSignature,

    #[command(flatten)]
    pub timing: crate::shared_flags::WaitFlags,

    #[command(flatten)]
    pub profile: crate::shared_flags::ProfileFlag,

    #[command(flatten)]
    pub output: crate::shared_flags::OutputFlag,

    /// No progress lines; only the summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,

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

fn check_one(image: &ManifestImage) -> Value {
    let base = json!({"image": image.name, "line": image.line,
                      "path": image.system_disk.display().to_string()});
    let mut disks = vec![image.system_disk.clone()];
    disks.extend(image.data_disks.iter().cloned());
    match preflight_pipeline::check(&disks, &image.params) {
        Ok(report) => {
            let count = |s: Severity| {
                report
                    .findings
                    .iter()
                    .filter(|f| f.finding.severity == s)
                    .count()
            };
            let mut v = base;
            v["verdict"] = json!(report.verdict);
            v["errors"] = json!(count(Severity::Error));
            v["warnings"] = json!(count(Severity::Warning));
            v["report"] = serde_json::to_value(&report).unwrap_or(Value::Null);
            v
        }
        Err(e) => {
            let mut v = base;
            v["verdict"] = json!("error");
            v["errors"] = json!(1);
            v["warnings"] = json!(0);
            v["error"] = json!({"code": "PIPELINE.Read", "message": format!("{e:#}")});
            v
        }
    }
}

fn check_only(args: &BatchArgs, manifest: &Manifest, parallel: usize) -> Result<u8> {
    let rows = batch::check_all(&manifest.images, parallel, check_one);
    let failed = rows.iter().any(|r| r["verdict"] != "pass");
    if args.output.format == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let table: Vec<[String; 4]> = rows
            .iter()
            .map(|r| {
                [
                    str_of(&r["image"]),
                    str_of(&r["verdict"]),
                    r["errors"].to_string(),
                    r["warnings"].to_string(),
                ]
            })
            .collect();
        print_table(&["IMAGE", "VERDICT", "ERRORS", "WARNINGS"], &table);
        for r in &rows {
            let first_errors = r["report"]["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|f| f["severity"] == "error")
                .map(|f| format!("{} {}", str_of(&f["code"]), str_of(&f["message"])))
                .chain(r["error"]["message"].as_str().map(str::to_string));
            for why in first_errors {
                println!("  {}: {why}", str_of(&r["image"]));
            }
        }
    }
    Ok(if failed {
        crate::EXIT_FINDINGS
    } else {
        crate::EXIT_OK
    })
}

fn str_of(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn print_table(head: &[&str], rows: &[[String; 4]]) {
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
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
    let jobs = manifest
        .images
        .iter()
        .map(|image| BatchJob {
            name: image.name.clone(),
            region: image.region().to_string(),
            builder: image
                .builder()
                .credentials(creds.clone())
                .endpoints(endpoints.clone())
                .upload_options(upload.clone())
                .poll_interval(args.timing.poll_interval)
                .timeout(args.timing.timeout)
                .oss_signature(args.upload.signature_version.version())
                .rpc_signature(args.signature.method()),
        })
        .collect();
    let names: Vec<String> = manifest.images.iter().map(|i| i.name.clone()).collect();
    let talk = !args.quiet;
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

    let rows: Vec<Value> = manifest
        .images
        .iter()
        .zip(&report.results)
        .map(|(image, r)| row(image, r))
        .collect();
    let failed = rows.iter().any(|r| r["status"] != "available");
    let resume = continue_command();
    if args.output.format == OutputFormat::Json {
        let mut v = json!({"status": if report.interrupted { "interrupted" } else { "complete" },
                           "images": rows});
        if report.interrupted {
            v["continue_command"] = json!(resume);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let table: Vec<[String; 4]> = rows
            .iter()
            .map(|r| {
                [
                    str_of(&r["image"]),
                    str_of(&r["status"]),
                    r["image_id"].as_str().unwrap_or("-").to_string(),
                    r["why"].as_str().unwrap_or("").to_string(),
                ]
            })
            .collect();
        print_table(&["IMAGE", "STATUS", "IMAGE ID", "WHY"], &table);
    }
    if report.interrupted {
        eprintln!(
            "interrupted: uploads stopped where their checkpoints are; imports already started go on in ECS."
        );
        eprintln!("continue with: {resume}");
        return Ok(crate::EXIT_INTERRUPTED);
    }
    Ok(if failed {
        crate::EXIT_FINDINGS
    } else {
        crate::EXIT_OK
    })
}

/// One image's line of the summary, as JSON (`why` says what failed).
fn row(image: &ManifestImage, r: &ImageResult) -> Value {
    let mut v = json!({"image": image.name, "line": image.line,
                       "path": image.system_disk.display().to_string(),
                       "region": image.region()});
    match r {
        ImageResult::Available(o) => {
            v["status"] = json!("available");
            v["image_id"] = json!(o.image_id);
            v["task_id"] = json!(o.task_id);
            v["reused"] = json!(o.reused);
            v["uploads"] = json!(o.uploads);
        }
        ImageResult::Failed(e) => {
            v["status"] = json!(if e.is_refusal() { "refused" } else { "failed" });
            v["error"] = json!({"code": e.code(), "message": e.full_message()});
            v["why"] = json!(why(e));
            if let PipelineError::Refused { findings, .. } = e {
                v["findings"] = json!(findings);
            }
            if let PipelineError::ImportFailed {
                image_id, task_id, ..
            } = e
            {
                v["image_id"] = json!(image_id);
                v["task_id"] = json!(task_id);
            }
        }
        ImageResult::Interrupted(reached) => {
            v["status"] = json!("interrupted");
            v["stage"] = json!(reached.stage);
            v["image_id"] = json!(reached.image_id);
            v["task_id"] = json!(reached.task_id);
            v["why"] = json!(match reached.stage {
                Some(s) => format!("stopped in {s}"),
                None => "stopped before its first stage".into(),
            });
        }
        ImageResult::NotStarted => {
            v["status"] = json!("not_started");
            v["why"] = json!("not started");
        }
    }
    v
}

fn why(e: &PipelineError) -> String {
    match e {
        PipelineError::Refused { findings, .. } => findings
            .iter()
            .map(|f| format!("{}: {}", f.finding.code, f.finding.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => format!("{}: {}", e.code(), e.full_message()),
    }
}
