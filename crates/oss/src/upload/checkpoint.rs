//! The resume record: which multipart upload holds which file's parts. It names the file by
//! identity (size, mtime, a sampled SHA-256) so a changed file is noticed, and it holds no
//! secret — only the upload id, which is useless without credentials.
//!
//! One checkpoint per (region, bucket, key) — not per endpoint host, so an upload started on
//! the public endpoint resumes through the internal or accelerated one: a second upload of the
//! same key finds the first one's record, and when the file is not the same any more it aborts
//! that upload instead of leaving its parts behind.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Format version; a record of another version is ignored. 2: keyed by region, not endpoint.
pub const VERSION: u32 = 2;
/// Number of blocks sampled for the file identity (first and last included).
const SAMPLES: u64 = 16;
/// Size of one sampled block.
const SAMPLE_LEN: u64 = 64 * 1024;

/// What the file is, cheaply: enough to notice an edit without reading hundreds of GiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
    /// SHA-256 (hex) of the size and 16 evenly spaced 64 KiB blocks.
    pub sample_sha256: String,
}

impl FileIdentity {
    /// Reads the identity of `path`.
    pub fn of(path: &Path) -> Result<Self> {
        let err = |e| Error::io(path, e);
        let mut f = File::open(path).map_err(err)?;
        let meta = f.metadata().map_err(err)?;
        let size = meta.len();
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| u64::try_from(d.as_nanos()).ok())
            .unwrap_or(0);
        let mut h = Sha256::new();
        h.update(size.to_le_bytes());
        let mut buf = vec![0u8; usize::try_from(SAMPLE_LEN).unwrap_or(65536)];
        let span = size.saturating_sub(SAMPLE_LEN);
        for i in 0..SAMPLES {
            let off = span / (SAMPLES - 1) * i;
            let len = usize::try_from(SAMPLE_LEN.min(size - off.min(size))).unwrap_or(0);
            f.seek(SeekFrom::Start(off)).map_err(err)?;
            f.read_exact(&mut buf[..len]).map_err(err)?;
            h.update(&buf[..len]);
        }
        Ok(FileIdentity {
            size,
            mtime_ns,
            sample_sha256: hex::encode(h.finalize()),
        })
    }
}

/// The record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`VERSION`].
    pub version: u32,
    /// Region of the bucket.
    pub region: String,
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// The local file, as given.
    pub path: String,
    /// The file's identity when the upload began.
    pub file: FileIdentity,
    /// Multipart upload id.
    pub upload_id: String,
    /// Part size of the plan.
    pub part_size: u64,
    /// Number of parts of the plan.
    pub part_count: u32,
}

/// Where the checkpoints go by default: `$XDG_CACHE_HOME/ecs-preflight/uploads`, else
/// `~/.cache/ecs-preflight/uploads` (`~/Library/Caches/…` on macOS).
pub fn default_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let home = PathBuf::from(std::env::var_os("HOME")?);
            Some(if cfg!(target_os = "macos") {
                home.join("Library/Caches")
            } else {
                home.join(".cache")
            })
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("ecs-preflight").join("uploads")
}

/// The checkpoint file for (region, bucket, key) in `dir`.
pub fn path_for(dir: &Path, region: &str, bucket: &str, key: &str) -> PathBuf {
    let h = Sha256::digest(format!("{region}\n{bucket}\n{key}").as_bytes());
    dir.join(format!("{}.json", &hex::encode(h)[..32]))
}

/// Loads a checkpoint; a missing, unreadable or foreign-version file is `None` (a corrupt
/// record must not block an upload: the worst case is a fresh start).
pub fn load(path: &Path) -> Option<Checkpoint> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice::<Checkpoint>(&text)
        .ok()
        .filter(|c| c.version == VERSION)
}

/// Writes atomically (temp file + rename), so a kill leaves the old or the new record.
pub fn save(path: &Path, cp: &Checkpoint) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(cp).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Deletes a checkpoint (missing is fine).
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_notices_edits_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("img.raw");
        std::fs::write(&f, vec![7u8; 3 << 20]).unwrap();
        let a = FileIdentity::of(&f).unwrap();
        assert_eq!(a, FileIdentity::of(&f).unwrap());
        let mut data = vec![7u8; 3 << 20];
        data[0] = 8;
        std::fs::write(&f, &data).unwrap();
        assert_ne!(a.sample_sha256, FileIdentity::of(&f).unwrap().sample_sha256);
        std::fs::write(&f, b"tiny").unwrap();
        assert_eq!(FileIdentity::of(&f).unwrap().size, 4);

        let p = path_for(dir.path(), "h", "b", "k");
        assert_ne!(p, path_for(dir.path(), "h", "b", "k2"));
        let cp = Checkpoint {
            version: VERSION,
            region: "h".into(),
            bucket: "b".into(),
            key: "k".into(),
            path: "img.raw".into(),
            file: a,
            upload_id: "U".into(),
            part_size: 1 << 20,
            part_count: 3,
        };
        save(&p, &cp).unwrap();
        assert_eq!(load(&p), Some(cp));
        std::fs::write(&p, b"{garbage").unwrap();
        assert_eq!(load(&p), None);
        remove(&p).unwrap();
        remove(&p).unwrap();
    }
}
