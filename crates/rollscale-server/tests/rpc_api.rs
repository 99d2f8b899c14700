//! The RPC API through the real router: every captured SDK request authenticates, a replay is
//! refused, errors have the SDKs' shape, and responses follow each version's shape.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use rollscale_core::domain::{AccessKey, AccessKeyStatus};
use rollscale_engine::service::NewGroup;
use rollscale_engine::Service;
use rollscale_server::{router, AuthConfig};
use rollscale_test_support::engine::execution_id;
use rollscale_test_support::engine::group_id;
use rollscale_test_support::engine::{configuration, create_group, enabled_group};
use rollscale_test_support::server;
use serde_json::Value;
use std::time::Duration;
use tower::ServiceExt;

const KEY_ID: &str = "LTAIdummyAccessKeyId";
const SECRET: &str = "dummySecret";

async fn app(max_skew: Duration) -> (axum::Router, Service, tempfile::TempDir) {
    let (service, dir) = server::service(KEY_ID, SECRET, 0).await;
    (router(service.clone(), AuthConfig { max_skew, ..AuthConfig::default() }), service, dir)
}

async fn send(app: &axum::Router, request: Request<Body>) -> (u16, String, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"));
    (status, content_type, body)
}

fn captured(capture: &Value) -> Request<Body> {
    let line = capture["request_line"].as_str().unwrap();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap(), parts.next().unwrap());
    let mut builder = Request::builder().method(method).uri(target);
    for header in capture["headers"].as_array().unwrap() {
        builder = builder.header(header[0].as_str().unwrap(), header[1].as_str().unwrap());
    }
    builder.body(Body::from(capture["body"].as_str().unwrap_or("").to_string())).unwrap()
}

fn captures() -> Vec<Value> {
    // Made by scripts/sdk-fixtures from the official SDKs.
    let path = format!("{}/tests/fixtures/sdk-captures.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

const AUTH_CODES: &[&str] = &[
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId.NotFound",
    "IncompleteSignature",
    "InvalidTimeStamp.Expired",
    "InvalidTimeStamp.Format",
    "SignatureNonceUsed",
    "InvalidVersion",
    "InvalidAction.NotFound",
];

#[tokio::test]
async fn every_captured_sdk_request_is_authenticated_and_answered_in_json() {
    // The captures are dated; a wide window lets them through the timestamp check.
    let (app, _service, _dir) = app(Duration::from_secs(50 * 365 * 86_400)).await;
    let captures = captures();
    assert_eq!(captures.len(), 33);
    for capture in &captures {
        let (status, content_type, body) = send(&app, captured(capture)).await;
        let line = capture["request_line"].as_str().unwrap();
        assert_eq!(content_type, "application/json;charset=utf-8", "{line}");
        assert!(body["RequestId"].as_str().is_some_and(|id| !id.is_empty()), "{line}: {body}");
        let code = body["Code"].as_str().unwrap_or("");
        assert!(!AUTH_CODES.contains(&code), "{line}: refused by authentication or routing: {body}");
        if status != 200 {
            // The probes name groups and executions that do not exist here.
            assert!(matches!(status, 400 | 404), "{line}: {status} {body}");
            assert!(body["Message"].as_str().is_some_and(|m| !m.is_empty()) && body["HostId"].is_string(), "{body}");
        }
    }
    // The same request again: its nonce was used.
    let (status, _, body) = send(&app, captured(&captures[0])).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("SignatureNonceUsed")), "{body}");
}

