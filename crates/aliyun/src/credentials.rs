//! The credential chain, in the order of Alibaba's credentials library and the `aliyun` CLI:
//!
//! 1. environment: `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, optional
//!    `ALIBABA_CLOUD_SECURITY_TOKEN` (reqsign's env provider; it also takes `OSS_ACCESS_KEY_ID`…);
//! 2. OIDC, when `ALIBABA_CLOUD_ROLE_ARN`, `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` and
//!    `ALIBABA_CLOUD_OIDC_TOKEN_FILE` are all set (our AssumeRoleWithOIDC, [`crate::sts`]);
//! 3. the aliyun CLI's `~/.aliyun/config.json`, profile `ALIBABA_CLOUD_PROFILE` or the file's
//!    `current` (our reader, [`crate::cli_config`]; modes AK, StsToken, RamRoleArn,
//!    ChainableRamRoleArn (`source_profile`), EcsRamRole, OIDC, CredentialsURI, External
//!    (`process_command`); the others are refused by name). AssumeRole honours
//!    `expired_seconds`, `policy`, `external_id`, `sts_region` and `enable_vpc` ([`crate::sts`]);
//! 4. `~/.alibabacloud/credentials.ini` or `ALIBABA_CLOUD_CREDENTIALS_FILE`, section
//!    `ALIBABA_CLOUD_PROFILE` or `default` (types access_key, sts, ram_role_arn, ecs_ram_role,
//!    oidc_role_arn; rsa_key_pair is refused by name);
//! 5. the ECS instance RAM role from the metadata service (reqsign), unless
//!    `ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`;
//! 6. `ALIBABA_CLOUD_CREDENTIALS_URI`, when set.
//!
//! An explicit profile (`--profile`) uses only step 3 with that profile.
//!
//! The chain is resolved once; temporary credentials (STS, RAM role) are then refreshed from
//! the same source five minutes before they expire, so an upload that outlives a token goes on.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use reqsign_aliyun_oss::{
    Credential, CredentialsUriCredentialProvider, EcsRamRoleCredentialProvider,
    EnvCredentialProvider, StaticCredentialProvider,
};
use reqsign_core::time::Timestamp;
use reqsign_core::{Context, Env, ProvideCredentialDyn};
use tokio::sync::Mutex;

use crate::cli_config::{CliConfig, Profile, ProfileKind};
use crate::external::ExternalProcess;
use crate::secret::Secret;
use crate::sts::{AssumeRole, AssumeRoleWithOidc, StsEndpoint};

/// Refresh temporary credentials this long before they expire.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// A credential. `Debug` shows the AccessKeyId and nothing secret.
#[derive(Clone)]
pub struct Credentials {
    /// AccessKeyId.
    pub access_key_id: String,
    /// AccessKeySecret.
    pub access_key_secret: Secret,
    /// STS security token, for temporary credentials.
    pub security_token: Option<Secret>,
    /// When temporary credentials expire.
    pub expires_at: Option<SystemTime>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &self.access_key_secret)
            .field("security_token", &self.security_token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Credentials {
    /// A fixed key pair.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<Secret>) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token: None,
            expires_at: None,
        }
    }

    /// With an STS token.
    pub fn with_security_token(mut self, token: impl Into<Secret>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// reqsign's form, for its signer.
    pub fn to_reqsign(&self) -> Credential {
        Credential {
            access_key_id: self.access_key_id.clone(),
            access_key_secret: self.access_key_secret.expose().to_string(),
            security_token: self.security_token.as_ref().map(|s| s.expose().to_string()),
            expires_in: self.expires_at.and_then(|t| {
                let secs = t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
                Timestamp::from_second(i64::try_from(secs).ok()?).ok()
            }),
        }
    }

    fn from_reqsign(c: Credential) -> Self {
        Credentials {
            access_key_id: c.access_key_id,
            access_key_secret: Secret::new(c.access_key_secret),
            security_token: c.security_token.filter(|t| !t.is_empty()).map(Secret::new),
            expires_at: c.expires_in.map(Timestamp::as_system_time),
        }
    }

    fn fresh(&self, now: SystemTime) -> bool {
        self.expires_at
            .is_none_or(|t| t > now + REFRESH_BEFORE_EXPIRY)
    }
}

/// Where the credentials came from (shown to the user; holds no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Given by the caller.
    Static,
    /// `ALIBABA_CLOUD_ACCESS_KEY_ID` and friends.
    Environment,
    /// OIDC environment variables.
    Oidc,
    /// An aliyun CLI profile.
    Profile {
        /// Profile name.
        name: String,
        /// Its mode.
        mode: String,
    },
    /// The ECS instance RAM role.
    EcsRamRole,
    /// A section of `~/.alibabacloud/credentials.ini`.
    CredentialsFile {
        /// The file.
        path: PathBuf,
        /// Section name.
        profile: String,
        /// Its `type`.
        kind: String,
    },
    /// `ALIBABA_CLOUD_CREDENTIALS_URI`.
    CredentialsUri,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Static => f.write_str("given credentials"),
            CredentialSource::Environment => {
                f.write_str("environment (ALIBABA_CLOUD_ACCESS_KEY_ID)")
            }
            CredentialSource::Oidc => f.write_str("OIDC (ALIBABA_CLOUD_OIDC_TOKEN_FILE)"),
            CredentialSource::Profile { name, mode } => {
                write!(
                    f,
                    "aliyun CLI profile {name:?} (mode {})",
                    if mode.is_empty() { "AK" } else { mode }
                )
            }
            CredentialSource::EcsRamRole => f.write_str("ECS instance RAM role"),
            CredentialSource::CredentialsFile {
                path,
                profile,
                kind,
            } => {
                write!(f, "[{profile}] of {} (type {kind})", path.display())
            }
            CredentialSource::CredentialsUri => f.write_str("ALIBABA_CLOUD_CREDENTIALS_URI"),
        }
    }
}

