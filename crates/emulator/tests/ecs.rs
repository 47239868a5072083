//! ECS/RAM RPC: signature and common-parameter errors, ImportImage validation codes, the task
//! life cycle, XML output.

mod common;

use common::{put, rpc, rpc_with};
use preflight_emulator::{BucketConfig, LimitsProfile, StorageClass};

const ECS: &str = "2014-05-26";
const B: &str = "ecs-preflight";

/// (parameters to change, expected status, expected code).
type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);

/// ImportImage's error table as the seeds document it (seed 004, the Jun-2026 edition, which
/// includes every row of seed 003): code → HTTP status(es). `InvalidImageFormat.Malformed` is
/// listed twice: 400 "The specified Image Format is wrongly formed." and 403 "%s".
const DOCUMENTED: &[(&str, &[u16])] = &[
    ("UnsupportedSuffix.OSSObject", &[400]),
    ("MissingParameter", &[400]),
    ("InvalidImageName.Malformed", &[400]),
    ("InvalidOSSObject.Malformed", &[400]),
    ("InvalidOSSBucket.Malformed", &[400]),
    ("InvalidOSSObject.Size", &[400]),
    ("InvalidDescription.Malformed", &[400]),
    ("InvalidArchitecture.Malformed", &[400]),
    ("InvalidPlatform.Malformed", &[400]),
    ("InvalidOSType.Malformed", &[400]),
    ("InvalidImageName.Duplicated", &[400]),
    ("InvalidImageSize", &[400]),
    ("InvalidDataDiskSize", &[400]),
    ("InvalidImageFormat.Malformed", &[400, 403]),
    ("InvalidRegionId.NotFound", &[400]),
    ("InvalidRegion.NotSupport", &[400]),
    ("InvalidOSSBucket.NotFound", &[400]),
    ("InvalidOSSObject.NotFound", &[400]),
    ("InvalidOSSObject.NeedRestore", &[400]),
    ("InvalidOSSBucket.NotMatched", &[400]),
    ("InvalidLicenseType.NotSupported", &[400]),
    ("InvalidLicenseType.BYOLOnly", &[400]),
    ("InvalidOSSBucket.FlowLimit", &[400]),
    ("InvalidImageFormat.RegionNotSupported", &[400]),
    ("InvalidBootMode.Malformed", &[400]),
    ("InvalidParameter.DetectionStrategy", &[400]),
    ("InvalidBootMode.NotSupport", &[400]),
    ("DRYRUN.SUCCESS", &[400]),
    ("InvalidClientToken.Malformed", &[400]),
    ("InvalidParameter.FeaturesImdsSupport", &[400]),
    ("Account.Arrearage", &[400]),
    ("ImageIsImporting", &[403]),
    ("QuotaExceed.Image", &[403]),
    ("ImportImageFailed", &[403]),
    ("UserNotInTheWhiteList", &[403]),
    ("NoSetRoletoECSServiceAcount", &[403]),
    ("InvalidParameter.Malformed", &[403]),
    ("MissingParameter.DiskDeviceMapping", &[403]),
    ("InvalidOSS.NotAuthorized", &[403]),
    ("InvalidBlockSize.NotSupport", &[403]),
    ("ImageCheckUnsupported.WindowsImage", &[403]),
    ("InvalidVHDImage.IncorrectSize", &[403]),
    ("InvalidOSSBucket.EncryptUnsupported", &[403]),
    ("InvalidArchitecture.PlatformUnsupported", &[403]),
    ("InvalidAccountStatus.OSSDisabled", &[403]),
    ("InvalidStorageLocation.NotFound", &[403]),
    ("InvalidOperation.CloudBoxImageImportRoleRequired", &[403]),
    ("InvalidOperation.CloudBoxImageImportUnsupported", &[403]),
    ("TagKey.Duplication", &[403]),
    ("InvalidResourceGroup.NotFound", &[404]),
];

