//! `ecs-preflight emulator`: run the local OSS + ECS + RAM emulator until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use preflight_emulator::{
    AccessKey, BucketConfig, Config, LimitsProfile, StorageClass, DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
};

/// Flags of `ecs-preflight emulator`. A flag given on the command line overrides the same
/// setting from `--config`; without either, the documented defaults apply.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    ecs-preflight emulator\n  \
    ecs-preflight emulator --listen 127.0.0.1:9090 --data ./emu-data\n  \
    ecs-preflight emulator --access-key LTAI-test:secret --bucket images@cn-hangzhou --bucket vault@cn-hangzhou:encrypted\n  \
    ecs-preflight emulator --bucket new@cn-hangzhou:v4only --bucket cold@cn-beijing:archive --region-endpoints\n  \
    ecs-preflight emulator --strict --service-endpoints\n  \
    ecs-preflight emulator --allow-v1\n  \
    ecs-preflight emulator --deny oss:GetBucketEncryption --deny oss:GetObject --deny ecs:DescribeImages\n  \
    ecs-preflight emulator --no-import-role --storage-class Archive\n  \
    ecs-preflight emulator --task-seconds 30 --fail-import\n  \
    ecs-preflight emulator --fault-upload-part-error-rate 0.3 --fault-seed 7 --fault-bandwidth 1048576\n  \
    ecs-preflight emulator --config emulator.toml\n\n\
    With no --access-key the documented local test key pair is used and printed; it opens \
    only this emulator.\n\
    Strict by default: the V4 Authorization header's documented refusals (EC 0002-00000203 to \
    -227), every V1-signed OSS request refused (EC 0002-00000080), as for an account created \
    since March 2025 (--allow-v1 accepts V1, as an older account does), a bucket of another region answered 403 AccessDenied with <Endpoint> when the Host \
    (oss-<region>.aliyuncs.com) or the port (--region-endpoints) names a region, V1 refused on \
    v4only buckets (EC 0002-00000080), an empty or malformed AdditionalHeaders (EC \
    0002-00000209 to -211), RAM denies. Switched on by flag: --strict-service-endpoints (RPC \
    refused on OSS endpoints; off by default so one --emulator URL serves every service), or \
    --strict for all of them.\n\
    Admin endpoint (loopback only, no signature): GET /_emulator/counters, \
    POST /_emulator/counters/reset, GET|POST /_emulator/faults, GET /_emulator/health.")]
