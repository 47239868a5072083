//! DescribeTasks, DescribeTaskAttribute, DescribeImages, CancelTask, DescribeRegions (ECS) and
//! GetRole, ListPoliciesForRole (RAM).

use serde_json::{json, Value};

use crate::config::ACCOUNT_ID;
use crate::ecs::import::{known_region, region, DEFAULT_ROLE, REGIONS};
use crate::ecs::state::{Image, Task};
use crate::ecs::{Call, EcsError};
use crate::util::{parse_iso8601, random_alnum, unix_now_ms, Utc};

/// Largest page of DescribeTasks / DescribeImages.
pub const MAX_PAGE_SIZE: u64 = 100;
/// Most ids in TaskIds.
pub const MAX_TASK_IDS: usize = 100;

fn minutes(ms: u64) -> String {
    Utc::from_unix(ms / 1000).iso8601_minutes()
}

fn seconds(ms: u64) -> String {
    Utc::from_unix(ms / 1000).iso8601()
}

fn page(call: &Call<'_>, default_size: u64) -> Result<(u64, u64), EcsError> {
    let num =
        match call.params.get("PageNumber") {
            None | Some("") => 1,
            Some(v) => v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                EcsError::invalid("PageNumber", "must be an integer of at least 1")
            })?,
        };
    let size = match call.params.get("PageSize") {
        None | Some("") => default_size,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| EcsError::invalid("PageSize", "must be an integer from 1 to 100"))?,
    };
    Ok((num, size))
}

fn slice<T: Clone>(items: &[T], num: u64, size: u64) -> Vec<T> {
    let start = usize::try_from(num.saturating_sub(1).saturating_mul(size)).unwrap_or(usize::MAX);
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    items.iter().skip(start).take(size).cloned().collect()
}

/// A `StartTime`/`EndTime` of DescribeTasks: UTC, `yyyy-MM-ddTHH:mm:ssZ` as the API reference
/// documents, or `yyyy-MM-ddTHH:mmZ` (the minute precision in which ECS prints task times).
/// Returns (Unix seconds, precision in seconds: 60 or 1).
pub fn parse_task_time(s: &str) -> Option<(u64, u64)> {
    let b = s.as_bytes();
    if b.len() == 17 && b[16] == b'Z' {
        // 2015-11-23T15:10Z: the seconds form with `:00` inserted.
        let full = format!("{}:00Z", s.get(..16)?);
        return parse_iso8601(&full).map(|t| (t, 60));
    }
    if b.len() == 20 {
        return parse_iso8601(s).map(|t| (t, 1));
    }
    None
}

/// The creation-time window of DescribeTasks in Unix ms: `[start, end)`, where `EndTime` takes
/// in the whole minute (or second) it names, so that a task's printed `CreationTime` used as
/// both bounds finds it. Malformed values are `400 InvalidStartTime.Malformed` /
/// `InvalidEndTime.Malformed`.
fn time_window(call: &Call<'_>) -> Result<(u64, u64), EcsError> {
    let bound = |name: &str| -> Result<Option<(u64, u64)>, EcsError> {
        match call.params.get(name) {
            None | Some("") => Ok(None),
            Some(v) => parse_task_time(v).map(Some).ok_or_else(|| {
                EcsError::new(
                    400,
                    format!("Invalid{name}.Malformed"),
                    format!("The specified {name} is malformed: use UTC yyyy-MM-ddTHH:mm:ssZ (or yyyy-MM-ddTHH:mmZ)."),
                )
            }),
        }
    };
    let start = bound("StartTime")?.map_or(0, |(t, _)| t.saturating_mul(1000));
    let end = bound("EndTime")?.map_or(u64::MAX, |(t, precision)| {
        t.saturating_add(precision).saturating_mul(1000)
    });
    Ok((start, end))
}

fn task_json(t: &Task, now: u64) -> Value {
    let ph = t.phase(now);
    let support_cancel = matches!(ph.status, "Waiting" | "Processing");
    json!({
        "TaskId": t.task_id,
        "TaskAction": "ImportImage",
        "TaskStatus": ph.status,
        "SupportCancel": if support_cancel { "true" } else { "false" },
        "CreationTime": minutes(t.created_ms),
        "FinishedTime": ph.finished_ms.map(minutes).unwrap_or_default(),
        "ResourceId": t.image_id,
    })
}

