//! The RPC transport: signs one call, sends it, retries throttling and 5xx answers with
//! backoff, and turns error documents into [`Error::Api`].

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use preflight_aliyun::retry::{classify_answer, retry, Verdict, NO_ANSWER};
use preflight_aliyun::{CredentialProvider, Credentials, RetryConfig};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::sign;

/// ECS API version.
pub const ECS_VERSION: &str = "2014-05-26";
/// RAM API version.
pub const RAM_VERSION: &str = "2015-05-01";
/// RAM's global public endpoint.
pub const RAM_ENDPOINT: &str = "https://ram.aliyuncs.com";
/// Largest answer read: a 100-image DescribeImages page is well under 1 MB.
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// Reads an answer as text, at most [`MAX_ANSWER`] bytes; `Err` names what went wrong.
async fn read_answer(mut resp: reqwest::Response) -> std::result::Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("the answer is longer than {MAX_ANSWER} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Regions whose ECS endpoint is not `ecs.<region>.aliyuncs.com` (finance and government
/// clouds), as the official ECS SDK's endpoint map (`alibabacloud-ecs20140526`) lists them.
const ECS_ENDPOINT_EXCEPTIONS: &[(&str, &str)] = &[
    ("cn-beijing-finance-1", "ecs.aliyuncs.com"),
    ("cn-beijing-finance-pop", "ecs.aliyuncs.com"),
    ("cn-beijing-gov-1", "ecs.aliyuncs.com"),
    ("cn-hangzhou-finance", "ecs.aliyuncs.com"),
    ("cn-hongkong-finance-pop", "ecs.aliyuncs.com"),
    ("cn-north-2-gov-1", "ecs.aliyuncs.com"),
    ("cn-shanghai-finance-1", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shenzhen-finance-1", "ecs-cn-hangzhou.aliyuncs.com"),
];

/// The public ECS endpoint of a region: `https://ecs.<region>.aliyuncs.com`, or the official
/// endpoint map's entry for a finance or government region.
pub fn ecs_endpoint(region: &str) -> String {
    match ECS_ENDPOINT_EXCEPTIONS.iter().find(|(r, _)| *r == region) {
        Some((_, host)) => format!("https://{host}"),
        None => format!("https://ecs.{region}.aliyuncs.com"),
    }
}

/// Which signature the client sends. With the `clap` feature it is also the CLI's
/// `--signature` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum SignatureMethod {
    /// `HMAC-SHA1`, `SignatureVersion=1.0`, parameters and signature in the query (default:
    /// what `aliyun-python-sdk-core` and the `aliyun` CLI send, accepted everywhere).
    #[default]
    #[cfg_attr(
        feature = "clap",
        value(help = "HMAC-SHA1, SignatureVersion 1.0 (what the aliyun CLI sends)")
    )]
    HmacSha1,
    /// `ACS3-HMAC-SHA256` in the `Authorization` header (the Tea SDK's default).
    #[cfg_attr(
        feature = "clap",
        value(help = "ACS3-HMAC-SHA256 (the Tea SDK's default)")
    )]
    Acs3,
}

/// Which service a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// ECS, version [`ECS_VERSION`].
    Ecs,
    /// RAM, version [`RAM_VERSION`].
    Ram,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Region id every ECS call names (`RegionId`).
    pub region: String,
    /// ECS endpoint URL. Default [`ecs_endpoint`] of the region.
    pub ecs_endpoint: String,
    /// RAM endpoint URL. Default [`RAM_ENDPOINT`].
    pub ram_endpoint: String,
    /// Signature. Default HMAC-SHA1.
    pub signature: SignatureMethod,
    /// Retries of 5xx, throttling and network failures. Default [`RetryConfig::default`]
    /// (ImportImage is safe to retry: it carries a ClientToken).
    pub retry: RetryConfig,
    /// Whole-request timeout. Default 30 s: RPC answers are small.
    pub timeout: Duration,
}

