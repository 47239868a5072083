//! A legacy .lzma initramfs whose header declares a large dictionary: lzma-rs keeps its
//! output in the dictionary until it is full, so the unpack limit was checked only after the
//! whole stream had been unpacked in memory. Made by xz (256 MiB of zeros, 41 KB packed),
//! the header's dictionary raised to 1 GiB, which changes nothing else in the stream.
//! Its own test binary, so the process's peak memory is this test's.

use preflight_guest::initramfs::{list, InitramfsError};
use std::io::Write;
use std::process::{Command, Stdio};

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn lzma_with_a_large_dictionary_stops_at_the_limit_not_in_memory() {
    let mut xz = Command::new("xz")
        .args(["--format=lzma", "-0", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = xz.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            stdin.write_all(&zeros).unwrap();
        }
    });
    let out = xz.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(out.status.success());
    let mut lzma = out.stdout;
    assert_eq!(lzma[0], 0x5d, "lc=3 lp=0 pb=2");
    lzma[1..5].copy_from_slice(&(1u32 << 30).to_le_bytes());

    let before = peak_rss_kib();
    let limit = 1 << 20;
    assert_eq!(
        list(&lzma, limit).err(),
        Some(InitramfsError::TooLarge { limit })
    );
    let grew = peak_rss_kib().saturating_sub(before);
    assert!(grew < 32 * 1024, "peak memory grew by {grew} KiB");
}
