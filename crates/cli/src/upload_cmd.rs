//! `ecs-preflight upload`: check the cloud-side rules, then upload an image to OSS with the
//! resumable, CRC-64-verified uploader of `preflight-oss`.
//!
//! Exit codes: 0 uploaded and verified; 1 a rule failed (missing bucket, bucket in another
//! region, encrypted bucket, malformed key) — nothing was sent — or the upload failed
//! verification (CRC-64 or size mismatch); 2 usage or environment error (missing file, no
//! credentials, bad flag, network unreachable or server failing after all retries, any other
//! OSS refusal); 130 interrupted by Ctrl-C (the upload is resumable: run the same command).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use preflight_oss::upload;
use preflight_oss::{
    Client, ClientConfig, ErrorKind, SignatureVersion, UploadEvent, UploadOutcome,
};
use preflight_pipeline::{ConvertMode, PreparedUpload};
use preflight_report::Finding;
use preflight_rules::BucketFacts;
use serde_json::json;

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
    /// No progress bar, no human summary; the exit code tells. With --output
    /// json the JSON result is still printed (JSON wins).
    #[arg(long, short = 'q')]
    pub quiet: bool,
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

/// Prints the memory the part buffers take, or refuses a plan above the limit.
pub(crate) fn memory_line(
    size: u64,
    threshold: u64,
    part_size: Option<u64>,
    parallel: usize,
) -> anyhow::Result<Option<String>> {
    if size < threshold.min(upload::MAX_SINGLE_PUT) {
        return Ok(None);
    }
    match upload::buffer_memory(size, part_size, parallel) {
        Ok(mem) => Ok(Some(format!(
            "memory: about {} for part buffers (--parallel {parallel} × part size)",
            indicatif::BinaryBytes(mem)
        ))),
        Err(e) => bail!("{e}"),
    }
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
    rt.block_on(run_async(args))
}

fn key_of(args: &UploadArgs, prepared: &PreparedUpload) -> anyhow::Result<String> {
    match &args.object {
        Some(k) => Ok(k.clone()),
        None => preflight_pipeline::convert::default_key(&args.image, prepared)
            .context("the image path has no UTF-8 file name; pass --object"),
    }
}

/// The keys an earlier run may have used: `--object`, else the file name and, for a
/// converted disk, its `.qcow2` twin.
fn candidate_keys(args: &UploadArgs) -> anyhow::Result<Vec<String>> {
    if let Some(k) = &args.object {
        return Ok(vec![k.clone()]);
    }
    let name = args
        .image
        .file_name()
        .and_then(|n| n.to_str())
        .context("the image path has no UTF-8 file name; pass --object")?;
    let mut keys = vec![name.to_string()];
    let twin = Path::new(name).with_extension("qcow2");
    if let Some(t) = twin.to_str().filter(|t| *t != name) {
        keys.push(t.to_string());
    }
    Ok(keys)
}

