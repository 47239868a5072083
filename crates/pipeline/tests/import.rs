//! The ECS and RAM probes `import` and the one-shot run before ImportImage, against the
//! in-process emulator.

mod common;

use common::{creds, start_emulator};
use preflight_pipeline::import::{cloud_rules, plan_import, probe_ecs, probe_oss};
use preflight_pipeline::Endpoints;
use preflight_rules::{DiskDeviceMapping, DiskParams, ImportParams, Plan};

async fn probe(
    import_role: bool,
    image_name: Option<&str>,
) -> preflight_pipeline::import::EcsProbe {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(dir.path(), &[], |cfg| cfg.import_role = import_role).await;
    let client = preflight_ecs::Client::new(
        Endpoints::emulator(&emu.endpoint()).ecs_config("cn-hangzhou"),
        creds(),
    )
    .unwrap();
    let plan = Plan {
        region_id: Some("cn-hangzhou".into()),
        image_name: image_name.map(str::to_string),
        ..Plan::default()
    };
    let found = probe_ecs(&client, &plan).await.unwrap();
    emu.shutdown().await;
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_and_the_image_name_are_probed() {
    let found = probe(true, Some("web-01")).await;
    assert_eq!(found.role, "AliyunECSImageImportDefaultRole");
    assert_eq!(found.role_exists, Some(true));
    assert_eq!(found.image_name_taken, Some(false));
    assert!(found.own_earlier.is_none() && found.not_verified.is_empty());

    let found = probe(false, None).await;
    assert_eq!(found.role_exists, Some(false));
    assert_eq!(found.image_name_taken, None, "no name, nothing to probe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_once_and_objects_of_the_region_are_probed() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(
        dir.path(),
        &["images@cn-hangzhou", "faraway@cn-beijing"],
        |_| {},
    )
    .await;
    let endpoints = Endpoints::emulator(&emu.endpoint());
    let oss =
        preflight_oss::Client::new(endpoints.oss_config("cn-hangzhou", "images"), creds()).unwrap();
    // Content-MD5 of "hello".
    oss.put_object("d.raw", "hello".into(), "XUFAKrxLKna5cZ2REBfFkg==")
        .await
        .unwrap();
    let disk = |bucket: &str, key: &str| DiskDeviceMapping {
        oss_bucket: Some(bucket.into()),
        oss_object: Some(key.into()),
        ..DiskDeviceMapping::default()
    };
    let plan = Plan {
        region_id: Some("cn-hangzhou".into()),
        disk_device_mappings: vec![
            disk("images", "d.raw"),
            disk("images", "missing.raw"),
            disk("faraway", "x.raw"),
        ],
        ..Plan::default()
    };
    let found = probe_oss(
        &plan,
        "cn-hangzhou",
        &endpoints,
        preflight_oss::SignatureVersion::V4,
        &creds(),
    )
    .await
    .unwrap();
    let buckets: Vec<(&str, bool, Option<&str>)> = found
        .buckets
        .iter()
        .map(|b| (b.name.as_str(), b.exists, b.region.as_deref()))
        .collect();
    assert_eq!(buckets.len(), 2, "one probe per bucket: {buckets:?}");
    assert_eq!(buckets[0].0, "images");
    assert_eq!(buckets[1].0, "faraway");
    assert!(buckets[1].2.unwrap().ends_with("cn-beijing"), "{buckets:?}");
    // The object in the other region's bucket is not looked up: the import is refused anyway.
    let objects: Vec<(&str, bool, Option<u64>)> = found
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o.exists, o.size))
        .collect();
    assert_eq!(
        objects,
        [("d.raw", true, Some(5)), ("missing.raw", false, None)]
    );
    assert_eq!(found.etags.len(), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_bad_endpoint_is_a_client_error() {
    let plan = Plan {
        disk_device_mappings: vec![DiskDeviceMapping {
            oss_bucket: Some("images".into()),
            oss_object: Some("d.raw".into()),
            ..DiskDeviceMapping::default()
        }],
        ..Plan::default()
    };
    let e = probe_oss(
        &plan,
        "cn-hangzhou",
        &Endpoints::emulator("ftp://127.0.0.1:9"),
        preflight_oss::SignatureVersion::V4,
        &creds(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, preflight_pipeline::PipelineError::OssClient(_)),
        "{e}"
    );
}

#[test]
fn import_plans_remote_objects_in_the_request_bucket() {
    let params = ImportParams {
        region: Some("cn-hangzhou".into()),
        bucket: Some("images".into()),
        image_name: Some("web-01".into()),
        disks: vec![
            DiskParams {
                object: Some("vm/sys.qcow2".into()),
                format: Some("QCOW2".into()),
                disk_image_size: Some(40),
                ..DiskParams::default()
            },
            DiskParams::default(),
        ],
        ..ImportParams::default()
    };
    let eval = plan_import(params, Some("QCOW2"), "vm/sys.qcow2", &["vm/d1.raw".into()]);
    assert!(!eval.has_errors(), "{:?}", eval.findings);
    let m = &eval.plan.disk_device_mappings;
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].oss_object.as_deref(), Some("vm/sys.qcow2"));
    assert_eq!(m[0].format.as_deref(), Some("QCOW2"));
    // The data disk's key is sent whole, in the request's bucket.
    assert_eq!(m[1].oss_object.as_deref(), Some("vm/d1.raw"));
    assert_eq!(m[1].oss_bucket.as_deref(), Some("images"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_rules_refuse_a_missing_object_and_role_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(dir.path(), &["images@cn-hangzhou"], |cfg| {
        cfg.import_role = false;
    })
    .await;
    let endpoints = Endpoints::emulator(&emu.endpoint());
    let ecs = preflight_ecs::Client::new(endpoints.ecs_config("cn-hangzhou"), creds()).unwrap();
    let plan = Plan {
        region_id: Some("cn-hangzhou".into()),
        image_name: Some("web-01".into()),
        disk_device_mappings: vec![DiskDeviceMapping {
            oss_bucket: Some("images".into()),
            oss_object: Some("missing.qcow2".into()),
            ..DiskDeviceMapping::default()
        }],
        ..Plan::default()
    };
    let cloud = cloud_rules(
        &plan,
        "cn-hangzhou",
        &endpoints,
        preflight_oss::SignatureVersion::V4,
        &creds(),
        &ecs,
    )
    .await
    .unwrap();
    assert!(cloud.has_errors());
    let codes: Vec<&str> = cloud
        .findings
        .iter()
        .map(|f| f.finding.code.as_str())
        .collect();
    assert!(codes.contains(&"InvalidOSSObject.NotFound"), "{codes:?}");
    assert!(
        cloud
            .fix
            .iter()
            .any(|l| l.contains("AliyunECSImageImportDefaultRole")),
        "{:?}",
        cloud.fix
    );
    assert!(cloud.etags.is_empty() && cloud.own_earlier.is_none());
    emu.shutdown().await;
}
