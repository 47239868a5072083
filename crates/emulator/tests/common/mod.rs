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

/// The Python with Alibaba's SDKs: `$PREFLIGHT_PYTHON`, else `<root>/.venv/bin/python`.
/// Panics (fails the test, never skips it) when neither exists.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PREFLIGHT_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "PREFLIGHT_PYTHON={} does not exist",
            p.display()
        );
        return p;
    }
    let p = workspace_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "no Python with the Alibaba Cloud SDKs: {} is missing. Run `.ci/run`, or create it with \
         `python3 -m venv .venv && .venv/bin/pip install -r tests/sdk/requirements.txt` \
         (or set PREFLIGHT_PYTHON)",
        p.display()
    );
    p
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
    let py = python();
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

/// A request description signed with OSS V1 by [`oss_v1`].
pub struct OssReq<'a> {
    /// Method.
    pub method: &'a str,
    /// Bucket.
    pub bucket: &'a str,
    /// Key as it appears in the URL path (already percent-encoded), empty for bucket level.
    pub raw_key: &'a str,
    /// Raw query string (without `?`).
    pub query: &'a str,
    /// Extra headers.
    pub headers: Vec<(&'a str, String)>,
}

/// The V1 `Authorization` and `Date` headers for `r`, signed with `secret` at `date`.
pub fn sign_v1_headers(
    r: &OssReq<'_>,
    id: &str,
    secret: &str,
    date: &str,
) -> Vec<(String, String)> {
    use preflight_emulator::oss::{sign_v1, SignInput};
    let mut map = http::HeaderMap::new();
    for (k, v) in &r.headers {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    map.insert("date", http::HeaderValue::from_str(date).unwrap());
    let query = preflight_emulator::util::parse_query(r.query, false).unwrap();
    let key = String::from_utf8_lossy(&preflight_emulator::util::pct_decode_bytes(r.raw_key))
        .into_owned();
    let input = SignInput {
        method: r.method,
        bucket: Some(r.bucket),
        key: if r.raw_key.is_empty() {
            None
        } else {
            Some(&key)
        },
        query: &query,
        headers: &map,
    };
    let sts = sign_v1::string_to_sign(&input, date);
    let mut out: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    out.push(("Date".into(), date.into()));
    out.push((
        "Authorization".into(),
        format!("OSS {id}:{}", sign_v1::sign(secret, &sts)),
    ));
    out
}

/// Now as an HTTP date.
pub fn now_http() -> String {
    preflight_emulator::util::http_date(preflight_emulator::util::unix_now())
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
    let mut url = format!("{endpoint}/{}/{}", r.bucket, r.raw_key);
    if !r.query.is_empty() {
        url.push('?');
        url.push_str(r.query);
    }
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
    use preflight_emulator::ecs::sign;
    use preflight_emulator::util::{pct, request_id_uuid, unix_now, QueryParam, Utc};
    let mut all: Vec<(String, String)> = vec![
        ("Action".into(), action.into()),
        ("Version".into(), version.into()),
        ("Format".into(), "JSON".into()),
        (
            "AccessKeyId".into(),
            preflight_emulator::DEFAULT_ACCESS_KEY_ID.into(),
        ),
        ("SignatureMethod".into(), "HMAC-SHA1".into()),
        ("SignatureVersion".into(), "1.0".into()),
        ("SignatureNonce".into(), request_id_uuid()),
        ("Timestamp".into(), Utc::from_unix(unix_now()).iso8601()),
    ];
    all.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    tamper(&mut all);
    let qp: Vec<QueryParam> = all
        .iter()
        .map(|(k, v)| QueryParam {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    let sig = sign::rpc_sign(
        preflight_emulator::DEFAULT_ACCESS_KEY_SECRET,
        &sign::rpc_string_to_sign("GET", &qp),
    );
    all.push(("Signature".into(), sig));
    let q: Vec<String> = all
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect();
    let resp = reqwest::get(format!("{endpoint}/?{}", q.join("&")))
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
