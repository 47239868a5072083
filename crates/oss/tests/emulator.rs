//! The OSS client and uploader against the emulator, over real HTTP.

mod common;

use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use preflight_oss::upload::checkpoint::FileIdentity;
use preflight_oss::upload::{
    abort_upload, parse_rate, upload_file, upload_source, FileUpload, RateLimiter, UploadSource,
};
use preflight_oss::{ErrorKind, SignatureVersion, UploadEvent};
use preflight_testkit::emulator::stored_parts;

#[tokio::test]
async fn bucket_apis_and_single_put_with_v1_and_v4() {
    let dir = tempfile::tempdir().unwrap();
    // V1 signing is what this test checks, beside V4.
    let emu = emulator_accepting_v1(dir.path()).await;
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let c = client_with(&emu, "images", version, |_| {});
        let info = c.get_bucket_info().await.unwrap();
        assert_eq!(
            (
                info.name.as_str(),
                info.region.as_str(),
                info.sse_algorithm.as_deref()
            ),
            ("images", "cn-hangzhou", None)
        );
        assert_eq!(c.get_bucket_location().await.unwrap(), "cn-hangzhou");
        assert_eq!(c.get_bucket_encryption().await.unwrap(), None);
        let v = client_with(&emu, "vault", version, |_| {});
        assert!(v.get_bucket_info().await.unwrap().sse_algorithm.is_some());
        assert!(v.get_bucket_encryption().await.unwrap().is_some());
        // A bucket of another region: OSS answers 403 AccessDenied naming the endpoint to
        // use, which names the bucket's region (this emulator serves every region on one
        // port, so only a V4 scope tells it which region the request was meant for).
        let far = client_with(&emu, "faraway", version, |_| {});
        match version {
            SignatureVersion::V1 => {
                assert_eq!(far.get_bucket_location().await.unwrap(), "cn-beijing")
            }
            SignatureVersion::V4 => {
                let e = far.get_bucket_location().await.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::AccessDenied);
                assert_eq!(e.bucket_region().as_deref(), Some("cn-beijing"));
                let e = far.head_object("x").await.unwrap_err();
                assert_eq!(e.bucket_region().as_deref(), Some("cn-beijing"), "{e}");
            }
        }
        let far = far.with_signature(SignatureVersion::V1);
        assert_eq!(far.get_bucket_info().await.unwrap().region, "cn-beijing");
        let e = client_with(&emu, "no-such-bucket", version, |_| {})
            .get_bucket_info()
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.code()),
            (ErrorKind::NotFound, Some("NoSuchBucket"))
        );
        assert!(!e.is_retryable());

        let key = format!("dir/a b+c {version:?}.raw");
        let f = dir.path().join("small.raw");
        write_file(&f, 3 * MIB + 5, 1);
        let (sink, log) = recorder();
        let out = upload_file(&c, &f, &key, &Default::default(), sink)
            .await
            .unwrap();
        assert_eq!(out.parts, 1);
        assert_eq!(out.crc64, crc_of_file(&f));
        assert!(log.lock().unwrap().contains(&UploadEvent::Completing));
        assert_eq!(
            c.get_object(&key).await.unwrap().as_ref(),
            std::fs::read(&f).unwrap().as_slice()
        );
        let head = c.head_object(&key).await.unwrap();
        assert_eq!((head.size, head.crc64), (3 * MIB + 5, Some(out.crc64)));
        c.delete_object(&key).await.unwrap();
        let e = c.head_object(&key).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
    assert_eq!(emu.counters().errors_for("SignatureDoesNotMatch"), 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn multipart_with_faults_completes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let c = client(&emu, "images");
    let f = dir.path().join("disk.raw");
    write_file(&f, 39 * MIB + 12345, 2);
    emu.set_faults(preflight_emulator::Faults {
        seed: 11,
        upload_part_error_rate: 0.1,
        upload_part_reset_rate: 0.1,
        ..Default::default()
    });
    let (sink, _) = recorder();
    let out = upload_file(&c, &f, "disk.raw", &options(dir.path(), MIB, 4), sink)
        .await
        .unwrap();
    emu.set_faults(Default::default());
    let n = emu.counters();
    assert_eq!(out.parts, 40);
    assert!(
        n.faults_for("upload_part_500") + n.faults_for("upload_part_503") > 0,
        "{:?}",
        n.faults
    );
    assert!(n.faults_for("upload_part_reset") > 0, "{:?}", n.faults);
    // Every part stored, none twice; the object is the file.
    let parts: Vec<_> = n
        .parts
        .iter()
        .filter(|p| Some(&p.upload_id) == out.upload_id.as_ref())
        .collect();
    assert_eq!(parts.len(), 40);
    assert!(parts.iter().all(|p| p.stored == 1), "{parts:?}");
    assert_eq!(
        c.get_object("disk.raw").await.unwrap().as_ref(),
        std::fs::read(&f).unwrap().as_slice()
    );
    assert_eq!(
        c.head_object("disk.raw").await.unwrap().crc64,
        Some(crc_of_file(&f))
    );
    assert_eq!(out.crc64, crc_of_file(&f));
    // Success removes the checkpoint.
    assert_eq!(
        std::fs::read_dir(dir.path().join("checkpoints"))
            .unwrap()
            .count(),
        0
    );
    emu.shutdown().await;
}

