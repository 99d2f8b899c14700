//! Image update tasks (`ACS-ESS-CreateImageAndUpdateScalingConfiguration`): the service's
//! commands and queries, the scheduler that fires due tasks, and the worker that performs one
//! firing (make the image, then update the configurations), every step committed before the
//! next.
//!
//! The scheduler reads the time from `EngineConfig::clock`. At each tick it looks at every
//! unfinished image update execution in the store: a due task fires (its child and its next
//! firing are written in one transaction), a task whose child ended waits again or ends, a
//! firing that is not being performed (after a restart) is resumed. A firing looks its image up
//! by name (in the catalog, then on the fleet) before making it, so a redo after a crash makes
//! no second image.

use crate::error::configuration_not_found;
use crate::{random_bits, Service, ServiceError};
use rollscale_core::domain::{Event, EventKind, EventLevel, GroupType, Image, LifecycleState, Millis, OsType};
use rollscale_core::ids::{ExecutionId, IdFilter, ScalingConfigurationId, ScalingGroupId};
use rollscale_core::image_task::{ImageUpdateExecution, ImageUpdateSpec, TEMPLATE_NAME};
use rollscale_core::task::TaskStatus;
use rollscale_core::Code;
use rollscale_fleet::FleetError;
use rollscale_store::{StoreError, Versioned};
use std::sync::Arc;

fn execution_not_found(id: &ExecutionId) -> ServiceError {
    ServiceError::refused(Code::EntityNotExistsExecution, format!("the image update task {id} does not exist"))
}

/// Removes a firing from the engine's set of firings being performed when its worker ends.
struct FiringGuard {
    engine: Arc<crate::Engine>,
    id: ExecutionId,
}

