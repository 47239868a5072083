//! One method per API: ImportImage, DescribeTasks, DescribeTaskAttribute, DescribeImages,
//! CancelTask, DescribeRegions, CopyImage, ModifyImageSharePermission,
//! DescribeImageSharePermission (ECS) and GetRole (RAM), with typed answers.

use serde::Serialize;
use serde_json::Value;

use crate::client::{Client, Service};
use crate::error::{Error, Result};

/// Every image status, for DescribeImages: without an explicit filter the API shows only
/// `Available` images, and an image being imported is invisible.
pub const ALL_IMAGE_STATUSES: &[&str] = &[
    "Creating",
    "Waiting",
    "Available",
    "CreateFailed",
    "UnAvailable",
];

/// The ImportImage request this client sends, each field one API parameter in snake_case.
/// A `None` is not sent (the API applies its default). The rules crate plans it;
/// the pipeline maps that plan onto this type, so this client knows no rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportImageRequest {
    /// `RegionId`.
    pub region_id: Option<String>,
    /// `ImageName`.
    pub image_name: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `Architecture`.
    pub architecture: Option<String>,
    /// `OSType`.
    pub os_type: Option<String>,
    /// `Platform`.
    pub platform: Option<String>,
    /// `BootMode`.
    pub boot_mode: Option<String>,
    /// `LicenseType`.
    pub license_type: Option<String>,
    /// `Tag.N`, in order.
    pub tags: Vec<ImportTag>,
    /// `Features`.
    pub features: Option<ImportFeatures>,
    /// `ClientToken`.
    pub client_token: Option<String>,
    /// `ResourceGroupId`.
    pub resource_group_id: Option<String>,
    /// `RoleName`.
    pub role_name: Option<String>,
    /// `DetectionStrategy`.
    pub detection_strategy: Option<String>,
    /// `StorageLocationArn`.
    pub storage_location_arn: Option<String>,
    /// `DiskDeviceMapping.N`, N = index + 1: the first is the system disk.
    pub disk_device_mappings: Vec<ImportDisk>,
}

/// One `Tag.N` of an ImportImage request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportTag {
    /// `Tag.N.Key`.
    pub key: String,
    /// `Tag.N.Value` (sent even when empty).
    pub value: String,
}

/// `Features` of an ImportImage request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportFeatures {
    /// `Features.NvmeSupport`.
    pub nvme_support: Option<String>,
    /// `Features.ImdsSupport`.
    pub imds_support: Option<String>,
}

/// One `DiskDeviceMapping.N` of an ImportImage request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportDisk {
    /// `Format` (`RAW`, `QCOW2`, `VHD`, `VMDK`).
    pub format: Option<String>,
    /// `OSSBucket`.
    pub oss_bucket: Option<String>,
    /// `OSSObject`.
    pub oss_object: Option<String>,
    /// `DiskImageSize` in GiB.
    pub disk_image_size: Option<u64>,
}

/// Extras of an ImportImage call that are not part of the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// `DryRun=true`: the API validates and answers `DryRunOperation`.
    pub dry_run: bool,
}

