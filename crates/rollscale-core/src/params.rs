//! The rolling-update templates and their parameters: names, types, defaults and checks.
//!
//! `parse_start` reads the `Parameters` JSON of `StartExecution` for one template into a
//! [`StartRequest`]; `resolve` fills a rollback's defaults from its source task and yields the
//! [`RollingUpdateSpec`] that a task runs by (R3, R12).

use crate::domain::{wire_enum, ContainerSpec, LifecycleState, Process};
use crate::error::CoreError;
use crate::ids::{ExecutionId, ScalingConfigurationId, ScalingGroupId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

wire_enum!(
    /// What a rolling update changes on each instance.
    Kind { ImageUpdate, ScriptExecution, PackageInstall, ContainerGroupUpdate }
);

impl Kind {
    pub fn template_name(self) -> &'static str {
        match self {
            Kind::ImageUpdate => "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup",
            Kind::ScriptExecution => "ACS-ESS-RollingUpdateByRunCommandInScalingGroup",
            Kind::PackageInstall => "ACS-ESS-RollingUpdateByConfigureOOSPackage",
            Kind::ContainerGroupUpdate => "ACS-ESS-RollingUpdateByUpdateContainerGroup",
        }
    }

    pub fn from_template_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|kind| kind.template_name() == name)
    }

    /// Whether `maxErrors` may tolerate failures (R7: image updates; container groups too).
    pub fn tolerates_errors(self) -> bool {
        matches!(self, Kind::ImageUpdate | Kind::ContainerGroupUpdate)
    }

    /// Whether an instance must pass its health check after the change before leaving Standby.
    pub fn health_gated(self) -> bool {
        matches!(self, Kind::ImageUpdate | Kind::ContainerGroupUpdate)
    }

    /// The parameters this template accepts besides the common ones.
    fn own_parameters(self) -> &'static [&'static str] {
        match self {
            Kind::ImageUpdate => &["scalingConfigurationId", "imageId", "sourceImageId", "maxErrors"],
            Kind::ScriptExecution => &["commandType", "invokeScript", "rollbackScript", "workingDir", "timeout"],
            Kind::PackageInstall => &["packageName", "packageVersion", "action"],
            Kind::ContainerGroupUpdate => &["updateType", "containers", "rollbackContainers", "maxErrors"],
        }
    }
}

const COMMON_PARAMETERS: &[&str] = &[
    "invokeType",
    "scalingGroupId",
    "enterProcess",
    "exitProcess",
    "lifecycleState",
    "batchNumber",
    "batchPauseOption",
    "sourceExecutionId",
    "OOSAssumeRole",
    "regionId",
];

wire_enum!(
    /// `invokeType`: a new rolling update or the rollback of one.
    InvokeType { Invoke = "invoke", Rollback = "rollback" }
);

wire_enum!(
    /// `batchPauseOption` (R9).
    BatchPauseOption { Automatic, FirstBatchPause, EveryBatchPause }
);

wire_enum!(
    /// `commandType` (R13).
    CommandType { RunShellScript, RunBatScript, RunPowerShellScript }
);

wire_enum!(
    /// `action` of a package task.
    PackageAction { Install = "install", Uninstall = "uninstall" }
);

wire_enum!(
    /// `updateType` of a container-group task: replace the spec, or merge the given fields.
    ContainerUpdateType { RenewUpdate, IncrementalUpdate }
);

impl ContainerUpdateType {
    /// The containers an instance with `current` has after this update gives `given`: exactly
    /// those given (`RenewUpdate`), or the two merged ([`crate::domain::merge_containers`]).
    pub fn apply(self, current: &[ContainerSpec], given: &[ContainerSpec]) -> Vec<ContainerSpec> {
        match self {
            ContainerUpdateType::RenewUpdate => given.to_vec(),
            ContainerUpdateType::IncrementalUpdate => crate::domain::merge_containers(current, given),
        }
    }
}

pub const DEFAULT_BATCH_NUMBER: u32 = 5;
pub const MAX_BATCH_NUMBER: u32 = 100;
pub const DEFAULT_SCRIPT_TIMEOUT_S: u32 = 600;
pub const MAX_SCRIPT_TIMEOUT_S: u32 = 86_400;
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptSpec {
    pub command_type: CommandType,
    pub script: String,
    pub working_dir: Option<String>,
    pub timeout_s: u32,
}

