//! OSS request handling: addressing (path style and virtual-hosted), key validation, which API
//! a request is, authentication, and error rendering.

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::config::BucketConfig;
use crate::faults::FaultKind;
use crate::oss::error::OssError;
use crate::oss::{auth, body, bucket, multipart, object, SignInput};
use crate::server::{empty, full, Abort, Body, Shared};
use crate::util::{http_date, parse_query, pct_decode_bytes, random_hex, unix_now, QueryParam};

/// Longest object key in bytes (OSS limit).
pub const MAX_KEY_BYTES: usize = 1023;

/// How a handler fails: an OSS error to answer, or a connection to drop.
#[derive(Debug)]
pub enum Fail {
    /// Answer this error.
    Oss(OssError),
    /// Drop the connection (reset fault).
    Abort,
}

impl From<OssError> for Fail {
    fn from(e: OssError) -> Self {
        Fail::Oss(e)
    }
}

/// Result of an OSS handler.
pub type OssResult = Result<Response<Body>, Fail>;

/// The APIs the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// PutObject.
    PutObject,
    /// GetObject.
    GetObject,
    /// HeadObject.
    HeadObject,
    /// DeleteObject.
    DeleteObject,
    /// InitiateMultipartUpload.
    InitiateMultipartUpload,
    /// UploadPart.
    UploadPart,
    /// CompleteMultipartUpload.
    CompleteMultipartUpload,
    /// ListParts.
    ListParts,
    /// AbortMultipartUpload.
    AbortMultipartUpload,
    /// ListMultipartUploads.
    ListMultipartUploads,
    /// GetBucketInfo.
    GetBucketInfo,
    /// GetBucketLocation.
    GetBucketLocation,
    /// GetBucketEncryption.
    GetBucketEncryption,
    /// RestoreObject.
    RestoreObject,
    /// Anything else (answered 501 NotImplemented after authentication).
    Unsupported,
}

impl Api {
    /// The name used in counters.
    pub fn name(self) -> &'static str {
        match self {
            Api::PutObject => "PutObject",
            Api::GetObject => "GetObject",
            Api::HeadObject => "HeadObject",
            Api::DeleteObject => "DeleteObject",
            Api::InitiateMultipartUpload => "InitiateMultipartUpload",
            Api::UploadPart => "UploadPart",
            Api::CompleteMultipartUpload => "CompleteMultipartUpload",
            Api::ListParts => "ListParts",
            Api::AbortMultipartUpload => "AbortMultipartUpload",
            Api::ListMultipartUploads => "ListMultipartUploads",
            Api::GetBucketInfo => "GetBucketInfo",
            Api::GetBucketLocation => "GetBucketLocation",
            Api::GetBucketEncryption => "GetBucketEncryption",
            Api::RestoreObject => "RestoreObject",
            Api::Unsupported => "OssUnsupported",
        }
    }
}

/// Everything a handler needs about the request.
pub struct Ctx {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// `x-oss-request-id`.
    pub request_id: String,
    /// Host header (for HostId and Location).
    pub host: String,
    /// Method.
    pub method: Method,
    /// Bucket name from the address.
    pub bucket_name: Option<String>,
    /// The bucket's configuration (after the existence check).
    pub bucket: Option<BucketConfig>,
    /// Decoded key.
    pub key: Option<String>,
    /// Decoded query.
    pub query: Vec<QueryParam>,
    /// Headers.
    pub headers: HeaderMap,
    /// The body, until a handler takes it.
    pub body: Option<Incoming>,
    /// Request time (Unix seconds).
    pub now: u64,
    /// The region the request was addressed to (its Host names `oss-<region>…`, or it came in
    /// on that region's port); `None` for a bare IP endpoint.
    pub endpoint_region: Option<String>,
    early_error: Option<OssError>,
}

impl Ctx {
    /// A query parameter's value.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|p| p.key == name)
            .map(|p| p.value.as_str())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The bucket (handlers run only after it was resolved).
    pub fn bucket(&self) -> Result<&BucketConfig, Fail> {
        self.bucket
            .as_ref()
            .ok_or_else(|| Fail::Oss(OssError::internal("bucket not resolved")))
    }

