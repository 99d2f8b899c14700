//! The Auto Scaling domain: scaling groups, configurations, instances, load balancers,
//! images and packages, as plain data.

use crate::ids::*;
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC. Time is always handed in; core never reads a clock.
pub type Millis = i64;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident $(= $wire:literal)?),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name { $( $(#[serde(rename = $wire)])? $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name as it appears on the wire and in the seeds.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $crate::domain::wire_name!($variant $(, $wire)?)),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ();
            fn from_str(text: &str) -> Result<Self, ()> {
                $name::ALL.iter().copied().find(|value| value.as_str() == text).ok_or(())
            }
        }
    };
}

macro_rules! wire_name {
    ($variant:ident) => {
        stringify!($variant)
    };
    ($variant:ident, $wire:literal) => {
        $wire
    };
}
pub(crate) use wire_enum;
pub(crate) use wire_name;

wire_enum!(
    /// The five scaling processes of a group, each active or suspended.
    Process { ScaleIn, ScaleOut, HealthCheck, AlarmNotification, ScheduledAction }
);

wire_enum!(
    /// An instance's lifecycle state in its scaling group.
    LifecycleState { Pending, InService, Standby, Protected, Removing }
);

wire_enum!(
    /// Health as the group's health check sees it.
    HealthStatus { Healthy, Unhealthy }
);

wire_enum!(
    /// What a group's health check judges an instance by (ESS `HealthCheckType(s)`): `ECS`,
    /// whether it runs and answers its own health check; `LOAD_BALANCER`, the attached load
    /// balancers' checks of it; `NONE`, nothing (instances are still observed and shown).
    HealthCheckType { ECS, LoadBalancer = "LOAD_BALANCER", NONE }
);

impl HealthCheckType {
    /// Reads a wire value; `LOADBALANCER`, the older spelling, is taken too.
    pub fn parse(text: &str) -> Option<HealthCheckType> {
        match text {
            "LOADBALANCER" => Some(HealthCheckType::LoadBalancer),
            other => other.parse().ok(),
        }
    }
}

/// The health check types of a group made without any: ESS's default.
pub fn default_health_check_types() -> Vec<HealthCheckType> {
    vec![HealthCheckType::ECS]
}

wire_enum!(
    /// How an instance came into the group.
    CreationType { AutoCreated, Attached }
);

wire_enum!(
    /// What a group's instances are: VMs (`ECS`) or container groups (`ECI`).
    GroupType { ECS, ECI }
);

wire_enum!(
    /// A scaling group's own state.
    GroupStatus { Active, Inactive, Deleting }
);

wire_enum!(
    /// A scaling configuration is `Active` (the one new instances are made from) or not.
    ConfigurationState { Active, Inactive }
);

/// Where a group's new instances get their image and spec from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceSource {
    Configuration(ScalingConfigurationId),
    LaunchTemplate { id: LaunchTemplateId, version: TemplateVersion },
    None,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingGroup {
    pub id: ScalingGroupId,
    pub name: String,
    pub region_id: String,
    pub group_type: GroupType,
    pub status: GroupStatus,
    pub min_size: u32,
    pub max_size: u32,
    pub desired_capacity: u32,
    pub source: InstanceSource,
    pub load_balancer_ids: Vec<LoadBalancerId>,
    pub suspended_processes: Vec<Process>,
    /// Default drain wait in seconds when an instance enters Standby behind a load balancer.
    pub drain_timeout_s: u32,
    /// What the health check judges instances by (R17); `[ECS]` by default.
    #[serde(default = "default_health_check_types")]
    pub health_check_types: Vec<HealthCheckType>,
    /// Seconds after an instance is made or changed during which a failing health check is
    /// not counted against it (a stopped or vanished instance is judged at once).
    #[serde(default)]
    pub health_check_grace_period_s: u32,
    pub created_at: Millis,
}

