//! Errors of the ECS/RAM client. No variant holds a signed URL, a signature or a secret.

use preflight_aliyun::CredentialError;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with one call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service answered with an error document.
    #[error("{action}: {code}: {message} (HTTP {status}, RequestId {request_id})")]
    Api {
        /// The RPC action (`ImportImage`, `GetRole`, …).
        action: String,
        /// HTTP status.
        status: u16,
        /// The error code (`InvalidImageName.Duplicated`, …).
        code: String,
        /// The service's message.
        message: String,
        /// `RequestId`, for a support ticket (empty if the answer had none).
        request_id: String,
    },
    /// The request did not get an answer (connection refused, reset, timeout), after retries.
    #[error("{action}: no answer from {host}: {detail}")]
    Network {
        /// The RPC action.
        action: String,
        /// Endpoint host (no query: the query holds the signature).
        host: String,
        /// What failed.
        detail: String,
    },
    /// The answer was not the JSON expected.
    #[error("{action}: cannot read the answer (HTTP {status}): {detail}")]
    Decode {
        /// The RPC action.
        action: String,
        /// HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
    /// No credentials.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// An endpoint that is not a URL.
    #[error("invalid endpoint {endpoint:?}: {detail}")]
    Endpoint {
        /// The endpoint given.
        endpoint: String,
        /// Why.
        detail: String,
    },
}

impl Error {
    /// The API error code, for [`Error::Api`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            Error::Network { .. }
            | Error::Decode { .. }
            | Error::Credentials(_)
            | Error::Endpoint { .. } => None,
        }
    }

    /// The API error message, for [`Error::Api`].
    pub fn message(&self) -> Option<&str> {
        match self {
            Error::Api { message, .. } => Some(message),
            Error::Network { .. }
            | Error::Decode { .. }
            | Error::Credentials(_)
            | Error::Endpoint { .. } => None,
        }
    }
}

/// Whether an answer is worth retrying: 5xx, throttling, and the gateway's transient codes
/// (the shared classification, [`preflight_aliyun::retry::classify_answer`]).
pub fn retryable(status: u16, code: &str) -> bool {
    matches!(
        preflight_aliyun::retry::classify_answer(status, code),
        preflight_aliyun::retry::Verdict::Retry { .. }
    )
}
