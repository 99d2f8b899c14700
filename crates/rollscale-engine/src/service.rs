//! The service layer: every command and query the RPC API, the CLI and (later) the REST API
//! call. Checks come first and change nothing when they refuse (R3); then the store is written;
//! then the engine is told.

use crate::error::{execution_not_found, group_not_found};
use crate::{now_millis, random_bits, Engine, ServiceError};
use rollscale_core::admission;
use rollscale_core::domain::*;
use rollscale_core::ids::*;
use rollscale_core::params::{self, Change, Kind, RollbackSource, RollingUpdateSpec};
use rollscale_core::plan;
use rollscale_core::task::{InstanceDecision, InstanceStatus, InstanceWork, StatusCounts, TaskState};
use rollscale_core::Code;
use rollscale_store::{Execution, ExecutionFilter, StoreError, Versioned};
use std::sync::Arc;
use std::time::Duration;

/// The handle the API layers hold.
#[derive(Clone)]
pub struct Service {
    pub engine: Arc<Engine>,
}

/// A new scaling group.
#[derive(Clone, Debug, Default)]
pub struct NewGroup {
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

/// A new scaling configuration.
#[derive(Clone, Debug, Default)]
pub struct NewConfiguration {
    pub group_id: String,
    pub name: Option<String>,
    pub image_id: String,
    pub instance_type: Option<String>,
    pub containers: Vec<ContainerSpec>,
}

/// An operator's notification of a task: what the server makes of OOS's `NotifyExecution`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notification {
    /// A paused task goes on (`Approve`).
    Approve,
    /// The task is cancelled (`Reject`).
    Reject,
    /// A decision about one instance (`RetryTask`, `SkipTask`, `CancelTask`), named by its child
    /// execution or by its instance id.
    Decide { instance: String, decision: InstanceDecision },
}

const MAX_STANDBY_BATCH: usize = 100;

fn parse_group_id(text: &str) -> Result<ScalingGroupId, ServiceError> {
    ScalingGroupId::parse(text).ok_or_else(|| group_not_found(text))
}

fn parse_execution_id(text: &str) -> Result<ExecutionId, ServiceError> {
    ExecutionId::parse(text).ok_or_else(|| execution_not_found(text))
}

impl Service {
    pub fn new(engine: Arc<Engine>) -> Service {
        Service { engine }
    }

    fn store(&self) -> &rollscale_store::Store {
        &self.engine.store
    }

    // ---------------------------------------------------------------- rolling updates

    /// Starts the rolling update `request` asks for, once admitted (R3, R4, R12). The server
    /// reads a request from either API with core's `params::parse_start`.
    pub async fn start_rolling_update(&self, request: params::StartRequest) -> Result<TaskState, ServiceError> {
        for attempt in 0.. {
            match self.try_start(request.clone()).await {
                Err(ServiceError::Conflict) if attempt < 5 => continue,
                other => return other,
            }
        }
        Err(ServiceError::Conflict)
    }

