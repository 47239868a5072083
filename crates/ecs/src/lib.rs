//! Alibaba Cloud ECS and RAM RPC client for `ecs-preflight`: the two RPC signatures
//! ([`sign`]: HMAC-SHA1 version 1.0 and ACS3-HMAC-SHA256), a transport that retries
//! throttling and 5xx answers with backoff ([`Client`]), one typed method per API the import
//! needs ([`api`]: ImportImage, DescribeTasks, DescribeTaskAttribute, DescribeImages,
//! CancelTask, DescribeRegions, CopyImage, CancelCopyImage, image sharing, RAM GetRole), and
//! the loop that watches an import until the image is ready or has failed ([`watch`]).
//!
//! Credentials come from [`preflight_aliyun::CredentialProvider`] (environment, aliyun CLI
//! profiles, ECS RAM role). Errors carry the API's `Code`, `Message`, `RequestId` and HTTP
//! status, never a signed URL or a secret.
//!
//! ```no_run
//! # async fn demo(request: preflight_ecs::ImportImageRequest) -> Result<(), preflight_ecs::Error> {
//! use std::sync::Arc;
//! use preflight_aliyun::{ChainOptions, CredentialProvider};
//! use preflight_ecs::{Client, ClientConfig, ImportOptions, ImportOutcome};
//! let creds = Arc::new(CredentialProvider::new(ChainOptions::default()));
//! let ecs = Client::new(ClientConfig::new("cn-hangzhou"), creds)?;
//! if let ImportOutcome::Started(r) = ecs.import_image(&request, &ImportOptions::default()).await? {
//!     println!("image {} task {}", r.image_id, r.task_id);
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
mod client;
mod error;
pub mod sign;
pub mod watch;

pub use api::{
    client_token, client_token_after, copy_client_token, copy_client_token_after,
    copy_image_params, import_image_params, CopyImageRequest, DescribeImagesQuery,
    DescribeTasksQuery, Image, ImageDisk, ImportDisk, ImportFeatures, ImportImageRequest,
    ImportImageResult, ImportOptions, ImportOutcome, ImportTag, OperationProgress, Region, Role,
    Task, TaskAttribute, ALL_IMAGE_STATUSES, MAX_SHARE_ACCOUNTS_PER_CALL,
};
pub use client::{
    ecs_endpoint, normalize as normalize_endpoint, Answer, Client, ClientConfig, Service,
    SignatureMethod, ECS_VERSION, RAM_ENDPOINT, RAM_VERSION,
};
pub use error::{retryable, Error, Result};
pub use watch::{Progress, WaitOutcome};
