//! The health checker over the simulated fleet (R16, R17): observed state, replacement of
//! unhealthy InService instances, and what it must leave alone. Passes are run inline
//! (`Service::health_pass`, `Service::reconcile_group`), so every test is deterministic.

use rollscale_core::domain::{
    ActivityStatus, Event, HealthCheckType, HealthStatus, Instance, LifecycleState, Process, ScalingGroup,
};
use rollscale_core::health::UNHEALTHY_THRESHOLD;
use rollscale_core::ids::{IdFilter, InstanceId};
use rollscale_engine::service::GroupChanges;
use rollscale_fleet::{Fault, Fleet};
use rollscale_test_support::engine::*;

async fn instance(h: &Harness, id: &InstanceId) -> Option<Instance> {
    h.service.instances(None, Some(std::slice::from_ref(id)), None).await.ok().and_then(|mut found| found.pop())
}

async fn health_events(h: &Harness, group: &ScalingGroup, kind: &str) -> Vec<Event> {
    let events = h.service.events(&IdFilter::Any, &IdFilter::Only(group.id.clone()), 500).await.expect("events");
    events.into_iter().filter(|e| e.kind == kind).collect()
}

async fn fault(h: &Harness, id: &InstanceId, fault: Fault) {
    h.service.inject_fault(id, fault).await.expect("inject fault");
}

async fn pass(h: &Harness, group: &ScalingGroup) -> rollscale_engine::health::HealthPass {
    let group = h.service.group(&group.id).await.expect("group");
    h.service.health_pass(&group).await.expect("health pass")
}

async fn assert_whole_and_healthy(h: &Harness, group: &ScalingGroup, size: usize) {
    let instances = h.instances(group).await;
    assert_eq!(instances.len(), size);
    for instance in &instances {
        assert_eq!(instance.lifecycle_state, LifecycleState::InService, "{}", instance.id);
        assert_eq!(instance.health_status, HealthStatus::Healthy, "{}", instance.id);
        assert!(h.fleet.snapshot(&instance.id).is_some_and(|o| o.running), "{} runs", instance.id);
        assert_eq!(h.weight(&instance.id).await, 100, "{} serves", instance.id);
    }
}

/// R16: every look is recorded with its time; a healthy group's records are not rewritten
/// by passes that see nothing new.
#[tokio::test]
async fn passes_record_the_observation_and_its_time() {
    let h = Harness::new(0).await;
    let group = h.group(5).await;
    let before = rollscale_engine::now_millis();
    let first = pass(&h, &group).await;
    assert_eq!((first.looked, first.unknown, first.written, first.unhealthy), (5, 0, 5, 0));
    for instance in h.instances(&group).await {
        let observed = instance.observed.clone().expect("observed");
        assert!(observed.exists && observed.running && observed.problem.is_none() && observed.drift.is_empty());
        assert_eq!(observed.image_id, OLD_IMAGE);
        assert!(instance.observed_at.is_some_and(|at| at >= before), "{:?}", instance.observed_at);
    }
    let second = pass(&h, &group).await;
    assert_eq!(second.written, 0, "nothing changed, nothing written");
    assert!(health_events(&h, &group, "InstanceUnhealthy").await.is_empty());
}

/// R17: a crashed (stopped) InService instance is Unhealthy at once, removed by a scaling
/// activity that names it and why, and the next reconcile pass replaces it.
#[tokio::test]
async fn a_crashed_instance_is_replaced() {
    let h = Harness::new(0).await;
    let group = h.group(4).await;
    let victim = h.instances(&group).await[1].id.clone();
    fault(&h, &victim, Fault::Crash).await;
    let report = pass(&h, &group).await;
    assert_eq!(report.removed, vec![victim.clone()]);
    assert!(instance(&h, &victim).await.is_none(), "removed from the group");
    assert!(h.fleet.snapshot(&victim).is_none(), "removed from the fleet");
    let (activities, _) = h.service.activities(&group.id, 0, 10).await.expect("activities");
    let removal = activities.iter().find(|a| a.instance_ids == vec![victim.clone()]).expect("removal activity");
    assert_eq!(removal.status, ActivityStatus::Successful);
    assert!(removal.description.contains("unhealthy instance") && removal.description.contains(victim.as_str()));
    assert!(removal.cause.contains("stopped"), "{}", removal.cause);
    assert_eq!(health_events(&h, &group, "InstanceUnhealthy").await.len(), 1);
    assert_eq!(health_events(&h, &group, "InstanceReplaced").await.len(), 1);

    h.service.reconcile_group(&group).await.expect("reconcile");
    assert_whole_and_healthy(&h, &group, 4).await;
    let again = pass(&h, &group).await;
    assert!(again.removed.is_empty() && again.unhealthy == 0);
}

