//! Scaling groups: create, query, modify, enable, delete, and their suspended processes; the
//! values are checked by `core::group` and `core::health` for every caller.

use super::Service;
use crate::error::group_not_found;
use crate::{now_millis, random_bits, ServiceError};
use rollscale_core::domain::*;
use rollscale_core::ids::*;
use rollscale_core::Code;
use std::future::Future;

/// A new scaling group.
#[derive(Clone, Debug, Default)]
pub struct NewGroup {
    /// Empty: the group is named after its id, as ESS names a group created without a name.
    pub name: String,
    pub region_id: String,
    pub group_type: Option<GroupType>,
    pub min_size: u32,
    pub max_size: u32,
    pub desired_capacity: Option<u32>,
    pub load_balancer_ids: Vec<LoadBalancerId>,
    pub drain_timeout_s: Option<u32>,
    /// Make instances from this launch template version instead of a scaling configuration.
    pub launch_template: Option<(LaunchTemplateId, TemplateVersion)>,
    /// What the health check judges instances by (R17); `[ECS]` when not given.
    pub health_check_types: Option<Vec<HealthCheckType>>,
    pub health_check_grace_period_s: Option<u32>,
}

/// Changes to a scaling group; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub min_size: Option<u32>,
    pub max_size: Option<u32>,
    pub desired_capacity: Option<u32>,
    pub active_configuration_id: Option<ScalingConfigurationId>,
    pub drain_timeout_s: Option<u32>,
    pub health_check_types: Option<Vec<HealthCheckType>>,
    pub health_check_grace_period_s: Option<u32>,
}

impl Service {
    /// `CreateScalingGroup`: its values checked by `core::group` and `core::health` first.
    pub async fn create_group(&self, new: NewGroup) -> Result<ScalingGroup, ServiceError> {
        use rollscale_core::group::{check_drain_timeout, check_group_name, check_name, Sizes};
        let region_id = if new.region_id.is_empty() { "local".to_string() } else { new.region_id };
        let id = ScalingGroupId::from_random(random_bits());
        let name = if new.name.is_empty() { id.to_string() } else { new.name };
        check_group_name(&name)?;
        check_name("RegionId", &region_id)?;
        let sizes = Sizes::new(new.min_size, new.max_size, new.desired_capacity)?;
        let drain_timeout_s = new.drain_timeout_s.map(check_drain_timeout).transpose()?;
        let (health_check_types, health_check_grace_period_s) =
            health_check_settings(new.health_check_types.as_deref(), new.health_check_grace_period_s)?;
        for lb in &new.load_balancer_ids {
            if self.store().lb_get(lb).await?.is_none() {
                return Err(ServiceError::refused(
                    Code::InvalidLoadBalancerIdNotFound,
                    format!("the load balancer {lb} does not exist"),
                ));
            }
        }
        let source = match &new.launch_template {
            Some((id, version)) => {
                self.resolve_template_version(id, *version).await?;
                InstanceSource::LaunchTemplate { id: id.clone(), version: *version }
            }
            None => InstanceSource::None,
        };
        if self.store().group_get_by_name(&name).await?.is_some() {
            return Err(ServiceError::refused(
                Code::ScalingGroupNameDuplicate,
                format!("a scaling group named {name} exists"),
            ));
        }
        let group = ScalingGroup {
            id,
            name,
            region_id,
            group_type: new.group_type.unwrap_or(GroupType::ECS),
            status: GroupStatus::Inactive,
            min_size: sizes.min,
            max_size: sizes.max,
            desired_capacity: sizes.desired,
            source,
            load_balancer_ids: new.load_balancer_ids,
            suspended_processes: Vec::new(),
            drain_timeout_s: drain_timeout_s.unwrap_or(0),
            health_check_types: health_check_types.unwrap_or_else(default_health_check_types),
            health_check_grace_period_s: health_check_grace_period_s.unwrap_or(0),
            created_at: now_millis(),
        };
        self.store().group_insert(&group).await?;
        Ok(group)
    }

    pub async fn group(&self, id: &ScalingGroupId) -> Result<ScalingGroup, ServiceError> {
        Ok(self.store().group_get(id).await?.ok_or_else(|| group_not_found(id))?.value)
    }

    /// The groups, of the ids given (`None`: all) and of the name given.
    pub async fn groups(
        &self,
        ids: Option<&[ScalingGroupId]>,
        name: Option<&str>,
    ) -> Result<Vec<ScalingGroup>, ServiceError> {
        let all = self.store().group_list().await?;
        Ok(all
            .into_iter()
            .map(|g| g.value)
            .filter(|g| ids.is_none_or(|ids| ids.contains(&g.id)))
            .filter(|g| name.map(|n| n == g.name).unwrap_or(true))
            .collect())
    }

