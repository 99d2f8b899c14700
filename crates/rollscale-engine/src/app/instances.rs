//! A group's instances: queries, Standby, protection, removal (the ESS actions; the
//! operations on one instance that the steps share are `crate::ops`), and fault injection.

use super::Service;
use crate::error::{group_not_found, instance_not_found};
use crate::{now_millis, ServiceError};
use rollscale_core::domain::*;
use rollscale_core::ids::*;
use rollscale_core::Code;

const MAX_STANDBY_BATCH: usize = 100;

impl Service {
    /// Instances, of a group when given, of the ids given (`None`: all), in a lifecycle state
    /// when given.
    pub async fn instances(
        &self,
        group_id: Option<&ScalingGroupId>,
        ids: Option<&[InstanceId]>,
        lifecycle_state: Option<LifecycleState>,
    ) -> Result<Vec<Instance>, ServiceError> {
        Ok(self
            .store()
            .instance_list(group_id)
            .await?
            .into_iter()
            .map(|i| i.value)
            .filter(|i| ids.is_none_or(|ids| ids.contains(&i.id)))
            .filter(|i| lifecycle_state.is_none_or(|state| state == i.lifecycle_state))
            .collect())
    }

    pub async fn backends(&self, instance: &InstanceId) -> Result<Vec<Backend>, ServiceError> {
        Ok(self.store().backend_list(None, Some(instance)).await?)
    }

    async fn group_instances(
        &self,
        group_id: &ScalingGroupId,
        ids: &[InstanceId],
    ) -> Result<(ScalingGroup, Vec<Instance>), ServiceError> {
        let group = self.group(group_id).await?;
        if ids.is_empty() {
            return Err(ServiceError::refused(Code::MissingParameter, "at least one InstanceId is required"));
        }
        if ids.len() > MAX_STANDBY_BATCH {
            return Err(ServiceError::refused(
                Code::InvalidParameter,
                format!("at most {MAX_STANDBY_BATCH} instances per call"),
            ));
        }
        let instances = self.store().instance_list(Some(&group.id)).await?;
        let mut chosen = Vec::new();
        for id in ids {
            let instance = instances.iter().find(|i| &i.value.id == id).ok_or_else(|| {
                ServiceError::refused(
                    Code::InvalidInstanceIdNotFound,
                    format!("the instance {id} is not in the scaling group {}", group.id),
                )
            })?;
            chosen.push(instance.value.clone());
        }
        Ok((group, chosen))
    }

    /// [`Service::group_instances`], each of them in one of `states`, or refused with
    /// `IncorrectInstanceStatus` ("the instance … is …" and `why`).
    async fn group_instances_in(
        &self,
        group_id: &ScalingGroupId,
        ids: &[InstanceId],
        states: &[LifecycleState],
        why: &str,
    ) -> Result<(ScalingGroup, Vec<Instance>), ServiceError> {
        let (group, instances) = self.group_instances(group_id, ids).await?;
        if let Some(instance) = instances.iter().find(|instance| !states.contains(&instance.lifecycle_state)) {
            return Err(ServiceError::refused(
                Code::IncorrectInstanceStatus,
                format!("the instance {} is {}{why}", instance.id, instance.lifecycle_state),
            ));
        }
        Ok((group, instances))
    }

    /// `EnterStandby` (weights to 0, remembered). Returns the scaling activity id.
    pub async fn enter_standby(
        &self,
        group_id: &ScalingGroupId,
        ids: &[InstanceId],
    ) -> Result<ScalingActivityId, ServiceError> {
        let states = [LifecycleState::InService, LifecycleState::Standby];
        let why = "; only InService instances can enter Standby";
        let (group, instances) = self.group_instances_in(group_id, ids, &states, why).await?;
        let mut activity =
            self.activity_begin(&group, ActivityKind::EnterStandby, "Put instances into Standby", &instances).await?;
        for instance in &instances {
            self.engine.enter_standby(&instance.id).await?;
        }
        self.activity_end(&mut activity).await?;
        Ok(activity.id)
    }

    /// `ExitStandby` (remembered weights restored).
    /// `ExitStandby`: the instances' weights restored, as an activity whose status message says
    /// which of them are Unhealthy and so get no traffic yet (R17).
    pub async fn exit_standby(
        &self,
        group_id: &ScalingGroupId,
        ids: &[InstanceId],
    ) -> Result<ScalingActivity, ServiceError> {
        let states = [LifecycleState::Standby, LifecycleState::InService];
        let (group, instances) = self.group_instances_in(group_id, ids, &states, ", not Standby").await?;
        let mut activity =
            self.activity_begin(&group, ActivityKind::ExitStandby, "Move instances out of Standby", &instances).await?;
        for instance in &instances {
            self.engine.exit_standby(&instance.id).await?;
        }
        // R17: its weight is back, but the load balancers' own checks send an unhealthy
        // instance nothing, and the health checker replaces it if it stays so.
        let unhealthy: Vec<&str> =
            instances.iter().filter(|i| i.health_status == HealthStatus::Unhealthy).map(|i| i.id.as_str()).collect();
        if !unhealthy.is_empty() {
            activity.status_message = format!(
                "{} Unhealthy: the load-balancer weight is restored, but no traffic reaches it until its health check \
                 passes, and unless the HealthCheck process is suspended the group replaces it if it stays unhealthy",
                unhealthy.join(", ")
            );
        }
        self.activity_end(&mut activity).await?;
        Ok(activity)
    }