impl Drop for FiringGuard {
    fn drop(&mut self) {
        self.engine.image_firings.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

/// What a firing step came to.
enum Step {
    /// Committed; the next step follows.
    Next,
    /// The firing failed for this reason (committed by the caller).
    Fail(String),
    /// The execution is final.
    Done,
}

impl Service {
    fn clock_now(&self) -> Millis {
        self.engine.config.clock.now()
    }

    /// `StartExecution` of the template: checks the parameters, the instance and every
    /// configuration (it exists, its group is of the ECS type), then writes the task. Without a
    /// trigger it fires at once; with one it waits for its first firing.
    pub async fn start_image_update(&self, spec: ImageUpdateSpec) -> Result<ImageUpdateExecution, ServiceError> {
        let mut spec = spec;
        let now = self.clock_now();
        let schedule = spec.first_schedule(now)?;
        let store = &self.engine.store;
        let instance = store
            .instance_get(&spec.instance_id)
            .await?
            .ok_or_else(|| crate::error::instance_not_found(&spec.instance_id))?
            .value;
        if schedule.is_none() && matches!(instance.lifecycle_state, LifecycleState::Pending | LifecycleState::Removing)
        {
            return Err(ServiceError::refused(
                Code::IncorrectInstanceStatus,
                format!(
                    "the instance {} is {}; an image is made from a running instance",
                    instance.id, instance.lifecycle_state
                ),
            ));
        }
        let mut group_ids: Vec<ScalingGroupId> = Vec::new();
        for configuration_id in &spec.configuration_ids {
            let group = match self.configuration_group(configuration_id).await? {
                Ok(group) => group,
                Err(message) => return Err(ServiceError::refused(Code::IncorrectScalingGroupType, message)),
            };
            if !group_ids.contains(&group) {
                group_ids.push(group);
            }
        }
        spec.group_ids = group_ids;
        let id = ExecutionId::from_random(random_bits());
        let execution = match schedule {
            None => ImageUpdateExecution::run_now(id, spec, now),
            Some(schedule) => {
                let first = schedule.next_after(now).ok_or_else(|| {
                    ServiceError::refused(Code::InvalidParameter, "the timerTrigger has no firing left")
                })?;
                ImageUpdateExecution::scheduled(id, spec, first, now)
            }
        };
        store.image_execution_insert(&execution, now).await?;
        let content = match &execution.schedule {
            None => format!(
                "image update task started: image {} from {}",
                image_name_of(&execution),
                execution.spec.instance_id
            ),
            Some(schedule) => format!(
                "image update task scheduled ({}); first firing at {}",
                trigger_text(&execution),
                schedule.next_fire_at.map(rollscale_core::schedule::format_utc).unwrap_or_default()
            ),
        };
        self.image_event(&execution, EventKind::Started, EventLevel::Info, content).await?;
        tracing::info!(execution_id = %execution.id, "image update task started");
        if execution.firing.is_some() {
            self.spawn_firing(execution.id.clone());
        } else {
            self.engine.image_wake.notify_one();
        }
        Ok(execution)
    }

    /// The group of a configuration: `Ok(Err(why))` when it is not an ECS group.
    async fn configuration_group(
        &self,
        id: &ScalingConfigurationId,
    ) -> Result<Result<ScalingGroupId, String>, ServiceError> {
        let store = &self.engine.store;
        let configuration = store.configuration_get(id).await?.ok_or_else(|| configuration_not_found(id))?.value;
        let group = store.group_get(&configuration.group_id).await?.ok_or_else(|| configuration_not_found(id))?.value;
        if group.group_type != GroupType::ECS {
            return Ok(Err(format!(
                "the scaling configuration {id} belongs to the {} scaling group {}; image update tasks are for \
                 ECS-type groups only",
                group.group_type, group.id
            )));
        }
        Ok(Ok(group.id))
    }

    /// Whether `id` names an image update execution (a task or a firing).
    pub async fn is_image_update(&self, id: &ExecutionId) -> Result<bool, ServiceError> {
        Ok(self.engine.store.image_execution_get(id).await?.is_some())
    }

    /// An image update execution and its firings (none for a task that runs now, or a firing).
    pub async fn image_update(
        &self,
        id: &ExecutionId,
    ) -> Result<(ImageUpdateExecution, Vec<ImageUpdateExecution>), ServiceError> {
        let store = &self.engine.store;
        let execution = store.image_execution_get(id).await?.ok_or_else(|| execution_not_found(id))?.value;
        let children = if execution.schedule.is_some() {
            store.image_execution_children(id).await?.into_iter().map(|c| c.value).collect()
        } else {
            Vec::new()
        };
        Ok((execution, children))
    }

    /// The image update tasks, newest first; of one group's configurations when given.
    pub async fn image_updates(
        &self,
        group_id: &IdFilter<ScalingGroupId>,
    ) -> Result<Vec<ImageUpdateExecution>, ServiceError> {
        if group_id.is_nothing() {
            return Ok(Vec::new());
        }
        let tasks = self.engine.store.image_execution_list_tasks().await?;
        Ok(tasks
            .into_iter()
            .map(|task| task.value)
            .filter(|task| group_id.id().is_none_or(|group| task.spec.group_ids.contains(group)))
            .collect())
    }

    /// CancelExecution of an image update task: no further firing; a firing in flight
    /// finishes. A firing itself is not cancelled.
    pub async fn cancel_image_update(&self, id: &ExecutionId) -> Result<ImageUpdateExecution, ServiceError> {
        let next = self
            .engine
            .image_execution_modify(id, |current| async move { Ok(current.cancel(self.clock_now())?) })
            .await?
            .ok_or_else(|| execution_not_found(id))?;
        let content = match next.schedule.as_ref().and_then(|s| s.current_child.clone()) {
            Some(child) => format!("image update task cancelled; the firing {child} in flight finishes"),
            None => "image update task cancelled; no further firing".to_string(),
        };
        self.image_event(&next, EventKind::Cancelled, EventLevel::Info, content).await?;
        Ok(next)
    }

    /// Runs the image update scheduler until the engine is halted: a tick at once (which
    /// resumes what a restart interrupted), then every `EngineConfig::image_task_interval` or
    /// when woken. With replicas on PostgreSQL, only the replica holding the reconciler's lease
    /// ticks (the others wait for it to pass to them).
    pub fn spawn_image_scheduler(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        let handle = tokio::spawn(async move {
            let mut failing = false;
            loop {
                // With replicas, the one that runs the reconciler runs the schedules too, so a
                // firing is started by one replica only.
                let lead = service.lead_reconciler().await.unwrap_or_else(|error| {
                    tracing::warn!(%error, "could not learn whether this replica runs the schedules");
                    false
                });
                // A tick is background work, which none starts once the engine is stopping.
                let ticked = match (lead, service.engine.busy()) {
                    (true, Some(_busy)) => service.image_scheduler_tick().await,
                    _ => Ok(()),
                };
                match ticked {
                    Ok(()) => failing = false,
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "the image update scheduler's tick failed");
                    }
                    Err(_) => {}
                }
                tokio::select! {
                    _ = tokio::time::sleep(service.engine.config.image_task_interval) => {}
                    _ = service.engine.image_wake.notified() => {}
                }
            }
        });
        self.engine.track(handle.abort_handle());
        handle
    }

