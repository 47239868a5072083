//! The OSS client: addressing, signing, sending, error decoding and retries. The API
//! functions ([`crate::api`]) describe a request as an [`Op`]; [`Client::send`] does the rest.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Method;
use percent_encoding::utf8_percent_encode;
use preflight_aliyun::retry::{retry, Verdict};
use preflight_aliyun::{CredentialProvider, RetryConfig};

use crate::crc::Crc64;
use crate::error::{Error, Result};
use crate::sign::{self, Resource, SignatureVersion, UNRESERVED, UNRESERVED_SLASH};
use crate::throttle::RateLimiter;
use crate::upload::UploadSource;
use crate::xml;

/// Largest error body read (OSS error documents are a few hundred bytes).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Largest XML answer read: a 1,000-entry ListParts page is about 300 KB.
pub(crate) const MAX_XML_BODY: usize = 8 * 1024 * 1024;

/// Client settings. Defaults suit a public endpoint over a flaky link.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `scheme://host[:port]`. Default: `https://oss-<region>.aliyuncs.com`.
    pub endpoint: String,
    /// Region id (`cn-hangzhou`), for V4 signing.
    pub region: String,
    /// The bucket every call addresses.
    pub bucket: String,
    /// Signature version. Default V4.
    pub signature: SignatureVersion,
    /// Retries of retryable failures (5xx, network, clock skew). Default: [`RetryConfig::default`].
    pub retry: RetryConfig,
    /// Path-style addressing (`host/bucket/key`). `None` (default): path style for an IP
    /// address or `localhost`, virtual-hosted (`bucket.host/key`) otherwise — what the SDKs do.
    pub path_style: Option<bool>,
    /// TCP connect timeout. Default 10 s.
    pub connect_timeout: Duration,
    /// Longest time without progress: no chunk of the body taken by the connection while it
    /// is sent, no chunk of the answer while it is read. Default 60 s. Reset on every chunk,
    /// so a slow but moving transfer is never cut (a part on a 16 KiB/s link takes hours);
    /// a stalled connection is dropped and the request retried.
    pub idle_timeout: Duration,
    /// Longest wait for the answer's headers once the whole body is handed to the
    /// connection. Default 300 s: OSS answers a part at once, but the last bytes may still
    /// sit in the socket's send buffer on a slow link, and a large Complete takes a while.
    pub answer_timeout: Duration,
    /// Seconds to add to the local clock when signing. Default 0; set from the server's `Date`
    /// after a `RequestTimeTooSkewed` answer.
    pub clock_offset_secs: i64,
}

impl ClientConfig {
    /// Settings for `bucket` in `region` on the public endpoint.
    pub fn new(region: impl Into<String>, bucket: impl Into<String>) -> Self {
        let region = region.into();
        ClientConfig {
            endpoint: format!("https://oss-{region}.aliyuncs.com"),
            region,
            bucket: bucket.into(),
            signature: SignatureVersion::V4,
            retry: RetryConfig::default(),
            path_style: None,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            answer_timeout: Duration::from_secs(300),
            clock_offset_secs: 0,
        }
    }

    /// With another endpoint (`http://127.0.0.1:9090`, an internal endpoint…). A bare host
    /// gets `https://`.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        let e: String = endpoint.into();
        self.endpoint = if e.contains("://") {
            e
        } else {
            format!("https://{e}")
        };
        self
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of a file from its start, streamed anew on every attempt.
    File {
        path: PathBuf,
        len: u64,
    },
    /// An upload source, read and hashed as the connection takes it (see [`SourceBody`]).
    Source(SourceBody),
}

/// The first `len` bytes of an [`UploadSource`], read anew on every attempt in
/// [`SOURCE_CHUNK`]s on blocking threads; each chunk feeds `crc` right after its read, while
/// it is still in the CPU cache, so a streamed PUT passes over each byte once.
#[derive(Clone)]
pub(crate) struct SourceBody {
    pub source: Arc<dyn UploadSource>,
    pub len: u64,
    pub crc: Arc<StreamedCrc>,
}

