//! The engine over the simulated fleet: every kind, every operator action, rollback.
//! Rule numbers refer to docs/design.md.

use rollscale_core::domain::{LifecycleState, Process};
use rollscale_core::ids::{IdFilter, InstanceId};
use rollscale_core::task::{InstanceDecision, InstanceStatus, Step, TaskStatus, WaitingStatus};
use rollscale_engine::service::TaskInstance;
use rollscale_test_support::engine::*;
use serde_json::json;

fn image_params(group: &str, configuration: Option<&str>, batches: u32, pause: &str) -> serde_json::Value {
    let mut params = json!({
        "invokeType": "invoke", "scalingGroupId": group, "imageId": NEW_IMAGE, "sourceImageId": OLD_IMAGE,
        "batchNumber": batches, "batchPauseOption": pause,
    });
    if let Some(configuration) = configuration {
        params["scalingConfigurationId"] = json!(configuration);
    }
    params
}

fn configuration_of(group: &rollscale_core::domain::ScalingGroup) -> String {
    match &group.source {
        rollscale_core::domain::InstanceSource::Configuration(id) => id.to_string(),
        other => panic!("no configuration: {other:?}"),
    }
}

/// R4, R5, R6, R11: an image update replaces every instance's image batch by batch, sets the
/// active configuration's image, restores weights, tags instances, resumes processes.
#[tokio::test]
async fn image_update_succeeds_end_to_end() {
    let h = Harness::new(1).await;
    let group = h.group(10).await;
    let configuration = configuration_of(&group);
    // A process suspended before the task stays suspended after it (R11).
    h.service.set_processes(&group.id, &[Process::ScheduledAction], true).await.unwrap();
    let task = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str(), Some(&configuration), 3, "Automatic")).await;
    assert_eq!(task.batch_sizes, vec![4, 3, 3]);
    let (task, works) = h.wait(&task.id, None).await;
    assert_eq!(task.status, TaskStatus::Success, "{}", task.status_message);
    assert!(works.iter().all(|w| w.status == InstanceStatus::Success && w.applied && !w.in_standby));
    for instance in h.instances(&group).await {
        assert_eq!(instance.image_id, NEW_IMAGE);
        assert_eq!(instance.lifecycle_state, LifecycleState::InService);
        assert!(instance.tags.contains(&task.id.to_string()));
        assert_eq!(h.weight(&instance.id).await, 100);
        assert_eq!(h.fleet.snapshot(&instance.id).unwrap().image_id, NEW_IMAGE);
    }
    let configurations = h.service.configurations(Some(&group.id), None).await.unwrap();
    assert_eq!(configurations[0].image_id, NEW_IMAGE);
    let group = h.service.group(&group.id).await.unwrap();
    assert_eq!(group.suspended_processes, vec![Process::ScheduledAction]);
    // Batches ran in order (R6): every instance of batch k ended before batch k+1 started.
    for k in 1..3u32 {
        let prev_end = works.iter().filter(|w| w.batch == k - 1).filter_map(|w| w.ended_at).max().unwrap();
        let next_start = works.iter().filter(|w| w.batch == k).filter_map(|w| w.started_at).min().unwrap();
        assert!(prev_end <= next_start, "batch {k} started before batch {} ended", k - 1);
    }
    let events = h.service.events(&IdFilter::Only(task.id.clone()), &IdFilter::Any, 100).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"Started") && kinds.contains(&"Succeeded") && kinds.contains(&"BatchDone"), "{kinds:?}");
}

/// R9: FirstBatchPause waits once after batch 1 with that batch InService and the rest
/// untouched; Continue runs the rest without another pause.
#[tokio::test]
async fn first_batch_pause_then_continue() {
    let h = Harness::new(1).await;
    let group = h.group(6).await;
    let task = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str(), None, 3, "FirstBatchPause")).await;
    let (paused, works) = h.wait(&task.id, Some(WaitingStatus::BatchPaused)).await;
    assert_eq!(paused.waiting, Some(WaitingStatus::BatchPaused));
    assert_eq!(works.iter().filter(|w| w.status == InstanceStatus::Success).count(), 2);
    assert_eq!(works.iter().filter(|w| w.status == InstanceStatus::Queued).count(), 4);
    // Continue is refused for a task that is not paused… but here it is.
    h.service.continue_task(&task.id).await.unwrap();
    let (done, _) = h.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Success);
    assert!(h.service.continue_task(&task.id).await.is_err(), "continue of a finished task must be refused");
}

/// R7, R8: a failed instance stays in Standby at weight 0 and the task waits (FailurePaused);
/// a retry after the cause is gone succeeds, restores the weight, and the task finishes.
#[tokio::test]
async fn failure_pauses_and_retry_succeeds() {
    let h = Harness::new(1).await;
    let group = h.group(4).await;
    let victim = h.instances(&group).await[0].id.clone();
    h.fleet.fail_next(&victim, 1);
    let task = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str(), None, 2, "Automatic")).await;
    let (waiting, works) = h.wait(&task.id, Some(WaitingStatus::FailurePaused)).await;
    assert_eq!(waiting.waiting, Some(WaitingStatus::FailurePaused));
    let failed = works.iter().find(|w| w.instance_id == victim).unwrap();
    assert_eq!(failed.status, InstanceStatus::Failed);
    assert!(failed.error_message.as_deref().unwrap_or("").contains("simulated"));
    // No new batch started (R7).
    assert!(works.iter().filter(|w| w.batch == 1).all(|w| w.status == InstanceStatus::Queued));
    let instance = h.service.instances(None, Some(std::slice::from_ref(&victim)), None).await.unwrap().remove(0);
    assert_eq!(instance.lifecycle_state, LifecycleState::Standby);
    assert_eq!(h.weight(&victim).await, 0);
    // Retry of a succeeded instance is refused with a clear code.
    let other = works.iter().find(|w| w.status == InstanceStatus::Success).unwrap();
    let refused = h
        .service
        .decide_instance(&task.id, &TaskInstance::Instance(other.instance_id.clone()), InstanceDecision::Retry)
        .await;
    assert_eq!(refused.unwrap_err().code(), "IncorrectInstanceStatus");
    h.service
        .decide_instance(&task.id, &TaskInstance::Instance(victim.clone()), InstanceDecision::Retry)
        .await
        .unwrap();
    let (done, works) = h.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Success);
    assert!(works.iter().all(|w| w.status == InstanceStatus::Success));
    assert_eq!(h.weight(&victim).await, 100);
}

