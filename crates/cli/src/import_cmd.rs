//! `ecs-preflight import` and `ecs-preflight wait`: import an image that is already in OSS.
//!
//! Local rules, then the cloud rules (object, bucket, RAM role, image name), then ImportImage
//! with a ClientToken derived from the objects' ETags and the parameters (a rerun returns the
//! same image), then a watch of the task until the image is Available or has failed. Ctrl-C
//! cancels the import (CancelTask) unless `--detach`, which leaves it running and prints the
//! `wait` command that picks it up again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use preflight_aliyun::CredentialProvider;
use preflight_ecs::{self as ecs, watch, ImportOptions, ImportOutcome, WaitOutcome};
use preflight_rules::{Plan, ScopedFinding};
use serde_json::{json, Value};

use crate::OutputFormat;
use preflight_pipeline::TRUST_POLICY;

/// Exit codes (same meaning as the rest of the CLI).
const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;

/// Which RPC signature to send.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcSignature {
    /// HMAC-SHA1, SignatureVersion 1.0 (what the aliyun CLI sends).
    HmacSha1,
    /// ACS3-HMAC-SHA256 (the Tea SDK's default).
    Acs3,
}

impl RpcSignature {
    /// The ECS client's signature method.
    pub fn method(self) -> ecs::SignatureMethod {
        match self {
            RpcSignature::HmacSha1 => ecs::SignatureMethod::HmacSha1,
            RpcSignature::Acs3 => ecs::SignatureMethod::Acs3,
        }
    }
}

/// `ecs-preflight import`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    ecs-preflight import --region cn-hangzhou --bucket images --object web.qcow2 --format QCOW2 --image-name web-01\n  \
    ecs-preflight import --region cn-hangzhou --bucket images --object web.qcow2 --image-name web-01 --dry-run\n  \
    ecs-preflight import --region cn-hangzhou --bucket images --object web.qcow2 --image-name web-01 --detach --output json\n\n\
    Ctrl-C while waiting cancels the import (CancelTask), unless --detach: then the import goes on and\n\
    `ecs-preflight wait --region R --task-id T` picks it up.\n\n\
    Exit codes: 0 image available (or started with --no-wait, or detached), 1 refused or failed, \
    2 usage or environment error, 130 interrupted (the import was cancelled).")]
pub struct ImportCmdArgs {
    #[command(flatten)]
    pub import: crate::request_args::RequestArgs,

    #[command(flatten, next_help_heading = "Endpoints")]
    pub endpoints: crate::endpoint_args::EndpointArgs,

    /// OSS signature version of the bucket and object probes (V1 only for old endpoints).
    #[arg(help_heading = "Import options", long, value_enum,
          default_value_t = crate::upload_cmd::SignatureFlag::V4)]
    pub signature_version: crate::upload_cmd::SignatureFlag,

    /// Wait until the image is Available or the import failed [default].
    #[arg(help_heading = "Import options", long, overrides_with = "no_wait")]
    pub wait: bool,

    /// Start the import and return at once with the task id.
    #[arg(help_heading = "Import options", long, overrides_with = "wait")]
    pub no_wait: bool,

    /// On Ctrl-C, leave the import running (print the task id and the `wait` command)
    /// instead of cancelling it.
    #[arg(help_heading = "Import options", long)]
    pub detach: bool,

    #[command(flatten, next_help_heading = "Import options")]
    pub timing: crate::shared_flags::WaitFlags,

    /// Send DryRun=true: the API validates the request and imports nothing.
    #[arg(help_heading = "Import options", long)]
    pub dry_run: bool,

    #[command(flatten, next_help_heading = "Import options")]
    pub profile: crate::shared_flags::ProfileFlag,

    /// RPC signature.
    #[arg(help_heading = "Import options", long, value_enum, default_value_t = RpcSignature::HmacSha1)]
    pub signature: RpcSignature,

    #[command(flatten, next_help_heading = "Import options")]
    pub output: crate::shared_flags::OutputFlag,

    /// Print nothing but the result (no progress); with --output json the
    /// JSON result is still printed.
    #[arg(help_heading = "Import options", long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub fleet: crate::fleet_args::FleetArgs,
}

/// `ecs-preflight wait`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    ecs-preflight wait --region cn-hangzhou --task-id t-bp67acfmxazb4p1234\n\n\
    Ctrl-C stops waiting; the import goes on.\n\
    Exit codes: 0 image available, 1 import failed or timed out, 2 usage or environment error.")]
