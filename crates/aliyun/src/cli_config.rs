//! The `aliyun` CLI's configuration file, `~/.aliyun/config.json`.
//!
//! reqsign-aliyun-oss has a reader for this file too, but it returns "no credentials" for every
//! profile mode except AK and StsToken, so a user with an `EcsRamRole` or `RamRoleArn` profile
//! would be told they have no credentials at all. This reader maps each mode onto a provider
//! (reqsign's, or ours for AssumeRole and External) and refuses the rest with an error that
//! names the mode.
//! Field names follow aliyun-cli `config/profile.go`.

use std::fmt;

use serde::Deserialize;

use crate::secret::Secret;

/// The file: the current profile's name and the profiles.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CliConfig {
    /// Name of the profile used when none is asked for.
    #[serde(default)]
    pub current: Option<String>,
    /// Every profile.
    #[serde(default)]
    pub profiles: Vec<Profile>,
}

impl CliConfig {
    /// Parses the JSON text.
    pub fn parse(text: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// The profile called `name`.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }
}

/// One profile. Only the fields the supported modes use are read.
#[derive(Clone, Default, Deserialize)]
pub struct Profile {
    /// Profile name.
    pub name: String,
    /// `AK`, `StsToken`, `RamRoleArn`, `EcsRamRole`, `OIDC`, `CredentialsURI`, … (empty means AK).
    #[serde(default)]
    pub mode: String,
    /// AccessKeyId.
    #[serde(default)]
    pub access_key_id: String,
    /// AccessKeySecret.
    #[serde(default, deserialize_with = "secret")]
    pub access_key_secret: Option<Secret>,
    /// STS token (`StsToken` mode).
    #[serde(default, deserialize_with = "secret")]
    pub sts_token: Option<Secret>,
    /// Region of the profile.
    #[serde(default)]
    pub region_id: String,
    /// Role name (`EcsRamRole`).
    #[serde(default)]
    pub ram_role_name: String,
    /// Role ARN (`RamRoleArn`, `OIDC`).
    #[serde(default)]
    pub ram_role_arn: String,
    /// Role session name.
    #[serde(default)]
    pub ram_session_name: String,
    /// External id (`RamRoleArn`).
    #[serde(default)]
    pub external_id: String,
    /// STS region (`RamRoleArn`, `OIDC`).
    #[serde(default)]
    pub sts_region: String,
    /// OIDC provider ARN (`OIDC`).
    #[serde(default)]
    pub oidc_provider_arn: String,
    /// OIDC token file (`OIDC`).
    #[serde(default)]
    pub oidc_token_file: String,
    /// Credentials URI (`CredentialsURI`).
    #[serde(default)]
    pub credentials_uri: String,
    /// The profile whose credentials assume the role (`ChainableRamRoleArn`).
    #[serde(default)]
    pub source_profile: String,
    /// The command that prints the credentials as JSON (`External`).
    #[serde(default)]
    pub process_command: String,
    /// Session length in seconds of an assumed role; 0 or absent means STS's default.
    #[serde(default)]
    pub expired_seconds: Option<u64>,
    /// Inline policy narrowing an assumed role's session.
    #[serde(default)]
    pub policy: String,
    /// Call STS on its VPC endpoint (`sts-vpc.<sts_region>.aliyuncs.com`).
    #[serde(default)]
    pub enable_vpc: Option<bool>,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.filter(|s| !s.is_empty()).map(Secret::from))
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &self.access_key_secret)
            .field("sts_token", &self.sts_token)
            .field("region_id", &self.region_id)
            .finish_non_exhaustive()
    }
}

/// What a profile's mode turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileKind {
    /// A fixed key pair, perhaps with an STS token (`AK`, `StsToken`).
    Static,
    /// The ECS instance's RAM role (`EcsRamRole`), by name when given.
    EcsRamRole,
    /// STS AssumeRole with the profile's key pair (`RamRoleArn`).
    RamRoleArn,
    /// STS AssumeRoleWithOIDC (`OIDC`).
    Oidc,
    /// A credentials URI (`CredentialsURI`).
    CredentialsUri,
    /// STS AssumeRole with another profile's credentials (`ChainableRamRoleArn`).
    ChainableRamRoleArn,
    /// A command that prints the credentials (`External`).
    External,
}

/// Modes the aliyun CLI knows and this tool does not handle yet.
pub const UNSUPPORTED_MODES: &[&str] = &[
    "RsaKeyPair",
    "RamRoleArnWithRoleName",
    "CloudSSO",
    "OAuth",
    "BearerToken",
];

impl Profile {
    /// The kind of credential this profile gives, or `Err(mode)` when the mode is not supported.
    pub fn kind(&self) -> Result<ProfileKind, String> {
        match self.mode.as_str() {
            "" | "AK" | "StsToken" => Ok(ProfileKind::Static),
            "EcsRamRole" => Ok(ProfileKind::EcsRamRole),
            "RamRoleArn" => Ok(ProfileKind::RamRoleArn),
            "OIDC" => Ok(ProfileKind::Oidc),
            "CredentialsURI" => Ok(ProfileKind::CredentialsUri),
            "ChainableRamRoleArn" => Ok(ProfileKind::ChainableRamRoleArn),
            "External" => Ok(ProfileKind::External),
            other => Err(other.to_string()),
        }
    }