impl ScalingGroup {
    pub fn is_suspended(&self, process: Process) -> bool {
        self.suspended_processes.contains(&process)
    }
}

/// One container of an instance (ECS-type instances have one, ECI container groups several).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub env: Vec<(String, String)>,
    #[serde(default)]
    pub port: Option<u16>,
}

/// A container-group `IncrementalUpdate`: a given container whose name is known replaces the
/// fields it gives (an empty image, command or env, or no port, is "not given") and keeps the
/// others; a new name is appended, in the order given. Every driver changes containers by this.
pub fn merge_containers(current: &[ContainerSpec], given: &[ContainerSpec]) -> Vec<ContainerSpec> {
    let mut merged = current.to_vec();
    for update in given {
        match merged.iter_mut().find(|container| container.name == update.name) {
            Some(container) => {
                if !update.image.is_empty() {
                    container.image.clone_from(&update.image);
                }
                if !update.command.is_empty() {
                    container.command.clone_from(&update.command);
                }
                if !update.env.is_empty() {
                    container.env.clone_from(&update.env);
                }
                if update.port.is_some() {
                    container.port = update.port;
                }
            }
            None => merged.push(update.clone()),
        }
    }
    merged
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingConfiguration {
    pub id: ScalingConfigurationId,
    pub group_id: ScalingGroupId,
    pub name: String,
    pub image_id: String,
    pub instance_type: String,
    pub state: ConfigurationState,
    /// For container backends: the command, environment and port of the instance.
    pub containers: Vec<ContainerSpec>,
    pub created_at: Millis,
}

/// Which version of a launch template a group uses: the template's default one, its latest
/// one (both followed as they change), or a fixed number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TemplateVersion {
    Default,
    Latest,
    Number(u32),
}

impl TemplateVersion {
    /// `Default`, `Latest` or a version number from 1.
    pub fn parse(text: &str) -> Option<TemplateVersion> {
        match text {
            "Default" => Some(TemplateVersion::Default),
            "Latest" => Some(TemplateVersion::Latest),
            number => number.parse().ok().filter(|n| *n >= 1).map(TemplateVersion::Number),
        }
    }

    /// The version number this names in `template`.
    pub fn resolve(self, template: &LaunchTemplate) -> u32 {
        match self {
            TemplateVersion::Default => template.default_version,
            TemplateVersion::Latest => template.latest_version,
            TemplateVersion::Number(number) => number,
        }
    }
}

impl std::fmt::Display for TemplateVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateVersion::Default => f.write_str("Default"),
            TemplateVersion::Latest => f.write_str("Latest"),
            TemplateVersion::Number(number) => write!(f, "{number}"),
        }
    }
}

/// A launch template: named, with numbered versions (1 is made with it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchTemplate {
    pub id: LaunchTemplateId,
    pub name: String,
    pub default_version: u32,
    pub latest_version: u32,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchTemplateVersion {
    pub template_id: LaunchTemplateId,
    pub version: u32,
    pub image_id: String,
    pub instance_type: String,
    /// For container backends, as a scaling configuration's.
    #[serde(default)]
    pub containers: Vec<ContainerSpec>,
    #[serde(default)]
    pub description: String,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: InstanceId,
    pub group_id: ScalingGroupId,
    pub lifecycle_state: LifecycleState,
    pub health_status: HealthStatus,
    pub creation_type: CreationType,
    pub image_id: String,
    /// Installed packages: (name, version).
    pub packages: Vec<(String, String)>,
    /// For ECI container groups: the current containers.
    pub containers: Vec<ContainerSpec>,
    /// Execution ids of the rolling updates that changed this instance (R11 tags).
    pub tags: Vec<String>,
    /// Where the instance serves, for load balancers (`host:port`); empty when none.
    pub address: String,
    pub created_at: Millis,
    /// When a change was last applied to it (a rolling update's step): its health check's
    /// grace period runs from here or from its creation, whichever is later.
    #[serde(default)]
    pub changed_at: Option<Millis>,
    /// What the health checker last saw of it (R16), kept apart from the record above, which is
    /// what rollscale made it; `None` until it was first looked at.
    #[serde(default)]
    pub observed: Option<crate::health::Observed>,
    /// When it was last looked at: the store's `observed_at` column, which each health check
    /// pass sets for the instances it looked at without writing their record (so not part of
    /// the record's body).
    #[serde(skip)]
    pub observed_at: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub id: LoadBalancerId,
    pub name: String,
    /// Weight given to a backend when it is registered.
    pub default_weight: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    pub load_balancer_id: LoadBalancerId,
    pub instance_id: InstanceId,
    pub weight: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    /// `system` for the catalog's public images, `custom` for images made from instances.
    pub kind: String,
    pub os: OsType,
    pub created_at: Millis,
}

