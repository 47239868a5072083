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
//! 5. **copy and share** (only with [`PipelineBuilder::fleet`]) — `CopyImage` to every other
//!    region asked for, the copies waited for in parallel, then `ModifyImageSharePermission`
//!    on the source and every copy; see [`fleet`].
//!
//! Progress is reported as [`Event`]s to the closure given to [`PipelineBuilder::on_event`].
//! Cancellation: drop the future returned by [`Pipeline::run`] (e.g. in `tokio::select!`).
//! An upload stopped this way resumes on the next run; an import already started goes on in
//! the cloud — [`Pipeline::cancel_import`] stops it (the task id is in
//! [`Event::ImportStarted`]). [`Pipeline::run_until`] does both for a `stop` future, and can
//! return as soon as ImportImage answered.
//!
//! The other use cases: [`import::run_import`] imports objects already in OSS (the cloud
//! rules, ImportImage, the wait, copies and shares); [`wait::wait_for_task`] follows an
//! import started earlier. Both report [`Event`]s and take a `stop` future.
//!
//! `ecs-preflight upload` alone (rules, then the resumable upload of one image, or `--abort`)
//! is [`ImageUpload`], with the same events and the same cancellation.
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

pub mod batch;
mod builder;
pub mod catalogue;
pub mod check;
pub mod convert;
pub mod endpoints;
mod error;
mod events;
pub mod fleet;
pub mod import;
mod oneshot;
pub mod regions;
pub mod rendering;
pub mod request;
pub mod upload;
pub mod wait;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use events::EventFn;
use preflight_aliyun::CredentialProvider;
use preflight_ecs::{self as ecs, watch, ImportOptions, ImportOutcome, WaitOutcome};
use preflight_oss::upload as oss_upload;
use preflight_oss::{SignatureVersion, UploadEvent};
use preflight_rules::{evaluate_cloud, CloudFacts, Plan, ScopedFinding};

pub use batch::Gates;
pub use builder::PipelineBuilder;
pub use check::{check, guest_facts, image_report, info, CheckReport};
pub use convert::{prepare_upload, Conversion, ConvertMode, PreparedUpload};
pub use endpoints::{instance_region, Endpoints, OssNetwork};
pub use error::{PipelineError, Result};
pub use events::{DryRun, Event, Outcome, PlannedUpload, Stage, StageSeconds, UploadedDisk};
pub use import::{ecs_denied, import_image_fresh, role_fix, same_source};
pub use oneshot::RunEnd;
pub use preflight_aliyun::CredentialProvider as Credentials;
pub use preflight_ecs::Progress as TaskProgress;
pub use preflight_ecs::SignatureMethod;
pub use preflight_oss::{SignatureVersion as OssSignature, UploadOptions};
pub use preflight_report::{ImageFacts, ImageReport};
pub use preflight_rules::ImportParams;
pub use rendering::{exit, upload_failed, upload_refusal, Rendered, WaitCommand};
pub use request::import_request;
pub use upload::{bucket_facts, BucketProbe};
pub use upload::{AbortOutcome, ImageUpload, UploadResult};

