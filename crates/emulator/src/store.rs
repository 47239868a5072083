//! Objects and multipart uploads on disk under the data directory, with an in-memory index
//! rebuilt at start-up (so state survives a restart).
//!
//! Layout (no name on disk is derived from client input except through a hash, so a key such
//! as `../../etc/passwd` can never leave the data directory):
//! ```text
//! <data>/objects/<bucket>/<sha256(key)>.data   object bytes
//! <data>/objects/<bucket>/<sha256(key)>.json   ObjectMeta
//! <data>/uploads/<UPLOADID>/upload.json         Upload (without parts)
//! <data>/uploads/<UPLOADID>/<n>.data|.json      one part
//! <data>/tmp/                                   bodies being received (cleared at start)
//! <data>/ecs.json                               ECS images and tasks
//! ```
//! Bodies are streamed to a file in `tmp/` and renamed into place only once complete, under
//! the index lock, so a reader never sees a half-written object.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::StorageClass;
use crate::error::Error;

/// Stored facts about one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes (upper-case hex MD5, or `<hex>-<parts>` for multipart).
    pub etag: String,
    /// CRC-64/XZ of the content.
    pub crc64: u64,
    /// Content-Type given at upload.
    pub content_type: String,
    /// Unix seconds.
    pub last_modified: u64,
    /// Storage class.
    pub storage_class: StorageClass,
    /// Whether it was assembled by CompleteMultipartUpload.
    pub multipart: bool,
    /// `x-oss-meta-*` headers (names lower-cased, without the prefix).
    pub user_meta: BTreeMap<String, String>,
    /// When a RestoreObject of this (Archive-class) object finishes, Unix milliseconds.
    #[serde(default)]
    pub restore_ready_ms: Option<u64>,
    /// When the restored copy expires, Unix seconds.
    #[serde(default)]
    pub restore_expiry: Option<u64>,
}

/// Where a RestoreObject stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreState {
    /// Never restored, or the restored copy expired.
    None,
    /// Restoring (`x-oss-restore: ongoing-request="true"`).
    Ongoing,
    /// Restored until the given Unix second.
    Restored(u64),
}

impl ObjectMeta {
    /// The restore state at `now_ms`.
    pub fn restore_state(&self, now_ms: u64) -> RestoreState {
        match (self.restore_ready_ms, self.restore_expiry) {
            (Some(ready), _) if now_ms < ready => RestoreState::Ongoing,
            (Some(_), Some(exp)) if now_ms / 1000 < exp => RestoreState::Restored(exp),
            _ => RestoreState::None,
        }
    }

    /// Whether the content can be read now: not an archive class, or restored.
    pub fn readable(&self, now_ms: u64) -> bool {
        !self.storage_class.is_archive()
            || matches!(self.restore_state(now_ms), RestoreState::Restored(_))
    }
}

/// Stored facts about one uploaded part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    /// Part number 1..=10000.
    pub number: u32,
    /// Size in bytes.
    pub size: u64,
    /// Upper-case hex MD5 (the ETag without quotes).
    pub etag: String,
    /// CRC-64/XZ of the part.
    pub crc64: u64,
    /// Unix seconds.
    pub last_modified: u64,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// Upload id (32 upper-case hex).
    pub upload_id: String,
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Unix seconds.
    pub initiated: u64,
    /// Storage class of the object to be.
    pub storage_class: StorageClass,
    /// Content-Type of the object to be.
    pub content_type: String,
    /// `x-oss-meta-*` of the object to be.
    pub user_meta: BTreeMap<String, String>,
    /// Parts received so far.
    #[serde(skip)]
    pub parts: BTreeMap<u32, PartMeta>,
}

#[derive(Default)]
struct Index {
    objects: HashMap<String, BTreeMap<String, ObjectMeta>>,
    uploads: HashMap<String, Upload>,
}

/// The object store.
pub struct Store {
    root: PathBuf,
    index: Mutex<Index>,
}

