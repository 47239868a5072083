//! Test helpers shared by the integration tests.
#![allow(dead_code, clippy::cast_possible_truncation)]

pub mod writer;

/// Deterministic pseudo-random bytes.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// A disk of `size` bytes in 128 KiB regions: holes, random data, constant
/// fills and mostly-zero regions with a few random 4 KiB blocks.
pub fn random_disk(size: u64, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; size as usize];
    for (i, region) in v.chunks_mut(128 * 1024).enumerate() {
        let r = (i as u64).wrapping_mul(2_654_435_761).wrapping_add(seed) % 7;
        match r {
            0..=2 => {} // hole
            3 | 4 => {
                let n = region.len();
                region.copy_from_slice(&random_bytes(n, seed ^ i as u64));
            }
            5 => region.fill((i % 251) as u8 + 1),
            _ => {
                for (k, block) in region.chunks_mut(4096).enumerate() {
                    if k % 5 == 2 {
                        let n = block.len();
                        block.copy_from_slice(&random_bytes(n, seed + k as u64 + i as u64));
                    }
                }
            }
        }
    }
    // Data in the partial last grain.
    let n = v.len();
    if n > 100 {
        v[n - 100..].copy_from_slice(&random_bytes(100, seed));
    }
    v
}
