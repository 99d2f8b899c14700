//! The drivers rollscale acts through: [`Fleet`] (the compute backend that runs instances) and
//! [`LoadBalancer`] (backend weights and connection draining), and [`sim`], the simulated
//! implementation of both that is the embedded default.
//!
//! Architecture invariant: drivers are idempotent. "Replace the image with X" on an instance
//! already on X succeeds and does nothing; removing an absent instance succeeds. A driver never
//! decides what to do next and never writes to the store: the engine calls it and records what
//! it reports. An outcome the driver cannot know (a timeout, a lost connection) is reported as
//! [`FleetError::Unavailable`] and the engine re-observes instead of assuming.

pub mod docker;
pub mod haproxy;
pub mod notify;
pub mod sim;

use async_trait::async_trait;
use rollscale_core::domain::{ContainerSpec, GroupType, HealthStatus, OsType};
use rollscale_core::ids::{InstanceId, LoadBalancerId, ScalingGroupId};
use rollscale_core::params::{ContainerUpdateType, PackageAction, ScriptSpec};
use rollscale_core::Code;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Most bytes of script output kept per instance (R13); longer output is cut and flagged.
pub const MAX_OUTPUT_BYTES: usize = 24 * 1024;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FleetError {
    /// The instance does not exist on the backend.
    #[error("instance {0} does not exist on the backend")]
    NotFound(InstanceId),
    /// The instance cannot do this (e.g. a Windows script on a Linux instance). Permanent.
    #[error("{0}")]
    Unsupported(String),
    /// The operation ran and failed (e.g. the image cannot be pulled). Permanent for this try.
    #[error("{0}")]
    Failed(String),
    /// The backend could not be reached or did not answer; the outcome is unknown.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
}

impl FleetError {
    /// The error code recorded on the instance's child execution.
    pub fn code(&self) -> Code {
        match self {
            FleetError::NotFound(_) => Code::InstanceNotFound,
            FleetError::Unsupported(_) => Code::Unsupported,
            FleetError::Failed(_) => Code::OperationFailed,
            FleetError::Unavailable(_) => Code::BackendUnavailable,
        }
    }
}

/// What a new instance is made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub id: InstanceId,
    pub group_id: ScalingGroupId,
    pub group_type: GroupType,
    pub image_id: String,
    /// Containers of the instance: one for ECS, several for an ECI container group.
    pub containers: Vec<ContainerSpec>,
}

/// What the backend reports of an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceObservation {
    pub id: InstanceId,
    pub image_id: String,
    pub packages: Vec<(String, String)>,
    pub containers: Vec<ContainerSpec>,
    pub running: bool,
    pub os: OsType,
    /// `host:port` where the instance serves, or empty.
    pub address: String,
}

/// The result of a script run (R13). A non-zero exit code or a timeout is a failure, which the
/// engine decides; the driver reports what happened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptOutcome {
    pub exit_code: Option<i32>,
    /// stdout and stderr, at most [`MAX_OUTPUT_BYTES`].
    pub output: String,
    pub truncated: bool,
    pub timed_out: bool,
}

/// Names one run of a script (a `RunShellScript` task's, or a package version's) on one
/// instance: the engine makes it from the instance's child execution and attempt. A driver
/// asked again for a run it has done reports that run's outcome and does not run the script
/// a second time, so a step redone after a crash or a lost answer has the effect of one run
/// (R14); a retry by an operator is a new attempt, a new run. Letters, digits, `.`, `_`, `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(String);

impl RunId {
    /// Most characters of a run id.
    pub const MAX_LEN: usize = 96;

    pub fn new(id: impl Into<String>) -> Result<RunId, FleetError> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(RunId(id))
        } else {
            Err(FleetError::Failed(format!("{id:?} is not a run id (letters, digits, '.', '_', '-')")))
        }
    }

    /// The run of `attempt` of the child execution `execution_id` (`exec-…`).
    pub fn of(execution_id: &rollscale_core::ids::ExecutionId, attempt: u32) -> RunId {
        RunId(format!("{execution_id}.{attempt}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Installing or uninstalling one package version on an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageOperation {
    pub name: String,
    pub version: String,
    pub action: PackageAction,
    /// The version's install or uninstall script, as the action needs.
    pub script: String,
    pub timeout_s: u32,
}

/// An image the backend holds, as [`Fleet::list_images`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalImage {
    /// The content id (`sha256:…`, or the image id itself where the backend has no other).
    pub id: String,
    /// Its names (`localhost/rollscale-demo:v1`): what instances are made from.
    pub tags: Vec<String>,
    /// Seconds since the Unix epoch (0 when unknown).
    pub created: i64,
    pub size: i64,
    /// The system its instances run.
    pub os: OsType,
}

/// How many instances [`Fleet::look`]'s default looks at at once.
pub const LOOK_CONCURRENCY: usize = 32;

/// What one look at an instance saw ([`Fleet::look`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sighting {
    /// The instance, or `None` when the backend does not have it.
    pub observation: Option<InstanceObservation>,
    /// Its health check, asked when it runs.
    pub health: Option<HealthStatus>,
}