/// R17: an instance gone from the backend (`podman rm -f`) is replaced too.
#[tokio::test]
async fn a_vanished_instance_is_replaced() {
    let h = Harness::new(0).await;
    let group = h.group(3).await;
    let victim = h.instances(&group).await[0].id.clone();
    h.fleet.remove_instance(&victim).await.expect("remove behind rollscale's back");
    let report = pass(&h, &group).await;
    assert_eq!(report.removed, vec![victim.clone()]);
    let (activities, _) = h.service.activities(&group.id, 0, 10).await.expect("activities");
    assert!(activities.iter().any(|a| a.cause.contains("gone")), "{activities:?}");
    h.service.reconcile_group(&group).await.expect("reconcile");
    assert_whole_and_healthy(&h, &group, 3).await;
}

/// R17: a failing health check counts only after N failures in a row; one that recovers
/// before starts from zero.
#[tokio::test]
async fn a_failing_check_is_judged_after_consecutive_failures() {
    let h = Harness::new(0).await;
    let group = h.group(3).await;
    let victim = h.instances(&group).await[2].id.clone();
    fault(&h, &victim, Fault::Unhealthy).await;
    for n in 1..UNHEALTHY_THRESHOLD {
        let report = pass(&h, &group).await;
        assert!(report.removed.is_empty() && report.unhealthy == 0, "after {n} failure(s)");
        let observed = instance(&h, &victim).await.and_then(|i| i.observed).expect("observed");
        assert_eq!(observed.failed_checks, n);
        assert_eq!(observed.problem.as_deref(), Some("its health check fails"));
    }
    // It recovers: the count starts again.
    fault(&h, &victim, Fault::Clear).await;
    pass(&h, &group).await;
    assert_eq!(instance(&h, &victim).await.and_then(|i| i.observed).expect("observed").failed_checks, 0);
    fault(&h, &victim, Fault::Unhealthy).await;
    for _ in 1..UNHEALTHY_THRESHOLD {
        assert!(pass(&h, &group).await.removed.is_empty());
    }
    assert_eq!(pass(&h, &group).await.removed, vec![victim.clone()]);
    h.service.reconcile_group(&group).await.expect("reconcile");
    assert_whole_and_healthy(&h, &group, 3).await;
}

/// R17: failures in the grace period after an instance was made are not counted; a stopped
/// instance is judged at once all the same.
#[tokio::test]
async fn the_grace_period_holds_failing_checks_but_not_a_crash() {
    let h = Harness::new(0).await;
    let group = h.group(2).await;
    let changes = GroupChanges { health_check_grace_period_s: Some(3600), ..GroupChanges::default() };
    h.service.modify_group(&group.id, changes).await.expect("modify");
    let instances = h.instances(&group).await;
    fault(&h, &instances[0].id, Fault::Unhealthy).await;
    for _ in 0..UNHEALTHY_THRESHOLD + 1 {
        let report = pass(&h, &group).await;
        assert!(report.removed.is_empty() && report.unhealthy == 0);
    }
    let observed = instance(&h, &instances[0].id).await.and_then(|i| i.observed).expect("observed");
    assert_eq!(observed.failed_checks, 0, "not counted in the grace period");
    fault(&h, &instances[1].id, Fault::Crash).await;
    assert_eq!(pass(&h, &group).await.removed, vec![instances[1].id.clone()]);
}

/// R17: with HealthCheck suspended, instances are observed and shown Unhealthy but nothing
/// is removed; once it is resumed, the next pass replaces them.
#[tokio::test]
async fn a_suspended_health_check_shows_but_removes_nothing() {
    let h = Harness::new(0).await;
    let group = h.group(3).await;
    h.service.set_processes(&group.id, &[Process::HealthCheck], true).await.expect("suspend");
    let victim = h.instances(&group).await[0].id.clone();
    fault(&h, &victim, Fault::Crash).await;
    let report = pass(&h, &group).await;
    assert!(report.removed.is_empty());
    assert_eq!(report.unhealthy, 1);
    let shown = instance(&h, &victim).await.expect("still in the group");
    assert_eq!(shown.health_status, HealthStatus::Unhealthy);
    assert_eq!(shown.lifecycle_state, LifecycleState::InService);
    assert!(shown.observed.is_some_and(|o| !o.running));
    h.service.set_processes(&group.id, &[Process::HealthCheck], false).await.expect("resume");
    assert_eq!(pass(&h, &group).await.removed, vec![victim]);
    h.service.reconcile_group(&group).await.expect("reconcile");
    assert_whole_and_healthy(&h, &group, 3).await;
}