/// The change a task applies to each of its instances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Image { image_id: String },
    Script(ScriptSpec),
    Package { name: String, version: String, action: PackageAction },
    ContainerGroup { update_type: ContainerUpdateType, containers: Vec<ContainerSpec> },
}

impl Change {
    pub fn kind(&self) -> Kind {
        match self {
            Change::Image { .. } => Kind::ImageUpdate,
            Change::Script(_) => Kind::ScriptExecution,
            Change::Package { .. } => Kind::PackageInstall,
            Change::ContainerGroup { .. } => Kind::ContainerGroupUpdate,
        }
    }
}

/// A `StartExecution` of a rolling-update template, checked but not yet resolved against the
/// group or a rollback's source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartRequest {
    pub kind: Kind,
    pub invoke_type: InvokeType,
    pub group_id: ScalingGroupId,
    pub configuration_id: Option<ScalingConfigurationId>,
    /// The change, when the parameters give it (always for an invoke).
    pub change: Option<Change>,
    /// What a later rollback defaults to (`sourceImageId`, `rollbackScript`, …).
    pub rollback_change: Option<Change>,
    /// A rollback's package version override, or an image rollback's `sourceImageId`.
    pub enter_process: Option<Vec<Process>>,
    pub exit_process: Option<Vec<Process>>,
    pub lifecycle_states: Vec<LifecycleState>,
    pub batch_number: u32,
    pub batch_pause: BatchPauseOption,
    pub max_errors: u32,
    pub source_execution_id: Option<ExecutionId>,
    pub assume_role: String,
}

/// Everything a task runs by, fixed at start and stored with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollingUpdateSpec {
    pub kind: Kind,
    pub invoke_type: InvokeType,
    pub group_id: ScalingGroupId,
    pub configuration_id: Option<ScalingConfigurationId>,
    pub change: Change,
    pub rollback_change: Option<Change>,
    pub enter_process: Vec<Process>,
    pub exit_process: Vec<Process>,
    pub lifecycle_states: Vec<LifecycleState>,
    pub batch_number: u32,
    pub batch_pause: BatchPauseOption,
    pub max_errors: u32,
    pub source_execution_id: Option<ExecutionId>,
    pub assume_role: String,
}

/// What `resolve` needs to know of a rollback's source task (R3, R12).
#[derive(Clone, Debug)]
pub struct RollbackSource<'a> {
    pub id: &'a ExecutionId,
    pub spec: &'a RollingUpdateSpec,
    pub is_waiting: bool,
    /// Whether it is the group's most recently finished rolling update.
    pub is_latest_finished: bool,
}

fn field_str<'a>(params: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, CoreError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(CoreError::invalid(name, "must be a string")),
    }
}

/// A string that, when present, is not empty. Empty strings count as absent, as the seeds'
/// commands pass `""` for parameters they do not use.
fn field_text(params: &Map<String, Value>, name: &str) -> Result<Option<String>, CoreError> {
    Ok(field_str(params, name)?.filter(|text| !text.is_empty()).map(str::to_string))
}

fn field_u32(params: &Map<String, Value>, name: &str, min: u32, max: u32) -> Result<Option<u32>, CoreError> {
    let value = match params.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => number.as_u64(),
        Some(Value::String(text)) if text.is_empty() => return Ok(None),
        Some(Value::String(text)) => text.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match value {
        Some(value) if value >= u64::from(min) && value <= u64::from(max) => Ok(Some(value as u32)),
        _ => Err(CoreError::invalid(name, format!("must be an integer from {min} to {max}"))),
    }
}

/// A list of names, given as a JSON list or as one string (a name, a JSON list, or names
/// separated by commas).
fn field_names(params: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, CoreError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.trim().to_string()),
                _ => Err(CoreError::invalid(name, "must be a list of strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Value::String(text)) => {
            let text = text.trim();
            if text.starts_with('[') {
                let parsed: Value =
                    serde_json::from_str(text).map_err(|_| CoreError::invalid(name, "is not a valid JSON list"))?;
                let mut inner = Map::new();
                inner.insert(name.to_string(), parsed);
                return field_names(&inner, name);
            }
            Ok(Some(text.split(',').map(|part| part.trim().to_string()).filter(|p| !p.is_empty()).collect()))
        }
        Some(_) => Err(CoreError::invalid(name, "must be a list of strings")),
    }
}

