//! R14 harnesses in omicron's saga-test style:
//! - crash at every step: the engine is halted at each driver call in turn (before the call
//!   takes effect, and after it took effect but before its outcome was recorded); a new
//!   engine over the same store and the same fleet resumes and finishes the task with every
//!   instance changed exactly once and none left in Standby;
//! - every step twice: each step of an instance is performed twice before it is recorded,
//!   and the end state equals a single run's.

use async_trait::async_trait;
use rollscale_core::domain::{ContainerSpec, HealthStatus, LifecycleState};
use rollscale_core::ids::{IdFilter, InstanceId, LoadBalancerId};
use rollscale_core::params::{ContainerUpdateType, ScriptSpec};
use rollscale_core::task::{InstanceWork, TaskStatus};
use rollscale_engine::{Engine, Service};
use rollscale_fleet::{
    Fleet, FleetError, InstanceObservation, InstanceSpec, LoadBalancer, PackageOperation, RunId, ScriptOutcome,
};
use rollscale_test_support::engine::*;
use serde_json::json;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where the crash happens relative to the chosen driver call.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CrashMode {
    BeforeCall,
    AfterCall,
}

/// Counts driver calls; at call number `at` it never returns, like a process that died there.
struct CrashPoint {
    remaining: AtomicI64,
    mode: CrashMode,
    hit: tokio::sync::Notify,
}

impl CrashPoint {
    async fn gate<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        if self.remaining.fetch_sub(1, Ordering::SeqCst) != 0 {
            return call.await;
        }
        if self.mode == CrashMode::AfterCall {
            let _ = call.await;
        }
        self.hit.notify_one();
        std::future::pending().await
    }
}

struct CrashingFleet<F> {
    inner: F,
    crash: Arc<CrashPoint>,
}

#[async_trait]
impl<F: Fleet> Fleet for CrashingFleet<F> {
    fn name(&self) -> &'static str {
        "crashing"
    }
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<InstanceObservation, FleetError> {
        self.inner.create_instance(spec).await
    }
    async fn remove_instance(&self, id: &InstanceId) -> Result<(), FleetError> {
        self.crash.gate(self.inner.remove_instance(id)).await
    }
    async fn observe(&self, id: &InstanceId) -> Result<Option<InstanceObservation>, FleetError> {
        self.crash.gate(self.inner.observe(id)).await
    }
    async fn replace_image(&self, id: &InstanceId, image_id: &str) -> Result<String, FleetError> {
        self.crash.gate(self.inner.replace_image(id, image_id)).await
    }
    async fn run_script(&self, id: &InstanceId, script: &ScriptSpec, run: &RunId) -> Result<ScriptOutcome, FleetError> {
        self.crash.gate(self.inner.run_script(id, script, run)).await
    }
    async fn apply_package(
        &self,
        id: &InstanceId,
        operation: &PackageOperation,
        run: &RunId,
    ) -> Result<ScriptOutcome, FleetError> {
        self.crash.gate(self.inner.apply_package(id, operation, run)).await
    }
    async fn update_containers(
        &self,
        id: &InstanceId,
        update_type: ContainerUpdateType,
        containers: &[ContainerSpec],
    ) -> Result<String, FleetError> {
        self.crash.gate(self.inner.update_containers(id, update_type, containers)).await
    }
    async fn create_image(&self, id: &InstanceId, image_name: &str) -> Result<String, FleetError> {
        self.crash.gate(self.inner.create_image(id, image_name)).await
    }
    async fn health(&self, id: &InstanceId) -> Result<HealthStatus, FleetError> {
        self.crash.gate(self.inner.health(id)).await
    }
}

struct CrashingLb<L> {
    inner: L,
    crash: Arc<CrashPoint>,
}