/// DescribeTasks.
pub fn describe_tasks(call: &Call<'_>) -> Result<Value, EcsError> {
    let region = region(call)?;
    let (num, size) = page(call, 10)?;
    if let Some(a) = call.params.get("TaskAction").filter(|a| !a.is_empty()) {
        if ![
            "ImportImage",
            "ExportImage",
            "RedeployInstance",
            "ModifyDiskSpec",
            "ArchiveSnapshot",
        ]
        .contains(&a)
        {
            return Err(EcsError::new(
                400,
                "InvalidTaskAction.Malformed",
                "The specified TaskAction is not valid.",
            ));
        }
    }
    let ids: Option<Vec<String>> = call
        .params
        .get("TaskIds")
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    if ids.as_ref().is_some_and(|v| v.len() > MAX_TASK_IDS) {
        return Err(EcsError::invalid("TaskIds", "at most 100 ids"));
    }
    let (from_ms, until_ms) = time_window(call)?;
    let action = call.params.get("TaskAction").unwrap_or("");
    let status = call.params.get("TaskStatus").unwrap_or("");
    let now = unix_now_ms();
    let data = call.shared.ecs.lock();
    let mut tasks: Vec<&Task> = data
        .tasks
        .values()
        .filter(|t| t.region == region)
        .filter(|t| ids.as_ref().is_none_or(|v| v.contains(&t.task_id)))
        .filter(|t| (from_ms..until_ms).contains(&t.created_ms))
        .filter(|_| action.is_empty() || action == "ImportImage")
        .filter(|t| {
            !["Finished", "Processing", "Failed"].contains(&status) || t.phase(now).status == status
        })
        .collect();
    tasks.sort_by(|a, b| {
        b.created_ms
            .cmp(&a.created_ms)
            .then(a.task_id.cmp(&b.task_id))
    });
    let total = tasks.len();
    let page: Vec<Value> = slice(&tasks, num, size)
        .into_iter()
        .map(|t| task_json(t, now))
        .collect();
    Ok(json!({
        "RegionId": region,
        "PageNumber": num,
        "PageSize": size,
        "TotalCount": total,
        "TaskSet": { "Task": page },
    }))
}

fn find_task(call: &Call<'_>, region: &str) -> Result<Task, EcsError> {
    let id = call.params.required("TaskId")?;
    call.shared
        .ecs
        .lock()
        .tasks
        .get(id)
        .filter(|t| t.region == region)
        .cloned()
        .ok_or_else(|| {
            EcsError::new(
                400,
                "InvalidTaskId.NotFound",
                "The specified \"TaskId\" is not found.",
            )
        })
}

/// DescribeTaskAttribute.
pub fn describe_task_attribute(call: &Call<'_>) -> Result<Value, EcsError> {
    let region = region(call)?;
    let t = find_task(call, &region)?;
    let now = unix_now_ms();
    let ph = t.phase(now);
    let (op_status, code, msg) = match (ph.status, &t.failure) {
        ("Failed", Some((c, m))) => ("Failed", c.clone(), m.clone()),
        ("Finished", _) => ("Success", String::new(), String::new()),
        ("Cancelled", _) => (
            "Failed",
            "TaskCancelled".to_string(),
            "The task was cancelled.".to_string(),
        ),
        _ => ("Processing", String::new(), String::new()),
    };
    let disks = call
        .shared
        .ecs
        .lock()
        .images
        .get(&t.image_id)
        .map(|i| i.disks.clone())
        .unwrap_or_default();
    let items: Vec<Value> = disks
        .iter()
        .flat_map(|d| {
            vec![
                json!({"Name": "OSSBucket", "Value": d.bucket}),
                json!({"Name": "OSSObject", "Value": d.object}),
                json!({"Name": "ImageFormat", "Value": d.format.to_ascii_lowercase()}),
            ]
        })
        .collect();
    let done = matches!(op_status, "Success" | "Failed");
    let mut v = task_json(&t, now);
    if let Value::Object(m) = &mut v {
        m.insert("RegionId".into(), json!(region));
        m.insert("TaskProcess".into(), json!(format!("{}%", ph.progress)));
        m.insert("TotalCount".into(), json!(1));
        m.insert(
            "SuccessCount".into(),
            json!(u8::from(op_status == "Success")),
        );
        m.insert("FailedCount".into(), json!(u8::from(op_status == "Failed")));
        m.insert(
            "OperationProgressSet".into(),
            json!({"OperationProgress": [{
                "OperationStatus": if done { op_status } else { "Processing" },
                "ErrorCode": code,
                "ErrorMsg": msg,
                "RelatedItemSet": {"RelatedItem": items},
            }]}),
        );
    }
    Ok(v)
}

