//! `import` and `wait` as library use cases ([`run_import`], [`wait_for_task`]) against the
//! in-process emulator: no binary is spawned.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    creds, emulator_copying, emulator_with_web_raw as emulator, import_job as job, recorder,
};
use preflight_ecs::WaitOutcome;
use preflight_emulator::{Emulator, Faults};
use preflight_pipeline::fleet::{CopyStopState, FleetEvent, FleetPlan};
use preflight_pipeline::import::{run_import, ImportResult};
use preflight_pipeline::wait::{wait_for_task, Followed, WaitJob};
use preflight_pipeline::{Endpoints, Event};

const FRIEND: &str = "1111222233334444";

fn requests(emu: &Emulator, api: &str) -> u64 {
    emu.counters().requests_for(api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_reaches_available_and_a_rerun_gets_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), 0.5, true).await;
    let (seen, on_event) = recorder();
    let r = run_import(&job(&emu, "lib-01"), on_event, std::future::pending())
        .await
        .unwrap();
    let ImportResult::Finished {
        started, outcome, ..
    } = r
    else {
        panic!("{r:?}");
    };
    let WaitOutcome::Available(image) = *outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(image.image_id, started.image_id);
    assert!(!started.reused);
    assert!(started.plan.client_token.is_some());
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().any(|e| matches!(e, Event::Credentials(_))));
    assert!(seen
        .iter()
        .any(|e| matches!(e, Event::ImportStarted { task_id, .. } if *task_id == started.task_id)));
    assert!(seen.iter().any(
        |e| matches!(e, Event::WaitStarted { image_id, .. } if *image_id == started.image_id)
    ));
    assert!(seen.iter().any(|e| matches!(e, Event::TaskProgress(_))));

    // Same objects, same parameters: the same ClientToken, the same image.
    let again = run_import(&job(&emu, "lib-01"), |_: &Event| {}, std::future::pending())
        .await
        .unwrap();
    let ImportResult::Finished { started: s2, .. } = again else {
        panic!("{again:?}");
    };
    assert_eq!(s2.image_id, started.image_id);
    assert!(s2.reused);
    assert_eq!(requests(&emu, "CancelTask"), 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_rule_refuses_before_import_image_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // No import role: ECS could not read the bucket.
    let emu = emulator(dir.path(), 0.5, false).await;
    let r = run_import(&job(&emu, "lib-02"), |_: &Event| {}, std::future::pending())
        .await
        .unwrap();
    let ImportResult::Refused { findings, fix, .. } = r else {
        panic!("{r:?}");
    };
    assert!(
        findings
            .iter()
            .any(|f| f.finding.code == "NoSetRoletoECSServiceAcount"),
        "{findings:?}"
    );
    assert!(
        fix.iter()
            .any(|l| l.contains("AliyunECSImageImportDefaultRole")),
        "{fix:?}"
    );
    assert_eq!(requests(&emu, "ImportImage"), 0);

    // A local rule (a bad image name) refuses before any request.
    emu.reset_counters();
    let r = run_import(&job(&emu, "1-bad"), |_: &Event| {}, std::future::pending())
        .await
        .unwrap();
    assert!(matches!(r, ImportResult::Refused { .. }), "{r:?}");
    assert_eq!(emu.counters().requests.values().sum::<u64>(), 0);
    emu.shutdown().await;
}

