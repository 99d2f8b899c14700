//! OOS 2019-06-01: the executions of the rolling-update templates.

use super::request::Params;
use super::{list, page, render, reply, required};
use crate::error::ApiError;
use crate::{starts, values};
use rollscale_client::wire::{ListExecutionsReply, StartExecutionReply};
use rollscale_core::ids::{ExecutionId, IdFilter};
use rollscale_core::task::InstanceDecision;
use rollscale_core::Code;
use rollscale_engine::service::Notification;
use rollscale_engine::Service;
use rollscale_store::{Execution, ExecutionFilter};
use serde_json::{json, Value};

pub const VERSION: &str = "2019-06-01";

/// Statuses `ListExecutions` filters on: an execution's (Running, Waiting, Success, Failed,
/// Cancelled) or a child execution's (Queued, Running, Success, Failed, Cancelled).
const EXECUTION_STATUSES: &[&str] = &["Queued", "Running", "Waiting", "Success", "Failed", "Cancelled"];
/// Statuses of the task executions `ListTaskExecutions` lists.
const TASK_EXECUTION_STATUSES: &[&str] = &["Queued", "Running", "Success", "Failed", "Cancelled", "Skipped"];

/// A `Status` filter: one of `allowed`, else `InvalidParameter` naming them.
fn status_filter<'a>(params: &'a Params, allowed: &[&str]) -> Result<Option<&'a str>, ApiError> {
    match params.get_nonempty("Status") {
        Some(status) if !allowed.contains(&status) => Err(ApiError::new(
            Code::InvalidParameter,
            format!("Status \"{}\" is not one of {}", values::shown(status), allowed.join(", ")),
        )),
        other => Ok(other),
    }
}

pub async fn dispatch(service: &Service, action: &str, params: &Params) -> Result<Value, ApiError> {
    match action {
        "StartExecution" => start_execution(service, params).await,
        "ListExecutions" => list_executions(service, params).await,
        "ListTaskExecutions" => list_task_executions(service, params).await,
        "NotifyExecution" => notify_execution(service, params).await,
        "CancelExecution" => cancel_execution(service, params).await,
        other => Err(ApiError::new(Code::InvalidActionNotFound, format!("the OOS action {other} is not served"))),
    }
}

async fn start_execution(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let template = required(params, "TemplateName")?;
    if let Some(mode) = params.get_nonempty("Mode") {
        if mode != "Automatic" {
            return Err(ApiError::new(
                Code::InvalidParameter,
                format!("Mode \"{mode}\" is not supported; rolling updates run Automatic"),
            ));
        }
    }
    if template == rollscale_core::image_task::TEMPLATE_NAME {
        let spec = starts::image_update_text(params.get("Parameters").unwrap_or(""))?;
        let execution = service.start_image_update(spec).await?;
        let execution = render::image_execution(&execution, true);
        return reply(&StartExecutionReply { execution, request_id: String::new() });
    }
    let request = starts::rolling_update_text(template, params.get("Parameters").unwrap_or(""))?;
    let task = service.start_rolling_update(request).await?;
    execution_answer(service, &task.id).await
}

/// StartExecution's answer for the execution `id`, as it stands now.
pub async fn execution_answer(service: &Service, id: &ExecutionId) -> Result<Value, ApiError> {
    let (task, counts) = service.task_summary(id).await?;
    reply(&StartExecutionReply { execution: render::task_execution(&task, &counts, true), request_id: String::new() })
}

async fn list_executions(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let (offset, limit) = page(params, "MaxResults", 50, 100)?;
    let filter = ExecutionFilter {
        execution_id: values::execution_filter(params.get_nonempty("ExecutionId")),
        parent_id: values::execution_filter(params.get_nonempty("ParentExecutionId")),
        template_name: params.get_nonempty("TemplateName").map(str::to_string),
        status: status_filter(params, EXECUTION_STATUSES)?.map(str::to_string),
        group_id: Default::default(),
        include_children: params.bool("IncludeChildExecution").map_err(ApiError::from)?.unwrap_or(false),
    };
    let (executions, total) = service.list_executions(&filter, offset, limit).await?;
    let mut items = Vec::with_capacity(executions.len());
    for execution in &executions {
        items.push(match execution {
            Execution::Task(task) => {
                let (_, counts) = service.task_summary(&task.value.id).await?;
                render::task_execution(&task.value, &counts, false)
            }
            Execution::Instance { parent_id, template_name, work, .. } => {
                render::work_execution(parent_id.as_str(), template_name, &work.value, false)
            }
            Execution::ImageUpdate(execution) => render::image_execution(&execution.value, false),
        });
    }
    let next = offset + executions.len() as i64;
    reply(&ListExecutionsReply {
        executions: items,
        next_token: if next < total { next.to_string() } else { String::new() },
        max_results: u64::try_from(limit).unwrap_or_default(),
        total_count: u64::try_from(total).unwrap_or_default(),
        request_id: String::new(),
    })
}

