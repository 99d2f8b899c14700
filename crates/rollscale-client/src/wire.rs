//! The wire shapes a client reads, described once: the server renders its answers with these
//! types (serde writes them) and clients read the same types back, so the two ends cannot
//! drift apart. An OOS execution (a task, an instance's child, an image update task) as
//! `ListExecutions` and `StartExecution` give it, with the typed `Outputs` and `Parameters`
//! rollscale puts in it; and the replies of those actions.
//!
//! Field names are the official OOS SDK's (`ListExecutionsResponseBodyExecutions`), written as
//! it spells them on the wire (PascalCase). Written, a value has the JSON type the SDKs' models
//! expect (docs/wire.md, "A response"). Read, everything is lenient, as the SDKs read: a field
//! may be missing (its default), a number may come as text, `Parameters` and `Outputs` as an
//! object or as JSON text, and a status this version does not know is kept as its text rather
//! than refused; a reply that is no object at all reads as the default.

pub use rollscale_core::image_task::TEMPLATE_NAME as IMAGE_UPDATE_TEMPLATE;
/// The vocabulary of the templates' parameters, shared with the server.
pub use rollscale_core::params::{BatchPauseOption, CommandType, ContainerUpdateType, Kind, PackageAction};
pub use rollscale_core::task::WaitingStatus;
use rollscale_core::task::{InstanceStatus, Step, TaskStatus};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A text value of the wire with known values: one variant each, and any other text kept in
/// the last variant (empty when absent), so a reader never refuses what a newer server sends.
/// Written as its text; read from any JSON value (a non-string as its JSON text).
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),+ $(,)? } else $other:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this client does not know, as the server sent it (empty when absent).
            $other(String),
        }

        impl $name {
            /// The value for a wire text; any text is taken.
            pub fn parse(text: &str) -> $name {
                match text {
                    $(stringify!($variant) => $name::$variant,)+
                    other => $name::$other(other.to_string()),
                }
            }

            /// The wire text.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                    $name::$other(text) => text,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$other(String::new())
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::wire::lenient::text(deserializer).map(|text| $name::parse(&text))
            }
        }
    };
}

pub mod ram;

text_enum!(
    /// An execution's status: a task's (`Running`, `Waiting`, `Success`, `Failed`, `Cancelled`)
    /// or an instance's child's (`Queued` too).
    ExecutionStatus { Queued, Running, Waiting, Success, Failed, Cancelled } else Other
);

impl ExecutionStatus {
    /// Success, Failed or Cancelled: the execution will not change any more.
    pub fn is_final(&self) -> bool {
        matches!(self, ExecutionStatus::Success | ExecutionStatus::Failed | ExecutionStatus::Cancelled)
    }
}

impl From<TaskStatus> for ExecutionStatus {
    fn from(status: TaskStatus) -> Self {
        ExecutionStatus::parse(status.as_str())
    }
}

impl From<InstanceStatus> for ExecutionStatus {
    /// As clients see it (`InstanceStatus::wire_status`: Skipped shows as Success, an
    /// operator's Cancelled as Failed, Aborted as Cancelled).
    fn from(status: InstanceStatus) -> Self {
        ExecutionStatus::parse(status.wire_status())
    }
}

text_enum!(
    /// `Mode`: how the execution runs (rollscale runs every one `Automatic`).
    ExecutionMode { Automatic, FailurePause, Debug } else Other
);

text_enum!(
    /// `LoopMode`: whether a loop pauses between its batches.
    LoopMode { Automatic, FirstBatchPause, EveryBatchPause } else Other
);

text_enum!(
    /// `SafetyCheck`: whether high-risk actions wait for a confirmation.
    SafetyCheck { Skip, ConfirmEveryHighRiskAction } else Other
);

text_enum!(
    /// `Category`: the kind of template.
    ExecutionCategory { Other, TimerTrigger, EventTrigger, AlarmTrigger } else Unknown
);

text_enum!(
    /// Where a task stands in its plan (`phase` of a task's `Outputs`).
    TaskPhase { Begin, Batch, Finish, Done } else Other
);

text_enum!(
    /// An instance's step (`step` of a child's `Outputs`): the journaled steps (R5) in order.
    InstanceStep { Unprotect, EnterStandby, Drain, Apply, HealthCheck, ExitStandby, Reprotect, Done } else Other
);

