//! The upload itself: single PUT, multipart with resume, verification.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::task::JoinSet;

use super::checkpoint::{self, Checkpoint, FileIdentity};
use super::{
    check_memory, choose_part_size, part_count, part_range, UploadEvent, UploadOptions,
    UploadOutcome, DEFAULT_MULTIPART_THRESHOLD, MAX_SINGLE_PUT,
};
use crate::client::{Body, Client, SourceBody, StreamedCrc};
use crate::crc::{combine_all, Crc64};
use crate::error::{Error, Result};
use crate::xml::Part;

/// Callback for [`UploadEvent`]s, shared with the worker tasks.
pub type EventSink = Arc<dyn Fn(UploadEvent) + Send + Sync>;

/// Read buffer for whole-file hashing.
const HASH_CHUNK: usize = 4 << 20;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::InvalidArgument(format!("worker thread failed: {e}")))?
}

/// The bytes an upload sends: a file, or bytes made on demand (a converted image). Read from
/// blocking threads, several at once, so `&self`.
pub trait UploadSource: Send + Sync {
    /// Length in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` with the bytes at `offset`; the same offset always gives the same bytes
    /// (a resumed upload re-reads parts to verify them against the server's).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
    /// What the checkpoint is keyed by: it must change whenever the bytes would.
    fn identity(&self) -> &FileIdentity;
    /// The local file the bytes come from, named in the checkpoint and in errors.
    fn path(&self) -> &Path;
    /// `Some` when the bytes are exactly the file at this path, so a single PUT can
    /// stream it from disk instead of holding it in memory.
    fn file(&self) -> Option<&Path> {
        None
    }
}

/// A file uploaded as it is.
pub struct FileUpload {
    path: PathBuf,
    file: File,
    identity: FileIdentity,
}

impl FileUpload {
    /// Opens `path` and reads its identity (size, mtime, sampled hash).
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(FileUpload {
            path: path.to_path_buf(),
            file,
            identity: FileIdentity::of(path)?,
        })
    }
}