/// R8: Skip shows Success and leaves the instance in Standby; Cancel shows Failed.
#[tokio::test]
async fn skip_and_cancel_failed_instances() {
    let h = Harness::new(1).await;
    let group = h.group(4).await;
    let instances = h.instances(&group).await;
    h.fleet.set_failing(&instances[0].id, true);
    h.fleet.set_failing(&instances[1].id, true);
    let task = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str(), None, 2, "Automatic")).await;
    h.wait(&task.id, Some(WaitingStatus::FailurePaused)).await;
    h.service
        .decide_instance(&task.id, &TaskInstance::Instance(instances[0].id.clone()), InstanceDecision::Skip)
        .await
        .unwrap();
    // One failure still awaits a decision: the task stays paused.
    let (still, _) = h.service.task(&task.id).await.unwrap();
    assert_eq!(still.status, TaskStatus::Waiting);
    h.service
        .decide_instance(&task.id, &TaskInstance::Instance(instances[1].id.clone()), InstanceDecision::Cancel)
        .await
        .unwrap();
    let (done, works) = h.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Success);
    let skipped = works.iter().find(|w| w.instance_id == instances[0].id).unwrap();
    assert_eq!((skipped.status, skipped.status.wire_status()), (InstanceStatus::Skipped, "Success"));
    let cancelled = works.iter().find(|w| w.instance_id == instances[1].id).unwrap();
    assert_eq!((cancelled.status, cancelled.status.wire_status()), (InstanceStatus::Cancelled, "Failed"));
    let after = h.service.instances(None, Some(&[instances[0].id.clone()]), None).await.unwrap().remove(0);
    assert_eq!(after.lifecycle_state, LifecycleState::Standby, "a skipped instance stays in Standby");
}

/// R10: cancel leaves processes suspended and the failed instance in Standby; with restore,
/// instances leave Standby and processes resume.
#[tokio::test]
async fn cancel_with_and_without_restore() {
    for restore in [false, true] {
        let h = Harness::new(1).await;
        let group = h.group(4).await;
        let victim = h.instances(&group).await[0].id.clone();
        h.fleet.set_failing(&victim, true);
        let task = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str(), None, 2, "Automatic")).await;
        h.wait(&task.id, Some(WaitingStatus::FailurePaused)).await;
        h.service.cancel_task(&task.id, restore).await.unwrap();
        let (done, works) = h.wait(&task.id, None).await;
        assert_eq!(done.status, TaskStatus::Cancelled);
        assert!(works.iter().filter(|w| w.batch == 1).all(|w| w.status == InstanceStatus::Aborted));
        let instance = h.service.instances(None, Some(std::slice::from_ref(&victim)), None).await.unwrap().remove(0);
        let group = h.service.group(&group.id).await.unwrap();
        if restore {
            assert_eq!(instance.lifecycle_state, LifecycleState::InService);
            assert_eq!(h.weight(&victim).await, 100);
            assert!(group.suspended_processes.is_empty());
        } else {
            assert_eq!(instance.lifecycle_state, LifecycleState::Standby);
            assert_eq!(group.suspended_processes.len(), 5);
        }
        assert_eq!(h.service.cancel_task(&task.id, false).await.unwrap_err().code(), "IncorrectExecutionStatus");
    }
}

/// R10: instances in flight when a task is cancelled finish their change (the image is
/// replaced, not left half done) and stay in Standby, where the operator finds them; the
/// queued ones never start. With restore, they leave Standby with their weights back.
#[tokio::test]
async fn cancel_lets_instances_in_flight_finish_their_change() {
    for restore in [false, true] {
        let h = Harness::new(1).await;
        let group = h.group(4).await;
        // Batch 1's connections do not drain until let go: the cancel comes while it drains,
        // in Standby, before the change.
        let lb = group.load_balancer_ids[0].clone();
        let changes = rollscale_engine::service::GroupChanges { drain_timeout_s: Some(30), ..Default::default() };
        h.service.modify_group(&group.id, changes).await.unwrap();
        let instances = h.instances(&group).await;
        for instance in &instances {
            assert!(h.lb.set_stuck(&lb, &instance.id, true));
        }
        let task = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str(), None, 2, "Automatic")).await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        let draining = loop {
            let (_, works) = h.service.task(&task.id).await.unwrap();
            let batch: Vec<_> = works.iter().filter(|w| w.batch == 0).collect();
            if batch.iter().all(|w| w.in_standby && w.step == Step::Drain && w.status == InstanceStatus::Running) {
                break batch.iter().map(|w| w.instance_id.clone()).collect::<Vec<_>>();
            }
            assert!(tokio::time::Instant::now() < deadline, "batch 1 never drained: {works:?}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        h.service.cancel_task(&task.id, restore).await.unwrap();
        for id in &draining {
            h.lb.set_stuck(&lb, id, false);
        }
        let (done, works) = h.wait(&task.id, None).await;
        assert_eq!(done.status, TaskStatus::Cancelled);
        for work in &works {
            let instance =
                h.service.instances(None, Some(std::slice::from_ref(&work.instance_id)), None).await.unwrap().remove(0);
            assert_eq!(work.status, InstanceStatus::Aborted, "{work:?}");
            if work.batch == 0 {
                assert!(work.applied, "the change in flight finished: {work:?}");
                assert_eq!(instance.image_id, NEW_IMAGE);
                assert_eq!(h.fleet.snapshot(&instance.id).unwrap().image_id, NEW_IMAGE);
                let (state, weight) =
                    if restore { (LifecycleState::InService, 100) } else { (LifecycleState::Standby, 0) };
                assert_eq!(instance.lifecycle_state, state, "restore {restore}");
                assert_eq!(h.weight(&instance.id).await, weight);
                assert_eq!(work.in_standby, !restore);
            } else {
                assert!(!work.applied && work.started_at.is_none(), "{work:?}");
                assert_eq!(instance.image_id, OLD_IMAGE);
                assert_eq!(instance.lifecycle_state, LifecycleState::InService);
            }
        }
    }
}