/// R17: Standby and Protected instances are shown Unhealthy and kept.
#[tokio::test]
async fn standby_and_protected_instances_are_kept() {
    let h = Harness::new(0).await;
    let group = h.group(3).await;
    let instances = h.instances(&group).await;
    let (standby, protected) = (instances[0].id.clone(), instances[1].id.clone());
    h.service.enter_standby(&group.id, std::slice::from_ref(&standby)).await.expect("standby");
    h.service.set_protection(&group.id, std::slice::from_ref(&protected), true).await.expect("protect");
    fault(&h, &standby, Fault::Crash).await;
    fault(&h, &protected, Fault::Crash).await;
    let report = pass(&h, &group).await;
    assert!(report.removed.is_empty(), "{report:?}");
    assert_eq!(report.unhealthy, 2);
    for (id, state) in [(&standby, LifecycleState::Standby), (&protected, LifecycleState::Protected)] {
        let shown = instance(&h, id).await.expect("kept");
        assert_eq!(shown.lifecycle_state, state);
        assert_eq!(shown.health_status, HealthStatus::Unhealthy);
    }
}

/// R16: an instance that recovers is shown Healthy again, with an event.
#[tokio::test]
async fn a_recovered_instance_is_healthy_again() {
    let h = Harness::new(0).await;
    let group = h.group(2).await;
    h.service.set_processes(&group.id, &[Process::HealthCheck], true).await.expect("suspend");
    let victim = h.instances(&group).await[0].id.clone();
    fault(&h, &victim, Fault::Crash).await;
    pass(&h, &group).await;
    assert_eq!(instance(&h, &victim).await.expect("kept").health_status, HealthStatus::Unhealthy);
    fault(&h, &victim, Fault::Clear).await;
    pass(&h, &group).await;
    assert_eq!(instance(&h, &victim).await.expect("kept").health_status, HealthStatus::Healthy);
    let healthy = health_events(&h, &group, "InstanceHealthy").await;
    assert_eq!(healthy.len(), 1);
    assert!(healthy[0].execution_id.is_none());
    assert!(healthy[0].content.contains(victim.as_str()));
}

/// R16: an image changed behind rollscale's back is marked as drift, with one event; the
/// record keeps what rollscale made it, and the observation shows what runs.
#[tokio::test]
async fn drift_is_marked_and_never_overwrites_the_record() {
    let h = Harness::new(0).await;
    let group = h.group(2).await;
    let victim = h.instances(&group).await[0].id.clone();
    h.fleet.replace_image(&victim, NEW_IMAGE).await.expect("out-of-band change");
    pass(&h, &group).await;
    pass(&h, &group).await;
    let shown = instance(&h, &victim).await.expect("instance");
    assert_eq!(shown.image_id, OLD_IMAGE, "the record is what rollscale made it");
    let observed = shown.observed.expect("observed");
    assert_eq!(observed.image_id, NEW_IMAGE);
    assert_eq!(observed.drift.len(), 1);
    assert!(observed.drift[0].contains(OLD_IMAGE) && observed.drift[0].contains(NEW_IMAGE), "{:?}", observed.drift);
    assert_eq!(shown.health_status, HealthStatus::Healthy, "drift alone is not ill health");
    let drift = health_events(&h, &group, "InstanceDrift").await;
    assert_eq!(drift.len(), 1, "raised once, not at every pass");
}

/// `NONE`: nothing is judged; instances are still observed.
#[tokio::test]
async fn health_check_type_none_judges_nothing() {
    let h = Harness::new(0).await;
    let group = h.group(2).await;
    let changes = GroupChanges { health_check_types: Some(vec![HealthCheckType::NONE]), ..GroupChanges::default() };
    h.service.modify_group(&group.id, changes).await.expect("modify");
    let victim = h.instances(&group).await[0].id.clone();
    fault(&h, &victim, Fault::Crash).await;
    let report = pass(&h, &group).await;
    assert!(report.removed.is_empty() && report.unhealthy == 0);
    let shown = instance(&h, &victim).await.expect("kept");
    assert_eq!(shown.health_status, HealthStatus::Healthy);
    assert!(shown.observed.is_some_and(|o| !o.running && o.problem.as_deref() == Some("it is stopped")));
}

