//! The initramfs reader: concatenated cpio newc archives, each optionally
//! gzip, xz, zstd or lz4-legacy compressed, under a size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Small, so a decompression bomb trips the limit instead of the RSS cap, and soon: an lzma
/// header followed by 256 KiB of zeros unpacks to zeros (cpio padding) until the limit, about
/// 3 MB per CPU-second instrumented (0.35 s for 1 MiB; 16 MiB timed out at load).
const LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = preflight_guest::initramfs::list(data, LIMIT);
});
