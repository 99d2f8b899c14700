//! The scaling reconciler: keeps each Active group at its desired capacity, one pass at a
//! time per group, idempotently (kube-rs's `reconcile` shape). A scale-out writes its new
//! instances as `Pending` first, then creates them on the fleet, waits until their health check
//! passes, then puts them InService behind the group's load balancers; a pass after a crash
//! finishes whatever is still Pending (and ends the scale-out activity the crash left in
//! progress). A new instance that never becomes healthy gets no traffic (see `bring_up_one`).
//! Suspended `ScaleOut`/`ScaleIn` processes stop the matching direction.
//!
//! The API never waits for a pass: a change of a group wakes the reconciler
//! (`Engine::wake_reconciler`), whose passes run on tasks of their own, and the scaling
//! activity records the outcome.

use crate::error::configuration_not_found;
use crate::metrics::Pass;
use crate::{now_millis, random_bits, Service, ServiceError};
use rollscale_core::domain::*;
use rollscale_core::ids::{InstanceId, ScalingActivityId, ScalingGroupId};
use rollscale_core::Code;
use rollscale_fleet::{FleetError, InstanceSpec};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// How many instances one pass creates at once.
const CREATE_CONCURRENCY: usize = 64;

/// An instance a pass could not bring up, and why.
type Failure = (InstanceId, ServiceError);

/// The last error the reconciler logged per group, so that one that persists (an instance
/// that stays unhealthy) is logged once, not at every pass.
type Reported = Arc<Mutex<HashMap<ScalingGroupId, String>>>;

/// Whether this replica runs reconcile passes.
enum Lead {
    /// No replication: this engine is alone on its store.
    Alone,
    /// It holds the reconciler's lease.
    Leader(crate::leases::Held),
    /// Another replica does.
    Follower,
}

impl Service {
    /// One pass over every Active group, one after another, waiting for each (`rollscale up`
    /// at start, tests). A group's error is logged here, once.
    pub async fn reconcile_all(&self) -> Result<(), ServiceError> {
        for group in self.engine.store.group_list().await? {
            if group.value.status == GroupStatus::Active {
                if let Err(error) = self.reconcile_group(&group.value).await {
                    tracing::warn!(group = %group.value.id, code = %error.code(), %error, "reconcile failed");
                }
            }
        }
        Ok(())
    }

