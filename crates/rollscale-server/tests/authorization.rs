//! One operation, one authorization: every REST route is authorized as the RPC action of the
//! same operation, on the same resources, so a policy means the same over both APIs.
//!
//! For every route of `ROUTES` there is a case here: the REST call and the RPC call of the same
//! operation on the same things. A user whose only policy denies everything on one scaling
//! group, one execution, one user and one policy makes both calls; both are refused with the
//! same `Forbidden.RAM` message, which names the action, the resource and whether a Deny
//! matched. A second user, allowed everything but those resources, is refused exactly the
//! calls that name them, over both APIs, and reads another group over both.

use rollscale_core::policy::PolicyType;
use rollscale_engine::access::NewUser;
use rollscale_engine::service::NewGroup;
use rollscale_engine::templates::NewTemplateVersion;
use rollscale_server::rest::auth::make_token;
use rollscale_server::{operations, router, AuthConfig};
use rollscale_test_support::engine::group_id;
use rollscale_test_support::engine::StartTemplate;
use rollscale_test_support::engine::{self, enabled_group};
use rollscale_test_support::server::{self, rest_request, rpc_request, send};
use serde_json::{json, Value};

const ADMIN: &str = "LTAIauthzAdmin0000000";
const ADMIN_SECRET: &str = "authzAdminSecret";
const OOS: &str = "2019-06-01";
const ESS: &str = "2014-08-28";
const ESS_2022: &str = "2022-02-22";
const ECS: &str = "2014-05-26";
const RAM: &str = "2015-05-01";
const IMAGE_TEMPLATE: &str = "ACS-ESS-CreateImageAndUpdateScalingConfiguration";
const CMS: &str = "2019-01-01";

