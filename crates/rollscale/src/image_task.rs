//! `rollscale image-task …`: image update tasks — make a custom image from an instance and put
//! it into scaling configurations, now, once at a time, or periodically until an expiry.
//!
//! Every command is a plain OOS call (`StartExecution` of
//! `ACS-ESS-CreateImageAndUpdateScalingConfiguration`, `ListExecutions`, `CancelExecution`; a
//! group's configurations from ESS `DescribeScalingConfigurations`). Building the parameters and
//! rendering the tables are pure functions, tested without a server.

use crate::rolling::{render_table, OutputFormat};
use crate::{UsageError, EXIT_FAILED, EXIT_OK};
use clap::{ArgGroup, Args, Subcommand};
use rollscale_client::rpc::{ApiError, Client, OOS_VERSION};
use rollscale_client::wire::IMAGE_UPDATE_TEMPLATE as TEMPLATE_NAME;
use rollscale_client::wire::{Execution, ExecutionStatus, ListExecutionsReply, StartExecutionReply};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// How long `create --wait` waits for a task that runs now.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

#[derive(Debug, Args)]
pub struct ImageTaskArgs {
    #[command(subcommand)]
    pub command: ImageTaskCommand,
    /// Output format: human tables, or the API's JSON.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum ImageTaskCommand {
    /// Create an image update task: now (the default), once (--at), or periodically (--rate or --cron, with --until).
    #[command(after_help = CREATE_EXAMPLES)]
    Create(Box<CreateArgs>),
    /// List image update tasks, newest first.
    List(ListArgs),
    /// Show an image update task and its firings.
    Show(ShowArgs),
    /// Cancel a scheduled image update task: no further firing (one in flight finishes).
    Cancel(ShowArgs),
}

const CREATE_EXAMPLES: &str = "\
Examples:
  rollscale image-task create --instance i-… --configuration asc-… --wait
  rollscale image-task create --instance i-… --configuration asc-a --configuration asc-b \\
      --at 2026-12-02T02:00:00 --time-zone Asia/Shanghai --role OOSServiceRole
  rollscale image-task create --instance i-… --configuration asc-… --rate \"1 day\" \\
      --until 2027-01-01T00:00:00Z --role OOSServiceRole
  rollscale image-task create --instance i-… --configuration asc-… --cron \"0 0 2 21-25 * ?\" \\
      --until 2020-08-26T00:00:00Z --role OOSServiceRole

The image is named <name>_on_<execution id>_at_<UTC time of the firing>; --name defaults to
UpdateImage_from_<instance id>.";

#[derive(Debug, Args, Clone, Default, PartialEq, Eq)]
#[command(group(ArgGroup::new("trigger").args(["at", "rate", "cron"]).multiple(false)))]
pub struct CreateArgs {
    /// The source instance (`i-…`): the image is made from it.
    #[arg(long, value_parser = parse_instance)]
    pub instance: String,
    /// A scaling configuration to update (`asc-…`, of an ECS group); repeat for more.
    #[arg(long = "configuration", required = true, value_parser = parse_configuration)]
    pub configurations: Vec<String>,
    /// The image name before its `_on_<execution>_at_<time>` suffix.
    #[arg(long)]
    pub name: Option<String>,
    /// Fire once at this date-time (`2026-12-02T02:00:00Z`, or local time in --time-zone).
    #[arg(long)]
    pub at: Option<String>,
    /// Fire every period: `30 minute`, `2 hour`, `1 day`.
    #[arg(long)]
    pub rate: Option<String>,
    /// Fire on a Quartz cron expression: `sec min hour day-of-month month day-of-week`.
    #[arg(long)]
    pub cron: Option<String>,
    /// The expiry of a --rate or --cron task (required for them).
    #[arg(long)]
    pub until: Option<String>,
    /// No firing before this date-time.
    #[arg(long)]
    pub start: Option<String>,
    /// The IANA time zone the trigger's times are read in (default UTC).
    #[arg(long)]
    pub time_zone: Option<String>,
    /// The RAM role OOS assumes (required for --at, --rate and --cron).
    #[arg(long)]
    pub role: Option<String>,
    /// A tag for the image, `KEY=VALUE`; repeat for more.
    #[arg(long = "tag", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Wait until the task ends, showing how it ended.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the tasks updating this group's scaling configurations.
    #[arg(long, value_parser = parse_group)]
    pub group: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The task's execution id (`exec-…`).
    #[arg(value_parser = parse_execution)]
    pub execution: String,
}

