//! Many images from one TOML manifest: parsing (every mistake named with its line, before
//! anything starts), checking them all across cores, and running them all through
//! [`Pipeline`] with global limits on concurrent uploads and on running import tasks.
//!
//! ```toml
//! [defaults]
//! region = "cn-hangzhou"
//! bucket = "images"
//! skip_guest = true
//!
//! [[image]]
//! path = "web.qcow2"          # relative to the manifest
//! image_name = "web-01"
//! data_disk = ["web-data.qcow2"]
//! copy_to_region = ["cn-shanghai", "cn-beijing"]
//! copy_name = ["web-01-sh", "web-01-bj"]   # or one name for every copy
//! ```
//!
//! Keys are the one-shot's flag names with `_` for `-`. A rerun of a whole batch is cheap:
//! each image's upload resumes from its checkpoint or finds the identical object already in
//! OSS, and its ImportImage carries the same ClientToken, so an image imported (or being
//! imported) by an earlier run is found, never made twice.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use preflight_rules::{DiskParams, DiskRole, ImportParams, SizeLimits};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use toml::Spanned;

use crate::fleet::FleetPlan;
use crate::{ConvertMode, Event, Outcome, Pipeline, PipelineBuilder, PipelineError, Stage};

/// Default number of images uploading at once. Each upload already sends several parts in
/// parallel; two files at once keep the link busy while one of them is being verified.
pub const DEFAULT_MAX_UPLOADS: usize = 2;

/// Default number of import tasks a batch keeps running at once in one region.
///
/// ECS limits the import tasks running per region, but the ImportImage and limits pages
/// stored for this project give no figure (the error table lists `ImageIsImporting` and
/// `QuotaExceed.Image` without one). So the default is deliberately small, and an image
/// refused for it fails alone and is retried by the next run; raise it with
/// `--max-imports` when your account allows more.
pub const DEFAULT_MAX_IMPORTS: usize = 5;

/// Slots shared by the pipelines of a batch. Cloning shares them.
#[derive(Clone, Default)]
pub struct Gates {
    work: Option<Arc<Semaphore>>,
    uploads: Option<Arc<Semaphore>>,
    imports: Option<Arc<Semaphore>>,
}

impl Gates {
    /// At most `work` pipelines check or upload at once, at most `uploads` upload at once,
    /// and at most `imports` hold an import task (ImportImage until the image is available);
    /// `None` is no limit.
    pub fn new(
        work: Option<Arc<Semaphore>>,
        uploads: Option<Arc<Semaphore>>,
        imports: Option<Arc<Semaphore>>,
    ) -> Self {
        Gates {
            work,
            uploads,
            imports,
        }
    }

    pub(crate) async fn work(
        &self,
        on_event: &(dyn Fn(&Event) + Send + Sync),
    ) -> Option<OwnedSemaphorePermit> {
        acquire(self.work.as_ref(), "a free slot", on_event).await
    }

    pub(crate) async fn upload(
        &self,
        on_event: &(dyn Fn(&Event) + Send + Sync),
    ) -> Option<OwnedSemaphorePermit> {
        acquire(self.uploads.as_ref(), "an upload slot", on_event).await
    }

    pub(crate) async fn import(
        &self,
        on_event: &(dyn Fn(&Event) + Send + Sync),
    ) -> Option<OwnedSemaphorePermit> {
        acquire(self.imports.as_ref(), "an import slot", on_event).await
    }
}

async fn acquire(
    gate: Option<&Arc<Semaphore>>,
    what: &str,
    on_event: &(dyn Fn(&Event) + Send + Sync),
) -> Option<OwnedSemaphorePermit> {
    let gate = gate?;
    match gate.clone().try_acquire_owned() {
        Ok(p) => return Some(p),
        Err(tokio::sync::TryAcquireError::Closed) => std::future::pending().await,
        Err(tokio::sync::TryAcquireError::NoPermits) => {}
    }
    on_event(&Event::Note(format!("waiting for {what}")));
    match gate.clone().acquire_owned().await {
        Ok(p) => Some(p),
        // A closed gate: the batch is stopping, nothing passes any more (the run is about
        // to be dropped).
        Err(_) => std::future::pending().await,
    }
}

