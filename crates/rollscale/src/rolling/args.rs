//! The command line of `rollscale rolling-update`: the arguments, their value parsers, and the
//! template `Parameters` they make (a start's, a rollback's from its source's). Pure functions,
//! tested without a server.

use super::render::kind_short;
use crate::UsageError;
use anyhow::Context;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use rollscale_client::wire::{BatchPauseOption, CommandType, ContainerUpdateType, Execution, Kind, PackageAction};
use serde_json::{json, Map, Value};
use std::fmt::Display;
use std::path::{Path, PathBuf};

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
    source: &Execution,
    overrides: &RollbackOverrides,
    batching: &BatchArgs,
    extra: &[(String, Value)],
) -> Result<(&'static str, Value), UsageError> {
    let kind = Kind::from_template_name(&source.template_name).ok_or_else(|| {
        UsageError::new(format!(
            "{} ran the template {}, which is not a rolling update",
            source.execution_id, source.template_name
        ))
    })?;
    if !source.parent_execution_id.is_empty() {
        return Err(UsageError::new(format!(
            "{} is the child execution of one instance; roll back its rolling update {}",
            source.execution_id, source.parent_execution_id
        )));
    }
    let group_id = source
        .param_str("scalingGroupId")
        .ok_or_else(|| UsageError::new(format!("{} records no scalingGroupId", source.execution_id)))?;
    let misplaced = |flags: &[(&str, bool)]| -> Result<(), UsageError> {
        match flags.iter().find(|(_, given)| *given) {
            Some((flag, _)) => Err(UsageError::new(format!(
                "{flag} does not apply: {} is a {} rolling update",
                source.execution_id,
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
    params.insert("sourceExecutionId".into(), json!(source.execution_id));
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
                .ok_or_else(|| UsageError::new(format!("{} records no packageName", source.execution_id)))?;
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
    pub(super) fn overrides(&self) -> anyhow::Result<RollbackOverrides> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    fn source(template: &str, parameters: Value) -> Execution {
        Execution::from_json(&json!({
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
        child.parent_execution_id = "exec-parent".into();
        let error = rollback_parameters(&child, &RollbackOverrides::default(), &BatchArgs::default(), &[]).unwrap_err();
        assert!(error.to_string().contains("exec-parent"), "{error}");
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
