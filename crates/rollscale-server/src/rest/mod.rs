//! The REST API under `/v1`: JSON resources over the same [`Service`] as the RPC API, with
//! an OpenAPI 3 document generated from [`ROUTES`] and the [`dto`] types
//! (`GET /v1/openapi.json`), a long-poll wait (`GET /v1/rolling-updates/{id}?wait=S`) and a
//! Server-Sent Events stream of a rolling update's progress.
//!
//! Every route but the document itself is authenticated ([`auth`]): an ACS3-HMAC-SHA256
//! signature over the request (the SDKs' scheme, with the path as canonical URI and the JSON
//! body hashed), or `Authorization: Bearer <token>` with a token made from an AccessKey.
//! Errors have the RPC API's shape and codes.

pub mod auth;
pub mod dto;
mod handlers;
pub mod openapi;

use crate::AppState;
use axum::routing::{self, MethodRouter};
use axum::Router;
use std::sync::Arc;

type State = Arc<AppState>;

/// A route: its method and path (axum's and OpenAPI's `{param}` syntax), the operation it is
/// (the RPC API's action for it, from [`crate::operations`]: it is authorized and audited as
/// that, on the resources [`crate::operations::resources`] finds in the same named
/// parameters), and what the document says.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// `product:Action`: the operation of [`crate::operations::OPERATIONS`] this route is (the
    /// first of `action_by` when the body chooses).
    pub action: &'static str,
    /// When a field of the JSON body chooses between operations: the field and, for each of
    /// its values, the action (`{"action": "resume"}` is `ess:ResumeProcesses`).
    pub action_by: Option<(&'static str, &'static [(&'static str, &'static str)])>,
    /// The parameters that name what the route acts on: each a `{path}` parameter, a query
    /// parameter or a top-level field of the JSON body, with the RPC parameter it is
    /// ([`crate::operations::RESOURCE_PARAMS`]).
    pub names: &'static [(&'static str, &'static str)],
    pub summary: &'static str,
    /// Query parameters: (name, description).
    pub query: &'static [(&'static str, &'static str)],
    pub body: Option<openapi::SchemaFn>,
    pub response: openapi::SchemaFn,
    /// `text/event-stream` instead of JSON.
    pub stream: bool,
    handler: fn() -> MethodRouter<State>,
}

use dto::*;
use openapi::schema as s;

macro_rules! route {
    ($method:ident $path:literal, $action:literal, names: $names:expr, $summary:literal, query: $query:expr, body: $body:expr, response: $response:expr, $handler:path) => {
        route!($method $path, $action, by: None, names: $names, $summary, query: $query, body: $body, response: $response, $handler)
    };
    ($method:ident $path:literal, $action:literal, by: $by:expr, names: $names:expr, $summary:literal, query: $query:expr, body: $body:expr, response: $response:expr, $handler:path) => {
        Route {
            method: stringify!($method),
            path: $path,
            action: $action,
            action_by: $by,
            names: $names,
            summary: $summary,
            query: $query,
            body: $body,
            response: $response,
            stream: false,
            handler: || routing::$method($handler),
        }
    };
}

