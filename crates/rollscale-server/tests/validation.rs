//! Every parameter is checked: an RPC action refuses a parameter it does not take, naming it
//! (the common ones the SDKs send are allowed); missing and malformed parameters have their
//! codes; filters refuse values they do not know; `NotifyExecution` decides on one task
//! execution at a time and `Reject` cancels; ECS `DescribeRegions` names rollscale's region.
//! A refused request changes nothing.

mod common;

use common::{rest_request, rpc_request, send};
use rollscale_engine::service::{NewConfiguration, NewGroup};
use rollscale_engine::Service;
use rollscale_server::rest::auth::make_token;
use rollscale_server::{operations, router, AuthConfig};
use serde_json::{json, Value};
use std::time::Duration;

const KEY: &str = "LTAIvalidation0000000";
const SECRET: &str = "validationSecret";

struct App {
    router: axum::Router,
    service: Service,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let (service, dir) = common::service(KEY, SECRET, 0).await;
    App { router: router(service.clone(), AuthConfig::default()), service, _dir: dir }
}

impl App {
    async fn rpc(&self, version: &str, action: &str, params: &[(&str, &str)]) -> (u16, Value) {
        send(&self.router, rpc_request(KEY, SECRET, version, action, params)).await
    }

    /// A group of `size` InService instances on image "img".
    async fn group(&self, size: u32) -> String {
        self.service.create_image("img", None, None).await.ok();
        let group = self
            .service
            .create_group(NewGroup {
                name: "g".into(),
                max_size: 8,
                desired_capacity: Some(size),
                ..NewGroup::default()
            })
            .await
            .unwrap();
        self.service
            .create_configuration(NewConfiguration {
                group_id: group.id.to_string(),
                image_id: "img".into(),
                ..NewConfiguration::default()
            })
            .await
            .unwrap();
        let group = self.service.enable_group(group.id.as_str(), None).await.unwrap();
        self.service.reconcile_group(&group).await.unwrap();
        group.id.to_string()
    }

