//! Alibaba Cloud OSS client for `ecs-preflight`: one function per OSS API the uploader and
//! the preflight need ([`Client`] methods in [`api`]), the XML models ([`xml`]), errors with a
//! kind and a retry verdict ([`Error`]), and the resumable, CRC-64-verified multipart uploader
//! ([`upload`]). It knows nothing about disk formats.
//!
//! Signing is our own (V4 by default, V1 selectable; see [`sign`]); credentials
//! come from [`preflight_aliyun::CredentialProvider`]. Failures of the network, 5xx answers
//! and clock skew are retried with exponential backoff and jitter; other 4xx answers are not.
//!
//! ```no_run
//! # async fn demo() -> Result<(), preflight_oss::Error> {
//! use std::sync::Arc;
//! use preflight_aliyun::{ChainOptions, CredentialProvider};
//! use preflight_oss::{upload, Client, ClientConfig};
//! let creds = Arc::new(CredentialProvider::new(ChainOptions::default()));
//! let client = Client::new(ClientConfig::new("cn-hangzhou", "images"), creds)?;
//! let out = upload::upload_file(&client, "disk.qcow2".as_ref(), "disk.qcow2",
//!     &upload::UploadOptions::default(), Arc::new(|_event| {})).await?;
//! println!("{} bytes, CRC-64 {}", out.size, out.crc64);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
mod client;
pub mod crc;
pub mod error;
pub mod sign;
pub mod throttle;
pub mod upload;
pub mod xml;

pub use api::{BucketInfo, ObjectMeta, PutResult};
pub use client::{Client, ClientConfig};
pub use error::{region_of_endpoint, Error, ErrorKind, Result};
pub use sign::SignatureVersion;
pub use upload::{UploadEvent, UploadOptions, UploadOutcome};
