//! Fuzzes the VMDK parser: open, info, check, the deep grain check and a
//! few guest reads must never panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let _ = preflight_vmdk::is_descriptor(data);
    let Ok(img) = preflight_vmdk::open(Arc::new(data.to_vec())) else {
        return;
    };
    preflight_testkit::exercise_image(&img);
    let _ = img.check_grains();
});
