//! [`PipelineBuilder`]: the settings of a run, checked once by [`PipelineBuilder::build`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use preflight_aliyun::{ChainOptions, CredentialProvider};
use preflight_ecs as ecs;
use preflight_oss::SignatureVersion;

use crate::events::EventFn;
use crate::{fleet, Gates};
use crate::{
    ConvertMode, Endpoints, Event, ImportParams, Pipeline, PipelineError, Result, UploadOptions,
    DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT,
};

/// Builds a [`Pipeline`]. Only [`system_disk`](Self::system_disk), [`region`](Self::region)
/// and [`bucket`](Self::bucket) are required.
#[derive(Default)]
pub struct PipelineBuilder {
    system_disk: Option<PathBuf>,
    data_disks: Vec<PathBuf>,
    params: ImportParams,
    region: Option<String>,
    bucket: Option<String>,
    endpoints: Endpoints,
    credentials: Option<Arc<CredentialProvider>>,
    allow: Vec<String>,
    delete_objects_after: bool,
    upload: Option<UploadOptions>,
    convert: ConvertMode,
    poll_interval: Option<Duration>,
    timeout: Option<Duration>,
    oss_signature: SignatureVersion,
    rpc_signature: ecs::SignatureMethod,
    on_event: Option<EventFn>,
    gates: Gates,
    fleet: fleet::FleetPlan,
}

impl PipelineBuilder {
    /// The OSS signature of every OSS request, the bucket probes included. Default V4
    /// (OSS4-HMAC-SHA256, with the run's region); V1 only for old endpoints that need it
    /// (OSS refuses V1 for accounts and buckets created since 2025).
    #[must_use]
    pub fn oss_signature(mut self, signature: SignatureVersion) -> Self {
        self.oss_signature = signature;
        self
    }

    /// The ECS and RAM RPC signature. Default HMAC-SHA1 (signature version 1.0).
    #[must_use]
    pub fn rpc_signature(mut self, signature: ecs::SignatureMethod) -> Self {
        self.rpc_signature = signature;
        self
    }

    /// Whether disks are re-packed as qcow2 on the way to OSS. Default [`ConvertMode::Auto`].
    #[must_use]
    pub fn convert(mut self, mode: ConvertMode) -> Self {
        self.convert = mode;
        self
    }

    /// The system disk image (the first `DiskDeviceMapping`).
    #[must_use]
    pub fn system_disk(mut self, path: impl Into<PathBuf>) -> Self {
        self.system_disk = Some(path.into());
        self
    }

    /// A data disk image; call once per disk, in order (at most 16).
    #[must_use]
    pub fn data_disk(mut self, path: impl Into<PathBuf>) -> Self {
        self.data_disks.push(path.into());
        self
    }

    /// The ImportImage parameters (image name, platform, tags, …). `region`, `bucket` and the
    /// number of disks are filled in from the builder; `disks[0]` may name the system disk's
    /// object key, format and size; a data disk's key defaults to its file name.
    #[must_use]
    pub fn params(mut self, params: ImportParams) -> Self {
        self.params = params;
        self
    }

