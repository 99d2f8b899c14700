//! The health checker (R16, R17): every `EngineConfig::health_check_interval`, one pass per
//! Active group looks at each of its instances through the fleet (and, for the
//! `LOAD_BALANCER` type, the load balancers' own checks), records what it saw apart from the
//! record of what rollscale made the instance, raises an event when an instance's health or
//! drift changes, and removes the InService instances judged unhealthy; the reconciler's next
//! pass makes their replacements, so one instance is never replaced twice (it counts the
//! group's instances against the desired capacity). The judgement itself is
//! `rollscale_core::health::judge`.
//!
//! A pass writes an instance's record only when what it saw changed, with a compare-and-swap
//! (one that lost to a task's step is looked at again next pass); the time of the look goes to
//! the store's `observed_at` column, which no compare-and-swap reads.

use crate::metrics::Pass;
use crate::{now_millis, random_bits, Service, ServiceError};
use futures_util::StreamExt;
use rollscale_core::domain::*;
use rollscale_core::health::{judge, HealthPolicy, Look};
use rollscale_core::ids::{InstanceId, ScalingActivityId, ScalingGroupId};
use rollscale_fleet::{FleetError, Sighting};
use rollscale_store::Versioned;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// How many unhealthy instances a pass removes at once.
const REMOVE_CONCURRENCY: usize = 16;

/// What one health check pass of a group did, for tests and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthPass {
    /// Instances looked at.
    pub looked: usize,
    /// Instances whose look failed (their state is unknown; their record is left as it was).
    pub unknown: usize,
    /// Records written because what was seen changed.
    pub written: usize,
    /// Instances judged Unhealthy.
    pub unhealthy: usize,
    /// Instances removed to be replaced.
    pub removed: Vec<InstanceId>,
}

