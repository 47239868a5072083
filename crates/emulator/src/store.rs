//! Objects and multipart uploads on disk under the data directory, with an in-memory index
//! rebuilt at start-up (so state survives a restart).
//!
//! Layout (no name on disk is derived from client input except through a hash, so a key such
//! as `../../etc/passwd` can never leave the data directory):
//! ```text
//! <data>/objects/<bucket>/<sha256(key)>.data   object bytes (PutObject)
//! <data>/objects/<bucket>/<sha256(key)>.<UPLOADID>.parts/<n>.data
//!                                               the parts of a multipart object
//! <data>/objects/<bucket>/<sha256(key)>.json   ObjectMeta
//! <data>/uploads/<UPLOADID>/upload.json         Upload (without parts)
//! <data>/uploads/<UPLOADID>/<n>.data|.json      one part
//! <data>/tmp/                                   bodies being received (cleared at start)
//! <data>/ecs.json                               ECS images and tasks
//! ```
//! Bodies are streamed to a file in `tmp/` and renamed into place only once complete, under
//! the index lock, so a reader never sees a half-written object. CompleteMultipartUpload moves
//! the upload's directory into place (one rename): the object is its part files read in turn,
//! so no byte is copied. A replaced or deleted multipart object's directory is removed once
//! the last reader that opened it is done, so a GET under way still reads what it started.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// For an object made by CompleteMultipartUpload: the part files it is made of. `None`:
    /// one data file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_files: Option<PartFiles>,
}

/// What [`Store::commit_multipart`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// The object is in place.
    Done,
    /// The upload no longer exists (aborted or completed meanwhile).
    NoSuchUpload,
    /// This part was uploaded again after the caller read it; nothing was changed.
    PartChanged(u32),
}

/// The parts a multipart object is made of, kept as the files they were uploaded to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartFiles {
    /// The upload they came from (names their directory).
    pub upload_id: String,
    /// (part number, size) in object order.
    pub parts: Vec<(u32, u64)>,
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
    /// The part directory of every multipart object, shared with its open readers.
    part_dirs: HashMap<PathBuf, Arc<PartDir>>,
}

/// A multipart object's part directory. Once retired (the object was replaced or deleted) it
/// is removed when the last holder (the index, or a reader) drops it.
#[derive(Debug)]
struct PartDir {
    path: PathBuf,
    retired: AtomicBool,
}

impl Drop for PartDir {
    fn drop(&mut self) {
        if self.retired.load(Ordering::Acquire) {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

impl Index {
    /// Forgets the data of the object `meta` describes (being replaced or deleted): a part
    /// directory goes once no reader holds it; a single data file is unlinked by the caller.
    fn retire_parts(&mut self, dir: Option<PathBuf>) {
        if let Some(d) = dir.and_then(|d| self.part_dirs.remove(&d)) {
            d.retired.store(true, Ordering::Release);
        }
    }
}

/// An open object's bytes: one file, or the part files of a multipart object read in turn.
/// Reads are positional, so the reader also seeks.
#[derive(Debug)]
pub struct ObjectData {
    source: Source,
    size: u64,
    pos: u64,
}

#[derive(Debug)]
enum Source {
    File(fs::File),
    Parts {
        dir: Arc<PartDir>,
        /// (part number, offset of its first byte in the object, size).
        parts: Vec<(u32, u64, u64)>,
        /// The part file open now (index into `parts`), opened on first use.
        open: Option<(usize, fs::File)>,
    },
}

impl ObjectData {
    /// Size of the object.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn parts(dir: Arc<PartDir>, list: &[(u32, u64)]) -> Self {
        let mut offset = 0u64;
        let parts = list
            .iter()
            .map(|&(n, len)| {
                let at = offset;
                offset = offset.saturating_add(len);
                (n, at, len)
            })
            .collect();
        ObjectData {
            source: Source::Parts {
                dir,
                parts,
                open: None,
            },
            size: offset,
            pos: 0,
        }
    }
}

fn shrank() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "object shrank")
}

