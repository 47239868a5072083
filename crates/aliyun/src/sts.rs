//! STS AssumeRole (and AssumeRoleWithOIDC, [`AssumeRoleWithOidc`]) with everything the `aliyun` CLI and Alibaba's credentials library let a
//! profile say: session duration (`expired_seconds`), an inline `policy`, an `external_id`,
//! and the endpoint (`sts_region`, `enable_vpc` for the VPC endpoint).
//!
//! Our own provider rather than reqsign's: reqsign's AssumeRole sends neither
//! `DurationSeconds` nor `Policy`. The request is signed as every RPC request (HMAC-SHA1,
//! `SignatureVersion=1.0`), and checked byte for byte against the official SDKs'
//! signers by `tests/cli/signatures.rs`.

use std::collections::BTreeMap;
use std::fmt;

use reqsign_aliyun_oss::Credential;
use reqsign_core::time::Timestamp;
use reqsign_core::{Context, ProvideCredential, ProvideCredentialDyn};
use serde::Deserialize;

/// Session length when the profile does not say (STS's own default).
pub const DEFAULT_DURATION_SECONDS: u64 = 3600;

/// Where STS is: an explicit endpoint, else `ALIBABA_CLOUD_STS_ENDPOINT`, else
/// `sts[-vpc].<region>.aliyuncs.com` from the region (`sts_region` or `ALIBABA_CLOUD_STS_REGION`)
/// and the VPC switch (`enable_vpc` or `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED`), else the
/// global `sts.aliyuncs.com` — the order of Alibaba's credentials library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StsEndpoint {
    /// An endpoint given outright (host or URL).
    pub endpoint: Option<String>,
    /// STS region.
    pub region: Option<String>,
    /// Use the VPC endpoint.
    pub enable_vpc: Option<bool>,
}