/// Whether `id` has the shape of an upload id we hand out (so it is safe as a directory name).
pub fn valid_upload_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::DataDir {
        path: path.to_path_buf(),
        source,
    }
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Writes `bytes` to `path` atomically (temp file + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", crate::util::random_hex(8)));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Store {
    /// Opens (creating if needed) the store under `root` and loads the index for `buckets`.
    /// Files that do not parse, or whose data is missing, are skipped.
    pub fn open(root: &Path, buckets: &[String]) -> Result<Self, Error> {
        for dir in ["objects", "uploads", "tmp"] {
            let p = root.join(dir);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        // Leftovers of interrupted uploads.
        let tmp = root.join("tmp");
        if let Ok(rd) = fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        let mut index = Index::default();
        for b in buckets {
            let dir = root.join("objects").join(b);
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            let mut map = BTreeMap::new();
            for e in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
                let p = e.path();
                if p.extension().and_then(|x| x.to_str()) != Some("json") {
                    continue;
                }
                let Some(meta) = read_json::<ObjectMeta>(&p) else {
                    continue;
                };
                let data = dir.join(format!("{}.data", key_hash(&meta.key)));
                if fs::metadata(&data).map(|m| m.len()).ok() == Some(meta.size) {
                    map.insert(meta.key.clone(), meta);
                }
            }
            index.objects.insert(b.clone(), map);
        }
        let updir = root.join("uploads");
        for e in fs::read_dir(&updir).map_err(io_err(&updir))?.flatten() {
            let dir = e.path();
            let Some(mut up) = read_json::<Upload>(&dir.join("upload.json")) else {
                continue;
            };
            if !valid_upload_id(&up.upload_id) || !buckets.contains(&up.bucket) {
                continue;
            }
            if let Ok(rd) = fs::read_dir(&dir) {
                for pe in rd.flatten() {
                    let pp = pe.path();
                    let is_part = pp.extension().and_then(|x| x.to_str()) == Some("json")
                        && pp.file_stem().and_then(|s| s.to_str()) != Some("upload");
                    if !is_part {
                        continue;
                    }
                    if let Some(part) = read_json::<PartMeta>(&pp) {
                        let data = dir.join(format!("{}.data", part.number));
                        if fs::metadata(&data).map(|m| m.len()).ok() == Some(part.size) {
                            up.parts.insert(part.number, part);
                        }
                    }
                }
            }
            index.uploads.insert(up.upload_id.clone(), up);
        }
        Ok(Store {
            root: root.to_path_buf(),
            index: Mutex::new(index),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock cannot leave the index half-updated in a way that
        // matters more than stopping service, so recover the guard.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh path in `tmp/` for a body being received.
    pub fn temp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{}.part", crate::util::random_hex(24)))
    }

    fn object_paths(&self, bucket: &str, key: &str) -> (PathBuf, PathBuf) {
        let dir = self.root.join("objects").join(bucket);
        let h = key_hash(key);
        (dir.join(format!("{h}.data")), dir.join(format!("{h}.json")))
    }

    /// Looks an object up.
    pub fn head(&self, bucket: &str, key: &str) -> Option<ObjectMeta> {
        self.lock().objects.get(bucket)?.get(key).cloned()
    }

    /// Looks an object up and opens its data consistently with the metadata.
    pub fn open_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> io::Result<Option<(ObjectMeta, fs::File)>> {
        let idx = self.lock();
        let Some(meta) = idx.objects.get(bucket).and_then(|m| m.get(key)).cloned() else {
            return Ok(None);
        };
        let (data, _) = self.object_paths(bucket, key);
        let f = fs::File::open(data)?;
        Ok(Some((meta, f)))
    }

    /// Moves a finished temp file into place as the object `meta.key`.
    pub fn commit_object(&self, bucket: &str, meta: ObjectMeta, temp: &Path) -> io::Result<()> {
        let (data, json) = self.object_paths(bucket, &meta.key);
        let bytes = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        let mut idx = self.lock();
        fs::rename(temp, &data)?;
        write_atomic(&json, &bytes)?;
        idx.objects
            .entry(bucket.to_string())
            .or_default()
            .insert(meta.key.clone(), meta);
        Ok(())
    }

    /// Replaces the metadata of an existing object (data unchanged); `Ok(false)` if it is gone.
    pub fn update_meta(&self, bucket: &str, meta: ObjectMeta) -> io::Result<bool> {
        let (_, json) = self.object_paths(bucket, &meta.key);
        let bytes = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        let mut idx = self.lock();
        let Some(slot) = idx
            .objects
            .get_mut(bucket)
            .and_then(|m| m.get_mut(&meta.key))
        else {
            return Ok(false);
        };
        write_atomic(&json, &bytes)?;
        *slot = meta;
        Ok(true)
    }

    /// Deletes an object; `Ok(false)` if it did not exist.
    pub fn delete_object(&self, bucket: &str, key: &str) -> io::Result<bool> {
        let mut idx = self.lock();
        let existed = idx
            .objects
            .get_mut(bucket)
            .and_then(|m| m.remove(key))
            .is_some();
        if existed {
            let (data, json) = self.object_paths(bucket, key);
            fs::remove_file(json)?;
            let _ = fs::remove_file(data);
        }
        Ok(existed)
    }

    /// Every object of a bucket (for ImportImage look-ups and tests).
    pub fn object_count(&self, bucket: &str) -> usize {
        self.lock().objects.get(bucket).map_or(0, BTreeMap::len)
    }

    fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.root.join("uploads").join(upload_id)
    }

    /// Records a new upload.
    pub fn create_upload(&self, up: Upload) -> io::Result<()> {
        let dir = self.upload_dir(&up.upload_id);
        fs::create_dir_all(&dir)?;
        let bytes = serde_json::to_vec(&up).map_err(io::Error::other)?;
        write_atomic(&dir.join("upload.json"), &bytes)?;
        self.lock().uploads.insert(up.upload_id.clone(), up);
        Ok(())
    }

    /// An upload (with its parts) if it exists and belongs to `bucket`/`key`.
    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Option<Upload> {
        self.lock()
            .uploads
            .get(upload_id)
            .filter(|u| u.bucket == bucket && u.key == key)
            .cloned()
    }

    /// All uploads of a bucket, sorted by key then upload id.
    pub fn uploads(&self, bucket: &str) -> Vec<Upload> {
        let mut v: Vec<Upload> = self
            .lock()
            .uploads
            .values()
            .filter(|u| u.bucket == bucket)
            .map(|u| Upload {
                parts: BTreeMap::new(),
                ..u.clone()
            })
            .collect();
        v.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
        v
    }

    /// Path of a stored part's data.
    pub fn part_path(&self, upload_id: &str, number: u32) -> PathBuf {
        self.upload_dir(upload_id).join(format!("{number}.data"))
    }

    /// Moves a finished temp file into place as a part. `Ok(false)` when the upload no longer
    /// exists (aborted or completed meanwhile); the temp file is removed then.
    pub fn commit_part(&self, upload_id: &str, part: PartMeta, temp: &Path) -> io::Result<bool> {
        let mut idx = self.lock();
        let Some(up) = idx.uploads.get_mut(upload_id) else {
            let _ = fs::remove_file(temp);
            return Ok(false);
        };
        let dir = self.root.join("uploads").join(upload_id);
        fs::rename(temp, dir.join(format!("{}.data", part.number)))?;
        let bytes = serde_json::to_vec(&part).map_err(io::Error::other)?;
        write_atomic(&dir.join(format!("{}.json", part.number)), &bytes)?;
        up.parts.insert(part.number, part);
        Ok(true)
    }

    /// Forgets an upload and deletes its parts. `false` if it did not exist.
    pub fn remove_upload(&self, upload_id: &str) -> bool {
        let existed = self.lock().uploads.remove(upload_id).is_some();
        if existed {
            let _ = fs::remove_dir_all(self.upload_dir(upload_id));
        }
        existed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str, size: u64) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size,
            etag: "X".into(),
            crc64: 0,
            content_type: "a/b".into(),
            last_modified: 1,
            storage_class: StorageClass::Standard,
            multipart: false,
            user_meta: BTreeMap::new(),
            restore_ready_ms: None,
            restore_expiry: None,
        }
    }

    #[test]
    fn survives_reopen_and_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        let buckets = vec!["b1".to_string()];
        let s = Store::open(dir.path(), &buckets).unwrap();
        let t = s.temp_path();
        fs::write(&t, b"hello").unwrap();
        s.commit_object("b1", meta("../../escape", 5), &t).unwrap();
        drop(s);
        let s = Store::open(dir.path(), &buckets).unwrap();
        let (m, _) = s.open_object("b1", "../../escape").unwrap().unwrap();
        assert_eq!(m.size, 5);
        assert!(!dir.path().parent().unwrap().join("escape").exists());
        assert!(s.delete_object("b1", "../../escape").unwrap());
        assert!(s.head("b1", "../../escape").is_none());
        assert!(valid_upload_id("0004B9894A22E5B1888A1E29F8236E2F"));
        assert!(!valid_upload_id("../../../../../../../../../../../a"));
    }
}
