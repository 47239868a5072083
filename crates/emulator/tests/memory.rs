//! Memory stays bounded: a 2 GiB PutObject and its GetObject stream through the emulator
//! (in this process, with a streaming client) while peak RSS stays under 100 MiB.
//! Alone in its test binary so that no other test's allocations count.

mod common;

use bytes::Bytes;
use futures_util::StreamExt;

/// Size of the object: the 2 GiB.
const SIZE: u64 = 2 * 1024 * 1024 * 1024;
/// Chunk the client sends.
const CHUNK: usize = 1024 * 1024;
/// The bound from the issue.
const MAX_RSS_BYTES: u64 = 100 * 1024 * 1024;

fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gib_upload_stays_under_100_mib() {
    let (emu, _d) = common::start_with(|_| {}).await;
    let ep = emu.endpoint();
    let chunk = Bytes::from(vec![0xA5u8; CHUNK]);
    let n = SIZE / CHUNK as u64;
    let stream =
        futures_util::stream::iter(0..n).map(move |_| Ok::<Bytes, std::io::Error>(chunk.clone()));
    let req = common::OssReq {
        method: "PUT",
        bucket: "ecs-preflight",
        raw_key: "big.raw",
        query: "",
        headers: vec![("Content-Length", SIZE.to_string())],
    };
    let r = common::oss(&ep, req, reqwest::Body::wrap_stream(stream)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let r = common::get(&ep, "ecs-preflight", "big.raw").await;
    assert_eq!(r.status(), 200);
    let mut got: u64 = 0;
    let mut body = r.bytes_stream();
    while let Some(c) = body.next().await {
        got += c.unwrap().len() as u64;
    }
    assert_eq!(got, SIZE);
    let peak = peak_rss();
    assert!(peak > 0, "VmHWM not readable");
    assert!(peak < MAX_RSS_BYTES, "peak RSS {} MiB", peak / 1024 / 1024);
    println!(
        "peak RSS {} MiB for a {} GiB round trip",
        peak / 1024 / 1024,
        SIZE >> 30
    );
    emu.shutdown().await;
}
