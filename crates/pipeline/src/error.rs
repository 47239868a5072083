//! Errors of the pipeline, each with a stable code.

use std::path::PathBuf;

use preflight_rules::{Plan, ScopedFinding};

/// `Result` with a [`PipelineError`].
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

/// Why a run stopped.
///
/// A cause (an I/O, OSS or ECS error) is the [`source`](std::error::Error::source), never
/// part of the message: [`PipelineError::full_message`] (or anything that walks the chain,
/// such as anyhow's `{:#}`) prints it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A required setting is missing or wrong.
    #[error("{0}")]
    Usage(String),
    /// A disk image cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The image.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No credentials were found.
    #[error("no credentials: {0}")]
    Credentials(String),
    /// A rule failed (locally or in the cloud): nothing was uploaded or imported.
    #[error("refused before upload: {}", summary(findings))]
    Refused {
        /// The error findings that stopped the run.
        findings: Vec<ScopedFinding>,
        /// Steps that fix it, when known (e.g. the commands that create the RAM role).
        fix: Vec<String>,
        /// The ImportImage request that would have been sent.
        plan: Box<Plan>,
    },
    /// The OSS client could not be made (e.g. an endpoint that is not `scheme://host`).
    #[error("cannot create the OSS client")]
    OssClient(#[source] Box<preflight_oss::Error>),
    /// An OSS call other than the upload failed.
    #[error("{context}")]
    Oss {
        /// What was being done.
        context: String,
        /// The OSS error.
        source: Box<preflight_oss::Error>,
    },
    /// The upload of a disk failed (it is resumable when the error is transient).
    #[error("upload of {} to {key} failed", path.display())]
    Upload {
        /// The image.
        path: PathBuf,
        /// The object key.
        key: String,
        /// The OSS error.
        source: Box<preflight_oss::Error>,
    },
    /// An ECS or RAM call failed.
    #[error("{context}")]
    Ecs {
        /// What was being done.
        context: String,
        /// The ECS error.
        source: Box<preflight_ecs::Error>,
    },
    /// `ImportImage` was refused by the API.
    #[error("ImportImage refused: {code}: {message}")]
    ImportRefused {
        /// API error code.
        code: String,
        /// API message.
        message: String,
    },
    /// The import task failed.
    #[error("import failed: {code}: {message} (image {image_id}, task {task_id})")]
    ImportFailed {
        /// The image.
        image_id: String,
        /// The task.
        task_id: String,
        /// Error code.
        code: String,
        /// Why.
        message: String,
    },
    /// Following the import failed after every retry (network, ECS); the import goes on in
    /// the cloud and `ecs-preflight wait` picks it up.
    #[error("cannot follow import task {task_id} (image {image_id}); it goes on")]
    WaitFailed {
        /// The image.
        image_id: String,
        /// The task.
        task_id: String,
        /// The ECS error.
        source: Box<preflight_ecs::Error>,
    },
    /// The copy or share step refused a setting (before any upload) or failed after the
    /// image was available.
    #[error("{code}: {0}", code = .0.code())]
    Fleet(crate::fleet::FleetError),
    /// The timeout passed before the image was available; the import goes on.
    #[error("still importing after the timeout (task {task_id}: {} {})", progress.task_status, progress.task_process)]
    TimedOut {
        /// The image.
        image_id: String,
        /// The task.
        task_id: String,
        /// The last observation.
        progress: Box<preflight_ecs::Progress>,
    },
}

