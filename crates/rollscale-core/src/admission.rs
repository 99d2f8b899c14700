//! Whether a rolling update may start (R3), what a rollback targets (R12) and the rollback an
//! install defaults to (R12), as rules over what the engine found: the engine reads the group,
//! its tasks, its activities, the configuration and the catalog, asks these functions, and
//! performs what they decide.
//!
//! R3's checks run in this order, each only once the ones before it passed (the engine looks
//! up a fact only when the check that needs it is reached): [`admit_group`] before the request
//! is resolved against a rollback's source (`params::resolve`), then [`admit_beside`],
//! [`admit_configuration`] and [`admit_change`].

use crate::code::{Class, Code};
use crate::domain::{
    GroupStatus, GroupType, Instance, InstanceSource, LifecycleState, ScalingConfiguration, ScalingGroup,
};
use crate::ids::{ExecutionId, InstanceId, ScalingConfigurationId, ScalingGroupId};
use crate::params::{Change, InvokeType, PackageAction, RollingUpdateSpec};
use crate::task::{InstanceWork, TaskState, TaskStatus};
use std::collections::{HashMap, HashSet};
use thiserror::Error;

/// Why a rolling update may not start (R3). Nothing was changed; [`Refusal::code`] is the code
/// clients see, and [`Refusal::is_not_found`] tells a missing thing from a refused state.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("the scaling group {group} is {status}, not Active")]
    GroupNotActive { group: ScalingGroupId, status: GroupStatus },
    /// `status` is the task's as shown (`Running`, `Waiting (BatchPaused)`).
    #[error("the scaling group {group} already has the rolling update {task} ({status}); one runs at a time")]
    GroupBusy { group: ScalingGroupId, task: ExecutionId, status: String },
    #[error("the scaling group {0} has a scaling activity in progress")]
    ActivityInProgress(ScalingGroupId),
    #[error("the scaling configuration {0} does not exist")]
    ConfigurationNotFound(ScalingConfigurationId),
    #[error("the scaling configuration {configuration} does not belong to {group}")]
    ConfigurationOfAnotherGroup { configuration: ScalingConfigurationId, group: ScalingGroupId },
    #[error("the scaling configuration {configuration} is not the active one of {group}")]
    ConfigurationNotActive { configuration: ScalingConfigurationId, group: ScalingGroupId },
    #[error("the image {0} does not exist; add it with `rollscale ess CreateImage --ImageId {0}`")]
    ImageNotFound(String),
    #[error("the package {name} has no version {version}")]
    PackageVersionNotFound { name: String, version: String },
    #[error("{0} is an ECS group; container-group updates are for ECI groups")]
    ContainersOfEcsGroup(ScalingGroupId),
}

impl Refusal {
    pub fn code(&self) -> Code {
        match self {
            Refusal::GroupNotActive { .. } | Refusal::GroupBusy { .. } => Code::IncorrectScalingGroupStatus,
            Refusal::ActivityInProgress(_) => Code::ScalingActivityInProgress,
            Refusal::ConfigurationNotFound(_) => Code::InvalidScalingConfigurationIdNotFound,
            Refusal::ConfigurationOfAnotherGroup { .. }
            | Refusal::ConfigurationNotActive { .. }
            | Refusal::ContainersOfEcsGroup(_) => Code::InvalidParameter,
            Refusal::ImageNotFound(_) => Code::InvalidImageIdNotFound,
            Refusal::PackageVersionNotFound { .. } => Code::EntityNotExistsPackageVersion,
        }
    }

    /// Whether the request names something that does not exist (rather than something in a
    /// state that refuses it): its code's class says so.
    pub fn is_not_found(&self) -> bool {
        self.code().class() == Class::NotFound
    }
}

/// R3: a rolling update starts only in an Active group.
pub fn admit_group(group: &ScalingGroup) -> Result<(), Refusal> {
    if group.status != GroupStatus::Active {
        return Err(Refusal::GroupNotActive { group: group.id.clone(), status: group.status });
    }
    Ok(())
}

/// R3: one rolling update of a group at a time, and none while a scaling activity is under way.
/// `active_task` is the group's rolling update that is Running or Waiting; `source` the task a
/// rollback rolls back, which may be that one when it is Waiting (the rollback cancels it first).
pub fn admit_beside(
    group: &ScalingGroup,
    active_task: Option<&TaskState>,
    source: Option<&ExecutionId>,
    activity_in_progress: bool,
) -> Result<(), Refusal> {
    if let Some(active) = active_task {
        let is_source = source == Some(&active.id);
        if !is_source || active.status != TaskStatus::Waiting {
            return Err(Refusal::GroupBusy {
                group: group.id.clone(),
                task: active.id.clone(),
                status: active.describe_status(),
            });
        }
    }
    if activity_in_progress {
        return Err(Refusal::ActivityInProgress(group.id.clone()));
    }
    Ok(())
}