wire_enum!(
    /// The family of an image's operating system: which script types its instances run.
    OsType { Linux = "linux", Windows = "windows" }
);

impl OsType {
    /// A guess from the image id when the catalog does not say: Windows images carry `win`.
    pub fn guess(image_id: &str) -> OsType {
        if image_id.to_ascii_lowercase().contains("win") {
            OsType::Windows
        } else {
            OsType::Linux
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageVersion {
    pub name: String,
    pub version: String,
    pub install_script: String,
    pub uninstall_script: String,
    pub created_at: Millis,
}

wire_enum!(
    /// How serious an event is (R15).
    EventLevel { Info, Warn, Critical }
);

/// The name of the events a group's health check raises (R16, R17): `InstanceUnhealthy`,
/// `InstanceHealthy`, `InstanceDrift`, `InstanceReplaced`.
pub const HEALTH_CHECK_EVENT: &str = "ESS-HealthCheck";

wire_enum!(
    /// What an event says happened, by its wire name. A rolling update raises `Started`,
    /// `BatchDone`, `Paused`, `InstanceFailed`, `Succeeded`, `Cancelled` and `Failed` (R15); an
    /// image update task `Started`, `Fired`, `ImageCreated`, `ConfigurationsUpdated`,
    /// `Succeeded`, `Cancelled` and `Failed`; a group's health check `InstanceUnhealthy`,
    /// `InstanceHealthy`, `InstanceDrift` and `InstanceReplaced` (R16, R17).
    EventKind {
        Started,
        BatchDone,
        Paused,
        InstanceFailed,
        Succeeded,
        Cancelled,
        Failed,
        Fired,
        ImageCreated,
        ConfigurationsUpdated,
        InstanceUnhealthy,
        InstanceHealthy,
        InstanceDrift,
        InstanceReplaced,
    }
);

/// A kind equals its wire name (`event.kind == "InstanceFailed"`).
impl PartialEq<&str> for EventKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A system event of a rolling update (R15): named by the template, carrying the group and
/// the execution, searchable by keywords.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    /// The template name of the task that raised it, or [`HEALTH_CHECK_EVENT`].
    pub name: String,
    pub level: EventLevel,
    /// What happened; stored and sent as its wire name, so rows written when it was a string
    /// read back as they were.
    pub kind: EventKind,
    pub group_id: ScalingGroupId,
    /// The task that raised it; `None` for the group's own events (its health check's).
    pub execution_id: Option<ExecutionId>,
    pub content: String,
    pub created_at: Millis,
}

impl Event {
    /// What a keyword matches against, lower-cased: the event's name, kind, level, scaling
    /// group id, execution id and content (keyword search and alert rules alike, R15).
    pub fn search_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.name,
            self.kind,
            self.level,
            self.group_id,
            self.execution_id.as_ref().map_or("", |id| id.as_str()),
            self.content
        )
        .to_lowercase()
    }
}

wire_enum!(
    /// A scaling activity's status.
    ActivityStatus { InProgress, Successful, Failed, Rejected }
);

