//! `import` as a library use case ([`run_import`]), and the cloud facts ImportImage's rules
//! need from OSS, ECS and RAM, probed once for `import` and the one-shot alike.

use std::sync::Arc;

use preflight_aliyun::CredentialProvider;
use preflight_ecs as ecs;
use preflight_oss::{ErrorKind, SignatureVersion};
use preflight_rules::{
    evaluate, evaluate_cloud, BucketFacts, CloudFacts, DiskFacts, Evaluation, ImportParams,
    ObjectFacts, Plan, ScopedFinding,
};

use std::future::Future;

use preflight_ecs::{ImportOptions, ImportOutcome, WaitOutcome};

use crate::fleet::{
    check_regions, copy_and_share_until, FleetContext, FleetEnd, FleetError, FleetOutcome,
    FleetPlan, StoppedCopy,
};
use crate::wait::{ecs_client, follow, Followed};
use crate::{
    bucket_facts, import_request, Endpoints, Event, PipelineError, Result, Stage, TRUST_POLICY,
};

/// What the ECS and RAM probes found for a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsProbe {
    /// The RAM role ImportImage will assume (the CloudBox one with `StorageLocationArn`).
    pub role: String,
    /// The policy that role needs.
    pub policy: &'static str,
    /// Whether the role exists (`None`: GetRole was denied).
    pub role_exists: Option<bool>,
    /// Whether another image has the plan's name (`None`: no name, or DescribeImages was
    /// denied). An image imported from the same objects is not "another".
    pub image_name_taken: Option<bool>,
    /// This request's own earlier import: the one image with the name, from the same objects.
    pub own_earlier: Option<ecs::Image>,
    /// What could not be verified (a denied probe), one sentence each.
    pub not_verified: Vec<String>,
}