/// R3: one rolling update per group; unknown image; unknown group; bad parameters — each
/// refused with a code and nothing created.
#[tokio::test]
async fn refusals_change_nothing() {
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    let gid = group.id.as_str();
    let cases = [
        (
            IMAGE_TEMPLATE,
            json!({"invokeType": "invoke", "scalingGroupId": gid, "imageId": "no-such-image"}),
            "InvalidImageId.NotFound",
        ),
        (
            IMAGE_TEMPLATE,
            json!({"invokeType": "invoke", "scalingGroupId": "asg-nothere", "imageId": NEW_IMAGE}),
            "InvalidScalingGroupId.NotFound",
        ),
        (IMAGE_TEMPLATE, json!({"invokeType": "invoke", "scalingGroupId": gid}), "MissingParameter"),
        (
            IMAGE_TEMPLATE,
            json!({"invokeType": "invoke", "scalingGroupId": gid, "imageId": NEW_IMAGE, "enterProcess": ["Nope"]}),
            "InvalidParameter",
        ),
        (
            PACKAGE_TEMPLATE,
            json!({"invokeType": "invoke", "scalingGroupId": gid, "packageName": "wordpress", "packageVersion": "v9"}),
            "EntityNotExists.PackageVersion",
        ),
    ];
    for (template, params, code) in cases {
        let error = h.service.start_template(template, &params.to_string()).await.unwrap_err();
        assert_eq!(error.code(), code, "{params}");
    }
    // A scale-out in progress (R3).
    let activity = rollscale_core::domain::ScalingActivity {
        id: rollscale_core::ids::ScalingActivityId::from_random(1),
        group_id: group.id.clone(),
        kind: Some(rollscale_core::domain::ActivityKind::ScaleOut),
        description: "Scale out: add 1 instance(s)".into(),
        cause: "test".into(),
        status: rollscale_core::domain::ActivityStatus::InProgress,
        status_message: String::new(),
        instance_ids: vec![],
        started_at: 1,
        ended_at: None,
    };
    h.store.activity_put(&activity).await.unwrap();
    let error = h
        .service
        .start_template(IMAGE_TEMPLATE, &image_params(gid, None, 2, "Automatic").to_string())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "ScalingActivityInProgress");
    h.store
        .activity_put(&rollscale_core::domain::ScalingActivity {
            status: rollscale_core::domain::ActivityStatus::Successful,
            ended_at: Some(2),
            ..activity
        })
        .await
        .unwrap();
    let (none, total) = h.service.list_executions(&Default::default(), 0, 10).await.unwrap();
    assert_eq!((none.len(), total), (0, 0));
    // One at a time.
    h.fleet.set_latency_ms(50);
    let first = h.start(IMAGE_TEMPLATE, image_params(gid, None, 2, "Automatic")).await;
    let error = h
        .service
        .start_template(IMAGE_TEMPLATE, &image_params(gid, None, 2, "Automatic").to_string())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "IncorrectScalingGroupStatus");
    h.wait(&first.id, None).await;
}

/// R1: a group with no InService instance: the task succeeds at once and changes nothing.
#[tokio::test]
async fn zero_targets_succeed_without_change() {
    let h = Harness::new(1).await;
    let group = h.group(0).await;
    let task = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str(), None, 2, "Automatic")).await;
    let (done, works) = h.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Success);
    assert!(works.is_empty() && !done.begun);
    assert!(h.service.group(&group.id).await.unwrap().suspended_processes.is_empty());
}

/// R12: an image rollback targets the instances the source changed, puts them back on the
/// source image and restores the configuration's image; a rollback of a rollback is refused.
#[tokio::test]
async fn image_rollback_restores_instances_and_configuration() {
    let h = Harness::new(1).await;
    let group = h.group(4).await;
    let configuration = configuration_of(&group);
    let victim = h.instances(&group).await[3].id.clone();
    h.fleet.set_failing(&victim, true);
    let source = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str(), Some(&configuration), 2, "Automatic")).await;
    // Batch 1 succeeds, batch 2 has a failure: the source waits.
    h.wait(&source.id, Some(WaitingStatus::FailurePaused)).await;
    h.fleet.set_failing(&victim, false);
    let rollback = h
        .start(
            IMAGE_TEMPLATE,
            json!({"invokeType": "rollback", "scalingGroupId": group.id, "sourceExecutionId": source.id, "batchNumber": 2}),
        )
        .await;
    let (done, works) = h.wait(&rollback.id, None).await;
    assert_eq!(done.status, TaskStatus::Success, "{}", done.status_message);
    let (source_after, _) = h.service.task(&source.id).await.unwrap();
    assert_eq!(source_after.status, TaskStatus::Cancelled, "a Waiting source is cancelled first");
    // Only the changed instances: 3 succeeded in the source (the victim failed before Apply).
    assert_eq!(works.len(), 3);
    assert!(works.iter().all(|w| w.instance_id != victim));
    for instance in h.instances(&group).await.iter().filter(|i| i.id != victim) {
        assert_eq!(instance.image_id, OLD_IMAGE);
    }
    let configurations = h.service.configurations(Some(&group.id), None).await.unwrap();
    assert_eq!(configurations[0].image_id, OLD_IMAGE);
    let error = h
        .service
        .start_template(
            IMAGE_TEMPLATE,
            &json!({"invokeType": "rollback", "scalingGroupId": group.id, "sourceExecutionId": rollback.id})
                .to_string(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "InvalidParameter.SourceExecution");
}

/// R13: script output and exit codes per instance; a failing script fails its instance.
#[tokio::test]
async fn script_execution_keeps_output_and_fails_on_exit_code() {
    let h = Harness::new(1).await;
    let group = h.group(3).await;
    let task = h
        .start(
            SCRIPT_TEMPLATE,
            json!({"invokeType": "invoke", "scalingGroupId": group.id, "commandType": "RunShellScript",
                   "invokeScript": "echo hello\nhostname", "batchNumber": 1}),
        )
        .await;
    let (done, works) = h.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Success);
    for work in &works {
        assert_eq!(work.exit_code, Some(0));
        assert_eq!(work.output, format!("hello\n{}\n", work.instance_id));
    }
    let failing = h
        .start(
            SCRIPT_TEMPLATE,
            json!({"invokeType": "invoke", "scalingGroupId": group.id, "invokeScript": "echo partial\nexit 3", "batchNumber": 1}),
        )
        .await;
    let (waiting, works) = h.wait(&failing.id, Some(WaitingStatus::FailurePaused)).await;
    assert_eq!(waiting.status, TaskStatus::Waiting);
    assert!(works.iter().all(|w| w.status == InstanceStatus::Failed && w.exit_code == Some(3)));
    assert_eq!(works[0].error_code.as_deref(), Some("ScriptFailed"));
    assert_eq!(works[0].output, "partial\n");
    // A Windows script on Linux instances fails each instance with a clear message.
    h.service.cancel_task(&failing.id, true).await.unwrap();
    h.wait(&failing.id, None).await;
    let bat = h
        .start(
            SCRIPT_TEMPLATE,
            json!({"invokeType": "invoke", "scalingGroupId": group.id, "commandType": "RunBatScript", "invokeScript": "dir c:\\", "batchNumber": 1}),
        )
        .await;
    let (_, works) = h.wait(&bat.id, Some(WaitingStatus::FailurePaused)).await;
    assert!(
        works[0].error_message.as_deref().unwrap_or("").contains("cannot run RunBatScript"),
        "{:?}",
        works[0].error_message
    );
}

