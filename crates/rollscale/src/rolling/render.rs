//! What the commands print: tables of tasks and instances, a task's details, script outputs and
//! the next steps an operator can take. Pure functions over the typed views of
//! `rollscale_client::wire`.

pub use rollscale_client::wire::kind_short;
use rollscale_client::wire::{Execution, ExecutionStatus, Kind, WaitingStatus};

/// Longest MESSAGE shown in a table.
const MAX_MESSAGE_CHARS: usize = 80;

fn or_dash(text: impl Into<String>) -> String {
    let text = text.into();
    if text.is_empty() {
        "-".into()
    } else {
        text
    }
}

/// One line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if flat.chars().count() > max => format!("{}…", &flat[..cut]),
        _ => flat,
    }
}

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header_cells: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_cells).chain(rows.iter()) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let width = widths.get(index).copied().unwrap_or(0);
            line.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.chars().count())));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The table of `rolling-update list`.
pub fn render_task_table(tasks: &[Execution]) -> String {
    let headers =
        ["EXECUTION", "KIND", "INVOKE", "GROUP", "STATUS", "BATCHES", "SUCCESS", "FAILED", "TOTAL", "CREATED"];
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|task| {
            vec![
                task.execution_id.clone(),
                kind_short(&task.template_name).to_string(),
                or_dash(task.param_str("invokeType").unwrap_or_default()),
                or_dash(task.param_str("scalingGroupId").unwrap_or_default()),
                task.status_label(),
                task.batches().map(|(k, n)| format!("{k}/{n}")).unwrap_or_else(|| "-".into()),
                task.counters.success.to_string(),
                task.counters.failed.to_string(),
                task.counters.total.to_string(),
                or_dash(task.create_date.clone()),
            ]
        })
        .collect();
    render_table(&headers, &rows)
}

/// The instance table of `rolling-update show`.
pub fn render_instance_table(children: &[Execution]) -> String {
    let headers = ["INSTANCE", "CHILD EXECUTION", "BATCH", "STATUS", "STEP", "EXIT", "MESSAGE"];
    let rows: Vec<Vec<String>> = children
        .iter()
        .map(|child| {
            let (parameters, outputs) = (child.instance_parameters(), child.instance_outputs());
            let message = if child.status_message.is_empty() {
                outputs.error.unwrap_or_default()
            } else {
                child.status_message.clone()
            };
            vec![
                or_dash(parameters.instance_id),
                child.execution_id.clone(),
                or_dash(parameters.batch.map(|batch| batch.to_string()).unwrap_or_default()),
                child.status.to_string(),
                // A queued instance has not reached any step yet.
                if child.status == ExecutionStatus::Queued {
                    "-".to_string()
                } else {
                    or_dash(outputs.step.to_string())
                },
                or_dash(outputs.exit_code.map(|code| code.to_string()).unwrap_or_default()),
                or_dash(one_line(&message, MAX_MESSAGE_CHARS)),
            ]
        })
        .collect();
    render_table(&headers, &rows)
}

/// What the task changes, in a few words.
fn describe_change(task: &Execution) -> String {
    let rollback = task.param_str("invokeType").as_deref() == Some("rollback");
    let first_line = |script: &str| {
        let lines: Vec<&str> = script.lines().collect();
        let first = one_line(lines.first().copied().unwrap_or(""), 60);
        if lines.len() > 1 {
            format!("{first} (+{} lines)", lines.len() - 1)
        } else {
            first
        }
    };
    match Kind::from_template_name(&task.template_name) {
        Some(Kind::ImageUpdate) => {
            let image = if rollback { task.param_str("sourceImageId") } else { task.param_str("imageId") };
            let mut text = format!("image → {}", image.unwrap_or_else(|| "-".into()));
            if let Some(configuration) = task.param_str("scalingConfigurationId") {
                text.push_str(&format!(" (configuration {configuration})"));
            }
            text
        }
        Some(Kind::ScriptExecution) => {
            let name = if rollback { "rollbackScript" } else { "invokeScript" };
            let command_type = task.param_str("commandType").unwrap_or_else(|| "script".into());
            format!("{command_type}: {}", first_line(&task.param_str(name).unwrap_or_default()))
        }
        Some(Kind::PackageInstall) => format!(
            "{} package {} {}",
            task.param_str("action").unwrap_or_else(|| "install".into()),
            task.param_str("packageName").unwrap_or_default(),
            task.param_str("packageVersion").unwrap_or_default()
        ),
        Some(Kind::ContainerGroupUpdate) => "container group update".into(),
        None => "-".into(),
    }
}