/// A stop future that fires once the wait has begun.
fn stop_when_waiting() -> (
    impl Fn(&Event) + Send + Sync + 'static,
    impl std::future::Future<Output = ()>,
) {
    let waiting = Arc::new(tokio::sync::Notify::new());
    let w = waiting.clone();
    let on_event = move |e: &Event| {
        if matches!(e, Event::WaitStarted { .. }) {
            w.notify_one();
        }
    };
    (on_event, async move { waiting.notified().await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_waiting_cancels_the_import_or_detaches() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), 30.0, true).await;
    let (on_event, stop) = stop_when_waiting();
    let r = run_import(&job(&emu, "lib-03"), on_event, stop)
        .await
        .unwrap();
    let ImportResult::Cancelled { started, error } = r else {
        panic!("{r:?}");
    };
    assert!(error.is_none(), "{error:?}");
    assert_eq!(requests(&emu, "CancelTask"), 1);
    let ecs = preflight_ecs::Client::new(
        Endpoints::emulator(&emu.endpoint()).ecs_config("cn-hangzhou"),
        creds(),
    )
    .unwrap();
    let tasks = ecs
        .describe_tasks(&preflight_ecs::DescribeTasksQuery {
            task_ids: vec![started.task_id.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(tasks[0].task_status.starts_with("Cancel"), "{:?}", tasks[0]);

    // With detach, the import goes on.
    let (on_event, stop) = stop_when_waiting();
    let mut j = job(&emu, "lib-04");
    j.detach = true;
    let r = run_import(&j, on_event, stop).await.unwrap();
    assert!(matches!(r, ImportResult::Detached(_)), "{r:?}");
    assert_eq!(requests(&emu, "CancelTask"), 1);

    // A stop before ImportImage: nothing is imported.
    emu.reset_counters();
    let r = run_import(&job(&emu, "lib-05"), |_: &Event| {}, async {})
        .await
        .unwrap();
    assert!(matches!(r, ImportResult::Interrupted), "{r:?}");
    assert_eq!(requests(&emu, "ImportImage"), 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_rides_out_an_outage_and_reports_one_that_outlasts_the_retries() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), 1.0, true).await;
    let mut j = job(&emu, "lib-06");
    j.wait = false;
    let r = run_import(&j, |_: &Event| {}, std::future::pending())
        .await
        .unwrap();
    let ImportResult::Started(started) = r else {
        panic!("{r:?}");
    };
    let wait = WaitJob {
        region: "cn-hangzhou".into(),
        task_id: started.task_id.clone(),
        endpoints: Endpoints::emulator(&emu.endpoint()),
        credentials: creds(),
        rpc_signature: preflight_pipeline::SignatureMethod::HmacSha1,
        poll_interval: Duration::from_millis(100),
        timeout: Duration::from_secs(60),
    };
    let outage = |retry_after: u64| Faults {
        unavailable_actions: vec!["DescribeTasks".into(), "DescribeTaskAttribute".into()],
        unavailable_retry_after: Some(retry_after),
        ..Faults::default()
    };

    // A task the region does not list is a usage error, not a wait.
    let unknown = WaitJob {
        task_id: "t-notthere0000000000".into(),
        ..wait.clone()
    };
    let e = wait_for_task(&unknown, &|_: &Event| {}, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "PIPELINE.Usage", "{e}");
    assert!(e.to_string().contains("t-notthere0000000000"), "{e}");

    // An outage longer than every retry: the wait says so; the import goes on.
    emu.set_faults(outage(0));
    let r = wait_for_task(&wait, &|_: &Event| {}, std::future::pending())
        .await
        .unwrap();
    assert!(matches!(r.followed, Followed::Lost(_)), "{r:?}");

    // ECS fails for a second, then answers: the retries carry the wait through.
    emu.set_faults(outage(1));
    let quiet = |_: &Event| {};
    let waited = wait_for_task(&wait, &quiet, std::future::pending());
    let recover = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        emu.set_faults(Faults::default());
    };
    let (r, ()) = tokio::join!(waited, recover);
    let r = r.unwrap();
    assert_eq!(r.image_id.as_deref(), Some(started.image_id.as_str()));
    assert!(
        matches!(r.followed, Followed::Done(WaitOutcome::Available(_))),
        "{r:?}"
    );
    assert!(
        emu.counters()
            .errors
            .get("ServiceUnavailable")
            .copied()
            .unwrap_or(0)
            > 0
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_and_shares_follow_an_available_image() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator(dir.path(), 0.5, true).await;
    let mut j = job(&emu, "lib-07");
    j.fleet = FleetPlan {
        copy_regions: vec!["cn-beijing".into()],
        copy_names: Vec::new(),
        share_accounts: vec![FRIEND.into()],
    };
    let (seen, on_event) = recorder();
    let r = run_import(&j, on_event, std::future::pending())
        .await
        .unwrap();
    let ImportResult::Finished { fleet, .. } = r else {
        panic!("{r:?}");
    };
    let regions: Vec<&str> = fleet.images.iter().map(|i| i.region.as_str()).collect();
    assert_eq!(regions, ["cn-hangzhou", "cn-beijing"], "{fleet:?}");
    for i in &fleet.images {
        assert_eq!(i.status, "Available", "{i:?}");
        assert_eq!(i.shared_with, [FRIEND], "{i:?}");
    }
    assert_eq!(requests(&emu, "CopyImage"), 1);
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Fleet(_))));
    emu.shutdown().await;
}

