//! Hostile and malformed OSS input: each gets the documented XML error, nothing panics, and no
//! file is written outside the data directory.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;
use common::{get, oss, put, xml_code, xml_el, OssReq};
use md5::{Digest, Md5};

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
    assert_eq!(r.status(), 200);
    xml_el(&r.text().await.unwrap(), "UploadId")
}

async fn upload_part(ep: &str, key: &str, id: &str, n: &str, body: Vec<u8>) -> reqwest::Response {
    let q = format!("partNumber={n}&uploadId={id}");
    oss(
        ep,
        OssReq {
            method: "PUT",
            bucket: B,
            raw_key: key,
            query: &q,
            headers: vec![],
        },
        body,
    )
    .await
}

async fn complete(
    ep: &str,
    key: &str,
    id: &str,
    body: &str,
    headers: Vec<(&str, String)>,
) -> (u16, String) {
    let q = format!("uploadId={id}");
    let r = oss(
        ep,
        OssReq {
            method: "POST",
            bucket: B,
            raw_key: key,
            query: &q,
            headers,
        },
        body.to_string(),
    )
    .await;
    (r.status().as_u16(), r.text().await.unwrap())
}

fn etag(r: &reqwest::Response) -> String {
    r.headers()["etag"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn missing_or_bad_authorization() {
    let (emu, _d) = common::start_with(|_| {}).await;
    let ep = emu.endpoint();
    let r = reqwest::get(format!("{ep}/{B}/k")).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(xml_code(&r.text().await.unwrap()), "AccessDenied");
    let c = reqwest::Client::new();
    for auth in [
        "OSS",
        "OSS nocolon",
        "Bearer x",
        "OSS4-HMAC-SHA256 Credential=x",
    ] {
        let r = c
            .get(format!("{ep}/{B}/k"))
            .header("Authorization", auth)
            .header("Date", common::now_http())
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let code = xml_code(&r.text().await.unwrap());
        assert!(
            matches!(
                (s, code.as_str()),
                (400, "InvalidArgument") | (403, "AccessDenied")
            ),
            "{auth}: {s} {code}"
        );
    }
    // A date 20 minutes old.
    let old = preflight_emulator::util::http_date(preflight_emulator::util::unix_now() - 1200);
    let req = OssReq {
        method: "GET",
        bucket: B,
        raw_key: "k",
        query: "",
        headers: vec![],
    };
    let mut b = c.get(format!("{ep}/{B}/k"));
    for (k, v) in common::sign_v1_headers(
        &req,
        preflight_emulator::DEFAULT_ACCESS_KEY_ID,
        preflight_emulator::DEFAULT_ACCESS_KEY_SECRET,
        &old,
    ) {
        b = b.header(k, v);
    }
    let r = b.send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(xml_code(&r.text().await.unwrap()), "RequestTimeTooSkewed");
    // HEAD errors travel base64-encoded in x-oss-err.
    let r = oss(
        &ep,
        OssReq {
            method: "HEAD",
            bucket: B,
            raw_key: "missing",
            query: "",
            headers: vec![],
        },
        Vec::new(),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-oss-ec"], "0026-00000001");
    let xml = base64::engine::general_purpose::STANDARD
        .decode(r.headers()["x-oss-err"].as_bytes())
        .unwrap();
    assert_eq!(xml_code(&String::from_utf8(xml).unwrap()), "NoSuchKey");
    emu.shutdown().await;
}

#[tokio::test]
async fn part_numbers_and_part_rules() {
    let (emu, _d) = common::start_with(|_| {}).await;
    let ep = emu.endpoint();
    let id = initiate(&ep, "mp.bin").await;
    for n in ["0", "10001", "abc", "-1", "99999999999999999999"] {
        let r = upload_part(&ep, "mp.bin", &id, n, b"x".to_vec()).await;
        assert_eq!(r.status(), 400, "{n}");
        assert_eq!(r.headers()["x-oss-ec"], "0017-00000220");
        assert_eq!(xml_code(&r.text().await.unwrap()), "InvalidArgument");
    }
    let r = upload_part(
        &ep,
        "mp.bin",
        "0004B9894A22E5B1888A1E29F8236E2F",
        "1",
        b"x".to_vec(),
    )
    .await;
    assert_eq!(xml_code(&r.text().await.unwrap()), "NoSuchUpload");
    let r = upload_part(&ep, "mp.bin", "../../../etc", "1", b"x".to_vec()).await;
    assert_eq!(xml_code(&r.text().await.unwrap()), "NoSuchUpload");
    // Content-MD5 mismatch.
    let q = format!("partNumber=1&uploadId={id}");
    let bad_md5 = base64::engine::general_purpose::STANDARD.encode([0u8; 16]);
    let r = oss(
        &ep,
        OssReq {
            method: "PUT",
            bucket: B,
            raw_key: "mp.bin",
            query: &q,
            headers: vec![("Content-MD5", bad_md5)],
        },
        b"data".to_vec(),
    )
    .await;
    assert_eq!(xml_code(&r.text().await.unwrap()), "InvalidDigest");
    let p1 = upload_part(&ep, "mp.bin", &id, "1", vec![1u8; 50_000]).await;
    let e1 = etag(&p1);
    let p2 = upload_part(&ep, "mp.bin", &id, "2", vec![2u8; 10]).await;
    let e2 = etag(&p2);
    let part =
        |n: u32, e: &str| format!("<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>");
    let doc = |parts: &str| format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>");
    // Malformed bodies.
    for body in ["", "not xml", "<CompleteMultipartUpload>", "<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>", "<Foo/>", "<CompleteMultipartUpload></CompleteMultipartUpload>"] {
        let (s, t) = complete(&ep, "mp.bin", &id, body, vec![]).await;
        assert_eq!((s, xml_code(&t).as_str()), (400, "MalformedXML"), "{body:?}");
    }
    let (s, t) = complete(
        &ep,
        "mp.bin",
        &id,
        &doc(&(part(2, &e2) + &part(1, &e1))),
        vec![],
    )
    .await;
    assert_eq!((s, xml_code(&t).as_str()), (400, "InvalidPartOrder"));
    let (s, t) = complete(
        &ep,
        "mp.bin",
        &id,
        &doc(&(part(1, &e1) + &part(1, &e1))),
        vec![],
    )
    .await;
    assert_eq!((s, xml_code(&t).as_str()), (400, "InvalidPartOrder"));
    let (s, t) = complete(
        &ep,
        "mp.bin",
        &id,
        &doc(&(part(1, "\"0000\"") + &part(2, &e2))),
        vec![],
    )
    .await;
    assert_eq!((s, xml_code(&t).as_str()), (400, "InvalidPart"));
    let (s, t) = complete(
        &ep,
        "mp.bin",
        &id,
        &doc(&(part(1, &e1) + &part(3, &e2))),
        vec![],
    )
    .await;
    assert_eq!((s, xml_code(&t).as_str()), (400, "InvalidPart"));
    let (s, t) = complete(
        &ep,
        "mp.bin",
        &id,
        &doc(&(part(1, &e1) + &part(2, &e2))),
        vec![],
    )
    .await;
    assert_eq!(
        (s, xml_code(&t).as_str()),
        (400, "EntityTooSmall"),
        "50,000-byte first part"
    );
    let (s, t) = complete(
        &ep,
        "mp.bin",
        &id,
        &doc(&part(1, &e1)),
        vec![("x-oss-complete-all", "yes".into())],
    )
    .await;
    assert_eq!((s, xml_code(&t).as_str()), (400, "InvalidArgument"));
    let many: String = (1..=10_001).map(|n| part(n, &e1)).collect();
    let (s, t) = complete(&ep, "mp.bin", &id, &doc(&many), vec![]).await;
    assert_eq!(
        (s, xml_code(&t).as_str()),
        (400, "InvalidArgument"),
        "10,001 parts"
    );
    // A valid completion: part 1 at the minimum size, Go-style &#34; quotes.
    let p1 = upload_part(&ep, "mp.bin", &id, "1", vec![1u8; 100 * 1024]).await;
    let e1 = etag(&p1).replace('"', "&#34;");
    let (s, t) = complete(
        &ep,
        "mp.bin",
        &id,
        &doc(&(part(1, &e1) + &part(2, &e2))),
        vec![],
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let got = get(&ep, B, "mp.bin").await.bytes().await.unwrap();
    assert_eq!(got.len(), 100 * 1024 + 10);
    let (s, t) = complete(&ep, "mp.bin", &id, &doc(&part(1, &e1)), vec![]).await;
    assert_eq!(
        (s, xml_code(&t).as_str()),
        (404, "NoSuchUpload"),
        "completed twice"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn hostile_keys_stay_inside_the_data_dir() {
    let (emu, dir) = common::start_with(|_| {}).await;
    let ep = emu.endpoint();
    // (reqwest resolves literal `/../` segments itself; those are sent over raw TCP below.)
    for key in [
        "..%2F..%2Fescape",
        "a%2F..%2F..%2Fescape",
        "a%00b",
        "%2Fabs",
        "a%2F..",
        "%FF%FE",
        "a%0Ab",
    ] {
        let r = put(&ep, B, key, b"evil".to_vec()).await;
        assert_eq!(r.status(), 400, "{key}");
        assert_eq!(
            xml_code(&r.text().await.unwrap()),
            "InvalidObjectName",
            "{key}"
        );
    }
    let long = "a".repeat(1024);
    let r = put(&ep, B, &long, b"x".to_vec()).await;
    assert_eq!(xml_code(&r.text().await.unwrap()), "InvalidObjectName");
    // Legal but odd keys are stored under hashed names.
    for key in [
        "dots..inside",
        "%E9%95%9C%E5%83%8F.qcow2",
        "sp%20ace%2Bplus",
    ] {
        assert_eq!(
            put(&ep, B, key, b"ok".to_vec()).await.status(),
            200,
            "{key}"
        );
        assert_eq!(
            get(&ep, B, key).await.bytes().await.unwrap().as_ref(),
            b"ok"
        );
    }
    let data = dir.path().join("data").canonicalize().unwrap();
    for f in common::files_under(dir.path()) {
        assert!(
            f.canonicalize().unwrap().starts_with(&data),
            "{} is outside the data dir",
            f.display()
        );
    }
    assert!(!dir.path().join("escape").exists());
    emu.shutdown().await;
}

fn raw(ep: &str, request: &[u8]) -> String {
    let addr = ep.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn signed_put_head(key: &str, len: usize, extra: Vec<(&str, String)>) -> String {
    let req = OssReq {
        method: "PUT",
        bucket: B,
        raw_key: key,
        query: "",
        headers: extra,
    };
    let hs = common::sign_v1_headers(
        &req,
        preflight_emulator::DEFAULT_ACCESS_KEY_ID,
        preflight_emulator::DEFAULT_ACCESS_KEY_SECRET,
        &common::now_http(),
    );
    let mut h = format!("PUT /{B}/{key} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len}\r\n");
    for (k, v) in hs {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_disagrees_with_body() {
    let (emu, _d) = common::start_with(|_| {}).await;
    let ep = emu.endpoint();
    let body = b"0123456789abcdefghij";
    // Body longer than Content-Length, with the MD5 of the whole body: the 5 bytes read do not
    // match it, so nothing is stored; the rest is answered 400 as garbage.
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(body));
    let mut req = signed_put_head("longer", 5, vec![("Content-MD5", md5)]).into_bytes();
    req.extend_from_slice(body);
    let ep2 = ep.clone();
    let out = tokio::task::spawn_blocking(move || raw(&ep2, &req))
        .await
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains("InvalidDigest"), "{out}");
    assert_eq!(get(&ep, B, "longer").await.status(), 404);
    // Body shorter than Content-Length, then the client closes: no object.
    let mut req = signed_put_head("shorter", 100, vec![]).into_bytes();
    req.extend_from_slice(body);
    let ep2 = ep.clone();
    tokio::task::spawn_blocking(move || raw(&ep2, &req))
        .await
        .unwrap();
    assert_eq!(get(&ep, B, "shorter").await.status(), 404);
    // Keys with a raw NUL escape and a traversal over raw TCP.
    let ep2 = ep.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut req = signed_put_head("a%00b", 1, vec![]).into_bytes();
        req.push(b'x');
        raw(&ep2, &req)
    })
    .await
    .unwrap();
    assert!(out.contains("InvalidObjectName"), "{out}");
    for key in ["a/../../escape", "../../../../tmp/escape", "x/.."] {
        let ep2 = ep.clone();
        let out = tokio::task::spawn_blocking(move || {
            let mut req = signed_put_head(key, 1, vec![]).into_bytes();
            req.push(b'x');
            raw(&ep2, &req)
        })
        .await
        .unwrap();
        assert!(out.contains("InvalidObjectName"), "{key}: {out}");
    }
    // A declared body above 5 GB is refused before reading.
    let ep2 = ep.clone();
    let out = tokio::task::spawn_blocking(move || {
        raw(
            &ep2,
            signed_put_head("huge", 6 * 1024 * 1024 * 1024, vec![]).as_bytes(),
        )
    })
    .await
    .unwrap();
    assert!(out.contains("EntityTooLarge"), "{out}");
    // Still serving.
    assert_eq!(put(&ep, B, "after", b"fine".to_vec()).await.status(), 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn ranges_and_virtual_hosted_style() {
    let (emu, _d) = common::start_with(|_| {}).await;
    let ep = emu.endpoint();
    put(&ep, B, "r.bin", b"0123456789".to_vec()).await;
    let c = reqwest::Client::new();
    for (range, want, status) in [
        ("bytes=2-4", "234", 206),
        ("bytes=7-", "789", 206),
        ("bytes=-2", "89", 206),
        ("bytes=20-", "0123456789", 200),
        ("bytes=5-2", "0123456789", 200),
    ] {
        let req = OssReq {
            method: "GET",
            bucket: B,
            raw_key: "r.bin",
            query: "",
            headers: vec![("Range", range.to_string())],
        };
        let mut b = c.get(format!("{ep}/{B}/r.bin"));
        for (k, v) in common::sign_v1_headers(
            &req,
            preflight_emulator::DEFAULT_ACCESS_KEY_ID,
            preflight_emulator::DEFAULT_ACCESS_KEY_SECRET,
            &common::now_http(),
        ) {
            b = b.header(k, v);
        }
        let r = b.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{range}");
        assert_eq!(r.text().await.unwrap(), want, "{range}");
    }
    // Virtual-hosted: Host is <bucket>.<endpoint host>, the path is just the key.
    let port = emu.addr().port();
    let req = OssReq {
        method: "GET",
        bucket: B,
        raw_key: "r.bin",
        query: "",
        headers: vec![],
    };
    let mut b = c
        .get(format!("{ep}/r.bin"))
        .header("Host", format!("{B}.localhost:{port}"));
    for (k, v) in common::sign_v1_headers(
        &req,
        preflight_emulator::DEFAULT_ACCESS_KEY_ID,
        preflight_emulator::DEFAULT_ACCESS_KEY_SECRET,
        &common::now_http(),
    ) {
        b = b.header(k, v);
    }
    let r = b.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "0123456789");
    emu.shutdown().await;
}

#[tokio::test]
async fn state_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || {
        let mut c = preflight_emulator::Config {
            task_seconds: 0.0,
            ..preflight_emulator::Config::for_tests(dir.path().join("data"))
        };
        c.strict.v4_only = false; // signed with the V1 helpers of common
        c
    };
    let emu = preflight_emulator::start(cfg()).await.unwrap();
    let ep = emu.endpoint();
    assert_eq!(
        put(&ep, B, "keep/me.raw", vec![7u8; 4096]).await.status(),
        200
    );
    let id = initiate(&ep, "pending.bin").await;
    assert_eq!(
        upload_part(&ep, "pending.bin", &id, "3", vec![3u8; 1000])
            .await
            .status(),
        200
    );
    let (s, v) = common::rpc(
        &ep,
        "2014-05-26",
        "ImportImage",
        &[
            ("RegionId", "cn-hangzhou"),
            ("ImageName", "survivor"),
            ("DiskDeviceMapping.1.OSSBucket", B),
            ("DiskDeviceMapping.1.OSSObject", "keep/me.raw"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    emu.shutdown().await;

    let emu = preflight_emulator::start(cfg()).await.unwrap();
    let ep = emu.endpoint();
    let r = get(&ep, B, "keep/me.raw").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &[7u8; 4096][..]);
    let q = format!("uploadId={id}");
    let r = oss(
        &ep,
        OssReq {
            method: "GET",
            bucket: B,
            raw_key: "pending.bin",
            query: &q,
            headers: vec![],
        },
        Vec::new(),
    )
    .await;
    let t = r.text().await.unwrap();
    assert_eq!(xml_el(&t, "PartNumber"), "3", "{t}");
    let (s, v) = common::rpc(
        &ep,
        "2014-05-26",
        "DescribeImages",
        &[("RegionId", "cn-hangzhou"), ("ImageName", "survivor")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["TotalCount"], 1, "{v}");
    emu.shutdown().await;
}

#[tokio::test]
async fn list_parts_and_uploads_are_paged() {
    let (emu, _d) = common::start_with(|_| {}).await;
    let ep = emu.endpoint();
    let id = initiate(&ep, "paged.bin").await;
    for n in 1..=5 {
        assert_eq!(
            upload_part(&ep, "paged.bin", &id, &n.to_string(), vec![0u8; 10])
                .await
                .status(),
            200
        );
    }
    let mut marker = 0;
    let mut seen = Vec::new();
    loop {
        let q = format!("uploadId={id}&max-parts=2&part-number-marker={marker}&encoding-type=url");
        let r = oss(
            &ep,
            OssReq {
                method: "GET",
                bucket: B,
                raw_key: "paged.bin",
                query: &q,
                headers: vec![],
            },
            Vec::new(),
        )
        .await;
        let t = r.text().await.unwrap();
        for p in t.split("<PartNumber>").skip(1) {
            seen.push(p.split('<').next().unwrap().parse::<u32>().unwrap());
        }
        assert!(t.contains("<HashCrc64ecma>"), "{t}");
        if xml_el(&t, "IsTruncated") == "false" {
            break;
        }
        marker = xml_el(&t, "NextPartNumberMarker").parse().unwrap();
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    let q = format!("uploadId={id}&max-parts=0");
    let r = oss(
        &ep,
        OssReq {
            method: "GET",
            bucket: B,
            raw_key: "paged.bin",
            query: &q,
            headers: vec![],
        },
        Vec::new(),
    )
    .await;
    assert_eq!(xml_code(&r.text().await.unwrap()), "InvalidArgument");
    for k in ["u/a", "u/b", "u/c"] {
        initiate(&ep, k).await;
    }
    let r = oss(
        &ep,
        OssReq {
            method: "GET",
            bucket: B,
            raw_key: "",
            query: "uploads&max-uploads=2&prefix=u%2F",
            headers: vec![],
        },
        Vec::new(),
    )
    .await;
    let t = r.text().await.unwrap();
    assert_eq!(xml_el(&t, "IsTruncated"), "true", "{t}");
    let next_key = xml_el(&t, "NextKeyMarker");
    let next_id = xml_el(&t, "NextUploadIdMarker");
    let q = format!(
        "uploads&max-uploads=2&prefix=u%2F&key-marker={}&upload-id-marker={next_id}",
        next_key.replace('/', "%2F")
    );
    let r = oss(
        &ep,
        OssReq {
            method: "GET",
            bucket: B,
            raw_key: "",
            query: &q,
            headers: vec![],
        },
        Vec::new(),
    )
    .await;
    let t = r.text().await.unwrap();
    assert_eq!(xml_el(&t, "IsTruncated"), "false", "{t}");
    assert_eq!(xml_el(&t, "Key"), "u/c");
    // Abort twice.
    let q = format!("uploadId={id}");
    let r = oss(
        &ep,
        OssReq {
            method: "DELETE",
            bucket: B,
            raw_key: "paged.bin",
            query: &q,
            headers: vec![],
        },
        Vec::new(),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = oss(
        &ep,
        OssReq {
            method: "DELETE",
            bucket: B,
            raw_key: "paged.bin",
            query: &q,
            headers: vec![],
        },
        Vec::new(),
    )
    .await;
    assert_eq!(xml_code(&r.text().await.unwrap()), "NoSuchUpload");
    emu.shutdown().await;
}
