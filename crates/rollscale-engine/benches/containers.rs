//! Benchmark: a rolling image update of 20 real containers (Podman's Docker-compatible
//! service) behind a real, managed HAProxy, in 4 batches.
//!
//! Prints the update's wall time; the sum of every driver call's time (container host and
//! HAProxy), per kind of call; the critical path (per batch, the slowest instance's driver
//! time); and rollscale's own overhead: per instance, the time from its first step to its last
//! that was not spent in a driver call, and the wall time not explained by the critical path.
//! Then it stops one container behind rollscale's back and prints how long the health checker
//! took to find it and the group to serve from its replacement (`--health-check-interval-ms`,
//! default 5000, as `rollscale up`).
//! Run with `cargo bench -p rollscale-engine --bench containers` (podman, runc, busybox-static
//! and haproxy are needed: `scripts/containers`, `scripts/haproxy`; the script starts its own
//! Podman service and builds the demo images when missing). `-- --size N --batches B` changes
//! the shape.

use async_trait::async_trait;
use rollscale_core::domain::{ContainerSpec, HealthStatus};
use rollscale_core::ids::{InstanceId, LoadBalancerId};
use rollscale_core::params::{ContainerUpdateType, ScriptSpec};
use rollscale_core::task::TaskStatus;
use rollscale_engine::service::NewGroup;
use rollscale_engine::{Engine, EngineConfig, Service};
use rollscale_fleet::docker::{DockerConfig, DockerFleet};
use rollscale_fleet::haproxy::{HaproxyLoadBalancer, ManagedConfig};
use rollscale_fleet::{
    Fleet, FleetError, InstanceObservation, InstanceSpec, LoadBalancer, PackageOperation, RunId, ScriptOutcome,
};
use rollscale_store::Store;
use rollscale_test_support::bench::{arg, cpu_seconds};
use rollscale_test_support::engine::StartTemplate;
use rollscale_test_support::engine::{configuration, enabled_group};
use rollscale_test_support::podman;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PREFIX: &str = "rsbench";

/// Time spent in driver calls: per instance, and per kind of call.
#[derive(Default)]
struct Clock {
    on: std::sync::atomic::AtomicBool,
    per_instance: Mutex<HashMap<InstanceId, Duration>>,
    per_call: Mutex<HashMap<&'static str, (u32, Duration)>>,
}

impl Clock {
    async fn time<T>(&self, call: &'static str, id: &InstanceId, future: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let result = future.await;
        if self.on.load(std::sync::atomic::Ordering::Relaxed) {
            let spent = started.elapsed();
            *self.per_instance.lock().expect("clock").entry(id.clone()).or_default() += spent;
            let mut per_call = self.per_call.lock().expect("clock");
            let entry = per_call.entry(call).or_default();
            entry.0 += 1;
            entry.1 += spent;
        }
        result
    }
}

struct TimedFleet {
    inner: DockerFleet,
    clock: Arc<Clock>,
}

#[async_trait]
impl Fleet for TimedFleet {
    fn name(&self) -> &'static str {
        "docker"
    }
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<InstanceObservation, FleetError> {
        self.clock.time("create_instance", &spec.id, self.inner.create_instance(spec)).await
    }
    async fn remove_instance(&self, id: &InstanceId) -> Result<(), FleetError> {
        self.clock.time("remove_instance", id, self.inner.remove_instance(id)).await
    }
    async fn observe(&self, id: &InstanceId) -> Result<Option<InstanceObservation>, FleetError> {
        self.clock.time("observe", id, self.inner.observe(id)).await
    }
    async fn replace_image(&self, id: &InstanceId, image_id: &str) -> Result<String, FleetError> {
        self.clock.time("replace_image", id, self.inner.replace_image(id, image_id)).await
    }
    async fn run_script(&self, id: &InstanceId, script: &ScriptSpec, run: &RunId) -> Result<ScriptOutcome, FleetError> {
        self.clock.time("run_script", id, self.inner.run_script(id, script, run)).await
    }
    async fn apply_package(
        &self,
        id: &InstanceId,
        operation: &PackageOperation,
        run: &RunId,
    ) -> Result<ScriptOutcome, FleetError> {
        self.clock.time("apply_package", id, self.inner.apply_package(id, operation, run)).await
    }
    async fn update_containers(
        &self,
        id: &InstanceId,
        update_type: ContainerUpdateType,
        containers: &[ContainerSpec],
    ) -> Result<String, FleetError> {
        self.clock.time("update_containers", id, self.inner.update_containers(id, update_type, containers)).await
    }
    async fn create_image(&self, id: &InstanceId, image_name: &str) -> Result<String, FleetError> {
        self.clock.time("create_image", id, self.inner.create_image(id, image_name)).await
    }
    async fn health(&self, id: &InstanceId) -> Result<HealthStatus, FleetError> {
        self.clock.time("health", id, self.inner.health(id)).await
    }
}

