//! `ecs-preflight emulator` as a user runs it: the real binary on 127.0.0.1:0, driven over
//! HTTP, stopped with SIGINT. Each test proves one group of flags takes effect: with the flag
//! ignored (the default in force), an assertion fails. Requests are signed here (OSS V1 and
//! RPC HMAC-SHA1) by the shared test client (`preflight_testkit::emulator`, the emulator
//! crate's public signing helpers); the admin endpoint
//! `/_emulator/counters` says what was called.
//!
//! Unlike the rest of the suite (see `common::strict_config`), these tests start the binary
//! with its own defaults and one shared URL, and sign with V1 (so `Emu::start` passes
//! `--allow-v1`, an account created before March 2025): they prove each `--strict-*` flag and
//! each protocol path of the command a user starts, which a strict default would hide.
//! `v1_is_refused_by_default` proves the default without that flag.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use preflight_emulator::faults::FaultKind;
use preflight_emulator::{Faults, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
use preflight_testkit::emulator::{self, now_http, rpc_query, OssReq};
use serde_json::Value;

const ECS: &str = "2014-05-26";
const RAM: &str = "2015-05-01";

/// A running `ecs-preflight emulator`.
struct Emu {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    addr: String,
    /// Lines printed up to and including `ready`.
    banner: Vec<String>,
    lines: Receiver<String>,
}

impl Emu {
    /// Starts the binary with `args` (add `--listen 127.0.0.1:0` yourself, or a config that
    /// sets `listen`) and waits for `ready`.
    /// On an ephemeral loopback port with its data in `data`, plus `extra` flags.
    fn on_loopback(data: &Path, extra: &[&str]) -> Emu {
        let mut args = vec!["--listen", "127.0.0.1:0", "--data", path_str(data)];
        args.extend_from_slice(extra);
        Emu::start(&args)
    }

    fn start(args: &[&str]) -> Emu {
        // The requests here are signed with V1 (module doc); the default refuses them.
        Emu::launch(&[args, &["--allow-v1"]].concat())
    }

    /// Starts the binary with exactly `args` and waits for `ready`.
    fn launch(args: &[&str]) -> Emu {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecs-preflight"))
            .arg("emulator")
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ecs-preflight emulator");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut emu = Emu {
            child: Some(child),
            addr: String::new(),
            banner: Vec::new(),
            lines: rx,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = emu.lines.recv_timeout(left) else {
                let mut err = String::new();
                if let Some(mut c) = emu.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                    if let Some(mut e) = c.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                }
                panic!(
                    "{args:?}: no `ready` line; printed {:?}; stderr: {err}",
                    emu.banner
                );
            };
            if let Some(e) = line.strip_prefix("endpoint: ") {
                emu.addr = e.trim_start_matches("http://").to_string();
            }
            let ready = line == "ready";
            emu.banner.push(line);
            if ready {
                break;
            }
        }
        assert!(!emu.addr.is_empty(), "no endpoint line: {:?}", emu.banner);
        emu
    }

    /// Ctrl-C: the emulator must exit 0 and say `stopped`.
    fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        crate::common::sh("kill", &["-INT", &child.id().to_string()]);
        let status = child.wait().unwrap();
        assert!(status.success(), "stops cleanly on SIGINT: {status:?}");
        let rest: Vec<String> = self.lines.iter().collect();
        assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
    }

    fn printed(&self, line: &str) -> bool {
        self.banner.iter().any(|l| l == line)
    }

    /// `GET /_emulator/counters`.
    fn counters(&self) -> Value {
        let r = http(&self.addr, "GET", "/_emulator/counters", &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice(&r.body).unwrap()
    }

    /// `GET /_emulator/faults`.
    fn faults(&self) -> Value {
        let r = http(&self.addr, "GET", "/_emulator/faults", &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice(&r.body).unwrap()
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        // A failed test must not leave its emulator running.
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn requests(counters: &Value, api: &str) -> u64 {
    counters["requests"][api].as_u64().unwrap_or(0)
}

fn errors(counters: &Value, code: &str) -> u64 {
    counters["errors"][code].as_u64().unwrap_or(0)
}

/// An HTTP answer.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `<Code>` of an OSS XML error.
    fn oss_code(&self) -> String {
        xml_el(&self.text(), "Code")
    }
}

fn xml_el(text: &str, name: &str) -> String {
    text.split(&format!("<{name}>"))
        .nth(1)
        .and_then(|s| s.split(&format!("</{name}>")).next())
        .unwrap_or("")
        .to_string()
}

/// One HTTP/1.1 request on its own connection (`Connection: close`).
fn http(addr: &str, method: &str, target: &str, headers: &[(&str, String)], body: &[u8]) -> Resp {
    let mut conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked && method != "HEAD" {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

/// A credential: id, secret, STS token.
#[derive(Clone, Copy)]
struct Key<'a>(&'a str, &'a str, Option<&'a str>);

const DEFAULT_KEY: Key<'static> = Key(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, None);

impl Key<'_> {
    /// The same key for the shared signing client.
    fn signer(&self) -> emulator::Key<'_> {
        emulator::Key {
            id: self.0,
            secret: self.1,
            token: self.2,
        }
    }
}

/// An OSS request, path style, signed with V1 (`Authorization: OSS id:signature`). `path` is
/// `bucket/key` or `bucket/` with, after `?`, sub-resources in canonical (sorted) order, e.g.
/// `images/disk.raw?partNumber=1&uploadId=X` or `images/?location`.
fn oss(
    addr: &str,
    key: Key<'_>,
    method: &str,
    path: &str,
    extra: &[(&str, String)],
    body: &[u8],
) -> Resp {
    let (bucket, rest) = path.split_once('/').unwrap_or((path, ""));
    let (raw_key, query) = rest.split_once('?').unwrap_or((rest, ""));
    let request = OssReq {
        method,
        bucket,
        raw_key,
        query,
        headers: extra.to_vec(),
    };
    let headers = request.signed_headers(key.signer(), &now_http());
    let headers: Vec<(&str, String)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    http(addr, method, &request.target(), &headers, body)
}

fn put(addr: &str, key: Key<'_>, bucket: &str, object: &str, body: &[u8]) -> Resp {
    oss(addr, key, "PUT", &format!("{bucket}/{object}"), &[], body)
}

fn get(addr: &str, key: Key<'_>, bucket: &str, object: &str) -> Resp {
    oss(addr, key, "GET", &format!("{bucket}/{object}"), &[], b"")
}

/// An ECS/RAM RPC call (GET query, HMAC-SHA1 signature 1.0, JSON) → (status, body).
fn rpc(
    addr: &str,
    key: Key<'_>,
    version: &str,
    action: &str,
    params: &[(&str, &str)],
) -> (u16, Value) {
    let query = rpc_query(key.signer(), version, action, params, |_| {});
    let r = http(addr, "GET", &format!("/?{query}"), &[], b"");
    let v = serde_json::from_slice(&r.body).unwrap_or_else(|_| Value::String(r.text()));
    (r.status, v)
}

fn import_image(addr: &str, key: Key<'_>, region: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let mut p = vec![("RegionId", region)];
    p.extend_from_slice(params);
    rpc(addr, key, ECS, "ImportImage", &p)
}

fn task_attribute(addr: &str, task: &str) -> Value {
    let (s, v) = rpc(
        addr,
        DEFAULT_KEY,
        ECS,
        "DescribeTaskAttribute",
        &[("RegionId", "cn-hangzhou"), ("TaskId", task)],
    );
    assert_eq!(s, 200, "{v}");
    v
}

fn code(v: &Value) -> &str {
    v["Code"].as_str().unwrap_or("")
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn config_file_sets_everything_and_flags_override_it() {
    let dir = crate::common::tempdir();
    let data = dir.path().join("from-config-data");
    let config = dir.path().join("emulator.toml");
    std::fs::write(
        &config,
        format!(
            r#"
listen = "127.0.0.1:0"
data_dir = "{}"
access_keys = ["cfg-key:cfg-secret-0123456789"]
buckets = ["cfg-images@cn-shanghai", {{ name = "cfg-vault", region = "cn-shanghai", encrypted = true }}]
storage_class = "IA"
import_role = false
[faults]
seed = 11
delay_ms = 5
"#,
            path_str(&data)
        ),
    )
    .unwrap();
    let key = Key("cfg-key", "cfg-secret-0123456789", None);
    // Only --config: no --listen, no --data.
    let emu = Emu::start(&["--config", path_str(&config)]);
    assert!(
        emu.printed("bucket: cfg-images@cn-shanghai"),
        "{:?}",
        emu.banner
    );
    assert!(emu.printed("bucket: cfg-vault@cn-shanghai (encrypted)"));
    assert!(emu.printed(&format!("data: {}", data.display())));
    assert!(
        !emu.banner.iter().any(|l| l.starts_with("access key id:")),
        "the default key pair is not in force: {:?}",
        emu.banner
    );
    let a = emu.addr.as_str();
    // The file's key opens it, the default one does not.
    let r = oss(a, key, "GET", "cfg-images/?location", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("oss-cn-shanghai"), "{}", r.text());
    let r = oss(a, DEFAULT_KEY, "GET", "cfg-images/?location", &[], b"");
    assert_eq!(
        (r.status, r.oss_code().as_str()),
        (403, "InvalidAccessKeyId")
    );
    // Its buckets replace the default one; the encrypted one is encrypted.
    let r = oss(a, key, "GET", "ecs-preflight/?location", &[], b"");
    assert_eq!((r.status, r.oss_code().as_str()), (404, "NoSuchBucket"));
    let r = oss(a, key, "GET", "cfg-vault/?encryption", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    // Its storage class is the default of new objects, stored under its data_dir.
    assert_eq!(
        put(a, key, "cfg-images", "disk.raw", &[7u8; 2048]).status,
        200
    );
    let r = oss(a, key, "HEAD", "cfg-images/disk.raw", &[], b"");
    assert_eq!(r.header("x-oss-storage-class"), Some("IA"));
    assert!(data.is_dir() && std::fs::read_dir(&data).unwrap().count() > 0);
    // import_role = false.
    let (s, v) = rpc(
        a,
        key,
        RAM,
        "GetRole",
        &[("RoleName", "AliyunECSImageImportDefaultRole")],
    );
    assert_eq!((s, code(&v)), (404, "EntityNotExist.Role"), "{v}");
    // [faults].
    let f = emu.faults();
    assert_eq!(
        (f["seed"].as_u64(), f["delay_ms"].as_u64()),
        (Some(11), Some(5))
    );
    let c = emu.counters();
    assert_eq!(requests(&c, "GetBucketLocation"), 3);
    assert_eq!(requests(&c, "GetRole"), 1);
    assert_eq!(errors(&c, "InvalidAccessKeyId"), 1);
    emu.stop();

    // A flag given with --config wins over the file's setting.
    let emu = Emu::start(&[
        "--config",
        path_str(&config),
        "--listen",
        "127.0.0.1:0",
        "--bucket",
        "flag-bucket@cn-beijing",
        "--storage-class",
        "Standard",
    ]);
    assert!(
        emu.printed("bucket: flag-bucket@cn-beijing"),
        "{:?}",
        emu.banner
    );
    assert!(!emu.printed("bucket: cfg-images@cn-shanghai"));
    let a = emu.addr.as_str();
    let r = oss(a, key, "GET", "cfg-images/?location", &[], b"");
    assert_eq!((r.status, r.oss_code().as_str()), (404, "NoSuchBucket"));
    assert_eq!(put(a, key, "flag-bucket", "d.raw", &[1u8; 100]).status, 200);
    let r = oss(a, key, "HEAD", "flag-bucket/d.raw", &[], b"");
    assert_eq!(r.header("x-oss-storage-class"), Some("Standard"));
    emu.stop();
}

#[test]
fn access_key_flag_replaces_the_default_pair() {
    let data = crate::common::tempdir();
    let emu = Emu::on_loopback(
        data.path(),
        &[
            "--access-key",
            "LTAI-cli-test:cli-test-secret-0001",
            "--access-key",
            "STS.cli-test:sts-secret-0002:CAIS-token-0003",
        ],
    );
    assert!(
        !emu.banner.iter().any(|l| l.starts_with("access key id:")),
        "{:?}",
        emu.banner
    );
    let a = emu.addr.as_str();
    let mine = Key("LTAI-cli-test", "cli-test-secret-0001", None);
    let sts = Key("STS.cli-test", "sts-secret-0002", Some("CAIS-token-0003"));
    let b = "ecs-preflight";
    assert_eq!(put(a, mine, b, "k.raw", b"hello").status, 200);
    assert_eq!(get(a, mine, b, "k.raw").body, b"hello");
    // The documented default pair is not accepted any more.
    let r = get(a, DEFAULT_KEY, b, "k.raw");
    assert_eq!(
        (r.status, r.oss_code().as_str()),
        (403, "InvalidAccessKeyId")
    );
    // The right id with another secret.
    let r = get(a, Key("LTAI-cli-test", "not-the-secret", None), b, "k.raw");
    assert_eq!(
        (r.status, r.oss_code().as_str()),
        (403, "SignatureDoesNotMatch")
    );
    // ID:SECRET:STS_TOKEN: valid with its token only.
    assert_eq!(get(a, sts, b, "k.raw").status, 200);
    let r = get(a, Key(sts.0, sts.1, None), b, "k.raw");
    assert_eq!(
        (r.status, r.oss_code().as_str()),
        (403, "InvalidAccessKeyId")
    );
    // ECS RPC takes the same keys.
    let (s, v) = rpc(a, mine, ECS, "DescribeRegions", &[]);
    assert_eq!(s, 200, "{v}");
    let (s, v) = rpc(a, sts, ECS, "DescribeRegions", &[]);
    assert_eq!(s, 200, "{v}");
    let (s, v) = rpc(a, DEFAULT_KEY, ECS, "DescribeRegions", &[]);
    assert_eq!((s, code(&v)), (404, "InvalidAccessKeyId.NotFound"), "{v}");
    let c = emu.counters();
    assert_eq!(requests(&c, "GetObject"), 5);
    assert_eq!(requests(&c, "DescribeRegions"), 3);
    assert_eq!(errors(&c, "InvalidAccessKeyId"), 2);
    assert_eq!(errors(&c, "SignatureDoesNotMatch"), 1);
    assert_eq!(errors(&c, "InvalidAccessKeyId.NotFound"), 1);
    emu.stop();
}

#[test]
fn bucket_flag_sets_buckets_regions_and_encryption() {
    let data = crate::common::tempdir();
    let emu = Emu::on_loopback(
        data.path(),
        &[
            "--bucket",
            "north-images@cn-beijing",
            "--bucket",
            "north-vault@cn-beijing:encrypted",
            "--task-seconds",
            "0",
        ],
    );
    assert!(
        emu.printed("bucket: north-images@cn-beijing"),
        "{:?}",
        emu.banner
    );
    assert!(emu.printed("bucket: north-vault@cn-beijing (encrypted)"));
    let a = emu.addr.as_str();
    let k = DEFAULT_KEY;
    let r = oss(a, k, "GET", "north-images/?location", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(xml_el(&r.text(), "LocationConstraint"), "oss-cn-beijing");
    let r = oss(a, k, "GET", "north-images/?encryption", &[], b"");
    assert_eq!(
        (r.status, r.oss_code().as_str()),
        (404, "NoSuchServerSideEncryptionRule")
    );
    let r = oss(a, k, "GET", "north-vault/?encryption", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<SSEAlgorithm>KMS</SSEAlgorithm>"));
    // The default bucket is not served when --bucket is given.
    let r = put(a, k, "ecs-preflight", "x.raw", b"x");
    assert_eq!((r.status, r.oss_code().as_str()), (404, "NoSuchBucket"));
    // ImportImage sees the buckets' regions and encryption.
    for b in ["north-images", "north-vault"] {
        assert_eq!(put(a, k, b, "sys.raw", &[3u8; 4096]).status, 200);
    }
    let disk = |bucket: &'static str| {
        [
            ("ImageName", "north-image"),
            ("DiskDeviceMapping.1.OSSBucket", bucket),
            ("DiskDeviceMapping.1.OSSObject", "sys.raw"),
        ]
    };
    let (s, v) = import_image(a, k, "cn-beijing", &disk("north-vault"));
    assert_eq!(
        (s, code(&v)),
        (403, "InvalidOSSBucket.EncryptUnsupported"),
        "{v}"
    );
    let (s, v) = import_image(a, k, "cn-hangzhou", &disk("north-images"));
    assert_eq!((s, code(&v)), (400, "InvalidOSSBucket.NotFound"), "{v}");
    let (s, v) = import_image(a, k, "cn-beijing", &disk("north-images"));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["RegionId"], "cn-beijing");
    let c = emu.counters();
    assert_eq!(requests(&c, "GetBucketEncryption"), 2);
    assert_eq!(requests(&c, "ImportImage"), 3);
    assert_eq!(errors(&c, "NoSuchBucket"), 1);
    emu.stop();
}

#[test]
fn no_import_role_flag_removes_the_role() {
    let data = crate::common::tempdir();
    let emu = Emu::on_loopback(data.path(), &["--no-import-role"]);
    let a = emu.addr.as_str();
    let (s, v) = rpc(
        a,
        DEFAULT_KEY,
        RAM,
        "GetRole",
        &[("RoleName", "AliyunECSImageImportDefaultRole")],
    );
    assert_eq!((s, code(&v)), (404, "EntityNotExist.Role"), "{v}");
    assert_eq!(
        put(a, DEFAULT_KEY, "ecs-preflight", "sys.raw", &[1u8; 4096]).status,
        200
    );
    let (s, v) = import_image(
        a,
        DEFAULT_KEY,
        "cn-hangzhou",
        &[
            ("DiskDeviceMapping.1.OSSBucket", "ecs-preflight"),
            ("DiskDeviceMapping.1.OSSObject", "sys.raw"),
        ],
    );
    assert_eq!((s, code(&v)), (403, "NoSetRoletoECSServiceAcount"), "{v}");
    let c = emu.counters();
    assert_eq!(requests(&c, "GetRole"), 1);
    assert_eq!(errors(&c, "EntityNotExist.Role"), 1);
    assert_eq!(errors(&c, "NoSetRoletoECSServiceAcount"), 1);
    emu.stop();
}

#[test]
fn storage_class_flag_is_the_class_of_new_objects() {
    let data = crate::common::tempdir();
    let emu = Emu::on_loopback(data.path(), &["--storage-class", "Archive"]);
    let a = emu.addr.as_str();
    let (k, b) = (DEFAULT_KEY, "ecs-preflight");
    assert_eq!(put(a, k, b, "cold.raw", &[5u8; 4096]).status, 200);
    let r = oss(a, k, "HEAD", &format!("{b}/cold.raw"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-oss-storage-class"), Some("Archive"));
    let r = get(a, k, b, "cold.raw");
    assert_eq!(
        (r.status, r.oss_code().as_str()),
        (403, "InvalidObjectState")
    );
    // The documented EC of an Archive object that cannot be read yet.
    assert_eq!(xml_el(&r.text(), "EC"), "0016-00000404", "{}", r.text());
    let (s, v) = import_image(
        a,
        k,
        "cn-hangzhou",
        &[
            ("DiskDeviceMapping.1.OSSBucket", b),
            ("DiskDeviceMapping.1.OSSObject", "cold.raw"),
        ],
    );
    assert_eq!((s, code(&v)), (400, "InvalidOSSObject.NeedRestore"), "{v}");
    // The flag is a default: a request naming its class gets that class.
    let warm = [("x-oss-storage-class", "Standard".to_string())];
    let r = oss(a, k, "PUT", &format!("{b}/warm.raw"), &warm, &[6u8; 10]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(a, k, b, "warm.raw").status, 200);
    let c = emu.counters();
    assert_eq!(requests(&c, "PutObject"), 2);
    assert_eq!(errors(&c, "InvalidObjectState"), 1);
    assert_eq!(errors(&c, "InvalidOSSObject.NeedRestore"), 1);
    emu.stop();
}

/// A restored Archive object is importable: RestoreObject, then HeadObject's
/// `x-oss-restore: ongoing-request="false"` clears `import`'s own
/// InvalidOSSObject.NeedRestore rule and the emulator's. Seed 004: "400
/// InvalidOSSObject.NeedRestore The specified OSS object is a archive
/// object, need restore first."
#[test]
fn a_restored_archive_object_is_imported() {
    let data = crate::common::tempdir();
    let emu = Emu::on_loopback(
        data.path(),
        &[
            "--storage-class",
            "Archive",
            "--task-seconds",
            "0.2",
            // Restores finish at once, so the test need not wait.
            "--restore-seconds",
            "0",
        ],
    );
    let a = emu.addr.as_str();
    let (k, b) = (DEFAULT_KEY, "ecs-preflight");
    assert_eq!(put(a, k, b, "cold.raw", &[5u8; 4096]).status, 200);
    let import = || {
        Command::new(env!("CARGO_BIN_EXE_ecs-preflight"))
            .args([
                "import",
                "--region",
                "cn-hangzhou",
                "--bucket",
                b,
                "--object",
                "cold.raw",
                "--image-name",
                "cold-01",
                "--disk-image-size",
                "5",
                "--poll-interval",
                "100ms",
                "--output",
                "json",
                "--emulator",
                &format!("http://{a}"),
            ])
            .env_remove("ALIBABA_CLOUD_PROFILE")
            .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
            .env("HOME", data.path())
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ACCESS_KEY_SECRET)
            .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    };
    let out = import();
    let v = crate::common::json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(
        v["findings"][0]["code"], "InvalidOSSObject.NeedRestore",
        "{v}"
    );
    assert_eq!(requests(&emu.counters(), "ImportImage"), 0);

    let r = oss(a, k, "POST", &format!("{b}/cold.raw?restore"), &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let r = oss(a, k, "HEAD", &format!("{b}/cold.raw"), &[], b"");
    let restore = r.header("x-oss-restore").unwrap_or_default();
    assert!(
        restore.starts_with("ongoing-request=\"false\""),
        "{restore:?}"
    );
    assert_eq!(get(a, k, b, "cold.raw").status, 200);

    let out = import();
    let v = crate::common::json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["status"], "available", "{v}");
    emu.stop();
}

#[test]
fn task_seconds_and_limits_flags_set_the_import() {
    let data = crate::common::tempdir();
    let emu = Emu::on_loopback(data.path(), &["--task-seconds", "1", "--limits", "current"]);
    let a = emu.addr.as_str();
    assert_eq!(
        put(a, DEFAULT_KEY, "ecs-preflight", "sys.raw", &[1u8; 4096]).status,
        200
    );
    // 2048 GiB: only the current limits take it (classic: system disk 5-500 GiB).
    let started = Instant::now();
    let (s, v) = import_image(
        a,
        DEFAULT_KEY,
        "cn-hangzhou",
        &[
            ("ImageName", "quick-one"),
            ("DiskDeviceMapping.1.OSSBucket", "ecs-preflight"),
            ("DiskDeviceMapping.1.OSSObject", "sys.raw"),
            ("DiskDeviceMapping.1.DiskImageSize", "2048"),
        ],
    );
    assert_eq!(s, 200, "{v}");
    let task = v["TaskId"].as_str().unwrap().to_string();
    let t = task_attribute(a, &task);
    if started.elapsed() < Duration::from_millis(900) {
        let status = t["TaskStatus"].as_str().unwrap();
        assert!(status == "Waiting" || status == "Processing", "{t}");
    }
    // After one second (five by default) the task is finished and the image available.
    std::thread::sleep(Duration::from_millis(1300));
    let t = task_attribute(a, &task);
    assert_eq!(t["TaskStatus"], "Finished", "{t}");
    assert_eq!(t["TaskProcess"], "100%");
    let (_, i) = rpc(
        a,
        DEFAULT_KEY,
        ECS,
        "DescribeImages",
        &[("RegionId", "cn-hangzhou"), ("ImageName", "quick-one")],
    );
    assert_eq!(i["Images"]["Image"][0]["Status"], "Available", "{i}");
    assert_eq!(i["Images"]["Image"][0]["Size"], 2048);
    let c = emu.counters();
    assert_eq!(requests(&c, "DescribeTaskAttribute"), 2);
    emu.stop();
}

/// UploadPart answers for `n` parts of a new multipart upload: the HTTP statuses in order.
fn upload_part_statuses(a: &str, n: u32) -> Vec<u16> {
    let (k, b) = (DEFAULT_KEY, "ecs-preflight");
    let r = oss(a, k, "POST", &format!("{b}/multi.raw?uploads"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let id = xml_el(&r.text(), "UploadId");
    assert!(!id.is_empty(), "{}", r.text());
    (1..=n)
        .map(|p| {
            let path = format!("{b}/multi.raw?partNumber={p}&uploadId={id}");
            oss(a, k, "PUT", &path, &[], &p.to_le_bytes().repeat(256)).status
        })
        .collect()
}

/// What the seed makes of the first `n` UploadPart calls at `rate`.
fn expected_statuses(seed: u64, rate: f64, n: u32) -> Vec<u16> {
    let f = Faults {
        seed,
        upload_part_error_rate: rate,
        ..Faults::default()
    };
    (0..u64::from(n))
        .map(|i| {
            if f.fires(FaultKind::UploadPartError, i) {
                f.error_status(i)
            } else {
                200
            }
        })
        .collect()
}

#[test]
fn upload_part_error_rate_with_a_seed_fails_the_same_calls() {
    const PARTS: u32 = 24;
    let (seed, rate) = (7, 0.5);
    let expected = expected_statuses(seed, rate, PARTS);
    // The pattern is the seed's own: with the flags ignored nothing fails, and with another
    // seed other calls fail.
    assert!(expected.contains(&200) && expected.iter().any(|s| *s >= 500));
    assert_ne!(expected, expected_statuses(0, rate, PARTS));
    for _ in 0..2 {
        let data = crate::common::tempdir();
        let emu = Emu::on_loopback(
            data.path(),
            &["--fault-upload-part-error-rate", "0.5", "--fault-seed", "7"],
        );
        let f = emu.faults();
        assert_eq!(f["seed"], 7);
        assert_eq!(f["upload_part_error_rate"], 0.5);
        // The same seed fails the same calls, run after run.
        assert_eq!(upload_part_statuses(&emu.addr, PARTS), expected);
        let c = emu.counters();
        let count = |s: u16| expected.iter().filter(|x| **x == s).count() as u64;
        assert_eq!(requests(&c, "UploadPart"), u64::from(PARTS));
        assert_eq!(
            c["faults"]["upload_part_500"].as_u64().unwrap_or(0),
            count(500)
        );
        assert_eq!(
            c["faults"]["upload_part_503"].as_u64().unwrap_or(0),
            count(503)
        );
        assert_eq!(errors(&c, "InternalError"), count(500));
        assert_eq!(errors(&c, "ServiceUnavailable"), count(503));
        let stored: u64 = c["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["stored"].as_u64().unwrap())
            .sum();
        assert_eq!(stored, count(200));
        emu.stop();
    }
}

#[test]
fn fail_import_and_delay_flags() {
    let data = crate::common::tempdir();
    let emu = Emu::on_loopback(
        data.path(),
        &[
            "--fail-import",
            "--task-seconds",
            "0",
            "--fault-delay-ms",
            "400",
        ],
    );
    let a = emu.addr.as_str();
    let f = emu.faults();
    assert_eq!(
        (f["fail_import"].as_bool(), f["delay_ms"].as_u64()),
        (Some(true), Some(400))
    );
    let started = Instant::now();
    let (s, _) = rpc(a, DEFAULT_KEY, ECS, "DescribeRegions", &[]);
    assert_eq!(s, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(
        put(a, DEFAULT_KEY, "ecs-preflight", "sys.raw", &[1u8; 4096]).status,
        200
    );
    let (s, v) = import_image(
        a,
        DEFAULT_KEY,
        "cn-hangzhou",
        &[
            ("DiskDeviceMapping.1.OSSBucket", "ecs-preflight"),
            ("DiskDeviceMapping.1.OSSObject", "sys.raw"),
        ],
    );
    assert_eq!(s, 200, "{v}");
    let t = task_attribute(a, v["TaskId"].as_str().unwrap());
    assert_eq!(t["TaskStatus"], "Failed", "{t}");
    assert_eq!(
        t["OperationProgressSet"]["OperationProgress"][0]["ErrorCode"],
        "ImportImageFailed"
    );
    emu.stop();
}

#[test]
fn state_survives_a_restart_on_the_same_data_dir() {
    let data = crate::common::tempdir();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--data",
        path_str(data.path()),
        "--task-seconds",
        "0",
    ];
    let (k, b) = (DEFAULT_KEY, "ecs-preflight");
    let body: Vec<u8> = (0..100_000u32)
        .map(|i| (i % 251).to_le_bytes()[0])
        .collect();
    let import = [
        ("ImageName", "kept-image"),
        ("ClientToken", "restart-token-1"),
        ("DiskDeviceMapping.1.OSSBucket", b),
        ("DiskDeviceMapping.1.OSSObject", "kept/disk.raw"),
    ];
    let emu = Emu::start(&args);
    let a = emu.addr.as_str();
    assert_eq!(put(a, k, b, "kept/disk.raw", &body).status, 200);
    let (s, first) = import_image(a, k, "cn-hangzhou", &import);
    assert_eq!(s, 200, "{first}");
    let r = oss(a, k, "POST", &format!("{b}/half.raw?uploads"), &[], b"");
    let upload_id = xml_el(&r.text(), "UploadId");
    let part = format!("{b}/half.raw?partNumber=1&uploadId={upload_id}");
    assert_eq!(oss(a, k, "PUT", &part, &[], &[9u8; 2048]).status, 200);
    assert!(emu.printed(&format!("data: {}", data.path().display())));
    emu.stop();
    // All of it was kept under --data.
    assert!(data.path().join("ecs.json").is_file());
    let kept = std::fs::read_to_string(data.path().join("ecs.json")).unwrap();
    assert!(kept.contains(first["ImageId"].as_str().unwrap()), "{kept}");

    let emu = Emu::start(&args);
    let a = emu.addr.as_str();
    // The object, byte for byte, without being sent again.
    let r = get(a, k, b, "kept/disk.raw");
    assert_eq!(r.status, 200);
    assert!(r.body == body, "object changed across the restart");
    // The multipart upload and its part.
    let r = oss(
        a,
        k,
        "GET",
        &format!("{b}/half.raw?uploadId={upload_id}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(xml_el(&r.text(), "PartNumber"), "1");
    assert_eq!(xml_el(&r.text(), "Size"), "2048");
    // The image, and the ClientToken that returns it.
    let (_, i) = rpc(
        a,
        k,
        ECS,
        "DescribeImages",
        &[("RegionId", "cn-hangzhou"), ("ImageName", "kept-image")],
    );
    assert_eq!(i["Images"]["Image"][0]["ImageId"], first["ImageId"], "{i}");
    let (s, again) = import_image(a, k, "cn-hangzhou", &import);
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["TaskId"], first["TaskId"]);
    let t = task_attribute(a, first["TaskId"].as_str().unwrap());
    assert_eq!(t["TaskStatus"], "Finished");
    let c = emu.counters();
    assert_eq!(requests(&c, "PutObject"), 0, "nothing was uploaded again");
    assert_eq!(requests(&c, "GetObject"), 1);
    assert_eq!(requests(&c, "ListParts"), 1);
    assert!(c["bytes_sent"].as_u64().unwrap() >= body.len() as u64);
    emu.stop();
}

/// The account is V4-only by default, as real OSS is for accounts created since 1 March 2025:
/// a V1 request gets 403 AccessDenied with EC 0002-00000080; `--allow-v1` lets it through.
#[test]
fn v1_is_refused_by_default() {
    let data = crate::common::tempdir();
    let key = DEFAULT_KEY;
    let emu = Emu::launch(&["--listen", "127.0.0.1:0", "--data", path_str(data.path())]);
    let r = put(&emu.addr, key, "ecs-preflight", "v1.raw", b"x");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.oss_code(), "AccessDenied");
    assert_eq!(xml_el(&r.text(), "EC"), "0002-00000080");
    emu.stop();
    let emu = Emu::start(&["--listen", "127.0.0.1:0", "--data", path_str(data.path())]);
    assert_eq!(
        put(&emu.addr, key, "ecs-preflight", "v1.raw", b"x").status,
        200
    );
    emu.stop();
}