pub struct EmulatorArgs {
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory for objects, uploads and ECS state; created if missing [default: ./emu-data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// TOML configuration file (same settings as the flags; see the emulator crate docs).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Accepted credential ID:SECRET or ID:SECRET:STS_TOKEN (repeatable).
    #[arg(long = "access-key", value_name = "ID:SECRET[:STS_TOKEN]")]
    pub access_keys: Vec<String>,
    /// Bucket to serve, NAME@REGION[:FLAG]..., FLAG being `encrypted`, `v4only` (V1 refused,
    /// as for buckets created since September 2025) or the bucket's storage class (`standard`,
    /// `ia`, `archive`, `coldarchive`, `deepcoldarchive`: the class of new objects without
    /// x-oss-storage-class) (repeatable) [default: ecs-preflight@cn-hangzhou].
    #[arg(long = "bucket", value_name = "NAME@REGION[:FLAG]...")]
    pub buckets: Vec<String>,
    /// Deny a RAM action, SERVICE:Action to every key or KEY_ID=SERVICE:Action to one (e.g.
    /// oss:GetBucketEncryption, LTAI-ro=ecs:DescribeImages, ram:GetRole; HeadObject needs
    /// oss:GetObject, the multipart steps oss:PutObject) (repeatable).
    #[arg(long = "deny", value_name = "[KEY_ID=]SERVICE:Action")]
    pub deny: Vec<String>,
    /// Also serve each bucket region on a port of its own, as oss-<region>.aliyuncs.com
    /// (ports after --listen's; printed as `endpoint oss <region>: URL`).
    #[arg(long)]
    pub region_endpoints: bool,
    /// Also serve ECS, RAM and STS on ports of their own (printed as `endpoint ecs: URL`, …).
    #[arg(long)]
    pub service_endpoints: bool,
    /// Refuse a V4 Authorization with an empty AdditionalHeaders (EC 0002-00000209), an empty
    /// entry (-210) or a header the request lacks (-211).
    #[arg(long)]
    pub strict_additional_headers: bool,
    /// The account is V4-only: every V1-signed OSS request is refused (EC 0002-00000080).
    /// This is the default; the flag is kept so existing command lines keep working.
    #[arg(long, conflicts_with = "allow_v1")]
    pub strict_v4_only: bool,
    /// Accept V1-signed OSS requests account-wide, as an account created before March 2025
    /// does (buckets marked `v4only` still refuse V1).
    #[arg(long = "allow-v1", conflicts_with = "strict")]
    pub allow_v1: bool,
    /// ECS/RAM/STS calls are served only on their own endpoints (hosts ecs.<region>.aliyuncs.com,
    /// ram.aliyuncs.com, sts.aliyuncs.com or the --service-endpoints ports); on an OSS
    /// endpoint they get OSS's refusal.
    #[arg(long)]
    pub strict_service_endpoints: bool,
    /// Every strict behaviour above.
    #[arg(long)]
    pub strict: bool,
    /// How long a RestoreObject takes, in seconds [default: 2].
    #[arg(long, value_name = "SECONDS")]
    pub restore_seconds: Option<f64>,
    /// Storage class of new objects: Standard, IA, Archive, ColdArchive, DeepColdArchive
    /// [default: Standard].
    #[arg(long, value_name = "CLASS")]
    pub storage_class: Option<String>,
    /// Pretend the RAM role AliyunECSImageImportDefaultRole does not exist.
    #[arg(long)]
    pub no_import_role: bool,
    /// How long an import task takes, in seconds [default: 5].
    #[arg(long, value_name = "SECONDS")]
    pub task_seconds: Option<f64>,
    /// ImportImage disk-size rules: classic (5-500 / 5-1000 GiB) or current (1-2048 GiB)
    /// [default: classic].
    #[arg(long, value_name = "PROFILE")]
    pub limits: Option<String>,
    /// Import tasks fail (task Failed, image CreateFailed).
    #[arg(long)]
    pub fail_import: bool,
    /// Share (0-1) of UploadPart calls answered 500/503.
    #[arg(long, value_name = "RATE")]
    pub fault_upload_part_error_rate: Option<f64>,
    /// Share (0-1) of UploadPart calls whose connection is reset mid-body.
    #[arg(long, value_name = "RATE")]
    pub fault_upload_part_reset_rate: Option<f64>,
    /// Bytes read before a reset [default: 65536].
    #[arg(long, value_name = "BYTES")]
    pub fault_reset_after_bytes: Option<u64>,
    /// Share (0-1) of signed OSS requests answered RequestTimeTooSkewed.
    #[arg(long, value_name = "RATE")]
    pub fault_time_skew_rate: Option<f64>,
    /// Delay added before every OSS/ECS/RAM response, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub fault_delay_ms: Option<u64>,
    /// Bandwidth cap for request and response bodies, bytes per second (0 = unlimited).
    #[arg(long, value_name = "BYTES_PER_SEC")]
    pub fault_bandwidth: Option<u64>,
    /// Seed of the fault decisions (same seed, same failing calls) [default: 0].
    #[arg(long, value_name = "N")]
    pub fault_seed: Option<u64>,
}

/// Builds the emulator configuration from the file (if any) and the flags.
pub fn build_config(args: &EmulatorArgs) -> anyhow::Result<Config> {
    let mut cfg = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(d) = &args.data {
        cfg.data_dir = d.clone();
    }
    if !args.access_keys.is_empty() {
        cfg.access_keys = args
            .access_keys
            .iter()
            .map(|s| s.parse::<AccessKey>())
            .collect::<Result<_, _>>()?;
    }
    if !args.buckets.is_empty() {
        cfg.buckets = args
            .buckets
            .iter()
            .map(|s| s.parse::<BucketConfig>())
            .collect::<Result<_, _>>()?;
    }
    if !args.deny.is_empty() && cfg.access_keys.is_empty() {
        cfg.access_keys.push(AccessKey::default_pair());
    }
    for d in &args.deny {
        match d.split_once('=') {
            Some((id, action)) => {
                let key = cfg
                    .access_keys
                    .iter_mut()
                    .find(|k| k.id == id)
                    .with_context(|| format!("--deny {d:?}: no access key {id:?} is configured"))?;
                key.deny.push(action.to_string());
            }
            None => cfg
                .access_keys
                .iter_mut()
                .for_each(|k| k.deny.push(d.clone())),
        }
    }
    if args.region_endpoints {
        cfg.region_endpoints = true;
    }
    if args.service_endpoints {
        cfg.service_endpoints = true;
    }
    if args.strict {
        cfg.strict = preflight_emulator::Strict::all();
    }
    if args.strict_additional_headers {
        cfg.strict.v4_additional_headers = true;
    }
    if args.strict_v4_only {
        cfg.strict.v4_only = true;
    }
    if args.allow_v1 {
        cfg.strict.v4_only = false;
    }
    if args.strict_service_endpoints {
        cfg.strict.service_endpoints = true;
    }
    if let Some(t) = args.restore_seconds {
        cfg.restore_seconds = t;
    }
    if let Some(s) = &args.storage_class {
        cfg.storage_class = s.parse::<StorageClass>()?;
    }
    if args.no_import_role {
        cfg.import_role = false;
    }
    if let Some(t) = args.task_seconds {
        cfg.task_seconds = t;
    }
    if let Some(l) = &args.limits {
        cfg.limits = l.parse::<LimitsProfile>()?;
    }
    let f = &mut cfg.faults;
    if args.fail_import {
        f.fail_import = true;
    }
    if let Some(v) = args.fault_upload_part_error_rate {
        f.upload_part_error_rate = v;
    }
    if let Some(v) = args.fault_upload_part_reset_rate {
        f.upload_part_reset_rate = v;
    }
    if let Some(v) = args.fault_reset_after_bytes {
        f.reset_after_bytes = v;
    }
    if let Some(v) = args.fault_time_skew_rate {
        f.time_skew_rate = v;
    }
    if let Some(v) = args.fault_delay_ms {
        f.delay_ms = v;
    }
    if let Some(v) = args.fault_bandwidth {
        f.bandwidth_bytes_per_sec = v;
    }
    if let Some(v) = args.fault_seed {
        f.seed = v;
    }
    Ok(cfg.normalized()?)
}

/// Signal handlers installed before `ready` is printed, so a Ctrl-C that follows `ready`
/// at once still stops the emulator cleanly instead of killing it.
struct StopSignals {
    #[cfg(unix)]
    unix: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let unix = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Some((int, term)),
                _ => None,
            };
            StopSignals { unix }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.unix {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// What the emulator prints before `ready`: its endpoints (the main one, then one line per
/// region or service port), the default key pair when in use, the buckets, data and admin.
fn startup_lines(emu: &preflight_emulator::Emulator, uses_default: bool) -> Vec<String> {
    let mut out = vec![format!("endpoint: {}", emu.endpoint())];
    for (label, url) in emu.extra_endpoints() {
        out.push(format!("endpoint {label}: {url}"));
    }
    if uses_default {
        out.push(format!("access key id: {DEFAULT_ACCESS_KEY_ID}"));
        out.push(format!("access key secret: {DEFAULT_ACCESS_KEY_SECRET}"));
        out.push("(documented local test key pair: it opens only this emulator)".to_string());
    }
    for b in &emu.config().buckets {
        let mut notes = Vec::new();
        if b.encrypted {
            notes.push("encrypted".to_string());
        }
        if b.v4_only {
            notes.push("V4 only".to_string());
        }
        if let Some(c) = b.storage_class {
            notes.push(c.as_str().to_string());
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        out.push(format!("bucket: {}@{}{notes}", b.name, b.region));
    }
    out.push(format!("data: {}", emu.config().data_dir.display()));
    out.push(format!("admin: {}/_emulator/counters", emu.endpoint()));
    out
}

/// Runs the emulator: prints `endpoint: …`, the key pair when the documented default is in use,
/// and `ready`; then serves until Ctrl-C (or SIGTERM) and shuts down cleanly.
pub fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    let cfg = build_config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let uses_default = cfg.uses_default_key();
        let emu = preflight_emulator::start(cfg)
            .await
            .context("cannot start the emulator")?;
        let stop = StopSignals::install();
        for line in startup_lines(&emu, uses_default) {
            println!("{line}");
        }
        println!("ready");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        stop.wait().await;
        println!("stopping");
        emu.shutdown().await;
        println!("stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    fn config(flags: &[&str]) -> anyhow::Result<Config> {
        let cmd = Cmd::try_parse_from(std::iter::once("emulator").chain(flags.iter().copied()))?;
        build_config(&cmd.args)
    }

    #[test]
    fn strictness_region_and_deny_flags() {
        let c = config(&[
            "--access-key",
            "LTAI-ro:secret",
            "--deny",
            "LTAI-ro=oss:GetBucketEncryption",
            "--deny",
            "LTAI-ro=ecs:DescribeImages",
            "--bucket",
            "new-b@cn-hangzhou:v4only:archive",
            "--region-endpoints",
            "--service-endpoints",
            "--strict-v4-only",
            "--restore-seconds",
            "0.5",
        ])
        .unwrap();
        assert!(c.access_keys[0].denies("oss:GetBucketEncryption"));
        assert!(c.access_keys[0].denies("ecs:DescribeImages"));
        assert!(c.buckets[0].v4_only);
        assert_eq!(c.buckets[0].storage_class, Some(StorageClass::Archive));
        assert!(c.region_endpoints && c.service_endpoints);
        assert!(c.strict.v4_only && c.strict.bucket_region);
        assert!(c.strict.v4_additional_headers && !c.strict.service_endpoints);
        assert!((c.restore_seconds - 0.5).abs() < f64::EPSILON);
        let all = config(&["--strict"]).unwrap();
        assert_eq!(all.strict, preflight_emulator::Strict::all());
        // V4-only is the default, as for an account created since March 2025.
        assert!(config(&[]).unwrap().strict.v4_only);
        let old_account = config(&["--allow-v1"]).unwrap();
        assert!(!old_account.strict.v4_only);
        assert!(old_account.strict.v4_additional_headers && old_account.strict.bucket_region);
        assert!(config(&["--allow-v1", "--strict-v4-only"]).is_err());
        assert!(config(&["--allow-v1", "--strict"]).is_err());
        assert!(config(&["--deny", "nobody=oss:GetObject"]).is_err());
        let every = config(&["--deny", "oss:GetObject"]).unwrap();
        assert!(every.access_keys[0].denies("oss:GetObject"));
        assert!(config(&["--deny", "GetObject"]).is_err());
        assert!(config(&["--bucket", "b-b@cn-hangzhou:nonsense"]).is_err());
    }

    #[test]
    fn startup_prints_one_endpoint_line_per_region_and_service() {
        let dir = std::env::temp_dir().join(format!("emu-cmd-{}", std::process::id()));
        let mut cfg = config(&[
            "--listen",
            "127.0.0.1:0",
            "--bucket",
            "hz-b@cn-hangzhou:v4only",
            "--bucket",
            "bj-b@cn-beijing:archive",
            "--region-endpoints",
            "--service-endpoints",
        ])
        .unwrap();
        cfg.data_dir = dir.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let lines = rt.block_on(async {
            let emu = preflight_emulator::start(cfg).await.unwrap();
            let lines = startup_lines(&emu, false);
            emu.shutdown().await;
            lines
        });
        let _ = std::fs::remove_dir_all(&dir);
        let labels: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("endpoint"))
            .filter_map(|l| l.split_once(": http://127.0.0.1:").map(|(label, _)| label))
            .collect();
        assert_eq!(
            labels,
            [
                "",
                " oss cn-beijing",
                " oss cn-hangzhou",
                " ecs",
                " ram",
                " sts"
            ],
            "{lines:?}"
        );
        assert!(lines.contains(&"bucket: hz-b@cn-hangzhou (V4 only)".to_string()));
        assert!(lines.contains(&"bucket: bj-b@cn-beijing (Archive)".to_string()));
    }
}
