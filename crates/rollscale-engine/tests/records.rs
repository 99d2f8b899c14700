//! A failed step records what the instance became (docs/design.md R16): after a
//! failed health gate, or a change whose call failed after it took effect, the instance's
//! record shows what it runs and its health as observed; the task counts it as changed, so a
//! rollback targets it (R12). Same for scripts that ran and failed, packages and containers.

use rollscale_core::domain::{ContainerSpec, HealthStatus, Instance, LifecycleState, ScalingGroup};
use rollscale_core::ids::InstanceId;
use rollscale_core::task::WaitingStatus::FailurePaused;
use rollscale_core::task::{InstanceDecision, InstanceStatus, InstanceWork, Step, StepOutcome, TaskState, TaskStatus};
use rollscale_engine::service::TaskInstance;
use rollscale_test_support::engine::*;
use serde_json::json;

const CONTAINER_TEMPLATE: &str = "ACS-ESS-RollingUpdateByUpdateContainerGroup";

fn image_update(group: &ScalingGroup, batches: u32) -> serde_json::Value {
    json!({"invokeType": "invoke", "scalingGroupId": group.id, "imageId": NEW_IMAGE, "sourceImageId": OLD_IMAGE,
           "batchNumber": batches})
}

fn rollback_of(group: &ScalingGroup, source: &TaskState) -> serde_json::Value {
    json!({"invokeType": "rollback", "scalingGroupId": group.id, "sourceExecutionId": source.id})
}

async fn instance(h: &Harness, id: &InstanceId) -> Instance {
    h.service.instances(None, Some(std::slice::from_ref(id)), None).await.expect("instances").remove(0)
}

fn work_of<'a>(works: &'a [InstanceWork], id: &InstanceId) -> &'a InstanceWork {
    works.iter().find(|work| &work.instance_id == id).expect("a target")
}

/// Rolls back `source` and checks that it targeted exactly `targets`.
async fn roll_back(h: &Harness, template: &str, params: serde_json::Value, targets: &[&InstanceId]) -> TaskState {
    let rollback = h.start(template, params).await;
    let (done, works) = h.wait(&rollback.id, None).await;
    assert_eq!(done.status, TaskStatus::Success, "{}", done.status_message);
    let mut targeted: Vec<&InstanceId> = works.iter().map(|work| &work.instance_id).collect();
    targeted.sort();
    let mut expected = targets.to_vec();
    expected.sort();
    assert_eq!(targeted, expected, "the rollback targets the instances the source changed");
    done
}

/// Issue 8: a new image that fails its health check. The failed instance's record shows the new
/// image and Unhealthy (it was changed), it waits in Standby at weight 0, the task counts it as
/// changed, and a rollback of the task targets it and puts the old image back, healthy.
#[tokio::test]
async fn a_failed_health_gate_records_the_new_image_unhealthy_and_its_rollback_restores_it() {
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    h.fleet.set_unhealthy_image(NEW_IMAGE, true);
    let source = h.start(IMAGE_TEMPLATE, image_update(&group, 2)).await;
    let (_, works) = h.wait(&source.id, Some(FailurePaused)).await;
    let failed: Vec<&InstanceWork> = works.iter().filter(|work| work.status == InstanceStatus::Failed).collect();
    assert_eq!(failed.len(), 1, "batch 1 only: {works:?}");
    let victim = failed[0].instance_id.clone();
    assert_eq!((failed[0].step, failed[0].applied), (Step::HealthCheck, true));
    assert_eq!(failed[0].error_code.as_deref(), Some("HealthCheckFailed"));
    let record = instance(&h, &victim).await;
    assert_eq!(record.image_id, NEW_IMAGE, "the image it runs, not the one it had");
    assert_eq!(h.fleet.snapshot(&victim).unwrap().image_id, NEW_IMAGE);
    assert_eq!(record.health_status, HealthStatus::Unhealthy);
    assert!(record.changed_at.is_some_and(|at| at >= source.created_at), "{:?}", record.changed_at);
    assert_eq!(record.lifecycle_state, LifecycleState::Standby);
    assert_eq!(h.weight(&victim).await, 0);

    h.fleet.set_unhealthy_image(NEW_IMAGE, false);
    roll_back(&h, IMAGE_TEMPLATE, rollback_of(&group, &source), &[&victim]).await;
    let record = instance(&h, &victim).await;
    assert_eq!(record.image_id, OLD_IMAGE);
    assert_eq!(h.fleet.snapshot(&victim).unwrap().image_id, OLD_IMAGE);
    assert_eq!(record.health_status, HealthStatus::Healthy, "its health gate passed");
    assert_eq!(record.lifecycle_state, LifecycleState::InService);
    assert_eq!(h.weight(&victim).await, 100);
}

