//! The use cases' results as the CLI shows them: one JSON value (what `--output json`
//! prints), the human lines and the exit code, built here so a Rust caller gets exactly
//! what a shell pipeline gets from `ecs-preflight`. The text of every [`Event`] (the progress
//! lines) is here too: [`event_lines`].
//!
//! `import` and `upload-and-import` report some results the same way (a refusal, an API
//! refusal, a started, cancelled or finished import, the copies): those pieces are written
//! once below and used by both renderings.

use preflight_ecs::{self as ecs, WaitOutcome};
use preflight_oss::UploadEvent;
use preflight_rules::{Plan, ScopedFinding};
use serde_json::{json, Value};

use crate::batch::{BatchReport, ImageResult, ManifestImage};
use crate::catalogue::{all_rules, code_origin, SERVICE_CODES};
use crate::fleet::{CopyStopState, FleetEvent, FleetOutcome, StoppedCopy};
use crate::import::{ImportResult, StartedImport};
use crate::wait::{Followed, WaitResult};
use crate::TRUST_POLICY;
use crate::{CheckReport, Conversion, DryRun, Event, ImageReport, Outcome, PipelineError, RunEnd};
use preflight_report::{Finding, Severity};
use std::fmt::Write as _;

/// The exit codes of `ecs-preflight`, one meaning in every command.
pub mod exit {
    /// Done: no error finding, the image available, the upload verified.
    pub const OK: u8 = 0;
    /// Refused by a rule or by the service, or the import failed or timed out.
    pub const FAILED: u8 = 1;
    /// Usage or environment error (missing file, no credentials, network down).
    pub const USAGE: u8 = 2;
    /// Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}

/// A result as shown: the JSON value, the lines for people and the exit code.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// What `--output json` prints (pretty-printed); `null` prints nothing.
    pub json: Value,
    /// What the human output prints, one line each (may be empty).
    pub lines: Vec<String>,
    /// True when the human lines belong on stderr (an interruption, or `upload --abort`:
    /// stdout holds results only).
    pub lines_on_stderr: bool,
    /// Said on stderr after the result, `--quiet` or not: the error and what to do next.
    pub stderr: Vec<String>,
    /// The process's exit code for this result (one of [`exit`]).
    pub exit_code: u8,
}

impl Rendered {
    fn new(json: Value, lines: Vec<String>) -> Self {
        Rendered {
            json,
            lines,
            lines_on_stderr: false,
            stderr: Vec::new(),
            exit_code: exit::OK,
        }
    }

    fn exit(mut self, code: u8) -> Self {
        self.exit_code = code;
        self
    }

    fn say(mut self, line: String) -> Self {
        self.stderr.push(line);
        self
    }
}

/// How an error that ends a command is said on stderr.
pub fn error_line(e: &dyn std::fmt::Display) -> String {
    format!("ecs-preflight: error: {e}")
}

