//! The rolling-update state machine.
//!
//! A task is a [`TaskState`] plus one [`InstanceWork`] per target. The engine asks
//! [`decide`] what the task should do next given a [`Progress`] summary of its instances,
//! performs that action through drivers, and records the outcome with [`TaskState::evolve`].
//! Each instance advances the same way, one journaled [`Step`] at a time
//! ([`InstanceWork::next_step`], [`InstanceWork::record`]). Operator actions (continue, retry,
//! skip, cancel) are checked here and return the new state, or an error that changes nothing.

use crate::domain::{wire_enum, Millis, Process};
use crate::error::CoreError;
use crate::ids::{ExecutionId, InstanceId, LoadBalancerId};
use crate::params::{BatchPauseOption, InvokeType, RollingUpdateSpec};
use serde::{Deserialize, Serialize};

wire_enum!(
    /// A task's status as OOS reports an execution's.
    TaskStatus { Running, Waiting, Success, Failed, Cancelled }
);

impl TaskStatus {
    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Success | TaskStatus::Failed | TaskStatus::Cancelled)
    }
}

wire_enum!(
    /// Why a task waits: a batch pause (R9) or failures awaiting a decision (R7, R8).
    WaitingStatus { BatchPaused, FailurePaused }
);

wire_enum!(
    /// One instance's status within a task.
    ///
    /// `Skipped` shows as Success and `Cancelled` (by an operator) as Failed on the wire (R8);
    /// `Aborted` is an instance that never ran because the task was cancelled (R10).
    InstanceStatus { Queued, Running, Success, Failed, Skipped, Cancelled, Aborted }
);

impl InstanceStatus {
    /// The status shown to OOS clients.
    pub fn wire_status(self) -> &'static str {
        match self {
            InstanceStatus::Queued => "Queued",
            InstanceStatus::Running => "Running",
            InstanceStatus::Success | InstanceStatus::Skipped => "Success",
            InstanceStatus::Failed | InstanceStatus::Cancelled => "Failed",
            InstanceStatus::Aborted => "Cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        !matches!(self, InstanceStatus::Queued | InstanceStatus::Running | InstanceStatus::Failed)
    }
}

/// How many of a task's instances have each [`InstanceStatus`]: what progress displays show,
/// counted by the store: a few numbers, whatever the size of the task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub queued: u32,
    pub running: u32,
    pub success: u32,
    pub failed: u32,
    pub skipped: u32,
    pub cancelled: u32,
    pub aborted: u32,
}

impl StatusCounts {
    pub fn add(&mut self, status: InstanceStatus, n: u32) {
        let slot = match status {
            InstanceStatus::Queued => &mut self.queued,
            InstanceStatus::Running => &mut self.running,
            InstanceStatus::Success => &mut self.success,
            InstanceStatus::Failed => &mut self.failed,
            InstanceStatus::Skipped => &mut self.skipped,
            InstanceStatus::Cancelled => &mut self.cancelled,
            InstanceStatus::Aborted => &mut self.aborted,
        };
        *slot += n;
    }

    pub fn total(&self) -> u32 {
        self.queued + self.running + self.success + self.failed + self.skipped + self.cancelled + self.aborted
    }
}

wire_enum!(
    /// The journaled steps of one instance (R5), in order.
    Step { Unprotect, EnterStandby, Drain, Apply, HealthCheck, ExitStandby, Reprotect, Done }
);

/// How a task ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Success,
    Cancelled { restore: bool },
    Failed,
}

impl Outcome {
    pub fn status(self) -> TaskStatus {
        match self {
            Outcome::Success => TaskStatus::Success,
            Outcome::Cancelled { .. } => TaskStatus::Cancelled,
            Outcome::Failed => TaskStatus::Failed,
        }
    }

    /// Whether this ending resumes the task's processes: a success (R11), or a cancel that
    /// restores (R10). A plain cancel and a failure leave them suspended.
    pub fn resumes_processes(self) -> bool {
        matches!(self, Outcome::Success | Outcome::Cancelled { restore: true })
    }
}

