//! The use cases' results as the CLI shows them: one JSON value (what `--output json`
//! prints) and the human lines, built here so a Rust caller gets exactly what a shell
//! pipeline gets from `ecs-preflight`. The exit code stays the caller's choice.
//!
//! `import` and `upload-and-import` report some results the same way (a refusal, an API
//! refusal, a started, cancelled or finished import, the copies): those pieces are written
//! once below and used by both renderings.

use preflight_ecs::{self as ecs, WaitOutcome};
use preflight_rules::{Plan, ScopedFinding};
use serde_json::{json, Value};

use crate::batch::{BatchReport, ImageResult, ManifestImage};
use crate::fleet::{CopyStopState, FleetOutcome, StoppedCopy};
use crate::import::{ImportResult, StartedImport};
use crate::wait::{Followed, WaitResult};
use crate::{DryRun, Outcome, PipelineError, RunEnd, TRUST_POLICY};

/// A result as shown: the JSON value and the lines for people.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// What `--output json` prints (pretty-printed).
    pub json: Value,
    /// What the human output prints, one line each (may be empty).
    pub lines: Vec<String>,
}

impl Rendered {
    fn new(json: Value, lines: Vec<String>) -> Self {
        Rendered { json, lines }
    }
}

/// The `ecs-preflight wait` command that picks up an import: the region and task, plus the
/// endpoint and profile this run used, so it asks the same service with the same identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaitCommand {
    /// The region of the import.
    pub region: String,
    /// The ECS endpoint this run used, when not the default.
    pub ecs_endpoint: Option<String>,
    /// The credentials profile this run used, when not the default.
    pub profile: Option<String>,
}

impl WaitCommand {
    /// The command line that follows `task_id`.
    pub fn for_task(&self, task_id: &str) -> String {
        let mut cmd = format!(
            "ecs-preflight wait --region {} --task-id {task_id}",
            self.region
        );
        if let Some(e) = &self.ecs_endpoint {
            cmd.push_str(&format!(" --ecs-endpoint {e}"));
        }
        if let Some(p) = &self.profile {
            cmd.push_str(&format!(" --profile {p}"));
        }
        cmd
    }
}

/// A refusal's `fix` for a missing RAM role: the trust policy, the policy to attach, the steps.
pub fn role_fix_json(plan: &Plan, steps: &[String]) -> Value {
    json!({"trust_policy": serde_json::from_str::<Value>(TRUST_POLICY).unwrap_or(Value::Null),
           "attach_policy": preflight_rules::import_role(plan).1, "steps": steps})
}

/// A refusal by the rules (nothing sent): `header`, then each finding and its fix, then the
/// steps that create a missing role.
fn refusal(
    header: &str,
    region: &str,
    findings: &[ScopedFinding],
    role_steps: &[String],
    plan: &Plan,
) -> Rendered {
    let mut lines = vec![header.to_string()];
    for f in findings {
        let f = &f.finding;
        lines.push(format!("  {} {}: {}", f.severity, f.code, f.message));
        if !f.hint.is_empty() {
            lines.push(format!("    fix: {}", f.hint));
        }
    }
    lines.extend(role_steps.iter().cloned());
    let mut json = json!({"status": "refused", "region": region, "findings": findings,
                          "plan": plan});
    if !role_steps.is_empty() {
        json["fix"] = role_fix_json(plan, role_steps);
    }
    Rendered::new(json, lines)
}

/// ImportImage answered with an API error: adds the catalogue's fix, when it has one.
fn api_refusal(mut json: Value, first_line: String, fix: Option<&str>) -> Rendered {
    let mut lines = vec![first_line];
    if let Some(fix) = fix {
        json["error"]["fix"] = json!(fix);
        lines.push(format!("  fix: {fix}"));
    }
    Rendered::new(json, lines)
}

/// The lines of an import started and not waited for.
fn started_lines(image_id: &str, task_id: &str, region: &str, resume: &str) -> Vec<String> {
    vec![
        format!("import started: image {image_id} task {task_id} in {region}"),
        format!("follow it with: {resume}"),
    ]
}

fn cancelled_line(image_id: &str, task_id: &str) -> String {
    format!(
        "cancelled import task {task_id} (CancelTask sent); image {image_id} will not be created"
    )
}