/// A failed health gate retried once the image is fixed: the gate passes and the record says
/// Healthy again; the instance leaves Standby with its weight.
#[tokio::test]
async fn a_health_gate_that_passes_on_retry_records_healthy() {
    let h = Harness::new(1).await;
    let group = h.group(1).await;
    h.fleet.set_unhealthy_image(NEW_IMAGE, true);
    let task = h.start(IMAGE_TEMPLATE, image_update(&group, 1)).await;
    let (_, works) = h.wait(&task.id, Some(FailurePaused)).await;
    let victim = works[0].instance_id.clone();
    assert_eq!(instance(&h, &victim).await.health_status, HealthStatus::Unhealthy);
    h.fleet.set_unhealthy_image(NEW_IMAGE, false);
    h.service
        .decide_instance(&task.id, &TaskInstance::Instance(victim.clone()), InstanceDecision::Retry)
        .await
        .unwrap();
    let (done, _) = h.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Success);
    let record = instance(&h, &victim).await;
    assert_eq!((record.image_id.as_str(), record.health_status), (NEW_IMAGE, HealthStatus::Healthy));
    assert_eq!(record.lifecycle_state, LifecycleState::InService);
    assert_eq!(h.weight(&victim).await, 100);
}

/// A replacement whose call fails after it took effect (here its answer is lost on every try,
/// so the step fails with BackendUnavailable): the instance is looked at again, and its record
/// shows the image it runs and its health as its check answers; it counts as changed and a
/// rollback targets it. An instance whose replacement failed without effect is not changed.
#[tokio::test]
async fn a_replacement_that_failed_after_taking_effect_is_recorded_and_rolled_back() {
    for broken in [false, true] {
        let h = Harness::new(1).await;
        let group = h.group(4).await;
        let instances = h.instances(&group).await;
        let (lost, refused) = (instances[0].id.clone(), instances[1].id.clone());
        // Every try of the call (the first and its retries) takes effect and loses its answer.
        h.fleet.lose_next_response(&lost, fast_config().transient_retries + 1);
        h.fleet.set_failing(&refused, true);
        h.fleet.set_unhealthy_image(NEW_IMAGE, broken);
        let source = h.start(IMAGE_TEMPLATE, image_update(&group, 2)).await;
        let (_, works) = h.wait(&source.id, Some(FailurePaused)).await;
        let (lost_work, refused_work) = (work_of(&works, &lost), work_of(&works, &refused));
        assert_eq!((lost_work.status, lost_work.step), (InstanceStatus::Failed, Step::Apply));
        assert_eq!(lost_work.error_code.as_deref(), Some("BackendUnavailable"));
        assert!(lost_work.applied, "it runs the new image: changed");
        assert_eq!(lost_work.before.as_deref(), Some(OLD_IMAGE));
        let record = instance(&h, &lost).await;
        assert_eq!(record.image_id, NEW_IMAGE);
        let health = if broken { HealthStatus::Unhealthy } else { HealthStatus::Healthy };
        assert_eq!(record.health_status, health, "as its check answered, broken {broken}");
        assert!(record.changed_at.is_some());
        assert_eq!((refused_work.status, refused_work.applied), (InstanceStatus::Failed, false));
        let record = instance(&h, &refused).await;
        assert_eq!((record.image_id.as_str(), record.health_status), (OLD_IMAGE, HealthStatus::Healthy));
        assert_eq!(record.changed_at, None);

        h.fleet.set_failing(&refused, false);
        h.fleet.set_unhealthy_image(NEW_IMAGE, false);
        roll_back(&h, IMAGE_TEMPLATE, rollback_of(&group, &source), &[&lost]).await;
        let record = instance(&h, &lost).await;
        assert_eq!((record.image_id.as_str(), record.health_status), (OLD_IMAGE, HealthStatus::Healthy));
        assert_eq!(h.fleet.snapshot(&lost).unwrap().image_id, OLD_IMAGE);
    }
}

