//! Fuzzes the VHDX parser: open, info, check and a few guest reads must never
//! panic or allocate beyond what the input justifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use preflight_disk::{BlockRead, DiskImage};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = preflight_vhdx::open(Arc::new(data.to_vec())) {
        let _ = img.info();
        let _ = img.check();
        let size = img.size();
        let mut buf = vec![0u8; 65_536];
        for off in [
            0,
            size / 2,
            size.saturating_sub(1),
            size.saturating_sub(65_536),
        ] {
            let len = usize::try_from(size.saturating_sub(off).min(65_536)).unwrap_or(0);
            let _ = img.read_at(off, &mut buf[..len]);
        }
    }
});
