//! Integration tests of the `ecs-preflight` binary, driven as a user would.

mod check;
mod common;
mod convert;
mod credentials;
mod emulator;
mod formats;
mod guest;
mod import;
mod library;
mod oneshot;
mod signatures;
mod upload;
mod usage;
