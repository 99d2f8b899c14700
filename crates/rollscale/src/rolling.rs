//! `rollscale rolling-update …` (alias `ru`): the daily work of rolling updates — start, list,
//! show, wait, continue, retry/skip/cancel an instance, cancel, roll back.
//!
//! Every command is a plain OOS call through [`Client::call`] (`StartExecution`,
//! `ListExecutions`, `NotifyExecution`, `CancelExecution`), so it works against any server that
//! speaks the API. Building the template `Parameters` and rendering tables are pure functions,
//! tested without a server.

use crate::client::{ApiError, Client, OOS_VERSION};
use crate::{UsageError, EXIT_FAILED, EXIT_OK, EXIT_WAITING};
use anyhow::Context;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rollscale_core::params::{BatchPauseOption, CommandType, ContainerUpdateType, Kind, PackageAction};
use serde_json::{json, Map, Value};
use std::fmt::Display;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often `--wait` asks for the task's state.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long `--wait` keeps trying while the server cannot be reached.
const UNREACHABLE_GRACE: Duration = Duration::from_secs(60);
/// After an instance decision, how long a task still showing Waiting is taken to be moving on.
const DECISION_SETTLE: Duration = Duration::from_secs(3);
/// Page size of `ListExecutions`.
const PAGE_SIZE: u32 = 100;
/// Longest MESSAGE shown in a table.
const MAX_MESSAGE_CHARS: usize = 80;

/// `rollscale rolling-update`: rolling updates of scaling groups.
#[derive(Debug, Args)]
pub struct RollingUpdateArgs {
    #[command(subcommand)]
    pub command: RollingCommand,
    /// Output format: human tables, or the API's JSON.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum RollingCommand {
    /// Start a rolling update of a scaling group: a new image, a script, or a package.
    #[command(after_help = START_EXAMPLES)]
    Start(StartArgs),
    /// List rolling updates, newest first.
    List(ListArgs),
    /// Show a rolling update and each of its instances (with script output).
    Show(ShowArgs),
    /// Wait until a rolling update finishes or pauses, showing its progress.
    #[command(after_help = WAIT_EXIT_CODES)]
    Wait(WaitArgs),
    /// Continue a rolling update paused between batches (Waiting, BatchPaused).
    #[command(after_help = WAIT_EXIT_CODES)]
    Continue(ContinueArgs),
    /// Run a failed instance of a paused rolling update again (Waiting, FailurePaused).
    #[command(after_help = WAIT_EXIT_CODES)]
    Retry(InstanceArgs),
    /// Skip a failed instance: shown as Success, it stays in Standby.
    #[command(after_help = WAIT_EXIT_CODES)]
    Skip(InstanceArgs),
    /// Cancel one instance's work: shown as Failed, it stays in Standby.
    #[command(after_help = WAIT_EXIT_CODES)]
    CancelInstance(InstanceArgs),
    /// Cancel a running or waiting rolling update; instances in flight finish first.
    Cancel(CancelArgs),
    /// Roll back a rolling update: a new task that restores what it changed.
    #[command(after_help = ROLLBACK_EXAMPLES)]
    Rollback(RollbackArgs),
}

const START_EXAMPLES: &str = "Examples:\n  \
    rollscale ru start --group asg-bp18p2yfxow2dloq --image aliyun_2_1903_x64_20G_alibase_20200529.vhd \\\n      \
    --rollback-image centos_7_8_x64_20G_alibase_20200717.vhd --configuration asc-bp1bx8mzur534edp --batches 2\n  \
    rollscale ru start --group asg-bp18p2yfxow2dloq --script $'df -h\\nifconfig' --pause FirstBatchPause --wait\n  \
    rollscale ru start --group asg-bp18p2yfxow2dloq --package wordpress --version v4\n\n\
    Prints the new execution id. With --wait, exits 0 on Success, 3 when Waiting, 4 on Failed or Cancelled.";

const ROLLBACK_EXAMPLES: &str =
    "The kind, group and package name come from the rolling update rolled back; the change\n\
    defaults to what it recorded (its rollback image or script, the previous package version).\n\n\
    Examples:\n  \
    rollscale ru rollback exec-83dba59be77d430\n  \
    rollscale ru rollback exec-83dba59be77d430 --image centos_7_8_x64_20G_alibase_20200717.vhd --batches 2\n  \
    rollscale ru rollback exec-f4e61f2f21fe490 --version v3 --wait";

const WAIT_EXIT_CODES: &str =
    "With --wait: exit 0 on Success, 3 when the task waits (paused), 4 on Failed or Cancelled.";

/// How many batches, and where to pause.
#[derive(Clone, Debug, Default, PartialEq, Eq, Args)]
pub struct BatchArgs {
    /// Number of batches, 1 to 100 [server default: 5].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub batches: Option<u32>,
    /// Pause policy: Automatic (never), FirstBatchPause (after batch 1), EveryBatchPause
    /// (after every batch but the last) [server default: Automatic].
    #[arg(long, value_name = "POLICY", value_parser = parse_pause)]
    pub pause: Option<BatchPauseOption>,
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("change").required(true).args(["image", "script", "script_file", "package", "containers", "containers_file"])
))]
pub struct StartArgs {
    /// The scaling group to update (asg-…).
    #[arg(long, value_name = "asg-ID", value_parser = parse_group_id)]
    pub group: String,

    /// Replace each instance's system disk with this image (imageId).
    #[arg(long, value_name = "IMAGE", help_heading = "Image update")]
    pub image: Option<String>,
    /// The image a later rollback restores (sourceImageId).
    #[arg(long, value_name = "IMAGE", help_heading = "Image update")]
    pub rollback_image: Option<String>,
    /// Also set this scaling configuration's image, so new instances get it (scalingConfigurationId).
    #[arg(long, value_name = "asc-ID", help_heading = "Image update")]
    pub configuration: Option<String>,
    /// Failed instances tolerated before the task pauses (maxErrors; image and container
    /// group updates) [default: 0].
    #[arg(long, value_name = "N", help_heading = "Image update")]
    pub max_errors: Option<u32>,

    /// Update each container group (ECI groups) to these containers: a JSON list of
    /// {name, image, command, env, port} (containers).
    #[arg(long, value_name = "JSON", value_parser = parse_json_list, help_heading = "Container groups (ECI)")]
    pub containers: Option<Value>,
    /// The containers, from a JSON file.
    #[arg(long, value_name = "PATH", help_heading = "Container groups (ECI)")]
    pub containers_file: Option<PathBuf>,
    /// RenewUpdate (replace the containers) or IncrementalUpdate (merge them by name)
    /// [server default: RenewUpdate].
    #[arg(long, value_name = "TYPE", value_parser = parse_update_type, help_heading = "Container groups (ECI)")]
    pub update_type: Option<ContainerUpdateType>,
    /// The whole container spec a later rollback renews to (rollbackContainers).
    #[arg(long, value_name = "JSON", value_parser = parse_json_list, help_heading = "Container groups (ECI)")]
    pub rollback_containers: Option<Value>,