/// A REST call and the RPC call of the same operation.
struct Case {
    method: &'static str,
    template: &'static str,
    path: String,
    body: Option<Value>,
    version: &'static str,
    action: &'static str,
    params: Vec<(&'static str, String)>,
    /// Whether it names one of the denied resources.
    denied: bool,
}

fn case(
    method: &'static str,
    template: &'static str,
    path: String,
    body: Option<Value>,
    (version, action): (&'static str, &'static str),
    params: Vec<(&'static str, String)>,
    denied: bool,
) -> Case {
    Case { method, template, path, body, version, action, params, denied }
}

struct Ids {
    group: String,
    other_group: String,
    configuration: String,
    instance: String,
    execution: String,
    template: String,
    key: String,
}

fn cases(ids: &Ids) -> Vec<Case> {
    let Ids { group: g, configuration: c, instance: i, execution: e, template: lt, key: k, .. } = ids;
    let s = |text: &str| text.to_string();
    let start = json!({"invokeType": "invoke", "scalingGroupId": g, "invokeScript": "echo"});
    let template = "ACS-ESS-RollingUpdateByRunCommandInScalingGroup";
    let image_start = json!({"instanceId": i, "scalingConfigurationIds": [c]});
    vec![
        case("get", "/v1/scaling-groups", s("/v1/scaling-groups"), None, (ESS, "DescribeScalingGroups"), vec![], false),
        case(
            "post",
            "/v1/scaling-groups",
            s("/v1/scaling-groups"),
            Some(json!({"name": "n", "min_size": 0, "max_size": 1})),
            (ESS, "CreateScalingGroup"),
            vec![("ScalingGroupName", s("n")), ("MinSize", s("0")), ("MaxSize", s("1"))],
            false,
        ),
        case(
            "get",
            "/v1/scaling-groups/{id}",
            format!("/v1/scaling-groups/{g}"),
            None,
            (ESS_2022, "DescribeScalingGroups"),
            vec![("ScalingGroupIds.1", g.clone())],
            true,
        ),
        case(
            "patch",
            "/v1/scaling-groups/{id}",
            format!("/v1/scaling-groups/{g}"),
            Some(json!({"max_size": 5})),
            (ESS, "ModifyScalingGroup"),
            vec![("ScalingGroupId", g.clone()), ("MaxSize", s("5"))],
            true,
        ),
        case(
            "delete",
            "/v1/scaling-groups/{id}",
            format!("/v1/scaling-groups/{g}"),
            None,
            (ESS, "DeleteScalingGroup"),
            vec![("ScalingGroupId", g.clone())],
            true,
        ),
        case(
            "post",
            "/v1/scaling-groups/{id}/enable",
            format!("/v1/scaling-groups/{g}/enable"),
            None,
            (ESS, "EnableScalingGroup"),
            vec![("ScalingGroupId", g.clone())],
            true,
        ),
        case(
            "post",
            "/v1/scaling-groups/{id}/processes",
            format!("/v1/scaling-groups/{g}/processes"),
            Some(json!({"action": "suspend", "processes": ["ScaleIn"]})),
            (ESS, "SuspendProcesses"),
            vec![("ScalingGroupId", g.clone()), ("Process.1", s("ScaleIn"))],
            true,
        ),
        case(
            "post",
            "/v1/scaling-groups/{id}/processes",
            format!("/v1/scaling-groups/{g}/processes"),
            Some(json!({"action": "resume", "processes": ["ScaleIn"]})),
            (ESS_2022, "ResumeProcesses"),
            vec![("ScalingGroupId", g.clone()), ("Processes.1", s("ScaleIn"))],
            true,
        ),
        case(
            "post",
            "/v1/scaling-groups/{id}/standby",
            format!("/v1/scaling-groups/{g}/standby"),
            Some(json!({"action": "enter", "instance_ids": [i]})),
            (ESS, "EnterStandby"),
            vec![("ScalingGroupId", g.clone()), ("InstanceId.1", i.clone())],
            true,
        ),
        case(
            "post",
            "/v1/scaling-groups/{id}/standby",
            format!("/v1/scaling-groups/{g}/standby"),
            Some(json!({"action": "exit", "instance_ids": [i]})),
            (ESS, "ExitStandby"),
            vec![("ScalingGroupId", g.clone()), ("InstanceId.1", i.clone())],
            true,
        ),
        case(
            "post",
            "/v1/scaling-groups/{id}/remove-instances",
            format!("/v1/scaling-groups/{g}/remove-instances"),
            Some(json!({"instance_ids": [i]})),
            (ESS, "RemoveInstances"),
            vec![("ScalingGroupId", g.clone()), ("InstanceId.1", i.clone())],
            true,
        ),
        case(
            "post",
            "/v1/scaling-groups/{id}/protection",
            format!("/v1/scaling-groups/{g}/protection"),
            Some(json!({"protected": true, "instance_ids": [i]})),
            (ESS, "SetInstancesProtection"),
            vec![("ScalingGroupId", g.clone()), ("InstanceId.1", i.clone()), ("ProtectedFromScaleIn", s("true"))],
            true,
        ),
        case(
            "get",
            "/v1/scaling-groups/{id}/activities",
            format!("/v1/scaling-groups/{g}/activities"),
            None,
            (ESS, "DescribeScalingActivities"),
            vec![("ScalingGroupId", g.clone())],
            true,
        ),
        case(
            "get",
            "/v1/scaling-configurations",
            format!("/v1/scaling-configurations?scaling_group_id={g}"),
            None,
            (ESS, "DescribeScalingConfigurations"),
            vec![("ScalingGroupId", g.clone())],
            true,
        ),
        case(
            "post",
            "/v1/scaling-configurations",
            s("/v1/scaling-configurations"),
            Some(json!({"scaling_group_id": g, "image_id": "img"})),
            (ESS, "CreateScalingConfiguration"),
            vec![("ScalingGroupId", g.clone()), ("ImageId", s("img"))],
            true,
        ),
        case(
            "get",
            "/v1/scaling-configurations/{id}",
            format!("/v1/scaling-configurations/{c}"),
            None,
            (ESS, "DescribeScalingConfigurations"),
            vec![("ScalingConfigurationId.1", c.clone())],
            false,
        ),
        case(
            "patch",
            "/v1/scaling-configurations/{id}",
            format!("/v1/scaling-configurations/{c}"),
            Some(json!({"name": "renamed"})),
            (ESS, "ModifyScalingConfiguration"),
            vec![("ScalingConfigurationId", c.clone()), ("ScalingConfigurationName", s("renamed"))],
            false,
        ),
        case(
            "get",
            "/v1/instances",
            format!("/v1/instances?scaling_group_id={g}"),
            None,
            (ESS, "DescribeScalingInstances"),
            vec![("ScalingGroupId", g.clone())],
            true,
        ),
        case(
            "get",
            "/v1/instances/{id}",
            format!("/v1/instances/{i}"),
            None,
            (ESS_2022, "DescribeScalingInstances"),
            vec![("InstanceIds.1", i.clone())],
            false,
        ),
        case(
            "get",
            "/v1/launch-templates",
            s("/v1/launch-templates"),
            None,
            (ECS, "DescribeLaunchTemplates"),
            vec![],
            false,
        ),
        case(
            "post",
            "/v1/launch-templates",
            s("/v1/launch-templates"),
            Some(json!({"name": "t2", "version": {"image_id": "img"}})),
            (ECS, "CreateLaunchTemplate"),
            vec![("LaunchTemplateName", s("t2")), ("ImageId", s("img"))],
            false,
        ),
        case(
            "get",
            "/v1/launch-templates/{id}",
            format!("/v1/launch-templates/{lt}"),
            None,
            (ECS, "DescribeLaunchTemplates"),
            vec![("LaunchTemplateId.1", lt.clone())],
            false,
        ),
        case(
            "patch",
            "/v1/launch-templates/{id}",
            format!("/v1/launch-templates/{lt}"),
            Some(json!({"default_version": 1})),
            (ECS, "ModifyLaunchTemplateDefaultVersion"),
            vec![("LaunchTemplateId", lt.clone()), ("DefaultVersionNumber", s("1"))],
            false,
        ),
        case(
            "get",
            "/v1/launch-templates/{id}/versions",
            format!("/v1/launch-templates/{lt}/versions"),
            None,
            (ECS, "DescribeLaunchTemplateVersions"),
            vec![("LaunchTemplateId", lt.clone())],
            false,
        ),
        case(
            "post",
            "/v1/launch-templates/{id}/versions",
            format!("/v1/launch-templates/{lt}/versions"),
            Some(json!({"image_id": "img"})),
            (ECS, "CreateLaunchTemplateVersion"),
            vec![("LaunchTemplateId", lt.clone()), ("ImageId", s("img"))],
            false,
        ),
        case("get", "/v1/load-balancers", s("/v1/load-balancers"), None, (ESS, "DescribeLoadBalancers"), vec![], false),
        case(
            "post",
            "/v1/load-balancers",
            s("/v1/load-balancers"),
            Some(json!({"name": "lb2"})),
            (ESS, "CreateLoadBalancer"),
            vec![("LoadBalancerName", s("lb2"))],
            false,
        ),
        case(
            "put",
            "/v1/load-balancers/{id}/backend-servers",
            s("/v1/load-balancers/lb-nope/backend-servers"),
            Some(json!({"backend_servers": [{"instance_id": i, "weight": 50}]})),
            (ESS, "SetBackendServers"),
            vec![
                ("LoadBalancerId", s("lb-nope")),
                ("BackendServers", json!([{"ServerId": i, "Weight": 50}]).to_string()),
            ],
            false,
        ),
        case("get", "/v1/images", s("/v1/images"), None, (ECS, "DescribeImages"), vec![], false),
        // The same operation under ESS's version is the same action.
        case("get", "/v1/images", s("/v1/images"), None, (ESS, "DescribeImages"), vec![], false),
        case(
            "post",
            "/v1/images",
            s("/v1/images"),
            Some(json!({"id": "img2"})),
            (ECS, "CreateImage"),
            vec![("ImageId", s("img2"))],
            false,
        ),
        case(
            "delete",
            "/v1/images/{id}",
            s("/v1/images/img"),
            None,
            (ESS_2022, "DeleteImage"),
            vec![("ImageId", s("img"))],
            false,
        ),
        case("get", "/v1/packages", s("/v1/packages"), None, (ESS, "ListPackages"), vec![], false),
        case(
            "post",
            "/v1/packages",
            s("/v1/packages"),
            Some(json!({"name": "p", "version": "v1", "install_script": "echo"})),
            (ESS, "CreatePackage"),
            vec![("PackageName", s("p")), ("PackageVersion", s("v1")), ("InstallScript", s("echo"))],
            false,
        ),
        case(
            "delete",
            "/v1/packages/{name}/{version}",
            s("/v1/packages/p/v1"),
            None,
            (ESS, "DeletePackage"),
            vec![("PackageName", s("p")), ("PackageVersion", s("v1"))],
            false,
        ),
        case("get", "/v1/rolling-updates", s("/v1/rolling-updates"), None, (OOS, "ListExecutions"), vec![], false),
        case(
            "post",
            "/v1/rolling-updates",
            s("/v1/rolling-updates"),
            Some(json!({"template_name": template, "parameters": start})),
            (OOS, "StartExecution"),
            vec![("TemplateName", s(template)), ("Parameters", start.to_string())],
            false,
        ),
        case(
            "get",
            "/v1/rolling-updates/{id}",
            format!("/v1/rolling-updates/{e}"),
            None,
            (OOS, "ListExecutions"),
            vec![("ExecutionId", e.clone())],
            true,
        ),
        case(
            "get",
            "/v1/rolling-updates/{id}/instances",
            format!("/v1/rolling-updates/{e}/instances"),
            None,
            (OOS, "ListTaskExecutions"),
            vec![("ExecutionId", e.clone())],
            true,
        ),
        case(
            "post",
            "/v1/rolling-updates/{id}/continue",
            format!("/v1/rolling-updates/{e}/continue"),
            None,
            (OOS, "NotifyExecution"),
            vec![("ExecutionId", e.clone()), ("NotifyType", s("Approve"))],
            true,
        ),
        case(
            "post",
            "/v1/rolling-updates/{id}/cancel",
            format!("/v1/rolling-updates/{e}/cancel"),
            None,
            (OOS, "CancelExecution"),
            vec![("ExecutionId", e.clone())],
            true,
        ),
        // A rollback is a new execution: StartExecution, on no execution yet, as over RPC.
        case(
            "post",
            "/v1/rolling-updates/{id}/rollback",
            format!("/v1/rolling-updates/{e}/rollback"),
            None,
            (OOS, "StartExecution"),
            vec![
                ("TemplateName", s(template)),
                ("Parameters", json!({"invokeType": "rollback", "sourceExecutionId": e}).to_string()),
            ],
            false,
        ),
        case(
            "post",
            "/v1/rolling-updates/{id}/instances/{instance_id}/retry",
            format!("/v1/rolling-updates/{e}/instances/{i}/retry"),
            None,
            (OOS, "NotifyExecution"),
            vec![("ExecutionId", e.clone()), ("NotifyType", s("RetryTask")), ("LoopItem", i.clone())],
            true,
        ),
        case(
            "post",
            "/v1/rolling-updates/{id}/instances/{instance_id}/skip",
            format!("/v1/rolling-updates/{e}/instances/{i}/skip"),
            None,
            (OOS, "NotifyExecution"),
            vec![("ExecutionId", e.clone()), ("NotifyType", s("SkipTask")), ("LoopItem", i.clone())],
            true,
        ),
        case(
            "post",
            "/v1/rolling-updates/{id}/instances/{instance_id}/cancel",
            format!("/v1/rolling-updates/{e}/instances/{i}/cancel"),
            None,
            (OOS, "NotifyExecution"),
            vec![("ExecutionId", e.clone()), ("NotifyType", s("CancelTask")), ("LoopItem", i.clone())],
            true,
        ),
        case(
            "get",
            "/v1/rolling-updates/{id}/events",
            format!("/v1/rolling-updates/{e}/events"),
            None,
            (OOS, "ListExecutions"),
            vec![("ExecutionId", e.clone())],
            true,
        ),
        case(
            "get",
            "/v1/image-update-tasks",
            format!("/v1/image-update-tasks?scaling_group_id={g}"),
            None,
            (OOS, "ListExecutions"),
            vec![("TemplateName", s(IMAGE_TEMPLATE))],
            false,
        ),
        case(
            "post",
            "/v1/image-update-tasks",
            s("/v1/image-update-tasks"),
            Some(json!({"parameters": image_start})),
            (OOS, "StartExecution"),
            vec![("TemplateName", s(IMAGE_TEMPLATE)), ("Parameters", image_start.to_string())],
            false,
        ),
        case(
            "get",
            "/v1/image-update-tasks/{id}",
            format!("/v1/image-update-tasks/{e}"),
            None,
            (OOS, "ListExecutions"),
            vec![("ExecutionId", e.clone())],
            true,
        ),
        case(
            "post",
            "/v1/image-update-tasks/{id}/cancel",
            format!("/v1/image-update-tasks/{e}/cancel"),
            None,
            (OOS, "CancelExecution"),
            vec![("ExecutionId", e.clone())],
            true,
        ),
        case(
            "get",
            "/v1/events",
            format!("/v1/events?execution_id={e}"),
            None,
            (ESS, "DescribeEvents"),
            vec![("ExecutionId", e.clone())],
            false,
        ),
        case(
            "get",
            "/v1/events",
            format!("/v1/events?scaling_group_id={g}&keywords=failed"),
            None,
            (ESS, "DescribeEvents"),
            vec![("ScalingGroupId", g.clone()), ("Keywords", s("failed"))],
            true,
        ),
        case("get", "/v1/users", s("/v1/users"), None, (RAM, "ListUsers"), vec![], false),
        case(
            "post",
            "/v1/users",
            s("/v1/users"),
            Some(json!({"name": "victim"})),
            (RAM, "CreateUser"),
            vec![("UserName", s("victim"))],
            true,
        ),
        case(
            "get",
            "/v1/users/{name}",
            s("/v1/users/victim"),
            None,
            (RAM, "GetUser"),
            vec![("UserName", s("victim"))],
            true,
        ),
        case(
            "delete",
            "/v1/users/{name}",
            s("/v1/users/victim"),
            None,
            (RAM, "DeleteUser"),
            vec![("UserName", s("victim"))],
            true,
        ),
        case(
            "get",
            "/v1/users/{name}/keys",
            s("/v1/users/victim/keys"),
            None,
            (RAM, "ListAccessKeys"),
            vec![("UserName", s("victim"))],
            true,
        ),
        case(
            "post",
            "/v1/users/{name}/keys",
            s("/v1/users/victim/keys"),
            None,
            (RAM, "CreateAccessKey"),
            vec![("UserName", s("victim"))],
            true,
        ),
        case(
            "patch",
            "/v1/users/{name}/keys/{id}",
            format!("/v1/users/victim/keys/{k}"),
            Some(json!({"status": "Inactive"})),
            (RAM, "UpdateAccessKey"),
            vec![("UserName", s("victim")), ("UserAccessKeyId", k.clone()), ("Status", s("Inactive"))],
            true,
        ),
        case(
            "delete",
            "/v1/users/{name}/keys/{id}",
            format!("/v1/users/victim/keys/{k}"),
            None,
            (RAM, "DeleteAccessKey"),
            vec![("UserName", s("victim")), ("UserAccessKeyId", k.clone())],
            true,
        ),
        case(
            "get",
            "/v1/users/{name}/policies",
            s("/v1/users/victim/policies"),
            None,
            (RAM, "ListPoliciesForUser"),
            vec![("UserName", s("victim"))],
            true,
        ),
        case(
            "post",
            "/v1/users/{name}/policies",
            s("/v1/users/victim/policies"),
            Some(json!({"policy_type": "System", "policy_name": "AdministratorAccess"})),
            (RAM, "AttachPolicyToUser"),
            vec![("UserName", s("victim")), ("PolicyType", s("System")), ("PolicyName", s("AdministratorAccess"))],
            true,
        ),
        case(
            "delete",
            "/v1/users/{name}/policies/{policy_type}/{policy_name}",
            s("/v1/users/victim/policies/System/AliyunESSReadOnlyAccess"),
            None,
            (RAM, "DetachPolicyFromUser"),
            vec![("UserName", s("victim")), ("PolicyType", s("System")), ("PolicyName", s("AliyunESSReadOnlyAccess"))],
            true,
        ),
        case("get", "/v1/policies", s("/v1/policies"), None, (RAM, "ListPolicies"), vec![], false),
        case(
            "post",
            "/v1/policies",
            s("/v1/policies"),
            Some(json!({"name": "Guarded", "document": {"Version": "1", "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"}]}})),
            (RAM, "CreatePolicy"),
            vec![
                ("PolicyName", s("Guarded")),
                (
                    "PolicyDocument",
                    s(r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#),
                ),
            ],
            true,
        ),
        case(
            "delete",
            "/v1/policies/{name}",
            s("/v1/policies/Guarded"),
            None,
            (RAM, "DeletePolicy"),
            vec![("PolicyName", s("Guarded"))],
            true,
        ),
        case("get", "/v1/alert-rules", s("/v1/alert-rules"), None, (CMS, "DescribeEventRuleList"), vec![], false),
        case(
            "put",
            "/v1/alert-rules/{name}",
            s("/v1/alert-rules/pager"),
            Some(json!({"patterns": [{"levels": ["CRITICAL"]}]})),
            (CMS, "PutEventRule"),
            vec![
                ("RuleName", s("pager")),
                ("EventPattern.1.Product", s("ess")),
                ("EventPattern.1.LevelList.1", s("CRITICAL")),
            ],
            true,
        ),
        case(
            "get",
            "/v1/alert-rules/{name}",
            s("/v1/alert-rules/pager"),
            None,
            (CMS, "DescribeEventRuleAttribute"),
            vec![("RuleName", s("pager"))],
            true,
        ),
        case(
            "delete",
            "/v1/alert-rules/{name}",
            s("/v1/alert-rules/pager"),
            None,
            (CMS, "DeleteEventRules"),
            vec![("RuleNames.1", s("pager"))],
            true,
        ),
        case(
            "post",
            "/v1/alert-rules/{name}/state",
            s("/v1/alert-rules/pager/state"),
            Some(json!({"action": "disable"})),
            (CMS, "DisableEventRules"),
            vec![("RuleNames.1", s("pager"))],
            true,
        ),
        case(
            "post",
            "/v1/alert-rules/{name}/state",
            s("/v1/alert-rules/pager/state"),
            Some(json!({"action": "enable"})),
            (CMS, "EnableEventRules"),
            vec![("RuleNames.1", s("pager"))],
            true,
        ),
        case(
            "put",
            "/v1/alert-rules/{name}/webhooks/{id}",
            s("/v1/alert-rules/pager/webhooks/ops"),
            Some(json!({"url": "http://127.0.0.1:9/"})),
            (CMS, "PutEventRuleTargets"),
            vec![
                ("RuleName", s("pager")),
                ("WebhookParameters.1.Id", s("ops")),
                ("WebhookParameters.1.Url", s("http://127.0.0.1:9/")),
            ],
            true,
        ),
        case(
            "delete",
            "/v1/alert-rules/{name}/webhooks/{id}",
            s("/v1/alert-rules/pager/webhooks/ops"),
            None,
            (CMS, "DeleteEventRuleTargets"),
            vec![("RuleName", s("pager")), ("Ids.1", s("ops"))],
            true,
        ),
        case(
            "get",
            "/v1/alert-rules/{name}/deliveries",
            s("/v1/alert-rules/pager/deliveries"),
            None,
            (CMS, "DescribeEventRuleDeliveries"),
            vec![("RuleName", s("pager"))],
            true,
        ),
        case(
            "get",
            "/v1/audit-events",
            s("/v1/audit-events?user_name=victim"),
            None,
            (RAM, "ListAuditEvents"),
            vec![("UserName", s("victim"))],
            true,
        ),
    ]
}

struct Fixture {
    router: axum::Router,
    service: rollscale_engine::Service,
    ids: Ids,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let (service, dir) = server::service(ADMIN, ADMIN_SECRET, 0).await;
    service.create_image("img", None, None).await.unwrap();
    let mut groups = Vec::new();
    for name in ["guarded", "open"] {
        let new = NewGroup { name: name.into(), max_size: 3, desired_capacity: Some(2), ..NewGroup::default() };
        let (group, configuration) = enabled_group(&service, new, engine::configuration("img")).await;
        service.reconcile_group(&group).await.unwrap();
        groups.push((group.id.to_string(), configuration.id.to_string()));
    }
    let (group, configuration) = groups[0].clone();
    let instance = service.instances(Some(&group_id(&group)), None, None).await.unwrap()[0].id.to_string();
    let parameters = json!({"invokeType": "invoke", "scalingGroupId": group, "invokeScript": "echo",
                            "batchPauseOption": "EveryBatchPause", "batchNumber": 2});
    let task = service
        .start_template("ACS-ESS-RollingUpdateByRunCommandInScalingGroup", &parameters.to_string())
        .await
        .unwrap();
    let (template, _) = service
        .create_launch_template(
            "t",
            NewTemplateVersion { image_id: "img".into(), instance_type: None, containers: vec![], description: None },
        )
        .await
        .unwrap();
    service.create_user(NewUser { name: "victim".into(), ..NewUser::default() }).await.unwrap();
    let key = service.create_access_key("victim").await.unwrap();
    let document = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    service.create_policy("Guarded", document, "").await.unwrap();
    service
        .put_alert_rule(rollscale_engine::alerts::RuleChange {
            name: "pager".into(),
            patterns: vec![rollscale_core::alert::EventPattern::default()],
            ..Default::default()
        })
        .await
        .unwrap();
    Fixture {
        router: router(service.clone(), AuthConfig::default()),
        service,
        ids: Ids {
            group,
            other_group: groups[1].0.clone(),
            configuration,
            instance,
            execution: task.id.to_string(),
            template: template.id.to_string(),
            key: key.id,
        },
        _dir: dir,
    }
}

/// A user with a custom policy of `statements`, its key and a bearer token.
async fn user(fixture: &Fixture, name: &str, statements: Value) -> (String, String, String) {
    let document = json!({"Version": "1", "Statement": statements}).to_string();
    let policy = format!("{name}-policy");
    fixture.service.create_policy(&policy, &document, "").await.unwrap();
    fixture.service.create_user(NewUser { name: name.into(), ..NewUser::default() }).await.unwrap();
    fixture.service.attach_policy(name, PolicyType::Custom, &policy).await.unwrap();
    let key = fixture.service.create_access_key(name).await.unwrap();
    let token = make_token(&key.id, &key.secret, chrono::Utc::now().timestamp() + 600);
    (key.id, key.secret, token)
}

fn denied_resources(ids: &Ids) -> Value {
    json!([
        format!("acs:ess:*:*:scalinggroup/{}", ids.group),
        format!("acs:oos:*:*:execution/{}", ids.execution),
        "acs:ram:*:*:user/victim",
        "acs:ram:*:*:policy/Guarded",
        "acs:cms:*:*:rule/pager",
    ])
}

async fn both(fixture: &Fixture, case: &Case, (key, secret, token): &(String, String, String)) -> [(u16, Value); 2] {
    let params: Vec<(&str, &str)> = case.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rest = send(&fixture.router, rest_request(token, case.method, &case.path, case.body.as_ref())).await;
    let rpc = send(&fixture.router, rpc_request(key, secret, case.version, case.action, &params)).await;
    [rest, rpc]
}

#[tokio::test]
async fn every_rest_route_is_authorized_as_its_rpc_operation_on_the_same_resources() {
    let fixture = fixture().await;
    let cases = cases(&fixture.ids);
    // Every route has its case, and names the RPC operation's action.
    for route in rollscale_server::rest::ROUTES.iter().filter(|route| route.path != "/v1/tokens") {
        let mine: Vec<&Case> =
            cases.iter().filter(|case| case.method == route.method && case.template == route.path).collect();
        assert!(!mine.is_empty(), "no case for {} {}", route.method, route.path);
        for case in mine {
            let operation = operations::find(case.version, case.action).expect("an RPC operation");
            let actions: Vec<&str> = match route.action_by {
                None => vec![route.action],
                Some((_, choices)) => choices.iter().map(|(_, action)| *action).collect(),
            };
            assert!(
                actions.contains(&operation.action),
                "{} {}: {actions:?} vs {}",
                route.method,
                route.path,
                operation.action
            );
        }
    }
    assert!(operations::by_action("sts:CreateToken").is_none(), "a token is no operation of the RPC API");

    // Denied everything on four resources, allowed nothing: every call is refused over both
    // APIs with the same message (action, resource, and which kind of refusal).
    let nobody = user(
        &fixture,
        "nobody",
        json!([{"Effect": "Deny", "Action": "*", "Resource": denied_resources(&fixture.ids)}]),
    )
    .await;
    for case in &cases {
        let what = format!("{} {} / {} {}", case.method, case.path, case.version, case.action);
        let [(rest_status, rest), (rpc_status, rpc)] = both(&fixture, case, &nobody).await;
        assert_eq!((rest_status, rest["Code"].as_str()), (403, Some("Forbidden.RAM")), "{what}: {rest}");
        assert_eq!((rpc_status, rpc["Code"].as_str()), (403, Some("Forbidden.RAM")), "{what}: {rpc}");
        assert_eq!(rest["Message"], rpc["Message"], "{what}");
        let explicit = rest["Message"].as_str().unwrap().contains("denies it explicitly");
        assert_eq!(explicit, case.denied, "{what}: {rest}");
    }

    // Allowed everything but those resources: refused exactly the calls that name them.
    let scoped = user(
        &fixture,
        "scoped",
        json!([{"Effect": "Allow", "Action": "*", "Resource": "*"},
               {"Effect": "Deny", "Action": "*", "Resource": denied_resources(&fixture.ids)}]),
    )
    .await;
    for case in cases.iter().filter(|case| case.denied) {
        let what = format!("{} {} / {} {}", case.method, case.path, case.version, case.action);
        for (status, body) in both(&fixture, case, &scoped).await {
            assert_eq!((status, body["Code"].as_str()), (403, Some("Forbidden.RAM")), "{what}: {body}");
            assert!(body["Message"].as_str().unwrap().contains("denies it explicitly"), "{what}: {body}");
        }
    }
    // Nothing of those changed, and the group next to it is readable over both APIs.
    assert_eq!(fixture.service.groups(None, None).await.unwrap().len(), 2);
    assert!(fixture.service.user("victim").await.is_ok());
    assert_eq!(fixture.service.access_keys("victim").await.unwrap()[0].status.as_str(), "Active");
    let pager = fixture.service.alert_rule("pager").await.unwrap();
    assert!(pager.enabled && pager.webhooks.is_empty(), "{pager:?}");
    let other = &fixture.ids.other_group;
    let read = case(
        "get",
        "/v1/scaling-groups/{id}",
        format!("/v1/scaling-groups/{other}"),
        None,
        (ESS, "DescribeScalingGroups"),
        vec![("ScalingGroupId.1", other.clone())],
        false,
    );
    let [(rest_status, rest), (rpc_status, rpc)] = both(&fixture, &read, &scoped).await;
    assert_eq!((rest_status, rest["id"].as_str()), (200, Some(other.as_str())), "{rest}");
    assert_eq!(rpc_status, 200, "{rpc}");
    assert_eq!(rpc["ScalingGroups"]["ScalingGroup"][0]["ScalingGroupId"], other.as_str(), "{rpc}");

    // The audit log has both APIs' refusals under the same action and resource.
    let filter = rollscale_core::access::AuditFilter { user_name: Some("scoped".into()), ..Default::default() };
    let (events, _) = fixture.service.audit_events(&filter, 0, 1000).await.unwrap();
    let resume: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e.action == "ess:ResumeProcesses")
        .map(|e| (e.resource.as_str(), e.result_code.as_str()))
        .collect();
    let resource = format!("acs:ess:*:*:scalinggroup/{}", fixture.ids.group);
    assert_eq!(resume, [(resource.as_str(), "Forbidden.RAM"); 2], "REST resume is ess:ResumeProcesses: {events:?}");
}
