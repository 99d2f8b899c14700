//! Random and malformed requests at both APIs: signed RPC calls with random actions, versions,
//! parameter names and values; unsigned garbage; REST calls with random methods, paths and JSON
//! bodies. Whatever arrives, the service answers with JSON, never with a 500 or a panic, and a
//! request it refuses (status 400 and above) changes nothing.

mod common;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use proptest::prelude::*;
use rollscale_engine::service::{NewConfiguration, NewGroup};
use rollscale_engine::Service;
use rollscale_server::rest::auth::make_token;
use rollscale_server::rpc::sign;
use rollscale_server::{router, AuthConfig};
use rollscale_store::ExecutionFilter;
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;
use tower::ServiceExt;

const KEY_ID: &str = "LTAIfuzzAccessKeyId00";
const SECRET: &str = "fuzzSecret";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    service: Service,
    token: String,
    /// Real ids, so that random requests also reach past the lookups.
    ids: Vec<String>,
    _dir: tempfile::TempDir,
}

/// One service for every case of a test binary: state accumulates, as it would in production.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (router, service, ids, dir) = runtime.block_on(async {
            let (service, dir) = common::service(KEY_ID, SECRET, 0).await;
            service.create_image("img-a", None, None).await.unwrap();
            service.create_image("img-b", None, None).await.unwrap();
            service.create_package("wordpress", "v1", "echo install", "echo remove").await.unwrap();
            let lb = service.create_load_balancer("lb", 100).await.unwrap();
            let group = service
                .create_group(NewGroup {
                    name: "fuzz".into(),
                    max_size: 6,
                    desired_capacity: Some(3),
                    load_balancer_ids: vec![lb.id.clone()],
                    ..NewGroup::default()
                })
                .await
                .unwrap();
            let configuration = service
                .create_configuration(NewConfiguration {
                    group_id: group.id.to_string(),
                    image_id: "img-a".into(),
                    ..NewConfiguration::default()
                })
                .await
                .unwrap();
            let group = service.enable_group(group.id.as_str(), None).await.unwrap();
            service.reconcile_group(&group).await.unwrap();
            let params = json!({"invokeType": "invoke", "scalingGroupId": group.id, "invokeScript": "echo hi",
                                "batchPauseOption": "FirstBatchPause", "batchNumber": 2});
            let task = service
                .start_execution("ACS-ESS-RollingUpdateByRunCommandInScalingGroup", &params.to_string())
                .await
                .unwrap();
            let mut ids = vec![
                group.id.to_string(),
                configuration.id.to_string(),
                lb.id.to_string(),
                task.id.to_string(),
                "img-a".to_string(),
            ];
            let instances = service.instances(Some(group.id.as_str()), &[], None).await.unwrap();
            ids.extend(instances.iter().map(|i| i.id.to_string()));
            (router(service.clone(), AuthConfig::default()), service, ids, dir)
        });
        let token = make_token(KEY_ID, SECRET, chrono::Utc::now().timestamp() + 3600);
        Fixture { runtime, router, service, token, ids, _dir: dir }
    })
}

/// Everything a request could change, as text.
async fn snapshot(service: &Service) -> String {
    let groups = service.groups(&[], None).await.unwrap();
    let configurations = service.configurations(None, &[]).await.unwrap();
    let instances = service.instances(None, &[], None).await.unwrap();
    let lbs = service.load_balancers().await.unwrap();
    let images = service.images().await.unwrap();
    let packages = service.packages(None).await.unwrap();
    let filter = ExecutionFilter { include_children: true, ..ExecutionFilter::default() };
    let (executions, _) = service.list_executions(&filter, 0, 10_000).await.unwrap();
    format!("{groups:?}\n{configurations:?}\n{instances:?}\n{lbs:?}\n{images:?}\n{packages:?}\n{executions:?}")
}

