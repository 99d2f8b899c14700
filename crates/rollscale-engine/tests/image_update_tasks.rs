//! Image update tasks over the simulated fleet, with the scheduler's clock in the test's hands:
//! run now, a periodic schedule firing several times and ending at its expiry, cancel, a failing
//! firing that keeps the schedule, the refusals, and crashes in the middle of a firing.

use async_trait::async_trait;
use rollscale_core::domain::{ContainerSpec, EventLevel, GroupType, HealthStatus, ScalingGroup};
use rollscale_core::ids::{ExecutionId, IdFilter, InstanceId, ScalingConfigurationId};
use rollscale_core::image_task::{ImageUpdateExecution, TEMPLATE_NAME};
use rollscale_core::params::{ContainerUpdateType, ScriptSpec};
use rollscale_core::task::TaskStatus;
use rollscale_engine::service::{GroupChanges, NewConfiguration, NewGroup};
use rollscale_engine::{Engine, EngineConfig, ManualClock, Service};
use rollscale_fleet::{Fleet, FleetError, InstanceObservation, InstanceSpec, PackageOperation, RunId, ScriptOutcome};
use rollscale_test_support::engine::*;
use rollscale_test_support::wait;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200_000;
const HOUR: i64 = 3_600_000;

fn config(clock: &Arc<ManualClock>) -> EngineConfig {
    EngineConfig { clock: clock.clone(), image_task_interval: Duration::from_millis(10), ..fast_config() }
}

/// The harness with its engine's clock at T0; a group of two instances with a second
/// (inactive) configuration.
async fn setup() -> (Harness, Arc<ManualClock>, ScalingGroup, Vec<ScalingConfigurationId>) {
    let clock = Arc::new(ManualClock::new(T0));
    let h = Harness::builder().config(config(&clock)).build().await;
    let group = h.group(2).await;
    let second = h
        .service
        .create_configuration(
            &group.id,
            NewConfiguration { name: Some("second".into()), image_id: OLD_IMAGE.into(), ..NewConfiguration::default() },
        )
        .await
        .expect("configuration");
    let configurations = h.service.configurations(Some(&group.id), None).await.expect("configurations");
    let mut ids: Vec<ScalingConfigurationId> = configurations.into_iter().map(|c| c.id).collect();
    ids.retain(|id| *id != second.id);
    ids.push(second.id);
    (h, clock, group, ids)
}

async fn wait_for(
    service: &Service,
    id: &ExecutionId,
    what: &str,
    done: impl Fn(&ImageUpdateExecution, &[ImageUpdateExecution]) -> bool,
) -> (ImageUpdateExecution, Vec<ImageUpdateExecution>) {
    wait::until_ok(what, Duration::from_secs(20), Duration::from_millis(5), async || {
        let (execution, children) = service.image_update(id).await.expect("image update");
        if done(&execution, &children) {
            Ok((execution, children))
        } else {
            Err(format!("{execution:?} {children:?}"))
        }
    })
    .await
}

async fn configuration_images(h: &Harness, ids: &[ScalingConfigurationId]) -> Vec<String> {
    let all = h.service.configurations(None, None).await.expect("configurations");
    ids.iter().map(|id| all.iter().find(|c| c.id == *id).expect("configuration").image_id.clone()).collect()
}

fn params(source: &InstanceId, configurations: &[ScalingConfigurationId], extra: serde_json::Value) -> String {
    let mut value = json!({"instanceId": source, "scalingConfigurationIds": configurations});
    for (key, item) in extra.as_object().expect("object") {
        value[key] = item.clone();
    }
    value.to_string()
}