/// RAM GetRole for the import role and DescribeImages for the plan's image name. A denied
/// probe is a `not_verified` sentence, not an error.
pub async fn probe_ecs(client: &ecs::Client, plan: &Plan) -> Result<EcsProbe> {
    let mut not_verified = Vec::new();
    // With StorageLocationArn, the CloudBox role (seed 004).
    let (role, policy) = preflight_rules::import_role(plan);
    let role = role.to_string();
    let role_exists = match client.get_role(&role).await {
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
        let found = client
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
                    [one] if same_source(one, plan) => {
                        own_earlier = Some((*one).clone());
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
    Ok(EcsProbe {
        role,
        policy,
        role_exists,
        image_name_taken,
        own_earlier,
        not_verified,
    })
}

/// What the OSS probes found: facts for the rules and the ETags for the ClientToken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OssProbe {
    /// Each bucket's facts, once per bucket.
    pub buckets: Vec<BucketFacts>,
    /// Each object's facts (only in buckets of the import's region).
    pub objects: Vec<ObjectFacts>,
    /// The objects' ETags, for the ClientToken.
    pub etags: Vec<String>,
    /// What could not be verified (a denied probe), one sentence each.
    pub not_verified: Vec<String>,
}

/// GetBucketInfo (+ encryption) per bucket and HeadObject per disk, signed as asked (V4 with
/// the import's region by default): a bucket of another region is answered with the
/// endpoint it must be addressed at, which names its region.
pub async fn probe_oss(
    plan: &Plan,
    region: &str,
    endpoints: &Endpoints,
    signature: SignatureVersion,
    creds: &Arc<CredentialProvider>,
) -> Result<OssProbe> {
    let mut out = OssProbe {
        buckets: Vec::new(),
        objects: Vec::new(),
        etags: Vec::new(),
        not_verified: Vec::new(),
    };
    for m in &plan.disk_device_mappings {
        let (Some(bucket), Some(key)) = (m.oss_bucket.as_deref(), m.oss_object.as_deref()) else {
            continue;
        };
        let mut cfg = endpoints.oss_config(region, bucket);
        cfg.signature = signature;
        let client = preflight_oss::Client::new(cfg, creds.clone())
            .map_err(|e| PipelineError::OssClient(Box::new(e)))?;
        if !out.buckets.iter().any(|b| b.name == bucket) {
            let probe = bucket_facts(&client)
                .await
                .map_err(|source| PipelineError::Oss {
                    context: format!("cannot read the facts of bucket {bucket:?}"),
                    source: Box::new(source),
                })?;
            out.buckets.push(probe.facts);
            out.not_verified.extend(probe.not_verified);
        }
        let usable = out
            .buckets
            .iter()
            .find(|b| b.name == bucket)
            .is_some_and(|b| {
                b.exists
                    && b.region.as_deref().map(|r| r.trim_start_matches("oss-")) == Some(region)
            });
        if !usable {
            continue;
        }
        match client.head_object(key).await {
            Ok(meta) => {
                out.etags.push(meta.etag.clone());
                out.objects.push(ObjectFacts {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    exists: true,
                    size: Some(meta.size),
                    restored: meta.restored(),
                    storage_class: meta.storage_class,
                });
            }
            Err(e) if e.kind() == ErrorKind::AccessDenied => {
                // The ClientToken then rests on the parameters alone.
                out.not_verified.push(format!(
                    "HeadObject on {key:?} in {bucket:?} was denied ({}): the object's existence, size and storage class are not verified",
                    e.code().unwrap_or_default()
                ));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => out.objects.push(ObjectFacts {
                bucket: bucket.to_string(),
                key: key.to_string(),
                exists: false,
                size: None,
                storage_class: None,
                restored: None,
            }),
            Err(source) => {
                return Err(PipelineError::Oss {
                    context: format!("cannot look up object {key:?} in {bucket:?}"),
                    source: Box::new(source),
                })
            }
        }
    }
    Ok(out)
}

/// `import`'s local rules, for images already in OSS: the system disk is the object `object`
/// in `--format` (its size unknown), each data disk the object key given whole
/// (`vm/d1.qcow2`, not a local path whose file name would be the key), every disk in the
/// request's bucket unless it names its own.
pub fn plan_import(
    mut params: ImportParams,
    format: Option<&str>,
    object: &str,
    data_keys: &[String],
) -> Evaluation {
    for d in &mut params.disks {
        if d.bucket.is_none() {
            d.bucket.clone_from(&params.bucket);
        }
    }
    for (d, key) in params.disks.iter_mut().skip(1).zip(data_keys) {
        d.object = Some(key.clone());
    }
    let format = format.map(str::to_ascii_lowercase);
    let mut disks = vec![DiskFacts::new(
        object.to_string(),
        format.as_deref(),
        None,
        params.role_of(0),
    )];
    for (i, key) in data_keys.iter().enumerate() {
        disks.push(DiskFacts::new(
            key.clone(),
            None,
            None,
            params.role_of(i + 1),
        ));
    }
    evaluate(&disks, &params, None, params.size_limits)
}

/// What the cloud rules found before ImportImage.
#[derive(Debug, Clone)]
pub struct CloudCheck {
    /// The cloud rules' findings; any error means ImportImage must not be sent.
    pub findings: Vec<ScopedFinding>,
    /// Steps that fix a missing RAM role (empty when it exists or was not verified).
    pub fix: Vec<String>,
    /// The objects' ETags, for the ClientToken.
    pub etags: Vec<String>,
    /// This request's own earlier import, if the image name is taken by it.
    pub own_earlier: Option<ecs::Image>,
}

impl CloudCheck {
    /// True when a cloud rule failed.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.finding.is_error())
    }
}

/// `import`'s cloud rules for `plan`: [`probe_oss`] (signed as `oss_signature`) and
/// [`probe_ecs`], then the rules on what they found.
pub async fn cloud_rules(
    plan: &Plan,
    region: &str,
    endpoints: &Endpoints,
    oss_signature: SignatureVersion,
    credentials: &Arc<CredentialProvider>,
    ecs_client: &ecs::Client,
) -> Result<CloudCheck> {
    let oss = probe_oss(plan, region, endpoints, oss_signature, credentials).await?;
    let probe = probe_ecs(ecs_client, plan).await?;
    let mut not_verified = oss.not_verified;
    not_verified.extend(probe.not_verified);
    let facts = CloudFacts {
        buckets: oss.buckets,
        objects: oss.objects,
        role_exists: probe.role_exists,
        image_name_taken: probe.image_name_taken,
        not_verified,
    };
    let fix = if probe.role_exists == Some(false) {
        role_fix(&probe.role, probe.policy)
    } else {
        Vec::new()
    };
    Ok(CloudCheck {
        findings: evaluate_cloud(plan, &facts),
        fix,
        etags: oss.etags,
        own_earlier: probe.own_earlier,
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
    let mut request = import_request(plan);
    if derived {
        request.client_token = Some(ecs::client_token(&request, etags));
        plan.client_token.clone_from(&request.client_token);
    }
    if !derived || options.dry_run {
        return client.import_image(&request, options).await;
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
        Err(e) if ecs_denied(&e) => return client.import_image(&request, options).await,
        Err(e) => return Err(e),
    };
    let mut left = MAX_FRESH_TOKENS;
    loop {
        let outcome = client.import_image(&request, options).await?;
        let ImportOutcome::Started(started) = &outcome else {
            return Ok(outcome);
        };
        let earlier = before.iter().find(|t| t.task_id == started.task_id);
        let dead = earlier.filter(|t| DEAD_TASK.contains(&t.task_status.as_str()));
        let (Some(dead), true) = (dead, left > 0) else {
            return Ok(outcome);
        };
        left -= 1;
        let mut base = request.clone();
        base.client_token = None;
        request.client_token = Some(ecs::client_token_after(&base, etags, Some(&dead.task_id)));
        plan.client_token.clone_from(&request.client_token);
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

/// `import`: ImportImage for disks already in OSS, as `ecs-preflight import` runs it.
#[derive(Clone)]
pub struct ImportJob {
    /// The request. `region` and `bucket` are required; `disks[0]` names the system disk's
    /// object (required) and format; one entry per data disk.
    pub params: ImportParams,
    /// Each data disk's object key, whole (in the request's bucket).
    pub data_keys: Vec<String>,
    /// Where OSS, ECS and RAM are.
    pub endpoints: Endpoints,
    /// Credentials.
    pub credentials: Arc<CredentialProvider>,
    /// Signature of the bucket and object probes.
    pub oss_signature: SignatureVersion,
    /// Signature of the ECS and RAM calls.
    pub rpc_signature: ecs::SignatureMethod,
    /// Send `DryRun=true`: the API validates the request and imports nothing.
    pub dry_run: bool,
    /// Follow the task until the image is available; false returns once it started.
    pub wait: bool,
    /// On `stop` while waiting, leave the import running instead of cancelling it.
    pub detach: bool,
    /// Time between two status queries.
    pub poll_interval: std::time::Duration,
    /// Longest wait; the import goes on after it.
    pub timeout: std::time::Duration,
    /// Copies and shares to make once the image is available.
    pub fleet: FleetPlan,
}

impl ImportJob {
    /// A job for `params` with the defaults: real endpoints, OSS V4, HMAC-SHA1 RPC, wait
    /// and cancel on stop, [`DEFAULT_POLL_INTERVAL`](crate::DEFAULT_POLL_INTERVAL),
    /// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT), no copy or share.
    pub fn new(params: ImportParams, credentials: Arc<CredentialProvider>) -> Self {
        ImportJob {
            params,
            data_keys: Vec::new(),
            endpoints: Endpoints::default(),
            credentials,
            oss_signature: SignatureVersion::V4,
            rpc_signature: ecs::SignatureMethod::HmacSha1,
            dry_run: false,
            wait: true,
            detach: false,
            poll_interval: crate::DEFAULT_POLL_INTERVAL,
            timeout: crate::DEFAULT_TIMEOUT,
            fleet: FleetPlan::default(),
        }
    }
}

/// An import ImportImage accepted.
#[derive(Debug, Clone)]
pub struct StartedImport {
    /// The region.
    pub region: String,
    /// The image (`m-…`).
    pub image_id: String,
    /// The import task (`t-…`).
    pub task_id: String,
    /// ImportImage's RequestId.
    pub request_id: String,
    /// True when an earlier run had already imported these objects (same ClientToken).
    pub reused: bool,
    /// The request sent, with its ClientToken.
    pub plan: Plan,
}

/// How [`run_import`] ended. Only environment errors (no credentials, an endpoint that does
/// not answer, a copy region refused before ImportImage) are an `Err`.
#[derive(Debug)]
pub enum ImportResult {
    /// A local or cloud rule failed: ImportImage was not sent.
    Refused {
        /// The findings: every local one, or the cloud rules' (errors and warnings).
        findings: Vec<ScopedFinding>,
        /// Steps that create a missing RAM role (empty otherwise).
        fix: Vec<String>,
        /// The request that would have been sent.
        plan: Box<Plan>,
    },
    /// `dry_run`: ImportImage would be accepted.
    DryRunPassed {
        /// ImportImage's RequestId.
        request_id: String,
        /// The request, with its ClientToken.
        plan: Box<Plan>,
    },
    /// ImportImage answered with an API error.
    ApiRefused {
        /// The error (its code and message are the API's).
        error: ecs::Error,
        /// What fixes it, when the catalogue knows the code.
        fix: Option<&'static str>,
    },
    /// `stop` fired before ImportImage was sent: nothing was imported.
    Interrupted,
    /// Started and not waited for (`wait` false).
    Started(Box<StartedImport>),
    /// `stop` fired while waiting and `detach` was asked: the import goes on.
    Detached(Box<StartedImport>),
    /// `stop` fired while waiting: CancelTask was sent (its error, if it failed).
    Cancelled {
        /// The import.
        started: Box<StartedImport>,
        /// CancelTask's error, if any.
        error: Option<ecs::Error>,
    },
    /// Following the task failed after every retry; the import goes on.
    WaitFailed {
        /// The import.
        started: Box<StartedImport>,
        /// The last error.
        error: ecs::Error,
    },
    /// The task ended or the timeout passed; when the image is available, the copies and
    /// shares asked for are made (`fleet`).
    Finished {
        /// The import.
        started: Box<StartedImport>,
        /// How the task ended.
        outcome: Box<WaitOutcome>,
        /// Every image with region, state and shares (empty when none was asked).
        fleet: FleetOutcome,
    },
    /// `stop` fired while copying: the image is available; every copy not yet available was
    /// cancelled (CancelCopyImage) or, with `detach`, left to go on. A rerun copies and shares.
    CopiesStopped {
        /// The import.
        started: Box<StartedImport>,
        /// The available image.
        image: Box<ecs::Image>,
        /// Every copy started or found, and what became of it.
        copies: Vec<StoppedCopy>,
    },
    /// The image is available, but the copy and share step failed.
    CopyFailed {
        /// The import.
        started: Box<StartedImport>,
        /// The available image.
        image: Box<ecs::Image>,
        /// Why the step failed.
        error: FleetError,
    },
}

/// `ecs-preflight import`: the local rules, the copy regions (DescribeRegions), the cloud
/// rules, ImportImage with a ClientToken from the objects' ETags ([`import_image_fresh`]),
/// then — unless `job.wait` is false — the task followed until the image is available, and
/// the copies and shares of `job.fleet`.
///
/// Cancellation: when `stop` completes before ImportImage is sent, nothing is imported
/// ([`ImportResult::Interrupted`]); while waiting, the import is cancelled (CancelTask) or,
/// with `job.detach`, left running; while copying, the copies not yet available are
/// cancelled (CancelCopyImage) or, with `job.detach`, left going on
/// ([`ImportResult::CopiesStopped`]).
pub async fn run_import(
    job: &ImportJob,
    on_event: impl Fn(&Event) + Send + Sync + 'static,
    stop: impl Future<Output = ()>,
) -> Result<ImportResult> {
    let on_event: Arc<dyn Fn(&Event) + Send + Sync> = Arc::new(on_event);
    let p = &job.params;
    let (Some(region), Some(_)) = (p.region.clone(), p.bucket.as_ref()) else {
        return Err(PipelineError::Usage(
            "an import needs a region and a bucket".into(),
        ));
    };
    let Some(object) = p.disks.first().and_then(|d| d.object.clone()) else {
        return Err(PipelineError::Usage(
            "an import needs the system disk's object".into(),
        ));
    };
    let mut fleet = job.fleet.clone();
    fleet.validate(&region).map_err(PipelineError::Fleet)?;
    let format = p.disks.first().and_then(|d| d.format.clone());
    let eval = plan_import(p.clone(), format.as_deref(), &object, &job.data_keys);
    let mut plan = eval.plan.clone();
    if eval.has_errors() {
        return Ok(ImportResult::Refused {
            findings: eval.findings,
            fix: Vec::new(),
            plan: Box::new(plan),
        });
    }

    tokio::pin!(stop);
    let client = ecs_client(&region, &job.endpoints, job.rpc_signature, &job.credentials)?;
    // Biased, stop first: a stop that is already due must win over probes that happen to be
    // ready on the same poll (select! otherwise picks a branch at random).
    let cloud = tokio::select! {
        biased;
        () = &mut stop => return Ok(ImportResult::Interrupted),
        r = probe_all(job, &region, &plan, &fleet, &client, &*on_event) => r?,
    };
    for w in cloud.findings.iter().filter(|f| !f.finding.is_error()) {
        on_event(&Event::Finding {
            finding: w.clone(),
            allowed: false,
        });
    }
    if cloud.has_errors() {
        return Ok(ImportResult::Refused {
            findings: cloud.findings,
            fix: cloud.fix,
            plan: Box::new(plan),
        });
    }

    let note = |m: String| on_event(&Event::Note(m));
    let options = ImportOptions {
        dry_run: job.dry_run,
    };
    let started = match import_image_fresh(&client, &mut plan, &cloud.etags, &options, &note).await
    {
        Ok(ImportOutcome::DryRunPassed { request_id }) => {
            return Ok(ImportResult::DryRunPassed {
                request_id,
                plan: Box::new(plan),
            })
        }
        Ok(ImportOutcome::Started(r)) => r,
        Err(error @ ecs::Error::Api { .. }) => {
            let fix = crate::catalogue::fix_for_api_code(error.code().unwrap_or_default());
            return Ok(ImportResult::ApiRefused { error, fix });
        }
        Err(source) => {
            return Err(PipelineError::Ecs {
                context: "ImportImage".into(),
                source: Box::new(source),
            })
        }
    };
    let reused = cloud
        .own_earlier
        .as_ref()
        .is_some_and(|i| i.image_id == started.image_id);
    on_event(&Event::ImportStarted {
        image_id: started.image_id.clone(),
        task_id: started.task_id.clone(),
        reused,
    });
    let started = Box::new(StartedImport {
        region: region.clone(),
        image_id: started.image_id,
        task_id: started.task_id,
        request_id: started.request_id,
        reused,
        plan,
    });
    if !job.wait {
        return Ok(ImportResult::Started(started));
    }

    let followed = follow(
        &client,
        &started.task_id,
        &started.image_id,
        (job.poll_interval, job.timeout),
        &*on_event,
        stop.as_mut(),
    )
    .await;
    let outcome = match followed {
        Followed::Stopped if job.detach => return Ok(ImportResult::Detached(started)),
        Followed::Stopped => {
            let error = client.cancel_task(&started.task_id).await.err();
            return Ok(ImportResult::Cancelled { started, error });
        }
        Followed::Lost(error) => return Ok(ImportResult::WaitFailed { started, error }),
        Followed::Done(outcome) => outcome,
    };
    let mut fleet_outcome = FleetOutcome::default();
    if let (WaitOutcome::Available(image), false) = (&outcome, fleet.is_empty()) {
        on_event(&Event::StageStarted(Stage::Copy));
        let ctx = FleetContext {
            endpoints: job.endpoints.clone(),
            credentials: job.credentials.clone(),
            signature: job.rpc_signature,
            poll_interval: job.poll_interval,
            timeout: job.timeout,
        };
        let f = on_event.clone();
        match copy_and_share_until(
            &ctx,
            &region,
            image,
            &fleet,
            Arc::new(move |e| f(&Event::Fleet(e))),
            stop.as_mut(),
            job.detach,
        )
        .await
        {
            Ok(FleetEnd::Done(o)) => fleet_outcome = o,
            Ok(FleetEnd::Stopped(copies)) => {
                return Ok(ImportResult::CopiesStopped {
                    started,
                    image: Box::new(image.clone()),
                    copies,
                })
            }
            Err(error) => {
                return Ok(ImportResult::CopyFailed {
                    started,
                    image: Box::new(image.clone()),
                    error,
                })
            }
        }
    }
    Ok(ImportResult::Finished {
        started,
        outcome: Box::new(outcome),
        fleet: fleet_outcome,
    })
}

/// The probes before ImportImage: credentials, the copy regions, the cloud rules.
async fn probe_all(
    job: &ImportJob,
    region: &str,
    plan: &Plan,
    fleet: &FleetPlan,
    client: &ecs::Client,
    on_event: &(dyn Fn(&Event) + Send + Sync),
) -> Result<CloudCheck> {
    let (_, source) = job
        .credentials
        .get_with_source()
        .await
        .map_err(|e| PipelineError::Credentials(e.to_string()))?;
    on_event(&Event::Credentials(source.to_string()));
    // A copy region ECS does not know is refused before ImportImage.
    if let Some(note) = check_regions(client, fleet)
        .await
        .map_err(PipelineError::Fleet)?
    {
        on_event(&Event::Note(note));
    }
    cloud_rules(
        plan,
        region,
        &job.endpoints,
        job.oss_signature,
        &job.credentials,
        client,
    )
    .await
}
