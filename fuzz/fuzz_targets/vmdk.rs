//! Fuzzes the VMDK parser: open, info, check, the deep grain check and a
//! few guest reads must never panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use preflight_disk::{BlockRead, DiskImage};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let _ = preflight_vmdk::is_descriptor(data);
    let Ok(img) = preflight_vmdk::open(Arc::new(data.to_vec())) else {
        return;
    };
    let _ = img.info();
    let _ = img.check();
    let _ = img.check_grains();
    let size = img.size();
    let mut buf = vec![0u8; 65_536];
    for at in [0, size / 2, size.saturating_sub(4096)] {
        let n = usize::try_from((size - at.min(size)).min(65_536)).unwrap_or(0);
        let _ = img.read_at(at, &mut buf[..n]);
    }
});