impl From<Step> for InstanceStep {
    fn from(step: Step) -> Self {
        InstanceStep::parse(step.as_str())
    }
}

/// An execution's instance counts (`Counters`). A task's count its instances by the status
/// clients see; an image update task's `Total` is its firings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Counters {
    #[serde(deserialize_with = "lenient::count")]
    pub total: u64,
    #[serde(deserialize_with = "lenient::count")]
    pub success: u64,
    #[serde(deserialize_with = "lenient::count")]
    pub running: u64,
    #[serde(deserialize_with = "lenient::count")]
    pub failed: u64,
    #[serde(deserialize_with = "lenient::count")]
    pub cancelled: u64,
    #[serde(deserialize_with = "lenient::count")]
    pub waiting: u64,
    #[serde(deserialize_with = "lenient::count")]
    pub queued: u64,
}

/// A task running now (`CurrentTasks`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CurrentTask {
    #[serde(deserialize_with = "lenient::text")]
    pub task_action: String,
    #[serde(deserialize_with = "lenient::text")]
    pub task_execution_id: String,
    #[serde(deserialize_with = "lenient::text")]
    pub task_name: String,
}

/// An execution's `Parameters`: an object in `ListExecutions`, JSON text in `StartExecution`'s
/// answer (the SDKs' models type them so). Their names are the templates' (core's `params`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parameters {
    pub values: Map<String, Value>,
    /// Written as JSON text rather than as an object; read, whether they came as text.
    pub as_text: bool,
}

impl Parameters {
    /// Parameters written as an object (`ListExecutions`).
    pub fn object(values: Map<String, Value>) -> Parameters {
        Parameters { values, as_text: false }
    }

    /// Parameters written as JSON text (`StartExecution`).
    pub fn text(values: Map<String, Value>) -> Parameters {
        Parameters { values, as_text: true }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }
}

impl Serialize for Parameters {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.as_text {
            let text = serde_json::to_string(&self.values).map_err(serde::ser::Error::custom)?;
            serializer.serialize_str(&text)
        } else {
            self.values.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Parameters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let as_text = value.is_string();
        Ok(Parameters { values: object(Some(&value)), as_text })
    }
}

/// An OOS execution on the wire: a rolling update (a parent), one instance's child execution,
/// or an image update task or firing, as `ListExecutions` lists it and `StartExecution`
/// answers it. `Outputs` is JSON text on the wire; its content is one of [`TaskOutputs`],
/// [`InstanceOutputs`] or [`ImageOutputs`], read with [`Execution::task_outputs`] and its
/// siblings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Execution {
    #[serde(deserialize_with = "lenient::text")]
    pub execution_id: String,
    #[serde(deserialize_with = "lenient::text")]
    pub template_name: String,
    #[serde(deserialize_with = "lenient::text")]
    pub template_id: String,
    #[serde(deserialize_with = "lenient::text")]
    pub template_version: String,
    pub mode: ExecutionMode,
    pub loop_mode: LoopMode,
    pub safety_check: SafetyCheck,
    #[serde(deserialize_with = "lenient::text")]
    pub executed_by: String,
    #[serde(deserialize_with = "lenient::text")]
    pub ram_role: String,
    #[serde(deserialize_with = "lenient::text")]
    pub description: String,
    pub category: ExecutionCategory,
    /// The task of an instance's child, the scheduled task of a firing; "" for a parent.
    #[serde(deserialize_with = "lenient::text")]
    pub parent_execution_id: String,
    #[serde(deserialize_with = "lenient::flag")]
    pub is_parent: bool,
    #[serde(deserialize_with = "lenient::text")]
    pub resource_group_id: String,
    /// `2019-05-16T10:26:14Z`, or "" for none (as are the other dates).
    #[serde(deserialize_with = "lenient::text")]
    pub start_date: String,
    #[serde(deserialize_with = "lenient::text")]
    pub end_date: String,
    #[serde(deserialize_with = "lenient::text")]
    pub create_date: String,
    #[serde(deserialize_with = "lenient::text")]
    pub update_date: String,
    pub status: ExecutionStatus,
    /// Why a `Waiting` task waits; `None` otherwise (or for a reason this client does not
    /// know). Written "" for none.
    #[serde(with = "waiting_status")]
    pub waiting_status: Option<WaitingStatus>,
    #[serde(deserialize_with = "lenient::text")]
    pub status_message: String,
    /// A task's waiting status, a child's error code, a scheduled task's next firing.
    #[serde(deserialize_with = "lenient::text")]
    pub status_reason: String,
    /// JSON text on the wire (read from text or an object).
    #[serde(with = "json_text")]
    pub outputs: Map<String, Value>,
    pub parameters: Parameters,
    #[serde(deserialize_with = "lenient::or_default")]
    pub counters: Counters,
    #[serde(deserialize_with = "lenient::list")]
    pub current_tasks: Vec<CurrentTask>,
    #[serde(deserialize_with = "lenient::object")]
    pub tags: Map<String, Value>,
    #[serde(deserialize_with = "lenient::text")]
    pub targets: String,
}

