//! Receiving request bodies: streamed to a file chunk by chunk (memory stays bounded whatever
//! the size), MD5 and CRC-64 computed on the way, size limits and the reset fault enforced.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crc_fast::{CrcAlgorithm, Digest as CrcDigest};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use md5::{Digest, Md5};
use std::io::Write as _;

use crate::server::{Shared, Throttle};

/// Most bytes read from an unwanted body before answering an error, so that a client that is
/// still sending sees the error instead of a broken pipe. Larger bodies are cut off.
pub const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// What was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes.
    pub size: u64,
    /// MD5 of the bytes.
    pub md5: [u8; 16],
    /// CRC-64/XZ of the bytes.
    pub crc64: u64,
}

/// Why receiving stopped.
#[derive(Debug)]
pub enum RecvError {
    /// More than the allowed bytes.
    TooLarge,
    /// The client went away or sent a malformed body (shorter than its Content-Length…).
    Client,
    /// Local disk error.
    Io(io::Error),
    /// The reset fault fired.
    Reset,
}

impl From<io::Error> for RecvError {
    fn from(e: io::Error) -> Self {
        RecvError::Io(e)
    }
}

/// Where the bytes go and what to count them as.
pub struct Sink<'a> {
    /// File to create (None: discard).
    pub dest: Option<&'a Path>,
    /// Maximum size.
    pub limit: u64,
    /// Abort the connection once this many bytes have arrived.
    pub reset_after: Option<u64>,
    /// (upload id, part number) for per-part counters.
    pub part: Option<(&'a str, u32)>,
}

/// Bytes gathered before they are hashed and written in one blocking call: one thread
/// hand-off per MiB instead of one per body frame (a few KiB each), which left the emulator
/// waiting on hand-offs at about one core whatever the number of uploads in flight.
const WRITE_BATCH: usize = 1 << 20;

/// The hashes and the file of one body, moved to a blocking thread for each batch.
struct Digesting {
    file: Option<std::fs::File>,
    md5: Md5,
    crc: CrcDigest,
}

impl Digesting {
    /// Hashes and writes `frames` on a blocking thread (the worker threads keep serving).
    async fn take(mut self, frames: Vec<bytes::Bytes>) -> Result<Self, RecvError> {
        tokio::task::spawn_blocking(move || {
            for data in &frames {
                self.md5.update(data);
                self.crc.update(data);
                if let Some(f) = self.file.as_mut() {
                    f.write_all(data)?;
                }
            }
            Ok(self)
        })
        .await
        .map_err(|e| RecvError::Io(io::Error::other(e)))?
    }
}

/// Reads the whole body into `sink`.
pub async fn receive(
    shared: &Arc<Shared>,
    mut body: Incoming,
    sink: Sink<'_>,
) -> Result<Received, RecvError> {
    let file = match sink.dest {
        Some(p) => Some(tokio::fs::File::create(p).await?.into_std().await),
        None => None,
    };
    let mut digesting = Digesting {
        file,
        md5: Md5::new(),
        crc: CrcDigest::new(CrcAlgorithm::Crc64Xz),
    };
    let mut batch: Vec<bytes::Bytes> = Vec::new();
    let mut batched = 0usize;
    let mut size: u64 = 0;
    let mut throttle = Throttle::new(shared.faults().bandwidth_bytes_per_sec);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| RecvError::Client)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let n = u64::try_from(data.len()).unwrap_or(u64::MAX);
        shared.counters.received(n);
        if let Some((id, num)) = sink.part {
            shared.counters.part_received(id, num, n);
        }
        if let Some(at) = sink.reset_after {
            if size.saturating_add(n) >= at {
                return Err(RecvError::Reset);
            }
        }
        size = size.saturating_add(n);
        if size > sink.limit {
            return Err(RecvError::TooLarge);
        }
        batched = batched.saturating_add(data.len());
        batch.push(data);
        if batched >= WRITE_BATCH {
            digesting = digesting.take(std::mem::take(&mut batch)).await?;
            batched = 0;
        }
        throttle.account(n).await;
    }
    let digesting = digesting.take(batch).await?;
    Ok(Received {
        size,
        md5: digesting.md5.finalize().into(),
        crc64: digesting.crc.finalize(),
    })
}

/// Reads and discards up to [`DRAIN_LIMIT`] bytes.
pub async fn drain(mut body: Incoming) {
    let mut seen: u64 = 0;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(d) = frame.into_data() {
            seen = seen.saturating_add(u64::try_from(d.len()).unwrap_or(u64::MAX));
            if seen > DRAIN_LIMIT {
                return;
            }
        }
    }
}

/// Reads a small body (XML) into memory, refusing more than `limit` bytes.
pub async fn read_small(mut body: Incoming, limit: usize) -> Result<Vec<u8>, RecvError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| RecvError::Client)?;
        if let Ok(d) = frame.into_data() {
            if out.len().saturating_add(d.len()) > limit {
                return Err(RecvError::TooLarge);
            }
            out.extend_from_slice(&d);
        }
    }
    Ok(out)
}

/// CRC-64/XZ of concatenated pieces from their CRCs and lengths (OSS's CRC64Combine).
pub fn combine_crc(parts: impl IntoIterator<Item = (u64, u64)>) -> u64 {
    parts.into_iter().fold(0, |acc, (crc, len)| {
        crc_fast::checksum_combine(CrcAlgorithm::Crc64Xz, acc, crc, len)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(b: &[u8]) -> u64 {
        crc_fast::checksum(CrcAlgorithm::Crc64Xz, b)
    }

    #[test]
    fn crc_vectors() {
        assert_eq!(crc(b""), 0);
        assert_eq!(crc(b"123456789"), 11_051_210_869_376_104_954);
        assert_eq!(crc(b"hi oss"), 8_707_180_448_768_400_016);
        assert_eq!(crc(b"upload part 1"), 6_571_598_172_666_981_661);
        assert_eq!(crc(b"upload part 2"), 2_060_813_895_736_234_537);
        assert_eq!(crc(&[0u8; 1024]), 14_085_117_335_336_199_948);
        assert_eq!(
            combine_crc([(crc(b"12345"), 5), (crc(b"67890"), 5)]),
            12_811_388_247_244_714_686
        );
        let p1: Vec<u8> = (0..102_400u32)
            .map(|i| ((i * 7 + 3) & 0xFF) as u8)
            .collect();
        let p2: Vec<u8> = (0..102_400u32)
            .map(|i| ((i * 13 + 1) & 0xFF) as u8)
            .collect();
        assert_eq!(crc(&p1), 1_890_614_950_568_534_879);
        assert_eq!(crc(&p2), 17_882_848_251_152_330_227);
        assert_eq!(crc(b"tail"), 1_564_134_088_860_173_973);
        assert_eq!(
            combine_crc([(crc(&p1), 102_400), (crc(&p2), 102_400), (crc(b"tail"), 4)]),
            1_719_664_958_040_220_306
        );
    }
}
