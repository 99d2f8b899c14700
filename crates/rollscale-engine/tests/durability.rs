//! R14 harnesses in omicron's saga-test style:
//! - crash at every step: the engine is halted at each driver call in turn (before the call
//!   takes effect, and after it took effect but before its outcome was recorded); a new
//!   engine over the same store and the same fleet resumes and finishes the task with every
//!   instance changed exactly once and none left in Standby;
//! - every step twice: each step of an instance is performed twice before it is recorded,
//!   and the end state equals a single run's.

mod common;

use async_trait::async_trait;
use common::*;
use rollscale_core::domain::{ContainerSpec, HealthStatus, LifecycleState};
use rollscale_core::ids::{InstanceId, LoadBalancerId};
use rollscale_core::params::{ContainerUpdateType, ScriptSpec};
use rollscale_core::task::{InstanceWork, TaskStatus};
use rollscale_engine::{Engine, Service};
use rollscale_fleet::{
    Fleet, FleetError, InstanceObservation, InstanceSpec, LoadBalancer, PackageOperation, ScriptOutcome,
};
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
    async fn run_script(&self, id: &InstanceId, script: &ScriptSpec) -> Result<ScriptOutcome, FleetError> {
        self.crash.gate(self.inner.run_script(id, script)).await
    }
    async fn apply_package(&self, id: &InstanceId, operation: &PackageOperation) -> Result<ScriptOutcome, FleetError> {
        self.crash.gate(self.inner.apply_package(id, operation)).await
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

/// Runs one image update on 3 instances in 2 batches, crashing at driver call `at`, then
/// resumes on a fresh engine. Returns false when the task finished before call `at`.
async fn crash_and_resume(at: i64, mode: CrashMode) -> bool {
    let h = Harness::new(0).await;
    let group = h.group(3).await;
    let configuration = match &group.source {
        rollscale_core::domain::InstanceSource::Configuration(id) => id.to_string(),
        _ => unreachable!(),
    };
    let crash = Arc::new(CrashPoint { remaining: AtomicI64::new(at), mode, hit: tokio::sync::Notify::new() });
    let fleet = CrashingFleet { inner: h.fleet.clone(), crash: crash.clone() };
    let lb = CrashingLb { inner: h.lb.clone(), crash: crash.clone() };
    let first = Engine::new(h.store.clone(), Arc::new(fleet), Arc::new(lb), fast_config());
    let service = Service::new(first.clone());
    let task = service
        .start_execution(
            IMAGE_TEMPLATE,
            &json!({"invokeType": "invoke", "scalingGroupId": group.id, "scalingConfigurationId": configuration,
                    "imageId": NEW_IMAGE, "batchNumber": 2})
            .to_string(),
        )
        .await
        .expect("start");
    let crashed = tokio::select! {
        _ = crash.hit.notified() => true,
        _ = async {
            loop {
                let (task, _) = service.task(task.id.as_str()).await.expect("task");
                if task.status.is_final() { break; }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        } => false,
    };
    first.halt();
    if !crashed {
        return false;
    }
    // The restart: a new engine over the same store and the same (surviving) fleet.
    let second = Engine::new(h.store.clone(), Arc::new(h.fleet.clone()), Arc::new(h.lb.clone()), fast_config());
    assert_eq!(second.resume_all().await.expect("resume"), 1, "crash at {at} {mode:?}: the task must be resumed");
    let h2 = Harness { engine: second.clone(), service: Service::new(second), ..h };
    let (done, works) = h2.wait(task.id.as_str(), None).await;
    assert_eq!(done.status, TaskStatus::Success, "crash at {at} {mode:?}: {}", done.status_message);
    let calls = h2.fleet.calls();
    assert_eq!(
        calls.replace_image - calls.noop_replace_image,
        3,
        "crash at {at} {mode:?}: each instance's image must change exactly once"
    );
    for work in &works {
        assert!(!work.in_standby, "crash at {at} {mode:?}: {} left in Standby", work.instance_id);
    }
    for instance in h2.instances(&group).await {
        assert_eq!(instance.lifecycle_state, LifecycleState::InService, "crash at {at} {mode:?}");
        assert_eq!(instance.image_id, NEW_IMAGE);
        assert_eq!(h2.weight(&instance.id).await, 100, "crash at {at} {mode:?}: weight of {}", instance.id);
        let backends = h2.lb.backends(&h2.service.backends(&instance.id).await.unwrap()[0].load_balancer_id);
        let sim = backends.iter().find(|b| b.instance_id == instance.id).expect("registered");
        assert_eq!(sim.weight, 100, "crash at {at} {mode:?}: the load balancer's own weight");
    }
    let group = h2.service.group(group.id.as_str()).await.unwrap();
    assert!(group.suspended_processes.is_empty(), "crash at {at} {mode:?}: processes resumed");
    true
}

#[tokio::test]
async fn r14_crash_at_every_driver_call_then_resume() {
    for mode in [CrashMode::BeforeCall, CrashMode::AfterCall] {
        let mut at = 0;
        while crash_and_resume(at, mode).await {
            at += 1;
            assert!(at < 500, "the task never finished");
        }
        assert!(at > 10, "only {at} crash points were reached; the harness is not exercising steps");
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
        let after = h.service.instances(None, &[instance.id.to_string()], None).await.unwrap().remove(0);
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