fn parse_processes(params: &Map<String, Value>, name: &str) -> Result<Option<Vec<Process>>, CoreError> {
    let Some(names) = field_names(params, name)? else { return Ok(None) };
    let mut processes = Vec::new();
    for text in names {
        let process: Process = text.parse().map_err(|_| {
            CoreError::invalid(
                name,
                format!(
                    "unknown scaling process \"{text}\"; valid: ScaleIn, ScaleOut, HealthCheck, AlarmNotification, ScheduledAction"
                ),
            )
        })?;
        if !processes.contains(&process) {
            processes.push(process);
        }
    }
    Ok(Some(processes))
}

fn parse_enum<T: std::str::FromStr>(
    params: &Map<String, Value>,
    name: &str,
    valid: &str,
) -> Result<Option<T>, CoreError> {
    match field_text(params, name)? {
        None => Ok(None),
        Some(text) => text
            .parse::<T>()
            .map(Some)
            .map_err(|_| CoreError::invalid(name, format!("\"{text}\" is not one of {valid}"))),
    }
}

fn parse_containers(params: &Map<String, Value>, name: &str) -> Result<Option<Vec<ContainerSpec>>, CoreError> {
    let value = match params.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => return Ok(None),
        Some(Value::String(text)) => {
            serde_json::from_str::<Value>(text).map_err(|_| CoreError::invalid(name, "is not valid JSON"))?
        }
        Some(other) => other.clone(),
    };
    let containers: Vec<ContainerSpec> = serde_json::from_value(value).map_err(|error| {
        CoreError::invalid(name, format!("must be a list of containers {{name, image, command, env, port}}: {error}"))
    })?;
    if containers.is_empty() {
        return Err(CoreError::invalid(name, "must name at least one container"));
    }
    for container in &containers {
        if container.name.trim().is_empty() {
            return Err(CoreError::invalid(name, "every container needs a name"));
        }
    }
    Ok(Some(containers))
}

fn parse_script(
    params: &Map<String, Value>,
    name: &str,
    command_type: CommandType,
    working_dir: &Option<String>,
    timeout_s: u32,
) -> Result<Option<ScriptSpec>, CoreError> {
    let Some(script) = field_text(params, name)? else { return Ok(None) };
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(CoreError::invalid(name, format!("is longer than {MAX_SCRIPT_BYTES} bytes")));
    }
    Ok(Some(ScriptSpec { command_type, script, working_dir: working_dir.clone(), timeout_s }))
}

