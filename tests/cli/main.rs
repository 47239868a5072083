//! Integration tests of the `ecs-preflight` binary, driven as a user would.

mod batch;
mod check;
mod common;
mod convert;
mod copy_share;
mod credentials;
mod emulator;
mod formats;
mod guest;
mod import;
mod library;
mod oneshot;
mod quiet;
mod signatures;
mod upload;
mod usage;
