//! `GET /metrics` through the real router: after a few RPC and REST calls (some refused), a
//! rolling update over the simulated fleet with a pause, a reconcile and a health pass, and an
//! alert delivered to one webhook and given up on another, the figures are what happened, and
//! the text is well-formed Prometheus exposition format (checked by a small parser here). And a
//! scrape's cost over a store of 10,000 instances, printed.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use rollscale_core::alert::{DeliveryStatus, EventPattern, Webhook, WebhookMethod};
use rollscale_core::domain::{CreationType, HealthStatus, Instance, LifecycleState};
use rollscale_core::ids::{ExecutionId, InstanceId, ScalingGroupId};
use rollscale_core::task::TaskStatus;
use rollscale_core::Code;
use rollscale_engine::alerts::{AlertSenderConfig, RuleChange};
use rollscale_engine::{EngineConfig, Replication};
use rollscale_fleet::notify::WebhookNotifier;
use rollscale_server::{router, AuthConfig};
use rollscale_test_support::engine::{fast_config, wait_for_task, Harness, IMAGE_TEMPLATE};
use rollscale_test_support::server::{send, token, Api};
use rollscale_test_support::wait;
use rollscale_test_support::webhook::WebhookReceiver;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// One sample of a scrape: its name, labels (sorted by name) and value.
type Series = BTreeMap<(String, Vec<(String, String)>), f64>;