struct TimedLb {
    inner: HaproxyLoadBalancer,
    clock: Arc<Clock>,
}

#[async_trait]
impl LoadBalancer for TimedLb {
    fn name(&self) -> &'static str {
        "haproxy"
    }
    async fn register(
        &self,
        lb: &LoadBalancerId,
        id: &InstanceId,
        address: &str,
        weight: u32,
    ) -> Result<(), FleetError> {
        self.clock.time("lb register", id, self.inner.register(lb, id, address, weight)).await
    }
    async fn deregister(&self, lb: &LoadBalancerId, id: &InstanceId) -> Result<(), FleetError> {
        self.clock.time("lb deregister", id, self.inner.deregister(lb, id)).await
    }
    async fn set_weight(&self, lb: &LoadBalancerId, id: &InstanceId, weight: u32) -> Result<(), FleetError> {
        self.clock.time("lb set_weight", id, self.inner.set_weight(lb, id, weight)).await
    }
    async fn weight(&self, lb: &LoadBalancerId, id: &InstanceId) -> Result<Option<u32>, FleetError> {
        self.clock.time("lb weight", id, self.inner.weight(lb, id)).await
    }
    async fn active_connections(&self, lb: &LoadBalancerId, id: &InstanceId) -> Result<u32, FleetError> {
        self.clock.time("lb active_connections", id, self.inner.active_connections(lb, id)).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (size, batches) = (arg("--size", 20), arg("--batches", 4));
    let dir = tempfile::Builder::new().prefix("rsb").tempdir_in("/tmp")?;
    let socket = dir.path().join("podman.sock");
    podman::start_service(&socket, 120)?;
    podman::remove_containers(&format!("label={PREFIX}.instance"));

    let store = Store::open(&format!("sqlite://{}", dir.path().join("bench.db").display())).await?;
    let lb_row = rollscale_core::domain::LoadBalancer {
        id: LoadBalancerId::from_random(rollscale_engine::random_bits()),
        name: "bench".into(),
        default_weight: 100,
    };
    store.lb_insert(&lb_row, rollscale_engine::now_millis()).await?;
    let frontend = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut managed = ManagedConfig::new(dir.path().join("haproxy"), vec![(lb_row.id.clone(), frontend)]);
    managed.slots = size.max(8);
    let haproxy = HaproxyLoadBalancer::managed(managed).await?;
    let docker = DockerFleet::connect(
        &format!("unix://{}", socket.display()),
        DockerConfig { health_path: Some("/health".into()), label_prefix: PREFIX.into(), ..DockerConfig::default() },
    )?;
    let clock = Arc::new(Clock::default());
    let fleet = TimedFleet { inner: docker, clock: clock.clone() };
    let lb = TimedLb { inner: haproxy.clone(), clock: clock.clone() };
    let health_check_interval = Duration::from_millis(u64::from(arg("--health-check-interval-ms", 5_000)));
    let config =
        EngineConfig { health_poll: Duration::from_millis(20), health_check_interval, ..EngineConfig::default() };
    let engine = Engine::new(store.clone(), Arc::new(fleet), Arc::new(lb), config);
    let service = Service::new(engine.clone());
    for image in ["localhost/rollscale-demo:v1", "localhost/rollscale-demo:v2"] {
        service.create_image(image, None, None).await?;
    }
    let new = NewGroup {
        name: "bench".into(),
        max_size: size,
        desired_capacity: Some(size),
        load_balancer_ids: vec![lb_row.id.clone()],
        drain_timeout_s: Some(10),
        ..NewGroup::default()
    };
    let (group, _) = enabled_group(&service, new, configuration("localhost/rollscale-demo:v1")).await;
    let setup = Instant::now();
    service.reconcile_group(&group).await?;
    let setup = setup.elapsed();

    clock.on.store(true, std::sync::atomic::Ordering::Relaxed);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let params = serde_json::json!({
        "invokeType": "invoke", "scalingGroupId": group.id,
        "imageId": "localhost/rollscale-demo:v2", "batchNumber": batches,
    });
    let task =
        service.start_template("ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup", &params.to_string()).await?;
    let status = loop {
        let status = service.task(&task.id).await?.0.status;
        if status.is_final() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    clock.on.store(false, std::sync::atomic::Ordering::Relaxed);
    let (_, works) = service.task(&task.id).await?;

    let per_instance = clock.per_instance.lock().expect("clock").clone();
    let driver_sum: Duration = per_instance.values().sum();
    let mut slowest: HashMap<u32, Duration> = HashMap::new();
    let mut gaps = Duration::ZERO;
    for work in &works {
        let driver = per_instance.get(&work.instance_id).copied().unwrap_or_default();
        let slot = slowest.entry(work.batch).or_default();
        *slot = (*slot).max(driver);
        if let (Some(from), Some(to)) = (work.started_at, work.ended_at) {
            let span = Duration::from_millis(u64::try_from(to - from).unwrap_or(0));
            gaps += span.saturating_sub(driver);
        }
    }
    let critical: Duration = slowest.values().sum();
    let n = works.len().max(1) as u32;

    println!(
        "rolling image update of {size} containers (Podman) behind HAProxy, {batches} batches: {status:?} \
         (setup: {size} containers created in {:.2} s)",
        setup.as_secs_f64()
    );
    println!("  wall time                       {:>8.3} s", wall.as_secs_f64());
    println!(
        "  driver calls, summed            {:>8.3} s (all instances; batches run them concurrently)",
        driver_sum.as_secs_f64()
    );
    let mut calls: Vec<(&str, (u32, Duration))> =
        clock.per_call.lock().expect("clock").iter().map(|(k, v)| (*k, *v)).collect();
    calls.sort_by_key(|(_, (_, spent))| std::cmp::Reverse(*spent));
    for (call, (count, spent)) in calls {
        println!(
            "    {call:<24} {count:>4} calls {:>8.3} s ({:.1} ms each)",
            spent.as_secs_f64(),
            spent.as_secs_f64() * 1000.0 / f64::from(count.max(1))
        );
    }
    println!(
        "  critical path (driver)          {:>8.3} s (per batch, the slowest instance's driver time)",
        critical.as_secs_f64()
    );
    println!(
        "  rollscale overhead per instance {:>8.1} ms (first step to last, less its driver calls)",
        gaps.as_secs_f64() * 1000.0 / f64::from(n)
    );
    println!(
        "  wall beyond the critical path   {:>8.1} ms ({:.1} ms per instance)",
        wall.saturating_sub(critical).as_secs_f64() * 1000.0,
        wall.saturating_sub(critical).as_secs_f64() * 1000.0 / f64::from(n)
    );
    println!(
        "  rollscale CPU                   {:>8.1} ms ({:.2} ms per instance)",
        cpu * 1000.0,
        cpu * 1000.0 / f64::from(n)
    );

    // Self-healing (R17): one container stopped behind rollscale's back, with the health
    // checker and the reconciler running as in `rollscale up`.
    service.spawn_reconciler();
    service.spawn_health_checker();
    let victim = works.first().map(|work| work.instance_id.clone()).ok_or("no instance")?;
    let stopped = Instant::now();
    podman::podman(&["stop", "-t", "0", &format!("{PREFIX}-{victim}")]);
    let mut removed_after = None;
    let healed_after = loop {
        let instances = store.instance_list(Some(&group.id)).await?;
        if removed_after.is_none() && instances.iter().all(|i| i.value.id != victim) {
            removed_after = Some(stopped.elapsed());
        }
        let serving = instances.len() == size as usize
            && removed_after.is_some()
            && instances.iter().all(|i| i.value.lifecycle_state == rollscale_core::domain::LifecycleState::InService);
        if serving {
            break stopped.elapsed();
        }
        if stopped.elapsed() > Duration::from_secs(120) {
            return Err("the stopped container was not replaced within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let removed_after = removed_after.unwrap_or_default();
    println!(
        "self-healing: podman stop of one instance, health checks every {:.1} s",
        health_check_interval.as_secs_f64()
    );
    println!("  stop to removal (found stopped)  {:>8.3} s", removed_after.as_secs_f64());
    println!(
        "  stop to its replacement serving  {:>8.3} s (the new container made, healthy, in HAProxy)",
        healed_after.as_secs_f64()
    );

    engine.halt();
    podman::remove_containers(&format!("label={PREFIX}.instance"));
    haproxy.shutdown().await?;
    if status != TaskStatus::Success {
        return Err(format!("the update ended {status:?}").into());
    }
    Ok(())
}