/// A manifest that cannot be used; nothing was started.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read the manifest {}: {source}", path.display())]
    Read {
        /// The manifest.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A mistake in the manifest, at a line.
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        /// The manifest.
        path: PathBuf,
        /// 1-based line of the mistake.
        line: usize,
        /// What is wrong, with the offending value.
        message: String,
    },
}

impl ManifestError {
    /// A stable code: `MANIFEST.Read` or `MANIFEST.Invalid`.
    pub fn code(&self) -> &'static str {
        match self {
            ManifestError::Read { .. } => "MANIFEST.Read",
            ManifestError::Invalid { .. } => "MANIFEST.Invalid",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    defaults: Option<Keys>,
    #[serde(default)]
    image: Vec<Spanned<Keys>>,
}

/// The keys of `[defaults]` and `[[image]]`: the one-shot's flags.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Keys {
    path: Option<Spanned<String>>,
    data_disk: Option<Vec<Spanned<String>>>,
    region: Option<Spanned<String>>,
    bucket: Option<Spanned<String>>,
    object: Option<Spanned<String>>,
    image_name: Option<Spanned<String>>,
    description: Option<String>,
    architecture: Option<String>,
    os_type: Option<String>,
    platform: Option<String>,
    boot_mode: Option<String>,
    license_type: Option<String>,
    tag: Option<Vec<Spanned<String>>>,
    resource_group_id: Option<String>,
    format: Option<String>,
    disk_image_size: Option<u64>,
    disk_role: Option<Spanned<String>>,
    detection_strategy: Option<String>,
    nvme_support: Option<String>,
    imds_support: Option<String>,
    client_token: Option<Spanned<String>>,
    role_name: Option<String>,
    storage_location_arn: Option<String>,
    size_limits: Option<Spanned<String>>,
    skip_guest: Option<bool>,
    allow: Option<Vec<String>>,
    delete_object_after: Option<bool>,
    convert: Option<Spanned<String>>,
    copy_to_region: Option<Vec<Spanned<String>>>,
    /// A string (one name for every copy) or a list (one per `copy_to_region`, in order),
    /// as `--copy-name` once or repeated.
    copy_name: Option<Spanned<toml::Value>>,
    share_with_account: Option<Vec<Spanned<String>>>,
}

impl Keys {
    /// This image's keys, each one missing taken from `defaults`.
    fn or(self, d: &Keys) -> Keys {
        macro_rules! merge {
            ($($k:ident),*) => { Keys { $($k: self.$k.or_else(|| d.$k.clone()),)* } };
        }
        merge!(
            path,
            data_disk,
            region,
            bucket,
            object,
            image_name,
            description,
            architecture,
            os_type,
            platform,
            boot_mode,
            license_type,
            tag,
            resource_group_id,
            format,
            disk_image_size,
            disk_role,
            detection_strategy,
            nvme_support,
            imds_support,
            client_token,
            role_name,
            storage_location_arn,
            size_limits,
            skip_guest,
            allow,
            delete_object_after,
            convert,
            copy_to_region,
            copy_name,
            share_with_account
        )
    }
}

/// One image of a manifest, with its defaults applied and its paths resolved.
#[derive(Debug, Clone)]
pub struct ManifestImage {
    /// Its name in summaries: `image_name`, else `path` as written.
    pub name: String,
    /// Line of its `path` key.
    pub line: usize,
    /// The system disk.
    pub system_disk: PathBuf,
    /// The data disks, in order.
    pub data_disks: Vec<PathBuf>,
    /// The ImportImage parameters; `disks` holds the system disk's entry only.
    pub params: ImportParams,
    /// Error codes accepted (`allow`).
    pub allow: Vec<String>,
    /// `delete_object_after`.
    pub delete_object_after: bool,
    /// `convert`.
    pub convert: ConvertMode,
    /// `copy_to_region`, `copy_name` and `share_with_account`, validated.
    pub fleet: FleetPlan,
}

impl ManifestImage {
    /// The region (always set: a manifest without one for an image is refused).
    pub fn region(&self) -> &str {
        self.params.region.as_deref().unwrap_or_default()
    }

    /// A [`Pipeline`] builder with everything the manifest says; the caller adds endpoints,
    /// credentials, upload options and timing.
    pub fn builder(&self) -> PipelineBuilder {
        let mut b = Pipeline::builder()
            .system_disk(&self.system_disk)
            .params(self.params.clone())
            .delete_objects_after(self.delete_object_after)
            .convert(self.convert)
            .fleet(self.fleet.clone());
        if let Some(r) = &self.params.region {
            b = b.region(r);
        }
        if let Some(r) = &self.params.bucket {
            b = b.bucket(r);
        }
        for d in &self.data_disks {
            b = b.data_disk(d);
        }
        for code in &self.allow {
            b = b.allow(code);
        }
        b
    }
}

