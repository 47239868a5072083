//! Endpoint flags, one per service. None falls back to another: `--oss-endpoint` moves only
//! OSS, `--ecs-endpoint` only ECS. `--emulator URL` is the one flag that sets them all.

use preflight_pipeline::{Endpoints, OssNetwork};

/// The OSS (and STS) endpoint flags, for every command that talks to OSS.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OssEndpointArgs {
    /// OSS endpoint URL [default: https://oss-REGION.aliyuncs.com]. Only OSS uses it.
    /// (`--endpoint` is an alias kept for old scripts; it too moves only OSS.)
    #[arg(long, visible_alias = "endpoint", value_name = "URL",
          conflicts_with_all = ["oss_internal", "oss_accelerate"])]
    pub oss_endpoint: Option<String>,

    /// Use the internal OSS endpoint (oss-REGION-internal.aliyuncs.com): from an ECS instance
    /// in the bucket's region, free of traffic charges and faster.
    #[arg(long, conflicts_with = "oss_accelerate")]
    pub oss_internal: bool,

    /// Use OSS transfer acceleration (oss-accelerate.aliyuncs.com; enable it on the bucket).
    #[arg(long)]
    pub oss_accelerate: bool,

    /// STS endpoint URL for AssumeRole credential profiles [default: the profile's
    /// sts_region, else https://sts.aliyuncs.com].
    #[arg(long, value_name = "URL")]
    pub sts_endpoint: Option<String>,

    /// Send every request (OSS, ECS, RAM, STS) to a local emulator at URL
    /// (`ecs-preflight emulator`). The per-service flags still win.
    #[arg(long, value_name = "URL")]
    pub emulator: Option<String>,
}

/// Every endpoint flag, for the commands that talk to OSS, ECS and RAM.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EndpointArgs {
    #[command(flatten)]
    pub oss: OssEndpointArgs,

    /// ECS endpoint URL [default: https://ecs.REGION.aliyuncs.com, or the official map's
    /// endpoint for finance and government regions]. Only ECS uses it.
    #[arg(long, value_name = "URL")]
    pub ecs_endpoint: Option<String>,

    /// RAM endpoint URL [default: https://ram.aliyuncs.com]. Only RAM uses it.
    #[arg(long, value_name = "URL")]
    pub ram_endpoint: Option<String>,
}

impl OssEndpointArgs {
    /// The endpoints these flags name (ECS and RAM from `--emulator` only).
    pub fn endpoints(&self) -> Endpoints {
        let mut e = match &self.emulator {
            Some(url) => Endpoints::emulator(url),
            None => Endpoints::default(),
        };
        if let Some(o) = &self.oss_endpoint {
            e.oss = Some(o.clone());
        }
        if self.oss_internal || self.oss_accelerate {
            e.oss = None;
            e.oss_network = if self.oss_internal {
                OssNetwork::Internal
            } else {
                OssNetwork::Accelerate
            };
        }
        if let Some(s) = &self.sts_endpoint {
            e.sts = Some(s.clone());
        }
        e
    }
}

impl EndpointArgs {
    /// The endpoints these flags name.
    pub fn endpoints(&self) -> Endpoints {
        let mut e = self.oss.endpoints();
        if let Some(x) = &self.ecs_endpoint {
            e.ecs = Some(x.clone());
        }
        if let Some(x) = &self.ram_endpoint {
            e.ram = Some(x.clone());
        }
        e
    }

    /// The ECS endpoint a printed `wait` command must name: the one this run used.
    pub fn ecs_for_wait(&self) -> Option<String> {
        self.endpoints().ecs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        e: EndpointArgs,
    }

    fn parse(args: &[&str]) -> Endpoints {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap()
            .e
            .endpoints()
    }

    #[test]
    fn each_flag_moves_only_its_service() {
        let e = parse(&["--oss-endpoint", "http://oss.internal"]);
        assert_eq!(e.oss.as_deref(), Some("http://oss.internal"));
        assert_eq!((e.ecs, e.ram, e.sts), (None, None, None));
        let e = parse(&["--ecs-endpoint", "http://ecs.x"]);
        assert_eq!((e.oss, e.ram), (None, None));
        let e = parse(&["--endpoint", "http://o"]);
        assert_eq!((e.oss.as_deref(), e.ecs), (Some("http://o"), None));
        let e = parse(&[
            "--emulator",
            "http://127.0.0.1:9",
            "--ram-endpoint",
            "http://r",
        ]);
        assert_eq!(e.ecs.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(e.ram.as_deref(), Some("http://r"));
        let e = parse(&["--oss-internal"]);
        assert_eq!(e.oss_network, OssNetwork::Internal);
        assert!(Cli::try_parse_from(["x", "--oss-internal", "--oss-endpoint", "h"]).is_err());
    }
}
