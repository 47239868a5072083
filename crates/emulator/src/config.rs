//! Emulator configuration: flags or a TOML file map onto [`Config`].
//!
//! Example TOML (every key optional; defaults as documented on each field):
//! ```toml
//! listen = "127.0.0.1:9090"
//! data_dir = "./emu-data"
//! access_keys = ["LTAI-test:secret", { id = "STS.x", secret = "s", security_token = "CAIS-t" }]
//! buckets = ["images@cn-hangzhou", "vault@cn-hangzhou:encrypted:v4only", "cold@cn-hangzhou:archive",
//!            { name = "b", region = "cn-beijing", v4_only = true, storage_class = "IA" }]
//! storage_class = "Standard"
//! import_role = true
//! task_seconds = 5.0
//! limits = "classic"
//! region_endpoints = false    # one port per region, as oss-<region>.aliyuncs.com
//! service_endpoints = false   # ECS, RAM and STS on ports of their own
//! restore_seconds = 2.0
//! [strict]                    # see `Strict`; each documented OSS/ECS behaviour
//! v4_additional_headers = true  # empty or malformed AdditionalHeaders refused
//! v4_only = true              # the whole account refuses V1 (EC 0002-00000080)
//! service_endpoints = false   # RPC refused on OSS endpoints
//! bucket_region = true        # 403 + <Endpoint> for a bucket of another region
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
    /// RAM actions this key is explicitly denied, e.g. `oss:GetBucketEncryption`,
    /// `ecs:DescribeImages`, `ram:GetRole` (`*` after the colon denies the whole service).
    /// OSS answers `403 AccessDenied` (EC 0003-00000201), ECS `403 Forbidden.RAM`, RAM
    /// `403 NoPermission`.
    pub deny: Vec<String>,
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
            .field("deny", &self.deny)
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
            deny: Vec::new(),
        }
    }

    /// Whether a RAM action such as `oss:GetBucketEncryption` is denied to this key.
    pub fn denies(&self, action: &str) -> bool {
        let service = action.split(':').next().unwrap_or("");
        self.deny.iter().any(|d| {
            d.eq_ignore_ascii_case(action)
                || d.strip_suffix(":*")
                    .is_some_and(|s| s.eq_ignore_ascii_case(service))
        })
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
            deny: Vec::new(),
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
        #[serde(default)]
        deny: Vec<String>,
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
                deny,
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
                    deny,
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

impl StorageClass {
    /// Parses a storage class ignoring case (`archive`, `ia`, …), for the `--bucket` suffixes.
    pub fn parse_loose(s: &str) -> Option<Self> {
        [
            StorageClass::Standard,
            StorageClass::IA,
            StorageClass::Archive,
            StorageClass::ColdArchive,
            StorageClass::DeepColdArchive,
        ]
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(s))
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
    /// The bucket refuses V1 signatures (`403 AccessDenied`, EC 0002-00000080), as buckets
    /// created since 1 September 2025 do.
    pub v4_only: bool,
    /// The bucket's storage class: the class of new objects when the request names none
    /// (`x-oss-storage-class`), and `<StorageClass>` in GetBucketInfo. `None`: the
    /// emulator-wide [`Config::storage_class`].
    pub storage_class: Option<StorageClass>,
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
    /// A plain bucket: unencrypted, V1 accepted, the emulator-wide storage class.
    pub fn new(name: &str, region: &str) -> Self {
        BucketConfig {
            name: name.to_string(),
            region: region.to_string(),
            encrypted: false,
            v4_only: false,
            storage_class: None,
        }
    }

    fn checked(name: &str, region: &str, encrypted: bool) -> Result<Self, Error> {
        if !valid_bucket_name(name) {
            return Err(Error::BucketName(name.to_string()));
        }
        let region = region.strip_prefix("oss-").unwrap_or(region);
        if !valid_region(region) {
            return Err(Error::Region(region.to_string()));
        }
        Ok(BucketConfig {
            encrypted,
            ..BucketConfig::new(name, region)
        })
    }
}

impl FromStr for BucketConfig {
    type Err = Error;
    /// Parses `NAME@REGION[:FLAG]...` where each FLAG is `encrypted`, `v4only` or a storage
    /// class (`standard`, `ia`, `archive`, `coldarchive`, `deepcoldarchive`; any case).
    fn from_str(s: &str) -> Result<Self, Error> {
        let (name, rest) = s
            .split_once('@')
            .ok_or_else(|| Error::BucketSyntax(s.to_string()))?;
        let mut parts = rest.split(':');
        let region = parts.next().unwrap_or("");
        let mut b = BucketConfig::checked(name, region, false)?;
        for flag in parts {
            match flag {
                "encrypted" => b.encrypted = true,
                "v4only" => b.v4_only = true,
                other => match StorageClass::parse_loose(other) {
                    Some(c) if b.storage_class.is_none() => b.storage_class = Some(c),
                    _ => return Err(Error::BucketSyntax(s.to_string())),
                },
            }
        }
        Ok(b)
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
        #[serde(default)]
        v4_only: bool,
        #[serde(default)]
        storage_class: Option<StorageClass>,
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
                v4_only,
                storage_class,
            } => BucketConfig::checked(&name, &region, encrypted)
                .map(|b| BucketConfig {
                    v4_only,
                    storage_class,
                    ..b
                })
                .map_err(serde::de::Error::custom),
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

/// Strict behaviours of the real service that can be switched off one by one, for a client
/// that does not meet them yet or to emulate an older account. Each is documented OSS/ECS
/// behaviour; every one is on by default except [`Strict::service_endpoints`] (see the crate
/// README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Strict {
    /// Refuse a V4 `Authorization` whose `AdditionalHeaders` is present but empty
    /// (EC 0002-00000209), has an empty entry such as `host;` (0002-00000210), or names a
    /// header the request does not carry (0002-00000211). Default true.
    pub v4_additional_headers: bool,
    /// The account is V4-only (accounts created since 1 March 2025): every V1-signed OSS
    /// request is refused with `403 AccessDenied`, EC 0002-00000080. Per-bucket: `v4only`.
    /// Default true, as real OSS is for every account created since then; set false to
    /// emulate an older account that still accepts V1.
    pub v4_only: bool,
    /// ECS, RAM and STS answer only on their own endpoints (hosts `ecs.<region>.aliyuncs.com`,
    /// `ecs-<region>.aliyuncs.com`, `ram.aliyuncs.com`, `sts.aliyuncs.com`, or the ports of
    /// [`Config::service_endpoints`]); an RPC call reaching an OSS endpoint is served as OSS
    /// serves it (refused). Default false: a single-port emulator serving every service is
    /// the documented convenience behind `--emulator URL`.
    pub service_endpoints: bool,
    /// A request for a bucket of another region, addressed to a region's endpoint (Host
    /// `oss-<region>.aliyuncs.com` or a port of [`Config::region_endpoints`]), answers
    /// `403 AccessDenied` with `<Endpoint>oss-<bucket region>.aliyuncs.com</Endpoint>`.
    /// Default true.
    pub bucket_region: bool,
}

impl Default for Strict {
    fn default() -> Self {
        Strict {
            v4_additional_headers: true,
            v4_only: true,
            service_endpoints: false,
            bucket_region: true,
        }
    }
}

impl Strict {
    /// Every strict behaviour on.
    pub fn all() -> Self {
        Strict {
            v4_additional_headers: true,
            v4_only: true,
            service_endpoints: true,
            bucket_region: true,
        }
    }
}

/// Default time an Archive restore takes in seconds (real OSS: about a minute for Archive,
/// hours for the colder classes; short here so tests can watch it finish).
pub const DEFAULT_RESTORE_SECONDS: f64 = 2.0;

/// Default time a CopyImage takes in seconds (real ECS: minutes to hours; short here so
/// tests watch the copy go from `Creating` to `Available`).
pub const DEFAULT_COPY_SECONDS: f64 = 2.0;

/// Everything the emulator needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:9090`.
    pub listen: SocketAddr,
    /// Where objects, uploads and ECS state are kept (created if missing). Default `./emu-data`.
    pub data_dir: PathBuf,
    /// Accepted credentials. Default: the documented test pair ([`DEFAULT_ACCESS_KEY_ID`]);
    /// an empty list also means that pair. TOML: `access_keys = [...]` or `[[access_key]]`
    /// tables (`id`, `secret`, `security_token`, `deny`).
    #[serde(alias = "access_key")]
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
    /// Strict behaviours that can be switched off (`[strict]`); see [`Strict`].
    pub strict: Strict,
    /// Also serve each region of the configured buckets on a port of its own, as if it were
    /// `oss-<region>.aliyuncs.com` (requests there are addressed to that region). Ports follow
    /// the listen port (`listen` + 1, + 2, … in region order), or are ephemeral when it is 0.
    /// Default false.
    pub region_endpoints: bool,
    /// Also serve ECS, RAM and STS on ports of their own (after the region ports), each
    /// answering only its own service. Default false.
    pub service_endpoints: bool,
    /// How long a RestoreObject takes, seconds. Default 2.
    pub restore_seconds: f64,
    /// How long a CopyImage takes until the copy is `Available`, seconds. Default 2.
    pub copy_seconds: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9090))),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            access_keys: vec![AccessKey::default_pair()],
            buckets: vec![BucketConfig::new(DEFAULT_BUCKET, DEFAULT_REGION)],
            storage_class: StorageClass::Standard,
            import_role: true,
            task_seconds: DEFAULT_TASK_SECONDS,
            limits: LimitsProfile::Classic,
            faults: Faults::default(),
            strict: Strict::default(),
            region_endpoints: false,
            service_endpoints: false,
            restore_seconds: DEFAULT_RESTORE_SECONDS,
            copy_seconds: DEFAULT_COPY_SECONDS,
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
        for k in &self.access_keys {
            for d in &k.deny {
                let ok = d.split_once(':').is_some_and(|(svc, act)| {
                    matches!(svc, "oss" | "ecs" | "ram" | "sts")
                        && !act.is_empty()
                        && act.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*')
                });
                if !ok {
                    return Err(Error::ConfigParse(format!(
                        "deny entry {d:?} of access key {:?} is not SERVICE:Action (oss, ecs, ram or sts)",
                        k.id
                    )));
                }
            }
        }
        if !self.restore_seconds.is_finite()
            || !(0.0..=MAX_TASK_SECONDS).contains(&self.restore_seconds)
        {
            return Err(Error::ConfigParse(format!(
                "restore_seconds {} is out of range (0 to 86400)",
                self.restore_seconds
            )));
        }
        if !self.copy_seconds.is_finite() || !(0.0..=MAX_TASK_SECONDS).contains(&self.copy_seconds)
        {
            return Err(Error::ConfigParse(format!(
                "copy_seconds {} is out of range (0 to 86400)",
                self.copy_seconds
            )));
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
        let b: BucketConfig = "cold@cn-beijing:v4only:archive:encrypted".parse().unwrap();
        assert!(b.v4_only && b.encrypted);
        assert_eq!(b.storage_class, Some(StorageClass::Archive));
        assert!("x-b@cn-beijing:archive:ia".parse::<BucketConfig>().is_err());
        let k = AccessKey {
            deny: vec!["oss:GetBucketEncryption".into(), "ecs:*".into()],
            ..AccessKey::default_pair()
        };
        assert!(k.denies("oss:GetBucketEncryption"));
        assert!(k.denies("ecs:DescribeImages"));
        assert!(!k.denies("oss:GetBucketInfo"));
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
            [strict]
            v4_only = true
            "#,
        )
        .unwrap()
        .normalized()
        .unwrap();
        assert_eq!(c.access_keys.len(), 2);
        assert!(c.strict.v4_only && c.strict.bucket_region);
        let limited = Config::from_toml_str(
            r#"
            [[access_key]]
            id = "limited"
            secret = "s"
            deny = ["oss:GetBucketEncryption", "ecs:DescribeImages"]
            "#,
        )
        .unwrap()
        .normalized()
        .unwrap();
        assert!(limited.access_keys[0].denies("ecs:DescribeImages"));
        let bad = Config::from_toml_str(
            "[[access_key]]\nid = \"a\"\nsecret = \"b\"\ndeny = [\"GetRole\"]",
        )
        .unwrap()
        .normalized();
        assert!(bad.is_err());
        assert_eq!(c.buckets[1].region, "cn-shanghai");
        assert_eq!(c.storage_class, StorageClass::Archive);
        assert_eq!(c.limits, LimitsProfile::Current);
        assert_eq!(c.faults.seed, 3);
        assert!(Config::from_toml_str("nope = 1").is_err());
        let d = Config::from_toml_str("").unwrap();
        assert_eq!(d, Config::default());
    }
}