/// A parsed, validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file.
    pub path: PathBuf,
    /// Its images, in order.
    pub images: Vec<ManifestImage>,
}

/// Keys that name one image and so cannot be defaults.
const PER_IMAGE: &[&str] = &["path", "image_name", "object", "client_token"];

impl Manifest {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::parse(&text, path)
    }

    /// Validates manifest `text`; `path` is where it lives (relative image paths are taken
    /// from its folder, and errors name it). Checks every key's type, that each image has a
    /// `path` whose file exists (and each data disk), a region and a bucket; that no image
    /// name is used twice; and that no two images would upload to the same object.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let invalid = |offset: usize, message: String| ManifestError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, offset),
            message,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            invalid(at, e.message().trim().to_string())
        })?;
        let defaults = raw.defaults.unwrap_or_default();
        for (key, span) in [
            ("path", defaults.path.as_ref().map(Spanned::span)),
            (
                "image_name",
                defaults.image_name.as_ref().map(Spanned::span),
            ),
            ("object", defaults.object.as_ref().map(Spanned::span)),
            (
                "client_token",
                defaults.client_token.as_ref().map(Spanned::span),
            ),
        ] {
            if let Some(span) = span {
                return Err(invalid(
                    span.start,
                    format!(
                        "`{key}` names one image: put it in an [[image]], not in [defaults] (per-image keys: {})",
                        PER_IMAGE.join(", ")
                    ),
                ));
            }
        }
        if raw.image.is_empty() {
            return Err(invalid(
                text.len(),
                "the manifest lists no [[image]]".into(),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut images = Vec::with_capacity(raw.image.len());
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut objects: HashMap<(String, String), (usize, String)> = HashMap::new();
        for table in raw.image {
            let table_at = table.span().start;
            let keys = table.into_inner().or(&defaults);
            let Some(sys) = keys.path.clone() else {
                return Err(invalid(table_at, "this [[image]] has no `path`".into()));
            };
            let line = line_of(text, sys.span().start);
            let system_disk = existing(base, &sys, "image", &invalid)?;
            let mut data_disks = Vec::new();
            for d in keys.data_disk.iter().flatten() {
                data_disks.push(existing(base, d, "data disk", &invalid)?);
            }
            let region = required(&keys.region, "region", sys.span().start, &invalid)?;
            let bucket = required(&keys.bucket, "bucket", sys.span().start, &invalid)?;
            let name = match &keys.image_name {
                Some(n) => n.get_ref().clone(),
                None => sys.get_ref().clone(),
            };
            let at = keys
                .image_name
                .as_ref()
                .map_or(sys.span().start, |n| n.span().start);
            if let Some(first) = names.insert(name.clone(), line_of(text, at)) {
                return Err(invalid(
                    at,
                    format!("image name {name:?} is already used at line {first}"),
                ));
            }
            // Two images writing the same object would overwrite each other's disks.
            let mut keys_of_disks = vec![keys
                .object
                .as_ref()
                .map_or_else(|| file_name(&system_disk), |o| o.get_ref().clone())];
            keys_of_disks.extend(data_disks.iter().map(|d| file_name(d)));
            for (i, key) in keys_of_disks.into_iter().enumerate() {
                let slot = (bucket.clone(), key.clone());
                let at = if i == 0 {
                    sys.span().start
                } else {
                    keys.data_disk.as_ref().map_or(sys.span().start, |v| {
                        v.get(i - 1).map_or(sys.span().start, |s| s.span().start)
                    })
                };
                if let Some((first, other)) =
                    objects.insert(slot, (line_of(text, at), name.clone()))
                {
                    return Err(invalid(
                        at,
                        format!(
                            "oss://{bucket}/{key} is also the object of image {other:?} (line {first}): give one of them `object`, or rename the file"
                        ),
                    ));
                }
            }
            let fleet = fleet_of(&keys, &region, sys.span().start, &invalid)?;
            let params = params_of(&keys, region, bucket, &invalid)?;
            let convert = match &keys.convert {
                Some(c) => c
                    .get_ref()
                    .parse()
                    .map_err(|e: String| invalid(c.span().start, format!("convert: {e}")))?,
                None => ConvertMode::default(),
            };
            images.push(ManifestImage {
                name,
                line,
                system_disk,
                data_disks,
                params,
                allow: keys.allow.clone().unwrap_or_default(),
                delete_object_after: keys.delete_object_after.unwrap_or(false),
                convert,
                fleet,
            });
        }
        Ok(Manifest {
            path: path.to_path_buf(),
            images,
        })
    }
}

type Invalid<'a> = dyn Fn(usize, String) -> ManifestError + 'a;

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A disk path, relative to the manifest's folder, that must be an existing file.
fn existing(
    base: &Path,
    p: &Spanned<String>,
    what: &str,
    invalid: &Invalid<'_>,
) -> Result<PathBuf, ManifestError> {
    let given = Path::new(p.get_ref());
    let full = if given.is_absolute() {
        given.to_path_buf()
    } else {
        base.join(given)
    };
    match std::fs::metadata(&full) {
        Ok(m) if m.is_file() => Ok(full),
        Ok(_) => Err(invalid(
            p.span().start,
            format!("{what} {} is not a file", full.display()),
        )),
        Err(e) => Err(invalid(
            p.span().start,
            format!("{what} {}: {e}", full.display()),
        )),
    }
}

fn required(
    v: &Option<Spanned<String>>,
    key: &str,
    at: usize,
    invalid: &Invalid<'_>,
) -> Result<String, ManifestError> {
    match v {
        Some(s) if !s.get_ref().is_empty() => Ok(s.get_ref().clone()),
        Some(s) => Err(invalid(s.span().start, format!("`{key}` is empty"))),
        None => Err(invalid(
            at,
            format!("this image has no `{key}`: set it in the [[image]] or in [defaults]"),
        )),
    }
}

/// The copy and share keys, checked as the one-shot checks its flags (before anything
/// starts); an error names the line of the key at fault, else of the image's `path`.
fn fleet_of(
    k: &Keys,
    region: &str,
    path_at: usize,
    invalid: &Invalid<'_>,
) -> Result<FleetPlan, ManifestError> {
    let texts = |v: &Option<Vec<Spanned<String>>>| -> Vec<String> {
        v.iter().flatten().map(|s| s.get_ref().clone()).collect()
    };
    let copy_names = match &k.copy_name {
        None => Vec::new(),
        Some(v) => match v.get_ref() {
            toml::Value::String(one) => vec![one.clone()],
            toml::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    invalid(
                        v.span().start,
                        "copy_name: expected a string or a list of strings".into(),
                    )
                })?,
            other => {
                return Err(invalid(
                    v.span().start,
                    format!(
                        "copy_name: expected a string or a list of strings, found {}",
                        other.type_str()
                    ),
                ))
            }
        },
    };
    let mut plan = FleetPlan {
        copy_regions: texts(&k.copy_to_region),
        copy_names,
        share_accounts: texts(&k.share_with_account),
    };
    plan.validate(region).map_err(|e| {
        use crate::fleet::FleetError as F;
        let at = match &e {
            F::NameMalformed { .. } | F::TooManyNames { .. } => {
                k.copy_name.as_ref().map(Spanned::span)
            }
            F::AccountMalformed { .. } => k
                .share_with_account
                .as_ref()
                .and_then(|v| v.first())
                .map(Spanned::span),
            _ => k
                .copy_to_region
                .as_ref()
                .and_then(|v| v.first())
                .map(Spanned::span),
        };
        invalid(
            at.map_or(path_at, |s| s.start),
            format!("{}: {e}", e.code()),
        )
    })?;
    Ok(plan)
}

