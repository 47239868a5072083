//! The uploader: one PutObject below [`UploadOptions::multipart_threshold`], a resumable
//! multipart upload above it. Every byte is verified: the CRC-64 OSS computes compared with
//! ours for each part (a mismatching part is sent again), and the parts' CRCs combined locally
//! compared with the object's — what the official SDKs rely on by default. A mismatch is an
//! error, never a silent success. `Content-MD5` on each request, which makes OSS refuse a
//! damaged body before storing it, is opt-in ([`UploadOptions::content_md5`]): MD5 costs more
//! client CPU than everything else the upload does.
//!
//! Each byte is read once and hashed as it is read (CRC-64, and MD5 when asked), while it
//! is still in the CPU cache: a part is read and hashed before it is sent, a single PUT is
//! hashed chunk by chunk as its body streams. `Content-MD5` is a header that must precede
//! the body, so a single PUT with it is read into memory once and sent from there; one larger
//! than the part buffers a multipart upload of it would take (`parallel × part_size`) goes
//! multipart instead, each part read once.
//!
//! Memory: each of the [`UploadOptions::parallel`] workers holds one part at a time, so the
//! uploader needs about `parallel × part_size` whatever the image size. Reading and hashing
//! run on blocking threads, off the async executor.
//!
//! Resume: a [`checkpoint`] records the upload id and part plan before the first part is
//! sent. On the next run ListParts is the truth: a part the server has with the planned size
//! whose CRC-64 (or, if the server reports none, MD5/ETag) equals the local part's is kept;
//! every other part is sent. A checkpoint for a file that changed has its upload aborted.
//! Dropping the future returned by [`upload_file`] (Ctrl-C) leaves a resumable state.

pub mod checkpoint;
mod engine;

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use md5::{Digest, Md5};

pub use crate::throttle::{parse_rate, RateLimiter};
pub use engine::{abort_upload, upload_file, upload_source, EventSink, FileUpload, UploadSource};

/// Smallest part OSS accepts (except the last), 100 KiB.
pub const MIN_PART_SIZE: u64 = 100 * 1024;
/// Largest part OSS accepts, 5 GiB.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// Default part size: 32 MiB is large enough that per-request overhead is noise at
/// gigabit speeds, small enough that a retried part costs little and memory stays near
/// `parallel × 32 MiB`.
pub const DEFAULT_PART_SIZE: u64 = 32 * 1024 * 1024;
/// Default single-PUT threshold, 100 MiB (ossutil's too).
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 100 * 1024 * 1024;
/// Default parallel part uploads.
pub const DEFAULT_PARALLEL: usize = 4;
/// Largest single PutObject OSS accepts, 5 GiB: `multipart_threshold` is capped at it.
pub const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;
/// Most memory the part buffers may take (`parallel × part size`), 8 GiB: above it an upload
/// is refused before it starts rather than swapping or being killed half-way.
pub const MAX_BUFFER_MEMORY: u64 = 8 * 1024 * 1024 * 1024;
/// Sends of a part (or single PUT) whose CRC-64 comes back different before the upload
/// fails; each counts against the client's retry budget too.
pub const PART_INTEGRITY_RETRIES: u32 = 3;

const MIB: u64 = 1024 * 1024;

/// Upload settings.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Part size; `None` picks [`DEFAULT_PART_SIZE`], raised so there are at most 10,000 parts.
    pub part_size: Option<u64>,
    /// Parts in flight at once. Default [`DEFAULT_PARALLEL`].
    pub parallel: usize,
    /// Files of at least this size go multipart. Default [`DEFAULT_MULTIPART_THRESHOLD`].
    pub multipart_threshold: u64,
    /// Where checkpoints live. Default [`checkpoint::default_dir`].
    pub checkpoint_dir: PathBuf,
    /// Before sending, look at the object already at the key: when its size and CRC-64 equal
    /// the local bytes' (one local read to hash them), send nothing. Default true: a rerun of
    /// a finished upload costs a read, not a transfer.
    pub skip_identical: bool,
    /// Send `Content-MD5` with every PutObject and UploadPart (one more hash of every byte).
    /// Default false: the per-part and whole-object CRC-64 checks are always made.
    pub content_md5: bool,
    /// Most bytes per second sent (`None`: unlimited), across all parts in flight of every
    /// upload given these options or a clone of them: the limiter is one shared token
    /// bucket, so a batch that clones its options for each image stays under one rate.
    /// Make one with [`RateLimiter::shared`]; parse a user's `10M` with [`parse_rate`].
    pub max_upload_rate: Option<Arc<RateLimiter>>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            part_size: None,
            parallel: DEFAULT_PARALLEL,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            checkpoint_dir: checkpoint::default_dir(),
            skip_identical: true,
            content_md5: false,
            max_upload_rate: None,
        }
    }
}