#[tokio::test]
async fn stale_timestamps_and_bad_signatures_are_refused() {
    let (app, _service, _dir) = app(Duration::from_secs(900)).await;
    let capture = &captures()[0];
    let (status, _, body) = send(&app, captured(capture)).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("InvalidTimeStamp.Expired")), "{body}");
    // A fresh request signed with the wrong secret: the message has the server's string to sign
    // after a ':' (the old SDK splits on it).
    let request = signed("2019-06-01", "ListExecutions", vec![], "wrong-secret");
    let (status, _, body) = send(&app, request).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("SignatureDoesNotMatch")), "{body}");
    assert!(
        body["Message"].as_str().unwrap().split(':').nth(1).is_some_and(|sts| sts.starts_with("POST&%2F&")),
        "{body}"
    );
    let unsigned = Request::builder()
        .method("POST")
        .uri("/?Action=ListExecutions&Version=2019-06-01")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(&app, unsigned).await;
    assert_eq!(status, 400, "{body}");
}

fn signed(version: &str, action: &str, extra: Vec<(&str, String)>, secret: &str) -> Request<Body> {
    signed_by(KEY_ID, version, action, extra, secret)
}

fn signed_by(key_id: &str, version: &str, action: &str, extra: Vec<(&str, String)>, secret: &str) -> Request<Body> {
    let mut params: Vec<(&str, &str)> = vec![("RegionId", "local")];
    params.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
    server::rpc_request(key_id, secret, version, action, &params)
}

#[tokio::test]
async fn start_list_and_shapes_follow_the_wire_types() {
    let (app, service, _dir) = app(Duration::from_secs(900)).await;
    service.create_image("old", None, None).await.unwrap();
    service.create_image("new", None, None).await.unwrap();
    let new = NewGroup { name: "g".into(), max_size: 4, desired_capacity: Some(2), ..NewGroup::default() };
    let (group, _) = enabled_group(&service, new, configuration("old")).await;
    service.reconcile_group(&group).await.unwrap();

    let parameters =
        serde_json::json!({"invokeType": "invoke", "scalingGroupId": group.id, "imageId": "new", "batchNumber": 2});
    let (status, _, body) = send(
        &app,
        signed(
            "2019-06-01",
            "StartExecution",
            vec![
                ("TemplateName", "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup".into()),
                ("Parameters", parameters.to_string()),
            ],
            SECRET,
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let execution = &body["Execution"];
    // docs/wire.md, "A response": StartExecution's Parameters is a JSON text; Counters an object; IsParent a bool.
    assert!(
        execution["Parameters"].is_string() && execution["Counters"].is_object() && execution["IsParent"].is_boolean()
    );
    assert!(execution["CurrentTasks"].is_array() && execution["Tags"].is_object() && execution["Outputs"].is_string());
    let id = execution["ExecutionId"].as_str().unwrap().to_string();

    let (_, _, listed) =
        send(&app, signed("2019-06-01", "ListExecutions", vec![("ExecutionId", id.clone())], SECRET)).await;
    assert!(listed["Executions"][0]["Parameters"].is_object(), "ListExecutions has Parameters as an object: {listed}");
    assert!(listed["MaxResults"].is_i64() && listed["TotalCount"].is_i64() && listed["NextToken"].is_string());
    let (_, _, children) =
        send(&app, signed("2019-06-01", "ListExecutions", vec![("ParentExecutionId", id.clone())], SECRET)).await;
    assert_eq!(children["Executions"].as_array().unwrap().len(), 2, "{children}");
    assert!(children["Executions"][0]["Parameters"]["instanceId"].as_str().unwrap().starts_with("i-"));
    let (_, _, tasks) =
        send(&app, signed("2019-06-01", "ListTaskExecutions", vec![("ExecutionId", id.clone())], SECRET)).await;
    let task = &tasks["TaskExecutions"][0];
    assert!(
        task["Properties"].is_string()
            && task["Outputs"].is_string()
            && task["Loop"].is_object()
            && task["LoopBatchNumber"].is_i64()
    );

    // ESS: 2014 wraps lists, 2022 does not.
    let (_, _, old) = send(
        &app,
        signed("2014-08-28", "DescribeScalingGroups", vec![("ScalingGroupId.1", group.id.to_string())], SECRET),
    )
    .await;
    assert!(old["ScalingGroups"]["ScalingGroup"].is_array(), "{old}");
    assert!(old["ScalingGroups"]["ScalingGroup"][0]["SuspendedProcesses"]["SuspendedProcess"].is_array());
    let (_, _, new) = send(
        &app,
        signed("2022-02-22", "DescribeScalingGroups", vec![("ScalingGroupIds.1", group.id.to_string())], SECRET),
    )
    .await;
    assert!(new["ScalingGroups"].is_array() && new["ScalingGroups"][0]["SuspendedProcesses"].is_array(), "{new}");
    assert!(new["TotalCount"].is_i64() && new["PageNumber"].is_i64() && new["PageSize"].is_i64());

    // Errors: unknown action, missing parameter, unknown template.
    let (status, _, body) = send(&app, signed("2019-06-01", "Nope", vec![], SECRET)).await;
    assert_eq!((status, body["Code"].as_str()), (404, Some("InvalidAction.NotFound")));
    let (status, _, body) = send(&app, signed("2019-06-01", "StartExecution", vec![], SECRET)).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("MissingParameter")));
    let (status, _, body) =
        send(&app, signed("2019-06-01", "StartExecution", vec![("TemplateName", "ACS-ECS-Nothing".into())], SECRET))
            .await;
    assert_eq!((status, body["Code"].as_str()), (404, Some("EntityNotExists.Template")));
}

