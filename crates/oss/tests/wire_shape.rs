//! What the client puts on the wire, read back by a loopback server that shares no code with
//! it: the exact shape of the `Authorization` header (OSS refuses an empty `AdditionalHeaders=`
//! with EC 0002-00000209) and the `User-Agent` of every request.

use std::sync::{Arc, Mutex};

use preflight_aliyun::{CredentialProvider, Credentials, RetryConfig};
use preflight_oss::{Client, ClientConfig, SignatureVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BUCKET_INFO: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BucketInfo><Bucket>\
<CreationDate>2013-07-31T10:56:21.000Z</CreationDate>\
<ExtranetEndpoint>oss-cn-hangzhou.aliyuncs.com</ExtranetEndpoint>\
<IntranetEndpoint>oss-cn-hangzhou-internal.aliyuncs.com</IntranetEndpoint>\
<Location>oss-cn-hangzhou</Location><StorageClass>Standard</StorageClass>\
<Name>images</Name></Bucket></BucketInfo>";

/// Request heads (lower-cased header names) seen by the server.
type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// Answers every request with a 200 GetBucketInfo document and records its headers.
async fn recorder() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_string();
                let headers = text
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                log.lock().unwrap().push(headers);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nx-oss-request-id: R1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BUCKET_INFO}",
                    BUCKET_INFO.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    (endpoint, seen)
}

fn client(endpoint: &str, version: SignatureVersion, token: Option<&str>) -> Client {
    let mut c = Credentials::new("LTAI5tExampleId", "example-secret");
    if let Some(t) = token {
        c = c.with_security_token(t);
    }
    let mut cfg = ClientConfig::new("cn-hangzhou", "images").with_endpoint(endpoint);
    cfg.signature = version;
    cfg.retry = RetryConfig {
        max_attempts: 1,
        ..RetryConfig::default()
    };
    Client::new(cfg, Arc::new(CredentialProvider::fixed(c))).unwrap()
}

fn get<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// `OSS4-HMAC-SHA256 Credential=<id>/<yyyymmdd>/cn-hangzhou/oss/aliyun_v4_request,Signature=<64 hex>`
/// and nothing else: no `AdditionalHeaders` field at all when no extra header is signed.
fn assert_v4_shape(auth: &str) {
    let rest = auth
        .strip_prefix("OSS4-HMAC-SHA256 Credential=LTAI5tExampleId/")
        .unwrap_or_else(|| panic!("{auth}"));
    let (day, rest) = rest.split_at(8);
    assert!(day.bytes().all(|b| b.is_ascii_digit()), "{auth}");
    let sig = rest
        .strip_prefix("/cn-hangzhou/oss/aliyun_v4_request,Signature=")
        .unwrap_or_else(|| panic!("extra or missing fields: {auth}"));
    assert_eq!(sig.len(), 64, "{auth}");
    assert!(
        sig.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{auth}"
    );
}

#[tokio::test]
async fn v4_header_has_no_empty_additional_headers() {
    let (endpoint, seen) = recorder().await;
    for token in [None, Some("CAIS-token")] {
        let info = client(&endpoint, SignatureVersion::V4, token)
            .get_bucket_info()
            .await
            .unwrap();
        assert_eq!(info.region, "cn-hangzhou");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for h in seen.iter() {
        assert_v4_shape(get(h, "authorization"));
        assert_eq!(get(h, "x-oss-content-sha256"), "UNSIGNED-PAYLOAD");
        assert_eq!(get(h, "x-oss-date").len(), 16);
        assert!(get(h, "date").ends_with(" GMT"));
    }
    assert_eq!(get(&seen[1], "x-oss-security-token"), "CAIS-token");
}

#[tokio::test]
async fn v1_header_shape() {
    let (endpoint, seen) = recorder().await;
    client(&endpoint, SignatureVersion::V1, None)
        .get_bucket_info()
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    let auth = get(&seen[0], "authorization");
    let sig = auth
        .strip_prefix("OSS LTAI5tExampleId:")
        .unwrap_or_else(|| panic!("{auth}"));
    assert_eq!(sig.len(), 28, "{auth}");
    assert!(get(&seen[0], "x-oss-date").is_empty());
}
#[tokio::test]
async fn every_request_names_the_tool_in_user_agent() {
    let (endpoint, seen) = recorder().await;
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        client(&endpoint, version, None)
            .get_bucket_info()
            .await
            .unwrap();
    }
    let want = format!("ecs-preflight/{}", env!("CARGO_PKG_VERSION"));
    for h in seen.lock().unwrap().iter() {
        assert_eq!(get(h, "user-agent"), want);
    }
}