fn summary(findings: &[ScopedFinding]) -> String {
    findings
        .iter()
        .map(|f| format!("{}: {}", f.finding.code, f.finding.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl PipelineError {
    /// The message followed by each cause, `": "`-separated: what a user is shown.
    pub fn full_message(&self) -> String {
        preflight_disk::error_chain(self)
    }

    /// A stable code: `PIPELINE.Usage`, `PIPELINE.Read`, `PIPELINE.Credentials`,
    /// `PIPELINE.Refused`, `PIPELINE.Oss`, `PIPELINE.Upload`, `PIPELINE.Ecs`,
    /// `PIPELINE.ImportRefused`, `PIPELINE.ImportFailed`, `PIPELINE.WaitFailed`,
    /// `PIPELINE.TimedOut`, and for [`PipelineError::Fleet`] its own code (`COPY.…`, `SHARE.…`).
    pub fn code(&self) -> &'static str {
        match self {
            PipelineError::Usage(_) => "PIPELINE.Usage",
            PipelineError::Read { .. } => "PIPELINE.Read",
            PipelineError::Credentials(_) => "PIPELINE.Credentials",
            PipelineError::Refused { .. } => "PIPELINE.Refused",
            PipelineError::Oss { .. } | PipelineError::OssClient(_) => "PIPELINE.Oss",
            PipelineError::Upload { .. } => "PIPELINE.Upload",
            PipelineError::Ecs { .. } => "PIPELINE.Ecs",
            PipelineError::ImportRefused { .. } => "PIPELINE.ImportRefused",
            PipelineError::ImportFailed { .. } => "PIPELINE.ImportFailed",
            PipelineError::WaitFailed { .. } => "PIPELINE.WaitFailed",
            PipelineError::TimedOut { .. } => "PIPELINE.TimedOut",
            PipelineError::Fleet(e) => e.code(),
        }
    }

    /// True when the image or the request was refused or the import failed (the CLI's exit
    /// code 1); false for environment errors (exit code 2).
    pub fn is_refusal(&self) -> bool {
        match self {
            PipelineError::Refused { .. }
            | PipelineError::ImportRefused { .. }
            | PipelineError::ImportFailed { .. }
            | PipelineError::TimedOut { .. } => true,
            PipelineError::Fleet(e) => {
                !e.is_usage() && !matches!(e, crate::fleet::FleetError::Ecs { .. })
            }
            PipelineError::Upload { source, .. } => {
                source.kind() == preflight_oss::ErrorKind::Integrity
            }
            _ => false,
        }
    }

    /// True when running the same thing again may succeed (a transient network or server
    /// error; an interrupted upload resumes).
    pub fn is_retryable(&self) -> bool {
        match self {
            PipelineError::Upload { source, .. } | PipelineError::Oss { source, .. } => {
                source.is_retryable()
            }
            PipelineError::Ecs { source, .. } | PipelineError::WaitFailed { source, .. } => {
                match source.as_ref() {
                    preflight_ecs::Error::Api { status, code, .. } => {
                        preflight_ecs::retryable(*status, code)
                    }
                    preflight_ecs::Error::Network { .. } => true,
                    _ => false,
                }
            }
            PipelineError::Fleet(crate::fleet::FleetError::Ecs { source, .. }) => {
                match source.as_ref() {
                    preflight_ecs::Error::Api { status, code, .. } => {
                        preflight_ecs::retryable(*status, code)
                    }
                    preflight_ecs::Error::Network { .. } => true,
                    _ => false,
                }
            }
            PipelineError::Fleet(crate::fleet::FleetError::CopyTimedOut { .. }) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_the_source_printed_once() {
        let e = PipelineError::Read {
            path: PathBuf::from("/images/disk.qcow2"),
            source: std::io::Error::other("disk on fire"),
        };
        assert_eq!(e.to_string(), "cannot read /images/disk.qcow2");
        assert_eq!(
            e.full_message(),
            "cannot read /images/disk.qcow2: disk on fire"
        );
        let e = PipelineError::Ecs {
            context: "CancelTask t-1".into(),
            source: Box::new(preflight_ecs::Error::Network {
                action: "CancelTask".into(),
                host: "ecs.example".into(),
                detail: "connection reset".into(),
            }),
        };
        assert_eq!(e.to_string(), "CancelTask t-1");
        assert_eq!(e.full_message().matches("connection reset").count(), 1);
    }
}
