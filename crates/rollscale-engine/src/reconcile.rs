//! The scaling reconciler: keeps each Active group at its desired capacity, one pass at a
//! time, idempotently (kube-rs's `reconcile` shape). A scale-out writes its new instances as
//! `Pending` first, then creates them on the fleet, waits until their health check passes,
//! then puts them InService behind the group's load balancers; a pass after a crash finishes
//! whatever is still Pending. A new instance that never becomes healthy gets no traffic (see
//! `bring_up_one`).
//! Suspended `ScaleOut`/`ScaleIn` processes stop the matching direction.

use crate::{now_millis, random_bits, Service, ServiceError};
use rollscale_core::domain::*;
use rollscale_core::ids::{InstanceId, ScalingActivityId};
use rollscale_fleet::{FleetError, InstanceSpec};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// How many instances one pass creates at once.
const CREATE_CONCURRENCY: usize = 64;

impl Service {
    /// One pass over every Active group.
    pub async fn reconcile_all(&self) -> Result<(), ServiceError> {
        for group in self.engine.store.group_list().await? {
            if group.value.status == GroupStatus::Active {
                if let Err(error) = self.reconcile_group(&group.value).await {
                    tracing::warn!(group = %group.value.id, %error, "reconcile failed");
                }
            }
        }
        Ok(())
    }