    /// The key (object-level handlers only).
    pub fn key(&self) -> Result<&str, Fail> {
        self.key
            .as_deref()
            .ok_or_else(|| Fail::Oss(OssError::internal("key not resolved")))
    }

    /// Whether keys in responses are URL-encoded (`encoding-type=url`).
    pub fn url_encoding(&self) -> bool {
        self.q("encoding-type") == Some("url")
    }

    /// A response builder with the headers every OSS response carries.
    pub fn builder(&self, status: u16) -> http::response::Builder {
        Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("x-oss-request-id", self.request_id.as_str())
            .header("Server", "AliyunOSS")
            .header("Date", http_date(self.now))
    }

    /// An XML response.
    pub fn xml(&self, status: u16, doc: String) -> OssResult {
        self.shared
            .counters
            .sent(u64::try_from(doc.len()).unwrap_or(0));
        finish(
            self.builder(status)
                .header("Content-Type", "application/xml")
                .body(full(doc)),
        )
    }
}

/// Turns a builder error (a header value we built that is not valid) into a 500.
pub fn finish(r: Result<Response<Body>, http::Error>) -> OssResult {
    r.map_err(|e| Fail::Oss(OssError::internal(&e.to_string())))
}

/// A header value from text we produced; falls back to an empty value if invalid.
pub fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn host_of(req: &Request<Incoming>) -> String {
    req.headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

/// Host without port (`[::1]:80` → `::1`).
fn hostname(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The region of a V4 `Authorization` header's credential scope
/// (`Credential=<id>/<date>/<region>/oss/aliyun_v4_request`), if it is one.
fn v4_scope_region(authorization: &str) -> Option<&str> {
    let rest = authorization.strip_prefix("OSS4-HMAC-SHA256 ")?;
    let credential = rest
        .split(',')
        .find_map(|f| f.trim().strip_prefix("Credential="))?;
    credential.split('/').nth(2).filter(|r| !r.is_empty())
}

/// The region an OSS endpoint host names: `oss-<region>.aliyuncs.com` or
/// `oss-<region>-internal.aliyuncs.com`, with or without a `<bucket>.` in front.
pub fn endpoint_region(host: &str) -> Option<String> {
    let name = hostname(host).to_ascii_lowercase();
    let endpoint = match name.split_once('.') {
        Some((_, rest)) if rest.starts_with("oss-") => rest.to_string(),
        _ => name,
    };
    let region = endpoint
        .strip_prefix("oss-")?
        .strip_suffix(".aliyuncs.com")?;
    let region = region.strip_suffix("-internal").unwrap_or(region);
    (crate::config::valid_region(region) && region != "accelerate").then(|| region.to_string())
}

/// The bucket a virtual-hosted request names, if the host is `<bucket>.<something>`.
/// IP addresses and `localhost` are always path style (as the SDKs do); otherwise the first
/// label is the bucket when the rest is an OSS endpoint (`oss-<region>.aliyuncs.com`), when
/// it is a configured bucket, or when the rest is `localhost`/an IP.
pub fn virtual_bucket(host: &str, buckets: &[BucketConfig]) -> Option<String> {
    let name = hostname(host);
    if name.parse::<IpAddr>().is_ok() || name.eq_ignore_ascii_case("localhost") {
        return None;
    }
    let (first, rest) = name.split_once('.')?;
    let first = first.to_ascii_lowercase();
    let rest_is_local = rest.eq_ignore_ascii_case("localhost") || rest.parse::<IpAddr>().is_ok();
    let rest_is_oss =
        rest.to_ascii_lowercase().starts_with("oss-") && endpoint_region(rest).is_some();
    if rest_is_oss || buckets.iter().any(|b| b.name == first) || rest_is_local {
        Some(first)
    } else {
        None
    }
}

/// The RAM action an API needs (HeadObject needs `oss:GetObject`, the multipart upload
/// steps `oss:PutObject`, as OSS's RAM documentation maps them).
pub fn ram_action(api: Api) -> &'static str {
    match api {
        Api::PutObject
        | Api::InitiateMultipartUpload
        | Api::UploadPart
        | Api::CompleteMultipartUpload => "oss:PutObject",
        Api::GetObject | Api::HeadObject => "oss:GetObject",
        Api::DeleteObject => "oss:DeleteObject",
        Api::ListParts => "oss:ListParts",
        Api::AbortMultipartUpload => "oss:AbortMultipartUpload",
        Api::ListMultipartUploads => "oss:ListMultipartUploads",
        Api::GetBucketInfo => "oss:GetBucketInfo",
        Api::GetBucketLocation => "oss:GetBucketLocation",
        Api::GetBucketEncryption => "oss:GetBucketEncryption",
        Api::RestoreObject => "oss:RestoreObject",
        Api::Unsupported => "oss:Unknown",
    }
}

/// Checks an object key: 1–1023 bytes of UTF-8, not starting with `/` or `\`, no NUL or other
/// control byte, no `..` path segment.
pub fn check_key(raw: &[u8]) -> Result<String, OssError> {
    let bad = |why: &str| {
        OssError::new(
            400,
            "InvalidObjectName",
            "",
            format!("The specified object is not valid: {why}."),
        )
    };
    let key = String::from_utf8(raw.to_vec()).map_err(|_| bad("not UTF-8"))?;
    if key.len() > MAX_KEY_BYTES {
        return Err(bad("longer than 1023 bytes"));
    }
    if key.starts_with('/') || key.starts_with('\\') {
        return Err(bad("it starts with / or \\"));
    }
    if key.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(bad("it contains a NUL or control character"));
    }
    if key.split(['/', '\\']).any(|seg| seg == "..") {
        return Err(bad("it contains a '..' path segment"));
    }
    Ok(key)
}