/// The trust policy the import role needs (`sts:AssumeRole` by `ecs.aliyuncs.com`).
pub const TRUST_POLICY: &str = r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["ecs.aliyuncs.com"]}}],"Version":"1"}"#;
/// The system policy the import role needs (outside CloudBox).
pub const ROLE_POLICY: &str = preflight_rules::DEFAULT_ROLE_POLICY;
/// Default time between two status queries of the import task.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// Default longest wait for the import task.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

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
    rpc_signature: ecs::SignatureMethod,
    on_event: EventFn,
    gates: Gates,
    fleet: fleet::FleetPlan,
    /// How far the run got, for [`run_until`](Pipeline::run_until).
    reached: Arc<oneshot::Reached>,
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

        // Local work (check, conversion, upload) holds a work slot; waiting on ECS does not.
        let work_slot = self.gates.work(&*self.on_event).await;
        let t = self.stage(Stage::Check);
        let checked = self.check().await?;
        secs.check = self.done(Stage::Check, t);
        let mut plan = checked.plan;

        let upload_slot = self.gates.upload(&*self.on_event).await;
        let t = self.stage(Stage::Upload);
        let uploads = self.upload_all(&plan, checked.prepared).await?;
        secs.upload = self.done(Stage::Upload, t);
        drop(upload_slot);
        drop(work_slot);

        // Held until the wait ends: the slot counts running import tasks.
        let _import_slot = self.gates.import(&*self.on_event).await;
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
        self.emit(Event::WaitStarted {
            task_id: started.task_id.clone(),
            image_id: started.image_id.clone(),
        });
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

        let mut fleet_outcome = fleet::FleetOutcome::default();
        if !self.fleet.is_empty() {
            let t = self.stage(Stage::Copy);
            fleet_outcome = self.copy_and_share(&image).await?;
            secs.copy = self.done(Stage::Copy, t);
        }

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
            fleet: fleet_outcome,
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

    /// The copy and share step for the `Available` image (see [`fleet::copy_and_share`]).
    pub async fn copy_and_share(&self, image: &ecs::Image) -> Result<fleet::FleetOutcome> {
        let ctx = self.fleet_context();
        let f = self.on_event.clone();
        // Tracked where a stop (`run_until`) looks for the copies to cancel.
        fleet::copy_and_share_tracked(
            &ctx,
            &self.region,
            image,
            &self.fleet,
            Arc::new(move |e| f(&Event::Fleet(e))),
            self.reached.copies.clone(),
        )
        .await
        .map_err(PipelineError::Fleet)
    }

    /// How the copy and share step reaches ECS and waits.
    pub(crate) fn fleet_context(&self) -> fleet::FleetContext {
        fleet::FleetContext {
            endpoints: self.endpoints.clone(),
            credentials: self.credentials.clone(),
            signature: self.rpc_signature,
            poll_interval: self.poll_interval,
            timeout: self.timeout,
        }
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
        if biggest >= o.multipart_threshold.min(oss_upload::MAX_SINGLE_PUT) {
            let mem = oss_upload::buffer_memory(biggest, o.part_size, o.parallel)
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
        // A copy region ECS does not know is refused here, before any upload.
        if let Some(note) = fleet::check_regions(&self.ecs, &self.fleet)
            .await
            .map_err(PipelineError::Fleet)?
        {
            self.emit(Event::Note(note));
        }

        // The cloud rules, before any byte is sent. The metadata service is asked meanwhile:
        // on ECS in the import region the internal OSS endpoint is the better road.
        let on_ecs = tokio::spawn(async {
            tokio::time::timeout(Duration::from_secs(3), instance_region())
                .await
                .ok()
                .flatten()
        });
        let region_unverified = self.check_region(&plan).await?;
        let probe = self.bucket_facts().await?;
        let mut not_verified = probe.not_verified;
        not_verified.extend(region_unverified);
        let ecs_probe = import::probe_ecs(&self.ecs, &plan).await?;
        not_verified.extend(ecs_probe.not_verified);
        let role_exists = ecs_probe.role_exists;
        let image_name_taken = ecs_probe.image_name_taken;
        let own_earlier = ecs_probe.own_earlier.map(|i| i.image_id);
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
                role_fix(&ecs_probe.role, ecs_probe.policy)
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

    /// A well-formed region this tool does not know is looked up with DescribeRegions (at the
    /// ECS endpoint given, else the central one) and refused when it is not listed, before any
    /// OSS request. Returns what could not be verified (DescribeRegions denied).
    async fn check_region(&self, plan: &Plan) -> Result<Option<String>> {
        if regions::is_known(&self.region) {
            return Ok(None);
        }
        let central;
        let client = if self.endpoints.ecs.is_some() {
            &self.ecs
        } else {
            let mut cfg = self
                .endpoints
                .ecs_config(&self.region)
                .with_ecs_endpoint(regions::CENTRAL_ECS_ENDPOINT);
            cfg.signature = self.ecs.config().signature;
            central = ecs::Client::new(cfg, self.credentials.clone()).map_err(|source| {
                PipelineError::Ecs {
                    context: "cannot create the ECS client".into(),
                    source: Box::new(source),
                }
            })?;
            &central
        };
        match regions::check_region(client, &self.region).await {
            Ok(regions::RegionCheck::Listed) => Ok(None),
            Ok(regions::RegionCheck::NotVerified(why)) => Ok(Some(why)),
            Ok(regions::RegionCheck::NotListed(listed)) => {
                let finding = preflight_rules::params::REGION_MALFORMED.finding_with_hint(
                    format!(
                        "region {:?} is not among the {} regions ECS DescribeRegions lists",
                        self.region,
                        listed.len()
                    ),
                    format!(
                        "Pass one of the regions DescribeRegions lists: {}",
                        listed.join(", ")
                    ),
                );
                Err(PipelineError::Refused {
                    findings: vec![ScopedFinding {
                        disk: None,
                        path: None,
                        finding,
                    }],
                    fix: Vec::new(),
                    plan: Box::new(plan.clone()),
                })
            }
            Err(source) => Err(PipelineError::Ecs {
                context: format!("cannot check region {:?} with DescribeRegions", self.region),
                source: Box::new(source),
            }),
        }
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
            let done = oss_upload::upload_source(
                &client,
                prepared.source.clone(),
                &key,
                &self.upload,
                sink,
            )
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

/// The local rules the one-shot runs: the loop `check` runs, findings in evaluation order.
fn local_rules(disks: &[PathBuf], params: &ImportParams) -> Result<preflight_rules::Evaluation> {
    Ok(check::inspect_local(disks, params)?.evaluation)
}