/// A rolling update's `Outputs`: where it stands in its plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskOutputs {
    pub phase: TaskPhase,
    /// From 1; 0 before the first batch.
    #[serde(deserialize_with = "lenient::count")]
    pub current_batch: u64,
    /// `None` when not given (an execution that is no rolling update's).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_count")]
    pub batch_count: Option<u64>,
    #[serde(deserialize_with = "lenient::list")]
    pub batch_sizes: Vec<u64>,
    #[serde(deserialize_with = "lenient::flag")]
    pub cancel_requested: bool,
    #[serde(deserialize_with = "lenient::flag")]
    pub restore: bool,
}

/// One instance's child execution's `Outputs`: its step, its script's run, what it became.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceOutputs {
    #[serde(deserialize_with = "lenient::text")]
    pub instance_id: String,
    pub step: InstanceStep,
    /// From 1 once started; `None` when not given.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_count")]
    pub attempt: Option<u64>,
    /// The script's exit code; null when none ran.
    #[serde(deserialize_with = "lenient::opt_signed")]
    pub exit_code: Option<i64>,
    #[serde(deserialize_with = "lenient::text")]
    pub output: String,
    #[serde(deserialize_with = "lenient::flag")]
    pub truncated: bool,
    /// The failed step's code; null when none.
    #[serde(deserialize_with = "lenient::opt_text")]
    pub error_code: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub error: Option<String>,
    /// What the instance ran before the change (its image, package version…); null when none.
    #[serde(deserialize_with = "lenient::opt_text")]
    pub before: Option<String>,
    #[serde(deserialize_with = "lenient::flag")]
    pub in_standby: bool,
    #[serde(deserialize_with = "lenient::flag")]
    pub applied: bool,
    #[serde(deserialize_with = "lenient::flag")]
    pub skipped: bool,
    #[serde(deserialize_with = "lenient::flag")]
    pub cancelled: bool,
}

/// An image update task's `Outputs`: the image made (a firing's, once it succeeded; a
/// scheduled task's last).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ImageOutputs {
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient::opt_text")]
    pub image_id: Option<String>,
}

/// One instance's child execution's `Parameters`: its instance and its place in the plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceParameters {
    #[serde(deserialize_with = "lenient::text")]
    pub instance_id: String,
    /// From 1; `None` when not given.
    #[serde(deserialize_with = "lenient::opt_count")]
    pub batch: Option<u64>,
    /// From 0 within the batch; `None` when not given.
    #[serde(deserialize_with = "lenient::opt_count")]
    pub position: Option<u64>,
}

/// A value as the JSON object it is written as (`Outputs`, `Parameters` of a child).
pub fn to_object<T: Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// A typed object read from a JSON object, leniently (the default for what does not fit).
fn from_object<T: DeserializeOwned + Default>(map: &Map<String, Value>) -> T {
    T::deserialize(&Value::Object(map.clone())).unwrap_or_default()
}

/// `StartExecution`'s answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StartExecutionReply {
    #[serde(deserialize_with = "lenient::or_default")]
    pub execution: Execution,
    /// Set by the server for every answer; empty in what a handler makes.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "lenient::text")]
    pub request_id: String,
}