    /// The reconciler: every `reconcile_interval`, or at once when woken
    /// (`Engine::wake_reconciler`), a pass of each Active group on a task of its own, so that a
    /// group whose new instances are being waited for holds up no other. A group whose pass is
    /// still running is left to it (the next pass sees what changed meanwhile). A group's
    /// error is logged when it is new, not again at every pass while it persists.
    pub fn spawn_reconciler(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        let reported: Reported = Arc::default();
        let handle = tokio::spawn(async move {
            loop {
                // With replication, only the replica holding the reconciler's lease runs passes.
                let lead = match service.reconciler_lease().await {
                    Ok(lead) => lead,
                    Err(error) => {
                        tracing::warn!(%error, "could not take the reconciler's lease");
                        Lead::Follower
                    }
                };
                if !matches!(lead, Lead::Follower) {
                    match service.engine.store.group_list().await {
                        Ok(groups) => {
                            for group in groups.into_iter().filter(|group| group.value.status == GroupStatus::Active) {
                                service.spawn_group_pass(group.value.id, reported.clone(), &lead);
                            }
                        }
                        Err(error) => tracing::warn!(%error, "the reconciler could not list the scaling groups"),
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(service.engine.config.reconcile_interval) => {}
                    _ = service.engine.reconcile_wake.notified() => {}
                }
            }
        });
        // `Engine::halt` stops it with the rest, as a crash would.
        self.engine.track(handle.abort_handle());
        handle
    }

    /// Whether this replica may run reconcile passes now: always without replication; with
    /// it, while it holds the one reconciler lease (taken here when free or expired).
    async fn reconciler_lease(&self) -> Result<Lead, ServiceError> {
        let Some(replication) = self.engine.config.replication.clone() else { return Ok(Lead::Alone) };
        // Taking the lease is work under it, which none starts once the engine is stopping:
        // `Engine::shut_down` hands it back once none runs.
        let Some(_taking) = self.engine.busy() else { return Ok(Lead::Follower) };
        {
            let mut held = self.engine.reconciler_lease.lock().unwrap_or_else(|e| e.into_inner());
            match held.as_ref() {
                Some(lease) if lease.is_valid() => return Ok(Lead::Leader(lease.clone())),
                Some(_) => {
                    *held = None;
                }
                None => {}
            }
        }
        match self.engine.lease_hold(&replication, rollscale_store::RECONCILER_LEASE).await? {
            None => Ok(Lead::Follower),
            Some(lease) => {
                tracing::info!(replica = %replication.replica_id, "this replica runs the reconciler");
                *self.engine.reconciler_lease.lock().unwrap_or_else(|e| e.into_inner()) = Some(lease.clone());
                Ok(Lead::Leader(lease))
            }
        }
    }

    /// Whether this replica runs the reconciler (takes its lease if nobody holds it): `up` runs
    /// the first passes inline only then. Always `true` without replication.
    pub async fn lead_reconciler(&self) -> Result<bool, ServiceError> {
        Ok(!matches!(self.reconciler_lease().await?, Lead::Follower))
    }

    /// Starts a pass of the group unless one is running; does not wait for it. Under a lease,
    /// the pass stops at once when the lease is lost (as a crash would stop it: the next
    /// leader's pass finishes what it left Pending).
    fn spawn_group_pass(&self, id: ScalingGroupId, reported: Reported, lead: &Lead) {
        // None once the engine is stopping.
        let Some(busy) = self.engine.busy() else { return };
        let Ok(pass) = self.engine.group_pass_lock(&id).try_lock_owned() else {
            return;
        };
        let service = self.clone();
        let lease = match lead {
            Lead::Leader(lease) => Some(lease.clone()),
            _ => None,
        };
        let handle = tokio::spawn(async move {
            let run = async {
                match service.engine.store.group_get(&id).await {
                    Ok(Some(group)) if group.value.status == GroupStatus::Active => {
                        service.reconcile_locked(&group.value).await
                    }
                    Ok(_) => Ok(()),
                    Err(error) => Err(error.into()),
                }
            };
            let result = match lease {
                None => run.await,
                Some(lease) => tokio::select! {
                    result = run => result,
                    () = lease.lost() => {
                        tracing::warn!(group = %id, "lost the reconciler's lease; pass stopped");
                        Ok(())
                    }
                },
            };
            drop(pass);
            drop(busy);
            let mut reported = reported.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(()) => {
                    if reported.remove(&id).is_some() {
                        tracing::info!(group = %id, "the scaling group is reconciled again");
                    }
                }
                Err(error) => {
                    let text = error.to_string();
                    if reported.get(&id) == Some(&text) {
                        tracing::debug!(group = %id, %error, "reconcile failed again");
                    } else {
                        tracing::warn!(group = %id, code = %error.code(), %error, "reconcile failed");
                        reported.insert(id, text);
                    }
                }
            }
        });
        self.engine.track(handle.abort_handle());
    }

    /// Brings one group to its desired capacity: one pass, waited for (after a pass of the
    /// group already under way). The group is read again from the store first.
    pub async fn reconcile_group(&self, group: &ScalingGroup) -> Result<(), ServiceError> {
        let lock = self.engine.group_pass_lock(&group.id);
        let _pass = lock.lock().await;
        match self.engine.store.group_get(&group.id).await? {
            Some(current) => self.reconcile_locked(&current.value).await,
            None => Ok(()),
        }
    }

    /// A pass of the group; its pass lock is held. Its duration and outcome are counted
    /// (`rollscale_reconcile_pass_duration_seconds`).
    async fn reconcile_locked(&self, group: &ScalingGroup) -> Result<(), ServiceError> {
        let started = std::time::Instant::now();
        let result = self.reconcile_pass(group).await;
        self.engine.metrics.pass(Pass::Reconcile, started.elapsed(), result.is_ok());
        result
    }