/// The ImportImage parameters of a request, flattened exactly as the official SDK flattens its
/// request model (`DiskDeviceMapping.1.OSSBucket`, `Tag.1.Key`, `Features.NvmeSupport`…);
/// absent values are not sent, empty tag values are.
pub fn import_image_params(
    plan: &ImportImageRequest,
    options: &ImportOptions,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: String, v: Option<&String>| {
        if let Some(v) = v {
            out.push((k, v.clone()));
        }
    };
    put("RegionId".into(), plan.region_id.as_ref());
    put("ImageName".into(), plan.image_name.as_ref());
    put("Description".into(), plan.description.as_ref());
    put("Architecture".into(), plan.architecture.as_ref());
    put("OSType".into(), plan.os_type.as_ref());
    put("Platform".into(), plan.platform.as_ref());
    put("BootMode".into(), plan.boot_mode.as_ref());
    put("LicenseType".into(), plan.license_type.as_ref());
    put("ClientToken".into(), plan.client_token.as_ref());
    put("ResourceGroupId".into(), plan.resource_group_id.as_ref());
    put("RoleName".into(), plan.role_name.as_ref());
    put("DetectionStrategy".into(), plan.detection_strategy.as_ref());
    put(
        "StorageLocationArn".into(),
        plan.storage_location_arn.as_ref(),
    );
    if let Some(f) = &plan.features {
        put("Features.NvmeSupport".into(), f.nvme_support.as_ref());
        put("Features.ImdsSupport".into(), f.imds_support.as_ref());
    }
    for (i, t) in plan.tags.iter().enumerate() {
        let n = i + 1;
        put(format!("Tag.{n}.Key"), Some(&t.key));
        put(format!("Tag.{n}.Value"), Some(&t.value));
    }
    for (i, d) in plan.disk_device_mappings.iter().enumerate() {
        let n = i + 1;
        put(format!("DiskDeviceMapping.{n}.Format"), d.format.as_ref());
        put(
            format!("DiskDeviceMapping.{n}.OSSBucket"),
            d.oss_bucket.as_ref(),
        );
        put(
            format!("DiskDeviceMapping.{n}.OSSObject"),
            d.oss_object.as_ref(),
        );
        put(
            format!("DiskDeviceMapping.{n}.DiskImageSize"),
            d.disk_image_size.map(|s| s.to_string()).as_ref(),
        );
    }
    if options.dry_run {
        out.push(("DryRun".into(), "true".into()));
    }
    out
}

/// A ClientToken for a request: a digest of the objects' ETags and every ImportImage parameter
/// (the request's own token excluded), so the same objects and parameters give the same token —
/// a rerun returns the same image — and any change gives a new one. 44 ASCII characters (the
/// API allows 64).
pub fn client_token(plan: &ImportImageRequest, etags: &[String]) -> String {
    client_token_after(plan, etags, None)
}

/// The ClientToken for a rerun after the import `failed_task` failed or was cancelled: the
/// token of [`client_token`] salted with that task's id. ECS answers a reused token with the
/// earlier (dead) task, so a new attempt needs a new token; salting with the dead task's id
/// keeps it a pure function of what happened, so a rerun of the rerun finds the same task.
pub fn client_token_after(
    plan: &ImportImageRequest,
    etags: &[String],
    failed_task: Option<&str>,
) -> String {
    use sha2::Digest as _;
    let mut p = plan.clone();
    p.client_token = None;
    let mut params = import_image_params(&p, &ImportOptions::default());
    params.sort();
    let mut h = sha2::Sha256::new();
    for e in etags {
        h.update(e.trim_matches('"').as_bytes());
        h.update([0]);
    }
    for (k, v) in params {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    if let Some(t) = failed_task {
        h.update(b"after-failed-task\0");
        h.update(t.as_bytes());
    }
    let digest = hex::encode(h.finalize());
    format!("epf-{}", &digest[..40])
}

/// Most `AddAccount.N` of one ModifyImageSharePermission call (N is 1 to 10).
pub const MAX_SHARE_ACCOUNTS_PER_CALL: usize = 10;

/// What a CopyImage creates in the destination region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyImageRequest {
    /// `DestinationRegionId`.
    pub destination_region: String,
    /// `DestinationImageName` (absent: ECS names the copy).
    pub name: Option<String>,
    /// `DestinationDescription`.
    pub description: Option<String>,
    /// `Tag.N.Key` / `Tag.N.Value` of the copy: tags are not copied on their own.
    pub tags: Vec<(String, String)>,
    /// `ClientToken`: the same token answers with the same copy.
    pub client_token: Option<String>,
}

/// The CopyImage parameters, flattened as the official SDK flattens them.
pub fn copy_image_params(
    source_region: &str,
    image_id: &str,
    r: &CopyImageRequest,
) -> Vec<(String, String)> {
    let mut p = vec![
        ("RegionId".to_string(), source_region.to_string()),
        ("ImageId".to_string(), image_id.to_string()),
        (
            "DestinationRegionId".to_string(),
            r.destination_region.clone(),
        ),
    ];
    if let Some(n) = &r.name {
        p.push(("DestinationImageName".into(), n.clone()));
    }
    if let Some(d) = &r.description {
        p.push(("DestinationDescription".into(), d.clone()));
    }
    for (i, (k, v)) in r.tags.iter().enumerate() {
        p.push((format!("Tag.{}.Key", i + 1), k.clone()));
        p.push((format!("Tag.{}.Value", i + 1), v.clone()));
    }
    if let Some(t) = &r.client_token {
        p.push(("ClientToken".into(), t.clone()));
    }
    p
}