fn cancel_failed_line(task_id: &str, e: &dyn std::fmt::Display) -> String {
    format!("CancelTask for {task_id} failed: {e}")
}

/// A stop while copying (`import` and `upload-and-import`): the image is available; each
/// copy is cancelled, available, left going on (detached) or not cancelled (an error).
fn copies_stopped(
    mut json: Value,
    region: &str,
    image_id: &str,
    copies: &[StoppedCopy],
) -> Rendered {
    json["status"] = json!("interrupted");
    json["image_id"] = json!(image_id);
    json["image_status"] = json!("Available");
    json["copies"] = serde_json::to_value(copies).unwrap_or(Value::Null);
    let left = copies.iter().any(|c| c.state == CopyStopState::Left);
    let mut lines = vec![format!(
        "interrupted while copying: image {image_id} is Available in {region}"
    )];
    for c in copies {
        lines.push(match c.state {
            CopyStopState::Cancelled => format!(
                "  copy {} in {}: cancelled (CancelCopyImage sent; ECS deletes it)",
                c.image_id, c.region
            ),
            CopyStopState::Available => {
                format!("  copy {} in {}: Available (kept)", c.image_id, c.region)
            }
            CopyStopState::Left => format!(
                "  copy {} in {}: goes on in the cloud (detached)",
                c.image_id, c.region
            ),
            CopyStopState::CancelFailed => format!(
                "  copy {} in {}: not cancelled, it may go on: {}",
                c.image_id,
                c.region,
                c.error.as_deref().unwrap_or_default()
            ),
        });
    }
    lines.push(if left {
        "run the same command again to wait for the copies and share".into()
    } else {
        "run the same command again to copy and share".into()
    });
    Rendered::new(json, lines)
}

impl FleetOutcome {
    /// The result's `images` array: every image with region, state and shares.
    pub fn to_json(&self) -> Value {
        json!(self.images)
    }

    /// The result's lines about the images (none when no copy or share was asked).
    pub fn lines(&self) -> Vec<String> {
        if self.images.is_empty() {
            return Vec::new();
        }
        let mut lines = vec!["  images:".to_string()];
        for i in &self.images {
            let mut line = format!(
                "    {:16} {} {} ({})",
                i.region, i.image_id, i.status, i.role
            );
            if i.reused {
                line.push_str(", made by an earlier run");
            }
            if !i.shared_with.is_empty() {
                line.push_str(&format!(", shared with {}", i.shared_with.join(", ")));
            }
            lines.push(line);
        }
        lines
    }

    /// Adds `images` to `json` when there are any.
    fn add_to(&self, json: &mut Value) {
        if !self.images.is_empty() {
            json["images"] = self.to_json();
        }
    }
}

/// What every result of a started import says.
fn started_json(s: &StartedImport) -> Value {
    json!({
        "region": s.region,
        "image_id": s.image_id,
        "task_id": s.task_id,
        "image_name": s.plan.image_name,
        "client_token": s.plan.client_token,
        "reused": s.reused,
        "request_id": s.request_id,
    })
}

/// Following the task failed after every retry: the import goes on; say how to pick it up.
fn wait_lost(mut json: Value, e: &ecs::Error, resume: &str) -> Rendered {
    json["status"] = json!("error");
    json["error"] = json!({"code": e.code(), "detail": e.to_string()});
    json["wait_command"] = json!(resume);
    Rendered::new(
        json,
        vec![
            format!("cannot follow the import (it goes on in the cloud): {e}"),
            format!("pick it up again with: {resume}"),
        ],
    )
}