/// Where a task stands. Each phase change is committed before its effects run, so a crash
/// redoes at most the effects of one phase, which are idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Suspend `enterProcess` and set the configuration's image (R4).
    Begin,
    /// Running batch `index`; `started` once its instances were released.
    Batch {
        index: u32,
        started: bool,
    },
    /// The finishing effects of the outcome are due (R10, R11).
    Finish(Outcome),
    Done,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskState {
    pub id: ExecutionId,
    pub spec: RollingUpdateSpec,
    pub status: TaskStatus,
    pub waiting: Option<WaitingStatus>,
    pub phase: Phase,
    pub batch_sizes: Vec<u32>,
    /// Processes already suspended when the task was created: never resumed by it (R4, R11).
    pub suspended_before: Vec<Process>,
    /// Whether `Begin`'s effects may have run: set (by [`TaskEvent::Beginning`]) before they
    /// run, so that however the task ends it knows it may have suspended its processes. A task
    /// with no targets never begins and changes nothing (R1).
    pub begun: bool,
    /// The batch after which the pause was taken and continued (R9).
    pub continued_after: Option<u32>,
    /// Set by a cancel; the task stops starting instance work (R10).
    pub cancel: Option<CancelRequest>,
    pub status_message: String,
    pub created_at: Millis,
    pub ended_at: Option<Millis>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    pub restore: bool,
}

/// A summary of a task's instances, computed by the engine from the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Instances `Running`, in any batch.
    pub in_flight: u32,
    /// Instances `Failed` and not yet retried, skipped or cancelled.
    pub failed_undecided: u32,
    /// Instances of the current batch still `Queued`.
    pub queued_in_batch: u32,
}

/// What the task should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskAction {
    /// Suspend `enterProcess`, set the configuration's image (R4); then record [`TaskEvent::Begun`].
    Begin,
    /// Release the queued instances of batch `index` (R6); then [`TaskEvent::BatchStarted`].
    StartBatch(u32),
    /// Instances are in flight: wait for them.
    Await,
    /// Enter Waiting; then [`TaskEvent::Paused`].
    Pause(WaitingStatus),
    /// FailurePaused and no failure awaits a decision: go on (R8); then [`TaskEvent::Resumed`].
    Resume,
    /// The batch is done and no pause is due: move to the next; then [`TaskEvent::BatchDone`].
    NextBatch(u32),
    /// Commit the outcome before its effects; then [`TaskEvent::Finishing`].
    Finish(Outcome),
    /// Perform the outcome's effects (tags, resumed processes, restore); then [`TaskEvent::Completed`].
    Complete(Outcome),
    /// Waiting for an operator, or done.
    Idle,
}

/// What happened, as recorded by the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskEvent {
    /// `Begin`'s effects are about to run: recorded first, so that a cancel committed before
    /// [`TaskEvent::Begun`] (or after a crash between the two) still finds the task begun and
    /// resumes, or leaves for a rollback, what it suspended.
    Beginning,
    Begun,
    BatchStarted(u32),
    Paused(WaitingStatus),
    Resumed,
    BatchDone(u32),
    Finishing(Outcome),
    Completed {
        at: Millis,
    },
}

impl TaskState {
    pub fn new(
        id: ExecutionId,
        spec: RollingUpdateSpec,
        batch_sizes: Vec<u32>,
        suspended_before: Vec<Process>,
        created_at: Millis,
    ) -> Self {
        TaskState {
            id,
            spec,
            status: TaskStatus::Running,
            waiting: None,
            phase: Phase::Begin,
            batch_sizes,
            suspended_before,
            begun: false,
            continued_after: None,
            cancel: None,
            status_message: String::new(),
            created_at,
            ended_at: None,
        }
    }

    pub fn n_batches(&self) -> u32 {
        self.batch_sizes.len() as u32
    }

    /// The batch being run, if any.
    pub fn current_batch(&self) -> Option<u32> {
        match self.phase {
            Phase::Batch { index, .. } => Some(index),
            _ => None,
        }
    }

    /// Whether a pause is due after batch `index` (R9).
    fn pause_due_after(&self, index: u32) -> bool {
        let last = index + 1 >= self.n_batches();
        let policy = match self.spec.batch_pause {
            BatchPauseOption::Automatic => false,
            BatchPauseOption::FirstBatchPause => index == 0,
            BatchPauseOption::EveryBatchPause => true,
        };
        policy && !last && self.continued_after != Some(index)
    }