/// The ClientToken of a copy: a digest of the source image and the copy's parameters, so a
/// rerun asks for the same copy and ECS answers with the one it already made.
pub fn copy_client_token(image_id: &str, r: &CopyImageRequest) -> String {
    copy_client_token_after(image_id, r, None)
}

/// The ClientToken of a copy made again after the copy `dead_copy` was cancelled or failed:
/// [`copy_client_token`] salted with the dead copy's id. ECS answers a reused token with the
/// dead copy, so a new copy needs a new token; salting with its id keeps the token a pure
/// function of what happened, so a rerun of the rerun finds the same copy.
pub fn copy_client_token_after(
    image_id: &str,
    r: &CopyImageRequest,
    dead_copy: Option<&str>,
) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    let mut params = copy_image_params(
        "",
        image_id,
        &CopyImageRequest {
            client_token: None,
            ..r.clone()
        },
    );
    params.sort();
    for (k, v) in params {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    if let Some(d) = dead_copy {
        h.update(b"after-dead-copy\0");
        h.update(d.as_bytes());
    }
    format!("epf-copy-{}", &hex::encode(h.finalize())[..40])
}

/// What ImportImage answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ImportOutcome {
    /// The import started (or, for a repeated ClientToken, had started).
    Started(ImportImageResult),
    /// `DryRun=true` and the request passed validation (`DryRunOperation`).
    DryRunPassed {
        /// `RequestId`.
        request_id: String,
    },
}

/// ImportImage's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportImageResult {
    /// The new image (`m-…`).
    pub image_id: String,
    /// The import task (`t-…`).
    pub task_id: String,
    /// The region.
    pub region_id: String,
    /// `RequestId`.
    pub request_id: String,
}

/// One task of DescribeTasks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Task {
    /// `TaskId`.
    pub task_id: String,
    /// `TaskAction` (`ImportImage`).
    pub task_action: String,
    /// `TaskStatus`: `Waiting`, `Processing`, `Finished`, `Failed`, `Cancelled`…
    pub task_status: String,
    /// `SupportCancel` (string or boolean in the answer).
    pub support_cancel: bool,
    /// `CreationTime`.
    pub creation_time: String,
    /// `FinishedTime` (empty while running).
    pub finished_time: String,
    /// `ResourceId` (the image, for an import).
    pub resource_id: String,
}

/// One `OperationProgress` of DescribeTaskAttribute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OperationProgress {
    /// `OperationStatus`: `Processing`, `Success`, `Failed`.
    pub status: String,
    /// `ErrorCode` (empty unless failed).
    pub error_code: String,
    /// `ErrorMsg`.
    pub error_msg: String,
    /// `RelatedItemSet.RelatedItem` as `(Name, Value)` pairs (an import names its image).
    pub related: Vec<(String, String)>,
}

/// DescribeTaskAttribute's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TaskAttribute {
    /// The task's common fields.
    pub task: Task,
    /// `TaskProcess`, a percentage such as `"40%"`.
    pub task_process: String,
    /// `OperationProgressSet.OperationProgress`.
    pub operations: Vec<OperationProgress>,
}

impl TaskAttribute {
    /// The image the task makes: its `ResourceId`, else a related item named `ImageId`.
    pub fn image_id(&self) -> Option<String> {
        if !self.task.resource_id.is_empty() {
            return Some(self.task.resource_id.clone());
        }
        self.operations
            .iter()
            .flat_map(|o| o.related.iter())
            .find(|(name, value)| name.eq_ignore_ascii_case("ImageId") && !value.is_empty())
            .map(|(_, value)| value.clone())
    }

    /// `(code, message)` of the first failed operation, if any.
    pub fn failure(&self) -> Option<(String, String)> {
        self.operations
            .iter()
            .find(|o| o.status == "Failed" || !o.error_code.is_empty())
            .map(|o| (o.error_code.clone(), o.error_msg.clone()))
    }
}

/// One `DiskDeviceMapping` of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageDisk {
    /// `Device`.
    pub device: String,
    /// `Type`: `system` or `data`.
    pub disk_type: String,
    /// `Format`.
    pub format: String,
    /// `ImportOSSBucket`.
    pub import_oss_bucket: String,
    /// `ImportOSSObject`.
    pub import_oss_object: String,
    /// `Size`, GiB.
    pub size: String,
}

