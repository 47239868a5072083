//! Watching an import: DescribeTaskAttribute and DescribeImages (with an explicit `Status`
//! filter) until the image is `Available`, the task `Failed`, `Cancelled`, `Deleted` or
//! `Paused`, or the image `CreateFailed`.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::api::{DescribeImagesQuery, Image};
use crate::client::Client;
use crate::error::Result;

/// One observation of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// `TaskStatus`.
    pub task_status: String,
    /// `TaskProcess` (`"40%"`).
    pub task_process: String,
    /// The image's `Status` (empty when the image is not listed).
    pub image_status: String,
    /// The image's `Progress`.
    pub image_progress: String,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum WaitOutcome {
    /// The image is `Available`.
    Available(Image),
    /// The task failed, was cancelled, or the image is `CreateFailed`/gone.
    Failed {
        /// Error code (`ImportImageFailed`, `InvalidImageSize`, `CreateFailed`, …).
        code: String,
        /// Why.
        message: String,
    },
    /// The timeout passed first; the import goes on.
    TimedOut(Progress),
}

/// Polls once. Returns the observation and, when the import is over, its outcome.
pub async fn poll(
    client: &Client,
    task_id: &str,
    image_id: &str,
) -> Result<(Progress, Option<WaitOutcome>)> {
    let attr = client.describe_task_attribute(task_id).await?;
    // A task listed without its image (no ResourceId where it was looked up) still names it.
    let found_id = attr.image_id();
    let image_id = if image_id.is_empty() {
        found_id.as_deref().unwrap_or("")
    } else {
        image_id
    };
    let mut images_denied = false;
    let images = if image_id.is_empty() {
        Vec::new()
    } else {
        match client
            .describe_images(&DescribeImagesQuery {
                image_id: Some(image_id.to_string()),
                ..DescribeImagesQuery::default()
            })
            .await
        {
            Ok(images) => images,
            // A key without ecs:DescribeImages: the task's status is all there is to follow.
            Err(e) if matches!(e.code(), Some(c) if c.starts_with("Forbidden") || c.starts_with("NoPermission")) =>
            {
                images_denied = true;
                Vec::new()
            }
            Err(e) => return Err(e),
        }
    };
    let image = images.into_iter().find(|i| i.image_id == image_id);
    let progress = Progress {
        task_status: attr.task.task_status.clone(),
        task_process: attr.task_process.clone(),
        image_status: image.as_ref().map(|i| i.status.clone()).unwrap_or_default(),
        image_progress: image
            .as_ref()
            .map(|i| i.progress.clone())
            .unwrap_or_default(),
    };
    let failed = |code: &str, message: String| {
        Some(WaitOutcome::Failed {
            code: code.to_string(),
            message,
        })
    };
    let outcome = match (attr.task.task_status.as_str(), &image) {
        // Deleted and Paused tasks go no further on their own: waiting longer cannot help.
        ("Failed" | "Cancelled" | "Canceled" | "Deleted" | "Paused", _) => {
            let (code, msg) = attr.failure().unwrap_or_default();
            let code = if code.is_empty() {
                format!("Task{}", attr.task.task_status)
            } else {
                code
            };
            let msg = if msg.is_empty() {
                format!("task {task_id} is {}", attr.task.task_status)
            } else {
                msg
            };
            failed(&code, msg)
        }
        (_, Some(i)) if i.status == "CreateFailed" || i.status == "UnAvailable" => {
            let (code, msg) = attr.failure().unwrap_or_default();
            failed(
                if code.is_empty() {
                    "CreateFailed"
                } else {
                    &code
                },
                if msg.is_empty() {
                    format!("image {image_id} is {}", i.status)
                } else {
                    msg
                },
            )
        }
        (_, Some(i)) if i.status == "Available" => Some(WaitOutcome::Available(i.clone())),
        // A finished import task made its image; without DescribeImages that is all we know.
        ("Finished", None) if images_denied => Some(WaitOutcome::Available(Image {
            image_id: image_id.to_string(),
            ..Image::default()
        })),
        ("Finished", None) if !image_id.is_empty() => failed(
            "InvalidImageId.NotFound",
            format!("task {task_id} finished but image {image_id} is not listed"),
        ),
        _ => None,
    };
    Ok((progress, outcome))
}

/// Polls every `interval` until the import is over or `timeout` passes; `on_progress` sees
/// every observation that differs from the previous one.
pub async fn wait(
    client: &Client,
    task_id: &str,
    image_id: &str,
    interval: Duration,
    timeout: Duration,
    mut on_progress: impl FnMut(&Progress),
) -> Result<WaitOutcome> {
    let start = Instant::now();
    let mut last: Option<Progress> = None;
    loop {
        let (p, outcome) = poll(client, task_id, image_id).await?;
        if last.as_ref() != Some(&p) {
            on_progress(&p);
        }
        if let Some(o) = outcome {
            return Ok(o);
        }
        if start.elapsed() >= timeout {
            return Ok(WaitOutcome::TimedOut(p));
        }
        last = Some(p);
        let left = timeout.saturating_sub(start.elapsed());
        tokio::time::sleep(interval.min(left)).await;
    }
}