/// `GET /metrics`'s text.
async fn fetch(router: &axum::Router) -> String {
    let request = Request::get("/metrics").body(Body::empty()).expect("a request");
    let response = router.clone().oneshot(request).await.expect("an answer");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let bytes = response.into_body().collect().await.expect("the body").to_bytes();
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

/// A scrape, checked to be well-formed text exposition format (see [`parse`]).
async fn scrape(router: &axum::Router) -> (String, Series) {
    let text = fetch(router).await;
    let series = parse(&text).unwrap_or_else(|error| panic!("not the exposition format: {error}\n{text}"));
    (text, series)
}

/// Reads the text format, failing on anything out of it: every line a `# HELP`, a `# TYPE` or
/// a sample `name{label="value",…} value`; each family has its HELP and TYPE before its
/// samples, which come together; a sample's name is its family's (a histogram's with
/// `_bucket`, `_sum` or `_count`); no series twice; a histogram's buckets are cumulative, with
/// an `le` each, and its `+Inf` bucket is its count.
fn parse(text: &str) -> Result<Series, String> {
    let mut helps: HashSet<String> = HashSet::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series = Series::new();
    let valid_name = |name: &str, colon: bool| {
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    };
    if !text.ends_with('\n') {
        return Err("the text does not end with a line break".into());
    }
    for (number, line) in text.lines().enumerate() {
        let at = |what: String| format!("line {}: {what}: {line:?}", number + 1);
        if let Some(comment) = line.strip_prefix("# ") {
            let (keyword, rest) = comment.split_once(' ').ok_or_else(|| at("a comment without a name".into()))?;
            let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            if !valid_name(name, true) {
                return Err(at("not a metric name".into()));
            }
            if current.as_deref() != Some(name) {
                if let Some(previous) = current.take() {
                    done.insert(previous);
                }
                if done.contains(name) {
                    return Err(at("the family came before".into()));
                }
                current = Some(name.to_string());
            }
            match keyword {
                "HELP" if !rest.is_empty() && helps.insert(name.to_string()) => {}
                "TYPE" if ["counter", "gauge", "histogram"].contains(&rest) && !types.contains_key(name) => {
                    types.insert(name.to_string(), rest.to_string());
                }
                _ => return Err(at("a HELP or TYPE line again, empty, or of an unknown type".into())),
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(at("neither HELP, TYPE nor a sample".into()));
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(end) => line.split_at(end),
            None => return Err(at("no value".into())),
        };
        if !valid_name(name, true) {
            return Err(at("not a metric name".into()));
        }
        let mut labels = Vec::new();
        let rest = match rest.strip_prefix('{') {
            None => rest,
            Some(mut inside) => loop {
                if let Some(after) = inside.strip_prefix('}') {
                    break after;
                }
                let (label, after) = inside.split_once("=\"").ok_or_else(|| at("a label without =\"".into()))?;
                if !valid_name(label, false) {
                    return Err(at(format!("{label:?} is not a label name")));
                }
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            _ => return Err(at("a bad escape".into())),
                        },
                        Some((i, '"')) => break i,
                        Some((_, c)) => value.push(c),
                        None => return Err(at("an unterminated label value".into())),
                    }
                };
                labels.push((label.to_string(), value));
                inside = &after[end + 1..];
                inside = inside.strip_prefix(',').unwrap_or(inside);
            },
        };
        let value = rest.strip_prefix(' ').ok_or_else(|| at("no space before the value".into()))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().map_err(|_| at(format!("{other:?} is not a number")))?,
        };
        let family = [name, name.strip_suffix("_bucket").unwrap_or(""), name.strip_suffix("_sum").unwrap_or("")]
            .into_iter()
            .chain([name.strip_suffix("_count").unwrap_or("")])
            .find(|family| !family.is_empty() && types.contains_key(*family))
            .ok_or_else(|| at("a sample of no declared family".into()))?;
        let histogram_part = family != name;
        if current.as_deref() != Some(family) || !helps.contains(family) {
            return Err(at("a sample apart from its family, or without its HELP".into()));
        }
        if histogram_part != (types[family] == "histogram") {
            return Err(at("a histogram's sample without its suffix, or a suffix on another type".into()));
        }
        if name.ends_with("_bucket") && !labels.iter().any(|(label, _)| label == "le") {
            return Err(at("a bucket without le".into()));
        }
        labels.sort();
        if series.insert((name.to_string(), labels), value).is_some() {
            return Err(at("a series twice".into()));
        }
    }
    // Each histogram's buckets are cumulative and end at +Inf, which is its count.
    for ((name, labels), count) in series.iter().filter(|((name, _), _)| name.ends_with("_count")) {
        let family = name.trim_end_matches("_count");
        if types.get(family).map(String::as_str) != Some("histogram") {
            continue;
        }
        let mut buckets: Vec<(f64, f64)> = series
            .iter()
            .filter(|((bucket, bucket_labels), _)| {
                bucket == &format!("{family}_bucket")
                    && bucket_labels.iter().filter(|(label, _)| label != "le").eq(labels.iter())
            })
            .map(|((_, bucket_labels), value)| {
                let le = &bucket_labels.iter().find(|(label, _)| label == "le").expect("le").1;
                (if le == "+Inf" { f64::INFINITY } else { le.parse().expect("a bound") }, *value)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        if buckets.last() != Some(&(f64::INFINITY, *count)) || buckets.windows(2).any(|w| w[0].1 > w[1].1) {
            return Err(format!("{family}{labels:?}: buckets {buckets:?}, count {count}"));
        }
        if !series.contains_key(&(format!("{family}_sum"), labels.clone())) {
            return Err(format!("{family}{labels:?} has no _sum"));
        }
    }
    for (family, _) in types {
        if !helps.contains(&family) {
            return Err(format!("{family} has no HELP"));
        }
    }
    Ok(series)
}

/// The value of the series `name` with exactly `labels`, if the scrape has it.
fn value(series: &Series, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut labels: Vec<(String, String)> = labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    labels.sort();
    series.get(&(name.to_string(), labels)).copied()
}

/// [`value`], which must be there.
fn must(series: &Series, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(series, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?}"))
}

/// The sum of the series `name` whose labels include `labels`.
fn total(series: &Series, name: &str, labels: &[(&str, &str)]) -> f64 {
    series
        .iter()
        .filter(|((n, l), _)| n == name && labels.iter().all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v)))
        .map(|(_, value)| value)
        .sum()
}

