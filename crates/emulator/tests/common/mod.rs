//! Helpers shared by the emulator's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use preflight_emulator::{Config, Emulator};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Starts an emulator on an ephemeral port with data in a fresh temp dir, for an account
/// that still accepts V1 (see below); `f` may turn V4-only back on.
pub async fn start_with(f: impl FnOnce(&mut Config)) -> (Emulator, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::for_tests(dir.path().join("data"));
    cfg.strict.v4_only = false; // these tests sign with the V1 helpers below; strict.rs checks the V4-only default
    f(&mut cfg);
    let emu = preflight_emulator::start(cfg)
        .await
        .expect("start emulator");
    (emu, dir)
}

/// Runs a script from tests/sdk with the SDK Python; returns (success, stdout+stderr).
pub async fn run_script(script: &str, args: Vec<String>) -> (bool, String) {
    let py = preflight_testkit::sdk_python();
    let path = workspace_root().join("tests/sdk").join(script);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(path)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .output()
            .expect("run python")
    })
    .await
    .expect("join");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub use preflight_testkit::emulator::{now_http, Key, OssReq, DEFAULT_KEY};

/// The V1 `Authorization` and `Date` headers for `r`, signed with `secret` at `date`, after
/// the request's own.
pub fn sign_v1_headers(
    r: &OssReq<'_>,
    id: &str,
    secret: &str,
    date: &str,
) -> Vec<(String, String)> {
    let key = Key {
        id,
        secret,
        token: None,
    };
    r.signed_headers(key, date)
}

/// Sends `r` signed with the default key via reqwest.
pub async fn oss(
    endpoint: &str,
    r: OssReq<'_>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    oss_as(
        endpoint,
        r,
        body,
        preflight_emulator::DEFAULT_ACCESS_KEY_ID,
        preflight_emulator::DEFAULT_ACCESS_KEY_SECRET,
    )
    .await
}

/// Sends `r` signed with the given key.
pub async fn oss_as(
    endpoint: &str,
    r: OssReq<'_>,
    body: impl Into<reqwest::Body>,
    id: &str,
    secret: &str,
) -> reqwest::Response {
    let headers = sign_v1_headers(&r, id, secret, &now_http());
    let url = format!("{endpoint}{}", r.target());
    let method = reqwest::Method::from_bytes(r.method.as_bytes()).unwrap();
    let mut b = reqwest::Client::new().request(method, url).body(body);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.send().await.expect("send")
}

/// `<Code>` of an XML error body.
pub fn xml_code(body: &str) -> String {
    body.split("<Code>")
        .nth(1)
        .and_then(|s| s.split("</Code>").next())
        .unwrap_or("")
        .to_string()
}

/// Text of the first `<name>` element.
pub fn xml_el(body: &str, name: &str) -> String {
    body.split(&format!("<{name}>"))
        .nth(1)
        .and_then(|s| s.split(&format!("</{name}>")).next())
        .unwrap_or("")
        .to_string()
}

/// Simple PUT of an object.
pub async fn put(endpoint: &str, bucket: &str, key: &str, body: Vec<u8>) -> reqwest::Response {
    oss(
        endpoint,
        OssReq {
            method: "PUT",
            bucket,
            raw_key: key,
            query: "",
            headers: vec![],
        },
        body,
    )
    .await
}

/// Simple GET of an object.
pub async fn get(endpoint: &str, bucket: &str, key: &str) -> reqwest::Response {
    oss(
        endpoint,
        OssReq {
            method: "GET",
            bucket,
            raw_key: key,
            query: "",
            headers: vec![],
        },
        Vec::new(),
    )
    .await
}

/// An ECS/RAM RPC call signed with HMAC-SHA1 (GET query), returning (status, JSON body).
pub async fn rpc(
    endpoint: &str,
    version: &str,
    action: &str,
    params: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    rpc_with(endpoint, version, action, params, |_| {}).await
}

/// Like [`rpc`], with a hook to tamper with the common parameters before signing.
pub async fn rpc_with(
    endpoint: &str,
    version: &str,
    action: &str,
    params: &[(&str, &str)],
    tamper: impl FnOnce(&mut Vec<(String, String)>),
) -> (u16, serde_json::Value) {
    let query =
        preflight_testkit::emulator::rpc_query(DEFAULT_KEY, version, action, params, tamper);
    let resp = reqwest::get(format!("{endpoint}/?{query}"))
        .await
        .expect("rpc send");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Every file under `root`, recursively.
pub fn files_under(root: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out
}
