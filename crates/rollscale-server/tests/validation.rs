//! Every parameter is checked: an RPC action refuses a parameter it does not take, naming it
//! (the common ones the SDKs send are allowed); missing and malformed parameters have their
//! codes; filters refuse values they do not know; `NotifyExecution` decides on one task
//! execution at a time and `Reject` cancels; ECS `DescribeRegions` names rollscale's region.
//! A refused request changes nothing.

use rollscale_core::ids::ExecutionId;
use rollscale_engine::service::NewGroup;
use rollscale_engine::Service;
use rollscale_server::{operations, router, AuthConfig};
use rollscale_test_support::engine::execution_id;
use rollscale_test_support::engine::group_id;
use rollscale_test_support::engine::StartTemplate;
use rollscale_test_support::engine::{configuration, enabled_group, wait_for_task};
use rollscale_test_support::server::{rest_request, rpc_request, send, Api};
use serde_json::{json, Value};

const KEY: &str = "LTAIvalidation0000000";
const SECRET: &str = "validationSecret";

async fn app() -> Api {
    Api::new(KEY, SECRET).await
}

/// A group of `size` InService instances on image "img".
async fn group(app: &Api, size: u32) -> String {
    app.service.create_image("img", None, None).await.ok();
    let new = NewGroup { name: "g".into(), max_size: 8, desired_capacity: Some(size), ..NewGroup::default() };
    let (group, _) = enabled_group(&app.service, new, configuration("img")).await;
    app.service.reconcile_group(&group).await.unwrap();
    group.id.to_string()
}

/// Waits until the task's status is `status` (or fails after a generous deadline).
async fn wait_for(app: &Api, id: &ExecutionId, status: &str) -> rollscale_core::task::TaskState {
    wait_for_task(&app.service, id, status, |task, _| task.status.as_str() == status).await.0
}

fn refused(answer: &(u16, Value), code: &str, names: &str) {
    let (status, body) = answer;
    assert_eq!((*status, body["Code"].as_str()), (400, Some(code)), "{body}");
    assert!(body["Message"].as_str().is_some_and(|m| m.contains(names)), "the message names {names}: {body}");
}

#[tokio::test]
async fn every_action_refuses_a_parameter_it_does_not_take_and_changes_nothing() {
    let app = app().await;
    let group = group(&app, 2).await;
    let before = app.service.groups(None, None).await.unwrap();
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
    assert_eq!(app.service.groups(None, None).await.unwrap(), before, "refused requests changed a group");
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
    assert_eq!(app.service.group(&group_id(&group)).await.unwrap().max_size, 5);
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
    assert_eq!(app.service.group(&group_id(&group)).await.unwrap().max_size, 6);
    let (log, _) = app.service.audit_events(&Default::default(), 0, 1000).await.unwrap();
    let modified = log.iter().find(|e| e.request["MaxSize"] == "6").expect("audited");
    assert_eq!(modified.request["ScalingGroupId"], group.as_str());
    assert!(log.iter().all(|e| !e.request.to_string().contains(sts)), "the SecurityToken is in the audit log");
    // ClientToken only where it means something.
    let answer = app.rpc("2014-08-28", "DeleteScalingGroup", &[("ScalingGroupId", &group), ("ClientToken", "t")]).await;
    refused(&answer, "InvalidParameter", "\"ClientToken\"");
    assert!(app.service.group(&group_id(&group)).await.is_ok());
}