    /// Run this script on each instance (invokeScript).
    #[arg(long, value_name = "TEXT", help_heading = "Script")]
    pub script: Option<String>,
    /// Run the script in this file on each instance.
    #[arg(long, value_name = "PATH", help_heading = "Script")]
    pub script_file: Option<PathBuf>,
    /// The script a later rollback runs (rollbackScript).
    #[arg(long, value_name = "TEXT", help_heading = "Script")]
    pub rollback_script: Option<String>,
    /// The rollback script, from a file.
    #[arg(long, value_name = "PATH", conflicts_with = "rollback_script", help_heading = "Script")]
    pub rollback_script_file: Option<PathBuf>,
    /// RunShellScript, RunBatScript or RunPowerShellScript [default: RunShellScript].
    #[arg(long, value_name = "TYPE", value_parser = parse_command_type, help_heading = "Script")]
    pub command_type: Option<CommandType>,
    /// Directory the script runs in (workingDir).
    #[arg(long, value_name = "DIR", help_heading = "Script")]
    pub working_dir: Option<String>,
    /// Seconds before the script is stopped and the instance fails [server default: 600].
    #[arg(long, value_name = "SECONDS", help_heading = "Script")]
    pub timeout: Option<u32>,

    /// Install (or uninstall) this OOS package on each instance (packageName).
    #[arg(long, value_name = "NAME", help_heading = "Package")]
    pub package: Option<String>,
    /// The package version (packageVersion).
    #[arg(long, value_name = "VERSION", help_heading = "Package")]
    pub version: Option<String>,
    /// install or uninstall [default: install].
    #[arg(long, value_name = "ACTION", value_parser = parse_package_action, help_heading = "Package")]
    pub action: Option<PackageAction>,

    #[command(flatten)]
    pub batching: BatchArgs,
    /// Any other template parameter, e.g. --param 'enterProcess=["ScaleIn","ScaleOut"]'
    /// (the value is JSON when it parses as JSON, else a string).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, Value)>,
    /// Wait for the task to finish or pause, showing progress.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the rolling updates of this scaling group.
    #[arg(long, value_name = "asg-ID", value_parser = parse_group_id)]
    pub group: Option<String>,
    /// Only tasks with this status: Running, Waiting, Success, Failed or Cancelled.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Show at most this many.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The rolling update's execution id (exec-…).
    #[arg(value_name = "EXECUTION_ID", value_parser = parse_execution_id)]
    pub execution: String,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The rolling update's execution id (exec-…).
    #[arg(value_name = "EXECUTION_ID", value_parser = parse_execution_id)]
    pub execution: String,
}

#[derive(Debug, Args)]
pub struct ContinueArgs {
    /// The rolling update's execution id (exec-…).
    #[arg(value_name = "EXECUTION_ID", value_parser = parse_execution_id)]
    pub execution: String,
    /// Then wait for the task to finish or pause again.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct InstanceArgs {
    /// The rolling update's execution id (exec-…).
    #[arg(value_name = "EXECUTION_ID", value_parser = parse_execution_id)]
    pub execution: String,
    /// The instance (i-…), or its child execution (exec-…).
    #[arg(value_name = "INSTANCE_ID", value_parser = parse_instance_ref)]
    pub instance: String,
    /// Then wait for the task to finish or pause again.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The rolling update's execution id (exec-…).
    #[arg(value_name = "EXECUTION_ID", value_parser = parse_execution_id)]
    pub execution: String,
    /// Also take the current batch out of Standby and resume the scaling processes, as a
    /// success would (otherwise both stay as they are, as in Alibaba Cloud).
    #[arg(long)]
    pub restore: bool,
    /// Then wait until the task has stopped.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The rolling update to roll back (exec-…).
    #[arg(value_name = "EXECUTION_ID", value_parser = parse_execution_id)]
    pub execution: String,

    /// Image update: the image to restore (sourceImageId) [default: the task's rollback image].
    #[arg(long, value_name = "IMAGE", help_heading = "Image update")]
    pub image: Option<String>,
    /// Image update: the scaling configuration to restore [default: the task's].
    #[arg(long, value_name = "asc-ID", help_heading = "Image update")]
    pub configuration: Option<String>,
    /// Image update: failed instances tolerated before the rollback pauses.
    #[arg(long, value_name = "N", help_heading = "Image update")]
    pub max_errors: Option<u32>,

    /// Script: the rollback script [default: the task's rollbackScript].
    #[arg(long, value_name = "TEXT", help_heading = "Script")]
    pub script: Option<String>,
    /// Script: the rollback script, from a file.
    #[arg(long, value_name = "PATH", conflicts_with = "script", help_heading = "Script")]
    pub script_file: Option<PathBuf>,
    /// Script: RunShellScript, RunBatScript or RunPowerShellScript [default: the task's].
    #[arg(long, value_name = "TYPE", value_parser = parse_command_type, help_heading = "Script")]
    pub command_type: Option<CommandType>,
    /// Script: directory the script runs in.
    #[arg(long, value_name = "DIR", help_heading = "Script")]
    pub working_dir: Option<String>,
    /// Script: seconds before the script is stopped.
    #[arg(long, value_name = "SECONDS", help_heading = "Script")]
    pub timeout: Option<u32>,

    /// Package: the version to go back to [default: the version before the task].
    #[arg(long, value_name = "VERSION", help_heading = "Package")]
    pub version: Option<String>,
    /// Package: install or uninstall.
    #[arg(long, value_name = "ACTION", value_parser = parse_package_action, help_heading = "Package")]
    pub action: Option<PackageAction>,

    #[command(flatten)]
    pub batching: BatchArgs,
    /// Any other template parameter, as KEY=VALUE (JSON when it parses as JSON).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, Value)>,
    /// Wait for the rollback to finish or pause, showing progress.
    #[arg(long)]
    pub wait: bool,
}

// ---------------------------------------------------------------------------------------
// Argument parsers.

fn normalized(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
}

/// A wire enum value, case- and punctuation-insensitive (`FirstBatchPause`, `first-batch-pause`).
fn parse_wire<T: Copy + Display>(all: &[T], text: &str) -> Result<T, String> {
    let wanted = normalized(text);
    all.iter().copied().find(|value| normalized(&value.to_string()) == wanted).ok_or_else(|| {
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        format!("expected one of {}", names.join(", "))
    })
}