pub struct WaitArgs {
    /// RegionId of the import.
    #[arg(long, value_name = "REGION_ID")]
    pub region: String,

    /// The import task (t-…), as printed by `import`.
    #[arg(long, value_name = "TASK_ID")]
    pub task_id: String,

    /// ECS endpoint URL [default: https://ecs.REGION.aliyuncs.com, or the official map's].
    #[arg(long, value_name = "URL")]
    pub ecs_endpoint: Option<String>,

    /// Ask a local emulator at URL (`ecs-preflight emulator`); --ecs-endpoint wins.
    #[arg(long, value_name = "URL")]
    pub emulator: Option<String>,

    #[command(flatten)]
    pub timing: crate::shared_flags::WaitFlags,

    #[command(flatten)]
    pub profile: crate::shared_flags::ProfileFlag,

    #[command(flatten)]
    pub output: crate::shared_flags::OutputFlag,

    /// Print nothing but the result.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Parses `90s`, `30m`, `6h`, `1d`, `500ms` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 90s, 30m or 6h"))?;
    let secs = |mul: u64| {
        n.checked_mul(mul)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{s:?} is too long"))
    };
    match unit.trim() {
        "" | "s" => secs(1),
        "ms" => Ok(Duration::from_millis(n)),
        "m" | "min" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        other => Err(format!(
            "unknown unit {other:?} in {s:?} (use ms, s, m, h or d)"
        )),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs `import`.
pub fn run(args: ImportCmdArgs) -> Result<u8> {
    runtime()?.block_on(run_import(args))
}

/// Runs `wait`.
pub fn run_wait(args: WaitArgs) -> Result<u8> {
    runtime()?.block_on(run_wait_async(args))
}

/// Ctrl-C, registered when created (so a signal that comes right after is not lost).
struct Interrupt {
    #[cfg(unix)]
    sig: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn new() -> Result<Self> {
        Ok(Interrupt {
            #[cfg(unix)]
            sig: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("cannot catch Ctrl-C")?,
        })
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            self.sig.recv().await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Prints a result: JSON on stdout, or the human lines.
struct Printer {
    output: OutputFormat,
    quiet: bool,
}

impl Printer {
    fn progress(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    fn result(&self, v: &Value, human: &[String]) -> Result<()> {
        match self.output {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(v)?),
            OutputFormat::Human => {
                for line in human {
                    println!("{line}");
                }
            }
        }
        Ok(())
    }
}

fn findings_json(findings: &[ScopedFinding]) -> Value {
    serde_json::to_value(findings).unwrap_or(Value::Null)
}

fn findings_human(findings: &[ScopedFinding]) -> Vec<String> {
    let mut out = Vec::new();
    for f in findings {
        let sev = f.finding.severity;
        out.push(format!("{sev} {}: {}", f.finding.code, f.finding.message));
        if !f.finding.hint.is_empty() {
            out.push(format!("  fix: {}", f.finding.hint));
        }
    }
    out
}

fn required<'a>(v: &'a Option<String>, flag: &str) -> Result<&'a str> {
    match v.as_deref() {
        Some(s) if !s.is_empty() => Ok(s),
        _ => bail!("{flag} is required for import"),
    }
}

fn ecs_client(
    region: &str,
    endpoints: &preflight_pipeline::Endpoints,
    signature: RpcSignature,
    creds: Arc<CredentialProvider>,
) -> Result<ecs::Client> {
    let mut cfg = endpoints.ecs_config(region);
    cfg.signature = signature.method();
    Ok(ecs::Client::new(cfg, creds)?)
}

async fn run_import(args: ImportCmdArgs) -> Result<u8> {
    let pr = Printer {
        output: args.output.format,
        quiet: args.quiet,
    };
    let region = required(&args.import.region, "--region")?.to_string();
    required(&args.import.bucket, "--bucket")?;
    let object = required(&args.import.object, "--object")?.to_string();
    let mut fleet_plan = args.fleet.plan();
    fleet_plan
        .validate(&region)
        .map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?;
    let params = args.import.to_params()?;
    let data_keys: Vec<String> = args
        .import
        .data_disk
        .iter()
        .map(|k| k.to_string_lossy().into_owned())
        .collect();
    let eval = preflight_pipeline::import::plan_import(
        params,
        args.import.format.as_deref(),
        &object,
        &data_keys,
    );
    let mut plan = eval.plan.clone();
    if eval.has_errors() {
        return refused(&pr, &region, &plan, &eval.findings, Vec::new());
    }

    let endpoints = args.endpoints.endpoints();
    let creds = args.profile.credentials(endpoints.sts.clone());
    let (_, source) = creds.get_with_source().await?;
    pr.progress(&format!("credentials: {source}"));
    let ecs = ecs_client(&region, &endpoints, args.signature, creds.clone())?;
    // A copy region ECS does not know is refused before ImportImage.
    match preflight_pipeline::fleet::check_regions(&ecs, &fleet_plan).await {
        Ok(Some(note)) => pr.progress(&note),
        Ok(None) => {}
        Err(e) => anyhow::bail!("{}: {e}", e.code()),
    }

    // Cloud rules, before ImportImage.
    let cloud = preflight_pipeline::import::cloud_rules(
        &plan,
        &region,
        &endpoints,
        args.signature_version.version(),
        &creds,
        &ecs,
    )
    .await?;
    for w in cloud.findings.iter().filter(|f| !f.finding.is_error()) {
        pr.progress(&format!(
            "{} {}: {}",
            w.finding.severity, w.finding.code, w.finding.message
        ));
    }
    if cloud.has_errors() {
        return refused(&pr, &region, &plan, &cloud.findings, cloud.fix);
    }
    let own_earlier = cloud.own_earlier;

    let note = |m: String| pr.progress(&m);
    let started = match preflight_pipeline::import_image_fresh(
        &ecs,
        &mut plan,
        &cloud.etags,
        &ImportOptions {
            dry_run: args.dry_run,
        },
        &note,
    )
    .await
    {
        Ok(ImportOutcome::DryRunPassed { request_id }) => {
            pr.result(
                &json!({"status": "dry_run_passed", "region": region, "request_id": request_id,
                        "client_token": plan.client_token, "plan": plan}),
                &[format!(
                    "dry run passed: ImportImage would be accepted in {region} (RequestId {request_id})"
                )],
            )?;
            return Ok(EXIT_OK);
        }
        Ok(ImportOutcome::Started(r)) => r,
        Err(e @ ecs::Error::Api { .. }) => {
            let code = e.code().unwrap_or_default().to_string();
            let message = e.message().unwrap_or_default().to_string();
            let mut v = json!({"status": "refused", "region": region,
                               "error": {"code": code, "message": message, "detail": e.to_string()}});
            let mut human = vec![format!("ImportImage refused: {e}")];
            if let Some(fix) = preflight_pipeline::catalogue::fix_for_api_code(&code) {
                v["error"]["fix"] = json!(fix);
                human.push(format!("  fix: {fix}"));
            }
            pr.result(&v, &human)?;
            return Ok(EXIT_FAILED);
        }
        Err(e) => return Err(e).context("ImportImage"),
    };
    let reused = own_earlier
        .as_ref()
        .is_some_and(|i| i.image_id == started.image_id);
    if reused {
        pr.progress(&format!(
            "image {} was already imported from these objects by an earlier run (same ClientToken)",
            started.image_id
        ));
    }
    let base = json!({
        "region": region,
        "image_id": started.image_id,
        "task_id": started.task_id,
        "image_name": plan.image_name,
        "client_token": plan.client_token,
        "reused": reused,
        "request_id": started.request_id,
    });
    // What follows this import from another shell: printed on --no-wait, detach, timeout.
    let resume = wait_command(
        &region,
        &started.task_id,
        args.endpoints.ecs_for_wait().as_deref(),
        args.profile.profile.as_deref(),
    );
    if args.no_wait {
        let mut v = base.clone();
        v["status"] = json!("importing");
        v["wait_command"] = json!(resume);
        pr.result(
            &v,
            &[
                format!(
                    "import started: image {} task {} in {region}",
                    started.image_id, started.task_id
                ),
                format!("follow it with: {resume}"),
            ],
        )?;
        return Ok(EXIT_OK);
    }
    let mut interrupt = Interrupt::new()?;
    pr.progress(&format!(
        "waiting for import task {} (image {}) in {region}; Ctrl-C {}",
        started.task_id,
        started.image_id,
        if args.detach {
            "detaches"
        } else {
            "cancels the import"
        }
    ));
    let bar = crate::task_bar::TaskBar::new(pr.quiet);
    let waited = tokio::select! {
        r = watch::wait(&ecs, &started.task_id, &started.image_id, args.timing.poll_interval, args.timing.timeout, |p| {
            bar.update(p);
        }) => Some(r),
        () = interrupt.recv() => None,
    };
    bar.finish();
    let Some(waited) = waited else {
        if args.detach {
            let mut v = base.clone();
            v["status"] = json!("detached");
            v["wait_command"] = json!(resume);
            pr.result(
                &v,
                &[
                    format!(
                        "detached: import task {} (image {}) goes on in {region}",
                        started.task_id, started.image_id
                    ),
                    resume.clone(),
                ],
            )?;
            return Ok(EXIT_OK);
        }
        pr.progress(&format!(
            "interrupted: cancelling import task {} (CancelTask)",
            started.task_id
        ));
        let cancelled = ecs.cancel_task(&started.task_id).await;
        let mut v = base.clone();
        v["status"] = json!("cancelled");
        let line = match &cancelled {
            Ok(_) => format!(
                "cancelled import task {} (CancelTask sent); image {} will not be created",
                started.task_id, started.image_id
            ),
            Err(e) => {
                v["error"] = json!({"code": e.code(), "detail": e.to_string()});
                format!("CancelTask for {} failed: {e}", started.task_id)
            }
        };
        pr.result(&v, &[line])?;
        return Ok(crate::EXIT_INTERRUPTED);
    };
    let waited = match waited {
        Ok(w) => w,
        Err(e) => return wait_failed(&pr, base, &e, &resume),
    };
    let mut base = base;
    if let (WaitOutcome::Available(image), false) = (&waited, fleet_plan.is_empty()) {
        let ctx = preflight_pipeline::fleet::FleetContext {
            endpoints: endpoints.clone(),
            credentials: creds.clone(),
            signature: args.signature.method(),
            poll_interval: args.timing.poll_interval,
            timeout: args.timing.timeout,
        };
        let talk = !pr.quiet;
        let progress =
            crate::fleet_args::FleetProgress::new(talk, talk && pr.output == OutputFormat::Human);
        pr.progress("copy and share");
        let outcome = preflight_pipeline::fleet::copy_and_share(
            &ctx,
            &region,
            image,
            &fleet_plan,
            Arc::new(move |e| progress.event(&e)),
        )
        .await;
        match outcome {
            Ok(o) => base["images"] = crate::fleet_args::render(&o).0,
            Err(e) => {
                let mut v = base;
                v["status"] = json!("copy_failed");
                v["error"] = json!({"code": e.code(), "message": e.to_string()});
                pr.result(
                    &v,
                    &[format!(
                        "image {} is Available in {region}, but {e}",
                        image.image_id
                    )],
                )?;
                return Ok(if e.is_usage() {
                    crate::EXIT_ENV
                } else {
                    EXIT_FAILED
                });
            }
        }
    }
    finish(&pr, base, &region, &started.task_id, waited, &resume)
}

/// Following the task failed after every retry: the import goes on; say how to pick it up.
fn wait_failed(pr: &Printer, base: Value, e: &ecs::Error, resume: &str) -> Result<u8> {
    let mut v = base;
    v["status"] = json!("error");
    v["error"] = json!({"code": e.code(), "detail": e.to_string()});
    v["wait_command"] = json!(resume);
    pr.result(
        &v,
        &[
            format!("cannot follow the import (it goes on in the cloud): {e}"),
            format!("pick it up again with: {resume}"),
        ],
    )?;
    eprintln!("ecs-preflight: error: {e}");
    Ok(crate::EXIT_ENV)
}

fn refused(
    pr: &Printer,
    region: &str,
    plan: &Plan,
    findings: &[ScopedFinding],
    extra: Vec<String>,
) -> Result<u8> {
    let mut human = vec!["import refused before ImportImage:".to_string()];
    human.extend(
        findings_human(findings)
            .into_iter()
            .map(|l| format!("  {l}")),
    );
    human.extend(extra.iter().cloned());
    let mut v = json!({
        "status": "refused",
        "region": region,
        "findings": findings_json(findings),
        "plan": plan,
    });
    if !extra.is_empty() {
        v["fix"] = json!({"trust_policy": serde_json::from_str::<Value>(TRUST_POLICY).unwrap_or(Value::Null),
                          "attach_policy": preflight_rules::import_role(plan).1, "steps": extra});
    }
    pr.result(&v, &human)?;
    Ok(EXIT_FAILED)
}

/// The `ecs-preflight wait` command that picks up an import: the region and task, plus the
/// endpoint and profile this run used, so it asks the same service with the same identity.
pub(crate) fn wait_command(
    region: &str,
    task_id: &str,
    ecs_endpoint: Option<&str>,
    profile: Option<&str>,
) -> String {
    let mut cmd = format!("ecs-preflight wait --region {region} --task-id {task_id}");
    if let Some(e) = ecs_endpoint {
        cmd.push_str(&format!(" --ecs-endpoint {e}"));
    }
    if let Some(p) = profile {
        cmd.push_str(&format!(" --profile {p}"));
    }
    cmd
}

fn finish(
    pr: &Printer,
    base: Value,
    region: &str,
    task_id: &str,
    waited: WaitOutcome,
    resume: &str,
) -> Result<u8> {
    let mut v = base;
    match waited {
        WaitOutcome::Available(image) => {
            v["status"] = json!("available");
            v["image_id"] = json!(image.image_id);
            v["image"] = serde_json::to_value(&image)?;
            let mut human = vec![
                format!("image {} is Available in {region}", image.image_id),
                format!("  name: {}", image.image_name),
                format!("  task: {task_id}"),
            ];
            if let Ok(o) = serde_json::from_value(v["images"].clone()) {
                human.extend(
                    crate::fleet_args::render(&preflight_pipeline::fleet::FleetOutcome {
                        images: o,
                    })
                    .1,
                );
            }
            pr.result(&v, &human)?;
            Ok(EXIT_OK)
        }
        WaitOutcome::Failed { code, message } => {
            v["status"] = json!("failed");
            v["error"] = json!({"code": code, "message": message});
            pr.result(
                &v,
                &[format!("import failed: {code}: {message} (task {task_id})")],
            )?;
            Ok(EXIT_FAILED)
        }
        WaitOutcome::TimedOut(p) => {
            v["status"] = json!("timed_out");
            v["progress"] = serde_json::to_value(&p)?;
            pr.result(
                &v,
                &[
                    format!(
                        "still importing after the timeout (task {} {}); the import goes on",
                        p.task_status, p.task_process
                    ),
                    resume.to_string(),
                ],
            )?;
            Ok(EXIT_FAILED)
        }
    }
}

async fn run_wait_async(args: WaitArgs) -> Result<u8> {
    let pr = Printer {
        output: args.output.format,
        quiet: args.quiet,
    };
    let creds = args.profile.credentials(None);
    let mut endpoints = match &args.emulator {
        Some(url) => preflight_pipeline::Endpoints::emulator(url),
        None => preflight_pipeline::Endpoints::default(),
    };
    if let Some(e) = &args.ecs_endpoint {
        endpoints.ecs = Some(e.clone());
    }
    let ecs = ecs_client(&args.region, &endpoints, RpcSignature::HmacSha1, creds)?;
    let resume = wait_command(
        &args.region,
        &args.task_id,
        endpoints.ecs.as_deref(),
        args.profile.profile.as_deref(),
    );
    let tasks = match ecs
        .describe_tasks(&ecs::DescribeTasksQuery {
            task_ids: vec![args.task_id.clone()],
            ..Default::default()
        })
        .await
    {
        Ok(tasks) => tasks,
        // Every retry spent (an outage, a dropped link): the same command picks it up later.
        Err(e) => {
            let base = json!({"region": args.region, "task_id": args.task_id});
            return wait_failed(&pr, base, &e, &resume);
        }
    };
    let Some(task) = tasks.into_iter().find(|t| t.task_id == args.task_id) else {
        bail!("task {} is not in {}", args.task_id, args.region);
    };
    let base =
        json!({"region": args.region, "task_id": task.task_id, "image_id": task.resource_id});
    let mut interrupt = Interrupt::new()?;
    pr.progress(&format!(
        "waiting for import task {} (image {}) in {}; Ctrl-C stops waiting, the import goes on",
        task.task_id, task.resource_id, args.region
    ));
    let bar = crate::task_bar::TaskBar::new(pr.quiet);
    let waited = tokio::select! {
        r = watch::wait(&ecs, &task.task_id, &task.resource_id, args.timing.poll_interval, args.timing.timeout, |p| {
            bar.update(p);
        }) => Some(r),
        () = interrupt.recv() => None,
    };
    bar.finish();
    match waited {
        Some(w) => match w {
            Ok(w) => finish(&pr, base, &args.region, &task.task_id, w, &resume),
            Err(e) => wait_failed(&pr, base, &e, &resume),
        },
        None => {
            let mut v = base;
            v["status"] = json!("detached");
            pr.result(
                &v,
                &[format!(
                    "stopped waiting; import task {} goes on",
                    task.task_id
                )],
            )?;
            Ok(EXIT_FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
