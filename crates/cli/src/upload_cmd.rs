//! `ecs-preflight upload`: check the cloud-side rules, then upload an image to OSS with the
//! resumable, CRC-64-verified uploader of `preflight-oss`.
//!
//! Exit codes: 0 uploaded and verified; 1 a rule failed (missing bucket, bucket in another
//! region, encrypted bucket, malformed key) — nothing was sent — or the upload failed
//! verification (CRC-64 or size mismatch); 2 usage or environment error (missing file, no
//! credentials, bad flag, network unreachable or server failing after all retries, any other
//! OSS refusal); 130 interrupted by Ctrl-C (the upload is resumable: run the same command).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use preflight_oss::upload;
use preflight_oss::{ErrorKind, SignatureVersion};
use preflight_pipeline::{ConvertMode, Event, ImageUpload, PipelineError};
use preflight_report::Finding;

use crate::progress::{Layout, UploadProgress};
use crate::OutputFormat;

/// Signature version flag.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureFlag {
    /// OSS4-HMAC-SHA256 (default).
    V4,
    /// HMAC-SHA1, for old endpoints.
    V1,
}

impl SignatureFlag {
    /// The OSS client's signature version.
    pub fn version(self) -> SignatureVersion {
        match self {
            SignatureFlag::V4 => SignatureVersion::V4,
            SignatureFlag::V1 => SignatureVersion::V1,
        }
    }
}

/// Flags of `ecs-preflight upload`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    ecs-preflight upload disk.qcow2 --region cn-hangzhou --bucket images\n  \
    ecs-preflight upload disk.raw --region cn-hangzhou --bucket images --object vm/web-01.raw --part-size 64MiB --parallel 8\n  \
    ecs-preflight upload disk.raw --region cn-hangzhou --bucket images --abort\n  \
    ecs-preflight upload disk.qcow2 --region cn-hangzhou --bucket images --oss-internal   # on ECS in cn-hangzhou\n  \
    ecs-preflight upload disk.qcow2 --region cn-hangzhou --bucket ecs-preflight --emulator http://127.0.0.1:9090\n  \
    ecs-preflight upload disk.raw --region cn-hangzhou --bucket images --convert qcow2   # sends disk.qcow2: only the data\n\n\
    --convert auto (the default) sends a RAW or fixed-VHD disk as a qcow2 of its non-zero \
    clusters when that is at least 20 % smaller, with no temporary file; the object is then \
    named .qcow2 and ImportImage takes it as QCOW2.\n\n\
    Credentials, first found wins: ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET[/_SECURITY_TOKEN]; OIDC \
    (ALIBABA_CLOUD_ROLE_ARN, _OIDC_PROVIDER_ARN, _OIDC_TOKEN_FILE); the aliyun CLI profile \
    (--profile, ALIBABA_CLOUD_PROFILE or the current one in ~/.aliyun/config.json); the ECS \
    instance RAM role.\n\
    An interrupted upload resumes when the same command runs again: parts OSS already has \
    (checked by size and CRC-64) are not sent again.\n\n\
    Exit codes: 0 uploaded and verified, 1 a rule failed (nothing sent) or verification failed, \
    2 usage or environment error (no file, no credentials, network down after retries), \
    130 interrupted (resumable).")]
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

/// Parses a size of at most 5 GiB (one PutObject's limit).
pub(crate) fn parse_threshold(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n > upload::MAX_SINGLE_PUT {
        return Err(format!(
            "{s} is above 5GiB, the largest object one PutObject can write"
        ));
    }
    Ok(n)
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

/// Parses `8MiB`, `1GiB`, `100KiB`, `64M`, `1.5GB`, plain bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    if let Ok(n) = num.parse::<u64>() {
        return n
            .checked_mul(mult)
            .ok_or_else(|| format!("{s} is too large"));
    }
    let f: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 8MiB"))?;
    #[allow(clippy::cast_precision_loss)]
    let bytes = f * mult as f64;
    if !(0.0..1.8e19).contains(&bytes) {
        return Err(format!("{s} is out of range"));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes.round() as u64)
}

/// Runs the command; returns the exit code.
pub fn run(args: UploadArgs) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = rt.block_on(run_async(args));
    // A map pass stopped by Ctrl-C is a blocking task: not waited for.
    rt.shutdown_background();
    code
}

/// The library's upload, as the flags describe it.
fn job(args: &UploadArgs) -> ImageUpload {
    let endpoints = args.endpoints.endpoints();
    let credentials = args.profile.credentials(endpoints.sts.clone());
    let mut job = ImageUpload::new(&args.image, &args.region, &args.bucket, credentials);
    job.object.clone_from(&args.object);
    job.endpoints = endpoints;
    job.signature = args.upload.signature_version.version();
    job.options = args.upload.options(args.parallel);
    job.convert = args.convert;
    job
}