impl Read for ObjectData {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let pos = self.pos;
        let n = match &mut self.source {
            Source::File(f) => {
                let want = usize::try_from(self.size - pos).unwrap_or(usize::MAX);
                let take = buf.len().min(want);
                f.read_at(&mut buf[..take], pos)?
            }
            Source::Parts { dir, parts, open } => {
                // The last part starting at or before `pos` (skips empty parts).
                let i = parts.partition_point(|&(_, at, _)| at <= pos) - 1;
                let (number, at, len) = parts[i];
                if open.as_ref().map(|(j, _)| *j) != Some(i) {
                    *open = Some((i, fs::File::open(dir.path.join(format!("{number}.data")))?));
                }
                let Some((_, f)) = open.as_ref() else {
                    return Err(shrank());
                };
                let within = pos - at;
                let want = usize::try_from(len - within).unwrap_or(usize::MAX);
                let take = buf.len().min(want);
                f.read_at(&mut buf[..take], within)?
            }
        };
        if n == 0 {
            return Err(shrank());
        }
        self.pos += u64::try_from(n).unwrap_or(0);
        Ok(n)
    }
}

impl Seek for ObjectData {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let Some(target) = target else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the object",
            ));
        };
        self.pos = target;
        Ok(target)
    }
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

/// Directory of a multipart object's parts, in the bucket directory `bucket_dir`.
fn part_dir_path(bucket_dir: &Path, key: &str, upload_id: &str) -> PathBuf {
    bucket_dir.join(format!("{}.{upload_id}.parts", key_hash(key)))
}

