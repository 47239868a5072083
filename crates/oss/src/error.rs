//! Errors: every failure maps to a [`ErrorKind`] and says whether trying again can help.
//! Messages carry the OSS code, message and request id, never a signed URL, a key or a token.

use std::path::PathBuf;

use preflight_aliyun::retry::{self, classify_answer, Verdict};
use preflight_aliyun::CredentialError;

/// What kind of failure, for callers that decide by kind (exit codes, retries, rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The bucket, object or upload does not exist.
    NotFound,
    /// Signature, key or permission refused.
    AccessDenied,
    /// The server's clock and ours differ by more than 15 minutes.
    ClockSkew,
    /// The server failed (5xx) or throttled.
    Server,
    /// The request was refused as malformed or not allowed (other 4xx).
    Client,
    /// The connection failed, timed out or was reset.
    Network,
    /// Data did not arrive intact (CRC-64 or size mismatch).
    Integrity,
    /// No credentials.
    Credentials,
    /// Local file or checkpoint trouble.
    Local,
    /// A bad argument (part size, …).
    InvalidArgument,
}

/// An OSS client error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// OSS answered with an error.
    #[error("OSS {op} failed: HTTP {status} {code}: {message} (request id {request_id})")]
    Service {
        /// Operation name (`UploadPart`…).
        op: &'static str,
        /// HTTP status.
        status: u16,
        /// OSS error code (`NoSuchBucket`…); for a bodiless answer, the status reason.
        code: String,
        /// OSS message.
        message: String,
        /// `x-oss-request-id`.
        request_id: String,
        /// Error-center code (`x-oss-ec`), if any.
        ec: String,
        /// `<Endpoint>`: where the bucket must be addressed (a bucket of another region).
        /// Boxed: it is rare, and keeps the error small.
        endpoint: Option<Box<String>>,
    },
    /// The request did not get an answer.
    #[error("OSS {op}: network error: {message}")]
    Network {
        /// Operation name.
        op: &'static str,
        /// What happened (reqwest's message without the URL).
        message: String,
    },
    /// Credentials could not be had.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The request could not be signed.
    #[error("cannot sign the OSS request: {0}")]
    Signing(String),
    /// A response body was not the XML expected.
    #[error("OSS {op}: unexpected response: {message}")]
    Response {
        /// Operation name.
        op: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A CRC-64 did not match: data was corrupted in transit or at rest.
    #[error("CRC-64 mismatch for {what}: local {local}, OSS {server}")]
    ChecksumMismatch {
        /// Part or object.
        what: String,
        /// Ours.
        local: u64,
        /// The server's.
        server: u64,
    },
    /// The server gave no CRC-64 where one was required.
    #[error("OSS sent no x-oss-hash-crc64ecma for {what}; the upload cannot be verified")]
    MissingChecksum {
        /// Part or object.
        what: String,
    },
    /// A size did not match.
    #[error("size mismatch for {what}: expected {expected}, OSS has {actual}")]
    SizeMismatch {
        /// Part or object.
        what: String,
        /// Ours.
        expected: u64,
        /// The server's.
        actual: u64,
    },
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A bad argument.
    #[error("{0}")]
    InvalidArgument(String),
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Service { status, code, .. } => match (code.as_str(), *status) {
                ("RequestTimeTooSkewed", _) => ErrorKind::ClockSkew,
                ("NoSuchBucket" | "NoSuchKey" | "NoSuchUpload", _) | (_, 404) => {
                    ErrorKind::NotFound
                }
                (_, 401 | 403) => ErrorKind::AccessDenied,
                (_, 429) | (_, 500..=599) => ErrorKind::Server,
                _ => ErrorKind::Client,
            },
            Error::Network { .. } => ErrorKind::Network,
            Error::Credentials(_) => ErrorKind::Credentials,
            Error::Signing(_) => ErrorKind::Credentials,
            Error::Response { .. } => ErrorKind::Server,
            Error::ChecksumMismatch { .. }
            | Error::MissingChecksum { .. }
            | Error::SizeMismatch { .. } => ErrorKind::Integrity,
            Error::Io { .. } => ErrorKind::Local,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
        }
    }

    /// What this failure means for another attempt, by the shared classification
    /// ([`preflight_aliyun::retry::classify_answer`]): 5xx, throttling, network failures, clock
    /// skew (after correcting the clock), and the 4xx answers a damaged or slow transfer gets
    /// — `RequestTimeout` and `InvalidDigest` — are retried; other 4xx never.
    pub fn verdict(&self) -> Verdict {
        match self {
            Error::Service { status, code, .. } => classify_answer(*status, code),
            // A cut-off or unreadable answer is one more way of getting no answer.
            Error::Network { .. } | Error::Response { .. } => retry::NO_ANSWER,
            _ => Verdict::Fatal,
        }
    }

    /// Whether the same request may succeed if sent again (see [`Error::verdict`]).
    pub fn is_retryable(&self) -> bool {
        self.verdict() != Verdict::Fatal
    }

    /// The region a bucket must be addressed in, when OSS answered that this endpoint is the
    /// wrong one for it (403 `AccessDenied` or `PermanentRedirect` with an `<Endpoint>`
    /// naming `oss-<region>[-internal].aliyuncs.com`). Any signature gets this answer.
    pub fn bucket_region(&self) -> Option<String> {
        let Error::Service {
            endpoint: Some(endpoint),
            ..
        } = self
        else {
            return None;
        };
        region_of_endpoint(endpoint)
    }

    /// The OSS error code, if OSS answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The region of an OSS endpoint host (`oss-cn-beijing.aliyuncs.com`,
