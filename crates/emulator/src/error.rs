//! Errors of the emulator as a library: configuration and start-up. Request-level failures are
//! answered to the client in the service's own error shapes and never surface here.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What can go wrong configuring or starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--access-key` was not `ID:SECRET[:STS_TOKEN]`. Carries only the text before the first
    /// `:` so that a secret is never echoed.
    #[error("access key {id_part:?} is not ID:SECRET[:STS_TOKEN] (non-empty ID and SECRET)")]
    AccessKeySyntax {
        /// The part before the first `:`.
        id_part: String,
    },
    /// The same AccessKeyId was configured twice.
    #[error("access key id {0:?} is configured twice")]
    DuplicateAccessKey(String),
    /// `--bucket` was not `NAME@REGION[:encrypted]`.
    #[error("bucket {0:?} is not NAME@REGION[:encrypted]")]
    BucketSyntax(String),
    /// The bucket name breaks OSS naming rules (3–63 of a-z 0-9 -, starting and ending with a
    /// letter or digit).
    #[error("bucket name {0:?} is invalid: 3-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit")]
    BucketName(String),
    /// The region id is not of the form `cn-hangzhou`.
    #[error(
        "region {0:?} is invalid: expected lower-case letters, digits and '-' such as cn-hangzhou"
    )]
    Region(String),
    /// The same bucket was configured twice.
    #[error("bucket {0:?} is configured twice")]
    DuplicateBucket(String),
    /// A storage class name that OSS does not have.
    #[error(
        "storage class {0:?} is not one of Standard, IA, Archive, ColdArchive, DeepColdArchive"
    )]
    StorageClass(String),
    /// A fault setting out of range (rates are shares between 0 and 1).
    #[error("fault setting {name} = {value} is out of range ({expected})")]
    Fault {
        /// Field name.
        name: &'static str,
        /// Offending value.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
    /// `task_seconds` must be finite and between 0 and one day.
    #[error("task duration {0} s is out of range (0 to 86400 seconds)")]
    TaskSeconds(f64),
    /// The TOML configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ConfigRead {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The TOML configuration is malformed.
    #[error("invalid configuration: {0}")]
    ConfigParse(String),
    /// The data directory could not be created or read.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// Directory or file inside it.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A state file in the data directory is corrupt.
    #[error("state file {path} is corrupt: {message}")]
    State {
        /// File.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}