impl ClientConfig {
    /// Public endpoints of `region`.
    pub fn new(region: impl Into<String>) -> Self {
        let region = region.into();
        ClientConfig {
            ecs_endpoint: ecs_endpoint(&region),
            ram_endpoint: RAM_ENDPOINT.to_string(),
            region,
            signature: SignatureMethod::default(),
            retry: RetryConfig::default(),
            timeout: Duration::from_secs(30),
        }
    }

    /// One endpoint for both ECS and RAM: only for the emulator, which serves every service
    /// on one port. Real endpoints are per service ([`Self::with_ecs_endpoint`]).
    pub fn with_endpoint(mut self, endpoint: &str) -> Self {
        self.ecs_endpoint = normalize(endpoint);
        self.ram_endpoint = normalize(endpoint);
        self
    }

    /// Another ECS endpoint; RAM keeps its own.
    pub fn with_ecs_endpoint(mut self, endpoint: &str) -> Self {
        self.ecs_endpoint = normalize(endpoint);
        self
    }
}

/// A bare host gets `https://`; a trailing `/` is dropped.
pub fn normalize(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.contains("://") {
        e.to_string()
    } else {
        format!("https://{e}")
    }
}

/// The ECS/RAM client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
    credentials: Arc<CredentialProvider>,
    /// Seconds to add to the local clock when signing; set from the server's `Date` after an
    /// `InvalidTimeStamp.Expired` answer (as the OSS client does after `RequestTimeTooSkewed`).
    offset: Arc<AtomicI64>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One answered call.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The JSON body.
    pub body: Value,
    /// Its `RequestId`.
    pub request_id: String,
}

