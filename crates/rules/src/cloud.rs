//! Rules that need the cloud: bucket, object, RAM role, image name. The
//! facts are gathered by the upload and import code (this crate does no
//! I/O); [`evaluate_cloud`] turns them into findings before any byte is
//! sent.

use crate::plan::Plan;
use crate::ScopedFinding;
use preflight_report::{Finding, Rule, Severity};
use serde::{Deserialize, Serialize};

/// The role ECS assumes when `RoleName` is not given.
pub const DEFAULT_ROLE: &str = "AliyunECSImageImportDefaultRole";
/// The role ECS assumes for an import from OSS on CloudBox.
pub const DEFAULT_CLOUDBOX_ROLE: &str = "AliyunECSCloudBoxImageImportDefaultRole";

/// The system policy of [`DEFAULT_ROLE`].
pub const DEFAULT_ROLE_POLICY: &str = "AliyunECSImageImportRolePolicy";
/// The system policy of [`DEFAULT_CLOUDBOX_ROLE`].
pub const CLOUDBOX_ROLE_POLICY: &str = "AliyunECSCloudBoxImageImportRolePolicy";

/// The RAM role ECS assumes for `plan`, and the system policy it needs:
/// `RoleName` if given, else the default for where the image is. Seed 004:
/// "Import an image file by using CloudBox: ... Create a role named
/// AliyunECSCloudBoxImageImportDefaultRole"; "Attach the system policy
/// AliyunECSCloudBoxImageImportRolePolicy to the role".
pub fn import_role(plan: &Plan) -> (&str, &'static str) {
    let cloudbox = plan.storage_location_arn.is_some();
    let (default, policy) = if cloudbox {
        (DEFAULT_CLOUDBOX_ROLE, CLOUDBOX_ROLE_POLICY)
    } else {
        (DEFAULT_ROLE, DEFAULT_ROLE_POLICY)
    };
    (plan.role_name.as_deref().unwrap_or(default), policy)
}

/// OSS storage classes whose objects must be restored before reading.
const COLD_CLASSES: &[&str] = &["Archive", "ColdArchive", "DeepColdArchive"];

/// The bucket does not exist.
pub static BUCKET_NOT_FOUND: Rule = Rule::new(
    "InvalidOSSBucket.NotFound",
    Severity::Error,
    "The OSS bucket does not exist",
    "Create the bucket in the import region (or fix --bucket) before uploading.",
);

/// The bucket is in another region than the import.
pub static BUCKET_REGION: Rule = Rule::new(
    "InvalidOSSBucket.NotMatched",
    Severity::Error,
    "The OSS bucket must be in the same region as the import",
    "Pass --region equal to the bucket's region, or use a bucket in the import region.",
);

/// The bucket has server-side encryption.
pub static BUCKET_ENCRYPTED: Rule = Rule::new(
    "InvalidOSSBucket.EncryptUnsupported",
    Severity::Error,
    "ECS cannot read objects from a bucket with server-side encryption",
    "Use a bucket without default server-side encryption for the image.",
);

/// The object does not exist.
pub static OBJECT_NOT_FOUND: Rule = Rule::new(
    "InvalidOSSObject.NotFound",
    Severity::Error,
    "The OSS object does not exist",
    "Upload the image first, or fix --object.",
);

/// The object is empty.
pub static OBJECT_EMPTY: Rule = Rule::new(
    "InvalidOSSObject.Size",
    Severity::Error,
    "The OSS object is empty",
    "Upload the image again: the object has no data.",
);

/// The object is in a cold storage class and not restored.
pub static OBJECT_NEEDS_RESTORE: Rule = Rule::new(
    "InvalidOSSObject.NeedRestore",
    Severity::Error,
    "The OSS object is Archive or Cold Archive and must be restored first",
    "Restore the object (RestoreObject) and wait for it, or upload the image again as Standard.",
);

/// The import role does not exist.
pub static ROLE_MISSING: Rule = Rule::new(
    "NoSetRoletoECSServiceAcount",
    Severity::Error,
    "ECS has no RAM role to read the bucket (AliyunECSImageImportDefaultRole with AliyunECSImageImportRolePolicy)",
    "Authorise ECS once in the RAM console (Cloud resource access authorization), or create AliyunECSImageImportDefaultRole trusted by ecs.aliyuncs.com with the policy AliyunECSImageImportRolePolicy.",
);

/// The CloudBox import role does not exist.
pub static CLOUDBOX_ROLE_MISSING: Rule = Rule::new(
    "InvalidOperation.CloudBoxImageImportRoleRequired",
    Severity::Error,
    "ECS has no RAM role to read OSS on CloudBox (AliyunECSCloudBoxImageImportDefaultRole)",
    "Create AliyunECSCloudBoxImageImportDefaultRole trusted by ecs.aliyuncs.com with the policy AliyunECSCloudBoxImageImportRolePolicy.",
);

/// An image with this name exists in the region.
pub static IMAGE_NAME_TAKEN: Rule = Rule::new(
    "InvalidImageName.Duplicated",
    Severity::Error,
    "An image with this name already exists in the region",
    "Choose another --image-name, or delete the existing image.",
);

/// A cloud-side fact could not be looked up (the caller may not ask): the
/// verdict on it is incomplete.
pub static CLOUD_NOT_VERIFIED: Rule = Rule::new(
    "CLOUD.NotVerified",
    Severity::Warning,
    "A cloud-side fact could not be verified (permission denied): that part of the verdict is incomplete",
    "Grant the permission named in the message (see the README's RAM permissions) to have it checked.",
);