/// `ListExecutions`' answer: a page of executions, read as [`Execution`]s or, for a client
/// that shows the server's JSON as it came, as JSON values (`ListExecutionsReply<Value>`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
#[serde(bound(serialize = "E: Serialize", deserialize = "E: DeserializeOwned + Default"))]
pub struct ListExecutionsReply<E = Execution> {
    #[serde(deserialize_with = "lenient::list")]
    pub executions: Vec<E>,
    /// The next page's token; "" on the last page.
    #[serde(deserialize_with = "lenient::text")]
    pub next_token: String,
    #[serde(deserialize_with = "lenient::count")]
    pub max_results: u64,
    #[serde(deserialize_with = "lenient::count")]
    pub total_count: u64,
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "lenient::text")]
    pub request_id: String,
}

impl StartExecutionReply {
    pub fn from_json(value: &Value) -> StartExecutionReply {
        StartExecutionReply::deserialize(value).unwrap_or_default()
    }
}

impl<E: DeserializeOwned + Default> ListExecutionsReply<E> {
    pub fn from_json(value: &Value) -> ListExecutionsReply<E> {
        ListExecutionsReply::deserialize(value).unwrap_or_default()
    }
}

/// A count given as a number or as text; `None` when absent or not a count.
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

impl Execution {
    /// An execution read leniently from a reply's JSON (the default when it is no object).
    pub fn from_json(value: &Value) -> Execution {
        Execution::deserialize(value).unwrap_or_default()
    }

    /// `Outputs` as a rolling update's.
    pub fn task_outputs(&self) -> TaskOutputs {
        from_object(&self.outputs)
    }

    /// `Outputs` as an instance's child's.
    pub fn instance_outputs(&self) -> InstanceOutputs {
        from_object(&self.outputs)
    }

    /// `Outputs` as an image update task's.
    pub fn image_outputs(&self) -> ImageOutputs {
        from_object(&self.outputs)
    }