/// Package install, then its rollback to the version before (R12).
#[tokio::test]
async fn package_install_and_rollback() {
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    let v3 = h
        .start(PACKAGE_TEMPLATE, json!({"invokeType": "invoke", "scalingGroupId": group.id, "packageName": "wordpress", "packageVersion": "v3"}))
        .await;
    assert_eq!(h.wait(&v3.id, None).await.0.status, TaskStatus::Success);
    let v4 = h
        .start(PACKAGE_TEMPLATE, json!({"invokeType": "invoke", "scalingGroupId": group.id, "packageName": "wordpress", "packageVersion": "v4", "action": "install"}))
        .await;
    assert_eq!(h.wait(&v4.id, None).await.0.status, TaskStatus::Success);
    for instance in h.instances(&group).await {
        assert_eq!(instance.packages, vec![("wordpress".to_string(), "v4".to_string())]);
    }
    // Rollback without a version: back to v3, the version the instances had before.
    let back = h
        .start(PACKAGE_TEMPLATE, json!({"invokeType": "rollback", "scalingGroupId": group.id, "packageName": "wordpress", "sourceExecutionId": v4.id}))
        .await;
    assert_eq!(h.wait(&back.id, None).await.0.status, TaskStatus::Success);
    for instance in h.instances(&group).await {
        assert_eq!(instance.packages, vec![("wordpress".to_string(), "v3".to_string())]);
    }
    // A new image is a new system disk: the store and the fleet agree that nothing is installed.
    let image = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str(), None, 1, "Automatic")).await;
    assert_eq!(h.wait(&image.id, None).await.0.status, TaskStatus::Success);
    for instance in h.instances(&group).await {
        assert_eq!(instance.packages, Vec::<(String, String)>::new(), "{}", instance.id);
        assert_eq!(h.fleet.snapshot(&instance.id).unwrap().packages, instance.packages);
    }
}

/// Protected instances are targeted when asked, unprotected for the change and protected again.
#[tokio::test]
async fn protected_instances_are_reprotected() {
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    let protected = h.instances(&group).await[0].id.clone();
    h.service.set_protection(&group.id, std::slice::from_ref(&protected), true).await.unwrap();
    let mut params = image_params(group.id.as_str(), None, 1, "Automatic");
    params["lifecycleState"] = json!(["InService", "Protected"]);
    let task = h.start(IMAGE_TEMPLATE, params).await;
    let (done, works) = h.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Success);
    assert_eq!(works.len(), 2);
    let instance = h.service.instances(None, Some(std::slice::from_ref(&protected)), None).await.unwrap().remove(0);
    assert_eq!(instance.lifecycle_state, LifecycleState::Protected);
    assert_eq!(instance.image_id, NEW_IMAGE);
}

/// ECI: a container-group update replaces (RenewUpdate) or merges (IncrementalUpdate) the
/// containers of each instance; its rollback puts back `rollbackContainers`.
#[tokio::test]
async fn container_group_update_and_rollback() {
    use rollscale_core::domain::ContainerSpec;
    let h = Harness::new(1).await;
    let v1 = ContainerSpec { name: "web".into(), image: "web:v1".into(), port: Some(8080), ..ContainerSpec::default() };
    let group = h.eci_group(3, vec![v1.clone()]).await;
    let template = "ACS-ESS-RollingUpdateByUpdateContainerGroup";
    let sidecar = json!([{"name": "sidecar", "image": "log:v2"}]);
    let task = h
        .start(
            template,
            json!({"invokeType": "invoke", "scalingGroupId": group.id, "updateType": "IncrementalUpdate",
                   "containers": sidecar, "rollbackContainers": [v1], "batchNumber": 2}),
        )
        .await;
    let (done, _) = h.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Success, "{}", done.status_message);
    for instance in h.instances(&group).await {
        let names: Vec<&str> = instance.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["web", "sidecar"], "an incremental update merges by name");
    }
    let back = h
        .start(template, json!({"invokeType": "rollback", "scalingGroupId": group.id, "sourceExecutionId": task.id}))
        .await;
    assert_eq!(h.wait(&back.id, None).await.0.status, TaskStatus::Success);
    for instance in h.instances(&group).await {
        assert_eq!(instance.containers, vec![v1.clone()], "the rollback renews the spec");
    }
    // Container-group updates are for ECI groups only (R3).
    let other = Harness::new(1).await;
    let ecs = other.group(1).await;
    let error = other
        .service
        .start_template(
            template,
            &json!({"invokeType": "invoke", "scalingGroupId": ecs.id, "containers": sidecar}).to_string(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "InvalidParameter");
}

/// A group made from a launch template: its instances follow the template's version; a rolling
/// image update changes the instances and never the template (R4); a new default version is
/// what the next scale-out uses.
#[tokio::test]
async fn launch_template_groups_are_updated_but_their_template_is_not() {
    use rollscale_core::domain::TemplateVersion;
    use rollscale_engine::service::{GroupChanges, NewGroup};
    use rollscale_engine::templates::NewTemplateVersion;
    let h = Harness::new(1).await;
    h.catalog().await;
    let version = |image: &str| NewTemplateVersion { image_id: image.into(), ..NewTemplateVersion::default() };
    let refused = h.service.create_launch_template("web", version("no-such-image")).await.unwrap_err();
    assert_eq!(refused.code(), "InvalidImageId.NotFound");
    let (template, first) = h.service.create_launch_template("web", version(OLD_IMAGE)).await.unwrap();
    assert_eq!((template.default_version, template.latest_version, first.version), (1, 1, 1));
    let duplicate = h.service.create_launch_template("web", version(OLD_IMAGE)).await.unwrap_err();
    assert_eq!(duplicate.code(), "InvalidLaunchTemplateName.Duplicate");
    assert!(h.service.launch_templates().await.unwrap().len() == 1, "a refused create changes nothing");

    let group = h
        .service
        .create_group(NewGroup {
            name: "from-template".into(),
            max_size: 6,
            desired_capacity: Some(3),
            launch_template: Some((template.id.clone(), TemplateVersion::Default)),
            ..NewGroup::default()
        })
        .await
        .unwrap();
    let group = h.service.enable_group(&group.id, None).await.unwrap();
    h.service.reconcile_group(&group).await.unwrap();
    assert!(h.instances(&group).await.iter().all(|i| i.image_id == OLD_IMAGE));

    let task = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str(), None, 2, "Automatic")).await;
    assert_eq!(h.wait(&task.id, None).await.0.status, TaskStatus::Success);
    assert!(h.instances(&group).await.iter().all(|i| i.image_id == NEW_IMAGE));
    let after = h.service.launch_template(&template.id).await.unwrap();
    assert_eq!(after, template, "the template is never changed by a rolling update");
    let versions = h.service.launch_template_versions(&template.id).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].image_id, OLD_IMAGE);

    // The operator's own step: a new default version; the next instances come from it.
    let second = h.service.create_launch_template_version(&template.id, version(NEW_IMAGE), true).await.unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(h.service.launch_template(&template.id).await.unwrap().default_version, 2);
    h.service
        .modify_group(&group.id, GroupChanges { desired_capacity: Some(4), ..GroupChanges::default() })
        .await
        .unwrap();
    let group = h.service.group(&group.id).await.unwrap();
    h.service.reconcile_group(&group).await.unwrap();
    let instances = h.instances(&group).await;
    assert_eq!(instances.len(), 4);
    assert!(instances.iter().all(|i| i.image_id == NEW_IMAGE));
    let back = h.service.set_default_template_version(&template.id, 1).await.unwrap();
    assert_eq!(back.default_version, 1);
    let missing = h.service.set_default_template_version(&template.id, 3).await.unwrap_err();
    assert_eq!(missing.code(), "InvalidLaunchTemplateVersion.NotFound");
}