/// How a followed task ended (`import` and `wait`).
fn waited(
    mut json: Value,
    region: &str,
    task_id: &str,
    outcome: &WaitOutcome,
    fleet: &FleetOutcome,
    resume: &str,
) -> Rendered {
    match outcome {
        WaitOutcome::Available(image) => {
            fleet.add_to(&mut json);
            json["status"] = json!("available");
            json["image_id"] = json!(image.image_id);
            json["image"] = serde_json::to_value(image).unwrap_or(Value::Null);
            let mut lines = vec![
                format!("image {} is Available in {region}", image.image_id),
                format!("  name: {}", image.image_name),
                format!("  task: {task_id}"),
            ];
            lines.extend(fleet.lines());
            Rendered::new(json, lines)
        }
        WaitOutcome::Failed { code, message } => {
            json["status"] = json!("failed");
            json["error"] = json!({"code": code, "message": message});
            Rendered::new(
                json,
                vec![format!("import failed: {code}: {message} (task {task_id})")],
            )
        }
        WaitOutcome::TimedOut(p) => {
            json["status"] = json!("timed_out");
            json["progress"] = serde_json::to_value(p).unwrap_or(Value::Null);
            Rendered::new(
                json,
                vec![
                    format!(
                        "still importing after the timeout (task {} {}); the import goes on",
                        p.task_status, p.task_process
                    ),
                    resume.to_string(),
                ],
            )
        }
    }
}

impl ImportResult {
    /// What `ecs-preflight import` prints for this result. `resume` names the region and
    /// how to follow the import from another shell.
    pub fn render(&self, resume: &WaitCommand) -> Rendered {
        let region = resume.region.as_str();
        match self {
            ImportResult::Refused {
                findings,
                fix,
                plan,
            } => refusal(
                "import refused before ImportImage:",
                region,
                findings,
                fix,
                plan,
            ),
            ImportResult::DryRunPassed { request_id, plan } => Rendered::new(
                json!({"status": "dry_run_passed", "region": region, "request_id": request_id,
                       "client_token": plan.client_token, "plan": plan}),
                vec![format!(
                    "dry run passed: ImportImage would be accepted in {region} (RequestId {request_id})"
                )],
            ),
            ImportResult::ApiRefused { error, fix } => api_refusal(
                json!({"status": "refused", "region": region,
                       "error": {"code": error.code().unwrap_or_default(),
                                 "message": error.message().unwrap_or_default(),
                                 "detail": error.to_string()}}),
                format!("ImportImage refused: {error}"),
                *fix,
            ),
            ImportResult::Interrupted => Rendered::new(
                json!({"status": "interrupted", "region": region}),
                vec!["interrupted before ImportImage: nothing was imported".into()],
            ),
            ImportResult::Started(s) => {
                let resume = resume.for_task(&s.task_id);
                let mut json = started_json(s);
                json["status"] = json!("importing");
                json["wait_command"] = json!(resume);
                let lines = started_lines(&s.image_id, &s.task_id, region, &resume);
                Rendered::new(json, lines)
            }
            ImportResult::Detached(s) => {
                let resume = resume.for_task(&s.task_id);
                let mut json = started_json(s);
                json["status"] = json!("detached");
                json["wait_command"] = json!(resume);
                let first = format!(
                    "detached: import task {} (image {}) goes on in {region}",
                    s.task_id, s.image_id
                );
                Rendered::new(json, vec![first, resume])
            }
            ImportResult::Cancelled { started: s, error } => {
                let mut json = started_json(s);
                json["status"] = json!("cancelled");
                let line = match error {
                    None => cancelled_line(&s.image_id, &s.task_id),
                    Some(e) => {
                        json["error"] = json!({"code": e.code(), "detail": e.to_string()});
                        cancel_failed_line(&s.task_id, e)
                    }
                };
                Rendered::new(json, vec![line])
            }
            ImportResult::WaitFailed { started: s, error } => {
                wait_lost(started_json(s), error, &resume.for_task(&s.task_id))
            }
            ImportResult::CopiesStopped {
                started: s,
                image,
                copies,
            } => copies_stopped(started_json(s), region, &image.image_id, copies),
            ImportResult::CopyFailed {
                started: s,
                image,
                error,
            } => {
                let mut json = started_json(s);
                json["status"] = json!("copy_failed");
                json["error"] = json!({"code": error.code(), "message": error.to_string()});
                Rendered::new(
                    json,
                    vec![format!(
                        "image {} is Available in {region}, but {error}",
                        image.image_id
                    )],
                )
            }
            ImportResult::Finished {
                started: s,
                outcome,
                fleet,
            } => waited(
                started_json(s),
                region,
                &s.task_id,
                outcome,
                fleet,
                &resume.for_task(&s.task_id),
            ),
        }
    }
}

