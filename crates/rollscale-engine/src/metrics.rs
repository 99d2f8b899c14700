//! The figures the engine keeps for `/metrics` ([`Metrics`]): counters and fixed-bucket
//! histograms of atomics, recorded where the work happens (a driver call, a reconcile or health
//! pass, a webhook attempt, and, by the server, an API call) and read as a list of
//! [`Family`]s, which the server writes out in Prometheus' text format. Figures that describe
//! what is (tasks and instances by status, leases held) are not kept here: they are read when
//! asked for (`Service::metrics`), from the store and from the engine's memory.
//!
//! Recording is cheap: a counter is one atomic add; a histogram observation three (its bucket,
//! its sum, the count is the buckets' total); the API's figures, whose label sets are only
//! known as calls come, take a short lock of a map as well. Every label value is a
//! `&'static str` chosen from a fixed list, so no figure's number of series can grow with what
//! a client sends or with the fleet's size: no instance, group, key or execution id is a
//! label.

use rollscale_core::alert::{AttemptOutcome, DeliveryStatus};
use rollscale_fleet::FleetError;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The upper bounds of every histogram's buckets, in seconds: from a millisecond (a store
/// read, a simulated call) to five minutes (a script, a health wait, a long poll).
pub const BUCKETS: [f64; 17] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// Durations observed: a count per bucket (not cumulative: the last is above every bound) and
/// their sum.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The histogram as the exposition format has it: cumulative counts by upper bound, the
    /// count (the `+Inf` bucket) and the sum in seconds.
    pub fn value(&self) -> HistogramValue {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(BUCKETS.len());
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            buckets.push((*bound, cumulative));
        }
        let count = cumulative + self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let sum = Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
        HistogramValue { buckets, count, sum }
    }
}

/// A family of figures: one name, its help and type, and a sample per label set.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// `rollscale_…`; a counter's ends with `_total`.
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    /// As the exposition format's `# TYPE` line names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One series of a family: its labels (name, value) and its value, of the family's kind.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Counter(u64),
    Gauge(f64),
    Histogram(HistogramValue),
}

/// A histogram read: `(upper bound, observations at or below it)` for each of [`BUCKETS`],
/// the number of observations and their sum (seconds).
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramValue {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: f64,
}

fn sample(labels: &[(&'static str, &str)], value: Value) -> Sample {
    Sample { labels: labels.iter().map(|(name, value)| (*name, value.to_string())).collect(), value }
}

/// Which API a call came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Api {
    /// The Alibaba Cloud RPC API on `/`.
    Rpc,
    /// The REST API under `/v1`.
    Rest,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Rpc => "rpc",
            Api::Rest => "rest",
        }
    }
}

/// A call of a driver, by driver and operation: what [`crate::timed`] measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverCall {
    Reachable,
    CreateInstance,
    RemoveInstance,
    Observe,
    ReplaceImage,
    RunScript,
    ApplyPackage,
    UpdateContainers,
    CreateImage,
    ListImages,
    FindImage,
    FindImageNamed,
    Health,
    Look,
    InjectFault,
    Register,
    Deregister,
    SetWeight,
    Weight,
    ActiveConnections,
    CheckStatus,
}

impl DriverCall {
    pub const ALL: [DriverCall; 21] = [
        DriverCall::Reachable,
        DriverCall::CreateInstance,
        DriverCall::RemoveInstance,
        DriverCall::Observe,
        DriverCall::ReplaceImage,
        DriverCall::RunScript,
        DriverCall::ApplyPackage,
        DriverCall::UpdateContainers,
        DriverCall::CreateImage,
        DriverCall::ListImages,
        DriverCall::FindImage,
        DriverCall::FindImageNamed,
        DriverCall::Health,
        DriverCall::Look,
        DriverCall::InjectFault,
        DriverCall::Register,
        DriverCall::Deregister,
        DriverCall::SetWeight,
        DriverCall::Weight,
        DriverCall::ActiveConnections,
        DriverCall::CheckStatus,
    ];

