//! The partition table reader alone: MBR with EBR chains, GPT (both headers, CRCs), hybrid
//! and protective MBRs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let disk = preflight_disk::raw::RawImage::new(Arc::new(data.to_vec()));
    let _ = preflight_guest::read_partitions(&disk);
});
