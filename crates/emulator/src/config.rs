//! Emulator configuration: flags or a TOML file map onto [`Config`].
//!
//! Example TOML (every key optional; defaults as documented on each field):
//! ```toml
//! listen = "127.0.0.1:9090"
//! data_dir = "./emu-data"
//! access_keys = ["LTAI-test:secret", { id = "STS.x", secret = "s", security_token = "CAIS-t" }]
//! buckets = ["images@cn-hangzhou", "vault@cn-hangzhou:encrypted", { name = "b", region = "cn-beijing" }]
//! storage_class = "Standard"
//! import_role = true
//! task_seconds = 5.0
//! limits = "classic"
//! [faults]
//! seed = 7
//! upload_part_error_rate = 0.2
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::faults::Faults;

/// AccessKeyId of the documented local test key pair, used when no key is configured.
/// It is printed by the CLI: it only opens this emulator, never a real account.
pub const DEFAULT_ACCESS_KEY_ID: &str = "LTAI5tPreflightEmulator";
/// AccessKeySecret of the documented local test key pair (see [`DEFAULT_ACCESS_KEY_ID`]).
pub const DEFAULT_ACCESS_KEY_SECRET: &str = "PreflightEmulatorTestSecret0000000000";
/// Bucket configured when none is given.
pub const DEFAULT_BUCKET: &str = "ecs-preflight";
/// Region of [`DEFAULT_BUCKET`].
pub const DEFAULT_REGION: &str = "cn-hangzhou";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9090";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./emu-data";
/// Default duration of an import task in seconds: long enough to observe Waiting and
/// Processing when polling every second, short enough for tests.
pub const DEFAULT_TASK_SECONDS: f64 = 5.0;
/// Longest accepted import task duration (one day).
pub const MAX_TASK_SECONDS: f64 = 86_400.0;
/// Alibaba Cloud account id the emulator pretends to be (bucket owner, role ARN).
pub const ACCOUNT_ID: &str = "1234567890123456";

/// One credential the emulator accepts.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct AccessKey {
    /// AccessKeyId.
    pub id: String,
    /// AccessKeySecret.
    pub secret: String,
    /// STS security token; when set, every request with this key must carry exactly it.
    pub security_token: Option<String>,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl AccessKey {
    /// The documented local test key pair.
    pub fn default_pair() -> Self {
        AccessKey {
            id: DEFAULT_ACCESS_KEY_ID.to_string(),
            secret: DEFAULT_ACCESS_KEY_SECRET.to_string(),
            security_token: None,
        }
    }
}

impl FromStr for AccessKey {
    type Err = Error;

    /// Parses `ID:SECRET` or `ID:SECRET:STS_TOKEN` (the token may itself contain `:`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let err = || Error::AccessKeySyntax {
            id_part: s.split(':').next().unwrap_or_default().to_string(),
        };
        let mut it = s.splitn(3, ':');
        let id = it.next().filter(|x| !x.is_empty()).ok_or_else(err)?;
        let secret = it.next().filter(|x| !x.is_empty()).ok_or_else(err)?;
        let token = it.next();
        if token == Some("") {
            return Err(err());
        }
        Ok(AccessKey {
            id: id.to_string(),
            secret: secret.to_string(),
            security_token: token.map(str::to_string),
        })
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AccessKeyRepr {
    Text(String),
    Table {
        id: String,
        secret: String,
        #[serde(default)]
        security_token: Option<String>,
    },
}

impl<'de> Deserialize<'de> for AccessKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match AccessKeyRepr::deserialize(d)? {
            AccessKeyRepr::Text(s) => s.parse().map_err(serde::de::Error::custom),
            AccessKeyRepr::Table {
                id,
                secret,
                security_token,
            } => {
                if id.is_empty() || secret.is_empty() {
                    return Err(serde::de::Error::custom(Error::AccessKeySyntax {
                        id_part: id,
                    }));
                }
                Ok(AccessKey {
                    id,
                    secret,
                    security_token,
                })
            }
        }
    }
}

/// OSS storage classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StorageClass {
    /// Standard (default).
    #[default]
    Standard,
    /// Infrequent access.
    IA,
    /// Archive: ImportImage refuses it until restored (`InvalidOSSObject.NeedRestore`).
    Archive,
    /// Cold Archive.
    ColdArchive,
    /// Deep Cold Archive.
    DeepColdArchive,
}

impl StorageClass {
    /// The header/XML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "Standard",
            StorageClass::IA => "IA",
            StorageClass::Archive => "Archive",
            StorageClass::ColdArchive => "ColdArchive",
            StorageClass::DeepColdArchive => "DeepColdArchive",
        }
    }

    /// Whether reading needs a restore first.
    pub fn is_archive(self) -> bool {
        matches!(
            self,
            StorageClass::Archive | StorageClass::ColdArchive | StorageClass::DeepColdArchive
        )
    }
}