impl WaitResult {
    /// What `ecs-preflight wait --task-id TASK_ID` prints for this result.
    pub fn render(&self, task_id: &str, resume: &WaitCommand) -> Rendered {
        let region = resume.region.as_str();
        let mut json = json!({"region": region, "task_id": task_id});
        if let Some(id) = &self.image_id {
            json["image_id"] = json!(id);
        }
        let resume = resume.for_task(task_id);
        match &self.followed {
            Followed::Done(w) => {
                waited(json, region, task_id, w, &FleetOutcome::default(), &resume)
            }
            Followed::Lost(e) => wait_lost(json, e, &resume),
            Followed::Stopped => {
                json["status"] = json!("detached");
                Rendered::new(
                    json,
                    vec![format!("stopped waiting; import task {task_id} goes on")],
                )
            }
        }
    }
}

impl Outcome {
    /// What `ecs-preflight upload-and-import` prints once the image is available.
    pub fn render(&self) -> Rendered {
        let mut json = json!({
            "status": "available",
            "image_id": self.image_id,
            "task_id": self.task_id,
            "region": self.region,
            "client_token": self.client_token,
            "reused": self.reused,
            "stage_seconds": self.stage_seconds,
            "objects_deleted": self.objects_deleted,
            "uploads": self.uploads,
            "findings": self.findings,
            "plan": self.plan,
            "image": self.image,
        });
        self.fleet.add_to(&mut json);
        let s = &self.stage_seconds;
        let mut lines = vec![
            format!("image {} is Available in {}", self.image_id, self.region),
            format!("  task:   {}", self.task_id),
            format!("  region: {}", self.region),
            format!(
                "  time:   check {:.2} s, upload {:.2} s, import {:.2} s, wait {:.2} s",
                s.check, s.upload, s.import, s.wait
            ),
        ];
        if !self.fleet.images.is_empty() {
            lines.push(format!("  copy:   {:.2} s", s.copy));
        }
        lines.extend(self.fleet.lines());
        Rendered::new(json, lines)
    }
}

impl DryRun {
    /// What `ecs-preflight upload-and-import --dry-run` prints when every check passed.
    pub fn render(&self) -> Rendered {
        let mut json = serde_json::to_value(self).unwrap_or(Value::Null);
        json["status"] = json!("dry_run_passed");
        let mut lines = vec![format!(
            "dry run passed: every check holds in {}; nothing was uploaded or imported",
            self.region
        )];
        for (disk, u) in self.uploads.iter().enumerate() {
            lines.push(format!(
                "  disk {disk}: {} → oss://{}/{} ({} bytes, {})",
                u.path.display(),
                u.bucket,
                u.key,
                u.size,
                u.format
            ));
        }
        if let Some(id) = &self.earlier_image {
            lines.push(format!(
                "  an earlier run already imported image {id} from these objects: a run reports it"
            ));
        }
        Rendered::new(json, lines)
    }
}

impl RunEnd {
    /// What `ecs-preflight upload-and-import` prints for how the run ended.
    pub fn render(&self, resume: &WaitCommand) -> Rendered {
        let region = resume.region.as_str();
        match self {
            RunEnd::Available(o) => o.render(),
            RunEnd::Importing { image_id, task_id } => {
                let resume = resume.for_task(task_id);
                Rendered::new(
                    json!({"status": "importing", "region": region, "image_id": image_id,
                           "task_id": task_id, "wait_command": resume}),
                    started_lines(image_id, task_id, region, &resume),
                )
            }
            RunEnd::InterruptedCopying {
                image_id,
                task_id,
                copies,
            } => copies_stopped(
                json!({"region": region, "task_id": task_id}),
                region,
                image_id,
                copies,
            ),
            RunEnd::Detached { image_id, task_id } => {
                let resume = resume.for_task(task_id);
                Rendered::new(
                    json!({"status": "detached", "region": region, "image_id": image_id,
                           "task_id": task_id, "wait_command": resume}),
                    vec![format!(
                        "detached: import task {task_id} (image {image_id}) goes on; {resume}"
                    )],
                )
            }
            RunEnd::Cancelled {
                image_id,
                task_id,
                error: None,
            } => Rendered::new(
                json!({"status": "cancelled", "region": region, "image_id": image_id,
                       "task_id": task_id}),
                vec![cancelled_line(image_id, task_id)],
            ),
            RunEnd::Cancelled {
                image_id,
                task_id,
                error: Some(e),
            } => Rendered::new(
                json!({"status": "interrupted", "region": region, "image_id": image_id,
                       "task_id": task_id, "error": {"code": e.code(), "message": e.full_message()}}),
                vec![cancel_failed_line(task_id, &e.full_message())],
            ),
            RunEnd::Interrupted => Rendered::new(
                json!({"status": "interrupted", "region": region}),
                vec!["interrupted: run the same command again to resume (the upload continues from its checkpoint)".to_string()],
            ),
        }
    }
}

