//! Fuzzes the VHD parser: open, info, check and a few guest reads must never
//! panic or allocate beyond what the input justifies. (The same harness runs over
//! deterministic mutations in `crates/vhd/tests/fuzz_smoke.rs` on stable CI.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let _ = preflight_vhd::has_footer_at_end(&data.to_vec());
    let _ = preflight_testkit::exercise(preflight_vhd::open(Arc::new(data.to_vec())));
});