    /// Runs `reconcile_all` every `reconcile_interval` until the process ends.
    pub fn spawn_reconciler(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(error) = service.reconcile_all().await {
                    tracing::warn!(%error, "reconcile pass failed");
                }
                tokio::time::sleep(service.engine.config.reconcile_interval).await;
            }
        })
    }

    /// Brings one group to its desired capacity.
    pub async fn reconcile_group(&self, group: &ScalingGroup) -> Result<(), ServiceError> {
        let store = &self.engine.store;
        let instances: Vec<Instance> =
            store.instance_list(Some(&group.id)).await?.into_iter().map(|i| i.value).collect();
        let pending: Vec<Instance> =
            instances.iter().filter(|i| i.lifecycle_state == LifecycleState::Pending).cloned().collect();
        // An instance that cannot be brought up is reported after the capacity is settled: a
        // scale-in may be what removes it.
        let brought = if pending.is_empty() { Ok(()) } else { self.bring_up(group, pending).await };
        let instances: Vec<Instance> = match brought {
            Ok(()) => instances,
            Err(_) => store.instance_list(Some(&group.id)).await?.into_iter().map(|i| i.value).collect(),
        };
        let counted = instances.iter().filter(|i| i.lifecycle_state != LifecycleState::Removing).count() as u32;
        if counted < group.desired_capacity && !group.is_suspended(Process::ScaleOut) {
            self.scale_out(group, group.desired_capacity - counted).await?;
        } else if counted > group.desired_capacity && !group.is_suspended(Process::ScaleIn) {
            // New instances that never passed their health check go first, then the newest
            // InService ones.
            let failed = |i: &Instance| {
                i.lifecycle_state == LifecycleState::Pending && i.health_status == HealthStatus::Unhealthy
            };
            let mut removable: Vec<&Instance> =
                instances.iter().filter(|i| i.lifecycle_state == LifecycleState::InService || failed(i)).collect();
            removable.sort_by(|a, b| {
                failed(b).cmp(&failed(a)).then_with(|| b.created_at.cmp(&a.created_at)).then_with(|| b.id.cmp(&a.id))
            });
            let chosen: Vec<Instance> =
                removable.into_iter().take((counted - group.desired_capacity) as usize).cloned().collect();
            if !chosen.is_empty() {
                let mut activity = self.activity_begin(group, "Scale in", &chosen).await?;
                for instance in &chosen {
                    self.remove_instance(instance).await?;
                }
                self.activity_end(&mut activity).await?;
            }
        }
        if brought.is_err() {
            let left = store.instance_list(Some(&group.id)).await?;
            if !left.iter().any(|i| i.value.lifecycle_state == LifecycleState::Pending) {
                return Ok(()); // what could not be brought up was scaled in
            }
        }
        brought
    }

    async fn scale_out(&self, group: &ScalingGroup, count: u32) -> Result<(), ServiceError> {
        let (image_id, containers) = self.instance_source(group).await?;
        let now = now_millis();
        let new: Vec<Instance> = (0..count)
            .map(|index| Instance {
                id: InstanceId::from_random(random_bits()),
                group_id: group.id.clone(),
                lifecycle_state: LifecycleState::Pending,
                health_status: HealthStatus::Healthy,
                creation_type: CreationType::AutoCreated,
                image_id: image_id.clone(),
                packages: Vec::new(),
                containers: containers.clone(),
                tags: Vec::new(),
                address: String::new(),
                created_at: now + i64::from(index),
            })
            .collect();
        let mut activity = ScalingActivity {
            id: ScalingActivityId::from_random(random_bits()),
            group_id: group.id.clone(),
            description: format!("Scale out: add {count} instance(s)"),
            cause: format!("the desired capacity is {}", group.desired_capacity),
            status: ActivityStatus::InProgress,
            status_message: String::new(),
            instance_ids: new.iter().map(|i| i.id.clone()).collect(),
            started_at: now,
            ended_at: None,
        };
        self.engine.store.activity_put(&activity).await?;
        self.engine.store.instance_insert_many(&new).await?;
        let result = self.bring_up(group, new).await;
        activity.ended_at = Some(now_millis());
        match &result {
            Ok(()) => activity.status = ActivityStatus::Successful,
            Err(error) => {
                activity.status = ActivityStatus::Failed;
                activity.status_message = error.to_string();
            }
        }
        self.engine.store.activity_put(&activity).await?;
        result
    }

    async fn instance_source(&self, group: &ScalingGroup) -> Result<(String, Vec<ContainerSpec>), ServiceError> {
        match &group.source {
            InstanceSource::Configuration(id) => {
                let configuration = self.engine.store.configuration_get(id).await?.ok_or_else(|| {
                    ServiceError::not_found(
                        "InvalidScalingConfigurationId.NotFound",
                        format!("the scaling configuration {id} does not exist"),
                    )
                })?;
                Ok((configuration.value.image_id, configuration.value.containers))
            }
            InstanceSource::LaunchTemplate { id, version } => {
                let version = self.resolve_template_version(id, *version).await?;
                Ok((version.image_id, version.containers))
            }
            _ => Err(ServiceError::rejected(
                "IncorrectScalingGroupStatus",
                format!("the scaling group {} has no active scaling configuration", group.id),
            )),
        }
    }

    /// Creates the Pending instances on the fleet and puts them InService behind the group's
    /// load balancers.
    async fn bring_up(&self, group: &ScalingGroup, instances: Vec<Instance>) -> Result<(), ServiceError> {
        let permits = Arc::new(Semaphore::new(CREATE_CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for instance in instances {
            let service = self.clone();
            let group = group.clone();
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                service.bring_up_one(&group, instance).await
            });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(group = %group.id, %error, "an instance could not be brought up");
                    first_error.get_or_insert(error);
                }
                Err(join_error) => tracing::error!(%join_error, "instance creation panicked"),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Creates one Pending instance on the fleet and, once its health check passes, registers
    /// it with the group's load balancers and puts it InService. An instance that does not
    /// become healthy within the engine's health timeout gets no traffic: it stays Pending,
    /// marked Unhealthy, and the pass reports it (the scale-out activity fails with the
    /// reason). Later passes check it again, once each, without waiting; a scale-in removes
    /// such instances first.
    async fn bring_up_one(&self, group: &ScalingGroup, instance: Instance) -> Result<(), ServiceError> {
        let spec = InstanceSpec {
            id: instance.id.clone(),
            group_id: group.id.clone(),
            group_type: group.group_type,
            image_id: instance.image_id.clone(),
            containers: instance.containers.clone(),
        };
        let fleet = &self.engine.fleet;
        // Checked before (it exists, and waited its health timeout once): look, do not redo.
        let checked_before = instance.health_status == HealthStatus::Unhealthy;
        let existing =
            if checked_before { self.engine.retry_unknown(|| fleet.observe(&instance.id)).await? } else { None };
        let observed = match existing {
            Some(observed) if observed.running => observed,
            _ => fleet.create_instance(&spec).await?,
        };
        if !self.becomes_healthy(&instance.id, !checked_before).await? {
            self.engine
                .instance_modify(&instance.id, |current| {
                    current.health_status = HealthStatus::Unhealthy;
                    if !observed.address.is_empty() {
                        current.address = observed.address.clone();
                    }
                })
                .await?;
            return Err(ServiceError::rejected(
                "HealthCheckFailed",
                format!(
                    "the new instance {} did not become healthy within {:?}: it stays Pending, out of the load \
                     balancers, and is checked again at every pass",
                    instance.id, self.engine.config.health_timeout
                ),
            ));
        }
        for lb_id in &group.load_balancer_ids {
            let weight = match self.engine.store.lb_get(lb_id).await? {
                Some(lb) => lb.value.default_weight,
                None => continue,
            };
            self.engine.lb.register(lb_id, &instance.id, &observed.address, weight).await?;
            self.engine
                .store
                .backend_put(&Backend { load_balancer_id: lb_id.clone(), instance_id: instance.id.clone(), weight })
                .await?;
        }
        self.engine
            .instance_modify(&instance.id, |current| {
                current.lifecycle_state = LifecycleState::InService;
                current.health_status = HealthStatus::Healthy;
                current.address = observed.address.clone();
                current.image_id = observed.image_id.clone();
            })
            .await?;
        Ok(())
    }

    /// Whether the instance's health check passes: polled until the engine's health timeout
    /// when `wait`, else asked once.
    async fn becomes_healthy(&self, id: &InstanceId, wait: bool) -> Result<bool, ServiceError> {
        let config = &self.engine.config;
        let deadline = tokio::time::Instant::now() + config.health_timeout;
        loop {
            match self.engine.fleet.health(id).await {
                Ok(HealthStatus::Healthy) => return Ok(true),
                Ok(HealthStatus::Unhealthy) | Err(FleetError::Unavailable(_)) => {}
                Err(error) => return Err(error.into()),
            }
            if !wait || tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(config.health_poll).await;
        }
    }
}