/// An image made from an instance (`CreateImage` with `InstanceId`) goes into the catalog,
/// and a rolling update to it runs.
#[tokio::test]
async fn an_image_made_from_an_instance_can_be_rolled_out() {
    let h = Harness::new(1).await;
    let group = h.group(3).await;
    let source = h.instances(&group).await[0].id.clone();
    let image = h.service.create_image_from_instance(&source, Some("golden")).await.expect("create image");
    assert_eq!(image.name, "golden");
    assert_eq!(image.kind, "custom");
    let made = h.fleet.known_images();
    assert_eq!(made.len(), 1);
    assert_eq!((made[0].id.as_str(), made[0].base_image_id.as_str()), (image.id.as_str(), OLD_IMAGE));
    assert!(h.service.images().await.unwrap().iter().any(|listed| listed.id == image.id));

    // Its name is taken now; an unnamed one is named after the instance and the time.
    let again = h.service.create_image_from_instance(&source, Some("golden")).await;
    assert_eq!(again.map(|image| image.id).map_err(|error| error.code().as_str()), Err("InvalidImageName.Duplicated"));
    let unnamed = h.service.create_image_from_instance(&source, None).await.expect("create image");
    assert!(unnamed.name.starts_with(&format!("from_{source}_at_")), "{}", unnamed.name);
    assert!(unnamed.name.ends_with('Z') && unnamed.name.len() == format!("from_{source}_at_").len() + 16);
    let missing = h.service.create_image_from_instance(&instance_id("i-nothere"), None).await;
    assert_eq!(missing.map(|image| image.id).map_err(|error| error.code().as_str()), Err("InvalidInstanceId.NotFound"));

    let params =
        json!({"invokeType": "invoke", "scalingGroupId": group.id.as_str(), "imageId": image.id, "batchNumber": 2});
    let task = h.start(IMAGE_TEMPLATE, params).await;
    let (task, _) = h.wait(&task.id, None).await;
    assert_eq!(task.status, TaskStatus::Success, "{}", task.status_message);
    for instance in h.instances(&group).await {
        assert_eq!(instance.image_id, image.id);
        assert_eq!(h.fleet.snapshot(&instance.id).unwrap().image_id, image.id);
    }
}

/// R3 refuses an unknown image only after the fleet's images were put into the catalog: an
/// image the backend gained after start (built on the container host) is accepted.
#[tokio::test]
async fn an_image_the_fleet_gained_later_is_accepted_at_start() {
    use rollscale_fleet::Fleet;
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    let source = h.instances(&group).await[0].id.clone();
    // Made on the backend directly, not through the service: the catalog does not know it.
    let image = h.fleet.create_image(&source, "built by hand").await.expect("fleet image");
    assert!(h.service.images().await.unwrap().iter().all(|listed| listed.id != image));

    let params = json!({"invokeType": "invoke", "scalingGroupId": group.id.as_str(), "imageId": image});
    let task = h.start(IMAGE_TEMPLATE, params).await;
    let (task, _) = h.wait(&task.id, None).await;
    assert_eq!(task.status, TaskStatus::Success, "{}", task.status_message);
    assert!(h.service.images().await.unwrap().iter().any(|listed| listed.id == image));
    for instance in h.instances(&group).await {
        assert_eq!(instance.image_id, image);
    }
}

/// DeleteImage sticks: an image deleted from the catalog is not put back from the fleet's own
/// images — not by the start's import, not by a check that misses it (R3 refuses it) — until
/// CreateImage adds it again. And an unknown image id asks the fleet for that image only: a
/// typo adds nothing to the catalog.
#[tokio::test]
async fn a_deleted_image_stays_deleted_and_an_unknown_one_adds_nothing() {
    use rollscale_fleet::Fleet;
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    let source = h.instances(&group).await[0].id.clone();
    let kept = h.fleet.create_image(&source, "kept").await.expect("fleet image");
    let gone = h.fleet.create_image(&source, "gone").await.expect("fleet image");
    let catalog = || async {
        let mut ids: Vec<String> = h.service.images().await.expect("images").into_iter().map(|i| i.id).collect();
        ids.sort();
        ids
    };
    let update_to = |image: &str| {
        json!({"invokeType": "invoke", "scalingGroupId": group.id.as_str(), "imageId": image}).to_string()
    };

    let before = catalog().await;
    let typo = h.service.start_template(IMAGE_TEMPLATE, &update_to("m-no-such-image")).await;
    assert_eq!(typo.map(|task| task.id).map_err(|error| error.code().as_str()), Err("InvalidImageId.NotFound"));
    assert_eq!(catalog().await, before, "an unknown image id puts none of the fleet's images into the catalog");

    assert_eq!(h.service.sync_fleet_images().await.expect("sync"), 2, "the start's import: both");
    assert!(catalog().await.contains(&gone));
    h.service.delete_image(&gone).await.expect("delete");
    assert_eq!(h.service.sync_fleet_images().await.expect("sync"), 0, "a deleted image is not imported again");
    let refused = h.service.start_template(IMAGE_TEMPLATE, &update_to(&gone)).await;
    assert_eq!(refused.map(|task| task.id).map_err(|error| error.code().as_str()), Err("InvalidImageId.NotFound"));
    assert!(!catalog().await.contains(&gone), "still deleted");
    let again = h.service.delete_image(&gone).await;
    assert_eq!(again.map_err(|error| error.code().as_str()), Err("InvalidImageId.NotFound"));
    assert!(catalog().await.contains(&kept), "the other image is untouched");

    // Created again explicitly: usable again.
    h.service.create_image(&gone, None, None).await.expect("create again");
    let task = h
        .start(IMAGE_TEMPLATE, json!({"invokeType": "invoke", "scalingGroupId": group.id.as_str(), "imageId": gone}))
        .await;
    let (task, _) = h.wait(&task.id, None).await;
    assert_eq!(task.status, TaskStatus::Success, "{}", task.status_message);
}