/// R3: the scaling configuration the task names exists, belongs to the group and, for an
/// invoke, is the one the group makes instances from (a rollback may name an older one).
/// `configuration` is what the lookup of `spec.configuration_id` found (`None` when it names
/// none or the configuration does not exist).
pub fn admit_configuration(
    group: &ScalingGroup,
    spec: &RollingUpdateSpec,
    configuration: Option<&ScalingConfiguration>,
) -> Result<(), Refusal> {
    let Some(configuration_id) = &spec.configuration_id else { return Ok(()) };
    let Some(configuration) = configuration else {
        return Err(Refusal::ConfigurationNotFound(configuration_id.clone()));
    };
    if configuration.group_id != group.id {
        return Err(Refusal::ConfigurationOfAnotherGroup {
            configuration: configuration_id.clone(),
            group: group.id.clone(),
        });
    }
    if spec.invoke_type == InvokeType::Invoke && group.source != InstanceSource::Configuration(configuration_id.clone())
    {
        return Err(Refusal::ConfigurationNotActive {
            configuration: configuration_id.clone(),
            group: group.id.clone(),
        });
    }
    Ok(())
}

/// R3: the change names things that exist and fits the group: the image or the package
/// version it puts on instances exists, and container-group updates are for ECI groups.
/// `found` is whether the lookup of the change's image (in the catalog or the fleet) or package
/// version found it; the engine looks up only those two, and passes `true` for other changes.
pub fn admit_change(group: &ScalingGroup, spec: &RollingUpdateSpec, found: bool) -> Result<(), Refusal> {
    match &spec.change {
        Change::Image { image_id } if !found => Err(Refusal::ImageNotFound(image_id.clone())),
        Change::Package { name, version, .. } if !found => {
            Err(Refusal::PackageVersionNotFound { name: name.clone(), version: version.clone() })
        }
        Change::ContainerGroup { .. } if group.group_type != GroupType::ECI => {
            Err(Refusal::ContainersOfEcsGroup(group.id.clone()))
        }
        _ => Ok(()),
    }
}

/// Whether an instance's state allows it to be a rollback target: it is still in the group and
/// not on its way out (a cancelled or failed source leaves some in Standby).
pub fn rollback_eligible(state: LifecycleState) -> bool {
    matches!(state, LifecycleState::InService | LifecycleState::Standby | LifecycleState::Protected)
}

/// R12: a rollback's targets are the instances its source changed (`applied`, R16) that still
/// exist in a state a rollback may change ([`rollback_eligible`]), oldest first (ties by id),
/// as R1 orders targets.
pub fn rollback_targets<'a>(
    source_works: impl IntoIterator<Item = &'a InstanceWork>,
    instances: &[Instance],
) -> Vec<InstanceId> {
    let by_id: HashMap<&InstanceId, &Instance> = instances.iter().map(|instance| (&instance.id, instance)).collect();
    let mut changed: Vec<(i64, InstanceId)> = source_works
        .into_iter()
        .filter(|work| work.applied)
        .filter_map(|work| by_id.get(&work.instance_id))
        .filter(|instance| rollback_eligible(instance.lifecycle_state))
        .map(|instance| (instance.created_at, instance.id.clone()))
        .collect();
    changed.sort();
    changed.into_iter().map(|(_, id)| id).collect()
}

/// R12: the rollback a package install defaults to when it gives none: the version of the
/// package most of its targets have now (ties: the lowest version), or an uninstall when none
/// has it. `None` for anything else: another kind, a rollback, or an install that names its
/// rollback.
pub fn default_rollback_change(
    spec: &RollingUpdateSpec,
    instances: &[Instance],
    targets: &[InstanceId],
) -> Option<Change> {
    if spec.invoke_type != InvokeType::Invoke || spec.rollback_change.is_some() {
        return None;
    }
    let Change::Package { name, .. } = &spec.change else { return None };
    Some(previous_package(instances, targets, name))
}

/// The version of the package `name` most of `targets` have (ties: the lowest version), as an
/// install; an uninstall when none has it.
fn previous_package(instances: &[Instance], targets: &[InstanceId], name: &str) -> Change {
    let targets: HashSet<&InstanceId> = targets.iter().collect();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for instance in instances.iter().filter(|i| targets.contains(&i.id)) {
        if let Some((_, version)) = instance.packages.iter().find(|(n, _)| n == name) {
            match counts.iter_mut().find(|(v, _)| v == version) {
                Some((_, count)) => *count += 1,
                None => counts.push((version.clone(), 1)),
            }
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    match counts.into_iter().next() {
        Some((version, _)) => Change::Package { name: name.into(), version, action: PackageAction::Install },
        None => Change::Package { name: name.into(), version: String::new(), action: PackageAction::Uninstall },
    }
}
