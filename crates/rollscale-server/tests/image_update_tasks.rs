//! Image update tasks over both APIs: `oos:StartExecution` of
//! `ACS-ESS-CreateImageAndUpdateScalingConfiguration` (run now and scheduled), listed with the
//! other executions, cancelled; the same over `/v1/image-update-tasks`; and the refusals, each
//! with its code and changing nothing.

use rollscale_core::ids::{IdFilter, ScalingConfigurationId};
use rollscale_engine::service::NewGroup;
use rollscale_test_support::engine::{self, enabled_group};
use rollscale_test_support::server::{rest_request, rpc_request, send, Api};
use serde_json::{json, Value};
use std::time::Duration;

const KEY: &str = "LTAIimageTaskAdmin000";
const SECRET: &str = "imageTaskAdminSecret";
const OOS: &str = "2019-06-01";
const TEMPLATE: &str = "ACS-ESS-CreateImageAndUpdateScalingConfiguration";

struct App {
    router: axum::Router,
    service: rollscale_engine::Service,
    token: String,
    instance: String,
    configuration: String,
    group: String,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let Api { router, service, token, dir, .. } = Api::new(KEY, SECRET).await;
    service.create_image("img", None, None).await.unwrap();
    let new = NewGroup { name: "web".into(), max_size: 3, desired_capacity: Some(1), ..NewGroup::default() };
    let (group, configuration) = enabled_group(&service, new, engine::configuration("img")).await;
    service.reconcile_group(&group).await.unwrap();
    let instance = service.instances(Some(&group.id), None, None).await.unwrap()[0].id.to_string();
    App {
        router,
        token,
        service,
        instance,
        configuration: configuration.id.to_string(),
        group: group.id.to_string(),
        _dir: dir,
    }
}

async fn rpc(app: &App, action: &str, params: &[(&str, &str)]) -> (u16, Value) {
    send(&app.router, rpc_request(KEY, SECRET, OOS, action, params)).await
}

async fn start(app: &App, parameters: &Value) -> (u16, Value) {
    rpc(app, "StartExecution", &[("TemplateName", TEMPLATE), ("Parameters", &parameters.to_string())]).await
}

async fn list(app: &App, params: &[(&str, &str)]) -> Vec<Value> {
    let (status, body) = rpc(app, "ListExecutions", params).await;
    assert_eq!(status, 200, "{body}");
    body["Executions"].as_array().unwrap().clone()
}

#[tokio::test]
async fn start_execution_of_the_template_runs_now_and_lists_with_the_other_executions() {
    let app = app().await;
    let parameters = json!({"instanceId": app.instance, "scalingConfigurationIds": [app.configuration],
                            "targetImageName": "web", "tags": [{"Key": "team", "Value": "a"}]});
    let (status, body) = start(&app, &parameters).await;
    assert_eq!(status, 200, "{body}");
    let execution = &body["Execution"];
    let id = execution["ExecutionId"].as_str().unwrap().to_string();
    assert_eq!(execution["TemplateName"], TEMPLATE);
    assert!(execution["Parameters"].as_str().unwrap().contains("scalingConfigurationIds"), "{execution}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let done = loop {
        let items = list(&app, &[("ExecutionId", &id)]).await;
        if items[0]["Status"] == "Success" {
            break items[0].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{items:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let outputs: Value = serde_json::from_str(done["Outputs"].as_str().unwrap()).unwrap();
    let image = outputs["imageId"].as_str().unwrap();
    assert_eq!(done["Tags"]["team"], "a");
    let configuration = app
        .service
        .configurations(None, Some(&[ScalingConfigurationId::parse(&app.configuration).unwrap()]))
        .await
        .unwrap();
    assert_eq!(configuration[0].image_id, image);
    let name = &app.service.images().await.unwrap().into_iter().find(|i| i.id == image).unwrap().name;
    assert!(name.starts_with(&format!("web_on_{id}_at_")), "{name}");
    // By template, and not among the rolling updates' templates.
    assert_eq!(list(&app, &[("TemplateName", TEMPLATE)]).await.len(), 1);
    assert_eq!(list(&app, &[("TemplateName", TEMPLATE), ("Status", "Failed")]).await.len(), 0);
    assert_eq!(
        list(&app, &[("TemplateName", "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup")]).await.len(),
        0
    );
    let (status, steps) = rpc(&app, "ListTaskExecutions", &[("ExecutionId", &id)]).await;
    assert_eq!(status, 200, "{steps}");
    let steps: Vec<(&str, &str)> = steps["TaskExecutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["TaskName"].as_str().unwrap(), t["Status"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [("createImage", "Success"), ("updateScalingConfiguration", "Success")]);
    // A firing is not cancelled.
    let (status, body) = rpc(&app, "CancelExecution", &[("ExecutionId", &id)]).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("IncorrectExecutionStatus")), "{body}");
}

#[tokio::test]
async fn a_scheduled_task_waits_and_is_cancelled_over_rpc_and_rest() {
    let app = app().await;
    let trigger = json!({"Type": "cron", "Expression": "0 0 2 21-25 * ?", "TimeZone": "Asia/Shanghai",
                         "EndDate": "2099-08-26T00:00:00Z"});
    let parameters = json!({"instanceId": app.instance, "scalingConfigurationIds": [app.configuration],
                            "OOSAssumeRole": "OOSServiceRole", "timerTrigger": trigger});
    let (status, body) = start(&app, &parameters).await;
    assert_eq!(status, 200, "{body}");
    let id = body["Execution"]["ExecutionId"].as_str().unwrap().to_string();
    assert_eq!(body["Execution"]["Status"], "Waiting");
    assert_eq!(body["Execution"]["IsParent"], true);
    assert_eq!(body["Execution"]["RamRole"], "OOSServiceRole");

    let (status, view) =
        send(&app.router, rest_request(&app.token, "get", &format!("/v1/image-update-tasks/{id}"), None)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "Waiting");
    assert!(view["next_firing_at"].as_str().unwrap().ends_with("T18:00:00Z"), "02:00 in Shanghai: {view}");
    assert_eq!(view["timer_trigger"]["Expression"], "0 0 2 21-25 * ?");
    let path = format!("/v1/image-update-tasks?scaling_group_id={}", app.group);
    let (status, listed) = send(&app.router, rest_request(&app.token, "get", &path, None)).await;
    assert_eq!((status, listed["items"].as_array().map(Vec::len)), (200, Some(1)), "{listed}");
    let (_, other) =
        send(&app.router, rest_request(&app.token, "get", "/v1/image-update-tasks?scaling_group_id=asg-other", None))
            .await;
    assert_eq!(other["items"].as_array().map(Vec::len), Some(0), "{other}");

    let (status, body) = rpc(&app, "CancelExecution", &[("ExecutionId", &id)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(list(&app, &[("ExecutionId", &id)]).await[0]["Status"], "Cancelled");
    let cancel = format!("/v1/image-update-tasks/{id}/cancel");
    let (status, body) = send(&app.router, rest_request(&app.token, "post", &cancel, None)).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("IncorrectExecutionStatus")), "{body}");

    // Over REST: started the same way.
    let (status, created) = send(
        &app.router,
        rest_request(&app.token, "post", "/v1/image-update-tasks", Some(&json!({"parameters": parameters}))),
    )
    .await;
    assert_eq!((status, created["status"].as_str()), (200, Some("Waiting")), "{created}");
    let path = format!("/v1/image-update-tasks/{}/cancel", created["id"].as_str().unwrap());
    let (status, cancelled) = send(&app.router, rest_request(&app.token, "post", &path, None)).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("Cancelled")), "{cancelled}");
}