fn prefixed(text: &str, prefix: &str, what: &str) -> Result<String, String> {
    if text.starts_with(prefix) && text.len() > prefix.len() {
        Ok(text.to_string())
    } else {
        Err(format!("{text:?} is not {what} ({prefix}…)"))
    }
}

fn parse_instance(text: &str) -> Result<String, String> {
    prefixed(text, "i-", "an instance id")
}

fn parse_configuration(text: &str) -> Result<String, String> {
    prefixed(text, "asc-", "a scaling configuration id")
}

fn parse_group(text: &str) -> Result<String, String> {
    prefixed(text, "asg-", "a scaling group id")
}

fn parse_execution(text: &str) -> Result<String, String> {
    prefixed(text, "exec-", "an execution id")
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// The template's `Parameters` for `create`.
pub fn create_parameters(args: &CreateArgs) -> Result<Value, UsageError> {
    let mut params = Map::new();
    params.insert("instanceId".into(), json!(args.instance));
    params.insert("scalingConfigurationIds".into(), json!(args.configurations));
    if let Some(name) = &args.name {
        params.insert("targetImageName".into(), json!(name));
    }
    if !args.tags.is_empty() {
        let tags: Vec<Value> = args.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
        params.insert("tags".into(), Value::Array(tags));
    }
    if let Some(role) = &args.role {
        params.insert("OOSAssumeRole".into(), json!(role));
    }
    let trigger = match (&args.at, &args.rate, &args.cron) {
        (Some(at), _, _) => Some(("at", at)),
        (_, Some(rate), _) => Some(("rate", rate)),
        (_, _, Some(cron)) => Some(("cron", cron)),
        _ => None,
    };
    match trigger {
        None => {
            for (flag, given) in [
                ("--until", args.until.is_some()),
                ("--start", args.start.is_some()),
                ("--time-zone", args.time_zone.is_some()),
            ] {
                if given {
                    return Err(UsageError::new(format!("{flag} needs --at, --rate or --cron")));
                }
            }
        }
        Some((kind, expression)) => {
            if kind == "at" && (args.until.is_some() || args.start.is_some()) {
                return Err(UsageError::new("--until and --start apply to --rate and --cron, not --at"));
            }
            if kind != "at" && args.until.is_none() {
                return Err(UsageError::new(format!("--{kind} needs --until (the task's expiry)")));
            }
            let mut trigger = Map::new();
            trigger.insert("Type".into(), json!(kind));
            trigger.insert("Expression".into(), json!(expression));
            for (name, value) in [("TimeZone", &args.time_zone), ("StartDate", &args.start), ("EndDate", &args.until)] {
                if let Some(value) = value {
                    trigger.insert(name.into(), json!(value));
                }
            }
            params.insert("timerTrigger".into(), Value::Object(trigger));
        }
    }
    Ok(Value::Object(params))
}

fn param_text(view: &Execution, name: &str) -> String {
    match view.parameters.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn configurations(view: &Execution) -> Vec<String> {
    match view.parameters.get("scalingConfigurationIds") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// `now`, or the trigger in words.
pub fn schedule_text(view: &Execution) -> String {
    let Some(Value::Object(trigger)) = view.parameters.get("timerTrigger") else { return "now".into() };
    let field = |name: &str| trigger.get(name).and_then(Value::as_str).unwrap_or("").to_string();
    let mut text = format!("{} {}", field("Type"), field("Expression"));
    if !field("TimeZone").is_empty() {
        text.push_str(&format!(" ({})", field("TimeZone")));
    }
    if !field("EndDate").is_empty() {
        text.push_str(&format!(" until {}", field("EndDate")));
    }
    text
}

fn dash(text: String) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text
    }
}

fn image_of(view: &Execution) -> String {
    view.image_outputs().image_id.unwrap_or_default()
}

/// The next firing of a scheduled task, as the server says it (`StatusReason`).
fn next_firing(view: &Execution) -> String {
    view.status_reason.strip_prefix("next firing at ").unwrap_or("").to_string()
}

/// The table of `image-task list`.
pub fn render_task_table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let view = Execution::from_json(item);
            vec![
                view.execution_id.clone(),
                view.status.to_string(),
                schedule_text(&view),
                param_text(&view, "instanceId"),
                configurations(&view).join(","),
                dash(next_firing(&view)),
                dash(image_of(&view)),
                view.create_date.clone(),
            ]
        })
        .collect();
    render_table(
        &["EXECUTION", "STATUS", "SCHEDULE", "INSTANCE", "CONFIGURATIONS", "NEXT FIRING", "IMAGE", "CREATED"],
        &rows,
    )
}

