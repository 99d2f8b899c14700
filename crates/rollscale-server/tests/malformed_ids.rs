//! An id that cannot be one of its kind (another kind's prefix, control characters, too long)
//! is read once, by the server (`values.rs`), and answered as before the service took typed
//! ids: as the thing it names not existing, with that thing's code. A filter of a list that
//! names nothing finds nothing. These are the reads that one API only has (the operations both
//! have are walked by `parity.rs`).

use rollscale_engine::service::NewGroup;
use rollscale_test_support::engine::{configuration, enabled_group};
use rollscale_test_support::server::Api;
use serde_json::Value;

const KEY: &str = "LTAImalformed00000000";
const SECRET: &str = "malformedSecret";

/// Ids of the kind with `prefix` that cannot be one.
fn malformed(prefix: &str) -> Vec<String> {
    let other = if prefix == "asg-" { "asc-" } else { "asg-" };
    vec![
        format!("{other}0123456789abcdef0123"),
        format!("{prefix}bad\0id"),
        format!("{prefix}bad id"),
        format!("{prefix}{}", "a".repeat(65)),
        format!("{prefix}{}", "a".repeat(10 * 1024)),
        prefix.to_string(),
    ]
}

fn encoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn refused(answer: &(u16, Value), code: &str, what: &str) {
    let (status, body) = answer;
    assert_eq!((*status, body["Code"].as_str()), (404, Some(code)), "{what}: {body}");
    let message = body["Message"].as_str().unwrap_or_default();
    if std::env::var_os("BASELINE").is_none() {
        assert!(message.len() < 300 && !message.contains('\0'), "{what}: the message shows the value escaped and cut");
    }
}

/// A group with an instance, so that a filter that names nothing is seen to find nothing.
async fn app() -> (Api, String) {
    let app = Api::new(KEY, SECRET).await;
    app.service.create_image("img", None, None).await.unwrap();
    let new = NewGroup { name: "g".into(), max_size: 2, desired_capacity: Some(1), ..NewGroup::default() };
    let (group, _) = enabled_group(&app.service, new, configuration("img")).await;
    app.service.reconcile_group(&group).await.unwrap();
    (app, group.id.to_string())
}

#[tokio::test]
async fn the_rpc_apis_reads_of_one_id_answer_its_not_found_code() {
    let (app, _) = app().await;
    for id in malformed("i-") {
        let answer = app.rpc("2014-08-28", "InjectFault", &[("InstanceId", &id), ("Kind", "Crash")]).await;
        refused(&answer, "InvalidInstanceId.NotFound", &format!("InjectFault {id:.20?}"));
    }
    for id in malformed("exec-") {
        let params = [("ExecutionId", id.as_str()), ("NotifyType", "RetryTask"), ("TaskExecutionId", "exec-1")];
        let answer = app.rpc("2019-06-01", "NotifyExecution", &params).await;
        refused(&answer, "EntityNotExists.Execution", &format!("NotifyExecution {id:.20?}"));
    }
}

#[tokio::test]
async fn the_rpc_apis_filters_that_name_nothing_find_nothing() {
    let (app, group) = app().await;
    let count = |answer: &(u16, Value), list: &str| -> usize {
        assert_eq!(answer.0, 200, "{}", answer.1);
        let list = &answer.1[list];
        list.as_array().or_else(|| list.as_object().and_then(|o| o.values().next()?.as_array())).map_or(0, Vec::len)
    };
    let ess = "2022-02-22";
    for id in malformed("asg-") {
        let answer = app.rpc(ess, "DescribeScalingGroups", &[("ScalingGroupIds.1", &id)]).await;
        assert_eq!(count(&answer, "ScalingGroups"), 0, "{id:.20?}");
        // A malformed id beside a group's names that group only.
        let both = [("ScalingGroupIds.1", id.as_str()), ("ScalingGroupIds.2", group.as_str())];
        assert_eq!(count(&app.rpc(ess, "DescribeScalingGroups", &both).await, "ScalingGroups"), 1, "{id:.20?}");
        let answer = app.rpc(ess, "DescribeEvents", &[("ScalingGroupId", &id)]).await;
        assert_eq!(count(&answer, "Events"), 0, "{id:.20?}");
    }
    for id in malformed("asc-") {
        let answer = app.rpc(ess, "DescribeScalingConfigurations", &[("ScalingConfigurationIds.1", &id)]).await;
        assert_eq!(count(&answer, "ScalingConfigurations"), 0, "{id:.20?}");
    }
    for id in malformed("i-") {
        let answer = app.rpc(ess, "DescribeScalingInstances", &[("InstanceIds.1", &id)]).await;
        assert_eq!(count(&answer, "ScalingInstances"), 0, "{id:.20?}");
    }
    for id in malformed("exec-") {
        for filter in ["ExecutionId", "ParentExecutionId"] {
            let answer = app.rpc("2019-06-01", "ListExecutions", &[(filter, &id)]).await;
            assert_eq!(count(&answer, "Executions"), 0, "{filter} {id:.20?}");
        }
        let answer = app.rpc(ess, "DescribeEvents", &[("ExecutionId", &id)]).await;
        assert_eq!(count(&answer, "Events"), 0, "{id:.20?}");
    }
    for id in malformed("lt-") {
        let answer = app.rpc("2014-05-26", "DescribeLaunchTemplates", &[("LaunchTemplateId.1", &id)]).await;
        assert_eq!(answer.1["TotalCount"], 0, "{id:.20?}: {}", answer.1);
    }
}

#[tokio::test]
async fn the_rest_apis_reads_of_one_id_answer_its_not_found_code() {
    let (app, _) = app().await;
    let reads: [(&str, &str, &str, &str); 9] = [
        ("get", "/v1/scaling-groups/{}", "asg-", "InvalidScalingGroupId.NotFound"),
        ("get", "/v1/scaling-configurations/{}", "asc-", "InvalidScalingConfigurationId.NotFound"),
        ("get", "/v1/instances/{}", "i-", "InvalidInstanceId.NotFound"),
        ("get", "/v1/launch-templates/{}", "lt-", "InvalidLaunchTemplate.NotFound"),
        ("get", "/v1/rolling-updates/{}", "exec-", "EntityNotExists.Execution"),
        ("get", "/v1/rolling-updates/{}/events", "exec-", "EntityNotExists.Execution"),
        ("get", "/v1/image-update-tasks/{}", "exec-", "EntityNotExists.Execution"),
        ("post", "/v1/rolling-updates/{}/rollback", "exec-", "EntityNotExists.Execution"),
        ("post", "/v1/rolling-updates/{}/instances/i-1/retry", "exec-", "EntityNotExists.Execution"),
    ];
    for (method, path, prefix, code) in reads {
        for id in malformed(prefix) {
            let path = path.replace("{}", &encoded(&id));
            refused(&app.rest(method, &path, None).await, code, &format!("{method} {path:.60}"));
        }
    }
}

#[tokio::test]
async fn the_rest_apis_filters_that_name_nothing_find_nothing() {
    let (app, _) = app().await;
    for (path, filter, prefix) in [
        ("/v1/rolling-updates", "scaling_group_id", "asg-"),
        ("/v1/image-update-tasks", "scaling_group_id", "asg-"),
        ("/v1/events", "scaling_group_id", "asg-"),
        ("/v1/events", "execution_id", "exec-"),
    ] {
        for id in malformed(prefix) {
            let (status, body) = app.rest("get", &format!("{path}?{filter}={}", encoded(&id)), None).await;
            assert_eq!((status, body["items"].as_array().map(Vec::len)), (200, Some(0)), "{path} {id:.20?}: {body}");
        }
    }
}
