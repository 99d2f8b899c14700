//! Two replicas on one PostgreSQL database, in one process: two engines, each with its own
//! store connection pool and its own simulated fleet (as two `rollscale up` processes have),
//! sharing the work through leases. A task is driven by exactly one; an operator action
//! through the other reaches it; when the driver dies, the other takes the task over where it
//! stood and finishes it; the reconciler runs on one.
//!
//! PostgreSQL: `ROLLSCALE_TEST_POSTGRES_URL` (as the store's tests), or else the server that
//! `scripts/postgres` makes available (it installs and starts one); each test creates a
//! database of its own.

use rollscale_core::domain::{ActivityStatus, LifecycleState, ScalingGroup};
use rollscale_core::ids::{ExecutionId, InstanceId};
use rollscale_core::task::{InstanceDecision, InstanceStatus, InstanceWork, TaskState, TaskStatus, WaitingStatus};
use rollscale_engine::service::{NewGroup, Notification, TaskInstance};
use rollscale_engine::{EngineConfig, Replication};
use rollscale_store::{task_lease_name, RECONCILER_LEASE};
use rollscale_test_support::engine::StartTemplate;
use rollscale_test_support::engine::{
    configuration, enabled_group, fast_config, Harness, IMAGE_TEMPLATE, NEW_IMAGE, OLD_IMAGE,
};
use rollscale_test_support::{postgres, wait};
use std::collections::HashMap;
use std::time::Duration;

fn replication(name: &str) -> Replication {
    Replication {
        replica_id: name.to_string(),
        lease_ttl: Duration::from_millis(1500),
        renew_every: Duration::from_millis(250),
        poll_every: Duration::from_millis(200),
    }
}

fn config(name: &str) -> EngineConfig {
    EngineConfig { task_poll: Duration::from_millis(200), replication: Some(replication(name)), ..fast_config() }
}

/// One replica: its own store connection pool, its own simulated drivers, its engine.
async fn replica(url: &str, name: &str) -> Harness {
    let replica =
        Harness::builder().database(url).latency_ms(25).config(config(name)).unchecked_load_balancer().build().await;
    // As `rollscale up` does at start.
    replica.engine.adopt_recorded(None).await.expect("adopt");
    replica.service.spawn_reconciler();
    replica.engine.spawn_lease_poller();
    replica
}

/// A fresh database on the test server.
async fn database() -> String {
    postgres::database("rollscale_replicas").await
}

/// A group of `size` InService instances on OLD_IMAGE, set up through `a`, brought to
/// capacity by whichever replica runs the reconciler.
async fn group(a: &Harness, size: u32) -> ScalingGroup {
    let service = &a.service;
    service.create_image(OLD_IMAGE, None, None).await.expect("image");
    service.create_image(NEW_IMAGE, None, None).await.expect("image");
    let lb = service.create_load_balancer("lb", 100).await.expect("lb");
    let new = NewGroup {
        name: "g".into(),
        max_size: size,
        desired_capacity: Some(size),
        load_balancer_ids: vec![lb.id],
        ..NewGroup::default()
    };
    let (group, _) = enabled_group(service, new, configuration(OLD_IMAGE)).await;
    let capacity = async || {
        let instances = service.instances(Some(&group.id), None, None).await.expect("instances");
        assert!(instances.len() <= size as usize, "one reconciler at a time: {} instances", instances.len());
        let in_service = instances.iter().filter(|i| i.lifecycle_state == LifecycleState::InService).count();
        // The scale-out's activity ends after its instances are in service: a rolling update
        // is refused until then (R3).
        let (activities, _) = service.activities(&group.id, 0, 20).await.expect("activities");
        let busy = activities.iter().any(|activity| activity.status == ActivityStatus::InProgress);
        if in_service == size as usize && !busy {
            Ok(())
        } else {
            Err(format!("{in_service} of {} instances InService, scaling activity under way: {busy}", instances.len()))
        }
    };
    let what = "the group at its capacity, its scaling activity ended";
    wait::until_ok(what, Duration::from_secs(30), Duration::from_millis(50), capacity).await;
    service.group(&group.id).await.expect("group")
}