async fn run_async(args: UploadArgs) -> anyhow::Result<u8> {
    if !args.abort {
        let meta = std::fs::metadata(&args.image)
            .with_context(|| format!("cannot read {}", args.image.display()))?;
        if !meta.is_file() {
            bail!("{} is not a file", args.image.display());
        }
    }
    let endpoints = args.endpoints.endpoints();
    let creds = args.profile.credentials(endpoints.sts.clone());
    let on_ecs = tokio::spawn(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(3),
            preflight_pipeline::instance_region(),
        )
        .await
        .ok()
        .flatten()
    });
    let (_, source) = creds.get_with_source().await?;
    let mut config: ClientConfig = endpoints.oss_config(&args.region, &args.bucket);
    config.signature = args.upload.signature_version.version();
    let client = Client::new(config, creds)?;
    let say = |msg: &str| {
        if !args.quiet {
            eprintln!("{msg}");
        }
    };
    say(&format!("credentials: {source}"));

    if args.abort {
        return abort(&args, &client, &args.upload.checkpoint_dir(), &say).await;
    }

    let prepared = prepare(&args).await?;
    let key = key_of(&args, &prepared)?;
    if let Some(c) = &prepared.conversion {
        say(&conversion_line(c));
    }

    // Before any byte is sent: the rules.
    let checked = preflight_pipeline::upload::upload_check(
        &client,
        &args.image,
        &args.region,
        &key,
        &prepared.format,
    )
    .await?;
    let (findings, bucket) = (checked.findings, checked.bucket);
    if let Ok(Some(here)) = on_ecs.await {
        if here == args.region && !endpoints.oss_is_internal() {
            say(&preflight_pipeline::endpoints::internal_endpoint_advice(
                &here,
            ));
        }
    }
    let refused = preflight_report::has_errors(&findings);
    // JSON is the result, printed even with --quiet.
    if args.output.format == OutputFormat::Json && refused {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"status": "refused", "bucket": args.bucket, "key": key, "findings": findings})
            )?
        );
    } else if !args.quiet {
        for f in &findings {
            eprintln!("{f}\n  hint: {}", f.hint);
        }
    }
    if refused {
        return Ok(crate::EXIT_FINDINGS);
    }
    if let Some(line) = memory_line(
        prepared.source.size(),
        args.upload.multipart_threshold(),
        args.upload.part_size,
        args.parallel,
    )? {
        say(&line);
    }

    let options = args.upload.options(args.parallel);
    let bar = ProgressBar::with_draw_target(
        Some(prepared.source.size()),
        if args.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let sink = {
        let bar = bar.clone();
        let quiet = args.quiet;
        Arc::new(move |e: UploadEvent| {
            // indicatif drops println on a hidden bar (stderr not a terminal): print directly then.
            let note = |m: String| {
                if quiet {
                } else if bar.is_hidden() {
                    eprintln!("{m}");
                } else {
                    bar.println(m);
                }
            };
            match e {
                UploadEvent::PartDone { bytes, .. } => bar.inc(bytes),
                UploadEvent::Resuming { upload_id, parts_on_server } => note(format!("resuming upload {upload_id}: OSS has {parts_on_server} parts; checking them against the file")),
                UploadEvent::StaleUploadAborted { upload_id } => note(format!("the file changed since upload {upload_id} began: aborted it (its parts are deleted) and starting afresh")),
                UploadEvent::UploadGone { upload_id } => note(format!("upload {upload_id} no longer exists on OSS: starting afresh")),
                UploadEvent::Started { multipart, part_size, parts, .. } if multipart => bar.set_message(format!("{parts} parts of {}", indicatif::BinaryBytes(part_size))),
                UploadEvent::Completing => bar.set_message("verifying"),
                UploadEvent::Verifying { .. } => bar.set_message("OSS has an object of this size: comparing CRC-64"),
                UploadEvent::AlreadyThere { .. } => note("OSS already has this exact object (same size and CRC-64): nothing to send (--force sends it anyway)".to_string()),
                UploadEvent::NotVerified { what } => note(format!("warning: {what}")),
                _ => {}
            }
        })
    };
    let started = Instant::now();
    let result = tokio::select! {
        r = upload::upload_source(&client, prepared.source.clone(), &key, &options, sink) => r,
        _ = tokio::signal::ctrl_c() => {
            bar.abandon();
            eprintln!("interrupted: the upload is resumable; run the same command again to continue, or add --abort to cancel it and delete its parts");
            return Ok(crate::EXIT_INTERRUPTED);
        }
    };
    bar.finish_and_clear();
    let out = match result {
        Ok(o) => o,
        Err(e) if e.kind() == ErrorKind::Integrity => {
            eprintln!("ecs-preflight: upload failed verification: {e}");
            return Ok(crate::EXIT_FINDINGS);
        }
        Err(e) => {
            let resumable = e.is_retryable();
            eprintln!("ecs-preflight: error: {e}");
            if resumable {
                eprintln!("the upload is resumable: run the same command again to continue");
            }
            return Ok(crate::EXIT_ENV);
        }
    };
    summary(
        &args,
        &out,
        &prepared,
        started.elapsed().as_secs_f64(),
        &findings,
        &bucket,
    )?;
    Ok(crate::EXIT_OK)
}

