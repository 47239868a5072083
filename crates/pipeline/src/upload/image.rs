//! The `upload` use case: one image to one OSS key. The destination and bucket rules run
//! first (nothing is sent when one fails), then the resumable, CRC-64-verified upload.
//!
//! Cancellation is the pipeline's one mechanism: drop the future (e.g. in `tokio::select!`).
//! The upload's checkpoint stays, so the same [`ImageUpload`] run again resumes it; or
//! [`ImageUpload::abort`] cancels it and deletes its parts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use preflight_aliyun::CredentialProvider;
use preflight_oss::upload as oss_upload;
use preflight_oss::{SignatureVersion, UploadEvent, UploadOptions};
use preflight_report::Finding;
use preflight_rules::{BucketFacts, ScopedFinding};

use crate::convert::{self, Conversion, ConvertMode, PreparedUpload};
use crate::endpoints::{self, Endpoints};
use crate::{Event, PipelineError, Result};

/// One image to upload, and how. Made by [`ImageUpload::new`]; every field may then be set.
#[derive(Clone)]
#[non_exhaustive]
pub struct ImageUpload {
    /// The disk image.
    pub image: PathBuf,
    /// Region of the import; the bucket must be in it.
    pub region: String,
    /// OSS bucket.
    pub bucket: String,
    /// Object key; `None`: the image's file name (`.qcow2` when the disk is converted).
    pub object: Option<String>,
    /// Where OSS (and STS for credentials) are reached.
    pub endpoints: Endpoints,
    /// Whose credentials sign the requests.
    pub credentials: Arc<CredentialProvider>,
    /// OSS signature version.
    pub signature: SignatureVersion,
    /// Part size, parallelism, checkpoints, rate limit.
    pub options: UploadOptions,
    /// Whether a RAW or fixed-VHD disk is sent as the qcow2 of its data.
    pub convert: ConvertMode,
}

impl std::fmt::Debug for ImageUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The credential provider is left out: it may hold a secret.
        f.debug_struct("ImageUpload")
            .field("image", &self.image)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("object", &self.object)
            .field("endpoints", &self.endpoints)
            .field("signature", &self.signature)
            .field("options", &self.options)
            .field("convert", &self.convert)
            .finish_non_exhaustive()
    }
}

/// The result of a successful [`ImageUpload::run`]: the object, uploaded and verified. Its
/// JSON is [`render`](Self::render)'s (the CRC-64 as a string).
#[derive(Debug, Clone, PartialEq)]
pub struct UploadResult {
    /// The object as the uploader reports it: bucket, key, size, CRC-64 (verified equal
    /// locally and on OSS), ETag, parts sent and kept, whether it was already there.
    pub object: oss_upload::UploadOutcome,
    /// Format of the object (lowercase): `qcow2` when the disk was converted.
    pub format: String,
    /// The conversion considered, if any.
    pub conversion: Option<Conversion>,
    /// Seconds the upload took (the rules and the map pass excluded).
    pub seconds: f64,
    /// Every finding of the pre-upload rules (warnings only: an error refuses the upload).
    pub findings: Vec<Finding>,
    /// What the bucket probes found.
    pub bucket_facts: BucketFacts,
}

/// What [`ImageUpload::abort`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbortOutcome {
    /// The uploads recorded here (by a checkpoint) that were aborted, their parts deleted.
    pub aborted: Vec<AbortedUpload>,
    /// When none was recorded: each key looked at, with the uploads OSS has in progress for
    /// it that were not started here (left alone).
    pub not_recorded: Vec<UnrecordedKey>,
}

/// One aborted upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortedUpload {
    /// Object key.
    pub key: String,
    /// Its multipart upload id.
    pub upload_id: String,
}

/// A key with no upload recorded here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnrecordedKey {
    /// Object key.
    pub key: String,
    /// Uploads OSS has in progress for exactly this key.
    pub on_oss: Vec<preflight_oss::xml::Upload>,
}