impl StsEndpoint {
    /// The endpoint URL.
    pub fn resolve(&self, ctx: &Context) -> String {
        let env = |k: &str| ctx.env_var(k).filter(|v| !v.trim().is_empty());
        let url = |e: &str| {
            let e = e.trim().trim_end_matches('/');
            if e.contains("://") {
                e.to_string()
            } else {
                format!("https://{e}")
            }
        };
        if let Some(e) = self
            .endpoint
            .clone()
            .or_else(|| env("ALIBABA_CLOUD_STS_ENDPOINT"))
        {
            return url(&e);
        }
        let vpc = self.enable_vpc.unwrap_or_else(|| {
            env("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        });
        let prefix = if vpc { "sts-vpc" } else { "sts" };
        match self
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .or_else(|| env("ALIBABA_CLOUD_STS_REGION"))
        {
            Some(r) => url(&format!("{prefix}.{r}.aliyuncs.com")),
            None => url("sts.aliyuncs.com"),
        }
    }
}

/// AssumeRole over another provider's credentials.
pub struct AssumeRole {
    /// Whose credentials call AssumeRole.
    pub base: Box<dyn ProvideCredentialDyn<Credential = Credential>>,
    /// The role's ARN.
    pub role_arn: String,
    /// Session name.
    pub session_name: String,
    /// External id, if the role's trust policy asks for one.
    pub external_id: Option<String>,
    /// Session length; default [`DEFAULT_DURATION_SECONDS`].
    pub duration_seconds: Option<u64>,
    /// An inline policy narrowing the session.
    pub policy: Option<String>,
    /// Where STS is.
    pub endpoint: StsEndpoint,
}

impl fmt::Debug for AssumeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRole")
            .field("role_arn", &self.role_arn)
            .field("session_name", &self.session_name)
            .field("duration_seconds", &self.duration_seconds)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    credentials: Option<AnswerCredentials>,
    code: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AnswerCredentials {
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    expiration: String,
}

/// The HMAC-SHA1 RPC signature of a GET with `params` (all but `Signature`).
fn rpc_signature(secret: &str, params: &BTreeMap<String, String>) -> String {
    let pairs: Vec<(&String, &String)> = params.iter().collect();
    crate::rpc::rpc_v1::signature(secret, "GET", &pairs)
}

impl ProvideCredential for AssumeRole {
    type Credential = Credential;

    async fn provide_credential(&self, ctx: &Context) -> reqsign_core::Result<Option<Credential>> {
        let Some(base) = self.base.provide_credential_dyn(ctx).await? else {
            return Err(reqsign_core::Error::config_invalid(
                "the source of the AssumeRole call gave no credentials",
            ));
        };
        let now = Timestamp::now();
        let mut p: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in [
            ("Action", "AssumeRole"),
            ("Version", "2015-04-01"),
            ("Format", "JSON"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
        ] {
            p.insert(k.into(), v.into());
        }
        p.insert("AccessKeyId".into(), base.access_key_id.clone());
        p.insert("Timestamp".into(), now.format_rfc3339_zulu());
        p.insert(
            "SignatureNonce".into(),
            format!(
                "{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            ),
        );
        p.insert("RoleArn".into(), self.role_arn.clone());
        p.insert("RoleSessionName".into(), self.session_name.clone());
        p.insert(
            "DurationSeconds".into(),
            self.duration_seconds
                .unwrap_or(DEFAULT_DURATION_SECONDS)
                .to_string(),
        );
        if let Some(x) = self.external_id.as_ref().filter(|x| !x.is_empty()) {
            p.insert("ExternalId".into(), x.clone());
        }
        if let Some(x) = self.policy.as_ref().filter(|x| !x.is_empty()) {
            p.insert("Policy".into(), x.clone());
        }
        if let Some(t) = base.security_token.as_ref().filter(|t| !t.is_empty()) {
            p.insert("SecurityToken".into(), t.clone());
        }
        let signature = rpc_signature(&base.access_key_secret, &p);
        p.insert("Signature".into(), signature);
        let pairs: Vec<(&String, &String)> = p.iter().collect();
        let url = format!(
            "{}/?{}",
            self.endpoint.resolve(ctx),
            crate::rpc::canonical_query(&pairs)
        );
        let req = http::Request::get(url)
            .body(bytes::Bytes::new())
            .map_err(|e| reqsign_core::Error::unexpected("bad STS request").with_source(e))?;
        let resp = ctx.http_send(req).await?;
        let status = resp.status();
        let answer: Answer = serde_json::from_slice(resp.body()).map_err(|e| {
            reqsign_core::Error::unexpected(format!("STS AssumeRole answered HTTP {status}: {e}"))
        })?;
        match answer.credentials {
            Some(c) if status.is_success() => Ok(Some(Credential {
                access_key_id: c.access_key_id,
                access_key_secret: c.access_key_secret,
                security_token: Some(c.security_token),
                expires_in: Some(c.expiration.parse()?),
            })),
            _ => Err(reqsign_core::Error::unexpected(format!(
                "STS AssumeRole of {} refused (HTTP {status}): {}: {}",
                self.role_arn,
                answer.code.unwrap_or_default(),
                answer.message.unwrap_or_default()
            ))),
        }
    }
}

/// STS AssumeRoleWithOIDC: an OIDC token (a Kubernetes service account's, for RRSA) traded
/// for the role's temporary keys. The call is anonymous (no AccessKey, no signature: the token
/// is the proof). Sent as Alibaba's credentials libraries send it: a POST whose form body
/// carries the token, so it never lands in a URL or an access log, with `DurationSeconds` and
/// an inline `Policy` when the profile has them (reqsign's provider sends the token in the
/// query and neither of those).
pub struct AssumeRoleWithOidc {
    /// The role's ARN; `None`: `ALIBABA_CLOUD_ROLE_ARN`.
    pub role_arn: Option<String>,
    /// The OIDC provider's ARN; `None`: `ALIBABA_CLOUD_OIDC_PROVIDER_ARN`.
    pub provider_arn: Option<String>,
    /// File holding the token, read afresh on every call (it is rotated); `None`:
    /// `ALIBABA_CLOUD_OIDC_TOKEN_FILE`.
    pub token_file: Option<String>,
    /// Session name; `None`: `ALIBABA_CLOUD_ROLE_SESSION_NAME`, else `ecs-preflight`.
    pub session_name: Option<String>,
    /// Session length; default [`DEFAULT_DURATION_SECONDS`].
    pub duration_seconds: Option<u64>,
    /// An inline policy narrowing the session.
    pub policy: Option<String>,
    /// Where STS is.
    pub endpoint: StsEndpoint,
}

impl fmt::Debug for AssumeRoleWithOidc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRoleWithOidc")
            .field("role_arn", &self.role_arn)
            .field("provider_arn", &self.provider_arn)
            .field("token_file", &self.token_file)
            .field("duration_seconds", &self.duration_seconds)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl AssumeRoleWithOidc {
    /// Everything from the `ALIBABA_CLOUD_*` environment variables.
    pub fn from_env() -> Self {
        AssumeRoleWithOidc {
            role_arn: None,
            provider_arn: None,
            token_file: None,
            session_name: None,
            duration_seconds: None,
            policy: None,
            endpoint: StsEndpoint::default(),
        }
    }
}

impl ProvideCredential for AssumeRoleWithOidc {
    type Credential = Credential;

    async fn provide_credential(&self, ctx: &Context) -> reqsign_core::Result<Option<Credential>> {
        let env = |k: &str| ctx.env_var(k).filter(|v| !v.trim().is_empty());
        let setting = |given: &Option<String>, var: &str| {
            given
                .clone()
                .filter(|v| !v.is_empty())
                .or_else(|| env(var))
                .ok_or_else(|| {
                    reqsign_core::Error::config_invalid(format!(
                        "AssumeRoleWithOIDC needs {var} (or the profile's setting)"
                    ))
                })
        };
        let role_arn = setting(&self.role_arn, "ALIBABA_CLOUD_ROLE_ARN")?;
        let provider_arn = setting(&self.provider_arn, "ALIBABA_CLOUD_OIDC_PROVIDER_ARN")?;
        let token_file = setting(&self.token_file, "ALIBABA_CLOUD_OIDC_TOKEN_FILE")?;
        let session_name = self
            .session_name
            .clone()
            .filter(|v| !v.is_empty())
            .or_else(|| env("ALIBABA_CLOUD_ROLE_SESSION_NAME"))
            .unwrap_or_else(|| "ecs-preflight".to_string());
        let token = std::fs::read_to_string(&token_file).map_err(|e| {
            reqsign_core::Error::config_invalid(format!(
                "cannot read the OIDC token file {token_file}"
            ))
            .with_source(e)
        })?;
        let token = token.trim();
        if token.is_empty() {
            return Err(reqsign_core::Error::config_invalid(format!(
                "the OIDC token file {token_file} is empty"
            )));
        }
        let query = crate::rpc::canonical_query(&[
            ("Action", "AssumeRoleWithOIDC"),
            ("Format", "JSON"),
            ("Version", "2015-04-01"),
            ("Timestamp", &Timestamp::now().format_rfc3339_zulu()),
        ]);
        let duration = self
            .duration_seconds
            .unwrap_or(DEFAULT_DURATION_SECONDS)
            .to_string();
        let mut form: Vec<(&str, &str)> = vec![
            ("RoleArn", &role_arn),
            ("OIDCProviderArn", &provider_arn),
            ("OIDCToken", token),
            ("RoleSessionName", &session_name),
            ("DurationSeconds", &duration),
        ];
        if let Some(x) = self.policy.as_deref().filter(|x| !x.is_empty()) {
            form.push(("Policy", x));
        }
        let body = crate::rpc::canonical_query(&form);
        let url = format!("{}/?{query}", self.endpoint.resolve(ctx));
        let req = http::Request::post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(bytes::Bytes::from(body))
            .map_err(|e| reqsign_core::Error::unexpected("bad STS request").with_source(e))?;
        let resp = ctx.http_send(req).await?;
        let status = resp.status();
        let answer: Answer = serde_json::from_slice(resp.body()).map_err(|e| {
            reqsign_core::Error::unexpected(format!(
                "STS AssumeRoleWithOIDC answered HTTP {status}: {e}"
            ))
        })?;
        match answer.credentials {
            Some(c) if status.is_success() => Ok(Some(Credential {
                access_key_id: c.access_key_id,
                access_key_secret: c.access_key_secret,
                security_token: Some(c.security_token),
                expires_in: Some(c.expiration.parse()?),
            })),
            _ => Err(reqsign_core::Error::unexpected(format!(
                "STS AssumeRoleWithOIDC of {role_arn} refused (HTTP {status}): {}: {}",
                answer.code.unwrap_or_default(),
                answer.message.unwrap_or_default()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqsign_core::StaticEnv;
    use std::collections::HashMap;

    fn ctx(envs: &[(&str, &str)]) -> Context {
        crate::transport::context(StaticEnv {
            home_dir: None,
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        })
    }

    #[test]
    fn endpoint_order() {
        let e = |endpoint: Option<&str>, region: Option<&str>, vpc: Option<bool>| StsEndpoint {
            endpoint: endpoint.map(str::to_string),
            region: region.map(str::to_string),
            enable_vpc: vpc,
        };
        let none = ctx(&[]);
        assert_eq!(
            e(None, None, None).resolve(&none),
            "https://sts.aliyuncs.com"
        );
        assert_eq!(
            e(None, Some("cn-beijing"), None).resolve(&none),
            "https://sts.cn-beijing.aliyuncs.com"
        );
        assert_eq!(
            e(None, Some("cn-beijing"), Some(true)).resolve(&none),
            "https://sts-vpc.cn-beijing.aliyuncs.com"
        );
        let envs = ctx(&[
            ("ALIBABA_CLOUD_STS_REGION", "cn-shanghai"),
            ("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"),
        ]);
        assert_eq!(
            e(None, None, None).resolve(&envs),
            "https://sts-vpc.cn-shanghai.aliyuncs.com"
        );
        assert_eq!(
            e(None, Some("cn-beijing"), Some(false)).resolve(&envs),
            "https://sts.cn-beijing.aliyuncs.com"
        );
        assert_eq!(
            e(Some("http://127.0.0.1:9/"), Some("x"), Some(true)).resolve(&envs),
            "http://127.0.0.1:9"
        );
        let explicit = ctx(&[("ALIBABA_CLOUD_STS_ENDPOINT", "sts.example.com")]);
        assert_eq!(
            e(None, Some("cn-beijing"), None).resolve(&explicit),
            "https://sts.example.com"
        );
    }
}
