//! Images and import tasks, persisted as JSON in `<data>/ecs.json`. A task's status is a pure
//! function of the wall clock (creation time, duration, failure flag), so it keeps advancing
//! across restarts of the emulator.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::util::unix_now;

/// Signature nonces are remembered this long (the timestamp window is ±15 minutes).
pub const NONCE_TTL_SECS: u64 = 30 * 60;
/// Most nonces remembered; beyond this the oldest are dropped.
pub const MAX_NONCES: usize = 200_000;

/// One disk of an imported image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// N of DiskDeviceMapping.N (1 = system disk).
    pub index: u32,
    /// OSS bucket.
    pub bucket: String,
    /// OSS object key.
    pub object: String,
    /// Format as given (may be empty = detect).
    pub format: String,
    /// Disk size in GiB.
    pub size_gib: u64,
    /// Virtual size of the image file in bytes (from its header, else the object size).
    pub virtual_bytes: u64,
}

/// An image created by ImportImage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `m-…`.
    pub image_id: String,
    /// Region.
    pub region: String,
    /// ImageName.
    pub name: String,
    /// Description.
    pub description: String,
    /// Architecture.
    pub architecture: String,
    /// OSType.
    pub os_type: String,
    /// Platform.
    pub platform: String,
    /// BootMode.
    pub boot_mode: String,
    /// LicenseType.
    pub license_type: String,
    /// Features.NvmeSupport.
    pub nvme_support: String,
    /// Features.ImdsSupport.
    pub imds_support: String,
    /// DetectionStrategy (empty if none).
    pub detection_strategy: String,
    /// Tags in order.
    pub tags: Vec<(String, String)>,
    /// Disks by index.
    pub disks: Vec<Disk>,
    /// Creation time, Unix ms.
    pub created_ms: u64,
    /// Its import task (empty for a copy).
    pub task_id: String,
    /// For a CopyImage copy: the source image.
    #[serde(default)]
    pub copied_from: Option<String>,
    /// For a copy: when it becomes `Available`, Unix ms.
    #[serde(default)]
    pub ready_ms: Option<u64>,
    /// Accounts the image is shared with (ModifyImageSharePermission), with the time, Unix ms.
    #[serde(default)]
    pub shared_with: Vec<(String, u64)>,
}

impl Image {
    /// The image's `Status` and progress (0..=100) at `now_ms`: from its import task, or
    /// for a copy from its ready time (`Creating` until then). `None`: no task, not a copy.
    pub fn state(
        &self,
        tasks: &BTreeMap<String, Task>,
        now_ms: u64,
    ) -> Option<(&'static str, u64)> {
        if let Some(ready) = self.ready_ms {
            if now_ms >= ready {
                return Some(("Available", 100));
            }
            let span = ready.saturating_sub(self.created_ms).max(1);
            let done = now_ms.saturating_sub(self.created_ms).saturating_mul(100) / span;
            return Some(("Creating", done.min(99)));
        }
        let task = tasks.get(&self.task_id)?;
        Some((task.image_status(now_ms), task.phase(now_ms).progress))
    }
}

/// An ImportImage task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// `t-…`.
    pub task_id: String,
    /// Region.
    pub region: String,
    /// The image being created.
    pub image_id: String,
    /// Creation time, Unix ms.
    pub created_ms: u64,
    /// How long the import takes, ms.
    pub duration_ms: u64,
    /// If the import fails: (ErrorCode, ErrorMsg).
    pub failure: Option<(String, String)>,
    /// When it was cancelled, Unix ms.
    pub cancelled_ms: Option<u64>,
}

/// Where a task is at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    /// `Waiting` | `Processing` | `Finished` | `Failed` | `Cancelled`.
    pub status: &'static str,
    /// 0..=100.
    pub progress: u64,
    /// When it ended (Unix ms), once it has.
    pub finished_ms: Option<u64>,
}