/// Fails unless `status` is a status the seeds document for `code` (codes they do not list,
/// such as `DryRunOperation` or `IdempotentParameterMismatch`, are not checked here).
fn assert_documented(code: &str, status: u16, context: &str) {
    if let Some((_, statuses)) = DOCUMENTED.iter().find(|(c, _)| *c == code) {
        assert!(
            statuses.contains(&status),
            "{context}: {code} answered {status}, the seeds document {statuses:?}"
        );
    }
}

fn import_params<'a>(name: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![
        ("RegionId", "cn-hangzhou"),
        ("ImageName", name),
        ("DiskDeviceMapping.1.OSSBucket", B),
        ("DiskDeviceMapping.1.OSSObject", "img/sys.raw"),
    ];
    for (k, val) in extra {
        if let Some(slot) = v.iter_mut().find(|(kk, _)| kk == k) {
            slot.1 = val;
        } else {
            v.push((k, val));
        }
    }
    v
}

async fn code_of(ep: &str, params: &[(&str, &str)]) -> (u16, String) {
    let (s, v) = rpc(ep, ECS, "ImportImage", params).await;
    (s, v["Code"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn common_parameter_errors() {
    let (emu, _d) = common::start_with(|_| {}).await;
    let ep = emu.endpoint();
    let (s, v) = rpc_with(&ep, ECS, "DescribeRegions", &[], |p| {
        p.retain(|(k, _)| k != "Timestamp")
    })
    .await;
    assert_eq!(
        (s, v["Code"].as_str().unwrap()),
        (400, "MissingParameter"),
        "{v}"
    );
    let (s, v) = rpc_with(&ep, ECS, "DescribeRegions", &[], |p| {
        for (k, v) in p.iter_mut() {
            if k == "Timestamp" {
                *v = "2001-01-01T00:00:00Z".into();
            }
        }
    })
    .await;
    assert_eq!(
        (s, v["Code"].as_str().unwrap()),
        (400, "InvalidTimeStamp.Expired")
    );
    let (_, v) = rpc_with(&ep, ECS, "DescribeRegions", &[], |p| {
        for (k, v) in p.iter_mut() {
            if k == "Timestamp" {
                *v = "yesterday".into();
            }
        }
    })
    .await;
    assert_eq!(v["Code"], "InvalidTimeStamp.Format");
    let (s, v) = rpc_with(&ep, ECS, "DescribeRegions", &[], |p| {
        for (k, v) in p.iter_mut() {
            if k == "AccessKeyId" {
                *v = "nobody".into();
            }
        }
    })
    .await;
    assert_eq!(
        (s, v["Code"].as_str().unwrap()),
        (404, "InvalidAccessKeyId.NotFound")
    );
    let (s, v) = rpc(&ep, "2099-01-01", "DescribeRegions", &[]).await;
    assert_eq!((s, v["Code"].as_str().unwrap()), (400, "InvalidVersion"));
    let (s, v) = rpc(&ep, ECS, "DeleteEverything", &[]).await;
    assert_eq!(
        (s, v["Code"].as_str().unwrap()),
        (404, "InvalidAction.NotFound")
    );
    let (s, v) = rpc(&ep, "2015-05-01", "GetRole", &[]).await;
    assert_eq!((s, v["Code"].as_str().unwrap()), (400, "MissingParameter"));
    // A reused nonce.
    let fixed = |p: &mut Vec<(String, String)>| {
        for (k, v) in p.iter_mut() {
            if k == "SignatureNonce" {
                *v = "fixed-nonce-1".into();
            }
        }
    };
    let (s, _) = rpc_with(&ep, ECS, "DescribeRegions", &[], fixed).await;
    assert_eq!(s, 200);
    let (s, v) = rpc_with(&ep, ECS, "DescribeRegions", &[], fixed).await;
    assert_eq!(
        (s, v["Code"].as_str().unwrap()),
        (400, "SignatureNonceUsed")
    );
    // Errors carry the documented JSON shape.
    for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
        assert!(v.get(field).is_some(), "{field} missing in {v}");
    }
    // Format=XML gives XML.
    let (s, v) = rpc_with(&ep, ECS, "DescribeRegions", &[], |p| {
        for (k, v) in p.iter_mut() {
            if k == "Format" {
                *v = "XML".into();
            }
        }
    })
    .await;
    assert_eq!(s, 200);
    let text = v.as_str().unwrap();
    assert!(
        text.contains("<DescribeRegionsResponse>")
            && text.contains("<RegionId>cn-hangzhou</RegionId>"),
        "{text}"
    );
    // A POST with a garbage form body is an error, not a crash.
    let r = reqwest::Client::new()
        .post(format!("{ep}/"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(vec![0xffu8, 0xfe, b'=', b'&'])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    emu.shutdown().await;
}

#[tokio::test]
async fn import_image_validation() {
    let (emu, _d) = common::start_with(|c| {
        c.task_seconds = 0.0;
        c.buckets.push(BucketConfig {
            name: "vault".into(),
            region: "cn-hangzhou".into(),
            encrypted: true,
            v4_only: false,
            storage_class: None,
        });
        c.buckets.push(BucketConfig {
            name: "north".into(),
            region: "cn-beijing".into(),
            encrypted: false,
            v4_only: false,
            storage_class: None,
        });
    })
    .await;
    let ep = emu.endpoint();
    put(&ep, B, "img/sys.raw", vec![0u8; 4096]).await;
    put(&ep, B, "img/empty.raw", Vec::new()).await;
    let mut qcow2 = vec![0u8; 4096];
    qcow2[0..4].copy_from_slice(b"QFI\xfb");
    qcow2[24..32].copy_from_slice(&(5u64 << 30).to_be_bytes());
    put(&ep, B, "img/disk.qcow2", qcow2).await;
    let mut vhd = vec![0u8; 4096];
    vhd[4096 - 512..4096 - 504].copy_from_slice(b"conectix");
    put(&ep, B, "img/disk.vhd", vhd).await;
    put(&ep, "vault", "img/sys.raw", vec![0u8; 10]).await;
    put(&ep, "north", "img/sys.raw", vec![0u8; 10]).await;
    let archive = common::OssReq {
        method: "PUT",
        bucket: B,
        raw_key: "img/cold.raw",
        query: "",
        headers: vec![("x-oss-storage-class", "Archive".into())],
    };
    assert_eq!(common::oss(&ep, archive, vec![1u8; 10]).await.status(), 200);
    let long_name = "a".repeat(129);
    let cases: Vec<Case> = vec![
        (vec![("RegionId", "")], 400, "MissingParameter"),
        (
            vec![("RegionId", "xx-nowhere-1")],
            400,
            "InvalidRegionId.NotFound",
        ),
        (
            vec![("ImageName", "1starts-with-digit")],
            400,
            "InvalidImageName.Malformed",
        ),
        (
            vec![("ImageName", "aliyun-reserved")],
            400,
            "InvalidImageName.Malformed",
        ),
        (
            vec![("ImageName", &long_name)],
            400,
            "InvalidImageName.Malformed",
        ),
        (
            vec![("Description", "http://spam")],
            400,
            "InvalidDescription.Malformed",
        ),
        (
            vec![("Architecture", "mips")],
            400,
            "InvalidArchitecture.Malformed",
        ),
        (vec![("OSType", "Linux")], 400, "InvalidOSType.Malformed"),
        (
            vec![("Platform", "TempleOS")],
            400,
            "InvalidPlatform.Malformed",
        ),
        (
            vec![("Platform", "Windows Server 2019")],
            400,
            "InvalidPlatform.Malformed",
        ),
        (
            vec![("BootMode", "legacy")],
            400,
            "InvalidBootMode.Malformed",
        ),
        (
            vec![("Architecture", "arm64"), ("BootMode", "BIOS")],
            400,
            "InvalidBootMode.NotSupport",
        ),
        (
            vec![("LicenseType", "Free")],
            400,
            "InvalidLicenseType.NotSupported",
        ),
        (
            vec![("Features.ImdsSupport", "v3")],
            400,
            "InvalidParameter.FeaturesImdsSupport",
        ),
        (
            vec![("DetectionStrategy", "Deep")],
            400,
            "InvalidParameter.DetectionStrategy",
        ),
        (
            vec![("ClientToken", "é")],
            400,
            "InvalidClientToken.Malformed",
        ),
        (
            vec![("Tag.1.Key", "Env"), ("Tag.2.Key", "env")],
            403,
            "TagKey.Duplication",
        ),
        (vec![("Tag.1.Key", "acs:x")], 400, "InvalidTagKey.Malformed"),
        (
            vec![("DiskDeviceMapping.1.Format", "VDI")],
            400,
            "InvalidImageFormat.Malformed",
        ),
        (
            vec![("DiskDeviceMapping.1.Format", "qcow2")],
            400,
            "InvalidImageFormat.Malformed",
        ),
        // A Format the API takes, contradicted by the object's header: the documented 403.
        (
            vec![
                ("DiskDeviceMapping.1.OSSObject", "img/disk.qcow2"),
                ("DiskDeviceMapping.1.Format", "RAW"),
            ],
            403,
            "InvalidImageFormat.Malformed",
        ),
        (
            vec![
                ("DiskDeviceMapping.1.OSSObject", "img/disk.vhd"),
                ("DiskDeviceMapping.1.Format", "QCOW2"),
            ],
            403,
            "InvalidImageFormat.Malformed",
        ),
        (
            vec![
                ("DiskDeviceMapping.2.OSSBucket", B),
                ("DiskDeviceMapping.2.OSSObject", "img/disk.qcow2"),
                ("DiskDeviceMapping.2.Format", "VMDK"),
            ],
            403,
            "InvalidImageFormat.Malformed",
        ),
        // The format the header names, or no Format at all, passes.
        (
            vec![
                ("DiskDeviceMapping.1.OSSObject", "img/disk.qcow2"),
                ("DiskDeviceMapping.1.Format", "QCOW2"),
                ("DryRun", "true"),
            ],
            400,
            "DryRunOperation",
        ),
        (
            vec![
                ("DiskDeviceMapping.1.OSSObject", "img/disk.vhd"),
                ("DiskDeviceMapping.1.Format", "VHD"),
                ("DryRun", "true"),
            ],
            400,
            "DryRunOperation",
        ),
        (
            vec![
                ("DiskDeviceMapping.1.OSSObject", "img/disk.qcow2"),
                ("DryRun", "true"),
            ],
            400,
            "DryRunOperation",
        ),
        (
            vec![("DiskDeviceMapping.1.DiskImageSize", "4")],
            400,
            "InvalidImageSize",
        ),
        (
            vec![("DiskDeviceMapping.1.DiskImageSize", "501")],
            400,
            "InvalidImageSize",
        ),
        (
            vec![("DiskDeviceMapping.1.DiskImageSize", "big")],
            400,
            "InvalidImageSize",
        ),
        (
            vec![
                ("DiskDeviceMapping.2.OSSBucket", B),
                ("DiskDeviceMapping.2.OSSObject", "img/sys.raw"),
                ("DiskDeviceMapping.2.DiskImageSize", "1001"),
            ],
            400,
            "InvalidDataDiskSize",
        ),
        (
            vec![("DiskDeviceMapping.2.OSSBucket", B)],
            400,
            "MissingParameter",
        ),
        (
            vec![("DiskDeviceMapping.1.OSSObject", "")],
            400,
            "MissingParameter",
        ),
        (
            vec![("DiskDeviceMapping.1.OSSBucket", "Bad_Bucket")],
            400,
            "InvalidOSSBucket.Malformed",
        ),
        (
            vec![("DiskDeviceMapping.1.OSSBucket", "nope-bucket")],
            400,
            "InvalidOSSBucket.NotFound",
        ),
        (
            vec![("DiskDeviceMapping.1.OSSBucket", "north")],
            400,
            "InvalidOSSBucket.NotFound",
        ),
        (
            vec![("DiskDeviceMapping.1.OSSBucket", "vault")],
            403,
            "InvalidOSSBucket.EncryptUnsupported",
        ),
        (
            vec![("DiskDeviceMapping.1.OSSObject", "img/missing.raw")],
            400,
            "InvalidOSSObject.NotFound",
        ),
        (
            vec![("DiskDeviceMapping.1.OSSObject", "img/empty.raw")],
            400,
            "InvalidOSSObject.Size",
        ),
        (
            vec![("DiskDeviceMapping.1.OSSObject", "img/cold.raw")],
            400,
            "InvalidOSSObject.NeedRestore",
        ),
        (
            vec![("RoleName", "SomeOtherRole")],
            403,
            "NoSetRoletoECSServiceAcount",
        ),
        (vec![("DryRun", "true")], 400, "DryRunOperation"),
        (vec![("DryRun", "maybe")], 400, "InvalidParameter"),
    ];
    for (extra, status, code) in cases {
        let params = import_params("valid-name", &extra);
        let got = code_of(&ep, &params).await;
        assert_eq!(got, (status, code.to_string()), "{extra:?}");
        assert_documented(&got.1, got.0, &format!("{extra:?}"));
    }
    // No DiskDeviceMapping at all.
    let (s, c) = code_of(&ep, &[("RegionId", "cn-hangzhou")]).await;
    assert_eq!((s, c.as_str()), (403, "MissingParameter.DiskDeviceMapping"));
    assert_documented(&c, s, "no DiskDeviceMapping");
    // The counters saw both kinds: the 400 value check and the 403 content check.
    assert_eq!(emu.counters().errors_for("InvalidImageFormat.Malformed"), 5);
    // The current limits profile accepts 1..2048.
    assert_eq!(emu.config().limits, LimitsProfile::Classic);
    // A valid import, then ClientToken idempotency and name uniqueness.
    let ok = import_params(
        "good-one",
        &[
            ("ClientToken", "tok-1"),
            ("DiskDeviceMapping.1.DiskImageSize", "5"),
        ],
    );
    let (s, first) = rpc(&ep, ECS, "ImportImage", &ok).await;
    assert_eq!(s, 200, "{first}");
    let (_, again) = rpc(&ep, ECS, "ImportImage", &ok).await;
    assert_eq!(first["ImageId"], again["ImageId"]);
    assert_eq!(first["TaskId"], again["TaskId"]);
    let changed = import_params(
        "good-one",
        &[
            ("ClientToken", "tok-1"),
            ("DiskDeviceMapping.1.DiskImageSize", "6"),
        ],
    );
    assert_eq!(
        code_of(&ep, &changed).await,
        (400, "IdempotentParameterMismatch".to_string())
    );
    let dup = import_params("good-one", &[("ClientToken", "tok-2")]);
    assert_eq!(
        code_of(&ep, &dup).await,
        (400, "InvalidImageName.Duplicated".to_string())
    );
    // With task_seconds = 0 the task is finished at once.
    let task = first["TaskId"].as_str().unwrap();
    let (_, t) = rpc(
        &ep,
        ECS,
        "DescribeTaskAttribute",
        &[("RegionId", "cn-hangzhou"), ("TaskId", task)],
    )
    .await;
    assert_eq!(t["TaskStatus"], "Finished", "{t}");
    assert_eq!(t["TaskProcess"], "100%");
    let (_, t) = rpc(
        &ep,
        ECS,
        "DescribeTaskAttribute",
        &[("RegionId", "cn-hangzhou"), ("TaskId", "t-nope")],
    )
    .await;
    assert_eq!(t["Code"], "InvalidTaskId.NotFound");
    let (_, c) = rpc(
        &ep,
        ECS,
        "CancelTask",
        &[("RegionId", "cn-hangzhou"), ("TaskId", task)],
    )
    .await;
    assert_eq!(c["Code"], "InvalidTaskId.IncorrectTaskStatus");
    let (_, i) = rpc(
        &ep,
        ECS,
        "DescribeImages",
        &[
            ("RegionId", "cn-hangzhou"),
            ("ImageId", first["ImageId"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(i["Images"]["Image"][0]["Status"], "Available", "{i}");
    assert_eq!(
        i["Images"]["Image"][0]["DiskDeviceMappings"]["DiskDeviceMapping"][0]["ImportOSSObject"],
        "img/sys.raw"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn task_life_cycle_and_failure() {
    let (emu, _d) = common::start_with(|c| {
        c.task_seconds = 1.0;
        c.storage_class = StorageClass::Standard;
    })
    .await;
    let ep = emu.endpoint();
    // A qcow2 header claiming 600 GiB: larger than the requested 20 GiB disk, so the task fails.
    let mut q = vec![0u8; 4096];
    q[0..4].copy_from_slice(b"QFI\xfb");
    q[24..32].copy_from_slice(&(600u64 << 30).to_be_bytes());
    put(&ep, B, "img/big.qcow2", q).await;
    let (_, r) = rpc(
        &ep,
        ECS,
        "ImportImage",
        &[
            ("RegionId", "cn-hangzhou"),
            ("ImageName", "too-big"),
            ("DiskDeviceMapping.1.OSSBucket", B),
            ("DiskDeviceMapping.1.OSSObject", "img/big.qcow2"),
            ("DiskDeviceMapping.1.DiskImageSize", "20"),
        ],
    )
    .await;
    let task = r["TaskId"].as_str().unwrap().to_string();
    let (_, t) = rpc(
        &ep,
        ECS,
        "DescribeTasks",
        &[("RegionId", "cn-hangzhou"), ("TaskIds", &task)],
    )
    .await;
    let first = t["TaskSet"]["Task"][0]["TaskStatus"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(first == "Waiting" || first == "Processing", "{t}");
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let (_, t) = rpc(
        &ep,
        ECS,
        "DescribeTaskAttribute",
        &[("RegionId", "cn-hangzhou"), ("TaskId", &task)],
    )
    .await;
    assert_eq!(t["TaskStatus"], "Failed", "{t}");
    assert_eq!(
        t["OperationProgressSet"]["OperationProgress"][0]["ErrorCode"],
        "InvalidImageSize"
    );
    let (_, i) = rpc(
        &ep,
        ECS,
        "DescribeImages",
        &[("RegionId", "cn-hangzhou"), ("Status", "CreateFailed")],
    )
    .await;
    assert_eq!(i["TotalCount"], 1, "{i}");
    // The fail_import fault.
    put(&ep, B, "img/ok.raw", vec![1u8; 1024]).await;
    emu.set_faults(preflight_emulator::Faults {
        fail_import: true,
        ..Default::default()
    });
    let (_, r) = rpc(
        &ep,
        ECS,
        "ImportImage",
        &[
            ("RegionId", "cn-hangzhou"),
            ("ImageName", "doomed"),
            ("DiskDeviceMapping.1.OSSBucket", B),
            ("DiskDeviceMapping.1.OSSObject", "img/ok.raw"),
        ],
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (_, t) = rpc(
        &ep,
        ECS,
        "DescribeTaskAttribute",
        &[
            ("RegionId", "cn-hangzhou"),
            ("TaskId", r["TaskId"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        t["OperationProgressSet"]["OperationProgress"][0]["ErrorCode"], "ImportImageFailed",
        "{t}"
    );
    // Cancel a running task: the image disappears and its name is free again.
    emu.set_faults(preflight_emulator::Faults::default());
    let p = [
        ("RegionId", "cn-hangzhou"),
        ("ImageName", "cancel-me"),
        ("DiskDeviceMapping.1.OSSBucket", B),
        ("DiskDeviceMapping.1.OSSObject", "img/ok.raw"),
    ];
    let (_, r) = rpc(&ep, ECS, "ImportImage", &p).await;
    let (s, _) = rpc(
        &ep,
        ECS,
        "CancelTask",
        &[
            ("RegionId", "cn-hangzhou"),
            ("TaskId", r["TaskId"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let (_, i) = rpc(
        &ep,
        ECS,
        "DescribeImages",
        &[
            ("RegionId", "cn-hangzhou"),
            ("Status", "ALL"),
            ("ImageName", "cancel-me"),
        ],
    )
    .await;
    assert_eq!(i["TotalCount"], 0);
    let (s, _) = rpc(&ep, ECS, "ImportImage", &p).await;
    assert_eq!(s, 200);
    let c = emu.counters();
    assert!(
        c.requests_for("ImportImage") >= 4 && c.requests_for("CancelTask") == 1,
        "{c:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn current_limits_profile() {
    let (emu, _d) = common::start_with(|c| c.limits = LimitsProfile::Current).await;
    let ep = emu.endpoint();
    put(&ep, B, "img/sys.raw", vec![0u8; 4096]).await;
    for (size, ok) in [("1", true), ("2048", true), ("2049", false), ("0", false)] {
        let name = format!("size-{size}");
        let p = import_params(&name, &[("DiskDeviceMapping.1.DiskImageSize", size)]);
        let (s, v) = rpc(&ep, ECS, "ImportImage", &p).await;
        assert_eq!(s == 200, ok, "{size}: {v}");
    }
    let p = import_params(
        "data-2048",
        &[
            ("DiskDeviceMapping.2.OSSBucket", B),
            ("DiskDeviceMapping.2.OSSObject", "img/sys.raw"),
            ("DiskDeviceMapping.2.DiskImageSize", "2048"),
        ],
    );
    let (s, v) = rpc(&ep, ECS, "ImportImage", &p).await;
    assert_eq!(s, 200, "{v}");
    emu.shutdown().await;
}

/// DescribeTasks' StartTime/EndTime filter on task creation time (UTC; the documented
/// `yyyy-MM-ddTHH:mm:ssZ`, or the minute form ECS prints task times in), and refuse a value in
/// any other form.
#[tokio::test]
async fn describe_tasks_time_window() {
    use preflight_emulator::ecs::state::{EcsData, Task};
    use preflight_emulator::util::{parse_iso8601, Utc};
    // Four finished tasks with known creation times, written where the emulator keeps its
    // state, and one made live below.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let mut state = EcsData::default();
    for (id, at) in [
        ("t-a", "2015-11-23T15:10:30Z"),
        ("t-b", "2015-11-23T15:12:00Z"),
        ("t-c", "2015-11-23T15:16:59Z"),
        ("t-d", "2015-11-24T12:50:00Z"),
    ] {
        let created_ms = parse_iso8601(at).unwrap() * 1000;
        state.tasks.insert(
            id.into(),
            Task {
                task_id: id.into(),
                region: "cn-hangzhou".into(),
                image_id: format!("m-{id}"),
                created_ms,
                duration_ms: 1000,
                failure: None,
                cancelled_ms: None,
            },
        );
    }
    std::fs::write(
        data_dir.join("ecs.json"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    let mut cfg = preflight_emulator::Config::for_tests(&data_dir);
    cfg.task_seconds = 0.0;
    cfg.strict.v4_only = false; // the object is put with common's V1 helper
    let emu = preflight_emulator::start(cfg).await.unwrap();
    let ep = emu.endpoint();
    assert_eq!(
        put(&ep, B, "img/sys.raw", vec![0u8; 4096]).await.status(),
        200
    );
    let (s, live) = rpc(&ep, ECS, "ImportImage", &import_params("live-one", &[])).await;
    assert_eq!(s, 200, "{live}");
    let live = live["TaskId"].as_str().unwrap().to_string();

    let ids = |v: &serde_json::Value| -> Vec<String> {
        let mut out: Vec<String> = v["TaskSet"]["Task"]
            .as_array()
            .unwrap_or_else(|| panic!("no TaskSet in {v}"))
            .iter()
            .map(|t| t["TaskId"].as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    };
    let query = |window: Vec<(&'static str, String)>| {
        let ep = ep.clone();
        async move {
            let mut p: Vec<(&str, &str)> = vec![("RegionId", "cn-hangzhou"), ("PageSize", "100")];
            p.extend(window.iter().map(|(k, v)| (*k, v.as_str())));
            let (s, v) = rpc(&ep, ECS, "DescribeTasks", &p).await;
            assert_eq!(s, 200, "{window:?}: {v}");
            assert_eq!(v["TotalCount"], ids(&v).len(), "{v}");
            ids(&v)
        }
    };
    let w = |pairs: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    };
    let all = ["t-a", "t-b", "t-c", "t-d", live.as_str()];
    let mut everything: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    everything.sort();
    assert_eq!(query(w(&[])).await, everything);
    // Minute precision: EndTime takes in the whole minute it names (t-c at 15:16:59).
    assert_eq!(
        query(w(&[
            ("StartTime", "2015-11-23T15:10Z"),
            ("EndTime", "2015-11-23T15:16Z")
        ]))
        .await,
        ["t-a", "t-b", "t-c"]
    );
    // A task's printed CreationTime as both bounds finds it.
    assert_eq!(
        query(w(&[
            ("StartTime", "2015-11-23T15:10Z"),
            ("EndTime", "2015-11-23T15:10Z")
        ]))
        .await,
        ["t-a"]
    );
    // Second precision, the documented form.
    assert_eq!(
        query(w(&[
            ("StartTime", "2015-11-23T15:10:31Z"),
            ("EndTime", "2015-11-23T15:16:00Z")
        ]))
        .await,
        ["t-b"]
    );
    assert_eq!(
        query(w(&[("StartTime", "2015-11-23T15:12:00Z")]))
            .await
            .len(),
        4,
        "t-b, t-c, t-d and the live task"
    );
    assert_eq!(
        query(w(&[("EndTime", "2015-11-23T23:59:59Z")])).await,
        ["t-a", "t-b", "t-c"]
    );
    // Bounds that meet nothing, or cross, find nothing.
    assert!(query(w(&[("EndTime", "2015-11-23T15:10:29Z")]))
        .await
        .is_empty());
    assert!(query(w(&[
        ("StartTime", "2015-11-24T00:00Z"),
        ("EndTime", "2015-11-23T00:00Z")
    ]))
    .await
    .is_empty());
    // The live task, by a window around now; combined with TaskIds and TaskStatus.
    let now = preflight_emulator::util::unix_now();
    let minute = |secs: u64| Utc::from_unix(secs).iso8601_minutes();
    assert_eq!(
        query(vec![
            ("StartTime", minute(now - 120)),
            ("EndTime", minute(now + 120))
        ])
        .await,
        vec![live.clone()]
    );
    assert_eq!(
        query(vec![
            ("StartTime", "2015-11-23T00:00Z".into()),
            ("EndTime", "2015-11-24T00:00Z".into()),
            ("TaskIds", "t-a,t-d".into()),
            ("TaskStatus", "Finished".into()),
        ])
        .await,
        ["t-a"]
    );
    // Anything else is refused with the parameter's own code.
    for bad in [
        "yesterday",
        "2015-11-23",
        "2015-11-23 15:10Z",
        "2015-11-23T15:10",
        "2015-11-23T15:10:00+08:00",
        "2015-11-23T15:10:00.000Z",
        "2015-13-01T00:00Z",
        "1448291400",
    ] {
        for (name, code) in [
            ("StartTime", "InvalidStartTime.Malformed"),
            ("EndTime", "InvalidEndTime.Malformed"),
        ] {
            let (s, v) = rpc(
                &ep,
                ECS,
                "DescribeTasks",
                &[("RegionId", "cn-hangzhou"), (name, bad)],
            )
            .await;
            assert_eq!(
                (s, v["Code"].as_str().unwrap_or("")),
                (400, code),
                "{name}={bad}: {v}"
            );
        }
    }
    assert_eq!(emu.counters().errors_for("InvalidStartTime.Malformed"), 8);
    emu.shutdown().await;
}