    /// `Parameters` as an instance's child's.
    pub fn instance_parameters(&self) -> InstanceParameters {
        from_object(&self.parameters.values)
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

    /// `Status`, with `(WaitingStatus)` when Waiting.
    pub fn status_label(&self) -> String {
        match (&self.status, self.waiting_status) {
            (ExecutionStatus::Waiting, Some(reason)) => format!("Waiting ({reason})"),
            (status, _) => status.to_string(),
        }
    }

    /// The current batch and the number of batches, from `Outputs`.
    pub fn batches(&self) -> Option<(u64, u64)> {
        let outputs = self.task_outputs();
        Some((outputs.current_batch, outputs.batch_count?))
    }

    pub fn is_final(&self) -> bool {
        self.status.is_final()
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

/// `WaitingStatus`: written "" for none; read as `None` when empty or unknown.
mod waiting_status {
    use super::WaitingStatus;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<WaitingStatus>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.map(|w| w.as_str()).unwrap_or(""))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<WaitingStatus>, D::Error> {
        super::lenient::text(deserializer).map(|text| text.parse().ok())
    }
}

/// An object written as JSON text (`Outputs`), read from text or an object.
mod json_text {
    use serde::{Deserializer, Serializer};
    use serde_json::{Map, Value};

    pub fn serialize<S: Serializer>(value: &Map<String, Value>, serializer: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(value).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Map<String, Value>, D::Error> {
        super::lenient::object(deserializer)
    }
}

/// Lenient readers: each takes any JSON value and never fails on it (a value that does not
/// fit reads as the default), so one odd field never loses a whole reply.
mod lenient {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer};
    use serde_json::{Map, Value};

    /// A string as it is, null as "", another value as its JSON text.
    pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::String(text) => text,
            Value::Null => String::new(),
            other => other.to_string(),
        })
    }

    /// A string or another value as text; null as `None`.
    pub fn opt_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::String(text) => Some(text),
            Value::Null => None,
            other => Some(other.to_string()),
        })
    }

    /// A count as a number or text; 0 when it is none.
    pub fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        opt_count(deserializer).map(Option::unwrap_or_default)
    }

    pub fn opt_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
        Ok(super::number(Some(&Value::deserialize(deserializer)?)))
    }

    /// A signed whole number as a number or text.
    pub fn opt_signed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Number(number) => number.as_i64().or_else(|| number.as_f64().map(|f| f as i64)),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        })
    }

    /// A boolean, or its text in any case; false otherwise.
    pub fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Bool(flag) => flag,
            Value::String(text) => text.trim().eq_ignore_ascii_case("true"),
            _ => false,
        })
    }

    /// An object, or JSON text of one; empty otherwise.
    pub fn object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Map<String, Value>, D::Error> {
        Ok(super::object(Some(&Value::deserialize(deserializer)?)))
    }

    /// A list (the items that fit); empty when it is none.
    pub fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(deserializer: D) -> Result<Vec<T>, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Array(items) => items.into_iter().filter_map(|item| T::deserialize(item).ok()).collect(),
            _ => Vec::new(),
        })
    }

    /// A value of its type, or its default when it does not fit.
    pub fn or_default<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        Ok(T::deserialize(Value::deserialize(deserializer)?).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_execution_reads_leniently_with_a_typed_status() {
        let view = Execution::from_json(&json!({
            "ExecutionId": "exec-1",
            "TemplateName": "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup",
            "Status": "Waiting",
            "WaitingStatus": "BatchPaused",
            "Parameters": "{\"scalingGroupId\": \"asg-1\", \"batchNumber\": 2}",
            "Outputs": {"batchCount": "2", "currentBatch": 1},
            "Counters": {"Total": 4, "Success": "2", "Failed": 1.0}
        }));
        assert_eq!(view.status, ExecutionStatus::Waiting);
        assert_eq!(view.waiting_status, Some(WaitingStatus::BatchPaused));
        assert_eq!(view.status_label(), "Waiting (BatchPaused)");
        assert_eq!(view.param_str("scalingGroupId").as_deref(), Some("asg-1"));
        assert_eq!(view.param_str("batchNumber").as_deref(), Some("2"));
        assert_eq!(view.batches(), Some((1, 2)));
        assert_eq!((view.counters.total, view.counters.success, view.counters.failed), (4, 2, 1));
        assert_eq!(view.progress_line(), "batch 1 of 2 · done 3 · failed 1 · Waiting (BatchPaused)");
        assert!(!view.is_final());
        assert_eq!(kind_short(&view.template_name), "image");
    }

    #[test]
    fn unknown_statuses_are_kept_as_text() {
        let view = Execution::from_json(&json!({"Status": "Started", "WaitingStatus": "Pondering"}));
        assert_eq!(view.status, ExecutionStatus::Other("Started".into()));
        assert_eq!(view.status_label(), "Started");
        assert_eq!(view.waiting_status, None);
        for status in ["Queued", "Running", "Waiting", "Success", "Failed", "Cancelled"] {
            assert_eq!(ExecutionStatus::parse(status).as_str(), status);
        }
        assert!(ExecutionStatus::parse("Cancelled").is_final() && !ExecutionStatus::parse("Queued").is_final());
        assert_eq!(Execution::from_json(&json!({})).status.as_str(), "");
    }

    #[test]
    fn outputs_and_parameters_read_typed_and_leniently() {
        let child = Execution::from_json(&json!({
            "ExecutionId": "exec-c",
            "ParentExecutionId": "exec-p",
            "IsParent": "false",
            "Parameters": {"instanceId": "i-1", "batch": "2", "position": 0},
            "Outputs": {"instanceId": "i-1", "step": "Apply", "attempt": "2", "exitCode": "-1", "output": "x",
                        "truncated": "true", "errorCode": null, "error": "boom", "inStandby": true, "later": 1}
        }));
        assert!(!child.is_parent);
        let parameters = child.instance_parameters();
        assert_eq!((parameters.instance_id.as_str(), parameters.batch, parameters.position), ("i-1", Some(2), Some(0)));
        let outputs = child.instance_outputs();
        assert_eq!(outputs.step, InstanceStep::Apply);
        assert_eq!((outputs.attempt, outputs.exit_code), (Some(2), Some(-1)));
        assert!(outputs.truncated && outputs.in_standby && !outputs.applied);
        assert_eq!((outputs.error_code, outputs.error.as_deref()), (None, Some("boom")));
        let image = Execution::from_json(&json!({"Outputs": "{\"imageId\": \"m-1\"}"}));
        assert_eq!(image.image_outputs().image_id.as_deref(), Some("m-1"));
        // Values of the wrong type read as their defaults, and lose nothing else.
        let odd = Execution::from_json(&json!({
            "ExecutionId": 7, "Counters": "many", "CurrentTasks": {}, "Tags": "{\"a\": \"b\"}",
            "Mode": "Dreaming", "Category": "Other", "Outputs": [1], "Parameters": "not json", "Status": null
        }));
        assert_eq!(odd.execution_id, "7");
        assert_eq!(odd.counters, Counters::default());
        assert!(odd.current_tasks.is_empty() && odd.outputs.is_empty() && odd.parameters.values.is_empty());
        assert!(odd.parameters.as_text);
        assert_eq!(odd.tags.get("a"), Some(&json!("b")));
        assert_eq!(odd.mode, ExecutionMode::Other("Dreaming".into()));
        assert_eq!(odd.category, ExecutionCategory::Other);
        assert_eq!(odd.status, ExecutionStatus::default());
        assert_eq!(Execution::from_json(&json!("no object")), Execution::default());
    }

    #[test]
    fn an_execution_is_written_in_the_sdks_types_and_reads_back_the_same() {
        let mut execution = Execution {
            execution_id: "exec-1".into(),
            mode: ExecutionMode::Automatic,
            loop_mode: LoopMode::Automatic,
            safety_check: SafetyCheck::Skip,
            category: ExecutionCategory::Other,
            is_parent: true,
            status: ExecutionStatus::Waiting,
            waiting_status: Some(WaitingStatus::FailurePaused),
            outputs: to_object(&TaskOutputs { batch_count: Some(2), batch_sizes: vec![1, 1], ..Default::default() }),
            parameters: Parameters::text(to_object(&json!({"batchNumber": 2}))),
            current_tasks: vec![CurrentTask { task_name: "batch1".into(), ..Default::default() }],
            ..Default::default()
        };
        let written = serde_json::to_value(&execution).unwrap();
        assert_eq!(written["Parameters"], json!("{\"batchNumber\":2}"));
        assert_eq!(
            written["Outputs"],
            json!("{\"batchCount\":2,\"batchSizes\":[1,1],\"cancelRequested\":false,\"currentBatch\":0,\"phase\":\"\",\"restore\":false}")
        );
        assert_eq!(written["IsParent"], json!(true));
        assert_eq!(written["WaitingStatus"], json!("FailurePaused"));
        assert_eq!(written["Counters"]["Total"], json!(0));
        assert_eq!(written["Tags"], json!({}));
        assert_eq!(written["CurrentTasks"][0]["TaskName"], json!("batch1"));
        assert_eq!(Execution::from_json(&written), execution);
        execution.parameters.as_text = false;
        execution.waiting_status = None;
        let written = serde_json::to_value(&execution).unwrap();
        assert_eq!((&written["Parameters"], &written["WaitingStatus"]), (&json!({"batchNumber": 2}), &json!("")));
        assert_eq!(Execution::from_json(&written), execution);
    }

    #[test]
    fn replies_read_as_types_or_as_the_servers_json() {
        let reply = json!({
            "Executions": [{"ExecutionId": "exec-1", "Status": "Success"}, "odd"],
            "NextToken": 50, "MaxResults": "50", "TotalCount": 51, "RequestId": "r-1"
        });
        let typed: ListExecutionsReply = ListExecutionsReply::from_json(&reply);
        assert_eq!(typed.executions.len(), 1);
        assert_eq!(typed.executions[0].status, ExecutionStatus::Success);
        assert_eq!((typed.next_token.as_str(), typed.max_results, typed.total_count), ("50", 50, 51));
        let raw: ListExecutionsReply<Value> = ListExecutionsReply::from_json(&reply);
        assert_eq!(raw.executions, vec![reply["Executions"][0].clone(), json!("odd")]);
        assert_eq!(raw.request_id, "r-1");
        let started = StartExecutionReply::from_json(&json!({"Execution": {"ExecutionId": "exec-2"}}));
        assert_eq!(started.execution.execution_id, "exec-2");
        // The server adds RequestId to every answer; a handler's reply leaves it out.
        assert_eq!(serde_json::to_value(&started).unwrap().get("RequestId"), None);
    }
}