impl Service {
    /// The health checker: a pass of each Active group every `health_check_interval`, each on
    /// a task of its own (a group whose pass is still running is left to it). With several
    /// replicas, only the one that runs the reconciler checks health.
    pub fn spawn_health_checker(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        let running: Arc<Mutex<HashSet<ScalingGroupId>>> = Arc::default();
        let handle = tokio::spawn(async move {
            loop {
                tokio::time::sleep(service.engine.config.health_check_interval).await;
                match service.lead_reconciler().await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(error) => {
                        tracing::warn!(%error, "could not take the reconciler's lease");
                        continue;
                    }
                }
                let groups = match service.engine.store.group_list().await {
                    Ok(groups) => groups,
                    Err(error) => {
                        tracing::warn!(%error, "the health checker could not list the scaling groups");
                        continue;
                    }
                };
                for group in groups.into_iter().filter(|g| g.value.status == GroupStatus::Active) {
                    // None once the engine is stopping.
                    let Some(busy) = service.engine.busy() else { break };
                    let id = group.value.id.clone();
                    if !running.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone()) {
                        continue;
                    }
                    let (checker, running) = (service.clone(), running.clone());
                    let pass = tokio::spawn(async move {
                        if let Err(error) = checker.health_pass(&group.value).await {
                            tracing::warn!(group = %id, code = %error.code(), %error, "health check pass failed");
                        }
                        running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                        drop(busy);
                    });
                    service.engine.track(pass.abort_handle());
                }
            }
        });
        self.engine.track(handle.abort_handle());
        handle
    }

    /// One health check pass of the group (see the module docs), waited for. Its duration and
    /// outcome are counted (`rollscale_health_pass_duration_seconds`).
    pub async fn health_pass(&self, group: &ScalingGroup) -> Result<HealthPass, ServiceError> {
        let started = std::time::Instant::now();
        let result = self.check_group(group).await;
        self.engine.metrics.pass(Pass::Health, started.elapsed(), result.is_ok());
        result
    }

    async fn check_group(&self, group: &ScalingGroup) -> Result<HealthPass, ServiceError> {
        let store = &self.engine.store;
        let policy = HealthPolicy::of(group);
        // Instances a rolling update is changing are in Standby: their looks would catch them
        // mid-change, and the task records what they become.
        let task_running = store.task_active_for_group(&group.id).await?.is_some();
        let instances: Vec<Versioned<Instance>> = store
            .instance_list(Some(&group.id))
            .await?
            .into_iter()
            .filter(|i| match i.value.lifecycle_state {
                LifecycleState::InService | LifecycleState::Protected => true,
                LifecycleState::Standby => !task_running,
                LifecycleState::Pending | LifecycleState::Removing => false,
            })
            .collect();
        let mut pass = HealthPass { looked: instances.len(), ..HealthPass::default() };
        if instances.is_empty() {
            return Ok(pass);
        }
        let ids: Vec<InstanceId> = instances.iter().map(|i| i.value.id.clone()).collect();
        let sightings: HashMap<InstanceId, Result<Sighting, FleetError>> =
            self.engine.fleet.look(&ids).await.into_iter().collect();
        let balancer_checks = self.balancer_checks(group, &policy).await;

        let now = now_millis();
        let mut seen: Vec<&InstanceId> = Vec::with_capacity(instances.len());
        let mut writes: Vec<Versioned<Instance>> = Vec::new();
        let mut events: Vec<Vec<rollscale_core::health::HealthEvent>> = Vec::new();
        let mut to_replace: Vec<(InstanceId, String)> = Vec::new();
        for instance in &instances {
            let id = &instance.value.id;
            let look = match sightings.get(id) {
                Some(Ok(sighting)) => look_of(sighting, balancer_checks.get(id).copied()),
                Some(Err(FleetError::NotFound(_))) => Look::gone(),
                Some(Err(error)) => {
                    tracing::debug!(instance_id = %id, %error, "the instance could not be looked at");
                    pass.unknown += 1;
                    continue;
                }
                None => {
                    pass.unknown += 1;
                    continue;
                }
            };
            seen.push(id);
            let judgement = judge(&instance.value, &look, &policy, now);
            if judgement.instance.health_status == HealthStatus::Unhealthy {
                pass.unhealthy += 1;
            }
            if let Some(reason) = judgement.replace {
                to_replace.push((id.clone(), reason));
            }
            if judgement.changed {
                writes.push(Versioned { value: judgement.instance, generation: instance.generation });
                events.push(judgement.events);
            }
        }
        let written = store.instances_write(&writes).await?;
        for ((write, events), written) in writes.iter().zip(events).zip(written) {
            if !written {
                // A task's step wrote it meanwhile: looked at again at the next pass.
                continue;
            }
            pass.written += 1;
            for event in events {
                self.health_event(group, &write.value.id, event.kind, event.level, event.content, now).await?;
            }
        }
        store.instances_observed(&seen, now).await?;
        if !to_replace.is_empty() {
            pass.removed = self.remove_unhealthy(group, &to_replace).await?;
        }
        Ok(pass)
    }

    /// The load balancers' checks of the group's backends, when the group judges by them: an
    /// instance fails when one of its load balancers fails it. A load balancer that cannot be
    /// asked is left out (its backends are judged as though it did not check them).
    async fn balancer_checks(&self, group: &ScalingGroup, policy: &HealthPolicy) -> HashMap<InstanceId, bool> {
        let mut checks: HashMap<InstanceId, bool> = HashMap::new();
        if !policy.enabled() || !policy.types.contains(&HealthCheckType::LoadBalancer) {
            return checks;
        }
        for lb in &group.load_balancer_ids {
            match self.engine.lb.check_status(lb).await {
                Ok(statuses) => {
                    for (id, up) in statuses {
                        let entry = checks.entry(id).or_insert(true);
                        *entry = *entry && up;
                    }
                }
                Err(error) => {
                    tracing::debug!(load_balancer = %lb, %error, "the load balancer's checks could not be read")
                }
            }
        }
        checks
    }

    /// Removes the InService instances judged unhealthy (R17; `remove_one_unhealthy`), then
    /// wakes the reconciler, whose pass makes the replacements. Done under the group's pass
    /// lock; when a pass holds it (a scale-out waiting for its instances), left to the next
    /// health check pass.
    async fn remove_unhealthy(
        &self,
        group: &ScalingGroup,
        unhealthy: &[(InstanceId, String)],
    ) -> Result<Vec<InstanceId>, ServiceError> {
        let Ok(_pass) = self.engine.group_pass_lock(&group.id).try_lock_owned() else {
            tracing::debug!(group = %group.id, "a pass of the group is running; unhealthy instances are removed later");
            return Ok(Vec::new());
        };
        let Some(current) = self.engine.store.group_get(&group.id).await? else { return Ok(Vec::new()) };
        if current.value.status != GroupStatus::Active || current.value.is_suspended(Process::HealthCheck) {
            return Ok(Vec::new());
        }
        // A few at a time: each is its own activity, and waits for the backend's removal.
        let removals = futures_util::stream::iter(unhealthy.iter().cloned())
            .map(|(id, reason)| async move { self.remove_one_unhealthy(group, &id, &reason).await })
            .buffer_unordered(REMOVE_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut removed = Vec::new();
        let mut failed = None;
        for removal in removals {
            match removal {
                Ok(Some(id)) => removed.push(id),
                Ok(None) => {}
                Err(error) => failed = Some(error),
            }
        }
        removed.sort();
        if !removed.is_empty() {
            self.engine.wake_reconciler();
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(removed),
        }
    }

    /// Removes one instance judged unhealthy if it is still InService and Unhealthy, as a
    /// scale-in activity naming it and why; returns it when it was removed. A removal that
    /// fails ends its activity Failed (R3 would refuse rolling updates while one is in
    /// progress), and the next pass tries again.
    async fn remove_one_unhealthy(
        &self,
        group: &ScalingGroup,
        id: &InstanceId,
        reason: &str,
    ) -> Result<Option<InstanceId>, ServiceError> {
        let Some(instance) = self.engine.store.instance_get(id).await? else { return Ok(None) };
        let instance = instance.value;
        if instance.lifecycle_state != LifecycleState::InService || instance.health_status != HealthStatus::Unhealthy {
            return Ok(None);
        }
        let now = now_millis();
        let mut activity = ScalingActivity {
            id: ScalingActivityId::from_random(random_bits()),
            group_id: group.id.clone(),
            kind: Some(ActivityKind::ScaleIn),
            description: format!("Scale in: remove the unhealthy instance {id}; a new instance replaces it"),
            cause: format!("the health check found the instance {id} unhealthy: {reason}"),
            status: ActivityStatus::InProgress,
            status_message: String::new(),
            instance_ids: vec![id.clone()],
            started_at: now,
            ended_at: None,
        };
        self.engine.store.activity_put(&activity).await?;
        let removal = self.remove_instance(&instance).await;
        activity.ended_at = Some(now_millis());
        match removal {
            Ok(()) => {
                activity.status = ActivityStatus::Successful;
                self.engine.store.activity_put(&activity).await?;
                let content =
                    format!("instance {id} was removed by the health check ({reason}); a new one replaces it");
                self.health_event(group, id, EventKind::InstanceReplaced, EventLevel::Warn, content, now).await?;
                tracing::info!(group = %group.id, instance_id = %id, %reason, "unhealthy instance removed");
                Ok(Some(id.clone()))
            }
            Err(error) => {
                activity.status = ActivityStatus::Failed;
                activity.status_message = format!("the instance {id} could not be removed: {error}");
                self.engine.store.activity_put(&activity).await?;
                tracing::warn!(group = %group.id, instance_id = %id, %error, "an unhealthy instance could not be removed");
                Ok(None)
            }
        }
    }

    async fn health_event(
        &self,
        group: &ScalingGroup,
        instance: &InstanceId,
        kind: EventKind,
        level: EventLevel,
        content: String,
        at: Millis,
    ) -> Result<(), ServiceError> {
        let event = Event {
            id: format!("{instance}-{kind}-{at}"),
            name: HEALTH_CHECK_EVENT.to_string(),
            level,
            kind,
            group_id: group.id.clone(),
            execution_id: None,
            content,
            created_at: at,
        };
        self.engine.store.event_insert(&event).await?;
        Ok(())
    }
}

/// The pure look at an instance, from what the drivers saw.
fn look_of(sighting: &Sighting, load_balancer_check: Option<bool>) -> Look {
    match &sighting.observation {
        None => Look::gone(),
        Some(observation) => Look {
            exists: true,
            running: observation.running,
            image_id: observation.image_id.clone(),
            packages: observation.packages.clone(),
            containers: observation.containers.clone(),
            check: sighting.health,
            load_balancer_check,
        },
    }
}