/// A change of a group's membership or of its instances' states: scale-out, scale-in,
/// EnterStandby, ExitStandby.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingActivity {
    pub id: ScalingActivityId,
    pub group_id: ScalingGroupId,
    /// What it does; `None` only in records made before the kind was kept ([`Self::kind`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ActivityKind>,
    /// What it does, in words for people.
    pub description: String,
    pub cause: String,
    pub status: ActivityStatus,
    pub status_message: String,
    pub instance_ids: Vec<InstanceId>,
    pub started_at: Millis,
    pub ended_at: Option<Millis>,
}

wire_enum!(
    /// What a scaling activity does: R3 refuses a rolling update while a scale-out or a
    /// scale-in of its group is in progress.
    ActivityKind { ScaleOut, ScaleIn, EnterStandby, ExitStandby }
);

impl ActivityKind {
    /// Whether it changes how many instances the group has.
    pub fn is_scaling(self) -> bool {
        matches!(self, ActivityKind::ScaleOut | ActivityKind::ScaleIn)
    }
}

impl ScalingActivity {
    /// What the activity does. Records made before the kind was kept say it only in their
    /// description, whose first words were always the kind's.
    pub fn kind(&self) -> ActivityKind {
        self.kind.unwrap_or_else(|| {
            let description = self.description.to_ascii_lowercase();
            if description.starts_with("scale out") {
                ActivityKind::ScaleOut
            } else if description.starts_with("scale in") {
                ActivityKind::ScaleIn
            } else if description.starts_with("move instances out of standby") {
                ActivityKind::ExitStandby
            } else {
                ActivityKind::EnterStandby
            }
        })
    }
}

wire_enum!(
    /// An AccessKey is usable while Active.
    AccessKeyStatus { Active, Inactive }
);

/// An AccessKey pair. The secret is only shown when created.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub user_name: String,
    pub status: AccessKeyStatus,
    pub created_at: Millis,
    /// When the key was last disabled (0: never): a bearer token whose session began at or
    /// before it is refused, also once the key is enabled again.
    #[serde(default)]
    pub tokens_not_before: Millis,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("user_name", &self.user_name)
            .field("status", &self.status)
            .field("tokens_not_before", &self.tokens_not_before)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_activity_keeps_its_kind_and_an_old_record_gives_it_by_its_description() {
        let activity = ScalingActivity {
            id: ScalingActivityId::from_random(1),
            group_id: ScalingGroupId::from_random(2),
            kind: Some(ActivityKind::ScaleIn),
            description: "Scale out, as a misleading description".into(),
            cause: String::new(),
            status: ActivityStatus::InProgress,
            status_message: String::new(),
            instance_ids: Vec::new(),
            started_at: 0,
            ended_at: None,
        };
        assert_eq!(activity.kind(), ActivityKind::ScaleIn, "the kept kind wins over the words");
        let stored = serde_json::to_value(&activity).unwrap();
        assert_eq!(stored["kind"], "ScaleIn");

        // A record written before the kind was kept.
        let mut old = stored.clone();
        old.as_object_mut().unwrap().remove("kind");
        for (description, kind) in [
            ("Scale out: add 2 instance(s)", ActivityKind::ScaleOut),
            ("Scale in: remove the unhealthy instance i-1; a new instance replaces it", ActivityKind::ScaleIn),
            ("Scale in", ActivityKind::ScaleIn),
            ("Put instances into Standby", ActivityKind::EnterStandby),
            ("Move instances out of Standby", ActivityKind::ExitStandby),
        ] {
            old["description"] = description.into();
            let read: ScalingActivity = serde_json::from_value(old.clone()).unwrap();
            assert_eq!((read.kind, read.kind()), (None, kind), "{description}");
        }
        assert!(ActivityKind::ScaleOut.is_scaling() && !ActivityKind::EnterStandby.is_scaling());
    }
}
