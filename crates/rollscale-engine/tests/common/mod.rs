//! A test harness: a fresh store in a temp dir, the simulated fleet, an engine, and a group.

#![allow(dead_code)]

use rollscale_core::domain::{Instance, ScalingGroup};
use rollscale_core::task::{InstanceWork, TaskState, TaskStatus, WaitingStatus};
use rollscale_engine::service::{NewConfiguration, NewGroup};
use rollscale_engine::{Engine, EngineConfig, Service};
use rollscale_fleet::sim::{SimConfig, SimFleet, SimLbConfig, SimLoadBalancer};
use rollscale_store::Store;
use std::sync::Arc;
use std::time::Duration;

pub const OLD_IMAGE: &str = "centos_7_8_x64_20G_alibase_20200717.vhd";
pub const NEW_IMAGE: &str = "aliyun_2_1903_x64_20G_alibase_20200529.vhd";

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub store: Store,
    pub fleet: SimFleet,
    pub lb: SimLoadBalancer,
    pub engine: Arc<Engine>,
    pub service: Service,
}

pub fn fast_config() -> EngineConfig {
    EngineConfig {
        health_timeout: Duration::from_millis(300),
        health_poll: Duration::from_millis(10),
        transient_retries: 3,
        transient_backoff: Duration::from_millis(5),
        reconcile_interval: Duration::from_millis(100),
        health_check_interval: Duration::from_millis(100),
        default_weight: 100,
        ..EngineConfig::default()
    }
}

impl Harness {
    pub async fn new(latency_ms: u64) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = Store::open(&url).await.expect("store");
        let fleet = SimFleet::new(SimConfig { latency_ms, ..SimConfig::default() });
        // Its checks follow the fleet's health, as `rollscale up` builds it (R17).
        let lb = SimLoadBalancer::new(SimLbConfig::default()).with_fleet(fleet.clone());
        let engine = Engine::new(store.clone(), Arc::new(fleet.clone()), Arc::new(lb.clone()), fast_config());
        let service = Service::new(engine.clone());
        Harness { dir, url, store, fleet, lb, engine, service }
    }

    /// The catalog of the demo: two images and the wordpress package.
    pub async fn catalog(&self) {
        self.service.create_image(OLD_IMAGE, None, None).await.expect("image");
        self.service.create_image(NEW_IMAGE, None, None).await.expect("image");
        for version in ["v3", "v4"] {
            self.service
                .create_package("wordpress", version, &format!("echo wordpress {version}"), "echo bye")
                .await
                .expect("package");
        }
    }

    /// A group of `size` InService instances on OLD_IMAGE behind one load balancer.
    pub async fn group(&self, size: u32) -> ScalingGroup {
        self.catalog().await;
        let lb = self.service.create_load_balancer("lb", 100).await.expect("lb");
        let group = self
            .service
            .create_group(NewGroup {
                name: "g".into(),
                max_size: size.max(1),
                desired_capacity: Some(size),
                load_balancer_ids: vec![lb.id],
                ..NewGroup::default()
            })
            .await
            .expect("group");
        self.service
            .create_configuration(NewConfiguration {
                group_id: group.id.to_string(),
                image_id: OLD_IMAGE.into(),
                ..NewConfiguration::default()
            })
            .await
            .expect("configuration");
        let group = self.service.enable_group(group.id.as_str(), None).await.expect("enable");
        self.service.reconcile_group(&group).await.expect("reconcile");
        self.service.group(group.id.as_str()).await.expect("group")
    }

    /// An ECI group of `size` container groups made of `containers` (the catalog added first),
    /// enabled and reconciled, without a load balancer.
    pub async fn eci_group(&self, size: u32, containers: Vec<rollscale_core::domain::ContainerSpec>) -> ScalingGroup {
        self.catalog().await;
        let group = self
            .service
            .create_group(NewGroup {
                name: "eci".into(),
                group_type: Some(rollscale_core::domain::GroupType::ECI),
                max_size: size,
                desired_capacity: Some(size),
                ..NewGroup::default()
            })
            .await
            .expect("group");
        self.service
            .create_configuration(NewConfiguration {
                group_id: group.id.to_string(),
                image_id: OLD_IMAGE.into(),
                containers,
                ..NewConfiguration::default()
            })
            .await
            .expect("configuration");
        let group = self.service.enable_group(group.id.as_str(), None).await.expect("enable");
        self.service.reconcile_group(&group).await.expect("reconcile");
        group
    }

    pub async fn instances(&self, group: &ScalingGroup) -> Vec<Instance> {
        self.service.instances(Some(group.id.as_str()), &[], None).await.expect("instances")
    }

    pub async fn start(&self, template: &str, parameters: serde_json::Value) -> TaskState {
        self.service.start_execution(template, &parameters.to_string()).await.expect("start")
    }

    /// Waits until the task is final, or Waiting for `until_waiting` when given.
    pub async fn wait(&self, id: &str, until_waiting: Option<WaitingStatus>) -> (TaskState, Vec<InstanceWork>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (task, works) = self.service.task(id).await.expect("task");
            let waiting =
                task.status == TaskStatus::Waiting && until_waiting.is_some() && task.waiting == until_waiting;
            if task.status.is_final() || waiting {
                return (task, works);
            }
            assert!(tokio::time::Instant::now() < deadline, "task {id} stuck at {}", task.describe_status());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn weight(&self, instance: &rollscale_core::ids::InstanceId) -> u32 {
        self.service.backends(instance).await.expect("backends")[0].weight
    }
}

pub const IMAGE_TEMPLATE: &str = "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup";
pub const SCRIPT_TEMPLATE: &str = "ACS-ESS-RollingUpdateByRunCommandInScalingGroup";
pub const PACKAGE_TEMPLATE: &str = "ACS-ESS-RollingUpdateByConfigureOOSPackage";
