//! Typed views of the replies a client reads: an OOS execution (a task, or one instance's
//! child) as `ListExecutions` returns it, with its status as an enum. Read leniently, as the
//! SDKs do: `Parameters` and `Outputs` may be objects or JSON text, numbers may be strings, and
//! a status this version does not know is kept as its text rather than refused.

pub use rollscale_core::image_task::TEMPLATE_NAME as IMAGE_UPDATE_TEMPLATE;
/// The vocabulary of the templates' parameters, shared with the server.
pub use rollscale_core::params::{BatchPauseOption, CommandType, ContainerUpdateType, Kind, PackageAction};
pub use rollscale_core::task::WaitingStatus;
use serde_json::{Map, Value};
use std::fmt;

/// An execution's status: a task's (`Running`, `Waiting`, `Success`, `Failed`, `Cancelled`) or
/// an instance's child's (`Queued` too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecutionStatus {
    Queued,
    Running,
    Waiting,
    Success,
    Failed,
    Cancelled,
    /// A status this client does not know, as the server sent it (empty when absent).
    Other(String),
}

impl ExecutionStatus {
    pub fn parse(text: &str) -> ExecutionStatus {
        match text {
            "Queued" => ExecutionStatus::Queued,
            "Running" => ExecutionStatus::Running,
            "Waiting" => ExecutionStatus::Waiting,
            "Success" => ExecutionStatus::Success,
            "Failed" => ExecutionStatus::Failed,
            "Cancelled" => ExecutionStatus::Cancelled,
            other => ExecutionStatus::Other(other.to_string()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            ExecutionStatus::Queued => "Queued",
            ExecutionStatus::Running => "Running",
            ExecutionStatus::Waiting => "Waiting",
            ExecutionStatus::Success => "Success",
            ExecutionStatus::Failed => "Failed",
            ExecutionStatus::Cancelled => "Cancelled",
            ExecutionStatus::Other(text) => text,
        }
    }

    /// Success, Failed or Cancelled: the execution will not change any more.
    pub fn is_final(&self) -> bool {
        matches!(self, ExecutionStatus::Success | ExecutionStatus::Failed | ExecutionStatus::Cancelled)
    }
}

impl Default for ExecutionStatus {
    fn default() -> Self {
        ExecutionStatus::Other(String::new())
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    pub status: ExecutionStatus,
    /// Why a `Waiting` task waits; `None` otherwise (or for a reason this client does not know).
    pub waiting_status: Option<WaitingStatus>,
    pub status_message: String,
    pub parent_id: String,
    pub parameters: Map<String, Value>,
    pub counters: Counters,
    pub outputs: Map<String, Value>,
    pub create_date: String,
    pub start_date: String,
    pub end_date: String,
}

/// A field of a reply as text: a string as it is, another value as JSON, nothing as "".
pub fn field_text(value: &Value, name: &str) -> String {
    match value.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A count given as a number or as text; `None` when absent or not a count.
pub fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(number) => number.as_u64().or_else(|| number.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// An object given as an object or as JSON text.
pub fn object(value: Option<&Value>) -> Map<String, Value> {
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
            id: field_text(value, "ExecutionId"),
            template_name: field_text(value, "TemplateName"),
            status: ExecutionStatus::parse(&field_text(value, "Status")),
            waiting_status: field_text(value, "WaitingStatus").parse().ok(),
            status_message: field_text(value, "StatusMessage"),
            parent_id: field_text(value, "ParentExecutionId"),
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
            create_date: field_text(value, "CreateDate"),
            start_date: field_text(value, "StartDate"),
            end_date: field_text(value, "EndDate"),
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

    pub fn output_str(&self, name: &str) -> Option<String> {
        match self.outputs.get(name)? {
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
        let count = number(self.outputs.get("batchCount"))?;
        let current = number(self.outputs.get("currentBatch")).unwrap_or(0);
        Some((current, count))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_execution_reads_leniently_with_a_typed_status() {
        let view = ExecutionView::from_json(&json!({
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
        let view = ExecutionView::from_json(&json!({"Status": "Started", "WaitingStatus": "Pondering"}));
        assert_eq!(view.status, ExecutionStatus::Other("Started".into()));
        assert_eq!(view.status_label(), "Started");
        assert_eq!(view.waiting_status, None);
        for status in ["Queued", "Running", "Waiting", "Success", "Failed", "Cancelled"] {
            assert_eq!(ExecutionStatus::parse(status).as_str(), status);
        }
        assert!(ExecutionStatus::parse("Cancelled").is_final() && !ExecutionStatus::parse("Queued").is_final());
        assert_eq!(ExecutionView::from_json(&json!({})).status.as_str(), "");
    }
}
