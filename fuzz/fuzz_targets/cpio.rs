//! The initramfs reader: concatenated cpio newc archives, each optionally
//! gzip, xz, zstd or lz4-legacy compressed, under a size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Small, so a decompression bomb trips the limit instead of the RSS cap.
const LIMIT: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = preflight_guest::initramfs::list(data, LIMIT);
});