/// One retry layer: a part whose body never arrives (the connection is reset mid-body every
/// time) is sent exactly `max_attempts` times in all, counted at the emulator, and the
/// upload fails with a network error instead of retrying retries.
#[tokio::test]
async fn a_failing_part_is_attempted_at_most_max_attempts_times() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let c = client_with(&emu, "images", SignatureVersion::V4, |cfg| {
        cfg.retry.max_attempts = 3;
    });
    let f = dir.path().join("disk.raw");
    write_file(&f, 2 * MIB, 3);
    emu.set_faults(preflight_emulator::Faults {
        upload_part_reset_rate: 1.0,
        reset_after_bytes: 1000,
        ..Default::default()
    });
    let (sink, _) = recorder();
    let err = upload_file(&c, &f, "disk.raw", &options(dir.path(), MIB, 1), sink)
        .await
        .unwrap_err();
    emu.set_faults(Default::default());
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    let n = emu.counters();
    assert_eq!(n.requests_for("UploadPart"), 3, "{:?}", n.requests);
    assert_eq!(n.faults_for("upload_part_reset"), 3);
    assert_eq!(n.parts.len(), 1, "{:?}", n.parts);
    assert_eq!(n.parts[0].attempts, 3);
    emu.shutdown().await;
}

/// `max_upload_rate` holds across every part in flight: 1 MiB in four 256 KiB parts sent
/// four at a time, at 256 KiB/s, takes at least about 3 s (a lower bound only: a loaded
/// machine may be slower).
#[tokio::test]
async fn the_upload_rate_limit_holds_across_parallel_parts() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let c = client(&emu, "images");
    let f = dir.path().join("disk.raw");
    write_file(&f, MIB, 8);
    let mut opts = options(dir.path(), 256 * 1024, 4);
    opts.max_upload_rate = Some(RateLimiter::shared(parse_rate("256K").unwrap()));
    let (sink, _) = recorder();
    let start = std::time::Instant::now();
    let out = upload_file(&c, &f, "paced.raw", &opts, sink).await.unwrap();
    let took = start.elapsed();
    assert_eq!((out.parts, out.crc64), (4, crc_of_file(&f)));
    assert!(took >= std::time::Duration::from_millis(2900), "{took:?}");
    emu.shutdown().await;
}

/// One limiter shared by two uploads running at once (what `batch` does: every image gets a
/// clone of the same options) holds them together under the rate: a multipart upload of
/// 1 MiB and a single PUT of 512 KiB at 512 KiB/s take at least 1.5 MiB / 512 KiB/s = 3 s,
/// less the limiter's 50 ms burst (a lower bound only). Each alone would take half as long.
#[tokio::test]
async fn one_rate_limit_holds_across_uploads_sharing_it() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let c = client(&emu, "images");
    let (a, b) = (dir.path().join("a.raw"), dir.path().join("b.raw"));
    write_file(&a, MIB, 21);
    write_file(&b, MIB / 2, 22);
    let mut opts = options(dir.path(), 256 * 1024, 2);
    opts.max_upload_rate = Some(RateLimiter::shared(parse_rate("512K").unwrap()));
    // Each upload its own clone, as `batch` gives each image: the limiter inside is shared.
    let (opts_a, opts_b) = (opts.clone(), opts);
    let start = std::time::Instant::now();
    let (ra, rb) = tokio::join!(
        upload_file(&c, &a, "a.raw", &opts_a, recorder().0),
        upload_file(&c, &b, "b.raw", &opts_b, recorder().0),
    );
    let took = start.elapsed();
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!((ra.parts, ra.crc64), (4, crc_of_file(&a)));
    assert_eq!((rb.parts, rb.crc64), (2, crc_of_file(&b)));
    assert!(took >= std::time::Duration::from_millis(2900), "{took:?}");
    emu.shutdown().await;
}