/// One image of DescribeImages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Image {
    /// `ImageId`.
    pub image_id: String,
    /// `ImageName`.
    pub image_name: String,
    /// `Status`: `Waiting`, `Creating`, `Available`, `CreateFailed`, `UnAvailable`…
    pub status: String,
    /// `Progress`, e.g. `"100%"`.
    pub progress: String,
    /// `Size`, GiB.
    pub size: String,
    /// `OSType`.
    pub os_type: String,
    /// `Platform`.
    pub platform: String,
    /// `Architecture`.
    pub architecture: String,
    /// `BootMode`.
    pub boot_mode: String,
    /// `CreationTime`.
    pub creation_time: String,
    /// `DiskDeviceMappings.DiskDeviceMapping`.
    pub disk_device_mappings: Vec<ImageDisk>,
    /// `Tags.Tag` as (key, value).
    pub tags: Vec<(String, String)>,
}

/// DescribeImages filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeImagesQuery {
    /// `ImageId` (comma-separated list).
    pub image_id: Option<String>,
    /// `ImageName`.
    pub image_name: Option<String>,
    /// `Status`, always sent: empty means [`ALL_IMAGE_STATUSES`].
    pub statuses: Vec<String>,
}

/// DescribeTasks filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeTasksQuery {
    /// `TaskIds`.
    pub task_ids: Vec<String>,
    /// `TaskAction` (`ImportImage`).
    pub task_action: Option<String>,
    /// `TaskStatus`.
    pub task_status: Option<String>,
}

/// RAM role (GetRole).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Role {
    /// `RoleName`.
    pub role_name: String,
    /// `Arn`.
    pub arn: String,
    /// `AssumeRolePolicyDocument` (a JSON string).
    pub assume_role_policy_document: String,
}

impl Role {
    /// Whether the trust policy lets ECS (`ecs.aliyuncs.com`) assume the role.
    pub fn trusts_ecs(&self) -> bool {
        self.assume_role_policy_document
            .contains("ecs.aliyuncs.com")
    }
}

/// A region of DescribeRegions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Region {
    /// `RegionId`.
    pub region_id: String,
    /// `RegionEndpoint`.
    pub region_endpoint: String,
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn truthy(v: &Value, key: &str) -> bool {
    match v.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(x)) => x.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// `v[outer][inner]` as a list (absent or a single object tolerated).
fn list<'a>(v: &'a Value, outer: &str, inner: &str) -> Vec<&'a Value> {
    match v.get(outer).and_then(|o| o.get(inner)) {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => Vec::new(),
    }
}

fn task_of(v: &Value) -> Task {
    Task {
        task_id: s(v, "TaskId"),
        task_action: s(v, "TaskAction"),
        task_status: s(v, "TaskStatus"),
        support_cancel: truthy(v, "SupportCancel"),
        creation_time: s(v, "CreationTime"),
        finished_time: s(v, "FinishedTime"),
        resource_id: s(v, "ResourceId"),
    }
}

fn image_of(v: &Value) -> Image {
    Image {
        image_id: s(v, "ImageId"),
        image_name: s(v, "ImageName"),
        status: s(v, "Status"),
        progress: s(v, "Progress"),
        size: s(v, "Size"),
        os_type: s(v, "OSType"),
        platform: s(v, "Platform"),
        architecture: s(v, "Architecture"),
        boot_mode: s(v, "BootMode"),
        creation_time: s(v, "CreationTime"),
        disk_device_mappings: list(v, "DiskDeviceMappings", "DiskDeviceMapping")
            .into_iter()
            .map(|d| ImageDisk {
                device: s(d, "Device"),
                disk_type: s(d, "Type"),
                format: s(d, "Format"),
                import_oss_bucket: s(d, "ImportOSSBucket"),
                import_oss_object: s(d, "ImportOSSObject"),
                size: s(d, "Size"),
            })
            .collect(),
        tags: list(v, "Tags", "Tag")
            .into_iter()
            .map(|t| (s(t, "TagKey"), s(t, "TagValue")))
            .collect(),
    }
}