impl PipelineError {
    /// What `ecs-preflight upload-and-import` prints when the run ended in this error (the
    /// lines are empty for an environment error, which the caller reports on stderr).
    pub fn render(&self, resume: &WaitCommand) -> Rendered {
        let region = resume.region.as_str();
        match self {
            PipelineError::Refused {
                findings,
                fix,
                plan,
            } => {
                let mut r = refusal(
                    "refused before any upload or ImportImage:",
                    region,
                    findings,
                    fix,
                    plan,
                );
                r.json["error_code"] = json!(self.code());
                if findings
                    .iter()
                    .any(|f| f.finding.code.starts_with("GUEST.") || f.disk.is_some())
                {
                    r.lines
                        .push("  (accept a finding on purpose with --allow CODE)".to_string());
                }
                r
            }
            PipelineError::ImportFailed {
                image_id,
                task_id,
                code,
                message,
            } => Rendered::new(
                json!({"status": "failed", "region": region, "image_id": image_id,
                       "task_id": task_id, "error": {"code": code, "message": message}}),
                vec![format!(
                    "import failed: {code}: {message} (image {image_id}, task {task_id})"
                )],
            ),
            PipelineError::TimedOut {
                image_id, task_id, ..
            } => Rendered::new(
                json!({"status": "timed_out", "region": region, "image_id": image_id,
                       "task_id": task_id}),
                vec![self.to_string(), resume.for_task(task_id)],
            ),
            PipelineError::WaitFailed {
                image_id, task_id, ..
            } => {
                let resume = resume.for_task(task_id);
                Rendered::new(
                    json!({"status": "error", "region": region, "image_id": image_id,
                           "task_id": task_id,
                           "error": {"code": self.code(), "message": self.full_message()},
                           "wait_command": resume}),
                    vec![
                        self.full_message(),
                        format!("pick it up again with: {resume}"),
                    ],
                )
            }
            PipelineError::ImportRefused { code, message } => api_refusal(
                json!({"status": "refused", "region": region,
                       "error": {"code": code, "message": message}}),
                self.to_string(),
                crate::catalogue::fix_for_api_code(code),
            ),
            _ => {
                let mut json = json!({"status": "error", "region": region,
                                      "error": {"code": self.code(), "message": self.full_message()}});
                if self.is_retryable() {
                    json["resumable"] = json!(true);
                }
                Rendered::new(json, Vec::new())
            }
        }
    }
}

impl BatchReport {
    /// One JSON row per image, in manifest order (`why` says what failed).
    pub fn rows(&self, images: &[ManifestImage]) -> Vec<Value> {
        images
            .iter()
            .zip(&self.results)
            .map(|(image, r)| r.row(image))
            .collect()
    }

    /// What `ecs-preflight batch --output json` prints; `continue_command` is printed
    /// when the batch was interrupted.
    pub fn to_json(&self, images: &[ManifestImage], continue_command: &str) -> Value {
        let status = if self.interrupted {
            "interrupted"
        } else {
            "complete"
        };
        let mut json = json!({"status": status, "images": self.rows(images)});
        if self.interrupted {
            json["continue_command"] = json!(continue_command);
        }
        json
    }

    /// The summary table of `ecs-preflight batch`.
    pub fn lines(&self, images: &[ManifestImage]) -> Vec<String> {
        let rows: Vec<[String; 4]> = (self.rows(images).iter())
            .map(|r| {
                [
                    str_of(&r["image"]),
                    str_of(&r["status"]),
                    r["image_id"].as_str().unwrap_or("-").to_string(),
                    r["why"].as_str().unwrap_or("").to_string(),
                ]
            })
            .collect();
        table(&["IMAGE", "STATUS", "IMAGE ID", "WHY"], &rows)
    }