    async fn reconcile_pass(&self, group: &ScalingGroup) -> Result<(), ServiceError> {
        let store = &self.engine.store;
        let instances: Vec<Instance> =
            store.instance_list(Some(&group.id)).await?.into_iter().map(|i| i.value).collect();
        let pending: Vec<Instance> =
            instances.iter().filter(|i| i.lifecycle_state == LifecycleState::Pending).cloned().collect();
        self.settle_interrupted(group, &instances).await?;
        // An instance that cannot be brought up is reported after the capacity is settled: a
        // scale-in may be what removes it.
        let mut failures = Vec::new();
        if !pending.is_empty() {
            failures = self.bring_up(group, pending.clone()).await;
            self.settle_activities(group, &pending, &failures).await?;
        }
        let instances: Vec<Instance> = match failures.is_empty() {
            true => instances,
            false => store.instance_list(Some(&group.id)).await?.into_iter().map(|i| i.value).collect(),
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
                let mut activity = self.activity_begin(group, ActivityKind::ScaleIn, "Scale in", &chosen).await?;
                for instance in &chosen {
                    if let Err(error) = self.remove_instance(instance).await {
                        // Ended here, not left in progress: R3 would refuse every rolling
                        // update of the group meanwhile. The next pass tries again.
                        activity.status = ActivityStatus::Failed;
                        activity.status_message = format!("instance {} could not be removed: {error}", instance.id);
                        activity.ended_at = Some(now_millis());
                        self.engine.store.activity_put(&activity).await?;
                        return Err(error);
                    }
                }
                self.activity_end(&mut activity).await?;
            }
        }
        if !failures.is_empty() {
            // One that could not be brought up but was scaled in is no failure any more.
            let left: HashSet<InstanceId> =
                store.instance_list(Some(&group.id)).await?.into_iter().map(|i| i.value.id).collect();
            failures.retain(|(id, _)| left.contains(id));
        }
        match failures.into_iter().next() {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    /// Ends the scale activities a pass left in progress when it was cut short (a crash, a
    /// halt, a lost lease): passes of a group are one at a time, so one in progress when a pass
    /// begins is no one's any more, and R3 would refuse every rolling update of the group while
    /// it stays so. A scale-in is Successful when none of its instances is left in the group,
    /// else Failed naming those left (this pass removes what the desired capacity still asks).
    /// A scale-out with Pending instances is left to [`Service::settle_activities`], which
    /// ends it once this pass has brought them up; one without is Successful when all its
    /// instances are in the group, else Failed naming those missing.
    async fn settle_interrupted(&self, group: &ScalingGroup, instances: &[Instance]) -> Result<(), ServiceError> {
        let by_id: HashMap<&InstanceId, &Instance> = instances.iter().map(|i| (&i.id, i)).collect();
        let (activities, _) = self.engine.store.activity_list(&group.id, 0, 100).await?;
        for mut activity in activities.into_iter().filter(|a| a.status == ActivityStatus::InProgress) {
            let (missing, left): (Vec<&InstanceId>, Vec<&InstanceId>) =
                activity.instance_ids.iter().partition(|id| !by_id.contains_key(id));
            let outcome = if activity.kind() == ActivityKind::ScaleIn {
                match left.is_empty() {
                    true => None,
                    false => Some(format!("interrupted before removing {}", join_ids(&left))),
                }
            } else if activity.kind() == ActivityKind::ScaleOut {
                if left.iter().any(|id| by_id[id].lifecycle_state == LifecycleState::Pending) {
                    continue;
                }
                match missing.is_empty() {
                    true => None,
                    false => Some(format!("interrupted: {} never joined the group", join_ids(&missing))),
                }
            } else {
                continue;
            };
            activity.ended_at = Some(now_millis());
            match outcome {
                None => activity.status = ActivityStatus::Successful,
                Some(message) => {
                    activity.status = ActivityStatus::Failed;
                    activity.status_message = message;
                }
            }
            tracing::info!(group = %group.id, activity = %activity.id, status = %activity.status, "an interrupted scaling activity was ended");
            self.engine.store.activity_put(&activity).await?;
        }
        Ok(())
    }

    /// Ends the scale-out activities still in progress whose Pending instances this pass
    /// brought up (or failed to): a pass that was interrupted, by a crash or a halt, left them
    /// so, and R3 refuses a rolling update while one is in progress.
    async fn settle_activities(
        &self,
        group: &ScalingGroup,
        pending: &[Instance],
        failures: &[Failure],
    ) -> Result<(), ServiceError> {
        let ids: HashSet<&InstanceId> = pending.iter().map(|i| &i.id).collect();
        let (activities, _) = self.engine.store.activity_list(&group.id, 0, 100).await?;
        for mut activity in activities {
            let unfinished = activity.status == ActivityStatus::InProgress && activity.kind() == ActivityKind::ScaleOut;
            if !unfinished || !activity.instance_ids.iter().any(|id| ids.contains(id)) {
                continue;
            }
            let mine: Vec<&Failure> = failures.iter().filter(|(id, _)| activity.instance_ids.contains(id)).collect();
            finish_activity(&mut activity, &mine);
            self.engine.store.activity_put(&activity).await?;
        }
        Ok(())
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
                changed_at: None,
                observed: None,
                observed_at: None,
            })
            .collect();
        let mut activity = ScalingActivity {
            id: ScalingActivityId::from_random(random_bits()),
            group_id: group.id.clone(),
            kind: Some(ActivityKind::ScaleOut),
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
        let failures = self.bring_up(group, new).await;
        finish_activity(&mut activity, &failures.iter().collect::<Vec<_>>());
        self.engine.store.activity_put(&activity).await?;
        match failures.into_iter().next() {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    async fn instance_source(&self, group: &ScalingGroup) -> Result<(String, Vec<ContainerSpec>), ServiceError> {
        match &group.source {
            InstanceSource::Configuration(id) => {
                let configuration =
                    self.engine.store.configuration_get(id).await?.ok_or_else(|| configuration_not_found(id))?;
                Ok((configuration.value.image_id, configuration.value.containers))
            }
            InstanceSource::LaunchTemplate { id, version } => {
                let version = self.resolve_template_version(id, *version).await?;
                Ok((version.image_id, version.containers))
            }
            _ => Err(ServiceError::refused(
                Code::IncorrectScalingGroupStatus,
                format!("the scaling group {} has no active scaling configuration", group.id),
            )),
        }
    }

    /// Creates the Pending instances on the fleet and puts them InService behind the group's
    /// load balancers; returns those that could not be, with why (the caller records them in
    /// the activity and reports them; nothing is logged here).
    async fn bring_up(&self, group: &ScalingGroup, instances: Vec<Instance>) -> Vec<Failure> {
        let permits = Arc::new(Semaphore::new(CREATE_CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for instance in instances {
            let service = self.clone();
            let group = group.clone();
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let id = instance.id.clone();
                (id, service.bring_up_one(&group, instance).await)
            });
        }
        let mut failures = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((id, Err(error))) => failures.push((id, error)),
                Err(join_error) => tracing::error!(group = %group.id, %join_error, "instance creation panicked"),
            }
        }
        failures.sort_by(|a, b| a.0.cmp(&b.0));
        failures
    }