async fn ok(app: &Api, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, value) = app.rest(method, path, body.as_ref()).await;
    assert_eq!(status, 200, "{method} {path}: {value}");
    value
}

#[tokio::test]
async fn metrics_count_calls_tasks_instances_driver_calls_passes_webhooks_and_leases() {
    // One replica (leases taken, as on PostgreSQL, here on SQLite), so the leases show.
    let replication = Replication {
        replica_id: "metrics-replica".into(),
        lease_ttl: Duration::from_secs(60),
        renew_every: Duration::from_secs(5),
        poll_every: Duration::from_millis(100),
    };
    let config = EngineConfig { replication: Some(replication), ..fast_config() };
    let Harness { service, fleet, engine, dir, .. } = Harness::builder().config(config).build().await;
    let key = service.create_admin_access_key("admin").await.expect("the administrator's key");
    let app = Api {
        router: router(service.clone(), AuthConfig::default()),
        service: service.clone(),
        token: token(&key.id, &key.secret),
        key_id: key.id,
        secret: key.secret,
        dir,
    };

    // Before anything: every family there, nothing counted, no instance.
    let (_, before) = scrape(&app.router).await;
    assert_eq!(total(&before, "rollscale_api_requests_total", &[]), 0.0);
    assert_eq!(total(&before, "rollscale_instances", &[]), 0.0);
    assert_eq!(
        must(&before, "rollscale_instances", &[("lifecycle_state", "InService"), ("health_status", "Healthy")]),
        0.0
    );
    assert_eq!(must(&before, "rollscale_leases_held", &[("kind", "task")]), 0.0);
    let look = [("driver", "fleet"), ("operation", "look")];
    assert_eq!(must(&before, "rollscale_driver_call_duration_seconds_count", &look), 0.0);

    // Calls: two answered, three refused (one by an action no version serves).
    let ess = "2014-08-28";
    let (status, body) = app.rpc(ess, "DescribeScalingGroups", &[]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.rpc(ess, "DescribeScalingGroups", &[("Bogus", "1")]).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("InvalidParameter")), "{body}");
    let (status, body) = app.rpc(ess, "NoSuchAction", &[]).await;
    assert_eq!((status, body["Code"].as_str()), (404, Some(Code::InvalidActionNotFound.as_str())), "{body}");
    ok(&app, "GET", "/v1/scaling-groups", None).await;
    let unsigned = Request::get("/v1/scaling-groups").body(Body::empty()).expect("a request");
    let (status, body) = send(&app.router, unsigned).await;
    assert_eq!((status, body["Code"].as_str()), (401, Some("MissingAuthorization")), "{body}");

    // A group of 4 over REST, reconciled once.
    let lb = ok(&app, "POST", "/v1/load-balancers", Some(json!({"name": "web"}))).await;
    let group = ok(
        &app,
        "POST",
        "/v1/scaling-groups",
        Some(json!({"name": "web", "min_size": 0, "max_size": 8, "desired_capacity": 4, "load_balancer_ids": [lb["id"]]})),
    )
    .await;
    let group_id = group["id"].as_str().expect("an id").to_string();
    for image in ["img-old", "img-new"] {
        ok(&app, "POST", "/v1/images", Some(json!({"id": image}))).await;
    }
    let configuration = json!({"scaling_group_id": group_id, "image_id": "img-old"});
    ok(&app, "POST", "/v1/scaling-configurations", Some(configuration)).await;
    ok(&app, "POST", &format!("/v1/scaling-groups/{group_id}/enable"), None).await;
    service.reconcile_all().await.expect("a reconcile pass");
    assert!(service.lead_reconciler().await.expect("the reconciler's lease"), "alone, it leads");

    // An alert rule for the task's success, with a webhook that answers and one that fails.
    let (good, bad) = (WebhookReceiver::start(), WebhookReceiver::failing(&[503]));
    let pattern =
        EventPattern { names: vec![IMAGE_TEMPLATE.into()], kinds: vec!["Succeeded".into()], ..Default::default() };
    service
        .put_alert_rule(RuleChange { name: "done".into(), patterns: vec![pattern], ..RuleChange::default() })
        .await
        .expect("a rule");
    let webhooks = [("good", &good), ("bad", &bad)].map(|(id, receiver)| Webhook {
        id: id.into(),
        url: receiver.url("/hook"),
        method: WebhookMethod::Post,
    });
    service.put_alert_webhooks("done", Vec::from(webhooks)).await.expect("webhooks");

    // A rolling update over RPC, paused after its first batch.
    let parameters = json!({"invokeType": "invoke", "scalingGroupId": group_id, "imageId": "img-new",
                            "batchNumber": 2, "batchPauseOption": "FirstBatchPause"});
    let (status, body) = app
        .rpc(
            "2019-06-01",
            "StartExecution",
            &[("TemplateName", IMAGE_TEMPLATE), ("Parameters", &parameters.to_string())],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let task = ExecutionId::parse(body["Execution"]["ExecutionId"].as_str().expect("an id")).expect("an execution id");
    wait_for_task(&service, &task, "the pause", |task, _| task.status == TaskStatus::Waiting).await;
    let (_, paused) = scrape(&app.router).await;
    assert_eq!(must(&paused, "rollscale_tasks", &[("template", IMAGE_TEMPLATE), ("status", "Waiting")]), 1.0);
    assert_eq!(must(&paused, "rollscale_leases_held", &[("kind", "task")]), 1.0, "it drives the task");
    assert_eq!(must(&paused, "rollscale_leases_held", &[("kind", "reconciler")]), 1.0);
    assert_eq!(
        must(&paused, "rollscale_instances", &[("lifecycle_state", "InService"), ("health_status", "Healthy")]),
        4.0
    );

    ok(&app, "POST", &format!("/v1/rolling-updates/{task}/continue"), None).await;
    let (done, _) = wait_for_task(&service, &task, "its end", |task, _| task.status.is_final()).await;
    assert_eq!(done.status, TaskStatus::Success, "{}", done.status_message);
    wait::until("the task's lease to be released", Duration::from_secs(10), Duration::from_millis(10), async || {
        (!engine.is_driving(&task)).then_some(())
    })
    .await;
    let group = service.group(&ScalingGroupId::parse(&group_id).expect("a group id")).await.expect("the group");
    service.health_pass(&group).await.expect("a health pass");
    let sender = AlertSenderConfig { max_attempts: 1, ..AlertSenderConfig::default() };
    assert_eq!(service.send_due_alerts(&WebhookNotifier::default(), &sender).await.expect("sent"), 2);
    let deliveries = service.alert_deliveries(Some("done"), None, 10).await.expect("deliveries");
    let mut settled: Vec<DeliveryStatus> = deliveries.iter().map(|d| d.status).collect();
    settled.sort_by_key(|status| status.as_str());
    assert_eq!(settled, [DeliveryStatus::Delivered, DeliveryStatus::Failed], "{deliveries:?}");

    let (text, after) = scrape(&app.router).await;
    // API calls by API, action and code; their latency histograms counted alike.
    let requests = "rollscale_api_requests_total";
    let describe = "ess:DescribeScalingGroups";
    let rpc_ok = [("api", "rpc"), ("action", describe), ("code", "Success")];
    assert_eq!(must(&after, requests, &rpc_ok), 1.0);
    assert_eq!(must(&after, requests, &[("api", "rpc"), ("action", describe), ("code", "InvalidParameter")]), 1.0);
    let unknown = [("api", "rpc"), ("action", "unknown"), ("code", Code::InvalidActionNotFound.as_str())];
    assert_eq!(must(&after, requests, &unknown), 1.0, "an action served nowhere is `unknown`");
    assert_eq!(must(&after, requests, &[("api", "rest"), ("action", describe), ("code", "Success")]), 1.0);
    let refused = [("api", "rest"), ("action", describe), ("code", "MissingAuthorization")];
    assert_eq!(must(&after, requests, &refused), 1.0, "a refusal before authentication is counted");
    assert_eq!(must(&after, requests, &[("api", "rpc"), ("action", "oos:StartExecution"), ("code", "Success")]), 1.0);
    let continued = [("api", "rest"), ("action", "oos:NotifyExecution"), ("code", "Success")];
    assert_eq!(must(&after, requests, &continued), 1.0);
    assert_eq!(total(&after, requests, &[("api", "rest"), ("action", "ecs:CreateImage")]), 2.0);
    assert_eq!(total(&after, requests, &[]), 13.0, "every call, once");
    let latency = "rollscale_api_request_duration_seconds";
    assert_eq!(must(&after, &format!("{latency}_count"), &rpc_ok), 1.0);
    assert_eq!(must(&after, &format!("{latency}_bucket"), &[&rpc_ok[..], &[("le", "+Inf")]].concat()), 1.0);
    assert!(must(&after, &format!("{latency}_sum"), &rpc_ok) > 0.0);
    assert_eq!(total(&after, &format!("{latency}_count"), &[]), 13.0);
    for (_, labels) in after.keys().filter(|(name, _)| name == requests) {
        let action = &labels.iter().find(|(label, _)| label == "action").expect("an action").1;
        assert!(action == "unknown" || action.contains(':'), "{action}");
    }

    // Tasks by status, instances by lifecycle state and health, leases held.
    assert_eq!(must(&after, "rollscale_tasks", &[("template", IMAGE_TEMPLATE), ("status", "Success")]), 1.0);
    assert_eq!(total(&after, "rollscale_tasks", &[]), 1.0);
    assert_eq!(
        must(&after, "rollscale_instances", &[("lifecycle_state", "InService"), ("health_status", "Healthy")]),
        4.0
    );
    assert_eq!(total(&after, "rollscale_instances", &[]), 4.0);
    assert_eq!(must(&after, "rollscale_leases_held", &[("kind", "task")]), 0.0, "released once finished");
    assert_eq!(must(&after, "rollscale_leases_held", &[("kind", "reconciler")]), 1.0);

    // Driver calls as the simulated fleet counted them; the load balancer's too.
    let count = |operation: &str, driver: &str| {
        must(&after, "rollscale_driver_call_duration_seconds_count", &[("driver", driver), ("operation", operation)])
    };
    let calls = fleet.calls();
    assert_eq!(count("replace_image", "fleet"), calls.replace_image as f64);
    assert_eq!(calls.replace_image, 4, "each instance changed once");
    assert_eq!(count("create_instance", "fleet"), calls.create as f64);
    assert_eq!(count("look", "fleet"), 1.0, "one health pass, one look");
    assert!(count("set_weight", "load_balancer") >= 8.0, "into Standby and out, for each of 4");
    assert!(count("register", "load_balancer") >= 4.0);
    assert_eq!(total(&after, "rollscale_driver_call_errors_total", &[]), 0.0);

    // One reconcile pass and one health pass, both fine.
    let passes = |family: &str, outcome: &str| must(&after, &format!("{family}_count"), &[("outcome", outcome)]);
    assert_eq!(passes("rollscale_reconcile_pass_duration_seconds", "ok"), 1.0);
    assert_eq!(passes("rollscale_reconcile_pass_duration_seconds", "error"), 0.0);
    assert_eq!(passes("rollscale_health_pass_duration_seconds", "ok"), 1.0);

    // The alert: delivered to one webhook, given up on the other after its only attempt.
    let attempts = "rollscale_webhook_attempts_total";
    assert_eq!(must(&after, attempts, &[("outcome", "delivered")]), 1.0);
    assert_eq!(must(&after, attempts, &[("outcome", "http_error")]), 1.0);
    assert_eq!(must(&after, attempts, &[("outcome", "unreachable")]), 0.0);
    assert_eq!(must(&after, "rollscale_webhook_attempt_duration_seconds_count", &[]), 2.0);
    let deliveries = "rollscale_webhook_deliveries_total";
    assert_eq!(must(&after, deliveries, &[("result", "delivered")]), 1.0);
    assert_eq!(must(&after, deliveries, &[("result", "failed")]), 1.0);

    // No id of any kind in a label: not the key, the group, the task, an instance.
    let instance = service.instances(Some(&group.id), None, None).await.expect("instances")[0].id.to_string();
    for secret in [app.key_id.as_str(), group_id.as_str(), task.as_str(), instance.as_str(), "metrics-replica"] {
        assert!(!text.contains(secret), "{secret} is in the scrape");
    }

    // Not authenticated, and not a call of the API: scraping counts nothing.
    let (_, again) = scrape(&app.router).await;
    assert_eq!(total(&again, requests, &[]), 13.0);
}

