//! The rules' plan as the ImportImage request the ECS client sends: the one place the two
//! meet, so the client knows no rule and the rules know no client.

use preflight_ecs::{ImportDisk, ImportFeatures, ImportImageRequest, ImportTag};
use preflight_rules::Plan;

/// The ImportImage request for `plan`, field for field.
pub fn import_request(plan: &Plan) -> ImportImageRequest {
    ImportImageRequest {
        region_id: plan.region_id.clone(),
        image_name: plan.image_name.clone(),
        description: plan.description.clone(),
        architecture: plan.architecture.clone(),
        os_type: plan.os_type.clone(),
        platform: plan.platform.clone(),
        boot_mode: plan.boot_mode.clone(),
        license_type: plan.license_type.clone(),
        tags: plan
            .tags
            .iter()
            .map(|t| ImportTag {
                key: t.key.clone(),
                value: t.value.clone(),
            })
            .collect(),
        features: plan.features.as_ref().map(|f| ImportFeatures {
            nvme_support: f.nvme_support.clone(),
            imds_support: f.imds_support.clone(),
        }),
        client_token: plan.client_token.clone(),
        resource_group_id: plan.resource_group_id.clone(),
        role_name: plan.role_name.clone(),
        detection_strategy: plan.detection_strategy.clone(),
        storage_location_arn: plan.storage_location_arn.clone(),
        disk_device_mappings: plan
            .disk_device_mappings
            .iter()
            .map(|d| ImportDisk {
                format: d.format.clone(),
                oss_bucket: d.oss_bucket.clone(),
                oss_object: d.oss_object.clone(),
                disk_image_size: d.disk_image_size,
            })
            .collect(),
    }
}

/// The ClientToken `import` derives for `plan` and the objects' `etags` (see
/// [`preflight_ecs::client_token`]).
pub fn client_token(plan: &Plan, etags: &[String]) -> String {
    preflight_ecs::client_token(&import_request(plan), etags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use preflight_rules::{DiskDeviceMapping, Features, Tag};

    #[test]
    fn every_plan_field_reaches_the_request_parameters() {
        let plan = Plan {
            region_id: Some("cn-hangzhou".into()),
            image_name: Some("web".into()),
            description: Some("d".into()),
            architecture: Some("x86_64".into()),
            os_type: Some("linux".into()),
            platform: Some("Ubuntu".into()),
            boot_mode: Some("UEFI".into()),
            license_type: Some("Auto".into()),
            tags: vec![Tag {
                key: "env".into(),
                value: String::new(),
            }],
            features: Some(Features {
                nvme_support: Some("supported".into()),
                imds_support: Some("v2".into()),
            }),
            client_token: Some("tok".into()),
            resource_group_id: Some("rg-1".into()),
            role_name: Some("R".into()),
            detection_strategy: Some("Standard".into()),
            storage_location_arn: Some("arn:acs:cloudbox:cn-hangzhou:1:cloudbox/cb-1".into()),
            disk_device_mappings: vec![DiskDeviceMapping {
                format: Some("QCOW2".into()),
                oss_bucket: Some("b".into()),
                oss_object: Some("o.qcow2".into()),
                disk_image_size: Some(40),
            }],
        };
        let params = preflight_ecs::import_image_params(
            &import_request(&plan),
            &preflight_ecs::ImportOptions::default(),
        );
        // 13 scalar parameters, 2 features, 2 tag fields, 4 disk fields: none lost.
        assert_eq!(params.len(), 21, "{params:?}");
        assert!(params.contains(&("Tag.1.Value".into(), String::new())));
        assert!(params.contains(&("DiskDeviceMapping.1.DiskImageSize".into(), "40".into())));
        assert!(params.contains(&("Features.ImdsSupport".into(), "v2".into())));
    }

    #[test]
    fn tokens_are_stable_and_bounded() {
        let plan = Plan {
            region_id: Some("cn-hangzhou".into()),
            image_name: Some("web".into()),
            ..Plan::default()
        };
        let a = client_token(&plan, &["\"E1\"".into()]);
        assert_eq!(a, client_token(&plan, &["\"E1\"".into()]));
        assert_ne!(a, client_token(&plan, &["\"E2\"".into()]));
        assert!(a.len() <= 64 && a.is_ascii());
    }
}