#[tokio::test]
async fn run_now_makes_one_image_puts_it_into_every_configuration_and_new_instances_use_it() {
    let (h, _clock, group, configurations) = setup().await;
    let source = h.instances(&group).await[0].id.clone();
    let task = h
        .service
        .start_image_task(&params(&source, &configurations, json!({"tags": [{"Key": "app", "Value": "web"}]})))
        .await
        .expect("start");
    assert!(task.schedule.is_none() && task.firing.is_some(), "a task that runs now is one execution");
    let (done, children) = wait_for(&h.service, &task.id, "run now", |e, _| e.status.is_final()).await;
    assert_eq!(done.status, TaskStatus::Success, "{}", done.status_message);
    assert!(children.is_empty());
    let image_id = done.outputs()["imageId"].as_str().expect("imageId").to_string();
    assert_eq!(h.fleet.calls().create_image, 1);
    assert_eq!(configuration_images(&h, &configurations).await, vec![image_id.clone(), image_id.clone()]);
    let image = h.service.images().await.unwrap().into_iter().find(|i| i.id == image_id).expect("in the catalog");
    assert_eq!(image.name, format!("UpdateImage_from_{source}_on_{}_at_20261201T000000Z", task.id));
    assert_eq!(done.spec.tags[0].key, "app", "the tags are kept on the execution");
    // Existing instances keep their image; a new one is made from the new one.
    assert!(h.instances(&group).await.iter().all(|i| i.image_id == OLD_IMAGE));
    h.service
        .modify_group(&group.id, GroupChanges { desired_capacity: Some(3), max_size: Some(3), ..Default::default() })
        .await
        .expect("scale out");
    h.service.reconcile_group(&h.service.group(&group.id).await.unwrap()).await.expect("reconcile");
    let images: Vec<String> = h.instances(&group).await.into_iter().map(|i| i.image_id).collect();
    assert_eq!(images.iter().filter(|i| **i == image_id).count(), 1, "{images:?}");
    let events = h.service.events(&IdFilter::Only(task.id.clone()), &IdFilter::Any, 10).await.unwrap();
    let mut kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["ConfigurationsUpdated", "ImageCreated", "Started"]);
    assert!(events.iter().all(|e| e.name == TEMPLATE_NAME && e.group_id == group.id && e.level == EventLevel::Info));
    // Listed with the other executions, by template.
    let filter = rollscale_store::ExecutionFilter { template_name: Some(TEMPLATE_NAME.into()), ..Default::default() };
    let (listed, total) = h.service.list_executions(&filter, 0, 10).await.unwrap();
    assert_eq!((listed.len(), total), (1, 1));
}

#[tokio::test]
async fn a_periodic_task_fires_at_each_slot_and_ends_success_at_its_expiry() {
    let (h, clock, group, configurations) = setup().await;
    let source = h.instances(&group).await[0].id.clone();
    let trigger = json!({"Type": "rate", "Expression": "1 hour", "EndDate": "2026-12-01T03:30:00Z"});
    let task = h
        .service
        .start_image_task(&params(
            &source,
            &configurations,
            json!({"timerTrigger": trigger, "OOSAssumeRole": "OOSServiceRole"}),
        ))
        .await
        .expect("start");
    assert_eq!(task.status, TaskStatus::Waiting);
    h.service.spawn_image_scheduler();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(h.service.image_update(&task.id).await.unwrap().1.is_empty(), "nothing before the first slot");
    let mut images = Vec::new();
    for firing in 1..=3usize {
        clock.advance(HOUR);
        let (parent, children) = wait_for(&h.service, &task.id, "a firing", |p, c| {
            c.len() == firing && c[firing - 1].status.is_final() && p.status == TaskStatus::Waiting
        })
        .await;
        let child = &children[firing - 1];
        assert_eq!(child.status, TaskStatus::Success, "{}", child.status_message);
        assert_eq!(child.parent_id.as_ref(), Some(&task.id));
        let image = child.outputs()["imageId"].as_str().unwrap().to_string();
        assert_eq!(configuration_images(&h, &configurations).await, vec![image.clone(), image.clone()]);
        assert!(child
            .firing
            .as_ref()
            .unwrap()
            .image_name
            .ends_with(&format!("_on_{}_at_20261201T0{firing}0000Z", child.id)));
        assert_eq!(parent.outputs()["imageId"], image.as_str());
        images.push(image);
    }
    images.dedup();
    assert_eq!(images.len(), 3, "one image a firing");
    assert_eq!(h.fleet.calls().create_image, 3);
    // 04:00 is after the expiry: no fourth firing; the parent ends at 03:30.
    clock.advance(HOUR);
    let (parent, children) = wait_for(&h.service, &task.id, "the expiry", |p, _| p.status.is_final()).await;
    assert_eq!(parent.status, TaskStatus::Success);
    assert_eq!(children.len(), 3);
    let filter = rollscale_store::ExecutionFilter { parent_id: IdFilter::Only(task.id.clone()), ..Default::default() };
    assert_eq!(h.service.list_executions(&filter, 0, 10).await.unwrap().1, 3);
}

