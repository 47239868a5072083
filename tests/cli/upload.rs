//! `ecs-preflight upload` against an in-process emulator: rules refuse before any byte is
//! sent; kill -9 mid-way and the same command sends only the missing parts; a changed file
//! aborts the stale upload; `--abort` cleans up.

use crate::common::EmuEnv;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use preflight_emulator::{Config, Faults, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
use preflight_testkit::emulator::stored_parts;
use preflight_testkit::Rng;

const MIB: u64 = 1 << 20;

crate::common::emu_env!(pub(crate));

impl Env {
    pub(crate) fn new() -> Self {
        Env::with(|_| {})
    }

    /// An emulator whose configuration `tweak` adjusts (keys, buckets).
    pub(crate) fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        Env(EmuEnv::start(|data_dir| {
            let mut cfg = crate::common::strict_config(data_dir);
            cfg.buckets = vec![
                "images@cn-hangzhou".parse().unwrap(),
                "faraway@cn-beijing".parse().unwrap(),
                "vault@cn-hangzhou:encrypted".parse().unwrap(),
            ];
            tweak(&mut cfg);
            cfg
        }))
    }

    /// The command with the emulator's key in the environment and a private HOME and cache.
    pub(crate) fn cmd(&self, image: &Path, bucket: &str, extra: &[&str]) -> Command {
        let mut c = self.command();
        c.arg("upload")
            .arg(image)
            .args(["--region", "cn-hangzhou", "--bucket", bucket])
            .args(crate::common::endpoint_flags(self.emu(), false))
            .args(extra);
        c
    }

    pub(crate) fn image(&self, name: &str, size: u64, seed: u64) -> std::path::PathBuf {
        let p = self.dir.path().join(name);
        Rng::write_file(&p, size, seed);
        p
    }

    /// The bytes of an object, fetched over HTTP with our OSS client.
    pub(crate) fn download(&self, bucket: &str, key: &str) -> Vec<u8> {
        let cfg = preflight_oss::ClientConfig::new("cn-hangzhou", bucket)
            .with_endpoint(self.emu().endpoint());
        let creds = std::sync::Arc::new(preflight_aliyun::CredentialProvider::fixed(
            preflight_aliyun::Credentials::new(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
        ));
        let client = preflight_oss::Client::new(cfg, creds).unwrap();
        self.rt
            .block_on(client.get_object(key))
            .unwrap_or_else(|e| panic!("GetObject {key}: {e}"))
            .to_vec()
    }

    /// The scratch directory.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

pub(crate) use crate::common::json_of;

pub(crate) const MULTIPART: &[&str] = &[
    "--part-size",
    "1MiB",
    "--parallel",
    "2",
    "--multipart-threshold",
    "1MiB",
    "-o",
    "json",
];

/// Starts the upload slowed down, kills it with SIGKILL once about half the parts are stored,
/// and returns the part numbers the server stored.
pub(crate) fn kill_half_way(env: &Env, image: &Path, parts: u64) -> Vec<u32> {
    kill_half_way_with(env, image, parts, MULTIPART)
}

/// [`kill_half_way`] with these flags.
pub(crate) fn kill_half_way_with(env: &Env, image: &Path, parts: u64, flags: &[&str]) -> Vec<u32> {
    env.emu().set_faults(Faults {
        bandwidth_bytes_per_sec: 6 * MIB,
        ..Faults::default()
    });
    let mut child = env
        .cmd(image, "images", flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = env
            .emu()
            .counters()
            .parts
            .iter()
            .filter(|p| p.stored > 0)
            .count() as u64;
        if stored >= parts / 2 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the upload ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup, no signal handler.
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    env.emu().set_faults(Faults::default());
    let stored = stored_parts(&env.emu().counters());
    assert!(
        (stored.len() as u64) < parts,
        "everything was stored before the kill"
    );
    env.emu().reset_counters();
    stored
}

#[test]
fn refused_by_rules_before_any_byte_is_sent() {
    let env = Env::new();
    let image = env.image("disk.raw", 2 * MIB, 1);
    for (bucket, code) in [
        ("faraway", "InvalidOSSBucket.NotMatched"),
        ("vault", "InvalidOSSBucket.EncryptUnsupported"),
        ("missing-bucket", "InvalidOSSBucket.NotFound"),
    ] {
        let out = env.cmd(&image, bucket, &["-o", "json"]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{bucket}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json = json_of(&out);
        assert_eq!(json["status"], "refused");
        let codes: Vec<&str> = json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&code), "{bucket}: {codes:?}");
    }
    let n = env.emu().counters();
    for api in ["PutObject", "InitiateMultipartUpload", "UploadPart"] {
        assert_eq!(n.requests_for(api), 0, "{api} was called");
    }
}

#[test]
fn environment_errors_exit_2() {
    let env = Env::new();
    let image = env.image("disk.raw", MIB, 2);
    let out = env
        .cmd(&env.dir.path().join("nope.raw"), "images", &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = env
        .cmd(&image, "images", &[])
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Alibaba Cloud credentials"), "{err}");
    let out = env
        .cmd(
            &image,
            "images",
            &["--part-size", "10KiB", "--multipart-threshold", "1KiB"],
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.emu().counters().requests_for("UploadPart"), 0);
}

#[test]
fn single_put_then_summary() {
    let env = Env::new();
    let image = env.image("small.qcow2.raw", 3 * MIB, 3);
    let out = env
        .cmd(&image, "images", &["--object", "small.raw", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = json_of(&out);
    assert_eq!(
        (
            json["status"].as_str(),
            json["parts"].as_u64(),
            json["size"].as_u64()
        ),
        (Some("uploaded"), Some(1), Some(3 * MIB))
    );
    let crc = preflight_oss::crc::crc64(&std::fs::read(&image).unwrap()).to_string();
    assert_eq!(json["crc64"].as_str(), Some(crc.as_str()));
    assert_eq!(env.emu().counters().requests_for("PutObject"), 1);
}

/// `--quiet` silences progress and the human summary; asked-for JSON (the
/// result, or a refusal) is still printed.
#[test]
fn quiet_with_json_still_prints_the_json() {
    let env = Env::new();
    let image = env.image("q.raw", MIB, 7);
    let out = env
        .cmd(&image, "images", &["--quiet", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["status"], "uploaded");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env
        .cmd(&image, "faraway", &["--quiet", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["status"], "refused");
    // Human output with --quiet: nothing.
    let out = env.cmd(&image, "images", &["--quiet"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

#[test]
fn kill_9_then_rerun_sends_only_missing_parts() {
    let env = Env::new();
    let image = env.image("big.raw", 24 * MIB, 4);
    let stored = kill_half_way(&env, &image, 24);
    let out = env.cmd(&image, "images", MULTIPART).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = json_of(&out);
    let n = env.emu().counters();
    assert_eq!(n.requests_for("InitiateMultipartUpload"), 0);
    assert!(n.requests_for("ListParts") >= 1);
    assert_eq!(n.requests_for("UploadPart"), 24 - stored.len() as u64);
    assert!(
        n.parts.iter().all(|p| !stored.contains(&p.part_number)),
        "a stored part was sent again"
    );
    assert_eq!(json["parts_reused"].as_u64(), Some(stored.len() as u64));
    let crc = preflight_oss::crc::crc64(&std::fs::read(&image).unwrap()).to_string();
    assert_eq!(json["crc64"].as_str(), Some(crc.as_str()));
    // A rerun finds the identical object (size and CRC-64) and sends nothing.
    env.emu().reset_counters();
    let out = env.cmd(&image, "images", MULTIPART).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["already_there"], true);
    let n = env.emu().counters();
    assert_eq!(n.requests_for("InitiateMultipartUpload"), 0);
    assert_eq!(
        n.requests_for("UploadPart") + n.requests_for("PutObject"),
        0
    );
    // Success deleted the checkpoint: --force starts a new upload.
    let mut forced = MULTIPART.to_vec();
    forced.push("--force");
    let out = env.cmd(&image, "images", &forced).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["already_there"], false);
    assert_eq!(
        env.emu().counters().requests_for("InitiateMultipartUpload"),
        1
    );
}

#[test]
fn changed_file_aborts_the_stale_upload_and_abort_flag_cleans_up() {
    let env = Env::new();
    let image = env.image("vm.raw", 16 * MIB, 5);
    kill_half_way(&env, &image, 16);
    Rng::write_file(&image, 16 * MIB, 6);
    let out = env.cmd(&image, "images", MULTIPART).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("changed") && err.contains("aborted"), "{err}");
    let n = env.emu().counters();
    assert_eq!(n.requests_for("AbortMultipartUpload"), 1);
    assert_eq!(n.requests_for("UploadPart"), 16);
    assert_eq!(json_of(&out)["parts_reused"].as_u64(), Some(0));

    env.emu().reset_counters();
    // The same file again: --force, or the identical object on OSS would end it at once.
    let mut forced = MULTIPART.to_vec();
    forced.push("--force");
    kill_half_way_with(&env, &image, 16, &forced);
    let out = env.cmd(&image, "images", &["--abort"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("aborted upload"));
    assert_eq!(env.emu().counters().requests_for("AbortMultipartUpload"), 1);
    let out = env.cmd(&image, "images", &forced).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        env.emu().counters().requests_for("InitiateMultipartUpload"),
        1
    );
    assert_eq!(json_of(&out)["parts_reused"].as_u64(), Some(0));
}

#[test]
fn an_identical_object_ends_the_run_and_aborts_an_obsolete_upload() {
    let env = Env::new();
    let image = env.image("vm.raw", 16 * MIB, 10);
    let out = env.cmd(&image, "images", MULTIPART).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    env.emu().reset_counters();
    // Another content is half uploaded (its checkpoint and parts stay), then the file is
    // back to what OSS holds.
    Rng::write_file(&image, 16 * MIB, 12);
    kill_half_way(&env, &image, 16);
    Rng::write_file(&image, 16 * MIB, 10);
    let out = env.cmd(&image, "images", MULTIPART).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_of(&out)["already_there"], true);
    let n = env.emu().counters();
    assert_eq!(n.requests_for("UploadPart"), 0);
    assert_eq!(
        n.requests_for("AbortMultipartUpload"),
        1,
        "the obsolete upload's parts are deleted"
    );
    let out = env.cmd(&image, "images", &["--abort"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no interrupted upload"),
        "and its checkpoint is gone"
    );
}

#[test]
fn ctrl_c_leaves_a_resumable_upload_and_no_secret_is_written() {
    let env = Env::new();
    let image = env.image("int.raw", 16 * MIB, 7);
    env.emu().set_faults(Faults {
        bandwidth_bytes_per_sec: 4 * MIB,
        ..Faults::default()
    });
    let child = env
        .cmd(&image, "images", MULTIPART)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while env
        .emu()
        .counters()
        .parts
        .iter()
        .filter(|p| p.stored > 0)
        .count()
        < 4
    {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    crate::common::sh("kill", &["-INT", &pid]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("resumable") && err.contains("--abort"),
        "{err}"
    );
    env.emu().set_faults(Faults::default());

    // The checkpoint names the upload, never a credential.
    let cache = env.dir.path().join("cache");
    let mut seen = 0;
    for entry in walk(&cache) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains(DEFAULT_ACCESS_KEY_SECRET),
            "{}",
            entry.display()
        );
        seen += usize::from(text.contains("upload_id"));
    }
    assert_eq!(seen, 1, "one checkpoint expected");

    env.emu().reset_counters();
    let out = env.cmd(&image, "images", MULTIPART).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(json_of(&out)["parts_reused"].as_u64().unwrap() >= 4);
    assert_eq!(
        env.emu().counters().requests_for("InitiateMultipartUpload"),
        0
    );

    // A wrong secret: refused, and the secret appears nowhere in the output.
    let wrong = "WrongSecretValueThatMustNotLeak123";
    let out = env
        .cmd(&image, "images", &[])
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", wrong)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("SignatureDoesNotMatch"), "{all}");
    assert!(!all.contains(wrong) && !all.contains(&wrong[..12]), "{all}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A one-purpose HTTP server: answers each request with `answer(method, target)` and records
/// the request heads. Stands in for the ECS metadata service and STS, which the credential
/// chain finds through their documented override variables.
fn fake_server(
    answer: impl Fn(&str, &str) -> (u16, String) + Send + 'static,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let mut first = head.lines().next().unwrap_or_default().split(' ');
            let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
            let (status, body) = answer(method, target);
            log.lock().unwrap().push(head.clone());
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (endpoint, seen)
}

const STS_ID: &str = "STS.NUz9Fv8Preflight";
const STS_SECRET: &str = "StsSecretForTheEmulator000000000";
const STS_TOKEN: &str = "CAISPreflightSecurityToken";

/// An emulator that also knows the STS key (the test downloads with the default key), for a
/// command with no key in its environment or HOME: only the chain's source can supply one.
fn sts_env() -> Env {
    Env::with(|cfg| {
        cfg.access_keys = vec![
            format!("{DEFAULT_ACCESS_KEY_ID}:{DEFAULT_ACCESS_KEY_SECRET}")
                .parse()
                .unwrap(),
            format!("{STS_ID}:{STS_SECRET}:{STS_TOKEN}")
                .parse()
                .unwrap(),
        ];
    })
}

fn keyless(mut c: Command) -> Command {
    c.env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
        .env_remove("ALIBABA_CLOUD_ECS_METADATA_DISABLED")
        .env_remove("ALIBABA_CLOUD_ROLE_ARN")
        .env_remove("ALIBABA_CLOUD_OIDC_PROVIDER_ARN")
        .env_remove("ALIBABA_CLOUD_OIDC_TOKEN_FILE");
    c
}

#[test]
fn credentials_from_the_ecs_instance_ram_role() {
    let env = sts_env();
    let expiration = "2099-01-01T00:00:00Z";
    let (metadata, seen) = fake_server(move |method, target| match (method, target) {
        ("PUT", "/latest/api/token") => (200, "metadata-token-1".into()),
        ("GET", "/latest/meta-data/ram/security-credentials/") => (200, "ImageBuilderRole".into()),
        ("GET", "/latest/meta-data/ram/security-credentials/ImageBuilderRole") => (
            200,
            format!(
                r#"{{"Code":"Success","AccessKeyId":"{STS_ID}","AccessKeySecret":"{STS_SECRET}","SecurityToken":"{STS_TOKEN}","Expiration":"{expiration}","LastUpdated":"2026-12-02T00:00:00Z"}}"#
            ),
        ),
        _ => (404, String::new()),
    });
    let image = env.image("disk.raw", 2 * MIB, 7);
    let out = keyless(env.cmd(&image, "images", &["--output", "json"]))
        .env("ALIBABA_CLOUD_ECS_METADATA_SERVICE_ENDPOINT", &metadata)
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(
        env.download("images", "disk.raw"),
        std::fs::read(&image).unwrap()
    );
    let heads = seen.lock().unwrap().join("\n");
    // IMDSv2: the credential request carried the session token.
    assert!(
        heads
            .to_ascii_lowercase()
            .contains("x-aliyun-ecs-metadata-token: metadata-token-1"),
        "{heads}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("credentials: ECS"), "{stderr}");
    assert!(
        !stderr.contains(STS_SECRET)
            && !out
                .stdout
                .windows(STS_SECRET.len())
                .any(|w| w == STS_SECRET.as_bytes())
    );
}

/// OIDC from the environment (RRSA): AssumeRoleWithOIDC at the emulator's STS port
/// (`--sts-endpoint` wins over `ALIBABA_CLOUD_STS_ENDPOINT`), anonymous, and the key it
/// returns uploads. A token file that holds no JWT is refused by STS.
#[test]
fn credentials_from_oidc_role_assumption() {
    let env = Env::new();
    let token_file = env.dir().join("oidc-token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.preflight.sig\n").unwrap();
    let image = env.image("disk.raw", 2 * MIB, 8);
    let run = || {
        keyless(env.cmd(&image, "images", &["--output", "json"]))
            .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
            .env(
                "ALIBABA_CLOUD_ROLE_ARN",
                "acs:ram::1234567890123456:role/image-builder",
            )
            .env(
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                "acs:ram::1234567890123456:oidc-provider/ack-rrsa",
            )
            .env("ALIBABA_CLOUD_OIDC_TOKEN_FILE", &token_file)
            // Loses to --sts-endpoint: nothing listens there.
            .env("ALIBABA_CLOUD_STS_ENDPOINT", "http://127.0.0.1:9")
            .output()
            .unwrap()
    };
    let out = run();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(
        env.download("images", "disk.raw"),
        std::fs::read(&image).unwrap()
    );
    let c = env.emu().counters();
    assert_eq!(c.requests_for("AssumeRoleWithOIDC"), 1);
    assert_eq!(c.signatures_for("anonymous"), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("credentials: OIDC"));
    std::fs::write(&token_file, "not a token").unwrap();
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("AuthenticationFail.OIDCToken.Invalid"),
        "{err}"
    );
}

/// The part buffers (`--parallel` × part size) are printed, and refused above the limit
/// before any request; `--multipart-threshold` above 5 GiB (one PUT's limit) is refused.
#[test]
fn memory_bound_and_threshold_cap() {
    let env = Env::new();
    let image = env.dir().join("big.raw");
    let f = std::fs::File::create(&image).unwrap();
    f.set_len(20 << 30).unwrap(); // sparse: 20 GiB of nothing
    let out = env
        .cmd(
            &image,
            "images",
            &[
                "--convert",
                "none",
                "--part-size",
                "1GiB",
                "--parallel",
                "16",
            ],
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("16384 MiB of memory"), "{err}");
    assert_eq!(
        env.emu().counters().requests_for("InitiateMultipartUpload"),
        0
    );
    let small = env.image("small.raw", MIB, 5);
    let out = env
        .cmd(&small, "images", &["--multipart-threshold", "6GiB"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("5GiB"));
    // Within bounds: the memory is said.
    let mid = env.image("mid.raw", 3 * MIB, 6);
    let out = env.cmd(&mid, "images", MULTIPART).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("memory: about 2.00 MiB"), "{err}");
}

/// On a bucket whose default storage class is Archive, the object is written Standard (an
/// Archive object cannot be imported) and the summary names the bucket's default class.
#[test]
fn an_archive_default_bucket_gets_a_standard_object() {
    let env = Env::with(|cfg| cfg.storage_class = preflight_emulator::StorageClass::Archive);
    for (name, flags) in [("one.raw", &["-o", "json"][..]), ("parts.raw", MULTIPART)] {
        let image = env.image(name, 3 * MIB, 8);
        let out = env.cmd(&image, "images", flags).output().unwrap();
        let v = json_of(&out);
        assert_eq!(out.status.code(), Some(0), "{v}");
        assert_eq!(v["bucket_facts"]["storage_class"], "Archive", "{v}");
        let cfg = preflight_oss::ClientConfig::new("cn-hangzhou", "images")
            .with_endpoint(env.emu().endpoint());
        let creds = std::sync::Arc::new(preflight_aliyun::CredentialProvider::fixed(
            preflight_aliyun::Credentials::new(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
        ));
        let client = preflight_oss::Client::new(cfg, creds).unwrap();
        let head = env.rt.block_on(client.head_object(name)).unwrap();
        assert_eq!(head.storage_class.as_deref(), Some("Standard"), "{name}");
    }
}

/// A metadata service at a local address that says the instance is in `region`.
fn metadata_in(region: &'static str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut first = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let _ = r.read_line(&mut first);
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let reply = if first.starts_with("GET /latest/meta-data/region-id") {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{region}",
                    region.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            };
            let _ = s.write_all(reply.as_bytes());
        }
    });
    url
}

/// Run on an ECS instance in the import region (the metadata service says so), the tool
/// says the internal endpoint is free and faster; in another region it does not.
#[test]
fn on_ecs_in_the_region_the_internal_endpoint_is_advised() {
    let env = Env::new();
    let image = env.image("web.raw", MIB, 9);
    for (region, advised) in [("cn-hangzhou", true), ("cn-beijing", false)] {
        let mut c = env.cmd(&image, "images", &["--force"]);
        c.env_remove("ALIBABA_CLOUD_ECS_METADATA_DISABLED").env(
            "ALIBABA_CLOUD_ECS_METADATA_SERVICE_ENDPOINT",
            metadata_in(region),
        );
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert_eq!(
            err.contains("internal OSS endpoint is free") && err.contains("--oss-internal"),
            advised,
            "on ECS in {region}: {err}"
        );
    }
}

/// `--max-upload-rate` reaches the uploader: 2 MiB at 512 KiB/s takes about 4 s whatever
/// the parts in flight (a lower bound only: a loaded machine may take longer). With
/// `--content-md5` too, the object is whole; a rate below the floor is a usage error
/// naming it. (That Content-MD5 is sent only when asked is pinned in
/// `crates/oss/tests/integrity.rs`, which sees the headers.)
#[test]
fn max_upload_rate_and_content_md5_reach_the_uploader() {
    let env = Env::new();
    let image = env.image("paced.raw", 2 * MIB, 11);
    let mut flags = MULTIPART.to_vec();
    flags.extend(["--max-upload-rate", "512K", "--content-md5"]);
    let started = Instant::now();
    let out = env.cmd(&image, "images", &flags).output().unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(took >= Duration::from_millis(2_900), "{took:?}: {err}");
    let json = json_of(&out);
    let crc = preflight_oss::crc::crc64(&std::fs::read(&image).unwrap()).to_string();
    assert_eq!(json["crc64"].as_str(), Some(crc.as_str()));
    assert_eq!(
        env.download("images", json["key"].as_str().unwrap()),
        std::fs::read(&image).unwrap()
    );

    let out = env
        .cmd(&image, "images", &["--max-upload-rate", "10K"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("10K"), "{err}");
    assert_eq!(
        env.emu().counters().requests_for("InitiateMultipartUpload"),
        1
    );
}

#[test]
fn abort_prints_its_outcome_as_json() {
    let env = Env::new();
    let image = env.image("ab.raw", 16 * MIB, 21);
    kill_half_way(&env, &image, 16);
    // `upload --abort -o json` plus `extra`: it succeeds; its output.
    let abort = |extra: &[&str]| {
        let out = env
            .cmd(
                &image,
                "images",
                &[&["--abort", "-o", "json"], extra].concat(),
            )
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let out = abort(&[]);
    let v = json_of(&out);
    assert_eq!(v["status"], "aborted", "{v}");
    assert_eq!(v["bucket"], "images");
    assert_eq!(v["aborted"][0]["key"], "ab.raw", "{v}");
    assert!(v["aborted"][0]["upload_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    // The JSON is the result: the human lines are not said as well.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("aborted upload"), "{err}");
    assert_eq!(env.emu().counters().requests_for("AbortMultipartUpload"), 1);

    // Nothing recorded any more: said as such, with what OSS has in progress for the key.
    let v = json_of(&abort(&["-q"]));
    assert_eq!(v["status"], "not_recorded", "{v}");
    assert_eq!(v["aborted"], serde_json::json!([]));
    assert!(
        v["not_recorded"]
            .as_array()
            .is_some_and(|keys| keys.iter().any(|k| k["key"] == "ab.raw")),
        "{v}"
    );
}