    /// `fleet` or `load_balancer`.
    pub fn driver(self) -> &'static str {
        match self {
            DriverCall::Register
            | DriverCall::Deregister
            | DriverCall::SetWeight
            | DriverCall::Weight
            | DriverCall::ActiveConnections
            | DriverCall::CheckStatus => "load_balancer",
            _ => "fleet",
        }
    }

    /// The trait method's name.
    pub fn operation(self) -> &'static str {
        match self {
            DriverCall::Reachable => "reachable",
            DriverCall::CreateInstance => "create_instance",
            DriverCall::RemoveInstance => "remove_instance",
            DriverCall::Observe => "observe",
            DriverCall::ReplaceImage => "replace_image",
            DriverCall::RunScript => "run_script",
            DriverCall::ApplyPackage => "apply_package",
            DriverCall::UpdateContainers => "update_containers",
            DriverCall::CreateImage => "create_image",
            DriverCall::ListImages => "list_images",
            DriverCall::FindImage => "find_image",
            DriverCall::FindImageNamed => "find_image_named",
            DriverCall::Health => "health",
            DriverCall::Look => "look",
            DriverCall::InjectFault => "inject_fault",
            DriverCall::Register => "register",
            DriverCall::Deregister => "deregister",
            DriverCall::SetWeight => "set_weight",
            DriverCall::Weight => "weight",
            DriverCall::ActiveConnections => "active_connections",
            DriverCall::CheckStatus => "check_status",
        }
    }
}

/// The kinds of [`FleetError`], as the `kind` label of driver errors.
const ERROR_KINDS: [&str; 4] = ["not_found", "unsupported", "failed", "unavailable"];

fn error_kind(error: &FleetError) -> usize {
    match error {
        FleetError::NotFound(_) => 0,
        FleetError::Unsupported(_) => 1,
        FleetError::Failed(_) => 2,
        FleetError::Unavailable(_) => 3,
    }
}

/// A background pass whose duration is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// A reconcile pass of one group.
    Reconcile,
    /// A health check pass of one group.
    Health,
}

const OUTCOMES: [&str; 2] = ["ok", "error"];

/// A webhook attempt's outcome: answered 2xx, answered otherwise, or not answered.
const ATTEMPT_OUTCOMES: [&str; 3] = ["delivered", "http_error", "unreachable"];
/// How a delivery settled: delivered, given up after its last attempt, or dropped (its rule
/// or webhook was deleted or disabled before it was sent).
const SETTLED: [&str; 3] = ["delivered", "failed", "dropped"];

/// The API's figures of one (API, action, result code).
type ApiKey = (Api, &'static str, &'static str);

/// The engine's counters and histograms (see the module's documentation). One per engine;
/// every method takes `&self`.
#[derive(Debug, Default)]
pub struct Metrics {
    api: Mutex<BTreeMap<ApiKey, Histogram>>,
    driver_calls: [Histogram; DriverCall::ALL.len()],
    driver_errors: [[AtomicU64; ERROR_KINDS.len()]; DriverCall::ALL.len()],
    reconcile_passes: [Histogram; OUTCOMES.len()],
    health_passes: [Histogram; OUTCOMES.len()],
    webhook_attempts: [AtomicU64; ATTEMPT_OUTCOMES.len()],
    webhook_attempt_seconds: Histogram,
    webhook_deliveries: [AtomicU64; SETTLED.len()],
}

impl Metrics {
    /// A call of the API, answered with `code` (`Success`, or an error's code) after `took`.
    /// `action` is `product:Action` of the server's table of operations (or `unknown`), so
    /// the caller chooses from a fixed list: a `&'static str`.
    pub fn api_request(&self, api: Api, action: &'static str, code: &'static str, took: Duration) {
        let mut api_figures = self.api.lock().unwrap_or_else(|e| e.into_inner());
        api_figures.entry((api, action, code)).or_default().observe(took);
    }

