//! Compressed initramfs archives that unpack to far more than they take, made by xz from
//! 256 MiB of zeros, listed with a 1 MiB unpack limit: peak memory must stay far below what
//! they unpack to. One test in its own binary, so the process's peak memory is its own.
//!
//! - A legacy `.lzma` archive whose header declares a 1 GiB dictionary (41 KB packed):
//!   lzma-rs keeps its output in the dictionary until it is full, so the limit used to be
//!   checked only after the whole stream had been unpacked in memory (+257 MiB).
//! - An `.xz` archive (39 KB as `xz -0`): lzma-rs unpacks a block whole into memory with no
//!   limit; the stream is now sized from its LZMA2 chunk headers first (+525 MiB before).

use preflight_guest::initramfs::{list, InitramfsError};
use std::io::Write;
use std::process::{Command, Stdio};

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// 256 MiB of zeros through `xz ARGS -c`.
fn packed_zeros(args: &[&str]) -> Vec<u8> {
    let mut xz = Command::new("xz")
        .args(args)
        .arg("-c")
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
    out.stdout
}

/// Lists `archive` at a 1 MiB limit: refused as too large, peak memory up by under 32 MiB.
fn assert_stops_at_the_limit(what: &str, archive: &[u8]) {
    let before = peak_rss_kib();
    let limit = 1 << 20;
    assert_eq!(
        list(archive, limit).err(),
        Some(InitramfsError::TooLarge { limit }),
        "{what}"
    );
    let grew = peak_rss_kib().saturating_sub(before);
    assert!(grew < 32 * 1024, "{what}: peak memory grew by {grew} KiB");
}

#[test]
fn compression_bombs_stop_at_the_limit_not_in_memory() {
    let mut lzma = packed_zeros(&["--format=lzma", "-0"]);
    assert_eq!(lzma[0], 0x5d, "lc=3 lp=0 pb=2");
    lzma[1..5].copy_from_slice(&(1u32 << 30).to_le_bytes());
    assert_stops_at_the_limit("lzma with a 1 GiB dictionary", &lzma);
    assert_stops_at_the_limit("xz -0", &packed_zeros(&["-0"]));
}
