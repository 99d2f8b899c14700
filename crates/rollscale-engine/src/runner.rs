//! The durable rolling-update runner.
//!
//! One driver per unfinished task loops: load the task and its instances from the store, ask
//! `core::task::decide` what to do, do it, commit the outcome, repeat. Each instance of a
//! released batch has a worker that performs its next journaled step and commits the result
//! before taking the one after. Nothing is kept only in memory: after a crash, `resume_all`
//! finds every unfinished task and its running instances in the store and carries on; a step
//! interrupted before its commit runs again, which the drivers make harmless.
//!
//! Cost per instance: the workers of a task commit through its journal, which writes whatever
//! outcomes and instance changes have arrived together, a hundred or so rows a statement; each
//! worker still waits for its own commit before it acts again. A worker keeps the rows it last
//! wrote (and starts from those the driver read for it) instead of reading them before each
//! step; they are only bases for compare-and-swap writes, so a stale one costs a fresh read.
//! The driver wakes once per batch (when its last worker ends), not once per instance.

use crate::error::instance_not_found;
use crate::journal::{Journal, StepMemory};
use crate::{now_millis, Engine, ServiceError};
use rollscale_core::domain::{Event, EventKind, EventLevel, HealthStatus, Instance, Millis, Process};
use rollscale_core::ids::{ExecutionId, InstanceId, ScalingGroupId};
use rollscale_core::params::{Change, PackageAction, RollingUpdateSpec};
use rollscale_core::task::{
    decide, InstanceStatus, InstanceWork, Outcome, Phase, Progress, Step, StepOutcome, StepReport, TaskAction,
    TaskEvent, TaskState, WaitingStatus,
};
use rollscale_core::Code;
use rollscale_fleet::{FleetError, InstanceObservation, PackageOperation, RunId};
use rollscale_store::{StoreError, Versioned};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tracing::Instrument;

/// The in-memory side of a task being driven: a wake-up signal, the cancel flag mirrored from
/// the store, and which instances have a worker now.
#[derive(Default)]
pub struct TaskHandle {
    wake: Notify,
    cancelling: AtomicBool,
    workers: Mutex<HashSet<ExecutionId>>,
    /// Where the task's workers send their writes (see `journal_loop`). Taken by the driver
    /// as it ends, so that the journal ends with the last of the workers.
    journal: Mutex<Option<Journal>>,
    /// The task's lease, when this engine shares its store with other replicas: the driver
    /// and the workers stop at once when it is lost, and take no step unless it is valid.
    lease: std::sync::OnceLock<crate::leases::Held>,
}

impl TaskHandle {
    /// Whether this replica may take the task's next step: always without replication.
    fn may_act(&self) -> bool {
        self.lease.get().is_none_or(|held| held.is_valid())
    }

    /// Whether this replica holds the task's lease now (never without replication).
    pub(crate) fn holds_lease(&self) -> bool {
        self.lease.get().is_some_and(|held| held.is_valid())
    }

    /// Once the driver has ended: waits until nothing of the task runs here any more, so that
    /// the task is forgotten (and its lease released or handed back) only then. Its workers
    /// have all ended when it finished, end at their current await when the lease is lost,
    /// and end once their current step is committed when the engine is stopping; its journal
    /// ends once they have, after committing what they sent it. A replica seen not driving a
    /// task thus has no step of it in flight and no write of it still to commit. (A worker
    /// spawned but not yet started has no journal and, the lease being lost or the engine
    /// stopping, takes no step.)
    async fn wind_down(&self, journal_ended: tokio::task::JoinHandle<()>) {
        drop(self.journal.lock().unwrap_or_else(|e| e.into_inner()).take());
        // Err only when `Engine::halt` aborted it: ended too.
        let _ = journal_ended.await;
    }

    /// Runs `work` until it ends, or until the task's lease is lost (then it is dropped at its
    /// current await, as a crash would stop it, and this is `None`; whoever takes the lease
    /// next redoes the step).
    async fn under_lease<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        match self.lease.get().cloned() {
            None => Some(work.await),
            Some(held) => tokio::select! {
                ended = work => Some(ended),
                () = held.lost() => None,
            },
        }
    }
}

/// What a new worker may start from instead of reading it: its child execution and its
/// instance, as the driver read them. Either is only a compare-and-swap base, like the copies
/// the worker keeps between its steps.
#[derive(Default)]
struct Seed {
    work: Option<Versioned<InstanceWork>>,
    instance: Option<Versioned<Instance>>,
}

enum Next {
    Again,
    Wait,
    Stop,
}

/// Why a driver's loop ended.
enum Ended {
    /// The task is finished (or gone).
    Finished,
    /// The engine is stopping ([`Engine::shut_down`]): the task goes on elsewhere or later.
    Stopped,
}

impl Engine {
    /// Resumes every unfinished task found in the store. Returns how many. With replication,
    /// only those without a live lease, and each only if this replica takes its lease first
    /// (see [`Engine::spawn_lease_poller`], which keeps looking).
    pub async fn resume_all(self: &Arc<Self>) -> Result<usize, ServiceError> {
        if self.config.replication.is_some() {
            let ids = self.store.task_ids_unleased().await?;
            for id in &ids {
                if !self.is_driving(id) {
                    tracing::info!(execution_id = %id, "taking over rolling update without a live lease");
                    self.drive(id.clone());
                }
            }
            return Ok(ids.len());
        }
        let tasks = self.store.task_list_unfinished().await?;
        for task in &tasks {
            tracing::info!(execution_id = %task.value.id, status = %task.value.describe_status(), "resuming rolling update");
            self.drive(task.value.id.clone());
        }
        Ok(tasks.len())
    }

