//! `upload-and-import --copy-to-region … --share-with-account …` against the in-process
//! emulator: two copies and one share (ids, regions, states, tags kept), a rerun that sends no
//! CopyImage and no ModifyImageSharePermission, and the refusals before any upload; one name
//! per copy; Ctrl-C while copying (CancelCopyImage, or --detach) and the rerun after it.

use crate::common::EmuEnv;
use std::path::{Path, PathBuf};
use std::process::Command;

use preflight_emulator::{Config, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
use serde_json::Value;

use crate::common::json_of;

const FRIEND: &str = "1111222233334444";

crate::common::emu_env!();

impl Env {
    fn new() -> Self {
        Self::with_copy_seconds(1.0)
    }

    /// An emulator whose copies take `copy_seconds` to become Available.
    fn with_copy_seconds(copy_seconds: f64) -> Self {
        Env(EmuEnv::start(|data_dir| {
            Self::config(data_dir, copy_seconds)
        }))
    }

    fn config(data_dir: PathBuf, copy_seconds: f64) -> Config {
        let mut cfg = Config::for_tests(data_dir);
        cfg.buckets = vec!["images@cn-hangzhou".parse().unwrap()];
        cfg.task_seconds = 0.5;
        cfg.copy_seconds = copy_seconds;
        cfg
    }

    /// Restarts the emulator on the same data, its copies now taking `copy_seconds`
    /// (commands made after this use its new endpoint).
    fn restart(&mut self, copy_seconds: f64) {
        self.0
            .restart(|data_dir| Self::config(data_dir, copy_seconds));
    }

    /// How many images DescribeImages (any status) lists with id `id` in `region`.
    fn listed(&self, region: &str, id: &str) -> usize {
        let creds = std::sync::Arc::new(preflight_aliyun::CredentialProvider::fixed(
            preflight_aliyun::Credentials::new(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
        ));
        let cfg = preflight_ecs::ClientConfig::new(region).with_endpoint(&self.emu().endpoint());
        let client = preflight_ecs::Client::new(cfg, creds).unwrap();
        let q = preflight_ecs::DescribeImagesQuery {
            image_id: Some(id.to_string()),
            ..Default::default()
        };
        self.rt.block_on(client.describe_images(&q)).unwrap().len()
    }

    fn qcow2(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        crate::common::sh(
            "qemu-img",
            &["create", "-q", "-f", "qcow2", p.to_str().unwrap(), "5G"],
        );
        p
    }

    fn cmd(&self, image: &Path, extra: &[&str]) -> Command {
        let mut c = self.bare(&["upload-and-import", image.to_str().unwrap()]);
        c.args(["--skip-guest", "--image-name", "web-01"])
            .args(extra);
        c
    }

    /// `import` of `web.raw` (put first with [`Env::put_raw`]).
    fn import(&self, extra: &[&str]) -> Command {
        let mut c = self.bare(&["import", "--object", "web.raw", "--format", "RAW"]);
        c.args([
            "--image-name",
            "web-02",
            "--disk-image-size",
            "20",
            "--platform",
            "Ubuntu",
        ])
        .args(extra);
        c
    }

    /// Puts 4096 bytes of 0x01 as `images/web.raw`.
    fn put_raw(&self) {
        let path = self.dir.path().join("web.raw");
        std::fs::write(&path, vec![1u8; 4096]).unwrap();
        let mut cfg = preflight_oss::ClientConfig::new("cn-hangzhou", "images")
            .with_endpoint(self.emu().endpoint());
        // V4, as the emulator's default account (created since March 2025) requires.
        cfg.signature = preflight_oss::SignatureVersion::V4;
        let creds = std::sync::Arc::new(preflight_aliyun::CredentialProvider::fixed(
            preflight_aliyun::Credentials::new(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
        ));
        let client = preflight_oss::Client::new(cfg, creds).unwrap();
        self.rt
            .block_on(client.put_object_file("web.raw", &path, 4096, "qo85ln3rRBpudISWOUWpYA=="))
            .unwrap();
    }

    fn bare(&self, first: &[&str]) -> Command {
        let mut c = self.command();
        c.args(first)
            .args(["--region", "cn-hangzhou", "--bucket", "images"])
            .args(["--emulator", &self.emu().endpoint()])
            .args(["--poll-interval", "200ms"])
            .args(["--tag", "owner=team-a"]);
        c
    }

    /// The image `id` of `region` as DescribeImages (any status) lists it.
    fn describe(&self, region: &str, id: &str) -> preflight_ecs::Image {
        let creds = std::sync::Arc::new(preflight_aliyun::CredentialProvider::fixed(
            preflight_aliyun::Credentials::new(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
        ));
        let cfg = preflight_ecs::ClientConfig::new(region).with_endpoint(&self.emu().endpoint());
        let client = preflight_ecs::Client::new(cfg, creds).unwrap();
        let q = preflight_ecs::DescribeImagesQuery {
            image_id: Some(id.to_string()),
            ..Default::default()
        };
        let mut found = self.rt.block_on(client.describe_images(&q)).unwrap();
        assert_eq!(found.len(), 1, "{id} in {region}: {found:?}");
        found.remove(0)
    }
}

/// (region, image id, status, role, shared_with) of every image of the result.
fn images(v: &Value) -> Vec<(String, String, String, String, Vec<String>)> {
    v["images"]
        .as_array()
        .unwrap_or_else(|| panic!("no images in {v}"))
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            let shared = i["shared_with"]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            (s("region"), s("image_id"), s("status"), s("role"), shared)
        })
        .collect()
}

/// Copies to cn-shanghai and cn-beijing, each with a name of its own, JSON out.
const TWO_NAMED_COPIES: [&str; 10] = [
    "--copy-to-region",
    "cn-shanghai",
    "--copy-to-region",
    "cn-beijing",
    "--copy-name",
    "web-02-sh",
    "--copy-name",
    "web-02-bj",
    "--output",
    "json",
];

#[test]
fn one_shot_copies_to_two_regions_shares_and_a_rerun_does_nothing_twice() {
    let env = Env::new();
    let sys = env.qcow2("sys.qcow2");
    let flags = [
        "--copy-to-region",
        "cn-shanghai",
        "--copy-to-region",
        "cn-beijing",
        "--share-with-account",
        FRIEND,
    ];
    let mut args = flags.to_vec();
    args.extend(["--output", "json"]);
    let out = env.cmd(&sys, &args).output().unwrap();
    let v = json_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = images(&v);
    assert_eq!(got.len(), 3, "{v}");
    let regions: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(regions, ["cn-hangzhou", "cn-shanghai", "cn-beijing"]);
    assert_eq!(got[0].1, v["image_id"].as_str().unwrap());
    assert_eq!(got[0].3, "source");
    let mut ids: Vec<&str> = got.iter().map(|g| g.1.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct images: {v}");
    for (region, id, status, _, shared) in &got {
        assert!(id.starts_with("m-"), "{v}");
        assert_eq!(status, "Available", "{v}");
        assert_eq!(shared, &[FRIEND.to_string()], "{v}");
        // ECS agrees: Available in that region, the tag kept on every copy.
        let img = env.describe(region, id);
        assert_eq!(img.status, "Available");
        assert!(
            img.tags
                .contains(&("owner".to_string(), "team-a".to_string())),
            "{region}: {:?}",
            img.tags
        );
    }
    assert_eq!(env.requests("CopyImage"), 2);
    assert_eq!(env.requests("ModifyImageSharePermission"), 3);

    // Rerun: the same images, found rather than made; nothing copied or shared again.
    env.emu().reset_counters();
    let out = env.cmd(&sys, &args).output().unwrap();
    let again = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{again}");
    let got_again = images(&again);
    assert_eq!(
        got_again.iter().map(|g| &g.1).collect::<Vec<_>>(),
        got.iter().map(|g| &g.1).collect::<Vec<_>>()
    );
    assert_eq!(env.requests("CopyImage"), 0);
    assert_eq!(env.requests("ModifyImageSharePermission"), 0);
    assert_eq!(env.requests("PutObject") + env.requests("UploadPart"), 0);
    for i in again["images"].as_array().unwrap().iter().skip(1) {
        assert_eq!(i["reused"], true, "{again}");
        assert_eq!(i["newly_shared"], serde_json::json!([]), "{again}");
    }

    // Human output: every image with its region and state.
    let out = env.cmd(&sys, &flags).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for (region, id, ..) in &got {
        assert!(
            text.lines().any(|l| l.contains(region.as_str())
                && l.contains(id.as_str())
                && l.contains("Available")),
            "{text}"
        );
    }
}

#[test]
fn wrong_copy_regions_and_accounts_are_refused_before_any_upload() {
    let env = Env::new();
    let sys = env.qcow2("sys.qcow2");
    for (flags, code) in [
        (&["--copy-to-region", "cn-hangzhou"][..], "COPY.SameRegion"),
        (
            &["--copy-to-region", "Shanghai"][..],
            "COPY.RegionMalformed",
        ),
        (
            &["--copy-to-region", "xx-nowhere-1"][..],
            "COPY.RegionUnknown",
        ),
        (
            &["--share-with-account", "alice@example.com"][..],
            "SHARE.AccountMalformed",
        ),
        (
            &["--share-with-account", "123456789012345"][..],
            "SHARE.AccountMalformed",
        ),
        (
            &["--copy-to-region", "cn-shanghai", "--copy-name", "aliyun-x"][..],
            "COPY.NameMalformed",
        ),
    ] {
        let out = env.cmd(&sys, flags).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {all}");
        assert!(all.contains(code), "{flags:?}: {all}");
        for api in [
            "PutObject",
            "InitiateMultipartUpload",
            "UploadPart",
            "ImportImage",
            "CopyImage",
        ] {
            assert_eq!(env.requests(api), 0, "{flags:?}: {api} was called");
        }
    }
}

#[test]
fn import_copies_and_shares_and_refuses_a_bad_region_before_import_image() {
    let env = Env::new();
    env.put_raw();
    for (flag, code) in [
        ("cn-hangzhou", "COPY.SameRegion"),
        ("xx-nowhere-1", "COPY.RegionUnknown"),
    ] {
        let out = env.import(&["--copy-to-region", flag]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(code), "{err}");
    }
    assert_eq!(env.requests("ImportImage"), 0);

    let args = [
        "--copy-to-region",
        "cn-shanghai",
        "--copy-name",
        "web-02-copy",
        "--share-with-account",
        FRIEND,
        "--output",
        "json",
    ];
    let out = env.import(&args).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    let got = images(&v);
    assert_eq!(got.len(), 2, "{v}");
    assert_eq!(
        (got[1].0.as_str(), got[1].2.as_str()),
        ("cn-shanghai", "Available")
    );
    assert_eq!(
        env.describe("cn-shanghai", &got[1].1).image_name,
        "web-02-copy"
    );
    assert!(got.iter().all(|g| g.4 == [FRIEND.to_string()]), "{v}");
    assert_eq!(env.requests("CopyImage"), 1);
    assert_eq!(env.requests("ModifyImageSharePermission"), 2);

    // Rerun: the same copy found, nothing copied or shared again.
    env.emu().reset_counters();
    let out = env.import(&args).output().unwrap();
    let again = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{again}");
    assert_eq!(images(&again)[1].1, got[1].1);
    assert_eq!(
        env.requests("CopyImage") + env.requests("ModifyImageSharePermission"),
        0
    );
}

#[test]
fn ctrl_c_while_copying_leaves_the_image_and_a_rerun_finishes_the_copy() {
    let env = Env::new();
    let sys = env.qcow2("sys.qcow2");
    let flags = ["--copy-to-region", "cn-shanghai"];
    // The copy takes 1 s: Ctrl-C 300 ms after it started. --detach leaves it going on
    // (without it, Ctrl-C cancels it: see the test after this one).
    let detached = [&flags[..], &["--detach"][..]].concat();
    let out = crate::common::interrupt_after(env.cmd(&sys, &detached), "   copy to cn-shanghai");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("is Available"), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    assert_eq!(env.requests("CancelTask"), 0, "{err}");
    assert_eq!(env.requests("CopyImage"), 1);

    env.emu().reset_counters();
    let mut args = flags.to_vec();
    args.extend(["--output", "json"]);
    let out = env.cmd(&sys, &args).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    let got = images(&v);
    assert_eq!(got.len(), 2, "{v}");
    assert_eq!(got[1].2, "Available", "{v}");
    assert_eq!(v["images"][1]["reused"], true, "{v}");
    assert_eq!(env.requests("CopyImage"), 0);
}

/// The CopyImage requests' names, read back from ECS: (region, image id) → ImageName.
fn name_of(env: &Env, region: &str, id: &str) -> String {
    env.describe(region, id).image_name
}

#[test]
fn each_copy_takes_its_own_name_and_extra_names_are_refused_before_anything() {
    let env = Env::new();
    env.put_raw();
    let sys = env.qcow2("sys.qcow2");
    let too_many = [
        "--copy-to-region",
        "cn-shanghai",
        "--copy-name",
        "web-a1",
        "--copy-name",
        "web-b1",
    ];
    for cmd in [env.import(&too_many), env.cmd(&sys, &too_many)] {
        let mut cmd = cmd;
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        for want in [
            "COPY.TooManyNames",
            "\"web-a1\"",
            "\"web-b1\"",
            "\"cn-shanghai\"",
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
    }
    for api in [
        "InitiateMultipartUpload",
        "UploadPart",
        "ImportImage",
        "CopyImage",
    ] {
        assert_eq!(env.requests(api), 0, "{api} was called");
    }

    let args = TWO_NAMED_COPIES;
    let out = env.import(&args).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    let got = images(&v);
    assert_eq!(got.len(), 3, "{v}");
    assert_eq!(
        (got[1].0.as_str(), got[2].0.as_str()),
        ("cn-shanghai", "cn-beijing")
    );
    assert_eq!(name_of(&env, "cn-shanghai", &got[1].1), "web-02-sh");
    assert_eq!(name_of(&env, "cn-beijing", &got[2].1), "web-02-bj");
    assert_eq!(env.requests("CopyImage"), 2);
}

#[test]
fn ctrl_c_while_copying_cancels_the_copies_and_a_rerun_copies_again() {
    // Copies take a minute: both are still Creating when Ctrl-C comes.
    let mut env = Env::with_copy_seconds(60.0);
    env.put_raw();
    let args = TWO_NAMED_COPIES;
    let out = crate::common::interrupt_after(env.import(&args), "copy to cn-beijing");
    let v = json_of(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{v}\n{err}");
    assert_eq!(v["status"], "interrupted", "{v}");
    assert_eq!(v["image_status"], "Available", "{v}");
    let source = v["image_id"].as_str().unwrap().to_string();
    let copies = v["copies"].as_array().unwrap_or_else(|| panic!("{v}"));
    let regions: Vec<&str> = copies
        .iter()
        .map(|c| c["region"].as_str().unwrap())
        .collect();
    assert_eq!(regions, ["cn-shanghai", "cn-beijing"], "{v}");
    let cancelled: Vec<String> = copies
        .iter()
        .map(|c| {
            assert_eq!(c["state"], "cancelled", "{v}");
            c["image_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(env.requests("CancelCopyImage"), 2);
    assert_eq!(env.requests("CancelTask"), 0);
    // ECS deleted the copies; the source stays.
    assert_eq!(env.listed("cn-shanghai", &cancelled[0]), 0);
    assert_eq!(env.listed("cn-beijing", &cancelled[1]), 0);
    assert_eq!(env.describe("cn-hangzhou", &source).status, "Available");

    // The rerun: the same import, two new copies (the old ClientTokens name deleted copies),
    // each with its name.
    env.restart(0.5);
    let out = env.import(&args).output().unwrap();
    let again = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{again}");
    let got = images(&again);
    assert_eq!(got.len(), 3, "{again}");
    assert_eq!(got[0].1, source);
    for (i, (region, name)) in [("cn-shanghai", "web-02-sh"), ("cn-beijing", "web-02-bj")]
        .into_iter()
        .enumerate()
    {
        let (r, id, status, ..) = &got[i + 1];
        assert_eq!(
            (r.as_str(), status.as_str()),
            (region, "Available"),
            "{again}"
        );
        assert!(!cancelled.contains(id), "{again}");
        assert_eq!(name_of(&env, region, id), name);
    }
    assert_eq!(env.requests("CancelCopyImage"), 0);

    // And its rerun finds them: nothing copied again.
    env.emu().reset_counters();
    let out = env.import(&args).output().unwrap();
    let third = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{third}");
    assert_eq!(images(&third)[1].1, got[1].1);
    assert_eq!(images(&third)[2].1, got[2].1);
    assert_eq!(env.requests("CopyImage"), 0);
}

#[test]
fn ctrl_c_while_the_one_shot_copies_cancels_the_copy() {
    let env = Env::with_copy_seconds(60.0);
    let sys = env.qcow2("sys.qcow2");
    let out = crate::common::interrupt_after(
        env.cmd(&sys, &["--copy-to-region", "cn-shanghai"]),
        "   copy to cn-shanghai",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("is Available"), "{err}");
    assert!(err.contains("cancelled (CancelCopyImage"), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    assert_eq!(env.requests("CancelCopyImage"), 1, "{err}");
    assert_eq!(env.requests("CancelTask"), 0, "{err}");
}