/// A redo of the failed Apply (as after a crash before its outcome was committed) finds the
/// instance on the image and succeeds without replacing it again; recorded, it is applied and
/// goes on to its health gate. The image changed once.
#[tokio::test]
async fn a_failed_apply_that_took_effect_redone_changes_the_instance_once() {
    let h = Harness::new(0).await;
    let group = h.group(1).await;
    let id = h.instances(&group).await[0].id.clone();
    let request = rollscale_core::params::parse_start(IMAGE_TEMPLATE, &image_update(&group, 1)).unwrap();
    let spec = rollscale_core::params::resolve(request, None).unwrap();
    let mut work =
        InstanceWork::new(rollscale_core::ids::ExecutionId::from_random(7), id.clone(), 0, 0, false).start(0);
    for step in [Step::EnterStandby, Step::Drain] {
        let outcome = h.engine.perform_step(&spec, &work, step).await.expect("step");
        work = work.record(step, outcome, true, 1);
    }
    h.fleet.lose_next_response(&id, fast_config().transient_retries + 1);
    let failed = h.engine.perform_step(&spec, &work, Step::Apply).await.expect("apply");
    let StepOutcome::Failed { report, .. } = &failed else { panic!("the answer was lost: {failed:?}") };
    assert!(report.changed && report.before.as_deref() == Some(OLD_IMAGE), "{report:?}");
    assert_eq!(instance(&h, &id).await.image_id, NEW_IMAGE);
    // Recorded, the failure leaves the instance applied (a rollback targets it), waiting on Apply.
    let recorded = work.clone().record(Step::Apply, failed, true, 2);
    assert_eq!((recorded.status, recorded.step, recorded.applied), (InstanceStatus::Failed, Step::Apply, true));
    // Or the process dies before recording it, and the step is done again: the instance is on
    // the image already, so the redo succeeds without replacing it a second time.
    let redone = h.engine.perform_step(&spec, &work, Step::Apply).await.expect("apply again");
    assert!(matches!(redone, StepOutcome::Done(_)), "{redone:?}");
    let work = work.record(Step::Apply, redone, true, 2);
    assert!(work.applied && work.step == Step::HealthCheck && work.status == InstanceStatus::Running);
    let calls = h.fleet.calls();
    assert_eq!(calls.replace_image - calls.noop_replace_image, 1, "the image changed once");
}

/// R13 with R12: a script that ran and exited non-zero changed the instance: its child counts
/// as applied and a rollback runs the rollback script on it. A script the instance cannot run
/// did not run: not applied, and a rollback of that task targets nothing.
#[tokio::test]
async fn a_failing_script_counts_as_changed_and_its_rollback_targets_it() {
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    let source = h
        .start(
            SCRIPT_TEMPLATE,
            json!({"invokeType": "invoke", "scalingGroupId": group.id, "invokeScript": "echo partial\nexit 3",
                   "rollbackScript": "echo undo", "batchNumber": 1}),
        )
        .await;
    let (_, works) = h.wait(&source.id, Some(FailurePaused)).await;
    for work in &works {
        assert_eq!((work.status, work.exit_code, work.applied), (InstanceStatus::Failed, Some(3), true));
        assert!(instance(&h, &work.instance_id).await.changed_at.is_some());
    }
    let ids: Vec<&InstanceId> = works.iter().map(|work| &work.instance_id).collect();
    let rollback = roll_back(&h, SCRIPT_TEMPLATE, rollback_of(&group, &source), &ids).await;
    let (_, rolled) = h.service.task(&rollback.id).await.unwrap();
    assert!(rolled.iter().all(|work| work.output == "undo\n"), "{rolled:?}");

    let unrunnable = h
        .start(
            SCRIPT_TEMPLATE,
            json!({"invokeType": "invoke", "scalingGroupId": group.id, "commandType": "RunBatScript",
                   "invokeScript": "dir", "rollbackScript": "echo undo", "batchNumber": 1}),
        )
        .await;
    let (_, works) = h.wait(&unrunnable.id, Some(FailurePaused)).await;
    assert!(works.iter().all(|work| work.status == InstanceStatus::Failed && !work.applied), "{works:?}");
    roll_back(&h, SCRIPT_TEMPLATE, rollback_of(&group, &unrunnable), &[]).await;
}