/// Why no credential could be had. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Nothing in the chain gave a credential.
    #[error("no Alibaba Cloud credentials found (tried: {tried}); set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or run `aliyun configure`, or pass --profile")]
    NotFound {
        /// What was tried, in order.
        tried: String,
    },
    /// The CLI config file could not be read or parsed.
    #[error("cannot use the aliyun CLI config {path}: {reason}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The profile asked for is not in the file.
    #[error("profile {profile:?} is not in {path}")]
    ProfileNotFound {
        /// Profile name.
        profile: String,
        /// The file.
        path: PathBuf,
    },
    /// The profile's mode is not supported yet.
    #[error("profile {profile:?} uses credential mode {mode:?}, which ecs-preflight does not support yet (supported: AK, StsToken, RamRoleArn, ChainableRamRoleArn, EcsRamRole, OIDC, CredentialsURI, External; in credentials.ini: access_key, sts, ram_role_arn, ecs_ram_role, oidc_role_arn); use one of those or set ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET")]
    UnsupportedMode {
        /// Profile name.
        profile: String,
        /// Its mode.
        mode: String,
    },
    /// The profile lacks a field its mode needs.
    #[error("profile {profile:?} (mode {mode}) has no {field}")]
    IncompleteProfile {
        /// Profile name.
        profile: String,
        /// Its mode.
        mode: String,
        /// The missing field.
        field: &'static str,
    },
    /// A provider (STS, metadata service, OIDC) failed.
    #[error("{source_name}: {message}")]
    Provider {
        /// Which source.
        source_name: String,
        /// reqsign's message (reqsign errors carry no secret).
        message: String,
    },
}

/// How to build the chain.
#[derive(Debug, Clone, Default)]
pub struct ChainOptions {
    /// An explicit aliyun CLI profile (`--profile`): only it is used.
    pub profile: Option<String>,
    /// The CLI config file; default `~/.aliyun/config.json`.
    pub config_file: Option<PathBuf>,
    /// Skip the ECS metadata service (also skipped when `ALIBABA_CLOUD_ECS_METADATA_DISABLED`
    /// is `true`). Default false.
    pub no_imds: bool,
    /// The STS endpoint AssumeRole goes to (`--sts-endpoint`); default the profile's
    /// `sts_region`, else STS's global endpoint.
    pub sts_endpoint: Option<String>,
}

type DynProvider = Box<dyn ProvideCredentialDyn<Credential = Credential>>;

struct State {
    provider: DynProvider,
    source: CredentialSource,
    current: Credentials,
}

/// The resolved chain with a cache. Cheap to share behind an `Arc`.
pub struct CredentialProvider {
    ctx: Context,
    fixed: Option<(Credentials, CredentialSource)>,
    options: ChainOptions,
    state: Mutex<Option<State>>,
}

impl fmt::Debug for CredentialProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialProvider")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn env_true(ctx: &Context, key: &str) -> bool {
    ctx.env_var(key)
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

fn provider_error(source_name: &str, e: &reqsign_core::Error) -> CredentialError {
    CredentialError::Provider {
        source_name: source_name.to_string(),
        message: e.to_string(),
    }
}

impl CredentialProvider {
    /// The default chain over the process environment.
    pub fn new(options: ChainOptions) -> Self {
        Self::with_env(options, reqsign_core::OsEnv)
    }

    /// The chain over a given environment (tests use `reqsign_core::StaticEnv`).
    pub fn with_env(options: ChainOptions, env: impl Env) -> Self {
        CredentialProvider {
            ctx: crate::transport::context(env),
            fixed: None,
            options,
            state: Mutex::new(None),
        }
    }

    /// Fixed credentials, no chain.
    pub fn fixed(credentials: Credentials) -> Self {
        CredentialProvider {
            ctx: Context::new(),
            fixed: Some((credentials, CredentialSource::Static)),
            options: ChainOptions::default(),
            state: Mutex::new(None),
        }
    }

    /// Current credentials: resolved on first use, refreshed near expiry.
    pub async fn get(&self) -> Result<Credentials, CredentialError> {
        Ok(self.get_with_source().await?.0)
    }