fn parse_pause(text: &str) -> Result<BatchPauseOption, String> {
    parse_wire(BatchPauseOption::ALL, text)
}

fn parse_command_type(text: &str) -> Result<CommandType, String> {
    parse_wire(CommandType::ALL, text)
}

fn parse_package_action(text: &str) -> Result<PackageAction, String> {
    parse_wire(PackageAction::ALL, text)
}

fn parse_update_type(text: &str) -> Result<ContainerUpdateType, String> {
    parse_wire(ContainerUpdateType::ALL, text)
}

/// A JSON list (of containers); the server checks what is in it.
fn parse_json_list(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(list @ Value::Array(_)) => Ok(list),
        Ok(_) => Err("expected a JSON list, e.g. [{\"name\": \"app\", \"image\": \"app:2\"}]".into()),
        Err(error) => Err(format!("not JSON: {error}")),
    }
}

fn parse_prefixed(text: &str, prefixes: &[&str], what: &str) -> Result<String, String> {
    let text = text.trim();
    if prefixes.iter().any(|prefix| text.len() > prefix.len() && text.starts_with(prefix)) {
        Ok(text.to_string())
    } else {
        let forms: Vec<String> = prefixes.iter().map(|p| format!("{p}…")).collect();
        Err(format!("`{text}` is not {what} ({})", forms.join(" or ")))
    }
}

fn parse_group_id(text: &str) -> Result<String, String> {
    parse_prefixed(text, &["asg-"], "a scaling group id")
}

fn parse_execution_id(text: &str) -> Result<String, String> {
    parse_prefixed(text, &["exec-"], "an execution id")
}

fn parse_instance_ref(text: &str) -> Result<String, String> {
    parse_prefixed(text, &["i-", "exec-"], "an instance id or a child execution id")
}

/// `KEY=VALUE`, the value read as JSON when it is JSON, else as a string.
fn parse_param(text: &str) -> Result<(String, Value), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("`{key}` is not a template parameter name"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
    Ok((key.to_string(), value))
}

// ---------------------------------------------------------------------------------------
// Template parameters.

/// The change of a new rolling update, as given on the command line (files already read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeSpec {
    Image {
        image_id: String,
        rollback_image_id: Option<String>,
        configuration_id: Option<String>,
        max_errors: Option<u32>,
    },
    Script {
        command_type: CommandType,
        script: String,
        rollback_script: Option<String>,
        working_dir: Option<String>,
        timeout_s: Option<u32>,
    },
    Package {
        name: String,
        version: String,
        action: PackageAction,
    },
    Containers {
        update_type: Option<ContainerUpdateType>,
        /// A JSON list of containers.
        containers: Value,
        rollback_containers: Option<Value>,
        max_errors: Option<u32>,
    },
}

impl ChangeSpec {
    pub fn kind(&self) -> Kind {
        match self {
            ChangeSpec::Image { .. } => Kind::ImageUpdate,
            ChangeSpec::Script { .. } => Kind::ScriptExecution,
            ChangeSpec::Package { .. } => Kind::PackageInstall,
            ChangeSpec::Containers { .. } => Kind::ContainerGroupUpdate,
        }
    }
}

fn insert_batching(params: &mut Map<String, Value>, batching: &BatchArgs) {
    if let Some(batches) = batching.batches {
        params.insert("batchNumber".into(), json!(batches));
    }
    if let Some(pause) = batching.pause {
        params.insert("batchPauseOption".into(), json!(pause.as_str()));
    }
}

fn insert_some(params: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    if let Some(value) = value {
        params.insert(name.into(), value);
    }
}

/// The template and `Parameters` of a new rolling update (`invokeType` invoke).
pub fn start_parameters(
    group_id: &str,
    change: &ChangeSpec,
    batching: &BatchArgs,
    extra: &[(String, Value)],
) -> (&'static str, Value) {
    let mut params = Map::new();
    params.insert("invokeType".into(), json!("invoke"));
    params.insert("scalingGroupId".into(), json!(group_id));
    insert_batching(&mut params, batching);
    match change {
        ChangeSpec::Image { image_id, rollback_image_id, configuration_id, max_errors } => {
            params.insert("imageId".into(), json!(image_id));
            insert_some(&mut params, "sourceImageId", rollback_image_id.as_ref().map(|v| json!(v)));
            insert_some(&mut params, "scalingConfigurationId", configuration_id.as_ref().map(|v| json!(v)));
            insert_some(&mut params, "maxErrors", max_errors.map(|v| json!(v)));
        }
        ChangeSpec::Script { command_type, script, rollback_script, working_dir, timeout_s } => {
            params.insert("commandType".into(), json!(command_type.as_str()));
            params.insert("invokeScript".into(), json!(script));
            insert_some(&mut params, "rollbackScript", rollback_script.as_ref().map(|v| json!(v)));
            insert_some(&mut params, "workingDir", working_dir.as_ref().map(|v| json!(v)));
            insert_some(&mut params, "timeout", timeout_s.map(|v| json!(v)));
        }
        ChangeSpec::Package { name, version, action } => {
            params.insert("packageName".into(), json!(name));
            params.insert("packageVersion".into(), json!(version));
            params.insert("action".into(), json!(action.as_str()));
        }
        ChangeSpec::Containers { update_type, containers, rollback_containers, max_errors } => {
            insert_some(&mut params, "updateType", update_type.map(|v| json!(v.as_str())));
            params.insert("containers".into(), containers.clone());
            insert_some(&mut params, "rollbackContainers", rollback_containers.clone());
            insert_some(&mut params, "maxErrors", max_errors.map(|v| json!(v)));
        }
    }
    for (key, value) in extra {
        params.insert(key.clone(), value.clone());
    }
    (change.kind().template_name(), Value::Object(params))
}

/// What a rollback may override of its source's defaults (files already read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollbackOverrides {
    pub image_id: Option<String>,
    pub configuration_id: Option<String>,
    pub max_errors: Option<u32>,
    pub script: Option<String>,
    pub command_type: Option<CommandType>,
    pub working_dir: Option<String>,
    pub timeout_s: Option<u32>,
    pub version: Option<String>,
    pub action: Option<PackageAction>,
}