impl Task {
    /// The phase at `now_ms`: the first tenth of the duration waiting, then processing with
    /// progress rising linearly, then finished (or failed).
    pub fn phase(&self, now_ms: u64) -> Phase {
        let end = self.created_ms.saturating_add(self.duration_ms);
        if let Some(c) = self.cancelled_ms {
            let running = Task {
                cancelled_ms: None,
                ..self.clone()
            };
            return Phase {
                status: "Cancelled",
                progress: running.phase(c).progress,
                finished_ms: Some(c),
            };
        }
        let elapsed = now_ms.saturating_sub(self.created_ms);
        let waiting = self.duration_ms / 10;
        if now_ms >= end {
            return match self.failure {
                Some(_) => Phase {
                    status: "Failed",
                    progress: 100,
                    finished_ms: Some(end),
                },
                None => Phase {
                    status: "Finished",
                    progress: 100,
                    finished_ms: Some(end),
                },
            };
        }
        if elapsed < waiting {
            return Phase {
                status: "Waiting",
                progress: 0,
                finished_ms: None,
            };
        }
        let span = self.duration_ms.saturating_sub(waiting).max(1);
        let progress = ((elapsed - waiting).saturating_mul(100) / span).min(99);
        Phase {
            status: "Processing",
            progress,
            finished_ms: None,
        }
    }

    /// The image status this task implies.
    pub fn image_status(&self, now_ms: u64) -> &'static str {
        match self.phase(now_ms).status {
            "Waiting" => "Waiting",
            "Processing" => "Creating",
            "Finished" => "Available",
            _ => "CreateFailed",
        }
    }
}

/// A remembered ClientToken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Digest of the request's API parameters.
    pub fingerprint: String,
    /// Image id returned.
    pub image_id: String,
    /// Task id returned.
    pub task_id: String,
    /// Region.
    pub region: String,
}

/// Everything persisted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsData {
    /// Images by id (cancelled imports are removed).
    pub images: BTreeMap<String, Image>,
    /// Tasks by id.
    pub tasks: BTreeMap<String, Task>,
    /// ClientToken → result.
    pub client_tokens: BTreeMap<String, TokenEntry>,
}

/// The ECS state and its file.
pub struct EcsState {
    path: PathBuf,
    data: Mutex<EcsData>,
    nonces: Mutex<HashMap<String, u64>>,
}

impl EcsState {
    /// Loads `<data>/ecs.json` (empty state if absent).
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("ecs.json");
        let data = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::State {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => EcsData::default(),
            Err(source) => return Err(Error::DataDir { path, source }),
        };
        Ok(EcsState {
            path,
            data: Mutex::new(data),
            nonces: Mutex::new(HashMap::new()),
        })
    }

    /// Locks the data.
    pub fn lock(&self) -> MutexGuard<'_, EcsData> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the data to disk (atomically); errors are ignored here and retried on the next
    /// change, as losing ECS state only matters across restarts.
    pub fn save(&self, data: &EcsData) {
        if let Ok(bytes) = serde_json::to_vec_pretty(data) {
            let _ = crate::store::write_atomic(&self.path, &bytes);
        }
    }

    /// Saves the current data.
    pub fn flush(&self) {
        let d = self.lock().clone();
        self.save(&d);
    }

    /// Records a nonce; `false` if it was already used within [`NONCE_TTL_SECS`].
    pub fn use_nonce(&self, key_id: &str, nonce: &str) -> bool {
        let now = unix_now();
        let mut n = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        if n.len() >= MAX_NONCES {
            n.retain(|_, t| now.saturating_sub(*t) < NONCE_TTL_SECS);
            if n.len() >= MAX_NONCES {
                n.clear();
            }
        }
        let k = format!("{key_id}\n{nonce}");
        match n.get(&k) {
            Some(t) if now.saturating_sub(*t) < NONCE_TTL_SECS => false,
            _ => {
                n.insert(k, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases() {
        let t = Task {
            task_id: "t".into(),
            region: "r".into(),
            image_id: "m".into(),
            created_ms: 1000,
            duration_ms: 10_000,
            failure: None,
            cancelled_ms: None,
        };
        assert_eq!(t.phase(1000).status, "Waiting");
        assert_eq!(t.phase(2000).status, "Processing");
        assert_eq!(t.phase(6500).progress, 50);
        assert_eq!(t.phase(11_000).status, "Finished");
        assert_eq!(t.image_status(11_000), "Available");
        let f = Task {
            failure: Some(("X".into(), "y".into())),
            ..t.clone()
        };
        assert_eq!(f.phase(20_000).status, "Failed");
        assert_eq!(f.image_status(20_000), "CreateFailed");
        let z = Task {
            duration_ms: 0,
            ..t.clone()
        };
        assert_eq!(z.phase(1000).status, "Finished");
        let c = Task {
            cancelled_ms: Some(3000),
            ..t
        };
        assert_eq!(c.phase(50_000).status, "Cancelled");
    }
}