/// Reads the `Parameters` of a `StartExecution` for the template `template_name`.
pub fn parse_start(template_name: &str, parameters: &Value) -> Result<StartRequest, CoreError> {
    let kind = Kind::from_template_name(template_name).ok_or_else(|| {
        CoreError::invalid("TemplateName", format!("\"{template_name}\" is not a rolling-update template"))
    })?;
    let Value::Object(params) = parameters else {
        return Err(CoreError::invalid("Parameters", "must be a JSON object"));
    };
    for key in params.keys() {
        if !COMMON_PARAMETERS.contains(&key.as_str()) && !kind.own_parameters().contains(&key.as_str()) {
            return Err(CoreError::invalid(key, format!("is not a parameter of the template {template_name}")));
        }
    }

    let invoke_type: InvokeType = parse_enum(params, "invokeType", "invoke, rollback")?
        .ok_or_else(|| CoreError::MissingParameter("invokeType".into()))?;
    let group_text =
        field_text(params, "scalingGroupId")?.ok_or_else(|| CoreError::MissingParameter("scalingGroupId".into()))?;
    let group_id = ScalingGroupId::parse(&group_text)
        .ok_or_else(|| CoreError::invalid("scalingGroupId", format!("\"{group_text}\" is not a scaling group id")))?;
    let source_execution_id = match field_text(params, "sourceExecutionId")? {
        None => None,
        Some(text) => Some(
            ExecutionId::parse(&text)
                .ok_or_else(|| CoreError::invalid("sourceExecutionId", format!("\"{text}\" is not an execution id")))?,
        ),
    };
    match (invoke_type, &source_execution_id) {
        (InvokeType::Rollback, None) => return Err(CoreError::MissingParameter("sourceExecutionId".into())),
        (InvokeType::Invoke, Some(_)) => {
            return Err(CoreError::invalid("sourceExecutionId", "is only for invokeType rollback"))
        }
        _ => {}
    }

    let lifecycle_states = match field_names(params, "lifecycleState")? {
        None => vec![LifecycleState::InService],
        Some(names) if names.is_empty() => vec![LifecycleState::InService],
        Some(names) => {
            let mut states = Vec::new();
            for text in names {
                let state = match text.as_str() {
                    "InService" => LifecycleState::InService,
                    "Protected" => LifecycleState::Protected,
                    _ => {
                        return Err(CoreError::invalid(
                            "lifecycleState",
                            format!("\"{text}\" is not one of InService, Protected"),
                        ))
                    }
                };
                if !states.contains(&state) {
                    states.push(state);
                }
            }
            states
        }
    };

    let max_errors = field_u32(params, "maxErrors", 0, 100_000)?.unwrap_or(0);
    if max_errors > 0 && !kind.tolerates_errors() {
        return Err(CoreError::invalid("maxErrors", "applies to image updates only"));
    }

    let configuration_id = match field_text(params, "scalingConfigurationId")? {
        None => None,
        Some(text) => Some(ScalingConfigurationId::parse(&text).ok_or_else(|| {
            CoreError::invalid("scalingConfigurationId", format!("\"{text}\" is not a scaling configuration id"))
        })?),
    };

    let (change, rollback_change) = match kind {
        Kind::ImageUpdate => {
            let image = field_text(params, "imageId")?.map(|image_id| Change::Image { image_id });
            let source_image = field_text(params, "sourceImageId")?.map(|image_id| Change::Image { image_id });
            match invoke_type {
                InvokeType::Invoke => {
                    let image = image.ok_or_else(|| CoreError::MissingParameter("imageId".into()))?;
                    (Some(image), source_image)
                }
                // A rollback puts the instances back on `sourceImageId`.
                InvokeType::Rollback => (source_image.or(image), None),
            }
        }
        Kind::ScriptExecution => {
            let command_type = parse_enum(params, "commandType", "RunShellScript, RunBatScript, RunPowerShellScript")?
                .unwrap_or(CommandType::RunShellScript);
            let working_dir = field_text(params, "workingDir")?;
            let timeout_s = field_u32(params, "timeout", 1, MAX_SCRIPT_TIMEOUT_S)?.unwrap_or(DEFAULT_SCRIPT_TIMEOUT_S);
            let invoke = parse_script(params, "invokeScript", command_type, &working_dir, timeout_s)?;
            let rollback = parse_script(params, "rollbackScript", command_type, &working_dir, timeout_s)?;
            match invoke_type {
                InvokeType::Invoke => {
                    let invoke = invoke.ok_or_else(|| CoreError::MissingParameter("invokeScript".into()))?;
                    (Some(Change::Script(invoke)), rollback.map(Change::Script))
                }
                InvokeType::Rollback => (rollback.or(invoke).map(Change::Script), None),
            }
        }
        Kind::PackageInstall => {
            let name =
                field_text(params, "packageName")?.ok_or_else(|| CoreError::MissingParameter("packageName".into()))?;
            let action = parse_enum(params, "action", "install, uninstall")?.unwrap_or(PackageAction::Install);
            let version = field_text(params, "packageVersion")?;
            match (invoke_type, version) {
                (InvokeType::Invoke, None) => return Err(CoreError::MissingParameter("packageVersion".into())),
                (_, Some(version)) => (Some(Change::Package { name, version, action }), None),
                (InvokeType::Rollback, None) => {
                    // The version comes from the source; the name is checked against it.
                    (Some(Change::Package { name, version: String::new(), action }), None)
                }
            }
        }
        Kind::ContainerGroupUpdate => {
            let update_type = parse_enum(params, "updateType", "RenewUpdate, IncrementalUpdate")?
                .unwrap_or(ContainerUpdateType::RenewUpdate);
            let containers = parse_containers(params, "containers")?;
            let rollback = parse_containers(params, "rollbackContainers")?;
            match invoke_type {
                InvokeType::Invoke => {
                    let containers = containers.ok_or_else(|| CoreError::MissingParameter("containers".into()))?;
                    (
                        Some(Change::ContainerGroup { update_type, containers }),
                        // `rollbackContainers` is the whole spec to return to: a rollback renews.
                        rollback.map(|containers| Change::ContainerGroup {
                            update_type: ContainerUpdateType::RenewUpdate,
                            containers,
                        }),
                    )
                }
                InvokeType::Rollback => {
                    (rollback.or(containers).map(|containers| Change::ContainerGroup { update_type, containers }), None)
                }
            }
        }
    };

    Ok(StartRequest {
        kind,
        invoke_type,
        group_id,
        configuration_id,
        change,
        rollback_change,
        enter_process: parse_processes(params, "enterProcess")?,
        exit_process: parse_processes(params, "exitProcess")?,
        lifecycle_states,
        batch_number: field_u32(params, "batchNumber", 1, MAX_BATCH_NUMBER)?.unwrap_or(DEFAULT_BATCH_NUMBER),
        batch_pause: parse_enum(params, "batchPauseOption", "Automatic, FirstBatchPause, EveryBatchPause")?
            .unwrap_or(BatchPauseOption::Automatic),
        max_errors,
        source_execution_id,
        assume_role: field_str(params, "OOSAssumeRole")?.unwrap_or("").to_string(),
    })
}

