//! Guest inspection over an arbitrary disk: partition tables (MBR, EBR
//! chains, GPT), then every filesystem reader (ext4, XFS, FAT, NTFS, LVM).
//! libfuzzer-sys's panic hook aborts, so a panic is found even though
//! `inspect` turns caught panics into findings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let disk = preflight_disk::raw::RawImage::new(Arc::new(data.to_vec()));
    let _ = preflight_guest::inspect(&disk);
});