fn classify(method: &Method, bucket: bool, key: bool, query: &[QueryParam]) -> Api {
    let has = |n: &str| query.iter().any(|p| p.key == n);
    if !bucket {
        return Api::Unsupported;
    }
    if !key {
        return match *method {
            Method::GET if has("bucketInfo") => Api::GetBucketInfo,
            Method::GET if has("location") => Api::GetBucketLocation,
            Method::GET if has("encryption") => Api::GetBucketEncryption,
            Method::GET if has("uploads") => Api::ListMultipartUploads,
            _ => Api::Unsupported,
        };
    }
    match *method {
        Method::PUT if has("uploadId") || has("partNumber") => Api::UploadPart,
        Method::PUT => Api::PutObject,
        Method::GET if has("uploadId") => Api::ListParts,
        Method::GET => Api::GetObject,
        Method::HEAD => Api::HeadObject,
        Method::DELETE if has("uploadId") => Api::AbortMultipartUpload,
        Method::DELETE => Api::DeleteObject,
        Method::POST if has("uploads") => Api::InitiateMultipartUpload,
        Method::POST if has("restore") => Api::RestoreObject,
        Method::POST if has("uploadId") => Api::CompleteMultipartUpload,
        Method::POST if has("restore") => Api::RestoreObject,
        _ => Api::Unsupported,
    }
}