/// A fault injected into a simulated instance (`InjectFault`'s `Kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Its next `times` changes fail (`Kind=FailNext`, the default).
    FailNext { times: u32 },
    /// It stops, as a container whose process exits (`Kind=Crash`).
    Crash,
    /// It runs, but its health check fails until it is changed or the fault is cleared
    /// (`Kind=Unhealthy`).
    Unhealthy,
    /// Every fault of the instance is cleared, and a stopped one started (`Kind=Clear`).
    Clear,
}

impl Fault {
    /// The names `InjectFault` takes as `Kind`.
    pub const KINDS: &'static [&'static str] = &["FailNext", "Crash", "Unhealthy", "Clear"];

    /// The fault named `kind` (`times` counts for `FailNext` only).
    pub fn parse(kind: &str, times: u32) -> Option<Fault> {
        match kind {
            "FailNext" => Some(Fault::FailNext { times }),
            "Crash" => Some(Fault::Crash),
            "Unhealthy" => Some(Fault::Unhealthy),
            "Clear" => Some(Fault::Clear),
            _ => None,
        }
    }
}

/// The compute backend.
#[async_trait]
pub trait Fleet: Send + Sync + 'static {
    /// A short name for logs and `rollscale up` output (`sim`, `docker`).
    fn name(&self) -> &'static str;

    /// Whether the backend answers, for the readiness probe (`/readyz`). The simulated fleet
    /// always does; the container fleet asks its engine's API.
    async fn reachable(&self) -> Result<(), FleetError> {
        Ok(())
    }

    /// Creates and starts the instance. If it already exists, reports it as it is.
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<InstanceObservation, FleetError>;

    /// Stops and removes the instance. Absent instances are fine.
    async fn remove_instance(&self, id: &InstanceId) -> Result<(), FleetError>;

    /// Reports the instance, or `None` if it does not exist.
    async fn observe(&self, id: &InstanceId) -> Result<Option<InstanceObservation>, FleetError>;

    /// Restarts the instance on `image_id` with the same identity and settings. A no-op when
    /// the instance already runs that image. Returns where the instance serves afterwards
    /// (`host:port`, or empty): a backend keeps the address when it can, but the engine
    /// re-registers the instance with its load balancers when it moved.
    async fn replace_image(&self, id: &InstanceId, image_id: &str) -> Result<String, FleetError>;

    /// Runs a script in the instance, honouring its type, working directory and timeout. A
    /// `run` done before is not run again: its outcome is reported (see [`RunId`]).
    async fn run_script(&self, id: &InstanceId, script: &ScriptSpec, run: &RunId) -> Result<ScriptOutcome, FleetError>;

    /// Runs the package version's install or uninstall script and records the installed version
    /// on success (exit code 0). A `run` done before is not run again, as for `run_script`.
    async fn apply_package(
        &self,
        id: &InstanceId,
        operation: &PackageOperation,
        run: &RunId,
    ) -> Result<ScriptOutcome, FleetError>;

    /// Updates an ECI container group: `RenewUpdate` replaces the containers, `IncrementalUpdate`
    /// merges the given ones by name. Returns where the instance serves afterwards, as
    /// [`Fleet::replace_image`] does.
    async fn update_containers(
        &self,
        id: &InstanceId,
        update_type: ContainerUpdateType,
        containers: &[ContainerSpec],
    ) -> Result<String, FleetError>;

    /// Makes a custom image from the instance and returns its id.
    async fn create_image(&self, id: &InstanceId, image_name: &str) -> Result<String, FleetError>;

    /// The images instances can be made from, newest first. Backends without an image store
    /// of their own report none (the image catalog is then all there is).
    async fn list_images(&self) -> Result<Vec<LocalImage>, FleetError> {
        Ok(Vec::new())
    }

    /// The image named `reference` (one of its tags, exactly), if the backend holds it.
    async fn find_image(&self, reference: &str) -> Result<Option<LocalImage>, FleetError> {
        Ok(self.list_images().await?.into_iter().find(|image| image.tags.iter().any(|tag| tag == reference)))
    }

    /// The id of the image [`Fleet::create_image`] made under `image_name`, if the backend
    /// holds one: how a redo after a crash finds the image made before the crash instead of
    /// making a second. Backends that cannot tell report none.
    async fn find_image_named(&self, image_name: &str) -> Result<Option<String>, FleetError> {
        let _ = image_name;
        Ok(None)
    }

    /// The instance's health as its health check sees it now.
    async fn health(&self, id: &InstanceId) -> Result<HealthStatus, FleetError>;

    /// One look at each of `ids` for the health checker (R16): the instance as
    /// [`Fleet::observe`] reports it (`None`: gone) and, when it runs, its health check. The
    /// default looks at a few instances at a time; a backend that can see many at once
    /// overrides it. An instance whose look failed is reported with the error (its state is
    /// then unknown, and the engine leaves its record as it was).
    async fn look(&self, ids: &[InstanceId]) -> Vec<(InstanceId, Result<Sighting, FleetError>)> {
        use futures_util::StreamExt;
        futures_util::stream::iter(ids.iter().cloned())
            .map(|id| async move {
                let sighting = async {
                    let Some(observation) = self.observe(&id).await? else { return Ok(Sighting::default()) };
                    let health = match observation.running {
                        true => Some(self.health(&id).await?),
                        false => None,
                    };
                    Ok(Sighting { observation: Some(observation), health })
                }
                .await;
                (id, sighting)
            })
            .buffer_unordered(LOOK_CONCURRENCY)
            .collect()
            .await
    }

    /// Injects a fault into the instance, for demos and drills (see [`Fault`]). Only
    /// simulated backends do this; real ones refuse, changing nothing.
    async fn inject_fault(&self, id: &InstanceId, fault: Fault) -> Result<(), FleetError> {
        let _ = (id, fault);
        Err(FleetError::Unsupported(format!("the {} fleet does not simulate faults", self.name())))
    }

    /// The instances as the store records them, taken as the truth by a fleet that lives in
    /// this process's memory (the simulated one: rebuilt from the store at start, and again for
    /// a task's group when this replica takes the task over from another, whose changes it
    /// did not see). A fleet whose instances live outside the process ignores it.
    fn adopt_recorded(&self, instances: Vec<InstanceObservation>) {
        let _ = instances;
    }
}

