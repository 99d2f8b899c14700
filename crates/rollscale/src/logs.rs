//! The process's log lines, on stderr: `human` (tracing's text format, the spans' fields before
//! each message) or `json` (`--log-format json`): one JSON object a line, with `timestamp`,
//! `level`, `target`, `message`, the event's own fields and the fields of every span it is in,
//! flattened — so a line logged while serving a request carries its `request_id`, one of a
//! rolling update's driver its `execution_id`, one of an instance's step its `instance_id`
//! too. No span or event carries a secret (ARCHITECTURE.md, "Secrets"); nothing here adds one.

use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Text for people: time, level, the spans with their fields, the message.
    #[default]
    Human,
    /// One JSON object a line, span fields flattened into it (`request_id`, `execution_id`,
    /// `instance_id`, …).
    Json,
}

/// `up`'s log options.
#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// How the log lines on stderr are written: `human`, or `json` (one object a line with
    /// the request id, execution id and instance id where they apply). RUST_LOG sets the
    /// level.
    #[arg(long, value_enum, env = "ROLLSCALE_LOG_FORMAT", default_value = "human")]
    pub log_format: LogFormat,
}

/// Installs the process's subscriber: lines at `default_level` and above unless RUST_LOG says
/// otherwise, on stderr, in `format`.
pub fn init(default_level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialization (never expected) is harmless; ignore it.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.fmt_fields(JsonFields).event_format(JsonLines).try_init(),
    };
}

/// Spans' fields kept as a JSON object (the text of one), merged as they are recorded.
pub struct JsonFields;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut map = Map::new();
        fields.record(&mut JsonVisitor(&mut map));
        write!(writer, "{}", Value::Object(map))
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut map = match serde_json::from_str(&current.fields) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        fields.record(&mut JsonVisitor(&mut map));
        current.fields = Value::Object(map).to_string();
        Ok(())
    }
}

/// A line: `timestamp` (RFC 3339, UTC), `level`, `target`, then the fields of the spans the
/// event is in (outermost first, an inner span's winning), then the event's own (`message`
/// among them), which win over the spans'.
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() {
                    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&fields.fields) {
                        line.extend(fields);
                    }
                }
            }
        }
        let mut own = Map::new();
        event.record(&mut JsonVisitor(&mut own));
        // Records of the `log` crate come with their origin as `log.*` fields.
        let mut target = event.metadata().target().to_string();
        if let Some(Value::String(log_target)) = own.get("log.target") {
            target = log_target.clone();
        }
        own.retain(|name, _| !name.starts_with("log."));
        line.extend(own);
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert("level".into(), Value::String(event.metadata().level().to_string()));
        line.insert("target".into(), Value::String(target));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Fields as JSON values: numbers and booleans as such, everything else as its text.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.0.insert(field.name().to_string(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), Value::String(value.to_string()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().to_string(), Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_string(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use tracing::Instrument;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(buffer: &Buffer) -> Vec<Value> {
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
    }

    #[tokio::test]
    async fn a_json_line_carries_its_spans_fields_flattened() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields)
            .event_format(JsonLines)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);

        let task = tracing::error_span!("task", execution_id = "exec-1");
        async {
            let instance = tracing::error_span!("instance", instance_id = tracing::field::Empty, step = "Apply");
            instance.record("instance_id", "i-1");
            async {
                tracing::info!(attempt = 2u64, ok = true, rate = 0.5, "step \"done\"\nnext");
            }
            .instrument(instance)
            .await;
            tracing::warn!(execution_id = "exec-own", "the event's own field wins");
        }
        .instrument(task)
        .await;
        tracing::debug!("no span");

        let lines = lines(&buffer);
        assert_eq!(lines.len(), 3, "{lines:?}");
        let step = &lines[0];
        assert_eq!(step["message"], "step \"done\"\nnext");
        assert_eq!(
            (&step["execution_id"], &step["instance_id"], &step["step"]),
            (&"exec-1".into(), &"i-1".into(), &"Apply".into())
        );
        assert_eq!((&step["attempt"], &step["ok"], &step["rate"]), (&2.into(), &true.into(), &0.5.into()));
        assert_eq!(step["level"], "INFO");
        assert_eq!(step["target"], module_path!());
        assert!(step["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{step}");
        assert_eq!(lines[1]["execution_id"], "exec-own");
        assert_eq!(lines[1]["level"], "WARN");
        assert!(lines[2].get("execution_id").is_none(), "{}", lines[2]);
    }
}