    /// The processes this task resumes when it ends well: `exitProcess` less those suspended
    /// before it started (R11).
    pub fn processes_to_resume(&self) -> Vec<Process> {
        self.spec.exit_process.iter().copied().filter(|process| !self.suspended_before.contains(process)).collect()
    }

    /// How the task ended, or is ending; `None` while it runs or waits.
    pub fn outcome(&self) -> Option<Outcome> {
        match self.phase {
            Phase::Finish(outcome) => Some(outcome),
            Phase::Done => Some(match self.status {
                TaskStatus::Success => Outcome::Success,
                TaskStatus::Cancelled => {
                    Outcome::Cancelled { restore: self.cancel.is_some_and(|cancel| cancel.restore) }
                }
                _ => Outcome::Failed,
            }),
            _ => None,
        }
    }

    /// The processes the task resumes when it ends with `outcome` (R10, R11, R12): its
    /// [`processes_to_resume`](Self::processes_to_resume) when the ending resumes and the task
    /// may have suspended them; none otherwise. A task that never began suspended nothing,
    /// except that a rollback also resumes what its source left suspended (which its
    /// `suspended_before` leaves out, see [`rollback_suspended_before`]), with or without
    /// targets of its own.
    pub fn processes_resumed_by(&self, outcome: Outcome) -> Vec<Process> {
        let suspended = self.begun || self.spec.invoke_type == InvokeType::Rollback;
        if outcome.resumes_processes() && suspended {
            self.processes_to_resume()
        } else {
            Vec::new()
        }
    }

    /// The processes this task suspended itself (its `enterProcess` that were not suspended
    /// before it) and has not resumed: all of them while it runs or waits, those its ending
    /// did not resume once it ends (R4, R10, R11).
    pub fn processes_left_suspended(&self) -> Vec<Process> {
        if !self.begun {
            return Vec::new();
        }
        let resumed = self.outcome().map(|outcome| self.processes_resumed_by(outcome)).unwrap_or_default();
        let mut left: Vec<Process> = self
            .spec
            .enter_process
            .iter()
            .copied()
            .filter(|process| !self.suspended_before.contains(process) && !resumed.contains(process))
            .collect();
        left.sort();
        left.dedup();
        left
    }

    /// Records what happened. Events that do not fit the state are ignored, so replaying an
    /// event is harmless.
    pub fn evolve(mut self, event: &TaskEvent) -> TaskState {
        match (event, &self.phase) {
            (TaskEvent::Beginning, Phase::Begin) => {
                self.begun = true;
            }
            (TaskEvent::Begun, Phase::Begin) => {
                self.begun = true;
                self.phase = Phase::Batch { index: 0, started: false };
            }
            (TaskEvent::BatchStarted(index), Phase::Batch { index: current, started: false }) if index == current => {
                self.phase = Phase::Batch { index: *index, started: true };
            }
            (TaskEvent::Paused(WaitingStatus::BatchPaused), Phase::Batch { index, .. })
                if self.continued_after == Some(*index) =>
            {
                // That pause was taken and continued already: a replay changes nothing.
            }
            (TaskEvent::Paused(reason), Phase::Batch { .. }) => {
                self.status = TaskStatus::Waiting;
                self.waiting = Some(*reason);
            }
            (TaskEvent::Resumed, Phase::Batch { .. }) => {
                self.status = TaskStatus::Running;
                self.waiting = None;
            }
            (TaskEvent::BatchDone(index), Phase::Batch { index: current, started: true }) if index == current => {
                self.phase = Phase::Batch { index: index + 1, started: false };
            }
            (TaskEvent::Finishing(outcome), Phase::Begin | Phase::Batch { .. }) => {
                self.phase = Phase::Finish(*outcome);
            }
            (TaskEvent::Completed { at }, Phase::Finish(outcome)) => {
                self.status = outcome.status();
                self.waiting = None;
                self.ended_at = Some(*at);
                self.phase = Phase::Done;
            }
            _ => {}
        }
        self
    }