/// A stop that fires once a copy has started.
fn stop_when_copying() -> (
    impl Fn(&Event) + Send + Sync + 'static,
    impl std::future::Future<Output = ()>,
) {
    let copying = Arc::new(tokio::sync::Notify::new());
    let c = copying.clone();
    let on_event = move |e: &Event| {
        if matches!(e, Event::Fleet(FleetEvent::CopyStarted { .. })) {
            c.notify_one();
        }
    };
    (on_event, async move { copying.notified().await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_copying_leaves_the_copy_when_detaching_else_cancels_it() {
    let dir = tempfile::tempdir().unwrap();
    // Copies take a minute: still Creating when the stop comes.
    let emu = emulator_copying(dir.path(), 0.3, true, 60.0).await;
    let mut j = job(&emu, "lib-08");
    j.fleet = FleetPlan {
        copy_regions: vec!["cn-beijing".into()],
        copy_names: vec!["lib-08-bj".into()],
        share_accounts: Vec::new(),
    };
    j.detach = true;
    let (on_event, stop) = stop_when_copying();
    let r = run_import(&j, on_event, stop).await.unwrap();
    let ImportResult::CopiesStopped { copies, image, .. } = r else {
        panic!("{r:?}");
    };
    assert_eq!(image.status, "Available");
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(
        (copies[0].region.as_str(), copies[0].state),
        ("cn-beijing", CopyStopState::Left)
    );
    assert_eq!(requests(&emu, "CancelCopyImage"), 0);

    // Without detach: the same copy (found by the rerun) is cancelled.
    j.detach = false;
    let (on_event, stop) = stop_when_copying();
    let r = run_import(&j, on_event, stop).await.unwrap();
    let ImportResult::CopiesStopped { copies: again, .. } = r else {
        panic!("{r:?}");
    };
    assert_eq!(again[0].image_id, copies[0].image_id);
    assert_eq!(again[0].state, CopyStopState::Cancelled, "{again:?}");
    assert_eq!(requests(&emu, "CancelCopyImage"), 1);
    assert_eq!(requests(&emu, "CopyImage"), 1);
    emu.shutdown().await;
}

/// A stop `after` the emulator processed the first `api` request once `copying` was notified.
async fn stop_after(
    emu: Arc<Emulator>,
    copying: Arc<tokio::sync::Notify>,
    api: &'static str,
    after: Duration,
) {
    copying.notified().await;
    let before = requests(&emu, api);
    while requests(&emu, api) == before {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(after).await;
}

/// A stop between CopyImage's answer and the CopyStarted event (while the copy's liveness is
/// checked), or while CopyImage itself is unanswered, still cancels the copy: the copy step
/// records it from the answer, and sends an unanswered CopyImage again (same ClientToken) to
/// learn which copy to cancel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_before_the_copy_started_event_still_cancels_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Arc::new(emulator_copying(dir.path(), 0.3, true, 60.0).await);
    let mut cancels = 0;
    // (image name, the request after which the stop comes)
    for (name, api) in [
        // CopyImage processed and answered: the stop lands in the DescribeImages that follows.
        ("lib-10", "CopyImage"),
        // The DescribeImages looking for an earlier copy answered: CopyImage is in flight.
        ("lib-11", "DescribeImages"),
    ] {
        emu.set_faults(Faults::default());
        let mut j = job(&emu, name);
        j.fleet = FleetPlan {
            copy_regions: vec!["cn-beijing".into()],
            copy_names: vec![format!("{name}-bj")],
            share_accounts: Vec::new(),
        };
        let (seen, record) = recorder();
        let (slow, copying) = (emu.clone(), Arc::new(tokio::sync::Notify::new()));
        let c = copying.clone();
        let on_event = move |e: &Event| {
            // Before the copy step sends anything: every answer from now on takes 400 ms.
            if matches!(e, Event::StageStarted(preflight_pipeline::Stage::Copy)) {
                slow.set_faults(Faults {
                    delay_ms: 400,
                    ..Faults::default()
                });
                c.notify_one();
            }
            record(e);
        };
        let stop = stop_after(emu.clone(), copying, api, Duration::from_millis(100));
        let r = run_import(&j, on_event, stop).await.unwrap();
        let ImportResult::CopiesStopped { copies, .. } = r else {
            panic!("{name}: {r:?}");
        };
        assert!(
            !seen
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, Event::Fleet(FleetEvent::CopyStarted { .. }))),
            "{name}: the stop came after CopyStarted, not before"
        );
        assert_eq!(copies.len(), 1, "{name}: {copies:?}");
        assert_eq!(
            copies[0].state,
            CopyStopState::Cancelled,
            "{name}: {copies:?}"
        );
        cancels += 1;
        assert_eq!(requests(&emu, "CancelCopyImage"), cancels, "{name}");
    }
    Arc::try_unwrap(emu).unwrap().shutdown().await;
}
