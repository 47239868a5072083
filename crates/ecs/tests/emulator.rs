//! The client against the emulator, over real HTTP, with both signatures.

use std::sync::Arc;
use std::time::Duration;

use preflight_aliyun::{CredentialProvider, Credentials};
use preflight_ecs::{
    watch, Client, ClientConfig, DescribeImagesQuery, ImportOptions, ImportOutcome,
    SignatureMethod, WaitOutcome,
};
use preflight_ecs::{ImportDisk, ImportImageRequest};
use preflight_emulator::{Config, Emulator, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
use preflight_testkit::emulator::{now_http, OssReq, DEFAULT_KEY};

/// PutObject with an OSS V1 signature (path-style), by the emulator's test client.
async fn put_object(emu: &Emulator, bucket: &str, key: &str, body: Vec<u8>) {
    let request = OssReq {
        method: "PUT",
        bucket,
        raw_key: key,
        query: "",
        headers: vec![("content-type", "application/octet-stream".into())],
    };
    let mut put = reqwest::Client::new()
        .put(format!("{}{}", emu.endpoint(), request.target()))
        .body(body);
    for (name, value) in request.signed_headers(DEFAULT_KEY, &now_http()) {
        put = put.header(name, value);
    }
    let resp = put.send().await.unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
}

fn client(emu: &Emulator, signature: SignatureMethod) -> Client {
    let creds = Arc::new(CredentialProvider::fixed(Credentials::new(
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_ACCESS_KEY_SECRET,
    )));
    let mut cfg = ClientConfig::new("cn-hangzhou").with_endpoint(&emu.endpoint());
    cfg.signature = signature;
    Client::new(cfg, creds).unwrap()
}

fn request(name: &str, key: &str) -> ImportImageRequest {
    ImportImageRequest {
        region_id: Some("cn-hangzhou".into()),
        image_name: Some(name.into()),
        platform: Some("Ubuntu".into()),
        client_token: Some(format!("tok-{name}")),
        disk_device_mappings: vec![ImportDisk {
            format: Some("RAW".into()),
            oss_bucket: Some("ecs-preflight".into()),
            oss_object: Some(key.into()),
            disk_image_size: Some(20),
        }],
        ..ImportImageRequest::default()
    }
}

#[tokio::test]
async fn import_and_watch_with_both_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::for_tests(dir.path());
    cfg.strict.v4_only = false; // put_object signs with a hand-made V1 header
    cfg.task_seconds = 0.5;
    let emu = preflight_emulator::start(cfg).await.unwrap();
    put_object(&emu, "ecs-preflight", "disk.raw", vec![7u8; 4096]).await;
    for (i, sig) in [SignatureMethod::HmacSha1, SignatureMethod::Acs3]
        .into_iter()
        .enumerate()
    {
        let ecs = client(&emu, sig);
        assert!(ecs
            .get_role("AliyunECSImageImportDefaultRole")
            .await
            .unwrap()
            .unwrap()
            .trusts_ecs());
        assert!(ecs.get_role("NoSuchRole").await.unwrap().is_none());
        assert!(!ecs.describe_regions().await.unwrap().is_empty());
        let p = request(&format!("img-{i}"), "disk.raw");
        let dry = ecs
            .import_image(&p, &ImportOptions { dry_run: true })
            .await
            .unwrap();
        assert!(matches!(dry, ImportOutcome::DryRunPassed { .. }));
        let ImportOutcome::Started(r) = ecs
            .import_image(&p, &ImportOptions::default())
            .await
            .unwrap()
        else {
            panic!("not started")
        };
        assert!(r.image_id.starts_with("m-") && r.task_id.starts_with("t-"));
        // Same ClientToken: same image.
        let ImportOutcome::Started(again) = ecs
            .import_image(&p, &ImportOptions::default())
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(again.image_id, r.image_id);
        let tasks = ecs
            .describe_tasks(&preflight_ecs::DescribeTasksQuery {
                task_ids: vec![r.task_id.clone()],
                task_action: Some("ImportImage".into()),
                task_status: None,
            })
            .await
            .unwrap();
        assert_eq!(tasks.len(), 1);
        let out = watch::wait(
            &ecs,
            &r.task_id,
            &r.image_id,
            Duration::from_millis(100),
            Duration::from_secs(20),
            |_| {},
        )
        .await
        .unwrap();
        let WaitOutcome::Available(img) = out else {
            panic!("{out:?}")
        };
        assert_eq!(img.disk_device_mappings[0].import_oss_object, "disk.raw");
        assert_eq!(img.disk_device_mappings[0].size, "20");
        let listed = ecs
            .describe_images(&DescribeImagesQuery {
                image_name: Some(p.image_name.clone().unwrap()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        // A duplicate name with another token is a typed API error.
        let mut dup = p.clone();
        dup.client_token = Some("other".into());
        let e = ecs
            .import_image(&dup, &ImportOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidImageName.Duplicated"));
        assert!(!e.to_string().contains(DEFAULT_ACCESS_KEY_SECRET));
    }
    let c = emu.counters();
    assert_eq!(c.errors_for("SignatureDoesNotMatch"), 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn failed_task_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::for_tests(dir.path());
    cfg.strict.v4_only = false; // put_object signs with a hand-made V1 header
    cfg.task_seconds = 30.0;
    let emu = preflight_emulator::start(cfg).await.unwrap();
    put_object(&emu, "ecs-preflight", "disk.raw", vec![7u8; 4096]).await;
    let ecs = client(&emu, SignatureMethod::HmacSha1);
    let ImportOutcome::Started(r) = ecs
        .import_image(&request("cancel-me", "disk.raw"), &ImportOptions::default())
        .await
        .unwrap()
    else {
        panic!()
    };
    ecs.cancel_task(&r.task_id).await.unwrap();
    let out = watch::wait(
        &ecs,
        &r.task_id,
        &r.image_id,
        Duration::from_millis(100),
        Duration::from_secs(5),
        |_| {},
    )
    .await
    .unwrap();
    assert!(matches!(out, WaitOutcome::Failed { .. }), "{out:?}");
    let e = ecs
        .import_image(&request("nope", "missing.raw"), &ImportOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidOSSObject.NotFound"));
    emu.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::for_tests(dir.path());
    cfg.strict.v4_only = false; // put_object signs with a hand-made V1 header
    cfg.task_seconds = 0.5;
    let emu = preflight_emulator::start(cfg).await.unwrap();
    put_object(&emu, "ecs-preflight", "disk.raw", vec![7u8; 4096]).await;
    let ecs = client(&emu, SignatureMethod::Acs3);
    let mut f = emu.faults();
    f.fail_import = true;
    emu.set_faults(f);
    let ImportOutcome::Started(r) = ecs
        .import_image(&request("fail-me", "disk.raw"), &ImportOptions::default())
        .await
        .unwrap()
    else {
        panic!()
    };
    let out = watch::wait(
        &ecs,
        &r.task_id,
        &r.image_id,
        Duration::from_millis(100),
        Duration::from_secs(60),
        |_| {},
    )
    .await
    .unwrap();
    let WaitOutcome::Failed { code, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(code, "ImportImageFailed");
    emu.shutdown().await;
}

/// A server that answers 503 Throttling once, then 200: the client retries with a new nonce.
#[tokio::test]
async fn throttling_is_retried_with_a_fresh_nonce() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut targets = Vec::new();
        for i in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
                buf.push(byte[0]);
            }
            targets.push(
                String::from_utf8_lossy(&buf)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
            let (status, body) = if i == 0 {
                (
                    "503 Service Unavailable",
                    r#"{"RequestId":"R0","Code":"Throttling","Message":"slow down"}"#,
                )
            } else {
                (
                    "200 OK",
                    r#"{"RequestId":"R1","Regions":{"Region":[{"RegionId":"cn-hangzhou","RegionEndpoint":"ecs.cn-hangzhou.aliyuncs.com"}]}}"#,
                )
            };
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
        targets
    });
    let creds = Arc::new(CredentialProvider::fixed(Credentials::new("id", "secret")));
    let mut cfg =
        ClientConfig::new("cn-hangzhou").with_endpoint(&format!("http://127.0.0.1:{port}"));
    cfg.retry.base_delay = Duration::from_millis(10);
    let ecs = Client::new(cfg, creds).unwrap();
    let regions = ecs.describe_regions().await.unwrap();
    assert_eq!(regions[0].region_id, "cn-hangzhou");
    let targets = server.join().unwrap();
    let nonce = |t: &str| {
        t.split(['?', '&', ' '])
            .find(|kv| kv.starts_with("SignatureNonce="))
            .map(str::to_string)
    };
    assert!(nonce(&targets[0]).is_some());
    assert_ne!(nonce(&targets[0]), nonce(&targets[1]));
}

/// A server that first cuts its answer off mid-body, then streams an answer far longer than
/// any real one: the cut-off is retried, the endless answer is refused at the size limit.
#[tokio::test]
async fn cut_off_answers_are_retried_and_endless_ones_refused() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let regions = r#"{"RequestId":"R1","Regions":{"Region":[{"RegionId":"cn-hangzhou","RegionEndpoint":"ecs.cn-hangzhou.aliyuncs.com"}]}}"#;
    let server = std::thread::spawn(move || {
        let mut served = 0;
        while let Ok((mut s, _)) = listener.accept() {
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                buf.push(byte[0]);
            }
            served += 1;
            let head = |len: usize| {
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
            };
            match served {
                1 => {
                    let _ = write!(s, "{}{}", head(regions.len()), &regions[..20]);
                }
                2 => {
                    let _ = write!(s, "{}{regions}", head(regions.len()));
                }
                _ => {
                    let len = 64 << 20;
                    let _ = s.write_all(head(len).as_bytes());
                    let chunk = vec![b' '; 1 << 16];
                    for _ in 0..len / chunk.len() {
                        if s.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                }
            }
            if served == 3 {
                return served;
            }
        }
        served
    });
    let creds = Arc::new(CredentialProvider::fixed(Credentials::new("id", "secret")));
    let mut cfg =
        ClientConfig::new("cn-hangzhou").with_endpoint(&format!("http://127.0.0.1:{port}"));
    cfg.retry.base_delay = Duration::from_millis(10);
    cfg.retry.max_attempts = 1;
    let ecs = Client::new(cfg.clone(), creds.clone()).unwrap();
    // One attempt only: the cut-off answer is an error, not a panic or a parse of half a body.
    assert!(ecs.describe_regions().await.is_err());
    let ecs = Client::new(
        {
            let mut c = cfg.clone();
            c.retry.max_attempts = 3;
            c
        },
        creds.clone(),
    )
    .unwrap();
    let got = ecs.describe_regions().await.unwrap();
    assert_eq!(got[0].region_id, "cn-hangzhou");
    let err = Client::new(cfg, creds)
        .unwrap()
        .describe_regions()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("longer than"), "{err}");
    // Joined off the runtime: the client's connection task must run to close the socket
    // the server is still writing to.
    let served = tokio::task::spawn_blocking(move || server.join().unwrap())
        .await
        .unwrap();
    assert_eq!(served, 3);
}

/// ECS refuses a Timestamp far from its clock (`InvalidTimeStamp.Expired`): the client takes
/// the server's `Date`, signs again with it at once, and keeps the correction.
#[tokio::test]
async fn an_expired_timestamp_is_corrected_from_the_server_clock() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The server's clock is two hours ahead of ours.
    let server_now = std::time::SystemTime::now() + Duration::from_secs(7200);
    let server = std::thread::spawn(move || {
        let mut targets = Vec::new();
        for i in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
                buf.push(byte[0]);
            }
            targets.push(
                String::from_utf8_lossy(&buf)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
            let (status, body) = if i == 0 {
                (
                    "400 Bad Request",
                    r#"{"RequestId":"R0","Code":"InvalidTimeStamp.Expired","Message":"Specified time stamp or date value is expired."}"#,
                )
            } else {
                (
                    "200 OK",
                    r#"{"RequestId":"R1","Regions":{"Region":[{"RegionId":"cn-hangzhou","RegionEndpoint":"ecs.cn-hangzhou.aliyuncs.com"}]}}"#,
                )
            };
            let date = httpdate::fmt_http_date(server_now);
            let _ = write!(s, "HTTP/1.1 {status}\r\nDate: {date}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
        targets
    });
    let creds = Arc::new(CredentialProvider::fixed(Credentials::new("id", "secret")));
    let mut cfg =
        ClientConfig::new("cn-hangzhou").with_endpoint(&format!("http://127.0.0.1:{port}"));
    // No retries of the ordinary kind: only the clock correction may resend.
    cfg.retry = preflight_aliyun::RetryConfig::none();
    let ecs = Client::new(cfg, creds).unwrap();
    let regions = ecs.describe_regions().await.unwrap();
    assert_eq!(regions[0].region_id, "cn-hangzhou");
    assert!(
        (7190..=7210).contains(&ecs.clock_offset_secs()),
        "{}",
        ecs.clock_offset_secs()
    );
    let targets = server.join().unwrap();
    let stamp = |t: &str| {
        t.split(['?', '&', ' '])
            .find_map(|kv| kv.strip_prefix("Timestamp="))
            .map(|v| v.replace("%3A", ":"))
            .unwrap()
    };
    // Hours differ between the two requests' Timestamps (two hours apart).
    assert_ne!(stamp(&targets[0])[..13], stamp(&targets[1])[..13]);
}
