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

/// An aliyun CLI profile in OIDC mode (RRSA): the token is traded at the strict emulator's
/// STS port with AssumeRoleWithOIDC (anonymous, the profile's `expired_seconds` and
/// `policy` sent), and the temporary key it gets uploads with V4.
#[test]
fn an_oidc_profile_assumes_the_role_at_sts_and_uploads() {
    let env = crate::upload::Env::new();
    let dir = env.dir();
    let token = dir.join("token.jwt");
    std::fs::write(
        &token,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcmVmbGlnaHQifQ.c2lnbmF0dXJl\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join(".aliyun")).unwrap();
    let profile = serde_json::json!({"current": "rrsa", "profiles": [{
        "name": "rrsa", "mode": "OIDC",
        "ram_role_arn": format!("acs:ram::{}:role/importer", preflight_emulator::config::ACCOUNT_ID),
        "oidc_provider_arn": format!("acs:ram::{}:oidc-provider/ack-rrsa", preflight_emulator::config::ACCOUNT_ID),
        "oidc_token_file": token.to_str().unwrap(),
        "expired_seconds": 900,
        "policy": "{\"Version\":\"1\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"oss:*\",\"Resource\":\"*\"}]}",
    }]});
    std::fs::write(dir.join(".aliyun/config.json"), profile.to_string()).unwrap();
    let image = env.image("small.raw", 64 << 10, 7);
    let out = env
        .cmd(&image, "images", &["-o", "json"])
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .output()
        .unwrap();
    let v = crate::common::json_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["status"], "uploaded", "{v}");
    let c = env.emu().counters();
    assert_eq!(c.requests_for("AssumeRoleWithOIDC"), 1);
    assert_eq!(
        c.signatures_for("anonymous"),
        1,
        "AssumeRoleWithOIDC is not signed"
    );
    assert!(c.signatures_for("OSS4-HMAC-SHA256") > 0);
    // A token that is not a JWT is refused by STS, and the run says so.
    std::fs::write(&token, "not-a-token").unwrap();
    let out = env
        .cmd(&image, "images", &["-o", "json"])
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("AuthenticationFail.OIDCToken.Invalid"),
        "{err}"
    );
}