    /// One look at every unfinished image update execution, as of the clock's now: due tasks
    /// fire (once, however many slots were missed), tasks whose firing ended wait again or
    /// end, expired ones end, firings not being performed are resumed.
    pub async fn image_scheduler_tick(&self) -> Result<(), ServiceError> {
        let store = &self.engine.store;
        for execution in store.image_execution_list_unfinished().await? {
            let now = self.clock_now();
            if execution.value.firing.is_some() {
                if execution.value.status == TaskStatus::Running {
                    self.spawn_firing(execution.value.id.clone());
                }
                continue;
            }
            let mut parent = execution;
            // A child that ended: back to Waiting (or Success at the expiry).
            if let Some(child_id) = parent.value.schedule.as_ref().and_then(|s| s.current_child.clone()) {
                match store.image_execution_get(&child_id).await? {
                    Some(child) if !child.value.status.is_final() => continue,
                    Some(child) => {
                        let next = parent.value.child_ended(&child.value, now);
                        parent = self.write_parent(&parent, next, now).await?;
                    }
                    None => continue, // cannot be: written with the parent
                }
            }
            if let Some(next) = parent.value.expire(now) {
                self.write_parent(&parent, next, now).await?;
                continue;
            }
            if parent.value.is_due(now) {
                let (next, child) = parent.value.fire(ExecutionId::from_random(random_bits()), now)?;
                match store.image_execution_fire(&next, parent.generation, &child, now).await {
                    Err(StoreError::Conflict { .. }) => continue, // another replica fired it
                    other => {
                        other?;
                    }
                }
                let content = format!(
                    "firing {} of the image update task: child execution {}",
                    next.schedule.as_ref().map_or(0, |s| s.firings),
                    child.id
                );
                self.image_event(&next, EventKind::Fired, EventLevel::Info, content).await?;
                self.spawn_firing(child.id.clone());
            }
        }
        Ok(())
    }

    /// Writes a parent's new state; an end is an event.
    async fn write_parent(
        &self,
        current: &Versioned<ImageUpdateExecution>,
        next: ImageUpdateExecution,
        now: Millis,
    ) -> Result<Versioned<ImageUpdateExecution>, ServiceError> {
        let generation = self.engine.store.image_execution_update(&next, current.generation, now).await?;
        if next.status == TaskStatus::Success && current.value.status != TaskStatus::Success {
            let firings = next.schedule.as_ref().map_or(0, |s| s.firings);
            self.image_event(
                &next,
                EventKind::Succeeded,
                EventLevel::Info,
                format!("image update task ended at its expiry after {firings} firing(s)"),
            )
            .await?;
        }
        Ok(Versioned { value: next, generation })
    }

