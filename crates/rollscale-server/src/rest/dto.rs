//! The REST API's JSON shapes: the contract clients see, made from the domain types. The
//! OpenAPI document's schemas are derived from these types ([`schemars`]), so they cannot drift.
//! Times are RFC 3339 strings (UTC); enumerations are the API's own words (`InService`,
//! `Running`, …), the same as the RPC API's.

use crate::rpc::render;
use rollscale_core::domain::{
    ContainerSpec, Event, Image, Instance, InstanceSource, LaunchTemplate, LaunchTemplateVersion, LoadBalancer,
    PackageVersion, ScalingActivity, ScalingConfiguration, ScalingGroup,
};
use rollscale_core::image_task::ImageUpdateExecution;
use rollscale_core::task::{InstanceWork, Phase, StatusCounts, TaskState};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn time(millis: rollscale_core::domain::Millis) -> String {
    render::date(Some(millis))
}

fn time_opt(millis: Option<rollscale_core::domain::Millis>) -> Option<String> {
    millis.map(time)
}

/// A page of a list.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct List<T> {
    pub items: Vec<T>,
}

/// An error: the same codes as the RPC API's.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    pub request_id: String,
    pub host_id: String,
    /// A stable code, e.g. `InvalidParameter`, `IncorrectScalingGroupStatus`, `Forbidden.RAM`.
    pub code: String,
    pub message: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone)]
pub struct Container {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub command: Vec<String>,
    /// Environment variables, `NAME` to value.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    #[serde(default)]
    pub port: Option<u16>,
}

impl From<&ContainerSpec> for Container {
    fn from(spec: &ContainerSpec) -> Self {
        Container {
            name: spec.name.clone(),
            image: spec.image.clone(),
            command: spec.command.clone(),
            env: spec.env.clone(),
            port: spec.port,
        }
    }
}