/// A load balancer's data plane: backend registration, weights and connections.
#[async_trait]
pub trait LoadBalancer: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Registers the instance at `address` with `weight`. Registering again updates it.
    async fn register(
        &self,
        lb: &LoadBalancerId,
        instance: &InstanceId,
        address: &str,
        weight: u32,
    ) -> Result<(), FleetError>;

    /// Removes the instance from the backend set. Absent is fine.
    async fn deregister(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<(), FleetError>;

    async fn set_weight(&self, lb: &LoadBalancerId, instance: &InstanceId, weight: u32) -> Result<(), FleetError>;

    /// The current weight, or `None` when the instance is not registered.
    async fn weight(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<Option<u32>, FleetError>;

    /// Connections the backend currently serves; draining waits until this reaches 0.
    async fn active_connections(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<u32, FleetError>;

    /// What the load balancer's own health checks say of each backend of `lb` it checks:
    /// `true` passing, `false` failing. Backends it does not check are left out; a load
    /// balancer that checks nothing answers none.
    async fn check_status(&self, lb: &LoadBalancerId) -> Result<Vec<(InstanceId, bool)>, FleetError> {
        let _ = lb;
        Ok(Vec::new())
    }

    /// The backends of `lb` as the store records them (instance, address, weight), taken as
    /// the truth by a load balancer that lives in this process's memory, as
    /// [`Fleet::adopt_recorded`]. A real one ignores it.
    fn adopt_recorded(&self, lb: &LoadBalancerId, backends: Vec<(InstanceId, String, u32)>) {
        let _ = (lb, backends);
    }
}