impl FromStr for StorageClass {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "Standard" => Ok(StorageClass::Standard),
            "IA" => Ok(StorageClass::IA),
            "Archive" => Ok(StorageClass::Archive),
            "ColdArchive" => Ok(StorageClass::ColdArchive),
            "DeepColdArchive" => Ok(StorageClass::DeepColdArchive),
            other => Err(Error::StorageClass(other.to_string())),
        }
    }
}

/// One bucket the emulator serves. Buckets exist only by configuration (no PutBucket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketConfig {
    /// Bucket name.
    pub name: String,
    /// Region id without the `oss-` prefix, e.g. `cn-hangzhou`.
    pub region: String,
    /// Server-side encryption by default (KMS); ImportImage refuses such buckets.
    pub encrypted: bool,
}

/// Checks OSS bucket naming rules.
pub fn valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(|c| *c != b'-')
        && b.last().is_some_and(|c| *c != b'-')
}

/// Checks a region id such as `cn-hangzhou`.
pub fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && region.contains('-')
}

impl BucketConfig {
    fn checked(name: &str, region: &str, encrypted: bool) -> Result<Self, Error> {
        if !valid_bucket_name(name) {
            return Err(Error::BucketName(name.to_string()));
        }
        let region = region.strip_prefix("oss-").unwrap_or(region);
        if !valid_region(region) {
            return Err(Error::Region(region.to_string()));
        }
        Ok(BucketConfig {
            name: name.to_string(),
            region: region.to_string(),
            encrypted,
        })
    }
}

impl FromStr for BucketConfig {
    type Err = Error;
    /// Parses `NAME@REGION` or `NAME@REGION:encrypted`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let (name, rest) = s
            .split_once('@')
            .ok_or_else(|| Error::BucketSyntax(s.to_string()))?;
        let (region, encrypted) = match rest.split_once(':') {
            Some((r, "encrypted")) => (r, true),
            Some(_) => return Err(Error::BucketSyntax(s.to_string())),
            None => (rest, false),
        };
        BucketConfig::checked(name, region, encrypted)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BucketRepr {
    Text(String),
    Table {
        name: String,
        region: String,
        #[serde(default)]
        encrypted: bool,
    },
}

impl<'de> Deserialize<'de> for BucketConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match BucketRepr::deserialize(d)? {
            BucketRepr::Text(s) => s.parse().map_err(serde::de::Error::custom),
            BucketRepr::Table {
                name,
                region,
                encrypted,
            } => BucketConfig::checked(&name, &region, encrypted).map_err(serde::de::Error::custom),
        }
    }
}

/// Which edition of the ImportImage disk-size rules to enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitsProfile {
    /// The product default: system disk 5–500 GiB, data disks 5–1000 GiB (older API edition).
    #[default]
    Classic,
    /// The Jun-2026 API edition: 1–2048 GiB for system and data disks.
    Current,
}

impl LimitsProfile {
    /// Inclusive (min, max) GiB for the system disk.
    pub fn system_disk_gib(self) -> (u64, u64) {
        match self {
            LimitsProfile::Classic => (5, 500),
            LimitsProfile::Current => (1, 2048),
        }
    }
    /// Inclusive (min, max) GiB for a data disk.
    pub fn data_disk_gib(self) -> (u64, u64) {
        match self {
            LimitsProfile::Classic => (5, 1000),
            LimitsProfile::Current => (1, 2048),
        }
    }
}

impl FromStr for LimitsProfile {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "classic" => Ok(LimitsProfile::Classic),
            "current" => Ok(LimitsProfile::Current),
            other => Err(Error::ConfigParse(format!(
                "limits profile {other:?} is not classic or current"
            ))),
        }
    }
}

/// Everything the emulator needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:9090`.
    pub listen: SocketAddr,
    /// Where objects, uploads and ECS state are kept (created if missing). Default `./emu-data`.
    pub data_dir: PathBuf,
    /// Accepted credentials. Default: the documented test pair ([`DEFAULT_ACCESS_KEY_ID`]);
    /// an empty list also means that pair.
    pub access_keys: Vec<AccessKey>,
    /// Buckets served. Default: `ecs-preflight` in `cn-hangzhou`, unencrypted; an empty list
    /// also means that bucket.
    pub buckets: Vec<BucketConfig>,
    /// Storage class of new objects when the request names none. Default `Standard`.
    pub storage_class: StorageClass,
    /// Whether the RAM role `AliyunECSImageImportDefaultRole` exists. Default true.
    pub import_role: bool,
    /// How long an import task takes, seconds (a tenth waiting, the rest processing).
    /// Default 5.
    pub task_seconds: f64,
    /// ImportImage disk-size rules. Default `classic` (5–500 / 5–1000 GiB).
    pub limits: LimitsProfile,
    /// Fault injection. Default: none.
    pub faults: Faults,
    /// RAM policy per key: `KEY_ID:Action` entries (`LTAI…:HeadObject`, `…:DescribeImages`)
    /// the key is denied, answered as OSS (403 AccessDenied) and ECS/RAM (Forbidden.RAM,
    /// NoPermission) answer them. Default: nothing denied.
    pub denied: Vec<String>,
}

