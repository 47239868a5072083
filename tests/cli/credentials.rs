//! Where the binary takes its region from when `--region` is not given: like Alibaba's tools,
//! `ALIBABA_CLOUD_REGION_ID`, else the aliyun CLI profile's `region_id`.

use std::process::Command;

fn plan_region(home: &std::path::Path, envs: &[(&str, &str)], extra: &[&str]) -> serde_json::Value {
    let image = home.join("disk.qcow2");
    if !image.exists() {
        crate::common::sh(
            "qemu-img",
            &["create", "-q", "-f", "qcow2", image.to_str().unwrap(), "1G"],
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ecs-preflight"))
        .arg("check")
        .arg(&image)
        .args(["--output", "json"])
        .args(extra)
        .env_remove("ALIBABA_CLOUD_REGION_ID")
        .env_remove("ALIBABA_CLOUD_PROFILE")
        .env("HOME", home)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    crate::common::json_of(&out)["plan"]["region_id"].clone()
}

#[test]
fn region_defaults_to_the_environment_then_the_profile() {
    let home = crate::common::tempdir();
    let h = home.path();
    assert_eq!(plan_region(h, &[], &[]), serde_json::Value::Null);
    std::fs::create_dir_all(h.join(".aliyun")).unwrap();
    std::fs::write(
        h.join(".aliyun/config.json"),
        r#"{"current":"dev","profiles":[
          {"name":"dev","mode":"AK","access_key_id":"a","access_key_secret":"b","region_id":"cn-shanghai"},
          {"name":"hk","mode":"AK","access_key_id":"a","access_key_secret":"b","region_id":"cn-hongkong"}]}"#,
    )
    .unwrap();
    assert_eq!(plan_region(h, &[], &[]), "cn-shanghai");
    assert_eq!(
        plan_region(h, &[("ALIBABA_CLOUD_PROFILE", "hk")], &[]),
        "cn-hongkong"
    );
    assert_eq!(
        plan_region(h, &[("ALIBABA_CLOUD_REGION_ID", "cn-beijing")], &[]),
        "cn-beijing"
    );
    assert_eq!(
        plan_region(
            h,
            &[("ALIBABA_CLOUD_REGION_ID", "cn-beijing")],
            &["--region", "cn-wulanchabu"]
        ),
        "cn-wulanchabu"
    );
}