#[tokio::test]
async fn cancel_stops_the_firings_and_a_failed_firing_keeps_the_schedule() {
    let (h, clock, group, configurations) = setup().await;
    let instances = h.instances(&group).await;
    let trigger = json!({"Type": "cron", "Expression": "0 0 * * * ?", "EndDate": "2026-12-02T00:00:00Z"});
    let task = h
        .service
        .start_image_task(&params(
            &instances[0].id,
            &configurations,
            json!({"timerTrigger": trigger, "OOSAssumeRole": "r"}),
        ))
        .await
        .expect("start");
    h.service.spawn_image_scheduler();
    // The source instance goes away: the 01:00 firing fails; the task waits for 02:00.
    h.store.instance_delete(&instances[0].id).await.unwrap();
    clock.advance(HOUR);
    let (parent, children) = wait_for(&h.service, &task.id, "the failed firing", |p, c| {
        c.len() == 1 && c[0].status.is_final() && p.status == TaskStatus::Waiting
    })
    .await;
    assert_eq!(children[0].status, TaskStatus::Failed);
    assert!(children[0].status_message.contains("no longer exists"), "{}", children[0].status_message);
    assert_eq!(parent.schedule.as_ref().unwrap().next_fire_at, Some(T0 + 2 * HOUR));
    assert_eq!(h.fleet.calls().create_image, 0);
    let events = h.service.events(&IdFilter::Only(children[0].id.clone()), &IdFilter::Any, 10).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "Failed" && e.level == EventLevel::Critical), "{events:?}");
    assert_eq!(configuration_images(&h, &configurations).await, vec![OLD_IMAGE.to_string(), OLD_IMAGE.to_string()]);

    let cancelled = h.service.cancel_image_update(&task.id).await.expect("cancel");
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    let again = h.service.cancel_image_update(&task.id).await.unwrap_err();
    assert_eq!(again.code(), "IncorrectExecutionStatus");
    clock.advance(3 * HOUR);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (parent, children) = h.service.image_update(&task.id).await.unwrap();
    assert_eq!((parent.status, children.len()), (TaskStatus::Cancelled, 1), "no firing after the cancel");
}

#[tokio::test]
async fn bad_input_is_refused_with_a_code_and_changes_nothing() {
    let (h, _clock, group, configurations) = setup().await;
    let source = h.instances(&group).await[0].id.clone();
    let eci = h
        .service
        .create_group(NewGroup {
            name: "eci".into(),
            group_type: Some(GroupType::ECI),
            max_size: 1,
            ..NewGroup::default()
        })
        .await
        .unwrap();
    let container = ContainerSpec { name: "web".into(), image: "web:v1".into(), ..ContainerSpec::default() };
    let eci_configuration = h
        .service
        .create_configuration(
            &eci.id,
            NewConfiguration { image_id: OLD_IMAGE.into(), containers: vec![container], ..NewConfiguration::default() },
        )
        .await
        .unwrap();
    let past = json!({"Type": "rate", "Expression": "1 day", "EndDate": "2026-11-30T00:00:00Z"});
    let daily = json!({"Type": "rate", "Expression": "1 day", "EndDate": "2027-01-01T00:00:00Z"});
    let cases = [
        (params(&InstanceId::parse("i-missing").unwrap(), &configurations, json!({})), "InvalidInstanceId.NotFound"),
        (
            params(&source, &[ScalingConfigurationId::parse("asc-missing").unwrap()], json!({})),
            "InvalidScalingConfigurationId.NotFound",
        ),
        (
            params(&source, &[configurations[0].clone(), eci_configuration.id.clone()], json!({})),
            "IncorrectScalingGroupType",
        ),
        (
            params(&source, &configurations, json!({"timerTrigger": {"Type": "hourly"}, "OOSAssumeRole": "r"})),
            "InvalidParameter",
        ),
        (params(&source, &configurations, json!({"timerTrigger": past, "OOSAssumeRole": "r"})), "InvalidParameter"),
        (params(&source, &configurations, json!({"timerTrigger": daily})), "InvalidParameter"),
        (params(&source, &configurations, json!({"imageId": "m-1"})), "InvalidParameter"),
        (params(&source, &configurations, json!({"targetImageName": "9lives"})), "InvalidParameter"),
        ("{not json".to_string(), "InvalidParameter"),
    ];
    for (parameters, code) in cases {
        let error = h.service.start_image_task(&parameters).await.expect_err(&parameters);
        assert_eq!(error.code(), code, "{parameters}: {error}");
    }
    assert!(h.service.image_updates(&IdFilter::Any).await.unwrap().is_empty());
    assert_eq!(h.fleet.calls().create_image, 0);
    assert_eq!(configuration_images(&h, &configurations).await, vec![OLD_IMAGE.to_string(), OLD_IMAGE.to_string()]);
}

