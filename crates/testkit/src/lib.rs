//! Test support shared by the workspace's tests and the fuzz targets, so each helper is
//! written once: running `qemu-img` and `qemu-io` ([`qemu`]), a deterministic PRNG
//! ([`Rng`]), a mutated image without copies ([`Mutated`]), sparse disks for `next_data`
//! tests ([`patterned_disk`]), the Python with Alibaba's SDKs ([`sdk_python`]), the emulator's signed test client (`emulator`, feature
//! `emulator`), and the harness every fuzz target and smoke test puts an image through
//! ([`mod@exercise`]).
//!
//! A dev-dependency only (`publish = false`). It depends on no client crate, so the
//! emulator's tests can use it without sharing code with what they test.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "emulator")]
pub mod emulator;
pub mod exercise;
mod holes;
mod mutated;
mod python;
pub mod qemu;
mod rng;

pub use exercise::{exercise, exercise_image, mutation_smoke, reported};
pub use holes::{assert_holes_read_zero, patterned_disk, three_extent_image, THREE_EXTENT_RUNS};
pub use mutated::Mutated;
pub use python::sdk_python;
pub use qemu::{qemu_img, qemu_img_status, qemu_io};
pub use rng::Rng;
