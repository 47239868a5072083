//! Against the real cloud: runs only with `ECS_PREFLIGHT_LIVE=1` and an account's key in
//! `ALIBABA_CLOUD_ACCESS_KEY_ID` / `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, plus the bucket to use
//! (`ECS_PREFLIGHT_LIVE_BUCKET`) and its region (`ECS_PREFLIGHT_LIVE_REGION`). Otherwise it
//! says that it skipped and passes: nothing here can be checked without an account.
//!
//! What it proves on the real service (see the README, "Live test"):
//! 1. `upload` signs with V4 and OSS takes it: a single PutObject and a multipart upload.
//! 2. The bucket asked for through another region's endpoint (`--region` of another region,
//!    `ECS_PREFLIGHT_LIVE_OTHER_REGION`, default cn-beijing or cn-hangzhou) is refused as
//!    `InvalidOSSBucket.NotMatched` before any byte is sent.
//! 3. `import --dry-run`: ImportImage with `DryRun=true` passes every check of ECS.
//! 4. Every object and multipart upload it made is deleted, and it checks that none is left.
//!
//! `ECS_PREFLIGHT_LIVE_OSS_ENDPOINT`, `_ECS_ENDPOINT` and `_RAM_ENDPOINT` point it elsewhere:
//! a rehearsal against `ecs-preflight emulator --strict --service-endpoints` checks the
//! test itself before it costs anything.
//!
//! A plain `main` (`harness = false`) so that the skip line is never swallowed by the test
//! harness's output capture.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::sync::Arc;

use serde_json::Value;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