/// `https://oss-cn-beijing-internal.aliyuncs.com` → `cn-beijing`); `None` for anything else.
pub fn region_of_endpoint(endpoint: &str) -> Option<String> {
    let host = endpoint.trim();
    let host = host.split_once("://").map_or(host, |(_, h)| h);
    let first = host.split(['.', '/', ':']).next()?;
    let region = first.strip_prefix("oss-")?;
    let region = region.strip_suffix("-internal").unwrap_or(region);
    let ok = region.contains('-')
        && region
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    ok.then(|| region.to_string())
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> Error {
        Error::Service {
            op: "PutObject",
            status,
            code: code.to_string(),
            message: String::new(),
            request_id: String::new(),
            ec: String::new(),
            endpoint: None,
        }
    }

    #[test]
    fn kinds_and_retries() {
        assert!(service(500, "InternalError").is_retryable());
        assert!(service(503, "ServiceUnavailable").is_retryable());
        assert!(service(403, "RequestTimeTooSkewed").is_retryable());
        assert!(!service(403, "SignatureDoesNotMatch").is_retryable());
        assert!(service(400, "InvalidDigest").is_retryable());
        assert!(service(400, "RequestTimeout").is_retryable());
        assert!(!service(400, "InvalidArgument").is_retryable());
        assert_eq!(
            region_of_endpoint("oss-cn-beijing.aliyuncs.com").as_deref(),
            Some("cn-beijing")
        );
        assert_eq!(
            region_of_endpoint("https://oss-ap-southeast-1-internal.aliyuncs.com").as_deref(),
            Some("ap-southeast-1")
        );
        assert_eq!(region_of_endpoint(""), None);
        assert_eq!(region_of_endpoint("s3.amazonaws.com"), None);
        assert_eq!(service(404, "NoSuchBucket").kind(), ErrorKind::NotFound);
        assert!(!service(404, "NoSuchUpload").is_retryable());
        assert!(Error::Network {
            op: "UploadPart",
            message: "reset".into()
        }
        .is_retryable());
        assert!(!Error::ChecksumMismatch {
            what: "x".into(),
            local: 1,
            server: 2
        }
        .is_retryable());
    }
}
