//! Rule-by-rule tests of the planner and the rolling-update state machine against
//! docs/design.md (R1–R14). Each test is named after the rule it checks.
//!
//! A small simulation driver, [`Sim`], plays the engine: it asks `decide` what to do, applies
//! the action the way the engine would (through `evolve`, `InstanceWork::start`, `record`,
//! `abort`) and runs each in-flight instance's steps with an outcome chosen by a per-instance
//! [`Script`]. Operator actions (continue, retry, skip, cancel) are called by the tests.

use proptest::prelude::*;
use rollscale_core::domain::{ContainerSpec, CreationType, HealthStatus, Instance, LifecycleState, Millis, Process};
use rollscale_core::error::CoreError;
use rollscale_core::ids::{ExecutionId, InstanceId, ScalingGroupId};
use rollscale_core::params::{
    BatchPauseOption, Change, CommandType, ContainerUpdateType, InvokeType, Kind, PackageAction, RollingUpdateSpec,
    ScriptSpec,
};
use rollscale_core::plan::{batch_of_each, batch_sizes, select_targets};
use rollscale_core::task::{
    decide, progress, InstanceDecision, InstanceStatus, InstanceWork, Outcome, Phase, Step, StepOutcome, StepReport,
    TaskAction, TaskEvent, TaskState, TaskStatus, WaitingStatus,
};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const ALL_STEPS: [Step; 8] = [
    Step::Unprotect,
    Step::EnterStandby,
    Step::Drain,
    Step::Apply,
    Step::HealthCheck,
    Step::ExitStandby,
    Step::Reprotect,
    Step::Done,
];

fn group_id() -> ScalingGroupId {
    ScalingGroupId::parse("asg-rules0001").expect("valid group id")
}

fn task_id() -> ExecutionId {
    ExecutionId::parse("exec-task0001").expect("valid execution id")
}

fn instance_id(n: usize) -> InstanceId {
    InstanceId::parse(&format!("i-{n:04}")).expect("valid instance id")
}

fn child_id(n: usize) -> ExecutionId {
    ExecutionId::parse(&format!("exec-child{n:04}")).expect("valid execution id")
}

fn change_of(kind: Kind) -> Change {
    match kind {
        Kind::ImageUpdate => Change::Image { image_id: "img-new".into() },
        Kind::ScriptExecution => Change::Script(ScriptSpec {
            command_type: CommandType::RunShellScript,
            script: "true".into(),
            working_dir: None,
            timeout_s: 600,
        }),
        Kind::PackageInstall => {
            Change::Package { name: "wordpress".into(), version: "v4".into(), action: PackageAction::Install }
        }
        Kind::ContainerGroupUpdate => Change::ContainerGroup {
            update_type: ContainerUpdateType::RenewUpdate,
            containers: vec![ContainerSpec { name: "app".into(), image: "app:2".into(), ..Default::default() }],
        },
    }
}

fn spec(kind: Kind, batch_number: u32, pause: BatchPauseOption, max_errors: u32) -> RollingUpdateSpec {
    RollingUpdateSpec {
        kind,
        invoke_type: InvokeType::Invoke,
        group_id: group_id(),
        configuration_id: None,
        change: change_of(kind),
        rollback_change: None,
        enter_process: Process::ALL.to_vec(),
        exit_process: Process::ALL.to_vec(),
        lifecycle_states: vec![LifecycleState::InService],
        batch_number,
        batch_pause: pause,
        max_errors,
        source_execution_id: None,
        assume_role: String::new(),
    }
}

fn instance(id: &str, state: LifecycleState, creation: CreationType, created_at: i64) -> Instance {
    Instance {
        id: InstanceId::parse(id).expect("valid instance id"),
        group_id: group_id(),
        lifecycle_state: state,
        health_status: HealthStatus::Healthy,
        creation_type: creation,
        image_id: "img-old".into(),
        packages: vec![],
        containers: vec![],
        tags: vec![],
        address: String::new(),
        created_at,
        changed_at: None,
        observed: None,
        observed_at: None,
    }
}

// ---------------------------------------------------------------------------------------------
// The simulation driver
// ---------------------------------------------------------------------------------------------

/// What an instance's steps do when run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    /// Every step succeeds.
    Succeed,
    /// `step` fails on every attempt.
    FailAt(Step),
    /// `step` fails on the first attempt only; a retry succeeds.
    FailOnceAt(Step),
}

impl Script {
    fn outcome(self, step: Step, attempt: u32) -> StepOutcome {
        let fail = match self {
            Script::Succeed => false,
            Script::FailAt(at) => at == step,
            Script::FailOnceAt(at) => at == step && attempt <= 1,
        };
        if fail {
            StepOutcome::Failed {
                code: "StepFailed".into(),
                message: format!("{step} failed on attempt {attempt}"),
                report: StepReport::default(),
            }
        } else {
            StepOutcome::Done(StepReport::default())
        }
    }
}

/// One decision of the driver: the action and the instances' statuses when it was taken.
#[derive(Clone, Debug)]
struct Entry {
    action: TaskAction,
    phase: Phase,
    statuses: Vec<InstanceStatus>,
}

struct Sim {
    task: TaskState,
    works: Vec<InstanceWork>,
    scripts: Vec<Script>,
    health_gated: bool,
    now: Millis,
    log: Vec<Entry>,
    /// Every task state the run went through: `states[i + 1]` follows `events[i]`.
    states: Vec<TaskState>,
    /// Every event recorded, in order.
    events: Vec<TaskEvent>,
    /// Apply every event twice (R14) instead of once.
    double_events: bool,
    /// When set, each Await advances a pseudo-random non-empty subset of the running
    /// instances; otherwise every running instance advances one step.
    rng: Option<u64>,
}

impl Sim {
    fn new(spec: RollingUpdateSpec, scripts: Vec<Script>) -> Sim {
        let n = scripts.len();
        let sizes = batch_sizes(n, spec.batch_number);
        let batches = batch_of_each(&sizes);
        let health_gated = spec.kind.health_gated();
        let task = TaskState::new(task_id(), spec, sizes, Vec::new(), 1_000);
        let works =
            (0..n).map(|i| InstanceWork::new(child_id(i), instance_id(i), batches[i], i as u32, false)).collect();
        Sim {
            states: vec![task.clone()],
            events: Vec::new(),
            task,
            works,
            scripts,
            health_gated,
            now: 1_000,
            log: Vec::new(),
            double_events: false,
            rng: None,
        }
    }

    fn scripted(kind: Kind, batch_number: u32, pause: BatchPauseOption, max_errors: u32, scripts: Vec<Script>) -> Sim {
        Sim::new(spec(kind, batch_number, pause, max_errors), scripts)
    }

    /// Marks instance `i` as Protected before the task starts.
    fn protect(&mut self, i: usize) {
        let work = &self.works[i];
        assert_eq!(work.status, InstanceStatus::Queued);
        self.works[i] =
            InstanceWork::new(work.execution_id.clone(), work.instance_id.clone(), work.batch, work.position, true);
    }

    fn tick(&mut self) -> Millis {
        self.now += 1;
        self.now
    }

    fn statuses(&self) -> Vec<InstanceStatus> {
        self.works.iter().map(|work| work.status).collect()
    }

    fn indices_of_batch(&self, batch: u32) -> Vec<usize> {
        (0..self.works.len()).filter(|&i| self.works[i].batch == batch).collect()
    }

    fn apply(&mut self, event: TaskEvent) {
        let once = self.task.clone().evolve(&event);
        if self.double_events {
            let twice = once.clone().evolve(&event);
            assert_eq!(twice, once, "R14: applying {event:?} twice differs from once");
            self.task = twice;
        } else {
            self.task = once;
        }
        self.states.push(self.task.clone());
        self.events.push(event);
    }

