//! Starting the emulator as a program does: settings given one by one (a command line's
//! flags) over a TOML file over the defaults ([`Overrides`]), the lines printed before
//! `ready` ([`startup_lines`]), and the signals that stop it ([`StopSignals`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), preflight_emulator::Error> {
//! use preflight_emulator::launch::{startup_lines, Overrides, StopSignals};
//!
//! let overrides = Overrides {
//!     buckets: vec!["images@cn-hangzhou".into()],
//!     deny: vec!["oss:GetBucketEncryption".into()],
//!     ..Overrides::default()
//! };
//! let config = overrides.config()?;
//! let uses_default = config.uses_default_key();
//! let emu = preflight_emulator::start(config).await?;
//! let stop = StopSignals::install();
//! for line in startup_lines(&emu, uses_default) {
//!     println!("{line}");
//! }
//! stop.wait().await;
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{
    AccessKey, BucketConfig, Config, LimitsProfile, StorageClass, Strict, DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
};
use crate::{Emulator, Error};

/// Settings that win over the configuration file's (and the defaults): `Some`, `true` and a
/// non-empty list override; `None`, `false` and an empty list leave the file's value.
/// Values are the command line's text, parsed and checked by [`Overrides::config`].
/// With the `clap` feature these are the flags of `ecs-preflight emulator` (the doc comments
/// are their `--help`).
// The field docs are also `ecs-preflight emulator --help`, written for a terminal:
// `[default: …]`, `[:FLAG]` and `<region>` are help text, not links or HTML.
#[allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[cfg_attr(
    feature = "clap",
    command(after_help = "Examples:\n  \
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
    POST /_emulator/counters/reset, GET|POST /_emulator/faults, GET /_emulator/health.")
)]
pub struct Overrides {
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:9090].
    #[cfg_attr(feature = "clap", arg(long, value_name = "ADDR"))]
    pub listen: Option<SocketAddr>,
    /// Directory for objects, uploads and ECS state; created if missing [default: ./emu-data].
    #[cfg_attr(feature = "clap", arg(long = "data", value_name = "DIR"))]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (same settings as the flags; see the emulator crate docs).
    #[cfg_attr(feature = "clap", arg(long = "config", value_name = "FILE"))]
    pub config_file: Option<PathBuf>,
    /// Accepted credential ID:SECRET or ID:SECRET:STS_TOKEN (repeatable).
    #[cfg_attr(
        feature = "clap",
        arg(long = "access-key", value_name = "ID:SECRET[:STS_TOKEN]")
    )]
    pub access_keys: Vec<String>,
    /// Bucket to serve, NAME@REGION[:FLAG]..., FLAG being `encrypted`, `v4only` (V1 refused,
    /// as for buckets created since September 2025) or the bucket's storage class (`standard`,
    /// `ia`, `archive`, `coldarchive`, `deepcoldarchive`: the class of new objects without
    /// x-oss-storage-class) (repeatable) [default: ecs-preflight@cn-hangzhou].
    #[cfg_attr(
        feature = "clap",
        arg(long = "bucket", value_name = "NAME@REGION[:FLAG]...")
    )]
    pub buckets: Vec<String>,
    /// Deny a RAM action, SERVICE:Action to every key or KEY_ID=SERVICE:Action to one (e.g.
    /// oss:GetBucketEncryption, LTAI-ro=ecs:DescribeImages, ram:GetRole; HeadObject needs
    /// oss:GetObject, the multipart steps oss:PutObject) (repeatable).
    #[cfg_attr(
        feature = "clap",
        arg(long = "deny", value_name = "[KEY_ID=]SERVICE:Action")
    )]
    pub deny: Vec<String>,
    /// Also serve each bucket region on a port of its own, as oss-<region>.aliyuncs.com
    /// (ports after --listen's; printed as `endpoint oss <region>: URL`).
    #[cfg_attr(feature = "clap", arg(long))]
    pub region_endpoints: bool,
    /// Also serve ECS, RAM and STS on ports of their own (printed as `endpoint ecs: URL`, …).
    #[cfg_attr(feature = "clap", arg(long))]
    pub service_endpoints: bool,
    /// Refuse a V4 Authorization with an empty AdditionalHeaders (EC 0002-00000209), an empty
    /// entry (-210) or a header the request lacks (-211).
    #[cfg_attr(feature = "clap", arg(long))]
    pub strict_additional_headers: bool,
    /// The account is V4-only: every V1-signed OSS request is refused (EC 0002-00000080).
    /// This is the default; the flag is kept so existing command lines keep working.
    #[cfg_attr(feature = "clap", arg(long, conflicts_with = "allow_v1"))]
    pub strict_v4_only: bool,
    /// Accept V1-signed OSS requests account-wide, as an account created before March 2025
    /// does (buckets marked `v4only` still refuse V1).
    #[cfg_attr(feature = "clap", arg(long = "allow-v1", conflicts_with = "strict"))]
    pub allow_v1: bool,
    /// ECS/RAM/STS calls are served only on their own endpoints (hosts ecs.<region>.aliyuncs.com,
    /// ram.aliyuncs.com, sts.aliyuncs.com or the --service-endpoints ports); on an OSS
    /// endpoint they get OSS's refusal.
    #[cfg_attr(feature = "clap", arg(long))]
    pub strict_service_endpoints: bool,
    /// Every strict behaviour above.
    #[cfg_attr(feature = "clap", arg(long))]
    pub strict: bool,
    /// How long a RestoreObject takes, in seconds [default: 2].
    #[cfg_attr(feature = "clap", arg(long, value_name = "SECONDS"))]
    pub restore_seconds: Option<f64>,
    /// Storage class of new objects: Standard, IA, Archive, ColdArchive, DeepColdArchive
    /// [default: Standard].
    #[cfg_attr(feature = "clap", arg(long, value_name = "CLASS"))]
    pub storage_class: Option<String>,
    /// Pretend the RAM role AliyunECSImageImportDefaultRole does not exist.
    #[cfg_attr(feature = "clap", arg(long))]
    pub no_import_role: bool,
    /// How long an import task takes, in seconds [default: 5].
    #[cfg_attr(feature = "clap", arg(long, value_name = "SECONDS"))]
    pub task_seconds: Option<f64>,
    /// ImportImage disk-size rules: classic (5-500 / 5-1000 GiB) or current (1-2048 GiB)
    /// [default: classic].
    #[cfg_attr(feature = "clap", arg(long, value_name = "PROFILE"))]
    pub limits: Option<String>,
    /// Import tasks fail (task Failed, image CreateFailed).
    #[cfg_attr(feature = "clap", arg(long))]
    pub fail_import: bool,
    /// Share (0-1) of UploadPart calls answered 500/503.
    #[cfg_attr(feature = "clap", arg(long, value_name = "RATE"))]
    pub fault_upload_part_error_rate: Option<f64>,
    /// Share (0-1) of UploadPart calls whose connection is reset mid-body.
    #[cfg_attr(feature = "clap", arg(long, value_name = "RATE"))]
    pub fault_upload_part_reset_rate: Option<f64>,
    /// Bytes read before a reset [default: 65536].
    #[cfg_attr(feature = "clap", arg(long, value_name = "BYTES"))]
    pub fault_reset_after_bytes: Option<u64>,
    /// Share (0-1) of signed OSS requests answered RequestTimeTooSkewed.
    #[cfg_attr(feature = "clap", arg(long, value_name = "RATE"))]
    pub fault_time_skew_rate: Option<f64>,
    /// Delay added before every OSS/ECS/RAM response, in milliseconds.
    #[cfg_attr(feature = "clap", arg(long, value_name = "MS"))]
    pub fault_delay_ms: Option<u64>,
    /// Bandwidth cap for request and response bodies, bytes per second (0 = unlimited).
    #[cfg_attr(feature = "clap", arg(long, value_name = "BYTES_PER_SEC"))]
    pub fault_bandwidth: Option<u64>,
    /// Seed of the fault decisions (same seed, same failing calls) [default: 0].
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub fault_seed: Option<u64>,
}

