//! Fault injection: deterministic UploadPart failures, connection resets mid-body, clock skew,
//! delays, bandwidth; and the admin endpoint that exposes counters and faults.

mod common;

use std::time::{Duration, Instant};

use common::{get, oss, put, xml_code, xml_el, OssReq};
use preflight_emulator::faults::FaultKind;
use preflight_emulator::{Counters, Faults};

const B: &str = "ecs-preflight";

async fn initiate(ep: &str, key: &str) -> String {
    let r = oss(
        ep,
        OssReq {
            method: "POST",
            bucket: B,
            raw_key: key,
            query: "uploads",
            headers: vec![],
        },
        Vec::new(),
    )
    .await;
    xml_el(&r.text().await.unwrap(), "UploadId")
}

/// Uploads parts 1..=n, retrying each until it is stored; returns the statuses seen.
async fn upload_with_retries(ep: &str, key: &str, id: &str, n: u32) -> Vec<u16> {
    let mut statuses = Vec::new();
    for part in 1..=n {
        for _ in 0..50 {
            let q = format!("partNumber={part}&uploadId={id}");
            let r = oss(
                ep,
                OssReq {
                    method: "PUT",
                    bucket: B,
                    raw_key: key,
                    query: &q,
                    headers: vec![],
                },
                vec![u8::try_from(part % 256).unwrap(); 1000],
            )
            .await;
            let s = r.status().as_u16();
            statuses.push(s);
            if s == 200 {
                break;
            }
            let code = xml_code(&r.text().await.unwrap());
            assert!(
                matches!(
                    (s, code.as_str()),
                    (500, "InternalError") | (503, "ServiceUnavailable")
                ),
                "{s} {code}"
            );
        }
    }
    statuses
}