    /// `RemoveInstances`: takes the instances out of the group and releases them (off the load
    /// balancers, removed from the fleet), as a scale-in activity. With
    /// `decrease_desired_capacity` (the default) the desired capacity goes down by as many, which
    /// must not go below MinSize; without, the reconciler makes new instances in their place (how
    /// an instance that never became healthy is replaced). Refused while a rolling update of
    /// the group runs, for Protected instances (unprotect them first) and for an instance not in
    /// the group. Runs under the group's pass lock, so no reconcile pass interleaves; a crash
    /// midway leaves a scale-in the next pass ends (naming what was left) and the capacity as
    /// written.
    pub async fn remove_instances(
        &self,
        group_id: &ScalingGroupId,
        ids: &[InstanceId],
        decrease_desired_capacity: bool,
    ) -> Result<ScalingActivityId, ServiceError> {
        let (group, instances) = self.group_instances(group_id, ids).await?;
        if let Some(task) = self.store().task_active_for_group(&group.id).await? {
            return Err(ServiceError::refused(
                Code::IncorrectScalingGroupStatus,
                format!("the scaling group {} has the rolling update {} in progress", group.id, task.value.id),
            ));
        }
        if let Some(protected) = instances.iter().find(|i| i.lifecycle_state == LifecycleState::Protected) {
            return Err(ServiceError::refused(
                Code::IncorrectInstanceStatus,
                format!("the instance {} is Protected; unprotect it before removing it", protected.id),
            ));
        }
        let lock = self.engine.group_pass_lock(&group.id);
        let _pass = lock.lock().await;
        if decrease_desired_capacity {
            let count = instances.len() as u32;
            let group_id = &group.id;
            self.engine
                .group_modify(group_id, |mut next| async move {
                    if next.desired_capacity < next.min_size + count {
                        return Err(ServiceError::refused(
                            Code::IncorrectCapacityMinSize,
                            format!(
                                "removing {count} instance(s) would take the desired capacity of {group_id} from {} \
                                 below its MinSize {}; lower MinSize, or remove them without DecreaseDesiredCapacity",
                                next.desired_capacity, next.min_size
                            ),
                        ));
                    }
                    next.desired_capacity -= count;
                    Ok(next)
                })
                .await?
                .ok_or_else(|| group_not_found(&group.id))?;
        }
        let mut activity = self
            .activity_begin(&group, ActivityKind::ScaleIn, "Scale in: remove instances (RemoveInstances)", &instances)
            .await?;
        for instance in &instances {
            if let Err(error) = self.remove_instance(instance).await {
                activity.status = ActivityStatus::Failed;
                activity.status_message = format!("instance {} could not be removed: {error}", instance.id);
                activity.ended_at = Some(now_millis());
                self.store().activity_put(&activity).await?;
                return Err(error);
            }
        }
        self.activity_end(&mut activity).await?;
        // Without DecreaseDesiredCapacity, the reconciler makes the replacements.
        self.engine.wake_reconciler();
        Ok(activity.id)
    }

    pub async fn set_protection(
        &self,
        group_id: &ScalingGroupId,
        ids: &[InstanceId],
        protected: bool,
    ) -> Result<(), ServiceError> {
        let states = [LifecycleState::InService, LifecycleState::Protected];
        let why = "; only InService instances can be protected";
        let (_, instances) = self.group_instances_in(group_id, ids, &states, why).await?;
        for instance in &instances {
            self.engine.set_protected(&instance.id, protected).await?;
        }
        Ok(())
    }

    pub(crate) async fn remove_instance(&self, instance: &Instance) -> Result<(), ServiceError> {
        for backend in self.store().backend_list(None, Some(&instance.id)).await? {
            self.engine.lb.deregister(&backend.load_balancer_id, &instance.id).await?;
        }
        self.engine.fleet.remove_instance(&instance.id).await?;
        self.store().instance_delete(&instance.id).await?;
        Ok(())
    }

    /// Injects a fault into an instance (simulated fleet only): its next changes fail, it
    /// crashes, or its health check fails (see [`rollscale_fleet::Fault`]).
    pub async fn inject_fault(&self, id: &InstanceId, fault: rollscale_fleet::Fault) -> Result<(), ServiceError> {
        if self.store().instance_get(id).await?.is_none() {
            return Err(instance_not_found(id));
        }
        match self.engine.fleet.inject_fault(id, fault).await {
            Err(rollscale_fleet::FleetError::Unsupported(message)) => {
                Err(ServiceError::refused(Code::OperationDenied, message))
            }
            other => Ok(other?),
        }
    }
}