/// CancelTask: only Waiting/Processing import tasks; the image is removed.
pub fn cancel_task(call: &Call<'_>) -> Result<Value, EcsError> {
    let region = region(call)?;
    let t = find_task(call, &region)?;
    let now = unix_now_ms();
    if !matches!(t.phase(now).status, "Waiting" | "Processing") {
        return Err(EcsError::new(
            403,
            "InvalidTaskId.IncorrectTaskStatus",
            "The specified task status is invalid.",
        ));
    }
    let mut data = call.shared.ecs.lock();
    if let Some(task) = data.tasks.get_mut(&t.task_id) {
        task.cancelled_ms = Some(now);
    }
    data.images.remove(&t.image_id);
    let snap = data.clone();
    drop(data);
    call.shared.ecs.save(&snap);
    Ok(json!({}))
}

const IMAGE_STATUSES: &[&str] = &[
    "Creating",
    "Waiting",
    "Available",
    "UnAvailable",
    "CreateFailed",
    "Deprecated",
];

fn image_json(i: &Image, status: &str, progress: u64) -> Value {
    let size = i
        .disks
        .iter()
        .find(|d| d.index == 1)
        .map_or(0, |d| d.size_gib);
    let disks: Vec<Value> = i
        .disks
        .iter()
        .map(|d| {
            json!({
                "Device": format!("/dev/xvd{}", char::from(b'a' + u8::try_from(d.index.saturating_sub(1) % 26).unwrap_or(0))),
                "Type": if d.index == 1 { "system" } else { "data" },
                "Format": d.format,
                "ImportOSSBucket": d.bucket,
                "ImportOSSObject": d.object,
                "Progress": format!("{progress}%"),
                "RemainTime": 0,
                "Size": d.size_gib.to_string(),
                "SnapshotId": "",
            })
        })
        .collect();
    let tags: Vec<Value> = i
        .tags
        .iter()
        .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
        .collect();
    json!({
        "ImageId": i.image_id,
        "ImageName": i.name,
        "Description": i.description,
        "Status": status,
        "Progress": format!("{progress}%"),
        "Size": size,
        "CreationTime": seconds(i.created_ms),
        "OSType": i.os_type,
        "OSName": i.platform,
        "OSNameEn": i.platform,
        "Platform": i.platform,
        "Architecture": i.architecture,
        "BootMode": i.boot_mode,
        "LicenseType": i.license_type,
        "IsSupportCloudinit": true,
        "IsSupportIoOptimized": true,
        "Usage": "none",
        "ImageOwnerAlias": "self",
        "ImageOwnerId": ACCOUNT_ID,
        "IsSelfShared": if i.shared_with.is_empty() { "" } else { "True" },
        "IsCopied": i.copied_from.is_some(),
        "Tags": {"Tag": tags},
        "Features": {"NvmeSupport": i.nvme_support, "ImdsSupport": i.imds_support},
        "DetectionOptions": {"Status": if i.detection_strategy.is_empty() { "" } else if status == "Available" { "Finished" } else { "Processing" }, "Items": {"Item": []}},
        "DiskDeviceMappings": {"DiskDeviceMapping": disks},
    })
}