    /// `StartExecution` of a rolling-update template with its parameters as JSON text.
    pub async fn start_execution(&self, template_name: &str, parameters: &str) -> Result<TaskState, ServiceError> {
        if Kind::from_template_name(template_name).is_none() {
            return Err(ServiceError::refused(
                Code::EntityNotExistsTemplate,
                format!("the template {template_name} does not exist; rolling updates use the ACS-ESS-RollingUpdateBy* templates"),
            ));
        }
        let parameters: serde_json::Value = if parameters.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_str(parameters).map_err(|error| {
                ServiceError::refused(Code::InvalidParameter, format!("Parameters is not valid JSON: {error}"))
            })?
        };
        self.start_rolling_update(params::parse_start(template_name, &parameters)?).await
    }

    async fn try_start(&self, request: params::StartRequest) -> Result<TaskState, ServiceError> {
        let store = self.store();
        let group =
            store.group_get(&request.group_id).await?.ok_or_else(|| group_not_found(request.group_id.as_str()))?;
        admission::admit_group(&group.value)?;
        let mut source_task: Option<Versioned<TaskState>> = None;
        if let Some(source_id) = &request.source_execution_id {
            source_task =
                Some(store.task_get(source_id).await?.ok_or_else(|| execution_not_found(source_id.as_str()))?);
        }
        let spec = match &source_task {
            None => params::resolve(request.clone(), None)?,
            Some(source) => {
                let latest = store.task_latest_finished(&request.group_id).await?;
                let is_latest_finished = latest.map(|latest| latest.value.id == source.value.id).unwrap_or(false);
                params::resolve(
                    request.clone(),
                    Some(RollbackSource {
                        id: &source.value.id,
                        spec: &source.value.spec,
                        is_waiting: source.value.status == rollscale_core::task::TaskStatus::Waiting,
                        is_latest_finished,
                    }),
                )?
            }
        };
        let active = store.task_active_for_group(&group.value.id).await?;
        let activity_in_progress = self.activity_in_progress(&group.value.id).await?;
        admission::admit_beside(
            &group.value,
            active.as_ref().map(|task| &task.value),
            request.source_execution_id.as_ref(),
            activity_in_progress,
        )?;
        self.check_change(&group.value, &spec).await?;

        let instances: Vec<Instance> =
            store.instance_list(Some(&group.value.id)).await?.into_iter().map(|v| v.value).collect();
        let targets: Vec<InstanceId> = match &source_task {
            None => plan::select_targets(&instances, &spec.lifecycle_states),
            Some(source) => {
                let works = store.work_list(&source.value.id).await?;
                admission::rollback_targets(works.iter().map(|work| &work.value), &instances)
            }
        };

        let mut spec = spec;
        if let Some(rollback) = admission::default_rollback_change(&spec, &instances, &targets) {
            spec.rollback_change = Some(rollback);
        }

        // A Waiting source is cancelled first (R12).
        if let Some(source) = &source_task {
            if source.value.status == rollscale_core::task::TaskStatus::Waiting {
                self.cancel_task(source.value.id.as_str(), false).await?;
                self.wait_final(&source.value.id, Duration::from_secs(30)).await?;
                return Err(ServiceError::Conflict); // start again from a fresh read
            }
        }

        let now = now_millis();
        let id = ExecutionId::from_random(random_bits());
        let sizes = plan::batch_sizes(targets.len(), spec.batch_number);
        let batch_of = plan::batch_of_each(&sizes);
        let protected: std::collections::HashSet<&InstanceId> =
            instances.iter().filter(|i| i.lifecycle_state == LifecycleState::Protected).map(|i| &i.id).collect();
        let works: Vec<InstanceWork> = targets
            .iter()
            .enumerate()
            .map(|(position, instance_id)| {
                let was_protected = protected.contains(instance_id);
                InstanceWork::new(
                    ExecutionId::from_random(random_bits()),
                    instance_id.clone(),
                    batch_of[position],
                    position as u32,
                    was_protected,
                )
            })
            .collect();
        // R4: the processes suspended before the task, never resumed by it; for a rollback, less
        // those its source suspended and left suspended, which it resumes (R12).
        let suspended_before = match &source_task {
            None => group.value.suspended_processes.clone(),
            Some(source) => {
                rollscale_core::task::rollback_suspended_before(&source.value, &group.value.suspended_processes)
            }
        };
        let task = TaskState::new(id.clone(), spec, sizes, suspended_before, now);
        if !store.task_create(&task, &works, group.generation, now).await? {
            return Err(ServiceError::refused(
                Code::IncorrectScalingGroupStatus,
                format!(
                    "the scaling group {} already has a rolling update running; one runs at a time",
                    group.value.id
                ),
            ));
        }
        tracing::info!(execution = %id, group = %group.value.id, kind = %task.spec.kind, targets = works.len(), "rolling update started");
        self.engine.drive(id);
        Ok(task)
    }

    /// R3: the change must name things that exist and fit the group (`core::admission`); each
    /// is looked up only once the checks before it passed (finding an image may add it to the
    /// catalog).
    async fn check_change(&self, group: &ScalingGroup, spec: &RollingUpdateSpec) -> Result<(), ServiceError> {
        let configuration = match &spec.configuration_id {
            Some(id) => self.store().configuration_get(id).await?.map(|configuration| configuration.value),
            None => None,
        };
        admission::admit_configuration(group, spec, configuration.as_ref())?;
        let found = match &spec.change {
            Change::Image { image_id } => self.image_known(image_id).await?,
            Change::Package { name, version, .. } => self.store().package_get(name, version).await?.is_some(),
            Change::Script(_) | Change::ContainerGroup { .. } => true,
        };
        admission::admit_change(group, spec, found).map_err(ServiceError::from)
    }

    async fn wait_final(&self, id: &ExecutionId, timeout: Duration) -> Result<TaskState, ServiceError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let task = self.store().task_get(id).await?.ok_or_else(|| execution_not_found(id.as_str()))?;
            if task.value.status.is_final() || tokio::time::Instant::now() >= deadline {
                return Ok(task.value);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A task and its instances.
    pub async fn task(&self, id: &str) -> Result<(TaskState, Vec<InstanceWork>), ServiceError> {
        let id = parse_execution_id(id)?;
        let task = self.store().task_get(&id).await?.ok_or_else(|| execution_not_found(id.as_str()))?;
        let works = self.store().work_list(&id).await?.into_iter().map(|w| w.value).collect();
        Ok((task.value, works))
    }

    /// A task and how many of its instances have each status, counted by the store: the
    /// same cost for a task of 10 instances as for one of 10,000 (progress displays poll it).
    pub async fn task_summary(&self, id: &str) -> Result<(TaskState, StatusCounts), ServiceError> {
        let id = parse_execution_id(id)?;
        let task = self.store().task_get(&id).await?.ok_or_else(|| execution_not_found(id.as_str()))?;
        Ok((task.value, self.status_counts(&id).await?))
    }

    async fn status_counts(&self, id: &ExecutionId) -> Result<StatusCounts, ServiceError> {
        let mut counts = StatusCounts::default();
        for (status, n, _) in self.store().work_counts(id, 0, 0).await? {
            counts.add(status, n as u32);
        }
        Ok(counts)
    }

    /// A task id given either as the task's or as one of its children's.
    async fn resolve_task_id(&self, id: &str) -> Result<ExecutionId, ServiceError> {
        let id = parse_execution_id(id)?;
        if self.store().task_get(&id).await?.is_some() {
            return Ok(id);
        }
        match self.store().work_get(&id).await? {
            Some((parent, _)) => Ok(parent),
            None => Err(execution_not_found(id.as_str())),
        }
    }

    pub async fn list_executions(
        &self,
        filter: &ExecutionFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Execution>, i64), ServiceError> {
        Ok(self.store().execution_list(filter, offset, limit).await?)
    }

    /// Continue a batch pause (R9).
    pub async fn continue_task(&self, id: &str) -> Result<TaskState, ServiceError> {
        let id = self.resolve_task_id(id).await?;
        loop {
            let task = self.store().task_get(&id).await?.ok_or_else(|| execution_not_found(id.as_str()))?;
            let next = task.value.continue_batch()?;
            match self.store().task_update(&next, task.generation, now_millis()).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => {
                    other?;
                    self.engine.drive(id.clone());
                    self.engine.wake(&id, false);
                    return Ok(next);
                }
            }
        }
    }

    /// Cancel a task (R10).
    pub async fn cancel_task(&self, id: &str, restore: bool) -> Result<TaskState, ServiceError> {
        let id = self.resolve_task_id(id).await?;
        loop {
            let task = self.store().task_get(&id).await?.ok_or_else(|| execution_not_found(id.as_str()))?;
            let next = task.value.cancel(restore)?;
            match self.store().task_update(&next, task.generation, now_millis()).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => {
                    other?;
                    self.engine.drive(id.clone());
                    self.engine.wake(&id, true);
                    return Ok(next);
                }
            }
        }
    }

    /// Retry, skip or cancel one instance of a task (R8). `instance` is the instance id or the
    /// child execution id.
    pub async fn decide_instance(
        &self,
        task_id: &str,
        instance: &str,
        decision: InstanceDecision,
    ) -> Result<InstanceWork, ServiceError> {
        let task_id = self.resolve_task_id(task_id).await?;
        loop {
            let task = self.store().task_get(&task_id).await?.ok_or_else(|| execution_not_found(task_id.as_str()))?;
            let works = self.store().work_list(&task_id).await?;
            let work = works
                .into_iter()
                .find(|w| w.value.instance_id.as_str() == instance || w.value.execution_id.as_str() == instance)
                .ok_or_else(|| {
                    ServiceError::refused(
                        Code::EntityNotExistsTaskExecution,
                        format!("the execution {task_id} has no instance or child execution {instance}"),
                    )
                })?;
            let next = work.value.decide(&task.value, decision, now_millis())?;
            match self.store().work_update(&next, work.generation, now_millis()).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => {
                    other?;
                    self.engine.drive(task_id.clone());
                    self.engine.wake(&task_id, false);
                    return Ok(next);
                }
            }
        }
    }

    /// `NotifyExecution`: `Approve` continues a batch pause, `Reject` cancels the task,
    /// `RetryTask`/`SkipTask`/`CancelTask` decide on the instance named by `TaskExecutionId`
    /// (its child execution) or `LoopItem` (its instance id).
    /// Carries out an operator's notification of the task `execution_id`.
    pub async fn notify(&self, execution_id: &str, notification: Notification) -> Result<(), ServiceError> {
        match notification {
            Notification::Approve => self.continue_task(execution_id).await.map(|_| ()),
            Notification::Reject => self.cancel_task(execution_id, false).await.map(|_| ()),
            Notification::Decide { instance, decision } => {
                self.decide_instance(execution_id, &instance, decision).await.map(|_| ())
            }
        }
    }

    pub async fn events(
        &self,
        execution_id: Option<&str>,
        group_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        Ok(self.store().event_list(execution_id, group_id, limit).await?)
    }

    /// Events matching a keyword query (R15: words with `and`/`or`), newest first, among the
    /// newest 10,000 (of one execution and of one scaling group, when given).
    pub async fn search_events(
        &self,
        execution_id: Option<&str>,
        group_id: Option<&str>,
        keywords: &str,
        limit: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        let query = rollscale_core::search::KeywordQuery::parse(keywords)?;
        let scanned = self.store().event_list(execution_id, group_id, 10_000).await?;
        Ok(scanned.into_iter().filter(|event| query.matches(event)).take(limit.max(0) as usize).collect())
    }

    // ---------------------------------------------------------------- scaling groups

    /// `CreateScalingGroup`: its values checked by `core::group` and `core::health` first.
    pub async fn create_group(&self, new: NewGroup) -> Result<ScalingGroup, ServiceError> {
        use rollscale_core::group::{check_drain_timeout, check_group_name, check_name, Sizes};
        let region_id = if new.region_id.is_empty() { "local".to_string() } else { new.region_id };
        check_group_name(&new.name)?;
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
        if self.store().group_get_by_name(&new.name).await?.is_some() {
            return Err(ServiceError::refused(
                Code::ScalingGroupNameDuplicate,
                format!("a scaling group named {} exists", new.name),
            ));
        }
        let group = ScalingGroup {
            id: ScalingGroupId::from_random(random_bits()),
            name: new.name,
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

    pub async fn group(&self, id: &str) -> Result<ScalingGroup, ServiceError> {
        let id = parse_group_id(id)?;
        Ok(self.store().group_get(&id).await?.ok_or_else(|| group_not_found(id.as_str()))?.value)
    }

    pub async fn groups(&self, ids: &[String], name: Option<&str>) -> Result<Vec<ScalingGroup>, ServiceError> {
        let all = self.store().group_list().await?;
        Ok(all
            .into_iter()
            .map(|g| g.value)
            .filter(|g| ids.is_empty() || ids.iter().any(|id| id == g.id.as_str()))
            .filter(|g| name.map(|n| n == g.name).unwrap_or(true))
            .collect())
    }

    /// Changes a group (`ModifyScalingGroup`), the values given checked as `create_group`
    /// checks them; returns it as written.
    pub async fn modify_group(&self, id: &str, changes: GroupChanges) -> Result<ScalingGroup, ServiceError> {
        use rollscale_core::group::{check_drain_timeout, check_group_name, Sizes};
        let id = parse_group_id(id)?;
        if let Some(name) = &changes.name {
            check_group_name(name)?;
        }
        let drain_timeout_s = changes.drain_timeout_s.map(check_drain_timeout).transpose()?;
        let (health_check_types, health_check_grace_period_s) =
            health_check_settings(changes.health_check_types.as_deref(), changes.health_check_grace_period_s)?;
        loop {
            let group = self.store().group_get(&id).await?.ok_or_else(|| group_not_found(id.as_str()))?;
            let mut next = group.value.clone();
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
            match self.store().group_update(&next, group.generation).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => {
                    other?;
                    // The new capacity or source is acted on by the reconciler, not here.
                    self.engine.wake_reconciler();
                    return Ok(next);
                }
            }
        }
    }

    async fn activate_configuration(
        &self,
        group: &mut ScalingGroup,
        configuration_id: &ScalingConfigurationId,
    ) -> Result<(), ServiceError> {
        let configurations = self.store().configuration_list(Some(&group.id)).await?;
        if !configurations.iter().any(|c| &c.value.id == configuration_id) {
            return Err(ServiceError::refused(
                Code::InvalidScalingConfigurationIdNotFound,
                format!("the scaling configuration {configuration_id} does not exist in {}", group.id),
            ));
        }
        for configuration in configurations {
            let state = if &configuration.value.id == configuration_id {
                ConfigurationState::Active
            } else {
                ConfigurationState::Inactive
            };
            if configuration.value.state != state {
                let mut next = configuration.value.clone();
                next.state = state;
                self.store().configuration_update(&next, configuration.generation).await?;
            }
        }
        group.source = InstanceSource::Configuration(configuration_id.clone());
        Ok(())
    }

    /// `EnableScalingGroup`: Active, optionally with a configuration made active.
    pub async fn enable_group(&self, id: &str, configuration_id: Option<&str>) -> Result<ScalingGroup, ServiceError> {
        let group_id = parse_group_id(id)?;
        loop {
            let group = self.store().group_get(&group_id).await?.ok_or_else(|| group_not_found(id))?;
            let mut next = group.value.clone();
            if let Some(text) = configuration_id {
                let configuration_id = ScalingConfigurationId::parse(text).ok_or_else(|| {
                    ServiceError::refused(
                        Code::InvalidScalingConfigurationIdNotFound,
                        format!("the scaling configuration {text} does not exist"),
                    )
                })?;
                self.activate_configuration(&mut next, &configuration_id).await?;
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
            match self.store().group_update(&next, group.generation).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => {
                    other?;
                    // The new capacity or source is acted on by the reconciler, not here.
                    self.engine.wake_reconciler();
                    return Ok(next);
                }
            }
        }
    }

    /// `DeleteScalingGroup`: refused while a rolling update runs; with `force`, its instances
    /// are removed, otherwise it must have none.
    pub async fn delete_group(&self, id: &str, force: bool) -> Result<(), ServiceError> {
        let group_id = parse_group_id(id)?;
        let group = self.store().group_get(&group_id).await?.ok_or_else(|| group_not_found(id))?;
        if let Some(task) = self.store().task_active_for_group(&group_id).await? {
            return Err(ServiceError::refused(
                Code::IncorrectScalingGroupStatus,
                format!("the scaling group {id} has the rolling update {} in progress", task.value.id),
            ));
        }
        let instances = self.store().instance_list(Some(&group_id)).await?;
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
        self.store().group_delete(&group_id, group.generation).await?;
        Ok(())
    }

    // ---------------------------------------------------------------- configurations

    /// `CreateScalingConfiguration`: a name and an instance type that are not given (or empty)
    /// default to the configuration's id and `sim.small`; given ones are checked by
    /// `core::group`.
    pub async fn create_configuration(&self, new: NewConfiguration) -> Result<ScalingConfiguration, ServiceError> {
        let name = new.name.filter(|name| !name.is_empty());
        if let Some(name) = &name {
            rollscale_core::group::check_configuration_name(name)?;
        }
        let instance_type = new.instance_type.filter(|kind| !kind.is_empty());
        if let Some(kind) = &instance_type {
            rollscale_core::group::check_name("InstanceType", kind)?;
        }
        let group_id = parse_group_id(&new.group_id)?;
        let group = self.store().group_get(&group_id).await?.ok_or_else(|| group_not_found(&new.group_id))?;
        if !self.image_known(&new.image_id).await? {
            return Err(ServiceError::refused(
                Code::InvalidImageIdNotFound,
                format!("the image {} does not exist", new.image_id),
            ));
        }
        let id = ScalingConfigurationId::from_random(random_bits());
        let configuration = ScalingConfiguration {
            name: name.unwrap_or_else(|| id.to_string()),
            id,
            group_id: group_id.clone(),
            image_id: new.image_id,
            instance_type: instance_type.unwrap_or_else(|| "sim.small".into()),
            state: ConfigurationState::Inactive,
            containers: new.containers,
            created_at: now_millis(),
        };
        self.store().configuration_insert(&configuration).await?;
        // The group's first configuration becomes its active one.
        if group.value.source == InstanceSource::None {
            self.modify_group(
                group_id.as_str(),
                GroupChanges { active_configuration_id: Some(configuration.id.clone()), ..Default::default() },
            )
            .await?;
            return Ok(ScalingConfiguration { state: ConfigurationState::Active, ..configuration });
        }
        Ok(configuration)
    }

    pub async fn configurations(
        &self,
        group_id: Option<&str>,
        ids: &[String],
    ) -> Result<Vec<ScalingConfiguration>, ServiceError> {
        let group_id = group_id.map(parse_group_id).transpose()?;
        Ok(self
            .store()
            .configuration_list(group_id.as_ref())
            .await?
            .into_iter()
            .map(|c| c.value)
            .filter(|c| ids.is_empty() || ids.iter().any(|id| id == c.id.as_str()))
            .collect())
    }

    /// `ModifyScalingConfiguration`: name and image (new instances only; running ones are
    /// changed by a rolling update). A name given is checked by `core::group`.
    pub async fn modify_configuration(
        &self,
        id: &str,
        name: Option<String>,
        image_id: Option<String>,
    ) -> Result<ScalingConfiguration, ServiceError> {
        if let Some(name) = &name {
            rollscale_core::group::check_configuration_name(name)?;
        }
        let config_id = ScalingConfigurationId::parse(id).ok_or_else(|| {
            ServiceError::refused(
                Code::InvalidScalingConfigurationIdNotFound,
                format!("the scaling configuration {id} does not exist"),
            )
        })?;
        if let Some(image_id) = &image_id {
            if !self.image_known(image_id).await? {
                return Err(ServiceError::refused(
                    Code::InvalidImageIdNotFound,
                    format!("the image {image_id} does not exist"),
                ));
            }
        }
        loop {
            let current = self.store().configuration_get(&config_id).await?.ok_or_else(|| {
                ServiceError::refused(
                    Code::InvalidScalingConfigurationIdNotFound,
                    format!("the scaling configuration {id} does not exist"),
                )
            })?;
            let mut next = current.value.clone();
            if let Some(name) = &name {
                next.name = name.clone();
            }
            if let Some(image_id) = &image_id {
                next.image_id = image_id.clone();
            }
            match self.store().configuration_update(&next, current.generation).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => {
                    other?;
                    return Ok(next);
                }
            }
        }
    }

    // ---------------------------------------------------------------- instances

    /// Instances, of a group, with the given ids, in a lifecycle state (an unknown one is
    /// refused with `InvalidParameter`).
    pub async fn instances(
        &self,
        group_id: Option<&str>,
        ids: &[String],
        lifecycle_state: Option<&str>,
    ) -> Result<Vec<Instance>, ServiceError> {
        let group_id = group_id.map(parse_group_id).transpose()?;
        let lifecycle_state = match lifecycle_state {
            None => None,
            Some(text) => Some(text.parse::<LifecycleState>().map_err(|()| {
                ServiceError::refused(
                    Code::InvalidParameter,
                    format!("LifecycleState \"{text}\" is not one of Pending, InService, Standby, Protected, Removing"),
                )
            })?),
        };
        Ok(self
            .store()
            .instance_list(group_id.as_ref())
            .await?
            .into_iter()
            .map(|i| i.value)
            .filter(|i| ids.is_empty() || ids.iter().any(|id| id == i.id.as_str()))
            .filter(|i| lifecycle_state.is_none_or(|state| state == i.lifecycle_state))
            .collect())
    }

    pub async fn backends(&self, instance: &InstanceId) -> Result<Vec<Backend>, ServiceError> {
        Ok(self.store().backend_list(None, Some(instance)).await?)
    }

    async fn group_instances(
        &self,
        group_id: &str,
        ids: &[String],
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
            let instance = instances.iter().find(|i| i.value.id.as_str() == id).ok_or_else(|| {
                ServiceError::refused(
                    Code::InvalidInstanceIdNotFound,
                    format!("the instance {id} is not in the scaling group {}", group.id),
                )
            })?;
            chosen.push(instance.value.clone());
        }
        Ok((group, chosen))
    }

    /// `EnterStandby` (weights to 0, remembered). Returns the scaling activity id.
    pub async fn enter_standby(&self, group_id: &str, ids: &[String]) -> Result<ScalingActivityId, ServiceError> {
        let (group, instances) = self.group_instances(group_id, ids).await?;
        for instance in &instances {
            if !matches!(instance.lifecycle_state, LifecycleState::InService | LifecycleState::Standby) {
                return Err(ServiceError::refused(
                    Code::IncorrectInstanceStatus,
                    format!(
                        "the instance {} is {}; only InService instances can enter Standby",
                        instance.id, instance.lifecycle_state
                    ),
                ));
            }
        }
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
    pub async fn exit_standby(&self, group_id: &str, ids: &[String]) -> Result<ScalingActivity, ServiceError> {
        let (group, instances) = self.group_instances(group_id, ids).await?;
        for instance in &instances {
            if !matches!(instance.lifecycle_state, LifecycleState::Standby | LifecycleState::InService) {
                return Err(ServiceError::refused(
                    Code::IncorrectInstanceStatus,
                    format!("the instance {} is {}, not Standby", instance.id, instance.lifecycle_state),
                ));
            }
        }
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
        group_id: &str,
        ids: &[String],
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
            loop {
                let current = self.store().group_get(&group.id).await?.ok_or_else(|| group_not_found(group_id))?;
                let mut next = current.value.clone();
                if next.desired_capacity < next.min_size + count {
                    return Err(ServiceError::refused(
                        Code::IncorrectCapacityMinSize,
                        format!(
                            "removing {count} instance(s) would take the desired capacity of {} from {} below its \
                             MinSize {}; lower MinSize, or remove them without DecreaseDesiredCapacity",
                            group.id, next.desired_capacity, next.min_size
                        ),
                    ));
                }
                next.desired_capacity -= count;
                match self.store().group_update(&next, current.generation).await {
                    Err(StoreError::Conflict { .. }) => continue,
                    other => {
                        other?;
                        break;
                    }
                }
            }
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

    pub async fn set_protection(&self, group_id: &str, ids: &[String], protected: bool) -> Result<(), ServiceError> {
        let (_, instances) = self.group_instances(group_id, ids).await?;
        for instance in &instances {
            if !matches!(instance.lifecycle_state, LifecycleState::InService | LifecycleState::Protected) {
                return Err(ServiceError::refused(
                    Code::IncorrectInstanceStatus,
                    format!(
                        "the instance {} is {}; only InService instances can be protected",
                        instance.id, instance.lifecycle_state
                    ),
                ));
            }
        }
        for instance in &instances {
            self.engine.set_protected(&instance.id, protected).await?;
        }
        Ok(())
    }

    /// `SuspendProcesses` / `ResumeProcesses`. No process names means all five.
    pub async fn set_processes(
        &self,
        group_id: &str,
        names: &[String],
        suspend: bool,
    ) -> Result<ScalingGroup, ServiceError> {
        let mut processes = Vec::new();
        for name in names {
            let process: Process = name.parse().map_err(|_| {
                ServiceError::refused(
                    Code::InvalidParameter,
                    format!("unknown scaling process \"{name}\"; valid: ScaleIn, ScaleOut, HealthCheck, AlarmNotification, ScheduledAction"),
                )
            })?;
            processes.push(process);
        }
        if processes.is_empty() {
            processes = Process::ALL.to_vec();
        }
        let id = parse_group_id(group_id)?;
        loop {
            let group = self.store().group_get(&id).await?.ok_or_else(|| group_not_found(group_id))?;
            let mut next = group.value.clone();
            for process in &processes {
                next.suspended_processes.retain(|p| p != process);
                if suspend {
                    next.suspended_processes.push(*process);
                }
            }
            next.suspended_processes.sort();
            match self.store().group_update(&next, group.generation).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => {
                    other?;
                    // The new capacity or source is acted on by the reconciler, not here.
                    self.engine.wake_reconciler();
                    return Ok(next);
                }
            }
        }
    }

    pub async fn activities(
        &self,
        group_id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<ScalingActivity>, i64), ServiceError> {
        let id = parse_group_id(group_id)?;
        Ok(self.store().activity_list(&id, offset, limit).await?)
    }

    pub(crate) async fn activity_begin(
        &self,
        group: &ScalingGroup,
        kind: ActivityKind,
        description: &str,
        instances: &[Instance],
    ) -> Result<ScalingActivity, ServiceError> {
        let activity = ScalingActivity {
            id: ScalingActivityId::from_random(random_bits()),
            group_id: group.id.clone(),
            kind: Some(kind),
            description: description.to_string(),
            cause: format!("a user request at {}", now_millis()),
            status: ActivityStatus::InProgress,
            status_message: String::new(),
            instance_ids: instances.iter().map(|i| i.id.clone()).collect(),
            started_at: now_millis(),
            ended_at: None,
        };
        self.store().activity_put(&activity).await?;
        Ok(activity)
    }

    pub(crate) async fn activity_end(&self, activity: &mut ScalingActivity) -> Result<(), ServiceError> {
        activity.status = ActivityStatus::Successful;
        activity.ended_at = Some(now_millis());
        self.store().activity_put(activity).await?;
        Ok(())
    }

    /// Whether a scale-out or scale-in of the group is under way (R3).
    async fn activity_in_progress(&self, group_id: &ScalingGroupId) -> Result<bool, ServiceError> {
        let (activities, _) = self.store().activity_list(group_id, 0, 20).await?;
        Ok(activities.iter().any(|a| a.status == ActivityStatus::InProgress && a.kind().is_scaling()))
    }

    pub(crate) async fn remove_instance(&self, instance: &Instance) -> Result<(), ServiceError> {
        for backend in self.store().backend_list(None, Some(&instance.id)).await? {
            self.engine.lb.deregister(&backend.load_balancer_id, &instance.id).await?;
        }
        self.engine.fleet.remove_instance(&instance.id).await?;
        self.store().instance_delete(&instance.id).await?;
        Ok(())
    }

    // ---------------------------------------------------------------- catalogs and keys

    /// `CreateImage` with `ImageId`: adds the image to the catalog (and so undoes a
    /// `DeleteImage` of it: the fleet's copy may be put into the catalog again).
    pub async fn create_image(&self, id: &str, name: Option<&str>, os: Option<OsType>) -> Result<Image, ServiceError> {
        let image = image_value(id, name, os)?;
        self.store().image_insert(&image).await?;
        Ok(image)
    }

    /// `CreateImage` with `InstanceId`: a custom image made from the instance as it is now
    /// (on the container fleet, a commit of its main container), put into the catalog under
    /// the id the fleet gives it. `name` defaults to `from_<instance id>_at_<UTC time>`.
    pub async fn create_image_from_instance(
        &self,
        instance_id: &str,
        name: Option<&str>,
    ) -> Result<Image, ServiceError> {
        let id = InstanceId::parse(instance_id).ok_or_else(|| crate::error::instance_not_found(instance_id))?;
        let instance =
            self.store().instance_get(&id).await?.ok_or_else(|| crate::error::instance_not_found(instance_id))?.value;
        if matches!(instance.lifecycle_state, LifecycleState::Pending | LifecycleState::Removing) {
            return Err(ServiceError::refused(
                Code::IncorrectInstanceStatus,
                format!("the instance {id} is {}; an image is made from a running instance", instance.lifecycle_state),
            ));
        }
        let now = now_millis();
        let name = match name {
            Some(name) => name.to_string(),
            None => format!("from_{id}_at_{}", compact_utc(now)),
        };
        if name.trim().is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
            return Err(ServiceError::refused(
                Code::InvalidImageNameMalformed,
                "ImageName must be 1 to 128 characters",
            ));
        }
        let images = self.images().await?;
        if images.iter().any(|image| image.name == name) {
            return Err(ServiceError::refused(
                Code::InvalidImageNameDuplicated,
                format!("an image named {name:?} already exists"),
            ));
        }
        let fleet = &self.engine.fleet;
        let image_id = match self.engine.retry_unknown(|| fleet.create_image(&id, &name)).await {
            Ok(image_id) => image_id,
            Err(rollscale_fleet::FleetError::NotFound(_)) => {
                return Err(ServiceError::refused(
                    Code::IncorrectInstanceStatus,
                    format!("the instance {id} does not exist on the {} fleet", fleet.name()),
                ))
            }
            Err(rollscale_fleet::FleetError::Unsupported(message)) => {
                return Err(ServiceError::refused(Code::OperationDenied, message))
            }
            Err(error) => return Err(error.into()),
        };
        let os = images
            .iter()
            .find(|image| image.id == instance.image_id)
            .map_or_else(|| OsType::guess(&instance.image_id), |image| image.os);
        let image = Image { id: image_id, name, kind: "custom".into(), os, created_at: now };
        match self.store().image_insert(&image).await {
            Ok(()) => {}
            // Listed from the fleet meanwhile: the catalog has it already.
            Err(StoreError::AlreadyExists { .. }) => {
                if let Some(existing) = self.store().image_get(&image.id).await? {
                    return Ok(existing);
                }
            }
            Err(error) => return Err(error.into()),
        }
        tracing::info!(instance = %id, image = %image.id, "image made from an instance");
        Ok(image)
    }

    /// Whether the catalog has the image. When it does not, the fleet is asked for that one
    /// image (one built on the container host after rollscale started), which is put into the
    /// catalog unless a `DeleteImage` removed it; so R3's check refuses only images that exist
    /// nowhere or were deleted. Nothing else is added.
    pub(crate) async fn image_known(&self, id: &str) -> Result<bool, ServiceError> {
        if self.store().image_get(id).await?.is_some() {
            return Ok(true);
        }
        let found = match self.engine.fleet.find_image(id).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(image = id, %error, "the fleet could not be asked for the image");
                return Ok(false);
            }
        };
        let Some(found) = found else { return Ok(false) };
        let Ok(image) = image_value(id, None, Some(found.os)) else { return Ok(false) };
        match self.store().image_insert_discovered(&image).await {
            Ok(true) => tracing::info!(image = id, "an image of the fleet put into the catalog"),
            Ok(false) => tracing::debug!(image = id, "the image was deleted from the catalog; not added again"),
            Err(StoreError::AlreadyExists { .. }) => {} // added meanwhile
            Err(error) => return Err(error.into()),
        }
        Ok(self.store().image_get(id).await?.is_some())
    }

    /// Puts every image the fleet has and the catalog lacks into the catalog (by each of its
    /// names), except those a `DeleteImage` removed; returns how many were added. Run by
    /// `rollscale up` at start.
    pub async fn sync_fleet_images(&self) -> Result<usize, ServiceError> {
        let known: std::collections::HashSet<String> = self.images().await?.into_iter().map(|image| image.id).collect();
        let mut added = 0;
        for image in self.engine.fleet.list_images().await? {
            for tag in image.tags.iter().filter(|tag| !known.contains(*tag) && !tag.contains("<none>")) {
                let Ok(value) = image_value(tag, None, Some(image.os)) else {
                    tracing::debug!(%tag, "an image name the catalog cannot hold");
                    continue;
                };
                match self.store().image_insert_discovered(&value).await {
                    Ok(true) => added += 1,
                    Ok(false) | Err(StoreError::AlreadyExists { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Ok(added)
    }

    pub async fn images(&self) -> Result<Vec<Image>, ServiceError> {
        Ok(self.store().image_list().await?)
    }

    pub async fn delete_image(&self, id: &str) -> Result<(), ServiceError> {
        for configuration in self.store().configuration_list(None).await? {
            if configuration.value.image_id == id {
                return Err(ServiceError::refused(
                    Code::ImageInUse,
                    format!("the image {id} is used by the scaling configuration {}", configuration.value.id),
                ));
            }
        }
        if !self.store().image_delete(id, now_millis()).await? {
            return Err(ServiceError::refused(Code::InvalidImageIdNotFound, format!("the image {id} does not exist")));
        }
        Ok(())
    }

    pub async fn create_package(
        &self,
        name: &str,
        version: &str,
        install_script: &str,
        uninstall_script: &str,
    ) -> Result<PackageVersion, ServiceError> {
        let valid = |s: &str| {
            !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !valid(name) || !valid(version) {
            return Err(ServiceError::refused(
                Code::InvalidParameter,
                "package name and version must be 1 to 64 of A-Z a-z 0-9 - _ .",
            ));
        }
        let package = PackageVersion {
            name: name.into(),
            version: version.into(),
            install_script: install_script.into(),
            uninstall_script: uninstall_script.into(),
            created_at: now_millis(),
        };
        self.store().package_insert(&package).await?;
        Ok(package)
    }

    pub async fn packages(&self, name: Option<&str>) -> Result<Vec<PackageVersion>, ServiceError> {
        Ok(self.store().package_list(name).await?)
    }

    pub async fn delete_package(&self, name: &str, version: &str) -> Result<(), ServiceError> {
        if !self.store().package_delete(name, version).await? {
            return Err(ServiceError::refused(
                Code::EntityNotExistsPackageVersion,
                format!("the package {name} has no version {version}"),
            ));
        }
        Ok(())
    }

    pub async fn load_balancers(&self) -> Result<Vec<LoadBalancer>, ServiceError> {
        Ok(self.store().lb_list().await?.into_iter().map(|lb| lb.value).collect())
    }

    pub async fn create_load_balancer(&self, name: &str, default_weight: u32) -> Result<LoadBalancer, ServiceError> {
        if name.trim().is_empty() || name.len() > 128 {
            return Err(ServiceError::refused(
                Code::InvalidParameter,
                "a load balancer's name must be 1 to 128 characters",
            ));
        }
        if default_weight > 100 {
            return Err(ServiceError::refused(
                Code::InvalidParameter,
                "a load balancer's default weight must be 0 to 100",
            ));
        }
        let lb = LoadBalancer { id: LoadBalancerId::from_random(random_bits()), name: name.into(), default_weight };
        self.store().lb_insert(&lb, now_millis()).await?;
        Ok(lb)
    }

    /// `SetBackendServers`: the weights of instances registered with a load balancer (as SLB's
    /// action of that name). Each instance must be InService or Protected: one in Standby gets
    /// back the weight it had when it entered Standby. All are checked before any changes.
    pub async fn set_backend_weights(&self, lb_id: &str, weights: &[(String, u32)]) -> Result<(), ServiceError> {
        let lb_not_found = || {
            ServiceError::refused(
                Code::InvalidLoadBalancerIdNotFound,
                format!("the load balancer {lb_id} does not exist"),
            )
        };
        let lb = LoadBalancerId::parse(lb_id).ok_or_else(lb_not_found)?;
        self.store().lb_get(&lb).await?.ok_or_else(lb_not_found)?;
        if weights.is_empty() {
            return Err(ServiceError::refused(Code::MissingParameter, "BackendServers names no server"));
        }
        let mut checked = Vec::with_capacity(weights.len());
        for (instance, weight) in weights {
            let id = InstanceId::parse(instance).ok_or_else(|| crate::error::instance_not_found(instance))?;
            let current =
                self.store().instance_get(&id).await?.ok_or_else(|| crate::error::instance_not_found(instance))?;
            if *weight > 100 {
                return Err(ServiceError::refused(
                    Code::InvalidParameter,
                    "a backend server's weight must be 0 to 100",
                ));
            }
            if self.store().backend_list(Some(&lb), Some(&id)).await?.is_empty() {
                return Err(ServiceError::refused(
                    Code::InvalidBackendServerNotFound,
                    format!("the instance {id} is not a backend server of {lb}"),
                ));
            }
            if !matches!(current.value.lifecycle_state, LifecycleState::InService | LifecycleState::Protected) {
                return Err(ServiceError::refused(
                    Code::IncorrectInstanceStatus,
                    format!(
                        "the instance {id} is {}; only the weight of an InService instance can be set",
                        current.value.lifecycle_state
                    ),
                ));
            }
            checked.push((id, *weight));
        }
        for (id, weight) in checked {
            if !self.store().backend_set_weight(&lb, &id, weight).await? {
                return Err(ServiceError::refused(
                    Code::IncorrectInstanceStatus,
                    format!("the instance {id} entered Standby meanwhile; its weight is not changed"),
                ));
            }
            let driver = &self.engine.lb;
            self.engine.retry_unknown(|| driver.set_weight(&lb, &id, weight)).await?;
            // Entered Standby between the two writes: the driver must have what the store has.
            if let Some(now) = self.store().backend_list(Some(&lb), Some(&id)).await?.first() {
                if now.weight != weight {
                    self.engine.retry_unknown(|| driver.set_weight(&lb, &id, now.weight)).await?;
                }
            }
        }
        Ok(())
    }

    /// The secret of an Active AccessKey, for signature checks.
    pub async fn access_key_secret(&self, id: &str) -> Result<Option<String>, ServiceError> {
        Ok(self.store().access_key_get(id).await?.filter(|k| k.status == AccessKeyStatus::Active).map(|k| k.secret))
    }

    /// Injects a fault into an instance (simulated fleet only): its next changes fail, it
    /// crashes, or its health check fails (see [`rollscale_fleet::Fault`]).
    pub async fn inject_fault(&self, instance_id: &str, fault: rollscale_fleet::Fault) -> Result<(), ServiceError> {
        let id = InstanceId::parse(instance_id).ok_or_else(|| crate::error::instance_not_found(instance_id))?;
        if self.store().instance_get(&id).await?.is_none() {
            return Err(crate::error::instance_not_found(instance_id));
        }
        match self.engine.fleet.inject_fault(&id, fault).await {
            Err(rollscale_fleet::FleetError::Unsupported(message)) => {
                Err(ServiceError::refused(Code::OperationDenied, message))
            }
            other => Ok(other?),
        }
    }

    /// Records a request nonce; `false` when it was seen within its lifetime.
    pub async fn use_nonce(&self, nonce: &str, lifetime: Duration) -> Result<bool, ServiceError> {
        let now = now_millis();
        Ok(self.store().nonce_use(nonce, now, now + lifetime.as_millis() as i64).await?)
    }
}

/// A catalog entry for `id`, checked: cloud image ids and container image references
/// (`localhost/rollscale-demo:v1`).
fn image_value(id: &str, name: Option<&str>, os: Option<OsType>) -> Result<Image, ServiceError> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b)) {
        return Err(ServiceError::refused(
            Code::InvalidParameter,
            "ImageId must be 1 to 128 of A-Z a-z 0-9 - _ . : / @",
        ));
    }
    Ok(Image {
        id: id.to_string(),
        name: name.unwrap_or(id).to_string(),
        kind: "custom".into(),
        os: os.unwrap_or_else(|| OsType::guess(id)),
        created_at: now_millis(),
    })
}

/// `20240501T120000Z`: a UTC time that fits in an image name.
fn compact_utc(millis: Millis) -> String {
    let seconds = millis.div_euclid(1000);
    let (days, second) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", second / 3600, second % 3600 / 60, second % 60)
}

/// Whether a child execution counts as done for display.
pub fn is_settled(status: InstanceStatus) -> bool {
    status.is_final()
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
