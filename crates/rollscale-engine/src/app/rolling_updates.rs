//! Rolling updates (OOS executions of the `ACS-ESS-RollingUpdateBy*` templates): the start
//! with R3's refusals and R12's rollback targets as `core::admission` decides them, the
//! queries, and the operator's actions (continue, cancel, decide on an instance, notify).

use super::Service;
use crate::error::{execution_not_found, group_not_found};
use crate::{now_millis, random_bits, ServiceError};
use rollscale_core::admission;
use rollscale_core::domain::*;
use rollscale_core::ids::*;
use rollscale_core::params::{self, Change, RollbackSource, RollingUpdateSpec};
use rollscale_core::plan;
use rollscale_core::task::{InstanceDecision, InstanceStatus, InstanceWork, StatusCounts, TaskState};
use rollscale_core::Code;
use rollscale_store::{Execution, ExecutionFilter, Versioned};
use std::time::Duration;

/// An operator's notification of a task: what the server makes of OOS's `NotifyExecution`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notification {
    /// A paused task goes on (`Approve`).
    Approve,
    /// The task is cancelled (`Reject`).
    Reject,
    /// A decision about one instance (`RetryTask`, `SkipTask`, `CancelTask`), named by its child
    /// execution or by its instance id.
    Decide { instance: TaskInstance, decision: InstanceDecision },
}

/// One instance of a task as an operator names it: by its id (OOS's `LoopItem`) or by its
/// child execution's (`TaskExecutionId`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskInstance {
    Instance(InstanceId),
    Child(ExecutionId),
}

impl TaskInstance {
    /// Whether `work` is this instance's.
    fn names(&self, work: &InstanceWork) -> bool {
        match self {
            TaskInstance::Instance(id) => work.instance_id == *id,
            TaskInstance::Child(id) => work.execution_id == *id,
        }
    }
}

impl std::fmt::Display for TaskInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskInstance::Instance(id) => id.fmt(f),
            TaskInstance::Child(id) => id.fmt(f),
        }
    }
}

/// Whether a child execution counts as done for display.
pub fn is_settled(status: InstanceStatus) -> bool {
    status.is_final()
}

impl Service {
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
                self.cancel_task(&source.value.id, false).await?;
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
        tracing::info!(execution_id = %id, group = %group.value.id, kind = %task.spec.kind, targets = works.len(), "rolling update started");
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
    pub async fn task(&self, id: &ExecutionId) -> Result<(TaskState, Vec<InstanceWork>), ServiceError> {
        let task = self.store().task_get(id).await?.ok_or_else(|| execution_not_found(id))?;
        let works = self.store().work_list(id).await?.into_iter().map(|w| w.value).collect();
        Ok((task.value, works))
    }

    /// A task and how many of its instances have each status, counted by the store: the
    /// same cost for a task of 10 instances as for one of 10,000 (progress displays poll it).
    pub async fn task_summary(&self, id: &ExecutionId) -> Result<(TaskState, StatusCounts), ServiceError> {
        let task = self.store().task_get(id).await?.ok_or_else(|| execution_not_found(id))?;
        Ok((task.value, self.status_counts(id).await?))
    }

    async fn status_counts(&self, id: &ExecutionId) -> Result<StatusCounts, ServiceError> {
        let mut counts = StatusCounts::default();
        for (status, n, _) in self.store().work_counts(id, 0, 0).await? {
            counts.add(status, n as u32);
        }
        Ok(counts)
    }

    /// A task id given either as the task's or as one of its children's.
    async fn resolve_task_id(&self, id: &ExecutionId) -> Result<ExecutionId, ServiceError> {
        if self.store().task_get(id).await?.is_some() {
            return Ok(id.clone());
        }
        match self.store().work_get(id).await? {
            Some((parent, _)) => Ok(parent),
            None => Err(execution_not_found(id)),
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
    pub async fn continue_task(&self, id: &ExecutionId) -> Result<TaskState, ServiceError> {
        let id = self.resolve_task_id(id).await?;
        let task = self.engine.task_modify(&id, |task| async move { Ok(task.continue_batch()?) }).await?;
        let task = task.ok_or_else(|| execution_not_found(&id))?;
        self.drive_now(&id, false);
        Ok(task)
    }

    /// Cancel a task (R10).
    pub async fn cancel_task(&self, id: &ExecutionId, restore: bool) -> Result<TaskState, ServiceError> {
        let id = self.resolve_task_id(id).await?;
        let task = self.engine.task_modify(&id, |task| async move { Ok(task.cancel(restore)?) }).await?;
        let task = task.ok_or_else(|| execution_not_found(&id))?;
        self.drive_now(&id, true);
        Ok(task)
    }

    /// Retry, skip or cancel one instance of a task (R8), named by its id or its child
    /// execution's.
    pub async fn decide_instance(
        &self,
        task_id: &ExecutionId,
        instance: &TaskInstance,
        decision: InstanceDecision,
    ) -> Result<InstanceWork, ServiceError> {
        let task_id = &self.resolve_task_id(task_id).await?;
        let not_found = || {
            ServiceError::refused(
                Code::EntityNotExistsTaskExecution,
                format!("the execution {task_id} has no instance or child execution {instance}"),
            )
        };
        let works = self.store().work_list(task_id).await?;
        let work_id = works
            .into_iter()
            .map(|work| work.value)
            .find(|work| instance.names(work))
            .ok_or_else(not_found)?
            .execution_id;
        let work = self
            .engine
            .work_modify(&work_id, |work| async move {
                let task = self.store().task_get(task_id).await?.ok_or_else(|| execution_not_found(task_id))?;
                Ok(work.decide(&task.value, decision, now_millis())?)
            })
            .await?
            .ok_or_else(not_found)?;
        self.drive_now(task_id, false);
        Ok(work)
    }

    /// Has the task driven (by this replica, unless another holds it) and its driver woken,
    /// after an operator's action changed it.
    fn drive_now(&self, id: &ExecutionId, cancelling: bool) {
        self.engine.drive(id.clone());
        self.engine.wake(id, cancelling);
    }

    /// `NotifyExecution`: `Approve` continues a batch pause, `Reject` cancels the task,
    /// `RetryTask`/`SkipTask`/`CancelTask` decide on the instance named by `TaskExecutionId`
    /// (its child execution) or `LoopItem` (its instance id).
    /// Carries out an operator's notification of the task `execution_id`.
    pub async fn notify(&self, execution_id: &ExecutionId, notification: Notification) -> Result<(), ServiceError> {
        match notification {
            Notification::Approve => self.continue_task(execution_id).await.map(|_| ()),
            Notification::Reject => self.cancel_task(execution_id, false).await.map(|_| ()),
            Notification::Decide { instance, decision } => {
                self.decide_instance(execution_id, &instance, decision).await.map(|_| ())
            }
        }
    }
}