/// What happened, as it happens (for a progress bar and messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadEvent {
    /// The plan.
    Started {
        /// File size.
        size: u64,
        /// Multipart or one PUT.
        multipart: bool,
        /// Part size (the file size for one PUT).
        part_size: u64,
        /// Number of parts (1 for one PUT).
        parts: u32,
    },
    /// A checkpoint was found and its upload is being continued.
    Resuming {
        /// Upload id.
        upload_id: String,
        /// Parts the server already has (not yet verified).
        parts_on_server: u32,
    },
    /// The checkpoint's file changed: its upload was aborted and a new one starts.
    StaleUploadAborted {
        /// The aborted upload id.
        upload_id: String,
    },
    /// The checkpoint's upload no longer exists on the server (completed, aborted or
    /// expired): a new one starts.
    UploadGone {
        /// Its id.
        upload_id: String,
    },
    /// A multipart upload was created (its checkpoint is saved).
    Initiated {
        /// Upload id.
        upload_id: String,
    },
    /// A part is done: sent and verified, or found on the server and verified.
    PartDone {
        /// Part number.
        number: u32,
        /// Its size.
        bytes: u64,
        /// True when the server already had it.
        reused: bool,
    },
    /// The object was written (single PUT done or multipart completed), verification follows.
    Completing,
    /// An object of the same size is already at the key: the local bytes are being hashed to
    /// compare CRC-64s.
    Verifying {
        /// Bytes to hash.
        size: u64,
    },
    /// A check could not be made (permission denied) and was skipped; says which.
    NotVerified {
        /// What was not verified, and what is done instead.
        what: String,
    },
    /// The object at the key is identical (size and CRC-64): nothing is sent.
    AlreadyThere {
        /// Its size.
        size: u64,
    },
}

/// The result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOutcome {
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC-64 of the object, verified equal on both sides.
    pub crc64: u64,
    /// The object's ETag.
    pub etag: String,
    /// Parts (1 for a single PUT).
    pub parts: u32,
    /// Parts sent in this run.
    pub parts_sent: u32,
    /// Parts found on the server and kept.
    pub parts_reused: u32,
    /// Multipart upload id, if multipart.
    pub upload_id: Option<String>,
    /// Part size (0 when nothing was sent because the object was already there).
    pub part_size: u64,
    /// True when OSS already had this exact object (same size and CRC-64) and nothing was
    /// sent: a rerun after a finished upload.
    pub already_there: bool,
}

/// Base64 of the MD5 (a `Content-MD5` value).
pub fn md5_base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

/// Parses a size as `--part-size` takes it: `8MiB`, `1GiB`, `100KiB`, `64M`, `1.5GB`, plain bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    if let Ok(n) = num.parse::<u64>() {
        return n
            .checked_mul(mult)
            .ok_or_else(|| format!("{s} is too large"));
    }
    let f: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 8MiB"))?;
    #[allow(clippy::cast_precision_loss)]
    let bytes = f * mult as f64;
    if !(0.0..1.8e19).contains(&bytes) {
        return Err(format!("{s} is out of range"));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes.round() as u64)
}

/// Parses a size of at most 5 GiB (one PutObject's limit), as `--multipart-threshold`
/// takes it.
pub fn parse_threshold(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n > MAX_SINGLE_PUT {
        return Err(format!(
            "{s} is above 5GiB, the largest object one PutObject can write"
        ));
    }
    Ok(n)
}

/// The part size for a file of `size` bytes: the requested one, checked against OSS's limits,
/// or the default raised (to a whole MiB) so that there are at most 10,000 parts.
pub fn choose_part_size(size: u64, requested: Option<u64>) -> Result<u64, String> {
    let min_for_count = size.div_ceil(MAX_PARTS);
    match requested {
        Some(p) if p < MIN_PART_SIZE => Err(format!(
            "part size {p} is below OSS's minimum of {MIN_PART_SIZE} bytes (100 KiB)"
        )),
        Some(p) if p > MAX_PART_SIZE => {
            Err(format!("part size {p} is above OSS's maximum of 5 GiB"))
        }
        Some(p) if p < min_for_count => Err(format!(
            "part size {p} would need more than 10,000 parts for {size} bytes; use at least {}",
            min_for_count.div_ceil(MIB) * MIB
        )),
        Some(p) => Ok(p),
        None => Ok(DEFAULT_PART_SIZE.max(min_for_count.div_ceil(MIB) * MIB)),
    }
}