    /// True when every image is available.
    pub fn all_available(&self) -> bool {
        (self.results.iter()).all(|r| matches!(r, ImageResult::Available(_)))
    }
}

impl ImageResult {
    /// One image's row of the batch summary.
    pub fn row(&self, image: &ManifestImage) -> Value {
        let mut v = json!({"image": image.name, "line": image.line,
                           "path": image.system_disk.display().to_string(),
                           "region": image.region()});
        match self {
            ImageResult::Available(o) => {
                v["status"] = json!("available");
                v["image_id"] = json!(o.image_id);
                v["task_id"] = json!(o.task_id);
                v["reused"] = json!(o.reused);
                v["uploads"] = json!(o.uploads);
            }
            ImageResult::Failed(e) => {
                v["status"] = json!(if e.is_refusal() { "refused" } else { "failed" });
                v["error"] = json!({"code": e.code(), "message": e.full_message()});
                v["why"] = json!(why(e));
                if let PipelineError::Refused { findings, .. } = e {
                    v["findings"] = json!(findings);
                }
                if let PipelineError::ImportFailed {
                    image_id, task_id, ..
                } = e
                {
                    v["image_id"] = json!(image_id);
                    v["task_id"] = json!(task_id);
                }
            }
            ImageResult::Interrupted(reached) => {
                v["status"] = json!("interrupted");
                v["stage"] = json!(reached.stage);
                v["image_id"] = json!(reached.image_id);
                v["task_id"] = json!(reached.task_id);
                v["why"] = json!(match reached.stage {
                    Some(s) => format!("stopped in {s}"),
                    None => "stopped before its first stage".into(),
                });
            }
            ImageResult::NotStarted => {
                v["status"] = json!("not_started");
                v["why"] = json!("not started");
            }
        }
        v
    }
}

fn why(e: &PipelineError) -> String {
    match e {
        PipelineError::Refused { findings, .. } => findings
            .iter()
            .map(|f| format!("{}: {}", f.finding.code, f.finding.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => format!("{}: {}", e.code(), e.full_message()),
    }
}

/// `batch --check-only`'s row for one image: verdict, error and warning counts, the report.
pub fn check_row(image: &ManifestImage) -> Value {
    use preflight_report::Severity;
    let mut v = json!({"image": image.name, "line": image.line,
                       "path": image.system_disk.display().to_string()});
    let mut disks = vec![image.system_disk.clone()];
    disks.extend(image.data_disks.iter().cloned());
    match crate::check(&disks, &image.params) {
        Ok(report) => {
            let count = |s: Severity| {
                (report.findings.iter())
                    .filter(|f| f.finding.severity == s)
                    .count()
            };
            v["verdict"] = json!(report.verdict);
            v["errors"] = json!(count(Severity::Error));
            v["warnings"] = json!(count(Severity::Warning));
            v["report"] = serde_json::to_value(&report).unwrap_or(Value::Null);
        }
        Err(e) => {
            v["verdict"] = json!("error");
            v["errors"] = json!(1);
            v["warnings"] = json!(0);
            v["error"] = json!({"code": "PIPELINE.Read", "message": format!("{e:#}")});
        }
    }
    v
}

/// `batch --check-only`'s table, then each image's errors.
pub fn check_lines(rows: &[Value]) -> Vec<String> {
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                str_of(&r["image"]),
                str_of(&r["verdict"]),
                r["errors"].to_string(),
                r["warnings"].to_string(),
            ]
        })
        .collect();
    let mut lines = table(&["IMAGE", "VERDICT", "ERRORS", "WARNINGS"], &cells);
    for r in rows {
        let errors = r["report"]["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["severity"] == "error")
            .map(|f| format!("{} {}", str_of(&f["code"]), str_of(&f["message"])))
            .chain(r["error"]["message"].as_str().map(str::to_string));
        for why in errors {
            lines.push(format!("  {}: {why}", str_of(&r["image"])));
        }
    }
    lines
}