/// Turns a checked request into the spec the task runs by. A rollback takes its defaults and
/// its processes from `source` (R12) and is refused when the source cannot be rolled back (R3).
pub fn resolve(request: StartRequest, source: Option<RollbackSource<'_>>) -> Result<RollingUpdateSpec, CoreError> {
    let all = Process::ALL.to_vec();
    match request.invoke_type {
        InvokeType::Invoke => {
            let change = request.change.ok_or_else(|| CoreError::MissingParameter("change".into()))?;
            Ok(RollingUpdateSpec {
                kind: request.kind,
                invoke_type: InvokeType::Invoke,
                group_id: request.group_id,
                configuration_id: request.configuration_id,
                change,
                rollback_change: request.rollback_change,
                enter_process: request.enter_process.unwrap_or_else(|| all.clone()),
                exit_process: request.exit_process.unwrap_or(all),
                lifecycle_states: request.lifecycle_states,
                batch_number: request.batch_number,
                batch_pause: request.batch_pause,
                max_errors: request.max_errors,
                source_execution_id: None,
                assume_role: request.assume_role,
            })
        }
        InvokeType::Rollback => {
            let source = source
                .ok_or_else(|| CoreError::InvalidRollbackSource("the execution to roll back does not exist".into()))?;
            let spec = source.spec;
            if spec.invoke_type == InvokeType::Rollback {
                return Err(CoreError::InvalidRollbackSource(format!(
                    "{} is itself a rollback; a rollback cannot be rolled back",
                    source.id
                )));
            }
            if spec.kind != request.kind {
                return Err(CoreError::InvalidRollbackSource(format!(
                    "{} is a {} task; its rollback must use the template {}",
                    source.id,
                    spec.kind,
                    spec.kind.template_name()
                )));
            }
            if spec.group_id != request.group_id {
                return Err(CoreError::InvalidRollbackSource(format!(
                    "{} belongs to the scaling group {}, not {}",
                    source.id, spec.group_id, request.group_id
                )));
            }
            if !source.is_waiting && !source.is_latest_finished {
                return Err(CoreError::InvalidRollbackSource(format!(
                    "{} is neither waiting nor the most recently finished rolling update of {}",
                    source.id, spec.group_id
                )));
            }
            let change = match (request.change, &spec.rollback_change) {
                (Some(Change::Package { name, version, action }), default) => {
                    let Change::Package { name: source_name, .. } = &spec.change else {
                        unreachable!("kinds were checked to match")
                    };
                    if &name != source_name {
                        return Err(CoreError::invalid(
                            "packageName",
                            format!("a rollback keeps the source's package \"{source_name}\""),
                        ));
                    }
                    if version.is_empty() {
                        default.clone().ok_or_else(|| CoreError::MissingParameter("packageVersion".into()))?
                    } else {
                        Change::Package { name, version, action }
                    }
                }
                (Some(change), _) => change,
                (None, Some(default)) => default.clone(),
                (None, None) => {
                    return Err(CoreError::MissingParameter(
                        match request.kind {
                            Kind::ImageUpdate => "sourceImageId",
                            Kind::ScriptExecution => "rollbackScript",
                            Kind::PackageInstall => "packageVersion",
                            Kind::ContainerGroupUpdate => "rollbackContainers",
                        }
                        .into(),
                    ))
                }
            };
            Ok(RollingUpdateSpec {
                kind: request.kind,
                invoke_type: InvokeType::Rollback,
                group_id: request.group_id,
                configuration_id: request.configuration_id.or_else(|| spec.configuration_id.clone()),
                change,
                rollback_change: None,
                enter_process: spec.enter_process.clone(),
                exit_process: spec.exit_process.clone(),
                lifecycle_states: spec.lifecycle_states.clone(),
                batch_number: request.batch_number,
                batch_pause: request.batch_pause,
                max_errors: request.max_errors,
                source_execution_id: Some(source.id.clone()),
                assume_role: request.assume_role,
            })
        }
    }
}