fn params_of(
    k: &Keys,
    region: String,
    bucket: String,
    invalid: &Invalid<'_>,
) -> Result<ImportParams, ManifestError> {
    let mut tags = Vec::new();
    for t in k.tag.iter().flatten() {
        match t.get_ref().split_once('=') {
            Some((key, value)) => tags.push((key.to_string(), value.to_string())),
            None => {
                return Err(invalid(
                    t.span().start,
                    format!("tag {:?} is not \"KEY=VALUE\"", t.get_ref()),
                ))
            }
        }
    }
    let disk_role =
        match &k.disk_role {
            Some(r) => Some(r.get_ref().parse::<DiskRole>().map_err(|e| {
                invalid(r.span().start, format!("disk_role {:?}: {e}", r.get_ref()))
            })?),
            None => None,
        };
    let size_limits = match &k.size_limits {
        Some(s) => s.get_ref().parse::<SizeLimits>().map_err(|e| {
            invalid(
                s.span().start,
                format!("size_limits {:?}: {e}", s.get_ref()),
            )
        })?,
        None => SizeLimits::default(),
    };
    let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
    Ok(ImportParams {
        region: Some(region),
        bucket: Some(bucket),
        image_name: text(&k.image_name),
        description: k.description.clone(),
        architecture: k.architecture.clone(),
        os_type: k.os_type.clone(),
        platform: k.platform.clone(),
        boot_mode: k.boot_mode.clone(),
        license_type: k.license_type.clone(),
        tags,
        resource_group_id: k.resource_group_id.clone(),
        disk_role,
        disks: vec![DiskParams {
            bucket: None,
            object: text(&k.object),
            format: k.format.clone(),
            disk_image_size: k.disk_image_size,
        }],
        detection_strategy: k.detection_strategy.clone(),
        nvme_support: k.nvme_support.clone(),
        imds_support: k.imds_support.clone(),
        client_token: text(&k.client_token),
        role_name: k.role_name.clone(),
        storage_location_arn: k.storage_location_arn.clone(),
        size_limits,
        skip_guest: k.skip_guest.unwrap_or(false),
    })
}