/// A fleet whose `create_image` makes the image and then never returns, once: the process
/// dies between making the image and recording it.
struct DiesAfterCreateImage<F> {
    inner: F,
    armed: AtomicBool,
}

#[async_trait]
impl<F: Fleet> Fleet for DiesAfterCreateImage<F> {
    fn name(&self) -> &'static str {
        "dies-after-create-image"
    }
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<InstanceObservation, FleetError> {
        self.inner.create_instance(spec).await
    }
    async fn remove_instance(&self, id: &InstanceId) -> Result<(), FleetError> {
        self.inner.remove_instance(id).await
    }
    async fn observe(&self, id: &InstanceId) -> Result<Option<InstanceObservation>, FleetError> {
        self.inner.observe(id).await
    }
    async fn replace_image(&self, id: &InstanceId, image_id: &str) -> Result<String, FleetError> {
        self.inner.replace_image(id, image_id).await
    }
    async fn run_script(&self, id: &InstanceId, script: &ScriptSpec, run: &RunId) -> Result<ScriptOutcome, FleetError> {
        self.inner.run_script(id, script, run).await
    }
    async fn apply_package(
        &self,
        id: &InstanceId,
        op: &PackageOperation,
        run: &RunId,
    ) -> Result<ScriptOutcome, FleetError> {
        self.inner.apply_package(id, op, run).await
    }
    async fn update_containers(
        &self,
        id: &InstanceId,
        update_type: ContainerUpdateType,
        containers: &[ContainerSpec],
    ) -> Result<String, FleetError> {
        self.inner.update_containers(id, update_type, containers).await
    }
    async fn create_image(&self, id: &InstanceId, image_name: &str) -> Result<String, FleetError> {
        let made = self.inner.create_image(id, image_name).await;
        if self.armed.swap(false, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        made
    }
    async fn find_image_named(&self, image_name: &str) -> Result<Option<String>, FleetError> {
        self.inner.find_image_named(image_name).await
    }
    async fn health(&self, id: &InstanceId) -> Result<HealthStatus, FleetError> {
        self.inner.health(id).await
    }
}

#[tokio::test]
async fn a_crash_between_making_the_image_and_updating_the_configurations_makes_one_image_and_updates_all() {
    let (h, clock, group, configurations) = setup().await;
    let source = h.instances(&group).await[0].id.clone();
    let dying = DiesAfterCreateImage { inner: h.fleet.clone(), armed: AtomicBool::new(true) };
    let first = Engine::new(h.store.clone(), Arc::new(dying), Arc::new(h.lb.clone()), config(&clock));
    let task =
        Service::new(first.clone()).start_image_task(&params(&source, &configurations, json!({}))).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.fleet.calls().create_image == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the image is never made");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    first.halt();
    let (stuck, _) = h.service.image_update(&task.id).await.unwrap();
    assert_eq!(stuck.status, TaskStatus::Running);
    assert!(stuck.firing.as_ref().unwrap().image_id.is_none(), "the image was made but not recorded");

    // The restart: the scheduler's first tick resumes the firing.
    h.service.spawn_image_scheduler();
    let (done, _) = wait_for(&h.service, &task.id, "resumed", |e, _| e.status.is_final()).await;
    assert_eq!(done.status, TaskStatus::Success, "{}", done.status_message);
    assert_eq!(h.fleet.calls().create_image, 1, "the image made before the crash is found by its name");
    let image = done.outputs()["imageId"].as_str().unwrap().to_string();
    assert_eq!(configuration_images(&h, &configurations).await, vec![image.clone(), image]);
}

