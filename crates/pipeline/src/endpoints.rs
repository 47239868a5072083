//! Where each service is reached. Every endpoint is set on its own and none falls back to
//! another: a user on ECS who passes the internal OSS endpoint must not send RAM GetRole or
//! ECS DescribeImages to an OSS host. One explicit convenience, [`Endpoints::emulator`], sets
//! them all to the local emulator (which serves OSS, ECS, RAM and STS on one port).

use std::time::Duration;

/// Which OSS network the default endpoint is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OssNetwork {
    /// `oss-<region>.aliyuncs.com` (default).
    #[default]
    Public,
    /// `oss-<region>-internal.aliyuncs.com`: from an ECS instance in the bucket's region,
    /// free of traffic charges and faster.
    Internal,
    /// `oss-accelerate.aliyuncs.com`: transfer acceleration (must be enabled on the bucket).
    Accelerate,
}

/// The endpoints of one run. `None` is the service's public default for the region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// OSS endpoint URL (wins over [`Endpoints::oss_network`]).
    pub oss: Option<String>,
    /// The network of the default OSS endpoint.
    pub oss_network: OssNetwork,
    /// ECS endpoint URL. Default: the official endpoint map's, else `https://ecs.<region>.aliyuncs.com`.
    pub ecs: Option<String>,
    /// RAM endpoint URL. Default: `https://ram.aliyuncs.com`.
    pub ram: Option<String>,
    /// STS endpoint URL for AssumeRole profiles. Default: the profile's, else STS's global one.
    pub sts: Option<String>,
}

impl Endpoints {
    /// Every service at `url`: the local emulator.
    pub fn emulator(url: &str) -> Self {
        Endpoints {
            oss: Some(url.to_string()),
            oss_network: OssNetwork::Public,
            ecs: Some(url.to_string()),
            ram: Some(url.to_string()),
            sts: Some(url.to_string()),
        }
    }

    /// The OSS endpoint URL for `region`.
    pub fn oss_url(&self, region: &str) -> String {
        if let Some(e) = &self.oss {
            return e.clone();
        }
        match self.oss_network {
            OssNetwork::Public => format!("https://oss-{region}.aliyuncs.com"),
            OssNetwork::Internal => format!("https://oss-{region}-internal.aliyuncs.com"),
            OssNetwork::Accelerate => "https://oss-accelerate.aliyuncs.com".to_string(),
        }
    }

    /// Whether OSS already goes to an internal endpoint (`--oss-internal`, or an endpoint
    /// URL naming an `-internal` host).
    pub fn oss_is_internal(&self) -> bool {
        self.oss_network == OssNetwork::Internal
            || self
                .oss
                .as_deref()
                .is_some_and(|e| e.contains("-internal."))
    }

    /// OSS client settings for `bucket` in `region`.
    pub fn oss_config(&self, region: &str, bucket: &str) -> preflight_oss::ClientConfig {
        preflight_oss::ClientConfig::new(region, bucket).with_endpoint(self.oss_url(region))
    }

    /// ECS/RAM client settings for `region`.
    pub fn ecs_config(&self, region: &str) -> preflight_ecs::ClientConfig {
        let mut cfg = preflight_ecs::ClientConfig::new(region);
        if let Some(e) = &self.ecs {
            cfg = cfg.with_ecs_endpoint(e);
        }
        if let Some(e) = &self.ram {
            cfg.ram_endpoint = preflight_ecs::normalize_endpoint(e);
        }
        cfg
    }
}

/// How long the metadata service may take to accept a connection: off ECS its address does
/// not answer at all, and a run must not wait for it.
pub const METADATA_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The region of the ECS instance this runs on, from the metadata service
/// (`100.100.100.200/latest/meta-data/region-id`, or `ALIBABA_CLOUD_ECS_METADATA_SERVICE_ENDPOINT`);
/// `None` off ECS, on any failure, or when `ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`.
pub async fn instance_region() -> Option<String> {
    let disabled = std::env::var("ALIBABA_CLOUD_ECS_METADATA_DISABLED")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if disabled {
        return None;
    }
    let base = std::env::var("ALIBABA_CLOUD_ECS_METADATA_SERVICE_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "http://100.100.100.200".to_string());
    let base = if base.contains("://") {
        base
    } else {
        format!("http://{base}")
    };
    let http = reqwest::Client::builder()
        .connect_timeout(METADATA_CONNECT_TIMEOUT)
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .ok()?;
    // IMDSv2 when the instance enforces it; v1 otherwise (a failed token request is fine).
    let token = match http
        .put(format!("{base}/latest/api/token"))
        .header("X-aliyun-ecs-metadata-token-ttl-seconds", "60")
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r.text().await.ok(),
        Ok(_) => None,
        Err(e) if e.is_connect() || e.is_timeout() => return None,
        Err(_) => None,
    };
    let mut req = http.get(format!("{base}/latest/meta-data/region-id"));
    if let Some(t) = &token {
        req = req.header("X-aliyun-ecs-metadata-token", t.trim());
    }
    let resp = req.send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let region = resp.text().await.ok()?.trim().to_string();
    let plausible = !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    plausible.then_some(region)
}

/// The advice for a run on an ECS instance in `region` that sends to OSS's public endpoint.
pub fn internal_endpoint_advice(region: &str) -> String {
    format!(
        "this runs on an ECS instance in {region}: the internal OSS endpoint is free of traffic \
         charges and faster; add --oss-internal (oss-{region}-internal.aliyuncs.com)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_never_inherit() {
        let e = Endpoints {
            oss: Some("http://oss.example".into()),
            ..Endpoints::default()
        };
        let ecs = e.ecs_config("cn-hangzhou");
        assert_eq!(ecs.ecs_endpoint, "https://ecs.cn-hangzhou.aliyuncs.com");
        assert_eq!(ecs.ram_endpoint, preflight_ecs::RAM_ENDPOINT);
        let e = Endpoints {
            ecs: Some("http://ecs.example".into()),
            ..Endpoints::default()
        };
        assert_eq!(
            e.oss_url("cn-beijing"),
            "https://oss-cn-beijing.aliyuncs.com"
        );
        assert_eq!(
            e.ecs_config("cn-beijing").ram_endpoint,
            preflight_ecs::RAM_ENDPOINT
        );
        let internal = Endpoints {
            oss_network: OssNetwork::Internal,
            ..Endpoints::default()
        };
        assert_eq!(
            internal.oss_url("cn-beijing"),
            "https://oss-cn-beijing-internal.aliyuncs.com"
        );
        let emu = Endpoints::emulator("http://127.0.0.1:9");
        assert_eq!(emu.ecs_config("r").ram_endpoint, "http://127.0.0.1:9");
        assert_eq!(emu.oss_url("r"), "http://127.0.0.1:9");
    }
}