impl Manifest {
    /// One job per image, in manifest order: the image's own pipeline finished by
    /// `configure` (what the whole run shares: credentials, endpoints, upload options…).
    pub fn jobs(&self, configure: impl Fn(PipelineBuilder) -> PipelineBuilder) -> Vec<BatchJob> {
        self.images
            .iter()
            .map(|image| BatchJob {
                name: image.name.clone(),
                region: image.region().to_string(),
                builder: configure(image.builder()),
            })
            .collect()
    }
}

/// Checks every image on a pool of `threads` threads (the check reads and hashes whole
/// disks: CPU-bound), results in manifest order.
pub fn check_all<T: Send>(
    images: &[ManifestImage],
    threads: usize,
    check: impl Fn(&ManifestImage) -> T + Sync,
) -> Vec<T> {
    use rayon::prelude::*;
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
    {
        Ok(pool) => pool.install(|| images.par_iter().map(&check).collect()),
        // No thread could be started: one at a time still gives every verdict.
        Err(_) => images.iter().map(check).collect(),
    }
}

/// Limits of a batch run.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Images checked, converted or uploaded at once. An image whose import task is running
    /// holds no such slot: waiting on ECS costs nothing here.
    pub parallel: usize,
    /// Images uploading at once, across the batch.
    pub max_uploads: usize,
    /// Import tasks running at once, per region.
    pub max_imports: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_uploads: DEFAULT_MAX_UPLOADS,
            max_imports: DEFAULT_MAX_IMPORTS,
        }
    }
}

/// One image to run: its name, its region (for the per-region import limit) and its
/// pipeline, not yet built.
pub struct BatchJob {
    /// Name in events and the summary.
    pub name: String,
    /// Import region.
    pub region: String,
    /// The pipeline; the batch adds its gates and its event observer.
    pub builder: PipelineBuilder,
}

/// How far an unfinished image got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reached {
    /// The last stage begun.
    pub stage: Option<Stage>,
    /// The image, once ImportImage answered.
    pub image_id: Option<String>,
    /// The import task, once ImportImage answered.
    pub task_id: Option<String>,
}

/// The end of one image in a batch.
#[derive(Debug)]
pub enum ImageResult {
    /// The image is available.
    Available(Box<Outcome>),
    /// It failed; the other images went on.
    Failed(PipelineError),
    /// The batch was stopped while this image was under way: its upload resumes on the next
    /// run, and an import already started goes on in the cloud (the next run finds it by
    /// its ClientToken).
    Interrupted(Reached),
    /// The batch was stopped before this image began.
    NotStarted,
}

/// What a batch did, image by image in job order.
#[derive(Debug)]
pub struct BatchReport {
    /// One result per job.
    pub results: Vec<ImageResult>,
    /// True when `stop` ended the batch early.
    pub interrupted: bool,
}

/// Hears every image's events with the image's index in the jobs.
pub type BatchEventFn = Arc<dyn Fn(usize, &Event) + Send + Sync>;

