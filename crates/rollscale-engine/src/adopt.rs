//! Bringing real drivers in line with the store when the service starts.
//!
//! The store is the truth. Every instance it has is looked up through the fleet: one that runs
//! has its address refreshed; one that is stopped (a host reboot, a crash in the middle of a
//! swap) is started; one whose container is gone is made again with the same identity from what
//! the store says. Those starts run [`ADOPT_CONCURRENCY`] at a time, each waited for only until
//! it runs. One that cannot be started stops nothing: it is marked Unhealthy and registered at
//! weight 0, so it gets no traffic; the store keeps its weight, which a later start that
//! succeeds gives back, marking it Healthy. Then every load-balancer registration is made again
//! at the store's weight (a load balancer that restarted forgot them; registering is
//! idempotent).

use crate::{Engine, ServiceError};
use rollscale_core::domain::{GroupType, HealthStatus, Instance, LifecycleState, ScalingGroup};
use rollscale_core::ids::{InstanceId, ScalingGroupId};
use rollscale_fleet::{FleetError, InstanceObservation, InstanceSpec};
use std::collections::{HashMap, HashSet};

/// How many stopped or missing instances [`Engine::adopt_fleet`] starts or makes at once.
pub const ADOPT_CONCURRENCY: usize = 16;

/// What [`Engine::adopt_fleet`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// Instances the store has, every lifecycle state.
    pub known: HashSet<InstanceId>,
    /// Instances whose container was gone and was made again.
    pub remade: Vec<InstanceId>,
    /// Instances that were stopped and were started.
    pub started: Vec<InstanceId>,
    /// Instances that could not be started, with the reason; marked Unhealthy, at weight 0.
    pub failed: Vec<(InstanceId, String)>,
}

impl Engine {
    /// Brings the fleet and the load balancers in line with the store (the module's rules).
    pub async fn adopt_fleet(&self) -> Result<Adoption, ServiceError> {
        let groups: HashMap<ScalingGroupId, ScalingGroup> =
            self.store.group_list().await?.into_iter().map(|group| (group.value.id.clone(), group.value)).collect();
        let mut adoption = Adoption::default();
        let mut addresses: HashMap<InstanceId, String> = HashMap::new();
        // (instance, whether its container is gone rather than stopped)
        let mut to_start: Vec<(Instance, bool)> = Vec::new();
        for instance in self.store.instance_list(None).await? {
            let instance = instance.value;
            adoption.known.insert(instance.id.clone());
            if matches!(instance.lifecycle_state, LifecycleState::Pending | LifecycleState::Removing) {
                continue; // the reconciler finishes these
            }
            match self.fleet.observe(&instance.id).await? {
                Some(observed) if observed.running => {
                    let address = self.refresh_address(&instance, &observed.address).await?;
                    addresses.insert(instance.id, address);
                }
                Some(_) => {
                    tracing::warn!(instance_id = %instance.id, "the instance is not running: starting it");
                    to_start.push((instance, false));
                }
                None => {
                    tracing::warn!(instance_id = %instance.id, "the instance's container is gone: making it again");
                    to_start.push((instance, true));
                }
            }
        }
        let outcomes = self.start_all(&to_start, &groups).await;
        let mut unstarted: HashSet<InstanceId> = HashSet::new();
        for ((instance, missing), outcome) in to_start.into_iter().zip(outcomes) {
            let health = match outcome {
                Ok(observed) => {
                    match missing {
                        true => adoption.remade.push(instance.id.clone()),
                        false => adoption.started.push(instance.id.clone()),
                    }
                    let address = self.refresh_address(&instance, &observed.address).await?;
                    addresses.insert(instance.id.clone(), address);
                    HealthStatus::Healthy
                }
                Err(error) => {
                    tracing::warn!(instance_id = %instance.id, %error, "the instance could not be started; marked Unhealthy");
                    adoption.failed.push((instance.id.clone(), error.to_string()));
                    unstarted.insert(instance.id.clone());
                    addresses.insert(instance.id.clone(), instance.address.clone());
                    HealthStatus::Unhealthy
                }
            };
            if instance.health_status != health {
                self.instance_modify(&instance.id, |current| current.health_status = health).await?;
            }
        }
        for backend in self.store.backend_list(None, None).await? {
            let Some(address) = addresses.get(&backend.instance_id).filter(|address| !address.is_empty()) else {
                continue;
            };
            let weight = if unstarted.contains(&backend.instance_id) { 0 } else { backend.weight };
            self.lb.register(&backend.load_balancer_id, &backend.instance_id, address, weight).await?;
        }
        Ok(adoption)
    }

    /// Starts (or makes again) each instance, [`ADOPT_CONCURRENCY`] at a time; the outcomes in
    /// the order given.
    async fn start_all(
        &self,
        to_start: &[(Instance, bool)],
        groups: &HashMap<ScalingGroupId, ScalingGroup>,
    ) -> Vec<Result<InstanceObservation, FleetError>> {
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(ADOPT_CONCURRENCY));
        let mut starts = tokio::task::JoinSet::new();
        for (index, (instance, _)) in to_start.iter().enumerate() {
            let spec = InstanceSpec {
                id: instance.id.clone(),
                group_id: instance.group_id.clone(),
                group_type: groups.get(&instance.group_id).map_or(GroupType::ECS, |group| group.group_type),
                image_id: instance.image_id.clone(),
                containers: instance.containers.clone(),
            };
            let (fleet, permits) = (self.fleet.clone(), permits.clone());
            starts.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (index, fleet.create_instance(&spec).await)
            });
        }
        let mut outcomes: Vec<Result<InstanceObservation, FleetError>> =
            to_start.iter().map(|_| Err(FleetError::Failed("not started".into()))).collect();
        while let Some(joined) = starts.join_next().await {
            match joined {
                Ok((index, outcome)) => outcomes[index] = outcome,
                Err(error) => tracing::error!(%error, "starting an instance panicked"),
            }
        }
        outcomes
    }

    /// The instance's address as the fleet reports it now, written to the store when it moved.
    async fn refresh_address(&self, instance: &Instance, observed: &str) -> Result<String, ServiceError> {
        if observed.is_empty() || observed == instance.address {
            return Ok(instance.address.clone());
        }
        let address = observed.to_string();
        self.instance_modify(&instance.id, |current| current.address = address.clone()).await?;
        Ok(address)
    }
}