    /// Changes a group (`ModifyScalingGroup`), the values given checked as `create_group`
    /// checks them; returns it as written.
    pub async fn modify_group(&self, id: &ScalingGroupId, changes: GroupChanges) -> Result<ScalingGroup, ServiceError> {
        use rollscale_core::group::{check_drain_timeout, check_group_name, Sizes};
        if let Some(name) = &changes.name {
            check_group_name(name)?;
        }
        let drain_timeout_s = changes.drain_timeout_s.map(check_drain_timeout).transpose()?;
        let (health_check_types, health_check_grace_period_s) =
            health_check_settings(changes.health_check_types.as_deref(), changes.health_check_grace_period_s)?;
        let (changes, health_check_types) = (&changes, &health_check_types);
        self.change_group(id, |mut next| async move {
            if let Some(name) = changes.name.as_ref().filter(|name| **name != next.name) {
                if self.store().group_get_by_name(name).await?.is_some() {
                    return Err(ServiceError::refused(
                        Code::ScalingGroupNameDuplicate,
                        format!("a scaling group named {name} exists"),
                    ));
                }
                next.name = name.clone();
            }
            let sizes = Sizes { min: next.min_size, max: next.max_size, desired: next.desired_capacity }.change(
                changes.min_size,
                changes.max_size,
                changes.desired_capacity,
            )?;
            (next.min_size, next.max_size, next.desired_capacity) = (sizes.min, sizes.max, sizes.desired);
            next.drain_timeout_s = drain_timeout_s.unwrap_or(next.drain_timeout_s);
            if let Some(types) = &health_check_types {
                next.health_check_types = types.clone();
            }
            next.health_check_grace_period_s = health_check_grace_period_s.unwrap_or(next.health_check_grace_period_s);
            if let Some(configuration_id) = &changes.active_configuration_id {
                self.activate_configuration(&mut next, configuration_id).await?;
            }
            Ok(next)
        })
        .await
    }

    /// `EnableScalingGroup`: Active, optionally with a configuration made active.
    pub async fn enable_group(
        &self,
        id: &ScalingGroupId,
        configuration_id: Option<&ScalingConfigurationId>,
    ) -> Result<ScalingGroup, ServiceError> {
        self.change_group(id, |mut next| async move {
            if let Some(configuration_id) = configuration_id {
                self.activate_configuration(&mut next, configuration_id).await?;
            }
            if next.source == InstanceSource::None {
                return Err(ServiceError::refused(
                    Code::IncorrectScalingGroupStatus,
                    format!(
                        "the scaling group {id} has no active scaling configuration or launch template; create one first"
                    ),
                ));
            }
            next.status = GroupStatus::Active;
            Ok(next)
        })
        .await
    }

    /// `DeleteScalingGroup`: refused while a rolling update runs; with `force`, its instances
    /// are removed, otherwise it must have none.
    pub async fn delete_group(&self, id: &ScalingGroupId, force: bool) -> Result<(), ServiceError> {
        let group = self.store().group_get(id).await?.ok_or_else(|| group_not_found(id))?;
        if let Some(task) = self.store().task_active_for_group(id).await? {
            return Err(ServiceError::refused(
                Code::IncorrectScalingGroupStatus,
                format!("the scaling group {id} has the rolling update {} in progress", task.value.id),
            ));
        }
        let instances = self.store().instance_list(Some(id)).await?;
        if !instances.is_empty() && !force {
            return Err(ServiceError::refused(
                Code::ScalingGroupHasInstances,
                format!(
                    "the scaling group {id} has {} instance(s); pass ForceDelete=true to remove them",
                    instances.len()
                ),
            ));
        }
        for instance in instances {
            self.remove_instance(&instance.value).await?;
        }
        self.store().group_delete(id, group.generation).await?;
        Ok(())
    }

    /// `SuspendProcesses` / `ResumeProcesses`. No process means all five.
    pub async fn set_processes(
        &self,
        group_id: &ScalingGroupId,
        processes: &[Process],
        suspend: bool,
    ) -> Result<ScalingGroup, ServiceError> {
        let processes = if processes.is_empty() { Process::ALL } else { processes };
        self.change_group(group_id, |mut next| async move {
            set_suspended(&mut next, processes, suspend);
            Ok(next)
        })
        .await
    }

    /// Changes the group `id` for an API action with `change` ([`Engine::group_modify`]),
    /// refused when it does not exist; returns it as written. The reconciler is woken: it,
    /// not the action, acts on a new capacity, source or set of suspended processes.
    async fn change_group<Fut>(
        &self,
        id: &ScalingGroupId,
        change: impl FnMut(ScalingGroup) -> Fut,
    ) -> Result<ScalingGroup, ServiceError>
    where
        Fut: Future<Output = Result<ScalingGroup, ServiceError>>,
    {
        let group = self.engine.group_modify(id, change).await?.ok_or_else(|| group_not_found(id))?;
        self.engine.wake_reconciler();
        Ok(group)
    }
}

/// Suspends (or resumes) `processes` of `group`; its list stays sorted, each process once.
pub(crate) fn set_suspended(group: &mut ScalingGroup, processes: &[Process], suspend: bool) {
    for process in processes {
        let present = group.suspended_processes.contains(process);
        if suspend && !present {
            group.suspended_processes.push(*process);
        } else if !suspend && present {
            group.suspended_processes.retain(|p| p != process);
        }
    }
    group.suspended_processes.sort();
}

/// A group's health check settings as given, checked (R17): see `core::health::check_types`.
type HealthCheckSettings = (Option<Vec<HealthCheckType>>, Option<u32>);

fn health_check_settings(
    types: Option<&[HealthCheckType]>,
    grace_s: Option<u32>,
) -> Result<HealthCheckSettings, ServiceError> {
    let types = types
        .map(|types| rollscale_core::health::check_types("HealthCheckTypes", types))
        .transpose()
        .map_err(|message| ServiceError::refused(Code::InvalidParameterHealthCheckType, message))?;
    let grace_s = grace_s
        .map(rollscale_core::health::check_grace_period)
        .transpose()
        .map_err(|message| ServiceError::refused(Code::InvalidParameter, message))?;
    Ok((types, grace_s))
}