/// A file as an upload source that counts the bytes read from it; `as_file` false makes it
/// look like a made-up source (a converted image), which has no path to stream from.
struct CountingSource {
    file: FileUpload,
    read: AtomicU64,
    as_file: bool,
}

impl UploadSource for CountingSource {
    fn size(&self) -> u64 {
        self.file.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.read.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.file.read_at(offset, buf)
    }
    fn identity(&self) -> &FileIdentity {
        self.file.identity()
    }
    fn path(&self) -> &std::path::Path {
        self.file.path()
    }
    fn file(&self) -> Option<&std::path::Path> {
        self.file.file().filter(|_| self.as_file)
    }
}

/// Each byte is read once, for a single PUT as for a multipart upload: the CRC-64 (and MD5)
/// is computed on the bytes as they are read for sending. A single PUT with `Content-MD5`
/// (a header that must precede the body) is read into memory once when it fits the part
/// buffers, else it goes multipart.
#[tokio::test]
async fn each_byte_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    let c = client(&emu, "images");
    let f = dir.path().join("disk.raw");
    let size = 3 * MIB + 17;
    write_file(&f, size, 31);
    // (key, below the threshold, Content-MD5, a plain file, part buffers of (MiB), parts sent)
    for (key, single, md5, as_file, buffers, parts) in [
        ("single.raw", true, false, true, 2, 1),
        ("single-made.raw", true, false, false, 2, 1),
        ("multi.raw", false, false, true, 2, 4),
        ("multi-md5.raw", false, true, true, 2, 4),
        // Fits 2 x 2 MiB part buffers: one PUT from memory.
        ("single-md5.raw", true, true, true, 4, 1),
        ("single-md5-made.raw", true, true, false, 4, 1),
        // Larger than 2 x 1 MiB part buffers: multipart rather than a second read.
        ("big-md5.raw", true, true, true, 2, 4),
    ] {
        let source = Arc::new(CountingSource {
            file: FileUpload::open(&f).unwrap(),
            read: AtomicU64::new(0),
            as_file,
        });
        let mut opts = options(dir.path(), buffers / 2 * MIB, 2);
        opts.multipart_threshold = if single { 100 * MIB } else { MIB };
        opts.content_md5 = md5;
        let (sink, log) = recorder();
        let out = upload_source(&c, source.clone(), key, &opts, sink)
            .await
            .unwrap();
        assert_eq!((out.parts, out.crc64), (parts, crc_of_file(&f)), "{key}");
        assert_eq!(source.read.load(Ordering::Relaxed), size, "{key}");
        assert_eq!(
            c.get_object(key).await.unwrap().as_ref(),
            std::fs::read(&f).unwrap().as_slice(),
            "{key}"
        );
        let multipart = log.lock().unwrap().iter().any(|e| {
            matches!(
                e,
                UploadEvent::Started {
                    multipart: true,
                    ..
                }
            )
        });
        assert_eq!(multipart, parts > 1, "{key}");
    }
    emu.shutdown().await;
}

/// Runs an upload and drops it once `stop_after` parts are done (what Ctrl-C or a kill does).
async fn interrupted(
    c: &preflight_oss::Client,
    f: &std::path::Path,
    key: &str,
    dir: &std::path::Path,
    stop_after: usize,
) {
    let (sink, log) = recorder();
    let opts = options(dir, MIB, 2);
    let upload = upload_file(c, f, key, &opts, sink);
    tokio::pin!(upload);
    loop {
        tokio::select! {
            r = &mut upload => panic!("finished before the interruption: {r:?}"),
            _ = tokio::time::sleep(std::time::Duration::from_millis(2)) => {
                let done = log.lock().unwrap().iter().filter(|e| matches!(e, UploadEvent::PartDone { .. })).count();
                if done >= stop_after { return; }
            }
        }
    }
}

