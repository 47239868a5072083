//! Fuzzes the VHDX parser: open, info, check and a few guest reads must never
//! panic or allocate beyond what the input justifies. (The same harness runs over
//! deterministic mutations in `crates/vhdx/tests/fuzz_smoke.rs` on stable CI.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let _ = preflight_testkit::exercise(preflight_vhdx::open(Arc::new(data.to_vec())));
});