/// Whether the object's data files are all there with the sizes its meta records.
fn data_intact(bucket_dir: &Path, meta: &ObjectMeta) -> bool {
    let len = |p: PathBuf| fs::metadata(p).map(|m| m.len()).ok();
    match &meta.part_files {
        None => len(bucket_dir.join(format!("{}.data", key_hash(&meta.key)))) == Some(meta.size),
        Some(pf) => {
            if !valid_upload_id(&pf.upload_id)
                || pf.parts.iter().map(|p| p.1).sum::<u64>() != meta.size
            {
                return false;
            }
            let d = part_dir_path(bucket_dir, &meta.key, &pf.upload_id);
            pf.parts
                .iter()
                .all(|&(n, size)| len(d.join(format!("{n}.data"))) == Some(size))
        }
    }
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
            let mut part_dirs_seen = Vec::new();
            for e in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
                let p = e.path();
                match p.extension().and_then(|x| x.to_str()) {
                    Some("parts") => part_dirs_seen.push(p),
                    Some("json") => {
                        let Some(meta) = read_json::<ObjectMeta>(&p) else {
                            continue;
                        };
                        if data_intact(&dir, &meta) {
                            if let Some(pf) = &meta.part_files {
                                let d = part_dir_path(&dir, &meta.key, &pf.upload_id);
                                index.part_dirs.insert(
                                    d.clone(),
                                    Arc::new(PartDir {
                                        path: d,
                                        retired: AtomicBool::new(false),
                                    }),
                                );
                            }
                            map.insert(meta.key.clone(), meta);
                        }
                    }
                    _ => {}
                }
            }
            // Part directories no object names: left by a stop while a replaced object was
            // still being read, or between moving a completed upload and writing its meta.
            for p in part_dirs_seen {
                if !index.part_dirs.contains_key(&p) {
                    let _ = fs::remove_dir_all(&p);
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
    ) -> io::Result<Option<(ObjectMeta, ObjectData)>> {
        let idx = self.lock();
        let Some(meta) = idx.objects.get(bucket).and_then(|m| m.get(key)).cloned() else {
            return Ok(None);
        };
        let data = match &meta.part_files {
            None => ObjectData {
                source: Source::File(fs::File::open(self.object_paths(bucket, key).0)?),
                size: meta.size,
                pos: 0,
            },
            Some(pf) => {
                let path = part_dir_path(&self.bucket_dir(bucket), key, &pf.upload_id);
                let dir =
                    idx.part_dirs.get(&path).cloned().ok_or_else(|| {
                        io::Error::other("the object's part directory is unknown")
                    })?;
                ObjectData::parts(dir, &pf.parts)
            }
        };
        Ok(Some((meta, data)))
    }

    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join("objects").join(bucket)
    }

    /// The part directory of the object now stored under `key`, if it is a multipart one.
    fn current_part_dir(&self, idx: &Index, bucket: &str, key: &str) -> Option<PathBuf> {
        let pf = idx.objects.get(bucket)?.get(key)?.part_files.as_ref()?;
        Some(part_dir_path(&self.bucket_dir(bucket), key, &pf.upload_id))
    }

    /// Moves a finished temp file into place as the object `meta.key`.
    pub fn commit_object(&self, bucket: &str, meta: ObjectMeta, temp: &Path) -> io::Result<()> {
        let (data, json) = self.object_paths(bucket, &meta.key);
        let bytes = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        let mut idx = self.lock();
        fs::rename(temp, &data)?;
        write_atomic(&json, &bytes)?;
        let old = self.current_part_dir(&idx, bucket, &meta.key);
        idx.retire_parts(old);
        idx.objects
            .entry(bucket.to_string())
            .or_default()
            .insert(meta.key.clone(), meta);
        Ok(())
    }

    /// Completes `upload_id` as the object `meta` made of `parts` (in order): the upload's
    /// directory becomes the object's part directory, so no byte is copied.
    pub fn commit_multipart(
        &self,
        bucket: &str,
        mut meta: ObjectMeta,
        upload_id: &str,
        parts: &[PartMeta],
    ) -> io::Result<Completed> {
        let dir = self.bucket_dir(bucket);
        let dest = part_dir_path(&dir, &meta.key, upload_id);
        let (data, json) = self.object_paths(bucket, &meta.key);
        let keep: std::collections::HashSet<u32> = parts.iter().map(|p| p.number).collect();
        meta.part_files = Some(PartFiles {
            upload_id: upload_id.to_string(),
            parts: parts.iter().map(|p| (p.number, p.size)).collect(),
        });
        let bytes = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        {
            let mut idx = self.lock();
            let Some(up) = idx.uploads.get(upload_id) else {
                return Ok(Completed::NoSuchUpload);
            };
            // A part uploaded again since the caller looked is not the part it checked.
            if let Some(p) = parts.iter().find(|p| up.parts.get(&p.number) != Some(*p)) {
                return Ok(Completed::PartChanged(p.number));
            }
            fs::rename(self.upload_dir(upload_id), &dest)?;
            if let Err(e) = write_atomic(&json, &bytes) {
                // Put the upload back as it was; the old object (if any) is untouched.
                let _ = fs::rename(&dest, self.upload_dir(upload_id));
                return Err(e);
            }
            idx.uploads.remove(upload_id);
            let old = self.current_part_dir(&idx, bucket, &meta.key);
            idx.retire_parts(old);
            let _ = fs::remove_file(&data); // the old single-file object, if there was one
            idx.part_dirs.insert(
                dest.clone(),
                Arc::new(PartDir {
                    path: dest.clone(),
                    retired: AtomicBool::new(false),
                }),
            );
            idx.objects
                .entry(bucket.to_string())
                .or_default()
                .insert(meta.key.clone(), meta);
        }
        // The upload's bookkeeping and the parts not chosen (OSS deletes those too). Outside
        // the lock: nothing reads them any more.
        if let Ok(rd) = fs::read_dir(&dest) {
            for e in rd.flatten() {
                let p = e.path();
                let chosen = p.extension().and_then(|x| x.to_str()) == Some("data")
                    && p.file_stem()
                        .and_then(|s| s.to_str())
                        .and_then(|s| s.parse::<u32>().ok())
                        .is_some_and(|n| keep.contains(&n));
                if !chosen {
                    let _ = fs::remove_file(p);
                }
            }
        }
        Ok(Completed::Done)
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
        let parts = self.current_part_dir(&idx, bucket, key);
        let existed = idx
            .objects
            .get_mut(bucket)
            .and_then(|m| m.remove(key))
            .is_some();
        if existed {
            idx.retire_parts(parts);
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
            part_files: None,
        }
    }

    fn upload_with(s: &Store, key: &str, parts: &[&[u8]]) -> (String, Vec<PartMeta>) {
        let id = crate::util::random_hex(32);
        s.create_upload(Upload {
            upload_id: id.clone(),
            bucket: "b1".into(),
            key: key.into(),
            initiated: 1,
            storage_class: StorageClass::Standard,
            content_type: "a/b".into(),
            user_meta: BTreeMap::new(),
            parts: BTreeMap::new(),
        })
        .unwrap();
        let mut metas = Vec::new();
        for (i, bytes) in parts.iter().enumerate() {
            let t = s.temp_path();
            fs::write(&t, bytes).unwrap();
            let part = PartMeta {
                number: u32::try_from(i + 1).unwrap(),
                size: bytes.len() as u64,
                etag: "E".into(),
                crc64: 0,
                last_modified: 1,
            };
            metas.push(part.clone());
            assert!(s.commit_part(&id, part, &t).unwrap());
        }
        (id, metas)
    }

    fn read_all(mut d: ObjectData) -> Vec<u8> {
        let mut v = Vec::new();
        d.read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn multipart_object_is_its_part_files_read_in_turn() {
        let dir = tempfile::tempdir().unwrap();
        let buckets = vec!["b1".to_string()];
        let s = Store::open(dir.path(), &buckets).unwrap();
        // Part 2 is left out of the object: its file must go.
        let (id, all) = upload_with(&s, "k", &[b"hello ", b"unused", b"", b"world"]);
        let chosen = [all[0].clone(), all[2].clone(), all[3].clone()];
        let mut changed = chosen.clone();
        changed[1].etag = "OTHER".into();
        assert_eq!(
            s.commit_multipart("b1", meta("k", 11), &id, &changed)
                .unwrap(),
            Completed::PartChanged(3)
        );
        assert_eq!(
            s.commit_multipart("b1", meta("k", 11), &id, &chosen)
                .unwrap(),
            Completed::Done
        );
        assert!(s.upload("b1", "k", &id).is_none());
        assert_eq!(
            s.commit_multipart("b1", meta("k", 11), &id, &chosen)
                .unwrap(),
            Completed::NoSuchUpload
        );
        let (m, d) = s.open_object("b1", "k").unwrap().unwrap();
        assert_eq!(d.size(), 11);
        assert_eq!(read_all(d), b"hello world");
        let pdir = part_dir_path(&s.bucket_dir("b1"), "k", &id);
        let mut left: Vec<String> = fs::read_dir(&pdir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["1.data", "3.data", "4.data"]);

        // Seeks and reads across a part boundary, past the end, and from the end.
        let (_, mut d) = s.open_object("b1", "k").unwrap().unwrap();
        d.seek(SeekFrom::Start(4)).unwrap();
        let mut b = [0u8; 5];
        d.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"o wor");
        assert_eq!(d.seek(SeekFrom::End(-2)).unwrap(), 9);
        assert_eq!(read_all(d), b"ld");
        let (_, mut d) = s.open_object("b1", "k").unwrap().unwrap();
        d.seek(SeekFrom::Start(50)).unwrap();
        assert_eq!(d.read(&mut b).unwrap(), 0);
        assert!(d.seek(SeekFrom::Current(-51)).is_err());

        // Survives a restart.
        drop(s);
        let s = Store::open(dir.path(), &buckets).unwrap();
        let (m2, d) = s.open_object("b1", "k").unwrap().unwrap();
        assert_eq!(m2, m);
        assert_eq!(read_all(d), b"hello world");

        // A reader that opened the object before it was replaced still reads it whole; the
        // old parts go once it is done.
        let (_, mut old) = s.open_object("b1", "k").unwrap().unwrap();
        let t = s.temp_path();
        fs::write(&t, b"new").unwrap();
        s.commit_object("b1", meta("k", 3), &t).unwrap();
        assert!(pdir.exists());
        let mut v = Vec::new();
        old.read_to_end(&mut v).unwrap();
        assert_eq!(v, b"hello world");
        drop(old);
        assert!(!pdir.exists());
        assert_eq!(
            read_all(s.open_object("b1", "k").unwrap().unwrap().1),
            b"new"
        );

        // A multipart object replacing a single file one, then deleted.
        let (id, parts) = upload_with(&s, "k", &[b"ab", b"cd"]);
        assert_eq!(
            s.commit_multipart("b1", meta("k", 4), &id, &parts).unwrap(),
            Completed::Done
        );
        assert!(!s.object_paths("b1", "k").0.exists());
        assert_eq!(
            read_all(s.open_object("b1", "k").unwrap().unwrap().1),
            b"abcd"
        );
        let pdir = part_dir_path(&s.bucket_dir("b1"), "k", &id);
        assert!(s.delete_object("b1", "k").unwrap());
        assert!(!pdir.exists());
    }

    #[test]
    fn damaged_multipart_object_is_dropped_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let buckets = vec!["b1".to_string()];
        let s = Store::open(dir.path(), &buckets).unwrap();
        let (id, parts) = upload_with(&s, "k", &[b"abc", b"de"]);
        assert_eq!(
            s.commit_multipart("b1", meta("k", 5), &id, &parts).unwrap(),
            Completed::Done
        );
        let pdir = part_dir_path(&s.bucket_dir("b1"), "k", &id);
        drop(s);
        fs::write(pdir.join("2.data"), b"d").unwrap();
        let s = Store::open(dir.path(), &buckets).unwrap();
        assert!(s.head("b1", "k").is_none());
        // An orphaned part directory (no meta names it) is swept.
        assert!(!pdir.exists());
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