    /// Creates one Pending instance on the fleet and, once its health check passes, registers
    /// it with the group's load balancers and puts it InService. An instance that does not
    /// become healthy within the engine's health timeout gets no traffic: it stays Pending,
    /// marked Unhealthy, and the pass reports it (the scale-out activity fails with the
    /// reason). Later passes look at it once each, without waiting and without creating or
    /// starting it again (only one that vanished from the fleet is made again); a scale-in
    /// removes such instances first.
    async fn bring_up_one(&self, group: &ScalingGroup, instance: Instance) -> Result<(), ServiceError> {
        let spec = InstanceSpec {
            id: instance.id.clone(),
            group_id: group.id.clone(),
            group_type: group.group_type,
            image_id: instance.image_id.clone(),
            containers: instance.containers.clone(),
        };
        let fleet = &self.engine.fleet;
        // Checked before (it exists, and its health timeout was waited once): look, do not redo.
        let checked_before = instance.health_status == HealthStatus::Unhealthy;
        let existing =
            if checked_before { self.engine.retry_unknown(|| fleet.observe(&instance.id)).await? } else { None };
        let observed = match existing {
            Some(observed) => observed,
            None => fleet.create_instance(&spec).await?,
        };
        if !self.becomes_healthy(&instance.id, !checked_before).await? {
            let moved = !observed.address.is_empty() && observed.address != instance.address;
            if !checked_before || moved {
                self.engine
                    .instance_modify(&instance.id, |current| {
                        current.health_status = HealthStatus::Unhealthy;
                        if !observed.address.is_empty() {
                            current.address = observed.address.clone();
                        }
                    })
                    .await?;
            }
            return Err(ServiceError::refused(
                Code::HealthCheckFailed,
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

/// Ends a scale-out activity: Successful, or Failed with what went wrong with each of its
/// instances that could not be brought up.
fn finish_activity(activity: &mut ScalingActivity, failures: &[&Failure]) {
    activity.ended_at = Some(now_millis());
    if failures.is_empty() {
        activity.status = ActivityStatus::Successful;
    } else {
        activity.status = ActivityStatus::Failed;
        activity.status_message = failures.iter().map(|(_, error)| error.to_string()).collect::<Vec<_>>().join("; ");
    }
}

fn join_ids(ids: &[&InstanceId]) -> String {
    ids.iter().map(|id| id.as_str()).collect::<Vec<_>>().join(", ")
}
