//! The whole import of a VM disk image into Alibaba Cloud ECS, as a library.
//!
//! [`Pipeline`] runs the four stages `ecs-preflight upload-and-import` runs, without any CLI:
//!
//! 1. **check** — every disk is inspected (format, integrity, and the guest OS on the system
//!    disk unless [`ImportParams::skip_guest`]), the local ImportImage rules are evaluated, then
//!    the cloud rules (bucket exists and is in the region and unencrypted, the RAM role ECS
//!    needs exists, the image name is free). Any error finding stops the run before a byte is
//!    sent, unless its code was accepted with [`PipelineBuilder::allow`].
//! 2. **upload** — every disk goes to OSS with the resumable, CRC-64-verified uploader of
//!    `preflight-oss` (an interrupted run resumes from its checkpoint).
//! 3. **import** — one `ImportImage` with every disk in `DiskDeviceMapping`, and a
//!    `ClientToken` derived from the objects' ETags and the parameters, so a rerun returns the
//!    same image instead of creating a second one.
//! 4. **wait** — the task is polled until the image is `Available` (or the import failed);
//!    then, with [`PipelineBuilder::delete_objects_after`], the uploaded objects are deleted.
//!
//! Progress is reported as [`Event`]s to the closure given to [`PipelineBuilder::on_event`].
//! Cancellation: drop the future returned by [`Pipeline::run`] (e.g. in `tokio::select!`).
//! An upload stopped this way resumes on the next run; an import already started goes on in
//! the cloud — [`Pipeline::cancel_import`] stops it (the task id is in
//! [`Event::ImportStarted`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), preflight_pipeline::PipelineError> {
//! use preflight_pipeline::{Event, Pipeline};
//! use preflight_rules::ImportParams;
//!
//! let outcome = Pipeline::builder()
//!     .system_disk("web.qcow2")
//!     .data_disk("data.qcow2")
//!     .region("cn-hangzhou")
//!     .bucket("images")
//!     .params(ImportParams { image_name: Some("web-01".into()), ..Default::default() })
//!     .on_event(|e: &Event| eprintln!("{e:?}"))
//!     .build()?
//!     .run()
//!     .await?;
//! println!("{} {} {}", outcome.image_id, outcome.task_id, outcome.region);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod convert;
pub mod endpoints;
mod error;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use preflight_aliyun::{ChainOptions, CredentialProvider};
use preflight_ecs::{self as ecs, watch, ImportOptions, ImportOutcome, WaitOutcome};
use preflight_oss::upload;
use preflight_oss::{SignatureVersion, UploadEvent};
use preflight_rules::{
    evaluate, evaluate_cloud, BucketFacts, CloudFacts, DiskFacts, DiskRole, GuestFacts, Plan,
    ScopedFinding,
};
use serde::Serialize;

pub use convert::{prepare_upload, Conversion, ConvertMode, PreparedUpload};
pub use endpoints::{instance_region, Endpoints, OssNetwork};
pub use error::{PipelineError, Result};
pub use preflight_aliyun::CredentialProvider as Credentials;
pub use preflight_ecs::Progress as TaskProgress;
pub use preflight_ecs::SignatureMethod as RpcSignature;
pub use preflight_oss::{SignatureVersion as OssSignature, UploadOptions};
pub use preflight_rules::ImportParams;

/// The trust policy the import role needs (`sts:AssumeRole` by `ecs.aliyuncs.com`).
pub const TRUST_POLICY: &str = r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["ecs.aliyuncs.com"]}}],"Version":"1"}"#;
/// The system policy the import role needs (outside CloudBox).
pub const ROLE_POLICY: &str = preflight_rules::DEFAULT_ROLE_POLICY;
/// Default time between two status queries of the import task.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// Default longest wait for the import task.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// A stage of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Inspection and the local and cloud rules.
    Check,
    /// The uploads to OSS.
    Upload,
    /// `ImportImage`.
    Import,
    /// Polling the import task until the image is available.
    Wait,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Check => "check",
            Stage::Upload => "upload",
            Stage::Import => "import",
            Stage::Wait => "wait",
        })
    }
}