#[tokio::test]
async fn resume_sends_only_missing_parts() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    // Slow enough that the interruption lands mid-way.
    emu.set_faults(preflight_emulator::Faults {
        bandwidth_bytes_per_sec: 16 * MIB,
        ..Default::default()
    });
    let c = client(&emu, "images");
    let f = dir.path().join("big.qcow2");
    write_file(&f, 20 * MIB, 3);
    interrupted(&c, &f, "big.qcow2", dir.path(), 8).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let first = emu.counters();
    let stored_first = stored_parts(&first);
    assert!(
        stored_first.len() >= 8 && stored_first.len() < 20,
        "{stored_first:?}"
    );
    emu.set_faults(Default::default());
    emu.reset_counters();

    let (sink, log) = recorder();
    let out = upload_file(&c, &f, "big.qcow2", &options(dir.path(), MIB, 2), sink)
        .await
        .unwrap();
    let n = emu.counters();
    assert_eq!(n.requests_for("InitiateMultipartUpload"), 0);
    assert!(n.requests_for("ListParts") >= 1);
    assert_eq!(n.requests_for("UploadPart"), 20 - stored_first.len() as u64);
    assert!(
        n.parts
            .iter()
            .all(|p| !stored_first.contains(&p.part_number)),
        "re-sent a stored part"
    );
    assert_eq!(
        (out.parts_reused as usize, out.parts_sent as usize),
        (stored_first.len(), 20 - stored_first.len())
    );
    assert!(log
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, UploadEvent::Resuming { .. })));
    assert_eq!(out.crc64, crc_of_file(&f));
    assert_eq!(
        c.get_object("big.qcow2").await.unwrap().as_ref(),
        std::fs::read(&f).unwrap().as_slice()
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn changed_file_aborts_the_stale_upload() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    emu.set_faults(preflight_emulator::Faults {
        bandwidth_bytes_per_sec: 16 * MIB,
        ..Default::default()
    });
    let c = client(&emu, "images");
    let f = dir.path().join("img.raw");
    write_file(&f, 12 * MIB, 4);
    interrupted(&c, &f, "img.raw", dir.path(), 3).await;
    let stale = c.list_multipart_uploads("img.raw").await.unwrap();
    assert_eq!(stale.len(), 1);
    emu.set_faults(Default::default());
    write_file(&f, 12 * MIB, 5);
    let (sink, log) = recorder();
    let out = upload_file(&c, &f, "img.raw", &options(dir.path(), MIB, 2), sink)
        .await
        .unwrap();
    let log = log.lock().unwrap().clone();
    assert!(
        log.contains(&UploadEvent::StaleUploadAborted {
            upload_id: stale[0].upload_id.clone()
        }),
        "{log:?}"
    );
    assert_eq!(out.parts_reused, 0);
    assert_ne!(out.upload_id.as_deref(), Some(stale[0].upload_id.as_str()));
    assert_eq!(emu.counters().requests_for("AbortMultipartUpload"), 1);
    assert!(
        c.list_multipart_uploads("img.raw")
            .await
            .unwrap()
            .is_empty(),
        "orphaned upload left"
    );
    assert_eq!(out.crc64, crc_of_file(&f));
    emu.shutdown().await;
}

#[tokio::test]
async fn abort_cleans_up_and_skew_is_corrected() {
    let dir = tempfile::tempdir().unwrap();
    // the skew correction is checked for V1 signing too.
    let emu = emulator_accepting_v1(dir.path()).await;
    emu.set_faults(preflight_emulator::Faults {
        bandwidth_bytes_per_sec: 16 * MIB,
        ..Default::default()
    });
    let c = client(&emu, "images");
    let f = dir.path().join("x.vhd");
    write_file(&f, 10 * MIB, 6);
    interrupted(&c, &f, "x.vhd", dir.path(), 2).await;
    emu.set_faults(Default::default());
    let id = abort_upload(&c, "x.vhd", &dir.path().join("checkpoints"))
        .await
        .unwrap();
    assert!(id.is_some());
    assert!(c.list_multipart_uploads("").await.unwrap().is_empty());
    assert_eq!(
        abort_upload(&c, "x.vhd", &dir.path().join("checkpoints"))
            .await
            .unwrap(),
        None
    );

    // A clock an hour slow: OSS says RequestTimeTooSkewed, the client takes the server's
    // Date and signs again (our signer, both versions).
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let slow = client_with(&emu, "images", version, |cfg| cfg.clock_offset_secs = -3600);
        emu.reset_counters();
        let info = slow.get_bucket_info().await.unwrap();
        assert_eq!(info.region, "cn-hangzhou");
        assert_eq!(emu.counters().errors_for("RequestTimeTooSkewed"), 1);
        assert!(
            slow.clock_offset_secs().abs() < 5,
            "{}",
            slow.clock_offset_secs()
        );
        let out = upload_file(
            &slow,
            &f,
            "skewed.vhd",
            &options(dir.path(), 4 * MIB, 2),
            recorder().0,
        )
        .await
        .unwrap();
        assert_eq!(out.crc64, crc_of_file(&f));
    }
    emu.shutdown().await;
}

