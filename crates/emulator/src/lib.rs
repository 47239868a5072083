//! A local Alibaba Cloud emulator — OSS, ECS and RAM on one loopback port — that is as strict as
//! the real services, so that a client it accepts would be accepted by Alibaba Cloud. It checks
//! `ecs-preflight`'s uploader and import client over real HTTP, and Alibaba's official Python
//! SDKs are run against it to prove it speaks the real protocol. It depends on no other
//! workspace crate: a bug in our clients cannot make it agree with them.
//!
//! * **OSS**: path-style (`http://127.0.0.1:PORT/bucket/key`, what the SDKs use for an IP
//!   endpoint) and virtual-hosted (`bucket.<host>`) addressing; signatures V1 (HMAC-SHA1) and V4
//!   (OSS4-HMAC-SHA256), header and presigned forms, STS tokens, 15-minute clock skew;
//!   PutObject, GetObject (Range), HeadObject (errors in `x-oss-err`), DeleteObject, the
//!   multipart APIs, GetBucketInfo/Location/Encryption. Objects live on disk, streamed in and
//!   out with MD5 and CRC-64 computed on the way.
//! * **ECS / RAM** RPC over GET query or POST form, HMAC-SHA1 (1.0) and ACS3-HMAC-SHA256
//!   signatures; ImportImage with the documented validation, DescribeTasks,
//!   DescribeTaskAttribute, DescribeImages, CancelTask, DescribeRegions, CopyImage (the copy
//!   is `Creating` for `copy_seconds`, then `Available`), CancelCopyImage (deletes a copy
//!   still `Creating`), ModifyImageSharePermission and
//!   DescribeImageSharePermission; RAM GetRole and ListPoliciesForRole; STS AssumeRole and
//!   the anonymous AssumeRoleWithOIDC (the issued temporary keys are accepted everywhere).
//! * **Strictness** (see [`Strict`] and the crate README): the V4 `Authorization` header's
//!   documented EC family (0002-00000203…227), V1 refused on V4-only buckets or accounts
//!   (0002-00000080), regions addressed by Host (`oss-<region>.aliyuncs.com`) or per-region
//!   ports (a bucket of another region answers `403` with `<Endpoint>`), ECS/RAM/STS only on
//!   their own endpoints, RAM denies per key, per-bucket storage classes with RestoreObject
//!   and `x-oss-restore`, ClientToken idempotency, no body timeout of its own.
//! * **Admin** endpoint `/_emulator/` (loopback only) for counters and faults: see [`admin`].
//! * **Faults**, deterministic with a seed: see [`Faults`].
//! * **Launching** as a program does (settings over a file, the start-up lines, the stop
//!   signals): see [`launch`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), preflight_emulator::Error> {
//! let dir = std::env::temp_dir().join("emu");
//! let emu = preflight_emulator::start(preflight_emulator::Config::for_tests(&dir)).await?;
//! println!("endpoint: {}", emu.endpoint());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod config;
pub mod counters;
pub mod ecs;
pub mod error;
pub mod faults;
pub mod launch;
pub mod oss;
pub mod server;
pub mod store;
pub mod util;

pub use config::{
    AccessKey, BucketConfig, Config, LimitsProfile, StorageClass, Strict, DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET, DEFAULT_BUCKET, DEFAULT_REGION,
};
pub use counters::{Counters, PartCounter};
pub use ecs::Product;
pub use error::Error;
pub use faults::Faults;
pub use server::{start, Emulator, Listener};