#[async_trait]
impl<L: LoadBalancer> LoadBalancer for CrashingLb<L> {
    fn name(&self) -> &'static str {
        "crashing"
    }
    async fn register(
        &self,
        lb: &LoadBalancerId,
        instance: &InstanceId,
        address: &str,
        weight: u32,
    ) -> Result<(), FleetError> {
        self.inner.register(lb, instance, address, weight).await
    }
    async fn deregister(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<(), FleetError> {
        self.crash.gate(self.inner.deregister(lb, instance)).await
    }
    async fn set_weight(&self, lb: &LoadBalancerId, instance: &InstanceId, weight: u32) -> Result<(), FleetError> {
        self.crash.gate(self.inner.set_weight(lb, instance, weight)).await
    }
    async fn weight(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<Option<u32>, FleetError> {
        self.crash.gate(self.inner.weight(lb, instance)).await
    }
    async fn active_connections(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<u32, FleetError> {
        self.crash.gate(self.inner.active_connections(lb, instance)).await
    }
}

/// What the crash harness rolls out.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Change {
    /// An image update that also sets the configuration's image; one target is Protected.
    Image,
    Script,
    Package,
}

/// Where the first engine dies.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Crash {
    /// At the `at`-th driver call (fleet or load balancer), before or after it took effect.
    Driver(CrashMode),
    /// At the `at`-th call of the store: everything committed before it stays.
    Store,
}