/// A link slower than the old whole-request read timeout: the PUT takes five times the idle
/// timeout, yet finishes. With reqwest's `read_timeout` set as short (the old client), the
/// same PUT was cut after it and retried from zero, forever. (On loopback the kernel takes the
/// whole body at once, so this measures the wait for the answer; the idle clock's reset on
/// every slice is tested in the client's unit tests.)
#[tokio::test]
async fn a_slow_link_finishes_past_every_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path()).await;
    emu.set_faults(preflight_emulator::Faults {
        bandwidth_bytes_per_sec: 64 * 1024,
        ..Default::default()
    });
    let c = client_with(&emu, "images", SignatureVersion::V4, |cfg| {
        cfg.idle_timeout = std::time::Duration::from_secs(2);
        // One attempt: a cut request must fail the test, not be hidden by a retry.
        cfg.retry = preflight_aliyun::RetryConfig::none();
    });
    let f = dir.path().join("slow.raw");
    write_file(&f, 768 * 1024, 7);
    let started = std::time::Instant::now();
    let md5 = {
        let data = std::fs::read(&f).unwrap();
        preflight_oss::upload::md5_base64(&data)
    };
    let put = c.put_object_file("slow.raw", &f, 768 * 1024, &md5).await;
    let took = started.elapsed();
    put.unwrap();
    assert!(
        took > std::time::Duration::from_secs(10),
        "the link was not slow: {took:?}"
    );
    assert_eq!(
        c.head_object("slow.raw").await.unwrap().crc64,
        Some(crc_of_file(&f))
    );
    emu.shutdown().await;
}

/// A stalled connection is dropped after the idle timeout, not waited on forever.
#[tokio::test]
async fn a_stalled_answer_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts, reads the request, never answers.
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = std::io::Read::read(&mut s, &mut buf);
        std::thread::sleep(std::time::Duration::from_secs(3));
    });
    let creds = std::sync::Arc::new(preflight_aliyun::CredentialProvider::fixed(
        preflight_aliyun::Credentials::new("id", "secret"),
    ));
    let mut cfg = preflight_oss::ClientConfig::new("cn-hangzhou", "images")
        .with_endpoint(format!("http://{addr}"));
    cfg.answer_timeout = std::time::Duration::from_millis(500);
    cfg.retry = preflight_aliyun::RetryConfig::none();
    let c = preflight_oss::Client::new(cfg, creds).unwrap();
    let started = std::time::Instant::now();
    let e = c.get_bucket_info().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert!(e.to_string().contains("no answer"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    server.join().unwrap();
}

/// Every object is written Standard, whatever the bucket's default class (an Archive object
/// cannot be imported), and GetBucketInfo's default class is read.
#[tokio::test]
async fn objects_are_written_standard_on_an_archive_default_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = preflight_emulator::Config::for_tests(dir.path().join("emu"));
    cfg.buckets = vec!["images@cn-hangzhou".parse().unwrap()];
    cfg.storage_class = preflight_emulator::StorageClass::Archive;
    let emu = preflight_emulator::start(cfg).await.unwrap();
    let c = client(&emu, "images");
    let small = dir.path().join("small.raw");
    write_file(&small, 200 * 1024, 3);
    let big = dir.path().join("big.raw");
    write_file(&big, 3 * MIB, 4);
    let multipart = preflight_oss::UploadOptions {
        part_size: Some(MIB),
        multipart_threshold: MIB,
        checkpoint_dir: dir.path().join("cp"),
        ..Default::default()
    };
    let (sink, _) = recorder();
    upload_file(&c, &small, "small.raw", &Default::default(), sink.clone())
        .await
        .unwrap();
    let out = upload_file(&c, &big, "big.raw", &multipart, sink)
        .await
        .unwrap();
    assert_eq!(out.parts, 3);
    for key in ["small.raw", "big.raw"] {
        let head = c.head_object(key).await.unwrap();
        assert_eq!(head.storage_class.as_deref(), Some("Standard"), "{key}");
    }
    emu.shutdown().await;
}