/// A package whose install script ran and failed changed the instance: applied, a rollback
/// targets it; and the instance's packages are recorded as it reports them (here a package
/// removed out of band is no longer shown installed).
#[tokio::test]
async fn a_failing_package_script_counts_as_changed_and_records_the_packages_observed() {
    let h = Harness::new(1).await;
    let group = h.group(1).await;
    let id = h.instances(&group).await[0].id.clone();
    let v3 = h
        .start(PACKAGE_TEMPLATE, json!({"invokeType": "invoke", "scalingGroupId": group.id, "packageName": "wordpress", "packageVersion": "v3"}))
        .await;
    assert_eq!(h.wait(&v3.id, None).await.0.status, TaskStatus::Success);
    assert_eq!(instance(&h, &id).await.packages, vec![("wordpress".to_string(), "v3".to_string())]);
    // Someone uninstalls it behind rollscale's back; then a version whose install fails.
    let mut observed = h.fleet.snapshot(&id).unwrap();
    observed.packages.clear();
    h.fleet.adopt(vec![observed]);
    h.service.create_package("wordpress", "v5", "echo installing\nexit 2", "echo bye").await.unwrap();
    let v5 = h
        .start(PACKAGE_TEMPLATE, json!({"invokeType": "invoke", "scalingGroupId": group.id, "packageName": "wordpress", "packageVersion": "v5"}))
        .await;
    let (_, works) = h.wait(&v5.id, Some(FailurePaused)).await;
    assert_eq!((works[0].status, works[0].exit_code, works[0].applied), (InstanceStatus::Failed, Some(2), true));
    let record = instance(&h, &id).await;
    assert_eq!(record.packages, Vec::<(String, String)>::new(), "what the instance reports");
    assert_eq!(record.packages, h.fleet.snapshot(&id).unwrap().packages);
    // The rollback goes back to the version the source found (v3), on the changed instance.
    roll_back(
        &h,
        PACKAGE_TEMPLATE,
        json!({"invokeType": "rollback", "scalingGroupId": group.id, "packageName": "wordpress", "sourceExecutionId": v5.id}),
        &[&id],
    )
    .await;
    assert_eq!(instance(&h, &id).await.packages, vec![("wordpress".to_string(), "v3".to_string())]);
}

/// ECI: a container update whose call fails after it took effect records the containers the
/// instance runs; a container update whose new image fails its health check records the new
/// containers and Unhealthy. Both count as changed, and the rollback targets both.
#[tokio::test]
async fn a_failed_container_update_records_the_containers_observed() {
    let h = Harness::new(1).await;
    let v1 = ContainerSpec { name: "web".into(), image: "web:v1".into(), port: Some(8080), ..ContainerSpec::default() };
    let v2 = ContainerSpec { image: "web:v2".into(), ..v1.clone() };
    let group = h.eci_group(2, vec![v1.clone()]).await;
    let instances = h.instances(&group).await;
    let (lost, unhealthy) = (instances[0].id.clone(), instances[1].id.clone());
    h.fleet.lose_next_response(&lost, fast_config().transient_retries + 1);
    h.fleet.set_unhealthy_image("web:v2", true);
    let source = h
        .start(
            CONTAINER_TEMPLATE,
            json!({"invokeType": "invoke", "scalingGroupId": group.id, "updateType": "RenewUpdate",
                   "containers": [v2], "rollbackContainers": [v1], "batchNumber": 1}),
        )
        .await;
    let (_, works) = h.wait(&source.id, Some(FailurePaused)).await;
    assert_eq!(work_of(&works, &lost).step, Step::Apply);
    assert_eq!(work_of(&works, &unhealthy).step, Step::HealthCheck);
    for id in [&lost, &unhealthy] {
        let work = work_of(&works, id);
        assert_eq!((work.status, work.applied), (InstanceStatus::Failed, true), "{work:?}");
        let record = instance(&h, id).await;
        assert_eq!(record.containers, vec![v2.clone()], "the containers it runs");
        assert_eq!(record.health_status, HealthStatus::Unhealthy);
        assert!(record.changed_at.is_some());
    }
    h.fleet.set_unhealthy_image("web:v2", false);
    roll_back(&h, CONTAINER_TEMPLATE, rollback_of(&group, &source), &[&lost, &unhealthy]).await;
    for id in [&lost, &unhealthy] {
        let record = instance(&h, id).await;
        assert_eq!((record.containers.clone(), record.health_status), (vec![v1.clone()], HealthStatus::Healthy));
    }
}