/// The summary block of `rolling-update show`.
pub fn render_task_details(task: &Execution) -> String {
    let mut lines: Vec<(&str, String)> = vec![
        ("Execution", task.execution_id.clone()),
        ("Template", format!("{} ({})", task.template_name, kind_short(&task.template_name))),
    ];
    let mut invoke = task.param_str("invokeType").unwrap_or_else(|| "-".into());
    if let Some(source) = task.param_str("sourceExecutionId") {
        invoke.push_str(&format!(" of {source}"));
    }
    lines.push(("Invoke", invoke));
    lines.push(("Group", or_dash(task.param_str("scalingGroupId").unwrap_or_default())));
    lines.push(("Change", describe_change(task)));
    lines.push(("Status", task.status_label()));
    if !task.status_message.is_empty() {
        lines.push(("Message", task.status_message.clone()));
    }
    let batches = match task.batches() {
        Some((current, count)) => format!("{current} of {count}"),
        None => "-".into(),
    };
    let policy = task.param_str("batchPauseOption").unwrap_or_else(|| "Automatic".into());
    lines.push(("Batches", format!("{batches} (pause: {policy})")));
    let c = task.counters;
    lines.push((
        "Instances",
        format!(
            "total {} · success {} · failed {} · running {} · queued {} · cancelled {}",
            c.total, c.success, c.failed, c.running, c.queued, c.cancelled
        ),
    ));
    lines.push(("Created", or_dash(task.create_date.clone())));
    if !task.end_date.is_empty() {
        lines.push(("Ended", task.end_date.clone()));
    }
    let mut out = String::new();
    for (label, value) in lines {
        out.push_str(&format!("{label:<10}  {value}\n"));
    }
    out
}

/// Each instance's script output, as `show` prints it for script tasks.
pub fn render_script_outputs(children: &[Execution]) -> String {
    let mut out = String::new();
    for child in children {
        let outputs = child.instance_outputs();
        let mut instance = child.instance_parameters().instance_id;
        if instance.is_empty() {
            instance = child.execution_id.clone();
        }
        let mut header = format!("=== {instance} · {} · {}", child.execution_id, child.status);
        if let Some(code) = outputs.exit_code {
            header.push_str(&format!(" · exit {code}"));
        }
        if let Some(attempt) = outputs.attempt {
            header.push_str(&format!(" · attempt {attempt}"));
        }
        out.push_str(&header);
        out.push_str(" ===\n");
        if outputs.output.is_empty() {
            out.push_str("(no output)\n");
        } else {
            out.push_str(&outputs.output);
            if !outputs.output.ends_with('\n') {
                out.push('\n');
            }
        }
        if outputs.truncated {
            out.push_str("(output truncated)\n");
        }
        if let Some(error) = outputs.error.filter(|error| !error.is_empty()) {
            out.push_str(&format!("error: {error}\n"));
        }
    }
    out
}