impl From<Container> for ContainerSpec {
    fn from(container: Container) -> Self {
        ContainerSpec {
            name: container.name,
            image: container.image,
            command: container.command,
            env: container.env,
            port: container.port,
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct ScalingGroupView {
    pub id: String,
    pub name: String,
    pub region_id: String,
    /// `ECS` (instances) or `ECI` (container groups).
    pub group_type: String,
    /// `Active`, `Inactive` or `Deleting`.
    pub status: String,
    pub min_size: u32,
    pub max_size: u32,
    pub desired_capacity: u32,
    /// The active scaling configuration, if any.
    pub scaling_configuration_id: Option<String>,
    /// The launch template its instances are made from, if any.
    pub launch_template_id: Option<String>,
    /// `Default`, `Latest` or a version number, with a launch template.
    pub launch_template_version: Option<String>,
    pub load_balancer_ids: Vec<String>,
    /// Of `ScaleIn`, `ScaleOut`, `HealthCheck`, `AlarmNotification`, `ScheduledAction`.
    pub suspended_processes: Vec<String>,
    /// How long an instance entering Standby may drain its connections, in seconds.
    pub drain_timeout_s: u32,
    /// What the group's health check judges its instances by (ESS's `HealthCheckTypes`):
    /// `ECS` (the instance runs and passes its health check) and/or `LOAD_BALANCER` (its load
    /// balancers' checks of it), or `NONE` alone (not judged; still observed).
    pub health_check_types: Vec<String>,
    /// Seconds after an instance is made or changed during which a failing health check does
    /// not count against it (rollscale's; a stopped or vanished instance is judged at once).
    pub health_check_grace_period_s: u32,
    pub created_at: String,
}

impl From<&ScalingGroup> for ScalingGroupView {
    fn from(group: &ScalingGroup) -> Self {
        ScalingGroupView {
            id: group.id.to_string(),
            name: group.name.clone(),
            region_id: group.region_id.clone(),
            group_type: group.group_type.to_string(),
            status: group.status.to_string(),
            min_size: group.min_size,
            max_size: group.max_size,
            desired_capacity: group.desired_capacity,
            scaling_configuration_id: match &group.source {
                InstanceSource::Configuration(id) => Some(id.to_string()),
                _ => None,
            },
            launch_template_id: match &group.source {
                InstanceSource::LaunchTemplate { id, .. } => Some(id.to_string()),
                _ => None,
            },
            launch_template_version: match &group.source {
                InstanceSource::LaunchTemplate { version, .. } => Some(version.to_string()),
                _ => None,
            },
            load_balancer_ids: group.load_balancer_ids.iter().map(ToString::to_string).collect(),
            suspended_processes: group.suspended_processes.iter().map(ToString::to_string).collect(),
            drain_timeout_s: group.drain_timeout_s,
            health_check_types: group.health_check_types.iter().map(ToString::to_string).collect(),
            health_check_grace_period_s: group.health_check_grace_period_s,
            created_at: time(group.created_at),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct NewScalingGroup {
    /// Default: the group's id.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub region_id: Option<String>,
    /// `ECS` (default) or `ECI`.
    #[serde(default)]
    pub group_type: Option<String>,
    pub min_size: u32,
    pub max_size: u32,
    #[serde(default)]
    pub desired_capacity: Option<u32>,
    #[serde(default)]
    pub load_balancer_ids: Vec<String>,
    #[serde(default)]
    pub drain_timeout_s: Option<u32>,
    /// Make instances from this launch template instead of a scaling configuration.
    #[serde(default)]
    pub launch_template_id: Option<String>,
    /// `Default` (the default), `Latest` or a version number.
    #[serde(default)]
    pub launch_template_version: Option<String>,
    /// Of `ECS` (the default), `LOAD_BALANCER` (`LOADBALANCER` is taken too), or `NONE` alone.
    #[serde(default)]
    pub health_check_types: Option<Vec<String>>,
    /// 0 (the default) to 7200 seconds.
    #[serde(default)]
    pub health_check_grace_period_s: Option<u32>,
}

/// Changes to a scaling group; absent fields stay as they are.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ScalingGroupChanges {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub min_size: Option<u32>,
    #[serde(default)]
    pub max_size: Option<u32>,
    #[serde(default)]
    pub desired_capacity: Option<u32>,
    #[serde(default)]
    pub scaling_configuration_id: Option<String>,
    #[serde(default)]
    pub drain_timeout_s: Option<u32>,
    /// Of `ECS`, `LOAD_BALANCER` (`LOADBALANCER` is taken too), or `NONE` alone: replaces
    /// the group's.
    #[serde(default)]
    pub health_check_types: Option<Vec<String>>,
    /// 0 to 7200 seconds.
    #[serde(default)]
    pub health_check_grace_period_s: Option<u32>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct EnableScalingGroup {
    /// The configuration to make active; default: the group's only one.
    #[serde(default)]
    pub scaling_configuration_id: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProcessesChange {
    /// `suspend` or `resume`.
    pub action: String,
    /// Of `ScaleIn`, `ScaleOut`, `HealthCheck`, `AlarmNotification`, `ScheduledAction`.
    pub processes: Vec<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct StandbyChange {
    /// `enter` or `exit`.
    pub action: String,
    pub instance_ids: Vec<String>,
}

/// `POST /v1/scaling-groups/{id}/remove-instances` (`RemoveInstances`).
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct RemoveInstancesBody {
    pub instance_ids: Vec<String>,
    /// Lower the desired capacity by as many (the default); `false`: the reconciler makes new
    /// instances in their place.
    #[serde(default)]
    pub decrease_desired_capacity: Option<bool>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProtectionChange {
    pub protected: bool,
    pub instance_ids: Vec<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct ScalingConfigurationView {
    pub id: String,
    pub scaling_group_id: String,
    pub name: String,
    pub image_id: String,
    pub instance_type: String,
    /// `Active` or `Inactive`.
    pub state: String,
    pub containers: Vec<Container>,
    pub created_at: String,
}

impl From<&ScalingConfiguration> for ScalingConfigurationView {
    fn from(configuration: &ScalingConfiguration) -> Self {
        ScalingConfigurationView {
            id: configuration.id.to_string(),
            scaling_group_id: configuration.group_id.to_string(),
            name: configuration.name.clone(),
            image_id: configuration.image_id.clone(),
            instance_type: configuration.instance_type.clone(),
            state: configuration.state.to_string(),
            containers: configuration.containers.iter().map(Container::from).collect(),
            created_at: time(configuration.created_at),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewScalingConfiguration {
    pub scaling_group_id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub image_id: String,
    #[serde(default)]
    pub instance_type: Option<String>,
    #[serde(default)]
    pub containers: Vec<Container>,
}

/// Changes to a scaling configuration (new instances only: running ones change through a
/// rolling update); absent fields stay as they are.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ScalingConfigurationChanges {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub image_id: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct InstanceView {
    pub id: String,
    pub scaling_group_id: String,
    /// `Pending`, `InService`, `Standby`, `Protected` or `Removing`.
    pub lifecycle_state: String,
    /// `Healthy` or `Unhealthy`, as the health checker observed it.
    pub health_status: String,
    /// `AutoCreated` or `Attached`.
    pub creation_type: String,
    pub image_id: String,
    /// Installed packages, name to version.
    pub packages: Vec<(String, String)>,
    pub containers: Vec<Container>,
    /// The rolling updates that changed this instance.
    pub tags: Vec<String>,
    /// `host:port` where it serves, or empty.
    pub address: String,
    /// Its weight in the group's first load balancer (0 in Standby), when it has one.
    pub load_balancer_weight: Option<u32>,
    pub created_at: String,
    /// When the health checker last looked at it; `null` before the first look.
    pub observed_at: Option<String>,
    /// What the health checker last saw of it, apart from the record above (what rollscale
    /// made it); `null` before the first look.
    pub observed: Option<ObservedView>,
}

/// What the health checker last saw of an instance.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct ObservedView {
    /// It exists on the backend.
    pub exists: bool,
    /// It runs (every container of it, for a container group).
    pub running: bool,
    /// The image it actually runs (empty when it does not exist).
    pub image_id: String,
    /// Installed packages, name to version.
    pub packages: Vec<(String, String)>,
    /// Its containers, name to image.
    pub containers: Vec<(String, String)>,
    /// Its failed health checks in a row, counted after the grace period.
    pub failed_checks: u32,
    /// What is wrong with it (`stopped`, `gone`, …); `null` when nothing is.
    pub problem: Option<String>,
    /// Where it differs from its record, one line each (`image: recorded X, runs Y`).
    pub drift: Vec<String>,
    /// Since when it has been as seen.
    pub since: String,
}

impl From<&rollscale_core::health::Observed> for ObservedView {
    fn from(observed: &rollscale_core::health::Observed) -> Self {
        ObservedView {
            exists: observed.exists,
            running: observed.running,
            image_id: observed.image_id.clone(),
            packages: observed.packages.clone(),
            containers: observed.containers.clone(),
            failed_checks: observed.failed_checks,
            problem: observed.problem.clone(),
            drift: observed.drift.clone(),
            since: time(observed.since),
        }
    }
}

impl From<&Instance> for InstanceView {
    fn from(instance: &Instance) -> Self {
        InstanceView {
            id: instance.id.to_string(),
            scaling_group_id: instance.group_id.to_string(),
            lifecycle_state: instance.lifecycle_state.to_string(),
            health_status: instance.health_status.to_string(),
            creation_type: instance.creation_type.to_string(),
            image_id: instance.image_id.clone(),
            packages: instance.packages.clone(),
            containers: instance.containers.iter().map(Container::from).collect(),
            tags: instance.tags.clone(),
            address: instance.address.clone(),
            load_balancer_weight: None,
            created_at: time(instance.created_at),
            observed_at: time_opt(instance.observed_at.or(instance.observed.as_ref().map(|o| o.since))),
            observed: instance.observed.as_ref().map(ObservedView::from),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct LoadBalancerView {
    pub id: String,
    pub name: String,
    pub default_weight: u32,
}

impl From<&LoadBalancer> for LoadBalancerView {
    fn from(lb: &LoadBalancer) -> Self {
        LoadBalancerView { id: lb.id.to_string(), name: lb.name.clone(), default_weight: lb.default_weight }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewLoadBalancer {
    pub name: String,
    /// Weight of a newly registered instance, 0 to 100 (default 100).
    #[serde(default)]
    pub default_weight: Option<u32>,
}

/// Weights of some of a load balancer's backend servers (SLB's `SetBackendServers`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackendServers {
    pub backend_servers: Vec<BackendServerWeight>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackendServerWeight {
    /// An InService (or Protected) instance registered with the load balancer (`i-…`).
    pub instance_id: String,
    /// 0 to 100. An instance in Standby keeps the weight it gets back; it cannot be set.
    pub weight: u32,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct ImageView {
    pub id: String,
    pub name: String,
    /// `system` or `custom`.
    pub kind: String,
    /// `linux` or `windows`.
    pub os: String,
    pub created_at: String,
}

impl From<&Image> for ImageView {
    fn from(image: &Image) -> Self {
        ImageView {
            id: image.id.clone(),
            name: image.name.clone(),
            kind: image.kind.clone(),
            os: image.os.to_string(),
            created_at: time(image.created_at),
        }
    }
}

/// Either `id` (an existing image, added to the catalog) or `instance_id` (an image made from
/// that instance, e.g. a commit of its container; `name` defaults to
/// `from_<instance id>_at_<UTC time>` and the fleet chooses the id).
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewImage {
    #[serde(default)]
    pub id: Option<String>,
    /// Make the image from this instance.
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// `linux` or `windows`; default: guessed from the id.
    #[serde(default)]
    pub os: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct PackageView {
    pub name: String,
    pub version: String,
    pub install_script: String,
    pub uninstall_script: String,
}

impl From<&PackageVersion> for PackageView {
    fn from(package: &PackageVersion) -> Self {
        PackageView {
            name: package.name.clone(),
            version: package.version.clone(),
            install_script: package.install_script.clone(),
            uninstall_script: package.uninstall_script.clone(),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewPackage {
    pub name: String,
    pub version: String,
    pub install_script: String,
    #[serde(default)]
    pub uninstall_script: String,
}

/// How many of a rolling update's instances are in each state.
#[derive(Serialize, Deserialize, JsonSchema, Debug, PartialEq, Eq, Clone, Default)]
pub struct Counters {
    pub total: u32,
    pub queued: u32,
    pub running: u32,
    pub success: u32,
    pub skipped: u32,
    pub failed: u32,
    pub cancelled: u32,
    /// Not run because the task was cancelled.
    pub aborted: u32,
}

impl From<&StatusCounts> for Counters {
    fn from(counts: &StatusCounts) -> Counters {
        Counters {
            total: counts.total(),
            queued: counts.queued,
            running: counts.running,
            success: counts.success,
            skipped: counts.skipped,
            failed: counts.failed,
            cancelled: counts.cancelled,
            aborted: counts.aborted,
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug, PartialEq, Clone)]
pub struct RollingUpdateView {
    /// The execution id (`exec-…`), the same as the RPC API's.
    pub id: String,
    /// `ACS-ESS-RollingUpdateBy…`.
    pub template_name: String,
    /// `ImageUpdate`, `ScriptExecution`, `PackageInstall` or `ContainerGroupUpdate`.
    pub kind: String,
    /// `invoke` or `rollback`.
    pub invoke_type: String,
    pub scaling_group_id: String,
    /// `Running`, `Waiting`, `Success`, `Failed` or `Cancelled`.
    pub status: String,
    /// When Waiting: `BatchPaused` or `FailurePaused`.
    pub waiting_status: Option<String>,
    pub status_message: String,
    /// 1-based; 0 before the first batch starts.
    pub current_batch: u32,
    pub batch_count: u32,
    pub batch_sizes: Vec<u32>,
    pub counters: Counters,
    /// Whether the task is Success, Failed or Cancelled.
    pub finished: bool,
    /// The template parameters, with defaults filled in.
    pub parameters: Value,
    pub created_at: String,
    pub ended_at: Option<String>,
}

impl RollingUpdateView {
    pub fn new(task: &TaskState, counts: &StatusCounts) -> Self {
        let current_batch = match &task.phase {
            Phase::Begin => 0,
            Phase::Batch { index, .. } => (index + 1).min(task.n_batches()),
            Phase::Finish(_) | Phase::Done => task.n_batches(),
        };
        RollingUpdateView {
            id: task.id.to_string(),
            template_name: task.spec.kind.template_name().to_string(),
            kind: format!("{:?}", task.spec.kind),
            invoke_type: task.spec.invoke_type.to_string(),
            scaling_group_id: task.spec.group_id.to_string(),
            status: task.status.to_string(),
            waiting_status: task.waiting.map(|waiting| waiting.to_string()),
            status_message: task.status_message.clone(),
            current_batch,
            batch_count: task.n_batches(),
            batch_sizes: task.batch_sizes.clone(),
            counters: Counters::from(counts),
            finished: task.status.is_final(),
            parameters: render::spec_parameters(&task.spec),
            created_at: time(task.created_at),
            ended_at: time_opt(task.ended_at),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct RollingUpdateInstanceView {
    /// The instance's child execution (`exec-…`).
    pub execution_id: String,
    pub instance_id: String,
    /// 1-based.
    pub batch: u32,
    /// `Queued`, `Running`, `Success`, `Skipped`, `Failed`, `Cancelled` or `Aborted`.
    pub status: String,
    /// The step running now, or the one that failed.
    pub step: String,
    pub attempt: u32,
    /// Whether the change was applied to the instance (a rollback of this task targets it).
    pub applied: bool,
    /// Whether this task put the instance in Standby and it is still there: a failed,
    /// skipped or cancelled instance, or one in flight when the task was cancelled.
    pub in_standby: bool,
    pub exit_code: Option<i32>,
    /// Script output (stdout and stderr), capped.
    pub output: String,
    pub output_truncated: bool,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
}

impl From<&InstanceWork> for RollingUpdateInstanceView {
    fn from(work: &InstanceWork) -> Self {
        RollingUpdateInstanceView {
            execution_id: work.execution_id.to_string(),
            instance_id: work.instance_id.to_string(),
            batch: work.batch + 1,
            status: work.status.to_string(),
            step: work.step.to_string(),
            attempt: work.attempt,
            applied: work.applied,
            in_standby: work.in_standby,
            exit_code: work.exit_code,
            output: work.output.clone(),
            output_truncated: work.output_truncated,
            error_code: work.error_code.clone(),
            error_message: work.error_message.clone(),
            started_at: time_opt(work.started_at),
            ended_at: time_opt(work.ended_at),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewRollingUpdate {
    /// One of the four `ACS-ESS-RollingUpdateBy…` template names.
    pub template_name: String,
    /// The template's parameters, as OOS `StartExecution` takes them (`invokeType`,
    /// `scalingGroupId`, `imageId`, `batchNumber`, …).
    pub parameters: Value,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct CancelRollingUpdate {
    /// Take the current batch out of Standby and resume the processes, as a success would.
    #[serde(default)]
    pub restore: bool,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RollbackRollingUpdate {
    /// Parameters overriding the rollback's defaults (e.g. `imageId`, `batchNumber`).
    #[serde(default)]
    pub parameters: Option<Value>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct ActivityView {
    pub id: String,
    pub scaling_group_id: String,
    pub description: String,
    pub cause: String,
    pub status: String,
    pub status_message: String,
    pub instance_ids: Vec<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

impl From<&ScalingActivity> for ActivityView {
    fn from(activity: &ScalingActivity) -> Self {
        ActivityView {
            id: activity.id.to_string(),
            scaling_group_id: activity.group_id.to_string(),
            description: activity.description.clone(),
            cause: activity.cause.clone(),
            status: activity.status.to_string(),
            status_message: activity.status_message.clone(),
            instance_ids: activity.instance_ids.iter().map(ToString::to_string).collect(),
            started_at: time(activity.started_at),
            ended_at: time_opt(activity.ended_at),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct EventView {
    pub id: String,
    /// The template name of the task that raised it, or `ESS-HealthCheck` for the group's
    /// health check.
    pub name: String,
    /// `Info`, `Warn` or `Critical`.
    pub level: String,
    pub kind: String,
    pub scaling_group_id: String,
    /// The task that raised it; `null` for the group's own events (its health check's).
    pub execution_id: Option<String>,
    pub content: String,
    pub created_at: String,
}

impl From<&Event> for EventView {
    fn from(event: &Event) -> Self {
        EventView {
            id: event.id.clone(),
            name: event.name.clone(),
            level: event.level.to_string(),
            kind: event.kind.to_string(),
            scaling_group_id: event.group_id.to_string(),
            execution_id: event.execution_id.as_ref().map(ToString::to_string),
            content: event.content.clone(),
            created_at: time(event.created_at),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct LaunchTemplateView {
    pub id: String,
    pub name: String,
    pub default_version: u32,
    pub latest_version: u32,
    pub created_at: String,
}

impl From<&LaunchTemplate> for LaunchTemplateView {
    fn from(template: &LaunchTemplate) -> Self {
        LaunchTemplateView {
            id: template.id.to_string(),
            name: template.name.clone(),
            default_version: template.default_version,
            latest_version: template.latest_version,
            created_at: time(template.created_at),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct LaunchTemplateVersionView {
    pub launch_template_id: String,
    pub version: u32,
    pub image_id: String,
    pub instance_type: String,
    pub containers: Vec<Container>,
    pub description: String,
    pub created_at: String,
}

impl From<&LaunchTemplateVersion> for LaunchTemplateVersionView {
    fn from(version: &LaunchTemplateVersion) -> Self {
        LaunchTemplateVersionView {
            launch_template_id: version.template_id.to_string(),
            version: version.version,
            image_id: version.image_id.clone(),
            instance_type: version.instance_type.clone(),
            containers: version.containers.iter().map(Container::from).collect(),
            description: version.description.clone(),
            created_at: time(version.created_at),
        }
    }
}

/// A launch template's version content.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewLaunchTemplateVersion {
    pub image_id: String,
    #[serde(default)]
    pub instance_type: Option<String>,
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default)]
    pub description: Option<String>,
    /// Make it the default version (a new template's first version always is).
    #[serde(default)]
    pub make_default: bool,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewLaunchTemplate {
    pub name: String,
    /// Its version 1.
    pub version: NewLaunchTemplateVersion,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct LaunchTemplateChanges {
    pub default_version: u32,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub comments: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&rollscale_core::access::User> for UserView {
    fn from(user: &rollscale_core::access::User) -> Self {
        UserView {
            id: user.id.clone(),
            name: user.name.clone(),
            display_name: user.display_name.clone(),
            comments: user.comments.clone(),
            created_at: time(user.created_at),
            updated_at: time(user.updated_at),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub comments: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct AccessKeyView {
    pub id: String,
    pub user_name: String,
    /// `Active` or `Inactive`.
    pub status: String,
    /// Only in the answer to its creation: shown once, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: String,
}

impl AccessKeyView {
    pub fn new(key: &rollscale_core::domain::AccessKey, with_secret: bool) -> Self {
        AccessKeyView {
            id: key.id.clone(),
            user_name: key.user_name.clone(),
            status: key.status.to_string(),
            secret: with_secret.then(|| key.secret.clone()),
            created_at: time(key.created_at),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyChange {
    /// `Active` or `Inactive`.
    pub status: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct PolicyView {
    pub name: String,
    /// `System` or `Custom`.
    pub policy_type: String,
    pub description: String,
    /// The RAM policy document.
    pub document: Value,
    pub attachment_count: i64,
    pub created_at: String,
}

impl PolicyView {
    pub fn new(policy: &rollscale_core::access::Policy, attachment_count: i64) -> Self {
        PolicyView {
            name: policy.name.clone(),
            policy_type: policy.policy_type.to_string(),
            description: policy.description.clone(),
            document: serde_json::from_str(&policy.document).unwrap_or(Value::String(policy.document.clone())),
            attachment_count,
            created_at: time(policy.created_at),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    pub name: String,
    /// `{"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["ess:Describe*"], "Resource": "*"}]}`
    pub document: Value,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct PolicyAttachment {
    /// `System` or `Custom`.
    pub policy_type: String,
    pub policy_name: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct AuditEventView {
    pub id: String,
    pub at: String,
    pub user_name: String,
    pub access_key_id: String,
    pub action: String,
    pub resource: String,
    pub source_ip: String,
    pub result_code: String,
    pub http_status: u16,
    pub request_id: String,
    pub request: Value,
}

impl From<&rollscale_core::access::AuditEvent> for AuditEventView {
    fn from(event: &rollscale_core::access::AuditEvent) -> Self {
        AuditEventView {
            id: event.id.clone(),
            at: time(event.at),
            user_name: event.user_name.clone(),
            access_key_id: event.access_key_id.clone(),
            action: event.action.clone(),
            resource: event.resource.clone(),
            source_ip: event.source_ip.clone(),
            result_code: event.result_code.clone(),
            http_status: event.http_status,
            request_id: event.request_id.clone(),
            request: event.request.clone(),
        }
    }
}

/// A bearer token made from an AccessKey (see `rollscale token`).
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct Token {
    pub token: String,
    pub expires_at: String,
    /// The AccessKey it was made from, and that key's user: who calls with it.
    pub access_key_id: String,
    pub user_name: String,
}

/// An image update task (`ACS-ESS-CreateImageAndUpdateScalingConfiguration`), or one firing of
/// a scheduled one.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone)]
pub struct ImageUpdateTaskView {
    /// The execution id (`exec-…`), the same as the RPC API's.
    pub id: String,
    /// The scheduled task a firing belongs to.
    pub parent_id: Option<String>,
    /// `Running`, `Waiting` (between firings), `Success`, `Failed` or `Cancelled`.
    pub status: String,
    pub status_message: String,
    pub instance_id: String,
    pub target_image_name: String,
    pub scaling_configuration_ids: Vec<String>,
    /// The groups of those configurations.
    pub scaling_group_ids: Vec<String>,
    /// The timer trigger as given (`Type`, `Expression`, `TimeZone`, `StartDate`, `EndDate`);
    /// none for a task that runs now.
    pub timer_trigger: Option<Value>,
    /// `now`, or the trigger in words (`rate 1 day until …`).
    pub schedule: String,
    pub assume_role: String,
    /// Tags for the image, kept on the task.
    pub tags: Vec<ImageTagView>,
    /// A scheduled task's next firing; none once no firing is left.
    pub next_firing_at: Option<String>,
    /// How many firings a scheduled task has started.
    pub firing_count: u32,
    /// A firing's image: its full name, and its id once made.
    pub image_name: Option<String>,
    pub image_id: Option<String>,
    /// A firing's time.
    pub fired_at: Option<String>,
    pub finished: bool,
    pub created_at: String,
    pub ended_at: Option<String>,
    /// A scheduled task's firings (child executions), oldest first; only on `GET …/{id}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub firings: Vec<ImageUpdateTaskView>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone)]
pub struct ImageTagView {
    pub key: String,
    pub value: String,
}

impl ImageUpdateTaskView {
    pub fn new(execution: &ImageUpdateExecution, firings: &[ImageUpdateExecution]) -> Self {
        let spec = &execution.spec;
        let firing = execution.firing.as_ref();
        ImageUpdateTaskView {
            id: execution.id.to_string(),
            parent_id: execution.parent_id.as_ref().map(|id| id.to_string()),
            status: execution.status.to_string(),
            status_message: execution.status_message.clone(),
            instance_id: spec.instance_id.to_string(),
            target_image_name: spec.target_image_name.clone(),
            scaling_configuration_ids: spec.configuration_ids.iter().map(|id| id.to_string()).collect(),
            scaling_group_ids: spec.group_ids.iter().map(|id| id.to_string()).collect(),
            timer_trigger: spec.trigger.as_ref().and_then(|trigger| serde_json::to_value(trigger).ok()),
            schedule: rollscale_engine::image_tasks::trigger_text(execution),
            assume_role: spec.assume_role.clone(),
            tags: spec.tags.iter().map(|tag| ImageTagView { key: tag.key.clone(), value: tag.value.clone() }).collect(),
            next_firing_at: execution.schedule.as_ref().and_then(|s| time_opt(s.next_fire_at)),
            firing_count: execution.schedule.as_ref().map_or(0, |s| s.firings),
            image_name: firing.map(|f| f.image_name.clone()),
            image_id: firing
                .and_then(|f| f.image_id.clone())
                .or_else(|| execution.schedule.as_ref().and_then(|s| s.last_image_id.clone())),
            fired_at: firing.map(|f| time(f.fired_at)),
            finished: execution.status.is_final(),
            created_at: time(execution.created_at),
            ended_at: time_opt(execution.ended_at),
            firings: firings.iter().map(|child| ImageUpdateTaskView::new(child, &[])).collect(),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct NewImageUpdateTask {
    /// The template's parameters, as OOS `StartExecution` takes them: `instanceId`,
    /// `scalingConfigurationIds`, and optionally `targetImageName`, `tags`, `OOSAssumeRole`,
    /// `timerTrigger` (`{"Type": "at"|"rate"|"cron", "Expression": …, "EndDate": …}`).
    pub parameters: Value,
}

/// An alert rule's pattern: an empty list takes any value.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertPatternBody {
    /// Template names (`ACS-ESS-RollingUpdateBy…`).
    #[serde(default)]
    pub names: Vec<String>,
    /// Event kinds: `Started`, `BatchDone`, `Paused`, `InstanceFailed`, `Succeeded`,
    /// `Cancelled`, `Failed`.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// `CRITICAL`, `WARN`, `INFO`.
    #[serde(default)]
    pub levels: Vec<String>,
    /// Words that must occur in the event.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// `and` (every keyword) or `or` (any; the default).
    #[serde(default)]
    pub relation: Option<String>,
}

/// `PUT /v1/alert-rules/{name}`: a new rule, or new patterns for one (its webhooks are kept).
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleBody {
    #[serde(default)]
    pub description: Option<String>,
    /// Unset: enabled for a new rule, unchanged for one that exists.
    #[serde(default)]
    pub enabled: Option<bool>,
    pub patterns: Vec<AlertPatternBody>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleState {
    /// `enable` or `disable`.
    pub action: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// `http://…`.
    pub url: String,
    /// `POST` (the default: the event as JSON) or `GET` (as query parameters).
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub method: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct AlertRuleView {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub patterns: Vec<AlertPatternBody>,
    pub webhooks: Vec<WebhookView>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&rollscale_core::alert::AlertRule> for AlertRuleView {
    fn from(rule: &rollscale_core::alert::AlertRule) -> Self {
        use rollscale_core::alert::{level_name, Relation};
        AlertRuleView {
            name: rule.name.clone(),
            description: rule.description.clone(),
            enabled: rule.enabled,
            patterns: rule
                .patterns
                .iter()
                .map(|pattern| AlertPatternBody {
                    names: pattern.names.clone(),
                    kinds: pattern.kinds.clone(),
                    levels: pattern.levels.iter().map(|level| level_name(*level).to_string()).collect(),
                    keywords: pattern.keywords.as_ref().map(|k| k.keywords.clone()).unwrap_or_default(),
                    relation: pattern.keywords.as_ref().map(|k| {
                        match k.relation {
                            Relation::And => "and",
                            Relation::Or => "or",
                        }
                        .to_string()
                    }),
                })
                .collect(),
            webhooks: rule
                .webhooks
                .iter()
                .map(|w| WebhookView { id: w.id.clone(), url: w.url.clone(), method: w.method.as_str().to_string() })
                .collect(),
            created_at: time(rule.created_at),
            updated_at: time(rule.updated_at),
        }
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
pub struct DeliveryView {
    /// `<rule>/<webhook>/<event>`; the webhook gets it as `X-Rollscale-Delivery`.
    pub id: String,
    pub rule_name: String,
    pub webhook_id: String,
    pub url: String,
    pub method: String,
    /// `Pending`, `Delivered` or `Failed`.
    pub status: String,
    pub attempts: u32,
    /// When a Pending delivery is tried next.
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub event: EventView,
}

impl From<&rollscale_core::alert::Delivery> for DeliveryView {
    fn from(delivery: &rollscale_core::alert::Delivery) -> Self {
        use rollscale_core::alert::DeliveryStatus;
        DeliveryView {
            id: delivery.id.clone(),
            rule_name: delivery.rule_name.clone(),
            webhook_id: delivery.webhook_id.clone(),
            url: delivery.url.clone(),
            method: delivery.method.as_str().to_string(),
            status: delivery.status.as_str().to_string(),
            attempts: delivery.attempts,
            next_attempt_at: (delivery.status == DeliveryStatus::Pending).then(|| time(delivery.next_attempt_at)),
            last_error: delivery.last_error.clone(),
            created_at: time(delivery.created_at),
            delivered_at: time_opt(delivery.delivered_at),
            event: EventView::from(&delivery.event),
        }
    }
}