/// `image-task show`: the task, then its firings.
pub fn render_details(task: &Value, firings: &[Value]) -> String {
    let view = Execution::from_json(task);
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<16}{value}\n"));
    line("Execution:", view.execution_id.clone());
    line("Status:", view.status.to_string());
    if !view.status_message.is_empty() {
        line("Message:", view.status_message.clone());
    }
    line("Schedule:", schedule_text(&view));
    line("Instance:", param_text(&view, "instanceId"));
    line("Image name:", param_text(&view, "targetImageName"));
    line("Configurations:", configurations(&view).join(", "));
    if !next_firing(&view).is_empty() {
        line("Next firing:", next_firing(&view));
    }
    if !image_of(&view).is_empty() {
        line("Image:", image_of(&view));
    }
    line("Created:", view.create_date.clone());
    if !view.end_date.is_empty() {
        line("Ended:", view.end_date.clone());
    }
    if !firings.is_empty() {
        let rows: Vec<Vec<String>> = firings
            .iter()
            .map(|firing| {
                let firing = Execution::from_json(firing);
                vec![
                    firing.execution_id.clone(),
                    firing.status.to_string(),
                    firing.start_date.clone(),
                    dash(image_of(&firing)),
                    dash(firing.status_message.clone()),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&render_table(&["FIRING", "STATUS", "FIRED", "IMAGE", "MESSAGE"], &rows));
    }
    out
}

async fn fetch(client: &Client, id: &str) -> Result<Value, ApiError> {
    let reply = client.call(OOS_VERSION, "ListExecutions", vec![("ExecutionId".into(), id.into())]).await?;
    let reply = ListExecutionsReply::<Value>::from_json(&reply);
    let request_id = reply.request_id;
    let wanted = |item: &Value| {
        let view = Execution::from_json(item);
        view.execution_id == id && view.template_name == TEMPLATE_NAME
    };
    reply.executions.into_iter().find(wanted).ok_or_else(|| ApiError {
        http_status: None,
        code: rollscale_client::Code::EntityNotExistsExecution.as_str().into(),
        message: format!("the image update task {id} does not exist"),
        request_id,
    })
}

async fn list_pages(client: &Client, params: Vec<(String, String)>, limit: usize) -> Result<Vec<Value>, ApiError> {
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let mut page = params.clone();
        page.push(("MaxResults".into(), "100".into()));
        if !token.is_empty() {
            page.push(("NextToken".into(), token.clone()));
        }
        let reply = client.call(OOS_VERSION, "ListExecutions", page).await?;
        let reply = ListExecutionsReply::<Value>::from_json(&reply);
        let n = reply.executions.len();
        items.extend(reply.executions);
        let next = reply.next_token;
        if items.len() >= limit || next.is_empty() || n == 0 || next == token {
            items.truncate(limit);
            return Ok(items);
        }
        token = next;
    }
}