/// What the pipeline is doing, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A stage began.
    StageStarted(Stage),
    /// A stage ended successfully after `seconds`.
    StageFinished {
        /// The stage.
        stage: Stage,
        /// Its duration.
        seconds: f64,
    },
    /// Credentials were found (the source, never the secret).
    Credentials(String),
    /// A finding that does not stop the run: a warning, or an error accepted with `allow`.
    Finding {
        /// The finding.
        finding: ScopedFinding,
        /// True when it is an error the caller accepted.
        allowed: bool,
    },
    /// The map pass of a disk that may be sent as qcow2 scanned `bytes` more bytes.
    Mapping {
        /// Disk index (0 = system disk).
        disk: usize,
        /// Bytes scanned since the last event.
        bytes: u64,
    },
    /// A conversion to qcow2 was considered for one disk, and decided.
    Conversion {
        /// Disk index (0 = system disk).
        disk: usize,
        /// What the map pass found and whether the qcow2 is sent.
        conversion: Conversion,
    },
    /// The upload of one disk begins.
    UploadStarted {
        /// Disk index (0 = system disk).
        disk: usize,
        /// Local path.
        path: PathBuf,
        /// Object key.
        key: String,
        /// Bytes to send: the file's size, or the qcow2's when the disk is converted.
        size: u64,
    },
    /// Progress of one disk's upload (parts done, resume, verification).
    Upload {
        /// Disk index.
        disk: usize,
        /// What the uploader reported.
        event: UploadEvent,
    },
    /// One disk is uploaded and verified.
    UploadFinished {
        /// Disk index.
        disk: usize,
        /// The object's ETag.
        etag: String,
        /// Parts found on OSS from an earlier run and kept.
        parts_reused: u32,
    },
    /// `ImportImage` answered.
    ImportStarted {
        /// The image (`m-…`).
        image_id: String,
        /// The import task (`t-…`).
        task_id: String,
        /// True when an earlier run had already imported these objects (same ClientToken).
        reused: bool,
    },
    /// An observation of the import task that differs from the previous one.
    TaskProgress(TaskProgress),
    /// Something the user should know that is not a finding: advice (the internal endpoint
    /// on ECS), or a decision taken (a new ClientToken after a failed import).
    Note(String),
    /// An uploaded object was deleted after the image became available.
    ObjectDeleted {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
}

type EventFn = Arc<dyn Fn(&Event) + Send + Sync>;

/// Seconds spent in each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageSeconds {
    /// Inspection and rules.
    pub check: f64,
    /// Uploads.
    pub upload: f64,
    /// `ImportImage`.
    pub import: f64,
    /// Waiting for the image.
    pub wait: f64,
}

/// One uploaded disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadedDisk {
    /// Local path.
    pub path: PathBuf,
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC-64 (verified equal locally and on OSS), as a decimal string.
    pub crc64: String,
    /// ETag.
    pub etag: String,
    /// Parts sent in this run.
    pub parts_sent: u32,
    /// Parts kept from an earlier, interrupted run.
    pub parts_reused: u32,
    /// True when OSS already had this exact object and nothing was sent.
    pub already_there: bool,
    /// Format of the object (lowercase): `qcow2` when the disk was converted.
    pub format: String,
    /// The conversion considered for this disk, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion: Option<Conversion>,
}

/// The result of a successful run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The available image.
    pub image_id: String,
    /// The import task.
    pub task_id: String,
    /// The region.
    pub region: String,
    /// The ClientToken sent (the same for a rerun with the same objects and parameters).
    pub client_token: String,
    /// True when an earlier run had already imported these objects and this run got its image.
    pub reused: bool,
    /// Seconds spent in each stage.
    pub stage_seconds: StageSeconds,
    /// The ImportImage request that was sent.
    pub plan: Plan,
    /// The image as ECS describes it.
    pub image: ecs::Image,
    /// Each disk's upload.
    pub uploads: Vec<UploadedDisk>,
    /// Warnings, and the errors accepted with `allow`.
    pub findings: Vec<ScopedFinding>,
    /// True when the uploaded objects were deleted.
    pub objects_deleted: bool,
}

/// One disk a run would send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedUpload {
    /// Local path.
    pub path: PathBuf,
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Bytes that would be sent (the qcow2's size when the disk is converted).
    pub size: u64,
    /// Format of the object (lowercase).
    pub format: String,
    /// The conversion considered for this disk, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion: Option<Conversion>,
}