/// Runs every job's pipeline, at most `options.parallel` at once, with the upload and
/// per-region import limits shared by all. A failing image never stops the others. When
/// `stop` completes, no new image starts and the running ones are dropped (uploads resume
/// from their checkpoints on the next run; started imports are left running, not cancelled).
/// `on_event` hears every pipeline's events with the job's index.
pub async fn run_batch(
    jobs: Vec<BatchJob>,
    options: &BatchOptions,
    on_event: BatchEventFn,
    stop: impl Future<Output = ()>,
) -> BatchReport {
    let work = Arc::new(Semaphore::new(options.parallel.max(1)));
    let uploads = Arc::new(Semaphore::new(options.max_uploads.max(1)));
    let mut imports: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let reached: Arc<Mutex<Vec<Option<Reached>>>> = Arc::new(Mutex::new(vec![None; jobs.len()]));
    let mut results: Vec<Option<ImageResult>> = jobs.iter().map(|_| None).collect();
    let mut set = tokio::task::JoinSet::new();
    let mut index_of = HashMap::new();
    let stopping = Arc::new(AtomicBool::new(false));
    for (i, job) in jobs.into_iter().enumerate() {
        let import_gate = imports
            .entry(job.region.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(options.max_imports.max(1))))
            .clone();
        let observe = {
            let reached = reached.clone();
            let stopping = stopping.clone();
            let on_event = on_event.clone();
            move |e: &Event| {
                // A slot freed by a run dropped on `stop` may let a queued image begin before
                // its own abort lands: it did not start, as far as the report goes.
                if !stopping.load(Ordering::SeqCst) {
                    match e {
                        Event::StageStarted(s) => {
                            lock(&reached)[i].get_or_insert_with(Reached::default).stage = Some(*s);
                        }
                        Event::ImportStarted {
                            image_id, task_id, ..
                        } => {
                            let mut all = lock(&reached);
                            let r = all[i].get_or_insert_with(Reached::default);
                            r.image_id = Some(image_id.clone());
                            r.task_id = Some(task_id.clone());
                        }
                        _ => {}
                    }
                }
                on_event(i, e);
            }
        };
        let gates = Gates::new(Some(work.clone()), Some(uploads.clone()), Some(import_gate));
        let pipeline = match job.builder.gates(gates).on_event(observe).build() {
            Ok(p) => p,
            Err(e) => {
                results[i] = Some(ImageResult::Failed(e));
                continue;
            }
        };
        let handle = set.spawn(async move { pipeline.run().await });
        index_of.insert(handle.id(), i);
    }

    let settle = |results: &mut Vec<Option<ImageResult>>,
                  joined: Result<
        (tokio::task::Id, crate::Result<Outcome>),
        tokio::task::JoinError,
    >| {
        match joined {
            Ok((id, r)) => {
                if let Some(&i) = index_of.get(&id) {
                    results[i] = Some(match r {
                        Ok(o) => ImageResult::Available(Box::new(o)),
                        Err(e) => ImageResult::Failed(e),
                    });
                }
            }
            // A panic in one image is that image's failure, never the batch's.
            Err(e) if e.is_panic() => {
                if let Some(&i) = index_of.get(&e.id()) {
                    results[i] = Some(ImageResult::Failed(PipelineError::Usage(format!(
                        "this image's run stopped on an internal error: {e}"
                    ))));
                }
            }
            Err(_) => {}
        }
    };

    tokio::pin!(stop);
    let mut interrupted = false;
    loop {
        tokio::select! {
            next = set.join_next_with_id() => match next {
                Some(joined) => settle(&mut results, joined),
                None => break,
            },
            () = &mut stop => {
                interrupted = true;
                stopping.store(true, Ordering::SeqCst);
                // Closed first: a slot freed by a dropped run must not let a queued image
                // upload or send ImportImage before its own abort lands.
                work.close();
                uploads.close();
                for gate in imports.values() {
                    gate.close();
                }
                set.abort_all();
                // Wait for every run to be dropped (checkpoints on disk), keeping any
                // that finished meanwhile.
                while let Some(joined) = set.join_next_with_id().await {
                    settle(&mut results, joined);
                }
                break;
            }
        }
    }
    let reached = lock(&reached).clone();
    let results = results
        .into_iter()
        .zip(reached)
        .map(|(r, reached)| match (r, reached) {
            (Some(r), _) => r,
            (None, Some(reached)) => ImageResult::Interrupted(reached),
            (None, None) => ImageResult::NotStarted,
        })
        .collect();
    BatchReport {
        results,
        interrupted,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new(files: &[&str]) -> Dir {
            let d = tempfile::tempdir().unwrap();
            for f in files {
                std::fs::write(d.path().join(f), b"x").unwrap();
            }
            Dir(d)
        }

        fn parse(&self, text: &str) -> Result<Manifest, ManifestError> {
            Manifest::parse(text, &self.0.path().join("batch.toml"))
        }

        fn error(&self, text: &str) -> (usize, String) {
            match self.parse(text) {
                Err(ManifestError::Invalid { line, message, .. }) => (line, message),
                other => panic!("expected an error, got {other:?}"),
            }
        }
    }

    const HEAD: &str = "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"images\"\n";

    #[test]
    fn the_issue_shape_parses_with_defaults_and_relative_paths() {
        let d = Dir::new(&["web.qcow2", "web-data.qcow2", "db.qcow2"]);
        let m = d
            .parse(&format!(
                "{HEAD}skip_guest = true\ntag = [\"env=prod\"]\n\n[[image]]\npath = \"web.qcow2\"\nimage_name = \"web-01\"\ndata_disk = [\"web-data.qcow2\"]\n\n[[image]]\npath = \"db.qcow2\"\nregion = \"cn-beijing\"\nbucket = \"bj\"\nskip_guest = false\nconvert = \"none\"\n"
            ))
            .unwrap();
        assert_eq!(m.images.len(), 2);
        let web = &m.images[0];
        assert_eq!(web.name, "web-01");
        assert_eq!(web.line, 8);
        assert_eq!(web.system_disk, d.0.path().join("web.qcow2"));
        assert_eq!(web.data_disks, vec![d.0.path().join("web-data.qcow2")]);
        assert_eq!(web.region(), "cn-hangzhou");
        assert_eq!(web.params.bucket.as_deref(), Some("images"));
        assert!(web.params.skip_guest);
        assert_eq!(web.params.tags, vec![("env".into(), "prod".into())]);
        let db = &m.images[1];
        assert_eq!(db.name, "db.qcow2");
        assert_eq!(db.region(), "cn-beijing");
        assert_eq!(db.params.bucket.as_deref(), Some("bj"));
        assert!(!db.params.skip_guest);
        assert_eq!(db.convert, ConvertMode::None);
    }

    #[test]
    fn each_mistake_names_its_line() {
        let d = Dir::new(&["a.qcow2", "b.qcow2"]);
        // Unknown key.
        let (line, msg) = d.error(&format!(
            "{HEAD}[[image]]\npath = \"a.qcow2\"\nimagename = \"x\"\n"
        ));
        assert_eq!(line, 6, "{msg}");
        assert!(msg.contains("imagename"), "{msg}");
        // Wrong type.
        let (line, msg) = d.error(&format!(
            "{HEAD}[[image]]\npath = \"a.qcow2\"\ndisk_image_size = \"40\"\n"
        ));
        assert_eq!(line, 6, "{msg}");
        // Duplicate image name.
        let (line, msg) = d.error(&format!(
            "{HEAD}[[image]]\npath = \"a.qcow2\"\nimage_name = \"web\"\n[[image]]\npath = \"b.qcow2\"\nimage_name = \"web\"\n"
        ));
        assert_eq!(line, 9, "{msg}");
        assert!(msg.contains("line 6"), "{msg}");
        // Missing file.
        let (line, msg) = d.error(&format!(
            "{HEAD}[[image]]\npath = \"a.qcow2\"\n[[image]]\npath = \"gone.qcow2\"\n"
        ));
        assert_eq!(line, 7, "{msg}");
        assert!(msg.contains("gone.qcow2"), "{msg}");
        // Missing data disk.
        let (line, _) = d.error(&format!(
            "{HEAD}[[image]]\npath = \"a.qcow2\"\ndata_disk = [\n  \"b.qcow2\",\n  \"c.qcow2\",\n]\n"
        ));
        assert_eq!(line, 8);
        // A per-image key in [defaults].
        let (line, msg) =
            d.error("[defaults]\nimage_name = \"x\"\n[[image]]\npath = \"a.qcow2\"\n");
        assert_eq!(line, 2, "{msg}");
        // No region anywhere.
        let (line, msg) = d.error("[[image]]\nbucket = \"b\"\npath = \"a.qcow2\"\n");
        assert_eq!(line, 3, "{msg}");
        assert!(msg.contains("region"), "{msg}");
        // Two images, one object.
        let (line, msg) = d.error(&format!(
            "{HEAD}[[image]]\npath = \"a.qcow2\"\n[[image]]\npath = \"a.qcow2\"\nimage_name = \"other\"\n"
        ));
        assert_eq!(line, 7, "{msg}");
        assert!(msg.contains("oss://images/a.qcow2"), "{msg}");
        // Bad values of the tool's own options.
        let (line, _) = d.error(&format!(
            "{HEAD}[[image]]\npath = \"a.qcow2\"\ntag = [\"novalue\"]\n"
        ));
        assert_eq!(line, 6);
        let (line, _) = d.error(&format!(
            "{HEAD}[[image]]\npath = \"a.qcow2\"\ndisk_role = \"boot\"\n"
        ));
        assert_eq!(line, 6);
        // No image at all; a syntax error.
        assert!(d.error(HEAD).1.contains("no [[image]]"));
        let (line, _) = d.error(&format!("{HEAD}[[image]\npath = \"a.qcow2\"\n"));
        assert_eq!(line, 4);
        // A path in an image without `path`.
        let (line, msg) = d.error(&format!("{HEAD}\n[[image]]\nimage_name = \"x\"\n"));
        assert!(msg.contains("no `path`"), "{msg}");
        assert!((5..=6).contains(&line), "{line}");
    }

    #[test]
    fn copy_keys_take_one_name_or_one_per_region() {
        let d = Dir::new(&["a.qcow2"]);
        let parse = |extra: &str| d.parse(&format!("{HEAD}[[image]]\npath = \"a.qcow2\"\n{extra}"));
        let m = parse("copy_to_region = [\"cn-shanghai\", \"cn-beijing\"]\ncopy_name = [\"a-sh\", \"a-bj\"]\nshare_with_account = [\"1111222233334444\"]\n").unwrap();
        let f = &m.images[0].fleet;
        assert_eq!(f.copy_regions, ["cn-shanghai", "cn-beijing"]);
        assert_eq!(
            (f.copy_name(0), f.copy_name(1)),
            (Some("a-sh"), Some("a-bj"))
        );
        assert_eq!(f.share_accounts, ["1111222233334444"]);
        let m =
            parse("copy_to_region = [\"cn-shanghai\", \"cn-beijing\"]\ncopy_name = \"a-all\"\n")
                .unwrap();
        let f = &m.images[0].fleet;
        assert_eq!(
            (f.copy_name(0), f.copy_name(1)),
            (Some("a-all"), Some("a-all"))
        );
        // More names than regions, a bad name, a number: the line of `copy_name`.
        for (bad, want) in [
            ("copy_name = [\"x1\", \"y1\"]", "COPY.TooManyNames"),
            ("copy_name = \"aliyun-x\"", "COPY.NameMalformed"),
            ("copy_name = [\"x1\", 2]", "string or a list"),
            ("copy_name = 3", "string or a list"),
        ] {
            let (line, msg) = d.error(&format!(
                "{HEAD}[[image]]\npath = \"a.qcow2\"\ncopy_to_region = [\"cn-shanghai\"]\n{bad}\n"
            ));
            assert_eq!(line, 7, "{bad}: {msg}");
            assert!(msg.contains(want), "{bad}: {msg}");
        }
        let (line, msg) = d.error(&format!(
            "{HEAD}[[image]]\npath = \"a.qcow2\"\ncopy_to_region = [\"cn-hangzhou\"]\n"
        ));
        assert_eq!(line, 6, "{msg}");
        assert!(msg.contains("COPY.SameRegion"), "{msg}");
    }

    #[test]
    fn check_all_keeps_the_manifest_order() {
        let d = Dir::new(&["a", "b", "c"]);
        let m = d
            .parse(&format!(
                "{HEAD}[[image]]\npath = \"a\"\n[[image]]\npath = \"b\"\n[[image]]\npath = \"c\"\n"
            ))
            .unwrap();
        let names = check_all(&m.images, 3, |i| i.name.clone());
        assert_eq!(names, ["a", "b", "c"]);
    }
}