/// The store dies at its n-th call, for every n through a periodic task's firing: a new
/// engine resumes, and the firing makes exactly one image and updates every configuration.
#[tokio::test]
async fn a_crash_at_every_store_call_of_a_firing_resumes_without_a_second_image() {
    let mut crash_at = 0;
    loop {
        let (h, clock, group, configurations) = setup().await;
        let source = h.instances(&group).await[0].id.clone();
        let trigger = json!({"Type": "at", "Expression": "2026-12-01T01:00:00Z"});
        let task = h
            .service
            .start_image_task(&params(&source, &configurations, json!({"timerTrigger": trigger, "OOSAssumeRole": "r"})))
            .await
            .unwrap();
        clock.advance(HOUR);
        let (store, point) = h.store.crashing_at(crash_at);
        let first = Engine::new(store, Arc::new(h.fleet.clone()), Arc::new(h.lb.clone()), config(&clock));
        let first_service = Service::new(first.clone());
        first_service.spawn_image_scheduler();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let finished = loop {
            if point.hit() {
                break false;
            }
            let (parent, _) = h.service.image_update(&task.id).await.unwrap();
            if parent.status.is_final() {
                break true;
            }
            assert!(tokio::time::Instant::now() < deadline, "crash at {crash_at}: stuck");
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        first.halt();
        if !finished {
            h.service.spawn_image_scheduler();
        }
        let (parent, children) =
            wait_for(&h.service, &task.id, &format!("crash at {crash_at}"), |p, _| p.status.is_final()).await;
        assert_eq!(parent.status, TaskStatus::Success, "crash at {crash_at}");
        assert_eq!(children.len(), 1, "crash at {crash_at}: one firing");
        assert_eq!(children[0].status, TaskStatus::Success, "crash at {crash_at}: {}", children[0].status_message);
        assert_eq!(h.fleet.calls().create_image, 1, "crash at {crash_at}: one image");
        let image = children[0].outputs()["imageId"].as_str().unwrap().to_string();
        assert_eq!(configuration_images(&h, &configurations).await, vec![image.clone(), image], "crash at {crash_at}");
        if finished {
            assert!(crash_at > 5, "the crash points were reached");
            break;
        }
        crash_at += 1;
    }
}

/// While the scheduler was not running (the service down), slots went by: a task fires once
/// when it comes back, then at the next slot after now; one whose expiry went by too ends
/// Success without firing.
#[tokio::test]
async fn missed_firings_fire_once_at_restart_and_not_after_the_expiry() {
    let (h, clock, group, configurations) = setup().await;
    let source = h.instances(&group).await[0].id.clone();
    let start = |end: &str| {
        let trigger = json!({"Type": "rate", "Expression": "1 hour", "EndDate": end});
        params(&source, &configurations, json!({"timerTrigger": trigger, "OOSAssumeRole": "r"}))
    };
    let long = h.service.start_image_task(&start("2026-12-01T10:00:00Z")).await.unwrap();
    let short = h.service.start_image_task(&start("2026-12-01T02:30:00Z")).await.unwrap();
    // Down from 00:00 to 05:30: five slots of the long task, two of the short one, went by.
    clock.set(T0 + 5 * HOUR + HOUR / 2);
    h.service.spawn_image_scheduler();
    let (parent, children) = wait_for(&h.service, &long.id, "one firing for the missed slots", |p, c| {
        c.len() == 1 && c[0].status.is_final() && p.status == TaskStatus::Waiting
    })
    .await;
    assert_eq!(children[0].status, TaskStatus::Success, "{}", children[0].status_message);
    assert_eq!(parent.schedule.as_ref().unwrap().next_fire_at, Some(T0 + 6 * HOUR), "the next slot after now");
    let (parent, children) = wait_for(&h.service, &short.id, "the expired task ends", |p, _| p.status.is_final()).await;
    assert_eq!((parent.status, children.len()), (TaskStatus::Success, 0), "no firing after the expiry");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.service.image_update(&long.id).await.unwrap().1.len(), 1, "once, not once per slot");
    assert_eq!(h.fleet.calls().create_image, 1);
}