/// A new instance whose health check never passes gets no traffic: it stays Pending and
/// Unhealthy, unregistered, and the pass says why; once healthy, the next pass puts it
/// InService behind the load balancer. A scale-in removes such instances first.
#[tokio::test]
async fn new_instances_go_in_service_only_once_healthy() {
    use rollscale_core::domain::HealthStatus;
    use rollscale_engine::service::GroupChanges;
    use rollscale_fleet::LoadBalancer;
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    let lb = group.load_balancer_ids[0].clone();
    let gid = &group.id;
    h.fleet.set_unhealthy_image(OLD_IMAGE, true);
    let grown = h
        .service
        .modify_group(gid, GroupChanges { max_size: Some(10), desired_capacity: Some(3), ..GroupChanges::default() })
        .await
        .expect("modify");
    let refused = h.service.reconcile_group(&grown).await;
    let error = refused.expect_err("the pass reports the unhealthy instance");
    assert_eq!(error.code(), "HealthCheckFailed", "{error}");
    let instances = h.instances(&group).await;
    assert_eq!(instances.len(), 3);
    let new = instances.iter().find(|i| i.lifecycle_state == LifecycleState::Pending).expect("a Pending one").clone();
    assert_eq!(new.health_status, HealthStatus::Unhealthy);
    assert!(error.to_string().contains(new.id.as_str()), "{error}");
    assert!(h.service.backends(&new.id).await.unwrap().is_empty(), "not registered in the store");
    assert_eq!(h.lb.weight(&lb, &new.id).await, Ok(None), "nor with the load balancer");
    let (activities, _) = h.store.activity_list(&group.id, 0, 20).await.unwrap();
    let scale_out = activities.iter().find(|a| a.instance_ids.contains(&new.id)).expect("the scale-out");
    assert_eq!(scale_out.status, rollscale_core::domain::ActivityStatus::Failed);
    assert!(scale_out.status_message.contains("did not become healthy"), "{}", scale_out.status_message);
    // A second pass does not make another instance: the Pending one counts.
    assert!(h.service.reconcile_group(&grown).await.is_err());
    assert_eq!(h.instances(&group).await.len(), 3);

    // Healthy now: the next pass registers it at the default weight.
    h.fleet.set_unhealthy_image(OLD_IMAGE, false);
    h.service.reconcile_group(&grown).await.expect("in service now");
    let now = h.service.instances(Some(gid), Some(std::slice::from_ref(&new.id)), None).await.unwrap().remove(0);
    assert_eq!((now.lifecycle_state, now.health_status), (LifecycleState::InService, HealthStatus::Healthy));
    assert_eq!(h.lb.weight(&lb, &new.id).await, Ok(Some(100)));

    // Another one that fails, then a scale-in: the failed one goes, the healthy ones stay.
    h.fleet.set_unhealthy_image(OLD_IMAGE, true);
    let grown = h
        .service
        .modify_group(gid, GroupChanges { desired_capacity: Some(4), ..GroupChanges::default() })
        .await
        .expect("modify");
    assert!(h.service.reconcile_group(&grown).await.is_err());
    let failed = h.instances(&group).await.into_iter().find(|i| i.lifecycle_state == LifecycleState::Pending).unwrap();
    let shrunk = h
        .service
        .modify_group(gid, GroupChanges { desired_capacity: Some(3), ..GroupChanges::default() })
        .await
        .expect("modify");
    h.service.reconcile_group(&shrunk).await.expect("scale in");
    let left = h.instances(&group).await;
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|i| i.id != failed.id && i.lifecycle_state == LifecycleState::InService), "{left:?}");
    assert!(h.fleet.snapshot(&failed.id).is_none(), "removed from the fleet");
}

/// A new instance found unhealthy is looked at once by each later pass: not created or started
/// again (and so not waited for again); only one that vanished from the fleet is made again.
#[tokio::test]
async fn later_passes_look_at_an_unhealthy_new_instance_once_without_redoing_it() {
    use rollscale_core::domain::HealthStatus;
    use rollscale_engine::service::GroupChanges;
    use rollscale_fleet::Fleet;
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    h.fleet.set_unhealthy_image(OLD_IMAGE, true);
    let changes = GroupChanges { max_size: Some(3), desired_capacity: Some(3), ..GroupChanges::default() };
    let grown = h.service.modify_group(&group.id, changes).await.expect("modify");
    assert!(h.service.reconcile_group(&grown).await.is_err(), "the new instance is unhealthy");
    let new = h.instances(&group).await.into_iter().find(|i| i.lifecycle_state == LifecycleState::Pending);
    let new = new.expect("a Pending instance");
    assert_eq!(new.health_status, HealthStatus::Unhealthy);

    // Stopped meanwhile: the next pass neither starts nor makes it again, and asks once.
    assert!(h.fleet.set_running(&new.id, false));
    let before = h.fleet.calls();
    let again = h.service.reconcile_group(&grown).await.expect_err("still unhealthy");
    assert_eq!(again.code(), "HealthCheckFailed", "{again}");
    let after = h.fleet.calls();
    assert_eq!((after.create - before.create, after.health - before.health), (0, 1), "{after:?}");
    assert!(!h.fleet.snapshot(&new.id).expect("exists").running, "left as it is");

    // Gone from the fleet: made again, and asked once.
    h.fleet.remove_instance(&new.id).await.expect("remove");
    let before = h.fleet.calls();
    assert!(h.service.reconcile_group(&grown).await.is_err());
    let after = h.fleet.calls();
    assert_eq!((after.create - before.create, after.health - before.health), (1, 1), "{after:?}");
    assert!(h.fleet.snapshot(&new.id).is_some());
    assert_eq!(h.instances(&group).await.len(), 3, "no other instance was made for it");
}

