//! A multipart object is kept as its part files (CompleteMultipartUpload copies no byte): GET,
//! HEAD, ranges across part boundaries, ETag and CRC-64, ImportImage's reads, a restart and an
//! overwrite must all see one object.

mod common;

use common::{get, oss, put, xml_el, OssReq};
use md5::{Digest, Md5};

const B: &str = "ecs-preflight";
const KEY: &str = "disks/multi.qcow2";

async fn send(
    ep: &str,
    method: &'static str,
    query: &str,
    headers: Vec<(&str, String)>,
    body: Vec<u8>,
) -> reqwest::Response {
    oss(
        ep,
        OssReq {
            method,
            bucket: B,
            raw_key: KEY,
            query,
            headers,
        },
        body,
    )
    .await
}

/// Uploads `parts` as a multipart object and completes it with every part; returns the
/// Complete response's ETag and CRC-64 headers.
async fn upload_multipart(ep: &str, parts: &[Vec<u8>]) -> (String, String) {
    let r = send(ep, "POST", "uploads", vec![], Vec::new()).await;
    assert_eq!(r.status(), 200);
    let id = xml_el(&r.text().await.unwrap(), "UploadId");
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (i, p) in parts.iter().enumerate() {
        let n = i + 1;
        let r = send(
            ep,
            "PUT",
            &format!("partNumber={n}&uploadId={id}"),
            vec![],
            p.clone(),
        )
        .await;
        assert_eq!(r.status(), 200);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        xml += &format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>");
    }
    xml += "</CompleteMultipartUpload>";
    let r = send(
        ep,
        "POST",
        &format!("uploadId={id}"),
        vec![],
        xml.into_bytes(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let h = |n: &str| r.headers()[n].to_str().unwrap().to_string();
    (h("etag"), h("x-oss-hash-crc64ecma"))
}

async fn get_range(ep: &str, range: &str) -> (u16, Vec<u8>) {
    let r = send(
        ep,
        "GET",
        "",
        vec![("Range", range.to_string())],
        Vec::new(),
    )
    .await;
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// A qcow2 header naming a 3 GiB virtual disk, then filler: three parts of 150 KiB, 150 KiB
/// and 1000 bytes (parts above OSS's 100 KB minimum, the last one smaller).
fn parts() -> Vec<Vec<u8>> {
    let mut p1: Vec<u8> = (0..150 * 1024u32)
        .map(|i| u8::try_from(i * 7 % 251).unwrap())
        .collect();
    p1[0..4].copy_from_slice(b"QFI\xfb");
    p1[24..32].copy_from_slice(&(3u64 << 30).to_be_bytes());
    let p2: Vec<u8> = (0..150 * 1024u32)
        .map(|i| u8::try_from(i * 13 % 253).unwrap())
        .collect();
    let p3: Vec<u8> = (0..1000u32).map(|i| u8::try_from(i % 7).unwrap()).collect();
    vec![p1, p2, p3]
}

async fn import(ep: &str, name: &str, format: &str) -> (u16, serde_json::Value) {
    common::rpc(
        ep,
        "2014-05-26",
        "ImportImage",
        &[
            ("RegionId", "cn-hangzhou"),
            ("ImageName", name),
            ("DiskDeviceMapping.1.OSSBucket", B),
            ("DiskDeviceMapping.1.OSSObject", KEY),
            ("DiskDeviceMapping.1.Format", format),
        ],
    )
    .await
}

fn part_dirs(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = common::files_under(root)
        .into_iter()
        .filter_map(|f| f.parent().map(std::path::Path::to_path_buf))
        .filter(|d| d.extension().and_then(|x| x.to_str()) == Some("parts"))
        .collect();
    dirs.dedup();
    dirs
}

/// Waits (up to 5 s) until `n` part directories are left: a GET's reader lets go of a
/// replaced object's directory when the server drops the response body, just after the
/// client has read the last byte.
async fn wait_part_dirs(root: &std::path::Path, n: usize) {
    for _ in 0..100 {
        if part_dirs(root).len() == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("expected {n} part directories, found {:?}", part_dirs(root));
}

#[tokio::test]
async fn multipart_object_reads_as_one_object_across_restart_and_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = || {
        let mut c = preflight_emulator::Config {
            task_seconds: 0.0,
            ..preflight_emulator::Config::for_tests(data.clone())
        };
        c.strict.v4_only = false; // signed with the V1 helpers of common
        c
    };
    let parts = parts();
    let whole: Vec<u8> = parts.concat();
    let emu = preflight_emulator::start(cfg()).await.unwrap();
    let ep = emu.endpoint();

    let (etag, crc) = upload_multipart(&ep, &parts).await;
    let md5s: Vec<u8> = parts.iter().flat_map(|p| Md5::digest(p).to_vec()).collect();
    assert_eq!(
        etag,
        format!("\"{}-3\"", hex::encode_upper(Md5::digest(&md5s)))
    );
    // The same bytes in one PutObject: the CRC-64 must be the same.
    let r = oss(
        &ep,
        OssReq {
            method: "PUT",
            bucket: B,
            raw_key: "single.qcow2",
            query: "",
            headers: vec![],
        },
        whole.clone(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-oss-hash-crc64ecma"].to_str().unwrap(), crc);

    let check = |ep: String| {
        let (whole, etag, crc) = (whole.clone(), etag.clone(), crc.clone());
        async move {
            let r = get(&ep, B, KEY).await;
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
            assert_eq!(r.headers()["x-oss-hash-crc64ecma"].to_str().unwrap(), crc);
            assert_eq!(r.headers()["x-oss-object-type"], "Multipart");
            assert_eq!(r.bytes().await.unwrap().as_ref(), &whole[..]);
            let r = send(&ep, "HEAD", "", vec![], Vec::new()).await;
            assert_eq!(r.status(), 200);
            assert_eq!(
                r.headers()["content-length"].to_str().unwrap(),
                whole.len().to_string()
            );
            // Across the first part boundary, across both, inside the last part, the suffix.
            let b1 = 150 * 1024;
            for (range, from, to) in [
                (format!("bytes={}-{}", b1 - 10, b1 + 9), b1 - 10, b1 + 10),
                (format!("bytes={}-{}", b1 - 1, 2 * b1), b1 - 1, 2 * b1 + 1),
                (format!("bytes={}-", 2 * b1 + 10), 2 * b1 + 10, whole.len()),
                ("bytes=-5".to_string(), whole.len() - 5, whole.len()),
            ] {
                let (s, body) = get_range(&ep, &range).await;
                assert_eq!(s, 206, "{range}");
                assert_eq!(body, &whole[from..to], "{range}");
            }
        }
    };
    check(ep.clone()).await;
    // ImportImage reads the object's header and footer through the part files.
    let (s, v) = import(&ep, "multi-ok", "QCOW2").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = import(&ep, "multi-bad", "VHD").await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["Code"], "InvalidImageFormat.Malformed", "{v}");
    wait_part_dirs(&data, 1).await;
    emu.shutdown().await;

    let emu = preflight_emulator::start(cfg()).await.unwrap();
    let ep = emu.endpoint();
    check(ep.clone()).await;

    // Completing again under the same key replaces the object; the old parts go.
    let mut again = parts.clone();
    again[2] = b"other tail".to_vec();
    upload_multipart(&ep, &again).await;
    let r = get(&ep, B, KEY).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), &again.concat()[..]);
    wait_part_dirs(&data, 1).await;
    // A PutObject over it, then a delete: no part directory is left behind.
    assert_eq!(put(&ep, B, KEY, b"plain".to_vec()).await.status(), 200);
    assert_eq!(
        get(&ep, B, KEY).await.bytes().await.unwrap().as_ref(),
        b"plain"
    );
    wait_part_dirs(&data, 0).await;
    upload_multipart(&ep, &parts).await;
    wait_part_dirs(&data, 1).await;
    let r = send(&ep, "DELETE", "", vec![], Vec::new()).await;
    assert_eq!(r.status(), 204);
    wait_part_dirs(&data, 0).await;
    assert_eq!(get(&ep, B, KEY).await.status(), 404);
    emu.shutdown().await;
}