async fn run_async(args: UploadArgs) -> anyhow::Result<u8> {
    let job = job(&args);
    let quiet = args.quiet.on;
    if args.abort {
        let done = job
            .abort(move |e| {
                if let (Event::Credentials(source), false) = (e, quiet) {
                    eprintln!("credentials: {source}");
                }
            })
            .await
            .map_err(error)?;
        if !quiet {
            // On stderr: `--abort` prints no result on stdout.
            for line in done.render(&args.bucket).lines {
                eprintln!("{line}");
            }
        }
        return Ok(crate::EXIT_OK);
    }
    let layout = Layout {
        indent: "",
        detailed: true,
    };
    let view = Arc::new(Mutex::new(View {
        progress: UploadProgress::new(layout, !quiet, !quiet),
        json: args.output.format == OutputFormat::Json,
        image: args.image.clone(),
        key: String::new(),
        findings: Vec::new(),
    }));
    let on_event = {
        let view = view.clone();
        move |e: &Event| lock(&view).show(e)
    };
    // Cancelling is dropping the library's future: the upload stays resumable.
    let result = tokio::select! {
        r = job.run(on_event) => r,
        _ = tokio::signal::ctrl_c() => {
            lock(&view).progress.abandon();
            eprintln!("interrupted: the upload is resumable; run the same command again to continue, or add --abort to cancel it and delete its parts");
            return Ok(crate::EXIT_INTERRUPTED);
        }
    };
    lock(&view).progress.finish();
    match result {
        Ok(out) => {
            // JSON is the result, printed even with --quiet.
            if !quiet || args.output.format == OutputFormat::Json {
                crate::render::print_result(&out.render(), args.output.format)?;
            }
            Ok(crate::EXIT_OK)
        }
        Err(PipelineError::Refused { .. }) => {
            let view = lock(&view);
            // JSON is the result, printed even with --quiet.
            if view.json {
                let refusal =
                    preflight_pipeline::upload_refusal(&args.bucket, &view.key, &view.findings);
                crate::render::print_result(&refusal, OutputFormat::Json)?;
            }
            Ok(crate::EXIT_FINDINGS)
        }
        Err(PipelineError::Upload { source, .. }) if source.kind() == ErrorKind::Integrity => {
            eprintln!("ecs-preflight: upload failed verification: {source}");
            Ok(crate::EXIT_FINDINGS)
        }
        Err(PipelineError::Upload { source, .. }) => {
            eprintln!("ecs-preflight: error: {source}");
            if source.is_retryable() {
                eprintln!("the upload is resumable: run the same command again to continue");
            }
            Ok(crate::EXIT_ENV)
        }
        Err(e) => Err(error(e)),
    }
}

/// A library error as this command prints it (the credential chain's own message).
fn error(e: PipelineError) -> anyhow::Error {
    match e {
        PipelineError::Credentials(message) => anyhow::anyhow!(message),
        e => e.into(),
    }
}

fn lock(view: &Mutex<View>) -> std::sync::MutexGuard<'_, View> {
    view.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the terminal shows while the library works: the upload's progress and the notes.
struct View {
    progress: UploadProgress,
    json: bool,
    image: PathBuf,
    /// The key and the findings of the destination rules, for a refusal's JSON.
    key: String,
    findings: Vec<Finding>,
}

impl View {
    fn show(&mut self, e: &Event) {
        if !matches!(e, Event::Mapping { .. }) {
            self.progress.mapped();
        }
        let say = |m: String| self.progress.say(&m);
        match e {
            Event::Credentials(source) => say(format!("credentials: {source}")),
            Event::Mapping { bytes, .. } => {
                let image = &self.image;
                self.progress
                    .mapping(*bytes, || std::fs::metadata(image).map_or(0, |m| m.len()));
            }
            Event::Conversion { conversion, .. } => {
                say(crate::progress::conversion_line(conversion))
            }
            Event::Note(message) => say(message.clone()),
            Event::DestinationChecked { key, findings, .. } => {
                // A refusal asked for as JSON is printed as such, not here.
                if !(self.json && preflight_report::has_errors(findings)) {
                    for f in findings {
                        say(format!("{f}\n  hint: {}", f.hint));
                    }
                }
                self.key.clone_from(key);
                self.findings.clone_from(findings);
            }
            Event::PartBuffers {
                bytes, parallel, ..
            } => say(format!(
                "memory: about {} for part buffers (--parallel {parallel} × part size)",
                indicatif::BinaryBytes(*bytes)
            )),
            Event::UploadStarted { size, .. } => self.progress.started(*size),
            Event::Upload { event, .. } => self.progress.upload(event),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100KiB"), Ok(102_400));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("5GB"), Ok(5_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("8 parsecs").is_err());
        assert!(parse_size("").is_err());
    }
}
