//! `ecs-preflight emulator`: run the local OSS + ECS + RAM emulator until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use preflight_emulator::launch::{startup_lines, Overrides, StopSignals};

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

impl EmulatorArgs {
    /// The flags as the emulator's settings over its configuration file.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            listen: self.listen,
            data_dir: self.data.clone(),
            access_keys: self.access_keys.clone(),
            buckets: self.buckets.clone(),
            deny: self.deny.clone(),
            region_endpoints: self.region_endpoints,
            service_endpoints: self.service_endpoints,
            strict_additional_headers: self.strict_additional_headers,
            strict_v4_only: self.strict_v4_only,
            allow_v1: self.allow_v1,
            strict_service_endpoints: self.strict_service_endpoints,
            strict: self.strict,
            restore_seconds: self.restore_seconds,
            storage_class: self.storage_class.clone(),
            no_import_role: self.no_import_role,
            task_seconds: self.task_seconds,
            limits: self.limits.clone(),
            fail_import: self.fail_import,
            fault_upload_part_error_rate: self.fault_upload_part_error_rate,
            fault_upload_part_reset_rate: self.fault_upload_part_reset_rate,
            fault_reset_after_bytes: self.fault_reset_after_bytes,
            fault_time_skew_rate: self.fault_time_skew_rate,
            fault_delay_ms: self.fault_delay_ms,
            fault_bandwidth: self.fault_bandwidth,
            fault_seed: self.fault_seed,
        }
    }
}

/// Runs the emulator: prints `endpoint: …`, the key pair when the documented default is in use,
/// and `ready`; then serves until Ctrl-C (or SIGTERM) and shuts down cleanly.
pub fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    let cfg = args.overrides().config()?;
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

    /// Every flag reaches its setting (the settings themselves are the emulator's tests).
    #[test]
    fn flags_map_to_the_settings() {
        let cmd = Cmd::try_parse_from([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "d",
            "--config",
            "c.toml",
            "--access-key",
            "k:s",
            "--bucket",
            "b-b@cn-hangzhou",
            "--deny",
            "oss:GetObject",
            "--region-endpoints",
            "--service-endpoints",
            "--strict-additional-headers",
            "--strict-v4-only",
            "--strict-service-endpoints",
            "--strict",
            "--restore-seconds",
            "1",
            "--storage-class",
            "IA",
            "--no-import-role",
            "--task-seconds",
            "2",
            "--limits",
            "current",
            "--fail-import",
            "--fault-upload-part-error-rate",
            "0.1",
            "--fault-upload-part-reset-rate",
            "0.2",
            "--fault-reset-after-bytes",
            "3",
            "--fault-time-skew-rate",
            "0.3",
            "--fault-delay-ms",
            "4",
            "--fault-bandwidth",
            "5",
            "--fault-seed",
            "6",
        ])
        .unwrap();
        let o = cmd.args.overrides();
        assert_eq!(
            o,
            Overrides {
                config_file: Some("c.toml".into()),
                listen: Some("127.0.0.1:0".parse().unwrap()),
                data_dir: Some("d".into()),
                access_keys: vec!["k:s".into()],
                buckets: vec!["b-b@cn-hangzhou".into()],
                deny: vec!["oss:GetObject".into()],
                region_endpoints: true,
                service_endpoints: true,
                strict_additional_headers: true,
                strict_v4_only: true,
                allow_v1: false,
                strict_service_endpoints: true,
                strict: true,
                restore_seconds: Some(1.0),
                storage_class: Some("IA".into()),
                no_import_role: true,
                task_seconds: Some(2.0),
                limits: Some("current".into()),
                fail_import: true,
                fault_upload_part_error_rate: Some(0.1),
                fault_upload_part_reset_rate: Some(0.2),
                fault_reset_after_bytes: Some(3),
                fault_time_skew_rate: Some(0.3),
                fault_delay_ms: Some(4),
                fault_bandwidth: Some(5),
                fault_seed: Some(6),
            }
        );
        assert!(Cmd::try_parse_from(["emulator", "--allow-v1", "--strict"]).is_err());
        assert!(Cmd::try_parse_from(["emulator", "--allow-v1", "--strict-v4-only"]).is_err());
        let v1 = Cmd::try_parse_from(["emulator", "--allow-v1"]).unwrap();
        assert!(v1.args.overrides().allow_v1);
    }
}