    /// Where this profile's STS calls go (`sts_region`, `enable_vpc`).
    pub fn sts_endpoint(&self) -> crate::sts::StsEndpoint {
        crate::sts::StsEndpoint {
            endpoint: None,
            region: (!self.sts_region.is_empty()).then(|| self.sts_region.clone()),
            enable_vpc: self.enable_vpc,
        }
    }
}

/// The region to use when none is given on the command line, as Alibaba's tools pick it:
/// `ALIBABA_CLOUD_REGION_ID`, else the `region_id` of the aliyun CLI profile `profile` (else
/// `ALIBABA_CLOUD_PROFILE`, else the file's `current`) in `home/.aliyun/config.json`.
/// `env` reads a variable.
pub fn default_region(
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&std::path::Path>,
    profile: Option<&str>,
) -> Option<String> {
    let set = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(r) = set(env("ALIBABA_CLOUD_REGION_ID")) {
        return Some(r);
    }
    let text = std::fs::read(home?.join(".aliyun").join("config.json")).ok()?;
    let config = CliConfig::parse(&text).ok()?;
    let name = profile
        .map(str::to_string)
        .or_else(|| set(env("ALIBABA_CLOUD_PROFILE")))
        .or_else(|| config.current.clone())
        .unwrap_or_else(|| "default".to_string());
    set(config.profile(&name).map(|p| p.region_id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"current":"default","profiles":[
      {"name":"default","mode":"AK","access_key_id":"LTAIdefault","access_key_secret":"sk-default-1234567890","region_id":"cn-hangzhou","output_format":"json","language":"en"},
      {"name":"sts","mode":"StsToken","access_key_id":"STS.x","access_key_secret":"sk-sts","sts_token":"CAIS-token","region_id":"cn-hangzhou"},
      {"name":"role","mode":"RamRoleArn","access_key_id":"a","access_key_secret":"b","ram_role_arn":"acs:ram::123:role/x","ram_session_name":"s","expired_seconds":3600,"sts_region":"cn-hangzhou"},
      {"name":"ecs","mode":"EcsRamRole","ram_role_name":"MyEcsRole","region_id":"cn-hangzhou"},
      {"name":"chain","mode":"ChainableRamRoleArn","source_profile":"default","ram_role_arn":"r"}],
     "meta_path":""}"#;

    #[test]
    fn default_region_order() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aliyun")).unwrap();
        std::fs::write(home.path().join(".aliyun/config.json"), SAMPLE).unwrap();
        let none = |_: &str| None;
        let h = Some(home.path());
        assert_eq!(
            default_region(&none, h, None).as_deref(),
            Some("cn-hangzhou")
        );
        assert_eq!(default_region(&none, h, Some("role")), None);
        assert_eq!(default_region(&none, None, None), None);
        let env = |k: &str| (k == "ALIBABA_CLOUD_REGION_ID").then(|| "cn-beijing".to_string());
        assert_eq!(default_region(&env, h, None).as_deref(), Some("cn-beijing"));
        let prof = |k: &str| (k == "ALIBABA_CLOUD_PROFILE").then(|| "ecs".to_string());
        assert_eq!(
            default_region(&prof, h, None).as_deref(),
            Some("cn-hangzhou")
        );
    }

    #[test]
    fn parses_the_documented_shape() {
        let c = CliConfig::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(c.current.as_deref(), Some("default"));
        let d = c.profile("default").unwrap();
        assert_eq!(d.kind(), Ok(ProfileKind::Static));
        assert_eq!(
            d.access_key_secret.as_ref().unwrap().expose(),
            "sk-default-1234567890"
        );
        assert!(!format!("{d:?}").contains("sk-default"));
        let s = c.profile("sts").unwrap();
        assert_eq!(s.sts_token.as_ref().unwrap().expose(), "CAIS-token");
        assert!(!format!("{s:?}").contains("CAIS"));
        assert_eq!(
            c.profile("role").unwrap().kind(),
            Ok(ProfileKind::RamRoleArn)
        );
        let role = c.profile("role").unwrap();
        assert_eq!(role.sts_endpoint().region.as_deref(), Some("cn-hangzhou"));
        assert_eq!(role.expired_seconds, Some(3600));
        assert_eq!(
            c.profile("ecs").unwrap().kind(),
            Ok(ProfileKind::EcsRamRole)
        );
        assert_eq!(
            c.profile("chain").unwrap().kind(),
            Ok(ProfileKind::ChainableRamRoleArn)
        );
        assert_eq!(c.profile("chain").unwrap().source_profile, "default");
        assert!(c.profile("nope").is_none());
    }
}
