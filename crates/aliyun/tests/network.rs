//! The shared HTTP client in a real network's clothes: proxies from the environment (never
//! for the metadata service) and TLS roots from `SSL_CERT_FILE`. One test function: the
//! environment is process-wide, so the steps run in order.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use preflight_aliyun::http::{client_builder, user_agent};
use preflight_aliyun::transport::ReqwestSend;
use reqsign_core::HttpSend;

/// A "proxy" that answers 200 to everything and records each request line and User-Agent.
fn proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && sock.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            let text = String::from_utf8_lossy(&head).to_string();
            let line = text.lines().next().unwrap_or_default().to_string();
            let ua = text
                .lines()
                .find_map(|l| l.strip_prefix("user-agent: "))
                .unwrap_or_default()
                .to_string();
            log.lock().unwrap().push(format!("{line} | {ua}"));
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (url, seen)
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (run fixtures/install-deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl s_server -www` with a certificate for 127.0.0.1 issued by a fresh root
/// (`dir/root.pem`).
#[rustfmt::skip]
fn tls_server(dir: &Path) -> (Child, u16) {
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    openssl(&[
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=ecs-preflight test root",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign",
        "-keyout", &p("root.key"), "-out", &p("root.pem"),
    ]);
    openssl(&[
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", &p("key.pem"), "-out", &p("leaf.csr"),
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509", "-req", "-in", &p("leaf.csr"), "-CA", &p("root.pem"), "-CAkey", &p("root.key"),
        "-CAcreateserial", "-days", "2", "-extfile", &p("leaf.ext"), "-out", &p("cert.pem"),
    ]);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args(["s_server", "-www", "-quiet", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

#[tokio::test]
async fn proxies_metadata_and_tls_roots() {
    let (proxy_url, seen) = proxy();
    std::env::set_var("HTTP_PROXY", &proxy_url);
    std::env::set_var("NO_PROXY", "direct.invalid");

    // Through the proxy, with our User-Agent.
    let c = client_builder().build().unwrap();
    let r = c
        .get("http://oss-cn-hangzhou.example.invalid/bucket/key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // NO_PROXY: straight to a host that does not resolve, so it fails without the proxy.
    assert!(c.get("http://direct.invalid/x").send().await.is_err());
    // The metadata service: never through the proxy (whether anything answers there
    // directly depends on the machine; the proxy's log below must not show it).
    let send = ReqwestSend::new();
    let req = http::Request::get("http://100.100.100.200/latest/meta-data/region-id")
        .body(Bytes::new())
        .unwrap();
    let _ = send.http_send(req).await;
    // STS and the rest go through it.
    let req = http::Request::get("http://sts.example.invalid/?Action=AssumeRole")
        .body(Bytes::new())
        .unwrap();
    assert_eq!(send.http_send(req).await.unwrap().status(), 200);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            format!(
                "GET http://oss-cn-hangzhou.example.invalid/bucket/key HTTP/1.1 | {}",
                user_agent()
            ),
            format!(
                "GET http://sts.example.invalid/?Action=AssumeRole HTTP/1.1 | {}",
                user_agent()
            ),
        ]
    );
    std::env::remove_var("HTTP_PROXY");
    std::env::remove_var("NO_PROXY");

    // TLS: a server whose root is only in SSL_CERT_FILE is refused without it, trusted with it.
    let dir = tempfile::tempdir().unwrap();
    let (mut server, port) = tls_server(dir.path());
    let url = format!("https://127.0.0.1:{port}/");
    std::env::remove_var("SSL_CERT_FILE");
    let refused = client_builder().build().unwrap().get(&url).send().await;
    std::env::set_var("SSL_CERT_FILE", dir.path().join("root.pem"));
    let trusted = client_builder().build().unwrap().get(&url).send().await;
    std::env::remove_var("SSL_CERT_FILE");
    let _ = server.kill();
    let _ = server.wait();
    assert!(refused.is_err(), "an unknown root was trusted");
    assert_eq!(trusted.unwrap().status(), 200);
}