    /// Performs a firing on a task of its own, unless it is being performed already.
    fn spawn_firing(&self, id: ExecutionId) {
        // None once the engine is stopping: the firing is resumed by the schedule's next tick,
        // here or on another replica.
        let Some(busy) = self.engine.busy() else { return };
        if !self.engine.image_firings.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone()) {
            return;
        }
        let guard = FiringGuard { engine: self.engine.clone(), id: id.clone() };
        let service = self.clone();
        // Every line the firing logs carries its id (see `Engine::drive`).
        let span = tracing::error_span!(parent: None, "image_update", execution_id = %id);
        let firing = async move {
            let _guard = guard;
            let _busy = busy;
            if let Err(error) = service.run_firing(&id).await {
                // The scheduler's next tick resumes it.
                tracing::warn!(execution_id = %id, %error, "an image update firing stopped; it is resumed later");
            }
        };
        let handle = tokio::spawn(tracing::Instrument::instrument(firing, span));
        self.engine.track(handle.abort_handle());
    }

    /// A firing's steps, each committed before the next: the image, then the configurations.
    async fn run_firing(&self, id: &ExecutionId) -> Result<(), ServiceError> {
        loop {
            let Some(current) = self.engine.store.image_execution_get(id).await? else { return Ok(()) };
            if current.value.status.is_final() {
                if current.value.parent_id.is_some() {
                    self.engine.image_wake.notify_one();
                }
                return Ok(());
            }
            let step = match current.value.firing.as_ref().and_then(|f| f.image_id.clone()) {
                None => self.make_image(&current).await?,
                Some(image_id) => self.update_configurations(&current, &image_id).await?,
            };
            match step {
                Step::Next => {}
                Step::Done => return Ok(()),
                Step::Fail(message) => {
                    let now = self.clock_now();
                    let next = current.value.failed(&message, now);
                    self.engine.store.image_execution_update(&next, current.generation, now).await?;
                    tracing::warn!(execution_id = %id, %message, "an image update firing failed");
                    self.image_event(
                        &next,
                        EventKind::Failed,
                        EventLevel::Critical,
                        format!("image update failed: {message}"),
                    )
                    .await?;
                }
            }
        }
    }

    /// Step 1: the image, found by its name if a run before a crash made it, else made from
    /// the source instance; then the catalog has it and the firing records it.
    async fn make_image(&self, current: &Versioned<ImageUpdateExecution>) -> Result<Step, ServiceError> {
        let store = &self.engine.store;
        let execution = &current.value;
        let Some(firing) = execution.firing.as_ref() else { return Ok(Step::Done) };
        // Every configuration still there and ECS, before an image is made for them.
        for configuration_id in &execution.spec.configuration_ids {
            match self.configuration_group(configuration_id).await {
                Ok(Ok(_)) => {}
                Ok(Err(message)) => return Ok(Step::Fail(message)),
                Err(error) if error.is_not_found() => {
                    return Ok(Step::Fail(format!("the scaling configuration {configuration_id} no longer exists")))
                }
                Err(error) => return Err(error),
            }
        }
        let instance_id = &execution.spec.instance_id;
        let catalog = store.image_list().await?;
        let mut image_id = catalog.iter().find(|image| image.name == firing.image_name).map(|image| image.id.clone());
        let fleet = &self.engine.fleet;
        if image_id.is_none() {
            image_id = match fleet.find_image_named(&firing.image_name).await {
                Ok(found) => found,
                Err(error) => return Ok(Step::Fail(format!("the fleet could not be asked for the image: {error}"))),
            };
        }
        let image_id = match image_id {
            Some(image_id) => image_id,
            None => {
                let Some(instance) = store.instance_get(instance_id).await? else {
                    return Ok(Step::Fail(format!("the source instance {instance_id} no longer exists")));
                };
                if matches!(instance.value.lifecycle_state, LifecycleState::Pending | LifecycleState::Removing) {
                    return Ok(Step::Fail(format!(
                        "the source instance {instance_id} is {}, not running",
                        instance.value.lifecycle_state
                    )));
                }
                match self.engine.retry_unknown(|| fleet.create_image(instance_id, &firing.image_name)).await {
                    Ok(image_id) => image_id,
                    Err(FleetError::NotFound(_)) => {
                        return Ok(Step::Fail(format!(
                            "the source instance {instance_id} does not exist on the {} fleet",
                            fleet.name()
                        )))
                    }
                    Err(error) => return Ok(Step::Fail(format!("the image could not be made: {error}"))),
                }
            }
        };
        if store.image_get(&image_id).await?.is_none() {
            let os = match store.instance_get(instance_id).await? {
                Some(instance) => catalog
                    .iter()
                    .find(|image| image.id == instance.value.image_id)
                    .map_or_else(|| OsType::guess(&instance.value.image_id), |image| image.os),
                None => OsType::guess(&image_id),
            };
            let image = Image {
                id: image_id.clone(),
                name: firing.image_name.clone(),
                kind: "custom".into(),
                os,
                created_at: firing.fired_at,
            };
            match store.image_insert(&image).await {
                Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        let now = self.clock_now();
        let next = execution.image_made(&image_id, now);
        store.image_execution_update(&next, current.generation, now).await?;
        self.image_event(
            &next,
            EventKind::ImageCreated,
            EventLevel::Info,
            format!("image {image_id} ({}) made from {instance_id}", firing.image_name),
        )
        .await?;
        Ok(Step::Next)
    }

    /// Step 2: every configuration gets the image (one already on it is left as it is), then
    /// the firing succeeds.
    async fn update_configurations(
        &self,
        current: &Versioned<ImageUpdateExecution>,
        image_id: &str,
    ) -> Result<Step, ServiceError> {
        for configuration_id in &current.value.spec.configuration_ids {
            let written = self
                .engine
                .configuration_modify(configuration_id, |mut configuration| async move {
                    configuration.image_id = image_id.to_string();
                    Ok(configuration)
                })
                .await?;
            if written.is_none() {
                return Ok(Step::Fail(format!(
                    "the scaling configuration {configuration_id} no longer exists (the image {image_id} was made)"
                )));
            }
        }
        let now = self.clock_now();
        let next = current.value.configurations_updated(now);
        self.engine.store.image_execution_update(&next, current.generation, now).await?;
        let configurations: Vec<&str> = next.spec.configuration_ids.iter().map(|id| id.as_str()).collect();
        self.image_event(
            &next,
            EventKind::ConfigurationsUpdated,
            EventLevel::Info,
            format!("scaling configurations {} now use the image {image_id}", configurations.join(", ")),
        )
        .await?;
        if next.parent_id.is_some() {
            self.engine.image_wake.notify_one();
        }
        Ok(Step::Done)
    }

    /// Records an event of the execution once (its id is the execution's and the kind's).
    async fn image_event(
        &self,
        execution: &ImageUpdateExecution,
        kind: EventKind,
        level: EventLevel,
        content: String,
    ) -> Result<(), ServiceError> {
        let Some(group_id) = execution.spec.group_ids.first() else { return Ok(()) };
        let content = match &execution.parent_id {
            Some(parent) => format!("{content} (task {parent})"),
            None => content,
        };
        let event = Event {
            // Once per execution, kind and firing: a redo finds it there.
            id: format!("{}-{kind}-{}", execution.id, execution.schedule.as_ref().map_or(0, |s| s.firings)),
            name: TEMPLATE_NAME.to_string(),
            level,
            kind,
            group_id: group_id.clone(),
            execution_id: Some(execution.id.clone()),
            content,
            created_at: self.clock_now(),
        };
        self.engine.store.event_insert(&event).await?;
        Ok(())
    }
}

fn image_name_of(execution: &ImageUpdateExecution) -> &str {
    execution.firing.as_ref().map_or("", |f| f.image_name.as_str())
}

/// `rate 1 day until 2026-12-31T00:00:00Z`, for messages and tables.
pub fn trigger_text(execution: &ImageUpdateExecution) -> String {
    match &execution.spec.trigger {
        None => "now".into(),
        Some(trigger) => {
            let mut text = format!("{} {}", trigger.trigger_type.as_str(), trigger.expression);
            if let Some(zone) = &trigger.time_zone {
                text.push_str(&format!(" ({zone})"));
            }
            if let Some(end) = &trigger.end_date {
                text.push_str(&format!(" until {end}"));
            }
            text
        }
    }
}
