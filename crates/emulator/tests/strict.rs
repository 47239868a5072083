//! The emulator refuses what the real service refuses (issue 11): the V4 `Authorization`
//! header's documented EC family, V1 on V4-only buckets and accounts, regions (per-region
//! hosts and ports, a bucket of another region answered with `<Endpoint>`), ECS/RAM/STS only
//! on their own endpoints, per-bucket storage classes and RestoreObject, RAM denies per key,
//! slow uploads, and ClientToken reuse after a cancel.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine;
use common::{put, rpc, rpc_with, xml_code, xml_el, OssReq};
use preflight_emulator::oss::{sign_v4, SignInput};
use preflight_emulator::util::{parse_query, pct_decode_bytes, unix_now, Utc};
use preflight_emulator::{
    AccessKey, BucketConfig, Product, StorageClass, DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
};

const ECS: &str = "2014-05-26";
const RAM: &str = "2015-05-01";
const STS: &str = "2015-04-01";

/// A V4 request to send: method, bucket, raw key, raw query, extra headers, the Host to send,
/// the region to sign for, and the AdditionalHeaders field exactly as it should appear
/// (`None`: left out). The signature is always computed correctly for what is sent, so a
/// refusal is the emulator's rule, not a bad signature.
struct V4<'a> {
    method: &'a str,
    bucket: &'a str,
    raw_key: &'a str,
    query: &'a str,
    headers: Vec<(&'a str, String)>,
    host: Option<String>,
    region: &'a str,
    additional: Option<&'a str>,
}

impl<'a> V4<'a> {
    fn get(bucket: &'a str, query: &'a str) -> Self {
        V4 {
            method: "GET",
            bucket,
            raw_key: "",
            query,
            headers: Vec::new(),
            host: None,
            region: "cn-hangzhou",
            additional: None,
        }
    }
}

