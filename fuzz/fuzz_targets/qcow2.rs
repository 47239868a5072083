//! Fuzz target for the qcow2 parser, checker and reader: any input must be
//! handled without a panic, an unbounded allocation or an endless loop.
//! (The same body runs over deterministic mutations in
//! `crates/qcow2/tests/fuzz_smoke.rs` on stable CI.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use preflight_disk::{BlockRead, DiskImage};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(img) = preflight_qcow2::open(Arc::new(data.to_vec())) else {
        return;
    };
    let _ = img.info();
    let _ = img.check();
    let size = img.size();
    let mut buf = vec![0u8; 70_000];
    for off in [0, 512, 65_535, size / 2, size.saturating_sub(70_000)] {
        let n = usize::try_from(size.saturating_sub(off))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let _ = img.read_at(off, &mut buf[..n]);
    }
});