/// Entry point for every non-admin, non-RPC request. `port_region` is the region of the
/// listener when it serves one region (`region_endpoints`).
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    port_region: Option<String>,
) -> Result<Response<Body>, Abort> {
    let host = host_of(&req);
    let region_of_endpoint = port_region.or_else(|| endpoint_region(&host));
    let (parts, body) = req.into_parts();
    let mut early_error = None;
    let raw_path = parts.uri.path();
    let (bucket_name, raw_key) = match virtual_bucket(&host, &shared.config.buckets) {
        Some(b) => (Some(b), raw_path.trim_start_matches('/').to_string()),
        None => {
            let p = raw_path.strip_prefix('/').unwrap_or(raw_path);
            match p.split_once('/') {
                Some((b, k)) => (Some(b.to_string()), k.to_string()),
                None if p.is_empty() => (None, String::new()),
                None => (Some(p.to_string()), String::new()),
            }
        }
    };
    let bucket_name =
        bucket_name.map(|b| String::from_utf8_lossy(&pct_decode_bytes(&b)).into_owned());
    let key = if raw_key.is_empty() {
        None
    } else {
        match check_key(&pct_decode_bytes(&raw_key)) {
            Ok(k) => Some(k),
            Err(e) => {
                early_error = Some(e);
                None
            }
        }
    };
    let query = match parse_query(parts.uri.query().unwrap_or(""), false) {
        Some(q) => q,
        None => {
            early_error.get_or_insert(OssError::new(
                400,
                "InvalidArgument",
                "",
                "The query string is not valid UTF-8.",
            ));
            Vec::new()
        }
    };
    let api = if early_error.is_some() && !raw_key.is_empty() {
        Api::Unsupported
    } else {
        classify(&parts.method, bucket_name.is_some(), key.is_some(), &query)
    };
    shared.counters.request(api.name());
    let mut ctx = Ctx {
        shared: shared.clone(),
        request_id: random_hex(24),
        host,
        method: parts.method,
        bucket_name,
        bucket: None,
        key,
        query,
        headers: parts.headers,
        body: Some(body),
        now: unix_now(),
        endpoint_region: region_of_endpoint,
        early_error,
    };
    match run(&mut ctx, api).await {
        Ok(r) => Ok(r),
        Err(Fail::Abort) => Err(Abort),
        Err(Fail::Oss(e)) => {
            if let Some(b) = ctx.body.take() {
                body::drain(b).await;
            }
            shared.counters.error(e.code);
            Ok(render_error(&ctx, &e))
        }
    }
}

/// An error as OSS sends it (XML body; for HEAD, headers only).
pub fn render_error(ctx: &Ctx, e: &OssError) -> Response<Body> {
    let mut b = ctx.builder(e.status);
    if !e.ec.is_empty() {
        b = b.header("x-oss-ec", e.ec);
    }
    let r = if ctx.method == Method::HEAD {
        b.header("x-oss-err", e.to_header(&ctx.request_id, &ctx.host))
            .body(empty())
    } else {
        let doc = e.to_xml(&ctx.request_id, &ctx.host);
        ctx.shared
            .counters
            .sent(u64::try_from(doc.len()).unwrap_or(0));
        b.header("Content-Type", "application/xml").body(full(doc))
    };
    r.unwrap_or_else(|_| Response::new(empty()))
}