/// A scale-out that a crash interrupted (its activity written InProgress and its instances
/// Pending, none brought up) is finished by the next pass, which also ends the activity with
/// the outcome: R3 refuses a rolling update only until then.
#[tokio::test]
async fn a_scale_out_a_crash_interrupted_is_finished_and_its_activity_ended() {
    use rollscale_core::domain::{ActivityStatus, CreationType, HealthStatus, Instance, ScalingActivity};
    use rollscale_core::ids::{InstanceId, ScalingActivityId};
    use rollscale_engine::service::GroupChanges;
    let h = Harness::new(1).await;
    let group = h.group(1).await;
    let gid = &group.id;
    // What a scale-out has written when the process dies: its activity, its Pending instance.
    let crashed = |seed: u128, desired: u32| {
        let now = rollscale_engine::now_millis();
        let instance = Instance {
            id: InstanceId::from_random(seed),
            group_id: group.id.clone(),
            lifecycle_state: LifecycleState::Pending,
            health_status: HealthStatus::Healthy,
            creation_type: CreationType::AutoCreated,
            image_id: OLD_IMAGE.into(),
            packages: Vec::new(),
            containers: Vec::new(),
            tags: Vec::new(),
            address: String::new(),
            created_at: now,
            changed_at: None,
            observed: None,
            observed_at: None,
        };
        let activity = ScalingActivity {
            id: ScalingActivityId::from_random(seed),
            group_id: group.id.clone(),
            kind: Some(rollscale_core::domain::ActivityKind::ScaleOut),
            description: "Scale out: add 1 instance(s)".into(),
            cause: format!("the desired capacity is {desired}"),
            status: ActivityStatus::InProgress,
            status_message: String::new(),
            instance_ids: vec![instance.id.clone()],
            started_at: now,
            ended_at: None,
        };
        (instance, activity)
    };
    let (store, group_id) = (&h.store, &group.id);
    let activity_now = |id: ScalingActivityId| async move {
        let (activities, _) = store.activity_list(group_id, 0, 100).await.expect("activities");
        activities.into_iter().find(|activity| activity.id == id).expect("the activity")
    };
    let update = image_params(gid.as_str(), None, 1, "Automatic").to_string();

    let changes = GroupChanges { max_size: Some(3), desired_capacity: Some(2), ..GroupChanges::default() };
    let grown = h.service.modify_group(gid, changes).await.expect("modify");
    let (new, activity) = crashed(7, 2);
    h.store.activity_put(&activity).await.expect("activity");
    h.store.instance_insert_many(std::slice::from_ref(&new)).await.expect("instance");
    let refused = h.service.start_template(IMAGE_TEMPLATE, &update).await;
    assert_eq!(refused.map(|task| task.id).map_err(|error| error.code().as_str()), Err("ScalingActivityInProgress"));

    // Unhealthy: the activity fails, saying why.
    h.fleet.set_unhealthy_image(OLD_IMAGE, true);
    let failed = h.service.reconcile_group(&grown).await.expect_err("it does not become healthy");
    assert_eq!(failed.code(), "HealthCheckFailed", "{failed}");
    let ended = activity_now(activity.id.clone()).await;
    assert_eq!(ended.status, ActivityStatus::Failed);
    assert!(ended.ended_at.is_some());
    let message = &ended.status_message;
    assert!(message.contains("did not become healthy") && message.contains(new.id.as_str()), "{message}");
    assert_eq!(h.instances(&group).await.len(), 2, "no other instance was made for it");
    h.fleet.set_unhealthy_image(OLD_IMAGE, false);
    h.service.reconcile_group(&grown).await.expect("in service now");

    // Healthy: the activity succeeds.
    let changes = GroupChanges { desired_capacity: Some(3), ..GroupChanges::default() };
    let grown = h.service.modify_group(gid, changes).await.expect("modify");
    let (new, activity) = crashed(8, 3);
    h.store.activity_put(&activity).await.expect("activity");
    h.store.instance_insert_many(std::slice::from_ref(&new)).await.expect("instance");
    h.service.reconcile_group(&grown).await.expect("brought up");
    let ended = activity_now(activity.id.clone()).await;
    assert_eq!((ended.status, ended.status_message.as_str()), (ActivityStatus::Successful, ""));
    let instances = h.instances(&group).await;
    assert_eq!(instances.len(), 3);
    assert!(instances.iter().all(|i| i.lifecycle_state == LifecycleState::InService), "{instances:?}");

    let task = h.start(IMAGE_TEMPLATE, image_params(gid.as_str(), None, 1, "Automatic")).await;
    let (task, _) = h.wait(&task.id, None).await;
    assert_eq!(task.status, TaskStatus::Success, "{}", task.status_message);
}

/// R5: ExitStandby restores the weight each instance had, not the load balancer's default:
/// an instance set to 37 (`SetBackendServers`) is back at 37 after the update.
#[tokio::test]
async fn exit_standby_restores_each_instances_own_weight() {
    use rollscale_fleet::LoadBalancer;
    let h = Harness::new(1).await;
    let group = h.group(3).await;
    let lb = group.load_balancer_ids[0].clone();
    let instances = h.instances(&group).await;
    let light = instances[1].id.clone();
    h.service.set_backend_weights(&lb, &[(light.clone(), 37)]).await.expect("set weight");
    assert_eq!(h.weight(&light).await, 37);
    assert_eq!(h.lb.weight(&lb, &light).await, Ok(Some(37)));
    let refused = h.service.set_backend_weights(&lb, &[(light.clone(), 101)]).await;
    assert_eq!(refused.map_err(|error| error.code().as_str()), Err("InvalidParameter"));

    let task = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str(), None, 3, "Automatic")).await;
    let (task, _) = h.wait(&task.id, None).await;
    assert_eq!(task.status, TaskStatus::Success, "{}", task.status_message);
    for instance in &instances {
        let expected = if instance.id == light { 37 } else { 100 };
        assert_eq!(h.weight(&instance.id).await, expected, "{}", instance.id);
        assert_eq!(h.lb.weight(&lb, &instance.id).await, Ok(Some(expected)), "{}", instance.id);
    }

    // In Standby, the weight to come back to is the one it entered with: not settable.
    h.service.enter_standby(&group.id, std::slice::from_ref(&light)).await.expect("standby");
    let refused = h.service.set_backend_weights(&lb, &[(light.clone(), 50)]).await;
    assert_eq!(refused.map_err(|error| error.code().as_str()), Err("IncorrectInstanceStatus"));
    h.service.exit_standby(&group.id, std::slice::from_ref(&light)).await.expect("exit standby");
    assert_eq!(h.lb.weight(&lb, &light).await, Ok(Some(37)));
}