fn pairs(items: &[(&str, String)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

impl Client {
    /// ImportImage for `request` (its `region_id` should be the client's region).
    /// `DryRunOperation` is [`ImportOutcome::DryRunPassed`], not an error.
    pub async fn import_image(
        &self,
        request: &ImportImageRequest,
        options: &ImportOptions,
    ) -> Result<ImportOutcome> {
        let params = import_image_params(request, options);
        match self.call(Service::Ecs, "ImportImage", &params).await {
            Ok(a) => Ok(ImportOutcome::Started(ImportImageResult {
                image_id: s(&a.body, "ImageId"),
                task_id: s(&a.body, "TaskId"),
                region_id: {
                    let r = s(&a.body, "RegionId");
                    if r.is_empty() {
                        self.region().to_string()
                    } else {
                        r
                    }
                },
                request_id: a.request_id,
            })),
            Err(Error::Api {
                code, request_id, ..
            }) if options.dry_run && (code == "DryRunOperation" || code == "DRYRUN.SUCCESS") => {
                Ok(ImportOutcome::DryRunPassed { request_id })
            }
            Err(e) => Err(e),
        }
    }

    /// DescribeTasks (one page of up to 100).
    pub async fn describe_tasks(&self, q: &DescribeTasksQuery) -> Result<Vec<Task>> {
        let mut p = vec![
            ("RegionId", self.region().to_string()),
            ("PageSize", "100".to_string()),
        ];
        if !q.task_ids.is_empty() {
            p.push(("TaskIds", q.task_ids.join(",")));
        }
        if let Some(a) = &q.task_action {
            p.push(("TaskAction", a.clone()));
        }
        if let Some(st) = &q.task_status {
            p.push(("TaskStatus", st.clone()));
        }
        let a = self.call(Service::Ecs, "DescribeTasks", &pairs(&p)).await?;
        Ok(list(&a.body, "TaskSet", "Task")
            .into_iter()
            .map(task_of)
            .collect())
    }

    /// DescribeTaskAttribute.
    pub async fn describe_task_attribute(&self, task_id: &str) -> Result<TaskAttribute> {
        let p = pairs(&[
            ("RegionId", self.region().to_string()),
            ("TaskId", task_id.to_string()),
        ]);
        let a = self.call(Service::Ecs, "DescribeTaskAttribute", &p).await?;
        Ok(TaskAttribute {
            task: task_of(&a.body),
            task_process: s(&a.body, "TaskProcess"),
            operations: list(&a.body, "OperationProgressSet", "OperationProgress")
                .into_iter()
                .map(|o| OperationProgress {
                    status: s(o, "OperationStatus"),
                    error_code: s(o, "ErrorCode"),
                    error_msg: s(o, "ErrorMsg"),
                    related: list(o, "RelatedItemSet", "RelatedItem")
                        .into_iter()
                        .map(|r| (s(r, "Name"), s(r, "Value")))
                        .collect(),
                })
                .collect(),
        })
    }

    /// DescribeImages of the caller's own images, with an explicit `Status` filter.
    pub async fn describe_images(&self, q: &DescribeImagesQuery) -> Result<Vec<Image>> {
        let statuses = if q.statuses.is_empty() {
            ALL_IMAGE_STATUSES.join(",")
        } else {
            q.statuses.join(",")
        };
        let mut p = vec![
            ("RegionId", self.region().to_string()),
            ("Status", statuses),
            ("ImageOwnerAlias", "self".to_string()),
            ("PageSize", "100".to_string()),
        ];
        if let Some(id) = &q.image_id {
            p.push(("ImageId", id.clone()));
        }
        if let Some(n) = &q.image_name {
            p.push(("ImageName", n.clone()));
        }
        let a = self
            .call(Service::Ecs, "DescribeImages", &pairs(&p))
            .await?;
        Ok(list(&a.body, "Images", "Image")
            .into_iter()
            .map(image_of)
            .collect())
    }

    /// CancelTask; returns the `RequestId`.
    pub async fn cancel_task(&self, task_id: &str) -> Result<String> {
        let p = pairs(&[
            ("RegionId", self.region().to_string()),
            ("TaskId", task_id.to_string()),
        ]);
        Ok(self.call(Service::Ecs, "CancelTask", &p).await?.request_id)
    }

    /// DescribeRegions.
    pub async fn describe_regions(&self) -> Result<Vec<Region>> {
        let p = pairs(&[("AcceptLanguage", "en-US".to_string())]);
        let a = self.call(Service::Ecs, "DescribeRegions", &p).await?;
        Ok(list(&a.body, "Regions", "Region")
            .into_iter()
            .map(|r| Region {
                region_id: s(r, "RegionId"),
                region_endpoint: s(r, "RegionEndpoint"),
            })
            .collect())
    }

    /// DescribeImages of the caller's own images in `region` (another region than the
    /// client's: the `RegionId` parameter names it, the endpoint stays the client's).
    pub async fn describe_images_in(
        &self,
        region: &str,
        q: &DescribeImagesQuery,
    ) -> Result<Vec<Image>> {
        let statuses = if q.statuses.is_empty() {
            ALL_IMAGE_STATUSES.join(",")
        } else {
            q.statuses.join(",")
        };
        let mut p = vec![
            ("RegionId", region.to_string()),
            ("Status", statuses),
            ("ImageOwnerAlias", "self".to_string()),
            ("PageSize", "100".to_string()),
        ];
        if let Some(id) = &q.image_id {
            p.push(("ImageId", id.clone()));
        }
        if let Some(n) = &q.image_name {
            p.push(("ImageName", n.clone()));
        }
        let a = self
            .call(Service::Ecs, "DescribeImages", &pairs(&p))
            .await?;
        Ok(list(&a.body, "Images", "Image")
            .into_iter()
            .map(image_of)
            .collect())
    }

    /// CopyImage of `image_id` (in the client's region) to `request.destination_region`;
    /// returns the new image's id. The copy starts `Creating` and becomes `Available`.
    pub async fn copy_image(&self, image_id: &str, request: &CopyImageRequest) -> Result<String> {
        let params = copy_image_params(self.region(), image_id, request);
        let a = self.call(Service::Ecs, "CopyImage", &params).await?;
        Ok(s(&a.body, "ImageId"))
    }

    /// CancelCopyImage of the copy `image_id` in its (destination) `region`: ECS deletes a
    /// copy still in progress; a finished one is refused (`IncorrectImageStatus`). Returns
    /// the `RequestId`.
    pub async fn cancel_copy_image(&self, region: &str, image_id: &str) -> Result<String> {
        let p = pairs(&[
            ("RegionId", region.to_string()),
            ("ImageId", image_id.to_string()),
        ]);
        Ok(self
            .call(Service::Ecs, "CancelCopyImage", &p)
            .await?
            .request_id)
    }

    /// ModifyImageSharePermission adding `accounts` (`AddAccount.N`, at most
    /// [`MAX_SHARE_ACCOUNTS_PER_CALL`] per call: longer lists are sent in several calls) to the
    /// image `image_id` of `region`.
    pub async fn share_image(
        &self,
        region: &str,
        image_id: &str,
        accounts: &[String],
    ) -> Result<()> {
        for chunk in accounts.chunks(MAX_SHARE_ACCOUNTS_PER_CALL) {
            let mut p = vec![
                ("RegionId".to_string(), region.to_string()),
                ("ImageId".to_string(), image_id.to_string()),
            ];
            for (i, a) in chunk.iter().enumerate() {
                p.push((format!("AddAccount.{}", i + 1), a.clone()));
            }
            self.call(Service::Ecs, "ModifyImageSharePermission", &p)
                .await?;
        }
        Ok(())
    }

    /// DescribeImageSharePermission: the accounts the image `image_id` of `region` is shared
    /// with (every page).
    pub async fn image_shared_accounts(&self, region: &str, image_id: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        // Bounded: 100 pages of 100 is far beyond the share quota of an image.
        for page in 1..=100u32 {
            let p = pairs(&[
                ("RegionId", region.to_string()),
                ("ImageId", image_id.to_string()),
                ("PageNumber", page.to_string()),
                ("PageSize", "100".to_string()),
            ]);
            let a = self
                .call(Service::Ecs, "DescribeImageSharePermission", &p)
                .await?;
            let accounts = list(&a.body, "Accounts", "Account");
            let n = accounts.len();
            out.extend(accounts.into_iter().map(|x| s(x, "AliyunId")));
            let total = a
                .body
                .get("TotalCount")
                .and_then(|t| t.as_u64().or_else(|| t.as_str()?.parse().ok()))
                .unwrap_or(0);
            if n < 100 || out.len() as u64 >= total {
                break;
            }
        }
        Ok(out)
    }

    /// RAM GetRole: `Ok(None)` when the role does not exist (`EntityNotExist.Role`).
    pub async fn get_role(&self, role_name: &str) -> Result<Option<Role>> {
        let p = pairs(&[("RoleName", role_name.to_string())]);
        match self.call(Service::Ram, "GetRole", &p).await {
            Ok(a) => {
                let r = a.body.get("Role").cloned().unwrap_or(Value::Null);
                Ok(Some(Role {
                    role_name: s(&r, "RoleName"),
                    arn: s(&r, "Arn"),
                    assume_role_policy_document: s(&r, "AssumeRolePolicyDocument"),
                }))
            }
            Err(e) if e.code() == Some("EntityNotExist.Role") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_image_flattens_like_the_sdk_and_its_token_is_stable() {
        let r = CopyImageRequest {
            destination_region: "cn-shanghai".into(),
            name: Some("web-01".into()),
            description: None,
            tags: vec![
                ("owner".into(), "team-a".into()),
                ("env".into(), String::new()),
            ],
            client_token: Some("tok".into()),
        };
        let p = copy_image_params("cn-hangzhou", "m-1", &r);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("RegionId"), Some("cn-hangzhou"));
        assert_eq!(get("DestinationRegionId"), Some("cn-shanghai"));
        assert_eq!(get("DestinationImageName"), Some("web-01"));
        assert_eq!(get("Tag.2.Key"), Some("env"));
        assert_eq!(get("Tag.2.Value"), Some(""));
        assert_eq!(get("ClientToken"), Some("tok"));
        assert_eq!(get("DestinationDescription"), None);
        // The token ignores the token field, and changes with any parameter.
        let t = copy_client_token("m-1", &r);
        let no_token = CopyImageRequest {
            client_token: None,
            ..r.clone()
        };
        assert_eq!(t, copy_client_token("m-1", &no_token));
        assert_ne!(t, copy_client_token("m-2", &r));
        assert!(t.len() <= 64 && t.is_ascii());
    }

    #[test]
    fn a_task_without_resource_id_names_its_image_in_related_items() {
        let mut attr = TaskAttribute {
            operations: vec![OperationProgress {
                status: "Success".into(),
                related: vec![("ImageId".into(), "m-123".into())],
                ..OperationProgress::default()
            }],
            ..TaskAttribute::default()
        };
        assert_eq!(attr.image_id().as_deref(), Some("m-123"));
        attr.task.resource_id = "m-9".into();
        assert_eq!(attr.image_id().as_deref(), Some("m-9"));
        assert_eq!(TaskAttribute::default().image_id(), None);
    }

    #[test]
    fn answers_parse() {
        let v: Value = serde_json::from_str(r#"{"TaskId":"t-1","TaskStatus":"Failed","SupportCancel":"false","TaskProcess":"40%",
            "OperationProgressSet":{"OperationProgress":[{"OperationStatus":"Failed","ErrorCode":"ImportImageFailed","ErrorMsg":"boom"}]}}"#).unwrap();
        let t = task_of(&v);
        assert_eq!(t.task_status, "Failed");
        assert!(!t.support_cancel);
        assert!(truthy(
            &serde_json::json!({"SupportCancel": true}),
            "SupportCancel"
        ));
        let ops = list(&v, "OperationProgressSet", "OperationProgress");
        assert_eq!(s(ops[0], "ErrorCode"), "ImportImageFailed");
        let img: Value = serde_json::from_str(r#"{"ImageId":"m-1","Status":"Available","Size":40,
            "DiskDeviceMappings":{"DiskDeviceMapping":[{"Type":"system","Format":"QCOW2","ImportOSSBucket":"b","ImportOSSObject":"k","Size":"40"}]},
            "Tags":{"Tag":[{"TagKey":"a","TagValue":""}]}}"#).unwrap();
        let i = image_of(&img);
        assert_eq!(i.size, "40");
        assert_eq!(i.disk_device_mappings[0].import_oss_object, "k");
        assert_eq!(i.tags, vec![("a".to_string(), String::new())]);
    }
}