/// What to do next about a task that waits or failed, or nothing.
pub fn next_steps(task: &Execution) -> Option<String> {
    let id = &task.execution_id;
    match (&task.status, task.waiting_status) {
        (ExecutionStatus::Waiting, Some(WaitingStatus::BatchPaused)) => Some(format!(
            "Paused between batches. Continue: rollscale ru continue {id}   Roll back: rollscale ru rollback {id}"
        )),
        (ExecutionStatus::Waiting, _) => Some(format!(
            "Failed instances await a decision (see rollscale ru show {id}): \
             rollscale ru retry|skip|cancel-instance {id} INSTANCE_ID, or rollscale ru cancel {id}"
        )),
        (ExecutionStatus::Failed, _) => {
            Some(format!("See rollscale ru show {id}; roll back with rollscale ru rollback {id}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const SAMPLE_LIST: &str = r#"{
        "RequestId": "AF9714A1",
        "Executions": [
            {
                "ExecutionId": "exec-d880c998ac4f4f968b",
                "TemplateName": "ACS-ESS-RollingUpdateByRunCommandInScalingGroup",
                "ParentExecutionId": "",
                "IsParent": true,
                "CreateDate": "2026-11-22T03:03:31Z",
                "Status": "Waiting",
                "WaitingStatus": "BatchPaused",
                "Outputs": "{\"phase\":\"Batch\",\"currentBatch\":1,\"batchCount\":2}",
                "Parameters": {"invokeType": "invoke", "scalingGroupId": "asg-bp1example", "batchNumber": 2},
                "Counters": {"Total": 4, "Success": 2, "Running": 0, "Failed": 0, "Cancelled": 0, "Waiting": 0, "Queued": 2}
            },
            {
                "ExecutionId": "exec-0b1",
                "TemplateName": "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup",
                "ParentExecutionId": "",
                "CreateDate": "2026-11-21T10:00:00Z",
                "Status": "Success",
                "WaitingStatus": "",
                "Outputs": "{}",
                "Parameters": {"invokeType": "rollback", "scalingGroupId": "asg-bp1example"},
                "Counters": {"Total": 10, "Success": 9, "Running": 0, "Failed": 1, "Cancelled": 0, "Waiting": 0, "Queued": 0}
            }
        ],
        "MaxResults": 50,
        "NextToken": "",
        "TotalCount": 2
    }"#;

    #[test]
    fn list_table_renders_a_list_executions_reply() {
        let reply: Value = serde_json::from_str(SAMPLE_LIST).unwrap();
        let views: Vec<Execution> = reply["Executions"].as_array().unwrap().iter().map(Execution::from_json).collect();
        let table = render_task_table(&views);
        let expected = "\
EXECUTION                KIND    INVOKE    GROUP           STATUS                 BATCHES  SUCCESS  FAILED  TOTAL  CREATED
exec-d880c998ac4f4f968b  script  invoke    asg-bp1example  Waiting (BatchPaused)  1/2      2        0       4      2026-11-22T03:03:31Z
exec-0b1                 image   rollback  asg-bp1example  Success                -        9        1       10     2026-11-21T10:00:00Z
";
        assert_eq!(table, expected);
    }

    #[test]
    fn show_renders_instances_and_script_output() {
        let children: Vec<Execution> = [
            json!({
                "ExecutionId": "exec-c1", "ParentExecutionId": "exec-p", "Status": "Success", "StatusMessage": "",
                "Parameters": {"instanceId": "i-aaa", "batch": 1, "position": 0},
                "Outputs": "{\"step\":\"Done\",\"exitCode\":0,\"output\":\"hello\\n\",\"truncated\":false,\"attempt\":1,\"error\":null}"
            }),
            json!({
                "ExecutionId": "exec-c2", "ParentExecutionId": "exec-p", "Status": "Failed",
                "StatusMessage": "script exited with code 3",
                "Parameters": {"instanceId": "i-bbb", "batch": 2, "position": 1},
                "Outputs": "{\"step\":\"Apply\",\"exitCode\":3,\"output\":\"\",\"truncated\":true,\"attempt\":2,\"error\":\"exit 3\"}"
            }),
        ]
        .iter()
        .map(Execution::from_json)
        .collect();
        let table = render_instance_table(&children);
        let expected = "\
INSTANCE  CHILD EXECUTION  BATCH  STATUS   STEP   EXIT  MESSAGE
i-aaa     exec-c1          1      Success  Done   0     -
i-bbb     exec-c2          2      Failed   Apply  3     script exited with code 3
";
        assert_eq!(table, expected);
        let outputs = render_script_outputs(&children);
        assert_eq!(
            outputs,
            "=== i-aaa · exec-c1 · Success · exit 0 · attempt 1 ===\nhello\n\
             === i-bbb · exec-c2 · Failed · exit 3 · attempt 2 ===\n(no output)\n(output truncated)\nerror: exit 3\n"
        );
    }

    #[test]
    fn details_and_progress_lines() {
        let reply: Value = serde_json::from_str(SAMPLE_LIST).unwrap();
        let task = Execution::from_json(&reply["Executions"][0]);
        assert_eq!(task.progress_line(), "batch 1 of 2 · done 2 · failed 0 · Waiting (BatchPaused)");
        let details = render_task_details(&task);
        assert!(details.contains("Status      Waiting (BatchPaused)\n"), "{details}");
        assert!(details.contains("Batches     1 of 2 (pause: Automatic)\n"), "{details}");
        assert!(next_steps(&task).unwrap().contains("rollscale ru continue exec-d880c998ac4f4f968b"));
    }
}