/// A group of `size` InService instances on image "old", and the image "new".
async fn active_group(service: &Service, size: u32) -> String {
    service.create_image("old", None, None).await.unwrap();
    service.create_image("new", None, None).await.unwrap();
    let new = NewGroup { name: "g".into(), max_size: 4, desired_capacity: Some(size), ..NewGroup::default() };
    let (group, _) = enabled_group(service, new, configuration("old")).await;
    service.reconcile_group(&group).await.unwrap();
    group.id.to_string()
}

fn start_request(group: &str, pause: &str, token: &str) -> Request<Body> {
    let parameters = serde_json::json!({
        "invokeType": "invoke", "scalingGroupId": group, "imageId": "new", "batchNumber": 2, "batchPauseOption": pause,
    });
    signed(
        "2019-06-01",
        "StartExecution",
        vec![
            ("TemplateName", "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup".into()),
            ("Parameters", parameters.to_string()),
            ("ClientToken", token.into()),
        ],
        SECRET,
    )
}

#[tokio::test]
async fn a_client_token_makes_start_execution_idempotent() {
    let (app, service, _dir) = app(Duration::from_secs(900)).await;
    let group = active_group(&service, 2).await;
    let (status, _, first) = send(&app, start_request(&group, "FirstBatchPause", "token-1")).await;
    assert_eq!(status, 200, "{first}");
    let id = first["Execution"]["ExecutionId"].as_str().unwrap().to_string();
    // The same token and parameters: the same execution, as it stands now; no second task.
    let (status, _, again) = send(&app, start_request(&group, "FirstBatchPause", "token-1")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["Execution"]["ExecutionId"], id.as_str(), "{again}");
    assert!(again["Execution"]["Parameters"].is_string() && again["Execution"]["Counters"].is_object());
    let (_, _, listed) = send(&app, signed("2019-06-01", "ListExecutions", vec![], SECRET)).await;
    assert_eq!(listed["TotalCount"], 1, "{listed}");
    // The same token with other parameters is refused; a new token meets the running task.
    let (status, _, body) = send(&app, start_request(&group, "Automatic", "token-1")).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("IdempotentParameterMismatch")), "{body}");
    let (status, _, body) = send(&app, start_request(&group, "FirstBatchPause", "token-2")).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("IncorrectScalingGroupStatus")), "{body}");
    // That refusal gave token-2 back: once the group is free, the same request runs.
    service.cancel_task(&execution_id(&id), true).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !service.task(&execution_id(&id)).await.unwrap().0.status.is_final() {
        assert!(std::time::Instant::now() < deadline, "the cancel did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _, body) = send(&app, start_request(&group, "FirstBatchPause", "token-2")).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["Execution"]["ExecutionId"], id.as_str());
    // Tokens are durable: token-1 still names the first execution.
    let (_, _, body) = send(&app, start_request(&group, "FirstBatchPause", "token-1")).await;
    assert_eq!(body["Execution"]["ExecutionId"], id.as_str(), "{body}");
}

#[tokio::test]
async fn a_client_token_makes_creates_idempotent_per_caller_even_concurrently() {
    let (app, service, _dir) = app(Duration::from_secs(900)).await;
    service
        .engine
        .store()
        .access_key_insert_bootstrap(&AccessKey {
            id: "LTAIotherCaller".into(),
            secret: "otherSecret".into(),
            user_name: "other".into(),
            status: AccessKeyStatus::Active,
            created_at: 0,
            tokens_not_before: 0,
        })
        .await
        .unwrap();
    let create = |key: &str, secret: &str, name: &str| {
        signed_by(
            key,
            "2014-08-28",
            "CreateScalingGroup",
            vec![
                ("ScalingGroupName", name.into()),
                ("MinSize", "0".into()),
                ("MaxSize", "2".into()),
                ("ClientToken", "same-token".into()),
            ],
            secret,
        )
    };
    // Eight at once with one token: one group, the same id for all.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (app, request) = (app.clone(), create(KEY_ID, SECRET, "g1"));
        handles.push(tokio::spawn(async move { send(&app, request).await }));
    }
    let mut ids = Vec::new();
    for handle in handles {
        let (status, _, body) = handle.await.unwrap();
        assert_eq!(status, 200, "{body}");
        ids.push(body["ScalingGroupId"].as_str().unwrap().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(service.groups(None, None).await.unwrap().len(), 1);
    // Another caller's token is its own.
    let (status, _, other) = send(&app, create("LTAIotherCaller", "otherSecret", "g2")).await;
    assert_eq!(status, 200, "{other}");
    assert_ne!(other["ScalingGroupId"], ids[0].as_str());

    let configuration = |token: &str| {
        signed(
            "2022-02-22",
            "CreateScalingConfiguration",
            vec![("ScalingGroupId", ids[0].clone()), ("ImageId", "img".into()), ("ClientToken", token.into())],
            SECRET,
        )
    };
    service.create_image("img", None, None).await.unwrap();
    let (_, _, one) = send(&app, configuration("c")).await;
    let (_, _, two) = send(&app, configuration("c")).await;
    assert!(one["ScalingConfigurationId"].as_str().unwrap().starts_with("asc-"), "{one}");
    assert_eq!(one["ScalingConfigurationId"], two["ScalingConfigurationId"]);
    assert_eq!(service.configurations(Some(&group_id(&ids[0])), None).await.unwrap().len(), 1);
    let (status, _, body) = send(&app, configuration(&"x".repeat(65))).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("InvalidParameter")), "{body}");
}

