//! The initramfs's lzop decoder (LZO1X blocks in lzop's container), through the entry point
//! `check` uses: the input is an initramfs as the kernel would get it, an lzop file holding a
//! cpio archive. `cpio` reaches the same decoder, but its corpus rarely keeps an lzop header.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Small, so a decompression bomb trips the limit instead of the RSS cap.
const LIMIT: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = preflight_guest::initramfs::list(data, LIMIT);
});
