//! One filesystem reader at a time: the input is the whole filesystem, opened as
//! btrfs and walked (every directory, every small file) by
//! `preflight_guest::walk_filesystem`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let disk = preflight_disk::raw::RawImage::new(Arc::new(data.to_vec()));
    let _ = preflight_guest::walk_filesystem(preflight_guest::FsKind::Btrfs, &disk);
});