/// What [`Pipeline::dry_run`] found: every check passed; this is what a run would do.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// The region.
    pub region: String,
    /// The ImportImage request a run would send (its ClientToken comes from the uploaded
    /// objects' ETags, so it is absent here unless the caller gave one).
    pub plan: Plan,
    /// Each disk's upload.
    pub uploads: Vec<PlannedUpload>,
    /// Warnings, and the errors accepted with `allow`.
    pub findings: Vec<ScopedFinding>,
    /// An image an earlier run made from the same objects under this name, which a run
    /// would report instead of importing again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earlier_image: Option<String>,
}

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
    /// reported as [`Event::Finding`] and in [`Outcome::findings`] but do not stop the run.
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
            on_event: self.on_event.unwrap_or_else(|| Arc::new(|_: &Event| {})),
        })
    }
}

fn nonempty(v: Option<String>, what: &str) -> Result<String> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(PipelineError::Usage(format!("the {what} is required"))),
    }
}

/// The import of one image: built by [`Pipeline::builder`], started by [`Pipeline::run`].
pub struct Pipeline {
    disks: Vec<PathBuf>,
    params: ImportParams,
    region: String,
    bucket: String,
    endpoints: Endpoints,
    credentials: Arc<CredentialProvider>,
    ecs: ecs::Client,
    allow: Vec<String>,
    delete_objects_after: bool,
    upload: UploadOptions,
    convert: ConvertMode,
    /// Per disk: the caller named the object (its key is not ours to change).
    objects_given: Vec<bool>,
    poll_interval: Duration,
    timeout: Duration,
    oss_signature: SignatureVersion,
    on_event: EventFn,
}

/// The result of the check stage.
struct Checked {
    plan: Plan,
    findings: Vec<ScopedFinding>,
    own_earlier: Option<String>,
    prepared: Vec<PreparedUpload>,
}

