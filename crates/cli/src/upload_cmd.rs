//! `ecs-preflight upload`: check the cloud-side rules, then upload an image to OSS with the
//! resumable, CRC-64-verified uploader of `preflight-oss`.
//!
//! Exit codes: 0 uploaded and verified; 1 a rule failed (missing bucket, bucket in another
//! region, encrypted bucket, malformed key) — nothing was sent — or the upload failed
//! verification (CRC-64 or size mismatch); 2 usage or environment error (missing file, no
//! credentials, bad flag, network unreachable or server failing after all retries, any other
//! OSS refusal); 130 interrupted by Ctrl-C (the upload is resumable: run the same command).

use std::path::PathBuf;

use preflight_oss::upload;
use preflight_pipeline::{upload_failed, upload_refusal, ConvertMode, ImageUpload, PipelineError};

use crate::progress::{handler, lock, Layout, Progress};
use crate::render::emit;
use crate::OutputFormat;

/// Flags of `ecs-preflight upload`.
#[derive(clap::Args, Debug)]
#[command(after_help = include_str!("../help/upload.txt"))]
pub struct UploadArgs {
    /// The disk image.
    pub image: PathBuf,
    /// Region of the import; the bucket must be in it (e.g. cn-hangzhou).
    #[arg(long)]
    pub region: String,
    /// OSS bucket.
    #[arg(long)]
    pub bucket: String,
    /// Object key [default: the image's file name].
    #[arg(long, value_name = "KEY")]
    pub object: Option<String>,
    #[command(flatten)]
    pub endpoints: crate::endpoint_args::OssEndpointArgs,
    #[command(flatten)]
    pub upload: crate::shared_flags::UploadFlags,
    /// Parts uploaded in parallel; memory is about this × the part size.
    #[arg(long, value_name = "N", default_value_t = upload::DEFAULT_PARALLEL, value_parser = parse_parallel)]
    pub parallel: usize,
    #[command(flatten)]
    pub profile: crate::shared_flags::ProfileFlag,
    /// Send a qcow2 of only the disk's non-zero clusters instead of the file: auto (RAW or
    /// fixed VHD, when at least 20 % smaller), qcow2 (always), none.
    #[arg(long, value_name = "MODE", default_value = "auto", value_parser = parse_convert)]
    pub convert: ConvertMode,
    /// Cancel the interrupted upload of this image and key, and delete its parts.
    #[arg(long)]
    pub abort: bool,
    #[command(flatten)]
    pub output: crate::shared_flags::OutputFlag,
    #[command(flatten)]
    pub quiet: crate::shared_flags::QuietFlag,
}

/// Parses `auto`, `qcow2`, `none`.
pub(crate) fn parse_convert(s: &str) -> Result<ConvertMode, String> {
    s.parse()
}

/// Parses 1..=64.
pub(crate) fn parse_parallel(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a number from 1 to 64")),
    }
}

/// Runs the command; returns the exit code.
pub fn run(args: UploadArgs) -> anyhow::Result<u8> {
    crate::block_on(run_async(args))?
}

/// The library's upload, as the flags describe it.
fn job(args: &UploadArgs) -> ImageUpload {
    let endpoints = args.endpoints.endpoints();
    let credentials = args.profile.credentials(endpoints.sts.clone());
    let mut job = ImageUpload::new(&args.image, &args.region, &args.bucket, credentials);
    job.object.clone_from(&args.object);
    job.endpoints = endpoints;
    job.signature = args.upload.signature_version;
    job.options = args.upload.options(args.parallel);
    job.convert = args.convert;
    job
}

async fn run_async(args: UploadArgs) -> anyhow::Result<u8> {
    let job = job(&args);
    let (output, quiet) = (args.output.format, args.quiet.on);
    let layout = Layout {
        detailed: true,
        ..Layout::default()
    };
    let progress = Progress::new(layout, quiet, true, output == OutputFormat::Json)
        .disks(vec![args.image.clone()])
        .shared();
    // With --quiet the exit code is the result: only the JSON is printed.
    if args.abort {
        let done = job.abort(handler(&progress)).await.map_err(crate::fail)?;
        return emit(&done.render(&args.bucket), output, quiet);
    }
    let stop = crate::ctrl_c()?;
    // Cancelling is dropping the library's future: the upload stays resumable.
    let result = tokio::select! {
        r = job.run(handler(&progress)) => r,
        () = stop => {
            lock(&progress).end(true);
            eprintln!("interrupted: the upload is resumable; run the same command again to continue, or add --abort to cancel it and delete its parts");
            return Ok(preflight_pipeline::exit::INTERRUPTED);
        }
    };
    lock(&progress).end(false);
    let shown = match result {
        Ok(out) => out.render(),
        Err(PipelineError::Refused { .. }) => {
            let (key, findings) = &lock(&progress).destination.clone();
            upload_refusal(&args.bucket, key, findings)
        }
        Err(PipelineError::Upload { source, .. }) => upload_failed(&source),
        Err(e) => return Err(crate::fail(e)),
    };
    emit(&shown, output, quiet)
}
