//! The engine fixture: a fresh store (SQLite in a temporary directory, or a PostgreSQL
//! database when a URL is given), the simulated fleet and load balancer, an engine and its
//! service; the catalog and the groups the tests roll, and waiting for a task.

use rollscale_core::domain::{ContainerSpec, GroupType, Instance, ScalingConfiguration, ScalingGroup};
use rollscale_core::ids::{ExecutionId, InstanceId, ScalingGroupId};
use rollscale_core::task::{InstanceWork, TaskState, TaskStatus, WaitingStatus};
use rollscale_engine::service::{NewConfiguration, NewGroup};
use rollscale_engine::{Engine, EngineConfig, Service, ServiceError};
use rollscale_fleet::sim::{SimConfig, SimFleet, SimLbConfig, SimLoadBalancer};
use rollscale_store::Store;
use std::sync::Arc;
use std::time::Duration;

pub const OLD_IMAGE: &str = "centos_7_8_x64_20G_alibase_20200717.vhd";
pub const NEW_IMAGE: &str = "aliyun_2_1903_x64_20G_alibase_20200529.vhd";

pub const IMAGE_TEMPLATE: &str = "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup";
pub const SCRIPT_TEMPLATE: &str = "ACS-ESS-RollingUpdateByRunCommandInScalingGroup";
pub const PACKAGE_TEMPLATE: &str = "ACS-ESS-RollingUpdateByConfigureOOSPackage";

/// The engine's tunables shortened for tests: health gates of 300 ms polled every 10 ms, quick
/// retries, and the reconciler and the health checker every 100 ms.
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

/// A fresh store, the simulated fleet and load balancer, an engine over them and its service.
pub struct Harness {
    /// A temporary directory, removed when dropped: the SQLite database's (empty on PostgreSQL).
    pub dir: tempfile::TempDir,
    /// The store's URL.
    pub url: String,
    pub store: Store,
    pub fleet: SimFleet,
    pub lb: SimLoadBalancer,
    pub engine: Arc<Engine>,
    pub service: Service,
}

/// How a [`Harness`] is made: [`Harness::builder`].
pub struct HarnessBuilder {
    latency_ms: u64,
    database: Option<String>,
    config: EngineConfig,
    fleet: Option<SimFleet>,
    checked_lb: bool,
}

impl HarnessBuilder {
    /// Each simulated fleet call takes this long (0 by default).
    pub fn latency_ms(mut self, latency_ms: u64) -> HarnessBuilder {
        self.latency_ms = latency_ms;
        self
    }

    /// The store at `url` (a PostgreSQL database, say: [`crate::postgres::database`]) instead
    /// of a fresh SQLite file.
    pub fn database(mut self, url: &str) -> HarnessBuilder {
        self.database = Some(url.to_string());
        self
    }

    /// The engine's tunables ([`fast_config`] by default).
    pub fn config(mut self, config: EngineConfig) -> HarnessBuilder {
        self.config = config;
        self
    }

    /// This simulated fleet (which a test may then make faulty) instead of a new one; the
    /// latency is the fleet's own.
    pub fn fleet(mut self, fleet: SimFleet) -> HarnessBuilder {
        self.fleet = Some(fleet);
        self
    }

    /// A load balancer that checks no backend. By default its checks follow the fleet's health,
    /// as `rollscale up` builds it (R17).
    pub fn unchecked_load_balancer(mut self) -> HarnessBuilder {
        self.checked_lb = false;
        self
    }

    pub async fn build(self) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = self.database.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("test.db").display()));
        let store = Store::open(&url).await.expect("store");
        let fleet = self
            .fleet
            .unwrap_or_else(|| SimFleet::new(SimConfig { latency_ms: self.latency_ms, ..SimConfig::default() }));
        let lb = SimLoadBalancer::new(SimLbConfig::default());
        let lb = if self.checked_lb { lb.with_fleet(fleet.clone()) } else { lb };
        let engine = Engine::new(store.clone(), Arc::new(fleet.clone()), Arc::new(lb.clone()), self.config);
        let service = Service::new(engine.clone());
        Harness { dir, url, store, fleet, lb, engine, service }
    }
}

impl Harness {
    /// Over SQLite, each fleet call taking `latency_ms`, with [`fast_config`].
    pub async fn new(latency_ms: u64) -> Harness {
        Harness::builder().latency_ms(latency_ms).build().await
    }

    pub fn builder() -> HarnessBuilder {
        HarnessBuilder { latency_ms: 0, database: None, config: fast_config(), fleet: None, checked_lb: true }
    }

    /// The restart: a new engine with `config` over the same store, fleet and load balancer,
    /// and its service. The old engine is left as it is (halt it first to stop it).
    pub fn restarted(self, config: EngineConfig) -> Harness {
        let engine = Engine::new(self.store.clone(), Arc::new(self.fleet.clone()), Arc::new(self.lb.clone()), config);
        Harness { service: Service::new(engine.clone()), engine, ..self }
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
        let new = NewGroup {
            name: "g".into(),
            max_size: size.max(1),
            desired_capacity: Some(size),
            load_balancer_ids: vec![lb.id],
            ..NewGroup::default()
        };
        let (group, _) = enabled_group(&self.service, new, configuration(OLD_IMAGE)).await;
        self.service.reconcile_group(&group).await.expect("reconcile");
        self.service.group(&group.id).await.expect("group")
    }

