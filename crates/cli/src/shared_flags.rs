//! Flags several commands share, declared once so they read and mean the same in every command.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use preflight_aliyun::{ChainOptions, CredentialProvider};
use preflight_ecs::SignatureMethod;
use preflight_oss::upload::{self, UploadOptions};
use preflight_oss::SignatureVersion;

use crate::import_cmd::parse_duration;
use crate::OutputFormat;

/// How a disk is sent to OSS (`upload`, `upload-and-import`, `batch`). The parts in flight are
/// not here: `batch` spells that flag `--upload-parallel`, as its `--parallel` counts images.
#[derive(clap::Args, Debug)]
pub struct UploadFlags {
    /// Part size, with units (8MiB, 1GiB) [default: 32MiB, raised to keep ≤ 10,000 parts].
    #[arg(long, value_name = "SIZE", value_parser = upload::parse_size)]
    pub part_size: Option<u64>,

    /// Files smaller than this go in one PUT [default: 100MiB; at most 5GiB, OSS's largest PUT].
    #[arg(long, value_name = "SIZE", value_parser = upload::parse_threshold)]
    pub multipart_threshold: Option<u64>,

    /// Send Content-MD5 with every part, so OSS refuses a damaged part before storing it
    /// (one more hash of every byte). The per-part and whole-object CRC-64 checks are always on.
    #[arg(long)]
    pub content_md5: bool,

    /// Most bytes per second sent, across all parts in flight (in `batch`, of all images
    /// uploading at once): 512K, 10M, 1G [default: no limit].
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = upload::parse_rate)]
    pub max_upload_rate: Option<u64>,

    /// Where resume checkpoints live [default: ~/.cache/ecs-preflight/uploads].
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,

    /// Upload even when OSS already has an identical object (same size and CRC-64) at the key.
    #[arg(long)]
    pub force: bool,

    /// OSS signature version of every OSS request (V1 only for old endpoints).
    #[arg(long, value_enum, default_value_t = SignatureVersion::V4)]
    pub signature_version: SignatureVersion,
}

impl UploadFlags {
    /// The single-PUT limit, defaulted.
    pub fn multipart_threshold(&self) -> u64 {
        self.multipart_threshold
            .unwrap_or(upload::DEFAULT_MULTIPART_THRESHOLD)
    }

    /// Where resume checkpoints live, defaulted.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.checkpoint_dir
            .clone()
            .unwrap_or_else(upload::checkpoint::default_dir)
    }

    /// The uploader's options, with `parallel` parts in flight.
    pub fn options(&self, parallel: usize) -> UploadOptions {
        UploadOptions {
            part_size: self.part_size,
            parallel,
            multipart_threshold: self.multipart_threshold(),
            checkpoint_dir: self.checkpoint_dir(),
            skip_identical: !self.force,
            content_md5: self.content_md5,
            // One limiter: every image of a batch clones these options and shares it.
            max_upload_rate: self.max_upload_rate.map(upload::RateLimiter::shared),
        }
    }
}

/// How long to follow an import task, and how often to ask (`import`, `wait`,
/// `upload-and-import`, `batch`).
#[derive(clap::Args, Debug)]
pub struct WaitFlags {
    /// Longest wait for the image, e.g. 90s, 30m, 6h. The import goes on after it.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Time between two status queries of an import task, e.g. 2s, 30s.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub poll_interval: Duration,
}

/// Whose credentials a cloud command uses (`upload`, `import`, `wait`, `upload-and-import`,
/// `batch`).
#[derive(clap::Args, Debug)]
pub struct ProfileFlag {
    /// aliyun CLI profile in ~/.aliyun/config.json to take credentials from [default:
    /// ALIBABA_CLOUD_PROFILE, else the config's current profile].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

impl ProfileFlag {
    /// The credential chain (environment, OIDC, this profile, instance role), with STS at
    /// `sts_endpoint` when given.
    pub fn credentials(&self, sts_endpoint: Option<String>) -> Arc<CredentialProvider> {
        Arc::new(CredentialProvider::new(ChainOptions {
            profile: self.profile.clone(),
            sts_endpoint,
            ..ChainOptions::default()
        }))
    }
}

/// How a command prints its result (`upload`, `import`, `wait`, `upload-and-import`, `batch`).
#[derive(clap::Args, Debug)]
pub struct OutputFlag {
    /// Output format of the result.
    #[arg(id = "output", long = "output", short = 'o', value_name = "OUTPUT", value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// The RPC signature of the ECS and RAM calls (`import`, `upload-and-import`, `batch`).
#[derive(clap::Args, Debug)]
pub struct RpcSignatureFlag {
    /// ECS and RAM RPC signature.
    #[arg(long, value_enum, default_value_t = SignatureMethod::HmacSha1)]
    pub signature: SignatureMethod,
}

/// `--quiet`, one meaning in every command that has it (`check`, `upload`, `import`, `wait`,
/// `upload-and-import`, `batch`), as `qemu-img -q` and `docker -q` users expect: no progress
/// bars and no notes on stderr; errors are still printed, and stdout still carries the result
/// a script needs.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct QuietFlag {
    /// No progress and no notes; errors are still printed. The result still is: the JSON
    /// with --output json; in human form the images made (import, wait, upload-and-import,
    /// batch), nothing where the exit code is the result (check, upload).
    #[arg(id = "quiet", long = "quiet", short = 'q')]
    pub on: bool,
}