    fn next_random(&mut self) -> u64 {
        let state = self.rng.as_mut().expect("seeded");
        // xorshift64*
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn run_step(&mut self, i: usize) {
        let work = self.works[i].clone();
        if self.task.cancel.is_some() && !work.goes_on_when_cancelled() {
            let at = self.tick();
            self.works[i] = work.abort(at);
            return;
        }
        let step = work.next_step().expect("a running instance has a step to perform");
        let outcome = self.scripts[i].outcome(step, work.attempt);
        let at = self.tick();
        self.works[i] = work.record(step, outcome, self.health_gated, at);
    }

    /// One decide → apply round. Returns the action taken.
    fn step_once(&mut self) -> TaskAction {
        let progress = progress(&self.task, self.works.iter());
        let action = decide(&self.task, &progress);
        self.log.push(Entry { action: action.clone(), phase: self.task.phase.clone(), statuses: self.statuses() });
        match action.clone() {
            TaskAction::Begin => self.apply(TaskEvent::Begun),
            TaskAction::StartBatch(k) => {
                let at = self.tick();
                for work in self.works.iter_mut().filter(|work| work.batch == k) {
                    *work = work.clone().start(at);
                }
                self.apply(TaskEvent::BatchStarted(k));
            }
            TaskAction::Pause(reason) => self.apply(TaskEvent::Paused(reason)),
            TaskAction::Resume => self.apply(TaskEvent::Resumed),
            TaskAction::NextBatch(k) => self.apply(TaskEvent::BatchDone(k)),
            TaskAction::Finish(outcome) => self.apply(TaskEvent::Finishing(outcome)),
            TaskAction::Complete(outcome) => {
                let at = self.tick();
                if matches!(outcome, Outcome::Cancelled { .. }) {
                    for work in self.works.iter_mut() {
                        *work = work.clone().abort(at);
                    }
                }
                self.apply(TaskEvent::Completed { at });
            }
            TaskAction::Await => {
                let running: Vec<usize> =
                    (0..self.works.len()).filter(|&i| self.works[i].status == InstanceStatus::Running).collect();
                assert!(!running.is_empty(), "Await with nothing in flight: {progress:?}, task {:?}", self.task);
                let chosen: Vec<usize> = if self.rng.is_some() {
                    let mut chosen: Vec<usize> =
                        running.iter().copied().filter(|_| self.next_random() & 1 == 0).collect();
                    if chosen.is_empty() {
                        let pick = (self.next_random() % running.len() as u64) as usize;
                        chosen.push(running[pick]);
                    }
                    chosen
                } else {
                    running
                };
                for i in chosen {
                    self.run_step(i);
                }
            }
            TaskAction::Idle => {}
        }
        action
    }

    /// Runs until `decide` says Idle.
    fn run(&mut self) {
        for _ in 0..100_000 {
            if self.step_once() == TaskAction::Idle {
                return;
            }
        }
        panic!("the task did not become idle: {:?}", self.task);
    }

    /// Runs with an operator who continues every batch pause and skips every failure, until
    /// the task is final.
    fn run_with_operator(&mut self) {
        for _ in 0..1_000 {
            self.run();
            if self.task.status.is_final() {
                return;
            }
            match self.task.waiting {
                Some(WaitingStatus::BatchPaused) => {
                    self.task = self.task.continue_batch().expect("R9: a batch pause can be continued");
                }
                Some(WaitingStatus::FailurePaused) => {
                    let failed: Vec<usize> =
                        (0..self.works.len()).filter(|&i| self.works[i].status == InstanceStatus::Failed).collect();
                    assert!(!failed.is_empty(), "FailurePaused and idle without a failure: {:?}", self.task);
                    for i in failed {
                        self.decide_instance(i, InstanceDecision::Skip).expect("R8: a failure can be skipped");
                    }
                }
                None => panic!("idle while {:?} and not waiting", self.task.status),
            }
        }
        panic!("the operator loop did not end");
    }

    fn decide_instance(&mut self, i: usize, decision: InstanceDecision) -> Result<(), CoreError> {
        let at = self.tick();
        self.works[i] = self.works[i].decide(&self.task, decision, at)?;
        Ok(())
    }

    fn cancel(&mut self, restore: bool) -> Result<(), CoreError> {
        self.task = self.task.cancel(restore)?;
        Ok(())
    }

    fn actions(&self) -> Vec<TaskAction> {
        self.log.iter().map(|entry| entry.action.clone()).collect()
    }

    fn count(&self, wanted: &TaskAction) -> usize {
        self.log.iter().filter(|entry| &entry.action == wanted).count()
    }

    /// The batches started, in order, each with the statuses just before its first start.
    fn batch_starts(&self) -> Vec<(u32, Vec<InstanceStatus>)> {
        self.log
            .iter()
            .filter_map(|entry| match (&entry.action, &entry.phase) {
                (TaskAction::StartBatch(k), Phase::Batch { index, started: false }) if k == index => {
                    Some((*k, entry.statuses.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// The batch index at each BatchPaused pause.
    fn batch_pauses(&self) -> Vec<u32> {
        self.log
            .iter()
            .filter_map(|entry| match (&entry.action, &entry.phase) {
                (TaskAction::Pause(WaitingStatus::BatchPaused), Phase::Batch { index, .. }) => Some(*index),
                _ => None,
            })
            .collect()
    }

    fn batch_of(&self, i: usize) -> u32 {
        self.works[i].batch
    }
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, CoreError>, code: &str, context: &str) {
    match result {
        Err(error) => assert_eq!(error.code(), code, "{context}: wrong error {error:?}"),
        Ok(value) => panic!("{context}: expected {code}, got Ok({value:?})"),
    }
}

// ---------------------------------------------------------------------------------------------
// R1 targets
// ---------------------------------------------------------------------------------------------

/// R1: "Targets: taken once, at start: the group's instances in state InService (and Protected
/// when `lifecycleState` asks), creation type AutoCreated or Attached, ordered by creation time
/// then id."
#[test]
fn r1_targets_are_in_service_or_asked_protected_ordered_by_creation_then_id() {
    use CreationType::*;
    use LifecycleState::*;
    let group = vec![
        instance("i-z", InService, AutoCreated, 30),
        instance("i-b", InService, Attached, 10),
        instance("i-a", InService, AutoCreated, 10),
        instance("i-p", Protected, AutoCreated, 5),
        instance("i-s", Standby, AutoCreated, 1),
        instance("i-n", Pending, AutoCreated, 1),
        instance("i-r", Removing, Attached, 1),
    ];
    let cases: Vec<(Vec<LifecycleState>, Vec<&str>)> = vec![
        (vec![InService], vec!["i-a", "i-b", "i-z"]),
        (vec![InService, Protected], vec!["i-p", "i-a", "i-b", "i-z"]),
        (vec![Protected], vec!["i-p"]),
    ];
    for (states, expected) in cases {
        let ids: Vec<String> = select_targets(&group, &states).iter().map(|id| id.to_string()).collect();
        assert_eq!(ids, expected, "lifecycle states {states:?}");
    }
}

/// R1: "Zero targets: the task succeeds at once and changes nothing." The task never Begins
/// (no process is suspended, no image set), starts no batch and ends Success.
#[test]
fn r1_zero_targets_succeed_at_once_and_never_begin() {
    use CreationType::*;
    use LifecycleState::*;
    let cases: Vec<(&str, Vec<Instance>, Vec<LifecycleState>)> = vec![
        ("empty group", vec![], vec![InService]),
        (
            "no instance in service",
            vec![
                instance("i-s", Standby, AutoCreated, 1),
                instance("i-n", Pending, Attached, 2),
                instance("i-r", Removing, AutoCreated, 3),
            ],
            vec![InService],
        ),
        ("protected not asked for", vec![instance("i-p", Protected, AutoCreated, 1)], vec![InService]),
    ];
    for (name, group, states) in cases {
        for pause in BatchPauseOption::ALL.iter().copied() {
            let targets = select_targets(&group, &states);
            assert!(targets.is_empty(), "{name}: no target expected");
            assert!(batch_sizes(targets.len(), 5).is_empty(), "{name}: no batch for no target");
            let mut sim = Sim::scripted(Kind::ImageUpdate, 5, pause, 0, vec![]);
            sim.run();
            assert_eq!(
                sim.actions(),
                vec![TaskAction::Finish(Outcome::Success), TaskAction::Complete(Outcome::Success), TaskAction::Idle],
                "{name} / {pause}"
            );
            assert_eq!(sim.task.status, TaskStatus::Success, "{name}");
            assert!(!sim.task.begun, "{name}: a task with no target must not Begin");
            assert_eq!(sim.task.phase, Phase::Done, "{name}");
            assert_eq!(sim.task.waiting, None, "{name}");
            assert!(sim.task.ended_at.is_some(), "{name}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// R2 / R6 batches
// ---------------------------------------------------------------------------------------------

/// R2: "Effective batches = min(batchNumber, N). Sizes differ by at most one, larger batches
/// first: 10 instances in 3 batches are 4, 3, 3."
#[test]
fn r2_batch_sizes_table() {
    let mut hundred_one = vec![2];
    hundred_one.extend(std::iter::repeat_n(1, 99));
    let cases: Vec<(usize, u32, Vec<u32>)> = vec![
        (10, 3, vec![4, 3, 3]),
        (10, 2, vec![5, 5]),
        (10, 5, vec![2, 2, 2, 2, 2]),
        (11, 4, vec![3, 3, 3, 2]),
        (2, 5, vec![1, 1]),
        (1, 100, vec![1]),
        (5, 1, vec![5]),
        (7, 7, vec![1; 7]),
        (100, 100, vec![1; 100]),
        (101, 100, hundred_one),
        (0, 5, vec![]),
    ];
    for (n, batch_number, expected) in cases {
        assert_eq!(batch_sizes(n, batch_number), expected, "{n} instances in {batch_number} batches");
    }
}

/// R2 + R6 through a full run: 10 instances in 3 batches run as 4, 3, 3, in order; a batch's
/// instances run concurrently and the next batch starts only when every instance of the
/// previous one is final.
#[test]
fn r2_r6_full_run_ten_instances_in_three_batches() {
    let mut sim = Sim::scripted(Kind::ImageUpdate, 3, BatchPauseOption::Automatic, 0, vec![Script::Succeed; 10]);
    let sizes: Vec<usize> = (0..3).map(|k| sim.indices_of_batch(k).len()).collect();
    assert_eq!(sizes, vec![4, 3, 3]);
    assert_eq!(sim.task.batch_sizes, vec![4, 3, 3]);
    // Instances keep their target order across batches.
    let batches: Vec<u32> = (0..10).map(|i| sim.batch_of(i)).collect();
    assert_eq!(batches, vec![0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);

    sim.run();

    assert_eq!(sim.task.status, TaskStatus::Success);
    assert!(sim.task.begun);
    let starts = sim.batch_starts();
    assert_eq!(starts.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![0, 1, 2]);
    for (k, statuses) in &starts {
        for (i, status) in statuses.iter().enumerate() {
            let batch = sim.batch_of(i);
            if batch < *k {
                assert_eq!(*status, InstanceStatus::Success, "R6: batch {k} started before instance {i} was final");
            } else {
                assert_eq!(*status, InstanceStatus::Queued, "batch {k} started after instance {i} ran");
            }
        }
    }
    // R6: right after a batch is started all its instances are in flight together.
    for (index, entry) in sim.log.iter().enumerate() {
        if let TaskAction::StartBatch(k) = entry.action {
            let after = &sim.log[index + 1].statuses;
            for i in sim.indices_of_batch(k) {
                assert_eq!(after[i], InstanceStatus::Running, "instance {i} of batch {k} not released");
            }
        }
    }
    assert_eq!(sim.count(&TaskAction::NextBatch(0)), 1);
    assert_eq!(sim.count(&TaskAction::NextBatch(1)), 1);
    assert_eq!(sim.count(&TaskAction::NextBatch(2)), 0);
    assert_eq!(sim.count(&TaskAction::Finish(Outcome::Success)), 1);
    for work in &sim.works {
        assert_eq!(work.status, InstanceStatus::Success);
        assert!(!work.in_standby, "R14: a successful instance left in Standby");
        assert!(work.applied);
        assert_eq!(work.step, Step::Done);
    }
}

/// R6: "A batch's instances run concurrently; the next batch starts when every instance of this
/// one is final" — with instances finishing at different times (random interleavings).
#[test]
fn r6_next_batch_waits_for_every_instance_under_any_interleaving() {
    for seed in 1..=60u64 {
        let n = 3 + (seed as usize % 8);
        let batch_number = 1 + (seed as u32 % 4);
        let mut sim = Sim::scripted(
            Kind::ScriptExecution,
            batch_number,
            BatchPauseOption::Automatic,
            0,
            vec![Script::Succeed; n],
        );
        sim.rng = Some(seed * 7919);
        sim.run();
        assert_eq!(sim.task.status, TaskStatus::Success, "seed {seed}");
        let starts = sim.batch_starts();
        let expected: Vec<u32> = (0..sim.task.n_batches()).collect();
        assert_eq!(starts.iter().map(|(k, _)| *k).collect::<Vec<_>>(), expected, "seed {seed}");
        for (k, statuses) in starts {
            for (i, status) in statuses.iter().enumerate() {
                if sim.batch_of(i) < k {
                    assert!(status.is_final(), "seed {seed}: batch {k} started while instance {i} was {status}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// R5 per-instance steps
// ---------------------------------------------------------------------------------------------

/// R5: "Protected → unprotect; EnterStandby (...; wait the drain time); apply the change;
/// optional health gate; ExitStandby (weights restored); re-protect" — in that order, one
/// journaled step at a time; the instance is in Standby from EnterStandby to ExitStandby.
#[test]
fn r5_instance_steps_run_in_order() {
    use Step::*;
    let cases: Vec<(bool, bool, Vec<Step>)> = vec![
        (false, false, vec![EnterStandby, Drain, Apply, ExitStandby]),
        (false, true, vec![EnterStandby, Drain, Apply, HealthCheck, ExitStandby]),
        (true, false, vec![Unprotect, EnterStandby, Drain, Apply, ExitStandby, Reprotect]),
        (true, true, vec![Unprotect, EnterStandby, Drain, Apply, HealthCheck, ExitStandby, Reprotect]),
    ];
    for (protected, gated, expected) in cases {
        let mut work = InstanceWork::new(child_id(0), instance_id(0), 0, 0, protected);
        assert_eq!(work.next_step(), None, "a queued instance has no step to perform");
        work = work.start(1);
        let mut steps = Vec::new();
        let mut at = 1;
        while let Some(step) = work.next_step() {
            let in_standby = matches!(step, Drain | Apply | HealthCheck | ExitStandby);
            assert_eq!(work.in_standby, in_standby, "protected {protected}, gated {gated}: before {step}");
            steps.push(step);
            at += 1;
            work = work.record(step, StepOutcome::Done(StepReport::default()), gated, at);
        }
        assert_eq!(steps, expected, "protected {protected}, gated {gated}");
        assert_eq!(work.status, InstanceStatus::Success);
        assert_eq!(work.step, Done);
        assert!(work.applied && !work.in_standby);
        assert_eq!(work.ended_at, Some(at));
    }
}

// ---------------------------------------------------------------------------------------------
// R7 maxErrors
// ---------------------------------------------------------------------------------------------

/// R7: "When failures exceed `maxErrors` (default 0) no new batch starts and the task becomes
/// Waiting (FailurePaused) once the in-flight instances finish." One failure with maxErrors 0
/// pauses the task after the other instances of the batch are final.
#[test]
fn r7_max_errors_zero_one_failure_pauses_after_in_flight_finish() {
    for kind in [Kind::ImageUpdate, Kind::ScriptExecution, Kind::PackageInstall] {
        // Instance 0 fails early (EnterStandby) while 1 and 2 are still in flight.
        let mut scripts = vec![Script::Succeed; 6];
        scripts[0] = Script::FailAt(Step::EnterStandby);
        let mut sim = Sim::scripted(kind, 2, BatchPauseOption::Automatic, 0, scripts);
        sim.run();

        assert_eq!(sim.task.status, TaskStatus::Waiting, "{kind}");
        assert_eq!(sim.task.waiting, Some(WaitingStatus::FailurePaused), "{kind}");
        assert_eq!(sim.count(&TaskAction::StartBatch(1)), 0, "{kind}: R7 no new batch starts");
        let pause = sim
            .log
            .iter()
            .find(|entry| entry.action == TaskAction::Pause(WaitingStatus::FailurePaused))
            .expect("a FailurePaused pause");
        assert_eq!(
            pause.statuses[..3],
            [InstanceStatus::Failed, InstanceStatus::Success, InstanceStatus::Success],
            "{kind}: the pause must wait for the in-flight instances"
        );
        // The in-flight ones kept running after the failure: an Await came between.
        let failed_at = sim.log.iter().position(|entry| entry.statuses[0] == InstanceStatus::Failed).unwrap();
        assert_eq!(sim.log[failed_at].action, TaskAction::Await, "{kind}");
        for i in 3..6 {
            assert_eq!(sim.works[i].status, InstanceStatus::Queued, "{kind}: instance {i} of batch 1");
        }
        let failed = &sim.works[0];
        assert_eq!(failed.status, InstanceStatus::Failed);
        assert!(failed.in_standby, "{kind}: R7 a failed instance stays in Standby");
        assert_eq!(failed.step, Step::EnterStandby);
        assert_eq!(failed.error_code.as_deref(), Some("StepFailed"));
        // Idle while waiting for the operator, however often asked.
        let progress = progress(&sim.task, sim.works.iter());
        assert_eq!(decide(&sim.task, &progress), TaskAction::Idle);
    }
}

/// R7: "A failed instance stays in Standby" — whichever step failed once it entered Standby.
#[test]
fn r7_failed_instance_stays_in_standby_whichever_step_failed() {
    // (failing step, protected, health gated kind, expected in_standby, expected applied)
    let cases: Vec<(Step, bool, Kind, bool, bool)> = vec![
        (Step::Unprotect, true, Kind::ImageUpdate, false, false),
        (Step::EnterStandby, false, Kind::ImageUpdate, true, false),
        (Step::Drain, false, Kind::ImageUpdate, true, false),
        (Step::Apply, false, Kind::ImageUpdate, true, false),
        (Step::Apply, false, Kind::ScriptExecution, true, false),
        (Step::HealthCheck, false, Kind::ImageUpdate, true, true),
        (Step::ExitStandby, false, Kind::ScriptExecution, true, true),
        (Step::ExitStandby, true, Kind::ImageUpdate, true, true),
    ];
    for (step, protected, kind, in_standby, applied) in cases {
        let mut sim = Sim::scripted(kind, 1, BatchPauseOption::Automatic, 0, vec![Script::FailAt(step)]);
        if protected {
            sim.protect(0);
        }
        sim.run();
        let work = &sim.works[0];
        let context = format!("{kind} failing at {step} (protected {protected})");
        assert_eq!(work.status, InstanceStatus::Failed, "{context}");
        assert_eq!(work.step, step, "{context}: the failed step is kept");
        assert_eq!(work.in_standby, in_standby, "{context}");
        assert_eq!(work.applied, applied, "{context}");
        assert_eq!(sim.task.waiting, Some(WaitingStatus::FailurePaused), "{context}");
    }
}

/// R7: with `maxErrors` 2, two failures do not stop the task; a third one pauses it before the
/// next batch.
#[test]
fn r7_max_errors_two_tolerates_two_failures_and_pauses_on_the_third() {
    // (failing instances, expected pause, batches started) with 9 instances in 3 batches.
    let cases: Vec<(Vec<usize>, bool, Vec<u32>)> = vec![
        (vec![], false, vec![0, 1, 2]),
        (vec![0], false, vec![0, 1, 2]),
        (vec![0, 4], false, vec![0, 1, 2]),
        (vec![0, 1], false, vec![0, 1, 2]),
        (vec![7, 8], false, vec![0, 1, 2]),
        (vec![0, 1, 2], true, vec![0]),
        (vec![0, 1, 4], true, vec![0, 1]),
        (vec![0, 4, 8], true, vec![0, 1, 2]),
    ];
    for (failing, pauses, started) in cases {
        let mut scripts = vec![Script::Succeed; 9];
        for &i in &failing {
            scripts[i] = Script::FailAt(Step::Apply);
        }
        let mut sim = Sim::scripted(Kind::ImageUpdate, 3, BatchPauseOption::Automatic, 2, scripts);
        sim.run();
        let context = format!("failing {failing:?}");
        let starts: Vec<u32> = sim.batch_starts().iter().map(|(k, _)| *k).collect();
        assert_eq!(starts, started, "{context}");
        if pauses {
            assert_eq!(sim.task.status, TaskStatus::Waiting, "{context}");
            assert_eq!(sim.task.waiting, Some(WaitingStatus::FailurePaused), "{context}");
        } else {
            assert_eq!(sim.count(&TaskAction::Pause(WaitingStatus::FailurePaused)), 0, "{context}");
            assert_eq!(sim.task.status, TaskStatus::Success, "{context}");
        }
        for &i in &failing {
            assert_eq!(sim.works[i].status, InstanceStatus::Failed, "{context}: instance {i}");
            assert!(sim.works[i].in_standby, "{context}: R7 instance {i} stays in Standby");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// R8 decisions on failures
// ---------------------------------------------------------------------------------------------

/// Runs 4 instances in 2 batches with instance 1 scripted by `script`, up to the FailurePaused
/// pause after batch 0.
fn failure_paused(script: Script) -> Sim {
    let mut scripts = vec![Script::Succeed; 4];
    scripts[1] = script;
    let mut sim = Sim::scripted(Kind::ImageUpdate, 2, BatchPauseOption::Automatic, 0, scripts);
    sim.run();
    assert_eq!(sim.task.waiting, Some(WaitingStatus::FailurePaused));
    assert_eq!(sim.works[1].status, InstanceStatus::Failed);
    sim
}

/// R8: "Retry (run it again)": the failed instance runs again from its failed step; once it
/// succeeds no failure awaits a decision and the task resumes.
#[test]
fn r8_retry_runs_the_instance_again_and_the_task_resumes() {
    let mut sim = failure_paused(Script::FailOnceAt(Step::Apply));
    sim.decide_instance(1, InstanceDecision::Retry).expect("retry of a failed instance");
    let work = &sim.works[1];
    assert_eq!(work.status, InstanceStatus::Running);
    assert_eq!(work.attempt, 2);
    assert_eq!(work.step, Step::Apply, "a retry resumes at the failed step");
    assert_eq!(work.error_code, None);
    assert!(work.in_standby);
    assert_eq!(sim.task.status, TaskStatus::Waiting, "the retry alone does not resume the task");

    let before = sim.log.len();
    sim.run();
    let after: Vec<TaskAction> = sim.log[before..].iter().map(|entry| entry.action.clone()).collect();
    assert_eq!(after.first(), Some(&TaskAction::Await), "the retried instance runs first");
    let resume = after.iter().position(|action| *action == TaskAction::Resume).expect("the task resumes");
    let start = after.iter().position(|action| *action == TaskAction::StartBatch(1)).expect("batch 1 starts");
    assert!(resume < start);
    assert_eq!(sim.task.status, TaskStatus::Success);
    assert!(sim.works.iter().all(|work| work.status == InstanceStatus::Success));
    assert!(!sim.works[1].in_standby);
}

/// R8: a retry that fails again leaves the task paused; a skip then lets it proceed.
#[test]
fn r8_retry_that_fails_again_keeps_the_task_paused() {
    let mut sim = failure_paused(Script::FailAt(Step::HealthCheck));
    sim.decide_instance(1, InstanceDecision::Retry).unwrap();
    sim.run();
    assert_eq!(sim.task.waiting, Some(WaitingStatus::FailurePaused));
    assert_eq!(sim.works[1].status, InstanceStatus::Failed);
    assert_eq!(sim.works[1].attempt, 2);
    assert_eq!(sim.count(&TaskAction::Resume), 0);
    assert_eq!(sim.count(&TaskAction::StartBatch(1)), 0);
    sim.decide_instance(1, InstanceDecision::Skip).unwrap();
    sim.run();
    assert_eq!(sim.task.status, TaskStatus::Success);
}

/// R8: "Skip (shown Success, marked skipped, stays in Standby)".
#[test]
fn r8_skip_shows_success_and_stays_in_standby() {
    let mut sim = failure_paused(Script::FailAt(Step::Apply));
    sim.decide_instance(1, InstanceDecision::Skip).expect("skip of a failed instance");
    let work = &sim.works[1];
    assert_eq!(work.status, InstanceStatus::Skipped);
    assert_eq!(work.status.wire_status(), "Success");
    assert!(work.status.is_final());
    assert!(work.in_standby, "R8: a skipped instance stays in Standby");
    assert!(work.ended_at.is_some());
    sim.run();
    assert_eq!(sim.task.status, TaskStatus::Success);
    assert_eq!(sim.works[1].status, InstanceStatus::Skipped);
    assert!(sim.works[1].in_standby);
    assert_eq!(sim.count(&TaskAction::Resume), 1);
}

/// R8: "Cancel (shown Failed, marked cancelled)"; the task proceeds.
#[test]
fn r8_cancel_of_an_instance_shows_failed_and_the_task_proceeds() {
    let mut sim = failure_paused(Script::FailAt(Step::Apply));
    sim.decide_instance(1, InstanceDecision::Cancel).expect("cancel of a failed instance");
    let work = &sim.works[1];
    assert_eq!(work.status, InstanceStatus::Cancelled);
    assert_eq!(work.status.wire_status(), "Failed");
    assert!(work.status.is_final());
    sim.run();
    assert_eq!(sim.task.status, TaskStatus::Success);
    assert_eq!(sim.works[1].status, InstanceStatus::Cancelled);
    for i in [0, 2, 3] {
        assert_eq!(sim.works[i].status, InstanceStatus::Success);
    }
}

/// R8: "Not-yet-run instances can be skipped or cancelled too": they never run.
#[test]
fn r8_queued_instances_can_be_skipped_or_cancelled_and_never_run() {
    let mut sim = failure_paused(Script::FailAt(Step::Apply));
    assert_eq!(sim.works[2].status, InstanceStatus::Queued);
    assert_eq!(sim.works[3].status, InstanceStatus::Queued);
    sim.decide_instance(2, InstanceDecision::Skip).expect("skip of a queued instance");
    sim.decide_instance(3, InstanceDecision::Cancel).expect("cancel of a queued instance");
    assert_eq!(sim.works[2].status, InstanceStatus::Skipped);
    assert_eq!(sim.works[3].status, InstanceStatus::Cancelled);
    // Still a failure awaiting a decision: the task does not proceed.
    sim.run();
    assert_eq!(sim.task.waiting, Some(WaitingStatus::FailurePaused));
    sim.decide_instance(1, InstanceDecision::Skip).unwrap();
    sim.run();
    assert_eq!(sim.task.status, TaskStatus::Success);
    for i in [2, 3] {
        let work = &sim.works[i];
        assert_eq!(work.started_at, None, "instance {i} must never run");
        assert_eq!(work.attempt, 0);
        assert!(!work.in_standby);
        assert!(!work.applied);
    }
    assert_eq!(sim.works[2].status, InstanceStatus::Skipped);
    assert_eq!(sim.works[3].status, InstanceStatus::Cancelled);
}

/// R8: only failed instances may be retried; only failed or not-yet-run instances skipped or
/// cancelled. Anything else is IncorrectInstanceStatus and changes nothing.
#[test]
fn r8_decisions_on_instances_in_the_wrong_status_are_refused() {
    let mut sim = failure_paused(Script::FailAt(Step::Apply));
    sim.decide_instance(2, InstanceDecision::Skip).unwrap();
    // Instance 0 Success, 1 Failed, 2 Skipped, 3 Queued; make a Running and a Cancelled one.
    let running = sim.works[3].clone().start(5);
    let cancelled = sim.works[1].decide(&sim.task, InstanceDecision::Cancel, 5).unwrap();
    let aborted = sim.works[3].clone().abort(5);
    let cases: Vec<(&str, InstanceWork, InstanceDecision)> = vec![
        ("retry Queued", sim.works[3].clone(), InstanceDecision::Retry),
        ("retry Success", sim.works[0].clone(), InstanceDecision::Retry),
        ("retry Running", running.clone(), InstanceDecision::Retry),
        ("retry Skipped", sim.works[2].clone(), InstanceDecision::Retry),
        ("retry Cancelled", cancelled.clone(), InstanceDecision::Retry),
        ("retry Aborted", aborted.clone(), InstanceDecision::Retry),
        ("skip Success", sim.works[0].clone(), InstanceDecision::Skip),
        ("skip Running", running.clone(), InstanceDecision::Skip),
        ("skip Skipped", sim.works[2].clone(), InstanceDecision::Skip),
        ("skip Cancelled", cancelled.clone(), InstanceDecision::Skip),
        ("cancel Success", sim.works[0].clone(), InstanceDecision::Cancel),
        ("cancel Running", running, InstanceDecision::Cancel),
        ("cancel Skipped", sim.works[2].clone(), InstanceDecision::Cancel),
        ("cancel Cancelled", cancelled, InstanceDecision::Cancel),
        ("cancel Aborted", aborted, InstanceDecision::Cancel),
    ];
    for (name, work, decision) in cases {
        assert_code(work.decide(&sim.task, decision, 9), "IncorrectInstanceStatus", name);
    }
}

/// R8 + final task: a decision on an instance of a task that ended (or is ending) is refused
/// with IncorrectExecutionStatus.
#[test]
fn r8_decisions_on_a_final_task_are_refused() {
    // A task that ended Success with a failure tolerated by maxErrors.
    let mut success = Sim::scripted(
        Kind::ImageUpdate,
        2,
        BatchPauseOption::Automatic,
        2,
        vec![Script::FailAt(Step::Apply), Script::Succeed],
    );
    success.run();
    assert_eq!(success.task.status, TaskStatus::Success);
    assert_eq!(success.works[0].status, InstanceStatus::Failed);

    // A task cancelled while FailurePaused, with its failure undecided.
    let mut cancelled = failure_paused(Script::FailAt(Step::Apply));
    cancelled.cancel(false).unwrap();
    cancelled.run();
    assert_eq!(cancelled.task.status, TaskStatus::Cancelled);

    // A task in its Finish phase, not yet completed.
    let mut finishing = failure_paused(Script::FailAt(Step::Apply));
    finishing.cancel(true).unwrap();
    assert_eq!(finishing.step_once(), TaskAction::Finish(Outcome::Cancelled { restore: true }));
    assert!(matches!(finishing.task.phase, Phase::Finish(_)));

    for (name, sim) in [("success", &success), ("cancelled", &cancelled), ("finishing", &finishing)] {
        for i in 0..sim.works.len() {
            for decision in [InstanceDecision::Retry, InstanceDecision::Skip, InstanceDecision::Cancel] {
                assert_code(
                    sim.works[i].decide(&sim.task, decision, 99),
                    "IncorrectExecutionStatus",
                    &format!("{name}: {decision:?} of instance {i} ({})", sim.works[i].status),
                );
            }
        }
    }
}

/// R8: "The task proceeds when no failure awaits a decision."
#[test]
fn r8_task_proceeds_only_when_no_failure_awaits_a_decision() {
    let scripts = vec![
        Script::FailAt(Step::Apply),
        Script::FailOnceAt(Step::Drain),
        Script::FailAt(Step::HealthCheck),
        Script::Succeed,
        Script::Succeed,
        Script::Succeed,
    ];
    let mut sim = Sim::scripted(Kind::ImageUpdate, 2, BatchPauseOption::Automatic, 0, scripts);
    sim.run();
    assert_eq!(sim.task.waiting, Some(WaitingStatus::FailurePaused));
    assert_eq!(&sim.statuses()[..3], &[InstanceStatus::Failed; 3]);

    // Decide one at a time; the task stays paused until the last one is decided.
    sim.decide_instance(0, InstanceDecision::Skip).unwrap();
    sim.run();
    assert_eq!(sim.task.waiting, Some(WaitingStatus::FailurePaused), "two failures undecided");
    sim.decide_instance(1, InstanceDecision::Retry).unwrap();
    sim.run();
    assert_eq!(sim.works[1].status, InstanceStatus::Success, "the retry ran");
    assert_eq!(sim.task.waiting, Some(WaitingStatus::FailurePaused), "one failure undecided");
    assert_eq!(sim.count(&TaskAction::Resume), 0);
    assert_eq!(sim.count(&TaskAction::StartBatch(1)), 0);
    sim.decide_instance(2, InstanceDecision::Cancel).unwrap();
    sim.run();
    assert_eq!(sim.count(&TaskAction::Resume), 1);
    assert_eq!(sim.task.status, TaskStatus::Success);
    assert_eq!(
        sim.statuses(),
        vec![
            InstanceStatus::Skipped,
            InstanceStatus::Success,
            InstanceStatus::Cancelled,
            InstanceStatus::Success,
            InstanceStatus::Success,
            InstanceStatus::Success
        ]
    );
}

/// R8 with `maxErrors`: once failures exceeded it and the task paused, it proceeds only when
/// no failure awaits a decision — not as soon as the undecided ones are back within
/// `maxErrors`.
#[test]
fn r8_with_max_errors_the_task_proceeds_only_when_every_failure_is_decided() {
    let mut scripts = vec![Script::Succeed; 6];
    for i in [0, 1, 2] {
        scripts[i] = Script::FailAt(Step::Apply);
    }
    let mut sim = Sim::scripted(Kind::ImageUpdate, 2, BatchPauseOption::Automatic, 2, scripts);
    sim.run();
    assert_eq!(sim.task.waiting, Some(WaitingStatus::FailurePaused));
    for (i, still_paused) in [(0, true), (1, true), (2, false)] {
        sim.decide_instance(i, InstanceDecision::Skip).unwrap();
        sim.run();
        let paused = sim.task.waiting == Some(WaitingStatus::FailurePaused);
        assert_eq!(paused, still_paused, "after skipping instances 0..={i}");
        assert_eq!(sim.count(&TaskAction::StartBatch(1)), usize::from(!still_paused));
    }
    assert_eq!(sim.task.status, TaskStatus::Success);
}

/// R8 with a failure in the last batch: the task pauses, and finishes Success once the failure
/// is skipped.
#[test]
fn r8_failure_in_the_last_batch_pauses_before_success() {
    let mut sim = Sim::scripted(
        Kind::ScriptExecution,
        2,
        BatchPauseOption::Automatic,
        0,
        vec![Script::Succeed, Script::FailAt(Step::Apply)],
    );
    sim.run();
    assert_eq!(sim.task.waiting, Some(WaitingStatus::FailurePaused));
    assert_eq!(sim.count(&TaskAction::Finish(Outcome::Success)), 0);
    sim.decide_instance(1, InstanceDecision::Skip).unwrap();
    sim.run();
    assert_eq!(sim.task.status, TaskStatus::Success);
}

// ---------------------------------------------------------------------------------------------
// R9 batch pauses
// ---------------------------------------------------------------------------------------------

/// R9: "Automatic never pauses; FirstBatchPause pauses once, after batch 1; EveryBatchPause after
/// every batch but the last. A pause is Waiting (BatchPaused); Continue resumes it."
#[test]
fn r9_pause_policies_table() {
    use BatchPauseOption::*;
    let cases: Vec<(BatchPauseOption, u32, Vec<u32>)> = vec![
        (Automatic, 1, vec![]),
        (Automatic, 4, vec![]),
        (FirstBatchPause, 1, vec![]),
        (FirstBatchPause, 2, vec![0]),
        (FirstBatchPause, 4, vec![0]),
        (EveryBatchPause, 1, vec![]),
        (EveryBatchPause, 2, vec![0]),
        (EveryBatchPause, 4, vec![0, 1, 2]),
    ];
    for (pause, n_batches, expected) in cases {
        let context = format!("{pause} with {n_batches} batches");
        let mut sim =
            Sim::scripted(Kind::ScriptExecution, n_batches, pause, 0, vec![Script::Succeed; 2 * n_batches as usize]);
        let mut paused_after = Vec::new();
        for round in 0.. {
            assert!(round <= n_batches, "{context}: more pauses than batches");
            sim.run();
            if sim.task.status.is_final() {
                break;
            }
            assert_eq!(sim.task.status, TaskStatus::Waiting, "{context}");
            assert_eq!(sim.task.waiting, Some(WaitingStatus::BatchPaused), "{context}");
            assert_eq!(sim.task.describe_status(), "Waiting (BatchPaused)");
            let index = sim.task.current_batch().expect("paused in a batch");
            for i in 0..sim.works.len() {
                let expected = if sim.batch_of(i) <= index { InstanceStatus::Success } else { InstanceStatus::Queued };
                assert_eq!(sim.works[i].status, expected, "{context}: instance {i} at the pause after batch {index}");
            }
            // Idle until continued.
            let progress = progress(&sim.task, sim.works.iter());
            assert_eq!(decide(&sim.task, &progress), TaskAction::Idle, "{context}");
            paused_after.push(index);
            sim.task = sim.task.continue_batch().expect("R9: Continue resumes a batch pause");
            assert_eq!(sim.task.status, TaskStatus::Running);
            assert_eq!(sim.task.waiting, None);
        }
        assert_eq!(paused_after, expected, "{context}");
        assert_eq!(sim.batch_pauses(), expected, "{context}");
        assert_eq!(sim.task.status, TaskStatus::Success, "{context}");
        let starts: Vec<u32> = sim.batch_starts().iter().map(|(k, _)| *k).collect();
        assert_eq!(starts, (0..n_batches).collect::<Vec<_>>(), "{context}");
    }
}

/// R9: Continue is valid only at a batch pause; otherwise IncorrectExecutionStatus.
#[test]
fn r9_continue_batch_only_valid_in_batch_paused() {
    let mut cases: Vec<(&str, TaskState)> = Vec::new();
    let fresh = Sim::scripted(Kind::ScriptExecution, 2, BatchPauseOption::FirstBatchPause, 0, vec![Script::Succeed; 2]);
    cases.push(("new task (Running, Begin)", fresh.task.clone()));

    let mut running =
        Sim::scripted(Kind::ScriptExecution, 2, BatchPauseOption::FirstBatchPause, 0, vec![Script::Succeed; 2]);
    running.step_once();
    running.step_once();
    assert!(matches!(running.task.phase, Phase::Batch { index: 0, started: true }));
    cases.push(("running a batch", running.task.clone()));

    let failure = failure_paused(Script::FailAt(Step::Apply));
    cases.push(("FailurePaused", failure.task.clone()));

    let mut paused =
        Sim::scripted(Kind::ScriptExecution, 2, BatchPauseOption::FirstBatchPause, 0, vec![Script::Succeed; 2]);
    paused.run();
    assert_eq!(paused.task.waiting, Some(WaitingStatus::BatchPaused));
    let continued = paused.task.continue_batch().unwrap();
    cases.push(("already continued", continued));

    let mut success = paused;
    success.run_with_operator();
    assert_eq!(success.task.status, TaskStatus::Success);
    cases.push(("Success", success.task.clone()));

    let mut cancelled =
        Sim::scripted(Kind::ScriptExecution, 2, BatchPauseOption::FirstBatchPause, 0, vec![Script::Succeed; 2]);
    cancelled.run();
    cancelled.cancel(false).unwrap();
    cases.push(("BatchPaused being cancelled, finishing", {
        let mut sim = cancelled;
        sim.step_once();
        assert!(matches!(sim.task.phase, Phase::Finish(_)));
        sim.run();
        assert_eq!(sim.task.status, TaskStatus::Cancelled);
        sim.task.clone()
    }));

    for (name, task) in cases {
        assert_code(task.continue_batch(), "IncorrectExecutionStatus", name);
    }
}

// ---------------------------------------------------------------------------------------------
// R10 cancel
// ---------------------------------------------------------------------------------------------

/// R10: "Cancel (Running or Waiting): no new instance work starts; instances in flight finish;
/// the task ends Cancelled." The restore flag is carried into the outcome; queued instances end
/// Aborted, shown Cancelled. The instances in flight finish their change and stop before they
/// would leave Standby ("the current batch stays in Standby").
#[test]
fn r10_cancel_while_running_awaits_in_flight_then_finishes_cancelled() {
    for restore in [false, true] {
        let mut sim = Sim::scripted(Kind::ImageUpdate, 2, BatchPauseOption::Automatic, 0, vec![Script::Succeed; 6]);
        // Begin, StartBatch(0), one Await: batch 0 is in flight.
        assert_eq!(sim.step_once(), TaskAction::Begin);
        assert_eq!(sim.step_once(), TaskAction::StartBatch(0));
        assert_eq!(sim.step_once(), TaskAction::Await);
        assert!(sim.works[..3].iter().all(|work| work.status == InstanceStatus::Running));
        sim.cancel(restore).expect("cancel of a running task");
        assert_eq!(sim.task.status, TaskStatus::Running, "cancel is recorded, the task ends later");

        let before = sim.log.len();
        sim.run();
        let after: Vec<TaskAction> = sim.log[before..].iter().map(|entry| entry.action.clone()).collect();
        let outcome = Outcome::Cancelled { restore };
        let finish = after.iter().position(|action| *action == TaskAction::Finish(outcome)).expect("Finish");
        assert!(finish > 0 && after[..finish].iter().all(|action| *action == TaskAction::Await), "{after:?}");
        assert_eq!(&after[finish..], &[TaskAction::Finish(outcome), TaskAction::Complete(outcome), TaskAction::Idle]);
        assert!(!after.iter().any(|action| matches!(action, TaskAction::StartBatch(_) | TaskAction::NextBatch(_))));
        // The Finish came when nothing was in flight any more: batch 0 had entered Standby, so
        // it finished its change (and health check) and stopped there.
        assert!(sim.log[before + finish].statuses[..3].iter().all(|status| *status == InstanceStatus::Aborted));
        for work in &sim.works[..3] {
            assert!(work.applied && work.in_standby, "{work:?}");
            assert_eq!(work.step, Step::ExitStandby);
        }

        assert_eq!(sim.task.status, TaskStatus::Cancelled);
        assert_eq!(sim.task.waiting, None);
        assert_eq!(sim.task.phase, Phase::Done);
        assert!(sim.task.ended_at.is_some());
        for i in 3..6 {
            let work = &sim.works[i];
            assert_eq!(work.status, InstanceStatus::Aborted, "restore {restore}: instance {i}");
            assert_eq!(work.status.wire_status(), "Cancelled");
            assert_eq!(work.started_at, None);
        }
    }
}

/// R10: cancel while Waiting (at a batch pause) finishes at once.
#[test]
fn r10_cancel_while_batch_paused_finishes_at_once() {
    for restore in [false, true] {
        let mut sim =
            Sim::scripted(Kind::ScriptExecution, 3, BatchPauseOption::EveryBatchPause, 0, vec![Script::Succeed; 3]);
        sim.run();
        assert_eq!(sim.task.waiting, Some(WaitingStatus::BatchPaused));
        sim.cancel(restore).expect("cancel of a waiting task");
        let before = sim.log.len();
        sim.run();
        let outcome = Outcome::Cancelled { restore };
        assert_eq!(
            sim.actions()[before..],
            [TaskAction::Finish(outcome), TaskAction::Complete(outcome), TaskAction::Idle]
        );
        assert_eq!(sim.task.status, TaskStatus::Cancelled);
        assert_eq!(sim.task.waiting, None);
        assert_eq!(sim.statuses(), vec![InstanceStatus::Success, InstanceStatus::Aborted, InstanceStatus::Aborted]);
    }
}

/// R10: cancel while FailurePaused: the failed instance stays Failed and in Standby ("the
/// current batch stays in Standby"), the queued ones are aborted.
#[test]
fn r10_cancel_while_failure_paused_keeps_the_failure_in_standby() {
    for restore in [false, true] {
        let mut sim = failure_paused(Script::FailAt(Step::Apply));
        sim.cancel(restore).unwrap();
        let before = sim.log.len();
        sim.run();
        let outcome = Outcome::Cancelled { restore };
        assert_eq!(
            sim.actions()[before..],
            [TaskAction::Finish(outcome), TaskAction::Complete(outcome), TaskAction::Idle]
        );
        assert_eq!(sim.task.status, TaskStatus::Cancelled);
        assert_eq!(
            sim.statuses(),
            vec![InstanceStatus::Success, InstanceStatus::Failed, InstanceStatus::Aborted, InstanceStatus::Aborted]
        );
        assert!(sim.works[1].in_standby);
    }
}

/// R10: a retried instance in flight when the task is cancelled finishes its change before
/// the task ends, and stays in Standby.
#[test]
fn r10_cancel_with_a_retry_in_flight_awaits_it() {
    let mut sim = failure_paused(Script::FailOnceAt(Step::Apply));
    sim.decide_instance(1, InstanceDecision::Retry).unwrap();
    sim.cancel(false).unwrap();
    assert_eq!(sim.step_once(), TaskAction::Await);
    sim.run();
    assert_eq!(sim.task.status, TaskStatus::Cancelled);
    let retried = &sim.works[1];
    assert_eq!((retried.status, retried.applied, retried.in_standby), (InstanceStatus::Aborted, true, true));
    assert_eq!(sim.count(&TaskAction::StartBatch(1)), 0);
}

/// R10: where a cancel finds an instance decides whether it goes on: before its first step it
/// stops at once (nothing changed); between entering Standby and the change (or the change and
/// its health check) it goes on; about to leave Standby it stops; out of Standby and only to be
/// re-protected, it finishes.
#[test]
fn r10_what_an_instance_in_flight_does_when_cancelled() {
    let at = |step: Step, was_protected: bool, in_standby: bool| {
        let mut work = InstanceWork::new(child_id(0), instance_id(0), 0, 0, was_protected).start(1);
        work.step = step;
        work.in_standby = in_standby;
        work.goes_on_when_cancelled()
    };
    assert!(!at(Step::EnterStandby, false, false), "not started: stops");
    assert!(!at(Step::Unprotect, true, false), "not started: stops");
    assert!(at(Step::EnterStandby, true, false), "unprotected already: goes on");
    assert!(at(Step::EnterStandby, false, true), "a retry of a failed EnterStandby: goes on");
    for step in [Step::Drain, Step::Apply, Step::HealthCheck] {
        assert!(at(step, false, true), "{step}: goes on");
        assert!(at(step, true, true), "{step}: goes on");
    }
    assert!(!at(Step::ExitStandby, false, true), "stays in Standby");
    assert!(at(Step::Reprotect, true, false), "out of Standby: re-protected");
    assert!(!at(Step::Done, false, false));

    // A protected instance in flight at a cancel: unprotected already, so it finishes its change.
    let mut sim = Sim::scripted(Kind::ScriptExecution, 1, BatchPauseOption::Automatic, 0, vec![Script::Succeed; 2]);
    sim.protect(0);
    assert_eq!(sim.step_once(), TaskAction::Begin);
    assert_eq!(sim.step_once(), TaskAction::StartBatch(0));
    assert_eq!(sim.step_once(), TaskAction::Await);
    assert_eq!(sim.works[0].step, Step::EnterStandby);
    assert_eq!(sim.works[1].step, Step::Drain);
    sim.cancel(false).unwrap();
    sim.run();
    for work in &sim.works {
        assert_eq!(work.status, InstanceStatus::Aborted);
        assert!(work.applied && work.in_standby && work.step == Step::ExitStandby, "{work:?}");
    }
}

/// R10: a task cancelled before it began ends Cancelled without beginning or starting work.
#[test]
fn r10_cancel_before_begin_starts_no_work() {
    let mut sim = Sim::scripted(Kind::ImageUpdate, 2, BatchPauseOption::Automatic, 0, vec![Script::Succeed; 4]);
    sim.cancel(true).unwrap();
    sim.run();
    let outcome = Outcome::Cancelled { restore: true };
    assert_eq!(sim.actions(), vec![TaskAction::Finish(outcome), TaskAction::Complete(outcome), TaskAction::Idle]);
    assert!(!sim.task.begun);
    assert_eq!(sim.task.status, TaskStatus::Cancelled);
    assert!(sim.works.iter().all(|work| work.status == InstanceStatus::Aborted && work.started_at.is_none()));
}

/// R10: "no new instance work starts" after a cancel: operator decisions are refused.
#[test]
fn r10_no_instance_decision_after_cancel() {
    let mut sim = failure_paused(Script::FailAt(Step::Apply));
    sim.cancel(false).unwrap();
    for (i, decision) in [(1, InstanceDecision::Retry), (1, InstanceDecision::Skip), (2, InstanceDecision::Skip)] {
        assert_code(
            sim.works[i].decide(&sim.task, decision, 1),
            "IncorrectExecutionStatus",
            &format!("{decision:?} of instance {i} after cancel"),
        );
    }
}

/// R10: "Cancel (Running or Waiting)": a final task, or one already finishing, cannot be
/// cancelled.
#[test]
fn r10_cancel_of_a_final_task_is_refused() {
    let mut success = Sim::scripted(Kind::ImageUpdate, 1, BatchPauseOption::Automatic, 0, vec![Script::Succeed]);
    success.run();
    let mut cancelled = Sim::scripted(Kind::ImageUpdate, 1, BatchPauseOption::Automatic, 0, vec![Script::Succeed]);
    cancelled.cancel(false).unwrap();
    cancelled.run();
    let mut empty = Sim::scripted(Kind::ImageUpdate, 1, BatchPauseOption::Automatic, 0, vec![]);
    empty.run();
    let mut finishing = Sim::scripted(Kind::ImageUpdate, 1, BatchPauseOption::Automatic, 0, vec![Script::Succeed]);
    while !matches!(finishing.task.phase, Phase::Finish(_)) {
        finishing.step_once();
    }
    for (name, sim) in
        [("success", &success), ("cancelled", &cancelled), ("zero targets", &empty), ("finishing", &finishing)]
    {
        for restore in [false, true] {
            assert_code(sim.task.cancel(restore), "IncorrectExecutionStatus", name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// R11 success
// ---------------------------------------------------------------------------------------------

/// R11: "`exitProcess` resumed, except processes that were suspended before the task started."
#[test]
fn r11_processes_to_resume_are_exit_process_minus_suspended_before() {
    use Process::*;
    let cases: Vec<(Vec<Process>, Vec<Process>, Vec<Process>)> = vec![
        (Process::ALL.to_vec(), vec![], Process::ALL.to_vec()),
        (Process::ALL.to_vec(), vec![ScaleIn], vec![ScaleOut, HealthCheck, AlarmNotification, ScheduledAction]),
        (Process::ALL.to_vec(), Process::ALL.to_vec(), vec![]),
        (vec![ScaleIn, ScaleOut], vec![ScaleOut, HealthCheck], vec![ScaleIn]),
        (vec![], vec![ScaleIn], vec![]),
        (vec![HealthCheck], vec![], vec![HealthCheck]),
    ];
    for (exit, before, expected) in cases {
        let mut spec = spec(Kind::ImageUpdate, 1, BatchPauseOption::Automatic, 0);
        spec.exit_process = exit.clone();
        let task = TaskState::new(task_id(), spec, vec![1], before.clone(), 0);
        assert_eq!(task.processes_to_resume(), expected, "exit {exit:?}, suspended before {before:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// R14 idempotency at the state-machine level
// ---------------------------------------------------------------------------------------------

fn event_catalogue() -> Vec<TaskEvent> {
    let mut events = vec![
        TaskEvent::Begun,
        TaskEvent::Paused(WaitingStatus::BatchPaused),
        TaskEvent::Paused(WaitingStatus::FailurePaused),
        TaskEvent::Resumed,
        TaskEvent::Finishing(Outcome::Success),
        TaskEvent::Finishing(Outcome::Failed),
        TaskEvent::Finishing(Outcome::Cancelled { restore: false }),
        TaskEvent::Finishing(Outcome::Cancelled { restore: true }),
        TaskEvent::Completed { at: 77 },
    ];
    for k in 0..4 {
        events.push(TaskEvent::BatchStarted(k));
        events.push(TaskEvent::BatchDone(k));
    }
    events
}

/// A set of runs that go through every phase and waiting status.
fn scenario_runs() -> Vec<Sim> {
    let mut runs = Vec::new();
    for pause in BatchPauseOption::ALL.iter().copied() {
        let mut sim = Sim::scripted(
            Kind::ImageUpdate,
            3,
            pause,
            0,
            vec![
                Script::Succeed,
                Script::FailAt(Step::Apply),
                Script::Succeed,
                Script::FailAt(Step::HealthCheck),
                Script::Succeed,
            ],
        );
        sim.run_with_operator();
        runs.push(sim);
    }
    let mut retried = failure_paused(Script::FailOnceAt(Step::Drain));
    retried.decide_instance(1, InstanceDecision::Retry).unwrap();
    retried.run();
    runs.push(retried);
    let mut cancelled =
        Sim::scripted(Kind::ScriptExecution, 2, BatchPauseOption::Automatic, 0, vec![Script::Succeed; 4]);
    cancelled.step_once();
    cancelled.step_once();
    cancelled.cancel(true).unwrap();
    cancelled.run();
    runs.push(cancelled);
    let mut empty = Sim::scripted(Kind::ScriptExecution, 2, BatchPauseOption::Automatic, 0, vec![]);
    empty.run();
    runs.push(empty);
    runs
}

/// R14: "no step runs twice with a different effect": applying any event twice in a row gives
/// the same task state as applying it once, in every state a run goes through.
#[test]
fn r14_evolve_applying_any_event_twice_equals_once() {
    let events = event_catalogue();
    let mut checked = 0;
    for sim in scenario_runs() {
        for state in &sim.states {
            for event in &events {
                let once = state.clone().evolve(event);
                let twice = once.clone().evolve(event);
                assert_eq!(twice, once, "{event:?} applied twice to {state:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "the scenarios went through too few states ({checked})");
}

/// R14: "after a crash or restart every unfinished task resumes where it was; no step runs
/// twice with a different effect": replaying any earlier phase event (Begun, BatchStarted,
/// BatchDone, Finishing, Completed) after the task moved on changes nothing.
#[test]
fn r14_replaying_an_earlier_phase_event_changes_nothing() {
    let mut checked = 0;
    for sim in scenario_runs() {
        assert_eq!(sim.states.len(), sim.events.len() + 1);
        for (i, state) in sim.states.iter().enumerate() {
            for event in &sim.events[..i] {
                if matches!(event, TaskEvent::Paused(_) | TaskEvent::Resumed) {
                    continue;
                }
                assert_eq!(&state.clone().evolve(event), state, "stale {event:?} replayed on {state:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "too few replays checked ({checked})");
}

/// R14: a run whose every event is recorded twice behaves exactly like a run recording each
/// once: same decisions, same final task and instances.
#[test]
fn r14_run_with_every_event_doubled_matches_the_plain_run() {
    for pause in BatchPauseOption::ALL.iter().copied() {
        let scripts = vec![
            Script::Succeed,
            Script::FailAt(Step::Apply),
            Script::Succeed,
            Script::FailAt(Step::EnterStandby),
            Script::Succeed,
            Script::Succeed,
        ];
        let mut plain = Sim::scripted(Kind::ImageUpdate, 3, pause, 0, scripts.clone());
        plain.run_with_operator();
        let mut doubled = Sim::scripted(Kind::ImageUpdate, 3, pause, 0, scripts);
        doubled.double_events = true;
        doubled.run_with_operator();
        assert_eq!(plain.actions(), doubled.actions(), "{pause}");
        assert_eq!(plain.task, doubled.task, "{pause}");
        assert_eq!(plain.works, doubled.works, "{pause}");
    }
}

/// R14: "each step journaled and idempotent": recording the outcome of a step that is not the
/// instance's current one (stale, replayed or for a non-running instance) changes nothing.
#[test]
fn r14_record_of_a_stale_step_changes_nothing() {
    let fresh = InstanceWork::new(child_id(0), instance_id(0), 0, 0, true);
    let mut states: Vec<(&str, InstanceWork)> = vec![("queued", fresh.clone())];
    // Walk a protected instance through every step of a health-gated kind, keeping each state.
    let mut running = fresh.start(10);
    states.push(("running at Unprotect", running.clone()));
    let mut at = 10;
    while let Some(step) = running.next_step() {
        at += 1;
        running = running.record(step, StepOutcome::Done(StepReport::default()), true, at);
        states.push(("running further", running.clone()));
    }
    assert_eq!(running.status, InstanceStatus::Success);
    let mut failed = InstanceWork::new(child_id(1), instance_id(1), 0, 0, false).start(1);
    failed = failed.record(Step::EnterStandby, StepOutcome::Done(StepReport::default()), true, 2);
    failed = failed.record(Step::Drain, Script::FailAt(Step::Drain).outcome(Step::Drain, 1), true, 3);
    assert_eq!(failed.status, InstanceStatus::Failed);
    states.push(("failed", failed.clone()));
    states.push(("skipped", {
        let mut skipped = failed.clone();
        skipped.status = InstanceStatus::Skipped;
        skipped
    }));
    states.push(("aborted", InstanceWork::new(child_id(2), instance_id(2), 0, 0, false).abort(5)));

    let outcomes = [StepOutcome::Done(StepReport::default()), Script::FailAt(Step::Apply).outcome(Step::Apply, 1)];
    for (name, work) in &states {
        for step in ALL_STEPS {
            if work.status == InstanceStatus::Running && work.step == step {
                continue;
            }
            for outcome in &outcomes {
                let after = work.clone().record(step, outcome.clone(), true, 999);
                assert_eq!(&after, work, "{name}: stale {step} {outcome:?}");
            }
        }
    }

    // Replaying the outcome just recorded is a stale record too.
    let mut work = InstanceWork::new(child_id(3), instance_id(3), 0, 0, false).start(1);
    let mut at = 1;
    while let Some(step) = work.next_step() {
        at += 1;
        let once = work.record(step, StepOutcome::Done(StepReport::default()), false, at);
        let twice = once.clone().record(step, StepOutcome::Done(StepReport::default()), false, at + 100);
        assert_eq!(twice, once, "replayed {step}");
        work = once;
    }
    assert_eq!(work.status, InstanceStatus::Success);
}

/// R14: releasing an instance and aborting one are idempotent.
#[test]
fn r14_start_and_abort_are_idempotent() {
    let work = InstanceWork::new(child_id(0), instance_id(0), 0, 0, false);
    let started = work.clone().start(5);
    assert_eq!(started.clone().start(9), started);
    assert_eq!(started.attempt, 1);
    let aborted = work.abort(5);
    assert_eq!(aborted.clone().abort(9), aborted);
    assert_eq!(aborted.clone().start(9), aborted, "an aborted instance is never released");
    let mut done = started;
    while let Some(step) = done.next_step() {
        done = done.record(step, StepOutcome::Done(StepReport::default()), false, 6);
    }
    assert_eq!(done.clone().abort(9), done, "abort leaves a finished instance alone");
    assert_eq!(done.clone().start(9), done);
}

// ---------------------------------------------------------------------------------------------
// Property: random runs with an operator who continues pauses and skips failures
// ---------------------------------------------------------------------------------------------

fn script_strategy() -> impl Strategy<Value = Script> {
    prop_oneof![
        3 => Just(Script::Succeed),
        1 => proptest::sample::select(ALL_STEPS[..7].to_vec()).prop_map(Script::FailAt),
    ]
}

fn pause_strategy() -> impl Strategy<Value = BatchPauseOption> {
    proptest::sample::select(BatchPauseOption::ALL.to_vec())
}

/// Whether `script` fails the instance at a step it actually goes through.
fn fails(script: Script, protected: bool, health_gated: bool) -> bool {
    match script {
        Script::Succeed => false,
        Script::FailAt(step) | Script::FailOnceAt(step) => match step {
            Step::Unprotect | Step::Reprotect => protected,
            Step::HealthCheck => health_gated,
            Step::Done => false,
            _ => true,
        },
    }
}

fn expected_batch_pauses(pause: BatchPauseOption, n_batches: u32) -> Vec<u32> {
    match pause {
        BatchPauseOption::Automatic => vec![],
        BatchPauseOption::FirstBatchPause if n_batches > 1 => vec![0],
        BatchPauseOption::FirstBatchPause => vec![],
        BatchPauseOption::EveryBatchPause => (0..n_batches.saturating_sub(1)).collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// R2, R6, R7, R8, R9 together: random outcomes, batch counts and pause options, with an
    /// operator who continues pauses and skips failures. The run ends Success; every instance
    /// ends Success or Skipped; batches start strictly in order, never while an earlier instance
    /// is unfinished; one FailurePaused per batch with a failure; BatchPaused as the policy says.
    #[test]
    fn r2_r6_r7_r8_r9_random_runs_with_a_continuing_skipping_operator(
        targets in proptest::collection::vec((script_strategy(), any::<bool>()), 1..=24),
        batch_number in 1u32..=10,
        pause in pause_strategy(),
        image in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let kind = if image { Kind::ImageUpdate } else { Kind::ScriptExecution };
        let scripts: Vec<Script> = targets.iter().map(|(script, _)| *script).collect();
        let mut sim = Sim::scripted(kind, batch_number, pause, 0, scripts.clone());
        for (i, (_, protected)) in targets.iter().enumerate() {
            if *protected {
                sim.protect(i);
            }
        }
        sim.rng = Some(seed | 1);
        sim.run_with_operator();

        prop_assert_eq!(sim.task.status, TaskStatus::Success);
        let n_batches = sim.task.n_batches();
        prop_assert_eq!(n_batches as usize, (batch_number as usize).min(targets.len()));
        for (i, work) in sim.works.iter().enumerate() {
            let failing = fails(scripts[i], targets[i].1, kind.health_gated());
            let expected = if failing { InstanceStatus::Skipped } else { InstanceStatus::Success };
            prop_assert_eq!(work.status, expected, "instance {}", i);
            prop_assert_eq!(work.status.wire_status(), "Success");
            if !failing {
                prop_assert!(!work.in_standby, "instance {} left in Standby", i);
            }
        }
        let starts = sim.batch_starts();
        prop_assert_eq!(starts.iter().map(|(k, _)| *k).collect::<Vec<_>>(), (0..n_batches).collect::<Vec<_>>());
        for (k, statuses) in &starts {
            for (i, status) in statuses.iter().enumerate() {
                let batch = sim.batch_of(i);
                if batch < *k {
                    prop_assert!(
                        matches!(status, InstanceStatus::Success | InstanceStatus::Skipped),
                        "batch {} started while instance {} of batch {} was {}", k, i, batch, status
                    );
                } else {
                    prop_assert_eq!(*status, InstanceStatus::Queued);
                }
            }
        }
        prop_assert_eq!(sim.batch_pauses(), expected_batch_pauses(pause, n_batches));
        let batches_with_failure = (0..n_batches)
            .filter(|&k| (0..targets.len()).any(|i| sim.batch_of(i) == k && fails(scripts[i], targets[i].1, kind.health_gated())))
            .count();
        prop_assert_eq!(sim.count(&TaskAction::Pause(WaitingStatus::FailurePaused)), batches_with_failure);
        prop_assert_eq!(sim.count(&TaskAction::Resume), batches_with_failure);
        prop_assert_eq!(sim.count(&TaskAction::Begin), 1);
    }

    /// R7 with random `maxErrors`: the task ends Success and no more than `maxErrors` failures are
    /// left undecided; a FailurePaused pause comes only when failures exceed `maxErrors`.
    #[test]
    fn r7_random_max_errors_never_leaves_more_failures_than_tolerated(
        scripts in proptest::collection::vec(script_strategy(), 1..=20),
        batch_number in 1u32..=10,
        max_errors in 0u32..=4,
        seed in any::<u64>(),
    ) {
        let mut sim = Sim::scripted(Kind::ImageUpdate, batch_number, BatchPauseOption::Automatic, max_errors, scripts);
        sim.rng = Some(seed | 1);
        sim.run_with_operator();
        prop_assert_eq!(sim.task.status, TaskStatus::Success);
        let failed = sim.works.iter().filter(|work| work.status == InstanceStatus::Failed).count() as u32;
        prop_assert!(failed <= max_errors, "{} failures left with maxErrors {}", failed, max_errors);
        for entry in &sim.log {
            if entry.action == TaskAction::Pause(WaitingStatus::FailurePaused) {
                let undecided = entry.statuses.iter().filter(|status| **status == InstanceStatus::Failed).count() as u32;
                prop_assert!(undecided > max_errors);
            }
        }
        for work in sim.works.iter().filter(|work| work.status == InstanceStatus::Failed) {
            prop_assert!(work.in_standby || work.step == Step::Unprotect);
        }
    }

    /// R14: doubling every recorded event changes nothing in a random run.
    #[test]
    fn r14_random_runs_are_unchanged_by_doubled_events(
        scripts in proptest::collection::vec(script_strategy(), 0..=12),
        batch_number in 1u32..=5,
        pause in pause_strategy(),
        seed in any::<u64>(),
    ) {
        let mut plain = Sim::scripted(Kind::ImageUpdate, batch_number, pause, 0, scripts.clone());
        plain.rng = Some(seed | 1);
        plain.run_with_operator();
        let mut doubled = Sim::scripted(Kind::ImageUpdate, batch_number, pause, 0, scripts);
        doubled.rng = Some(seed | 1);
        doubled.double_events = true;
        doubled.run_with_operator();
        prop_assert_eq!(plain.actions(), doubled.actions());
        prop_assert_eq!(plain.task, doubled.task);
        prop_assert_eq!(plain.works, doubled.works);
    }
}

// ---------------------------------------------------------------------------------------------
// R12 processes of a rollback, R16 a failed step records what the instance became
// ---------------------------------------------------------------------------------------------

/// How a source task ended, for the R12 process tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Still waiting (a rollback cancels it first; this is how it is seen before that).
    Waiting,
    /// Cancelled before it began: it suspended nothing.
    CancelledBeforeBegin,
    Ended(Outcome),
}

/// A task of `enter`/`exit` processes with `before` suspended before it, taken to `ending`
/// through the transitions the engine commits.
fn ended_task(enter: &[Process], exit: &[Process], before: &[Process], ending: Ending) -> TaskState {
    let mut spec = spec(Kind::ImageUpdate, 1, BatchPauseOption::Automatic, 0);
    spec.enter_process = enter.to_vec();
    spec.exit_process = exit.to_vec();
    let mut task = TaskState::new(task_id(), spec, vec![1], before.to_vec(), 0);
    let finish = |task: TaskState, outcome: Outcome| {
        let task = match outcome {
            Outcome::Cancelled { restore } => task.cancel(restore).expect("a running task can be cancelled"),
            _ => task,
        };
        task.evolve(&TaskEvent::Finishing(outcome)).evolve(&TaskEvent::Completed { at: 9 })
    };
    match ending {
        Ending::CancelledBeforeBegin => finish(task, Outcome::Cancelled { restore: false }),
        Ending::Waiting => {
            task = task.evolve(&TaskEvent::Beginning).evolve(&TaskEvent::Begun);
            task.evolve(&TaskEvent::Paused(WaitingStatus::BatchPaused))
        }
        Ending::Ended(outcome) => finish(task.evolve(&TaskEvent::Beginning).evolve(&TaskEvent::Begun), outcome),
    }
}

/// The group's suspended processes after `task` began and ended, starting from `group`.
fn after_task(group: &[Process], task: &TaskState) -> Vec<Process> {
    let mut set: Vec<Process> = group.to_vec();
    if task.begun {
        set.extend(task.spec.enter_process.iter().copied());
    }
    if let Some(outcome) = task.outcome() {
        let resumed = task.processes_resumed_by(outcome);
        set.retain(|process| !resumed.contains(process));
    }
    set.sort();
    set.dedup();
    set
}

fn rollback_of(source: &TaskState, group: &[Process]) -> TaskState {
    let mut spec = source.spec.clone();
    spec.invoke_type = InvokeType::Rollback;
    spec.source_execution_id = Some(source.id.clone());
    let before = rollscale_core::task::rollback_suspended_before(source, group);
    TaskState::new(child_id(99), spec, vec![1], before, 10)
}

/// R12: "Its processes are the source's": a rollback counts as suspended before it what the
/// group has suspended, less what its source suspended itself and left suspended; so on
/// success it resumes what the source left, and never what was suspended before the source,
/// nor what someone suspended since.
#[test]
fn r12_rollback_suspended_before_leaves_out_what_the_source_left_suspended() {
    use Process::*;
    let all = Process::ALL.to_vec();
    type Case = (&'static str, Vec<Process>, Vec<Process>, Vec<Process>, Ending, Vec<Process>, Vec<Process>);
    let cases: Vec<Case> = vec![
        // (case, enter, exit, suspended before the source, its ending, suspended by someone
        //  after it ended, expected suspended_before of the rollback)
        (
            "success",
            all.clone(),
            all.clone(),
            vec![ScheduledAction],
            Ending::Ended(Outcome::Success),
            vec![],
            vec![ScheduledAction],
        ),
        ("waiting", all.clone(), all.clone(), vec![ScheduledAction], Ending::Waiting, vec![], vec![ScheduledAction]),
        (
            "cancelled",
            all.clone(),
            all.clone(),
            vec![ScheduledAction],
            Ending::Ended(Outcome::Cancelled { restore: false }),
            vec![],
            vec![ScheduledAction],
        ),
        (
            "cancelled with restore",
            all.clone(),
            all.clone(),
            vec![ScheduledAction],
            Ending::Ended(Outcome::Cancelled { restore: true }),
            vec![],
            vec![ScheduledAction],
        ),
        ("failed", all.clone(), all.clone(), vec![], Ending::Ended(Outcome::Failed), vec![], vec![]),
        (
            "cancelled before it began",
            all.clone(),
            all.clone(),
            vec![ScaleIn],
            Ending::CancelledBeforeBegin,
            vec![ScaleOut],
            vec![ScaleIn, ScaleOut],
        ),
        (
            "suspended before and entered",
            vec![ScaleIn, ScaleOut],
            vec![ScaleIn, ScaleOut],
            vec![ScaleIn],
            Ending::Ended(Outcome::Cancelled { restore: false }),
            vec![],
            vec![ScaleIn],
        ),
        (
            "suspended by someone since",
            all.clone(),
            all.clone(),
            vec![],
            Ending::Ended(Outcome::Success),
            vec![AlarmNotification],
            vec![AlarmNotification],
        ),
        (
            "cancelled, then one suspended",
            vec![ScaleIn],
            vec![ScaleIn],
            vec![],
            Ending::Ended(Outcome::Cancelled { restore: false }),
            vec![HealthCheck],
            vec![HealthCheck],
        ),
        (
            "exit narrower than enter",
            vec![ScaleIn, ScaleOut],
            vec![ScaleIn],
            vec![],
            Ending::Ended(Outcome::Success),
            vec![],
            vec![],
        ),
    ];
    for (case, enter, exit, before, ending, since, expected) in cases {
        let source = ended_task(&enter, &exit, &before, ending);
        let mut group = after_task(&before, &source);
        group.extend(since);
        group.sort();
        let rollback = rollback_of(&source, &group);
        assert_eq!(rollback.suspended_before, expected, "{case}: group {group:?}");
    }
}

/// R12 with R10/R11, end to end over the rules: whatever the source's processes and ending,
/// and whatever someone else suspended after it, a rollback that succeeds (or is cancelled
/// with restore) leaves suspended exactly what was suspended before the source, what was
/// suspended since, and the source's `enterProcess` that its `exitProcess` does not resume.
/// A rollback cancelled without restore leaves the processes suspended (R10).
#[test]
fn r12_a_rollback_restores_the_processes_to_what_they_were_before_its_source() {
    let subsets: Vec<Vec<Process>> = (0u32..32)
        .map(|bits| Process::ALL.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, p)| *p).collect())
        .collect();
    let endings = [
        Ending::Waiting,
        Ending::CancelledBeforeBegin,
        Ending::Ended(Outcome::Success),
        Ending::Ended(Outcome::Failed),
        Ending::Ended(Outcome::Cancelled { restore: false }),
        Ending::Ended(Outcome::Cancelled { restore: true }),
    ];
    let union = |a: &[Process], b: &[Process]| {
        let mut set: Vec<Process> = a.iter().chain(b).copied().collect();
        set.sort();
        set.dedup();
        set
    };
    let mut checked = 0;
    // A sample of the 32^4 combinations: every enter/exit/before triple with a few "since".
    for (n, enter) in subsets.iter().enumerate() {
        for (m, exit) in subsets.iter().enumerate() {
            for before in [&subsets[(n * 7 + m) % 32], &subsets[(n + m * 3) % 32], &subsets[0]] {
                for ending in endings {
                    let source = ended_task(enter, exit, before, ending);
                    // The rollback cancels a waiting source first (without restore).
                    let source = match ending {
                        Ending::Waiting => {
                            let cancelled = source.cancel(false).expect("cancel");
                            let outcome = Outcome::Cancelled { restore: false };
                            cancelled.evolve(&TaskEvent::Finishing(outcome)).evolve(&TaskEvent::Completed { at: 9 })
                        }
                        _ => source,
                    };
                    let after_source = after_task(before, &source);
                    // Someone suspends a process that was running (one already suspended
                    // cannot be told apart from the source's own).
                    let since: Vec<Process> =
                        subsets[(n + 2 * m + 5) % 32].iter().copied().filter(|p| !after_source.contains(p)).collect();
                    let group = union(&after_source, &since);
                    for rollback_ending in
                        [Outcome::Success, Outcome::Cancelled { restore: true }, Outcome::Cancelled { restore: false }]
                    {
                        let rollback = rollback_of(&source, &group);
                        let rollback = match rollback_ending {
                            Outcome::Cancelled { restore } => rollback.cancel(restore).expect("cancel"),
                            _ => rollback,
                        };
                        let rollback = rollback
                            .evolve(&TaskEvent::Beginning)
                            .evolve(&TaskEvent::Begun)
                            .evolve(&TaskEvent::Finishing(rollback_ending))
                            .evolve(&TaskEvent::Completed { at: 20 });
                        let end = after_task(&group, &rollback);
                        let expected = if rollback_ending.resumes_processes() {
                            let kept: Vec<Process> = enter.iter().copied().filter(|p| !exit.contains(p)).collect();
                            union(&union(before, &since), &kept)
                        } else {
                            union(&group, enter)
                        };
                        assert_eq!(
                            end, expected,
                            "enter {enter:?} exit {exit:?} before {before:?} {ending:?}, since {since:?}, rollback {rollback_ending:?}"
                        );
                        // No process suspended before the source is ever resumed.
                        assert!(before.iter().all(|p| end.contains(p)));
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 50_000, "{checked}");
}

/// R12 with R1: a rollback with no targets never begins, but a success still resumes what its
/// source left suspended; an invoke task with no targets resumes nothing (it changed nothing).
#[test]
fn r12_a_rollback_without_targets_still_resumes_what_its_source_left() {
    use Process::*;
    let all = Process::ALL;
    let source = ended_task(all, all, &[ScheduledAction], Ending::Ended(Outcome::Cancelled { restore: false }));
    let group = after_task(&[ScheduledAction], &source);
    assert_eq!(group, all.to_vec());
    let mut rollback = rollback_of(&source, &group);
    rollback.batch_sizes.clear();
    assert_eq!(decide(&rollback, &rollscale_core::task::Progress::default()), TaskAction::Finish(Outcome::Success));
    let rollback = rollback.evolve(&TaskEvent::Finishing(Outcome::Success)).evolve(&TaskEvent::Completed { at: 20 });
    assert!(!rollback.begun);
    assert_eq!(after_task(&group, &rollback), vec![ScheduledAction]);
    let invoke =
        TaskState::new(task_id(), spec(Kind::ImageUpdate, 1, BatchPauseOption::Automatic, 0), vec![], vec![], 0);
    assert!(invoke.processes_resumed_by(Outcome::Success).is_empty());
    assert!(invoke.processes_left_suspended().is_empty());
}

/// R10/R11 with `Beginning`: a task is begun from the moment `Begin`'s effects may run, so a
/// cancel that comes before `Begun` was committed still resumes (with restore) what it
/// suspended; `Beginning` is replay-safe and fits only the Begin phase.
#[test]
fn r10_a_cancel_between_beginning_and_begun_resumes_with_restore() {
    let task =
        TaskState::new(task_id(), spec(Kind::ImageUpdate, 1, BatchPauseOption::Automatic, 0), vec![1], vec![], 0);
    let beginning = task.clone().evolve(&TaskEvent::Beginning);
    assert!(beginning.begun && beginning.phase == Phase::Begin);
    assert_eq!(beginning.clone().evolve(&TaskEvent::Beginning), beginning, "replay-safe");
    assert_eq!(
        decide(&beginning, &rollscale_core::task::Progress::default()),
        TaskAction::Begin,
        "the effects run after it"
    );
    let cancelled = beginning.cancel(true).unwrap();
    let outcome = Outcome::Cancelled { restore: true };
    assert_eq!(decide(&cancelled, &rollscale_core::task::Progress::default()), TaskAction::Finish(outcome));
    let done = cancelled.evolve(&TaskEvent::Finishing(outcome)).evolve(&TaskEvent::Completed { at: 5 });
    assert_eq!(done.outcome(), Some(outcome));
    assert_eq!(done.processes_resumed_by(outcome), Process::ALL.to_vec());
    // After Begun, Beginning changes nothing.
    let begun = task.evolve(&TaskEvent::Beginning).evolve(&TaskEvent::Begun);
    assert_eq!(begun.clone().evolve(&TaskEvent::Beginning), begun);
}

/// R16: a failed Apply that reports it changed the instance marks it applied (a rollback
/// targets it); one that did not, or a failure of another step, does not; recording is
/// replay-safe.
#[test]
fn r16_a_failed_apply_that_changed_the_instance_is_applied() {
    let at_apply = |health_gated: bool| {
        let mut work = InstanceWork::new(child_id(1), instance_id(1), 0, 0, false).start(1);
        for step in [Step::EnterStandby, Step::Drain] {
            work = work.record(step, StepOutcome::Done(StepReport::default()), health_gated, 2);
        }
        assert_eq!(work.step, Step::Apply);
        work
    };
    let failure = |changed: bool| StepOutcome::Failed {
        code: "OperationFailed".into(),
        message: "the new container fails its health check".into(),
        report: StepReport { before: Some("img-old".into()), changed, ..StepReport::default() },
    };
    for health_gated in [false, true] {
        let changed = at_apply(health_gated).record(Step::Apply, failure(true), health_gated, 3);
        assert_eq!((changed.status, changed.step, changed.applied), (InstanceStatus::Failed, Step::Apply, true));
        assert_eq!(changed.before.as_deref(), Some("img-old"));
        assert!(changed.in_standby, "R7: it stays in Standby");
        let unchanged = at_apply(health_gated).record(Step::Apply, failure(false), health_gated, 3);
        assert!(!unchanged.applied);
        // A replay of either outcome on the failed instance changes nothing.
        assert_eq!(changed.clone().record(Step::Apply, failure(false), health_gated, 4), changed);
        assert_eq!(unchanged.clone().record(Step::Apply, failure(true), health_gated, 4), unchanged);
        // A retry that succeeds keeps it applied; the failed health gate after an Apply too.
        let retried = changed
            .decide(
                &TaskState::new(
                    task_id(),
                    spec(Kind::ImageUpdate, 1, BatchPauseOption::Automatic, 0),
                    vec![1],
                    vec![],
                    0,
                ),
                InstanceDecision::Retry,
                5,
            )
            .unwrap();
        let retried = retried.record(Step::Apply, StepOutcome::Done(StepReport::default()), health_gated, 6);
        assert!(retried.applied);
    }
    // Only Apply counts: a failed health gate's instance was applied by its Apply already, and
    // a `changed` report of another step is ignored.
    let gated = at_apply(true).record(Step::Apply, StepOutcome::Done(StepReport::default()), true, 3);
    let gate_failed = gated.record(Step::HealthCheck, failure(true), true, 4);
    assert_eq!(
        (gate_failed.status, gate_failed.step, gate_failed.applied),
        (InstanceStatus::Failed, Step::HealthCheck, true)
    );
    let mut drain = InstanceWork::new(child_id(2), instance_id(2), 0, 0, false).start(1);
    drain = drain.record(Step::EnterStandby, StepOutcome::Done(StepReport::default()), true, 2);
    let drain_failed = drain.record(Step::Drain, failure(true), true, 3);
    assert!(!drain_failed.applied);
}