#[tokio::test]
async fn missing_and_malformed_parameters_and_unknown_filter_values_have_their_codes() {
    let app = app().await;
    let group = group(&app, 2).await;
    let parameters = json!({"invokeType": "invoke", "scalingGroupId": group, "invokeScript": "echo",
                            "batchPauseOption": "FirstBatchPause", "batchNumber": 2});
    let task = app
        .service
        .start_template("ACS-ESS-RollingUpdateByRunCommandInScalingGroup", &parameters.to_string())
        .await
        .unwrap();
    let execution = task.id.to_string();
    wait_for(&app, &execution_id(&execution), "Waiting").await;
    let snapshot = || async {
        let groups = app.service.groups(None, None).await.unwrap();
        let instances = app.service.instances(None, None, None).await.unwrap();
        let (task, works) = app.service.task(&execution_id(&execution)).await.unwrap();
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
    let token = &app.token;
    for path in ["/v1/instances?lifecycle_state=Sleeping", "/v1/rolling-updates?status=Sleeping"] {
        let answer = send(&app.router, rest_request(token, "get", path, None)).await;
        assert_eq!((answer.0, answer.1["Code"].as_str()), (400, Some("InvalidParameter")), "{path}: {}", answer.1);
    }
    let (status, body) = app.rpc("2014-08-28", "DescribeScalingInstances", &[("LifecycleState", "InService")]).await;
    assert_eq!((status, body["TotalCount"].as_u64()), (200, Some(2)), "{body}");
    assert_eq!(snapshot().await, before, "a refused request changed something");
}

#[tokio::test]
async fn notify_execution_decides_one_task_execution_at_a_time_and_reject_cancels() {
    let app = app().await;
    let group = group(&app, 4).await;
    let parameters = json!({"invokeType": "invoke", "scalingGroupId": group, "invokeScript": "echo",
                            "batchPauseOption": "FirstBatchPause", "batchNumber": 2});
    let task = app
        .service
        .start_template("ACS-ESS-RollingUpdateByRunCommandInScalingGroup", &parameters.to_string())
        .await
        .unwrap();
    let id = task.id.to_string();
    wait_for(&app, &execution_id(&id), "Waiting").await;
    let (_, works) = app.service.task(&execution_id(&id)).await.unwrap();
    let queued: Vec<String> = works
        .iter()
        .filter(|w| w.status == rollscale_core::task::InstanceStatus::Queued)
        .map(|w| w.execution_id.to_string())
        .collect();
    assert_eq!(queued.len(), 2, "the second batch waits: {works:?}");
    let statuses = || async {
        let (_, works) = app.service.task(&execution_id(&id)).await.unwrap();
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
    let cancelled = wait_for(&app, &execution_id(&id), "Cancelled").await;
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

#[tokio::test]
async fn bad_health_check_types_and_grace_periods_are_refused_and_change_nothing() {
    let app = app().await;
    let group = group(&app, 1).await;
    let (status, body) = app
        .rpc(
            "2014-08-28",
            "ModifyScalingGroup",
            &[("ScalingGroupId", &group), ("HealthCheckType", "LOAD_BALANCER"), ("HealthCheckGracePeriod", "60")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let before = app.service.groups(None, None).await.unwrap();
    // (parameters, the code, what the message names)
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (vec![("HealthCheckType", "HTTP")], "InvalidParameter.HealthCheckType", "\"HTTP\""),
        (vec![("HealthCheckType", "ecs")], "InvalidParameter.HealthCheckType", "\"ecs\""),
        (vec![("HealthCheckTypes.1", "ECS"), ("HealthCheckTypes.2", "ELB")], "InvalidParameter.HealthCheckType", "ELB"),
        (vec![("HealthCheckTypes.1", "")], "InvalidParameter.HealthCheckType", "HealthCheckTypes"),
        (
            vec![("HealthCheckTypes.1", "NONE"), ("HealthCheckTypes.2", "ECS")],
            "InvalidParameter.HealthCheckType",
            "NONE",
        ),
        (vec![("HealthCheckTypes", r#"["ECS","NONE"]"#)], "InvalidParameter.HealthCheckType", "NONE"),
        (vec![("HealthCheckTypes", r#"[{"Type":"ECS"}]"#)], "InvalidParameter", "HealthCheckTypes"),
        // HealthCheckType wins over the list, so it is the one checked.
        (
            vec![("HealthCheckType", "BOGUS"), ("HealthCheckTypes.1", "ECS")],
            "InvalidParameter.HealthCheckType",
            "BOGUS",
        ),
        (vec![("HealthCheckGracePeriod", "7201")], "InvalidParameter", "HealthCheckGracePeriod"),
        (vec![("HealthCheckGracePeriod", "-1")], "InvalidParameter", "HealthCheckGracePeriod"),
        (vec![("HealthCheckGracePeriod", "soon")], "InvalidParameter", "HealthCheckGracePeriod"),
        // A good value beside a bad one changes nothing either.
        (
            vec![("HealthCheckType", "ECS"), ("HealthCheckGracePeriod", "9999")],
            "InvalidParameter",
            "HealthCheckGracePeriod",
        ),
    ];
    for version in ["2014-08-28", "2022-02-22"] {
        for (params, code, names) in &cases {
            let mut create = vec![("MinSize", "0"), ("MaxSize", "2")];
            create.extend(params.iter().copied());
            let mut modify = vec![("ScalingGroupId", group.as_str()), ("MaxSize", "7")];
            modify.extend(params.iter().copied());
            for (action, params) in [("CreateScalingGroup", create), ("ModifyScalingGroup", modify)] {
                let (status, body) = app.rpc(version, action, &params).await;
                assert_eq!(
                    (status, body["Code"].as_str()),
                    (400, Some(*code)),
                    "{version} {action} {params:?}: {body}"
                );
                assert!(body["Message"].as_str().is_some_and(|m| m.contains(names)), "names {names}: {body}");
            }
        }
    }
    // The same over REST.
    let token = &app.token;
    let bodies = [
        (json!({"health_check_types": ["HTTP"]}), "InvalidParameter.HealthCheckType"),
        (json!({"health_check_types": []}), "InvalidParameter.HealthCheckType"),
        (json!({"health_check_types": ["NONE", "LOAD_BALANCER"]}), "InvalidParameter.HealthCheckType"),
        (json!({"health_check_types": "ECS"}), "InvalidParameter"),
        (json!({"health_check_grace_period_s": 7201}), "InvalidParameter"),
        (json!({"health_check_grace_period_s": -5}), "InvalidParameter"),
    ];
    for (fields, code) in bodies {
        let mut create = json!({"name": "refused", "min_size": 0, "max_size": 2});
        let mut patch = json!({"max_size": 7});
        for (name, value) in fields.as_object().unwrap() {
            create[name] = value.clone();
            patch[name] = value.clone();
        }
        let path = format!("/v1/scaling-groups/{group}");
        for (method, path, body) in [("post", "/v1/scaling-groups", create), ("patch", path.as_str(), patch)] {
            let (status, answer) = send(&app.router, rest_request(token, method, path, Some(&body))).await;
            assert_eq!((status, answer["Code"].as_str()), (400, Some(code)), "{method} {path} {body}: {answer}");
        }
    }
    assert_eq!(app.service.groups(None, None).await.unwrap(), before, "a refused request changed a group");
}

#[tokio::test]
async fn inject_fault_refuses_an_unknown_kind_and_a_fleet_without_faults() {
    let app = app().await;
    let group = group(&app, 1).await;
    let instance = app.service.instances(Some(&group_id(&group)), None, None).await.unwrap()[0].id.to_string();
    let snapshot = || async {
        let instances = app.service.instances(None, None, None).await.unwrap();
        let ids: Vec<_> = instances.iter().map(|i| i.id.clone()).collect();
        let seen = app.service.engine.fleet().look(&ids).await;
        format!("{instances:?}{seen:?}")
    };
    let before = snapshot().await;
    for version in ["2014-08-28", "2022-02-22"] {
        for kind in ["Explode", "crash", "FailNext,Crash"] {
            let answer = app.rpc(version, "InjectFault", &[("InstanceId", &instance), ("Kind", kind)]).await;
            refused(&answer, "InvalidParameter.Kind", "FailNext, Crash, Unhealthy, Clear");
        }
    }
    // Nothing was injected: the record and what the fleet shows of the instance are as before.
    assert_eq!(snapshot().await, before, "a refused fault changed something");
    let (status, body) = app.rpc("2014-08-28", "InjectFault", &[("InstanceId", &instance), ("Kind", "Clear")]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.rpc("2014-08-28", "InjectFault", &[("InstanceId", "i-nothere")]).await;
    assert_eq!((status, body["Code"].as_str()), (404, Some("InvalidInstanceId.NotFound")), "{body}");

    // A container fleet (never dialled here) simulates no faults: refused, whatever the kind.
    let fleet = rollscale_fleet::docker::DockerFleet::connect("tcp://127.0.0.1:1", Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store =
        rollscale_store::Store::open(&format!("sqlite://{}", dir.path().join("docker.db").display())).await.unwrap();
    let key = rollscale_core::domain::AccessKey {
        id: KEY.into(),
        secret: SECRET.into(),
        user_name: "admin".into(),
        status: rollscale_core::domain::AccessKeyStatus::Active,
        created_at: 0,
        tokens_not_before: 0,
    };
    store.access_key_insert_bootstrap(&key).await.unwrap();
    let existing = app.service.instances(None, None, None).await.unwrap()[0].clone();
    store.instance_insert(&existing).await.unwrap();
    let engine = rollscale_engine::Engine::new(
        store,
        std::sync::Arc::new(fleet),
        std::sync::Arc::new(rollscale_fleet::sim::SimLoadBalancer::new(Default::default())),
        rollscale_engine::EngineConfig::default(),
    );
    let service = Service::new(engine);
    let docker = router(service.clone(), AuthConfig::default());
    for kind in ["FailNext", "Crash", "Unhealthy", "Clear"] {
        let request =
            rpc_request(KEY, SECRET, "2014-08-28", "InjectFault", &[("InstanceId", &instance), ("Kind", kind)]);
        let (status, body) = send(&docker, request).await;
        assert_eq!((status, body["Code"].as_str()), (400, Some("OperationDenied")), "{kind}: {body}");
        assert!(body["Message"].as_str().is_some_and(|m| m.contains("docker")), "{body}");
    }
    let request = rpc_request(KEY, SECRET, "2014-08-28", "InjectFault", &[("InstanceId", &instance), ("Kind", "Nope")]);
    let (status, body) = send(&docker, request).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("InvalidParameter.Kind")), "{body}");
    let stored = service.instances(None, None, None).await.unwrap();
    assert_eq!(format!("{stored:?}"), format!("{:?}", vec![existing]), "a refused fault changed the record");
}
