//! `upload-and-import`'s stop handling as the library's: [`Pipeline::run_until`] returns once
//! ImportImage answered when the caller does not wait, and on `stop` cancels the import or
//! the copies, leaves them running, or says what resumes, depending on how far the run got.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::fleet::{cancel_copies, stopped_copies, StoppedCopy, Tracked};
use crate::{Event, Outcome, Pipeline, PipelineError, Result, Stage};

/// How far a run got: from its events, and for the copies from the copy step itself.
#[derive(Default)]
pub(crate) struct Reached {
    /// The import, once ImportImage answered: (image id, task id).
    import: Mutex<Option<(String, String)>>,
    /// The image is available and the copy and share step has begun.
    copying: Mutex<bool>,
    /// The copies started or found (which are seen available), and CopyImage requests not
    /// yet answered: filled by the copy step itself, not from its events, so that a stop
    /// between CopyImage's answer and its event still finds the copy.
    pub(crate) copies: Arc<Mutex<Tracked>>,
    /// Signalled when ImportImage has answered.
    import_started: Notify,
}

impl Reached {
    /// Records what `e` says about how far the run got.
    pub(crate) fn observe(&self, e: &Event) {
        match e {
            Event::ImportStarted {
                image_id, task_id, ..
            } => {
                *lock(&self.import) = Some((image_id.clone(), task_id.clone()));
                self.import_started.notify_one();
            }
            Event::StageStarted(Stage::Copy) => *lock(&self.copying) = true,
            _ => {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How [`Pipeline::run_until`] ended.
#[derive(Debug)]
pub enum RunEnd {
    /// Every stage ran: the image is available.
    Available(Box<Outcome>),
    /// ImportImage answered and the caller does not wait: the import goes on.
    Importing {
        /// The image.
        image_id: String,
        /// The import task.
        task_id: String,
    },
    /// `stop` came before ImportImage answered: nothing was imported; an upload resumes
    /// from its checkpoint on the next run.
    Interrupted,
    /// `stop` came while copying: the image is available; every copy not yet available was
    /// cancelled (CancelCopyImage) or, with `detach`, left going on in the cloud.
    InterruptedCopying {
        /// The image.
        image_id: String,
        /// The import task.
        task_id: String,
        /// Every copy started or found, and what became of it.
        copies: Vec<StoppedCopy>,
    },
    /// `stop` came while waiting and `detach` was asked: the import goes on.
    Detached {
        /// The image.
        image_id: String,
        /// The import task.
        task_id: String,
    },
    /// `stop` came while waiting: CancelTask was sent.
    Cancelled {
        /// The image (it will not be created).
        image_id: String,
        /// The import task.
        task_id: String,
        /// CancelTask's error, if it failed.
        error: Option<PipelineError>,
    },
}

impl Pipeline {
    /// [`run`](Self::run), stopped by `stop` or — when `wait` is false — once ImportImage
    /// answered. On `stop` while waiting the import is cancelled (CancelTask), and while
    /// copying the copies not yet available (CancelCopyImage), unless `detach`. Errors are
    /// [`run`](Self::run)'s.
    pub async fn run_until(
        &self,
        wait: bool,
        detach: bool,
        stop: impl Future<Output = ()>,
    ) -> Result<RunEnd> {
        tokio::select! {
            r = self.run() => r.map(|o| RunEnd::Available(Box::new(o))),
            () = self.reached.import_started.notified(), if !wait => {
                let (image_id, task_id) = lock(&self.reached.import).clone().unwrap_or_default();
                Ok(RunEnd::Importing { image_id, task_id })
            }
            () = stop => Ok(self.stopped(detach).await),
        }
    }

    async fn stopped(&self, detach: bool) -> RunEnd {
        let started = lock(&self.reached.import).clone();
        let copying = *lock(&self.reached.copying);
        match started {
            // The image is there: only copies to cancel.
            Some((image_id, task_id)) if copying => {
                let ctx = self.fleet_context();
                let seen = stopped_copies(&ctx, &self.reached.copies, detach).await;
                let f = self.on_event.clone();
                let copies =
                    cancel_copies(&ctx, &seen, detach, &move |e| f(&Event::Fleet(e))).await;
                RunEnd::InterruptedCopying {
                    image_id,
                    task_id,
                    copies,
                }
            }
            None => RunEnd::Interrupted,
            Some((image_id, task_id)) if detach => RunEnd::Detached { image_id, task_id },
            Some((image_id, task_id)) => {
                let error = self.cancel_import(&task_id).await.err();
                RunEnd::Cancelled {
                    image_id,
                    task_id,
                    error,
                }
            }
        }
    }
}