    /// Continue a batch pause (R9).
    pub fn continue_batch(&self) -> Result<TaskState, CoreError> {
        match (self.status, self.waiting, &self.phase) {
            (TaskStatus::Waiting, Some(WaitingStatus::BatchPaused), Phase::Batch { index, .. }) => {
                let mut next = self.clone();
                next.status = TaskStatus::Running;
                next.waiting = None;
                next.continued_after = Some(*index);
                Ok(next)
            }
            _ => Err(CoreError::IncorrectExecutionStatus(format!(
                "the execution {} is {}, not waiting at a batch pause",
                self.id,
                self.describe_status()
            ))),
        }
    }

    /// Cancel the task (R10). Allowed while Running or Waiting.
    pub fn cancel(&self, restore: bool) -> Result<TaskState, CoreError> {
        if self.status.is_final() || matches!(self.phase, Phase::Finish(_) | Phase::Done) {
            return Err(CoreError::IncorrectExecutionStatus(format!(
                "the execution {} is {} and cannot be cancelled",
                self.id,
                self.describe_status()
            )));
        }
        let mut next = self.clone();
        next.cancel = Some(CancelRequest { restore });
        Ok(next)
    }

    pub fn describe_status(&self) -> String {
        match (self.status, self.waiting) {
            (TaskStatus::Waiting, Some(reason)) => format!("Waiting ({reason})"),
            (status, _) => status.to_string(),
        }
    }

    fn check_not_final(&self) -> Result<(), CoreError> {
        if self.status.is_final() || matches!(self.phase, Phase::Finish(_) | Phase::Done) {
            return Err(CoreError::IncorrectExecutionStatus(format!(
                "the execution {} is {}",
                self.id,
                self.describe_status()
            )));
        }
        Ok(())
    }
}

/// R12: the processes a rollback of `source` counts as suspended before it, given the
/// group's suspended processes when the rollback starts: the group's, less those the source
/// suspended itself and left suspended (cancelled, failed, or waiting and cancelled first by
/// the rollback). A successful rollback (or one cancelled with restore) resumes its
/// `exitProcess` but these, so it resumes what the source left suspended, and never a process
/// suspended before the source started, nor one suspended by someone else since.
pub fn rollback_suspended_before(source: &TaskState, group_suspended: &[Process]) -> Vec<Process> {
    let left = source.processes_left_suspended();
    let mut before: Vec<Process> = group_suspended.iter().copied().filter(|process| !left.contains(process)).collect();
    before.sort();
    before.dedup();
    before
}

/// What the task should do next (R6, R7, R9, R10, R11).
pub fn decide(task: &TaskState, progress: &Progress) -> TaskAction {
    match &task.phase {
        Phase::Done => TaskAction::Idle,
        Phase::Finish(outcome) => TaskAction::Complete(*outcome),
        Phase::Begin => {
            if let Some(cancel) = task.cancel {
                TaskAction::Finish(Outcome::Cancelled { restore: cancel.restore })
            } else if task.batch_sizes.is_empty() {
                // R1: nothing to update; succeed at once and change nothing.
                TaskAction::Finish(Outcome::Success)
            } else {
                TaskAction::Begin
            }
        }
        Phase::Batch { index, started } => {
            let index = *index;
            if let Some(cancel) = task.cancel {
                return if progress.in_flight > 0 {
                    TaskAction::Await
                } else {
                    TaskAction::Finish(Outcome::Cancelled { restore: cancel.restore })
                };
            }
            if index >= task.n_batches() {
                return TaskAction::Finish(Outcome::Success);
            }
            if task.status == TaskStatus::Waiting {
                return match task.waiting {
                    Some(WaitingStatus::FailurePaused) if progress.in_flight > 0 => TaskAction::Await,
                    Some(WaitingStatus::FailurePaused) if progress.failed_undecided == 0 => TaskAction::Resume,
                    _ => TaskAction::Idle,
                };
            }
            if !started {
                return TaskAction::StartBatch(index);
            }
            if progress.in_flight > 0 || progress.queued_in_batch > 0 {
                // Queued instances of a started batch are released again by StartBatch's
                // effect being idempotent; the engine releases them when it sees them.
                return if progress.in_flight > 0 { TaskAction::Await } else { TaskAction::StartBatch(index) };
            }
            if progress.failed_undecided > task.spec.max_errors {
                return TaskAction::Pause(WaitingStatus::FailurePaused);
            }
            if index + 1 >= task.n_batches() {
                return TaskAction::Finish(Outcome::Success);
            }
            if task.pause_due_after(index) {
                return TaskAction::Pause(WaitingStatus::BatchPaused);
            }
            TaskAction::NextBatch(index)
        }
    }
}

