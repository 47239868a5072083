//! CopyImage, DescribeImages across regions, ModifyImageSharePermission and
//! DescribeImageSharePermission: the copy's life cycle, the documented errors, ClientToken
//! idempotency, and the state kept across a restart.

mod common;

use common::{put, rpc};

const ECS: &str = "2014-05-26";
const B: &str = "ecs-preflight";
const FRIEND: &str = "1111222233334444";

async fn code(ep: &str, action: &str, params: &[(&str, &str)]) -> (u16, String) {
    let (s, v) = rpc(ep, ECS, action, params).await;
    (s, v["Code"].as_str().unwrap_or("").to_string())
}

async fn status(ep: &str, region: &str, id: &str) -> (String, serde_json::Value) {
    let (s, v) = rpc(
        ep,
        ECS,
        "DescribeImages",
        &[
            ("RegionId", region),
            ("ImageId", id),
            ("Status", "Creating,Available"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let img = v["Images"]["Image"][0].clone();
    (img["Status"].as_str().unwrap_or("").to_string(), img)
}

/// The tests' emulator config: tasks of `task_seconds`, copies of `copy_seconds`, V1 allowed
/// (the requests are signed with the V1 helpers of common).
fn config(
    dir: &std::path::Path,
    task_seconds: f64,
    copy_seconds: f64,
) -> preflight_emulator::Config {
    let mut c = preflight_emulator::Config {
        task_seconds,
        copy_seconds,
        ..preflight_emulator::Config::for_tests(dir.join("data"))
    };
    c.strict.v4_only = false;
    c
}

/// Uploads `img/sys.raw` and imports it as `web-01` in cn-hangzhou with `tags`
/// (`Tag.N.Key`/`Tag.N.Value` pairs): the source image's id.
async fn import_source(ep: &str, tags: &[(&str, &str)]) -> String {
    assert_eq!(
        put(ep, B, "img/sys.raw", vec![1u8; 4096]).await.status(),
        200
    );
    let mut params = vec![
        ("RegionId", "cn-hangzhou"),
        ("ImageName", "web-01"),
        ("DiskDeviceMapping.1.OSSBucket", B),
        ("DiskDeviceMapping.1.OSSObject", "img/sys.raw"),
    ];
    params.extend_from_slice(tags);
    let (s, v) = rpc(ep, ECS, "ImportImage", &params).await;
    assert_eq!(s, 200, "{v}");
    v["ImageId"].as_str().unwrap().to_string()
}

/// CopyImage of `src` from cn-hangzhou to `region` as `name`, with ClientToken `token`.
async fn copy_image(
    ep: &str,
    src: &str,
    region: &str,
    name: &str,
    token: &str,
) -> (u16, serde_json::Value) {
    let params = [
        ("RegionId", "cn-hangzhou"),
        ("ImageId", src),
        ("DestinationRegionId", region),
        ("DestinationImageName", name),
        ("ClientToken", token),
    ];
    rpc(ep, ECS, "CopyImage", &params).await
}

#[tokio::test]
async fn copy_and_share_life_cycle_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || config(dir.path(), 0.5, 1.0);
    let emu = preflight_emulator::start(cfg()).await.unwrap();
    let ep = emu.endpoint();
    let src = import_source(&ep, &[("Tag.1.Key", "owner"), ("Tag.1.Value", "team-a")]).await;
    let copy_params = |token: &'static str| -> Vec<(&str, &str)> {
        vec![
            ("RegionId", "cn-hangzhou"),
            ("ImageId", src.as_str()),
            ("DestinationRegionId", "cn-shanghai"),
            ("DestinationImageName", "web-01"),
            ("Tag.1.Key", "owner"),
            ("Tag.1.Value", "team-a"),
            ("ClientToken", token),
        ]
    };
    // Not yet Available: neither copied nor shared.
    assert_eq!(
        code(&ep, "CopyImage", &copy_params("tok-1")).await,
        (403, "IncorrectImageStatus".into())
    );
    assert_eq!(
        code(
            &ep,
            "ModifyImageSharePermission",
            &[
                ("RegionId", "cn-hangzhou"),
                ("ImageId", &src),
                ("AddAccount.1", FRIEND)
            ]
        )
        .await,
        (403, "IncorrectImageStatus".into())
    );
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    // Errors: unknown image, image of another region, unknown destination, bad name.
    let mut p = copy_params("tok-x");
    p[1].1 = "m-doesnotexist";
    assert_eq!(
        code(&ep, "CopyImage", &p).await,
        (404, "InvalidImageId.NotFound".into())
    );
    let mut p = copy_params("tok-x");
    p[0].1 = "cn-beijing";
    assert_eq!(
        code(&ep, "CopyImage", &p).await,
        (404, "InvalidImageId.NotFound".into())
    );
    let mut p = copy_params("tok-x");
    p[2].1 = "xx-nowhere-9";
    assert_eq!(
        code(&ep, "CopyImage", &p).await,
        (404, "InvalidRegionId.NotFound".into())
    );
    let mut p = copy_params("tok-x");
    p[3].1 = "aliyun-copy";
    assert_eq!(
        code(&ep, "CopyImage", &p).await,
        (400, "InvalidImageName.Malformed".into())
    );
    let mut p = copy_params("tok-x");
    p.remove(1);
    assert_eq!(
        code(&ep, "CopyImage", &p).await,
        (400, "MissingParameter".into())
    );

    let mut p = copy_params("tok-1");
    p.push(("DryRun", "true"));
    assert_eq!(
        code(&ep, "CopyImage", &p).await,
        (400, "DryRunOperation".into())
    );
    let (s, v) = rpc(&ep, ECS, "CopyImage", &copy_params("tok-1")).await;
    assert_eq!(s, 200, "{v}");
    let copy = v["ImageId"].as_str().unwrap().to_string();
    assert_ne!(copy, src);
    // The same token: the same copy; the same token with other parameters: refused.
    let (_, again) = rpc(&ep, ECS, "CopyImage", &copy_params("tok-1")).await;
    assert_eq!(again["ImageId"], v["ImageId"]);
    let mut p = copy_params("tok-1");
    p[3].1 = "web-02";
    assert_eq!(
        code(&ep, "CopyImage", &p).await,
        (400, "IdempotentParameterMismatch".into())
    );
    // The name is taken in the destination now.
    assert_eq!(
        code(&ep, "CopyImage", &copy_params("tok-2")).await,
        (400, "InvalidImageName.Duplicated".into())
    );
    // Listed in its own region only, Creating, with its tags and IsCopied.
    let (st, img) = status(&ep, "cn-shanghai", &copy).await;
    assert_eq!(st, "Creating", "{img}");
    assert_eq!(img["IsCopied"], true);
    assert_eq!(img["Tags"]["Tag"][0]["TagKey"], "owner");
    assert_eq!(status(&ep, "cn-hangzhou", &copy).await.0, "");
    assert_eq!(
        code(
            &ep,
            "ModifyImageSharePermission",
            &[
                ("RegionId", "cn-shanghai"),
                ("ImageId", &copy),
                ("AddAccount.1", FRIEND)
            ]
        )
        .await,
        (403, "IncorrectImageStatus".into())
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(status(&ep, "cn-shanghai", &copy).await.0, "Available");

    // Share errors: a malformed account, the owner, N out of range, unknown image.
    for (bad, want) in [
        ("12345", "InvalidAccount.NotFound"),
        ("abcdabcdabcdabcd", "InvalidAccount.NotFound"),
        ("1234567890123456", "InvalidAccount.Forbidden"),
    ] {
        let (s, c) = code(
            &ep,
            "ModifyImageSharePermission",
            &[
                ("RegionId", "cn-shanghai"),
                ("ImageId", &copy),
                ("AddAccount.1", bad),
            ],
        )
        .await;
        assert_eq!((s, c.as_str()), (400, want), "{bad}");
    }
    assert_eq!(
        code(
            &ep,
            "ModifyImageSharePermission",
            &[
                ("RegionId", "cn-shanghai"),
                ("ImageId", &copy),
                ("AddAccount.11", FRIEND)
            ]
        )
        .await,
        (400, "InvalidParameter".into())
    );
    assert_eq!(
        code(
            &ep,
            "DescribeImageSharePermission",
            &[("RegionId", "cn-shanghai"), ("ImageId", "m-nope")]
        )
        .await,
        (404, "InvalidImageId.NotFound".into())
    );
    let (s, v) = rpc(
        &ep,
        ECS,
        "ModifyImageSharePermission",
        &[
            ("RegionId", "cn-shanghai"),
            ("ImageId", &copy),
            ("AddAccount.1", FRIEND),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    emu.shutdown().await;

    // Restarted on the same data: the copy, its state and its share are still there.
    let emu = preflight_emulator::start(cfg()).await.unwrap();
    let ep = emu.endpoint();
    assert_eq!(status(&ep, "cn-shanghai", &copy).await.0, "Available");
    let (s, v) = rpc(
        &ep,
        ECS,
        "DescribeImageSharePermission",
        &[("RegionId", "cn-shanghai"), ("ImageId", &copy)],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["TotalCount"], 1);
    assert_eq!(v["Accounts"]["Account"][0]["AliyunId"], FRIEND);
    assert_eq!(v["ImageId"], copy.as_str());
    emu.shutdown().await;
}

/// CancelCopyImage: its documented errors, a copy `Creating` deleted (the source stays),
/// and the deletion kept across a restart.
#[tokio::test]
async fn cancel_copy_image_deletes_a_copy_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    // First run: copies are Available at once; second run: they take a minute.
    let cfg = |copy_seconds: f64| config(dir.path(), 0.2, copy_seconds);
    let emu = preflight_emulator::start(cfg(0.0)).await.unwrap();
    let ep = emu.endpoint();
    let src = import_source(&ep, &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(status(&ep, "cn-hangzhou", &src).await.0, "Available");
    let copy_to = |dest: &'static str, token: &'static str| {
        let src = src.clone();
        let ep = ep.clone();
        async move {
            let (s, v) = rpc(
                &ep,
                ECS,
                "CopyImage",
                &[
                    ("RegionId", "cn-hangzhou"),
                    ("ImageId", &src),
                    ("DestinationRegionId", dest),
                    ("DestinationImageName", "web-01"),
                    ("ClientToken", token),
                ],
            )
            .await;
            assert_eq!(s, 200, "{v}");
            v["ImageId"].as_str().unwrap().to_string()
        }
    };
    let done = copy_to("cn-shanghai", "tok-done").await;
    assert_eq!(status(&ep, "cn-shanghai", &done).await.0, "Available");
    let cancel = |region: &str, id: &str| {
        let (ep, region, id) = (ep.clone(), region.to_string(), id.to_string());
        async move {
            code(
                &ep,
                "CancelCopyImage",
                &[("RegionId", &region), ("ImageId", &id)],
            )
            .await
        }
    };
    assert_eq!(
        cancel("cn-shanghai", &done).await,
        (400, "IncorrectImageStatus".into())
    );
    assert_eq!(
        cancel("cn-hangzhou", &src).await,
        (400, "ImageCreatedNotFromCopy".into())
    );
    // The copy's region is the one to name: in the source's region it does not exist.
    assert_eq!(
        cancel("cn-hangzhou", &done).await,
        (404, "InvalidImageId.NotFound".into())
    );
    assert_eq!(
        cancel("xx-nowhere-9", &done).await,
        (400, "InvalidRegionId.NotFound".into())
    );
    assert_eq!(
        code(&ep, "CancelCopyImage", &[("RegionId", "cn-shanghai")]).await,
        (400, "MissingParameter".into())
    );
    emu.shutdown().await;

    let emu = preflight_emulator::start(cfg(60.0)).await.unwrap();
    let ep = emu.endpoint();
    let (s, v) = copy_image(&ep, &src, "cn-beijing", "web-01", "tok-slow").await;
    assert_eq!(s, 200, "{v}");
    let slow = v["ImageId"].as_str().unwrap().to_string();
    assert_eq!(status(&ep, "cn-beijing", &slow).await.0, "Creating");
    let (s, v) = rpc(
        &ep,
        ECS,
        "CancelCopyImage",
        &[("RegionId", "cn-beijing"), ("ImageId", &slow)],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["RequestId"].is_string(), "{v}");
    assert_eq!(status(&ep, "cn-beijing", &slow).await.0, "");
    assert_eq!(status(&ep, "cn-hangzhou", &src).await.0, "Available");
    emu.shutdown().await;

    // Restarted: the cancelled copy stays gone, the name is free again, the token still
    // names the deleted copy.
    let emu = preflight_emulator::start(cfg(60.0)).await.unwrap();
    let ep = emu.endpoint();
    assert_eq!(status(&ep, "cn-beijing", &slow).await.0, "");
    assert_eq!(
        code(
            &ep,
            "CancelCopyImage",
            &[("RegionId", "cn-beijing"), ("ImageId", &slow)]
        )
        .await,
        (404, "InvalidImageId.NotFound".into())
    );
    let (s, v) = copy_image(&ep, &src, "cn-beijing", "web-01", "tok-slow").await;
    assert_eq!(
        (s, v["ImageId"].as_str()),
        (200, Some(slow.as_str())),
        "{v}"
    );
    let (s, v) = copy_image(&ep, &src, "cn-beijing", "web-01", "tok-slow-2").await;
    assert_eq!(s, 200, "{v}");
    assert_ne!(v["ImageId"].as_str(), Some(slow.as_str()));
    emu.shutdown().await;
}
