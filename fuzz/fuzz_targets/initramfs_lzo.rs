//! The initramfs's lzop decoder (LZO1X blocks in lzop's container), through the entry point
//! `check` uses: the input is an initramfs as the kernel would get it, an lzop file holding a
//! cpio archive. `cpio` reaches the same decoder, but its corpus rarely keeps an lzop header.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Small, so a decompression bomb trips the limit instead of the RSS cap, and soon: the
/// fuzzer turns lzop headers into lzma ones, whose long matches unpack about 3 MB per
/// CPU-second instrumented (as the `cpio` target's limit).
const LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = preflight_guest::initramfs::list(data, LIMIT);
});
