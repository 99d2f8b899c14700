//! Domain values in the JSON shapes the SDKs parse (docs/wire.md, "A response"). Field types follow the tea
//! models exactly: a nested object or list of the wrong type makes those SDKs drop the body.
//!
//! An execution, which clients read, is built as `rollscale_client::wire`'s [`Execution`] (with
//! its typed `Outputs` and a child's `Parameters`), the one description of that shape that the
//! CLI reads back; serde writes it. The task executions of `ListTaskExecutions`, which no
//! client of this repository reads, are still written here as JSON.

use rollscale_client::wire::{
    self, Counters, CurrentTask, Execution, ExecutionCategory, ExecutionMode, ImageOutputs, InstanceOutputs,
    InstanceParameters, LoopMode, Parameters, SafetyCheck, TaskOutputs, TaskPhase,
};
use rollscale_core::domain::Millis;
use rollscale_core::image_task::{ImageUpdateExecution, TEMPLATE_NAME as IMAGE_UPDATE_TEMPLATE};
use rollscale_core::params::{Change, InvokeType, RollingUpdateSpec};
use rollscale_core::task::{InstanceStatus, InstanceWork, Phase, StatusCounts, Step, TaskState, TaskStatus};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// `2019-05-16T10:26:14Z`, or "" for none.
pub fn date(millis: Option<Millis>) -> String {
    millis
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The template parameters a task runs by, defaults resolved.
pub fn spec_parameters(spec: &RollingUpdateSpec) -> Value {
    Value::Object(spec_parameter_map(spec))
}

fn spec_parameter_map(spec: &RollingUpdateSpec) -> Map<String, Value> {
    let mut params = Map::new();
    params.insert("invokeType".into(), json!(spec.invoke_type.as_str()));
    params.insert("scalingGroupId".into(), json!(spec.group_id));
    params.insert("enterProcess".into(), json!(spec.enter_process.iter().map(|p| p.as_str()).collect::<Vec<_>>()));
    params.insert("exitProcess".into(), json!(spec.exit_process.iter().map(|p| p.as_str()).collect::<Vec<_>>()));
    params.insert("lifecycleState".into(), json!(spec.lifecycle_states.iter().map(|s| s.as_str()).collect::<Vec<_>>()));
    params.insert("batchNumber".into(), json!(spec.batch_number));
    params.insert("batchPauseOption".into(), json!(spec.batch_pause.as_str()));
    params.insert("OOSAssumeRole".into(), json!(spec.assume_role));
    if let Some(source) = &spec.source_execution_id {
        params.insert("sourceExecutionId".into(), json!(source));
    }
    let rollback = spec.invoke_type == InvokeType::Rollback;
    match &spec.change {
        Change::Image { image_id } => {
            if let Some(configuration) = &spec.configuration_id {
                params.insert("scalingConfigurationId".into(), json!(configuration));
            }
            if rollback {
                params.insert("sourceImageId".into(), json!(image_id));
            } else {
                params.insert("imageId".into(), json!(image_id));
                if let Some(Change::Image { image_id }) = &spec.rollback_change {
                    params.insert("sourceImageId".into(), json!(image_id));
                }
            }
            params.insert("maxErrors".into(), json!(spec.max_errors));
        }
        Change::Script(script) => {
            params.insert("commandType".into(), json!(script.command_type.as_str()));
            let name = if rollback { "rollbackScript" } else { "invokeScript" };
            params.insert(name.into(), json!(script.script));
            if let Some(Change::Script(rollback_script)) = &spec.rollback_change {
                params.insert("rollbackScript".into(), json!(rollback_script.script));
            }
            if let Some(dir) = &script.working_dir {
                params.insert("workingDir".into(), json!(dir));
            }
            params.insert("timeout".into(), json!(script.timeout_s));
        }
        Change::Package { name, version, action } => {
            params.insert("packageName".into(), json!(name));
            params.insert("packageVersion".into(), json!(version));
            params.insert("action".into(), json!(action.as_str()));
        }
        Change::ContainerGroup { update_type, containers } => {
            params.insert("updateType".into(), json!(update_type.as_str()));
            params.insert("containers".into(), json!(containers));
            params.insert("maxErrors".into(), json!(spec.max_errors));
        }
    }
    params
}

/// OOS's counters, by the statuses clients see (`InstanceStatus::wire_status`).
fn counters(counts: &StatusCounts) -> Counters {
    Counters {
        total: counts.total().into(),
        success: u64::from(counts.success) + u64::from(counts.skipped),
        running: counts.running.into(),
        failed: u64::from(counts.failed) + u64::from(counts.cancelled),
        cancelled: counts.aborted.into(),
        waiting: 0,
        queued: counts.queued.into(),
    }
}

fn task_outputs(task: &TaskState) -> TaskOutputs {
    let (phase, batch) = match &task.phase {
        Phase::Begin => (TaskPhase::Begin, 0),
        Phase::Batch { index, .. } => (TaskPhase::Batch, (index + 1).min(task.n_batches())),
        Phase::Finish(_) => (TaskPhase::Finish, task.n_batches()),
        Phase::Done => (TaskPhase::Done, task.n_batches()),
    };
    TaskOutputs {
        phase,
        current_batch: batch.into(),
        batch_count: Some(task.n_batches().into()),
        batch_sizes: task.batch_sizes.iter().map(|&size| size.into()).collect(),
        cancel_requested: task.cancel.is_some(),
        restore: task.cancel.map(|c| c.restore).unwrap_or(false),
    }
}

/// What every execution of rollscale shows alike: the template's, and how OOS would run it.
fn execution_of(id: String, template_name: &str) -> Execution {
    Execution {
        execution_id: id,
        template_name: template_name.to_string(),
        template_id: template_id(template_name),
        template_version: "v1".into(),
        mode: ExecutionMode::Automatic,
        loop_mode: LoopMode::Automatic,
        safety_check: SafetyCheck::Skip,
        executed_by: "rollscale".into(),
        category: ExecutionCategory::Other,
        ..Execution::default()
    }
}

/// A value as the JSON text of its object (an `Outputs` of `ListTaskExecutions`).
fn object_text<T: Serialize>(value: &T) -> String {
    Value::Object(wire::to_object(value)).to_string()
}

/// A task as an OOS execution. `parameters_as_text` for StartExecution (a JSON string there),
/// an object for ListExecutions.
pub fn task_execution(task: &TaskState, counts: &StatusCounts, parameters_as_text: bool) -> Execution {
    let running = matches!(task.status, TaskStatus::Running | TaskStatus::Waiting);
    let current_tasks = match (&task.phase, running) {
        (Phase::Batch { index, .. }, true) => vec![CurrentTask {
            task_action: "ACS::ESS::RollingUpdateBatch".into(),
            task_execution_id: String::new(),
            task_name: format!("batch{}", index + 1),
        }],
        _ => Vec::new(),
    };
    Execution {
        ram_role: task.spec.assume_role.clone(),
        is_parent: true,
        start_date: date(Some(task.created_at)),
        end_date: date(task.ended_at),
        create_date: date(Some(task.created_at)),
        update_date: date(Some(task.ended_at.unwrap_or(task.created_at))),
        status: task.status.into(),
        waiting_status: task.waiting,
        status_message: task.status_message.clone(),
        status_reason: task.waiting.map(|w| w.as_str()).unwrap_or("").to_string(),
        outputs: wire::to_object(&task_outputs(task)),
        parameters: Parameters { values: spec_parameter_map(&task.spec), as_text: parameters_as_text },
        counters: counters(counts),
        current_tasks,
        ..execution_of(task.id.to_string(), task.spec.kind.template_name())
    }
}

fn work_status_message(work: &InstanceWork) -> String {
    match work.status {
        InstanceStatus::Skipped => "skipped by an operator; the instance stays in Standby".into(),
        InstanceStatus::Cancelled => "cancelled by an operator".into(),
        InstanceStatus::Aborted if work.applied => {
            "the change was applied; the rolling update was cancelled before the instance left Standby".into()
        }
        InstanceStatus::Aborted if work.in_standby => {
            "stopped in Standby before the change: the rolling update was cancelled".into()
        }
        InstanceStatus::Aborted => "not run: the rolling update was cancelled".into(),
        _ => work.error_message.clone().unwrap_or_default(),
    }
}

pub fn work_outputs(work: &InstanceWork) -> InstanceOutputs {
    InstanceOutputs {
        instance_id: work.instance_id.to_string(),
        step: work.step.into(),
        attempt: Some(work.attempt.into()),
        exit_code: work.exit_code.map(i64::from),
        output: work.output.clone(),
        truncated: work.output_truncated,
        error_code: work.error_code.clone(),
        error: work.error_message.clone(),
        before: work.before.clone(),
        in_standby: work.in_standby,
        applied: work.applied,
        skipped: work.status == InstanceStatus::Skipped,
        cancelled: work.status == InstanceStatus::Cancelled,
    }
}

/// One instance's child execution.
pub fn work_execution(
    parent_id: &str,
    template_name: &str,
    work: &InstanceWork,
    parameters_as_text: bool,
) -> Execution {
    let parameters = InstanceParameters {
        instance_id: work.instance_id.to_string(),
        batch: Some(u64::from(work.batch) + 1),
        position: Some(work.position.into()),
    };
    Execution {
        ram_role: String::new(),
        parent_execution_id: parent_id.to_string(),
        is_parent: false,
        start_date: date(work.started_at),
        end_date: date(work.ended_at),
        create_date: date(work.started_at),
        update_date: date(work.ended_at.or(work.started_at)),
        status: work.status.into(),
        waiting_status: None,
        status_message: work_status_message(work),
        status_reason: work.error_code.clone().unwrap_or_default(),
        outputs: wire::to_object(&work_outputs(work)),
        parameters: Parameters { values: wire::to_object(&parameters), as_text: parameters_as_text },
        counters: Counters { total: 1, ..Counters::default() },
        ..execution_of(work.execution_id.to_string(), template_name)
    }
}

/// An image update execution: a scheduled task (a parent, Waiting between firings) or a
/// firing (a task that runs now, or a parent's child), as OOS shows them. `Outputs` carries a
/// firing's `imageId`; `Tags` the task's tags (the catalog's images have none).
pub fn image_execution(execution: &ImageUpdateExecution, parameters_as_text: bool) -> Execution {
    let parameters = match execution.spec.parameters() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let tags: Map<String, Value> =
        execution.spec.tags.iter().map(|tag| (tag.key.clone(), Value::String(tag.value.clone()))).collect();
    let firings = execution.schedule.as_ref().map_or(0, |s| s.firings);
    let current_task = |action: &str, id: &str, name: &str| CurrentTask {
        task_action: action.into(),
        task_execution_id: id.into(),
        task_name: name.into(),
    };
    let current_tasks = match (&execution.firing, execution.status) {
        (Some(firing), TaskStatus::Running) => vec![current_task(
            "ACS::ExecuteAPI",
            "",
            if firing.image_id.is_none() { "createImage" } else { "updateScalingConfiguration" },
        )],
        (None, _) => match execution.schedule.as_ref().and_then(|s| s.current_child.as_ref()) {
            Some(child) => vec![current_task("ACS::TimerTrigger", child.as_str(), "timerTrigger")],
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    Execution {
        ram_role: execution.spec.assume_role.clone(),
        parent_execution_id: execution.parent_id.as_ref().map(|id| id.to_string()).unwrap_or_default(),
        is_parent: execution.schedule.is_some(),
        start_date: date(Some(execution.created_at)),
        end_date: date(execution.ended_at),
        create_date: date(Some(execution.created_at)),
        update_date: date(Some(execution.updated_at)),
        status: execution.status.into(),
        waiting_status: None,
        status_message: execution.status_message.clone(),
        status_reason: match execution.schedule.as_ref().and_then(|s| s.next_fire_at) {
            Some(next) if !execution.status.is_final() => format!("next firing at {}", date(Some(next))),
            _ => String::new(),
        },
        outputs: wire::to_object(&ImageOutputs { image_id: execution.output_image().map(str::to_string) }),
        parameters: Parameters { values: parameters, as_text: parameters_as_text },
        counters: Counters { total: firings.into(), ..Counters::default() },
        current_tasks,
        tags,
        ..execution_of(execution.id.to_string(), IMAGE_UPDATE_TEMPLATE)
    }
}

/// A task execution of `ListTaskExecutions` for a parent: one per instance.
pub fn instance_task_execution(parent_id: &str, template_name: &str, work: &InstanceWork) -> Value {
    json!({
        "TaskExecutionId": work.execution_id,
        "ExecutionId": parent_id,
        "TaskName": "rollingUpdateInstance",
        "TaskAction": "ACS::Template",
        "Status": work.status.wire_status(),
        "StatusMessage": work_status_message(work),
        "StartDate": date(work.started_at),
        "EndDate": date(work.ended_at),
        "CreateDate": date(work.started_at),
        "UpdateDate": date(work.ended_at.or(work.started_at)),
        "Properties": json!({"instanceId": work.instance_id}).to_string(),
        "Outputs": object_text(&work_outputs(work)),
        "Loop": {},
        "LoopItem": work.instance_id,
        "LoopBatchNumber": work.batch + 1,
        "ChildExecutionId": work.execution_id,
        "ParentTaskExecutionId": "",
        "TemplateId": template_id(template_name),
        "ExtraData": {},
    })
}

/// The steps of one instance as task executions of its child execution.
pub fn step_task_executions(work: &InstanceWork) -> Vec<Value> {
    let order = [
        Step::Unprotect,
        Step::EnterStandby,
        Step::Drain,
        Step::Apply,
        Step::HealthCheck,
        Step::ExitStandby,
        Step::Reprotect,
    ];
    let current = order.iter().position(|s| *s == work.step).unwrap_or(order.len());
    order
        .iter()
        .enumerate()
        .filter(|(_, step)| work.was_protected || !matches!(step, Step::Unprotect | Step::Reprotect))
        .map(|(index, step)| {
            let status = if index < current || work.step == Step::Done {
                "Success"
            } else if index == current {
                match work.status {
                    InstanceStatus::Running => "Running",
                    InstanceStatus::Failed | InstanceStatus::Cancelled => "Failed",
                    InstanceStatus::Aborted => "Cancelled",
                    InstanceStatus::Skipped => "Skipped",
                    _ => "Queued",
                }
            } else {
                "Queued"
            };
            json!({
                "TaskExecutionId": format!("{}-{}", work.execution_id, step.as_str()),
                "ExecutionId": work.execution_id,
                "TaskName": step.as_str(),
                "TaskAction": format!("ACS::ESS::{}", step.as_str()),
                "Status": status,
                "StatusMessage": if index == current { work.error_message.clone().unwrap_or_default() } else { String::new() },
                "StartDate": "", "EndDate": "", "CreateDate": "", "UpdateDate": "",
                "Properties": json!({"instanceId": work.instance_id}).to_string(),
                "Outputs": "{}",
                "Loop": {},
                "LoopItem": "",
                "LoopBatchNumber": 0,
                "ChildExecutionId": "",
                "ParentTaskExecutionId": "",
                "TemplateId": "",
                "ExtraData": {},
            })
        })
        .collect()
}

/// The task executions of an image update execution for `ListTaskExecutions`: a firing's two
/// steps (`createImage`, `updateScalingConfiguration`), or a scheduled task's firings (its
/// `timerTrigger` task, once per child execution).
pub fn image_task_executions(execution: &ImageUpdateExecution, children: &[ImageUpdateExecution]) -> Vec<Value> {
    let task = |id: String, name: &str, action: &str, status: &str, message: &str, outputs: Value, child: &str| {
        json!({
            "TaskExecutionId": id,
            "ExecutionId": execution.id,
            "TaskName": name,
            "TaskAction": action,
            "Status": status,
            "StatusMessage": message,
            "StartDate": "", "EndDate": "", "CreateDate": "", "UpdateDate": "",
            "Properties": json!({"instanceId": execution.spec.instance_id}).to_string(),
            "Outputs": outputs.to_string(),
            "Loop": {},
            "LoopItem": "",
            "LoopBatchNumber": 0,
            "ChildExecutionId": child,
            "ParentTaskExecutionId": "",
            "TemplateId": "",
            "ExtraData": {},
        })
    };
    let Some(firing) = &execution.firing else {
        return children
            .iter()
            .map(|child| {
                task(
                    format!("{}-timerTrigger-{}", execution.id, child.id),
                    "timerTrigger",
                    "ACS::TimerTrigger",
                    child.status.as_str(),
                    &child.status_message,
                    child.outputs(),
                    child.id.as_str(),
                )
            })
            .collect();
    };
    let failed = execution.status == TaskStatus::Failed;
    let (create, update) = match (&firing.image_id, execution.status) {
        (None, TaskStatus::Running) => ("Running", "Queued"),
        (None, _) if failed => ("Failed", "Queued"),
        (Some(_), TaskStatus::Running) => ("Success", "Running"),
        (Some(_), _) if failed => ("Success", "Failed"),
        _ => ("Success", "Success"),
    };
    let image = firing.image_id.as_ref().map_or(json!({}), |id| json!({"imageId": id}));
    let message = |status: &str| if status == "Failed" { execution.status_message.as_str() } else { "" };
    vec![
        task(
            format!("{}-createImage", execution.id),
            "createImage",
            "ACS::ExecuteAPI",
            create,
            message(create),
            image,
            "",
        ),
        task(
            format!("{}-updateScalingConfiguration", execution.id),
            "updateScalingConfiguration",
            "ACS::ExecuteAPI",
            update,
            message(update),
            json!({}),
            "",
        ),
    ]
}

fn template_id(name: &str) -> String {
    // A stable id per template name (FNV-1a), in OOS's `t-…` form.
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    format!("t-{:014x}", hash & 0x00ff_ffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollscale_client::wire::{ExecutionStatus, InstanceStep, WaitingStatus};
    use rollscale_core::domain::{LifecycleState, Process};
    use rollscale_core::ids::{ExecutionId, InstanceId, ScalingConfigurationId, ScalingGroupId};
    use rollscale_core::image_task::{Firing, ImageTag, ImageUpdateSpec};
    use rollscale_core::params::{BatchPauseOption, CommandType, Kind, ScriptSpec};
    use rollscale_core::task::TaskEvent;

    const CREATED: Millis = 1_700_000_000_000;

    fn id(text: &str) -> ExecutionId {
        ExecutionId::parse(text).unwrap()
    }

    fn script_task() -> TaskState {
        let spec = RollingUpdateSpec {
            kind: Kind::ScriptExecution,
            invoke_type: InvokeType::Invoke,
            group_id: ScalingGroupId::parse("asg-1").unwrap(),
            configuration_id: None,
            change: Change::Script(ScriptSpec {
                command_type: CommandType::RunShellScript,
                script: "echo hi".into(),
                working_dir: None,
                timeout_s: 60,
            }),
            rollback_change: None,
            enter_process: vec![Process::ScaleIn],
            exit_process: vec![Process::ScaleIn],
            lifecycle_states: vec![LifecycleState::InService],
            batch_number: 2,
            batch_pause: BatchPauseOption::Automatic,
            max_errors: 0,
            source_execution_id: None,
            assume_role: "Role".into(),
        };
        TaskState::new(id("exec-task"), spec, vec![1, 2], Vec::new(), CREATED)
            .evolve(&TaskEvent::Begun)
            .evolve(&TaskEvent::BatchStarted(0))
            .evolve(&TaskEvent::Paused(WaitingStatus::FailurePaused))
    }

    /// What every execution shows alike, then its own keys.
    fn expected(template_name: &str, own: Value) -> Value {
        let mut value = json!({
            "TemplateName": template_name,
            "TemplateId": template_id(template_name),
            "TemplateVersion": "v1",
            "Mode": "Automatic",
            "LoopMode": "Automatic",
            "SafetyCheck": "Skip",
            "ExecutedBy": "rollscale",
            "Description": "",
            "Category": "Other",
            "ResourceGroupId": "",
            "Tags": {},
            "Targets": "",
        });
        if let (Value::Object(value), Value::Object(own)) = (&mut value, own) {
            value.extend(own);
        }
        value
    }

    /// The server's JSON of an execution reads back into the shared type with the same values,
    /// and writes the same JSON again: the JSON is pinned here key by key (as it was before
    /// the shared types), its `Outputs` byte by byte.
    fn round_trip(rendered: &Execution, expected: &Value) -> Execution {
        let written = serde_json::to_value(rendered).unwrap();
        assert_eq!(&written, expected);
        let read = Execution::from_json(&written);
        assert_eq!(&read, rendered);
        assert_eq!(serde_json::to_value(&read).unwrap(), written);
        read
    }

    #[test]
    fn a_task_is_written_as_before_and_reads_back_the_same() {
        let task = script_task();
        let counts = StatusCounts { queued: 1, success: 1, failed: 1, ..StatusCounts::default() };
        let name = Kind::ScriptExecution.template_name();
        let outputs = json!({
            "phase": "Batch", "currentBatch": 1, "batchCount": 2, "batchSizes": [1, 2],
            "cancelRequested": false, "restore": false,
        });
        for as_text in [true, false] {
            let parameters = spec_parameters(&task.spec);
            let own = json!({
                "ExecutionId": "exec-task",
                "RamRole": "Role",
                "ParentExecutionId": "",
                "IsParent": true,
                "StartDate": "2023-11-14T22:13:20Z",
                "EndDate": "",
                "CreateDate": "2023-11-14T22:13:20Z",
                "UpdateDate": "2023-11-14T22:13:20Z",
                "Status": "Waiting",
                "WaitingStatus": "FailurePaused",
                "StatusMessage": task.status_message,
                "StatusReason": "FailurePaused",
                "Outputs": outputs.to_string(),
                "Parameters": if as_text { Value::String(parameters.to_string()) } else { parameters },
                "Counters": {"Total": 3, "Success": 1, "Running": 0, "Failed": 1, "Cancelled": 0, "Waiting": 0, "Queued": 1},
                "CurrentTasks": [{"TaskAction": "ACS::ESS::RollingUpdateBatch", "TaskExecutionId": "", "TaskName": "batch1"}],
            });
            let read = round_trip(&task_execution(&task, &counts, as_text), &expected(name, own));
            assert_eq!(
                (&read.status, read.waiting_status),
                (&ExecutionStatus::Waiting, Some(WaitingStatus::FailurePaused))
            );
            assert_eq!(read.parameters.as_text, as_text);
            assert_eq!(read.param_str("invokeScript").as_deref(), Some("echo hi"));
            assert_eq!(read.batches(), Some((1, 2)));
            assert_eq!((read.counters.total, read.n_done()), (3, 2));
            assert_eq!(read.task_outputs().phase, TaskPhase::Batch);
        }
    }

    #[test]
    fn a_child_is_written_as_before_and_reads_back_the_same() {
        let mut work =
            InstanceWork::new(id("exec-child"), InstanceId::parse("i-1").unwrap(), 0, 1, false).start(CREATED + 1_000);
        work.step = Step::Apply;
        work.status = InstanceStatus::Failed;
        work.exit_code = Some(3);
        work.output = "boom\n".into();
        work.error_code = Some("ScriptFailed".into());
        work.error_message = Some("exit 3".into());
        work.in_standby = true;
        let name = Kind::ScriptExecution.template_name();
        let outputs = json!({
            "instanceId": "i-1", "step": "Apply", "attempt": 1, "exitCode": 3, "output": "boom\n",
            "truncated": false, "errorCode": "ScriptFailed", "error": "exit 3", "before": null,
            "inStandby": true, "applied": false, "skipped": false, "cancelled": false,
        });
        let parameters = json!({"instanceId": "i-1", "batch": 1, "position": 1});
        let own = json!({
            "ExecutionId": "exec-child",
            "RamRole": "",
            "ParentExecutionId": "exec-task",
            "IsParent": false,
            "StartDate": "2023-11-14T22:13:21Z",
            "EndDate": "",
            "CreateDate": "2023-11-14T22:13:21Z",
            "UpdateDate": "2023-11-14T22:13:21Z",
            "Status": "Failed",
            "WaitingStatus": "",
            "StatusMessage": "exit 3",
            "StatusReason": "ScriptFailed",
            "Outputs": outputs.to_string(),
            "Parameters": parameters,
            "Counters": {"Total": 1, "Success": 0, "Running": 0, "Failed": 0, "Cancelled": 0, "Waiting": 0, "Queued": 0},
            "CurrentTasks": [],
        });
        let read = round_trip(&work_execution("exec-task", name, &work, false), &expected(name, own));
        assert_eq!((&read.status, read.waiting_status), (&ExecutionStatus::Failed, None));
        let typed = read.instance_outputs();
        assert_eq!((typed.step, typed.attempt, typed.exit_code), (InstanceStep::Apply, Some(1), Some(3)));
        assert_eq!(read.instance_parameters().batch, Some(1));
        // ListTaskExecutions shows the same outputs as JSON text.
        assert_eq!(instance_task_execution("exec-task", name, &work)["Outputs"], json!(outputs.to_string()));
    }

    #[test]
    fn an_image_update_firing_is_written_as_before_and_reads_back_the_same() {
        let spec = ImageUpdateSpec {
            instance_id: InstanceId::parse("i-1").unwrap(),
            target_image_name: "web".into(),
            configuration_ids: vec![ScalingConfigurationId::parse("asc-1").unwrap()],
            tags: vec![ImageTag { key: "app".into(), value: "web".into() }],
            assume_role: "Role".into(),
            trigger: None,
            group_ids: Vec::new(),
        };
        let firing = ImageUpdateExecution {
            id: id("exec-firing"),
            parent_id: Some(id("exec-parent")),
            spec,
            status: TaskStatus::Success,
            status_message: String::new(),
            schedule: None,
            firing: Some(Firing {
                fired_at: CREATED,
                image_name: "web_on_exec-firing".into(),
                image_id: Some("m-1".into()),
                updated: Vec::new(),
            }),
            created_at: CREATED,
            updated_at: CREATED + 2_000,
            ended_at: Some(CREATED + 2_000),
        };
        let own = json!({
            "ExecutionId": "exec-firing",
            "RamRole": "Role",
            "ParentExecutionId": "exec-parent",
            "IsParent": false,
            "StartDate": "2023-11-14T22:13:20Z",
            "EndDate": "2023-11-14T22:13:22Z",
            "CreateDate": "2023-11-14T22:13:20Z",
            "UpdateDate": "2023-11-14T22:13:22Z",
            "Status": "Success",
            "WaitingStatus": "",
            "StatusMessage": "",
            "StatusReason": "",
            "Outputs": "{\"imageId\":\"m-1\"}",
            "Parameters": firing.spec.parameters().to_string(),
            "Counters": {"Total": 0, "Success": 0, "Running": 0, "Failed": 0, "Cancelled": 0, "Waiting": 0, "Queued": 0},
            "CurrentTasks": [],
            "Tags": {"app": "web"},
        });
        let read = round_trip(&image_execution(&firing, true), &expected(IMAGE_UPDATE_TEMPLATE, own));
        assert_eq!(read.image_outputs().image_id.as_deref(), Some("m-1"));
        assert_eq!(read.outputs, wire::to_object(&firing.outputs()));
    }
}
