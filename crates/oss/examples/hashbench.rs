//! Hashing throughput on one core, as the uploader uses it: CRC-64/XZ (crc-fast), MD5 (md-5,
//! for Content-MD5) and SHA-256 (sha2, for comparison). Prints MiB/s for each.
//!
//! `cargo run --release -p preflight-oss --example hashbench [MiB]`

use std::time::Instant;

use md5::{Digest, Md5};
use sha2::Sha256;

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    // A 64 MiB buffer hashed repeatedly: big enough to defeat caches like real parts do.
    let buf: Vec<u8> = (0..64usize << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect();
    let rounds = (mib / 64).max(1);
    let total = rounds * 64;
    let run = |name: &str, f: &dyn Fn(&[u8]) -> u64| {
        let t = Instant::now();
        let mut acc = 0u64;
        for _ in 0..rounds {
            acc = acc.wrapping_add(f(&buf));
        }
        let s = t.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let rate = total as f64 / s;
        println!("{name:<8} {rate:>9.0} MiB/s  ({total} MiB in {s:.2} s, check {acc:x})");
    };
    run("CRC-64", &|b| preflight_oss::crc::crc64(b));
    run("MD5", &|b| u64::from(Md5::digest(b)[0]));
    run("SHA-256", &|b| u64::from(Sha256::digest(b)[0]));
}
