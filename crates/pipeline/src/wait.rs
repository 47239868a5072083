//! Following an import task until its image is available: `ecs-preflight wait`, and the last
//! stage of [`import::run_import`](crate::import::run_import).
//!
//! Progress is reported as [`Event::WaitStarted`] then [`Event::TaskProgress`]; the caller's
//! `stop` future ends the wait (the import goes on in the cloud).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use preflight_aliyun::CredentialProvider;
use preflight_ecs::{self as ecs, watch, WaitOutcome};

use crate::{Endpoints, Event, PipelineError, Result};

/// How following a task ended.
#[derive(Debug)]
pub enum Followed {
    /// The task ended (image available, import failed) or the timeout passed.
    Done(WaitOutcome),
    /// Asking ECS failed after every retry (an outage, a dropped link); the import goes on
    /// and a later `wait` picks it up.
    Lost(ecs::Error),
    /// The caller's `stop` came first; the import goes on.
    Stopped,
}

/// Polls `task_id` every `poll_interval` until it ends, `timeout` passes or `stop` fires.
pub(crate) async fn follow<S: Future<Output = ()>>(
    client: &ecs::Client,
    task_id: &str,
    image_id: &str,
    (poll_interval, timeout): (Duration, Duration),
    on_event: &(dyn Fn(&Event) + Send + Sync),
    stop: std::pin::Pin<&mut S>,
) -> Followed {
    on_event(&Event::WaitStarted {
        task_id: task_id.to_string(),
        image_id: image_id.to_string(),
    });
    let waited = watch::wait(client, task_id, image_id, poll_interval, timeout, |p| {
        on_event(&Event::TaskProgress(p.clone()));
    });
    tokio::select! {
        r = waited => match r {
            Ok(outcome) => Followed::Done(outcome),
            Err(e) => Followed::Lost(e),
        },
        () = stop => Followed::Stopped,
    }
}

/// What `ecs-preflight wait` follows: an import task started earlier.
#[derive(Clone)]
pub struct WaitJob {
    /// The region of the import.
    pub region: String,
    /// The import task (`t-…`).
    pub task_id: String,
    /// Where ECS is.
    pub endpoints: Endpoints,
    /// Credentials.
    pub credentials: Arc<CredentialProvider>,
    /// RPC signature.
    pub rpc_signature: ecs::SignatureMethod,
    /// Time between two status queries.
    pub poll_interval: Duration,
    /// Longest wait; the import goes on after it.
    pub timeout: Duration,
}

/// What [`wait_for_task`] saw.
#[derive(Debug)]
pub struct WaitResult {
    /// The task's image (`None` when the task could not be looked up).
    pub image_id: Option<String>,
    /// How following it ended ([`Followed::Lost`] also when the lookup failed).
    pub followed: Followed,
}

/// `ecs-preflight wait`: looks the task up (DescribeTasks), then follows it until the image
/// is available, the import failed, the timeout passed or `stop` fired. A task the region
/// does not list is a [`PipelineError::Usage`].
pub async fn wait_for_task(
    job: &WaitJob,
    on_event: &(dyn Fn(&Event) + Send + Sync),
    stop: impl Future<Output = ()>,
) -> Result<WaitResult> {
    let client = ecs_client(
        &job.region,
        &job.endpoints,
        job.rpc_signature,
        &job.credentials,
    )?;
    let tasks = match client
        .describe_tasks(&ecs::DescribeTasksQuery {
            task_ids: vec![job.task_id.clone()],
            ..Default::default()
        })
        .await
    {
        Ok(tasks) => tasks,
        // Every retry spent: the same command picks it up later.
        Err(e) => {
            return Ok(WaitResult {
                image_id: None,
                followed: Followed::Lost(e),
            })
        }
    };
    let Some(task) = tasks.into_iter().find(|t| t.task_id == job.task_id) else {
        return Err(PipelineError::Usage(format!(
            "task {} is not in {}",
            job.task_id, job.region
        )));
    };
    tokio::pin!(stop);
    let followed = follow(
        &client,
        &task.task_id,
        &task.resource_id,
        (job.poll_interval, job.timeout),
        on_event,
        stop,
    )
    .await;
    Ok(WaitResult {
        image_id: Some(task.resource_id),
        followed,
    })
}

/// An ECS client for `region` at the endpoints given, signing with `signature`.
pub(crate) fn ecs_client(
    region: &str,
    endpoints: &Endpoints,
    signature: ecs::SignatureMethod,
    credentials: &Arc<CredentialProvider>,
) -> Result<ecs::Client> {
    let mut cfg = endpoints.ecs_config(region);
    cfg.signature = signature;
    ecs::Client::new(cfg, credentials.clone()).map_err(|source| PipelineError::Ecs {
        context: "cannot create the ECS client".into(),
        source: Box::new(source),
    })
}