impl Overrides {
    /// The configuration: the file (if any), then these settings, then
    /// [`Config::normalized`]. Every malformed value is an [`Error`] naming it.
    pub fn config(&self) -> Result<Config, Error> {
        if self.allow_v1 && (self.strict_v4_only || self.strict) {
            return Err(Error::ConfigParse(
                "allow_v1 contradicts strict_v4_only and strict (both refuse V1)".to_string(),
            ));
        }
        let mut cfg = match &self.config_file {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(l) = self.listen {
            cfg.listen = l;
        }
        if let Some(d) = &self.data_dir {
            cfg.data_dir.clone_from(d);
        }
        if !self.access_keys.is_empty() {
            cfg.access_keys = parse_all(&self.access_keys)?;
        }
        if !self.buckets.is_empty() {
            cfg.buckets = parse_all::<BucketConfig>(&self.buckets)?;
        }
        self.apply_denies(&mut cfg)?;
        cfg.region_endpoints |= self.region_endpoints;
        cfg.service_endpoints |= self.service_endpoints;
        if self.strict {
            cfg.strict = Strict::all();
        }
        cfg.strict.v4_additional_headers |= self.strict_additional_headers;
        cfg.strict.v4_only |= self.strict_v4_only;
        if self.allow_v1 {
            cfg.strict.v4_only = false;
        }
        cfg.strict.service_endpoints |= self.strict_service_endpoints;
        if let Some(t) = self.restore_seconds {
            cfg.restore_seconds = t;
        }
        if let Some(s) = &self.storage_class {
            cfg.storage_class = s.parse::<StorageClass>()?;
        }
        if self.no_import_role {
            cfg.import_role = false;
        }
        if let Some(t) = self.task_seconds {
            cfg.task_seconds = t;
        }
        if let Some(l) = &self.limits {
            cfg.limits = l.parse::<LimitsProfile>()?;
        }
        let f = &mut cfg.faults;
        f.fail_import |= self.fail_import;
        set(
            &mut f.upload_part_error_rate,
            self.fault_upload_part_error_rate,
        );
        set(
            &mut f.upload_part_reset_rate,
            self.fault_upload_part_reset_rate,
        );
        set(&mut f.reset_after_bytes, self.fault_reset_after_bytes);
        set(&mut f.time_skew_rate, self.fault_time_skew_rate);
        set(&mut f.delay_ms, self.fault_delay_ms);
        set(&mut f.bandwidth_bytes_per_sec, self.fault_bandwidth);
        set(&mut f.seed, self.fault_seed);
        cfg.normalized()
    }

    /// `SERVICE:Action` goes to every key (the default pair when none is configured),
    /// `KEY_ID=SERVICE:Action` to that key, which must be configured.
    fn apply_denies(&self, cfg: &mut Config) -> Result<(), Error> {
        if !self.deny.is_empty() && cfg.access_keys.is_empty() {
            cfg.access_keys.push(AccessKey::default_pair());
        }
        for d in &self.deny {
            match d.split_once('=') {
                Some((id, action)) => {
                    let key = cfg
                        .access_keys
                        .iter_mut()
                        .find(|k| k.id == id)
                        .ok_or_else(|| {
                            Error::ConfigParse(format!(
                                "--deny {d:?}: no access key {id:?} is configured"
                            ))
                        })?;
                    key.deny.push(action.to_string());
                }
                None => cfg
                    .access_keys
                    .iter_mut()
                    .for_each(|k| k.deny.push(d.clone())),
            }
        }
        Ok(())
    }
}

fn parse_all<T: std::str::FromStr<Err = Error>>(items: &[String]) -> Result<Vec<T>, Error> {
    items.iter().map(|s| s.parse::<T>()).collect()
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// What a running emulator prints before `ready`: its endpoints (the main one, then one line
/// per region or service port), the default key pair when `uses_default_key` (take it from
/// [`Config::uses_default_key`] before [`start`](crate::start)), the buckets, the data
/// directory and the admin endpoint.
pub fn startup_lines(emu: &Emulator, uses_default_key: bool) -> Vec<String> {
    let mut out = vec![format!("endpoint: {}", emu.endpoint())];
    for (label, url) in emu.extra_endpoints() {
        out.push(format!("endpoint {label}: {url}"));
    }
    if uses_default_key {
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

/// Ctrl-C and SIGTERM handlers. Install them before printing `ready`, so a signal that
/// follows `ready` at once still stops the emulator cleanly instead of killing it.
pub struct StopSignals {
    #[cfg(unix)]
    unix: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    /// Installs the handlers (inside a tokio runtime).
    pub fn install() -> Self {
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

    /// Waits for Ctrl-C or SIGTERM.
    pub async fn wait(self) {
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

/// Runs an emulator as `ecs-preflight emulator` does: says its [`startup_lines`], then
/// `ready` once the stop signals are installed, serves until Ctrl-C or SIGTERM, then says
/// `stopping` and `stopped` around a clean shutdown. `say` gets every line (the caller
/// prints and flushes them).
pub async fn serve(config: Config, mut say: impl FnMut(&str)) -> Result<(), Error> {
    let uses_default = config.uses_default_key();
    let emu = crate::start(config).await?;
    let stop = StopSignals::install();
    for line in startup_lines(&emu, uses_default) {
        say(&line);
    }
    say("ready");
    stop.wait().await;
    say("stopping");
    emu.shutdown().await;
    say("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(f: impl FnOnce(&mut Overrides)) -> Result<Config, Error> {
        let mut o = Overrides::default();
        f(&mut o);
        o.config()
    }

    #[test]
    fn strictness_region_and_deny_settings() {
        let c = config(|o| {
            o.access_keys = vec!["LTAI-ro:secret".into()];
            o.deny = vec![
                "LTAI-ro=oss:GetBucketEncryption".into(),
                "LTAI-ro=ecs:DescribeImages".into(),
            ];
            o.buckets = vec!["new-b@cn-hangzhou:v4only:archive".into()];
            o.region_endpoints = true;
            o.service_endpoints = true;
            o.strict_v4_only = true;
            o.restore_seconds = Some(0.5);
        })
        .unwrap();
        assert!(c.access_keys[0].denies("oss:GetBucketEncryption"));
        assert!(c.access_keys[0].denies("ecs:DescribeImages"));
        assert!(c.buckets[0].v4_only);
        assert_eq!(c.buckets[0].storage_class, Some(StorageClass::Archive));
        assert!(c.region_endpoints && c.service_endpoints);
        assert!(c.strict.v4_only && c.strict.bucket_region);
        assert!(c.strict.v4_additional_headers && !c.strict.service_endpoints);
        assert!((c.restore_seconds - 0.5).abs() < f64::EPSILON);
        assert_eq!(config(|o| o.strict = true).unwrap().strict, Strict::all());
        // V4-only is the default, as for an account created since March 2025.
        assert!(config(|_| {}).unwrap().strict.v4_only);
        let old_account = config(|o| o.allow_v1 = true).unwrap();
        assert!(!old_account.strict.v4_only);
        assert!(old_account.strict.v4_additional_headers && old_account.strict.bucket_region);
        assert!(config(|o| {
            o.allow_v1 = true;
            o.strict = true;
        })
        .is_err());
        let e = config(|o| o.deny = vec!["nobody=oss:GetObject".into()]).unwrap_err();
        assert!(e.to_string().contains("\"nobody\""), "{e}");
        let every = config(|o| o.deny = vec!["oss:GetObject".into()]).unwrap();
        assert!(every.access_keys[0].denies("oss:GetObject"));
        assert!(config(|o| o.deny = vec!["GetObject".into()]).is_err());
        assert!(config(|o| o.buckets = vec!["b-b@cn-hangzhou:nonsense".into()]).is_err());
        assert!(config(|o| o.fault_upload_part_error_rate = Some(1.5)).is_err());
        assert!(config(|o| o.storage_class = Some("Frozen".into())).is_err());
        assert!(config(|o| o.limits = Some("huge".into())).is_err());
    }

    #[tokio::test]
    async fn startup_prints_one_endpoint_line_per_region_and_service() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(|o| {
            o.listen = Some("127.0.0.1:0".parse().unwrap());
            o.data_dir = Some(dir.path().to_path_buf());
            o.buckets = vec![
                "hz-b@cn-hangzhou:v4only".into(),
                "bj-b@cn-beijing:archive".into(),
            ];
            o.region_endpoints = true;
            o.service_endpoints = true;
        })
        .unwrap();
        let emu = crate::start(cfg).await.unwrap();
        let lines = startup_lines(&emu, false);
        emu.shutdown().await;
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
        assert!(!lines.iter().any(|l| l.starts_with("access key")));
    }
}

/// The `clap` feature's flags (the settings themselves are tested above).
#[cfg(all(test, feature = "clap"))]
mod flag_tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: Overrides,
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
        let o = cmd.args;
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
        assert!(v1.args.allow_v1);
    }
}
