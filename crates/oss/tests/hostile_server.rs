//! The client against a raw TCP server that misbehaves on purpose: an XML answer cut off
//! mid-body is retried, an endless answer is refused at the size limit, garbage is an error.
//! No panic, no unbounded memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use preflight_aliyun::{CredentialProvider, Credentials, RetryConfig};
use preflight_oss::{Client, ClientConfig, ErrorKind, SignatureVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const INITIATE: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult>\
<Bucket>images</Bucket><Key>disk.raw</Key><UploadId>0004B9894A22E5B1888A1E29F8236E2D</UploadId>\
</InitiateMultipartUploadResult>";

/// What the server does with the n-th request (0-based).
#[derive(Clone, Copy)]
enum Answer {
    /// A 200 whose body stops halfway, then the connection closes.
    CutOff,
    /// The whole InitiateMultipartUpload answer.
    Whole,
    /// A 200 that streams `len` bytes of `<`.
    Endless(usize),
    /// A 200 with a body that is not XML.
    Garbage,
}

/// Serves `script` in order (the last entry repeats); returns the endpoint and a request count.
async fn server(script: Vec<Answer>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let answer = script[n.min(script.len() - 1)];
            tokio::spawn(async move {
                // Read the request head (these requests have no body to speak of).
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                let ok = |len: usize| {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                    )
                };
                match answer {
                    Answer::CutOff => {
                        let _ = sock.write_all(ok(INITIATE.len()).as_bytes()).await;
                        let _ = sock
                            .write_all(&INITIATE.as_bytes()[..INITIATE.len() / 2])
                            .await;
                    }
                    Answer::Whole => {
                        let _ = sock.write_all(ok(INITIATE.len()).as_bytes()).await;
                        let _ = sock.write_all(INITIATE.as_bytes()).await;
                    }
                    Answer::Endless(len) => {
                        let _ = sock.write_all(ok(len).as_bytes()).await;
                        let chunk = vec![b'<'; 64 * 1024];
                        let mut left = len;
                        while left > 0 {
                            let k = left.min(chunk.len());
                            if sock.write_all(&chunk[..k]).await.is_err() {
                                return;
                            }
                            left -= k;
                        }
                    }
                    Answer::Garbage => {
                        let body = "\u{0}\u{1}not xml at all";
                        let _ = sock.write_all(ok(body.len()).as_bytes()).await;
                        let _ = sock.write_all(body.as_bytes()).await;
                    }
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    (endpoint, count)
}

fn client(endpoint: &str) -> Client {
    let creds = Arc::new(CredentialProvider::fixed(Credentials::new("id", "secret")));
    let mut cfg = ClientConfig::new("cn-hangzhou", "images").with_endpoint(endpoint);
    cfg.signature = SignatureVersion::V1;
    cfg.retry = RetryConfig {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    Client::new(cfg, creds).unwrap()
}

#[tokio::test]
async fn an_answer_cut_off_mid_body_is_retried() {
    let (endpoint, count) = server(vec![Answer::CutOff, Answer::CutOff, Answer::Whole]).await;
    let id = client(&endpoint)
        .initiate_multipart_upload("disk.raw")
        .await
        .unwrap();
    assert_eq!(id, "0004B9894A22E5B1888A1E29F8236E2D");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn answers_cut_off_every_time_end_in_a_network_error() {
    let (endpoint, count) = server(vec![Answer::CutOff]).await;
    let err = client(&endpoint)
        .list_parts("disk.raw", "U")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 4, "every attempt used");
}

#[tokio::test]
async fn an_endless_answer_is_refused_at_the_limit() {
    let (endpoint, count) = server(vec![Answer::Endless(64 * 1024 * 1024)]).await;
    let err = client(&endpoint).get_bucket_info().await.unwrap_err();
    assert!(err.to_string().contains("longer than"), "{err}");
    // Each attempt stops reading at the limit; the attempts are bounded too.
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn garbage_is_an_error_not_a_panic() {
    let (endpoint, _) = server(vec![Answer::Garbage]).await;
    let c = client(&endpoint);
    let err = c
        .complete_multipart_upload("disk.raw", "U", &[(1, "\"e\"".into())])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unexpected response"), "{err}");
    assert!(c.initiate_multipart_upload("disk.raw").await.is_err());
}
