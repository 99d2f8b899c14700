//! OOS 2019-06-01: the executions of the rolling-update templates.

use super::idempotency::{self, Begin};
use super::request::Params;
use super::{list, page, render, required};
use crate::error::ApiError;
use rollscale_engine::service::Notify;
use rollscale_engine::Service;
use rollscale_store::{Execution, ExecutionFilter};
use serde_json::{json, Value};

pub const VERSION: &str = "2019-06-01";

pub async fn dispatch(service: &Service, caller: &str, action: &str, params: &Params) -> Result<Value, ApiError> {
    match action {
        "StartExecution" => start_execution(service, caller, params).await,
        "ListExecutions" => list_executions(service, params).await,
        "ListTaskExecutions" => list_task_executions(service, params).await,
        "NotifyExecution" => notify_execution(service, params).await,
        "CancelExecution" => cancel_execution(service, params).await,
        other => Err(ApiError::new(404, "InvalidAction.NotFound", format!("the OOS action {other} is not served"))),
    }
}

async fn start_execution(service: &Service, caller: &str, params: &Params) -> Result<Value, ApiError> {
    let template = required(params, "TemplateName")?;
    if let Some(mode) = params.get_nonempty("Mode") {
        if mode != "Automatic" {
            return Err(ApiError::new(
                400,
                "InvalidParameter",
                format!("Mode \"{mode}\" is not supported; rolling updates run Automatic"),
            ));
        }
    }
    let claim = match idempotency::begin(service, caller, "oos/StartExecution", params).await? {
        Begin::Replay(first) => {
            // The token's execution, as it stands now.
            let id = first["ExecutionId"].as_str().unwrap_or_default();
            let (task, counts) = service.task_summary(id).await?;
            return Ok(json!({ "Execution": render::task_execution(&task, &counts, true) }));
        }
        Begin::Run(claim) => claim,
    };
    let started =
        service.start_execution(template, params.get("Parameters").unwrap_or("")).await.map_err(ApiError::from);
    let task = idempotency::finish(service, claim, started, |task| json!({ "ExecutionId": task.id })).await?;
    let (task, counts) = service.task_summary(task.id.as_str()).await?;
    Ok(json!({ "Execution": render::task_execution(&task, &counts, true) }))
}

async fn list_executions(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let (offset, limit) = page(params, "MaxResults", 50, 100)?;
    let filter = ExecutionFilter {
        execution_id: params.get_nonempty("ExecutionId").map(str::to_string),
        parent_id: params.get_nonempty("ParentExecutionId").map(str::to_string),
        template_name: params.get_nonempty("TemplateName").map(str::to_string),
        status: params.get_nonempty("Status").map(str::to_string),
        group_id: None,
        include_children: params
            .bool("IncludeChildExecution")
            .map_err(|e| ApiError::new(400, e.code(), e.to_string()))?
            .unwrap_or(false),
    };
    let (executions, total) = service.list_executions(&filter, offset, limit).await?;
    let mut items = Vec::with_capacity(executions.len());
    for execution in &executions {
        items.push(match execution {
            Execution::Task(task) => {
                let (_, counts) = service.task_summary(task.value.id.as_str()).await?;
                render::task_execution(&task.value, &counts, false)
            }
            Execution::Instance { parent_id, template_name, work, .. } => {
                render::work_execution(parent_id.as_str(), template_name, &work.value, false)
            }
        });
    }
    let next = offset + executions.len() as i64;
    Ok(json!({
        "Executions": items,
        "NextToken": if next < total { next.to_string() } else { String::new() },
        "MaxResults": limit,
        "TotalCount": total,
    }))
}

async fn list_task_executions(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let execution_id = required(params, "ExecutionId")?;
    let (offset, limit) = page(params, "MaxResults", 50, 100)?;
    let status = params.get_nonempty("Status");
    let task_execution_id = params.get_nonempty("TaskExecutionId");
    let mut items: Vec<Value> = match service.task(execution_id).await {
        Ok((task, works)) => works
            .iter()
            .map(|work| render::instance_task_execution(task.id.as_str(), task.spec.kind.template_name(), work))
            .collect(),
        Err(rollscale_engine::ServiceError::NotFound { .. }) => {
            // A child execution: its steps.
            let filter = ExecutionFilter { execution_id: Some(execution_id.to_string()), ..Default::default() };
            let (found, _) = service.list_executions(&filter, 0, 1).await?;
            match found.first() {
                Some(Execution::Instance { work, .. }) => render::step_task_executions(&work.value),
                _ => {
                    return Err(ApiError::new(
                        404,
                        "EntityNotExists.Execution",
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
    let notify = Notify {
        execution_id: required(params, "ExecutionId")?.to_string(),
        notify_type: required(params, "NotifyType")?.to_string(),
        task_execution_id: params.get_nonempty("TaskExecutionId").map(str::to_string).or_else(|| {
            // `TaskExecutionIds` is a JSON list; one instance per call here.
            list(params, "TaskExecutionIds").ok().and_then(|ids| ids.into_iter().next())
        }),
        loop_item: params.get_nonempty("LoopItem").map(str::to_string),
    };
    service.notify(&notify).await?;
    Ok(json!({}))
}

async fn cancel_execution(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let id = required(params, "ExecutionId")?;
    let restore = params.bool("Restore").map_err(|e| ApiError::new(400, e.code(), e.to_string()))?.unwrap_or(false);
    service.cancel_task(id, restore).await?;
    Ok(json!({}))
}