impl UploadSource for FileUpload {
    fn size(&self) -> u64 {
        self.identity.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn identity(&self) -> &FileIdentity {
        &self.identity
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// A part read from disk with its digests.
struct LocalPart {
    data: Bytes,
    /// Present when `Content-MD5` was asked for.
    md5: Option<[u8; 16]>,
    crc: u64,
}

/// Bytes read and hashed at a time: small enough to be hashed while still in the CPU cache
/// right after the read put them there, large enough that a read is one system call's worth.
const READ_SLICE: usize = 1 << 20;

/// Reads `buf.len()` bytes at `off` slice by slice, hashing each slice right after reading it:
/// one pass over each byte (CRC-64, and MD5 when `md5` is given).
fn read_hashing(
    source: &dyn UploadSource,
    off: u64,
    buf: &mut [u8],
    crc: &mut Crc64,
    mut md5: Option<&mut Md5>,
) -> Result<()> {
    let mut at = off;
    for slice in buf.chunks_mut(READ_SLICE) {
        source
            .read_at(at, slice)
            .map_err(|e| Error::io(source.path(), e))?;
        crc.update(slice);
        if let Some(m) = md5.as_deref_mut() {
            m.update(&*slice);
        }
        at += slice.len() as u64;
    }
    Ok(())
}

fn read_part(source: &dyn UploadSource, off: u64, len: u64, with_md5: bool) -> Result<LocalPart> {
    let mut buf = vec![
        0u8;
        usize::try_from(len).map_err(|_| Error::InvalidArgument(
            "part too large for memory".into()
        ))?
    ];
    let mut crc = Crc64::new();
    let mut md5 = with_md5.then(Md5::new);
    read_hashing(source, off, &mut buf, &mut crc, md5.as_mut())?;
    Ok(LocalPart {
        data: Bytes::from(buf),
        md5: md5.map(|m| m.finalize().into()),
        crc: crc.finish(),
    })
}

/// CRC-64 of the whole source.
fn hash_source(source: &dyn UploadSource) -> Result<u64> {
    let size = source.size();
    let mut crc = Crc64::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut at = 0u64;
    while at < size {
        let n = usize::try_from(size - at).map_or(HASH_CHUNK, |left| left.min(HASH_CHUNK));
        read_hashing(source, at, &mut buf[..n], &mut crc, None)?;
        at += n as u64;
    }
    Ok(crc.finish())
}

fn etag_is_md5(etag: &str, md5: &[u8; 16]) -> bool {
    etag.trim_matches('"')
        .eq_ignore_ascii_case(&hex::encode(md5))
}

/// Uploads `path` to `key` in the client's bucket. See the [module docs](super).
pub async fn upload_file(
    client: &Client,
    path: &Path,
    key: &str,
    options: &UploadOptions,
    events: EventSink,
) -> Result<UploadOutcome> {
    let p = path.to_path_buf();
    let source = blocking(move || FileUpload::open(&p)).await?;
    upload_source(client, Arc::new(source), key, options, events).await
}

/// Uploads the bytes of `source` to `key` in the client's bucket: one PUT below
/// [`UploadOptions::multipart_threshold`] (and, for a source that is not a plain file, below
/// [`DEFAULT_MULTIPART_THRESHOLD`] too, since a retried single PUT makes all its bytes again), a resumable
/// multipart upload above. The checkpoint is keyed by [`UploadSource::identity`].
pub async fn upload_source(
    client: &Client,
    source: Arc<dyn UploadSource>,
    key: &str,
    options: &UploadOptions,
    events: EventSink,
) -> Result<UploadOutcome> {
    let size = source.size();
    // One bucket for every body this upload (and any other given the same limiter) sends.
    let limited;
    let client = match &options.max_upload_rate {
        Some(limiter) => {
            limited = client.with_upload_limit(Some(limiter.clone()));
            &limited
        }
        None => client,
    };
    if options.skip_identical {
        if let Some(done) =
            already_there(client, &source, key, &options.checkpoint_dir, &events).await?
        {
            return Ok(done);
        }
    }
    // One PutObject takes at most 5 GiB: above that the upload is multipart whatever asked.
    let threshold = if source.file().is_some() {
        options.multipart_threshold.min(MAX_SINGLE_PUT)
    } else {
        options.multipart_threshold.min(DEFAULT_MULTIPART_THRESHOLD)
    };
    if size < threshold {
        if !options.content_md5 {
            return single_put(client, source, key, &events).await;
        }
        // Content-MD5 is a header, so it must be known before the body goes: the bytes are
        // read once into memory (hashed on the way) and sent from there, when they fit the
        // memory a multipart upload of them would take; larger ones go multipart, each part
        // read once.
        if let Some(budget) = in_memory_budget(size, options) {
            if size <= budget {
                return single_put_in_memory(client, source, key, &events).await;
            }
        }
    }
    multipart(client, source, key, options, events).await
}

/// The memory a multipart upload of `size` bytes with `options` takes for its part buffers
/// (`min(parallel, parts) × part size`), or `None` when no multipart plan fits.
fn in_memory_budget(size: u64, options: &UploadOptions) -> Option<u64> {
    super::buffer_memory(size, options.part_size, options.parallel).ok()
}

/// The object already at `key`, when it is byte for byte what `source` would make of it (same
/// size, same CRC-64), so a rerun after a finished upload sends nothing. An interrupted upload
/// recorded for this key is obsolete then (the object it would make is there): it is aborted,
/// so its parts do not linger on OSS.
async fn already_there(
    client: &Client,
    source: &Arc<dyn UploadSource>,
    key: &str,
    checkpoint_dir: &Path,
    events: &EventSink,
) -> Result<Option<UploadOutcome>> {
    let size = source.size();
    let head = match client.head_object(key).await {
        Ok(h) => h,
        Err(e) if e.kind() == crate::ErrorKind::NotFound => return Ok(None),
        // Least privilege: no oss:GetObject. The check is an optimisation; send the bytes.
        Err(e) if e.kind() == crate::ErrorKind::AccessDenied => {
            events(UploadEvent::NotVerified {
                what: format!(
                    "HeadObject on {key:?} was denied ({}): whether OSS already has this object is not checked, it is sent",
                    e.code().unwrap_or_default()
                ),
            });
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let Some(server_crc) = head.crc64 else {
        return Ok(None);
    };
    if head.size != size {
        return Ok(None);
    }
    events(UploadEvent::Verifying { size });
    let hashed = source.clone();
    let local_crc = blocking(move || hash_source(hashed.as_ref())).await?;
    if local_crc != server_crc {
        return Ok(None);
    }
    if let Some(upload_id) = abort_upload(client, key, checkpoint_dir).await? {
        events(UploadEvent::StaleUploadAborted { upload_id });
    }
    events(UploadEvent::AlreadyThere { size });
    Ok(Some(UploadOutcome {
        bucket: client.bucket().to_string(),
        key: key.to_string(),
        size,
        crc64: local_crc,
        etag: head.etag,
        parts: 0,
        parts_sent: 0,
        parts_reused: 0,
        upload_id: None,
        part_size: 0,
        already_there: true,
    }))
}

async fn single_put(
    client: &Client,
    source: Arc<dyn UploadSource>,
    key: &str,
    events: &EventSink,
) -> Result<UploadOutcome> {
    let size = source.size();
    started_single(events, size);
    // The body is read once, its CRC-64 computed chunk by chunk as it streams.
    let streamed = Arc::new(StreamedCrc::default());
    let body = Body::Source(SourceBody {
        source: source.clone(),
        len: size,
        crc: streamed.clone(),
    });
    let r = client
        .put_object_verified(key, body, None, || streamed.finished(size))
        .await?;
    let crc = streamed.finished(size).ok_or_else(|| Error::Network {
        op: "PutObject",
        message: "answered before the whole body was sent".into(),
    })?;
    single_done(client, key, size, crc, r, events)
}

/// A single PUT with `Content-MD5`: the bytes are read into memory once, MD5 and CRC-64
/// computed while reading, and every attempt sends them from there.
async fn single_put_in_memory(
    client: &Client,
    source: Arc<dyn UploadSource>,
    key: &str,
    events: &EventSink,
) -> Result<UploadOutcome> {
    let size = source.size();
    started_single(events, size);
    let read = source.clone();
    let part = blocking(move || read_part(read.as_ref(), 0, size, true)).await?;
    use base64::Engine as _;
    let md5 = part
        .md5
        .map(|m| base64::engine::general_purpose::STANDARD.encode(m));
    let crc = part.crc;
    let r = client
        .put_object_verified(key, Body::Bytes(part.data), md5.as_deref(), || Some(crc))
        .await?;
    single_done(client, key, size, crc, r, events)
}

fn started_single(events: &EventSink, size: u64) {
    events(UploadEvent::Started {
        size,
        multipart: false,
        part_size: size,
        parts: 1,
    });
}

/// Checks a single PUT's answer against the CRC-64 of what was sent.
fn single_done(
    client: &Client,
    key: &str,
    size: u64,
    crc: u64,
    r: crate::PutResult,
    events: &EventSink,
) -> Result<UploadOutcome> {
    events(UploadEvent::PartDone {
        number: 1,
        bytes: size,
        reused: false,
    });
    events(UploadEvent::Completing);
    match r.crc64 {
        Some(c) if c == crc => {}
        Some(c) => {
            return Err(Error::ChecksumMismatch {
                what: format!("object {key:?}"),
                local: crc,
                server: c,
            })
        }
        None => {
            return Err(Error::MissingChecksum {
                what: format!("object {key:?}"),
            })
        }
    }
    Ok(UploadOutcome {
        bucket: client.bucket().to_string(),
        key: key.to_string(),
        size,
        crc64: crc,
        etag: r.etag,
        parts: 1,
        parts_sent: 1,
        parts_reused: 0,
        upload_id: None,
        part_size: size,
        already_there: false,
    })
}

/// A finished part.
#[derive(Clone)]
struct Done {
    etag: String,
    crc: u64,
    len: u64,
}

async fn multipart(
    client: &Client,
    source: Arc<dyn UploadSource>,
    key: &str,
    options: &UploadOptions,
    events: EventSink,
) -> Result<UploadOutcome> {
    let identity = source.identity().clone();
    let size = source.size();
    let cp_path = checkpoint::path_for(
        &options.checkpoint_dir,
        &client.config().region,
        client.bucket(),
        key,
    );
    let mut server_parts: HashMap<u32, Part> = HashMap::new();
    let mut plan: Option<(String, u64)> = None;
    if let Some(cp) = checkpoint::load(&cp_path) {
        if cp.file == identity
            && cp.part_size > 0
            && part_count(size, cp.part_size) == cp.part_count
        {
            match client.list_parts(key, &cp.upload_id).await {
                Ok(parts) => {
                    events(UploadEvent::Resuming {
                        upload_id: cp.upload_id.clone(),
                        parts_on_server: u32::try_from(parts.len()).unwrap_or(u32::MAX),
                    });
                    server_parts = parts.into_iter().map(|p| (p.part_number, p)).collect();
                    plan = Some((cp.upload_id, cp.part_size));
                }
                Err(e) if e.code() == Some("NoSuchUpload") => {
                    events(UploadEvent::UploadGone {
                        upload_id: cp.upload_id,
                    });
                }
                Err(e) => return Err(e),
            }
        } else {
            // The file is not the one whose parts are on the server: abort that upload so
            // its parts do not linger (and cost storage) forever.
            match client.abort_multipart_upload(key, &cp.upload_id).await {
                Ok(()) => {}
                Err(e) if e.code() == Some("NoSuchUpload") => {}
                Err(e) => return Err(e),
            }
            events(UploadEvent::StaleUploadAborted {
                upload_id: cp.upload_id,
            });
        }
        if plan.is_none() {
            checkpoint::remove(&cp_path)?;
        }
    }
    let (upload_id, part_size) = match plan {
        Some(p) => p,
        None => {
            let part_size =
                choose_part_size(size, options.part_size).map_err(Error::InvalidArgument)?;
            let upload_id = client.initiate_multipart_upload(key).await?;
            checkpoint::save(
                &cp_path,
                &Checkpoint {
                    version: checkpoint::VERSION,
                    region: client.config().region.clone(),
                    bucket: client.bucket().to_string(),
                    key: key.to_string(),
                    path: source.path().display().to_string(),
                    file: identity.clone(),
                    upload_id: upload_id.clone(),
                    part_size,
                    part_count: part_count(size, part_size),
                },
            )?;
            events(UploadEvent::Initiated {
                upload_id: upload_id.clone(),
            });
            (upload_id, part_size)
        }
    };
    let count = part_count(size, part_size);
    check_memory(part_size, options.parallel, count)?;
    events(UploadEvent::Started {
        size,
        multipart: true,
        part_size,
        parts: count,
    });

    let shared = Arc::new(Shared {
        client: client.clone(),
        source,
        key: key.to_string(),
        upload_id: upload_id.clone(),
        size,
        part_size,
        todo: Mutex::new((1..=count).collect()),
        server: server_parts,
        done: Mutex::new(BTreeMap::new()),
        sent: Mutex::new(0),
        events: events.clone(),
        content_md5: options.content_md5,
    });
    let mut set = JoinSet::new();
    for _ in 0..options
        .parallel
        .clamp(1, 64)
        .min(usize::try_from(count).unwrap_or(1))
    {
        set.spawn(worker(shared.clone()));
    }
    while let Some(joined) = set.join_next().await {
        let r = joined.map_err(|e| Error::InvalidArgument(format!("part worker failed: {e}")))?;
        if let Err(e) = r {
            set.abort_all();
            return Err(e);
        }
    }
    let done = lock(&shared.done).clone();
    let sent = *lock(&shared.sent);
    if done.len() != usize::try_from(count).unwrap_or(0) {
        return Err(Error::InvalidArgument(format!(
            "{} of {count} parts done",
            done.len()
        )));
    }
    events(UploadEvent::Completing);
    let local_crc = combine_all(done.values().map(|d| (d.crc, d.len)));
    let list: Vec<(u32, String)> = done.iter().map(|(n, d)| (*n, d.etag.clone())).collect();
    let (etag, server_crc) = match client
        .complete_multipart_upload(key, &upload_id, &list)
        .await
    {
        Ok(r) => (r.etag, r.crc64),
        // A retried Complete whose first attempt succeeded but lost its answer: the object
        // is there; the CRC check below decides whether it is ours.
        Err(e) if e.code() == Some("NoSuchUpload") => (String::new(), None),
        Err(e) => return Err(e),
    };
    // The upload id is consumed: whatever the verification says, it cannot be resumed.
    checkpoint::remove(&cp_path)?;
    let (etag, server_crc) = if server_crc.is_none() || etag.is_empty() {
        let head = client.head_object(key).await?;
        if head.size != size {
            return Err(Error::SizeMismatch {
                what: format!("object {key:?}"),
                expected: size,
                actual: head.size,
            });
        }
        (if etag.is_empty() { head.etag } else { etag }, head.crc64)
    } else {
        (etag, server_crc)
    };
    match server_crc {
        Some(c) if c == local_crc => {}
        Some(c) => {
            return Err(Error::ChecksumMismatch {
                what: format!("object {key:?}"),
                local: local_crc,
                server: c,
            })
        }
        None => {
            return Err(Error::MissingChecksum {
                what: format!("object {key:?}"),
            })
        }
    }
    Ok(UploadOutcome {
        bucket: client.bucket().to_string(),
        key: key.to_string(),
        size,
        crc64: local_crc,
        etag,
        parts: count,
        parts_sent: sent,
        parts_reused: count - sent,
        upload_id: Some(upload_id),
        part_size,
        already_there: false,
    })
}

struct Shared {
    client: Client,
    source: Arc<dyn UploadSource>,
    key: String,
    upload_id: String,
    size: u64,
    part_size: u64,
    todo: Mutex<VecDeque<u32>>,
    server: HashMap<u32, Part>,
    done: Mutex<BTreeMap<u32, Done>>,
    sent: Mutex<u32>,
    events: EventSink,
    content_md5: bool,
}

async fn worker(s: Arc<Shared>) -> Result<()> {
    loop {
        let Some(n) = lock(&s.todo).pop_front() else {
            return Ok(());
        };
        let (off, len) = part_range(s.size, s.part_size, n);
        let source = s.source.clone();
        let with_md5 = s.content_md5;
        let part = blocking(move || read_part(source.as_ref(), off, len, with_md5)).await?;
        // ListParts is the truth: keep a server part only if it is provably ours.
        if let Some(sp) = s.server.get(&n) {
            let same = sp.size == len
                && match sp.hash_crc64ecma {
                    Some(c) => c == part.crc,
                    // No CRC from the server (rare): its ETag is the part's MD5.
                    None => etag_is_md5(
                        &sp.etag,
                        &part.md5.unwrap_or_else(|| Md5::digest(&part.data).into()),
                    ),
                };
            if same {
                lock(&s.done).insert(
                    n,
                    Done {
                        etag: sp.etag.clone(),
                        crc: part.crc,
                        len,
                    },
                );
                (s.events)(UploadEvent::PartDone {
                    number: n,
                    bytes: len,
                    reused: true,
                });
                continue;
            }
        }
        use base64::Engine as _;
        let md5 = part
            .md5
            .map(|m| base64::engine::general_purpose::STANDARD.encode(m));
        let etag = s
            .client
            .upload_part_verified(&s.key, &s.upload_id, n, part.data, md5.as_deref(), part.crc)
            .await?
            .etag;
        lock(&s.done).insert(
            n,
            Done {
                etag,
                crc: part.crc,
                len,
            },
        );
        *lock(&s.sent) += 1;
        (s.events)(UploadEvent::PartDone {
            number: n,
            bytes: len,
            reused: false,
        });
    }
}

/// Cancels the upload recorded for `key` and deletes its checkpoint. Returns the aborted
/// upload id, or `None` when there was no checkpoint.
pub async fn abort_upload(
    client: &Client,
    key: &str,
    checkpoint_dir: &Path,
) -> Result<Option<String>> {
    let cp_path = checkpoint::path_for(
        checkpoint_dir,
        &client.config().region,
        client.bucket(),
        key,
    );
    let Some(cp) = checkpoint::load(&cp_path) else {
        return Ok(None);
    };
    match client.abort_multipart_upload(key, &cp.upload_id).await {
        Ok(()) => {}
        Err(e) if e.code() == Some("NoSuchUpload") => {}
        Err(e) => return Err(e),
    }
    checkpoint::remove(&cp_path)?;
    Ok(Some(cp.upload_id))
}