/// R17 with R10/R14: after a crash between the removal and the replacement, a new engine's
/// pass makes exactly one replacement, and a second pass none.
#[tokio::test]
async fn a_crash_after_the_removal_makes_one_replacement() {
    let h = Harness::new(0).await;
    let group = h.group(4).await;
    let victim = h.instances(&group).await[3].id.clone();
    fault(&h, &victim, Fault::Crash).await;
    assert_eq!(pass(&h, &group).await.removed, vec![victim]);
    h.engine.halt();
    let h = h.restarted(fast_config());
    h.service.reconcile_group(&group).await.expect("reconcile");
    h.service.reconcile_group(&group).await.expect("reconcile again");
    assert_eq!(h.fleet.len(), 4, "one replacement, not two");
    assert_whole_and_healthy(&h, &group, 4).await;
}

/// The desired capacity bounds replacements: a group at its desired size after a removal
/// scales out by exactly the instances removed, MinSize and MaxSize included.
#[tokio::test]
async fn replacements_keep_the_desired_capacity() {
    let h = Harness::new(0).await;
    let group = h.group(5).await;
    let instances = h.instances(&group).await;
    for victim in &instances[..3] {
        fault(&h, &victim.id, Fault::Crash).await;
    }
    assert_eq!(pass(&h, &group).await.removed.len(), 3);
    h.service.reconcile_group(&group).await.expect("reconcile");
    assert_whole_and_healthy(&h, &group, 5).await;
    let group = h.service.group(&group.id).await.expect("group");
    assert_eq!((group.min_size, group.max_size, group.desired_capacity), (0, 5, 5));
}