/// One instance's work within a task: its child execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceWork {
    pub execution_id: ExecutionId,
    pub instance_id: InstanceId,
    pub batch: u32,
    pub position: u32,
    pub status: InstanceStatus,
    /// The next step to perform while Running; the failed step while Failed.
    pub step: Step,
    pub attempt: u32,
    pub was_protected: bool,
    /// This task put the instance in Standby and has not taken it out.
    pub in_standby: bool,
    /// The change was applied: a rollback targets this instance (R12).
    pub applied: bool,
    /// Load-balancer weights before EnterStandby, restored by ExitStandby.
    pub saved_weights: Vec<(LoadBalancerId, u32)>,
    /// What the instance had before the change (image id, package version), for rollbacks.
    pub before: Option<String>,
    pub exit_code: Option<i32>,
    pub output: String,
    pub output_truncated: bool,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
}

/// The result of performing one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Done(StepReport),
    Failed { code: String, message: String, report: StepReport },
}

/// What a step observed, recorded with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    pub saved_weights: Option<Vec<(LoadBalancerId, u32)>>,
    pub before: Option<String>,
    pub exit_code: Option<i32>,
    pub output: Option<(String, bool)>,
    /// The step failed, but the instance was changed all the same: a failed Apply whose change
    /// took effect (it runs the new image or containers, the script ran). The task counts it
    /// as changed, so a rollback targets it (R12, R16).
    pub changed: bool,
}

/// An operator's decision on one instance (R8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceDecision {
    Retry,
    Skip,
    Cancel,
}

impl InstanceWork {
    pub fn new(
        execution_id: ExecutionId,
        instance_id: InstanceId,
        batch: u32,
        position: u32,
        was_protected: bool,
    ) -> Self {
        InstanceWork {
            execution_id,
            instance_id,
            batch,
            position,
            status: InstanceStatus::Queued,
            step: if was_protected { Step::Unprotect } else { Step::EnterStandby },
            attempt: 0,
            was_protected,
            in_standby: false,
            applied: false,
            saved_weights: Vec::new(),
            before: None,
            exit_code: None,
            output: String::new(),
            output_truncated: false,
            error_code: None,
            error_message: None,
            started_at: None,
            ended_at: None,
        }
    }

    /// The step to perform now, if the instance is Running and not done.
    pub fn next_step(&self) -> Option<Step> {
        (self.status == InstanceStatus::Running && self.step != Step::Done).then_some(self.step)
    }

    fn step_after(&self, step: Step, health_gated: bool) -> Step {
        match step {
            Step::Unprotect => Step::EnterStandby,
            Step::EnterStandby => Step::Drain,
            Step::Drain => Step::Apply,
            Step::Apply if health_gated => Step::HealthCheck,
            Step::Apply | Step::HealthCheck => Step::ExitStandby,
            Step::ExitStandby if self.was_protected => Step::Reprotect,
            Step::ExitStandby | Step::Reprotect | Step::Done => Step::Done,
        }
    }

    /// Releases a queued instance (its batch started).
    pub fn start(mut self, at: Millis) -> InstanceWork {
        if self.status == InstanceStatus::Queued {
            self.status = InstanceStatus::Running;
            self.attempt = 1;
            self.started_at = Some(at);
        }
        self
    }

