//! `rollscale rolling-update …` (alias `ru`): the daily work of rolling updates — start, list,
//! show, wait, continue, retry/skip/cancel an instance, cancel, roll back.
//!
//! Every command is a plain OOS call through [`Client::call`] (`StartExecution`,
//! `ListExecutions`, `NotifyExecution`, `CancelExecution`), so it works against any server that
//! speaks the API. Building the template `Parameters` and rendering tables are pure functions,
//! tested without a server.
//!
//! The module is split by concern: `args` (the command line and the `Parameters` it makes),
//! `render` (what is printed), `wait` (following a task); this file runs the commands.

mod args;
mod render;
mod wait;

pub use args::*;
pub use render::*;
use wait::wait_for;

use crate::EXIT_OK;
use rollscale_client::rpc::{ApiError, Client, OOS_VERSION};
use rollscale_client::wire::{Execution, ExecutionStatus, Kind, ListExecutionsReply, StartExecutionReply};
use serde_json::{json, Value};
use std::time::Duration;

/// After an instance decision, how long a task still showing Waiting is taken to be moving on.
const DECISION_SETTLE: Duration = Duration::from_secs(3);
/// Page size of `ListExecutions`.
const PAGE_SIZE: u32 = 100;

fn connect() -> anyhow::Result<Client> {
    crate::profile::client(&crate::profile::load()?)
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The execution `id` as ListExecutions returns it (its JSON as the server sent it).
async fn fetch_execution(client: &Client, id: &str) -> Result<Value, ApiError> {
    let reply = client.call(OOS_VERSION, "ListExecutions", vec![("ExecutionId".into(), id.into())]).await?;
    let reply = ListExecutionsReply::<Value>::from_json(&reply);
    let request_id = reply.request_id;
    reply.executions.into_iter().find(|item| Execution::from_json(item).execution_id == id).ok_or_else(|| ApiError {
        http_status: None,
        code: rollscale_client::Code::EntityNotExistsExecution.as_str().into(),
        message: format!("the execution {id} does not exist"),
        request_id,
    })
}

/// Every page of a ListExecutions query, up to `limit` items that pass `keep`.
async fn list_all(
    client: &Client,
    params: Vec<(String, String)>,
    limit: usize,
    keep: impl Fn(&Value) -> bool,
) -> Result<Vec<Value>, ApiError> {
    let mut items = Vec::new();
    let mut token = String::new();
    let mut seen_tokens = std::collections::HashSet::new();
    loop {
        let mut page_params = params.clone();
        page_params.push(("MaxResults".into(), PAGE_SIZE.to_string()));
        if !token.is_empty() {
            page_params.push(("NextToken".into(), token.clone()));
        }
        let reply = client.call(OOS_VERSION, "ListExecutions", page_params).await?;
        let page = ListExecutionsReply::<Value>::from_json(&reply);
        let n_page = page.executions.len();
        for item in page.executions {
            if keep(&item) {
                items.push(item);
                if items.len() >= limit {
                    return Ok(items);
                }
            }
        }
        token = page.next_token;
        // Stop on the last page, and on a server that repeats a token (no endless loop).
        if token.is_empty() || n_page == 0 || !seen_tokens.insert(token.clone()) {
            return Ok(items);
        }
    }
}

async fn start_execution(client: &Client, template: &str, parameters: &Value) -> anyhow::Result<Value> {
    let params = vec![
        ("TemplateName".to_string(), template.to_string()),
        ("Mode".to_string(), "Automatic".to_string()),
        ("Parameters".to_string(), parameters.to_string()),
    ];
    Ok(client.call(OOS_VERSION, "StartExecution", params).await?)
}

fn started_id(reply: &Value) -> anyhow::Result<String> {
    let id = StartExecutionReply::from_json(reply).execution.execution_id;
    if id.is_empty() {
        anyhow::bail!("the server's StartExecution reply has no Execution.ExecutionId: {reply}");
    }
    Ok(id)
}

/// Prints a started task's id (or the reply, as JSON) and waits when asked.
async fn report_started(
    client: &Client,
    reply: &Value,
    what: &str,
    wait: bool,
    output: OutputFormat,
) -> anyhow::Result<u8> {
    let id = started_id(reply)?;
    if wait {
        if output == OutputFormat::Table {
            eprintln!("Started {what} {id}");
        }
        return wait_for(client, &id, output, Duration::ZERO).await;
    }
    match output {
        OutputFormat::Json => print_json(reply)?,
        OutputFormat::Table => {
            outln!("{id}");
            eprintln!("Started {what} {id}. Follow it with: rollscale ru wait {id}");
        }
    }
    Ok(EXIT_OK)
}

/// Runs `rollscale rolling-update …`; returns the exit code.
pub async fn run(args: RollingUpdateArgs) -> anyhow::Result<u8> {
    let output = args.output;
    match args.command {
        RollingCommand::Start(start) => {
            let change = start.change()?;
            let (template, parameters) = start_parameters(&start.group, &change, &start.batching, &start.params);
            let client = connect()?;
            let reply = start_execution(&client, template, &parameters).await?;
            let what = format!("{} rolling update of {}", kind_short(template), start.group);
            report_started(&client, &reply, &what, start.wait, output).await
        }
        RollingCommand::Rollback(rollback) => {
            let overrides = rollback.overrides()?;
            let client = connect()?;
            let source = Execution::from_json(&fetch_execution(&client, &rollback.execution).await?);
            let (template, parameters) =
                rollback_parameters(&source, &overrides, &rollback.batching, &rollback.params)?;
            let reply = start_execution(&client, template, &parameters).await?;
            let what = format!("the rollback of {}", source.execution_id);
            report_started(&client, &reply, &what, rollback.wait, output).await
        }
        RollingCommand::List(list) => {
            let client = connect()?;
            let mut params = Vec::new();
            if let Some(status) = &list.status {
                params.push(("Status".to_string(), status.clone()));
            }
            let group = list.group.clone();
            let items = list_all(&client, params, list.limit.max(1), |item| {
                let view = Execution::from_json(item);
                view.parent_execution_id.is_empty()
                    && Kind::from_template_name(&view.template_name).is_some()
                    && group.as_deref().is_none_or(|g| view.param_str("scalingGroupId").as_deref() == Some(g))
            })
            .await?;
            match output {
                OutputFormat::Json => print_json(&json!({ "Executions": items }))?,
                OutputFormat::Table if items.is_empty() => outln!("No rolling updates."),
                OutputFormat::Table => {
                    let views: Vec<Execution> = items.iter().map(Execution::from_json).collect();
                    out!("{}", render_task_table(&views));
                }
            }
            Ok(EXIT_OK)
        }
        RollingCommand::Show(show) => {
            let client = connect()?;
            let task_json = fetch_execution(&client, &show.execution).await?;
            let params = vec![("ParentExecutionId".to_string(), show.execution.clone())];
            let mut children = list_all(&client, params, usize::MAX, |item| {
                Execution::from_json(item).parent_execution_id == show.execution
            })
            .await?;
            sort_children(&mut children);
            match output {
                OutputFormat::Json => print_json(&json!({ "Execution": task_json, "Instances": children }))?,
                OutputFormat::Table => {
                    let task = Execution::from_json(&task_json);
                    let views: Vec<Execution> = children.iter().map(Execution::from_json).collect();
                    out!("{}", render_task_details(&task));
                    outln!();
                    if views.is_empty() {
                        outln!("No instances.");
                    } else {
                        out!("{}", render_instance_table(&views));
                    }
                    let ran = |v: &&Execution| !v.outputs.is_empty() && v.status != ExecutionStatus::Queued;
                    let with_output: Vec<Execution> = views.iter().filter(ran).cloned().collect();
                    if Kind::from_template_name(&task.template_name) == Some(Kind::ScriptExecution)
                        && !with_output.is_empty()
                    {
                        outln!();
                        out!("{}", render_script_outputs(&with_output));
                    }
                    if let Some(hint) = next_steps(&task) {
                        outln!();
                        outln!("{hint}");
                    }
                }
            }
            Ok(EXIT_OK)
        }
        RollingCommand::Wait(wait) => {
            let client = connect()?;
            wait_for(&client, &wait.execution, output, Duration::ZERO).await
        }
        RollingCommand::Continue(args) => {
            let client = connect()?;
            let params = vec![
                ("ExecutionId".to_string(), args.execution.clone()),
                ("NotifyType".to_string(), "Approve".to_string()),
            ];
            let reply = client.call(OOS_VERSION, "NotifyExecution", params).await?;
            after_action(&client, &reply, &args.execution, &format!("Continued {}", args.execution), args.wait, output)
                .await
        }
        RollingCommand::Retry(args) => instance_decision(args, "RetryTask", "Retrying", output).await,
        RollingCommand::Skip(args) => instance_decision(args, "SkipTask", "Skipped", output).await,
        RollingCommand::CancelInstance(args) => instance_decision(args, "CancelTask", "Cancelled", output).await,
        RollingCommand::Cancel(args) => {
            let client = connect()?;
            let mut params = vec![("ExecutionId".to_string(), args.execution.clone())];
            if args.restore {
                params.push(("Restore".to_string(), "true".to_string()));
            }
            let reply = client.call(OOS_VERSION, "CancelExecution", params).await?;
            let done = if args.restore {
                format!(
                    "Cancelling {}: instances in flight finish, then the batch leaves Standby and the processes resume",
                    args.execution
                )
            } else {
                format!(
                    "Cancelling {}: instances in flight finish; the current batch stays in Standby and the processes stay suspended",
                    args.execution
                )
            };
            after_action(&client, &reply, &args.execution, &done, args.wait, output).await
        }
    }
}

/// Orders child executions by batch, then position, as the task runs them.
fn sort_children(children: &mut [Value]) {
    let key = |item: &Value| {
        let params = Execution::from_json(item).instance_parameters();
        (params.batch.unwrap_or(u64::MAX), params.position.unwrap_or(u64::MAX))
    };
    children.sort_by_key(key);
}

async fn instance_decision(
    args: InstanceArgs,
    notify_type: &str,
    verb: &str,
    output: OutputFormat,
) -> anyhow::Result<u8> {
    let client = connect()?;
    let mut params =
        vec![("ExecutionId".to_string(), args.execution.clone()), ("NotifyType".to_string(), notify_type.to_string())];
    // An instance id names the loop item; a child execution id names the task execution.
    if args.instance.starts_with("exec-") {
        params.push(("TaskExecutionId".to_string(), args.instance.clone()));
    } else {
        params.push(("LoopItem".to_string(), args.instance.clone()));
    }
    let reply = client.call(OOS_VERSION, "NotifyExecution", params).await?;
    let done = format!("{verb} {} in {}", args.instance, args.execution);
    after_action(&client, &reply, &args.execution, &done, args.wait, output).await
}

/// After a notify or cancel: report it, then wait when asked. A task may still show Waiting
/// for a moment after a decision, so Waiting only ends the wait once the task has moved on or
/// [`DECISION_SETTLE`] has passed.
async fn after_action(
    client: &Client,
    reply: &Value,
    id: &str,
    done: &str,
    wait: bool,
    output: OutputFormat,
) -> anyhow::Result<u8> {
    match output {
        OutputFormat::Json if !wait => print_json(reply)?,
        OutputFormat::Json => {}
        OutputFormat::Table => outln!("{done}"),
    }
    if wait {
        return wait_for(client, id, output, DECISION_SETTLE).await;
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn children_sort_by_batch_then_position() {
        let mut children = vec![
            json!({"ExecutionId": "c", "Parameters": {"batch": 2, "position": 0}}),
            json!({"ExecutionId": "b", "Parameters": "{\"batch\":1,\"position\":1}"}),
            json!({"ExecutionId": "a", "Parameters": {"batch": 1, "position": 0}}),
        ];
        sort_children(&mut children);
        let ids: Vec<&str> = children.iter().map(|c| c["ExecutionId"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }
}