/// The template and `Parameters` of the rollback of `source` (`invokeType` rollback).
pub fn rollback_parameters(
    source: &ExecutionView,
    overrides: &RollbackOverrides,
    batching: &BatchArgs,
    extra: &[(String, Value)],
) -> Result<(&'static str, Value), UsageError> {
    let kind = Kind::from_template_name(&source.template_name).ok_or_else(|| {
        UsageError::new(format!(
            "{} ran the template {}, which is not a rolling update",
            source.id, source.template_name
        ))
    })?;
    if !source.parent_id.is_empty() {
        return Err(UsageError::new(format!(
            "{} is the child execution of one instance; roll back its rolling update {}",
            source.id, source.parent_id
        )));
    }
    let group_id = source
        .param_str("scalingGroupId")
        .ok_or_else(|| UsageError::new(format!("{} records no scalingGroupId", source.id)))?;
    let misplaced = |flags: &[(&str, bool)]| -> Result<(), UsageError> {
        match flags.iter().find(|(_, given)| *given) {
            Some((flag, _)) => Err(UsageError::new(format!(
                "{flag} does not apply: {} is a {} rolling update",
                source.id,
                kind_short(&source.template_name)
            ))),
            None => Ok(()),
        }
    };
    let o = overrides;
    let image_flags = [
        ("--image", o.image_id.is_some()),
        ("--configuration", o.configuration_id.is_some()),
        ("--max-errors", o.max_errors.is_some()),
    ];
    let script_flags = [
        ("--script", o.script.is_some()),
        ("--command-type", o.command_type.is_some()),
        ("--working-dir", o.working_dir.is_some()),
        ("--timeout", o.timeout_s.is_some()),
    ];
    let package_flags = [("--version", o.version.is_some()), ("--action", o.action.is_some())];

    let mut params = Map::new();
    params.insert("invokeType".into(), json!("rollback"));
    params.insert("scalingGroupId".into(), json!(group_id));
    params.insert("sourceExecutionId".into(), json!(source.id));
    insert_batching(&mut params, batching);
    match kind {
        Kind::ImageUpdate => {
            misplaced(&script_flags)?;
            misplaced(&package_flags)?;
            insert_some(&mut params, "sourceImageId", o.image_id.as_ref().map(|v| json!(v)));
            insert_some(&mut params, "scalingConfigurationId", o.configuration_id.as_ref().map(|v| json!(v)));
            insert_some(&mut params, "maxErrors", o.max_errors.map(|v| json!(v)));
        }
        Kind::ScriptExecution => {
            misplaced(&image_flags)?;
            misplaced(&package_flags)?;
            if o.script.is_none() {
                refuse_given(&script_flags[1..], "a rollback without a new script (give --script or --script-file)")?;
            }
            if let Some(script) = &o.script {
                // A new script keeps the source's type unless told otherwise: the server would
                // otherwise assume RunShellScript.
                let command_type = o
                    .command_type
                    .map(|t| t.as_str().to_string())
                    .or_else(|| source.param_str("commandType"))
                    .unwrap_or_else(|| CommandType::RunShellScript.as_str().to_string());
                params.insert("commandType".into(), json!(command_type));
                params.insert("rollbackScript".into(), json!(script));
                insert_some(&mut params, "workingDir", o.working_dir.as_ref().map(|v| json!(v)));
                insert_some(&mut params, "timeout", o.timeout_s.map(|v| json!(v)));
            }
        }
        Kind::PackageInstall => {
            misplaced(&image_flags)?;
            misplaced(&script_flags)?;
            let name = source
                .param_str("packageName")
                .ok_or_else(|| UsageError::new(format!("{} records no packageName", source.id)))?;
            params.insert("packageName".into(), json!(name));
            insert_some(&mut params, "packageVersion", o.version.as_ref().map(|v| json!(v)));
            insert_some(&mut params, "action", o.action.map(|v| json!(v.as_str())));
        }
        Kind::ContainerGroupUpdate => {
            misplaced(&image_flags)?;
            misplaced(&script_flags)?;
            misplaced(&package_flags)?;
        }
    }
    for (key, value) in extra {
        params.insert(key.clone(), value.clone());
    }
    Ok((kind.template_name(), Value::Object(params)))
}

