//! Is the region real? A well-formed region id that is not among the regions this tool
//! knows is looked up with ECS DescribeRegions before anything is uploaded: a typo such as
//! `cn-hangzou` would otherwise cost a whole upload before ImportImage refuses it.

use preflight_ecs as ecs;

/// Regions with ECS that the official endpoint map lists (public, finance and government
/// clouds). Only a shortcut: a region missing here is asked of DescribeRegions, never refused
/// for being missing.
pub const KNOWN_REGIONS: &[&str] = &[
    "cn-qingdao",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-wulanchabu",
    "cn-hangzhou",
    "cn-shanghai",
    "cn-nanjing",
    "cn-fuzhou",
    "cn-shenzhen",
    "cn-heyuan",
    "cn-guangzhou",
    "cn-chengdu",
    "cn-hongkong",
    "cn-wuhan-lr",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "us-east-1",
    "us-west-1",
    "eu-west-1",
    "eu-central-1",
    "me-east-1",
    "me-central-1",
    "na-south-1",
    "cn-beijing-finance-1",
    "cn-hangzhou-finance",
    "cn-shanghai-finance-1",
    "cn-shenzhen-finance-1",
    "cn-north-2-gov-1",
];

/// Where DescribeRegions goes when no ECS endpoint is given: the central endpoint, which
/// answers for every region (the region's own `ecs.<region>.aliyuncs.com` does not exist when
/// the region does not).
pub const CENTRAL_ECS_ENDPOINT: &str = "https://ecs.aliyuncs.com";

/// What DescribeRegions said about a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionCheck {
    /// Known here or listed by DescribeRegions.
    Listed,
    /// DescribeRegions answered and does not list it; the regions it lists.
    NotListed(Vec<String>),
    /// DescribeRegions was denied (a least-privilege key): not verified, with the reason.
    NotVerified(String),
}

/// Whether `region` is in [`KNOWN_REGIONS`].
pub fn is_known(region: &str) -> bool {
    KNOWN_REGIONS.contains(&region)
}

/// Checks `region` with DescribeRegions through `client` unless it is known. A denied call
/// is [`RegionCheck::NotVerified`]; any other failure is returned.
pub async fn check_region(client: &ecs::Client, region: &str) -> Result<RegionCheck, ecs::Error> {
    if is_known(region) {
        return Ok(RegionCheck::Listed);
    }
    match client.describe_regions().await {
        Ok(list) => {
            let ids: Vec<String> = list.into_iter().map(|r| r.region_id).collect();
            Ok(if ids.iter().any(|r| r == region) {
                RegionCheck::Listed
            } else {
                RegionCheck::NotListed(ids)
            })
        }
        Err(e) if crate::ecs_denied(&e) => Ok(RegionCheck::NotVerified(format!(
            "ECS DescribeRegions was denied ({}): whether region {region} exists is not verified",
            e.code().unwrap_or_default()
        ))),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_regions_are_well_formed_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in KNOWN_REGIONS {
            assert!(seen.insert(*r), "{r} twice");
            assert!(
                r.split('-').count() >= 2
                    && r.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{r}"
            );
        }
        assert!(is_known("cn-hangzhou"));
        assert!(!is_known("cn-hangzou"));
    }
}