    /// Current credentials and where they came from.
    pub async fn get_with_source(
        &self,
    ) -> Result<(Credentials, CredentialSource), CredentialError> {
        if let Some((c, s)) = &self.fixed {
            return Ok((c.clone(), s.clone()));
        }
        let mut guard = self.state.lock().await;
        let now = SystemTime::now();
        if let Some(state) = guard.as_mut() {
            if !state.current.fresh(now) {
                let name = state.source.to_string();
                let c = state
                    .provider
                    .provide_credential_dyn(&self.ctx)
                    .await
                    .map_err(|e| provider_error(&name, &e))?
                    .ok_or_else(|| CredentialError::Provider {
                        source_name: name,
                        message: "gave no credentials on refresh".to_string(),
                    })?;
                state.current = Credentials::from_reqsign(c);
            }
            return Ok((state.current.clone(), state.source.clone()));
        }
        let state = self.resolve().await?;
        let out = (state.current.clone(), state.source.clone());
        *guard = Some(state);
        Ok(out)
    }

    async fn try_provider(
        &self,
        provider: DynProvider,
        source: CredentialSource,
    ) -> Result<Option<State>, CredentialError> {
        let got = provider
            .provide_credential_dyn(&self.ctx)
            .await
            .map_err(|e| provider_error(&source.to_string(), &e))?;
        Ok(got.map(|c| State {
            provider,
            source,
            current: Credentials::from_reqsign(c),
        }))
    }

    async fn resolve(&self) -> Result<State, CredentialError> {
        if let Some(name) = &self.options.profile {
            let path = self.config_path();
            let config =
                self.read_config(&path)
                    .await?
                    .ok_or_else(|| CredentialError::ConfigFile {
                        path: path.clone(),
                        reason: "the file does not exist".to_string(),
                    })?;
            let profile = config
                .profile(name)
                .ok_or_else(|| CredentialError::ProfileNotFound {
                    profile: name.clone(),
                    path: path.clone(),
                })?;
            return self.load_profile(&config, profile).await;
        }
        let mut tried = Vec::new();

        tried.push("environment");
        let env: DynProvider = Box::new(EnvCredentialProvider::new());
        if let Some(s) = self
            .try_provider(env, CredentialSource::Environment)
            .await?
        {
            return Ok(s);
        }

        let oidc_vars = [
            "ALIBABA_CLOUD_ROLE_ARN",
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
        ];
        if oidc_vars
            .iter()
            .all(|k| self.ctx.env_var(k).is_some_and(|v| !v.is_empty()))
        {
            tried.push("OIDC");
            let oidc: DynProvider = Box::new(AssumeRoleWithOidc {
                endpoint: StsEndpoint {
                    endpoint: self.options.sts_endpoint.clone(),
                    ..StsEndpoint::default()
                },
                ..AssumeRoleWithOidc::from_env()
            });
            if let Some(s) = self.try_provider(oidc, CredentialSource::Oidc).await? {
                return Ok(s);
            }
        }

        tried.push("aliyun CLI config");
        let path = self.config_path();
        if let Some(config) = self.read_config(&path).await? {
            let explicit = self
                .ctx
                .env_var("ALIBABA_CLOUD_PROFILE")
                .filter(|p| !p.is_empty());
            let name = explicit
                .clone()
                .or_else(|| config.current.clone())
                .unwrap_or_else(|| "default".to_string());
            match config.profile(&name) {
                Some(profile) => return self.load_profile(&config, profile).await,
                None if explicit.is_some() => {
                    return Err(CredentialError::ProfileNotFound {
                        profile: name,
                        path,
                    })
                }
                None => {}
            }
        }

        tried.push("credentials.ini");
        if let Some(s) = self.credentials_file().await? {
            return Ok(s);
        }

        let mut imds_error = None;
        if !self.options.no_imds && !env_true(&self.ctx, "ALIBABA_CLOUD_ECS_METADATA_DISABLED") {
            tried.push("ECS RAM role");
            let imds: DynProvider = Box::new(EcsRamRoleCredentialProvider::new());
            match self.try_provider(imds, CredentialSource::EcsRamRole).await {
                Ok(Some(s)) => return Ok(s),
                Ok(None) => {}
                // Off ECS the metadata service does not answer: that means "not here".
                Err(e) => imds_error = Some(e),
            }
        }
        if let Some(uri) = self
            .ctx
            .env_var("ALIBABA_CLOUD_CREDENTIALS_URI")
            .filter(|u| !u.is_empty())
        {
            tried.push("ALIBABA_CLOUD_CREDENTIALS_URI");
            let p: DynProvider = Box::new(CredentialsUriCredentialProvider::new().with_uri(uri));
            if let Some(s) = self
                .try_provider(p, CredentialSource::CredentialsUri)
                .await?
            {
                return Ok(s);
            }
        }
        let mut tried = tried.join(", ");
        if let Some(e) = imds_error {
            tried.push_str(&format!(" ({e})"));
        }
        Err(CredentialError::NotFound { tried })
    }

    fn config_path(&self) -> PathBuf {
        self.options.config_file.clone().unwrap_or_else(|| {
            self.ctx
                .home_dir()
                .unwrap_or_default()
                .join(".aliyun")
                .join("config.json")
        })
    }