#[tokio::test]
async fn create_image_with_an_instance_id_makes_the_image_from_that_instance() {
    let (app, service, _dir) = app(Duration::from_secs(900)).await;
    let group = active_group(&service, 1).await;
    let instance = service.instances(Some(&group_id(&group)), None, None).await.unwrap()[0].id.to_string();
    for version in ["2014-08-28", "2014-05-26"] {
        let name = format!("golden-{version}");
        let request =
            signed(version, "CreateImage", vec![("InstanceId", instance.clone()), ("ImageName", name.clone())], SECRET);
        let (status, _, body) = send(&app, request).await;
        assert_eq!(status, 200, "{body}");
        let id = body["ImageId"].as_str().expect("ImageId").to_string();
        let image = service.images().await.unwrap().into_iter().find(|image| image.id == id).expect("in the catalog");
        assert_eq!((image.name.as_str(), image.kind.as_str()), (name.as_str(), "custom"));
    }
    let both =
        signed("2014-08-28", "CreateImage", vec![("InstanceId", instance.clone()), ("ImageId", "x".into())], SECRET);
    let (status, _, body) = send(&app, both).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("InvalidParameter")), "{body}");
    let missing = signed("2014-08-28", "CreateImage", vec![("InstanceId", "i-nothere".into())], SECRET);
    let (status, _, body) = send(&app, missing).await;
    assert_eq!((status, body["Code"].as_str()), (404, Some("InvalidInstanceId.NotFound")), "{body}");
}