struct Live {
    region: String,
    other_region: String,
    bucket: String,
    prefix: String,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Live {
    fn from_env() -> Result<Live, String> {
        if env("ECS_PREFLIGHT_LIVE").as_deref() != Some("1") {
            return Err("ECS_PREFLIGHT_LIVE is not 1".into());
        }
        let missing: Vec<&str> = [
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            "ECS_PREFLIGHT_LIVE_BUCKET",
            "ECS_PREFLIGHT_LIVE_REGION",
        ]
        .into_iter()
        .filter(|k| env(k).is_none())
        .collect();
        if !missing.is_empty() {
            return Err(format!("{} not set", missing.join(", ")));
        }
        let region = env("ECS_PREFLIGHT_LIVE_REGION").unwrap_or_default();
        let other_region = env("ECS_PREFLIGHT_LIVE_OTHER_REGION").unwrap_or_else(|| {
            if region == "cn-beijing" {
                "cn-hangzhou".into()
            } else {
                "cn-beijing".into()
            }
        });
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Ok(Live {
            region,
            other_region,
            bucket: env("ECS_PREFLIGHT_LIVE_BUCKET").unwrap_or_default(),
            prefix: format!("ecs-preflight-live/{nanos:x}/"),
            dir: tempfile::tempdir().map_err(|e| e.to_string())?,
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?,
        })
    }

    /// `ecs-preflight ARGS` with the environment's key, a private checkpoint directory, JSON
    /// output and the rehearsal endpoints if any (`rpc`: the command talks to ECS and RAM).
    fn run(&self, args: &[&str], rpc: bool) -> (Output, Value) {
        let mut flags = Vec::new();
        let mut services = vec![("--oss-endpoint", "ECS_PREFLIGHT_LIVE_OSS_ENDPOINT")];
        if rpc {
            services.push(("--ecs-endpoint", "ECS_PREFLIGHT_LIVE_ECS_ENDPOINT"));
            services.push(("--ram-endpoint", "ECS_PREFLIGHT_LIVE_RAM_ENDPOINT"));
        }
        for (flag, var) in services {
            if let Some(url) = env(var) {
                flags.extend([flag.to_string(), url]);
            }
        }
        let out = Command::new(env!("CARGO_BIN_EXE_ecs-preflight"))
            .args(args)
            .args(&flags)
            .args(["--output", "json"])
            .env_remove("ALIBABA_CLOUD_PROFILE")
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("NO_COLOR", "1")
            .output()
            .expect("run ecs-preflight");
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}) for {args:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out, v)
    }

    fn oss(&self) -> preflight_oss::Client {
        let creds = Arc::new(preflight_aliyun::CredentialProvider::fixed(
            preflight_aliyun::Credentials::new(
                env("ALIBABA_CLOUD_ACCESS_KEY_ID").unwrap_or_default(),
                env("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
                    .unwrap_or_default()
                    .as_str(),
            ),
        ));
        let cfg = preflight_oss::ClientConfig::new(&self.region, &self.bucket).with_endpoint(
            env("ECS_PREFLIGHT_LIVE_OSS_ENDPOINT")
                .unwrap_or_else(|| format!("https://oss-{}.aliyuncs.com", self.region)),
        );
        preflight_oss::Client::new(cfg, creds).expect("OSS client")
    }

    /// Deletes every object and aborts every multipart upload under this run's prefix, then
    /// checks that none is left. Returns what could not be cleaned.
    fn clean_up(&self, keys: &[String]) -> Vec<String> {
        let client = self.oss();
        let mut left = Vec::new();
        self.rt.block_on(async {
            for key in keys {
                if let Err(e) = client.delete_object(key).await {
                    left.push(format!("DeleteObject {key}: {e}"));
                }
            }
            match client.list_multipart_uploads(&self.prefix).await {
                Ok(uploads) => {
                    for u in uploads {
                        if let Err(e) = client.abort_multipart_upload(&u.key, &u.upload_id).await {
                            left.push(format!("AbortMultipartUpload {}: {e}", u.key));
                        }
                    }
                }
                Err(e) => left.push(format!("ListMultipartUploads {}: {e}", self.prefix)),
            }
            for key in keys {
                match client.head_object(key).await {
                    Err(e) if e.kind() == preflight_oss::ErrorKind::NotFound => {}
                    Ok(_) => left.push(format!("{key} is still there")),
                    Err(e) => left.push(format!("HeadObject {key}: {e}")),
                }
            }
            match client.list_multipart_uploads(&self.prefix).await {
                Ok(u) if u.is_empty() => {}
                Ok(u) => left.push(format!("{} multipart uploads still open", u.len())),
                Err(e) => left.push(format!("ListMultipartUploads {}: {e}", self.prefix)),
            }
        });
        left
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// A sparse 5 GiB qcow2 (a few hundred KiB on disk), made by qemu-img.
fn small_qcow2(dir: &Path) -> PathBuf {
    let p = dir.join("small.qcow2");
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", path(&p), "5G"])
        .output()
        .expect("qemu-img (run fixtures/install-deps.sh)");
    assert!(out.status.success(), "{out:?}");
    p
}

/// 3 MiB of pseudo-random bytes: three 1 MiB parts.
fn random_raw(dir: &Path) -> PathBuf {
    let p = dir.join("parts.raw");
    preflight_testkit::Rng::write_file(&p, 3 << 20, 0x2545_f491_4f6c_dd1d);
    p
}

fn codes(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The checks, in order; panics on the first that fails.
fn checks(live: &Live, keys: &mut Vec<String>) {
    let dir = live.dir.path();
    let small = small_qcow2(dir);
    let parts = random_raw(dir);
    let (region, bucket) = (live.region.as_str(), live.bucket.as_str());

    // 1. V4 uploads: one PutObject, one multipart upload.
    let key = format!("{}small.qcow2", live.prefix);
    keys.push(key.clone());
    let (out, v) = live.run(
        &[
            "upload",
            path(&small),
            "--region",
            region,
            "--bucket",
            bucket,
            "--object",
            &key,
        ],
        false,
    );
    assert_eq!(out.status.code(), Some(0), "V4 PutObject: {v}");
    assert_eq!(v["status"], "uploaded", "{v}");
    let multipart_key = format!("{}parts.raw", live.prefix);
    keys.push(multipart_key.clone());
    let (out, v) = live.run(
        &[
            "upload",
            path(&parts),
            "--region",
            region,
            "--bucket",
            bucket,
            "--object",
            &multipart_key,
            "--part-size",
            "1MiB",
            "--multipart-threshold",
            "1MiB",
            "--parallel",
            "2",
            "--convert",
            "none",
        ],
        false,
    );
    assert_eq!(out.status.code(), Some(0), "V4 multipart upload: {v}");
    let meta = live
        .rt
        .block_on(live.oss().head_object(&key))
        .unwrap_or_else(|e| panic!("HeadObject {key}: {e}"));
    assert!(meta.size > 0, "{meta:?}");
    eprintln!("live: V4 PutObject and multipart upload accepted by OSS in {region}");

    // 2. The bucket through another region's endpoint: refused before any byte is sent.
    let elsewhere = format!("{}elsewhere.qcow2", live.prefix);
    keys.push(elsewhere.clone());
    let (out, v) = live.run(
        &[
            "upload",
            path(&small),
            "--region",
            &live.other_region,
            "--bucket",
            bucket,
            "--object",
            &elsewhere,
        ],
        false,
    );
    assert_eq!(out.status.code(), Some(1), "bucket in another region: {v}");
    assert!(
        codes(&v).iter().any(|c| c == "InvalidOSSBucket.NotMatched"),
        "{v}"
    );
    eprintln!(
        "live: the bucket asked for in {} is refused as InvalidOSSBucket.NotMatched",
        live.other_region
    );

    // 3. ImportImage with DryRun=true.
    let image_name = format!(
        "ecs-preflight-live-{}",
        live.prefix
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("run")
    );
    let (out, v) = live.run(
        &[
            "import",
            "--region",
            region,
            "--bucket",
            bucket,
            "--object",
            &key,
            "--format",
            "QCOW2",
            "--disk-image-size",
            "5",
            "--platform",
            "Ubuntu",
            "--image-name",
            &image_name,
            "--dry-run",
        ],
        true,
    );
    assert_eq!(out.status.code(), Some(0), "ImportImage DryRun=true: {v}");
    assert_eq!(v["status"], "dry_run_passed", "{v}");
    eprintln!("live: ImportImage DryRun=true passed in {region}");
}

fn main() -> ExitCode {
    let live = match Live::from_env() {
        Ok(l) => l,
        Err(why) => {
            eprintln!(
                "live: SKIPPED ({why}): nothing was sent. Set ECS_PREFLIGHT_LIVE=1, \
                 ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET, \
                 ECS_PREFLIGHT_LIVE_BUCKET and ECS_PREFLIGHT_LIVE_REGION to run it (README, \"Live test\")."
            );
            return ExitCode::SUCCESS;
        }
    };
    eprintln!(
        "live: bucket {} in {}, objects under {}",
        live.bucket, live.region, live.prefix
    );
    let mut keys = Vec::new();
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| checks(&live, &mut keys)));
    // Cleaned up whatever happened above.
    let left = live.clean_up(&keys);
    for l in &left {
        eprintln!("live: NOT CLEANED: {l}");
    }
    match (result, left.is_empty()) {
        (Ok(()), true) => {
            eprintln!("live: passed; every object and upload it made is deleted");
            ExitCode::SUCCESS
        }
        _ => ExitCode::FAILURE,
    }
}
