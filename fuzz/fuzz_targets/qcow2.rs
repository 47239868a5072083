//! Fuzz target for the qcow2 parser, checker and reader: any input must be
//! handled without a panic, an unbounded allocation or an endless loop.
//! (The same harness runs over deterministic mutations in
//! `crates/qcow2/tests/fuzz_smoke.rs` on stable CI.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let _ = preflight_testkit::exercise(preflight_qcow2::open(Arc::new(data.to_vec())));
});