impl std::fmt::Debug for SourceBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceBody")
            .field("path", &self.source.path())
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Bytes read (and hashed) at a time from a [`SourceBody`]: one system call's worth.
const SOURCE_CHUNK: usize = 1 << 20;

/// The CRC-64 of the bytes the latest attempt of a [`SourceBody`] read. Each attempt starts a
/// new generation, so a chunk read late by an abandoned attempt cannot blend into it.
#[derive(Default)]
pub(crate) struct StreamedCrc(std::sync::Mutex<StreamedState>);

#[derive(Default)]
struct StreamedState {
    generation: u64,
    crc: Crc64,
    len: u64,
}

impl StreamedCrc {
    fn state(&self) -> std::sync::MutexGuard<'_, StreamedState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts an attempt; returns its generation.
    fn restart(&self) -> u64 {
        let mut s = self.state();
        s.generation += 1;
        s.crc = Crc64::new();
        s.len = 0;
        s.generation
    }

    fn update(&self, generation: u64, bytes: &[u8]) {
        let mut s = self.state();
        if s.generation == generation {
            s.crc.update(bytes);
            s.len += bytes.len() as u64;
        }
    }

    /// The CRC-64 of the latest attempt's body once all `len` bytes of it were read.
    pub fn finished(&self, len: u64) -> Option<u64> {
        let s = self.state();
        (s.len == len).then(|| s.crc.finish())
    }
}

/// The chunks of `body` for one attempt, each read on a blocking thread and hashed there.
fn source_stream(
    body: SourceBody,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let generation = body.crc.restart();
    futures_util::stream::try_unfold(0u64, move |at| {
        let body = body.clone();
        async move {
            if at >= body.len {
                return Ok(None);
            }
            let n = usize::try_from(body.len - at).map_or(SOURCE_CHUNK, |l| l.min(SOURCE_CHUNK));
            let chunk = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                body.source.read_at(at, &mut buf)?;
                body.crc.update(generation, &buf);
                Ok::<_, std::io::Error>(Bytes::from(buf))
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(Some((chunk, at + n as u64)))
        }
    })
}

/// One request.
#[derive(Debug, Clone)]
pub(crate) struct Op<'a> {
    pub name: &'static str,
    pub method: Method,
    pub key: Option<&'a str>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Body,
}

impl<'a> Op<'a> {
    pub fn new(name: &'static str, method: Method, key: Option<&'a str>) -> Self {
        Op {
            name,
            method,
            key,
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: Body::Empty,
        }
    }
    pub fn query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_string(), v.into()));
        self
    }
    pub fn header(mut self, k: &'static str, v: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(v) {
            self.headers.insert(HeaderName::from_static(k), v);
        }
        self
    }
    pub fn body(mut self, b: Body) -> Self {
        self.body = b;
        self
    }
}

/// An OSS client bound to one bucket. Clone it freely (it is an `Arc` inside).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    scheme: String,
    host: String,
    path_style: bool,
    credentials: Arc<CredentialProvider>,
    offset: AtomicI64,
    /// The upload rate limit every request body waits on, if any.
    limiter: Option<Arc<RateLimiter>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn is_ip_or_localhost(host: &str) -> bool {
    let h = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h.parse::<IpAddr>().is_ok()
}