/// Decides what is sent (the map pass runs here when a conversion is possible), with a
/// progress bar over the bytes scanned.
async fn prepare(args: &UploadArgs) -> anyhow::Result<PreparedUpload> {
    let size = std::fs::metadata(&args.image)
        .with_context(|| format!("cannot read {}", args.image.display()))?
        .len();
    let bar = ProgressBar::with_draw_target(
        Some(size),
        if args.quiet || args.convert == ConvertMode::None {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {binary_bytes} scanned {binary_bytes_per_sec} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("finding the data");
    let mode = preflight_pipeline::convert::mode_for_key(
        args.convert,
        &args.image,
        args.object.as_deref(),
    )?;
    let (path, b) = (args.image.clone(), bar.clone());
    let prepared = tokio::task::spawn_blocking(move || {
        preflight_pipeline::prepare_upload(&path, mode, &|n| b.inc(n))
    })
    .await
    .context("the map pass stopped")??;
    bar.finish_and_clear();
    Ok(prepared)
}

/// One line on a conversion: what is sent instead of what.
pub(crate) fn conversion_line(c: &preflight_pipeline::Conversion) -> String {
    let b = indicatif::BinaryBytes;
    if c.converted {
        format!(
            "sending a qcow2 of the data: {} instead of the {} {} file ({} of data)",
            b(c.qcow2_size),
            b(c.file_size),
            c.from,
            b(c.data_bytes)
        )
    } else {
        format!(
            "sending the {} file as it is: a qcow2 of its data would be {} of {}, less than {} % smaller",
            c.from,
            b(c.qcow2_size),
            b(c.file_size),
            preflight_pipeline::convert::AUTO_MIN_SAVING_PERCENT
        )
    }
}

async fn abort(
    args: &UploadArgs,
    client: &Client,
    checkpoint_dir: &Path,
    say: &dyn Fn(&str),
) -> anyhow::Result<u8> {
    let keys = candidate_keys(args)?;
    let mut aborted = false;
    for key in &keys {
        if let Some(id) = upload::abort_upload(client, key, checkpoint_dir).await? {
            say(&format!(
                "aborted upload {id} of oss://{}/{key}; its parts are deleted",
                args.bucket
            ));
            aborted = true;
        }
    }
    if aborted {
        return Ok(0);
    }
    for key in &keys {
        let others = client.list_multipart_uploads(key).await?;
        say(&format!(
            "no interrupted upload of oss://{}/{key} is recorded here",
            args.bucket
        ));
        for u in others.into_iter().filter(|u| &u.key == key) {
            say(&format!(
                "  in progress on OSS (not started here, left alone): upload id {} since {}",
                u.upload_id, u.initiated
            ));
        }
    }
    Ok(0)
}

fn summary(
    args: &UploadArgs,
    out: &UploadOutcome,
    prepared: &PreparedUpload,
    seconds: f64,
    findings: &[Finding],
    bucket: &BucketFacts,
) -> anyhow::Result<()> {
    if args.quiet && args.output.format != OutputFormat::Json {
        return Ok(());
    }
    #[allow(clippy::cast_precision_loss)]
    let mib_s = if seconds > 0.0 {
        out.size as f64 / 1_048_576.0 / seconds
    } else {
        0.0
    };
    match args.output.format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "status": "uploaded",
                "bucket": out.bucket,
                "key": out.key,
                "size": out.size,
                "crc64": out.crc64.to_string(),
                "etag": out.etag,
                "parts": out.parts,
                "parts_sent": out.parts_sent,
                "parts_reused": out.parts_reused,
                "part_size": out.part_size,
                "upload_id": out.upload_id,
                "already_there": out.already_there,
                "format": prepared.format,
                "conversion": prepared.conversion,
                "seconds": (seconds * 1000.0).round() / 1000.0,
                "mib_per_s": (mib_s * 10.0).round() / 10.0,
                "findings": findings,
                "bucket_facts": bucket,
            }))?
        ),
        OutputFormat::Human => {
            if out.already_there {
                println!(
                    "already on OSS, nothing sent: oss://{}/{}",
                    out.bucket, out.key
                );
            } else {
                println!("uploaded oss://{}/{}", out.bucket, out.key);
            }
            println!("  format   {}", prepared.format);
            println!("  size     {} bytes", out.size);
            println!("  CRC-64   {} (verified: local = OSS)", out.crc64);
            println!("  ETag     {}", out.etag);
            println!(
                "  parts    {} ({} sent, {} already on OSS)",
                out.parts, out.parts_sent, out.parts_reused
            );
            println!("  time     {seconds:.1} s, {mib_s:.1} MiB/s");
            if let Some(class) = &bucket.storage_class {
                println!(
                    "  bucket   {}, default storage class {class} (this object: {})",
                    bucket.region.as_deref().unwrap_or("?"),
                    preflight_oss::api::STORAGE_CLASS
                );
            }
        }
    }
    Ok(())
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
