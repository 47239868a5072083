//! Integrity without `Content-MD5`: a recording proxy between the client and the emulator
//! shows which headers each UploadPart carried, and damages part bodies on the way, the way a
//! broken middlebox would. Without `--content-md5` no `Content-MD5` is sent and the CRC-64
//! check still catches the damage; with it, the emulator refuses the damaged part itself.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use preflight_oss::upload::upload_file;
use preflight_oss::ErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    content_md5: bool,
}

#[derive(Clone, Default)]
struct Proxy {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// PutObject and UploadPart bodies still to damage.
    damage: Arc<Mutex<u32>>,
}

impl Proxy {
    async fn start(self, upstream: String) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.unwrap();
                tokio::spawn(self.clone().relay(client, server));
            }
        });
        format!("http://{addr}")
    }

    /// Copies answers back as they are; parses requests to flip one byte of the body of
    /// each PutObject or UploadPart while `damage` lasts.
    async fn relay(self, client: TcpStream, server: TcpStream) {
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
        });
        let mut buf = Vec::new();
        loop {
            // Headers.
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let mut chunk = [0u8; 8192];
                match cr.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let lower = head.to_ascii_lowercase();
            let len: usize = lower
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            let request_line = head.lines().next().unwrap_or_default().to_string();
            self.seen.lock().unwrap().push(Seen {
                request_line: request_line.clone(),
                content_md5: lower.lines().any(|l| l.starts_with("content-md5:")),
            });
            while buf.len() < end + len {
                let mut chunk = [0u8; 65536];
                match cr.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            if request_line.starts_with("PUT ") && len > 100 {
                let mut left = self.damage.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    buf[end + 100] ^= 0xFF;
                }
            }
            if sw.write_all(&buf[..end + len]).await.is_err() {
                return;
            }
            buf.drain(..end + len);
        }
    }

    fn parts(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.request_line.contains("partNumber="))
            .cloned()
            .collect()
    }
}

fn through(emu: &preflight_emulator::Emulator, proxy: &str) -> preflight_oss::Client {
    client_with(emu, "images", preflight_oss::SignatureVersion::V4, |cfg| {
        cfg.endpoint = proxy.to_string();
        cfg.path_style = Some(true);
        cfg.retry.max_attempts = 4;
    })
}

#[tokio::test]
async fn without_content_md5_no_header_is_sent_and_crc_catches_damage() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let upstream = emu.endpoint().trim_start_matches("http://").to_string();
    let f = dir.path().join("disk.raw");
    write_file(&f, 3 * MIB, 5);

    // One damaged body: the part's CRC-64 comes back different, it is sent again, and the
    // object is the file.
    let proxy = Proxy::default();
    *proxy.damage.lock().unwrap() = 1;
    let c = through(&emu, &proxy.clone().start(upstream.clone()).await);
    let (sink, _) = recorder();
    let out = upload_file(&c, &f, "once.raw", &options(dir.path(), MIB, 1), sink)
        .await
        .unwrap();
    assert_eq!(out.crc64, crc_of_file(&f));
    let parts = proxy.parts();
    assert_eq!(parts.len(), 4, "3 parts and one re-send: {parts:?}");
    assert!(parts.iter().all(|p| !p.content_md5), "{parts:?}");
    assert_eq!(
        c.get_object("once.raw").await.unwrap().as_ref(),
        std::fs::read(&f).unwrap().as_slice()
    );

    // Every body damaged: the upload fails on the CRC-64, it never completes.
    let proxy = Proxy::default();
    *proxy.damage.lock().unwrap() = u32::MAX;
    let c = through(&emu, &proxy.clone().start(upstream).await);
    let (sink, _) = recorder();
    let err = upload_file(&c, &f, "never.raw", &options(dir.path(), MIB, 1), sink)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(err.to_string().contains("CRC-64 mismatch"), "{err}");
    assert_eq!(emu.counters().requests_for("CompleteMultipartUpload"), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn with_content_md5_the_emulator_refuses_a_damaged_part() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let upstream = emu.endpoint().trim_start_matches("http://").to_string();
    let f = dir.path().join("disk.raw");
    write_file(&f, 3 * MIB, 6);
    let proxy = Proxy::default();
    *proxy.damage.lock().unwrap() = 1;
    let c = through(&emu, &proxy.clone().start(upstream).await);
    let mut opts = options(dir.path(), MIB, 1);
    opts.content_md5 = true;
    let (sink, _) = recorder();
    let out = upload_file(&c, &f, "md5.raw", &opts, sink).await.unwrap();
    assert_eq!(out.crc64, crc_of_file(&f));
    let parts = proxy.parts();
    assert_eq!(parts.len(), 4, "{parts:?}");
    assert!(parts.iter().all(|p| p.content_md5), "{parts:?}");
    // The damaged body was refused by its MD5 before being stored.
    let n = emu.counters();
    assert_eq!(n.errors_for("InvalidDigest"), 1, "{:?}", n.errors);
    emu.shutdown().await;
}

/// A single PUT with `Content-MD5` (sent from memory, read once) carries the header, and a
/// damaged body is refused by the emulator and sent again from the same bytes.
#[tokio::test]
async fn with_content_md5_a_damaged_single_put_is_refused_and_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let upstream = emu.endpoint().trim_start_matches("http://").to_string();
    let f = dir.path().join("disk.raw");
    write_file(&f, 3 * MIB, 7);
    let proxy = Proxy::default();
    *proxy.damage.lock().unwrap() = 1;
    let c = through(&emu, &proxy.clone().start(upstream).await);
    let mut opts = options(dir.path(), 2 * MIB, 2);
    opts.multipart_threshold = 100 * MIB;
    opts.content_md5 = true;
    let (sink, _) = recorder();
    let out = upload_file(&c, &f, "single-md5.raw", &opts, sink)
        .await
        .unwrap();
    assert_eq!((out.parts, out.crc64), (1, crc_of_file(&f)));
    let puts: Vec<Seen> = proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.request_line.starts_with("PUT "))
        .cloned()
        .collect();
    assert_eq!(puts.len(), 2, "one refused, one stored: {puts:?}");
    assert!(
        puts.iter()
            .all(|p| p.content_md5 && !p.request_line.contains("partNumber=")),
        "{puts:?}"
    );
    let n = emu.counters();
    assert_eq!(n.errors_for("InvalidDigest"), 1, "{:?}", n.errors);
    assert_eq!(
        c.get_object("single-md5.raw").await.unwrap().as_ref(),
        std::fs::read(&f).unwrap().as_slice()
    );
    emu.shutdown().await;
}