/// Every route of the REST API.
pub static ROUTES: &[Route] = &[
    route!(get "/v1/scaling-groups", "ess:DescribeScalingGroups", names: &[], "List scaling groups",
        query: &[("name", "only the group with this name")], body: None, response: s::<List<ScalingGroupView>>,
        handlers::list_groups),
    route!(post "/v1/scaling-groups", "ess:CreateScalingGroup", names: &[], "Create a scaling group (Inactive until enabled)",
        query: &[], body: Some(s::<NewScalingGroup>), response: s::<ScalingGroupView>, handlers::create_group),
    route!(get "/v1/scaling-groups/{id}", "ess:DescribeScalingGroups", names: &[("id", "ScalingGroupId")], "Get a scaling group",
        query: &[], body: None, response: s::<ScalingGroupView>, handlers::get_group),
    route!(patch "/v1/scaling-groups/{id}", "ess:ModifyScalingGroup", names: &[("id", "ScalingGroupId")], "Change a scaling group's sizes, name, configuration, drain time or health check",
        query: &[], body: Some(s::<ScalingGroupChanges>), response: s::<ScalingGroupView>, handlers::modify_group),
    route!(delete "/v1/scaling-groups/{id}", "ess:DeleteScalingGroup", names: &[("id", "ScalingGroupId")], "Delete a scaling group (force=true also removes its instances)",
        query: &[("force", "true: remove the group's instances too")], body: None, response: s::<ScalingGroupView>,
        handlers::delete_group),
    route!(post "/v1/scaling-groups/{id}/enable", "ess:EnableScalingGroup", names: &[("id", "ScalingGroupId")], "Enable a scaling group with a scaling configuration",
        query: &[], body: Some(s::<EnableScalingGroup>), response: s::<ScalingGroupView>, handlers::enable_group),
    route!(post "/v1/scaling-groups/{id}/processes", "ess:SuspendProcesses",
        by: Some(("action", &[("suspend", "ess:SuspendProcesses"), ("resume", "ess:ResumeProcesses")])),
        names: &[("id", "ScalingGroupId")], "Suspend or resume scaling processes",
        query: &[], body: Some(s::<ProcessesChange>), response: s::<ScalingGroupView>, handlers::change_processes),
    route!(post "/v1/scaling-groups/{id}/standby", "ess:EnterStandby",
        by: Some(("action", &[("enter", "ess:EnterStandby"), ("exit", "ess:ExitStandby")])),
        names: &[("id", "ScalingGroupId")], "Put instances in Standby (weight 0) or take them out",
        query: &[], body: Some(s::<StandbyChange>), response: s::<List<InstanceView>>, handlers::change_standby),
    route!(post "/v1/scaling-groups/{id}/remove-instances", "ess:RemoveInstances", names: &[("id", "ScalingGroupId")],
        "Remove instances from a group and release them (the desired capacity goes down by as many unless told otherwise)",
        query: &[], body: Some(s::<RemoveInstancesBody>), response: s::<List<InstanceView>>, handlers::remove_instances),
    route!(post "/v1/scaling-groups/{id}/protection", "ess:SetInstancesProtection", names: &[("id", "ScalingGroupId")], "Protect instances from scale-in, or stop",
        query: &[], body: Some(s::<ProtectionChange>), response: s::<List<InstanceView>>, handlers::change_protection),
    route!(get "/v1/scaling-groups/{id}/activities", "ess:DescribeScalingActivities", names: &[("id", "ScalingGroupId")], "List a group's scaling activities",
        query: &[], body: None, response: s::<List<ActivityView>>, handlers::list_activities),
    route!(get "/v1/scaling-configurations", "ess:DescribeScalingConfigurations", names: &[("scaling_group_id", "ScalingGroupId")], "List scaling configurations",
        query: &[("scaling_group_id", "only this group's")], body: None, response: s::<List<ScalingConfigurationView>>,
        handlers::list_configurations),
    route!(post "/v1/scaling-configurations", "ess:CreateScalingConfiguration", names: &[("scaling_group_id", "ScalingGroupId")], "Create a scaling configuration",
        query: &[], body: Some(s::<NewScalingConfiguration>), response: s::<ScalingConfigurationView>,
        handlers::create_configuration),
    route!(get "/v1/scaling-configurations/{id}", "ess:DescribeScalingConfigurations", names: &[], "Get a scaling configuration",
        query: &[], body: None, response: s::<ScalingConfigurationView>, handlers::get_configuration),
    route!(patch "/v1/scaling-configurations/{id}", "ess:ModifyScalingConfiguration", names: &[], "Change a scaling configuration's name or image (new instances only; a rolling update changes running ones)",
        query: &[], body: Some(s::<ScalingConfigurationChanges>), response: s::<ScalingConfigurationView>,
        handlers::modify_configuration),
    route!(get "/v1/instances", "ess:DescribeScalingInstances", names: &[("scaling_group_id", "ScalingGroupId")], "List instances",
        query: &[("scaling_group_id", "only this group's"), ("lifecycle_state", "only in this state")], body: None,
        response: s::<List<InstanceView>>, handlers::list_instances),
    route!(get "/v1/instances/{id}", "ess:DescribeScalingInstances", names: &[], "Get an instance",
        query: &[], body: None, response: s::<InstanceView>, handlers::get_instance),
    route!(get "/v1/launch-templates", "ecs:DescribeLaunchTemplates", names: &[], "List launch templates",
        query: &[], body: None, response: s::<List<LaunchTemplateView>>, handlers::list_launch_templates),
    route!(post "/v1/launch-templates", "ecs:CreateLaunchTemplate", names: &[], "Create a launch template with its version 1",
        query: &[], body: Some(s::<NewLaunchTemplate>), response: s::<LaunchTemplateView>, handlers::create_launch_template),
    route!(get "/v1/launch-templates/{id}", "ecs:DescribeLaunchTemplates", names: &[], "Get a launch template",
        query: &[], body: None, response: s::<LaunchTemplateView>, handlers::get_launch_template),
    route!(patch "/v1/launch-templates/{id}", "ecs:ModifyLaunchTemplateDefaultVersion", names: &[], "Set a launch template's default version",
        query: &[], body: Some(s::<LaunchTemplateChanges>), response: s::<LaunchTemplateView>,
        handlers::modify_launch_template),
    route!(get "/v1/launch-templates/{id}/versions", "ecs:DescribeLaunchTemplateVersions", names: &[], "List a launch template's versions",
        query: &[], body: None, response: s::<List<LaunchTemplateVersionView>>, handlers::list_launch_template_versions),
    route!(post "/v1/launch-templates/{id}/versions", "ecs:CreateLaunchTemplateVersion", names: &[], "Add a launch template version",
        query: &[], body: Some(s::<NewLaunchTemplateVersion>), response: s::<LaunchTemplateVersionView>,
        handlers::create_launch_template_version),
    route!(get "/v1/load-balancers", "ess:DescribeLoadBalancers", names: &[], "List load balancers",
        query: &[], body: None, response: s::<List<LoadBalancerView>>, handlers::list_load_balancers),
    route!(post "/v1/load-balancers", "ess:CreateLoadBalancer", names: &[], "Create a load balancer",
        query: &[], body: Some(s::<NewLoadBalancer>), response: s::<LoadBalancerView>, handlers::create_load_balancer),
    route!(put "/v1/load-balancers/{id}/backend-servers", "ess:SetBackendServers", names: &[],
        "Set the weights of InService backend servers (an instance in Standby keeps the weight it gets back)",
        query: &[], body: Some(s::<BackendServers>), response: s::<BackendServers>, handlers::set_backend_servers),
    route!(get "/v1/images", "ecs:DescribeImages", names: &[], "List the image catalog",
        query: &[], body: None, response: s::<List<ImageView>>, handlers::list_images),
    route!(post "/v1/images", "ecs:CreateImage", names: &[], "Add an image to the catalog, or make one from an instance",
        query: &[], body: Some(s::<NewImage>), response: s::<ImageView>, handlers::create_image),
    route!(delete "/v1/images/{id}", "ecs:DeleteImage", names: &[], "Remove an image from the catalog (ids with `/` percent-encoded)",
        query: &[], body: None, response: s::<ImageView>, handlers::delete_image),
    route!(get "/v1/packages", "ess:ListPackages", names: &[], "List package versions",
        query: &[("name", "only this package's versions")], body: None, response: s::<List<PackageView>>,
        handlers::list_packages),
    route!(post "/v1/packages", "ess:CreatePackage", names: &[], "Add a package version",
        query: &[], body: Some(s::<NewPackage>), response: s::<PackageView>, handlers::create_package),
    route!(delete "/v1/packages/{name}/{version}", "ess:DeletePackage", names: &[], "Remove a package version",
        query: &[], body: None, response: s::<PackageView>, handlers::delete_package),
    route!(get "/v1/rolling-updates", "oos:ListExecutions", names: &[], "List rolling updates, newest first",
        query: &[("scaling_group_id", "only this group's"), ("status", "Running, Waiting, Success, Failed or Cancelled"),
                 ("limit", "at most this many (1 to 100, default 50)")],
        body: None, response: s::<List<RollingUpdateView>>, handlers::list_rolling_updates),
    route!(post "/v1/rolling-updates", "oos:StartExecution", names: &[], "Start a rolling update",
        query: &[], body: Some(s::<NewRollingUpdate>), response: s::<RollingUpdateView>, handlers::start_rolling_update),
    route!(get "/v1/rolling-updates/{id}", "oos:ListExecutions", names: &[("id", "ExecutionId")],
        "Get a rolling update; with wait=S, first wait up to S seconds (at most 300) until it is finished or Waiting",
        query: &[("wait", "seconds to wait until the task is finished or Waiting (long poll)")], body: None,
        response: s::<RollingUpdateView>, handlers::get_rolling_update),
    route!(get "/v1/rolling-updates/{id}/instances", "oos:ListTaskExecutions", names: &[("id", "ExecutionId")], "The rolling update's instances, with outputs",
        query: &[], body: None, response: s::<List<RollingUpdateInstanceView>>, handlers::list_rolling_update_instances),
    route!(post "/v1/rolling-updates/{id}/continue", "oos:NotifyExecution", names: &[("id", "ExecutionId")], "Continue a batch pause",
        query: &[], body: None, response: s::<RollingUpdateView>, handlers::continue_rolling_update),
    route!(post "/v1/rolling-updates/{id}/cancel", "oos:CancelExecution", names: &[("id", "ExecutionId")], "Cancel a rolling update (restore: leave no instance in Standby)",
        query: &[], body: Some(s::<CancelRollingUpdate>), response: s::<RollingUpdateView>, handlers::cancel_rolling_update),
    route!(post "/v1/rolling-updates/{id}/rollback", "oos:StartExecution", names: &[], "Roll back a rolling update: a new rolling update",
        query: &[], body: Some(s::<RollbackRollingUpdate>), response: s::<RollingUpdateView>,
        handlers::rollback_rolling_update),
    route!(post "/v1/rolling-updates/{id}/instances/{instance_id}/retry", "oos:NotifyExecution", names: &[("id", "ExecutionId")], "Run a failed instance again",
        query: &[], body: None, response: s::<RollingUpdateInstanceView>, handlers::retry_instance),
    route!(post "/v1/rolling-updates/{id}/instances/{instance_id}/skip", "oos:NotifyExecution", names: &[("id", "ExecutionId")], "Skip an instance (it stays in Standby)",
        query: &[], body: None, response: s::<RollingUpdateInstanceView>, handlers::skip_instance),
    route!(post "/v1/rolling-updates/{id}/instances/{instance_id}/cancel", "oos:NotifyExecution", names: &[("id", "ExecutionId")], "Cancel an instance's work",
        query: &[], body: None, response: s::<RollingUpdateInstanceView>, handlers::cancel_instance),
    Route {
        method: "get",
        path: "/v1/rolling-updates/{id}/events",
        action: "oos:ListExecutions",
        action_by: None,
        names: &[("id", "ExecutionId")],
        summary: "A live stream (Server-Sent Events) of the rolling update's progress: a `progress` event with the \
                  rolling update at each change, then `end` once it is finished; or `shutdown`, the last event, when \
                  the server stops first (reconnect to go on following it)",
        query: &[],
        body: None,
        response: s::<RollingUpdateView>,
        stream: true,
        handler: || routing::get(handlers::stream_rolling_update),
    },
    route!(get "/v1/image-update-tasks", "oos:ListExecutions", names: &[], "List image update tasks, newest first",
        query: &[("scaling_group_id", "only the tasks updating this group's configurations")], body: None,
        response: s::<List<ImageUpdateTaskView>>, handlers::list_image_update_tasks),
    route!(post "/v1/image-update-tasks", "oos:StartExecution", names: &[],
        "Start an image update task: make an image from an instance and put it into scaling configurations, now, at a time, or periodically",
        query: &[], body: Some(s::<NewImageUpdateTask>), response: s::<ImageUpdateTaskView>, handlers::start_image_update_task),
    route!(get "/v1/image-update-tasks/{id}", "oos:ListExecutions", names: &[("id", "ExecutionId")], "Get an image update task with its firings",
        query: &[], body: None, response: s::<ImageUpdateTaskView>, handlers::get_image_update_task),
    route!(post "/v1/image-update-tasks/{id}/cancel", "oos:CancelExecution", names: &[("id", "ExecutionId")],
        "Cancel a scheduled image update task: no further firing (one in flight finishes)",
        query: &[], body: None, response: s::<ImageUpdateTaskView>, handlers::cancel_image_update_task),
    route!(get "/v1/events", "ess:DescribeEvents", names: &[("scaling_group_id", "ScalingGroupId")], "Rolling-update events, newest first",
        query: &[("scaling_group_id", "only this scaling group's"), ("execution_id", "only this rolling update's"),
                 ("keywords", "only events with these words: `failed and i-abc`, `rollback or cancelled`"),
                 ("limit", "at most this many (1 to 500, default 100)")],
        body: None, response: s::<List<EventView>>, handlers::list_events),
    route!(get "/v1/alert-rules", "cms:DescribeEventRuleList", names: &[], "List alert rules, by name",
        query: &[("prefix", "only rules whose names start with this")], body: None, response: s::<List<AlertRuleView>>,
        handlers::list_alert_rules),
    route!(put "/v1/alert-rules/{name}", "cms:PutEventRule", names: &[("name", "RuleName")],
        "Create an alert rule, or change its patterns, description or state (its webhooks are kept)",
        query: &[], body: Some(s::<AlertRuleBody>), response: s::<AlertRuleView>, handlers::put_alert_rule),
    route!(get "/v1/alert-rules/{name}", "cms:DescribeEventRuleAttribute", names: &[("name", "RuleName")], "Get an alert rule with its webhooks",
        query: &[], body: None, response: s::<AlertRuleView>, handlers::get_alert_rule),
    route!(delete "/v1/alert-rules/{name}", "cms:DeleteEventRules", names: &[("name", "RuleName")], "Delete an alert rule (its pending deliveries are dropped)",
        query: &[], body: None, response: s::<AlertRuleView>, handlers::delete_alert_rule),
    route!(post "/v1/alert-rules/{name}/state", "cms:EnableEventRules",
        by: Some(("action", &[("enable", "cms:EnableEventRules"), ("disable", "cms:DisableEventRules")])),
        names: &[("name", "RuleName")], "Enable or disable an alert rule",
        query: &[], body: Some(s::<AlertRuleState>), response: s::<AlertRuleView>, handlers::change_alert_rule_state),
    route!(put "/v1/alert-rules/{name}/webhooks/{id}", "cms:PutEventRuleTargets", names: &[("name", "RuleName")],
        "Add a webhook to an alert rule, or change the one with this id",
        query: &[], body: Some(s::<WebhookBody>), response: s::<AlertRuleView>, handlers::put_webhook),
    route!(delete "/v1/alert-rules/{name}/webhooks/{id}", "cms:DeleteEventRuleTargets", names: &[("name", "RuleName")],
        "Remove a webhook from an alert rule",
        query: &[], body: None, response: s::<AlertRuleView>, handlers::delete_webhook),
    route!(get "/v1/alert-rules/{name}/deliveries", "cms:DescribeEventRuleDeliveries", names: &[("name", "RuleName")],
        "What the rule sent where, newest first: each event to each webhook, with its attempts",
        query: &[("status", "Pending, Delivered or Failed"), ("limit", "at most this many (1 to 500, default 100)")],
        body: None, response: s::<List<DeliveryView>>, handlers::list_deliveries),
    route!(get "/v1/users", "ram:ListUsers", names: &[], "List users",
        query: &[], body: None, response: s::<List<UserView>>, handlers::list_users),
    route!(post "/v1/users", "ram:CreateUser", names: &[("name", "UserName")], "Create a user",
        query: &[], body: Some(s::<NewUserBody>), response: s::<UserView>, handlers::create_user),
    route!(get "/v1/users/{name}", "ram:GetUser", names: &[("name", "UserName")], "Get a user",
        query: &[], body: None, response: s::<UserView>, handlers::get_user),
    route!(delete "/v1/users/{name}", "ram:DeleteUser", names: &[("name", "UserName")], "Delete a user and its AccessKeys",
        query: &[], body: None, response: s::<UserView>, handlers::delete_user),
    route!(get "/v1/users/{name}/keys", "ram:ListAccessKeys", names: &[("name", "UserName")], "List a user's AccessKeys (never their secrets)",
        query: &[], body: None, response: s::<List<AccessKeyView>>, handlers::list_keys),
    route!(post "/v1/users/{name}/keys", "ram:CreateAccessKey", names: &[("name", "UserName")], "Create an AccessKey: its secret is in this answer only",
        query: &[], body: None, response: s::<AccessKeyView>, handlers::create_key),
    route!(patch "/v1/users/{name}/keys/{id}", "ram:UpdateAccessKey", names: &[("name", "UserName")], "Disable or enable an AccessKey",
        query: &[], body: Some(s::<AccessKeyChange>), response: s::<AccessKeyView>, handlers::change_key),
    route!(delete "/v1/users/{name}/keys/{id}", "ram:DeleteAccessKey", names: &[("name", "UserName")], "Delete an AccessKey",
        query: &[], body: None, response: s::<List<AccessKeyView>>, handlers::delete_key),
    route!(get "/v1/users/{name}/policies", "ram:ListPoliciesForUser", names: &[("name", "UserName")], "The policies attached to a user",
        query: &[], body: None, response: s::<List<PolicyView>>, handlers::list_user_policies),
    route!(post "/v1/users/{name}/policies", "ram:AttachPolicyToUser", names: &[("name", "UserName"), ("policy_name", "PolicyName")], "Attach a policy to a user",
        query: &[], body: Some(s::<PolicyAttachment>), response: s::<List<PolicyView>>, handlers::attach_policy),
    route!(delete "/v1/users/{name}/policies/{policy_type}/{policy_name}", "ram:DetachPolicyFromUser", names: &[("name", "UserName"), ("policy_name", "PolicyName")],
        "Detach a policy from a user",
        query: &[], body: None, response: s::<List<PolicyView>>, handlers::detach_policy),
    route!(get "/v1/policies", "ram:ListPolicies", names: &[], "List policies, system ones first",
        query: &[("policy_type", "System or Custom")], body: None, response: s::<List<PolicyView>>,
        handlers::list_policies),
    route!(post "/v1/policies", "ram:CreatePolicy", names: &[("name", "PolicyName")], "Create a custom policy",
        query: &[], body: Some(s::<NewPolicy>), response: s::<PolicyView>, handlers::create_policy),
    route!(delete "/v1/policies/{name}", "ram:DeletePolicy", names: &[("name", "PolicyName")], "Delete a custom policy (detached from everyone)",
        query: &[], body: None, response: s::<PolicyView>, handlers::delete_policy),
    route!(get "/v1/audit-events", "ram:ListAuditEvents", names: &[("user_name", "UserName")], "The audit log, newest first",
        query: &[("user_name", "only this user's calls"), ("action", "only this action, e.g. oos:StartExecution"),
                 ("result_code", "only calls answered with this code (Success, Forbidden.RAM, …)"),
                 ("limit", "at most this many (1 to 1000, default 100)")],
        body: None, response: s::<List<AuditEventView>>, handlers::list_audit_events),
    route!(post "/v1/tokens", "sts:CreateToken", names: &[], "Make a bearer token from the calling AccessKey",
        query: &[("ttl", "lifetime in seconds (60 to 86400, default 3600); a token renewed with a token keeps its session's start and never outlives the session's maximum age")], body: None, response: s::<Token>,
        handlers::create_token),
];

/// Whether a route is a create operation that takes an `Idempotency-Key` (the RPC API's
/// `ClientToken`): its operation is `idempotent` in [`crate::operations`].
pub fn idempotent(route: &Route) -> bool {
    route.method == "post" && crate::operations::by_action(route.action).is_some_and(|op| op.idempotent)
}

/// The `/v1` routes, each behind authentication, and the OpenAPI document.
pub fn router(state: State) -> Router<State> {
    let mut by_path: Vec<(&'static str, MethodRouter<State>)> = Vec::new();
    for route in ROUTES {
        let method_router =
            (route.handler)().route_layer(axum::middleware::from_fn_with_state((state.clone(), route), auth::require));
        match by_path.iter_mut().find(|(path, _)| *path == route.path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(method_router),
            None => by_path.push((route.path, method_router)),
        }
    }
    let mut router = Router::new().route("/v1/openapi.json", routing::get(handlers::openapi));
    for (path, method_router) in by_path {
        router = router.route(path, method_router);
    }
    router.fallback(handlers::not_found).method_not_allowed_fallback(handlers::method_not_allowed)
}