#[tokio::test]
async fn bad_input_is_refused_with_a_code_and_changes_nothing() {
    let app = app().await;
    let (i, c) = (app.instance.clone(), app.configuration.clone());
    let daily = json!({"Type": "rate", "Expression": "1 day", "EndDate": "2099-01-01T00:00:00Z"});
    for (parameters, code) in [
        (json!({"instanceId": "i-nowhere", "scalingConfigurationIds": [c]}), "InvalidInstanceId.NotFound"),
        (
            json!({"instanceId": i, "scalingConfigurationIds": ["asc-nowhere"]}),
            "InvalidScalingConfigurationId.NotFound",
        ),
        (json!({"instanceId": i}), "MissingParameter"),
        (json!({"instanceId": i, "scalingConfigurationIds": [c], "batchNumber": 2}), "InvalidParameter"),
        (json!({"instanceId": i, "scalingConfigurationIds": [c], "timerTrigger": daily}), "InvalidParameter"),
        (
            json!({"instanceId": i, "scalingConfigurationIds": [c], "OOSAssumeRole": "r",
                   "timerTrigger": {"Type": "cron", "Expression": "0 0 2 L * ?", "EndDate": "2099-01-01T00:00:00Z"}}),
            "InvalidParameter",
        ),
        (
            json!({"instanceId": i, "scalingConfigurationIds": [c], "OOSAssumeRole": "r",
                   "timerTrigger": {"Type": "rate", "Expression": "1 day", "EndDate": "2001-01-01T00:00:00Z"}}),
            "InvalidParameter",
        ),
    ] {
        let (status, body) = start(&app, &parameters).await;
        assert_eq!((status >= 400, body["Code"].as_str()), (true, Some(code)), "{parameters}: {body}");
        let (status, body) = send(
            &app.router,
            rest_request(&app.token, "post", "/v1/image-update-tasks", Some(&json!({"parameters": parameters}))),
        )
        .await;
        assert_eq!((status >= 400, body["Code"].as_str()), (true, Some(code)), "REST {parameters}: {body}");
    }
    assert!(list(&app, &[("TemplateName", TEMPLATE)]).await.is_empty());
    assert!(app.service.image_updates(&IdFilter::Any).await.unwrap().is_empty());
    let (status, body) =
        send(&app.router, rest_request(&app.token, "get", "/v1/image-update-tasks/exec-nowhere", None)).await;
    assert_eq!((status, body["Code"].as_str()), (404, Some("EntityNotExists.Execution")), "{body}");
}
