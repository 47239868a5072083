//! A cheap, deterministic stand-in for the fuzz target
//! (`fuzz/fuzz_targets/qcow2.rs`): the same harness over a few thousand
//! mutations of real qemu-img images, so that stable CI exercises it.

mod common;

use common::*;
use std::sync::Arc;

/// The fuzz target's body: the shared harness.
fn body(data: &[u8]) {
    let _ = preflight_testkit::exercise(preflight_qcow2::open(Arc::new(data.to_vec())));
}

fn be64(b: &[u8], at: u64) -> u64 {
    usize::try_from(at)
        .ok()
        .and_then(|a| b.get(a..a + 8))
        .map_or(0, |x| u64::from_be_bytes(x.try_into().unwrap()))
}

/// Offsets of the metadata of an image: header, L1, first L2, refcount
/// table and block, snapshot table.
fn hot_spots(b: &[u8]) -> Vec<u64> {
    let mask = 0x00ff_ffff_ffff_fe00;
    let l1 = be64(b, 40);
    let rt = be64(b, 48);
    let mut v = vec![
        0,
        l1,
        rt,
        be64(b, 64),
        be64(b, l1) & mask,
        be64(b, rt) & mask,
    ];
    v.retain(|&o| o < b.len() as u64);
    v
}

const INTERESTING: [u64; 10] = [
    0,
    1,
    0x200,
    0x1_0000,
    1 << 62,
    1 << 63,
    u64::MAX,
    0x8000_0000_0001_0000,
    0x00ff_ffff_ffff_fe00,
    0x4000_0000_0000_0000 | 0x3_0000,
];

fn mutate(base: &[u8], rng: &mut Rng, hot: &[u64]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..=rng.below(4) {
        let len = b.len() as u64;
        if len == 0 {
            break;
        }
        let at = match rng.below(4) {
            0 | 1 => rng.below(len.min(1024)),
            2 => {
                let h = hot[usize::try_from(rng.below(hot.len() as u64)).unwrap()];
                (h + rng.below(512)).min(len - 1)
            }
            _ => rng.below(len),
        };
        let i = usize::try_from(at).unwrap();
        match rng.below(10) {
            0..=3 => b[i] ^= 1 << rng.below(8),
            4..=5 => b[i] = rng.next().to_le_bytes()[0],
            6..=8 => {
                let a = i & !7;
                if a + 8 <= b.len() {
                    let v = INTERESTING[usize::try_from(rng.below(10)).unwrap()];
                    b[a..a + 8].copy_from_slice(&v.to_be_bytes());
                }
            }
            _ => b.truncate(i),
        }
    }
    b
}

fn images(dir: &std::path::Path) -> Vec<Vec<u8>> {
    // 512-byte clusters with zero clusters and an internal snapshot.
    let a = p(dir, "a.qcow2");
    qemu_img(&[
        "create",
        "-f",
        "qcow2",
        "-o",
        "cluster_size=512",
        s(&a),
        "256k",
    ]);
    qemu_io(
        &a,
        &["write -P 1 0 8k", "write -P 2 100k 4k", "write -z 200k 4k"],
    );
    qemu_img(&["snapshot", "-c", "s1", s(&a)]);
    qemu_io(&a, &["write -P 3 0 2k"]);
    // zstd-compressed, 64 KiB clusters.
    let raw = p(dir, "src.raw");
    make_raw(&raw, 4 << 20);
    let b = p(dir, "b.qcow2");
    qemu_img(&[
        "convert",
        "-c",
        "-O",
        "qcow2",
        "-o",
        "compression_type=zstd",
        s(&raw),
        s(&b),
    ]);
    // Extended L2 with subclusters, v2 zlib-compressed 4 KiB clusters.
    let c = p(dir, "c.qcow2");
    qemu_img(&[
        "create",
        "-f",
        "qcow2",
        "-o",
        "extended_l2=on,cluster_size=16k",
        s(&c),
        "1M",
    ]);
    qemu_io(
        &c,
        &["write -P 1 1k 2k", "write -z 40k 4k", "write -P 2 100k 20k"],
    );
    let e = p(dir, "e.qcow2");
    qemu_img(&[
        "create",
        "-f",
        "qcow2",
        "-o",
        "compat=0.10,cluster_size=4k",
        s(&e),
        "1M",
    ]);
    qemu_io(&e, &["write -P 1 0 16k"]);
    let e2 = p(dir, "e2.qcow2");
    qemu_img(&[
        "convert",
        "-c",
        "-O",
        "qcow2",
        "-o",
        "compat=0.10,cluster_size=4k",
        s(&e),
        s(&e2),
    ]);
    [a, b, c, e2]
        .iter()
        .map(|x| std::fs::read(x).unwrap())
        .collect()
}

#[test]
fn thousands_of_mutations_never_panic() {
    let d = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for base in images(d.path()) {
        body(&base);
        let hot = hot_spots(&base);
        for _ in 0..800 {
            let m = mutate(&base, &mut rng, &hot);
            body(&m);
        }
    }
}
