//! The one HTTP client configuration every Alibaba Cloud request of the tool goes through
//! (OSS, ECS, RAM, STS, the metadata service), so the things real networks need are set once:
//!
//! * TLS trusts the system's roots (and `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, read by
//!   `rustls-native-certs`) as well as the bundled webpki roots: a corporate TLS-inspecting
//!   proxy's root installed in the system store is trusted;
//! * `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` are honoured (reqwest's system
//!   proxy), except for the ECS metadata service, which is link-local to the instance and is
//!   never reached through a proxy ([`metadata_client_builder`]);
//! * every request says `User-Agent: ecs-preflight/<version>`.
//!
//! Timeouts are the caller's to add.

/// The ECS instance metadata service address.
pub const METADATA_HOST: &str = "100.100.100.200";

/// `ecs-preflight/<version>`.
pub fn user_agent() -> String {
    format!("ecs-preflight/{}", env!("CARGO_PKG_VERSION"))
}

/// A reqwest builder with the tool's User-Agent, system plus bundled TLS roots, and the
/// environment's proxy settings.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(user_agent())
        .tls_built_in_webpki_certs(true)
        .tls_built_in_native_certs(true)
}

/// [`client_builder`] without any proxy: for the metadata service.
pub fn metadata_client_builder() -> reqwest::ClientBuilder {
    client_builder().no_proxy()
}

/// Whether `host` (of a URL) is the metadata service, which must not go through a proxy.
pub fn is_metadata_host(host: &str) -> bool {
    host == METADATA_HOST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_names_the_tool_and_version() {
        assert_eq!(
            user_agent(),
            format!("ecs-preflight/{}", env!("CARGO_PKG_VERSION"))
        );
        assert!(client_builder().build().is_ok());
        assert!(metadata_client_builder().build().is_ok());
        assert!(is_metadata_host("100.100.100.200"));
        assert!(!is_metadata_host("sts.aliyuncs.com"));
    }
}