    /// Records the outcome of `step`. A stale outcome (for another step) changes nothing.
    pub fn record(mut self, step: Step, outcome: StepOutcome, health_gated: bool, at: Millis) -> InstanceWork {
        if self.status != InstanceStatus::Running || self.step != step {
            return self;
        }
        let report = match &outcome {
            StepOutcome::Done(report) | StepOutcome::Failed { report, .. } => report.clone(),
        };
        if let Some(weights) = report.saved_weights {
            self.saved_weights = weights;
        }
        if report.before.is_some() && self.before.is_none() {
            self.before = report.before;
        }
        if report.exit_code.is_some() {
            self.exit_code = report.exit_code;
        }
        if let Some((output, truncated)) = report.output {
            self.output = output;
            self.output_truncated = truncated;
        }
        match outcome {
            StepOutcome::Done(_) => {
                match step {
                    Step::EnterStandby => self.in_standby = true,
                    Step::Apply => self.applied = true,
                    Step::ExitStandby => self.in_standby = false,
                    _ => {}
                }
                self.step = self.step_after(step, health_gated);
                if self.step == Step::Done {
                    self.status = InstanceStatus::Success;
                    self.ended_at = Some(at);
                }
            }
            StepOutcome::Failed { code, message, report } => {
                // R7: a failed instance stays where it is, in Standby once it entered it.
                if step == Step::EnterStandby {
                    self.in_standby = true;
                }
                // R16: what the instance became, not what was meant.
                if step == Step::Apply && report.changed {
                    self.applied = true;
                }
                self.status = InstanceStatus::Failed;
                self.error_code = Some(code);
                self.error_message = Some(message);
                self.ended_at = Some(at);
            }
        }
        self
    }

    /// Whether this Running instance takes its next step although its task is being
    /// cancelled (R10). An instance in flight finishes its change, so that none is left half
    /// changed (between EnterStandby and the change, or between the change and its health
    /// check), and stops before it would leave Standby: the batch being run stays in Standby,
    /// as in the seeds, unless the cancel restores. One that has not yet taken its first step
    /// of this attempt stops at once, and so does one already out of Standby but for
    /// re-protection, which it finishes.
    pub fn goes_on_when_cancelled(&self) -> bool {
        let first = if self.was_protected { Step::Unprotect } else { Step::EnterStandby };
        match self.step {
            Step::ExitStandby | Step::Done => false,
            Step::Reprotect => true,
            step => step != first || self.in_standby,
        }
    }

    /// Stops a running instance after its current step because the task was cancelled (R10).
    pub fn abort(mut self, at: Millis) -> InstanceWork {
        if matches!(self.status, InstanceStatus::Queued | InstanceStatus::Running) {
            self.status = InstanceStatus::Aborted;
            self.ended_at = Some(at);
        }
        self
    }

    /// An operator's retry, skip or cancel (R8). Not-yet-run instances may be skipped or
    /// cancelled; only failed ones may be retried.
    pub fn decide(&self, task: &TaskState, decision: InstanceDecision, at: Millis) -> Result<InstanceWork, CoreError> {
        task.check_not_final()?;
        if task.cancel.is_some() {
            return Err(CoreError::IncorrectExecutionStatus(format!("the execution {} is being cancelled", task.id)));
        }
        let mut next = self.clone();
        match (decision, self.status) {
            (InstanceDecision::Retry, InstanceStatus::Failed) => {
                next.status = InstanceStatus::Running;
                next.attempt += 1;
                next.error_code = None;
                next.error_message = None;
                next.ended_at = None;
            }
            (InstanceDecision::Skip, InstanceStatus::Failed | InstanceStatus::Queued) => {
                next.status = InstanceStatus::Skipped;
                next.ended_at = Some(at);
            }
            (InstanceDecision::Cancel, InstanceStatus::Failed | InstanceStatus::Queued) => {
                next.status = InstanceStatus::Cancelled;
                next.ended_at = Some(at);
            }
            (decision, status) => {
                return Err(CoreError::IncorrectInstanceStatus(format!(
                    "the instance {} is {status} in {}; {decision:?} needs {}",
                    self.instance_id,
                    task.id,
                    if decision == InstanceDecision::Retry { "Failed" } else { "Failed or Queued" }
                )))
            }
        }
        Ok(next)
    }
}

/// Sums up instances for [`decide`].
pub fn progress<'a>(task: &TaskState, works: impl IntoIterator<Item = &'a InstanceWork>) -> Progress {
    let current = task.current_batch();
    let mut progress = Progress::default();
    for work in works {
        match work.status {
            InstanceStatus::Running => progress.in_flight += 1,
            InstanceStatus::Failed => progress.failed_undecided += 1,
            InstanceStatus::Queued if Some(work.batch) == current => progress.queued_in_batch += 1,
            _ => {}
        }
    }
    progress
}