/// DescribeImages (`Status` defaults to `Available`).
pub fn describe_images(call: &Call<'_>) -> Result<Value, EcsError> {
    let region = region(call)?;
    let (num, size) = page(call, 10)?;
    let statuses: Vec<String> = match call.params.get("Status").filter(|s| !s.is_empty()) {
        None => vec!["Available".into()],
        Some(s) => {
            let v: Vec<String> = s.split(',').map(|x| x.trim().to_string()).collect();
            if v.iter()
                .any(|x| x != "ALL" && !IMAGE_STATUSES.contains(&x.as_str()))
            {
                return Err(EcsError::new(
                    400,
                    "InvalidStatus.ValueNotSupported",
                    "The specified Status is not supported.",
                ));
            }
            v
        }
    };
    let all = statuses.iter().any(|s| s == "ALL");
    let ids: Option<Vec<String>> = call
        .params
        .get("ImageId")
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let name = call.params.get("ImageName").filter(|s| !s.is_empty());
    let owner = call.params.get("ImageOwnerAlias").filter(|s| !s.is_empty());
    let os_type = call.params.get("OSType").filter(|s| !s.is_empty());
    let arch = call.params.get("Architecture").filter(|s| !s.is_empty());
    let now = unix_now_ms();
    let data = call.shared.ecs.lock();
    let mut found: Vec<Value> = Vec::new();
    let mut images: Vec<&Image> = data
        .images
        .values()
        .filter(|i| i.region == region)
        .collect();
    images.sort_by(|a, b| {
        b.created_ms
            .cmp(&a.created_ms)
            .then(a.image_id.cmp(&b.image_id))
    });
    for i in images {
        let Some((status, progress)) = i.state(&data.tasks, now) else {
            continue;
        };
        let keep = (all || statuses.iter().any(|s| s == status))
            && ids.as_ref().is_none_or(|v| v.contains(&i.image_id))
            && name.is_none_or(|n| n == i.name)
            && owner.is_none_or(|o| o == "self")
            && os_type.is_none_or(|o| o == i.os_type)
            && arch.is_none_or(|a| a == i.architecture);
        if keep {
            found.push(image_json(i, status, progress));
        }
    }
    let total = found.len();
    Ok(json!({
        "RegionId": region,
        "PageNumber": num,
        "PageSize": size,
        "TotalCount": total,
        "Images": {"Image": slice(&found, num, size)},
    }))
}

/// DescribeRegions.
pub fn describe_regions(call: &Call<'_>) -> Result<Value, EcsError> {
    if let Some(lang) = call.params.get("AcceptLanguage").filter(|s| !s.is_empty()) {
        if !["zh-CN", "en-US", "ja"].contains(&lang) {
            return Err(EcsError::invalid(
                "AcceptLanguage",
                "must be zh-CN, en-US or ja",
            ));
        }
    }
    let mut regions: Vec<String> = REGIONS.iter().map(|s| s.to_string()).collect();
    for b in &call.shared.config.buckets {
        if !regions.contains(&b.region) {
            regions.push(b.region.clone());
        }
    }
    let list: Vec<Value> = regions
        .iter()
        .filter(|r| known_region(call, r))
        .map(|r| json!({"RegionId": r, "LocalName": r, "RegionEndpoint": format!("ecs.{r}.aliyuncs.com"), "Status": "available"}))
        .collect();
    Ok(json!({"Regions": {"Region": list}}))
}

fn role_name(call: &Call<'_>) -> Result<String, EcsError> {
    let name = call.params.required("RoleName")?;
    if name.chars().count() > 64 {
        return Err(EcsError::new(
            400,
            "InvalidParameter.RoleName.InvalidLength",
            "The parameter RoleName is longer than 64 characters.",
        ));
    }
    let exists = call.shared.config.import_role && name == DEFAULT_ROLE;
    if !exists {
        return Err(EcsError::new(
            404,
            "EntityNotExist.Role",
            format!("The role not exists: acs:ram::{ACCOUNT_ID}:role/{name}."),
        ));
    }
    Ok(name.to_string())
}

/// RAM GetRole: the import role if configured, else `EntityNotExist.Role`.
pub fn get_role(call: &Call<'_>) -> Result<Value, EcsError> {
    let name = role_name(call)?;
    let policy = "{\"Statement\":[{\"Action\":\"sts:AssumeRole\",\"Effect\":\"Allow\",\"Principal\":{\"Service\":[\"ecs.aliyuncs.com\"]}}],\"Version\":\"1\"}";
    Ok(json!({"Role": {
        "RoleId": "300000000000000001",
        "RoleName": name,
        "Arn": format!("acs:ram::{ACCOUNT_ID}:role/{}", name.to_ascii_lowercase()),
        "Description": "Default role for ECS image import",
        "AssumeRolePolicyDocument": policy,
        "CreateDate": "2024-01-01T00:00:00Z",
        "UpdateDate": "2024-01-01T00:00:00Z",
        "MaxSessionDuration": 3600,
        "IsServiceLinkedRole": false,
    }}))
}

/// RAM ListPoliciesForRole.
pub fn list_policies_for_role(call: &Call<'_>) -> Result<Value, EcsError> {
    role_name(call)?;
    Ok(json!({"Policies": {"Policy": [{
        "PolicyName": "AliyunECSImageImportRolePolicy",
        "PolicyType": "System",
        "Description": "Policy for the ECS image import role",
        "DefaultVersion": "v1",
        "AttachDate": "2024-01-01T00:00:00Z",
    }]}}))
}