async fn task(replica: &Harness, id: &ExecutionId) -> (TaskState, Vec<InstanceWork>) {
    replica.service.task(id).await.expect("task")
}

/// Waits until `done` says so of the task (read through `replica` every 20 ms), for at most
/// 30 s.
async fn wait_for(
    replica: &Harness,
    id: &ExecutionId,
    what: &str,
    done: impl Fn(&TaskState, &[InstanceWork]) -> bool,
) -> (TaskState, Vec<InstanceWork>) {
    wait::until_ok(what, Duration::from_secs(30), Duration::from_millis(20), async || {
        let (task, works) = task(replica, id).await;
        if done(&task, &works) {
            Ok((task, works))
        } else {
            Err(task.describe_status())
        }
    })
    .await
}

fn image_params(group: &ScalingGroup, batches: u32, pause: &str) -> serde_json::Value {
    serde_json::json!({
        "invokeType": "invoke",
        "scalingGroupId": group.id,
        "imageId": NEW_IMAGE,
        "batchNumber": batches,
        "batchPauseOption": pause,
    })
}

/// How many changes each replica's fleet made to each instance.
fn applied(replica: &Harness, ids: &[InstanceId]) -> HashMap<InstanceId, u64> {
    ids.iter().map(|id| (id.clone(), replica.fleet.apply_op_count(id).unwrap_or(0))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_drives_a_task_an_action_through_the_other_reaches_it_and_the_other_finishes_it_when_it_dies() {
    let url = database().await;
    let a = replica(&url, "replica-a").await;
    let b = replica(&url, "replica-b").await;
    // Each replica's reconciler tries to take the lease as it starts, in the background.
    let taken = async || a.engine.store().lease_get(RECONCILER_LEASE).await.unwrap().map(|_| ());
    wait::until("a replica to take the reconciler's lease", Duration::from_secs(10), Duration::from_millis(20), taken)
        .await;
    let reconciler = a.engine.store().lease_get(RECONCILER_LEASE).await.unwrap().expect("someone reconciles");
    assert!(["replica-a", "replica-b"].contains(&reconciler.owner.as_str()), "{reconciler:?}");
    let group = group(&a, 8).await;
    let ids: Vec<InstanceId> = a
        .service
        .instances(Some(&group.id), None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|instance| instance.id)
        .collect();

    // Started through A, which takes its lease and drives it; 4 batches of 2, paused after
    // the first.
    let started = a
        .service
        .start_template(IMAGE_TEMPLATE, &image_params(&group, 4, "FirstBatchPause").to_string())
        .await
        .expect("start");
    let id = started.id.clone();
    let (_, works) = wait_for(&b, &id, "the first batch's pause", |task, _| {
        task.status == TaskStatus::Waiting && task.waiting == Some(WaitingStatus::BatchPaused)
    })
    .await;
    let lease = a.engine.store().lease_get(&task_lease_name(&id)).await.unwrap().expect("leased");
    assert_eq!(lease.owner, "replica-a");
    assert!(a.engine.is_driving(&id));
    let first_batch: Vec<&InstanceId> =
        works.iter().filter(|work| work.status == InstanceStatus::Success).map(|work| &work.instance_id).collect();
    assert_eq!(first_batch.len(), 2, "{works:?}");
    for instance in &ids {
        let expected = u64::from(first_batch.contains(&instance));
        assert_eq!(a.fleet.apply_op_count(instance).unwrap_or(0), expected, "A changed {instance}");
        assert_eq!(b.fleet.apply_op_count(instance).unwrap_or(0), 0, "B changed {instance} while A drives");
    }

    // Continued through B, which does not drive the task: the write reaches A's driver.
    b.service.continue_task(&id).await.expect("continue through B");
    let (_, works) = wait_for(&b, &id, "the second batch", |_, works| {
        works.iter().filter(|work| work.status == InstanceStatus::Success).count() >= 3
    })
    .await;
    // A dies mid-task (every task of it stops at its next await, its leases unrenewed).
    a.engine.halt();
    // A statement A had sent may still land: once no connection of A's is out, each has. B
    // cannot take over before A's lease expires.
    let answered = async || (a.engine.store().connections_in_use() == 0).then_some(());
    wait::until("every statement A sent to be answered", Duration::from_secs(5), Duration::from_millis(5), answered)
        .await;
    // Restated from a check at one moment: `drive` counts a task as driven while it only
    // tries to take the lease (an operator's action through B, as the continue above, has B
    // try), so wait for any such attempt to end. Had B taken the task over, it would go on
    // driving it and own its lease, which the next lines check.
    let not_driving = async || (!b.engine.is_driving(&id)).then_some(());
    wait::until("B not to drive it", Duration::from_secs(1), Duration::from_millis(10), not_driving).await;
    assert_eq!(a.engine.store().lease_get(&task_lease_name(&id)).await.unwrap().unwrap().owner, "replica-a");
    assert!(ids.iter().all(|instance| b.fleet.apply_op_count(instance).unwrap_or(0) == 0), "B changed nothing");
    assert_eq!(b.engine.cas_conflicts(), 0, "B never wrote the task: {works:?}");
    let at_death: HashMap<InstanceId, InstanceStatus> =
        task(&b, &id).await.1.into_iter().map(|work| (work.instance_id, work.status)).collect();
    let applied_by_a = applied(&a, &ids);
    assert!(at_death.values().any(|status| *status != InstanceStatus::Success), "mid-task: {at_death:?}");

    // B takes it over once A's lease expires, and finishes it.
    let (task_state, works) = wait_for(&b, &id, "the end", |task, _| task.status.is_final()).await;
    assert_eq!(task_state.status, TaskStatus::Success, "{}", task_state.describe_status());
    assert!(b.engine.is_driving(&id) || a.engine.store().lease_get(&task_lease_name(&id)).await.unwrap().is_none());
    assert!(works.iter().all(|work| work.status == InstanceStatus::Success && work.applied), "{works:?}");
    let applied_by_b = applied(&b, &ids);
    for instance in &ids {
        let (by_a, by_b) = (applied_by_a[instance], applied_by_b[instance]);
        match at_death[instance] {
            // Done under A: never again under B.
            InstanceStatus::Success => assert_eq!((by_a, by_b), (1, 0), "{instance}"),
            // Never begun under A: done once under B.
            InstanceStatus::Queued => assert_eq!((by_a, by_b), (0, 1), "{instance}"),
            // In flight when A died: its step is redone by B (A's effect died with A's memory),
            // at most once by each.
            _ => assert!(by_a <= 1 && by_b <= 1 && by_a + by_b >= 1, "{instance}: {by_a} {by_b}"),
        }
    }
    assert!(applied_by_b.values().sum::<u64>() > 0, "B drove the rest");
    let instances = b.service.instances(Some(&group.id), None, None).await.unwrap();
    assert_eq!(instances.len(), 8);
    for instance in &instances {
        assert_eq!(instance.image_id, NEW_IMAGE, "{instance:?}");
        assert_eq!(instance.lifecycle_state, LifecycleState::InService, "{instance:?}");
        assert!(instance.tags.contains(&id.to_string()), "{instance:?}");
        // B's simulated fleet, which took the store's record at takeover, agrees.
        assert_eq!(b.fleet.snapshot(&instance.id).expect("known to B").image_id, NEW_IMAGE);
    }
    // The lease of a finished task is given back; the reconciler's is B's now.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let task_lease = b.engine.store().lease_get(&task_lease_name(&id)).await.unwrap();
        let reconciler = b.engine.store().lease_get(RECONCILER_LEASE).await.unwrap().expect("reconciled");
        if task_lease.is_none() && reconciler.owner == "replica-b" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{task_lease:?} {reconciler:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.engine.halt();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_a_cancel_and_a_rollback_through_the_non_owner_reach_the_owner() {
    let url = database().await;
    let a = replica(&url, "replica-a").await;
    let b = replica(&url, "replica-b").await;
    let group = group(&a, 4).await;
    let first = a.service.instances(Some(&group.id), None, None).await.unwrap()[0].id.clone();
    // The first instance fails in A's fleet: the task pauses for a decision (R7, R8).
    a.fleet.fail_next(&first, 1);
    let started = a
        .service
        .start_template(IMAGE_TEMPLATE, &image_params(&group, 2, "Automatic").to_string())
        .await
        .expect("start through A");
    let id = started.id;
    let (_, works) = wait_for(&b, &id, "the failure pause under A", |task, _| {
        task.status == TaskStatus::Waiting && task.waiting == Some(WaitingStatus::FailurePaused)
    })
    .await;
    assert_eq!(b.engine.store().lease_get(&task_lease_name(&id)).await.unwrap().unwrap().owner, "replica-a");
    let failed = works.iter().find(|work| work.status == InstanceStatus::Failed).expect("a failed instance");
    assert_eq!(failed.instance_id, first);

    // Retry through B: A runs the instance again and goes on.
    b.service
        .notify(
            &id,
            Notification::Decide {
                instance: TaskInstance::Child(failed.execution_id.clone()),
                decision: InstanceDecision::Retry,
            },
        )
        .await
        .expect("retry through B");
    wait_for(&b, &id, "the retried instance's success", |_, works| {
        works.iter().any(|work| work.instance_id == first && work.status == InstanceStatus::Success)
    })
    .await;
    assert_eq!(a.fleet.apply_op_count(&first), Some(2), "failed once, then retried by A");
    assert_eq!(b.fleet.apply_op_count(&first).unwrap_or(0), 0);
    let (task_state, _) = wait_for(&b, &id, "the end", |task, _| task.status.is_final()).await;
    assert_eq!(task_state.status, TaskStatus::Success, "{}", task_state.describe_status());

    // A second task, paused after its first batch by A; cancelled through B.
    let second = a
        .service
        .start_template(
            IMAGE_TEMPLATE,
            &serde_json::json!({
                "invokeType": "invoke", "scalingGroupId": group.id, "imageId": OLD_IMAGE,
                "batchNumber": 2, "batchPauseOption": "EveryBatchPause",
            })
            .to_string(),
        )
        .await
        .expect("second");
    wait_for(&b, &second.id, "the pause", |task, _| task.status == TaskStatus::Waiting).await;
    assert_eq!(b.engine.store().lease_get(&task_lease_name(&second.id)).await.unwrap().unwrap().owner, "replica-a");
    b.service.cancel_task(&second.id, false).await.expect("cancel through B");
    let (task_state, _) = wait_for(&b, &second.id, "the cancel", |task, _| task.status.is_final()).await;
    assert_eq!(task_state.status, TaskStatus::Cancelled, "{}", task_state.describe_status());
    assert!(!b.engine.is_driving(&second.id));

    // A third, paused by A after its first batch; a rollback of it started through B cancels
    // it first (R12: A's driver finishes the cancel), then puts the changed instances back.
    let mut params = image_params(&group, 2, "FirstBatchPause");
    params["sourceImageId"] = serde_json::json!(OLD_IMAGE);
    let third = a.service.start_template(IMAGE_TEMPLATE, &params.to_string()).await.expect("third");
    let (_, works) = wait_for(&b, &third.id, "the pause", |task, _| task.status == TaskStatus::Waiting).await;
    let changed: Vec<InstanceId> =
        works.iter().filter(|work| work.applied).map(|work| work.instance_id.clone()).collect();
    assert_eq!(changed.len(), 2, "{works:?}");
    let rollback = b
        .service
        .start_template(
            IMAGE_TEMPLATE,
            &serde_json::json!({"invokeType": "rollback", "scalingGroupId": group.id, "sourceExecutionId": third.id})
                .to_string(),
        )
        .await
        .expect("rollback through B");
    let (source, _) = task(&b, &third.id).await;
    assert_eq!(source.status, TaskStatus::Cancelled, "{}", source.describe_status());
    let (done, works) = wait_for(&b, &rollback.id, "the rollback", |task, _| task.status.is_final()).await;
    assert_eq!(done.status, TaskStatus::Success, "{}", done.describe_status());
    assert_eq!(works.iter().map(|work| work.instance_id.clone()).collect::<Vec<_>>(), changed);
    for instance in b.service.instances(Some(&group.id), None, None).await.unwrap() {
        if changed.contains(&instance.id) {
            assert_eq!(instance.image_id, OLD_IMAGE, "put back: {instance:?}");
        }
        assert_eq!(instance.lifecycle_state, LifecycleState::InService, "{instance:?}");
    }
    a.engine.halt();
    b.engine.halt();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_lease_is_taken_stops_before_its_next_step() {
    let url = database().await;
    let a = replica(&url, "replica-a").await;
    let b = replica(&url, "replica-b").await;
    let group = group(&a, 6).await;
    let ids: Vec<InstanceId> =
        a.service.instances(Some(&group.id), None, None).await.unwrap().into_iter().map(|i| i.id).collect();
    let id = a
        .service
        .start_template(IMAGE_TEMPLATE, &image_params(&group, 6, "Automatic").to_string())
        .await
        .expect("start")
        .id;
    wait_for(&b, &id, "the first instance", |_, works| works.iter().any(|w| w.status == InstanceStatus::Success)).await;
    // Someone else takes the lease from under A (as a replica would after a long stall of A).
    let name = task_lease_name(&id);
    assert!(a.engine.store().lease_release(&name, "replica-a").await.unwrap(), "A held it");
    assert!(a.engine.store().lease_take(&name, "intruder", Duration::from_secs(60)).await.unwrap());
    // A's next renewal finds it taken: A stops driving at once. It forgets the task only once
    // nothing of it runs there any more: its workers stopped, its journal's last commit made.
    let stopped = async || (!a.engine.is_driving(&id)).then_some(());
    wait::until("A to stop driving the task it lost", Duration::from_secs(5), Duration::from_millis(20), stopped).await;
    // A statement A sent before it stopped (its future dropped midway) may still be on its way
    // to the database: once no connection of A's is out, each has been carried out.
    let answered = async || (a.engine.store().connections_in_use() == 0).then_some(());
    wait::until("every statement A sent to be answered", Duration::from_secs(5), Duration::from_millis(5), answered)
        .await;
    let stopped_at = task(&b, &id).await.1;
    let applied_then = (applied(&a, &ids), applied(&b, &ids));
    // Nobody acts while the intruder holds it. A has nothing of the task running; the only way
    // either replica picks a task up unasked is its lease poller, which drives a task leased by
    // no one by the end of its second look after the lease went. So rather than letting some
    // time pass, wait until each poller has made three looks more (two begun after now).
    let looks = (a.engine.lease_looks(), b.engine.lease_looks());
    let looked =
        async || (a.engine.lease_looks() >= looks.0 + 3 && b.engine.lease_looks() >= looks.1 + 3).then_some(());
    wait::until(
        "each replica's poller to look three times",
        Duration::from_secs(10),
        Duration::from_millis(20),
        looked,
    )
    .await;
    assert_eq!(task(&b, &id).await.1, stopped_at, "no step was taken without the lease");
    assert_eq!((applied(&a, &ids), applied(&b, &ids)), applied_then, "no change without the lease");
    assert!(!a.engine.is_driving(&id) && !b.engine.is_driving(&id), "neither replica took the task back");
    assert_eq!(a.engine.store().lease_get(&name).await.unwrap().unwrap().owner, "intruder");
    // Given up: a replica takes it over and finishes it.
    assert!(a.engine.store().lease_release(&name, "intruder").await.unwrap());
    let (task_state, works) = wait_for(&b, &id, "the end", |task, _| task.status.is_final()).await;
    assert_eq!(task_state.status, TaskStatus::Success, "{}", task_state.describe_status());
    assert!(works.iter().all(|work| work.status == InstanceStatus::Success));
    let (by_a, by_b) = (applied(&a, &ids), applied(&b, &ids));
    for instance in &ids {
        // Once, or twice for the one in flight when the lease went (redone by the next owner).
        let total = by_a[instance] + by_b[instance];
        assert!((1..=2).contains(&total), "{instance}: {total}");
    }
    a.engine.halt();
    b.engine.halt();
}

/// Waits until the reconciler's lease is `owner`'s, for at most `within`.
async fn reconciler_owned_by(replica: &Harness, owner: &str, within: Duration) {
    let owned = async || {
        let lease = replica.engine.store().lease_get(RECONCILER_LEASE).await.unwrap();
        match lease {
            Some(lease) if lease.owner == owner => Ok(()),
            other => Err(format!("{other:?}")),
        }
    };
    wait::until_ok(&format!("{owner} to run the reconciler"), within, Duration::from_millis(10), owned).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_shut_down_mid_task_finishes_its_steps_and_hands_everything_over_at_once() {
    let url = database().await;
    // A first, so that A runs the reconciler and hands that lease over too.
    let a = replica(&url, "replica-a").await;
    reconciler_owned_by(&a, "replica-a", Duration::from_secs(10)).await;
    let b = replica(&url, "replica-b").await;
    let group = group(&a, 6).await;
    let ids: Vec<InstanceId> =
        a.service.instances(Some(&group.id), None, None).await.unwrap().into_iter().map(|i| i.id).collect();
    // Slow enough in A's fleet that the shutdown lands mid-task, with steps in flight.
    a.fleet.set_latency_ms(150);
    let id = a
        .service
        .start_template(IMAGE_TEMPLATE, &image_params(&group, 3, "Automatic").to_string())
        .await
        .expect("start through A")
        .id;
    wait_for(&b, &id, "a step in flight under A", |_, works| {
        works.iter().any(|work| work.status == InstanceStatus::Running && work.started_at.is_some())
    })
    .await;
    assert_eq!(a.engine.store().lease_get(&task_lease_name(&id)).await.unwrap().unwrap().owner, "replica-a");

    let stopped = a.engine.shut_down(Duration::from_secs(10)).await;
    assert_eq!(stopped.between_steps, vec![id.clone()], "{stopped:?}");
    assert!(stopped.cut_short.is_empty() && stopped.background_cut_short == 0, "{stopped:?}");
    assert_eq!(stopped.reconciler, rollscale_engine::shutdown::HandOver::HandedBack);
    assert!(!a.engine.is_driving(&id));
    let handed_back = tokio::time::Instant::now();
    let (at_stop, works) = task(&b, &id).await;
    assert!(!at_stop.status.is_final(), "mid-task: {}", at_stop.describe_status());
    let statuses: HashMap<InstanceId, InstanceStatus> =
        works.into_iter().map(|work| (work.instance_id, work.status)).collect();
    let applied_by_a = applied(&a, &ids);
    // Handed back, not released: expired at once and owned by nobody (or B's already), where a
    // lease A had stopped renewing would be A's for a second more.
    let lease = b.engine.store().lease_get(&task_lease_name(&id)).await.unwrap().expect("kept");
    assert!(lease.owner.is_empty() || lease.owner == "replica-b", "{lease:?}");
    let reconciler = b.engine.store().lease_get(RECONCILER_LEASE).await.unwrap().expect("kept");
    assert!(reconciler.owner.is_empty() || reconciler.owner == "replica-b", "{reconciler:?}");

    // B takes both over at its next look, long before a lease could have expired.
    let taken = async || {
        let lease = b.engine.store().lease_get(&task_lease_name(&id)).await.unwrap();
        match lease {
            Some(lease) if lease.owner == "replica-b" && b.engine.is_driving(&id) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    };
    wait::until_ok("B to take the task over", Duration::from_secs(2), Duration::from_millis(10), taken).await;
    let takeover = handed_back.elapsed();
    reconciler_owned_by(&b, "replica-b", Duration::from_secs(2)).await;
    eprintln!("B took the task over {} ms after A handed it back", takeover.as_millis());

    let (done, works) = wait_for(&b, &id, "the end", |task, _| task.status.is_final()).await;
    assert_eq!(done.status, TaskStatus::Success, "{}", done.describe_status());
    assert!(works.iter().all(|work| work.status == InstanceStatus::Success && work.applied), "{works:?}");
    assert_eq!(applied(&a, &ids), applied_by_a, "A changed nothing after it stopped");
    let applied_by_b = applied(&b, &ids);
    for instance in &ids {
        let (by_a, by_b) = (applied_by_a[instance], applied_by_b[instance]);
        // Every instance changed once, by one replica: a step in flight when A stopped was
        // finished and committed by A, and not redone by B.
        assert_eq!(by_a + by_b, 1, "{instance} ({:?} at the stop): {by_a} by A, {by_b} by B", statuses[instance]);
        if statuses[instance] == InstanceStatus::Queued {
            assert_eq!(by_b, 1, "{instance}");
        }
    }
    assert!(applied_by_b.values().sum::<u64>() > 0, "B drove the rest");
    b.engine.halt();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_longer_than_the_grace_is_cut_short_and_its_lease_left_to_expire() {
    let url = database().await;
    let a = replica(&url, "replica-a").await;
    let b = replica(&url, "replica-b").await;
    let group = group(&a, 2).await;
    let ids: Vec<InstanceId> =
        a.service.instances(Some(&group.id), None, None).await.unwrap().into_iter().map(|i| i.id).collect();
    // Every call of A's fleet takes far longer than the grace: 2 s before it takes effect, 2 s
    // after.
    a.fleet.set_latency_ms(4_000);
    let id = a
        .service
        .start_template(IMAGE_TEMPLATE, &image_params(&group, 1, "Automatic").to_string())
        .await
        .expect("start through A")
        .id;
    // An image change in the middle of its call: it took effect in A's fleet, 2 s before the
    // call returns.
    let in_flight = async || ids.iter().find(|instance| a.fleet.apply_op_count(instance) == Some(1)).cloned();
    let changing =
        wait::until("an image change in flight under A", Duration::from_secs(20), Duration::from_millis(5), in_flight)
            .await;
    let began = tokio::time::Instant::now();
    let stopped = a.engine.shut_down(Duration::from_millis(300)).await;
    assert!(began.elapsed() < Duration::from_secs(2), "bounded by the grace: {:?}", began.elapsed());
    assert_eq!(stopped.cut_short, vec![id.clone()], "{stopped:?}");
    assert!(stopped.between_steps.is_empty(), "{stopped:?}");
    // Left to expire, as a dead replica's: still A's, not expired.
    let lease = b.engine.store().lease_get(&task_lease_name(&id)).await.unwrap().expect("kept");
    assert_eq!(lease.owner, "replica-a");
    assert!(lease.expires_at > b.engine.store().database_now().await.unwrap(), "{lease:?}");
    // B takes it over once it expires, and finishes it, redoing the step that was cut short (as
    // after a crash: A's change was never recorded).
    let (done, _) = wait_for(&b, &id, "the end", |task, _| task.status.is_final()).await;
    assert_eq!(done.status, TaskStatus::Success, "{}", done.describe_status());
    assert_eq!(b.fleet.apply_op_count(&changing), Some(1), "redone by B");
    b.engine.halt();
}