/// Runs one rolling update of `change` on 3 instances in 2 batches, crashing at point `at`
/// of `crash`, then resumes on a fresh engine over the same store and the same (surviving)
/// fleet. Returns false when the task finished before the crash point was reached.
async fn crash_and_resume(change: Change, crash: Crash, at: i64) -> bool {
    let h = Harness::new(0).await;
    let group = h.group(3).await;
    let instances = h.instances(&group).await;
    let protected = instances[1].id.clone();
    let configuration = match &group.source {
        rollscale_core::domain::InstanceSource::Configuration(id) => id.to_string(),
        _ => unreachable!(),
    };
    let (template, params) = match change {
        Change::Image => {
            h.service.set_protection(&group.id, std::slice::from_ref(&protected), true).await.expect("protect");
            let params = json!({"invokeType": "invoke", "scalingGroupId": group.id,
                "scalingConfigurationId": configuration, "imageId": NEW_IMAGE, "batchNumber": 2,
                "lifecycleState": ["InService", "Protected"]});
            (IMAGE_TEMPLATE, params)
        }
        Change::Script => (
            SCRIPT_TEMPLATE,
            json!({"invokeType": "invoke", "scalingGroupId": group.id, "invokeScript": "echo once", "batchNumber": 2}),
        ),
        Change::Package => (
            PACKAGE_TEMPLATE,
            json!({"invokeType": "invoke", "scalingGroupId": group.id, "packageName": "wordpress",
                   "packageVersion": "v4", "batchNumber": 2}),
        ),
    };
    let what = format!("{change:?}, crash at {crash:?} {at}");

    // The first engine, which dies at the crash point.
    let driver_point = Arc::new(CrashPoint {
        remaining: AtomicI64::new(if let Crash::Driver(_) = crash { at } else { i64::MAX }),
        mode: match crash {
            Crash::Driver(mode) => mode,
            Crash::Store => CrashMode::BeforeCall,
        },
        hit: tokio::sync::Notify::new(),
    });
    let (store, store_point) = h.store.crashing_at(if crash == Crash::Store { at } else { i64::MAX });
    let fleet = CrashingFleet { inner: h.fleet.clone(), crash: driver_point.clone() };
    let lb = CrashingLb { inner: h.lb.clone(), crash: driver_point.clone() };
    let first = Engine::new(store, Arc::new(fleet), Arc::new(lb), fast_config());
    let service = Service::new(first.clone());
    let crashed = {
        let run = async {
            let task = service.start_template(template, &params.to_string()).await.expect("start");
            loop {
                let (task, _) = service.task(&task.id).await.expect("task");
                if task.status.is_final() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        let store_crash = async {
            while !store_point.hit() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::select! {
            _ = driver_point.hit.notified() => true,
            _ = store_crash => true,
            _ = run => false,
        }
    };
    first.halt();
    if !crashed {
        return false;
    }

    // The restart: a new engine over the same store and the same fleet.
    let h2 = h.restarted(fast_config());
    let resumed = h2.engine.resume_all().await.expect("resume");
    let filter = rollscale_store::ExecutionFilter::default();
    let (tasks, _) = h2.store.execution_list(&filter, 0, 10).await.expect("list");
    let Some(rollscale_store::Execution::Task(task)) = tasks.into_iter().next() else {
        // The crash came before the task was committed: nothing may have changed.
        assert_eq!(resumed, 0, "{what}");
        for instance in h2.instances(&group).await {
            assert_eq!(instance.image_id, OLD_IMAGE, "{what}");
            assert!(instance.packages.is_empty(), "{what}");
        }
        assert_eq!(h2.fleet.calls().replace_image + h2.fleet.calls().run_script, 0, "{what}");
        return true;
    };
    let task = task.value;
    assert_eq!(resumed, usize::from(!task.status.is_final()), "{what}: an unfinished task is resumed");
    let (done, works) = h2.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Success, "{what}: {}", done.status_message);
    let calls = h2.fleet.calls();
    match change {
        Change::Image => {
            assert_eq!(
                calls.replace_image - calls.noop_replace_image,
                3,
                "{what}: each instance's image must change exactly once"
            );
            let configurations = h2.service.configurations(Some(&group.id), None).await.unwrap();
            assert_eq!(configurations[0].image_id, NEW_IMAGE, "{what}: R4");
        }
        Change::Script => {
            // A run whose outcome was lost in the crash is reported again, not run again.
            assert_eq!(calls.run_script - calls.replayed_runs, 3, "{what}: each instance's script runs once");
            assert!(works.iter().all(|work| work.output == "once\n"), "{what}: the output is recorded");
        }
        Change::Package => {
            assert_eq!(calls.apply_package - calls.replayed_runs, 3, "{what}: each instance's install runs once");
        }
    }
    for work in &works {
        assert!(!work.in_standby, "{what}: {} left in Standby", work.instance_id);
        assert!(work.applied, "{what}");
    }
    for instance in h2.instances(&group).await {
        let state = if instance.id == protected && change == Change::Image {
            LifecycleState::Protected
        } else {
            LifecycleState::InService
        };
        assert_eq!(instance.lifecycle_state, state, "{what}: {}", instance.id);
        assert!(instance.tags.contains(&task.id.to_string()), "{what}: R11 tag");
        match change {
            Change::Image => assert_eq!(instance.image_id, NEW_IMAGE, "{what}"),
            Change::Package => {
                assert_eq!(instance.packages, vec![("wordpress".to_string(), "v4".to_string())], "{what}");
                let observed = h2.fleet.snapshot(&instance.id).expect("in the fleet");
                assert_eq!(observed.packages, instance.packages, "{what}: the fleet agrees");
            }
            Change::Script => {}
        }
        assert_eq!(h2.weight(&instance.id).await, 100, "{what}: weight of {}", instance.id);
        let backends = h2.lb.backends(&h2.service.backends(&instance.id).await.unwrap()[0].load_balancer_id);
        let sim = backends.iter().find(|b| b.instance_id == instance.id).expect("registered");
        assert_eq!(sim.weight, 100, "{what}: the load balancer's own weight");
    }
    let group = h2.service.group(&group.id).await.unwrap();
    assert!(group.suspended_processes.is_empty(), "{what}: processes resumed");
    // Events are recorded once each, whatever was redone.
    let events = h2.service.events(&IdFilter::Only(task.id.clone()), &IdFilter::Any, 100).await.unwrap();
    for kind in ["Started", "Succeeded"] {
        assert_eq!(events.iter().filter(|event| event.kind == kind).count(), 1, "{what}: one {kind} event");
    }
    assert_eq!(events.iter().filter(|event| event.kind == "BatchDone").count(), 1, "{what}: one BatchDone");
    true
}

/// Every crash point of `crash` in turn, until the task finishes before the point.
async fn every_crash_point(change: Change, crash: Crash) -> i64 {
    let mut at = 0;
    while crash_and_resume(change, crash, at).await {
        at += 1;
        assert!(at < 2_000, "{change:?}, {crash:?}: the task never finished");
    }
    assert!(at > 10, "{change:?}, {crash:?}: only {at} crash points were reached");
    println!("{change:?}, {crash:?}: crashed and resumed at each of {at} points");
    at
}

#[tokio::test]
async fn r14_crash_at_every_driver_call_then_resume() {
    for change in [Change::Image, Change::Script, Change::Package] {
        for mode in [CrashMode::BeforeCall, CrashMode::AfterCall] {
            every_crash_point(change, Crash::Driver(mode)).await;
        }
    }
}

/// A crash at each call of the store, before it: every commit of the task and its instances
/// (the task's start, each step's journal, the phase changes, the R11 tags, the resumed
/// processes, the events) is a point the process may die after.
#[tokio::test]
async fn r14_crash_at_every_store_call_then_resume() {
    for change in [Change::Image, Change::Script, Change::Package] {
        every_crash_point(change, Crash::Store).await;
    }
}

/// Drives one instance through every step, performing each step twice before recording it.
async fn run_doubled(
    h: &Harness,
    spec: &rollscale_core::params::RollingUpdateSpec,
    instance: &InstanceId,
) -> InstanceWork {
    let mut work =
        InstanceWork::new(rollscale_core::ids::ExecutionId::from_random(7), instance.clone(), 0, 0, false).start(0);
    while let Some(step) = work.next_step() {
        let first = h.engine.perform_step(spec, &work, step).await.expect("step");
        let second = h.engine.perform_step(spec, &work, step).await.expect("step again");
        assert_eq!(
            matches!(first, rollscale_core::task::StepOutcome::Done(_)),
            matches!(second, rollscale_core::task::StepOutcome::Done(_)),
            "{step}: a repeated step must have the same outcome"
        );
        work = work.record(step, first, spec.kind.health_gated(), 0);
    }
    work
}

#[tokio::test]
async fn r14_every_step_twice_has_the_effect_of_once() {
    let h = Harness::new(0).await;
    let group = h.group(3).await;
    let instances = h.instances(&group).await;
    let specs = [
        json!({"invokeType": "invoke", "scalingGroupId": group.id, "imageId": NEW_IMAGE}),
        json!({"invokeType": "invoke", "scalingGroupId": group.id, "invokeScript": "echo once"}),
        json!({"invokeType": "invoke", "scalingGroupId": group.id, "packageName": "wordpress", "packageVersion": "v4"}),
    ];
    let templates = [IMAGE_TEMPLATE, SCRIPT_TEMPLATE, PACKAGE_TEMPLATE];
    for (template, (params, instance)) in templates.iter().zip(specs.iter().zip(instances.iter())) {
        let request = rollscale_core::params::parse_start(template, params).unwrap();
        let spec = rollscale_core::params::resolve(request, None).unwrap();
        let work = run_doubled(&h, &spec, &instance.id).await;
        assert_eq!(work.status, rollscale_core::task::InstanceStatus::Success, "{template}: {:?}", work.error_message);
        let after = h.service.instances(None, Some(std::slice::from_ref(&instance.id)), None).await.unwrap().remove(0);
        assert_eq!(after.lifecycle_state, LifecycleState::InService, "{template}");
        assert_eq!(h.weight(&instance.id).await, 100, "{template}: a doubled EnterStandby must not remember weight 0");
        match *template {
            IMAGE_TEMPLATE => assert_eq!(after.image_id, NEW_IMAGE),
            PACKAGE_TEMPLATE => assert_eq!(after.packages, vec![("wordpress".to_string(), "v4".to_string())]),
            _ => assert_eq!(work.output, "once\n"),
        }
    }
    let calls = h.fleet.calls();
    assert_eq!(calls.replace_image - calls.noop_replace_image, 1, "the image changed once");
}