fn str_of(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// Columns padded to their widest cell; the last column is not padded.
fn table(head: &[&str], rows: &[[String; 4]]) -> Vec<String> {
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    let mut lines = vec![line(head.to_vec())];
    lines.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    lines
}

impl crate::upload::UploadResult {
    /// `ecs-preflight upload`'s result: `status: uploaded`, the object, its parts and the
    /// throughput; the lines name the object and its CRC-64.
    pub fn render(&self) -> Rendered {
        let seconds = self.seconds;
        #[allow(clippy::cast_precision_loss)]
        let mib_s = if seconds > 0.0 {
            self.size as f64 / 1_048_576.0 / seconds
        } else {
            0.0
        };
        let json = json!({
            "status": "uploaded",
            "bucket": self.bucket,
            "key": self.key,
            "size": self.size,
            // A string: JSON readers lose a u64's low digits.
            "crc64": self.crc64.to_string(),
            "etag": self.etag,
            "parts": self.parts,
            "parts_sent": self.parts_sent,
            "parts_reused": self.parts_reused,
            "part_size": self.part_size,
            "upload_id": self.upload_id,
            "already_there": self.already_there,
            "format": self.format,
            "conversion": self.conversion,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "mib_per_s": (mib_s * 10.0).round() / 10.0,
            "findings": self.findings,
            "bucket_facts": self.bucket_facts,
        });
        let mut lines = vec![if self.already_there {
            format!(
                "already on OSS, nothing sent: oss://{}/{}",
                self.bucket, self.key
            )
        } else {
            format!("uploaded oss://{}/{}", self.bucket, self.key)
        }];
        lines.push(format!("  format   {}", self.format));
        lines.push(format!("  size     {} bytes", self.size));
        lines.push(format!("  CRC-64   {} (verified: local = OSS)", self.crc64));
        lines.push(format!("  ETag     {}", self.etag));
        lines.push(format!(
            "  parts    {} ({} sent, {} already on OSS)",
            self.parts, self.parts_sent, self.parts_reused
        ));
        lines.push(format!("  time     {seconds:.1} s, {mib_s:.1} MiB/s"));
        let facts = &self.bucket_facts;
        if let Some(class) = &facts.storage_class {
            lines.push(format!(
                "  bucket   {}, default storage class {class} (this object: {})",
                facts.region.as_deref().unwrap_or("?"),
                preflight_oss::api::STORAGE_CLASS
            ));
        }
        Rendered::new(json, lines)
    }
}

/// `ecs-preflight upload`'s refusal by the destination and bucket rules (nothing sent):
/// `status: refused`, the key and every finding of the rules (warnings too, as the
/// [`Event::DestinationChecked`](crate::Event::DestinationChecked) that carried them). No
/// lines: the event already showed each finding with its hint.
pub fn upload_refusal(bucket: &str, key: &str, findings: &[preflight_report::Finding]) -> Rendered {
    Rendered::new(
        json!({"status": "refused", "bucket": bucket, "key": key, "findings": findings}),
        Vec::new(),
    )
}

impl crate::upload::AbortOutcome {
    /// `ecs-preflight upload --abort`'s result in `bucket`: the uploads aborted, or, when
    /// none was recorded here, each key looked at with what OSS has in progress for it.
    pub fn render(&self, bucket: &str) -> Rendered {
        let mut lines = Vec::new();
        for a in &self.aborted {
            lines.push(format!(
                "aborted upload {} of oss://{bucket}/{}; its parts are deleted",
                a.upload_id, a.key
            ));
        }
        for k in &self.not_recorded {
            lines.push(format!(
                "no interrupted upload of oss://{bucket}/{} is recorded here",
                k.key
            ));
            for u in &k.on_oss {
                lines.push(format!(
                    "  in progress on OSS (not started here, left alone): upload id {} since {}",
                    u.upload_id, u.initiated
                ));
            }
        }
        let status = if self.aborted.is_empty() {
            "not_recorded"
        } else {
            "aborted"
        };
        let json = json!({
            "status": status,
            "bucket": bucket,
            "aborted": self.aborted.iter()
                .map(|a| json!({"key": a.key, "upload_id": a.upload_id}))
                .collect::<Vec<_>>(),
            "not_recorded": self.not_recorded.iter()
                .map(|k| json!({"key": k.key, "on_oss": k.on_oss.iter()
                    .map(|u| json!({"upload_id": u.upload_id, "initiated": u.initiated}))
                    .collect::<Vec<_>>()}))
                .collect::<Vec<_>>(),
        });
        Rendered::new(json, lines)
    }
}