/// What the cloud said. Every fact is optional: what was not looked up is
/// not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudFacts {
    /// The buckets the plan names (GetBucketInfo / GetBucketLocation).
    pub buckets: Vec<BucketFacts>,
    /// The objects the plan names (HeadObject); empty before the upload.
    pub objects: Vec<ObjectFacts>,
    /// Whether the import role exists (RAM GetRole).
    pub role_exists: Option<bool>,
    /// Whether an image named `ImageName` exists in the region
    /// (DescribeImages).
    pub image_name_taken: Option<bool>,
    /// What could not be looked up, one sentence each (a denied optional
    /// probe); each becomes a `CLOUD.NotVerified` warning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_verified: Vec<String>,
}

/// One bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketFacts {
    /// The bucket name.
    pub name: String,
    /// Whether it exists.
    pub exists: bool,
    /// Its region, as a region id (`cn-hangzhou`) or as OSS reports its
    /// location (`oss-cn-hangzhou`).
    pub region: Option<String>,
    /// Whether default server-side encryption is on.
    pub encrypted: Option<bool>,
    /// The default storage class of new objects (`Standard`, `Archive`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}

/// One object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectFacts {
    /// The bucket it is in.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// Whether it exists.
    pub exists: bool,
    /// Its size in bytes.
    pub size: Option<u64>,
    /// Its storage class (`Standard`, `IA`, `Archive`, `ColdArchive`,
    /// `DeepColdArchive`).
    pub storage_class: Option<String>,
    /// For a cold object: whether a restored copy is readable now.
    pub restored: Option<bool>,
}

/// Checks the plan against what the cloud said. Bucket findings are
/// attributed to the first disk using the bucket, object findings to their
/// disk (`disk` set, `path` absent: the plan does not know the local
/// paths); role and image-name findings to the request.
pub fn evaluate_cloud(plan: &Plan, cloud: &CloudFacts) -> Vec<ScopedFinding> {
    let mut out = Vec::new();
    let mut seen_buckets: Vec<&str> = Vec::new();
    for (index, mapping) in plan.disk_device_mappings.iter().enumerate() {
        let on_disk = |finding: Finding| ScopedFinding {
            disk: Some(index),
            path: None,
            finding,
        };
        let Some(bucket) = mapping.oss_bucket.as_deref() else {
            continue;
        };
        if !seen_buckets.contains(&bucket) {
            seen_buckets.push(bucket);
            if let Some(facts) = cloud.buckets.iter().find(|b| b.name == bucket) {
                out.extend(
                    check_bucket(facts, plan.region_id.as_deref())
                        .into_iter()
                        .map(on_disk),
                );
            }
        }
        let Some(key) = mapping.oss_object.as_deref() else {
            continue;
        };
        if let Some(facts) = cloud
            .objects
            .iter()
            .find(|o| o.bucket == bucket && o.key == key)
        {
            out.extend(check_object(facts).map(on_disk));
        }
    }
    let request = |finding: Finding| ScopedFinding {
        disk: None,
        path: None,
        finding,
    };
    if cloud.role_exists == Some(false) {
        let (role, _) = import_role(plan);
        let finding = if plan.storage_location_arn.is_some() {
            CLOUDBOX_ROLE_MISSING.finding(format!("RAM role {role:?} does not exist"))
        } else {
            ROLE_MISSING.finding(format!("RAM role {role:?} does not exist"))
        };
        out.push(request(finding));
    }
    for what in &cloud.not_verified {
        out.push(request(CLOUD_NOT_VERIFIED.finding(what.clone())));
    }
    if cloud.image_name_taken == Some(true) {
        let name = plan.image_name.as_deref().unwrap_or_default();
        let region = plan.region_id.as_deref().unwrap_or("the region");
        out.push(request(IMAGE_NAME_TAKEN.finding(format!(
            "an image named {name:?} already exists in {region}"
        ))));
    }
    out
}

fn check_bucket(b: &BucketFacts, region: Option<&str>) -> Vec<Finding> {
    if !b.exists {
        return vec![BUCKET_NOT_FOUND.finding(format!("bucket {:?} does not exist", b.name))];
    }
    let mut out = Vec::new();
    if let (Some(theirs), Some(ours)) = (b.region.as_deref(), region) {
        let theirs = theirs.strip_prefix("oss-").unwrap_or(theirs);
        if theirs != ours {
            out.push(BUCKET_REGION.finding(format!(
                "bucket {:?} is in {theirs} but the import is in {ours}",
                b.name
            )));
        }
    }
    if b.encrypted == Some(true) {
        out.push(
            BUCKET_ENCRYPTED.finding(format!("bucket {:?} has server-side encryption", b.name)),
        );
    }
    out
}

fn check_object(o: &ObjectFacts) -> Option<Finding> {
    let name = format!("object {:?} in bucket {:?}", o.key, o.bucket);
    if !o.exists {
        return Some(OBJECT_NOT_FOUND.finding(format!("{name} does not exist")));
    }
    if o.size == Some(0) {
        return Some(OBJECT_EMPTY.finding(format!("{name} is 0 bytes long")));
    }
    match o.storage_class.as_deref() {
        Some(class) if COLD_CLASSES.contains(&class) && o.restored != Some(true) => {
            Some(OBJECT_NEEDS_RESTORE.finding(format!(
                "{name} is in storage class {class} and not restored"
            )))
        }
        _ => None,
    }
}