/// The memory the part buffers of a multipart upload of `size` bytes take: one part per
/// worker, `min(parallel, parts) × part size`. `Err` when it is above [`MAX_BUFFER_MEMORY`]
/// or the part size is not allowed.
pub fn buffer_memory(size: u64, part_size: Option<u64>, parallel: usize) -> Result<u64, String> {
    let part = choose_part_size(size, part_size)?;
    let mem = memory_of(part, parallel, part_count(size, part));
    if mem > MAX_BUFFER_MEMORY {
        return Err(memory_refusal(mem, part, parallel));
    }
    Ok(mem)
}

fn memory_of(part_size: u64, parallel: usize, parts: u32) -> u64 {
    let workers = u64::try_from(parallel.clamp(1, 64)).unwrap_or(64);
    part_size.saturating_mul(workers.min(u64::from(parts)))
}

fn memory_refusal(mem: u64, part_size: u64, parallel: usize) -> String {
    format!(
        "{parallel} parts in flight × {} MiB parts need {} MiB of memory, above the {} MiB limit; \
         use a smaller --part-size or fewer --parallel",
        part_size / MIB,
        mem / MIB,
        MAX_BUFFER_MEMORY / MIB
    )
}

/// Refuses a plan whose part buffers would take more than [`MAX_BUFFER_MEMORY`].
pub(crate) fn check_memory(part_size: u64, parallel: usize, parts: u32) -> crate::Result<()> {
    let mem = memory_of(part_size, parallel, parts);
    if mem > MAX_BUFFER_MEMORY {
        return Err(crate::Error::InvalidArgument(memory_refusal(
            mem, part_size, parallel,
        )));
    }
    Ok(())
}

/// Number of parts of `size` bytes at `part_size` (at least 1).
pub fn part_count(size: u64, part_size: u64) -> u32 {
    u32::try_from(size.div_ceil(part_size.max(1)).max(1)).unwrap_or(u32::MAX)
}

/// Offset and length of part `number` (1-based).
pub fn part_range(size: u64, part_size: u64, number: u32) -> (u64, u64) {
    let off = u64::from(number.saturating_sub(1)) * part_size;
    (off, part_size.min(size.saturating_sub(off)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100KiB"), Ok(102_400));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("5GB"), Ok(5_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("8 parsecs").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_threshold("6GiB").is_err());
    }

    #[test]
    fn part_sizes() {
        assert_eq!(choose_part_size(300 * MIB, None), Ok(DEFAULT_PART_SIZE));
        let tib2 = 2 * 1024 * 1024 * MIB;
        let p = choose_part_size(tib2, None).unwrap();
        assert!(tib2.div_ceil(p) <= MAX_PARTS && p % MIB == 0, "{p}");
        assert_eq!(choose_part_size(300 * MIB, Some(8 * MIB)), Ok(8 * MIB));
        assert!(choose_part_size(300 * MIB, Some(1000)).is_err());
        assert!(choose_part_size(tib2, Some(8 * MIB))
            .unwrap_err()
            .contains("10,000"));
        assert!(choose_part_size(1, Some(6 * 1024 * MIB)).is_err());
        assert_eq!(part_count(300 * MIB, 8 * MIB), 38);
        assert_eq!(part_range(300 * MIB, 8 * MIB, 38), (37 * 8 * MIB, 4 * MIB));
        assert_eq!(part_range(10, 4, 1), (0, 4));
        assert_eq!(part_count(0, 4), 1);
        assert_eq!(md5_base64(b"123456789"), "JfnnlDI7RTiF9RgfG2JNCw==");
        assert_eq!(buffer_memory(300 * MIB, Some(8 * MIB), 4), Ok(32 * MIB));
        // Fewer parts than workers: only the parts are held.
        assert_eq!(buffer_memory(10 * MIB, Some(8 * MIB), 8), Ok(16 * MIB));
        let err = buffer_memory(1 << 40, Some(1 << 30), 16).unwrap_err();
        assert!(err.contains("16384 MiB"), "{err}");
    }
}