/// Waits until no rolling update is Running, so that only the request under test changes state.
async fn settle(service: &Service) {
    let running = ExecutionFilter { status: Some("Running".into()), ..ExecutionFilter::default() };
    for _ in 0..500 {
        if service.list_executions(&running, 0, 1).await.unwrap().0.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("a rolling update kept running for 5 s");
}

/// Sends `request`; checks the answer is JSON and not a 500, and that a refusal changed nothing.
fn check(request: Request<Body>, what: &str) -> Result<(), TestCaseError> {
    let fixture = fixture();
    fixture.runtime.block_on(async {
        settle(&fixture.service).await;
        let before = snapshot(&fixture.service).await;
        let response = fixture.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        if std::env::var_os("FUZZ_TRACE").is_some() {
            eprintln!("FUZZ {status} {}", what.chars().take(80).collect::<String>());
        }
        let stream = response.headers().get("content-type").is_some_and(|v| v == "text/event-stream");
        if stream {
            return Ok(()); // a live stream: its own test reads it
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        prop_assert!(status < 500, "{what}: status {status}: {}", String::from_utf8_lossy(&bytes));
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| TestCaseError::fail(format!("{what}: not JSON ({e}): {bytes:?}")))?;
        if status >= 400 {
            prop_assert!(body["Code"].as_str().is_some_and(|c| !c.is_empty()), "{what}: no code: {body}");
            let after = snapshot(&fixture.service).await;
            prop_assert_eq!(before, after, "{}: refused ({}) but changed state: {}", what, status, body);
        }
        Ok(())
    })
}

const ACTIONS: &[&str] = &[
    "CancelExecution",
    "CreateImage",
    "CreateLoadBalancer",
    "CreatePackage",
    "CreateScalingGroup",
    "DeleteImage",
    "DeletePackage",
    "DeleteScalingGroup",
    "DescribeEvents",
    "DescribeImages",
    "DescribeScalingActivities",
    "DescribeScalingConfigurations",
    "DescribeScalingGroups",
    "DescribeScalingInstances",
    "EnableScalingGroup",
    "EnterStandby",
    "ExitStandby",
    "ListExecutions",
    "ListPackages",
    "ListTaskExecutions",
    "ModifyScalingConfiguration",
    "ModifyScalingGroup",
    "NotifyExecution",
    "SetBackendServers",
    "SetInstancesProtection",
    "StartExecution",
    "SuspendProcesses",
    "ResumeProcesses",
    "CreateScalingConfiguration",
    "NoSuchAction",
    "",
];

const PARAMS: &[&str] = &[
    "ScalingGroupId",
    "ScalingGroupId.1",
    "ScalingGroupIds.1",
    "InstanceId.1",
    "InstanceIds.1",
    "InstanceIds.2",
    "ExecutionId",
    "ParentExecutionId",
    "TemplateName",
    "Parameters",
    "MinSize",
    "MaxSize",
    "DesiredCapacity",
    "ScalingGroupName",
    "ImageId",
    "ScalingConfigurationId",
    "NotifyType",
    "TaskExecutionId",
    "LoopItem",
    "MaxResults",
    "NextToken",
    "PageSize",
    "PageNumber",
    "Status",
    "Process.1",
    "Processes.1",
    "ProtectedFromScaleIn",
    "LoadBalancerIds",
    "DrainTimeout",
    "ClientToken",
    "Restore",
    "Name",
    "PackageName",
    "PackageVersion",
    "InstallScript",
    "UninstallScript",
    "Version",
    "Times",
    "GroupType",
    "ForceDelete",
    "RegionId",
];

const VERSIONS: &[&str] = &["2019-06-01", "2014-08-28", "2022-02-22", "2015-05-01", "1999-01-01", ""];

/// Values: edge cases, real ids (by index into the fixture's), and arbitrary text.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("3".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("true".to_string()),
        Just("{".to_string()),
        Just("[]".to_string()),
        Just("ScaleIn".to_string()),
        Just("Approve".to_string()),
        Just("RetryTask".to_string()),
        Just("ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup".to_string()),
        Just("ACS-ESS-RollingUpdateByRunCommandInScalingGroup".to_string()),
        Just(r#"{"invokeType":"invoke","scalingGroupId":"asg-0","imageId":"img-b"}"#.to_string()),
        Just("a".repeat(5000)),
        Just("é中\u{0}\u{202e}".to_string()),
        (0usize..12).prop_map(|i| format!("@{i}")),
        "\\PC{0,40}",
    ]
}

/// `@i` stands for the fixture's i-th real id.
fn resolve(value: &str) -> String {
    match value.strip_prefix('@').and_then(|i| i.parse::<usize>().ok()) {
        Some(index) => fixture().ids.get(index).cloned().unwrap_or_default(),
        None => value.to_string(),
    }
}