    async fn read_config(&self, path: &PathBuf) -> Result<Option<CliConfig>, CredentialError> {
        let text = match tokio::fs::read(path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CredentialError::ConfigFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })
            }
        };
        CliConfig::parse(&text)
            .map(Some)
            .map_err(|e| CredentialError::ConfigFile {
                path: path.clone(),
                // serde_json's message names a line and column, never the value.
                reason: e.to_string(),
            })
    }

    async fn load_profile(
        &self,
        config: &CliConfig,
        p: &Profile,
    ) -> Result<State, CredentialError> {
        let source = CredentialSource::Profile {
            name: p.name.clone(),
            mode: p.mode.clone(),
        };
        let provider = self.profile_provider(config, p, 0)?;
        let name = source.to_string();
        self.try_provider(provider, source)
            .await?
            .ok_or(CredentialError::Provider {
                source_name: name,
                message: "gave no credentials".to_string(),
            })
    }

    /// The provider of a CLI profile; `depth` counts `source_profile` hops (a loop ends).
    fn profile_provider(
        &self,
        config: &CliConfig,
        p: &Profile,
        depth: usize,
    ) -> Result<DynProvider, CredentialError> {
        let kind = p.kind().map_err(|mode| CredentialError::UnsupportedMode {
            profile: p.name.clone(),
            mode,
        })?;
        let need = |ok: bool, field: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(CredentialError::IncompleteProfile {
                    profile: p.name.clone(),
                    mode: if p.mode.is_empty() {
                        "AK".to_string()
                    } else {
                        p.mode.clone()
                    },
                    field,
                })
            }
        };
        let key_pair = || -> Result<(String, Secret), CredentialError> {
            need(!p.access_key_id.is_empty(), "access_key_id")?;
            let secret = p.access_key_secret.clone();
            need(secret.is_some(), "access_key_secret")?;
            Ok((
                p.access_key_id.clone(),
                secret.unwrap_or_else(|| Secret::new("")),
            ))
        };
        // `--sts-endpoint` wins over the profile's `sts_region` / `enable_vpc`.
        let sts_endpoint = || {
            let mut e = p.sts_endpoint();
            if let Some(given) = self.options.sts_endpoint.clone() {
                e.endpoint = Some(given);
            }
            e
        };
        let assume = |base: DynProvider| -> DynProvider {
            Box::new(AssumeRole {
                base,
                role_arn: p.ram_role_arn.clone(),
                session_name: session_name(p),
                external_id: Some(p.external_id.clone()),
                duration_seconds: p.expired_seconds.filter(|s| *s > 0),
                policy: Some(p.policy.clone()),
                endpoint: sts_endpoint(),
            })
        };
        Ok(match kind {
            ProfileKind::Static => {
                let (id, secret) = key_pair()?;
                if p.mode == "StsToken" {
                    need(p.sts_token.is_some(), "sts_token")?;
                }
                let mut s = StaticCredentialProvider::new(&id, secret.expose());
                if let Some(t) = &p.sts_token {
                    s = s.with_security_token(t.expose());
                }
                Box::new(s)
            }
            ProfileKind::EcsRamRole => {
                let mut e = EcsRamRoleCredentialProvider::new();
                if !p.ram_role_name.is_empty() {
                    e = e.with_role_name(&p.ram_role_name);
                }
                Box::new(e)
            }
            ProfileKind::RamRoleArn => {
                let (id, secret) = key_pair()?;
                need(!p.ram_role_arn.is_empty(), "ram_role_arn")?;
                assume(Box::new(StaticCredentialProvider::new(
                    &id,
                    secret.expose(),
                )))
            }
            ProfileKind::ChainableRamRoleArn => {
                need(!p.source_profile.is_empty(), "source_profile")?;
                need(!p.ram_role_arn.is_empty(), "ram_role_arn")?;
                if depth >= MAX_SOURCE_PROFILE_HOPS {
                    return Err(CredentialError::ConfigFile {
                        path: self.config_path(),
                        reason: format!(
                            "profile {:?}: source_profile goes round in a loop (or more than {MAX_SOURCE_PROFILE_HOPS} hops)",
                            p.name
                        ),
                    });
                }
                let source = config.profile(&p.source_profile).ok_or_else(|| {
                    CredentialError::ProfileNotFound {
                        profile: p.source_profile.clone(),
                        path: self.config_path(),
                    }
                })?;
                assume(self.profile_provider(config, source, depth + 1)?)
            }
            ProfileKind::External => {
                need(!p.process_command.trim().is_empty(), "process_command")?;
                Box::new(ExternalProcess {
                    command: p.process_command.clone(),
                })
            }
            ProfileKind::Oidc => {
                need(!p.ram_role_arn.is_empty(), "ram_role_arn")?;
                need(!p.oidc_provider_arn.is_empty(), "oidc_provider_arn")?;
                need(!p.oidc_token_file.is_empty(), "oidc_token_file")?;
                Box::new(AssumeRoleWithOidc {
                    role_arn: Some(p.ram_role_arn.clone()),
                    provider_arn: Some(p.oidc_provider_arn.clone()),
                    token_file: Some(p.oidc_token_file.clone()),
                    session_name: Some(session_name(p)),
                    duration_seconds: p.expired_seconds.filter(|s| *s > 0),
                    policy: Some(p.policy.clone()),
                    endpoint: sts_endpoint(),
                })
            }
            ProfileKind::CredentialsUri => {
                need(!p.credentials_uri.is_empty(), "credentials_uri")?;
                Box::new(CredentialsUriCredentialProvider::new().with_uri(&p.credentials_uri))
            }
        })
    }

    /// `~/.alibabacloud/credentials.ini` (or `ALIBABA_CLOUD_CREDENTIALS_FILE`), section
    /// `ALIBABA_CLOUD_PROFILE` or `default`: `None` when there is no such file or section.
    async fn credentials_file(&self) -> Result<Option<State>, CredentialError> {
        let explicit = self
            .ctx
            .env_var("ALIBABA_CLOUD_CREDENTIALS_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let path = match &explicit {
            Some(p) => p.clone(),
            None => match self.ctx.home_dir() {
                Some(h) => h.join(".alibabacloud").join("credentials.ini"),
                None => return Ok(None),
            },
        };
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                return Ok(None)
            }
            Err(e) => {
                return Err(CredentialError::ConfigFile {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        let section = self
            .ctx
            .env_var("ALIBABA_CLOUD_PROFILE")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let Some(entry) = crate::credentials_file::parse(&text, &section).map_err(|reason| {
            CredentialError::ConfigFile {
                path: path.clone(),
                reason,
            }
        })?
        else {
            return Ok(None);
        };
        let source = CredentialSource::CredentialsFile {
            path: path.clone(),
            profile: section.clone(),
            kind: entry.kind.clone(),
        };
        let incomplete = |field: &'static str| CredentialError::IncompleteProfile {
            profile: format!("{section} in {}", path.display()),
            mode: entry.kind.clone(),
            field,
        };
        let get = |field: &'static str| -> Result<String, CredentialError> {
            entry.get(field).ok_or_else(|| incomplete(field))
        };
        let provider: DynProvider = match entry.kind.as_str() {
            "access_key" | "sts" => {
                let mut s = StaticCredentialProvider::new(
                    &get("access_key_id")?,
                    &get("access_key_secret")?,
                );
                if entry.kind == "sts" {
                    s = s.with_security_token(&get("security_token")?);
                }
                Box::new(s)
            }
            "ecs_ram_role" => {
                let mut e = EcsRamRoleCredentialProvider::new();
                if let Some(r) = entry.get("role_name") {
                    e = e.with_role_name(r);
                }
                Box::new(e)
            }
            "ram_role_arn" => Box::new(AssumeRole {
                base: Box::new(StaticCredentialProvider::new(
                    &get("access_key_id")?,
                    &get("access_key_secret")?,
                )),
                role_arn: get("role_arn")?,
                session_name: entry
                    .get("role_session_name")
                    .unwrap_or_else(|| "ecs-preflight".to_string()),
                external_id: entry.get("external_id"),
                duration_seconds: entry.get("duration_seconds").and_then(|d| d.parse().ok()),
                policy: entry.get("policy"),
                endpoint: StsEndpoint::default(),
            }),
            "oidc_role_arn" => Box::new(AssumeRoleWithOidc {
                role_arn: Some(get("role_arn")?),
                provider_arn: Some(get("oidc_provider_arn")?),
                token_file: Some(get("oidc_token_file_path")?),
                session_name: entry.get("role_session_name"),
                duration_seconds: entry.get("duration_seconds").and_then(|d| d.parse().ok()),
                policy: entry.get("policy"),
                endpoint: StsEndpoint::default(),
            }),
            other => {
                return Err(CredentialError::UnsupportedMode {
                    profile: format!("{section} in {}", path.display()),
                    mode: other.to_string(),
                })
            }
        };
        let name = source.to_string();
        self.try_provider(provider, source)
            .await?
            .map(Some)
            .ok_or(CredentialError::Provider {
                source_name: name,
                message: "gave no credentials".to_string(),
            })
    }
}