    /// The region to import into (`cn-hangzhou`); the bucket must be in it.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The OSS bucket the disks are uploaded to.
    #[must_use]
    pub fn bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    /// OSS endpoint URL [default: `https://oss-REGION.aliyuncs.com`]. Only OSS uses it.
    #[must_use]
    pub fn oss_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.oss = Some(url.into());
        self
    }

    /// ECS endpoint URL [default: the official endpoint map's, `https://ecs.REGION.aliyuncs.com`
    /// for most regions]. Only ECS uses it.
    #[must_use]
    pub fn ecs_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.ecs = Some(url.into());
        self
    }

    /// RAM endpoint URL [default: `https://ram.aliyuncs.com`]. Only RAM uses it.
    #[must_use]
    pub fn ram_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.ram = Some(url.into());
        self
    }

    /// STS endpoint URL for AssumeRole credentials (when the builder makes the credential
    /// chain) [default: the profile's `sts_region`, else STS's global endpoint].
    #[must_use]
    pub fn sts_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.sts = Some(url.into());
        self
    }

    /// Every endpoint at once (see [`Endpoints`]); replaces the ones set before.
    #[must_use]
    pub fn endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// Every service at the local emulator's `url` (`ecs-preflight emulator`).
    #[must_use]
    pub fn emulator(mut self, url: &str) -> Self {
        self.endpoints = Endpoints::emulator(url);
        self
    }

    /// Credentials [default: the aliyun CLI chain — environment, OIDC, profile, instance role].
    #[must_use]
    pub fn credentials(mut self, provider: Arc<CredentialProvider>) -> Self {
        self.credentials = Some(provider);
        self
    }

    /// Accepts error findings with this code (e.g. `GUEST.NoOperatingSystem`): they are
    /// reported as [`Event::Finding`] and in [`Outcome::findings`](crate::Outcome::findings) but do not stop the run.
    #[must_use]
    pub fn allow(mut self, code: impl Into<String>) -> Self {
        self.allow.push(code.into());
        self
    }

    /// Deletes the uploaded objects once the image is `Available` (never before).
    #[must_use]
    pub fn delete_objects_after(mut self, delete: bool) -> Self {
        self.delete_objects_after = delete;
        self
    }

    /// Upload settings: part size, parallelism, checkpoint directory.
    #[must_use]
    pub fn upload_options(mut self, options: UploadOptions) -> Self {
        self.upload = Some(options);
        self
    }

    /// Time between two status queries of the import task [default: 10 s].
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// Longest wait for the image [default: 6 h]; the import goes on after it.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Slots shared with other pipelines (a batch): check and upload hold a work slot, the
    /// upload stage an upload slot, the import and wait stages an import slot. Default: no
    /// limit.
    #[must_use]
    pub fn gates(mut self, gates: Gates) -> Self {
        self.gates = gates;
        self
    }

    /// After the image is available, copy it to other regions and share it with other
    /// accounts ([`fleet`]). Checked by [`build`](Self::build) and, for the regions, against
    /// DescribeRegions in the check stage: a wrong region or account stops the run before
    /// any upload.
    #[must_use]
    pub fn fleet(mut self, plan: fleet::FleetPlan) -> Self {
        self.fleet = plan;
        self
    }

    /// Observes progress. Called from the pipeline's task: keep it quick.
    #[must_use]
    pub fn on_event(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(f));
        self
    }

    /// Checks that the required settings are there and builds the clients.
    pub fn build(self) -> Result<Pipeline> {
        let system = self
            .system_disk
            .ok_or_else(|| PipelineError::Usage("a system disk image is required".into()))?;
        let region = nonempty(self.region.or(self.params.region.clone()), "region")?;
        let bucket = nonempty(self.bucket.or(self.params.bucket.clone()), "bucket")?;
        let mut fleet_plan = self.fleet;
        fleet_plan.validate(&region).map_err(PipelineError::Fleet)?;
        let mut disks = vec![system];
        disks.extend(self.data_disks);
        let mut params = self.params;
        params.region = Some(region.clone());
        params.bucket = Some(bucket.clone());
        params.disks.resize(disks.len(), Default::default());
        let objects_given = params.disks.iter().map(|d| d.object.is_some()).collect();
        for (i, d) in params.disks.iter_mut().enumerate() {
            if d.bucket.is_none() {
                d.bucket = Some(bucket.clone());
            }
            if d.object.is_none() {
                d.object = disks[i]
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string);
            }
        }
        let credentials = self.credentials.unwrap_or_else(|| {
            Arc::new(CredentialProvider::new(ChainOptions {
                sts_endpoint: self.endpoints.sts.clone(),
                ..ChainOptions::default()
            }))
        });
        let mut cfg = self.endpoints.ecs_config(&region);
        cfg.signature = self.rpc_signature;
        let ecs =
            ecs::Client::new(cfg, credentials.clone()).map_err(|source| PipelineError::Ecs {
                context: "cannot create the ECS client".into(),
                source: Box::new(source),
            })?;
        let reached = Arc::new(crate::oneshot::Reached::default());
        let seen = reached.clone();
        let on_event = self.on_event.unwrap_or_else(|| Arc::new(|_: &Event| {}));
        Ok(Pipeline {
            disks,
            params,
            region,
            bucket,
            endpoints: self.endpoints,
            credentials,
            ecs,
            allow: self.allow,
            delete_objects_after: self.delete_objects_after,
            upload: self.upload.unwrap_or_default(),
            convert: self.convert,
            objects_given,
            poll_interval: self.poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL),
            timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
            oss_signature: self.oss_signature,
            rpc_signature: self.rpc_signature,
            on_event: Arc::new(move |e: &Event| {
                seen.observe(e);
                on_event(e);
            }),
            gates: self.gates,
            fleet: fleet_plan,
            reached,
        })
    }
}

fn nonempty(v: Option<String>, what: &str) -> Result<String> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(PipelineError::Usage(format!("the {what} is required"))),
    }
}