impl ImageUpload {
    /// `image` to `bucket` in `region` with `credentials`; everything else defaulted: the
    /// public OSS endpoint, V4 signatures, the uploader's default options, `--convert auto`.
    pub fn new(
        image: impl Into<PathBuf>,
        region: impl Into<String>,
        bucket: impl Into<String>,
        credentials: Arc<CredentialProvider>,
    ) -> Self {
        ImageUpload {
            image: image.into(),
            region: region.into(),
            bucket: bucket.into(),
            object: None,
            endpoints: Endpoints::default(),
            credentials,
            signature: SignatureVersion::V4,
            options: UploadOptions::default(),
            convert: ConvertMode::Auto,
        }
    }

    /// Checks the destination and the bucket, then uploads. Reports as it goes, in order:
    /// [`Event::Credentials`], [`Event::Mapping`] and [`Event::Conversion`] (when a conversion
    /// is considered), [`Event::Note`] (advice), [`Event::DestinationChecked`] (every
    /// finding), [`Event::PartBuffers`] (multipart only), [`Event::UploadStarted`],
    /// [`Event::Upload`]s, [`Event::UploadFinished`].
    ///
    /// Errors: [`PipelineError::Refused`] when a rule failed (nothing was sent; its findings
    /// are the errors, the plan names the key), [`PipelineError::Upload`] when the upload
    /// failed (resumable when [`PipelineError::is_retryable`]; a verification failure when
    /// [`PipelineError::is_refusal`]), others before any byte is sent.
    pub async fn run(
        &self,
        on_event: impl Fn(&Event) + Send + Sync + 'static,
    ) -> Result<UploadResult> {
        let on_event: Arc<dyn Fn(&Event) + Send + Sync> = Arc::new(on_event);
        let meta = std::fs::metadata(&self.image).map_err(|source| PipelineError::Read {
            path: self.image.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(PipelineError::Usage(format!(
                "{} is not a file",
                self.image.display()
            )));
        }
        // Asked meanwhile: on ECS in the import region the internal endpoint is the better road.
        let on_ecs = tokio::spawn(async {
            tokio::time::timeout(Duration::from_secs(3), crate::instance_region())
                .await
                .ok()
                .flatten()
        });
        let (client, source) = self.client().await?;
        on_event(&Event::Credentials(source));

        let prepared = self.prepare(&on_event).await?;
        let key = match &self.object {
            Some(k) => k.clone(),
            None => convert::default_key(&self.image, &prepared).ok_or_else(|| {
                PipelineError::Usage(
                    "the image path has no UTF-8 file name; pass --object".to_string(),
                )
            })?,
        };

        // Before any byte is sent: the rules.
        let checked =
            super::upload_check(&client, &self.image, &self.region, &key, &prepared.format).await?;
        if let Ok(Some(here)) = on_ecs.await {
            if here == self.region && !self.endpoints.oss_is_internal() {
                on_event(&Event::Note(endpoints::internal_endpoint_advice(&here)));
            }
        }
        on_event(&Event::DestinationChecked {
            key: key.clone(),
            findings: checked.findings.clone(),
            bucket: checked.bucket.clone(),
        });
        if preflight_report::has_errors(&checked.findings) {
            let path = self.image.display().to_string();
            return Err(PipelineError::Refused {
                findings: checked
                    .findings
                    .into_iter()
                    .filter(Finding::is_error)
                    .map(|finding| ScopedFinding {
                        disk: Some(0),
                        path: Some(path.clone()),
                        finding,
                    })
                    .collect(),
                fix: Vec::new(),
                plan: Box::new(checked.plan),
            });
        }

        let size = prepared.source.size();
        let o = &self.options;
        if size >= o.multipart_threshold.min(oss_upload::MAX_SINGLE_PUT) {
            let bytes = oss_upload::buffer_memory(size, o.part_size, o.parallel)
                .map_err(PipelineError::Usage)?;
            on_event(&Event::PartBuffers {
                disk: 0,
                bytes,
                parallel: o.parallel,
            });
        }
        on_event(&Event::UploadStarted {
            disk: 0,
            path: self.image.clone(),
            key: key.clone(),
            size,
        });
        let sink = {
            let f = on_event.clone();
            Arc::new(move |event: UploadEvent| f(&Event::Upload { disk: 0, event }))
        };
        let started = Instant::now();
        let done = oss_upload::upload_source(&client, prepared.source.clone(), &key, o, sink)
            .await
            .map_err(|source| PipelineError::Upload {
                path: self.image.clone(),
                key: key.clone(),
                source: Box::new(source),
            })?;
        let seconds = started.elapsed().as_secs_f64();
        on_event(&Event::UploadFinished {
            disk: 0,
            etag: done.etag.clone(),
            parts_reused: done.parts_reused,
        });
        Ok(UploadResult {
            object: done,
            format: prepared.format,
            conversion: prepared.conversion,
            seconds,
            findings: checked.findings,
            bucket_facts: checked.bucket,
        })
    }

    /// Cancels the interrupted upload of this image, recorded by its checkpoint, and deletes
    /// its parts. The keys looked at are [`candidate_keys`](Self::candidate_keys). When none
    /// is recorded, lists what OSS has in progress for them, and leaves it alone. Reports
    /// [`Event::Credentials`].
    pub async fn abort(&self, on_event: impl Fn(&Event) + Send + Sync) -> Result<AbortOutcome> {
        let (client, source) = self.client().await?;
        on_event(&Event::Credentials(source));
        let keys = self.candidate_keys()?;
        let oss_err = |context: String| {
            move |source| PipelineError::Oss {
                context,
                source: Box::new(source),
            }
        };
        let mut out = AbortOutcome::default();
        for key in &keys {
            let id = oss_upload::abort_upload(&client, key, &self.options.checkpoint_dir)
                .await
                .map_err(oss_err(format!("cannot abort the upload of {key:?}")))?;
            if let Some(upload_id) = id {
                out.aborted.push(AbortedUpload {
                    key: key.clone(),
                    upload_id,
                });
            }
        }
        if !out.aborted.is_empty() {
            return Ok(out);
        }
        for key in keys {
            let on_oss = client
                .list_multipart_uploads(&key)
                .await
                .map_err(oss_err(format!("cannot list the uploads of {key:?}")))?
                .into_iter()
                .filter(|u| u.key == key)
                .collect();
            out.not_recorded.push(UnrecordedKey { key, on_oss });
        }
        Ok(out)
    }

    /// The keys an earlier run may have used: the object, else the file name and, for a
    /// disk that may have been converted, its `.qcow2` twin.
    pub fn candidate_keys(&self) -> Result<Vec<String>> {
        if let Some(k) = &self.object {
            return Ok(vec![k.clone()]);
        }
        let name = self
            .image
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                PipelineError::Usage(
                    "the image path has no UTF-8 file name; pass --object".to_string(),
                )
            })?;
        let mut keys = vec![name.to_string()];
        let twin = Path::new(name).with_extension("qcow2");
        if let Some(t) = twin.to_str().filter(|t| *t != name) {
            keys.push(t.to_string());
        }
        Ok(keys)
    }

    /// The OSS client, and where its credentials came from.
    async fn client(&self) -> Result<(preflight_oss::Client, String)> {
        let (_, source) = self
            .credentials
            .get_with_source()
            .await
            .map_err(|e| PipelineError::Credentials(e.to_string()))?;
        let mut config = self.endpoints.oss_config(&self.region, &self.bucket);
        config.signature = self.signature;
        let client = preflight_oss::Client::new(config, self.credentials.clone())
            .map_err(|e| PipelineError::OssClient(Box::new(e)))?;
        Ok((client, source.to_string()))
    }

    /// Decides what is sent; the map pass runs here when a conversion is possible.
    async fn prepare(
        &self,
        on_event: &Arc<dyn Fn(&Event) + Send + Sync>,
    ) -> Result<PreparedUpload> {
        let mode = convert::mode_for_key(self.convert, &self.image, self.object.as_deref())?;
        let (path, f) = (self.image.clone(), on_event.clone());
        let prepared = tokio::task::spawn_blocking(move || {
            convert::prepare_upload(&path, mode, &|bytes| f(&Event::Mapping { disk: 0, bytes }))
        })
        .await
        .map_err(|e| PipelineError::Usage(format!("the map pass stopped: {e}")))??;
        if let Some(c) = &prepared.conversion {
            on_event(&Event::Conversion {
                disk: 0,
                conversion: c.clone(),
            });
        }
        Ok(prepared)
    }
}