    /// Polls until the task's status is `status` (or fails after a generous deadline).
    async fn wait_for(&self, id: &str, status: &str) -> rollscale_core::task::TaskState {
        for _ in 0..1000 {
            let (task, _) = self.service.task(id).await.unwrap();
            if task.status.as_str() == status {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the task {id} did not become {status}");
    }
}

fn refused(answer: &(u16, Value), code: &str, names: &str) {
    let (status, body) = answer;
    assert_eq!((*status, body["Code"].as_str()), (400, Some(code)), "{body}");
    assert!(body["Message"].as_str().is_some_and(|m| m.contains(names)), "the message names {names}: {body}");
}

#[tokio::test]
async fn every_action_refuses_a_parameter_it_does_not_take_and_changes_nothing() {
    let app = app().await;
    let group = app.group(2).await;
    let before = app.service.groups(&[], None).await.unwrap();
    // The audit's example: a typo is refused, not ignored.
    let answer = app.rpc("2014-08-28", "ModifyScalingGroup", &[("ScalingGroupId", &group), ("MaxSzie", "5")]).await;
    refused(&answer, "InvalidParameter", "\"MaxSzie\"");
    assert!(answer.1["Message"].as_str().unwrap().contains("MaxSize"), "it says what the action takes: {}", answer.1);
    // Every action of every version, whatever it would do: refused before it runs.
    for operation in operations::OPERATIONS {
        for version in operation.versions {
            let answer = app.rpc(version, operation.name(), &[("ScalingGroupId", &group), ("Bogus.1", "x")]).await;
            let what = format!("{version} {}", operation.action);
            let (status, body) = &answer;
            if operation.takes("ScalingGroupId") {
                refused(&answer, "InvalidParameter", "\"Bogus.1\"");
            } else {
                assert_eq!((*status, body["Code"].as_str()), (400, Some("InvalidParameter")), "{what}: {body}");
            }
        }
    }
    assert_eq!(app.service.groups(&[], None).await.unwrap(), before, "refused requests changed a group");
    // What the SDKs send besides an action's own parameters is allowed.
    let (status, body) = app
        .rpc(
            "2014-08-28",
            "ModifyScalingGroup",
            &[
                ("ScalingGroupId", &group),
                ("MaxSize", "5"),
                ("Format", "JSON"),
                ("RegionId", "local"),
                ("SignatureType", ""),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.service.group(&group).await.unwrap().max_size, 5);
    // So is the STS token the SDKs add with temporary credentials: taken, ignored, not kept.
    let sts = "CAIS-sts-token-that-must-not-be-logged";
    let (status, body) = app
        .rpc(
            "2014-08-28",
            "ModifyScalingGroup",
            &[("ScalingGroupId", &group), ("MaxSize", "6"), ("SecurityToken", sts)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.service.group(&group).await.unwrap().max_size, 6);
    let (log, _) = app.service.audit_events(&Default::default(), 0, 1000).await.unwrap();
    let modified = log.iter().find(|e| e.request["MaxSize"] == "6").expect("audited");
    assert_eq!(modified.request["ScalingGroupId"], group.as_str());
    assert!(log.iter().all(|e| !e.request.to_string().contains(sts)), "the SecurityToken is in the audit log");
    // ClientToken only where it means something.
    let answer = app.rpc("2014-08-28", "DeleteScalingGroup", &[("ScalingGroupId", &group), ("ClientToken", "t")]).await;
    refused(&answer, "InvalidParameter", "\"ClientToken\"");
    assert!(app.service.group(&group).await.is_ok());
}

#[tokio::test]
async fn missing_and_malformed_parameters_and_unknown_filter_values_have_their_codes() {
    let app = app().await;
    let group = app.group(2).await;
    let parameters = json!({"invokeType": "invoke", "scalingGroupId": group, "invokeScript": "echo",
                            "batchPauseOption": "FirstBatchPause", "batchNumber": 2});
    let task = app
        .service
        .start_execution("ACS-ESS-RollingUpdateByRunCommandInScalingGroup", &parameters.to_string())
        .await
        .unwrap();
    let execution = task.id.to_string();
    app.wait_for(&execution, "Waiting").await;
    let snapshot = || async {
        let groups = app.service.groups(&[], None).await.unwrap();
        let instances = app.service.instances(None, &[], None).await.unwrap();
        let (task, works) = app.service.task(&execution).await.unwrap();
        format!("{groups:?}{instances:?}{task:?}{works:?}")
    };
    let before = snapshot().await;
    // (version, action, parameters, the code, what the message names)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        ("2014-08-28", "CreateScalingGroup", vec![("MaxSize", "2")], "MissingParameter", "MinSize"),
        ("2014-08-28", "CreateScalingGroup", vec![("MinSize", "x"), ("MaxSize", "2")], "InvalidParameter", "MinSize"),
        ("2022-02-22", "EnterStandby", vec![("InstanceIds.1", "i-x")], "MissingParameter", "ScalingGroupId"),
        (
            "2014-08-28",
            "SetInstancesProtection",
            vec![("ScalingGroupId", &group)],
            "MissingParameter",
            "ProtectedFromScaleIn",
        ),
        ("2014-08-28", "DescribeScalingGroups", vec![("PageSize", "1000")], "InvalidParameter", "PageSize"),
        (
            "2014-08-28",
            "DescribeScalingInstances",
            vec![("LifecycleState", "Sleeping")],
            "InvalidParameter",
            "LifecycleState",
        ),
        (
            "2014-08-28",
            "DeleteScalingGroup",
            vec![("ScalingGroupId", &group), ("ForceDelete", "maybe")],
            "InvalidParameter",
            "ForceDelete",
        ),
        ("2019-06-01", "StartExecution", vec![("Parameters", "{}")], "MissingParameter", "TemplateName"),
        ("2019-06-01", "NotifyExecution", vec![("ExecutionId", &execution)], "MissingParameter", "NotifyType"),
        (
            "2019-06-01",
            "NotifyExecution",
            vec![("ExecutionId", &execution), ("NotifyType", "Shrug")],
            "InvalidParameter",
            "NotifyType",
        ),
        ("2019-06-01", "ListExecutions", vec![("Status", "Sleeping")], "InvalidParameter", "Status"),
        ("2019-06-01", "ListExecutions", vec![("MaxResults", "0")], "InvalidParameter", "MaxResults"),
        (
            "2019-06-01",
            "ListTaskExecutions",
            vec![("ExecutionId", &execution), ("Status", "Paused")],
            "InvalidParameter",
            "Status",
        ),
        ("2019-06-01", "CancelExecution", vec![], "MissingParameter", "ExecutionId"),
        ("2014-05-26", "CreateLaunchTemplate", vec![("ImageId", "img")], "MissingParameter", "LaunchTemplateName"),
        (
            "2014-05-26",
            "ModifyLaunchTemplateDefaultVersion",
            vec![("LaunchTemplateId", "lt-x"), ("DefaultVersionNumber", "one")],
            "InvalidParameter",
            "DefaultVersionNumber",
        ),
        ("2014-05-26", "DescribeRegions", vec![("AcceptLanguage", "tlh")], "InvalidParameter", "AcceptLanguage"),
        ("2015-05-01", "CreateUser", vec![("DisplayName", "x")], "MissingParameter", "UserName"),
        ("2015-05-01", "ListUsers", vec![("MaxItems", "0")], "InvalidParameter", "MaxItems"),
    ];
    for (version, action, params, code, names) in cases {
        let answer = app.rpc(version, action, &params).await;
        assert_eq!(answer.1["Code"], code, "{version} {action} {params:?}: {}", answer.1);
        assert_eq!(answer.0, 400, "{version} {action}: {}", answer.1);
        assert!(answer.1["Message"].as_str().is_some_and(|m| m.contains(names)), "{action}: {}", answer.1);
    }
    // The same filter over REST: its value is checked by the service both APIs use.
    let token = make_token(KEY, SECRET, chrono::Utc::now().timestamp() + 600);
    for path in ["/v1/instances?lifecycle_state=Sleeping", "/v1/rolling-updates?status=Sleeping"] {
        let answer = send(&app.router, rest_request(&token, "get", path, None)).await;
        assert_eq!((answer.0, answer.1["Code"].as_str()), (400, Some("InvalidParameter")), "{path}: {}", answer.1);
    }
    let (status, body) = app.rpc("2014-08-28", "DescribeScalingInstances", &[("LifecycleState", "InService")]).await;
    assert_eq!((status, body["TotalCount"].as_u64()), (200, Some(2)), "{body}");
    assert_eq!(snapshot().await, before, "a refused request changed something");
}

#[tokio::test]
async fn notify_execution_decides_one_task_execution_at_a_time_and_reject_cancels() {
    let app = app().await;
    let group = app.group(4).await;
    let parameters = json!({"invokeType": "invoke", "scalingGroupId": group, "invokeScript": "echo",
                            "batchPauseOption": "FirstBatchPause", "batchNumber": 2});
    let task = app
        .service
        .start_execution("ACS-ESS-RollingUpdateByRunCommandInScalingGroup", &parameters.to_string())
        .await
        .unwrap();
    let id = task.id.to_string();
    app.wait_for(&id, "Waiting").await;
    let (_, works) = app.service.task(&id).await.unwrap();
    let queued: Vec<String> = works
        .iter()
        .filter(|w| w.status == rollscale_core::task::InstanceStatus::Queued)
        .map(|w| w.execution_id.to_string())
        .collect();
    assert_eq!(queued.len(), 2, "the second batch waits: {works:?}");
    let statuses = || async {
        let (_, works) = app.service.task(&id).await.unwrap();
        works.iter().map(|w| (w.execution_id.to_string(), w.status)).collect::<Vec<_>>()
    };
    let before = statuses().await;
    let two = json!([queued[0], queued[1]]).to_string();
    let answer = app
        .rpc(
            "2019-06-01",
            "NotifyExecution",
            &[("ExecutionId", &id), ("NotifyType", "SkipTask"), ("TaskExecutionIds", &two)],
        )
        .await;
    refused(&answer, "InvalidParameter", "TaskExecutionIds names 2");
    let answer = app
        .rpc(
            "2019-06-01",
            "NotifyExecution",
            &[("ExecutionId", &id), ("NotifyType", "SkipTask"), ("TaskExecutionIds", "[oops")],
        )
        .await;
    refused(&answer, "InvalidParameter", "TaskExecutionIds");
    let answer = app
        .rpc(
            "2019-06-01",
            "NotifyExecution",
            &[
                ("ExecutionId", &id),
                ("NotifyType", "SkipTask"),
                ("TaskExecutionId", &queued[0]),
                ("TaskExecutionIds.1", &queued[1]),
            ],
        )
        .await;
    refused(&answer, "InvalidParameter", "different");
    assert_eq!(statuses().await, before, "a refused decision decided nothing");
    // One id in the list: decided.
    let one = json!([queued[0]]).to_string();
    let (status, body) = app
        .rpc(
            "2019-06-01",
            "NotifyExecution",
            &[("ExecutionId", &id), ("NotifyType", "SkipTask"), ("TaskExecutionIds", &one)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let skipped = statuses().await;
    assert!(skipped.contains(&(queued[0].clone(), rollscale_core::task::InstanceStatus::Skipped)), "{skipped:?}");
    assert!(skipped.contains(&(queued[1].clone(), rollscale_core::task::InstanceStatus::Queued)), "{skipped:?}");
    // Reject cancels the whole task.
    let (status, body) =
        app.rpc("2019-06-01", "NotifyExecution", &[("ExecutionId", &id), ("NotifyType", "Reject")]).await;
    assert_eq!(status, 200, "{body}");
    let cancelled = app.wait_for(&id, "Cancelled").await;
    assert!(cancelled.status.is_final());
    let (status, body) =
        app.rpc("2019-06-01", "NotifyExecution", &[("ExecutionId", &id), ("NotifyType", "Reject")]).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("IncorrectExecutionStatus")),
        "a finished task is not rejected: {body}"
    );
}

#[tokio::test]
async fn describe_regions_answers_rollscales_region_in_ecs_shape() {
    let app = app().await;
    let mut request = rpc_request(KEY, SECRET, "2014-05-26", "DescribeRegions", &[("RegionId", "local")]);
    request.headers_mut().insert("host", "127.0.0.1:7878".parse().unwrap());
    let (status, body) = send(&app.router, request).await;
    assert_eq!(status, 200, "{body}");
    let regions = body["Regions"]["Region"].as_array().expect("Regions.Region is a list");
    assert_eq!(regions.len(), 1, "{body}");
    assert_eq!(regions[0]["RegionId"], "local");
    assert_eq!(regions[0]["RegionEndpoint"], "127.0.0.1:7878");
    assert_eq!(regions[0]["Status"], "available");
    assert!(regions[0]["LocalName"].as_str().is_some_and(|name| !name.is_empty()));
    assert!(body["RequestId"].is_string());
}