async fn run(ctx: &mut Ctx, api: Api) -> OssResult {
    if let Some(e) = ctx.early_error.take() {
        return Err(e.into());
    }
    if let Some(name) = ctx.bucket_name.clone() {
        let b = ctx
            .shared
            .config
            .buckets
            .iter()
            .find(|b| b.name == name)
            .cloned()
            .ok_or_else(|| OssError::no_such_bucket(&name))?;
        // Checked before the signature: no signature version gets around it. On an endpoint
        // that names no region (a bare loopback address), a V4 request was meant for the
        // region of its scope: a client sends it to that region's endpoint.
        let addressed = ctx.endpoint_region.clone().or_else(|| {
            ctx.header("authorization")
                .and_then(v4_scope_region)
                .map(str::to_string)
        });
        if let Some(r) = &addressed {
            if ctx.shared.config.strict.bucket_region && *r != b.region {
                return Err(OssError::wrong_endpoint(&b.name, &b.region).into());
            }
        }
        ctx.bucket = Some(b);
    }
    let input = SignInput {
        method: ctx.method.as_str(),
        bucket: ctx.bucket_name.as_deref(),
        key: ctx.key.as_deref(),
        query: &ctx.query,
        headers: &ctx.headers,
    };
    if auth::is_signed(&input) && ctx.shared.roll(FaultKind::TimeSkew).0 {
        ctx.shared.counters.fault("time_skew");
        let when = ctx
            .header("x-oss-date")
            .or_else(|| ctx.header("date"))
            .unwrap_or("")
            .to_string();
        return Err(auth::too_skewed(&when, ctx.now).into());
    }
    let region = ctx.bucket.as_ref().map(|b| b.region.clone());
    let strict = ctx.shared.config.strict;
    let rules = auth::AuthRules {
        strict_additional_headers: strict.v4_additional_headers,
        refuse_v1: strict.v4_only || ctx.bucket.as_ref().is_some_and(|b| b.v4_only),
    };
    let keys = ctx.shared.keys();
    let who = auth::authenticate_with(&keys, &input, region.as_deref(), ctx.now, rules)?;
    let action = ram_action(api);
    if keys
        .iter()
        .any(|k| k.id == who.access_key_id && k.denies(action))
    {
        return Err(OssError::ram_denied(action).into());
    }
    let v4 = ctx
        .header("authorization")
        .is_some_and(|a| a.starts_with("OSS4-HMAC-SHA256 "))
        || ctx.q("x-oss-signature-version").is_some();
    ctx.shared.counters.signature(if v4 {
        "OSS4-HMAC-SHA256"
    } else {
        "OSS-HMAC-SHA1"
    });
    if let Some(enc) = ctx.q("encoding-type") {
        if enc != "url" {
            return Err(OssError::invalid_argument(
                "",
                "The encoding-type is invalid; only url is supported.",
                "encoding-type",
                enc,
            )
            .into());
        }
    }
    match api {
        Api::PutObject => object::put(ctx).await,
        Api::GetObject => object::get(ctx, false).await,
        Api::HeadObject => object::get(ctx, true).await,
        Api::DeleteObject => object::delete(ctx).await,
        Api::InitiateMultipartUpload => multipart::initiate(ctx).await,
        Api::UploadPart => multipart::upload_part(ctx).await,
        Api::CompleteMultipartUpload => multipart::complete(ctx).await,
        Api::ListParts => multipart::list_parts(ctx),
        Api::AbortMultipartUpload => multipart::abort(ctx),
        Api::ListMultipartUploads => multipart::list_uploads(ctx),
        Api::GetBucketInfo => bucket::info(ctx),
        Api::GetBucketLocation => bucket::location(ctx),
        Api::GetBucketEncryption => bucket::encryption(ctx),
        Api::RestoreObject => object::restore(ctx).await,
        Api::Unsupported => Err(OssError::new(
            501,
            "NotImplemented",
            "",
            "This operation is not implemented by the ecs-preflight emulator.",
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addressing() {
        let b = vec![BucketConfig::new("images", "cn-hangzhou")];
        assert_eq!(virtual_bucket("127.0.0.1:9090", &b), None);
        assert_eq!(virtual_bucket("localhost:9090", &b), None);
        assert_eq!(virtual_bucket("[::1]:9090", &b), None);
        assert_eq!(
            virtual_bucket("images.oss-cn-hangzhou.aliyuncs.com", &b).as_deref(),
            Some("images")
        );
        assert_eq!(
            virtual_bucket("other.localhost:1", &b).as_deref(),
            Some("other")
        );
        assert_eq!(virtual_bucket("oss-cn-hangzhou.aliyuncs.com", &b), None);
        assert_eq!(
            virtual_bucket("other.oss-cn-beijing-internal.aliyuncs.com:80", &b).as_deref(),
            Some("other")
        );
        assert_eq!(
            endpoint_region("images.oss-cn-hangzhou.aliyuncs.com").as_deref(),
            Some("cn-hangzhou")
        );
        assert_eq!(
            endpoint_region("oss-cn-beijing-internal.aliyuncs.com:8080").as_deref(),
            Some("cn-beijing")
        );
        assert_eq!(endpoint_region("127.0.0.1:9090"), None);
        assert_eq!(endpoint_region("oss-accelerate.aliyuncs.com"), None);
        assert_eq!(endpoint_region("ecs.cn-hangzhou.aliyuncs.com"), None);
    }

    #[test]
    fn keys() {
        assert!(check_key(b"images/a b+c.qcow2").is_ok());
        for bad in [&b"../x"[..], b"a/../b", b"a/..", b"a\0b", b"/abs", b"\xff"] {
            assert_eq!(check_key(bad).unwrap_err().code, "InvalidObjectName");
        }
        assert!(check_key(&[b'a'; 1024]).is_err());
        assert!(check_key(b"a..b").is_ok());
    }
}