    /// An ECI group of `size` container groups made of `containers` (the catalog added first),
    /// enabled and reconciled, without a load balancer.
    pub async fn eci_group(&self, size: u32, containers: Vec<ContainerSpec>) -> ScalingGroup {
        self.catalog().await;
        let new = NewGroup {
            name: "eci".into(),
            group_type: Some(GroupType::ECI),
            max_size: size,
            desired_capacity: Some(size),
            ..NewGroup::default()
        };
        let (group, _) =
            enabled_group(&self.service, new, NewConfiguration { containers, ..configuration(OLD_IMAGE) }).await;
        self.service.reconcile_group(&group).await.expect("reconcile");
        group
    }

    pub async fn instances(&self, group: &ScalingGroup) -> Vec<Instance> {
        self.service.instances(Some(&group.id), None, None).await.expect("instances")
    }

    pub async fn start(&self, template: &str, parameters: serde_json::Value) -> TaskState {
        self.service.start_template(template, &parameters.to_string()).await.expect("start")
    }

    /// Waits until the task is final, or Waiting for `until_waiting` when given.
    pub async fn wait(&self, id: &ExecutionId, until_waiting: Option<WaitingStatus>) -> (TaskState, Vec<InstanceWork>) {
        wait_for_task(&self.service, id, "the task's end", |task, _| {
            let waiting =
                task.status == TaskStatus::Waiting && until_waiting.is_some() && task.waiting == until_waiting;
            task.status.is_final() || waiting
        })
        .await
    }

    /// The instance's weight on its (first) load balancer.
    pub async fn weight(&self, instance: &InstanceId) -> u32 {
        self.service.backends(instance).await.expect("backends")[0].weight
    }
}

/// A configuration of `image` (of the group [`create_group`] makes).
pub fn configuration(image: &str) -> NewConfiguration {
    NewConfiguration { image_id: image.into(), ..NewConfiguration::default() }
}

/// Creates the group `group` and its configuration `configuration`, not yet enabled.
pub async fn create_group(
    service: &Service,
    group: NewGroup,
    configuration: NewConfiguration,
) -> (ScalingGroup, ScalingConfiguration) {
    let group = service.create_group(group).await.expect("create the group");
    let configuration = service.create_configuration(&group.id, configuration).await.expect("create the configuration");
    (group, configuration)
}

/// [`create_group`], then enabled: the group as enabling it left it (not yet reconciled: it
/// has no instance yet).
pub async fn enabled_group(
    service: &Service,
    group: NewGroup,
    configuration: NewConfiguration,
) -> (ScalingGroup, ScalingConfiguration) {
    let (group, configuration) = create_group(service, group, configuration).await;
    let group = service.enable_group(&group.id, None).await.expect("enable the group");
    (group, configuration)
}

/// Reads the task through `service` every 10 ms until `done` says so of it and its instances'
/// work, and returns them; fails the test after 30 s, saying it waited in vain for `what`.
pub async fn wait_for_task(
    service: &Service,
    id: &ExecutionId,
    what: &str,
    done: impl Fn(&TaskState, &[InstanceWork]) -> bool,
) -> (TaskState, Vec<InstanceWork>) {
    let what = format!("task {id}: {what}");
    crate::wait::until_ok(&what, Duration::from_secs(30), Duration::from_millis(10), async || {
        let (task, works) = service.task(id).await.expect("task");
        if done(&task, &works) {
            Ok((task, works))
        } else {
            Err(task.describe_status())
        }
    })
    .await
}

/// Starting a rolling update from a template's name and its `Parameters` as JSON text, as the
/// APIs receive them: core's parser (`params::parse_start`), then the service's typed start.
/// (The server also refuses a template that does not exist, before this; tests speak in
/// templates that do.)
#[allow(async_fn_in_trait)]
pub trait StartTemplate {
    async fn start_template(&self, template: &str, parameters: &str) -> Result<TaskState, ServiceError>;

    /// An image update task from its `Parameters` as JSON text (core's
    /// `image_task::parse_start`, then the service).
    async fn start_image_task(
        &self,
        parameters: &str,
    ) -> Result<rollscale_core::image_task::ImageUpdateExecution, ServiceError>;
}

impl StartTemplate for Service {
    async fn start_template(&self, template: &str, parameters: &str) -> Result<TaskState, ServiceError> {
        let parameters: serde_json::Value = serde_json::from_str(parameters).map_err(|error| {
            ServiceError::refused(rollscale_core::Code::InvalidParameter, format!("Parameters is not JSON: {error}"))
        })?;
        let request = rollscale_core::params::parse_start(template, &parameters)?;
        self.start_rolling_update(request).await
    }

    async fn start_image_task(
        &self,
        parameters: &str,
    ) -> Result<rollscale_core::image_task::ImageUpdateExecution, ServiceError> {
        let parameters: serde_json::Value = serde_json::from_str(parameters).map_err(|error| {
            ServiceError::refused(rollscale_core::Code::InvalidParameter, format!("Parameters is not JSON: {error}"))
        })?;
        self.start_image_update(rollscale_core::image_task::parse_start(&parameters)?).await
    }
}

/// A scaling group's id written in a test (`asg-…`); the test fails when it is not one.
pub fn group_id(text: &str) -> ScalingGroupId {
    ScalingGroupId::parse(text).unwrap_or_else(|| panic!("{text:?} is not a scaling group id"))
}

/// An execution's id written in a test (`exec-…`); the test fails when it is not one.
pub fn execution_id(text: &str) -> ExecutionId {
    ExecutionId::parse(text).unwrap_or_else(|| panic!("{text:?} is not an execution id"))
}

/// An instance's id written in a test (`i-…`); the test fails when it is not one.
pub fn instance_id(text: &str) -> InstanceId {
    InstanceId::parse(text).unwrap_or_else(|| panic!("{text:?} is not an instance id"))
}
