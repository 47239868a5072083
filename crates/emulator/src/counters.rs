//! What was called: per-API request counts, error codes answered, injected faults, and per-part
//! byte counts with re-sends, so tests can assert on the client's behaviour.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Most (upload, part) entries kept; beyond this new parts are counted only in totals.
/// 100 uploads of 10,000 parts is far more than any test makes.
pub const MAX_PART_ENTRIES: usize = 1_000_000;

/// One part of one multipart upload, as seen by UploadPart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartCounter {
    /// Upload id.
    pub upload_id: String,
    /// Part number.
    pub part_number: u32,
    /// UploadPart calls for this part that reached the body (including failed ones).
    pub attempts: u64,
    /// Calls that stored the part.
    pub stored: u64,
    /// Size of the last stored copy, bytes.
    pub bytes: u64,
    /// Body bytes received over all attempts.
    pub bytes_received: u64,
}

/// A snapshot of the counters. JSON shape of `GET /_emulator/counters`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests per API name (`PutObject`, `UploadPart`, `ImportImage`, `GetRole`, …).
    pub requests: BTreeMap<String, u64>,
    /// Error answers per error code (`SignatureDoesNotMatch`, `InternalError`, …).
    pub errors: BTreeMap<String, u64>,
    /// Injected faults per kind (`upload_part_500`, `upload_part_503`, `upload_part_reset`,
    /// `time_skew`).
    pub faults: BTreeMap<String, u64>,
    /// Requests that passed signature verification, per scheme: `OSS-HMAC-SHA1`,
    /// `OSS4-HMAC-SHA256` (OSS), `HMAC-SHA1`, `ACS3-HMAC-SHA256` (ECS and RAM RPC).
    #[serde(default)]
    pub signatures: BTreeMap<String, u64>,
    /// Every part seen, sorted by upload id then part number.
    pub parts: Vec<PartCounter>,
    /// UploadPart attempts beyond the first for the same part (retries and re-sends).
    pub parts_resent: u64,
    /// Request body bytes received by OSS APIs.
    pub bytes_received: u64,
    /// Response body bytes sent by OSS APIs.
    pub bytes_sent: u64,
}

impl Counters {
    /// Requests for one API (0 if none).
    pub fn requests_for(&self, api: &str) -> u64 {
        self.requests.get(api).copied().unwrap_or(0)
    }

    /// Error answers with one code (0 if none).
    pub fn errors_for(&self, code: &str) -> u64 {
        self.errors.get(code).copied().unwrap_or(0)
    }

    /// Injected faults of one kind (0 if none).
    pub fn faults_for(&self, kind: &str) -> u64 {
        self.faults.get(kind).copied().unwrap_or(0)
    }

    /// Verified requests signed with one scheme (0 if none).
    pub fn signatures_for(&self, scheme: &str) -> u64 {
        self.signatures.get(scheme).copied().unwrap_or(0)
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    faults: BTreeMap<String, u64>,
    signatures: BTreeMap<String, u64>,
    parts: HashMap<(String, u32), PartCounter>,
    bytes_received: u64,
    bytes_sent: u64,
}

/// The live counters.
#[derive(Default)]
pub struct CounterSink {
    inner: Mutex<Inner>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str, by: u64) {
    let v = map.entry(key.to_string()).or_insert(0);
    *v = v.saturating_add(by);
}

impl CounterSink {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// One request to `api`.
    pub fn request(&self, api: &str) {
        self.with(|i| bump(&mut i.requests, api, 1));
    }

    /// One error answered with `code`.
    pub fn error(&self, code: &str) {
        self.with(|i| bump(&mut i.errors, code, 1));
    }

    /// One injected fault.
    pub fn fault(&self, kind: &str) {
        self.with(|i| bump(&mut i.faults, kind, 1));
    }

    /// One request whose signature, of `scheme`, verified.
    pub fn signature(&self, scheme: &str) {
        self.with(|i| bump(&mut i.signatures, scheme, 1));
    }

    /// Request body bytes.
    pub fn received(&self, n: u64) {
        self.with(|i| i.bytes_received = i.bytes_received.saturating_add(n));
    }

    /// Response body bytes.
    pub fn sent(&self, n: u64) {
        self.with(|i| i.bytes_sent = i.bytes_sent.saturating_add(n));
    }

    fn part<'a>(i: &'a mut Inner, upload_id: &str, n: u32) -> Option<&'a mut PartCounter> {
        let k = (upload_id.to_string(), n);
        if !i.parts.contains_key(&k) && i.parts.len() >= MAX_PART_ENTRIES {
            return None;
        }
        Some(i.parts.entry(k).or_insert_with(|| PartCounter {
            upload_id: upload_id.to_string(),
            part_number: n,
            attempts: 0,
            stored: 0,
            bytes: 0,
            bytes_received: 0,
        }))
    }

    /// An UploadPart attempt began.
    pub fn part_attempt(&self, upload_id: &str, n: u32) {
        self.with(|i| {
            if let Some(p) = Self::part(i, upload_id, n) {
                p.attempts += 1;
            }
        });
    }

    /// Body bytes of an UploadPart attempt.
    pub fn part_received(&self, upload_id: &str, n: u32, bytes: u64) {
        self.with(|i| {
            if let Some(p) = Self::part(i, upload_id, n) {
                p.bytes_received = p.bytes_received.saturating_add(bytes);
            }
        });
    }

    /// A part was stored.
    pub fn part_stored(&self, upload_id: &str, n: u32, size: u64) {
        self.with(|i| {
            if let Some(p) = Self::part(i, upload_id, n) {
                p.stored += 1;
                p.bytes = size;
            }
        });
    }

    /// A consistent copy.
    pub fn snapshot(&self) -> Counters {
        self.with(|i| {
            let mut parts: Vec<PartCounter> = i.parts.values().cloned().collect();
            parts.sort_by(|a, b| (&a.upload_id, a.part_number).cmp(&(&b.upload_id, b.part_number)));
            let parts_resent = parts.iter().map(|p| p.attempts.saturating_sub(1)).sum();
            Counters {
                requests: i.requests.clone(),
                errors: i.errors.clone(),
                faults: i.faults.clone(),
                signatures: i.signatures.clone(),
                parts,
                parts_resent,
                bytes_received: i.bytes_received,
                bytes_sent: i.bytes_sent,
            }
        })
    }

    /// Back to zero.
    pub fn reset(&self) {
        self.with(|i| *i = Inner::default());
    }
}
