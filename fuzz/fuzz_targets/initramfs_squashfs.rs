//! The initramfs's squashfs reader (dracut's `squash-root.img`), through the entry point
//! `check` uses: the input is the squashfs image, which the target wraps in a cpio archive
//! under the name dracut gives it, so the fuzzer mutates the image and not the archive around
//! it (a changed length in the cpio header would hide the image).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Small, so a decompression bomb trips the limit instead of the RSS cap.
const LIMIT: u64 = 16 << 20;

/// One newc member: header, name (NUL-terminated), padding, data, padding.
fn member(out: &mut Vec<u8>, ino: u32, mode: u32, name: &str, data: &[u8]) {
    let fields = [ino, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(format!("{:08x}", name.len() + 1).as_bytes());
    out.extend_from_slice(b"00000000");
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

fuzz_target!(|data: &[u8]| {
    let mut archive = Vec::with_capacity(data.len() + 512);
    member(&mut archive, 1, 0o100644, "squash-root.img", data);
    member(&mut archive, 0, 0, "TRAILER!!!", &[]);
    let _ = preflight_guest::initramfs::list(&archive, LIMIT);
});
