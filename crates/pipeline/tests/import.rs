//! The ECS and RAM probes `import` and the one-shot run before ImportImage, against the
//! in-process emulator.

use std::sync::Arc;

use preflight_emulator::{Config, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
use preflight_pipeline::import::probe_ecs;
use preflight_pipeline::Endpoints;
use preflight_rules::Plan;

async fn probe(
    import_role: bool,
    image_name: Option<&str>,
) -> preflight_pipeline::import::EcsProbe {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::for_tests(dir.path().join("emu"));
    cfg.import_role = import_role;
    let emu = preflight_emulator::start(cfg).await.unwrap();
    let creds = Arc::new(preflight_aliyun::CredentialProvider::fixed(
        preflight_aliyun::Credentials::new(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
    ));
    let client = preflight_ecs::Client::new(
        Endpoints::emulator(&emu.endpoint()).ecs_config("cn-hangzhou"),
        creds,
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