/// The scaling configuration ids of a group.
async fn group_configurations(client: &Client, group: &str) -> Result<Vec<String>, ApiError> {
    let reply = client
        .call(
            rollscale_client::rpc::default_version("ess").unwrap_or("2014-08-28"),
            "DescribeScalingConfigurations",
            vec![("ScalingGroupId".into(), group.into()), ("PageSize".into(), "50".into())],
        )
        .await?;
    let items = reply.pointer("/ScalingConfigurations/ScalingConfiguration").and_then(Value::as_array);
    Ok(items
        .map(|items| items.iter().filter_map(|c| c["ScalingConfigurationId"].as_str()).map(str::to_string).collect())
        .unwrap_or_default())
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn run(args: ImageTaskArgs) -> anyhow::Result<u8> {
    let output = args.output;
    let client = || crate::profile::client(&crate::profile::load()?);
    match args.command {
        ImageTaskCommand::Create(create) => {
            let parameters = create_parameters(&create)?;
            let client = client()?;
            let params = vec![
                ("TemplateName".to_string(), TEMPLATE_NAME.to_string()),
                ("Parameters".to_string(), parameters.to_string()),
            ];
            let reply = client.call(OOS_VERSION, "StartExecution", params).await?;
            let id = StartExecutionReply::from_json(&reply).execution.execution_id;
            if !create.wait {
                match output {
                    OutputFormat::Json => print_json(&reply)?,
                    OutputFormat::Table => outln!("{id}"),
                }
                return Ok(EXIT_OK);
            }
            let started = Instant::now();
            let task = loop {
                let task = fetch(&client, &id).await?;
                if Execution::from_json(&task).is_final() || started.elapsed() > WAIT_LIMIT {
                    break task;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            };
            let view = Execution::from_json(&task);
            match output {
                OutputFormat::Json => print_json(&task)?,
                OutputFormat::Table => {
                    outln!("{id}");
                    match &view.status {
                        ExecutionStatus::Success => {
                            eprintln!("Image update task {id} succeeded: image {}.", image_of(&view))
                        }
                        status => eprintln!("Image update task {id} is {status}: {}", view.status_message),
                    }
                }
            }
            Ok(if view.status == ExecutionStatus::Success { EXIT_OK } else { EXIT_FAILED })
        }
        ImageTaskCommand::List(list) => {
            let client = client()?;
            let wanted = match &list.group {
                Some(group) => Some(group_configurations(&client, group).await?),
                None => None,
            };
            let mut items =
                list_pages(&client, vec![("TemplateName".into(), TEMPLATE_NAME.into())], usize::MAX).await?;
            items.retain(|item| {
                let view = Execution::from_json(item);
                view.parent_execution_id.is_empty()
                    && wanted.as_ref().is_none_or(|ids| configurations(&view).iter().any(|c| ids.contains(c)))
            });
            items.truncate(list.limit.max(1));
            match output {
                OutputFormat::Json => print_json(&json!({ "Executions": items }))?,
                OutputFormat::Table if items.is_empty() => outln!("No image update tasks."),
                OutputFormat::Table => out!("{}", render_task_table(&items)),
            }
            Ok(EXIT_OK)
        }
        ImageTaskCommand::Show(show) => {
            let client = client()?;
            let task = fetch(&client, &show.execution).await?;
            let firings =
                list_pages(&client, vec![("ParentExecutionId".into(), show.execution.clone())], usize::MAX).await?;
            match output {
                OutputFormat::Json => print_json(&json!({ "Execution": task, "Firings": firings }))?,
                OutputFormat::Table => out!("{}", render_details(&task, &firings)),
            }
            Ok(EXIT_OK)
        }
        ImageTaskCommand::Cancel(cancel) => {
            let client = client()?;
            fetch(&client, &cancel.execution).await?;
            client.call(OOS_VERSION, "CancelExecution", vec![("ExecutionId".into(), cancel.execution.clone())]).await?;
            let task = fetch(&client, &cancel.execution).await?;
            match output {
                OutputFormat::Json => print_json(&task)?,
                OutputFormat::Table => {
                    outln!("Cancelled {}: no further firing (a firing in flight finishes).", cancel.execution)
                }
            }
            Ok(EXIT_OK)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> CreateArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            create: CreateArgs,
        }
        let base = ["x", "--instance", "i-1", "--configuration", "asc-a", "--configuration", "asc-b"];
        Cli::try_parse_from(base.iter().chain(extra.iter())).expect("parses").create
    }

    #[test]
    fn create_builds_the_templates_parameters() {
        assert_eq!(
            create_parameters(&args(&["--name", "web", "--tag", "app=web"])).unwrap(),
            json!({"instanceId": "i-1", "scalingConfigurationIds": ["asc-a", "asc-b"], "targetImageName": "web",
                   "tags": [{"Key": "app", "Value": "web"}]})
        );
        assert_eq!(
            create_parameters(&args(&[
                "--cron",
                "0 0 2 21-25 * ?",
                "--until",
                "2020-08-26T00:00:00Z",
                "--role",
                "R",
                "--time-zone",
                "Asia/Shanghai"
            ]))
            .unwrap(),
            json!({"instanceId": "i-1", "scalingConfigurationIds": ["asc-a", "asc-b"], "OOSAssumeRole": "R",
                   "timerTrigger": {"Type": "cron", "Expression": "0 0 2 21-25 * ?", "TimeZone": "Asia/Shanghai",
                                    "EndDate": "2020-08-26T00:00:00Z"}})
        );
        let at = create_parameters(&args(&["--at", "2026-12-02T02:00:00Z", "--role", "R"])).unwrap();
        assert_eq!(at["timerTrigger"], json!({"Type": "at", "Expression": "2026-12-02T02:00:00Z"}));
    }

    #[test]
    fn create_refuses_what_does_not_fit() {
        assert!(create_parameters(&args(&["--rate", "1 day"])).unwrap_err().to_string().contains("--until"));
        assert!(create_parameters(&args(&["--until", "2027-01-01"])).is_err());
        assert!(create_parameters(&args(&["--at", "2027-01-01", "--until", "2027-02-01"])).is_err());
        use clap::Parser;
        #[derive(Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            create: CreateArgs,
        }
        for bad in [
            &["x", "--instance", "vm-1", "--configuration", "asc-a"][..],
            &["x", "--instance", "i-1"],
            &["x", "--instance", "i-1", "--configuration", "asc-a", "--at", "a", "--rate", "1 day"],
            &["x", "--instance", "i-1", "--configuration", "asc-a", "--tag", "novalue"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tables_show_the_schedule_and_the_image() {
        let task = json!({"ExecutionId": "exec-1", "Status": "Waiting", "TemplateName": TEMPLATE_NAME,
            "ParentExecutionId": "", "StatusReason": "next firing at 2026-12-02T02:00:00Z",
            "Parameters": {"instanceId": "i-1", "scalingConfigurationIds": ["asc-a"],
                           "timerTrigger": {"Type": "rate", "Expression": "1 day", "EndDate": "2027-01-01T00:00:00Z"}},
            "Outputs": "{\"imageId\":\"m-1\"}", "CreateDate": "2026-12-01T00:00:00Z"});
        let table = render_task_table(std::slice::from_ref(&task));
        assert!(table.starts_with("EXECUTION"), "{table}");
        assert!(table.contains("rate 1 day until 2027-01-01T00:00:00Z"), "{table}");
        assert!(table.contains("2026-12-02T02:00:00Z") && table.contains("m-1"), "{table}");
        let firing = json!({"ExecutionId": "exec-2", "Status": "Failed", "StatusMessage": "the instance is gone",
                            "StartDate": "2026-12-02T02:00:00Z"});
        let details = render_details(&task, &[firing]);
        assert!(
            details.contains("Next firing:") && details.contains("FIRING") && details.contains("the instance is gone")
        );
    }
}