impl Pipeline {
    /// A builder.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// The disk images, system disk first.
    pub fn disks(&self) -> &[PathBuf] {
        &self.disks
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    fn emit(&self, e: Event) {
        (self.on_event)(&e);
    }

    /// Runs every stage. Errors stop it at once: nothing is uploaded when the check fails,
    /// and `ImportImage` is not sent when an upload fails.
    pub async fn run(&self) -> Result<Outcome> {
        let mut secs = StageSeconds::default();

        let t = self.stage(Stage::Check);
        let checked = self.check().await?;
        secs.check = self.done(Stage::Check, t);
        let mut plan = checked.plan;

        let t = self.stage(Stage::Upload);
        let uploads = self.upload_all(&plan, checked.prepared).await?;
        secs.upload = self.done(Stage::Upload, t);

        let t = self.stage(Stage::Import);
        let etags: Vec<String> = uploads.iter().map(|u| u.etag.clone()).collect();
        let note = |m: String| self.emit(Event::Note(m));
        let started = match import_image_fresh(
            &self.ecs,
            &mut plan,
            &etags,
            &ImportOptions::default(),
            &note,
        )
        .await
        {
            Ok(ImportOutcome::Started(r)) => r,
            Ok(ImportOutcome::DryRunPassed { .. }) => {
                return Err(PipelineError::ImportRefused {
                    code: "DryRunOperation".into(),
                    message: "ImportImage answered as for a dry run".into(),
                })
            }
            Err(e @ ecs::Error::Api { .. }) => {
                return Err(PipelineError::ImportRefused {
                    code: e.code().unwrap_or_default().to_string(),
                    message: e.to_string(),
                })
            }
            Err(source) => {
                return Err(PipelineError::Ecs {
                    context: "ImportImage".into(),
                    source: Box::new(source),
                })
            }
        };
        let reused = checked.own_earlier.as_deref() == Some(started.image_id.as_str());
        self.emit(Event::ImportStarted {
            image_id: started.image_id.clone(),
            task_id: started.task_id.clone(),
            reused,
        });
        secs.import = self.done(Stage::Import, t);

        let t = self.stage(Stage::Wait);
        let waited = watch::wait(
            &self.ecs,
            &started.task_id,
            &started.image_id,
            self.poll_interval,
            self.timeout,
            |p| self.emit(Event::TaskProgress(p.clone())),
        )
        .await
        .map_err(|source| PipelineError::WaitFailed {
            image_id: started.image_id.clone(),
            task_id: started.task_id.clone(),
            source: Box::new(source),
        })?;
        let image = match waited {
            WaitOutcome::Available(image) => image,
            WaitOutcome::Failed { code, message } => {
                return Err(PipelineError::ImportFailed {
                    image_id: started.image_id,
                    task_id: started.task_id,
                    code,
                    message,
                })
            }
            WaitOutcome::TimedOut(progress) => {
                return Err(PipelineError::TimedOut {
                    image_id: started.image_id,
                    task_id: started.task_id,
                    progress: Box::new(progress),
                })
            }
        };
        let mut objects_deleted = false;
        if self.delete_objects_after {
            for u in &uploads {
                self.oss_client(self.oss_signature)?
                    .delete_object(&u.key)
                    .await
                    .map_err(|source| PipelineError::Oss {
                        context: format!(
                            "the image is available, but deleting oss://{}/{} failed",
                            u.bucket, u.key
                        ),
                        source: Box::new(source),
                    })?;
                self.emit(Event::ObjectDeleted {
                    bucket: u.bucket.clone(),
                    key: u.key.clone(),
                });
            }
            objects_deleted = true;
        }
        secs.wait = self.done(Stage::Wait, t);

        Ok(Outcome {
            image_id: image.image_id.clone(),
            task_id: started.task_id,
            region: self.region.clone(),
            client_token: plan.client_token.clone().unwrap_or_default(),
            reused,
            stage_seconds: secs,
            plan,
            image,
            uploads,
            findings: checked.findings,
            objects_deleted,
        })
    }

    /// Runs the check stage only: the local rules, guest inspection and the cloud-side
    /// rules (bucket region and encryption, the role, the image name). Uploads nothing and
    /// sends no `ImportImage`. Refusals are the same errors [`run`](Self::run) returns.
    pub async fn dry_run(&self) -> Result<DryRun> {
        let t = self.stage(Stage::Check);
        let checked = self.check().await?;
        self.done(Stage::Check, t);
        let mut uploads = Vec::with_capacity(self.disks.len());
        for (disk, (path, prepared)) in self.disks.iter().zip(&checked.prepared).enumerate() {
            let mapping = checked.plan.disk_device_mappings.get(disk);
            uploads.push(PlannedUpload {
                path: path.clone(),
                bucket: mapping
                    .and_then(|m| m.oss_bucket.clone())
                    .unwrap_or_else(|| self.bucket.clone()),
                key: mapping
                    .and_then(|m| m.oss_object.clone())
                    .unwrap_or_default(),
                size: prepared.source.size(),
                format: prepared.format.clone(),
                conversion: prepared.conversion.clone(),
            });
        }
        Ok(DryRun {
            region: self.region.clone(),
            plan: checked.plan,
            uploads,
            findings: checked.findings,
            earlier_image: checked.own_earlier,
        })
    }

    /// Cancels an import started by [`run`](Self::run) (`CancelTask`), e.g. when the caller
    /// dropped the run future on Ctrl-C after [`Event::ImportStarted`].
    pub async fn cancel_import(&self, task_id: &str) -> Result<()> {
        self.ecs
            .cancel_task(task_id)
            .await
            .map(|_| ())
            .map_err(|source| PipelineError::Ecs {
                context: format!("CancelTask {task_id}"),
                source: Box::new(source),
            })
    }

    fn stage(&self, s: Stage) -> Instant {
        self.emit(Event::StageStarted(s));
        Instant::now()
    }

    fn done(&self, stage: Stage, t: Instant) -> f64 {
        let seconds = (t.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        self.emit(Event::StageFinished { stage, seconds });
        seconds
    }

    fn oss_client(&self, signature: SignatureVersion) -> Result<preflight_oss::Client> {
        let mut cfg = self.endpoints.oss_config(&self.region, &self.bucket);
        cfg.signature = signature;
        preflight_oss::Client::new(cfg, self.credentials.clone()).map_err(|source| {
            PipelineError::Oss {
                context: "cannot create the OSS client".into(),
                source: Box::new(source),
            }
        })
    }

    /// Splits findings into the errors that stop the run and the rest (reported as events).
    fn sort_out(
        &self,
        findings: Vec<ScopedFinding>,
        kept: &mut Vec<ScopedFinding>,
    ) -> Vec<ScopedFinding> {
        let mut stop = Vec::new();
        for f in findings {
            let error = f.finding.is_error();
            let allowed = error && self.allow.contains(&f.finding.code);
            if error && !allowed {
                stop.push(f);
            } else {
                self.emit(Event::Finding {
                    finding: f.clone(),
                    allowed,
                });
                kept.push(f);
            }
        }
        stop
    }

    async fn check(&self) -> Result<Checked> {
        let disks = self.disks.clone();
        let params = self.params.clone();
        let evaluation = tokio::task::spawn_blocking(move || local_rules(&disks, &params))
            .await
            .map_err(|e| PipelineError::Usage(format!("the check stopped: {e}")))??;
        let mut kept = Vec::new();
        let stop = self.sort_out(evaluation.findings, &mut kept);
        let mut plan = evaluation.plan;
        if !stop.is_empty() {
            return Err(PipelineError::Refused {
                findings: stop,
                fix: Vec::new(),
                plan: Box::new(plan),
            });
        }
        let prepared = self.prepare_all(&mut plan).await?;
        // Refused here, before any request: part buffers above the memory limit.
        let o = &self.upload;
        let biggest = prepared.iter().map(|p| p.source.size()).max().unwrap_or(0);
        if biggest >= o.multipart_threshold.min(upload::MAX_SINGLE_PUT) {
            let mem = upload::buffer_memory(biggest, o.part_size, o.parallel)
                .map_err(PipelineError::Usage)?;
            self.emit(Event::Note(format!(
                "memory: about {} MiB for part buffers (parallel {} × part size)",
                mem.div_ceil(1 << 20),
                o.parallel
            )));
        }

        let (_, source) = self
            .credentials
            .get_with_source()
            .await
            .map_err(|e| PipelineError::Credentials(e.to_string()))?;
        self.emit(Event::Credentials(source.to_string()));

        // The cloud rules, before any byte is sent. The metadata service is asked meanwhile:
        // on ECS in the import region the internal OSS endpoint is the better road.
        let on_ecs = tokio::spawn(async {
            tokio::time::timeout(Duration::from_secs(3), instance_region())
                .await
                .ok()
                .flatten()
        });
        let probe = self.bucket_facts().await?;
        let mut not_verified = probe.not_verified;
        // With StorageLocationArn, the CloudBox role (seed 004).
        let (role, policy) = preflight_rules::import_role(&plan);
        let role = role.to_string();
        let role_exists = match self.ecs.get_role(&role).await {
            Ok(r) => Some(r.is_some()),
            Err(e) if ecs_denied(&e) => {
                not_verified.push(format!(
                    "RAM GetRole was denied ({}): whether the role {role} exists is not verified",
                    e.code().unwrap_or_default()
                ));
                None
            }
            Err(source) => {
                return Err(PipelineError::Ecs {
                    context: "cannot look up the RAM role".into(),
                    source: Box::new(source),
                })
            }
        };
        let mut own_earlier = None;
        let mut image_name_taken = None;
        if let Some(name) = plan.image_name.clone() {
            let found = self
                .ecs
                .describe_images(&ecs::DescribeImagesQuery {
                    image_name: Some(name.clone()),
                    ..Default::default()
                })
                .await;
            match found {
                Ok(found) => {
                    let same: Vec<&ecs::Image> =
                        found.iter().filter(|i| i.image_name == name).collect();
                    image_name_taken = Some(match same.as_slice() {
                        [] => false,
                        [one] if same_source(one, &plan) => {
                            own_earlier = Some(one.image_id.clone());
                            false
                        }
                        _ => true,
                    });
                }
                Err(e) if ecs_denied(&e) => not_verified.push(format!(
                    "DescribeImages was denied ({}): whether an image named {name:?} already exists is not verified",
                    e.code().unwrap_or_default()
                )),
                Err(source) => {
                    return Err(PipelineError::Ecs {
                        context: "cannot list images".into(),
                        source: Box::new(source),
                    })
                }
            }
        }
        if let Ok(Some(here)) = on_ecs.await {
            if here == self.region && !self.endpoints.oss_is_internal() {
                self.emit(Event::Note(endpoints::internal_endpoint_advice(&here)));
            }
        }
        let facts = CloudFacts {
            buckets: vec![probe.facts],
            objects: Vec::new(),
            role_exists,
            image_name_taken,
            not_verified,
        };
        let stop = self.sort_out(evaluate_cloud(&plan, &facts), &mut kept);
        if !stop.is_empty() {
            let fix = if role_exists == Some(false) {
                role_fix(&role, policy)
            } else {
                Vec::new()
            };
            return Err(PipelineError::Refused {
                findings: stop,
                fix,
                plan: Box::new(plan),
            });
        }
        Ok(Checked {
            plan,
            findings: kept,
            own_earlier,
            prepared,
        })
    }

    /// Decides, disk by disk, what is sent (the file, or a qcow2 of its data), and makes the
    /// plan say so: format `QCOW2` and, unless the caller named it, a `.qcow2` object key.
    async fn prepare_all(&self, plan: &mut Plan) -> Result<Vec<PreparedUpload>> {
        let mut out = Vec::with_capacity(self.disks.len());
        for (disk, path) in self.disks.iter().enumerate() {
            let given = self.objects_given.get(disk).copied().unwrap_or(false);
            let mapping = plan.disk_device_mappings.get_mut(disk);
            let given_key = mapping
                .as_ref()
                .and_then(|m| m.oss_object.as_deref())
                .filter(|_| given);
            let mode = convert::mode_for_key(self.convert, path, given_key)?;
            let p = path.clone();
            let f = self.on_event.clone();
            let prepared = tokio::task::spawn_blocking(move || {
                prepare_upload(&p, mode, &|bytes| f(&Event::Mapping { disk, bytes }))
            })
            .await
            .map_err(|e| PipelineError::Usage(format!("the map pass stopped: {e}")))??;
            if let Some(c) = &prepared.conversion {
                self.emit(Event::Conversion {
                    disk,
                    conversion: c.clone(),
                });
            }
            if let (true, Some(m)) = (prepared.converted(), mapping) {
                m.format = Some("QCOW2".into());
                if !given {
                    m.oss_object = convert::default_key(path, &prepared);
                }
            }
            out.push(prepared);
        }
        Ok(out)
    }

    /// The bucket's facts for the cloud rules, with this run's credentials, endpoint and
    /// signature.
    async fn bucket_facts(&self) -> Result<BucketProbe> {
        let client = self.oss_client(self.oss_signature)?;
        bucket_facts(&client)
            .await
            .map_err(|source| PipelineError::Oss {
                context: format!("cannot read the facts of bucket {:?}", self.bucket),
                source: Box::new(source),
            })
    }

    async fn upload_all(
        &self,
        plan: &Plan,
        prepared: Vec<PreparedUpload>,
    ) -> Result<Vec<UploadedDisk>> {
        let client = self.oss_client(self.oss_signature)?;
        let mut out = Vec::with_capacity(self.disks.len());
        for (disk, (path, prepared)) in self.disks.iter().zip(prepared).enumerate() {
            let key = plan
                .disk_device_mappings
                .get(disk)
                .and_then(|m| m.oss_object.clone())
                .ok_or_else(|| {
                    PipelineError::Usage(format!("no object key for {}", path.display()))
                })?;
            self.emit(Event::UploadStarted {
                disk,
                path: path.clone(),
                key: key.clone(),
                size: prepared.source.size(),
            });
            let sink = {
                let f = self.on_event.clone();
                Arc::new(move |event: UploadEvent| f(&Event::Upload { disk, event }))
            };
            let done =
                upload::upload_source(&client, prepared.source.clone(), &key, &self.upload, sink)
                    .await
                    .map_err(|source| PipelineError::Upload {
                        path: path.clone(),
                        key: key.clone(),
                        source: Box::new(source),
                    })?;
            self.emit(Event::UploadFinished {
                disk,
                etag: done.etag.clone(),
                parts_reused: done.parts_reused,
            });
            out.push(UploadedDisk {
                path: path.clone(),
                bucket: done.bucket,
                key: done.key,
                size: done.size,
                crc64: done.crc64.to_string(),
                etag: done.etag,
                parts_sent: done.parts_sent,
                parts_reused: done.parts_reused,
                already_there: done.already_there,
                format: prepared.format.clone(),
                conversion: prepared.conversion.clone(),
            });
        }
        Ok(out)
    }
}

/// Inspects every disk (and the guest on the system disk) and evaluates the local rules.
fn local_rules(disks: &[PathBuf], params: &ImportParams) -> Result<preflight_rules::Evaluation> {
    let mut facts = Vec::with_capacity(disks.len());
    let mut guest = None;
    for (index, path) in disks.iter().enumerate() {
        let inspection = inspect(path)?;
        let role = params.role_of(index);
        let mut disk = DiskFacts::new(
            path.display().to_string(),
            inspection.info.as_ref().map(|i| i.format.as_str()),
            inspection.info.as_ref().map(|i| i.virtual_size),
            role,
        );
        disk.findings = inspection.findings.clone();
        let inspect_guest = index == 0
            && role == DiskRole::System
            && !params.skip_guest
            && !preflight_report::has_errors(&inspection.findings);
        if let (true, Some(image)) = (inspect_guest, inspection.image.as_ref()) {
            let found = preflight_guest::inspect_with(
                image.as_ref(),
                preflight_guest::InspectOptions::for_nvme_support(params.nvme_support.as_deref()),
            );
            disk.findings.extend(found.findings.iter().cloned());
            guest = Some(guest_facts(&found));
        }
        facts.push(disk);
    }
    Ok(evaluate(&facts, params, guest.as_ref(), params.size_limits))
}

/// What the rules need of a guest inspection, in the API's spelling.
pub fn guest_facts(found: &preflight_guest::GuestReport) -> GuestFacts {
    let f = &found.facts;
    GuestFacts {
        architecture: f.architecture.clone(),
        os_type: f.os_type.clone(),
        platform: f.platform.clone(),
        boot_mode: f.boot_mode.clone(),
        boot_modes: f.boot.modes(f.architecture.as_deref()),
        nvme_support: f.nvme_support.clone(),
        uefi_without_fallback: f.boot.uefi && !f.boot.efi_fallback_loader,
    }
}

fn inspect(path: &Path) -> Result<preflight_formats::Inspection> {
    preflight_formats::inspect(path, preflight_formats::InspectOptions { check: true }).map_err(
        |source| PipelineError::Read {
            path: path.to_path_buf(),
            source,
        },
    )
}

/// What the bucket probes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketProbe {
    /// The facts for the cloud rules.
    pub facts: BucketFacts,
    /// What could not be verified (a denied optional probe), one sentence each.
    pub not_verified: Vec<String>,
}

/// Exists, region, encryption and default storage class of `client`'s bucket, for the cloud
/// rules, asked with the client's own signature (V4 with its region, unless V1 was asked
/// for). A bucket of another region is answered by OSS with 403 and the `<Endpoint>` to use,
/// whatever the signature: that names the bucket's region. A missing bucket is a fact, not
/// an error; a denied GetBucketEncryption is a note (GetBucketInfo carries the encryption too).
pub async fn bucket_facts(
    client: &preflight_oss::Client,
) -> std::result::Result<BucketProbe, preflight_oss::Error> {
    let name = client.bucket().to_string();
    let facts = |exists, region| BucketFacts {
        name: name.clone(),
        exists,
        region,
        encrypted: None,
        storage_class: None,
    };
    let info = match client.get_bucket_info().await {
        Ok(info) => info,
        Err(e) if e.code() == Some("NoSuchBucket") => {
            return Ok(BucketProbe {
                facts: facts(false, None),
                not_verified: Vec::new(),
            })
        }
        Err(e) => match e.bucket_region() {
            // In another region: that is all the rules need (the import is refused).
            Some(region) => {
                return Ok(BucketProbe {
                    facts: facts(true, Some(region)),
                    not_verified: Vec::new(),
                })
            }
            None => return Err(e),
        },
    };
    let mut not_verified = Vec::new();
    // `get_bucket_encryption` already answers None when no rule is set.
    let rule = match client.get_bucket_encryption().await {
        Ok(rule) => rule.is_some(),
        Err(e) if e.kind() == preflight_oss::ErrorKind::AccessDenied => {
            not_verified.push(format!(
                "GetBucketEncryption on bucket {name:?} was denied ({}): its encryption is taken from GetBucketInfo alone",
                e.code().unwrap_or_default()
            ));
            false
        }
        Err(e) => return Err(e),
    };
    Ok(BucketProbe {
        facts: BucketFacts {
            encrypted: Some(rule || info.sse_algorithm.is_some()),
            storage_class: Some(info.storage_class).filter(|c| !c.is_empty()),
            ..facts(true, Some(info.region))
        },
        not_verified,
    })
}

/// Whether an ECS or RAM call was refused for want of permission (RAM policy).
pub fn ecs_denied(e: &ecs::Error) -> bool {
    matches!(e.code(), Some(c) if c.starts_with("NoPermission")
        || c.starts_with("Forbidden")
        || c == "AccessDenied"
        || c.starts_with("NotAuthorized"))
}

/// How many times in a row [`import_image_fresh`] replaces a dead task's token.
const MAX_FRESH_TOKENS: usize = 5;

/// Task states after which an import never makes its image.
const DEAD_TASK: &[&str] = &["Failed", "Cancelled", "Canceled", "Deleted"];

/// ImportImage with the plan's ClientToken — derived from `etags` and the parameters unless
/// the caller gave one — and, when ECS hands back an import of an earlier run that failed or
/// was cancelled, again with a token salted with the dead task's id, so a rerun after Ctrl-C
/// or a failure starts a new import instead of returning the dead one. A running or finished
/// import is kept (that is what the token is for), and so is a task this very call created,
/// even one that failed at once. `note` hears each new token and why. A token the caller
/// gave is never changed.
///
/// "Earlier" is told by a DescribeTasks of the region's import tasks taken just before: a
/// task ImportImage answers with that was not in it is new.
pub async fn import_image_fresh(
    client: &ecs::Client,
    plan: &mut Plan,
    etags: &[String],
    options: &ImportOptions,
    note: &(dyn Fn(String) + Send + Sync),
) -> std::result::Result<ImportOutcome, ecs::Error> {
    let derived = plan.client_token.is_none();
    if derived {
        plan.client_token = Some(ecs::client_token(plan, etags));
    }
    if !derived || options.dry_run {
        return client.import_image(plan, options).await;
    }
    let before = match client
        .describe_tasks(&ecs::DescribeTasksQuery {
            task_action: Some("ImportImage".into()),
            ..Default::default()
        })
        .await
    {
        Ok(tasks) => tasks,
        // Without ecs:DescribeTasks an earlier import cannot be told from this one's.
        Err(e) if ecs_denied(&e) => return client.import_image(plan, options).await,
        Err(e) => return Err(e),
    };
    let mut left = MAX_FRESH_TOKENS;
    loop {
        let outcome = client.import_image(plan, options).await?;
        let ImportOutcome::Started(started) = &outcome else {
            return Ok(outcome);
        };
        let earlier = before.iter().find(|t| t.task_id == started.task_id);
        let dead = earlier.filter(|t| DEAD_TASK.contains(&t.task_status.as_str()));
        let (Some(dead), true) = (dead, left > 0) else {
            return Ok(outcome);
        };
        left -= 1;
        let mut base = plan.clone();
        base.client_token = None;
        plan.client_token = Some(ecs::client_token_after(&base, etags, Some(&dead.task_id)));
        note(format!(
            "the earlier import of these objects (task {}) is {}: starting a new one with a new ClientToken",
            dead.task_id, dead.task_status
        ));
    }
}

/// Whether an existing image was imported from exactly the plan's objects (then it may be
/// this tool's own earlier import of the same request).
pub fn same_source(image: &ecs::Image, plan: &Plan) -> bool {
    let ours: Vec<(&str, &str)> = plan
        .disk_device_mappings
        .iter()
        .map(|m| {
            (
                m.oss_bucket.as_deref().unwrap_or(""),
                m.oss_object.as_deref().unwrap_or(""),
            )
        })
        .collect();
    let theirs: Vec<(&str, &str)> = image
        .disk_device_mappings
        .iter()
        .map(|d| (d.import_oss_bucket.as_str(), d.import_oss_object.as_str()))
        .collect();
    !ours.is_empty() && ours == theirs
}

/// The commands that create the missing import role `role` with the system
/// policy `policy` (see [`preflight_rules::import_role`]).
pub fn role_fix(role: &str, policy: &str) -> Vec<String> {
    vec![
        format!("The RAM role {role} is missing. ECS needs it to read your bucket. Create it once:"),
        format!("  aliyun ram CreateRole --RoleName {role} --AssumeRolePolicyDocument '{TRUST_POLICY}'"),
        format!("  aliyun ram AttachPolicyToRole --PolicyType System --PolicyName {policy} --RoleName {role}"),
        "or authorise ECS in the RAM console (Cloud resource access authorization).".to_string(),
    ]
}
