//! Domain values in the JSON shapes the SDKs parse (docs/wire.md, "A response"). Field types follow the tea
//! models exactly: a nested object or list of the wrong type makes those SDKs drop the body.

use rollscale_core::domain::Millis;
use rollscale_core::image_task::{ImageUpdateExecution, TEMPLATE_NAME as IMAGE_UPDATE_TEMPLATE};
use rollscale_core::params::{Change, InvokeType, RollingUpdateSpec};
use rollscale_core::task::{InstanceStatus, InstanceWork, Phase, StatusCounts, Step, TaskState, TaskStatus};
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
    Value::Object(params)
}

/// OOS's counters, by the statuses clients see (`InstanceStatus::wire_status`).
fn counters(counts: &StatusCounts) -> Value {
    json!({
        "Total": counts.total(),
        "Success": counts.success + counts.skipped,
        "Running": counts.running,
        "Failed": counts.failed + counts.cancelled,
        "Cancelled": counts.aborted,
        "Waiting": 0,
        "Queued": counts.queued,
    })
}

fn task_outputs(task: &TaskState) -> Value {
    let (phase, batch) = match &task.phase {
        Phase::Begin => ("Begin", 0),
        Phase::Batch { index, .. } => ("Batch", (index + 1).min(task.n_batches())),
        Phase::Finish(_) => ("Finish", task.n_batches()),
        Phase::Done => ("Done", task.n_batches()),
    };
    json!({
        "phase": phase,
        "currentBatch": batch,
        "batchCount": task.n_batches(),
        "batchSizes": task.batch_sizes,
        "cancelRequested": task.cancel.is_some(),
        "restore": task.cancel.map(|c| c.restore).unwrap_or(false),
    })
}