#[tokio::test]
async fn upload_part_errors_are_deterministic_and_counted() {
    let faults = Faults {
        seed: 42,
        upload_part_error_rate: 0.5,
        ..Faults::default()
    };
    let (emu, _d) = common::start_with(|c| c.faults = faults.clone()).await;
    let ep = emu.endpoint();
    let id = initiate(&ep, "flaky.bin").await;
    let statuses = upload_with_retries(&ep, "flaky.bin", &id, 20).await;
    let failures = statuses.iter().filter(|s| **s != 200).count() as u64;
    let expected: Vec<bool> = (0..statuses.len() as u64)
        .map(|i| faults.fires(FaultKind::UploadPartError, i))
        .collect();
    assert_eq!(
        statuses.iter().map(|s| *s != 200).collect::<Vec<_>>(),
        expected,
        "the seed decides which calls fail"
    );
    assert!(
        failures >= 5,
        "a 0.5 rate over 20+ calls fails some: {statuses:?}"
    );
    let c = emu.counters();
    assert_eq!(
        c.faults_for("upload_part_500") + c.faults_for("upload_part_503"),
        failures
    );
    assert_eq!(
        c.errors_for("InternalError") + c.errors_for("ServiceUnavailable"),
        failures
    );
    assert_eq!(c.parts_resent, failures);
    assert_eq!(c.requests_for("UploadPart"), statuses.len() as u64);
    assert_eq!(c.parts.len(), 20);
    assert!(c
        .parts
        .iter()
        .all(|p| p.stored == 1 && p.bytes == 1000 && p.bytes_received == 1000 * p.attempts));
    // The same seed replays the same pattern after set_faults.
    emu.set_faults(faults.clone());
    let id2 = initiate(&ep, "flaky2.bin").await;
    let again = upload_with_retries(&ep, "flaky2.bin", &id2, 20).await;
    assert_eq!(again, statuses);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_mid_body() {
    let (emu, _d) = common::start_with(|c| {
        c.faults = Faults {
            upload_part_reset_rate: 1.0,
            reset_after_bytes: 4096,
            ..Faults::default()
        };
    })
    .await;
    let ep = emu.endpoint();
    let id = initiate(&ep, "reset.bin").await;
    let q = format!("partNumber=1&uploadId={id}");
    let req = OssReq {
        method: "PUT",
        bucket: B,
        raw_key: "reset.bin",
        query: &q,
        headers: vec![],
    };
    let headers = common::sign_v1_headers(
        &req,
        preflight_emulator::DEFAULT_ACCESS_KEY_ID,
        preflight_emulator::DEFAULT_ACCESS_KEY_SECRET,
        &common::now_http(),
    );
    let mut b = reqwest::Client::new()
        .put(format!("{ep}/{B}/reset.bin?{q}"))
        .body(vec![9u8; 4 * 1024 * 1024]);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    let res = b.send().await;
    assert!(
        res.is_err(),
        "the connection must be dropped without an answer, got {res:?}"
    );
    let c = emu.counters();
    assert_eq!(c.faults_for("upload_part_reset"), 1);
    assert_eq!(c.parts[0].stored, 0);
    let r = oss(
        &ep,
        OssReq {
            method: "GET",
            bucket: B,
            raw_key: "reset.bin",
            query: &format!("uploadId={id}"),
            headers: vec![],
        },
        Vec::new(),
    )
    .await;
    assert!(
        !r.text().await.unwrap().contains("<Part>"),
        "nothing stored"
    );
    // Fault off: the retry goes through and counts as a re-send.
    emu.set_faults(Faults::default());
    let r = oss(
        &ep,
        OssReq {
            method: "PUT",
            bucket: B,
            raw_key: "reset.bin",
            query: &q,
            headers: vec![],
        },
        vec![9u8; 200_000],
    )
    .await;
    assert_eq!(r.status(), 200);
    let c = emu.counters();
    assert_eq!(c.parts_resent, 1);
    assert_eq!(c.parts[0].bytes, 200_000);
    emu.shutdown().await;
}

#[tokio::test]
async fn skew_delay_and_bandwidth() {
    let (emu, _d) = common::start_with(|c| {
        c.faults = Faults {
            time_skew_rate: 1.0,
            ..Faults::default()
        }
    })
    .await;
    let ep = emu.endpoint();
    let r = put(&ep, B, "k", b"x".to_vec()).await;
    assert_eq!(r.status(), 403);
    assert_eq!(xml_code(&r.text().await.unwrap()), "RequestTimeTooSkewed");
    assert_eq!(emu.counters().faults_for("time_skew"), 1);

    emu.set_faults(Faults {
        delay_ms: 300,
        ..Faults::default()
    });
    let t = Instant::now();
    assert_eq!(put(&ep, B, "k", b"x".to_vec()).await.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    emu.set_faults(Faults {
        bandwidth_bytes_per_sec: 256 * 1024,
        ..Faults::default()
    });
    let t = Instant::now();
    assert_eq!(
        put(&ep, B, "slow", vec![5u8; 128 * 1024]).await.status(),
        200
    );
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "upload throttled: {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let body = get(&ep, B, "slow").await.bytes().await.unwrap();
    assert_eq!(body.len(), 128 * 1024);
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "download throttled: {:?}",
        t.elapsed()
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn admin_endpoint() {
    let (emu, _d) = common::start_with(|_| {}).await;
    let ep = emu.endpoint();
    put(&ep, B, "a", b"1".to_vec()).await;
    let text = reqwest::get(format!("{ep}/_emulator/counters"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let c: Counters = serde_json::from_str(&text).unwrap();
    assert_eq!(c.requests_for("PutObject"), 1);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{ep}/_emulator/faults"))
        .body(r#"{"seed":9,"upload_part_error_rate":0.25}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(emu.faults().seed, 9);
    assert_eq!(emu.faults().upload_part_error_rate, 0.25);
    let r = http
        .post(format!("{ep}/_emulator/faults"))
        .body(r#"{"upload_part_error_rate":7}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(format!("{ep}/_emulator/faults"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(format!("{ep}/_emulator/counters/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(emu.counters(), Counters::default());
    assert_eq!(
        reqwest::get(format!("{ep}/_emulator/nope"))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        reqwest::get(format!("{ep}/_emulator/health"))
            .await
            .unwrap()
            .status(),
        200
    );
    emu.shutdown().await;
}
