//! `GET /metrics`: the service's figures (`Service::metrics`) in Prometheus' text exposition
//! format (version 0.0.4), for a scraper. Unauthenticated, as `/healthz` is: no figure carries a
//! secret or an id (no AccessKey, user, instance, group or execution id is a label value), and
//! every label value is chosen from a fixed list, so a client cannot grow the number of series.
//!
//! The API's figures are recorded where the audit log is written ([`crate::audit::record`]),
//! which both APIs call once per call with the operation's action and the result code: the
//! action is one of the table of operations ([`action_label`]: a call that names no operation
//! served here, which only a refused call can, is `unknown`), the code `Success` or one of
//! `rollscale_core::Code` ([`code_label`]), as the audit log spells them.

use crate::error::ApiError;
use crate::{operations, rest, AppState};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use rollscale_core::Code;
use rollscale_engine::metrics::{Family, Value};
use std::fmt::Write;
use std::sync::Arc;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The handler of `GET /metrics`.
pub async fn handle(State(state): State<Arc<AppState>>) -> Response {
    match state.service.metrics().await {
        Ok(families) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], encode(&families)).into_response(),
        // The store could not be read: logged once (`ApiError::from`), answered 500.
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// The `action` label of a call audited as `action`: the operation's own `product:Action`
/// when the table of operations (or a REST route, for `sts:CreateToken`) has it, else
/// `unknown` (a refused RPC call may claim any text as its action).
pub fn action_label(action: &str) -> &'static str {
    if let Some(operation) = operations::by_action(action) {
        return operation.action;
    }
    rest::ROUTES
        .iter()
        .flat_map(|route| {
            let chosen = route.action_by.map(|(_, choices)| choices.iter().map(|(_, action)| *action));
            std::iter::once(route.action).chain(chosen.into_iter().flatten())
        })
        .find(|known| *known == action)
        .unwrap_or("unknown")
}

/// The `code` label of a call answered with `result_code`: `Success`, or a `Code`'s spelling
/// (`Unknown` for anything else, which no answer of either API has).
pub fn code_label(result_code: &str) -> &'static str {
    match result_code {
        "Success" => "Success",
        other => other.parse::<Code>().map_or("Unknown", Code::as_str),
    }
}

/// The families in the text format: `# HELP` and `# TYPE` for each, then a line per sample
/// (a histogram's `_bucket` lines with `le`, its `_sum` and `_count`).
pub fn encode(families: &[Family]) -> String {
    let mut text = String::with_capacity(16 * 1024);
    for family in families {
        let _ = writeln!(text, "# HELP {} {}", family.name, escape(family.help, false));
        let _ = writeln!(text, "# TYPE {} {}", family.name, family.kind.as_str());
        for sample in &family.samples {
            let labels = |extra: Option<(&str, &str)>| {
                let mut pairs: Vec<String> =
                    sample.labels.iter().map(|(name, value)| format!("{name}=\"{}\"", escape(value, true))).collect();
                pairs.extend(extra.map(|(name, value)| format!("{name}=\"{value}\"")));
                match pairs.is_empty() {
                    true => String::new(),
                    false => format!("{{{}}}", pairs.join(",")),
                }
            };
            match &sample.value {
                Value::Counter(count) => {
                    let _ = writeln!(text, "{}{} {count}", family.name, labels(None));
                }
                Value::Gauge(value) => {
                    let _ = writeln!(text, "{}{} {}", family.name, labels(None), number(*value));
                }
                Value::Histogram(histogram) => {
                    for (bound, count) in &histogram.buckets {
                        let le = number(*bound);
                        let _ = writeln!(text, "{}_bucket{} {count}", family.name, labels(Some(("le", &le))));
                    }
                    let inf = labels(Some(("le", "+Inf")));
                    let _ = writeln!(text, "{}_bucket{inf} {}", family.name, histogram.count);
                    let _ = writeln!(text, "{}_sum{} {}", family.name, labels(None), number(histogram.sum));
                    let _ = writeln!(text, "{}_count{} {}", family.name, labels(None), histogram.count);
                }
            }
        }
    }
    text
}

/// A number as the format writes it (`+Inf`, `-Inf`, `NaN`; otherwise Rust's shortest form,
/// which never uses an exponent).
fn number(value: f64) -> String {
    match value {
        f64::INFINITY => "+Inf".into(),
        f64::NEG_INFINITY => "-Inf".into(),
        value if value.is_nan() => "NaN".into(),
        value => value.to_string(),
    }
}

/// A help text (`\` and line breaks escaped) or a label value (`"` too).
fn escape(text: &str, label_value: bool) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '"' if label_value => escaped.push_str("\\\""),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollscale_engine::metrics::{HistogramValue, Kind, Sample};

    #[test]
    fn families_are_written_in_the_text_format() {
        let families = vec![
            Family {
                name: "x_total",
                help: "a \\ help\nover two lines",
                kind: Kind::Counter,
                samples: vec![Sample { labels: vec![("a", "q\"uo\\te\n".into())], value: Value::Counter(3) }],
            },
            Family {
                name: "y",
                help: "y",
                kind: Kind::Gauge,
                samples: vec![
                    Sample { labels: vec![], value: Value::Gauge(0.25) },
                    Sample { labels: vec![("b", "c".into())], value: Value::Gauge(f64::INFINITY) },
                ],
            },
            Family {
                name: "z_seconds",
                help: "z",
                kind: Kind::Histogram,
                samples: vec![Sample {
                    labels: vec![("op", "look".into())],
                    value: Value::Histogram(HistogramValue { buckets: vec![(0.5, 1), (1.0, 2)], count: 3, sum: 7.5 }),
                }],
            },
        ];
        let expected = "# HELP x_total a \\\\ help\\nover two lines\n# TYPE x_total counter\n\
                        x_total{a=\"q\\\"uo\\\\te\\n\"} 3\n\
                        # HELP y y\n# TYPE y gauge\ny 0.25\ny{b=\"c\"} +Inf\n\
                        # HELP z_seconds z\n# TYPE z_seconds histogram\n\
                        z_seconds_bucket{op=\"look\",le=\"0.5\"} 1\nz_seconds_bucket{op=\"look\",le=\"1\"} 2\n\
                        z_seconds_bucket{op=\"look\",le=\"+Inf\"} 3\nz_seconds_sum{op=\"look\"} 7.5\n\
                        z_seconds_count{op=\"look\"} 3\n";
        assert_eq!(encode(&families), expected);
    }

    #[test]
    fn labels_come_from_fixed_lists() {
        assert_eq!(action_label("ess:DescribeScalingGroups"), "ess:DescribeScalingGroups");
        assert_eq!(action_label("sts:CreateToken"), "sts:CreateToken");
        assert_eq!(action_label("ess:ResumeProcesses"), "ess:ResumeProcesses");
        assert_eq!(action_label("ess:NoSuchAction"), "unknown");
        assert_eq!(action_label("unknown:\"}\n"), "unknown");
        assert_eq!(code_label("Success"), "Success");
        assert_eq!(code_label("InvalidScalingGroupId.NotFound"), "InvalidScalingGroupId.NotFound");
        assert_eq!(code_label("404"), "Unknown");
        for route in rest::ROUTES {
            assert_ne!(action_label(route.action), "unknown", "{}", route.action);
        }
    }
}