impl Config {
    /// Whether the key `key_id` is denied `action`.
    pub fn denies(&self, key_id: &str, action: &str) -> bool {
        self.denied
            .iter()
            .any(|d| d.split_once(':') == Some((key_id, action)))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9090))),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            access_keys: vec![AccessKey::default_pair()],
            buckets: vec![BucketConfig {
                name: DEFAULT_BUCKET.to_string(),
                region: DEFAULT_REGION.to_string(),
                encrypted: false,
            }],
            storage_class: StorageClass::Standard,
            import_role: true,
            task_seconds: DEFAULT_TASK_SECONDS,
            limits: LimitsProfile::Classic,
            faults: Faults::default(),
            denied: Vec::new(),
        }
    }
}

impl Config {
    /// A configuration for tests: ephemeral port on 127.0.0.1, the given data directory,
    /// everything else default.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            ..Config::default()
        }
    }

    /// Parses TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::ConfigParse(e.to_string()))
    }

    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Whether the documented default key pair is in use (the CLI prints it then).
    pub fn uses_default_key(&self) -> bool {
        self.access_keys.is_empty()
            || self
                .access_keys
                .iter()
                .any(|k| k.id == DEFAULT_ACCESS_KEY_ID && k.secret == DEFAULT_ACCESS_KEY_SECRET)
    }

    /// Fills empty lists with the defaults and checks every value.
    pub fn normalized(mut self) -> Result<Self, Error> {
        if self.access_keys.is_empty() {
            self.access_keys.push(AccessKey::default_pair());
        }
        if self.buckets.is_empty() {
            self.buckets = Config::default().buckets;
        }
        let mut seen = std::collections::HashSet::new();
        for k in &self.access_keys {
            if !seen.insert(k.id.clone()) {
                return Err(Error::DuplicateAccessKey(k.id.clone()));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for b in &self.buckets {
            if !seen.insert(b.name.clone()) {
                return Err(Error::DuplicateBucket(b.name.clone()));
            }
            BucketConfig::checked(&b.name, &b.region, b.encrypted)?;
        }
        if !self.task_seconds.is_finite() || !(0.0..=MAX_TASK_SECONDS).contains(&self.task_seconds)
        {
            return Err(Error::TaskSeconds(self.task_seconds));
        }
        self.faults.validate()?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags() {
        let k: AccessKey = "id:s3cr3tvalue:tok:en".parse().unwrap();
        assert_eq!(k.security_token.as_deref(), Some("tok:en"));
        assert!("id".parse::<AccessKey>().is_err());
        assert!("id:".parse::<AccessKey>().is_err());
        let e = "myid:topsecret".parse::<AccessKey>().map(|_| ()).err();
        assert!(e.is_none());
        let e = "myid".parse::<AccessKey>().unwrap_err().to_string();
        assert!(!e.contains("topsecret"));
        assert!(!format!("{k:?}").contains("s3cr3tvalue"));
        assert!(!format!("{k:?}").contains("tok:en"));
        let b: BucketConfig = "images@cn-hangzhou:encrypted".parse().unwrap();
        assert!(b.encrypted);
        assert_eq!(b.region, "cn-hangzhou");
        assert!("Bad@cn-hangzhou".parse::<BucketConfig>().is_err());
        assert!("ok-b@cn-hangzhou:other".parse::<BucketConfig>().is_err());
    }

    #[test]
    fn parses_toml() {
        let c = Config::from_toml_str(
            r#"
            listen = "127.0.0.1:0"
            access_keys = ["a:b", { id = "c", secret = "d", security_token = "t" }]
            buckets = ["one@cn-beijing", { name = "two", region = "oss-cn-shanghai", encrypted = true }]
            storage_class = "Archive"
            import_role = false
            limits = "current"
            [faults]
            seed = 3
            upload_part_error_rate = 0.5
            "#,
        )
        .unwrap()
        .normalized()
        .unwrap();
        assert_eq!(c.access_keys.len(), 2);
        assert_eq!(c.buckets[1].region, "cn-shanghai");
        assert_eq!(c.storage_class, StorageClass::Archive);
        assert_eq!(c.limits, LimitsProfile::Current);
        assert_eq!(c.faults.seed, 3);
        assert!(Config::from_toml_str("nope = 1").is_err());
        let d = Config::from_toml_str("").unwrap();
        assert_eq!(d, Config::default());
    }
}