/// The exit code of a followed task: 0 only when the image is available.
fn waited_exit(outcome: &WaitOutcome) -> u8 {
    match outcome {
        WaitOutcome::Available(_) => exit::OK,
        WaitOutcome::Failed { .. } | WaitOutcome::TimedOut(_) => exit::FAILED,
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
    /// What `ecs-preflight import` prints for this result, and its exit code. `resume` names
    /// the region and how to follow the import from another shell.
    pub fn render(&self, resume: &WaitCommand) -> Rendered {
        let shown = self.shown(resume);
        match self {
            ImportResult::DryRunPassed { .. }
            | ImportResult::Started(_)
            | ImportResult::Detached(_) => shown,
            ImportResult::Refused { .. } | ImportResult::ApiRefused { .. } => {
                shown.exit(exit::FAILED)
            }
            ImportResult::Interrupted | ImportResult::CopiesStopped { .. } => {
                shown.exit(exit::INTERRUPTED)
            }
            ImportResult::Cancelled { started, .. } => shown.exit(exit::INTERRUPTED).say(format!(
                "interrupted: cancelling import task {} (CancelTask)",
                started.task_id
            )),
            ImportResult::WaitFailed { error, .. } => {
                shown.exit(exit::USAGE).say(error_line(error))
            }
            ImportResult::CopyFailed { error, .. } if error.is_usage() => shown.exit(exit::USAGE),
            ImportResult::CopyFailed { .. } => shown.exit(exit::FAILED),
            ImportResult::Finished { outcome, .. } => shown.exit(waited_exit(outcome)),
        }
    }

    fn shown(&self, resume: &WaitCommand) -> Rendered {
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
    /// What `ecs-preflight wait --task-id TASK_ID` prints for this result, and its exit code.
    pub fn render(&self, task_id: &str, resume: &WaitCommand) -> Rendered {
        let shown = self.shown(task_id, resume);
        match &self.followed {
            Followed::Done(w) => shown.exit(waited_exit(w)),
            Followed::Lost(e) => shown.exit(exit::USAGE).say(error_line(e)),
            Followed::Stopped => shown.exit(exit::FAILED),
        }
    }

    fn shown(&self, task_id: &str, resume: &WaitCommand) -> Rendered {
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
    /// What `ecs-preflight upload-and-import` prints for how the run ended, and its exit
    /// code. An interruption is said on stderr in human form: stdout holds results only.
    pub fn render(&self, resume: &WaitCommand) -> Rendered {
        let mut shown = self.shown(resume);
        if !matches!(
            self,
            RunEnd::Available(_) | RunEnd::Importing { .. } | RunEnd::Detached { .. }
        ) {
            shown.lines_on_stderr = true;
            shown.exit_code = exit::INTERRUPTED;
        }
        shown
    }

    fn shown(&self, resume: &WaitCommand) -> Rendered {
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
    /// What `ecs-preflight upload-and-import` prints when the run ended in this error, and
    /// its exit code: 1 for a refusal; else 2, the error (and whether a rerun resumes) said
    /// on stderr, no human lines.
    pub fn render(&self, resume: &WaitCommand) -> Rendered {
        let shown = self.shown(resume);
        if self.is_refusal() {
            return shown.exit(exit::FAILED);
        }
        let shown = shown
            .exit(exit::USAGE)
            .say(error_line(&self.full_message()));
        if self.is_retryable() {
            return shown.say("run the same command again to resume".to_string());
        }
        shown
    }

    fn shown(&self, resume: &WaitCommand) -> Rendered {
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

    /// What `ecs-preflight batch` prints: the JSON or the table, and the exit code (0 when
    /// every image is available); an interruption says on stderr how to continue.
    pub fn render(&self, images: &[ManifestImage], continue_command: &str) -> Rendered {
        let shown = Rendered::new(self.to_json(images, continue_command), self.lines(images));
        if self.interrupted {
            return shown
                .exit(exit::INTERRUPTED)
                .say("interrupted: uploads stopped where their checkpoints are; imports already started go on in ECS.".to_string())
                .say(format!("continue with: {continue_command}"));
        }
        shown.exit(if self.all_available() {
            exit::OK
        } else {
            exit::FAILED
        })
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

/// `ecs-preflight` with `args`, each quoted for a POSIX shell when it needs to be: the
/// command a user runs again (`batch`'s continue command).
pub fn command_line(args: impl IntoIterator<Item = String>) -> String {
    let mut words = vec!["ecs-preflight".to_string()];
    for a in args {
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
        words.push(if plain {
            a
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        });
    }
    words.join(" ")
}

/// `batch --check-only`'s result: the rows as JSON, the table, exit code 1 when an image
/// did not pass.
pub fn check_rows(rows: Vec<Value>) -> Rendered {
    let failed = rows.iter().any(|r| r["verdict"] != "pass");
    let lines = check_lines(&rows);
    Rendered::new(Value::Array(rows), lines).exit(if failed { exit::FAILED } else { exit::OK })
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
        let (o, seconds) = (&self.object, self.seconds);
        #[allow(clippy::cast_precision_loss)]
        let mib_s = if seconds > 0.0 {
            o.size as f64 / 1_048_576.0 / seconds
        } else {
            0.0
        };
        let json = json!({
            "status": "uploaded",
            "bucket": o.bucket,
            "key": o.key,
            "size": o.size,
            // A string: JSON readers lose a u64's low digits.
            "crc64": o.crc64.to_string(),
            "etag": o.etag,
            "parts": o.parts,
            "parts_sent": o.parts_sent,
            "parts_reused": o.parts_reused,
            "part_size": o.part_size,
            "upload_id": o.upload_id,
            "already_there": o.already_there,
            "format": self.format,
            "conversion": self.conversion,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "mib_per_s": (mib_s * 10.0).round() / 10.0,
            "findings": self.findings,
            "bucket_facts": self.bucket_facts,
        });
        let mut lines = vec![if o.already_there {
            format!("already on OSS, nothing sent: oss://{}/{}", o.bucket, o.key)
        } else {
            format!("uploaded oss://{}/{}", o.bucket, o.key)
        }];
        lines.push(format!("  format   {}", self.format));
        lines.push(format!("  size     {} bytes", o.size));
        lines.push(format!("  CRC-64   {} (verified: local = OSS)", o.crc64));
        lines.push(format!("  ETag     {}", o.etag));
        lines.push(format!(
            "  parts    {} ({} sent, {} already on OSS)",
            o.parts, o.parts_sent, o.parts_reused
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
/// [`Event::DestinationChecked`] that carried them). No
/// lines: the event already showed each finding with its hint.
pub fn upload_refusal(bucket: &str, key: &str, findings: &[preflight_report::Finding]) -> Rendered {
    Rendered::new(
        json!({"status": "refused", "bucket": bucket, "key": key, "findings": findings}),
        Vec::new(),
    )
    .exit(exit::FAILED)
}

/// `ecs-preflight upload`'s failed upload: nothing on stdout; on stderr the error, and that a
/// rerun resumes when it may. Exit 1 when the object failed verification, else 2.
pub fn upload_failed(e: &preflight_oss::Error) -> Rendered {
    let shown = Rendered::new(Value::Null, Vec::new());
    if e.kind() == preflight_oss::ErrorKind::Integrity {
        return shown
            .exit(exit::FAILED)
            .say(format!("ecs-preflight: upload failed verification: {e}"));
    }
    let shown = shown.exit(exit::USAGE).say(error_line(e));
    if e.is_retryable() {
        return shown
            .say("the upload is resumable: run the same command again to continue".to_string());
    }
    shown
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
        let mut shown = Rendered::new(json, lines);
        // `--abort` has no result on stdout but its JSON.
        shown.lines_on_stderr = true;
        shown
    }
}

/// What an uploader event shows, in [`upload_event_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadText {
    /// A line of its own.
    Line(String),
    /// The progress bar's message.
    Status(String),
}

/// What uploader event `e` shows; `detailed` as `upload` alone says it (what a resume checks,
/// what `--force` does, the parts). Nothing for most events (a part done moves the bar).
pub fn upload_event_text(e: &UploadEvent, detailed: bool) -> Option<UploadText> {
    let either = |long: &'static str| if detailed { long } else { "" };
    Some(match e {
        UploadEvent::Resuming {
            upload_id,
            parts_on_server,
        } => UploadText::Line(format!(
            "resuming upload {upload_id}: OSS has {parts_on_server} parts{}",
            either("; checking them against the file")
        )),
        UploadEvent::StaleUploadAborted { upload_id } => UploadText::Line(format!(
            "the file changed since upload {upload_id} began: {}starting afresh",
            either("aborted it (its parts are deleted) and ")
        )),
        UploadEvent::UploadGone { upload_id } if detailed => UploadText::Line(format!(
            "upload {upload_id} no longer exists on OSS: starting afresh"
        )),
        UploadEvent::Started {
            multipart: true,
            part_size,
            parts,
            ..
        } if detailed => {
            UploadText::Status(format!("{parts} parts of {}", binary_bytes(*part_size)))
        }
        UploadEvent::Completing => UploadText::Status("verifying".into()),
        UploadEvent::Verifying { .. } if detailed => {
            UploadText::Status("OSS has an object of this size: comparing CRC-64".into())
        }
        UploadEvent::AlreadyThere { .. } => UploadText::Line(format!(
            "OSS already has this exact object (same size and CRC-64): nothing to send{}",
            either(" (--force sends it anyway)")
        )),
        UploadEvent::NotVerified { what } => UploadText::Line(format!("warning: {what}")),
        _ => return None,
    })
}

/// `2.00 MiB`, `512 B`: bytes with a binary prefix, as the progress bars show them.
pub fn binary_bytes(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    match unit_prefix::NumberPrefix::binary(bytes as f64) {
        unit_prefix::NumberPrefix::Standalone(n) => format!("{n:.0} B"),
        unit_prefix::NumberPrefix::Prefixed(prefix, n) => format!("{n:.2} {prefix}B"),
    }
}

/// One line on a conversion: what is sent instead of what.
pub fn conversion_line(c: &Conversion) -> String {
    let b = binary_bytes;
    if c.converted {
        format!(
            "sending a qcow2 of the data: {} instead of the {} {} file ({} of data)",
            b(c.qcow2_size),
            b(c.file_size),
            c.from,
            b(c.data_bytes)
        )
    } else {
        format!(
            "sending the {} file as it is: a qcow2 of its data would be {} of {}, less than {} % smaller",
            c.from,
            b(c.qcow2_size),
            b(c.file_size),
            crate::convert::AUTO_MIN_SAVING_PERCENT
        )
    }
}

/// An observation of an import task, as one line.
pub fn task_progress_line(p: &crate::TaskProgress) -> String {
    format!(
        "task {} {}, image {} {}",
        p.task_status, p.task_process, p.image_status, p.image_progress
    )
}

/// The progress lines of event `e`, unindented: what every command says on stderr as a run
/// goes (a stage header starts with `==`). An upload's own events are
/// [`upload_event_text`]'s; an import task's progress is [`task_progress_line`].
pub fn event_lines(e: &Event) -> Vec<String> {
    let line = match e {
        Event::StageStarted(s) => format!("== {s}"),
        Event::StageFinished { stage, seconds } => format!("{stage}: {seconds:.1} s"),
        Event::Credentials(source) => format!("credentials: {source}"),
        Event::Finding { finding, allowed } => {
            let f = &finding.finding;
            let tag = if *allowed { " (allowed)" } else { "" };
            format!("{} {}{tag}: {}", f.severity, f.code, f.message)
        }
        Event::Conversion { disk, conversion } => {
            format!("disk {disk}: {}", conversion_line(conversion))
        }
        Event::DestinationChecked { findings, .. } => {
            return (findings.iter())
                .flat_map(|f| [f.to_string(), format!("  hint: {}", f.hint)])
                .collect()
        }
        Event::PartBuffers {
            bytes, parallel, ..
        } => format!(
            "memory: about {} for part buffers (--parallel {parallel} × part size)",
            binary_bytes(*bytes)
        ),
        Event::UploadStarted {
            disk,
            path,
            key,
            size,
        } => format!("disk {disk}: {} → {key} ({size} bytes)", path.display()),
        Event::UploadFinished {
            disk,
            etag,
            parts_reused,
        } => format!(
            "disk {disk} uploaded and verified (ETag {etag}, {parts_reused} parts kept from an earlier run)"
        ),
        Event::ImportStarted {
            image_id,
            task_id,
            reused,
        } => {
            let again = if *reused {
                " (already imported by an earlier run: same ClientToken)"
            } else {
                ""
            };
            format!("image {image_id}, task {task_id}{again}")
        }
        Event::WaitStarted { task_id, image_id } => {
            format!("waiting for import task {task_id} (image {image_id})")
        }
        Event::TaskProgress(p) => task_progress_line(p),
        Event::Note(m) => format!("note: {m}"),
        Event::Fleet(f) => fleet_line(f),
        Event::ObjectDeleted { bucket, key } => format!("deleted oss://{bucket}/{key}"),
        Event::Mapping { .. } | Event::Upload { .. } => return Vec::new(),
    };
    vec![line]
}

/// The line of a copy and share event.
fn fleet_line(e: &FleetEvent) -> String {
    match e {
        FleetEvent::CopyStarted {
            region,
            image_id,
            reused,
        } => {
            let how = if *reused {
                " (made by an earlier run)"
            } else {
                ""
            };
            format!("copy to {region}: image {image_id}{how}")
        }
        FleetEvent::CopyProgress {
            region,
            image_id,
            status,
            progress,
        } => format!("copy {region} {image_id}: {status} {progress}"),
        FleetEvent::CopyAvailable { region, image_id } => {
            format!("copy {region} {image_id}: Available")
        }
        FleetEvent::CopyCancelled { region, image_id } => {
            format!("copy {region} {image_id}: cancelled (CancelCopyImage)")
        }
        FleetEvent::Shared {
            region,
            image_id,
            added,
        } if added.is_empty() => format!("{image_id} ({region}): already shared"),
        FleetEvent::Shared {
            region,
            image_id,
            added,
        } => format!("{image_id} ({region}): shared with {}", added.join(", ")),
    }
}

/// The lines of a text written whole (every piece ends in a newline).
fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

/// `ecs-preflight info`'s human report: the image's facts, each finding with its fix (the
/// severity in ANSI colour when `colour`), the verdict.
pub fn info_lines(report: &ImageReport, colour: bool) -> Vec<String> {
    let mut out = String::new();
    let style = Style { colour };
    let _ = write_image_facts(&mut out, report)
        .and_then(|()| write_findings(&mut out, &style, &report.findings, "  "));
    lines_of(&out)
}

/// `ecs-preflight check`'s human report: per disk its facts and findings, then the findings
/// about the request, then the verdict.
pub fn check_report_lines(report: &CheckReport, colour: bool) -> Vec<String> {
    let mut out = String::new();
    let _ = write_check(&mut out, report, colour);
    lines_of(&out)
}

/// The rule catalogue for people (`rules`), or as Markdown (`rules --markdown`, docs/rules.md).
pub fn rules_lines(markdown: bool) -> Vec<String> {
    let mut out = String::new();
    let _ = write_rules(&mut out, markdown);
    lines_of(&out)
}

/// `rules --output json`: one list, the checks, then the codes only the service decides.
pub fn rules_json() -> Value {
    let mut list: Vec<Value> = all_rules()
        .iter()
        .map(|r| {
            let mut v = json!(r);
            v["decided_by"] = "ecs-preflight".into();
            v["code_from"] = code_origin(r.code).into();
            v
        })
        .collect();
    list.extend(SERVICE_CODES.iter().map(|s| {
        let mut v = json!(s);
        v["decided_by"] = "service".into();
        v["code_from"] = "API".into();
        v
    }));
    Value::Array(list)
}

fn write_image_facts(out: &mut String, r: &ImageReport) -> std::fmt::Result {
    let facts = &r.facts;
    let sub = facts
        .subformat
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    writeln!(out, "{}: {}{}", facts.path, facts.format, sub)?;
    if let Some(v) = facts.virtual_size {
        writeln!(out, "  virtual size:   {}", bytes(v))?;
    }
    writeln!(out, "  file size:      {}", bytes(facts.file_size))?;
    if let Some(a) = facts.allocated_size {
        writeln!(out, "  allocated:      {}", bytes(a))?;
    }
    if let Some(c) = r.cluster_size {
        writeln!(out, "  cluster size:   {c}")?;
    }
    if let Some(v) = &r.version {
        writeln!(out, "  version:        {v}")?;
    }
    if !r.features.is_empty() {
        writeln!(out, "  features:       {}", r.features.join(", "))?;
    }
    if let Some(b) = &r.backing_file {
        writeln!(out, "  backing file:   {b}")?;
    }
    if let Some(e) = &r.encryption {
        writeln!(out, "  encryption:     {e}")?;
    }
    Ok(())
}

fn bytes(n: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    #[allow(clippy::cast_precision_loss)]
    let f = n as f64;
    if f >= GIB {
        format!("{:.2} GiB ({n} bytes)", f / GIB)
    } else if f >= MIB {
        format!("{:.2} MiB ({n} bytes)", f / MIB)
    } else {
        format!("{n} bytes")
    }
}

/// ANSI colours of the severities, when wanted.
struct Style {
    colour: bool,
}

impl Style {
    fn severity(&self, s: Severity) -> String {
        if !self.colour {
            return s.as_str().to_string();
        }
        let code = match s {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Info => "36",
        };
        format!("\x1b[{code}m{}\x1b[0m", s.as_str())
    }
}

fn write_findings(
    out: &mut String,
    style: &Style,
    findings: &[Finding],
    indent: &str,
) -> std::fmt::Result {
    write_finding_lines(out, style, findings, indent)?;
    write_verdict(out, findings, indent)
}

fn write_finding_lines(
    out: &mut String,
    style: &Style,
    findings: &[Finding],
    indent: &str,
) -> std::fmt::Result {
    for f in findings {
        writeln!(
            out,
            "{indent}{} [{}] {}",
            style.severity(f.severity),
            f.code,
            f.message
        )?;
        writeln!(out, "{indent}    fix: {}", f.hint)?;
    }
    Ok(())
}

fn write_verdict(out: &mut String, findings: &[Finding], indent: &str) -> std::fmt::Result {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    let verdict = if errors > 0 { "FAIL" } else { "OK" };
    writeln!(
        out,
        "{indent}verdict: {verdict} ({errors} errors, {warnings} warnings)"
    )?;
    Ok(())
}

fn write_check(out: &mut String, report: &CheckReport, colour: bool) -> std::fmt::Result {
    let style = Style { colour };
    // One group per disk (its facts, then its findings, errors first), then the findings
    // about the request as a whole.
    let group = |disk: Option<usize>| -> Vec<Finding> {
        report
            .findings
            .iter()
            .filter(|f| f.disk == disk)
            .map(|f| f.finding.clone())
            .collect()
    };
    for (index, disk) in report.disks.iter().enumerate() {
        let role = if index == 0 {
            "system disk"
        } else {
            "data disk"
        };
        write!(out, "[{role} {index}] ")?;
        write_image_facts(out, disk)?;
        if let (0, Some(g)) = (index, &report.guest) {
            let f = &g.facts;
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".to_string());
            writeln!(
                out,
                "  guest: platform {}, os type {}, architecture {}, boot mode {}, NVMe {}",
                show(&f.platform),
                show(&f.os_type),
                show(&f.architecture),
                show(&f.boot_mode),
                show(&f.nvme_support)
            )?;
        }
        write_group(out, &style, &group(Some(index)))?;
        writeln!(out)?;
    }
    writeln!(out, "[request]")?;
    write_group(out, &style, &group(None))?;
    let all: Vec<Finding> = report.findings.iter().map(|f| f.finding.clone()).collect();
    writeln!(out)?;
    write_verdict(out, &all, "")?;
    Ok(())
}

/// A group's findings, indented, or a line saying there are none.
fn write_group(out: &mut String, style: &Style, findings: &[Finding]) -> std::fmt::Result {
    if findings.is_empty() {
        return writeln!(out, "  no findings");
    }
    write_finding_lines(out, style, findings, "  ")
}

fn write_rules(out: &mut String, markdown: bool) -> std::fmt::Result {
    let rules = all_rules();
    if markdown {
        writeln!(out, "# ecs-preflight rules\n")?;
        writeln!(
            out,
            "Generated by `ecs-preflight rules --markdown`; do not edit by hand.\n"
        )?;
        writeln!(
            out,
            "Code: `API` is an ImportImage error code the check prevents; `ours` is a code of \
             ecs-preflight's, for a rule the API names no code for or for what it does not say.\n"
        )?;
        writeln!(
            out,
            "| code | code from | severity | what it checks | fix |"
        )?;
        writeln!(out, "|---|---|---|---|---|")?;
        for r in &rules {
            writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                r.code,
                code_origin(r.code),
                r.severity,
                r.summary.replace('|', "\\|"),
                r.hint.replace('|', "\\|")
            )?;
        }
        writeln!(out, "\n## Decided by the service\n")?;
        writeln!(
            out,
            "ImportImage error codes no check can foresee. When ImportImage answers with one, \
             `import` and `upload-and-import` print its fix.\n"
        )?;
        writeln!(out, "| code | HTTP | why it is not checked first | fix |")?;
        writeln!(out, "|---|---|---|---|")?;
        for s in SERVICE_CODES {
            writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                s.code,
                s.http_status,
                s.why_unchecked.replace('|', "\\|"),
                s.fix.replace('|', "\\|")
            )?;
        }
    } else {
        for r in &rules {
            writeln!(
                out,
                "{} ({}, {} code)\n    {}\n    fix: {}",
                r.code,
                r.severity,
                code_origin(r.code),
                r.summary,
                r.hint
            )?;
        }
        writeln!(out, "\ndecided by the service (not checked first):")?;
        for s in SERVICE_CODES {
            writeln!(
                out,
                "{} (HTTP {})\n    not checked: {}\n    fix: {}",
                s.code, s.http_status, s.why_unchecked, s.fix
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_says_more_than_upload_and_import() {
        let resuming = UploadEvent::Resuming {
            upload_id: "U1".into(),
            parts_on_server: 3,
        };
        assert_eq!(
            upload_event_text(&resuming, true),
            Some(UploadText::Line(
                "resuming upload U1: OSS has 3 parts; checking them against the file".into()
            ))
        );
        assert_eq!(
            upload_event_text(&resuming, false),
            Some(UploadText::Line(
                "resuming upload U1: OSS has 3 parts".into()
            ))
        );
        let gone = UploadEvent::UploadGone {
            upload_id: "U1".into(),
        };
        assert!(upload_event_text(&gone, true).is_some());
        assert_eq!(upload_event_text(&gone, false), None);
        assert_eq!(
            upload_event_text(&UploadEvent::Completing, false),
            Some(UploadText::Status("verifying".into()))
        );
    }

    #[test]
    fn bytes_as_the_bars_show_them() {
        assert_eq!(binary_bytes(512), "512 B");
        assert_eq!(binary_bytes(2 << 20), "2.00 MiB");
        assert_eq!(binary_bytes(1536), "1.50 KiB");
    }

    #[test]
    fn stage_headers_and_notes() {
        assert_eq!(
            event_lines(&Event::StageStarted(crate::Stage::Wait)),
            ["== wait"]
        );
        assert_eq!(event_lines(&Event::Note("n".into())), ["note: n"]);
        assert!(event_lines(&Event::Mapping { disk: 0, bytes: 1 }).is_empty());
    }
}