async fn list_task_executions(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let execution_text = required(params, "ExecutionId")?;
    let (offset, limit) = page(params, "MaxResults", 50, 100)?;
    let status = status_filter(params, TASK_EXECUTION_STATUSES)?;
    let task_execution_id = params.get_nonempty("TaskExecutionId");
    let execution_id = values::execution_id(execution_text)?;
    let mut items: Vec<Value> = match service.task(&execution_id).await {
        Ok((task, works)) => works
            .iter()
            .map(|work| render::instance_task_execution(task.id.as_str(), task.spec.kind.template_name(), work))
            .collect(),
        Err(error) if error.is_not_found() => {
            // A child execution: its steps.
            let filter = ExecutionFilter { execution_id: IdFilter::Only(execution_id.clone()), ..Default::default() };
            let (found, _) = service.list_executions(&filter, 0, 1).await?;
            match found.first() {
                Some(Execution::Instance { work, .. }) => render::step_task_executions(&work.value),
                Some(Execution::ImageUpdate(execution)) => {
                    let (execution, children) = service.image_update(&execution.value.id).await?;
                    render::image_task_executions(&execution, &children)
                }
                _ => {
                    return Err(ApiError::new(
                        Code::EntityNotExistsExecution,
                        format!("the execution {execution_id} does not exist"),
                    ))
                }
            }
        }
        Err(error) => return Err(error.into()),
    };
    items.retain(|item| {
        status.map(|s| item["Status"] == s).unwrap_or(true)
            && task_execution_id.map(|id| item["TaskExecutionId"] == id).unwrap_or(true)
    });
    let total = items.len() as i64;
    let items: Vec<Value> = items.into_iter().skip(offset as usize).take(limit as usize).collect();
    let next = offset + items.len() as i64;
    Ok(json!({
        "TaskExecutions": items,
        "NextToken": if next < total { next.to_string() } else { String::new() },
        "MaxResults": limit,
    }))
}

async fn notify_execution(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let execution_text = required(params, "ExecutionId")?;
    let notify_type = required(params, "NotifyType")?;
    // The instance a decision is about: its child execution (`TaskExecutionId`), or its id
    // (`LoopItem`), read once the task's id is.
    let decide = |decision| -> Result<(InstanceDecision, String), ApiError> {
        let instance = task_execution_id(params)?
            .or_else(|| params.get_nonempty("LoopItem").map(str::to_string))
            .ok_or_else(|| {
                ApiError::new(
                    Code::MissingParameter,
                    format!(
                        "NotifyType {notify_type} needs TaskExecutionId (the instance's child execution) or \
                             LoopItem (its instance id)"
                    ),
                )
            })?;
        Ok((decision, instance))
    };
    let decision = match notify_type {
        "Approve" | "Reject" => None,
        "RetryTask" => Some(decide(InstanceDecision::Retry)?),
        "SkipTask" => Some(decide(InstanceDecision::Skip)?),
        "CancelTask" => Some(decide(InstanceDecision::Cancel)?),
        other => {
            return Err(ApiError::new(
                Code::InvalidParameter,
                format!(
                    "NotifyType \"{}\" is not supported; use Approve, Reject, RetryTask, SkipTask or CancelTask",
                    values::shown(other)
                ),
            ))
        }
    };
    let execution_id = values::execution_id(execution_text)?;
    let notification = match decision {
        None if notify_type == "Approve" => Notification::Approve,
        None => Notification::Reject,
        Some((decision, instance)) => {
            Notification::Decide { instance: values::task_instance(&instance, &execution_id)?, decision }
        }
    };
    service.notify(&execution_id, notification).await?;
    Ok(json!({}))
}

/// The task execution a decision is about: `TaskExecutionId`, or the one id of
/// `TaskExecutionIds` (a JSON list, or `TaskExecutionIds.N`). A decision is applied to one
/// instance at a time, so a longer list is refused rather than cut short.
fn task_execution_id(params: &Params) -> Result<Option<String>, ApiError> {
    let single = params.get_nonempty("TaskExecutionId").map(str::to_string);
    let ids = list(params, "TaskExecutionIds")?;
    match (single, ids.as_slice()) {
        (single, []) => Ok(single),
        (None, [id]) => Ok(Some(id.clone())),
        (Some(single), [id]) if *id == single => Ok(Some(single)),
        (Some(_), [_]) => Err(ApiError::new(
            Code::InvalidParameter,
            "TaskExecutionId and TaskExecutionIds name different task executions; send one of them",
        )),
        (_, many) => Err(ApiError::new(
            Code::InvalidParameter,
            format!(
                "TaskExecutionIds names {} task executions; a decision is applied to one at a time: send one id \
                 per NotifyExecution",
                many.len()
            ),
        )),
    }
}

async fn cancel_execution(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let id = required(params, "ExecutionId")?;
    let restore = params.bool("Restore").map_err(ApiError::from)?.unwrap_or(false);
    let id = values::execution_id(id)?;
    if service.is_image_update(&id).await? {
        service.cancel_image_update(&id).await?;
        return Ok(json!({}));
    }
    service.cancel_task(&id, restore).await?;
    Ok(json!({}))
}
