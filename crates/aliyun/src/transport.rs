//! What reqsign's credential providers need from the outside world: an HTTP client (ECS
//! metadata service, STS) and file access (OIDC token file). Both are thin reqwest/tokio
//! adapters; errors carry no URL (an STS URL may hold a token) and no body.

use std::time::Duration;

use bytes::Bytes;
use reqsign_core::{Context, Env, FileRead, HttpSend};

/// How long to wait for the ECS metadata service to accept a connection. Short: off ECS the
/// metadata address does not answer at all, and the credential chain must not hang there.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long to wait for STS (and any other credential service on the internet) to accept a
/// connection: a real network round trip, as the official SDKs allow (5 s).
pub const STS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The ECS metadata service's address.
pub const METADATA_HOST: &str = "100.100.100.200";
/// Whole-request timeout for credential requests (metadata, STS): they are small.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// reqwest as reqsign's [`HttpSend`].
#[derive(Debug, Clone)]
pub struct ReqwestSend {
    /// For STS and the rest: [`STS_CONNECT_TIMEOUT`], proxies from the environment.
    client: reqwest::Client,
    /// For the metadata service: [`CONNECT_TIMEOUT`], never through a proxy.
    metadata: reqwest::Client,
}

impl ReqwestSend {
    /// Clients with short timeouts (see [`CONNECT_TIMEOUT`], [`STS_CONNECT_TIMEOUT`],
    /// [`REQUEST_TIMEOUT`]).
    pub fn new() -> Self {
        let build = |b: reqwest::ClientBuilder, connect| {
            b.connect_timeout(connect)
                .timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap_or_default()
        };
        ReqwestSend {
            client: build(crate::http::client_builder(), STS_CONNECT_TIMEOUT),
            metadata: build(crate::http::metadata_client_builder(), CONNECT_TIMEOUT),
        }
    }
}

impl Default for ReqwestSend {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpSend for ReqwestSend {
    async fn http_send(
        &self,
        req: http::Request<Bytes>,
    ) -> reqsign_core::Result<http::Response<Bytes>> {
        let (parts, body) = req.into_parts();
        let client = if parts.uri.host().is_some_and(crate::http::is_metadata_host) {
            &self.metadata
        } else {
            &self.client
        };
        let resp = client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                reqsign_core::Error::unexpected("credential request failed")
                    .with_source(e.without_url())
                    .set_retryable(true)
            })?;
        let mut builder = http::Response::builder().status(resp.status());
        for (k, v) in resp.headers() {
            builder = builder.header(k, v);
        }
        let body = resp.bytes().await.map_err(|e| {
            reqsign_core::Error::unexpected("credential response could not be read")
                .with_source(e.without_url())
        })?;
        builder
            .body(body)
            .map_err(|e| reqsign_core::Error::unexpected("bad credential response").with_source(e))
    }
}

/// tokio's file system as reqsign's [`FileRead`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioFileRead;

impl FileRead for TokioFileRead {
    async fn file_read(&self, path: &str) -> reqsign_core::Result<Vec<u8>> {
        tokio::fs::read(path).await.map_err(|e| {
            reqsign_core::Error::unexpected(format!("cannot read {path}")).with_source(e)
        })
    }
}

/// A reqsign context over the given environment (the process's: [`reqsign_core::OsEnv`]).
pub fn context(env: impl Env) -> Context {
    Context::new()
        .with_file_read(TokioFileRead)
        .with_http_send(ReqwestSend::new())
        .with_env(env)
}