impl Client {
    /// A client with its own HTTP connection pool.
    pub fn new(config: ClientConfig, credentials: Arc<CredentialProvider>) -> Result<Self> {
        for e in [&config.ecs_endpoint, &config.ram_endpoint] {
            reqwest::Url::parse(e).map_err(|err| Error::Endpoint {
                endpoint: e.clone(),
                detail: err.to_string(),
            })?;
        }
        let http = preflight_aliyun::http::client_builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Endpoint {
                endpoint: config.ecs_endpoint.clone(),
                detail: e.without_url().to_string(),
            })?;
        Ok(Client {
            http,
            config,
            credentials,
            offset: Arc::new(AtomicI64::new(0)),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The region of ECS calls.
    pub fn region(&self) -> &str {
        &self.config.region
    }

    /// Calls `action` with `params` (API parameters only; the common ones are added), retrying
    /// retryable failures. Parameters travel in the query of a POST with an empty body, as the
    /// official SDK sends them.
    pub async fn call(
        &self,
        service: Service,
        action: &str,
        params: &[(String, String)],
    ) -> Result<Answer> {
        let (endpoint, version) = match service {
            Service::Ecs => (&self.config.ecs_endpoint, ECS_VERSION),
            Service::Ram => (&self.config.ram_endpoint, RAM_VERSION),
        };
        let url = reqwest::Url::parse(endpoint).map_err(|e| Error::Endpoint {
            endpoint: endpoint.clone(),
            detail: e.to_string(),
        })?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => {
                return Err(Error::Endpoint {
                    endpoint: endpoint.clone(),
                    detail: "no host".into(),
                })
            }
        };
        let base = format!("{}://{host}/", url.scheme());
        let (base, host) = (&base, &host);
        retry(
            &self.config.retry,
            || async move {
                let creds = self.credentials.get().await.map_err(Failed::from)?;
                let req = self.build(base, host, version, action, params, &creds);
                self.attempt(req, action, host).await
            },
            Failed::verdict,
        )
        .await
        .map_err(|f| f.error)
    }

    /// One attempt: send, read, interpret. A clock-skew answer corrects the clock here, so
    /// the driver's immediate re-sign uses it.
    async fn attempt(
        &self,
        req: reqwest::RequestBuilder,
        action: &str,
        host: &str,
    ) -> std::result::Result<Answer, Failed> {
        let network = |detail: String| Failed {
            error: Error::Network {
                action: action.to_string(),
                host: host.to_string(),
                detail,
            },
            retry_after: None,
        };
        let resp = req
            .send()
            .await
            .map_err(|e| network(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("x-acs-retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let server_date = resp
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(preflight_aliyun::time::parse_http_date);
        let text = read_answer(resp).await.map_err(network)?;
        interpret(action, status, &text).map_err(|error| {
            if is_clock_skew(&error) {
                if let Some(server) = server_date {
                    let offset = preflight_aliyun::time::offset_to(server);
                    self.offset.store(offset, Ordering::Relaxed);
                }
            }
            Failed { error, retry_after }
        })
    }

    fn build(
        &self,
        base: &str,
        host: &str,
        version: &str,
        action: &str,
        params: &[(String, String)],
        creds: &Credentials,
    ) -> reqwest::RequestBuilder {
        let now = sign::timestamp(self.now());
        let nonce = sign::nonce();
        let secret = creds.access_key_secret.expose();
        let token = creds
            .security_token
            .as_ref()
            .map(|t| t.expose().to_string());
        match self.config.signature {
            SignatureMethod::HmacSha1 => {
                let mut all: Vec<(String, String)> = params.to_vec();
                for (k, v) in [
                    ("Action", action),
                    ("Version", version),
                    ("Format", "json"),
                    ("AccessKeyId", creds.access_key_id.as_str()),
                    ("SignatureMethod", "HMAC-SHA1"),
                    ("SignatureVersion", "1.0"),
                    ("SignatureNonce", nonce.as_str()),
                    ("Timestamp", now.as_str()),
                ] {
                    all.push((k.to_string(), v.to_string()));
                }
                if let Some(t) = token {
                    all.push(("SecurityToken".into(), t));
                }
                let sig = sign::rpc_v1::signature(secret, "POST", &all);
                all.push(("Signature".into(), sig));
                let url = format!("{base}?{}", sign::canonical_query(&all));
                self.http.post(url).header("content-length", "0")
            }
            SignatureMethod::Acs3 => {
                let mut headers: Vec<(String, String)> = vec![
                    ("host".into(), host.to_string()),
                    ("x-acs-action".into(), action.to_string()),
                    ("x-acs-version".into(), version.to_string()),
                    ("x-acs-date".into(), now),
                    ("x-acs-signature-nonce".into(), nonce),
                    (
                        "x-acs-content-sha256".into(),
                        sign::EMPTY_SHA256.to_string(),
                    ),
                ];
                if let Some(t) = token {
                    headers.push(("x-acs-security-token".into(), t));
                }
                let auth = sign::acs3::authorization(
                    &creds.access_key_id,
                    secret,
                    "POST",
                    params,
                    &headers,
                    sign::EMPTY_SHA256,
                );
                let url = if params.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", sign::canonical_query(params))
                };
                let mut req = self
                    .http
                    .post(url)
                    .header("authorization", auth)
                    .header("accept", "application/json")
                    .header("content-length", "0");
                for (k, v) in headers.into_iter().filter(|(k, _)| k != "host") {
                    req = req.header(k, v);
                }
                req
            }
        }
    }
}

impl Client {
    /// The signing clock: the local clock plus the correction learnt from the server.
    fn now(&self) -> SystemTime {
        preflight_aliyun::time::shifted_now(self.offset.load(Ordering::Relaxed))
    }

    /// The clock correction in force, seconds.
    pub fn clock_offset_secs(&self) -> i64 {
        self.offset.load(Ordering::Relaxed)
    }
}

/// Whether ECS refused the request's `Timestamp` as too far from its clock.
fn is_clock_skew(e: &Error) -> bool {
    matches!(e.code(), Some(c) if c.starts_with("InvalidTimeStamp"))
}

/// A failed attempt, with the server's wait when it asked for one.
struct Failed {
    error: Error,
    retry_after: Option<Duration>,
}

impl From<preflight_aliyun::CredentialError> for Failed {
    fn from(e: preflight_aliyun::CredentialError) -> Self {
        Failed {
            error: e.into(),
            retry_after: None,
        }
    }
}

impl Failed {
    /// The shared classification; an answer that is not an error document (a proxy's HTML
    /// page) is judged by its status alone, and no answer at all is always retried.
    fn verdict(&self) -> Verdict {
        let verdict = match &self.error {
            Error::Api { status, code, .. } => classify_answer(*status, code),
            Error::Decode { status, .. } => classify_answer(*status, ""),
            Error::Network { .. } => NO_ANSWER,
            _ => Verdict::Fatal,
        };
        match verdict {
            Verdict::Retry { .. } => Verdict::Retry {
                after: self.retry_after,
            },
            v => v,
        }
    }
}

/// Reads a field whatever its JSON case (`RequestId` / `requestId`).
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn field_str(v: &Value, name: &str) -> String {
    match field(v, name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Turns an HTTP answer into an [`Answer`] or an error.
pub(crate) fn interpret(action: &str, status: u16, text: &str) -> Result<Answer> {
    let parsed: std::result::Result<Value, _> = serde_json::from_str(text);
    if (200..300).contains(&status) {
        let body = parsed.map_err(|e| Error::Decode {
            action: action.to_string(),
            status,
            detail: e.to_string(),
        })?;
        let request_id = field_str(&body, "RequestId");
        return Ok(Answer { body, request_id });
    }
    match parsed {
        Ok(body) if field(&body, "Code").is_some() => Err(Error::Api {
            action: action.to_string(),
            status,
            code: field_str(&body, "Code"),
            message: field_str(&body, "Message"),
            request_id: field_str(&body, "RequestId"),
        }),
        _ => Err(Error::Decode {
            action: action.to_string(),
            status,
            detail: format!(
                "not an error document: {}",
                text.chars().take(200).collect::<String>()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retryable;

    #[test]
    fn error_documents() {
        let e = interpret(
            "ImportImage",
            400,
            r#"{"RequestId":"R-1","HostId":"ecs.aliyuncs.com","Code":"InvalidImageName.Duplicated","Message":"The destination image is exist."}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("InvalidImageName.Duplicated"));
        assert_eq!(
            e.to_string(),
            "ImportImage: InvalidImageName.Duplicated: The destination image is exist. (HTTP 400, RequestId R-1)"
        );
        let e = interpret(
            "GetRole",
            404,
            r#"{"requestId":"r","code":"EntityNotExist.Role","message":"m"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("EntityNotExist.Role"));
        assert!(matches!(
            interpret("X", 502, "<html>bad gateway</html>"),
            Err(Error::Decode { status: 502, .. })
        ));
        let a = interpret("X", 200, r#"{"RequestId":"abc","ImageId":"m-1"}"#).unwrap();
        assert_eq!(a.request_id, "abc");
        assert!(retryable(503, ""));
        assert!(retryable(400, "Throttling.User"));
        assert!(!retryable(400, "InvalidParameter"));
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            ecs_endpoint("cn-beijing"),
            "https://ecs.cn-beijing.aliyuncs.com"
        );
        assert_eq!(normalize("127.0.0.1:9/"), "https://127.0.0.1:9");
        assert_eq!(
            ecs_endpoint("cn-shanghai-finance-1"),
            "https://ecs-cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(ecs_endpoint("cn-north-2-gov-1"), "https://ecs.aliyuncs.com");
        let c = ClientConfig::new("cn-hangzhou").with_ecs_endpoint("http://127.0.0.1:1");
        assert_eq!(c.ram_endpoint, RAM_ENDPOINT);
        let c = ClientConfig::new("cn-hangzhou").with_endpoint("http://127.0.0.1:9090");
        assert_eq!(c.ram_endpoint, "http://127.0.0.1:9090");
    }

    #[test]
    fn debug_hides_secrets() {
        let creds = Arc::new(CredentialProvider::fixed(Credentials::new(
            "id",
            "very-secret-value",
        )));
        let c = Client::new(ClientConfig::new("cn-hangzhou"), creds).unwrap();
        assert!(!format!("{c:?}").contains("very-secret-value"));
    }
}