fn read_text_file(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

/// Refuses the first of `flags` that was given: it belongs to another kind of update.
fn refuse_given(flags: &[(&str, bool)], kind: &str) -> Result<(), UsageError> {
    match flags.iter().find(|(_, given)| *given) {
        Some((flag, _)) => Err(UsageError::new(format!("{flag} does not apply to {kind}"))),
        None => Ok(()),
    }
}

impl StartArgs {
    /// The change given, with script files read. Options of another kind of update are
    /// refused.
    pub(crate) fn change(&self) -> anyhow::Result<ChangeSpec> {
        let image_flags = [
            ("--rollback-image", self.rollback_image.is_some()),
            ("--configuration", self.configuration.is_some()),
            ("--max-errors", self.max_errors.is_some()),
        ];
        let script_flags = [
            ("--rollback-script", self.rollback_script.is_some()),
            ("--rollback-script-file", self.rollback_script_file.is_some()),
            ("--command-type", self.command_type.is_some()),
            ("--working-dir", self.working_dir.is_some()),
            ("--timeout", self.timeout.is_some()),
        ];
        let package_flags = [("--version", self.version.is_some()), ("--action", self.action.is_some())];
        let container_flags = [
            ("--update-type", self.update_type.is_some()),
            ("--rollback-containers", self.rollback_containers.is_some()),
        ];
        if self.image.is_some() {
            refuse_given(&script_flags, "an image update (--image)")?;
            refuse_given(&package_flags, "an image update (--image)")?;
            refuse_given(&container_flags, "an image update (--image)")?;
        } else if self.package.is_some() {
            refuse_given(&image_flags, "a package update (--package)")?;
            refuse_given(&script_flags, "a package update (--package)")?;
            refuse_given(&container_flags, "a package update (--package)")?;
            if self.version.is_none() {
                return Err(UsageError::new("--package needs --version VERSION").into());
            }
        } else if self.containers.is_some() || self.containers_file.is_some() {
            let image_only = [
                ("--rollback-image", self.rollback_image.is_some()),
                ("--configuration", self.configuration.is_some()),
            ];
            refuse_given(&image_only, "a container group update (--containers)")?;
            refuse_given(&script_flags, "a container group update (--containers)")?;
            refuse_given(&package_flags, "a container group update (--containers)")?;
        } else {
            refuse_given(&image_flags, "a script update (--script)")?;
            refuse_given(&package_flags, "a script update (--script)")?;
            refuse_given(&container_flags, "a script update (--script)")?;
        }
        if let Some(image_id) = &self.image {
            return Ok(ChangeSpec::Image {
                image_id: image_id.clone(),
                rollback_image_id: self.rollback_image.clone(),
                configuration_id: self.configuration.clone(),
                max_errors: self.max_errors,
            });
        }
        if let (Some(name), Some(version)) = (&self.package, &self.version) {
            return Ok(ChangeSpec::Package {
                name: name.clone(),
                version: version.clone(),
                action: self.action.unwrap_or(PackageAction::Install),
            });
        }
        let containers = match (&self.containers, &self.containers_file) {
            (Some(list), _) => Some(list.clone()),
            (None, Some(path)) => Some(
                parse_json_list(&read_text_file(path, "containers file")?)
                    .map_err(|error| UsageError::new(format!("{}: {error}", path.display())))?,
            ),
            (None, None) => None,
        };
        if let Some(containers) = containers {
            return Ok(ChangeSpec::Containers {
                update_type: self.update_type,
                containers,
                rollback_containers: self.rollback_containers.clone(),
                max_errors: self.max_errors,
            });
        }
        let script = match (&self.script, &self.script_file) {
            (Some(script), _) => script.clone(),
            (None, Some(path)) => read_text_file(path, "script file")?,
            (None, None) => {
                return Err(UsageError::new(
                    "give one of --image, --script, --script-file, --package, --containers or --containers-file",
                )
                .into())
            }
        };
        let rollback_script = match (&self.rollback_script, &self.rollback_script_file) {
            (Some(script), _) => Some(script.clone()),
            (None, Some(path)) => Some(read_text_file(path, "rollback script file")?),
            (None, None) => None,
        };
        Ok(ChangeSpec::Script {
            command_type: self.command_type.unwrap_or(CommandType::RunShellScript),
            script,
            rollback_script,
            working_dir: self.working_dir.clone(),
            timeout_s: self.timeout,
        })
    }
}

impl RollbackArgs {
    fn overrides(&self) -> anyhow::Result<RollbackOverrides> {
        let script = match (&self.script, &self.script_file) {
            (Some(script), _) => Some(script.clone()),
            (None, Some(path)) => Some(read_text_file(path, "script file")?),
            (None, None) => None,
        };
        Ok(RollbackOverrides {
            image_id: self.image.clone(),
            configuration_id: self.configuration.clone(),
            max_errors: self.max_errors,
            script,
            command_type: self.command_type,
            working_dir: self.working_dir.clone(),
            timeout_s: self.timeout,
            version: self.version.clone(),
            action: self.action,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Executions as ListExecutions returns them.

/// The instance counts of a task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub total: u64,
    pub success: u64,
    pub running: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub waiting: u64,
    pub queued: u64,
}

/// The fields of an execution (a task, or one instance's child) that the commands show. Read
/// leniently: `Parameters` and `Outputs` may be objects or JSON text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutionView {
    pub id: String,
    pub template_name: String,
    pub status: String,
    pub waiting_status: String,
    pub status_message: String,
    pub parent_id: String,
    pub parameters: Map<String, Value>,
    pub counters: Counters,
    pub outputs: Map<String, Value>,
    pub create_date: String,
    pub start_date: String,
    pub end_date: String,
}

fn text(value: &Value, name: &str) -> String {
    match value.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(number) => number.as_u64().or_else(|| number.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// An object given as an object or as JSON text.
fn object(value: Option<&Value>) -> Map<String, Value> {
    match value {
        Some(Value::Object(map)) => map.clone(),
        Some(Value::String(text)) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

impl ExecutionView {
    pub fn from_json(value: &Value) -> ExecutionView {
        let counters = value.get("Counters");
        let count = |name: &str| number(counters.and_then(|c| c.get(name))).unwrap_or(0);
        ExecutionView {
            id: text(value, "ExecutionId"),
            template_name: text(value, "TemplateName"),
            status: text(value, "Status"),
            waiting_status: text(value, "WaitingStatus"),
            status_message: text(value, "StatusMessage"),
            parent_id: text(value, "ParentExecutionId"),
            parameters: object(value.get("Parameters")),
            counters: Counters {
                total: count("Total"),
                success: count("Success"),
                running: count("Running"),
                failed: count("Failed"),
                cancelled: count("Cancelled"),
                waiting: count("Waiting"),
                queued: count("Queued"),
            },
            outputs: object(value.get("Outputs")),
            create_date: text(value, "CreateDate"),
            start_date: text(value, "StartDate"),
            end_date: text(value, "EndDate"),
        }
    }

    /// A parameter as text (numbers and lists as JSON); `None` when absent or empty.
    pub fn param_str(&self, name: &str) -> Option<String> {
        match self.parameters.get(name)? {
            Value::String(text) if text.is_empty() => None,
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    fn output_str(&self, name: &str) -> Option<String> {
        match self.outputs.get(name)? {
            Value::String(text) if text.is_empty() => None,
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// `Status`, with `(WaitingStatus)` when Waiting.
    pub fn status_label(&self) -> String {
        if self.status == "Waiting" && !self.waiting_status.is_empty() {
            format!("Waiting ({})", self.waiting_status)
        } else {
            self.status.clone()
        }
    }

    /// The current batch and the number of batches, from `Outputs`.
    pub fn batches(&self) -> Option<(u64, u64)> {
        let count = number(self.outputs.get("batchCount"))?;
        let current = number(self.outputs.get("currentBatch")).unwrap_or(0);
        Some((current, count))
    }

    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "Success" | "Failed" | "Cancelled")
    }

    /// Instances finished either way: the progress bar's position.
    pub fn n_done(&self) -> u64 {
        self.counters.success + self.counters.failed
    }

    /// `batch k of n · done d · failed f · Status`.
    pub fn progress_line(&self) -> String {
        let batch = match self.batches() {
            Some((current, count)) => format!("batch {current} of {count}"),
            None => "batch -".to_string(),
        };
        format!("{batch} · done {} · failed {} · {}", self.n_done(), self.counters.failed, self.status_label())
    }
}

/// The short name of a rolling-update template: image, script, package or container.
pub fn kind_short(template_name: &str) -> &str {
    match Kind::from_template_name(template_name) {
        Some(Kind::ImageUpdate) => "image",
        Some(Kind::ScriptExecution) => "script",
        Some(Kind::PackageInstall) => "package",
        Some(Kind::ContainerGroupUpdate) => "container",
        None => template_name,
    }
}

// ---------------------------------------------------------------------------------------
// Rendering.

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
pub fn render_task_table(tasks: &[ExecutionView]) -> String {
    let headers =
        ["EXECUTION", "KIND", "INVOKE", "GROUP", "STATUS", "BATCHES", "SUCCESS", "FAILED", "TOTAL", "CREATED"];
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|task| {
            vec![
                task.id.clone(),
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
pub fn render_instance_table(children: &[ExecutionView]) -> String {
    let headers = ["INSTANCE", "CHILD EXECUTION", "BATCH", "STATUS", "STEP", "EXIT", "MESSAGE"];
    let rows: Vec<Vec<String>> = children
        .iter()
        .map(|child| {
            let message = if child.status_message.is_empty() {
                child.output_str("error").unwrap_or_default()
            } else {
                child.status_message.clone()
            };
            vec![
                or_dash(child.param_str("instanceId").unwrap_or_default()),
                child.id.clone(),
                or_dash(child.param_str("batch").unwrap_or_default()),
                child.status.clone(),
                // A queued instance has not reached any step yet.
                if child.status == "Queued" {
                    "-".to_string()
                } else {
                    or_dash(child.output_str("step").unwrap_or_default())
                },
                or_dash(child.output_str("exitCode").unwrap_or_default()),
                or_dash(one_line(&message, MAX_MESSAGE_CHARS)),
            ]
        })
        .collect();
    render_table(&headers, &rows)
}

/// What the task changes, in a few words.
fn describe_change(task: &ExecutionView) -> String {
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
pub fn render_task_details(task: &ExecutionView) -> String {
    let mut lines: Vec<(&str, String)> = vec![
        ("Execution", task.id.clone()),
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
pub fn render_script_outputs(children: &[ExecutionView]) -> String {
    let mut out = String::new();
    for child in children {
        let instance = child.param_str("instanceId").unwrap_or_else(|| child.id.clone());
        let mut header = format!("=== {instance} · {} · {}", child.id, child.status);
        if let Some(code) = child.output_str("exitCode") {
            header.push_str(&format!(" · exit {code}"));
        }
        if let Some(attempt) = child.output_str("attempt") {
            header.push_str(&format!(" · attempt {attempt}"));
        }
        out.push_str(&header);
        out.push_str(" ===\n");
        match child.output_str("output") {
            Some(output) => {
                out.push_str(&output);
                if !output.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str("(no output)\n"),
        }
        if child.outputs.get("truncated").and_then(Value::as_bool) == Some(true) {
            out.push_str("(output truncated)\n");
        }
        if let Some(error) = child.output_str("error") {
            out.push_str(&format!("error: {error}\n"));
        }
    }
    out
}

/// What to do next about a task that waits or failed, or nothing.
pub fn next_steps(task: &ExecutionView) -> Option<String> {
    let id = &task.id;
    match (task.status.as_str(), task.waiting_status.as_str()) {
        ("Waiting", "BatchPaused") => Some(format!(
            "Paused between batches. Continue: rollscale ru continue {id}   Roll back: rollscale ru rollback {id}"
        )),
        ("Waiting", _) => Some(format!(
            "Failed instances await a decision (see rollscale ru show {id}): \
             rollscale ru retry|skip|cancel-instance {id} INSTANCE_ID, or rollscale ru cancel {id}"
        )),
        ("Failed", _) => Some(format!("See rollscale ru show {id}; roll back with rollscale ru rollback {id}")),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Commands.

fn connect() -> anyhow::Result<Client> {
    Client::from_profile(&crate::profile::load()?)
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The execution `id` as ListExecutions returns it.
async fn fetch_execution(client: &Client, id: &str) -> Result<Value, ApiError> {
    let reply = client.call(OOS_VERSION, "ListExecutions", vec![("ExecutionId".into(), id.into())]).await?;
    reply
        .get("Executions")
        .and_then(Value::as_array)
        .and_then(|items| items.iter().find(|item| item.get("ExecutionId").and_then(Value::as_str) == Some(id)))
        .cloned()
        .ok_or_else(|| ApiError {
            http_status: None,
            code: rollscale_core::Code::EntityNotExistsExecution.as_str().into(),
            message: format!("the execution {id} does not exist"),
            request_id: text(&reply, "RequestId"),
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
        let page = reply.get("Executions").and_then(Value::as_array).cloned().unwrap_or_default();
        let n_page = page.len();
        for item in page {
            if keep(&item) {
                items.push(item);
                if items.len() >= limit {
                    return Ok(items);
                }
            }
        }
        token = text(&reply, "NextToken");
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
    reply
        .pointer("/Execution/ExecutionId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the server's StartExecution reply has no Execution.ExecutionId: {reply}"))
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
            let source = ExecutionView::from_json(&fetch_execution(&client, &rollback.execution).await?);
            let (template, parameters) =
                rollback_parameters(&source, &overrides, &rollback.batching, &rollback.params)?;
            let reply = start_execution(&client, template, &parameters).await?;
            let what = format!("the rollback of {}", source.id);
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
                let view = ExecutionView::from_json(item);
                view.parent_id.is_empty()
                    && Kind::from_template_name(&view.template_name).is_some()
                    && group.as_deref().is_none_or(|g| view.param_str("scalingGroupId").as_deref() == Some(g))
            })
            .await?;
            match output {
                OutputFormat::Json => print_json(&json!({ "Executions": items }))?,
                OutputFormat::Table if items.is_empty() => outln!("No rolling updates."),
                OutputFormat::Table => {
                    let views: Vec<ExecutionView> = items.iter().map(ExecutionView::from_json).collect();
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
                item.get("ParentExecutionId").and_then(Value::as_str) == Some(show.execution.as_str())
            })
            .await?;
            sort_children(&mut children);
            match output {
                OutputFormat::Json => print_json(&json!({ "Execution": task_json, "Instances": children }))?,
                OutputFormat::Table => {
                    let task = ExecutionView::from_json(&task_json);
                    let views: Vec<ExecutionView> = children.iter().map(ExecutionView::from_json).collect();
                    out!("{}", render_task_details(&task));
                    outln!();
                    if views.is_empty() {
                        outln!("No instances.");
                    } else {
                        out!("{}", render_instance_table(&views));
                    }
                    let ran = |v: &&ExecutionView| !v.outputs.is_empty() && v.status != "Queued";
                    let with_output: Vec<ExecutionView> = views.iter().filter(ran).cloned().collect();
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
        let params = object(item.get("Parameters"));
        (number(params.get("batch")).unwrap_or(u64::MAX), number(params.get("position")).unwrap_or(u64::MAX))
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

/// The exit code for a task's final (or waiting) status.
pub fn exit_code(status: &str) -> u8 {
    match status {
        "Success" => EXIT_OK,
        "Waiting" => EXIT_WAITING,
        _ => EXIT_FAILED,
    }
}

/// Polls the task every [`POLL_INTERVAL`] until it is final or Waiting, with a progress bar on
/// a terminal and one line per change otherwise. Waiting counts only once the task has been
/// seen doing something else, or after `waiting_grace`.
async fn wait_for(client: &Client, id: &str, output: OutputFormat, waiting_grace: Duration) -> anyhow::Result<u8> {
    let started = Instant::now();
    let interactive = std::io::stderr().is_terminal() && output == OutputFormat::Table;
    let bar = if interactive {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} {msg}")?
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    } else {
        None
    };
    let mut last_line = String::new();
    let mut unreachable_since: Option<Instant> = None;
    let mut seen_not_waiting = false;
    loop {
        let value = match fetch_execution(client, id).await {
            Ok(value) => {
                unreachable_since = None;
                value
            }
            Err(error) if error.is_transient() => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > UNREACHABLE_GRACE {
                    if let Some(bar) = &bar {
                        bar.finish_and_clear();
                    }
                    return Err(error.into());
                }
                let note = format!("server unreachable, retrying ({})", error.code);
                match &bar {
                    Some(bar) => bar.set_message(note.clone()),
                    None if last_line != note => eprintln!("{id}: {note}"),
                    None => {}
                }
                last_line = note;
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
            Err(error) => {
                if let Some(bar) = &bar {
                    bar.finish_and_clear();
                }
                return Err(error.into());
            }
        };
        let task = ExecutionView::from_json(&value);
        if task.status != "Waiting" {
            seen_not_waiting = true;
        }
        let waiting_counts = task.status == "Waiting" && (seen_not_waiting || started.elapsed() >= waiting_grace);
        let done = task.is_final() || waiting_counts;
        let line = task.progress_line();
        match &bar {
            Some(bar) => {
                bar.set_length(task.counters.total);
                bar.set_position(task.n_done());
                bar.set_message(line.clone());
            }
            // The final line goes to stdout below; do not say it twice.
            None if line != last_line && !(done && output == OutputFormat::Table) => {
                eprintln!("{id}: {line}")
            }
            None => {}
        }
        last_line = line;
        if done {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            match output {
                OutputFormat::Json => print_json(&value)?,
                OutputFormat::Table => {
                    outln!("{id}: {}", task.progress_line());
                    if !task.status_message.is_empty() {
                        eprintln!("{}", task.status_message);
                    }
                    if let Some(hint) = next_steps(&task) {
                        eprintln!("{hint}");
                    }
                }
            }
            return Ok(exit_code(&task.status));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batching(batches: Option<u32>, pause: Option<BatchPauseOption>) -> BatchArgs {
        BatchArgs { batches, pause }
    }

    #[test]
    fn image_start_parameters() {
        let change = ChangeSpec::Image {
            image_id: "aliyun_2_1903_x64_20G_alibase_20200529.vhd".into(),
            rollback_image_id: Some("centos_7_8_x64_20G_alibase_20200717.vhd".into()),
            configuration_id: Some("asc-bp1bx8mzur534edp".into()),
            max_errors: Some(1),
        };
        let (template, params) = start_parameters(
            "asg-bp18p2yfxow2dloq",
            &change,
            &batching(Some(2), Some(BatchPauseOption::Automatic)),
            &[],
        );
        assert_eq!(template, "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup");
        let text = params.to_string();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            json!({
                "invokeType": "invoke",
                "scalingGroupId": "asg-bp18p2yfxow2dloq",
                "scalingConfigurationId": "asc-bp1bx8mzur534edp",
                "imageId": "aliyun_2_1903_x64_20G_alibase_20200529.vhd",
                "sourceImageId": "centos_7_8_x64_20G_alibase_20200717.vhd",
                "maxErrors": 1,
                "batchNumber": 2,
                "batchPauseOption": "Automatic"
            })
        );
        // The server's own parser accepts it.
        rollscale_core::params::parse_start(template, &parsed).unwrap();
    }

    #[test]
    fn script_start_parameters() {
        let change = ChangeSpec::Script {
            command_type: CommandType::RunShellScript,
            script: "df -h\nifconfig".into(),
            rollback_script: Some("echo back".into()),
            working_dir: Some("/tmp".into()),
            timeout_s: Some(30),
        };
        let extra = vec![("enterProcess".to_string(), json!(["ScaleIn", "ScaleOut"]))];
        let (template, params) =
            start_parameters("asg-1", &change, &batching(None, Some(BatchPauseOption::FirstBatchPause)), &extra);
        assert_eq!(template, "ACS-ESS-RollingUpdateByRunCommandInScalingGroup");
        let parsed: Value = serde_json::from_str(&params.to_string()).unwrap();
        assert_eq!(
            parsed,
            json!({
                "invokeType": "invoke",
                "scalingGroupId": "asg-1",
                "commandType": "RunShellScript",
                "invokeScript": "df -h\nifconfig",
                "rollbackScript": "echo back",
                "workingDir": "/tmp",
                "timeout": 30,
                "batchPauseOption": "FirstBatchPause",
                "enterProcess": ["ScaleIn", "ScaleOut"]
            })
        );
        rollscale_core::params::parse_start(template, &parsed).unwrap();
    }

    #[test]
    fn package_start_parameters() {
        let change =
            ChangeSpec::Package { name: "wordpress".into(), version: "v4".into(), action: PackageAction::Install };
        let (template, params) = start_parameters("asg-1", &change, &batching(Some(2), None), &[]);
        assert_eq!(template, "ACS-ESS-RollingUpdateByConfigureOOSPackage");
        let parsed: Value = serde_json::from_str(&params.to_string()).unwrap();
        assert_eq!(
            parsed,
            json!({
                "invokeType": "invoke",
                "scalingGroupId": "asg-1",
                "packageName": "wordpress",
                "packageVersion": "v4",
                "action": "install",
                "batchNumber": 2
            })
        );
        rollscale_core::params::parse_start(template, &parsed).unwrap();
    }

    #[test]
    fn container_group_start_parameters() {
        let containers = json!([{"name": "app", "image": "localhost/app:v2", "port": 8080}]);
        let change = ChangeSpec::Containers {
            update_type: Some(ContainerUpdateType::IncrementalUpdate),
            containers: containers.clone(),
            rollback_containers: Some(json!([{"name": "app", "image": "localhost/app:v1"}])),
            max_errors: Some(1),
        };
        let (template, params) = start_parameters("asg-1", &change, &batching(Some(3), None), &[]);
        assert_eq!(template, "ACS-ESS-RollingUpdateByUpdateContainerGroup");
        assert_eq!(params["updateType"], "IncrementalUpdate");
        assert_eq!(params["containers"], containers);
        assert_eq!(params["rollbackContainers"][0]["image"], "localhost/app:v1");
        assert_eq!(params["maxErrors"], 1);
        let request = rollscale_core::params::parse_start(template, &params).unwrap();
        assert_eq!(request.kind, Kind::ContainerGroupUpdate);
        assert!(parse_json_list("{\"name\": \"app\"}").is_err(), "one container is a list of one");
        assert!(parse_json_list("[").is_err());
    }

    fn source(template: &str, parameters: Value) -> ExecutionView {
        ExecutionView::from_json(&json!({
            "ExecutionId": "exec-src",
            "TemplateName": template,
            "ParentExecutionId": "",
            "Status": "Success",
            "Parameters": parameters,
        }))
    }

    #[test]
    fn rollback_parameters_by_kind() {
        let image = source(
            "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup",
            json!({"invokeType": "invoke", "scalingGroupId": "asg-1", "imageId": "new", "sourceImageId": "old"}),
        );
        let overrides = RollbackOverrides { image_id: Some("older".into()), ..Default::default() };
        let (template, params) = rollback_parameters(&image, &overrides, &batching(Some(2), None), &[]).unwrap();
        assert_eq!(template, "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup");
        assert_eq!(
            params,
            json!({"invokeType": "rollback", "scalingGroupId": "asg-1", "sourceExecutionId": "exec-src",
                   "sourceImageId": "older", "batchNumber": 2})
        );
        rollscale_core::params::parse_start(template, &params).unwrap();

        let script = source(
            "ACS-ESS-RollingUpdateByRunCommandInScalingGroup",
            json!({"invokeType": "invoke", "scalingGroupId": "asg-1", "commandType": "RunPowerShellScript", "invokeScript": "x"}),
        );
        let (_, params) =
            rollback_parameters(&script, &RollbackOverrides::default(), &BatchArgs::default(), &[]).unwrap();
        assert_eq!(
            params,
            json!({"invokeType": "rollback", "scalingGroupId": "asg-1", "sourceExecutionId": "exec-src"})
        );
        let overrides = RollbackOverrides { script: Some("undo".into()), ..Default::default() };
        let (_, params) = rollback_parameters(&script, &overrides, &BatchArgs::default(), &[]).unwrap();
        assert_eq!(params["rollbackScript"], "undo");
        assert_eq!(params["commandType"], "RunPowerShellScript", "the source's command type is kept");

        // The package name comes from the source; the version is optional.
        let package = source(
            "ACS-ESS-RollingUpdateByConfigureOOSPackage",
            json!({"invokeType": "invoke", "scalingGroupId": "asg-1", "packageName": "wordpress", "packageVersion": "v4"}),
        );
        let overrides = RollbackOverrides { version: Some("v3".into()), ..Default::default() };
        let (template, params) =
            rollback_parameters(&package, &overrides, &batching(None, Some(BatchPauseOption::EveryBatchPause)), &[])
                .unwrap();
        assert_eq!(template, "ACS-ESS-RollingUpdateByConfigureOOSPackage");
        assert_eq!(
            params,
            json!({"invokeType": "rollback", "scalingGroupId": "asg-1", "sourceExecutionId": "exec-src",
                   "packageName": "wordpress", "packageVersion": "v3", "batchPauseOption": "EveryBatchPause"})
        );
        rollscale_core::params::parse_start(template, &params).unwrap();

        // Script options without a new script have nothing to apply to.
        let lonely = RollbackOverrides { command_type: Some(CommandType::RunBatScript), ..Default::default() };
        let error = rollback_parameters(&script, &lonely, &BatchArgs::default(), &[]).unwrap_err();
        assert!(error.to_string().contains("--command-type"), "{error}");

        // A flag of another kind is a usage error.
        let wrong = RollbackOverrides { image_id: Some("x".into()), ..Default::default() };
        let error = rollback_parameters(&package, &wrong, &BatchArgs::default(), &[]).unwrap_err();
        assert!(error.to_string().contains("--image does not apply"), "{error}");
    }

    #[test]
    fn rollback_of_a_child_execution_is_refused() {
        let mut child = source("ACS-ESS-RollingUpdateByConfigureOOSPackage", json!({"instanceId": "i-1"}));
        child.parent_id = "exec-parent".into();
        let error = rollback_parameters(&child, &RollbackOverrides::default(), &BatchArgs::default(), &[]).unwrap_err();
        assert!(error.to_string().contains("exec-parent"), "{error}");
    }

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
        let views: Vec<ExecutionView> =
            reply["Executions"].as_array().unwrap().iter().map(ExecutionView::from_json).collect();
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
        let children: Vec<ExecutionView> = [
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
        .map(ExecutionView::from_json)
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
        let task = ExecutionView::from_json(&reply["Executions"][0]);
        assert_eq!(task.progress_line(), "batch 1 of 2 · done 2 · failed 0 · Waiting (BatchPaused)");
        let details = render_task_details(&task);
        assert!(details.contains("Status      Waiting (BatchPaused)\n"), "{details}");
        assert!(details.contains("Batches     1 of 2 (pause: Automatic)\n"), "{details}");
        assert!(next_steps(&task).unwrap().contains("rollscale ru continue exec-d880c998ac4f4f968b"));
        assert_eq!(exit_code("Success"), 0);
        assert_eq!(exit_code("Waiting"), 3);
        assert_eq!(exit_code("Failed"), 4);
        assert_eq!(exit_code("Cancelled"), 4);
    }

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

    #[test]
    fn argument_value_parsers() {
        assert_eq!(parse_pause("first-batch-pause"), Ok(BatchPauseOption::FirstBatchPause));
        assert_eq!(parse_pause("EveryBatchPause"), Ok(BatchPauseOption::EveryBatchPause));
        assert!(parse_pause("sometimes").unwrap_err().contains("Automatic"));
        assert_eq!(parse_package_action("UNINSTALL"), Ok(PackageAction::Uninstall));
        assert_eq!(parse_param("timeout=30"), Ok(("timeout".into(), json!(30))));
        assert_eq!(parse_param("workingDir=/tmp"), Ok(("workingDir".into(), json!("/tmp"))));
        assert_eq!(parse_param("OOSAssumeRole="), Ok(("OOSAssumeRole".into(), json!(""))));
        assert!(parse_param("novalue").is_err());
        assert!(parse_group_id("asc-1").is_err());
        assert!(parse_instance_ref("exec-1").is_ok());
        assert!(parse_instance_ref("i-1").is_ok());
        assert!(parse_execution_id("i-1").is_err());
    }
}