    /// With replication: every `poll_every`, takes over the unfinished tasks whose lease is
    /// absent or expired (their replica died or stopped, or they were started through a
    /// replica that could not take them). A task whose lease is there, expired or handed back
    /// by a replica that stopped, is taken at once; one without a lease only when it was found
    /// so at the previous look too: the replica that creates a task takes its lease a moment
    /// after the task is committed, and keeps it unless it dies. Without replication it does
    /// nothing.
    pub fn spawn_lease_poller(self: &Arc<Self>) {
        let Some(replication) = self.config.replication.clone() else { return };
        let engine = self.clone();
        let spawned = tokio::spawn(async move {
            let mut seen_before: HashSet<ExecutionId> = HashSet::new();
            loop {
                tokio::time::sleep(replication.poll_every).await;
                match engine.store.tasks_unleased().await {
                    Ok(tasks) => {
                        for task in &tasks {
                            let id = &task.id;
                            if (task.was_leased || seen_before.contains(id)) && !engine.is_driving(id) {
                                tracing::info!(execution_id = %id, "taking over rolling update without a live lease");
                                engine.drive(id.clone());
                            }
                        }
                        seen_before = tasks.into_iter().map(|task| task.id).collect();
                        engine.lease_looks.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => tracing::warn!(%error, "could not look for rolling updates to take over"),
                }
            }
        });
        self.track(spawned.abort_handle());
    }

    /// Starts driving the task unless it is driven already, or the engine is stopping (then
    /// another replica, or the next start, drives it).
    pub fn drive(self: &Arc<Self>, id: ExecutionId) {
        let (handle, journal_ended) = {
            let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            // Read with the tasks locked: `Engine::shut_down` marks the engine stopping before
            // it looks at the tasks, so it sees any task driven after it.
            if tasks.contains_key(&id) || self.is_stopping() {
                return;
            }
            let (journal, journal_ended) = Journal::start(self);
            let handle = Arc::new(TaskHandle { journal: Mutex::new(Some(journal)), ..TaskHandle::default() });
            tasks.insert(id.clone(), handle.clone());
            (handle, journal_ended)
        };
        let engine = self.clone();
        // Every line the driver and its workers log carries the task's id. A span of its own,
        // not the request's that started it; ERROR, so that it is enabled at any log level (a
        // span prints nothing by itself).
        let span = tracing::error_span!(parent: None, "rolling_update", execution_id = %id);
        let driving = async move {
            let Some(replication) = engine.config.replication.clone() else {
                engine.drive_loop(&id, &handle).await;
                handle.wind_down(journal_ended).await;
                engine.tasks.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                return;
            };
            let held = match engine.lease_hold(&replication, &rollscale_store::task_lease_name(&id)).await {
                Ok(Some(held)) => held,
                Ok(None) => {
                    tracing::debug!(execution_id = %id, "driven by another replica");
                    engine.tasks.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                    return;
                }
                Err(error) => {
                    tracing::warn!(execution_id = %id, %error, "could not take the lease of the rolling update");
                    engine.tasks.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                    return;
                }
            };
            let _ = handle.lease.set(held.clone());
            // Another replica may have changed the group's instances: drivers that live in
            // memory (the simulated ones) start from the store's record of them.
            match engine.store.task_get(&id).await {
                Ok(Some(task)) => {
                    if let Err(error) = engine.adopt_recorded(Some(&task.value.spec.group_id)).await {
                        tracing::warn!(execution_id = %id, %error, "could not read the group's instances");
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(execution_id = %id, %error, "could not read the rolling update"),
            }
            tracing::info!(execution_id = %id, replica = %replication.replica_id, "driving rolling update");
            let ended = handle.under_lease(engine.drive_loop(&id, &handle)).await;
            handle.wind_down(journal_ended).await;
            // The lease is given back before the task is forgotten, so that whoever sees this
            // replica no longer driving a finished task also sees its lease gone (the other
            // order leaves a moment when neither a driver nor a release can be seen). The
            // task is final by now, so no replica takes it over meanwhile. A task stopped by
            // the engine's shutdown is handed back, for another replica to take over at once:
            // its workers ended after committing their steps, and its journal with them.
            match ended {
                Some(Ended::Finished) => engine.lease_release(held).await,
                Some(Ended::Stopped) => {
                    if engine.lease_hand_back(held).await {
                        tracing::info!(execution_id = %id, "stopping: the rolling update is handed back");
                    }
                }
                None => tracing::warn!(execution_id = %id, "lost the lease of the rolling update; stopped driving it"),
            }
            engine.tasks.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        }
        .instrument(span);
        let spawned = tokio::spawn(driving);
        self.track(spawned.abort_handle());
    }

    /// Tells the task's driver that something changed (an operator action).
    pub fn wake(&self, id: &ExecutionId, cancelling: bool) {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = tasks.get(id) {
            if cancelling {
                handle.cancelling.store(true, Ordering::SeqCst);
            }
            handle.wake.notify_one();
        }
    }

    /// Whether a driver is running for the task in this process.
    pub fn is_driving(&self, id: &ExecutionId) -> bool {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).contains_key(id)
    }

    async fn drive_loop(self: &Arc<Self>, id: &ExecutionId, handle: &Arc<TaskHandle>) -> Ended {
        loop {
            if self.is_stopping() {
                // No new decision: the workers finish their current steps and stop.
                return Ended::Stopped;
            }
            match self.drive_once(id, handle).await {
                Ok(Next::Again) => {}
                Err(ServiceError::Conflict) => self.count_conflict("task", id),
                Ok(Next::Wait) => {
                    let _ = tokio::time::timeout(self.config.task_poll, handle.wake.notified()).await;
                }
                Ok(Next::Stop) => return Ended::Finished,
                Err(error) => {
                    tracing::warn!(execution_id = %id, %error, "rolling update step failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    async fn drive_once(self: &Arc<Self>, id: &ExecutionId, handle: &Arc<TaskHandle>) -> Result<Next, ServiceError> {
        if !handle.may_act() {
            // The lease lapsed unrenewed: `under_lease` stops this driver at once.
            return Ok(Next::Wait);
        }
        let Some(task) = self.store.task_get(id).await? else { return Ok(Next::Stop) };
        if task.value.status.is_final() {
            return Ok(Next::Stop);
        }
        if task.value.cancel.is_some() {
            handle.cancelling.store(true, Ordering::SeqCst);
        }
        // Counts, not rows: a wake-up costs the same for 10 instances as for 10,000.
        let (from, to) = batch_positions(&task.value);
        let counts = self.store.work_counts(id, from, to).await?;
        let count = |status: InstanceStatus| -> (u32, u32) {
            counts
                .iter()
                .find(|(counted, _, _)| *counted == status)
                .map(|(_, total, in_batch)| (*total as u32, *in_batch as u32))
                .unwrap_or((0, 0))
        };
        let summary = Progress {
            in_flight: count(InstanceStatus::Running).0,
            failed_undecided: count(InstanceStatus::Failed).0,
            queued_in_batch: count(InstanceStatus::Queued).1,
        };
        let n_workers = handle.workers.lock().unwrap_or_else(|e| e.into_inner()).len() as u32;
        if summary.in_flight > n_workers {
            let running = self.store.work_list_where(id, Some(InstanceStatus::Running.as_str()), None).await?;
            let without: Vec<Versioned<InstanceWork>> = {
                let workers = handle.workers.lock().unwrap_or_else(|e| e.into_inner());
                running.into_iter().filter(|work| !workers.contains(&work.value.execution_id)).collect()
            };
            // Each new worker starts from its child execution as just read, and its instance as
            // read here for all of them at once, instead of reading both itself (see work_loop).
            let ids: Vec<&InstanceId> = without.iter().map(|work| &work.value.instance_id).collect();
            let mut instances: HashMap<InstanceId, Versioned<Instance>> = self
                .store
                .instances_get(&ids)
                .await?
                .into_iter()
                .map(|instance| (instance.value.id.clone(), instance))
                .collect();
            for work in without {
                let instance = instances.remove(&work.value.instance_id);
                let work_id = work.value.execution_id.clone();
                self.ensure_worker(handle, &task.value, &work_id, Seed { work: Some(work), instance });
            }
        }
        let action = decide(&task.value, &summary);
        tracing::debug!(execution_id = %id, ?action, ?summary, "decided");
        let now = now_millis();
        match action {
            TaskAction::Await | TaskAction::Idle => Ok(Next::Wait),
            TaskAction::Begin => {
                if !task.value.begun {
                    // Recorded before the effects run: however the task ends, it knows it may
                    // have suspended its processes (R10, R11, R12).
                    return self.commit(&task, &TaskEvent::Beginning).await;
                }
                if let Err(error) = self.begin(&task.value).await {
                    if matches!(error, ServiceError::Refused { .. }) {
                        let mut failed = task.value.clone().evolve(&TaskEvent::Finishing(Outcome::Failed));
                        failed.status_message = error.to_string();
                        self.store.task_update(&failed, task.generation, now).await?;
                        return Ok(Next::Again);
                    }
                    return Err(error);
                }
                self.event(&task, EventKind::Started, EventLevel::Info, "the rolling update started".into()).await?;
                self.commit(&task, &TaskEvent::Begun).await
            }
            TaskAction::StartBatch(index) => {
                let queued =
                    self.store.work_list_where(id, Some(InstanceStatus::Queued.as_str()), Some((from, to))).await?;
                let released: Vec<Versioned<InstanceWork>> = queued
                    .into_iter()
                    .filter(|work| work.value.batch == index)
                    .map(|work| Versioned { value: work.value.start(now), generation: work.generation })
                    .collect();
                let next = task.value.clone().evolve(&TaskEvent::BatchStarted(index));
                let next = (next != task.value).then_some(Versioned { value: next, generation: task.generation });
                self.store.works_update(&released, next.as_ref(), now).await?;
                Ok(Next::Again)
            }
            TaskAction::Pause(reason) => {
                let (level, text) = match reason {
                    WaitingStatus::BatchPaused => (
                        EventLevel::Info,
                        format!("paused after batch {} of {}", summary_batch(&task.value), task.value.n_batches()),
                    ),
                    WaitingStatus::FailurePaused => (
                        EventLevel::Critical,
                        format!("paused: {} instance(s) failed and await a decision", summary.failed_undecided),
                    ),
                };
                self.event(&task, EventKind::Paused, level, text).await?;
                self.commit(&task, &TaskEvent::Paused(reason)).await
            }
            TaskAction::Resume => self.commit(&task, &TaskEvent::Resumed).await,
            TaskAction::NextBatch(index) => {
                let text = format!("batch {} of {} done", index + 1, task.value.n_batches());
                self.event(&task, EventKind::BatchDone, EventLevel::Info, text).await?;
                self.commit(&task, &TaskEvent::BatchDone(index)).await
            }
            TaskAction::Finish(outcome) => self.commit(&task, &TaskEvent::Finishing(outcome)).await,
            TaskAction::Complete(outcome) => {
                self.complete(&task.value, outcome).await?;
                let (kind, level, text) = match outcome {
                    Outcome::Success => {
                        (EventKind::Succeeded, EventLevel::Info, "the rolling update succeeded".to_string())
                    }
                    Outcome::Cancelled { restore } => (
                        EventKind::Cancelled,
                        EventLevel::Warn,
                        format!("the rolling update was cancelled{}", if restore { " and restored" } else { "" }),
                    ),
                    Outcome::Failed => (
                        EventKind::Failed,
                        EventLevel::Critical,
                        format!("the rolling update failed: {}", task.value.status_message),
                    ),
                };
                self.event(&task, kind, level, text).await?;
                self.commit(&task, &TaskEvent::Completed { at: now }).await?;
                Ok(Next::Stop)
            }
        }
    }

    async fn commit(&self, task: &Versioned<TaskState>, event: &TaskEvent) -> Result<Next, ServiceError> {
        let next = task.value.clone().evolve(event);
        self.store.task_update(&next, task.generation, now_millis()).await?;
        Ok(Next::Again)
    }

    /// Records an event once: its id derives from the task's generation, so a redo of the
    /// same decision finds it already there.
    async fn event(
        &self,
        task: &Versioned<TaskState>,
        kind: EventKind,
        level: EventLevel,
        content: String,
    ) -> Result<(), ServiceError> {
        let event = Event {
            id: format!("{}-{}-{}", task.value.id, task.generation, kind),
            name: task.value.spec.kind.template_name().to_string(),
            level,
            kind,
            group_id: task.value.spec.group_id.clone(),
            execution_id: Some(task.value.id.clone()),
            content,
            created_at: now_millis(),
        };
        self.store.event_insert(&event).await?;
        Ok(())
    }

    /// R4: suspend `enterProcess`; an image update with a configuration sets its image. The
    /// configuration comes first: a task that fails because it is gone has suspended nothing.
    async fn begin(&self, task: &TaskState) -> Result<(), ServiceError> {
        let spec = &task.spec;
        if let (Change::Image { image_id }, Some(configuration_id)) = (&spec.change, &spec.configuration_id) {
            let written = self
                .configuration_modify(configuration_id, |mut configuration| async move {
                    configuration.image_id.clone_from(image_id);
                    Ok(configuration)
                })
                .await?;
            if written.is_none() {
                return Err(ServiceError::refused(
                    Code::InvalidScalingConfigurationIdNotFound,
                    format!("the scaling configuration {configuration_id} no longer exists"),
                ));
            }
        }
        self.modify_processes(spec, &spec.enter_process, true).await
    }

    /// Suspends or resumes `processes` of the task's group.
    async fn modify_processes(
        &self,
        spec: &RollingUpdateSpec,
        processes: &[Process],
        suspend: bool,
    ) -> Result<(), ServiceError> {
        let written = self
            .group_modify(&spec.group_id, |mut group| async move {
                crate::app::set_suspended(&mut group, processes, suspend);
                Ok(group)
            })
            .await?;
        match written {
            Some(_) => Ok(()),
            None => Err(ServiceError::refused(
                Code::InvalidScalingGroupIdNotFound,
                format!("the scaling group {} no longer exists", spec.group_id),
            )),
        }
    }

    /// The finishing effects of an outcome (R10, R11). Idempotent.
    async fn complete(&self, task: &TaskState, outcome: Outcome) -> Result<(), ServiceError> {
        let now = now_millis();
        let works = self.store.work_list(&task.id).await?;
        // Instances that never ran (or were stopped by the cancel) end Aborted.
        let leftovers: Vec<Versioned<InstanceWork>> = works
            .iter()
            .filter(|work| matches!(work.value.status, InstanceStatus::Queued | InstanceStatus::Running))
            .map(|work| Versioned { value: work.value.clone().abort(now), generation: work.generation })
            .collect();
        if !leftovers.is_empty() {
            self.store.works_update(&leftovers, None, now).await?;
        }
        match outcome {
            Outcome::Success => {
                // R11: tag the instances this task changed.
                let changed: Vec<&InstanceId> = works
                    .iter()
                    .filter(|work| work.value.applied && work.value.status == InstanceStatus::Success)
                    .map(|work| &work.value.instance_id)
                    .collect();
                self.tag_instances(&task.spec.group_id, &changed, &task.id.to_string()).await?;
            }
            Outcome::Cancelled { restore: true } => {
                // R10 restore: out of Standby as a success would leave them.
                for work in self.store.work_list(&task.id).await? {
                    if !work.value.in_standby {
                        continue;
                    }
                    let instance_id = &work.value.instance_id;
                    match self.exit_standby(instance_id).await {
                        Ok(_) => {}
                        Err(error) if error.is_not_found() => {}
                        Err(error) => return Err(error),
                    }
                    if work.value.was_protected {
                        match self.set_protected(instance_id, true).await {
                            Ok(()) => {}
                            Err(error) if error.is_not_found() => {}
                            Err(error) => return Err(error),
                        }
                    }
                    let mut next = work.value.clone();
                    next.in_standby = false;
                    self.store.work_update(&next, work.generation, now).await?;
                }
            }
            Outcome::Cancelled { restore: false } | Outcome::Failed => {}
        }
        // R10, R11, R12: what the ending resumes (nothing for a plain cancel or a failure).
        let resumed = task.processes_resumed_by(outcome);
        if !resumed.is_empty() {
            self.modify_processes(&task.spec, &resumed, false).await?;
        }
        Ok(())
    }

    /// Adds `tag` to each of `ids` (R11), idempotently: the group's instances are read at once
    /// and written a hundred or so a statement, each only if it is still as read; one that
    /// moved on meanwhile, or was not found in the group, is done on its own.
    async fn tag_instances(
        &self,
        group_id: &ScalingGroupId,
        ids: &[&InstanceId],
        tag: &str,
    ) -> Result<(), ServiceError> {
        let add_tag = |instance: &mut Instance| {
            if !instance.tags.iter().any(|t| t == tag) {
                instance.tags.push(tag.to_string());
            }
        };
        let mut read: HashMap<InstanceId, Versioned<Instance>> = self
            .store
            .instance_list(Some(group_id))
            .await?
            .into_iter()
            .map(|instance| (instance.value.id.clone(), instance))
            .collect();
        let mut writes = Vec::with_capacity(ids.len());
        let mut alone = Vec::new();
        for id in ids {
            match read.remove(*id) {
                Some(mut instance) => {
                    let before = instance.value.tags.len();
                    add_tag(&mut instance.value);
                    if instance.value.tags.len() != before {
                        writes.push(instance);
                    }
                }
                None => alone.push(*id),
            }
        }
        let written = self.store.instances_write(&writes).await?;
        alone.extend(writes.iter().zip(written).filter(|(_, written)| !written).map(|(w, _)| &w.value.id));
        for id in alone {
            self.instance_modify(id, add_tag).await?;
        }
        Ok(())
    }

    fn ensure_worker(self: &Arc<Self>, handle: &Arc<TaskHandle>, task: &TaskState, work_id: &ExecutionId, seed: Seed) {
        {
            let mut workers = handle.workers.lock().unwrap_or_else(|e| e.into_inner());
            if !workers.insert(work_id.clone()) {
                return;
            }
        }
        let engine = self.clone();
        let handle = handle.clone();
        let spec = Arc::new(task.spec.clone());
        let task_id = task.id.clone();
        let work_id = work_id.clone();
        // Inside the driver's span: its lines carry the task's id too.
        let span = tracing::error_span!("instance", instance_id = tracing::field::Empty, child_execution_id = %work_id);
        if let Some(work) = &seed.work {
            span.record("instance_id", tracing::field::display(&work.value.instance_id));
        }
        let working = async move {
            if handle.under_lease(engine.work_loop(&handle, &task_id, &spec, &work_id, seed)).await.is_none() {
                return; // the lease is lost: so is the driver, nothing to wake
            }
            let last = {
                let mut workers = handle.workers.lock().unwrap_or_else(|e| e.into_inner());
                workers.remove(&work_id);
                workers.is_empty()
            };
            // While other workers run, the driver's decision can only be to await them (every
            // decision that acts on instance outcomes needs none in flight), so only the last
            // one wakes it: one evaluation per batch instead of one per instance. Operator
            // actions wake it themselves, and it looks again every second regardless.
            if last {
                handle.wake.notify_one();
            }
        }
        .instrument(span);
        let spawned = tokio::spawn(working);
        self.track(spawned.abort_handle());
    }

    async fn work_loop(
        &self,
        handle: &TaskHandle,
        task_id: &ExecutionId,
        spec: &RollingUpdateSpec,
        work_id: &ExecutionId,
        seed: Seed,
    ) {
        // The child execution as this worker last committed it. Only this worker writes a
        // Running child (operators decide on Failed or Queued ones, and the task's finish only
        // aborts them once none is in flight), and every write compares the generation: a
        // stale copy fails with a conflict and is read again, so keeping it saves a read per
        // step without ever writing over a change it has not seen.
        // Likewise the instance as this worker's last step wrote it (see perform_step_with).
        // Both may be given by the driver, as it read them when it started the worker.
        let mut current = seed.work;
        let mut memory = StepMemory {
            instance: seed.instance,
            journal: handle.journal.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        };
        loop {
            match self.work_once(handle, task_id, spec, work_id, &mut current, &mut memory).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(ServiceError::Conflict) => {
                    self.count_conflict("instance execution", work_id);
                    memory.instance = None;
                }
                Err(error) => {
                    memory.instance = None;
                    tracing::warn!(child_execution_id = %work_id, %error, "instance step could not be recorded; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Performs and commits one step. Returns whether there may be another.
    async fn work_once(
        &self,
        handle: &TaskHandle,
        task_id: &ExecutionId,
        spec: &RollingUpdateSpec,
        work_id: &ExecutionId,
        current: &mut Option<Versioned<InstanceWork>>,
        memory: &mut StepMemory,
    ) -> Result<bool, ServiceError> {
        if self.is_stopping() {
            // The step before is committed; the next is taken by whoever drives the task next
            // (see `Engine::shut_down`).
            return Ok(false);
        }
        // Taken, not borrowed: after any error the next attempt reads the store again.
        let work = match current.take() {
            Some(work) => work,
            None => match self.store.work_get(work_id).await? {
                Some((_, work)) => work,
                None => return Ok(false),
            },
        };
        let Some(step) = work.value.next_step() else { return Ok(false) };
        if !handle.may_act() {
            // Before the step acts: the lease lapsed unrenewed (`under_lease` ends this worker).
            return Ok(false);
        }
        if handle.cancelling.load(Ordering::SeqCst) && !work.value.goes_on_when_cancelled() {
            // R10: no new instance work once the task is cancelled; work in flight finishes its
            // change and stops here, before it would leave Standby.
            self.store.work_update(&work.value.clone().abort(now_millis()), work.generation, now_millis()).await?;
            return Ok(false);
        }
        let outcome = self.perform_step_with(spec, &work.value, step, memory).await?;
        let next = work.value.clone().record(step, outcome, spec.kind.health_gated(), now_millis());
        let generation = self.work_write(memory.journal.as_ref(), &next, work.generation).await?;
        tracing::debug!(%step, status = %next.status, "instance step recorded");
        if next.status == InstanceStatus::Failed {
            let event = Event {
                id: format!("{}-{}-{}", next.execution_id, work.generation, EventKind::InstanceFailed),
                name: spec.kind.template_name().to_string(),
                level: EventLevel::Critical,
                kind: EventKind::InstanceFailed,
                group_id: spec.group_id.clone(),
                execution_id: Some(task_id.clone()),
                content: format!(
                    "instance {} failed at {}: {}",
                    next.instance_id,
                    step,
                    next.error_message.clone().unwrap_or_default()
                ),
                created_at: now_millis(),
            };
            self.store.event_insert(&event).await?;
        }
        let running = next.status == InstanceStatus::Running;
        *current = Some(Versioned { value: next, generation });
        Ok(running)
    }

    /// Performs one step (R5). Failures of the step are an outcome; only the store's own
    /// errors are returned as errors (the step is then performed again).
    #[doc(hidden)]
    pub async fn perform_step(
        &self,
        spec: &RollingUpdateSpec,
        work: &InstanceWork,
        step: Step,
    ) -> Result<StepOutcome, ServiceError> {
        self.perform_step_with(spec, work, step, &mut StepMemory::default()).await
    }

    /// [`Engine::perform_step`] with `memory`: the instance as the previous step of this worker
    /// wrote it, if any, to start from instead of reading it again (every write from it
    /// compares its generation; see [`Engine::instance_modify_from`]). Left holding the
    /// instance as this step wrote it, or empty.
    #[tracing::instrument(level = "error", skip_all, fields(instance_id = %work.instance_id, %step))]
    async fn perform_step_with(
        &self,
        spec: &RollingUpdateSpec,
        work: &InstanceWork,
        step: Step,
        memory: &mut StepMemory,
    ) -> Result<StepOutcome, ServiceError> {
        let id = &work.instance_id;
        let result: Result<StepReport, ServiceError> = match step {
            Step::Unprotect => self.set_protected_with(id, false, memory).await.map(|()| StepReport::default()),
            Step::EnterStandby => self
                .standby_with(id, true, memory)
                .await
                .map(|weights| StepReport { saved_weights: Some(weights), ..StepReport::default() }),
            Step::Drain => {
                // The group's drain timeout matters only while connections remain.
                let timeout = async {
                    Ok(match self.store.group_get(&spec.group_id).await? {
                        Some(group) => Duration::from_secs(u64::from(group.value.drain_timeout_s)),
                        None => Duration::ZERO,
                    })
                };
                self.drain_with(id, timeout).await.map(|()| StepReport::default())
            }
            Step::Apply => return self.apply(spec, work, memory).await,
            Step::HealthCheck => self.health_gate(id, memory).await,
            Step::ExitStandby => self.standby_with(id, false, memory).await.map(|_| StepReport::default()),
            Step::Reprotect => self.set_protected_with(id, true, memory).await.map(|()| StepReport::default()),
            Step::Done => Ok(StepReport::default()),
        };
        match result {
            Ok(report) => Ok(StepOutcome::Done(report)),
            Err(ServiceError::Store(error)) => Err(ServiceError::Store(error)),
            Err(ServiceError::Conflict) => Err(ServiceError::Conflict),
            Err(error) => Ok(failed(error.code(), error.to_string(), StepReport::default())),
        }
    }

    /// The health gate (R5): waits for the instance's health check to pass, and records its
    /// health as the check found it (R16): Unhealthy when it failed, Healthy when it passed.
    async fn health_gate(&self, id: &InstanceId, memory: &mut StepMemory) -> Result<StepReport, ServiceError> {
        let result = self.await_healthy(id).await;
        let health = match &result {
            Ok(_) => HealthStatus::Healthy,
            Err(error) if error.code() == Code::HealthCheckFailed => HealthStatus::Unhealthy,
            Err(_) => return result,
        };
        let read = memory.instance.take();
        if read.as_ref().is_some_and(|instance| instance.value.health_status == health) {
            memory.instance = read;
            return result;
        }
        memory.instance = self
            .instance_modify_from(id, read, memory.journal.as_ref(), |instance| instance.health_status = health)
            .await?;
        result
    }

    async fn await_healthy(&self, id: &InstanceId) -> Result<StepReport, ServiceError> {
        let deadline = Instant::now() + self.config.health_timeout;
        loop {
            match self.fleet.health(id).await {
                Ok(HealthStatus::Healthy) => return Ok(StepReport::default()),
                Ok(_) | Err(FleetError::Unavailable(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(self.config.health_poll).await;
                }
                Ok(_) => {
                    return Err(ServiceError::refused(
                        Code::HealthCheckFailed,
                        format!("instance {id} did not become healthy within {:?}", self.config.health_timeout),
                    ))
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Calls the fleet, re-trying while its outcome is unknown (the calls are idempotent).
    async fn fleet_call<T, F, Fut>(&self, call: F) -> Result<T, FleetError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, FleetError>>,
    {
        self.retry_unknown(call).await
    }

    /// The change itself, by kind. A change whose call failed is looked at again: what the
    /// instance became is recorded, and the step reports whether it was changed (R16).
    async fn apply(
        &self,
        spec: &RollingUpdateSpec,
        work: &InstanceWork,
        memory: &mut StepMemory,
    ) -> Result<StepOutcome, ServiceError> {
        let id = &work.instance_id;
        // One run per attempt: redoing this step after a crash reports the run, not a second one.
        let run = RunId::of(&work.execution_id, work.attempt);
        if let (Change::Image { image_id }, Some(remembered)) = (&spec.change, memory.instance.take()) {
            return self.apply_image_from(id, image_id, remembered, memory).await;
        }
        let Some(instance) = self.store.instance_get(id).await? else {
            return Ok(failed(
                Code::InvalidInstanceIdNotFound,
                instance_not_found(id).to_string(),
                StepReport::default(),
            ));
        };
        match &spec.change {
            Change::Image { image_id } => {
                let report = StepReport { before: Some(instance.value.image_id.clone()), ..StepReport::default() };
                let address = match self.fleet_call(|| self.fleet.replace_image(id, image_id)).await {
                    Ok(address) => address,
                    Err(error) => {
                        let outcome = failed(error.code(), error.to_string(), report);
                        return self.image_change_failed(id, image_id, instance, memory, outcome).await;
                    }
                };
                if let Err(error) = self.follow_address(&instance.value, &address).await {
                    let outcome = failed(error.code(), error.to_string(), report);
                    return self.image_change_failed(id, image_id, instance, memory, outcome).await;
                }
                self.record_reimaged(id, instance, memory, image_id, &address, now_millis()).await?;
                Ok(StepOutcome::Done(report))
            }
            Change::Script(script) => match self.fleet_call(|| self.fleet.run_script(id, script, &run)).await {
                Err(error) => Ok(failed(error.code(), error.to_string(), StepReport::default())),
                Ok(run) => {
                    // The script ran, whatever its exit code (R13): the instance was changed.
                    let report = StepReport {
                        exit_code: run.exit_code,
                        output: Some((run.output.clone(), run.truncated)),
                        ..StepReport::default()
                    };
                    let now = now_millis();
                    memory.instance = self
                        .instance_modify_from(id, Some(instance), memory.journal.as_ref(), |instance| {
                            instance.changed_at = Some(now)
                        })
                        .await?;
                    Ok(changed(script_outcome(&run, script.timeout_s, report)))
                }
            },
            Change::Package { name, version, action } => {
                let before = instance.value.packages.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
                let report = StepReport { before: Some(before.unwrap_or_default()), ..StepReport::default() };
                let Some(package) = self.store.package_get(name, version).await? else {
                    return Ok(failed(
                        Code::EntityNotExistsPackage,
                        format!("the package {name} version {version} does not exist"),
                        report,
                    ));
                };
                let operation = PackageOperation {
                    name: name.clone(),
                    version: version.clone(),
                    action: *action,
                    script: match action {
                        PackageAction::Install => package.install_script.clone(),
                        PackageAction::Uninstall => package.uninstall_script.clone(),
                    },
                    timeout_s: rollscale_core::params::DEFAULT_SCRIPT_TIMEOUT_S,
                };
                match self.fleet_call(|| self.fleet.apply_package(id, &operation, &run)).await {
                    Err(error) => {
                        // The script may not have run: changed only if the packages did.
                        let outcome = failed(error.code(), error.to_string(), report);
                        let before = instance.value.packages.clone();
                        let took_effect = |observed: &InstanceObservation| observed.packages != before;
                        let record = |instance: &mut Instance, observed: &InstanceObservation| {
                            instance.packages.clone_from(&observed.packages)
                        };
                        self.change_failed(id, instance, memory, outcome, false, took_effect, record).await
                    }
                    Ok(run) => {
                        let report = StepReport {
                            exit_code: run.exit_code,
                            output: Some((run.output.clone(), run.truncated)),
                            ..report
                        };
                        let outcome = script_outcome(&run, operation.timeout_s, report);
                        if matches!(outcome, StepOutcome::Done(_)) {
                            let now = now_millis();
                            memory.instance = self
                                .instance_modify_from(id, Some(instance), memory.journal.as_ref(), |instance| {
                                    instance.packages.retain(|(n, _)| n != name);
                                    if *action == PackageAction::Install {
                                        instance.packages.push((name.clone(), version.clone()));
                                        instance.packages.sort();
                                    }
                                    instance.changed_at = Some(now);
                                })
                                .await?;
                            return Ok(outcome);
                        }
                        // The script ran and failed: the instance was changed; its packages
                        // are what it reports now.
                        let observed = self.observe_after_failure(id).await;
                        self.record_failed_change(id, instance, memory, false, |instance| {
                            if let Some(observed) = &observed {
                                instance.packages.clone_from(&observed.packages);
                            }
                        })
                        .await?;
                        Ok(changed(outcome))
                    }
                }
            }
            Change::ContainerGroup { update_type, containers } => {
                let report = StepReport {
                    before: serde_json::to_string(&instance.value.containers).ok(),
                    ..StepReport::default()
                };
                let address = match self.fleet_call(|| self.fleet.update_containers(id, *update_type, containers)).await
                {
                    Ok(address) => address,
                    Err(error) => {
                        let outcome = failed(error.code(), error.to_string(), report);
                        return self.containers_change_failed(id, instance, memory, outcome).await;
                    }
                };
                if let Err(error) = self.follow_address(&instance.value, &address).await {
                    let outcome = failed(error.code(), error.to_string(), report);
                    return self.containers_change_failed(id, instance, memory, outcome).await;
                }
                let observed = self.fleet_call(|| self.fleet.observe(id)).await.ok().flatten();
                let now = now_millis();
                memory.instance = self
                    .instance_modify_from(id, Some(instance), memory.journal.as_ref(), |instance| {
                        if let Some(observed) = &observed {
                            instance.containers.clone_from(&observed.containers);
                        }
                        moved_to(instance, &address);
                        instance.changed_at = Some(now);
                    })
                    .await?;
                Ok(StepOutcome::Done(report))
            }
        }
    }

    /// The instance as the fleet reports it after a change whose call failed; `None` when it
    /// is gone or cannot be looked at (then nothing is assumed: the change is not counted).
    async fn observe_after_failure(&self, id: &InstanceId) -> Option<InstanceObservation> {
        match self.fleet_call(|| self.fleet.observe(id)).await {
            Ok(observed) => observed,
            Err(error) => {
                tracing::warn!(instance_id = %id, %error, "could not look at the instance after its change failed");
                None
            }
        }
    }

    /// Records a change that took effect although its step failed (R16): `record` writes what
    /// the instance reports, `changed_at` is now (its health check's grace period runs from
    /// it), and, for a change of what it runs (`probe`), its health is what its check answers
    /// now: Unhealthy unless Healthy.
    async fn record_failed_change(
        &self,
        id: &InstanceId,
        recorded: Versioned<Instance>,
        memory: &mut StepMemory,
        probe: bool,
        record: impl Fn(&mut Instance),
    ) -> Result<(), ServiceError> {
        let health = match probe {
            false => None,
            true => Some(match self.fleet.health(id).await {
                Ok(HealthStatus::Healthy) => HealthStatus::Healthy,
                Ok(_) | Err(_) => HealthStatus::Unhealthy,
            }),
        };
        let now = now_millis();
        memory.instance = self
            .instance_modify_from(id, Some(recorded), memory.journal.as_ref(), |instance| {
                record(instance);
                if let Some(health) = health {
                    instance.health_status = health;
                }
                instance.changed_at = Some(now);
            })
            .await?;
        Ok(())
    }

    /// After a failed image replacement (or a failed follow of the instance's new address):
    /// if the instance runs `image_id` all the same, it is recorded so, with its packages and
    /// health as observed, and the step reports that it changed the instance.
    async fn image_change_failed(
        &self,
        id: &InstanceId,
        image_id: &str,
        recorded: Versioned<Instance>,
        memory: &mut StepMemory,
        outcome: StepOutcome,
    ) -> Result<StepOutcome, ServiceError> {
        let took_effect = |observed: &InstanceObservation| observed.image_id == image_id;
        let record = |instance: &mut Instance, observed: &InstanceObservation| {
            instance.image_id.clone_from(&observed.image_id);
            instance.packages.clone_from(&observed.packages);
        };
        self.change_failed(id, recorded, memory, outcome, true, took_effect, record).await
    }

    /// After a failed container update (or a failed follow of the new address): if the
    /// instance's containers changed all the same, they are recorded as observed, with its
    /// health, and the step reports that it changed the instance.
    async fn containers_change_failed(
        &self,
        id: &InstanceId,
        recorded: Versioned<Instance>,
        memory: &mut StepMemory,
        outcome: StepOutcome,
    ) -> Result<StepOutcome, ServiceError> {
        let before = recorded.value.containers.clone();
        let took_effect = |observed: &InstanceObservation| observed.containers != before;
        let record = |instance: &mut Instance, observed: &InstanceObservation| {
            instance.containers.clone_from(&observed.containers)
        };
        self.change_failed(id, recorded, memory, outcome, true, took_effect, record).await
    }

    /// After a change whose call failed (`outcome`): when the instance, looked at again, shows
    /// that the change took effect all the same (`took_effect`), what it shows is recorded
    /// (`record`, by [`Engine::record_failed_change`], with its health when `probe`) and the
    /// step reports that it changed the instance (R16). Otherwise the outcome stands.
    #[allow(clippy::too_many_arguments)]
    async fn change_failed(
        &self,
        id: &InstanceId,
        recorded: Versioned<Instance>,
        memory: &mut StepMemory,
        outcome: StepOutcome,
        probe: bool,
        took_effect: impl Fn(&InstanceObservation) -> bool,
        record: impl Fn(&mut Instance, &InstanceObservation),
    ) -> Result<StepOutcome, ServiceError> {
        let Some(observed) = self.observe_after_failure(id).await else { return Ok(outcome) };
        if !took_effect(&observed) {
            return Ok(outcome);
        }
        self.record_failed_change(id, recorded, memory, probe, |instance| record(instance, &observed)).await?;
        Ok(changed(outcome))
    }
}

impl Engine {
    /// An image change starting from `remembered`, the instance as this worker's previous step
    /// wrote it, instead of reading it first. What the copy says (the image before, and that
    /// the instance exists) is only relied on once the write that follows the replacement has
    /// compared its generation; on any other path the instance is read afresh, and the
    /// outcome is the one [`Engine::apply`] reaches by reading first.
    async fn apply_image_from(
        &self,
        id: &InstanceId,
        image_id: &str,
        remembered: Versioned<Instance>,
        memory: &mut StepMemory,
    ) -> Result<StepOutcome, ServiceError> {
        let not_found =
            || failed(Code::InvalidInstanceIdNotFound, instance_not_found(id).to_string(), StepReport::default());
        let before = |instance: &Versioned<Instance>| StepReport {
            before: Some(instance.value.image_id.clone()),
            ..StepReport::default()
        };
        let address = match self.fleet_call(|| self.fleet.replace_image(id, image_id)).await {
            Ok(address) => address,
            Err(error) => {
                // The store still has the image from before: this step has not written it.
                return Ok(match self.store.instance_get(id).await? {
                    None => not_found(),
                    Some(current) => {
                        let outcome = failed(error.code(), error.to_string(), before(&current));
                        self.image_change_failed(id, image_id, current, memory, outcome).await?
                    }
                });
            }
        };
        if let Err(error) = self.follow_address(&remembered.value, &address).await {
            let Some(current) = self.store.instance_get(id).await? else { return Ok(not_found()) };
            let outcome = failed(error.code(), error.to_string(), before(&current));
            return self.image_change_failed(id, image_id, current, memory, outcome).await;
        }
        let now = now_millis();
        let mut next = remembered.value.clone();
        reimaged(&mut next, image_id, now);
        moved_to(&mut next, &address);
        if next != remembered.value {
            match self.instance_write(memory.journal.as_ref(), &next, remembered.generation).await {
                Ok(generation) => {
                    let report = before(&remembered);
                    memory.instance = Some(Versioned { value: next, generation });
                    return Ok(StepOutcome::Done(report));
                }
                Err(StoreError::Conflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        // The copy could not vouch for itself: read the instance as it is (this step has not
        // written the image yet, so it still shows the one from before).
        let Some(current) = self.store.instance_get(id).await? else { return Ok(not_found()) };
        let report = before(&current);
        if let Err(error) = self.follow_address(&current.value, &address).await {
            let outcome = failed(error.code(), error.to_string(), report);
            return self.image_change_failed(id, image_id, current, memory, outcome).await;
        }
        self.record_reimaged(id, current, memory, image_id, &address, now).await?;
        Ok(StepOutcome::Done(report))
    }

    /// Records an image change that was made: the instance, from `current` and through the
    /// worker's journal, runs `image_id` since `now` and serves at `address` (when said).
    async fn record_reimaged(
        &self,
        id: &InstanceId,
        current: Versioned<Instance>,
        memory: &mut StepMemory,
        image_id: &str,
        address: &str,
        now: Millis,
    ) -> Result<(), ServiceError> {
        memory.instance = self
            .instance_modify_from(id, Some(current), memory.journal.as_ref(), |instance| {
                reimaged(instance, image_id, now);
                moved_to(instance, address);
            })
            .await?;
        Ok(())
    }
}

/// The instance after its image became `image_id`, at `now`: a new system disk, so no package
/// installed on the old one is left (the drivers report the same); changed now, so its health
/// check's grace period starts again.
fn reimaged(instance: &mut Instance, image_id: &str, now: Millis) {
    if instance.image_id != image_id {
        instance.image_id = image_id.to_string();
        instance.packages.clear();
    }
    instance.changed_at = Some(now);
}

/// Records where the instance serves after a change, when the backend said.
fn moved_to(instance: &mut Instance, address: &str) {
    if !address.is_empty() {
        instance.address = address.to_string();
    }
}

fn failed(code: Code, message: String, report: StepReport) -> StepOutcome {
    StepOutcome::Failed { code: code.as_str().to_string(), message, report }
}

/// `outcome`, saying that the step changed the instance if it failed (R16).
fn changed(outcome: StepOutcome) -> StepOutcome {
    match outcome {
        StepOutcome::Failed { code, message, report } => {
            StepOutcome::Failed { code, message, report: StepReport { changed: true, ..report } }
        }
        done => done,
    }
}

/// R13: a non-zero exit code or a timeout fails the instance.
fn script_outcome(run: &rollscale_fleet::ScriptOutcome, timeout_s: u32, report: StepReport) -> StepOutcome {
    if run.timed_out {
        failed(Code::ScriptTimeout, format!("the script did not finish within {timeout_s} s"), report)
    } else {
        match run.exit_code {
            Some(0) => StepOutcome::Done(report),
            Some(code) => failed(Code::ScriptFailed, format!("the script exited with code {code}"), report),
            None => failed(Code::ScriptFailed, "the script ended without an exit code".into(), report),
        }
    }
}

/// The target positions `[from, to)` of the current batch; empty outside a batch.
fn batch_positions(task: &TaskState) -> (i64, i64) {
    match task.phase {
        Phase::Batch { index, .. } if index < task.n_batches() => {
            let from: u32 = task.batch_sizes[..index as usize].iter().sum();
            (i64::from(from), i64::from(from + task.batch_sizes[index as usize]))
        }
        _ => (0, 0),
    }
}

fn summary_batch(task: &TaskState) -> u32 {
    task.current_batch().map(|index| index + 1).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    //! The worker's remembered copy of its instance must never stand in for the store: a copy
    //! that went stale between steps costs a fresh read, and the outcome is the one reading
    //! first would give.

    use crate::journal::StepMemory;
    use crate::service::{NewConfiguration, NewGroup};
    use crate::{Engine, EngineConfig, Service};
    use rollscale_core::domain::{Instance, LifecycleState};
    use rollscale_core::params::{parse_start, resolve, RollingUpdateSpec};
    use rollscale_core::task::StepOutcome;
    use rollscale_fleet::sim::{SimConfig, SimFleet, SimLbConfig, SimLoadBalancer};
    use rollscale_store::{Store, Versioned};
    use std::sync::Arc;

    async fn one_instance() -> (tempfile::TempDir, Arc<Engine>, RollingUpdateSpec, Versioned<Instance>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("store");
        let fleet = SimFleet::new(SimConfig { latency_ms: 0, ..SimConfig::default() });
        let lb = SimLoadBalancer::new(SimLbConfig::default());
        let engine = Engine::new(store.clone(), Arc::new(fleet), Arc::new(lb), EngineConfig::default());
        let service = Service::new(engine.clone());
        service.create_image("old", None, None).await.expect("image");
        service.create_image("new", None, None).await.expect("image");
        let lb = service.create_load_balancer("lb", 100).await.expect("lb");
        let group = service
            .create_group(NewGroup {
                name: "g".into(),
                max_size: 1,
                desired_capacity: Some(1),
                load_balancer_ids: vec![lb.id],
                ..NewGroup::default()
            })
            .await
            .expect("group");
        service
            .create_configuration(&group.id, NewConfiguration { image_id: "old".into(), ..NewConfiguration::default() })
            .await
            .expect("configuration");
        let group = service.enable_group(&group.id, None).await.expect("enable");
        service.reconcile_group(&group).await.expect("reconcile");
        let instance = store.instance_list(Some(&group.id)).await.expect("list").remove(0);
        let params = serde_json::json!({"invokeType": "invoke", "scalingGroupId": group.id, "imageId": "new"});
        let spec =
            resolve(parse_start("ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup", &params).unwrap(), None)
                .expect("spec");
        (dir, engine, spec, instance)
    }

    fn work_of(id: &rollscale_core::ids::InstanceId) -> rollscale_core::task::InstanceWork {
        let child = rollscale_core::ids::ExecutionId::from_random(1);
        rollscale_core::task::InstanceWork::new(child, id.clone(), 0, 0, false).start(0)
    }

    fn before(outcome: &StepOutcome) -> Option<String> {
        match outcome {
            StepOutcome::Done(report) => report.before.clone(),
            StepOutcome::Failed { .. } => panic!("the step failed: {outcome:?}"),
        }
    }

    #[tokio::test]
    async fn a_remembered_instance_is_written_from_when_still_current() {
        let (_dir, engine, spec, instance) = one_instance().await;
        let mut memory = StepMemory::default();
        engine.standby_with(&instance.value.id, true, &mut memory).await.expect("standby");
        let remembered = memory.instance.clone().expect("remembered");
        assert_eq!(remembered, engine.store.instance_get(&instance.value.id).await.unwrap().unwrap());
        let outcome = engine.apply(&spec, &work_of(&instance.value.id), &mut memory).await.expect("apply");
        assert_eq!(before(&outcome).as_deref(), Some("old"));
        let stored = engine.store.instance_get(&instance.value.id).await.unwrap().unwrap();
        assert_eq!(stored.value.image_id, "new");
        assert_eq!(memory.instance, Some(stored));
    }

    #[tokio::test]
    async fn a_stale_remembered_instance_loses_no_update_and_reports_the_stored_image() {
        let (_dir, engine, spec, instance) = one_instance().await;
        let id = instance.value.id.clone();
        let mut memory = StepMemory::default();
        engine.standby_with(&id, true, &mut memory).await.expect("standby");
        // Someone else changes the instance after the copy was taken, including its image.
        let mut stale = memory.instance.clone().expect("remembered");
        stale.value.image_id = "a-copy-that-lies".into();
        engine
            .instance_modify(&id, |instance| {
                instance.tags.push("by-someone-else".into());
                instance.image_id = "other".into();
            })
            .await
            .expect("modify");
        let mut memory = StepMemory { instance: Some(stale), journal: None };
        let outcome = engine.apply(&spec, &work_of(&id), &mut memory).await.expect("apply");
        assert_eq!(before(&outcome).as_deref(), Some("other"), "the image before is the stored one");
        let stored = engine.store.instance_get(&id).await.unwrap().unwrap();
        assert_eq!(stored.value.image_id, "new");
        assert!(stored.value.tags.contains(&"by-someone-else".to_string()), "no lost update");
        assert_eq!(stored.value.lifecycle_state, LifecycleState::Standby);
        assert_eq!(memory.instance, Some(stored));
        // A stale copy for the other steps: the write conflicts and is redone from the store.
        let mut stale = memory.instance.clone().unwrap();
        engine.instance_modify(&id, |instance| instance.tags.push("again".into())).await.expect("modify");
        stale.value.tags.clear();
        let mut memory = StepMemory { instance: Some(stale), journal: None };
        engine.standby_with(&id, false, &mut memory).await.expect("exit");
        let stored = engine.store.instance_get(&id).await.unwrap().unwrap();
        assert_eq!(stored.value.lifecycle_state, LifecycleState::InService);
        assert_eq!(stored.value.tags, vec!["by-someone-else".to_string(), "again".to_string()]);
        assert_eq!(memory.instance, Some(stored));
    }

    #[tokio::test]
    async fn a_remembered_instance_that_needs_no_change_is_checked_against_the_store() {
        let (_dir, engine, _spec, instance) = one_instance().await;
        let id = instance.value.id.clone();
        // The copy says InService already; the store says Standby: ExitStandby must still write.
        engine.enter_standby(&id).await.expect("standby");
        let mut copy = engine.store.instance_get(&id).await.unwrap().unwrap();
        copy.value.lifecycle_state = LifecycleState::InService;
        let mut memory = StepMemory { instance: Some(copy), journal: None };
        engine.standby_with(&id, false, &mut memory).await.expect("exit");
        let stored = engine.store.instance_get(&id).await.unwrap().unwrap();
        assert_eq!(stored.value.lifecycle_state, LifecycleState::InService);
    }
}