    /// A driver call that took `took` and failed with `error`, if it did.
    pub(crate) fn driver_call(&self, call: DriverCall, took: Duration, error: Option<&FleetError>) {
        let index = call as usize;
        self.driver_calls[index].observe(took);
        if let Some(error) = error {
            self.driver_errors[index][error_kind(error)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A pass of one group that took `took`, and whether it succeeded.
    pub(crate) fn pass(&self, pass: Pass, took: Duration, ok: bool) {
        let passes = match pass {
            Pass::Reconcile => &self.reconcile_passes,
            Pass::Health => &self.health_passes,
        };
        passes[usize::from(!ok)].observe(took);
    }

    /// One attempt of a webhook delivery.
    pub(crate) fn webhook_attempt(&self, outcome: &AttemptOutcome, took: Duration) {
        let index = match outcome {
            AttemptOutcome::Answered(status) if (200..300).contains(status) => 0,
            AttemptOutcome::Answered(_) => 1,
            AttemptOutcome::Unreachable(_) => 2,
        };
        self.webhook_attempts[index].fetch_add(1, Ordering::Relaxed);
        self.webhook_attempt_seconds.observe(took);
    }

    /// A delivery that settled after an attempt (`Pending`: not settled, nothing counted).
    pub(crate) fn webhook_settled(&self, status: DeliveryStatus) {
        let index = match status {
            DeliveryStatus::Pending => return,
            DeliveryStatus::Delivered => 0,
            DeliveryStatus::Failed => 1,
        };
        self.webhook_deliveries[index].fetch_add(1, Ordering::Relaxed);
    }

    /// A delivery dropped before it was sent (its rule or webhook is gone or disabled).
    pub(crate) fn webhook_dropped(&self) {
        self.webhook_deliveries[2].fetch_add(1, Ordering::Relaxed);
    }

    /// The figures kept here, every family present even before anything was counted.
    pub fn families(&self) -> Vec<Family> {
        let api: Vec<(ApiKey, HistogramValue)> = {
            let api = self.api.lock().unwrap_or_else(|e| e.into_inner());
            api.iter().map(|(key, histogram)| (*key, histogram.value())).collect()
        };
        let api_labels = |(api, action, code): &ApiKey| [("api", api.as_str()), ("action", *action), ("code", *code)];
        let driver_labels = |call: DriverCall| [("driver", call.driver()), ("operation", call.operation())];
        let mut driver_errors = Vec::new();
        for call in DriverCall::ALL {
            for (kind, count) in ERROR_KINDS.iter().zip(&self.driver_errors[call as usize]) {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let labels = [("driver", call.driver()), ("operation", call.operation()), ("kind", *kind)];
                    driver_errors.push(sample(&labels, Value::Counter(count)));
                }
            }
        }
        let passes = |histograms: &[Histogram; 2]| {
            OUTCOMES
                .iter()
                .zip(histograms)
                .map(|(outcome, histogram)| sample(&[("outcome", outcome)], Value::Histogram(histogram.value())))
                .collect()
        };
        let counters = |names: &[&'static str], counts: &[AtomicU64], label: &'static str| {
            names
                .iter()
                .zip(counts)
                .map(|(name, count)| sample(&[(label, name)], Value::Counter(count.load(Ordering::Relaxed))))
                .collect()
        };
        vec![
            Family {
                name: "rollscale_api_requests_total",
                help: "API calls answered, by API (rpc, rest), action (product:Action) and result code (Success or the error's Code).",
                kind: Kind::Counter,
                samples: api.iter().map(|(key, value)| sample(&api_labels(key), Value::Counter(value.count))).collect(),
            },
            Family {
                name: "rollscale_api_request_duration_seconds",
                help: "Time from a call's arrival to its answer (a long poll's wait included; an event stream's until it starts), by API, action and result code.",
                kind: Kind::Histogram,
                samples: api.into_iter().map(|(key, value)| sample(&api_labels(&key), Value::Histogram(value))).collect(),
            },
            Family {
                name: "rollscale_driver_call_duration_seconds",
                help: "Calls of the drivers by the engine, by driver (fleet, load_balancer) and operation (the trait method).",
                kind: Kind::Histogram,
                samples: DriverCall::ALL
                    .iter()
                    .map(|call| sample(&driver_labels(*call), Value::Histogram(self.driver_calls[*call as usize].value())))
                    .collect(),
            },
            Family {
                name: "rollscale_driver_call_errors_total",
                help: "Driver calls that failed, by driver, operation and kind (not_found, unsupported, failed, unavailable).",
                kind: Kind::Counter,
                samples: driver_errors,
            },
            Family {
                name: "rollscale_reconcile_pass_duration_seconds",
                help: "Reconcile passes of one scaling group, by outcome (ok, error).",
                kind: Kind::Histogram,
                samples: passes(&self.reconcile_passes),
            },
            Family {
                name: "rollscale_health_pass_duration_seconds",
                help: "Health check passes of one scaling group, by outcome (ok, error).",
                kind: Kind::Histogram,
                samples: passes(&self.health_passes),
            },
            Family {
                name: "rollscale_webhook_attempts_total",
                help: "Attempts to deliver an alert to a webhook, by outcome (delivered: answered 2xx; http_error: answered otherwise; unreachable: no answer).",
                kind: Kind::Counter,
                samples: counters(&ATTEMPT_OUTCOMES, &self.webhook_attempts, "outcome"),
            },
            Family {
                name: "rollscale_webhook_attempt_duration_seconds",
                help: "Time of one attempt to deliver an alert to a webhook.",
                kind: Kind::Histogram,
                samples: vec![sample(&[], Value::Histogram(self.webhook_attempt_seconds.value()))],
            },
            Family {
                name: "rollscale_webhook_deliveries_total",
                help: "Alert deliveries settled, by result (delivered; failed: given up after the last attempt; dropped: its rule or webhook was deleted or disabled).",
                kind: Kind::Counter,
                samples: counters(&SETTLED, &self.webhook_deliveries, "result"),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_duration_in_the_first_bucket_that_holds_it() {
        let histogram = Histogram::default();
        for millis in [0, 1, 2, 700, 400_000] {
            histogram.observe(Duration::from_millis(millis));
        }
        let value = histogram.value();
        assert_eq!(value.count, 5);
        assert!((value.sum - 400.703).abs() < 1e-9, "{}", value.sum);
        let at = |bound: f64| value.buckets.iter().find(|(b, _)| *b == bound).map(|(_, n)| *n);
        assert_eq!(at(0.001), Some(2), "0 and 1 ms: a bound holds what equals it");
        assert_eq!(at(0.0025), Some(3));
        assert_eq!(at(0.5), Some(3));
        assert_eq!(at(1.0), Some(4));
        assert_eq!(at(300.0), Some(4), "400 s is above every bound: in +Inf only");
        assert!(value.buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "cumulative");
    }

    #[test]
    fn figures_are_kept_by_their_fixed_labels() {
        let metrics = Metrics::default();
        metrics.api_request(Api::Rpc, "ess:DescribeScalingGroups", "Success", Duration::from_millis(3));
        metrics.api_request(Api::Rpc, "ess:DescribeScalingGroups", "Success", Duration::from_millis(4));
        metrics.api_request(Api::Rest, "ess:DescribeScalingGroups", "MissingAuthorization", Duration::ZERO);
        metrics.driver_call(DriverCall::ReplaceImage, Duration::from_millis(5), None);
        metrics.driver_call(DriverCall::ReplaceImage, Duration::from_millis(5), Some(&FleetError::Failed("x".into())));
        metrics.pass(Pass::Health, Duration::from_millis(1), false);
        metrics.webhook_attempt(&AttemptOutcome::Answered(204), Duration::from_millis(1));
        metrics.webhook_attempt(&AttemptOutcome::Answered(503), Duration::from_millis(1));
        metrics.webhook_settled(DeliveryStatus::Pending);
        metrics.webhook_settled(DeliveryStatus::Delivered);
        metrics.webhook_dropped();
        let families = metrics.families();
        let family = |name: &str| families.iter().find(|f| f.name == name).expect(name);
        let value = |name: &str, labels: &[(&str, &str)]| {
            let labels: Vec<(&str, String)> = labels.iter().map(|(n, v)| (*n, v.to_string())).collect();
            family(name).samples.iter().find(|s| s.labels == labels).map(|s| s.value.clone())
        };
        let requests = "rollscale_api_requests_total";
        let describe = [("api", "rpc"), ("action", "ess:DescribeScalingGroups"), ("code", "Success")];
        assert_eq!(value(requests, &describe), Some(Value::Counter(2)));
        assert_eq!(family(requests).samples.len(), 2);
        let replace = [("driver", "fleet"), ("operation", "replace_image")];
        match value("rollscale_driver_call_duration_seconds", &replace) {
            Some(Value::Histogram(histogram)) => assert_eq!(histogram.count, 2),
            other => panic!("{other:?}"),
        }
        let failed = [("driver", "fleet"), ("operation", "replace_image"), ("kind", "failed")];
        assert_eq!(value("rollscale_driver_call_errors_total", &failed), Some(Value::Counter(1)));
        assert_eq!(family("rollscale_driver_call_errors_total").samples.len(), 1);
        match value("rollscale_health_pass_duration_seconds", &[("outcome", "error")]) {
            Some(Value::Histogram(histogram)) => assert_eq!(histogram.count, 1),
            other => panic!("{other:?}"),
        }
        let attempts = "rollscale_webhook_attempts_total";
        assert_eq!(value(attempts, &[("outcome", "delivered")]), Some(Value::Counter(1)));
        assert_eq!(value(attempts, &[("outcome", "http_error")]), Some(Value::Counter(1)));
        assert_eq!(value(attempts, &[("outcome", "unreachable")]), Some(Value::Counter(0)));
        let deliveries = "rollscale_webhook_deliveries_total";
        assert_eq!(value(deliveries, &[("result", "delivered")]), Some(Value::Counter(1)));
        assert_eq!(value(deliveries, &[("result", "failed")]), Some(Value::Counter(0)));
        assert_eq!(value(deliveries, &[("result", "dropped")]), Some(Value::Counter(1)));
        let kinds_match = families.iter().all(|f| {
            f.samples.iter().all(|s| {
                matches!(
                    (&s.value, f.kind),
                    (Value::Counter(_), Kind::Counter)
                        | (Value::Gauge(_), Kind::Gauge)
                        | (Value::Histogram(_), Kind::Histogram)
                )
            })
        });
        assert!(kinds_match, "each sample is of its family's kind");
    }
}