/// Sends `r` to `endpoint` path-style; `auth` rewrites the signed Authorization value.
async fn send_v4(endpoint: &str, r: V4<'_>, auth: impl FnOnce(String) -> String) -> Resp {
    let now = unix_now();
    let datetime = Utc::from_unix(now).basic();
    let date = &datetime[..8];
    let mut map = http::HeaderMap::new();
    let host = r
        .host
        .clone()
        .unwrap_or_else(|| endpoint.trim_start_matches("http://").to_string());
    let mut sent: Vec<(String, String)> = vec![
        ("x-oss-date".into(), datetime.clone()),
        ("x-oss-content-sha256".into(), "UNSIGNED-PAYLOAD".into()),
        ("host".into(), host.clone()),
    ];
    sent.extend(r.headers.iter().map(|(k, v)| (k.to_string(), v.clone())));
    for (k, v) in &sent {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    let query = parse_query(r.query, false).unwrap();
    let key = String::from_utf8_lossy(&pct_decode_bytes(r.raw_key)).into_owned();
    let input = SignInput {
        method: r.method,
        bucket: Some(r.bucket),
        key: (!r.raw_key.is_empty()).then_some(key.as_str()),
        query: &query,
        headers: &map,
    };
    let requested = sign_v4::split_additional(r.additional.unwrap_or(""));
    let additional = sign_v4::effective_additional(&input, &requested);
    let canon = sign_v4::canonical_request(&input, &additional, "UNSIGNED-PAYLOAD");
    let scope = sign_v4::scope(date, r.region, "oss");
    let sts = sign_v4::string_to_sign(&datetime, &scope, &canon);
    let sig = sign_v4::sign(DEFAULT_ACCESS_KEY_SECRET, date, r.region, "oss", &sts);
    let mut value = format!("OSS4-HMAC-SHA256 Credential={DEFAULT_ACCESS_KEY_ID}/{scope}");
    if let Some(a) = r.additional {
        value.push_str(&format!(",AdditionalHeaders={a}"));
    }
    value.push_str(&format!(",Signature={sig}"));
    sent.push(("authorization".into(), auth(value)));
    let virtual_hosted = host.starts_with(&format!("{}.", r.bucket));
    let mut path = request_path(r.bucket, r.raw_key, virtual_hosted);
    if !r.query.is_empty() {
        path.push('?');
        path.push_str(r.query);
    }
    raw_request(endpoint, r.method, &path, &sent, b"")
}

/// `/bucket/key` path style, `/key` virtual-hosted.
fn request_path(bucket: &str, raw_key: &str, virtual_hosted: bool) -> String {
    if virtual_hosted {
        format!("/{raw_key}")
    } else {
        format!("/{bucket}/{raw_key}")
    }
}

/// A response read off a raw socket: status, headers (lower-case names), body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The error document, from the body or (HEAD) the base64 `x-oss-err` header.
    fn error_xml(&self) -> String {
        if !self.body.is_empty() {
            return self.body.clone();
        }
        self.header("x-oss-err")
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
    fn ec(&self) -> (String, String) {
        (
            xml_el(&self.error_xml(), "EC"),
            self.header("x-oss-ec").unwrap_or("").to_string(),
        )
    }
}

/// One HTTP/1.1 request over a fresh TCP connection, headers exactly as given (so the Host
/// header can name any endpoint).
fn raw_request(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Resp {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    let mut has_host = false;
    for (k, v) in headers {
        has_host |= k.eq_ignore_ascii_case("host");
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_host {
        req.push_str(&format!("host: {addr}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    parse_response(&out)
}

fn parse_response(out: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

/// V1 `Authorization`/`Date` for `r`, sent with an explicit Host.
fn v1_raw(endpoint: &str, r: &OssReq<'_>, host: Option<&str>) -> Resp {
    let mut headers = common::sign_v1_headers(
        r,
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_ACCESS_KEY_SECRET,
        &common::now_http(),
    );
    if let Some(h) = host {
        headers.push(("host".into(), h.into()));
    }
    let virtual_hosted = host.is_some_and(|h| h.starts_with(&format!("{}.", r.bucket)));
    let mut path = request_path(r.bucket, r.raw_key, virtual_hosted);
    if !r.query.is_empty() {
        path.push('?');
        path.push_str(r.query);
    }
    raw_request(endpoint, r.method, &path, &headers, b"")
}

fn v1_get<'a>(bucket: &'a str, query: &'a str) -> OssReq<'a> {
    OssReq {
        method: "GET",
        bucket,
        raw_key: "",
        query,
        headers: vec![],
    }
}

/// Rewrites a correctly signed Authorization value into a malformed one.
type Rewrite = Box<dyn Fn(&str) -> String>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_authorization_header_is_parsed_as_documented() {
    let (emu, _d) = common::start_with(|c| c.strict.v4_additional_headers = true).await;
    let ep = emu.endpoint();
    let b = "ecs-preflight";
    let ok = send_v4(&ep, V4::get(b, "bucketInfo"), |a| a).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // AdditionalHeaders naming a header that is sent and signed is fine.
    let mut r = V4::get(b, "bucketInfo");
    r.additional = Some("host");
    let with_host = send_v4(&ep, r, |a| a).await;
    assert_eq!(with_host.status, 200, "{}", with_host.body);
    // The AdditionalHeaders family, each correctly signed otherwise.
    for (additional, ec) in [
        ("", "0002-00000209"),
        ("host;", "0002-00000210"),
        ("range", "0002-00000211"),
        ("x_custom", "0002-00000211"),
    ] {
        let mut r = V4::get(b, "bucketInfo");
        r.additional = Some(additional);
        let resp = send_v4(&ep, r, |a| a).await;
        assert_eq!(
            resp.status, 400,
            "AdditionalHeaders={additional}: {}",
            resp.body
        );
        assert_eq!(xml_code(&resp.body), "InvalidArgument");
        assert_eq!(
            resp.ec(),
            (ec.to_string(), ec.to_string()),
            "AdditionalHeaders={additional}"
        );
    }
    // Malformed headers: the EC documented for each.
    let cases: Vec<(&str, Rewrite)> = vec![
        (
            "0002-00000203",
            Box::new(|a: &str| a.replacen("Credential=", "Credential", 1)),
        ),
        (
            "0002-00000204",
            Box::new(|a: &str| format!("{a},UnknownKey=1")),
        ),
        (
            "0002-00000205",
            Box::new(|a: &str| {
                let sig = a.split(",Signature=").nth(1).unwrap();
                format!("OSS4-HMAC-SHA256 Signature={sig}")
            }),
        ),
        (
            "0002-00000207",
            Box::new(|a: &str| a.split(",Signature=").next().unwrap().to_string()),
        ),
        (
            "0002-00000208",
            Box::new(|a: &str| format!("{},Signature=", a.split(",Signature=").next().unwrap())),
        ),
        (
            "0002-00000213",
            Box::new(|a: &str| a.replace("/aliyun_v4_request", "/abc")),
        ),
        (
            "0002-00000227",
            Box::new(|a: &str| a.replace("/oss/aliyun_v4_request", "/s3/aliyun_v4_request")),
        ),
    ];
    for (ec, f) in cases {
        let resp = send_v4(&ep, V4::get(b, "bucketInfo"), |a| f(&a)).await;
        assert_eq!(resp.status, 400, "{ec}: {}", resp.body);
        assert_eq!(resp.ec(), (ec.to_string(), ec.to_string()), "{}", resp.body);
    }
    emu.shutdown().await;

    // The strict AdditionalHeaders rule is a switch: off, the empty field is tolerated
    // (what the default configuration does until the client stops sending it).
    let (emu, _d) = common::start_with(|c| c.strict.v4_additional_headers = false).await;
    let mut r = V4::get(b, "bucketInfo");
    r.additional = Some("");
    let lenient = send_v4(&emu.endpoint(), r, |a| a).await;
    assert_eq!(lenient.status, 200, "{}", lenient.body);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_is_refused_on_v4_only_buckets_and_accounts() {
    let (emu, _d) = common::start_with(|c| {
        c.buckets
            .push("locked@cn-hangzhou:v4only".parse::<BucketConfig>().unwrap());
    })
    .await;
    let ep = emu.endpoint();
    let refused = v1_raw(&ep, &v1_get("locked", "bucketInfo"), None);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(xml_code(&refused.body), "AccessDenied");
    assert_eq!(
        refused.ec(),
        ("0002-00000080".to_string(), "0002-00000080".to_string())
    );
    // HEAD: no body, the error in x-oss-err, the EC in x-oss-ec.
    let head = v1_raw(
        &ep,
        &OssReq {
            method: "HEAD",
            bucket: "locked",
            raw_key: "k",
            query: "",
            headers: vec![],
        },
        None,
    );
    assert_eq!(head.status, 403);
    assert_eq!(head.header("x-oss-ec"), Some("0002-00000080"));
    assert!(head.error_xml().contains("<Code>AccessDenied</Code>"));
    // A presigned V1 URL is V1 too.
    let presigned = raw_request(
        &ep,
        "GET",
        &format!(
            "/locked/k?OSSAccessKeyId={DEFAULT_ACCESS_KEY_ID}&Expires={}&Signature=x",
            unix_now() + 60
        ),
        &[],
        b"",
    );
    assert_eq!(presigned.ec().1, "0002-00000080");
    // The same V1 request on an ordinary bucket, and V4 on the locked one, pass.
    assert_eq!(
        v1_raw(&ep, &v1_get("ecs-preflight", "bucketInfo"), None).status,
        200
    );
    assert_eq!(
        send_v4(&ep, V4::get("locked", "bucketInfo"), |a| a)
            .await
            .status,
        200
    );
    emu.shutdown().await;

    // Account-wide, and by default (as for accounts created since 1 March 2025): every
    // bucket refuses V1 while V4 passes. Started without common::start_with, which opts out.
    let dir = tempfile::tempdir().unwrap();
    let emu = preflight_emulator::start(preflight_emulator::Config::for_tests(dir.path()))
        .await
        .unwrap();
    let r = v1_raw(
        &emu.endpoint(),
        &v1_get("ecs-preflight", "bucketInfo"),
        None,
    );
    assert_eq!((r.status, r.ec().0.as_str()), (403, "0002-00000080"));
    assert_eq!(xml_code(&r.body), "AccessDenied");
    assert_eq!(
        send_v4(
            &emu.endpoint(),
            V4::get("ecs-preflight", "bucketInfo"),
            |a| a
        )
        .await
        .status,
        200
    );
    emu.shutdown().await;
    // The switch still works on top of a V1 account.
    let (emu, _d) = common::start_with(|c| c.strict.v4_only = true).await;
    let r = v1_raw(
        &emu.endpoint(),
        &v1_get("ecs-preflight", "bucketInfo"),
        None,
    );
    assert_eq!((r.status, r.ec().0.as_str()), (403, "0002-00000080"));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_of_another_region_names_its_endpoint() {
    let (emu, _d) = common::start_with(|c| {
        c.buckets = vec![
            BucketConfig::new("hz-images", "cn-hangzhou"),
            BucketConfig::new("bj-images", "cn-beijing"),
        ];
        c.region_endpoints = true;
    })
    .await;
    let ep = emu.endpoint();
    let check_moved = |r: &Resp, what: &str| {
        assert_eq!(r.status, 403, "{what}: {}", r.body);
        let x = r.error_xml();
        assert_eq!(xml_code(&x), "AccessDenied", "{what}");
        assert_eq!(
            xml_el(&x, "Endpoint"),
            "oss-cn-beijing.aliyuncs.com",
            "{what}"
        );
        assert_eq!(xml_el(&x, "Bucket"), "bj-images", "{what}");
    };
    // Virtual-hosted on the Hangzhou endpoint, V4 and V1 alike.
    let mut r = V4::get("bj-images", "bucketInfo");
    r.host = Some("bj-images.oss-cn-hangzhou.aliyuncs.com".into());
    r.region = "cn-beijing";
    check_moved(&send_v4(&ep, r, |a| a).await, "V4 virtual-hosted");
    let v1 = v1_raw(
        &ep,
        &v1_get("bj-images", "bucketInfo"),
        Some("bj-images.oss-cn-hangzhou.aliyuncs.com"),
    );
    check_moved(&v1, "V1 virtual-hosted");
    // Path style on the Hangzhou endpoint.
    let v1 = v1_raw(
        &ep,
        &v1_get("bj-images", "bucketInfo"),
        Some("oss-cn-hangzhou-internal.aliyuncs.com"),
    );
    check_moved(&v1, "V1 path style, internal endpoint");
    // The right endpoint answers.
    let v1 = v1_raw(
        &ep,
        &v1_get("bj-images", "bucketInfo"),
        Some("bj-images.oss-cn-beijing.aliyuncs.com"),
    );
    assert_eq!(v1.status, 200, "{}", v1.body);
    // A bucket that does not exist, virtual-hosted on a regional host, is NoSuchBucket.
    let none = v1_raw(
        &ep,
        &v1_get("nosuch-b", ""),
        Some("nosuch-b.oss-cn-hangzhou.aliyuncs.com"),
    );
    assert_eq!(xml_code(&none.body), "NoSuchBucket");
    // --region-endpoints: the Hangzhou port is oss-cn-hangzhou.
    let hz = emu.region_endpoint("cn-hangzhou").expect("hangzhou port");
    let bj = emu.region_endpoint("cn-beijing").expect("beijing port");
    assert_ne!(hz, bj);
    check_moved(
        &v1_raw(&hz, &v1_get("bj-images", "bucketInfo"), None),
        "Hangzhou port",
    );
    let head = v1_raw(
        &hz,
        &OssReq {
            method: "HEAD",
            bucket: "bj-images",
            raw_key: "k",
            query: "",
            headers: vec![],
        },
        None,
    );
    check_moved(&head, "HEAD on the Hangzhou port (x-oss-err)");
    assert_eq!(
        v1_raw(&bj, &v1_get("bj-images", "bucketInfo"), None).status,
        200
    );
    assert_eq!(
        v1_raw(&hz, &v1_get("hz-images", "bucketInfo"), None).status,
        200
    );
    // The main port with a bare IP names no region: every bucket is served there.
    assert_eq!(
        v1_raw(&ep, &v1_get("bj-images", "bucketInfo"), None).status,
        200
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_ram_and_sts_answer_only_on_their_own_endpoints() {
    let (emu, _d) = common::start_with(|c| {
        c.service_endpoints = true;
        c.strict.service_endpoints = true;
    })
    .await;
    let ep = emu.endpoint();
    let ecs = emu.service_endpoint(Product::Ecs).unwrap();
    let ram = emu.service_endpoint(Product::Ram).unwrap();
    let sts = emu.service_endpoint(Product::Sts).unwrap();
    let (s, v) = rpc(&ecs, ECS, "DescribeRegions", &[]).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = rpc(
        &ram,
        RAM,
        "GetRole",
        &[("RoleName", "AliyunECSImageImportDefaultRole")],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Another service's call on a service endpoint.
    let (s, v) = rpc(
        &ecs,
        RAM,
        "GetRole",
        &[("RoleName", "AliyunECSImageImportDefaultRole")],
    )
    .await;
    assert_eq!((s, v["Code"].as_str()), (400, Some("InvalidVersion")));
    let (s, v) = rpc(&ram, ECS, "DescribeRegions", &[]).await;
    assert_eq!((s, v["Code"].as_str()), (400, Some("InvalidVersion")));
    let (s, v) = rpc(&sts, ECS, "DescribeRegions", &[]).await;
    assert_eq!((s, v["Code"].as_str()), (400, Some("InvalidVersion")));
    // STS AssumeRole on the STS endpoint issues a temporary key the other services accept.
    let arn = "acs:ram::1234567890123456:role/ecs-preflight-uploader";
    let (s, v) = rpc(
        &ecs,
        STS,
        "AssumeRole",
        &[("RoleArn", arn), ("RoleSessionName", "t1")],
    )
    .await;
    assert_eq!((s, v["Code"].as_str()), (400, Some("InvalidVersion")));
    let (s, v) = rpc(
        &sts,
        STS,
        "AssumeRole",
        &[
            ("RoleArn", arn),
            ("RoleSessionName", "t1"),
            ("DurationSeconds", "900"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let c = &v["Credentials"];
    let (id, secret, token) = (
        c["AccessKeyId"].as_str().unwrap(),
        c["AccessKeySecret"].as_str().unwrap(),
        c["SecurityToken"].as_str().unwrap(),
    );
    assert!(id.starts_with("STS."), "{v}");
    assert!(c["Expiration"].as_str().unwrap().ends_with('Z'));
    let with_token = common::oss_as(
        &ep,
        OssReq {
            method: "GET",
            bucket: "ecs-preflight",
            raw_key: "",
            query: "bucketInfo",
            headers: vec![("x-oss-security-token", token.to_string())],
        },
        Vec::new(),
        id,
        secret,
    )
    .await;
    assert_eq!(with_token.status(), 200);
    let without = common::oss_as(
        &ep,
        v1_get("ecs-preflight", "bucketInfo"),
        Vec::new(),
        id,
        secret,
    )
    .await;
    assert_eq!(without.status(), 403);
    let (s, v) = rpc(
        &sts,
        STS,
        "AssumeRole",
        &[
            ("RoleArn", "acs:ram::999:role/x"),
            ("RoleSessionName", "t1"),
        ],
    )
    .await;
    assert_eq!(
        (s, v["Code"].as_str()),
        (400, Some("InvalidParameter")),
        "{v}"
    );
    let (s, v) = rpc(
        &sts,
        STS,
        "AssumeRole",
        &[
            ("RoleArn", arn),
            ("RoleSessionName", "t1"),
            ("DurationSeconds", "60"),
        ],
    )
    .await;
    assert_eq!(
        (s, v["Code"].as_str()),
        (400, Some("InvalidParameter")),
        "{v}"
    );
    // An RPC call that reaches the OSS endpoint is answered by OSS, which refuses it.
    let url = format!("{ep}/?Action=DescribeRegions&Version={ECS}&Format=JSON");
    let resp = reqwest::get(&url).await.unwrap();
    assert_ne!(resp.status().as_u16(), 200);
    assert!(resp.headers().contains_key("x-oss-request-id"));
    let body = resp.text().await.unwrap();
    assert!(body.contains("<Error>"), "{body}");
    let (s, v) = rpc(&ep, ECS, "DescribeRegions", &[]).await;
    assert_ne!(s, 200, "{v}");
    assert!(v.as_str().is_some_and(|t| t.contains("<Error>")), "{v}");
    // Host-based routing on the main port: ecs.<region>.aliyuncs.com is ECS.
    let by_host = reqwest::Client::new()
        .get(format!("{ep}/?Action=DescribeRegions"))
        .header("host", "ecs.cn-hangzhou.aliyuncs.com")
        .send()
        .await
        .unwrap();
    assert!(by_host.headers().contains_key("x-acs-request-id"));
    assert!(!by_host.headers().contains_key("x-oss-request-id"));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_class_per_bucket_and_restore() {
    let (emu, _d) = common::start_with(|c| {
        c.buckets.push(
            "cold-b@cn-hangzhou:archive"
                .parse::<BucketConfig>()
                .unwrap(),
        );
        c.restore_seconds = 1.0;
    })
    .await;
    let ep = emu.endpoint();
    let info = v1_raw(&ep, &v1_get("cold-b", "bucketInfo"), None);
    assert_eq!(xml_el(&info.body, "StorageClass"), "Archive");
    // The default bucket stays Standard.
    let info = v1_raw(&ep, &v1_get("ecs-preflight", "bucketInfo"), None);
    assert_eq!(xml_el(&info.body, "StorageClass"), "Standard");
    assert_eq!(
        put(&ep, "cold-b", "a.raw", b"cold".to_vec()).await.status(),
        200
    );
    let head = |key: &'static str| {
        let ep = ep.clone();
        move || {
            v1_raw(
                &ep,
                &OssReq {
                    method: "HEAD",
                    bucket: "cold-b",
                    raw_key: key,
                    query: "",
                    headers: vec![],
                },
                None,
            )
        }
    };
    let h = head("a.raw")();
    assert_eq!(h.header("x-oss-storage-class"), Some("Archive"));
    assert_eq!(h.header("x-oss-restore"), None);
    let g = common::get(&ep, "cold-b", "a.raw").await;
    assert_eq!(g.status(), 403);
    // x-oss-storage-class on PutObject and InitiateMultipartUpload wins over the bucket's.
    let std_hdr = || vec![("x-oss-storage-class", "Standard".to_string())];
    let r = common::oss(
        &ep,
        OssReq {
            method: "PUT",
            bucket: "cold-b",
            raw_key: "warm.raw",
            query: "",
            headers: std_hdr(),
        },
        b"warm".to_vec(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        head("warm.raw")().header("x-oss-storage-class"),
        Some("Standard")
    );
    let init = common::oss(
        &ep,
        OssReq {
            method: "POST",
            bucket: "cold-b",
            raw_key: "mp.raw",
            query: "uploads",
            headers: std_hdr(),
        },
        Vec::new(),
    )
    .await
    .text()
    .await
    .unwrap();
    let id = xml_el(&init, "UploadId");
    let parts = common::oss(
        &ep,
        OssReq {
            method: "GET",
            bucket: "cold-b",
            raw_key: "mp.raw",
            query: &format!("uploadId={id}"),
            headers: vec![],
        },
        Vec::new(),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(xml_el(&parts, "StorageClass"), "Standard");
    // RestoreObject: 202, then 409 while restoring, then readable.
    let restore = || {
        common::oss(
            &ep,
            OssReq {
                method: "POST",
                bucket: "cold-b",
                raw_key: "a.raw",
                query: "restore",
                headers: vec![],
            },
            Vec::new(),
        )
    };
    assert_eq!(restore().await.status(), 202);
    assert_eq!(
        head("a.raw")().header("x-oss-restore"),
        Some("ongoing-request=\"true\"")
    );
    let again = restore().await;
    assert_eq!(again.status(), 409);
    assert_eq!(
        xml_code(&again.text().await.unwrap()),
        "RestoreAlreadyInProgress"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let h = head("a.raw")();
    let restored = h.header("x-oss-restore").unwrap_or("").to_string();
    assert!(
        restored.starts_with("ongoing-request=\"false\", expiry-date=\"")
            && restored.ends_with(" GMT\""),
        "{restored}"
    );
    assert_eq!(common::get(&ep, "cold-b", "a.raw").await.status(), 200);
    assert_eq!(restore().await.status(), 200);
    let std_restore = common::oss(
        &ep,
        OssReq {
            method: "POST",
            bucket: "cold-b",
            raw_key: "warm.raw",
            query: "restore",
            headers: vec![],
        },
        Vec::new(),
    )
    .await;
    assert_eq!(std_restore.status(), 400);
    // Emulator-wide default too.
    assert_eq!(emu.config().storage_class, StorageClass::Standard);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_denied_actions_is_refused_as_ram_refuses() {
    let limited = "LTAI5tLimitedKey";
    let (emu, _d) = common::start_with(|c| {
        c.access_keys.push(AccessKey {
            id: limited.into(),
            secret: DEFAULT_ACCESS_KEY_SECRET.into(),
            security_token: None,
            deny: vec![
                "oss:GetBucketEncryption".into(),
                "oss:GetObject".into(),
                "ecs:DescribeImages".into(),
                "ram:GetRole".into(),
            ],
        });
    })
    .await;
    let ep = emu.endpoint();
    let as_limited = |r: OssReq<'static>| {
        let ep = ep.clone();
        async move { common::oss_as(&ep, r, Vec::new(), limited, DEFAULT_ACCESS_KEY_SECRET).await }
    };
    let enc = as_limited(v1_get("ecs-preflight", "encryption")).await;
    assert_eq!(enc.status(), 403);
    assert_eq!(
        enc.headers().get("x-oss-ec").unwrap().to_str().unwrap(),
        "0003-00000201"
    );
    let body = enc.text().await.unwrap();
    assert_eq!(xml_code(&body), "AccessDenied");
    assert_eq!(xml_el(&body, "AuthAction"), "oss:GetBucketEncryption");
    assert_eq!(xml_el(&body, "NoPermissionType"), "ExplicitDeny");
    // HeadObject needs oss:GetObject.
    assert_eq!(
        put(&ep, "ecs-preflight", "x.raw", b"x".to_vec())
            .await
            .status(),
        200
    );
    let head = as_limited(OssReq {
        method: "HEAD",
        bucket: "ecs-preflight",
        raw_key: "x.raw",
        query: "",
        headers: vec![],
    })
    .await;
    assert_eq!(head.status(), 403);
    assert_eq!(head.headers()["x-oss-ec"], "0003-00000201");
    // What is not denied works; the default key is not limited.
    assert_eq!(
        as_limited(v1_get("ecs-preflight", "bucketInfo"))
            .await
            .status(),
        200
    );
    assert_eq!(
        common::oss(&ep, v1_get("ecs-preflight", "encryption"), Vec::new())
            .await
            .status(),
        404
    );
    let as_key = |p: &mut Vec<(String, String)>| {
        for (k, v) in p.iter_mut() {
            if k == "AccessKeyId" {
                *v = limited.into();
            }
        }
    };
    let (s, v) = rpc_with(
        &ep,
        ECS,
        "DescribeImages",
        &[("RegionId", "cn-hangzhou")],
        as_key,
    )
    .await;
    assert_eq!((s, v["Code"].as_str()), (403, Some("Forbidden.RAM")), "{v}");
    let (s, v) = rpc_with(&ep, ECS, "DescribeRegions", &[], as_key).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = rpc_with(
        &ep,
        RAM,
        "GetRole",
        &[("RoleName", "AliyunECSImageImportDefaultRole")],
        as_key,
    )
    .await;
    assert_eq!((s, v["Code"].as_str()), (403, Some("NoPermission")), "{v}");
    emu.shutdown().await;
}

/// A 16 KiB/s upload with a pause longer than a second between chunks is received whole:
/// the emulator has no body timeout of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_is_not_dropped() {
    let (emu, _d) = common::start_with(|_| {}).await;
    let ep = emu.endpoint();
    let body: Vec<u8> = (0..80 * 1024u32).map(|i| (i % 251) as u8).collect();
    let r = OssReq {
        method: "PUT",
        bucket: "ecs-preflight",
        raw_key: "slow.raw",
        query: "",
        headers: vec![],
    };
    let headers = common::sign_v1_headers(
        &r,
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_ACCESS_KEY_SECRET,
        &common::now_http(),
    );
    let addr = ep.trim_start_matches("http://").to_string();
    let sent = body.clone();
    let resp = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let mut head = format!("PUT /ecs-preflight/slow.raw HTTP/1.1\r\nhost: {addr}\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            sent.len()
        ));
        s.write_all(head.as_bytes()).unwrap();
        // 1 KiB every 62.5 ms = 16 KiB/s, with a 2.5 s stall after the first 16 KiB.
        for (i, chunk) in sent.chunks(1024).enumerate() {
            s.write_all(chunk).unwrap();
            std::thread::sleep(if i == 15 {
                Duration::from_millis(2500)
            } else {
                Duration::from_micros(62_500)
            });
        }
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        parse_response(&out)
    })
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body);
    let got = common::get(&ep, "ecs-preflight", "slow.raw").await;
    assert_eq!(got.bytes().await.unwrap().to_vec(), body);
    emu.shutdown().await;
}

/// ECS idempotency: the same ClientToken with the same parameters returns the first task
/// even after it was cancelled (a client must change the token to try again); with other
/// parameters it is IdempotentParameterMismatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_keeps_returning_its_cancelled_task() {
    let (emu, _d) = common::start_with(|c| c.task_seconds = 30.0).await;
    let ep = emu.endpoint();
    let mut img = vec![0u8; 1024 * 1024];
    img[0] = 1;
    assert_eq!(
        put(&ep, "ecs-preflight", "img/sys.raw", img).await.status(),
        200
    );
    let params = |size: &'static str| {
        vec![
            ("RegionId", "cn-hangzhou"),
            ("ImageName", "token-test"),
            ("DiskDeviceMapping.1.OSSBucket", "ecs-preflight"),
            ("DiskDeviceMapping.1.OSSObject", "img/sys.raw"),
            ("DiskDeviceMapping.1.DiskImageSize", size),
            ("ClientToken", "tok-cancel-1"),
        ]
    };
    let (s, first) = rpc(&ep, ECS, "ImportImage", &params("5")).await;
    assert_eq!(s, 200, "{first}");
    let task = first["TaskId"].as_str().unwrap().to_string();
    let (s, v) = rpc(
        &ep,
        ECS,
        "CancelTask",
        &[("RegionId", "cn-hangzhou"), ("TaskId", &task)],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, again) = rpc(&ep, ECS, "ImportImage", &params("5")).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["TaskId"], first["TaskId"]);
    let (_, t) = rpc(
        &ep,
        ECS,
        "DescribeTaskAttribute",
        &[("RegionId", "cn-hangzhou"), ("TaskId", &task)],
    )
    .await;
    assert_eq!(t["TaskStatus"], "Cancelled", "{t}");
    let (s, v) = rpc(&ep, ECS, "ImportImage", &params("6")).await;
    assert_eq!(
        (s, v["Code"].as_str()),
        (400, Some("IdempotentParameterMismatch"))
    );
    emu.shutdown().await;
}
