//! An xz initramfs that unpacks to far more than it takes: lzma-rs unpacks an xz block whole
//! into memory before writing any of it, so the unpack limit was checked only after the whole
//! block was in memory (256 MiB of zeros, about 39 KB as `xz -0`, raised peak memory by
//! 513 MiB at a 1 MiB limit). Its own test binary, so the process's peak memory is this test's.

use preflight_guest::initramfs::{list, InitramfsError};
use std::io::Write;
use std::process::{Command, Stdio};

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn an_xz_bomb_is_refused_at_the_limit_not_unpacked_in_memory() {
    let mut xz = Command::new("xz")
        .args(["-0", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("xz (xz-utils, installed by fixtures/install-deps.sh)");
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
    assert!(out.stdout.len() < 100_000, "{} bytes", out.stdout.len());

    let before = peak_rss_kib();
    let limit = 1 << 20;
    assert_eq!(
        list(&out.stdout, limit).err(),
        Some(InitramfsError::TooLarge { limit })
    );
    let grew = peak_rss_kib().saturating_sub(before);
    assert!(grew < 32 * 1024, "peak memory grew by {grew} KiB");
}