/// Longest `source_profile` chain followed.
const MAX_SOURCE_PROFILE_HOPS: usize = 8;

fn session_name(p: &Profile) -> String {
    if p.ram_session_name.is_empty() {
        "ecs-preflight".to_string()
    } else {
        p.ram_session_name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqsign_core::StaticEnv;
    use std::collections::HashMap;

    fn provider(
        envs: &[(&str, &str)],
        home: &std::path::Path,
        profile: Option<&str>,
    ) -> CredentialProvider {
        let env = StaticEnv {
            home_dir: Some(home.to_path_buf()),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        };
        CredentialProvider::with_env(
            ChainOptions {
                profile: profile.map(str::to_string),
                config_file: None,
                no_imds: true,
                sts_endpoint: None,
            },
            env,
        )
    }

    fn write_config(home: &std::path::Path) {
        std::fs::create_dir_all(home.join(".aliyun")).unwrap();
        std::fs::write(
            home.join(".aliyun/config.json"),
            r#"{"current":"dev","profiles":[
              {"name":"dev","mode":"AK","access_key_id":"LTAIdev","access_key_secret":"dev-secret-0123456789"},
              {"name":"sts","mode":"StsToken","access_key_id":"STS.id","access_key_secret":"sts-secret","sts_token":"CAIS-sts-token"},
              {"name":"half","mode":"StsToken","access_key_id":"STS.id","access_key_secret":"s"},
              {"name":"sso","mode":"CloudSSO"}]}"#,
        )
        .unwrap();
    }

    #[tokio::test]
    async fn environment_comes_first() {
        let home = tempfile::tempdir().unwrap();
        write_config(home.path());
        let p = provider(
            &[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenv"),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret"),
                ("ALIBABA_CLOUD_SECURITY_TOKEN", "env-token"),
            ],
            home.path(),
            None,
        );
        let (c, s) = p.get_with_source().await.unwrap();
        assert_eq!(s, CredentialSource::Environment);
        assert_eq!(c.access_key_id, "LTAIenv");
        assert_eq!(c.security_token.unwrap().expose(), "env-token");
    }

    #[tokio::test]
    async fn current_profile_then_named_profile() {
        let home = tempfile::tempdir().unwrap();
        write_config(home.path());
        let (c, s) = provider(&[], home.path(), None)
            .get_with_source()
            .await
            .unwrap();
        assert_eq!(c.access_key_id, "LTAIdev");
        assert_eq!(s.to_string(), "aliyun CLI profile \"dev\" (mode AK)");
        let p = provider(&[("ALIBABA_CLOUD_PROFILE", "sts")], home.path(), None);
        let c = p.get().await.unwrap();
        assert_eq!(c.access_key_id, "STS.id");
        assert_eq!(c.security_token.unwrap().expose(), "CAIS-sts-token");
        let c = provider(&[], home.path(), Some("sts")).get().await.unwrap();
        assert_eq!(c.access_key_id, "STS.id");
    }

    #[tokio::test]
    async fn clear_errors() {
        let home = tempfile::tempdir().unwrap();
        write_config(home.path());
        let e = provider(&[], home.path(), Some("sso"))
            .get()
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("CloudSSO") && msg.contains("not support"),
            "{msg}"
        );
        let e = provider(&[], home.path(), Some("half"))
            .get()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("sts_token"), "{e}");
        let e = provider(&[], home.path(), Some("ghost"))
            .get()
            .await
            .unwrap_err();
        assert!(matches!(e, CredentialError::ProfileNotFound { .. }));
        let e = provider(&[("ALIBABA_CLOUD_PROFILE", "ghost")], home.path(), None)
            .get()
            .await
            .unwrap_err();
        assert!(matches!(e, CredentialError::ProfileNotFound { .. }));
        let empty = tempfile::tempdir().unwrap();
        let e = provider(&[], empty.path(), None).get().await.unwrap_err();
        assert!(matches!(e, CredentialError::NotFound { .. }), "{e}");
        for text in [format!("{e}"), format!("{e:?}")] {
            assert!(!text.contains("dev-secret"));
        }
    }

    /// A one-shot-per-connection HTTP server answering `body` (JSON) to every request and
    /// recording each request target.
    fn json_server(body: String) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let line = head.lines().next().unwrap_or_default().to_string();
                // The request line, then the body on a line of its own.
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                let mut req_body = vec![0u8; len];
                let _ = s.read_exact(&mut req_body);
                log.lock()
                    .unwrap()
                    .push(format!("{line}\n{}", String::from_utf8_lossy(&req_body)));
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, seen)
    }

    fn sts_answer() -> String {
        r#"{"RequestId":"r","Credentials":{"AccessKeyId":"STS.assumed","AccessKeySecret":"assumed-secret","SecurityToken":"CAIS-assumed","Expiration":"2124-01-01T00:00:00Z"}}"#.to_string()
    }

    /// Decodes one query parameter of a request line.
    fn param(line: &str, name: &str) -> Option<String> {
        let q = line.split(' ').nth(1)?.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    }

    #[tokio::test]
    async fn chainable_role_assumes_with_duration_policy_and_external_id() {
        let home = tempfile::tempdir().unwrap();
        let (sts, seen) = json_server(sts_answer());
        std::fs::create_dir_all(home.path().join(".aliyun")).unwrap();
        std::fs::write(
            home.path().join(".aliyun/config.json"),
            r#"{"current":"chain","profiles":[
              {"name":"base","mode":"AK","access_key_id":"LTAIbase","access_key_secret":"base-secret-0123"},
              {"name":"chain","mode":"ChainableRamRoleArn","source_profile":"base","ram_role_arn":"acs:ram::1:role/importer","ram_session_name":"s1","expired_seconds":1800,"policy":"{\"Version\":\"1\"}","external_id":"ext-1"},
              {"name":"loop1","mode":"ChainableRamRoleArn","source_profile":"loop2","ram_role_arn":"r"},
              {"name":"loop2","mode":"ChainableRamRoleArn","source_profile":"loop1","ram_role_arn":"r"},
              {"name":"orphan","mode":"ChainableRamRoleArn","source_profile":"ghost","ram_role_arn":"r"}]}"#,
        )
        .unwrap();
        let p = provider(&[("ALIBABA_CLOUD_STS_ENDPOINT", &sts)], home.path(), None);
        let (c, s) = p.get_with_source().await.unwrap();
        assert_eq!(c.access_key_id, "STS.assumed");
        assert_eq!(c.security_token.unwrap().expose(), "CAIS-assumed");
        assert_eq!(
            s.to_string(),
            "aliyun CLI profile \"chain\" (mode ChainableRamRoleArn)"
        );
        let line = seen.lock().unwrap()[0].clone();
        assert_eq!(param(&line, "Action").as_deref(), Some("AssumeRole"));
        assert_eq!(param(&line, "AccessKeyId").as_deref(), Some("LTAIbase"));
        assert_eq!(
            param(&line, "RoleArn").as_deref(),
            Some("acs:ram::1:role/importer")
        );
        assert_eq!(param(&line, "RoleSessionName").as_deref(), Some("s1"));
        assert_eq!(param(&line, "DurationSeconds").as_deref(), Some("1800"));
        assert_eq!(
            param(&line, "Policy").as_deref(),
            Some("{\"Version\":\"1\"}")
        );
        assert_eq!(param(&line, "ExternalId").as_deref(), Some("ext-1"));
        assert!(!line.contains("base-secret"));
        let e = provider(&[], home.path(), Some("loop1"))
            .get()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("loop"), "{e}");
        let e = provider(&[], home.path(), Some("orphan"))
            .get()
            .await
            .unwrap_err();
        assert!(matches!(e, CredentialError::ProfileNotFound { .. }), "{e}");
    }

    /// A RamRoleArn profile (not chained): AssumeRole with the profile's key, and its
    /// expired_seconds and policy; none of them when the profile has none.
    #[tokio::test]
    async fn ram_role_arn_profile_sends_expired_seconds_and_policy() {
        let home = tempfile::tempdir().unwrap();
        let (sts, seen) = json_server(sts_answer());
        std::fs::create_dir_all(home.path().join(".aliyun")).unwrap();
        std::fs::write(
            home.path().join(".aliyun/config.json"),
            r#"{"current":"role","profiles":[
              {"name":"role","mode":"RamRoleArn","access_key_id":"LTAIrole","access_key_secret":"role-secret-0123","ram_role_arn":"acs:ram::1:role/importer","expired_seconds":2400,"policy":"{\"Statement\":[]}"},
              {"name":"plain","mode":"RamRoleArn","access_key_id":"LTAIrole","access_key_secret":"role-secret-0123","ram_role_arn":"acs:ram::1:role/importer"}]}"#,
        )
        .unwrap();
        let envs = [("ALIBABA_CLOUD_STS_ENDPOINT", sts.as_str())];
        let (c, _) = provider(&envs, home.path(), None)
            .get_with_source()
            .await
            .unwrap();
        assert_eq!(c.access_key_id, "STS.assumed");
        provider(&envs, home.path(), Some("plain"))
            .get()
            .await
            .unwrap();
        let seen = seen.lock().unwrap().clone();
        let (role, plain) = (&seen[0], &seen[1]);
        assert_eq!(param(role, "AccessKeyId").as_deref(), Some("LTAIrole"));
        assert_eq!(param(role, "DurationSeconds").as_deref(), Some("2400"));
        assert_eq!(param(role, "Policy").as_deref(), Some("{\"Statement\":[]}"));
        assert_eq!(param(plain, "DurationSeconds").as_deref(), Some("3600"));
        assert_eq!(param(plain, "Policy"), None);
    }

    /// The OIDC mode's AssumeRoleWithOIDC: a POST whose form body carries the token (never
    /// the URL), the profile's expired_seconds and policy; no AccessKeyId, no signature.
    #[tokio::test]
    async fn oidc_profile_posts_the_token_with_duration_and_policy() {
        let home = tempfile::tempdir().unwrap();
        let (sts, seen) = json_server(sts_answer());
        let token = home.path().join("token");
        std::fs::write(&token, "aaa.bbb.ccc\n").unwrap();
        std::fs::create_dir_all(home.path().join(".aliyun")).unwrap();
        std::fs::write(
            home.path().join(".aliyun/config.json"),
            format!(
                r#"{{"current":"rrsa","profiles":[{{"name":"rrsa","mode":"OIDC","ram_role_arn":"acs:ram::1:role/importer","oidc_provider_arn":"acs:ram::1:oidc-provider/ack","oidc_token_file":"{}","ram_session_name":"s2","expired_seconds":1200,"policy":"{{\"Version\":\"1\"}}"}}]}}"#,
                token.display()
            ),
        )
        .unwrap();
        let p = provider(&[("ALIBABA_CLOUD_STS_ENDPOINT", &sts)], home.path(), None);
        let (c, s) = p.get_with_source().await.unwrap();
        assert_eq!(c.access_key_id, "STS.assumed");
        assert_eq!(s.to_string(), "aliyun CLI profile \"rrsa\" (mode OIDC)");
        let seen = seen.lock().unwrap()[0].clone();
        let (line, body) = seen.split_once('\n').unwrap();
        assert!(line.starts_with("POST /?"), "{line}");
        assert_eq!(param(line, "Action").as_deref(), Some("AssumeRoleWithOIDC"));
        assert!(
            !line.contains("aaa.bbb"),
            "the token stays out of the URL: {line}"
        );
        let form = |name: &str| param(&format!("POST /?{body} HTTP/1.1"), name);
        assert_eq!(form("OIDCToken").as_deref(), Some("aaa.bbb.ccc"));
        assert_eq!(form("RoleArn").as_deref(), Some("acs:ram::1:role/importer"));
        assert_eq!(
            form("OIDCProviderArn").as_deref(),
            Some("acs:ram::1:oidc-provider/ack")
        );
        assert_eq!(form("RoleSessionName").as_deref(), Some("s2"));
        assert_eq!(form("DurationSeconds").as_deref(), Some("1200"));
        assert_eq!(form("Policy").as_deref(), Some("{\"Version\":\"1\"}"));
        assert!(
            !seen.contains("AccessKeyId") && !seen.contains("Signature="),
            "{seen}"
        );
    }

    #[tokio::test]
    async fn external_mode_runs_the_command() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aliyun")).unwrap();
        let script = home.path().join("creds.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\necho '{\"mode\":\"StsToken\",\"access_key_id\":\"STS.ext\",\"access_key_secret\":\"ext-secret-xyz\",\"sts_token\":\"CAIS-ext\",\"expiration\":\"2124-01-01T00:00:00Z\"}'\n",
        )
        .unwrap();
        std::fs::write(
            home.path().join(".aliyun/config.json"),
            format!(
                r#"{{"current":"ext","profiles":[
                  {{"name":"ext","mode":"External","process_command":"sh {}"}},
                  {{"name":"broken","mode":"External","process_command":"sh -c 'exit 3'"}},
                  {{"name":"empty","mode":"External"}}]}}"#,
                script.display()
            ),
        )
        .unwrap();
        let (c, s) = provider(&[], home.path(), None)
            .get_with_source()
            .await
            .unwrap();
        assert_eq!(c.access_key_id, "STS.ext");
        assert_eq!(c.security_token.as_ref().unwrap().expose(), "CAIS-ext");
        assert!(c.expires_at.is_some());
        assert_eq!(s.to_string(), "aliyun CLI profile \"ext\" (mode External)");
        assert!(!format!("{c:?}").contains("ext-secret"));
        let e = provider(&[], home.path(), Some("broken"))
            .get()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("failed"), "{e}");
        let e = provider(&[], home.path(), Some("empty"))
            .get()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("process_command"), "{e}");
    }

    #[tokio::test]
    async fn credentials_ini_after_the_cli_config() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".alibabacloud")).unwrap();
        std::fs::write(
            home.path().join(".alibabacloud/credentials.ini"),
            "[default]\ntype = access_key\naccess_key_id = LTAIini\naccess_key_secret = ini-secret-0123\n\n[project]\ntype = sts\naccess_key_id = STS.ini\naccess_key_secret = s\nsecurity_token = CAIS-ini\n\n[rsa]\ntype = rsa_key_pair\npublic_key_id = x\n",
        )
        .unwrap();
        let (c, s) = provider(&[], home.path(), None)
            .get_with_source()
            .await
            .unwrap();
        assert_eq!(c.access_key_id, "LTAIini");
        assert!(s.to_string().contains("type access_key"), "{s}");
        assert!(!s.to_string().contains("ini-secret"));
        let c = provider(&[("ALIBABA_CLOUD_PROFILE", "project")], home.path(), None)
            .get()
            .await
            .unwrap();
        assert_eq!(c.security_token.unwrap().expose(), "CAIS-ini");
        let e = provider(&[("ALIBABA_CLOUD_PROFILE", "rsa")], home.path(), None)
            .get()
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("rsa_key_pair") && e.to_string().contains("not support"),
            "{e}"
        );
        // ALIBABA_CLOUD_CREDENTIALS_FILE points elsewhere; a missing named file is an error.
        let other = home.path().join("other.ini");
        std::fs::write(
            &other,
            "[default]\ntype=access_key\naccess_key_id=LTAIother\naccess_key_secret=o\n",
        )
        .unwrap();
        let c = provider(
            &[("ALIBABA_CLOUD_CREDENTIALS_FILE", other.to_str().unwrap())],
            home.path(),
            None,
        )
        .get()
        .await
        .unwrap();
        assert_eq!(c.access_key_id, "LTAIother");
        let e = provider(
            &[("ALIBABA_CLOUD_CREDENTIALS_FILE", "/nonexistent/creds.ini")],
            home.path(),
            None,
        )
        .get()
        .await
        .unwrap_err();
        assert!(matches!(e, CredentialError::ConfigFile { .. }), "{e}");
        // The CLI config comes first.
        write_config(home.path());
        let c = provider(&[], home.path(), None).get().await.unwrap();
        assert_eq!(c.access_key_id, "LTAIdev");
    }

    #[tokio::test]
    async fn credentials_uri_last() {
        let home = tempfile::tempdir().unwrap();
        let (uri, seen) = json_server(
            r#"{"Code":"Success","AccessKeyId":"STS.uri","AccessKeySecret":"uri-secret","SecurityToken":"CAIS-uri","Expiration":"2124-01-01T00:00:00Z"}"#.to_string(),
        );
        let (c, s) = provider(
            &[("ALIBABA_CLOUD_CREDENTIALS_URI", &uri)],
            home.path(),
            None,
        )
        .get_with_source()
        .await
        .unwrap();
        assert_eq!(c.access_key_id, "STS.uri");
        assert_eq!(s, CredentialSource::CredentialsUri);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn debug_prints_no_secret() {
        let c = Credentials::new("LTAIvisible", "very-secret-value-123")
            .with_security_token("CAIS-token-xyz");
        let shown = format!("{c:?}");
        assert!(shown.contains("LTAIvisible"));
        assert!(!shown.contains("very") && !shown.contains("123") && !shown.contains("CAIS"));
        let r = c.to_reqsign();
        assert_eq!(r.access_key_secret, "very-secret-value-123");
    }
}