/// Scale activities a cut-short pass left in progress (a crash between removing instances and
/// ending the scale-in; or after bringing a scale-out's instances up but before ending it) are
/// ended by the next pass, so R3 stops refusing rolling updates: a scale-in whose instances are
/// all gone is Successful, one that left some is Failed naming them (and the pass removes what
/// the desired capacity still asks); a scale-out whose instances all joined is Successful.
#[tokio::test]
async fn scale_activities_a_crash_left_in_progress_are_ended_by_the_next_pass() {
    use rollscale_core::domain::{ActivityStatus, ScalingActivity};
    use rollscale_core::ids::{InstanceId, ScalingActivityId};
    use rollscale_engine::service::GroupChanges;
    let h = Harness::new(1).await;
    let group = h.group(4).await;
    let gid = &group.id;
    let members = h.instances(&group).await;
    // Records as written before an activity's kind was kept: it is read from the description.
    let activity = |seed: u128, description: &str, ids: Vec<InstanceId>| ScalingActivity {
        id: ScalingActivityId::from_random(seed),
        group_id: group.id.clone(),
        kind: None,
        description: description.into(),
        cause: "the desired capacity is 2".into(),
        status: ActivityStatus::InProgress,
        status_message: String::new(),
        instance_ids: ids,
        started_at: rollscale_engine::now_millis(),
        ended_at: None,
    };
    // A scale-in of two that removed one (gone from the store) before the crash, one that
    // removed both, and a scale-out whose instances all came up InService.
    let gone = InstanceId::from_random(99);
    let half = activity(1, "Scale in", vec![gone.clone(), members[3].id.clone()]);
    let whole = activity(2, "Scale in", vec![InstanceId::from_random(98)]);
    let grown = activity(3, "Scale out: add 1 instance(s)", vec![members[0].id.clone()]);
    for interrupted in [&half, &whole, &grown] {
        h.store.activity_put(interrupted).await.expect("activity");
    }
    let update = image_params(gid.as_str(), None, 1, "Automatic").to_string();
    let refused = h.service.start_template(IMAGE_TEMPLATE, &update).await;
    assert_eq!(refused.map(|task| task.id).map_err(|error| error.code().as_str()), Err("ScalingActivityInProgress"));

    let changes = GroupChanges { desired_capacity: Some(3), ..GroupChanges::default() };
    let shrunk = h.service.modify_group(gid, changes).await.expect("modify");
    h.service.reconcile_group(&shrunk).await.expect("a pass");
    let (activities, _) = h.store.activity_list(&group.id, 0, 100).await.expect("activities");
    let status_of = |id: &ScalingActivityId| activities.iter().find(|a| &a.id == id).expect("there").clone();
    let half_now = status_of(&half.id);
    assert_eq!(half_now.status, ActivityStatus::Failed);
    assert!(half_now.status_message.contains(members[3].id.as_str()), "{}", half_now.status_message);
    assert!(!half_now.status_message.contains(gone.as_str()), "{}", half_now.status_message);
    assert_eq!(status_of(&whole.id).status, ActivityStatus::Successful);
    assert_eq!(status_of(&grown.id).status, ActivityStatus::Successful);
    assert!(
        activities.iter().all(|a| a.status != ActivityStatus::InProgress && a.ended_at.is_some()),
        "{activities:?}"
    );
    assert_eq!(h.instances(&group).await.len(), 3, "the pass scaled in to the desired capacity");
    let task = h.service.start_template(IMAGE_TEMPLATE, &update).await.expect("R3 no longer refuses");
    let (done, _) = h.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Success);
}

/// `RemoveInstances`: an instance that never became healthy is removed and, without
/// DecreaseDesiredCapacity, replaced by the reconciler once the image is fixed; with it (the
/// default) the capacity goes down. Refused, changing nothing: below MinSize, a Protected
/// instance, an instance of another group, during a rolling update.
#[tokio::test]
async fn remove_instances_replaces_a_broken_instance_or_shrinks_the_group() {
    use rollscale_core::domain::{HealthStatus, LifecycleState};
    use rollscale_engine::service::GroupChanges;
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    let gid = &group.id;
    // A scale-out on an image that never becomes healthy: one Pending, Unhealthy instance.
    h.fleet.set_unhealthy_image(OLD_IMAGE, true);
    let changes = GroupChanges { max_size: Some(4), desired_capacity: Some(3), ..GroupChanges::default() };
    let grown = h.service.modify_group(gid, changes).await.expect("modify");
    assert!(h.service.reconcile_group(&grown).await.is_err(), "it does not become healthy");
    let broken = h
        .instances(&group)
        .await
        .into_iter()
        .find(|i| i.lifecycle_state == LifecycleState::Pending)
        .expect("a Pending instance");
    assert_eq!(broken.health_status, HealthStatus::Unhealthy);

    // Replaced: removed without lowering the capacity, the next pass makes a healthy one.
    h.fleet.set_unhealthy_image(OLD_IMAGE, false);
    h.service.remove_instances(gid, std::slice::from_ref(&broken.id), false).await.expect("remove");
    assert!(h.fleet.snapshot(&broken.id).is_none(), "released from the fleet");
    let group_now = h.service.group(gid).await.expect("group");
    assert_eq!(group_now.desired_capacity, 3, "the capacity is kept");
    h.service.reconcile_group(&group_now).await.expect("a pass");
    let members = h.instances(&group).await;
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|i| i.lifecycle_state == LifecycleState::InService && i.id != broken.id), "{members:?}");

    // Refusals change nothing.
    let other = h
        .service
        .create_group(rollscale_engine::service::NewGroup { name: "other".into(), max_size: 1, ..Default::default() })
        .await
        .expect("group");
    let first = members[0].id.clone();
    let refused = h.service.remove_instances(&other.id, std::slice::from_ref(&first), true).await;
    assert_eq!(refused.unwrap_err().code(), "InvalidInstanceId.NotFound");
    let floor = GroupChanges { min_size: Some(3), ..GroupChanges::default() };
    h.service.modify_group(gid, floor).await.expect("MinSize 3");
    let refused = h.service.remove_instances(gid, std::slice::from_ref(&first), true).await;
    assert_eq!(refused.unwrap_err().code(), "IncorrectCapacity.MinSize");
    h.service
        .modify_group(gid, GroupChanges { min_size: Some(0), ..GroupChanges::default() })
        .await
        .expect("MinSize 0");
    h.service.set_protection(gid, std::slice::from_ref(&first), true).await.expect("protect");
    let refused = h.service.remove_instances(gid, std::slice::from_ref(&first), true).await;
    assert_eq!(refused.unwrap_err().code(), "IncorrectInstanceStatus");
    h.service.set_protection(gid, std::slice::from_ref(&first), false).await.expect("unprotect");
    let paused = h.start(IMAGE_TEMPLATE, image_params(gid.as_str(), None, 3, "FirstBatchPause")).await;
    h.wait(&paused.id, Some(WaitingStatus::BatchPaused)).await;
    let refused = h.service.remove_instances(gid, std::slice::from_ref(&first), true).await;
    assert_eq!(refused.unwrap_err().code(), "IncorrectScalingGroupStatus");
    assert_eq!(h.instances(&group).await.len(), 3, "nothing was removed");
    assert_eq!(h.service.group(gid).await.expect("group").desired_capacity, 3, "nor the capacity changed");
    h.service.cancel_task(&paused.id, true).await.expect("cancel");
    h.wait(&paused.id, None).await;

    // Shrunk: the default lowers the desired capacity by as many.
    let two: Vec<InstanceId> = members[1..].iter().map(|i| i.id.clone()).collect();
    h.service.remove_instances(gid, &two, true).await.expect("remove");
    let group_now = h.service.group(gid).await.expect("group");
    assert_eq!(group_now.desired_capacity, 1);
    h.service.reconcile_group(&group_now).await.expect("a pass");
    assert_eq!(h.instances(&group).await.len(), 1, "no replacement");
}