/// The background checker (`spawn_health_checker`) heals a group on its own.
#[tokio::test]
async fn the_background_checker_heals_the_group() {
    let h = Harness::new(0).await;
    let group = h.group(3).await;
    h.service.spawn_reconciler();
    h.service.spawn_health_checker();
    let victim = h.instances(&group).await[0].id.clone();
    fault(&h, &victim, Fault::Crash).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let instances = h.instances(&group).await;
        let healed = instances.len() == 3
            && !instances.iter().any(|i| i.id == victim)
            && instances.iter().all(|i| i.lifecycle_state == LifecycleState::InService);
        if healed {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not healed: {instances:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    h.engine.halt();
    assert_whole_and_healthy(&h, &group, 3).await;
}

/// R17: ExitStandby of an unhealthy instance (the seeds' manual step after a Skip) restores
/// its weight and says, in its activity, that it gets no traffic while its check fails; the
/// health checker then replaces it.
#[tokio::test]
async fn exit_standby_of_an_unhealthy_instance_says_so_and_it_is_replaced() {
    let h = Harness::new(0).await;
    let group = h.group(3).await;
    let victim = h.instances(&group).await[0].id.clone();
    h.service.enter_standby(&group.id, std::slice::from_ref(&victim)).await.expect("standby");
    fault(&h, &victim, Fault::Unhealthy).await;
    for _ in 0..UNHEALTHY_THRESHOLD {
        assert!(pass(&h, &group).await.removed.is_empty(), "Standby instances are kept");
    }
    assert_eq!(instance(&h, &victim).await.expect("kept").health_status, HealthStatus::Unhealthy);
    let activity = h.service.exit_standby(&group.id, std::slice::from_ref(&victim)).await.expect("exit standby");
    let (activities, _) = h.service.activities(&group.id, 0, 10).await.expect("activities");
    let exit = activities.iter().find(|a| a.id == activity.id).expect("the activity");
    assert_eq!(exit, &activity, "the answer is the activity recorded");
    assert!(exit.status_message.contains(victim.as_str()) && exit.status_message.contains("no traffic"), "{exit:?}");
    assert_eq!(h.weight(&victim).await, 100);
    assert_eq!(pass(&h, &group).await.removed, vec![victim]);
    h.service.reconcile_group(&group).await.expect("reconcile");
    assert_whole_and_healthy(&h, &group, 3).await;
}

/// `LOAD_BALANCER`: the load balancer's own check of the backend judges it (the simulated
/// load balancer checks the fleet's health, as HAProxy's `check` does the health path).
#[tokio::test]
async fn health_check_type_load_balancer_judges_by_the_balancers_check() {
    let h = Harness::new(0).await;
    let group = h.group(3).await;
    let types = Some(vec![HealthCheckType::LoadBalancer]);
    h.service
        .modify_group(&group.id, GroupChanges { health_check_types: types, ..GroupChanges::default() })
        .await
        .expect("modify");
    let victim = h.instances(&group).await[1].id.clone();
    fault(&h, &victim, Fault::Unhealthy).await;
    for _ in 1..UNHEALTHY_THRESHOLD {
        assert!(pass(&h, &group).await.removed.is_empty());
    }
    let observed = instance(&h, &victim).await.and_then(|i| i.observed).expect("observed");
    assert_eq!(observed.problem.as_deref(), Some("the load balancer's health check fails"));
    assert_eq!(pass(&h, &group).await.removed, vec![victim]);
    h.service.reconcile_group(&group).await.expect("reconcile");
    assert_whole_and_healthy(&h, &group, 3).await;
}

/// Removes and replaces an unhealthy instance with the store dying at its call `at` (as the
/// process would: that call and all after it never return), then a new engine over the same
/// store and fleet carries on. Returns false when the healing finished before call `at`.
async fn heal_with_a_crash_at(at: i64) -> bool {
    let h = Harness::new(0).await;
    let group = h.group(3).await;
    let victim = h.instances(&group).await[0].id.clone();
    fault(&h, &victim, Fault::Crash).await;

    let (store, point) = h.store.crashing_at(at);
    let first = rollscale_engine::Engine::new(
        store,
        std::sync::Arc::new(h.fleet.clone()),
        std::sync::Arc::new(h.lb.clone()),
        fast_config(),
    );
    let service = rollscale_engine::Service::new(first.clone());
    let crashed = {
        let heal = async {
            let current = service.group(&group.id).await.expect("group");
            service.health_pass(&current).await.expect("health pass");
            service.reconcile_group(&current).await.expect("reconcile");
        };
        let crash = async {
            while !point.hit() {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        };
        tokio::select! {
            _ = heal => false,
            _ = crash => true,
        }
    };
    first.halt();
    if !crashed {
        return false;
    }
    let what = format!("a crash at store call {at}");
    let h = h.restarted(fast_config());
    let group = h.service.group(&group.id).await.expect("group");
    h.service.reconcile_group(&group).await.expect("reconcile");
    h.service.health_pass(&group).await.expect("health pass");
    h.service.reconcile_group(&group).await.expect("reconcile");

    let instances = h.instances(&group).await;
    assert_eq!(instances.len(), 3, "{what}: {instances:?}");
    assert!(instances.iter().all(|i| i.id != victim), "{what}: the unhealthy instance is gone");
    assert_eq!(h.fleet.len(), 3, "{what}: one replacement, no stray instance on the backend");
    for instance in &instances {
        assert!(h.fleet.snapshot(&instance.id).is_some_and(|o| o.running), "{what}: {} runs", instance.id);
        assert_eq!(instance.lifecycle_state, LifecycleState::InService, "{what}");
        assert_eq!(instance.health_status, HealthStatus::Healthy, "{what}");
        assert_eq!(h.weight(&instance.id).await, 100, "{what}");
    }
    // The backend holds exactly the group's instances: a redo of a creation reported the
    // instance made before the crash instead of making another.
    let mut recorded: Vec<_> = instances.iter().map(|i| i.id.clone()).collect();
    let mut on_backend = h.fleet.instance_ids();
    recorded.sort();
    on_backend.sort();
    assert_eq!(recorded, on_backend, "{what}");
    let (activities, _) = h.service.activities(&group.id, 0, 20).await.expect("activities");
    assert!(activities.iter().all(|a| a.status != ActivityStatus::InProgress), "{what}: {activities:?}");
    true
}

/// R14 for the health checker: a crash at every store call of a removal and its replacement,
/// then a restart, leaves the group whole and healthy with exactly one replacement.
#[tokio::test]
async fn a_crash_at_every_store_call_of_a_replacement_then_resume() {
    let mut at = 0;
    while heal_with_a_crash_at(at).await {
        at += 1;
        assert!(at < 500, "the healing never finished");
    }
    assert!(at > 5, "only {at} crash points were reached");
    println!("crashed and resumed at each of {at} store calls of a replacement");
}