/// ModifyScalingGroup and EnableScalingGroup answer at once: the reconciler, woken, brings
/// the group to its capacity, and the scaling activity records the outcome. The calls do not
/// wait for new instances' health checks (120 s here, as the image is broken at first).
#[tokio::test]
async fn capacity_changes_answer_before_new_instances_are_brought_up() {
    use rollscale_core::domain::{ActivityStatus, LifecycleState};
    let fleet = rollscale_fleet::sim::SimFleet::new(rollscale_fleet::sim::SimConfig::default());
    let (service, _dir) = server::service_over(KEY_ID, SECRET, fleet.clone()).await;
    let app = router(service.clone(), AuthConfig::default());
    service.create_image("img", None, None).await.unwrap();
    let new = NewGroup { name: "g".into(), max_size: 4, desired_capacity: Some(1), ..NewGroup::default() };
    let (group, _) = create_group(&service, new, configuration("img")).await;
    fleet.set_unhealthy_image("img", true);
    let gid = group.id.to_string();
    // Settles (panics) as soon as the store has a new instance: one being brought up.
    let bringing_up = || {
        let (service, gid) = (service.clone(), gid.clone());
        async move {
            loop {
                let instances = service.instances(Some(&group_id(&gid)), None, None).await.unwrap();
                if instances.iter().any(|i| i.lifecycle_state == LifecycleState::Pending) {
                    panic!("the call was still running while a new instance was being brought up");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let calls = [
        ("EnableScalingGroup", vec![("ScalingGroupId", gid.clone())]),
        ("ModifyScalingGroup", vec![("ScalingGroupId", gid.clone()), ("DesiredCapacity", "2".to_string())]),
    ];
    for (action, params) in calls {
        let request = signed("2014-08-28", action, params, SECRET);
        tokio::select! {
            biased;
            (status, _, body) = send(&app, request) => assert_eq!(status, 200, "{action}: {body}"),
            () = bringing_up() => unreachable!(),
        }
    }
    assert!(
        service.instances(Some(&group_id(&gid)), None, None).await.unwrap().is_empty(),
        "the calls brought nothing up"
    );

    // The reconciler does, and the scaling activity says how it went.
    fleet.set_unhealthy_image("img", false);
    service.spawn_reconciler();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let instances = service.instances(Some(&group_id(&gid)), None, None).await.unwrap();
        let (activities, _) = service.activities(&group_id(&gid), 0, 10).await.unwrap();
        let in_service = instances.iter().filter(|i| i.lifecycle_state == LifecycleState::InService).count();
        if in_service == 2 && activities.iter().all(|a| a.status == ActivityStatus::Successful) {
            assert!(!activities.is_empty());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{instances:?} {activities:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// DescribeScalingGroups' group of `id` in the version's shape, with its health check types as
/// a plain list.
async fn described_group(app: &axum::Router, version: &str, id: &str) -> (Value, Vec<String>) {
    let ids = if version == "2014-08-28" { "ScalingGroupId.1" } else { "ScalingGroupIds.1" };
    let (status, _, body) =
        send(app, signed(version, "DescribeScalingGroups", vec![(ids, id.to_string())], SECRET)).await;
    assert_eq!(status, 200, "{body}");
    let group = if version == "2014-08-28" {
        body["ScalingGroups"]["ScalingGroup"][0].clone()
    } else {
        body["ScalingGroups"][0].clone()
    };
    let listed = if version == "2014-08-28" {
        &group["HealthCheckTypes"]["HealthCheckType"]
    } else {
        &group["HealthCheckTypes"]
    };
    let types = listed.as_array().unwrap_or_else(|| panic!("HealthCheckTypes in {version}'s shape: {group}"));
    (group.clone(), types.iter().map(|t| t.as_str().unwrap().to_string()).collect())
}

/// Parameters, the health check types they make, the grace period.
type HealthCheckForm<'a> = (Vec<(&'a str, String)>, &'a [&'a str], u64);

#[tokio::test]
async fn health_check_types_are_taken_in_every_form_of_both_versions_and_described() {
    let (app, service, _dir) = app(Duration::from_secs(900)).await;
    for version in ["2014-08-28", "2022-02-22"] {
        let create = |extra: Vec<(&str, String)>| {
            let mut params = vec![("MinSize", "0".to_string()), ("MaxSize", "2".to_string())];
            params.extend(extra);
            signed(version, "CreateScalingGroup", params, SECRET)
        };
        let forms: Vec<HealthCheckForm> = vec![
            // None given: ESS's default.
            (vec![], &["ECS"], 0),
            // One, as HealthCheckType; the older LOADBALANCER spelling.
            (vec![("HealthCheckType", "LOADBALANCER".into())], &["LOAD_BALANCER"], 0),
            // A list, flattened as both SDK families send it.
            (
                vec![
                    ("HealthCheckTypes.1", "ECS".into()),
                    ("HealthCheckTypes.2", "LOAD_BALANCER".into()),
                    ("HealthCheckGracePeriod", "30".into()),
                ],
                &["ECS", "LOAD_BALANCER"],
                30,
            ),
            // A JSON array under the bare name; a repeat is taken once.
            (vec![("HealthCheckTypes", r#"["LOAD_BALANCER","ECS","ECS"]"#.into())], &["LOAD_BALANCER", "ECS"], 0),
            // Both: HealthCheckType wins, as the SDK's model documents.
            (vec![("HealthCheckType", "NONE".into()), ("HealthCheckTypes.1", "ECS".into())], &["NONE"], 0),
        ];
        for (params, types, grace) in forms {
            let what = format!("{version} {params:?}");
            let (status, _, body) = send(&app, create(params)).await;
            assert_eq!(status, 200, "{what}: {body}");
            let id = body["ScalingGroupId"].as_str().unwrap().to_string();
            let stored = service.group(&group_id(&id)).await.unwrap();
            assert_eq!(stored.health_check_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(), types, "{what}");
            let (group, described) = described_group(&app, version, &id).await;
            assert_eq!(described, types, "{what}: {group}");
            assert_eq!(group["HealthCheckType"], types[0], "HealthCheckType is the first: {group}");
            assert_eq!(group["HealthCheckGracePeriod"].as_u64(), Some(grace), "{what}: {group}");
        }

        // ModifyScalingGroup: each form replaces the types; what is not given stays.
        let (_, _, body) = send(&app, create(vec![])).await;
        let id = body["ScalingGroupId"].as_str().unwrap().to_string();
        let modify = |extra: Vec<(&str, String)>| {
            let mut params = vec![("ScalingGroupId", id.clone())];
            params.extend(extra);
            signed(version, "ModifyScalingGroup", params, SECRET)
        };
        let changes: Vec<HealthCheckForm> = vec![
            (vec![("HealthCheckType", "LOAD_BALANCER".into())], &["LOAD_BALANCER"], 0),
            (
                vec![
                    ("HealthCheckTypes.1", "LOADBALANCER".into()),
                    ("HealthCheckTypes.2", "ECS".into()),
                    ("HealthCheckGracePeriod", "7200".into()),
                ],
                &["LOAD_BALANCER", "ECS"],
                7200,
            ),
            (vec![("MaxSize", "3".into())], &["LOAD_BALANCER", "ECS"], 7200),
            (vec![("HealthCheckGracePeriod", "0".into())], &["LOAD_BALANCER", "ECS"], 0),
            (vec![("HealthCheckTypes", r#"["NONE"]"#.into())], &["NONE"], 0),
            (vec![("HealthCheckType", "ECS".into()), ("HealthCheckTypes.1", "NONE".into())], &["ECS"], 0),
        ];
        for (params, types, grace) in changes {
            let what = format!("{version} {params:?}");
            let (status, _, body) = send(&app, modify(params)).await;
            assert_eq!(status, 200, "{what}: {body}");
            let (group, described) = described_group(&app, version, &id).await;
            assert_eq!(described, types, "{what}: {group}");
            assert_eq!(group["HealthCheckGracePeriod"].as_u64(), Some(grace), "{what}: {group}");
        }
    }
}

/// Records what a health check pass would have seen of the group's first instance: stopped, on
/// another image than its record's, Unhealthy; the second instance was never looked at.
/// Returns both ids and the time of the look.
async fn observe_first(service: &Service, group: &str) -> (String, String, i64) {
    use rollscale_core::domain::HealthStatus;
    use rollscale_core::health::Observed;
    let instances = service.instances(Some(&group_id(group)), None, None).await.unwrap();
    let (first, second) = (&instances[0], &instances[1]);
    let stored = service.engine.store().instance_get(&first.id).await.unwrap().unwrap();
    let mut seen = stored.value.clone();
    seen.health_status = HealthStatus::Unhealthy;
    seen.observed = Some(Observed {
        exists: true,
        running: false,
        image_id: "out-of-band".into(),
        packages: vec![("nginx".into(), "1.2".into())],
        containers: Vec::new(),
        failed_checks: 0,
        problem: Some("stopped".into()),
        drift: vec!["image: recorded old, runs out-of-band".into()],
        since: 1_700_000_000_000,
    });
    service.engine.store().instance_update(&seen, stored.generation).await.unwrap();
    let at = 1_700_000_005_000;
    service.engine.store().instances_observed(&[&first.id], at).await.unwrap();
    (first.id.to_string(), second.id.to_string(), at)
}

#[tokio::test]
async fn describe_scaling_instances_shows_the_observed_health_and_what_was_seen() {
    let (app, service, _dir) = app(Duration::from_secs(900)).await;
    let group = active_group(&service, 2).await;
    let (first, second, _) = observe_first(&service, &group).await;
    for version in ["2014-08-28", "2022-02-22"] {
        let (status, _, body) =
            send(&app, signed(version, "DescribeScalingInstances", vec![("ScalingGroupId", group.clone())], SECRET))
                .await;
        assert_eq!(status, 200, "{body}");
        let items = match version {
            "2014-08-28" => body["ScalingInstances"]["ScalingInstance"].as_array().unwrap().clone(),
            _ => body["ScalingInstances"].as_array().unwrap().clone(),
        };
        let find = |id: &str| items.iter().find(|i| i["InstanceId"] == id).unwrap().clone();
        let (seen, unseen) = (find(&first), find(&second));
        assert_eq!(seen["HealthStatus"], "Unhealthy", "{seen}");
        assert_eq!(seen["ImageId"], "old", "the record keeps what rollscale made it: {seen}");
        assert_eq!(seen["LastObservedTime"], "2023-11-14T22:13:25Z", "{seen}");
        assert_eq!(seen["ObservedImageId"], "out-of-band");
        assert_eq!(seen["Running"], false);
        assert_eq!(seen["HealthProblem"], "stopped");
        let drifts = if version == "2014-08-28" { &seen["Drifts"]["Drift"] } else { &seen["Drifts"] };
        assert_eq!(drifts, &serde_json::json!(["image: recorded old, runs out-of-band"]), "{version}: {seen}");
        // Never looked at: the observation is empty, HealthStatus the record's.
        assert_eq!(unseen["HealthStatus"], "Healthy", "{unseen}");
        assert_eq!((unseen["LastObservedTime"].as_str(), unseen["ObservedImageId"].as_str()), (Some(""), Some("")));
        assert!(unseen["Running"].is_null() && unseen["HealthProblem"] == "", "{unseen}");
        let drifts = if version == "2014-08-28" { &unseen["Drifts"]["Drift"] } else { &unseen["Drifts"] };
        assert_eq!(drifts, &serde_json::json!([]), "{version}: {unseen}");
    }
}

#[tokio::test]
async fn events_without_an_execution_show_none_in_every_rendering() {
    use rollscale_core::domain::{Event, EventKind, EventLevel, HEALTH_CHECK_EVENT};
    let (app, service, _dir) = app(Duration::from_secs(900)).await;
    let group = active_group(&service, 1).await;
    let instance = service.instances(Some(&group_id(&group)), None, None).await.unwrap()[0].id.to_string();
    let put = [
        ("RuleName", "health"),
        ("EventPattern.1.Product", "ess"),
        ("EventPattern.1.NameList.1", HEALTH_CHECK_EVENT),
        ("WebhookParameters.1.Id", "hook"),
        ("WebhookParameters.1.Url", "http://127.0.0.1:9/"),
    ];
    let (status, _, body) = send(
        &app,
        signed("2019-01-01", "PutEventRule", put[..3].iter().map(|(k, v)| (*k, v.to_string())).collect(), SECRET),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let targets = [put[0], put[3], put[4]].iter().map(|(k, v)| (*k, v.to_string())).collect();
    let (status, _, body) = send(&app, signed("2019-01-01", "PutEventRuleTargets", targets, SECRET)).await;
    assert_eq!(status, 200, "{body}");
    let event = Event {
        id: format!("{instance}-InstanceUnhealthy-1"),
        name: HEALTH_CHECK_EVENT.into(),
        level: EventLevel::Warn,
        kind: EventKind::InstanceUnhealthy,
        group_id: rollscale_core::ids::ScalingGroupId::parse(&group).unwrap(),
        execution_id: None,
        content: format!("{instance} is stopped"),
        created_at: 1_700_000_000_000,
    };
    service.engine.store().event_insert(&event).await.unwrap();

    for (version, wrapped) in [("2014-08-28", true), ("2022-02-22", false)] {
        let params = vec![("ScalingGroupId", group.clone())];
        let (status, _, body) = send(&app, signed(version, "DescribeEvents", params, SECRET)).await;
        assert_eq!(status, 200, "{body}");
        let events = if wrapped { &body["Events"]["Event"] } else { &body["Events"] };
        let found = events.as_array().unwrap().iter().find(|e| e["Kind"] == "InstanceUnhealthy").unwrap();
        assert_eq!((found["ExecutionId"].as_str(), found["Name"].as_str()), (Some(""), Some(HEALTH_CHECK_EVENT)));
    }
    let (status, _, body) =
        send(&app, signed("2019-01-01", "DescribeEventRuleDeliveries", vec![("RuleName", "health".into())], SECRET))
            .await;
    assert_eq!(status, 200, "{body}");
    let delivered = &body["Deliveries"]["Delivery"][0]["Event"];
    assert_eq!((delivered["Kind"].as_str(), delivered["ExecutionId"].as_str()), (Some("InstanceUnhealthy"), Some("")));

    // REST: null, as every absent value of the REST API.
    let token = rollscale_server::rest::auth::make_token(KEY_ID, SECRET, chrono::Utc::now().timestamp() + 600);
    let path = format!("/v1/events?scaling_group_id={group}");
    let (status, body) = server::send(&app, server::rest_request(&token, "get", &path, None)).await;
    assert_eq!(status, 200, "{body}");
    let found = body["items"].as_array().unwrap().iter().find(|e| e["kind"] == "InstanceUnhealthy").unwrap();
    assert!(found["execution_id"].is_null(), "{found}");
    let (status, body) =
        server::send(&app, server::rest_request(&token, "get", "/v1/alert-rules/health/deliveries", None)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["items"][0]["event"]["execution_id"].is_null(), "{body}");
}