/// An instance of the scrape-cost store.
fn instance(n: u32, group: &ScalingGroupId) -> Instance {
    Instance {
        id: InstanceId::from_random(u128::from(n) + 1),
        group_id: group.clone(),
        lifecycle_state: match n % 10 {
            0 => LifecycleState::Standby,
            1 => LifecycleState::Protected,
            _ => LifecycleState::InService,
        },
        health_status: match n % 4 {
            0 => HealthStatus::Unhealthy,
            _ => HealthStatus::Healthy,
        },
        creation_type: CreationType::AutoCreated,
        image_id: "centos_7_8_x64_20G_alibase_20200717.vhd".into(),
        packages: vec![("wordpress".into(), "v3".into())],
        containers: Vec::new(),
        tags: vec!["exec-0123456789abcdef0123".into()],
        address: format!("10.0.{}.{}:8080", n / 250, n % 250),
        created_at: i64::from(n),
        changed_at: None,
        observed: None,
        observed_at: None,
    }
}

/// What a scrape costs over a store of 10,000 instances in 10 groups: printed, not asserted
/// (a debug build on a shared machine says little of a release build's time); the figures
/// must be right.
#[tokio::test]
async fn a_scrape_over_ten_thousand_instances() {
    const SIZE: u32 = 10_000;
    let h = Harness::builder().build().await;
    for g in 0..10u32 {
        let group = ScalingGroupId::from_random(u128::from(g) + 1);
        let instances: Vec<Instance> = (g * 1000..(g + 1) * 1000).map(|n| instance(n, &group)).collect();
        h.store.instance_insert_many(&instances).await.expect("instances");
    }
    let app = router(h.service.clone(), AuthConfig::default());
    let mut times = Vec::new();
    let mut service_times = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let text = fetch(&app).await;
        times.push(started.elapsed());
        let series = parse(&text).unwrap_or_else(|error| panic!("not the exposition format: {error}\n{text}"));
        let started = Instant::now();
        h.service.metrics().await.expect("the figures");
        service_times.push(started.elapsed());
        let expect = |state: &str, health: &str, count: u32| {
            let labels = [("lifecycle_state", state), ("health_status", health)];
            assert_eq!(must(&series, "rollscale_instances", &labels), f64::from(count), "{labels:?}");
        };
        // n % 10 = 0 Standby (every other one also n % 4 = 0), 1 Protected, else InService.
        expect("Standby", "Unhealthy", SIZE / 20);
        expect("Standby", "Healthy", SIZE / 20);
        expect("Protected", "Unhealthy", 0);
        expect("Protected", "Healthy", SIZE / 10);
        expect("InService", "Unhealthy", SIZE / 4 - SIZE / 20);
        expect("InService", "Healthy", SIZE * 8 / 10 - (SIZE / 4 - SIZE / 20));
    }
    times.sort();
    service_times.sort();
    println!(
        "a scrape over {SIZE} instances (this build, through the router): median {:?}, fastest {:?}, \
         slowest {:?}; of which Service::metrics (the store's two statements) median {:?}",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        service_times[service_times.len() / 2],
    );
}
