//! Shared Alibaba Cloud plumbing for `ecs-preflight`'s cloud clients (OSS now, ECS later):
//!
//! * [`credentials`]: the credential chain the way the `aliyun` CLI and Alibaba's credentials
//!   library read it — environment, OIDC, the CLI's `~/.aliyun/config.json` profiles, the ECS
//!   instance RAM role — built on `reqsign-aliyun-oss`'s providers, plus the part reqsign does
//!   not cover (profile modes it silently skips get a clear error here).
//! * [`retry`]: the one retry driver and error classification of every client: exponential
//!   backoff with full jitter.
//! * [`encode`]: the RFC 3986 percent-encoding every signature uses.
//! * [`time`]: the HTTP-date and ISO 8601 formats requests carry.
//! * [`http`]: the one reqwest client configuration (User-Agent, TLS roots, proxies).
//! * [`Secret`]: a string that never shows itself in `Debug` or `Display`.
//! * [`transport`]: the reqwest-backed HTTP and file access reqsign's providers need.
//!
//! Nothing in this crate prints, logs or serialises a secret.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli_config;
pub mod credentials;
pub mod credentials_file;
pub mod encode;
pub mod external;
pub mod http;
pub mod retry;
pub mod rpc;
mod secret;
pub mod sts;
pub mod time;
pub mod transport;

pub use credentials::{
    ChainOptions, CredentialError, CredentialProvider, CredentialSource, Credentials,
};
pub use retry::RetryConfig;
pub use secret::Secret;