/// A task as an OOS execution. `parameters_as_text` for StartExecution (a JSON string there),
/// an object for ListExecutions.
pub fn task_execution(task: &TaskState, counts: &StatusCounts, parameters_as_text: bool) -> Value {
    let parameters = spec_parameters(&task.spec);
    let running = matches!(task.status, TaskStatus::Running | TaskStatus::Waiting);
    let current_tasks: Vec<Value> = match (&task.phase, running) {
        (Phase::Batch { index, .. }, true) => vec![json!({
            "TaskAction": "ACS::ESS::RollingUpdateBatch",
            "TaskExecutionId": "",
            "TaskName": format!("batch{}", index + 1),
        })],
        _ => Vec::new(),
    };
    json!({
        "ExecutionId": task.id,
        "TemplateName": task.spec.kind.template_name(),
        "TemplateId": template_id(task.spec.kind.template_name()),
        "TemplateVersion": "v1",
        "Mode": "Automatic",
        "LoopMode": "Automatic",
        "SafetyCheck": "Skip",
        "ExecutedBy": "rollscale",
        "RamRole": task.spec.assume_role,
        "Description": "",
        "Category": "Other",
        "ParentExecutionId": "",
        "IsParent": true,
        "ResourceGroupId": "",
        "StartDate": date(Some(task.created_at)),
        "EndDate": date(task.ended_at),
        "CreateDate": date(Some(task.created_at)),
        "UpdateDate": date(Some(task.ended_at.unwrap_or(task.created_at))),
        "Status": task.status.as_str(),
        "WaitingStatus": task.waiting.map(|w| w.as_str()).unwrap_or(""),
        "StatusMessage": task.status_message,
        "StatusReason": task.waiting.map(|w| w.as_str()).unwrap_or(""),
        "Outputs": task_outputs(task).to_string(),
        "Parameters": if parameters_as_text { Value::String(parameters.to_string()) } else { parameters },
        "Counters": counters(counts),
        "CurrentTasks": current_tasks,
        "Tags": {},
        "Targets": "",
    })
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

pub fn work_outputs(work: &InstanceWork) -> Value {
    json!({
        "instanceId": work.instance_id,
        "step": work.step.as_str(),
        "attempt": work.attempt,
        "exitCode": work.exit_code,
        "output": work.output,
        "truncated": work.output_truncated,
        "errorCode": work.error_code,
        "error": work.error_message,
        "before": work.before,
        "inStandby": work.in_standby,
        "applied": work.applied,
        "skipped": work.status == InstanceStatus::Skipped,
        "cancelled": work.status == InstanceStatus::Cancelled,
    })
}

/// One instance's child execution.
pub fn work_execution(parent_id: &str, template_name: &str, work: &InstanceWork, parameters_as_text: bool) -> Value {
    let parameters = json!({
        "instanceId": work.instance_id,
        "batch": work.batch + 1,
        "position": work.position,
    });
    json!({
        "ExecutionId": work.execution_id,
        "TemplateName": template_name,
        "TemplateId": template_id(template_name),
        "TemplateVersion": "v1",
        "Mode": "Automatic",
        "LoopMode": "Automatic",
        "SafetyCheck": "Skip",
        "ExecutedBy": "rollscale",
        "RamRole": "",
        "Description": "",
        "Category": "Other",
        "ParentExecutionId": parent_id,
        "IsParent": false,
        "ResourceGroupId": "",
        "StartDate": date(work.started_at),
        "EndDate": date(work.ended_at),
        "CreateDate": date(work.started_at),
        "UpdateDate": date(work.ended_at.or(work.started_at)),
        "Status": work.status.wire_status(),
        "WaitingStatus": "",
        "StatusMessage": work_status_message(work),
        "StatusReason": work.error_code.clone().unwrap_or_default(),
        "Outputs": work_outputs(work).to_string(),
        "Parameters": if parameters_as_text { Value::String(parameters.to_string()) } else { parameters },
        "Counters": {"Total": 1, "Success": 0, "Running": 0, "Failed": 0, "Cancelled": 0, "Waiting": 0, "Queued": 0},
        "CurrentTasks": [],
        "Tags": {},
        "Targets": "",
    })
}

/// An image update execution: a scheduled task (a parent, Waiting between firings) or a
/// firing (a task that runs now, or a parent's child), as OOS shows them. `Outputs` carries a
/// firing's `imageId`; `Tags` the task's tags (the catalog's images have none).
pub fn image_execution(execution: &ImageUpdateExecution, parameters_as_text: bool) -> Value {
    let parameters = execution.spec.parameters();
    let tags: Map<String, Value> =
        execution.spec.tags.iter().map(|tag| (tag.key.clone(), Value::String(tag.value.clone()))).collect();
    let firings = execution.schedule.as_ref().map_or(0, |s| s.firings);
    let current_tasks: Vec<Value> = match (&execution.firing, execution.status) {
        (Some(firing), TaskStatus::Running) => vec![json!({
            "TaskAction": "ACS::ExecuteAPI",
            "TaskExecutionId": "",
            "TaskName": if firing.image_id.is_none() { "createImage" } else { "updateScalingConfiguration" },
        })],
        (None, _) => match execution.schedule.as_ref().and_then(|s| s.current_child.as_ref()) {
            Some(child) => {
                vec![json!({"TaskAction": "ACS::TimerTrigger", "TaskExecutionId": child, "TaskName": "timerTrigger"})]
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    json!({
        "ExecutionId": execution.id,
        "TemplateName": IMAGE_UPDATE_TEMPLATE,
        "TemplateId": template_id(IMAGE_UPDATE_TEMPLATE),
        "TemplateVersion": "v1",
        "Mode": "Automatic",
        "LoopMode": "Automatic",
        "SafetyCheck": "Skip",
        "ExecutedBy": "rollscale",
        "RamRole": execution.spec.assume_role,
        "Description": "",
        "Category": "Other",
        "ParentExecutionId": execution.parent_id.as_ref().map(|id| id.as_str()).unwrap_or(""),
        "IsParent": execution.schedule.is_some(),
        "ResourceGroupId": "",
        "StartDate": date(Some(execution.created_at)),
        "EndDate": date(execution.ended_at),
        "CreateDate": date(Some(execution.created_at)),
        "UpdateDate": date(Some(execution.updated_at)),
        "Status": execution.status.as_str(),
        "WaitingStatus": "",
        "StatusMessage": execution.status_message,
        "StatusReason": match execution.schedule.as_ref().and_then(|s| s.next_fire_at) {
            Some(next) if !execution.status.is_final() => format!("next firing at {}", date(Some(next))),
            _ => String::new(),
        },
        "Outputs": execution.outputs().to_string(),
        "Parameters": if parameters_as_text { Value::String(parameters.to_string()) } else { parameters },
        "Counters": {"Total": firings, "Success": 0, "Running": 0, "Failed": 0, "Cancelled": 0, "Waiting": 0, "Queued": 0},
        "CurrentTasks": current_tasks,
        "Tags": tags,
        "Targets": "",
    })
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
        "Outputs": work_outputs(work).to_string(),
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