/// Shortest and longest AssumeRole session, seconds (STS: 900 to the role's maximum, 3600
/// for the emulated roles).
pub const STS_DURATION: (u64, u64) = (900, 3600);

/// STS AssumeRole: for a role of this account (`acs:ram::<account>:role/<name>`), a
/// temporary key `STS.…` with a security token, accepted by OSS, ECS and RAM until it
/// expires.
pub fn assume_role(call: &Call<'_>) -> Result<Value, EcsError> {
    let p = call.params;
    let arn = p.required("RoleArn")?;
    let session = p.required("RoleSessionName")?;
    let role = arn
        .strip_prefix(&format!("acs:ram::{ACCOUNT_ID}:role/"))
        .filter(|r| !r.is_empty() && !r.contains('/'))
        .ok_or_else(|| EcsError::invalid("RoleArn", "not a role of this account"))?;
    if !(2..=64).contains(&session.len())
        || !session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
    {
        return Err(EcsError::invalid(
            "RoleSessionName",
            "2 to 64 of letters, digits and . _ @ -",
        ));
    }
    let duration = match p.get("DurationSeconds") {
        None | Some("") => STS_DURATION.1,
        Some(d) => d
            .parse::<u64>()
            .ok()
            .filter(|d| (STS_DURATION.0..=STS_DURATION.1).contains(d))
            .ok_or_else(|| EcsError::invalid("DurationSeconds", "900 to 3600"))?,
    };
    let now = crate::util::unix_now();
    let key = crate::config::AccessKey {
        id: format!("STS.{}", random_alnum(24)),
        secret: random_alnum(40),
        security_token: Some(format!("CAIS{}", random_alnum(96))),
        deny: Vec::new(),
    };
    let expiry = now + duration;
    call.shared.issue(key.clone(), expiry);
    Ok(json!({
        "AssumedRoleUser": {
            "Arn": format!("acs:ram::{ACCOUNT_ID}:role/{}/{session}", role.to_ascii_lowercase()),
            "AssumedRoleId": format!("300000000000000002:{session}"),
        },
        "Credentials": {
            "AccessKeyId": key.id,
            "AccessKeySecret": key.secret,
            "SecurityToken": key.security_token,
            "Expiration": Utc::from_unix(expiry).iso8601(),
        },
    }))
}

/// STS AssumeRoleWithOIDC (anonymous): a role of this account, an OIDC provider of this
/// account (`acs:ram::<account>:oidc-provider/<name>`) and a token shaped like a JWT (three
/// base64url parts) give temporary keys, as [`assume_role`] does.
pub fn assume_role_with_oidc(call: &Call<'_>) -> Result<Value, EcsError> {
    let p = call.params;
    let provider = p.required("OIDCProviderArn")?;
    provider
        .strip_prefix(&format!("acs:ram::{ACCOUNT_ID}:oidc-provider/"))
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| {
            EcsError::invalid("OIDCProviderArn", "not an OIDC provider of this account")
        })?;
    let token = p.required("OIDCToken")?;
    let jwt = token.split('.').count() == 3
        && token.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !jwt {
        return Err(EcsError::new(
            400,
            "AuthenticationFail.OIDCToken.Invalid",
            "The specified OIDCToken is invalid.",
        ));
    }
    assume_role(call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_times() {
        // 2015-11-23T15:10:00Z = 1448291400.
        assert_eq!(
            parse_task_time("2015-11-23T15:10Z"),
            Some((1_448_291_400, 60))
        );
        assert_eq!(
            parse_task_time("2015-11-23T15:10:00Z"),
            Some((1_448_291_400, 1))
        );
        assert_eq!(
            parse_task_time("2015-11-23T15:10:07Z"),
            Some((1_448_291_407, 1))
        );
        for bad in [
            "",
            "yesterday",
            "2015-11-23",
            "2015-11-23T15Z",
            "2015-11-23 15:10Z",
            "2015-11-23T15:10",
            "2015-11-23T15:10:00",
            "2015-11-23T15:10:00.5Z",
            "2015-11-23T15:10+08:00",
            "2015-11-23T15:10:00+08:00",
            "2015-13-23T15:10Z",
            "2015-11-23T24:10Z",
            "2015-11-23T15:60:00Z",
            "20151123T151000Z",
        ] {
            assert_eq!(parse_task_time(bad), None, "{bad}");
        }
    }
}
