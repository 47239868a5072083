//! What a run reports: [`Event`]s as it goes, an [`Outcome`] (or a [`DryRun`]) at the end.

use std::path::PathBuf;
use std::sync::Arc;

use preflight_rules::{Plan, ScopedFinding};
use serde::Serialize;

use preflight_ecs as ecs;
use preflight_oss::UploadEvent;

use crate::{Conversion, TaskProgress};

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
    /// Copying the image to other regions and sharing it ([`fleet`](crate::fleet)).
    Copy,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Check => "check",
            Stage::Upload => "upload",
            Stage::Import => "import",
            Stage::Wait => "wait",
            Stage::Copy => "copy and share",
        })
    }
}

/// What the pipeline is doing, as it happens. Non-exhaustive: a new kind of event is not a
/// breaking change, so a `match` needs a `_` arm.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
    /// `upload`'s rules about the destination and the bucket ran: every finding, errors
    /// included (an error refuses the upload right after this event).
    DestinationChecked {
        /// The object key the image goes to.
        key: String,
        /// The findings, in rule order.
        findings: Vec<preflight_report::Finding>,
        /// What the bucket probes found.
        bucket: preflight_rules::BucketFacts,
    },
    /// A multipart upload's part buffers will take about `bytes` of memory.
    PartBuffers {
        /// Disk index.
        disk: usize,
        /// Bytes of part buffers: parts in flight × part size.
        bytes: u64,
        /// Parts in flight.
        parallel: usize,
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
    /// Following an import task begins (after `ImportImage`, or in
    /// [`wait_for_task`](crate::wait::wait_for_task) once the task is found).
    WaitStarted {
        /// The import task (`t-…`).
        task_id: String,
        /// Its image (`m-…`).
        image_id: String,
    },
    /// An observation of the import task that differs from the previous one.
    TaskProgress(TaskProgress),
    /// Something the user should know that is not a finding: advice (the internal endpoint
    /// on ECS), or a decision taken (a new ClientToken after a failed import).
    Note(String),
    /// The copy and share step ([`fleet`](crate::fleet)) did something.
    Fleet(crate::fleet::FleetEvent),
    /// An uploaded object was deleted after the image became available.
    ObjectDeleted {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
}

pub(crate) type EventFn = Arc<dyn Fn(&Event) + Send + Sync>;

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
    /// Copying and sharing (0 when nothing was asked).
    pub copy: f64,
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
    /// The source image and its copies with their regions, states and shares (empty when
    /// no copy or share was asked).
    pub fleet: crate::fleet::FleetOutcome,
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

/// What [`Pipeline::dry_run`](crate::Pipeline::dry_run) found: every check passed; this is
/// what a run would do.
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