fn rpc_request(action: &str, version: &str, params: &[(String, String)]) -> Request<Body> {
    let mut pairs: Vec<(String, String)> = vec![("Action".into(), action.into()), ("Version".into(), version.into())];
    pairs.extend(params.iter().map(|(k, v)| (k.clone(), resolve(v))));
    let timestamp = sign::format_timestamp(chrono::Utc::now());
    sign::sign_v1_params("POST", &mut pairs, KEY_ID, SECRET, &timestamp, &sign::random_nonce());
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
    Request::post("/").header("content-type", "application/x-www-form-urlencoded").body(Body::from(body)).unwrap()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        value().prop_map(|s| Value::String(resolve(&s))),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// Field names of the REST bodies (and a stranger), so random objects are often almost right.
const FIELDS: &[&str] = &[
    "name",
    "min_size",
    "max_size",
    "desired_capacity",
    "load_balancer_ids",
    "drain_timeout_s",
    "group_type",
    "scaling_group_id",
    "image_id",
    "containers",
    "template_name",
    "parameters",
    "restore",
    "action",
    "processes",
    "instance_ids",
    "protected",
    "id",
    "os",
    "version",
    "install_script",
    "default_weight",
    "invokeType",
    "scalingGroupId",
    "imageId",
    "batchNumber",
    "colour",
];

/// A route's method (mostly) and path with random or real ids and maybe a query parameter.
fn rest_call() -> impl Strategy<Value = (String, String)> {
    let routes: Vec<(&'static str, &'static str)> =
        rollscale_server::rest::ROUTES.iter().map(|route| (route.method, route.path)).collect();
    let other_method = prop::sample::select(vec!["get", "post", "patch", "delete", "put"]);
    (
        prop::sample::select(routes),
        prop::option::weighted(0.2, other_method),
        prop::collection::vec(value(), 2),
        prop::option::of(("[a-z_]{1,16}", value())),
    )
        .prop_map(|((method, template), other, values, query)| {
            let mut path = String::new();
            let mut values = values.into_iter();
            for segment in template.split('/').filter(|s| !s.is_empty()) {
                path.push('/');
                if segment.starts_with('{') {
                    let value = resolve(&values.next().unwrap_or_default());
                    path.push_str(
                        &percent_encoding::utf8_percent_encode(&value, percent_encoding::NON_ALPHANUMERIC).to_string(),
                    );
                } else {
                    path.push_str(segment);
                }
            }
            if let Some((name, value)) = query {
                let pair =
                    form_urlencoded::Serializer::new(String::new()).append_pair(&name, &resolve(&value)).finish();
                path = format!("{path}?{pair}");
            }
            (other.unwrap_or(method).to_ascii_uppercase(), path)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn signed_rpc_calls_with_random_parameters(
        action in prop::sample::select(ACTIONS),
        version in prop::sample::select(VERSIONS),
        params in prop::collection::vec((prop::sample::select(PARAMS), value()), 0..8),
    ) {
        let params: Vec<(String, String)> = params.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        check(rpc_request(action, version, &params), &format!("{action} {version} {params:?}"))?;
    }

    #[test]
    fn unsigned_garbage_at_the_rpc_endpoint(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
        query in "\\PC{0,60}",
        body in prop::collection::vec(any::<u8>(), 0..200),
        form in any::<bool>(),
    ) {
        let uri = format!("/?{}", percent_encoding::utf8_percent_encode(&query, percent_encoding::CONTROLS));
        let Ok(mut request) = Request::builder().method(method).uri(uri.as_str()).body(Body::from(body.clone())) else {
            return Ok(()); // not a request at all: nothing reaches the service
        };
        if form {
            request.headers_mut().insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
        }
        check(request, &format!("{method} {uri} {body:?}"))?;
    }

    #[test]
    fn rest_calls_with_random_paths_and_bodies(
        (method, path) in rest_call(),
        body in prop::option::of(json_value()),
        bearer in prop::sample::select(vec![true, true, true, false]),
    ) {
        let mut request = Request::builder().method(method.as_str()).uri(path.as_str());
        if bearer {
            request = request.header("authorization", format!("Bearer {}", fixture().token));
        }
        let body_text = body.as_ref().map(Value::to_string).unwrap_or_default();
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let Ok(request) = request.body(Body::from(body_text.clone())) else { return Ok(()) };
        check(request, &format!("{method} {path} {body_text}"))?;
    }
}