impl Client {
    /// A client. Fails only on a malformed endpoint.
    pub fn new(config: ClientConfig, credentials: Arc<CredentialProvider>) -> Result<Self> {
        let (scheme, rest) = config.endpoint.split_once("://").ok_or_else(|| {
            Error::InvalidArgument(format!("endpoint {:?} has no scheme", config.endpoint))
        })?;
        if scheme != "http" && scheme != "https" {
            return Err(Error::InvalidArgument(format!(
                "endpoint scheme {scheme:?} is not http or https"
            )));
        }
        let host = rest.trim_end_matches('/').to_string();
        if host.is_empty() || host.contains('/') {
            return Err(Error::InvalidArgument(format!(
                "endpoint {:?} is not scheme://host[:port]",
                config.endpoint
            )));
        }
        let path_style = config
            .path_style
            .unwrap_or_else(|| is_ip_or_localhost(&host));
        let http = preflight_aliyun::http::client_builder()
            .connect_timeout(config.connect_timeout)
            // No read_timeout: reqwest does not reset it while a body is sent, so a slow part
            // would be cut and retried forever. `Watch` times the request instead.
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::InvalidArgument(format!("HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                scheme: scheme.to_string(),
                host,
                path_style,
                offset: AtomicI64::new(config.clock_offset_secs),
                config,
                credentials,
                limiter: None,
            }),
        })
    }

    /// The same client signing with another version (shares connections and credentials).
    /// V1 binds no region into the signature, which lets the preflight ask a bucket in
    /// another region where it is.
    pub fn with_signature(&self, version: SignatureVersion) -> Client {
        let mut config = self.inner.config.clone();
        config.signature = version;
        self.derived(config, self.inner.limiter.clone())
    }

    /// The same client with every request body paced by `limiter` (shared by all clones of
    /// the result, so the rate holds across parallel parts); `None` lifts the limit.
    pub fn with_upload_limit(&self, limiter: Option<Arc<RateLimiter>>) -> Client {
        self.derived(self.inner.config.clone(), limiter)
    }

    fn derived(&self, config: ClientConfig, limiter: Option<Arc<RateLimiter>>) -> Client {
        let i = &self.inner;
        Client {
            inner: Arc::new(Inner {
                http: i.http.clone(),
                config,
                scheme: i.scheme.clone(),
                host: i.host.clone(),
                path_style: i.path_style,
                credentials: i.credentials.clone(),
                offset: AtomicI64::new(i.offset.load(Ordering::Relaxed)),
                limiter,
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.inner.config.bucket
    }

    /// The endpoint host (with port), as given.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// The clock correction in force, seconds.
    pub fn clock_offset_secs(&self) -> i64 {
        self.inner.offset.load(Ordering::Relaxed)
    }

    fn url(&self, key: Option<&str>, query: &[(String, String)]) -> String {
        let i = &self.inner;
        let bucket = &i.config.bucket;
        let path = match key {
            Some(k) => format!("/{}", utf8_percent_encode(k, UNRESERVED_SLASH)),
            None => "/".to_string(),
        };
        let mut url = if i.path_style {
            format!("{}://{}/{}{}", i.scheme, i.host, bucket, path)
        } else {
            format!("{}://{}.{}{}", i.scheme, bucket, i.host, path)
        };
        for (n, (k, v)) in query.iter().enumerate() {
            url.push(if n == 0 { '?' } else { '&' });
            url.push_str(&utf8_percent_encode(k, UNRESERVED).to_string());
            if !v.is_empty() {
                url.push('=');
                url.push_str(&utf8_percent_encode(v, UNRESERVED).to_string());
            }
        }
        url
    }

    /// Sends with retries. Returns the response of a 2xx answer.
    pub(crate) async fn send(&self, op: &Op<'_>) -> Result<reqwest::Response> {
        self.retrying(op, |resp| async { Ok(resp) }, Error::verdict)
            .await
    }

    /// Sends with retries and reads the whole answer (at most [`MAX_XML_BODY`] bytes). A body
    /// cut off mid-read is retried like a request that got no answer, by the same loop.
    pub(crate) async fn send_text(&self, op: &Op<'_>) -> Result<(http::HeaderMap, String)> {
        self.retrying(
            op,
            |resp| async move {
                let headers = resp.headers().clone();
                let text = read_limited(self, op.name, resp, MAX_XML_BODY).await?;
                Ok((headers, text))
            },
            Error::verdict,
        )
        .await
    }

    /// The one retry loop of the OSS client: each attempt signs, sends, and hands a 2xx
    /// answer to `finish` (read the body, check a CRC); whatever fails in the attempt is
    /// judged by `verdict` and the whole attempt is made again. Nothing above retries again.
    pub(crate) async fn retrying<T, F, Fut>(
        &self,
        op: &Op<'_>,
        finish: F,
        verdict: impl Fn(&Error) -> Verdict,
    ) -> Result<T>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let finish = &finish;
        retry(
            &self.inner.config.retry,
            move || async move { finish(self.send_once(op).await?).await },
            verdict,
        )
        .await
    }

    async fn send_once(&self, op: &Op<'_>) -> Result<reqwest::Response> {
        let i = &self.inner;
        let cred = i.credentials.get().await?;
        let url = self.url(op.key, &op.query);
        let mut headers = op.headers.clone();
        let offset = i.offset.load(Ordering::Relaxed);
        let res = Resource {
            bucket: Some(&i.config.bucket),
            key: op.key,
        };
        let now = preflight_aliyun::time::shifted_now(offset);
        let signing = sign::Signing {
            version: i.config.signature,
            region: &i.config.region,
            now,
        };
        sign::sign_own(
            &signing,
            op.method.as_str(),
            res,
            &op.query,
            &mut headers,
            &cred,
        )?;
        let watch = Arc::new(Watch::new());
        let body = match &op.body {
            Body::Empty => {
                watch.body_sent();
                reqwest::Body::from(Bytes::new())
            }
            Body::Bytes(b) => {
                // A stream has no length of its own; OSS signs none, so it goes after signing.
                headers.insert(
                    http::header::CONTENT_LENGTH,
                    HeaderValue::from(b.len() as u64),
                );
                let one = futures_util::stream::iter([Ok::<_, std::io::Error>(b.clone())]);
                watched_body(one, b.len() as u64, watch.clone(), i.limiter.clone())
            }
            Body::File { path, len } => {
                // Not signed: OSS signs no length.
                headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(*len));
                watched_body(
                    crate::api::file_stream(path, *len).await?,
                    *len,
                    watch.clone(),
                    i.limiter.clone(),
                )
            }
            Body::Source(source) => {
                headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(source.len));
                let len = source.len;
                watched_body(
                    source_stream(source.clone()),
                    len,
                    watch.clone(),
                    i.limiter.clone(),
                )
            }
        };
        let send = i
            .http
            .request(op.method.clone(), &url)
            .headers(headers)
            .body(body)
            .send();
        let resp = watch
            .run(send, i.config.idle_timeout, i.config.answer_timeout)
            .await
            .map_err(|e| match e {
                Watched::Inner(e) => network(op.name, &e),
                Watched::Idle(what) => Error::Network {
                    op: op.name,
                    message: format!("timed out: {what}"),
                },
            })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(self.decode_error(op.name, resp).await)
    }

    /// The next chunk of an answer, or a timeout after [`ClientConfig::idle_timeout`]
    /// without one.
    pub(crate) async fn next_chunk(
        &self,
        op: &'static str,
        resp: &mut reqwest::Response,
    ) -> Result<Option<Bytes>> {
        let idle = self.inner.config.idle_timeout;
        match tokio::time::timeout(idle, resp.chunk()).await {
            Ok(r) => r.map_err(|e| network(op, &e)),
            Err(_) => Err(Error::Network {
                op,
                message: format!("timed out: no byte of the answer for {} s", idle.as_secs()),
            }),
        }
    }

    async fn decode_error(&self, op: &'static str, resp: reqwest::Response) -> Error {
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        let get = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let mut text = String::new();
        let mut resp = resp;
        while let Ok(Some(chunk)) = self.next_chunk(op, &mut resp).await {
            if text.len() + chunk.len() > MAX_ERROR_BODY {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        if text.trim().is_empty() {
            // HEAD errors: the XML is base64 in x-oss-err.
            use base64::Engine as _;
            if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(get("x-oss-err")) {
                text = String::from_utf8_lossy(&b).into_owned();
            }
        }
        let body: xml::ErrorBody = quick_xml::de::from_str(&text).unwrap_or_default();
        let code = if body.code.is_empty() {
            match status {
                404 => "NotFound".to_string(),
                s => format!("HTTP{s}"),
            }
        } else {
            body.code
        };
        if code == "RequestTimeTooSkewed" {
            if let Some(server) = preflight_aliyun::time::parse_http_date(&get("date")) {
                self.inner
                    .offset
                    .store(preflight_aliyun::time::offset_to(server), Ordering::Relaxed);
            }
        }
        let request_id = if body.request_id.is_empty() {
            get("x-oss-request-id")
        } else {
            body.request_id
        };
        let ec = if body.ec.is_empty() {
            get("x-oss-ec")
        } else {
            body.ec
        };
        Error::Service {
            op,
            status,
            code,
            message: body.message,
            request_id,
            ec,
            endpoint: Some(body.endpoint).filter(|e| !e.is_empty()).map(Box::new),
        }
    }
}

/// Reads a body as UTF-8 text, refusing more than `limit` bytes.
pub(crate) async fn read_limited(
    client: &Client,
    op: &'static str,
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<String> {
    let mut body = Vec::new();
    while let Some(chunk) = client.next_chunk(op, &mut resp).await? {
        if body.len() + chunk.len() > limit {
            return Err(Error::Response {
                op,
                message: format!("the answer is longer than {limit} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|e| Error::Response {
        op,
        message: format!("the answer is not UTF-8: {e}"),
    })
}

/// Largest slice of a body handed to the connection at once: small enough that on a
/// 16 KiB/s link the idle clock is reset about every second.
const BODY_SLICE: usize = 16 * 1024;

/// The progress clock of one request: the body stream touches it on every slice the
/// connection takes, and [`Watch::run`] drops the request when it stops moving.
struct Watch {
    start: tokio::time::Instant,
    /// Milliseconds since `start` of the last progress.
    last_ms: std::sync::atomic::AtomicU64,
    /// Milliseconds since `start` when the last body byte was taken (`u64::MAX`: not yet).
    sent_ms: std::sync::atomic::AtomicU64,
}

/// Why a watched request ended without an answer.
enum Watched {
    /// The request itself failed.
    Inner(reqwest::Error),
    /// No progress in time; says which wait ran out.
    Idle(String),
}

impl Watch {
    fn new() -> Self {
        Watch {
            start: tokio::time::Instant::now(),
            last_ms: std::sync::atomic::AtomicU64::new(0),
            sent_ms: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn body_sent(&self) {
        self.sent_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Runs `send` until it answers, the body stalls for `idle`, or no answer comes within
    /// `answer` of the body's end.
    async fn run<T>(
        &self,
        send: impl std::future::Future<Output = reqwest::Result<T>>,
        idle: Duration,
        answer: Duration,
    ) -> std::result::Result<T, Watched> {
        let tick = (idle.min(answer) / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let answer_ms = u64::try_from(answer.as_millis()).unwrap_or(u64::MAX);
        tokio::pin!(send);
        loop {
            tokio::select! {
                r = &mut send => return r.map_err(Watched::Inner),
                () = tokio::time::sleep(tick) => {
                    let now = self.now_ms();
                    let sent = self.sent_ms.load(Ordering::Relaxed);
                    if sent != u64::MAX {
                        if now.saturating_sub(sent) > answer_ms {
                            return Err(Watched::Idle(format!(
                                "no answer {} s after the request was sent", answer.as_secs()
                            )));
                        }
                    } else if now.saturating_sub(self.last_ms.load(Ordering::Relaxed)) > idle_ms {
                        return Err(Watched::Idle(format!(
                            "the upload made no progress for {} s", idle.as_secs()
                        )));
                    }
                }
            }
        }
    }
}

/// A body that cuts `chunks` into [`BODY_SLICE`]s, lets each go when `limiter` allows, and
/// tells `watch` about each one taken, and when `len` bytes (the whole body) have been taken.
fn watched_body(
    chunks: impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    len: u64,
    watch: Arc<Watch>,
    limiter: Option<Arc<RateLimiter>>,
) -> reqwest::Body {
    reqwest::Body::wrap_stream(watched_stream(chunks, len, watch, limiter))
}

fn watched_stream(
    chunks: impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    len: u64,
    watch: Arc<Watch>,
    limiter: Option<Arc<RateLimiter>>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    use futures_util::StreamExt as _;
    let mut taken = 0u64;
    if len == 0 {
        watch.body_sent();
    }
    chunks
        .map(|chunk| {
            let slices: Vec<std::io::Result<Bytes>> = match chunk {
                Ok(b) => (0..b.len())
                    .step_by(BODY_SLICE)
                    .map(|off| Ok(b.slice(off..(off + BODY_SLICE).min(b.len()))))
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            futures_util::stream::iter(slices)
        })
        .flatten()
        .then(move |slice| {
            let limiter = limiter.clone();
            async move {
                if let (Some(l), Ok(b)) = (&limiter, &slice) {
                    l.take(b.len()).await;
                }
                slice
            }
        })
        .inspect(move |slice| {
            watch.touch();
            // The connection stops asking once it has Content-Length bytes: count them.
            if let Ok(b) = slice {
                taken += b.len() as u64;
                if taken >= len {
                    watch.body_sent();
                }
            }
        })
}

pub(crate) fn network(op: &'static str, e: &reqwest::Error) -> Error {
    // Walk the source chain for the useful part ("connection reset by peer"); no URL.
    let mut message = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        message = format!("{message}: {s}");
        src = s.source();
    }
    Error::Network { op, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use preflight_aliyun::Credentials;

    fn client(endpoint: &str) -> Client {
        let creds = Arc::new(CredentialProvider::fixed(Credentials::new("id", "secret")));
        Client::new(
            ClientConfig::new("cn-hangzhou", "bkt").with_endpoint(endpoint),
            creds,
        )
        .unwrap()
    }

    /// Sends `slices` 1-byte slices, sleeping `gap` before each, then waits `then` for the
    /// "answer", under the watch.
    async fn watched(
        slices: u64,
        gap: Duration,
        then: Duration,
    ) -> std::result::Result<(), Watched> {
        use futures_util::StreamExt as _;
        let watch = Arc::new(Watch::new());
        let chunks = futures_util::stream::iter(0..slices).then(move |_| async move {
            tokio::time::sleep(gap).await;
            Ok::<_, std::io::Error>(Bytes::from_static(b"x"))
        });
        let body = watched_stream(chunks, slices, watch.clone(), None);
        let send = async move {
            body.for_each(|_| async {}).await;
            tokio::time::sleep(then).await;
            Ok::<(), reqwest::Error>(())
        };
        let ms = Duration::from_millis;
        watch.run(send, ms(300), ms(300)).await
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_clock_is_reset_by_every_slice() {
        let ms = Duration::from_millis;
        // 20 slices 200 ms apart: 4 s in all, far past the 300 ms timeouts, and fine.
        assert!(watched(20, ms(200), ms(100)).await.is_ok());
        // A body that stops moving.
        let e = watched(2, ms(2000), ms(0)).await.unwrap_err();
        assert!(matches!(&e, Watched::Idle(m) if m.contains("no progress")));
        // A body sent whose answer does not come.
        let e = watched(3, ms(100), ms(2000)).await.unwrap_err();
        assert!(matches!(&e, Watched::Idle(m) if m.contains("no answer")));
    }

    #[test]
    fn addressing() {
        let q = vec![
            ("uploadId".to_string(), "U 1".to_string()),
            ("uploads".to_string(), String::new()),
        ];
        assert_eq!(
            client("http://127.0.0.1:9090").url(Some("a b/c+d.qcow2"), &q),
            "http://127.0.0.1:9090/bkt/a%20b/c%2Bd.qcow2?uploadId=U%201&uploads"
        );
        assert_eq!(
            client("http://localhost:1").url(None, &[]),
            "http://localhost:1/bkt/"
        );
        assert_eq!(
            client("oss-cn-hangzhou.aliyuncs.com").url(Some("k"), &[]),
            "https://bkt.oss-cn-hangzhou.aliyuncs.com/k"
        );
        assert_eq!(
            client("http://[::1]:80").url(None, &[]),
            "http://[::1]:80/bkt/"
        );
        let creds = Arc::new(CredentialProvider::fixed(Credentials::new("id", "secret")));
        assert!(Client::new(
            ClientConfig::new("r", "b").with_endpoint("ftp://x"),
            creds.clone()
        )
        .is_err());
        assert!(Client::new(
            ClientConfig::new("r", "b").with_endpoint("http://x/y"),
            creds
        )
        .is_err());
        assert_eq!(
            ClientConfig::new("cn-beijing", "b").endpoint,
            "https://oss-cn-beijing.aliyuncs.com"
        );
    }
}
