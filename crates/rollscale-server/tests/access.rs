//! Users, AccessKeys, policies and the audit log through the RPC API (RAM 2015-05-01): every
//! call is authorized after it is authenticated, a denial is 403 `Forbidden.RAM` naming the
//! action and changes nothing, disabled and deleted keys are refused, and the audit log shows
//! allowed and denied calls without a secret.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use rollscale_engine::service::NewGroup;
use rollscale_engine::{EngineConfig, Service};
use rollscale_server::rpc::sign;
use rollscale_server::{router, AuthConfig};
use rollscale_test_support::engine::{configuration, create_group, Harness};
use rollscale_test_support::server::{rest_request, rpc_request, send};
use serde_json::Value;
use tower::ServiceExt;

const RAM: &str = "2015-05-01";
const ESS: &str = "2014-08-28";
const OOS: &str = "2019-06-01";

struct App {
    router: axum::Router,
    service: Service,
    admin: (String, String),
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let Harness { service, dir, .. } =
        Harness::builder().config(EngineConfig::default()).unchecked_load_balancer().build().await;
    let admin = service.create_admin_access_key("admin").await.unwrap();
    App {
        router: router(service.clone(), AuthConfig::default()),
        service,
        admin: (admin.id.clone(), admin.secret.clone()),
        _dir: dir,
    }
}

/// An RPC call signed with `key`, in the region `local`.
fn signed(key: &(String, String), version: &str, action: &str, extra: &[(&str, &str)]) -> Request<Body> {
    let mut params = vec![("RegionId", "local")];
    params.extend_from_slice(extra);
    rpc_request(&key.0, &key.1, version, action, &params)
}

impl App {
    async fn call(&self, key: &(String, String), version: &str, action: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        send(&self.router, signed(key, version, action, extra)).await
    }

    /// Calls as the admin and expects success.
    async fn admin(&self, version: &str, action: &str, extra: &[(&str, &str)]) -> Value {
        let (status, body) = self.call(&self.admin, version, action, extra).await;
        assert_eq!(status, 200, "{action}: {body}");
        body
    }

    /// A user with a fresh key and the given system policies.
    async fn user(&self, name: &str, policies: &[&str]) -> (String, String) {
        self.admin(RAM, "CreateUser", &[("UserName", name)]).await;
        for policy in policies {
            self.admin(
                RAM,
                "AttachPolicyToUser",
                &[("UserName", name), ("PolicyType", "System"), ("PolicyName", policy)],
            )
            .await;
        }
        let created = self.admin(RAM, "CreateAccessKey", &[("UserName", name)]).await;
        let key = &created["AccessKey"];
        (key["AccessKeyId"].as_str().unwrap().to_string(), key["AccessKeySecret"].as_str().unwrap().to_string())
    }

    async fn demo_group(&self) -> String {
        self.service.create_image("img", None, None).await.unwrap();
        let new = NewGroup { name: "g".into(), max_size: 3, desired_capacity: Some(2), ..NewGroup::default() };
        let (group, _) = create_group(&self.service, new, configuration("img")).await;
        group.id.to_string()
    }
}

#[tokio::test]
async fn a_read_only_user_reads_but_cannot_start_or_delete_and_nothing_changes() {
    let app = app().await;
    let group = app.demo_group().await;
    let reader = app.user("reader", &["AliyunESSReadOnlyAccess"]).await;

    let (status, body) = app.call(&reader, ESS, "DescribeScalingGroups", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ScalingGroups"]["ScalingGroup"].as_array().map(Vec::len), Some(1), "{body}");
    let (status, body) = app.call(&reader, OOS, "ListExecutions", &[]).await;
    assert_eq!(status, 200, "{body}");

    let parameters = format!(r#"{{"invokeType":"invoke","scalingGroupId":"{group}","invokeScript":"echo hi"}}"#);
    let (status, body) = app
        .call(
            &reader,
            OOS,
            "StartExecution",
            &[("TemplateName", "ACS-ESS-RollingUpdateByRunCommandInScalingGroup"), ("Parameters", &parameters)],
        )
        .await;
    assert_eq!((status, body["Code"].as_str()), (403, Some("Forbidden.RAM")), "{body}");
    assert!(
        body["Message"].as_str().unwrap().starts_with("You are not authorized to do action: oos:StartExecution"),
        "{body}"
    );
    let (status, body) = app.call(&reader, ESS, "DeleteScalingGroup", &[("ScalingGroupId", &group)]).await;
    assert_eq!((status, body["Code"].as_str()), (403, Some("Forbidden.RAM")), "{body}");
    assert!(body["Message"].as_str().unwrap().contains("ess:DeleteScalingGroup"), "{body}");
    assert!(body["RequestId"].is_string() && body["HostId"].is_string(), "{body}");

    // Nothing changed: the group is there, no execution was started.
    let groups = app.admin(ESS, "DescribeScalingGroups", &[]).await;
    assert_eq!(groups["ScalingGroups"]["ScalingGroup"][0]["ScalingGroupId"], group.as_str());
    let executions = app.admin(OOS, "ListExecutions", &[]).await;
    assert_eq!(executions["Executions"].as_array().map(Vec::len), Some(0), "{executions}");
    // Nor may the reader make itself an administrator.
    let (status, body) = app
        .call(
            &reader,
            RAM,
            "AttachPolicyToUser",
            &[("UserName", "reader"), ("PolicyType", "System"), ("PolicyName", "AdministratorAccess")],
        )
        .await;
    assert_eq!((status, body["Code"].as_str()), (403, Some("Forbidden.RAM")), "{body}");
    let attached = app.admin(RAM, "ListPoliciesForUser", &[("UserName", "reader")]).await;
    assert_eq!(attached["Policies"]["Policy"].as_array().map(Vec::len), Some(1), "{attached}");
}

#[tokio::test]
async fn a_disabled_key_is_refused_until_enabled_and_a_deleted_users_key_for_good() {
    let app = app().await;
    let key = app.user("ops", &["AliyunESSFullAccess"]).await;
    assert_eq!(app.call(&key, ESS, "DescribeScalingGroups", &[]).await.0, 200);

    app.admin(RAM, "UpdateAccessKey", &[("UserName", "ops"), ("UserAccessKeyId", &key.0), ("Status", "Inactive")])
        .await;
    let listed = app.admin(RAM, "ListAccessKeys", &[("UserName", "ops")]).await;
    let keys = listed["AccessKeys"]["AccessKey"].as_array().unwrap();
    assert_eq!((keys.len(), keys[0]["Status"].as_str()), (1, Some("Inactive")), "{listed}");
    assert!(keys[0].get("AccessKeySecret").is_none(), "a listed key shows no secret: {listed}");
    let (status, body) = app.call(&key, ESS, "DescribeScalingGroups", &[]).await;
    assert_eq!(body["Code"], "InvalidAccessKeyId.Inactive", "{body}");
    assert_eq!(status, 403);

    app.admin(RAM, "UpdateAccessKey", &[("UserName", "ops"), ("UserAccessKeyId", &key.0), ("Status", "Active")]).await;
    assert_eq!(app.call(&key, ESS, "DescribeScalingGroups", &[]).await.0, 200);

    app.admin(RAM, "DeleteUser", &[("UserName", "ops")]).await;
    let (status, body) = app.call(&key, ESS, "DescribeScalingGroups", &[]).await;
    assert_eq!((status, body["Code"].as_str()), (404, Some("InvalidAccessKeyId.NotFound")), "{body}");
    let (status, body) = app.call(&app.admin, RAM, "GetUser", &[("UserName", "ops")]).await;
    assert_eq!((status, body["Code"].as_str()), (404, Some("EntityNotExist.User")), "{body}");
}

#[tokio::test]
async fn ram_actions_answer_in_rams_shapes() {
    let app = app().await;
    let created = app.admin(RAM, "CreateUser", &[("UserName", "alice"), ("DisplayName", "Alice")]).await;
    assert_eq!(created["User"]["UserName"], "alice");
    assert_eq!(created["User"]["DisplayName"], "Alice");
    assert!(created["User"]["UserId"].as_str().is_some_and(|id| id.len() == 16), "{created}");
    assert!(created["User"]["CreateDate"].as_str().is_some_and(|d| d.ends_with('Z')), "{created}");
    let got = app.admin(RAM, "GetUser", &[("UserName", "alice")]).await;
    assert_eq!(got["User"]["UserId"], created["User"]["UserId"]);
    let users = app.admin(RAM, "ListUsers", &[("MaxItems", "1")]).await;
    assert_eq!(users["Users"]["User"][0]["UserName"], "admin");
    assert_eq!((users["IsTruncated"].as_bool(), users["Marker"].as_str()), (Some(true), Some("1")), "{users}");
    let rest = app.admin(RAM, "ListUsers", &[("Marker", "1")]).await;
    assert_eq!(rest["Users"]["User"][0]["UserName"], "alice");
    assert_eq!(rest["IsTruncated"], false);

    let key = app.admin(RAM, "CreateAccessKey", &[("UserName", "alice")]).await;
    assert_eq!(key["AccessKey"]["Status"], "Active");
    assert!(key["AccessKey"]["AccessKeySecret"].as_str().is_some_and(|s| s.len() >= 30), "{key}");

    let document =
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["oos:*","ess:Describe*"],"Resource":"*"}]}"#;
    let policy = app
        .admin(
            RAM,
            "CreatePolicy",
            &[("PolicyName", "RollingOps"), ("PolicyDocument", document), ("Description", "ru")],
        )
        .await;
    assert_eq!(
        (policy["Policy"]["PolicyType"].as_str(), policy["Policy"]["DefaultVersion"].as_str()),
        (Some("Custom"), Some("v1"))
    );
    let (status, body) = app
        .call(&app.admin, RAM, "CreatePolicy", &[("PolicyName", "Bad"), ("PolicyDocument", r#"{"Version":"1"}"#)])
        .await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("MalformedPolicyDocument")), "{body}");
    app.admin(
        RAM,
        "AttachPolicyToUser",
        &[("UserName", "alice"), ("PolicyType", "Custom"), ("PolicyName", "RollingOps")],
    )
    .await;
    let got = app.admin(RAM, "GetPolicy", &[("PolicyType", "Custom"), ("PolicyName", "RollingOps")]).await;
    assert_eq!(got["Policy"]["AttachmentCount"], 1);
    assert_eq!(got["DefaultPolicyVersion"]["PolicyDocument"], document);
    let systems = app.admin(RAM, "ListPolicies", &[("PolicyType", "System")]).await;
    let names: Vec<&str> =
        systems["Policies"]["Policy"].as_array().unwrap().iter().map(|p| p["PolicyName"].as_str().unwrap()).collect();
    for expected in [
        "AdministratorAccess",
        "AliyunESSFullAccess",
        "AliyunOOSFullAccess",
        "AliyunECSFullAccess",
        "AliyunESSReadOnlyAccess",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let for_user = app.admin(RAM, "ListPoliciesForUser", &[("UserName", "alice")]).await;
    assert_eq!(for_user["Policies"]["Policy"][0]["PolicyName"], "RollingOps");
    assert!(for_user["Policies"]["Policy"][0]["AttachDate"].is_string());
    let (status, body) = app.call(&app.admin, RAM, "DeletePolicy", &[("PolicyName", "RollingOps")]).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("DeleteConflict.Policy.User")), "{body}");

    // The key works with what the policy allows: the CreateAccessKey answer's secret signs.
    let alice = (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string(),
        key["AccessKey"]["AccessKeySecret"].as_str().unwrap().to_string(),
    );
    assert_eq!(app.call(&alice, OOS, "ListExecutions", &[]).await.0, 200);
    assert_eq!(app.call(&alice, RAM, "ListUsers", &[]).await.0, 403);
    // Her own keys, by default (UserName omitted), are hers; RAM actions need RAM rights.
    app.admin(
        RAM,
        "DetachPolicyFromUser",
        &[("UserName", "alice"), ("PolicyType", "Custom"), ("PolicyName", "RollingOps")],
    )
    .await;
    app.admin(RAM, "DeletePolicy", &[("PolicyName", "RollingOps")]).await;
    assert_eq!(app.call(&alice, OOS, "ListExecutions", &[]).await.0, 403);
    let (status, body) = app.call(&app.admin, RAM, "NoSuchAction", &[]).await;
    assert_eq!((status, body["Code"].as_str()), (404, Some("InvalidAction.NotFound")), "{body}");
}

#[tokio::test]
async fn the_audit_log_shows_allowed_and_denied_calls_without_secrets() {
    let app = app().await;
    let reader = app.user("reader", &["AliyunESSReadOnlyAccess"]).await;
    assert_eq!(app.call(&reader, ESS, "DescribeScalingGroups", &[]).await.0, 200);
    assert_eq!(app.call(&reader, ESS, "DeleteScalingGroup", &[("ScalingGroupId", "asg-nope")]).await.0, 403);
    // A request that is not authenticated is audited too, under the key it claims (no user).
    let stranger = ("LTAIstranger".to_string(), "whatever".to_string());
    assert_eq!(app.call(&stranger, ESS, "DescribeScalingGroups", &[]).await.0, 404);
    let claimed = app.admin(RAM, "ListAuditEvents", &[("UserAccessKeyId", "LTAIstranger")]).await;
    let event = &claimed["AuditEvents"][0];
    assert_eq!(claimed["TotalCount"], 1, "{claimed}");
    assert_eq!(
        (event["EventAction"].as_str(), event["ResultCode"].as_str(), event["HttpStatus"].as_u64()),
        (Some("ess:DescribeScalingGroups"), Some("InvalidAccessKeyId.NotFound"), Some(404)),
        "{event}"
    );
    assert_eq!(event["UserName"], "", "an unknown key is nobody's");

    let log = app.admin(RAM, "ListAuditEvents", &[("UserName", "reader")]).await;
    let events = log["AuditEvents"].as_array().unwrap();
    assert_eq!(log["TotalCount"], 2, "{log}");
    let denied = &events[0];
    assert_eq!(denied["EventAction"], "ess:DeleteScalingGroup");
    assert_eq!(denied["ResultCode"], "Forbidden.RAM");
    assert_eq!(denied["HttpStatus"], 403);
    assert_eq!(denied["Resource"], "acs:ess:*:*:scalinggroup/asg-nope");
    assert_eq!(denied["AccessKeyId"], reader.0.as_str());
    assert_eq!(denied["RequestParameters"]["ScalingGroupId"], "asg-nope");
    assert!(denied["RequestParameters"].get("Signature").is_none(), "{denied}");
    let allowed = &events[1];
    assert_eq!(
        (allowed["EventAction"].as_str(), allowed["ResultCode"].as_str()),
        (Some("ess:DescribeScalingGroups"), Some("Success"))
    );
    assert!(allowed["EventTime"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Filters; and the whole log, secrets included nowhere (the admin's CreateAccessKey
    // answers carried secrets; the log keeps none of them).
    let denied_only = app.admin(RAM, "ListAuditEvents", &[("ResultCode", "Forbidden.RAM")]).await;
    assert_eq!(denied_only["TotalCount"], 1);
    let all = app.admin(RAM, "ListAuditEvents", &[("MaxResults", "100")]).await;
    let text = all.to_string();
    assert!(all["TotalCount"].as_i64().unwrap() >= 5, "{all}");
    assert!(!text.contains("whatever"), "a claimed secret is in the audit log");
    assert!(text.contains("ram:CreateAccessKey"), "{text}");
    for secret in [&reader.1, &app.admin.1] {
        assert!(!text.contains(secret.as_str()), "a secret is in the audit log");
    }
    let paged = app.admin(RAM, "ListAuditEvents", &[("MaxResults", "1")]).await;
    assert_eq!(paged["NextToken"], "1");
    // The reader may not read the log.
    let (status, _) = app.call(&reader, RAM, "ListAuditEvents", &[]).await;
    assert_eq!(status, 403);
}

/// Refusals before authentication — a bad signature, an unknown, disabled or throttled key, a
/// bad bearer token — are in the audit log under the AccessKey id they claim and no user, over
/// both APIs, with the action, the code and the status, and no signature or token.
#[tokio::test]
async fn failed_authentications_are_audited_over_both_apis() {
    let app = app().await;
    let ops = app.user("ops", &["AliyunESSFullAccess"]).await;
    let bad_secret = (ops.0.clone(), "not-the-secret".to_string());
    assert_eq!(app.call(&bad_secret, ESS, "DescribeScalingGroups", &[]).await.0, 400);
    app.admin(RAM, "UpdateAccessKey", &[("UserName", "ops"), ("UserAccessKeyId", &ops.0), ("Status", "Inactive")])
        .await;
    assert_eq!(app.call(&ops, OOS, "ListExecutions", &[]).await.0, 403);
    app.admin(RAM, "UpdateAccessKey", &[("UserName", "ops"), ("UserAccessKeyId", &ops.0), ("Status", "Active")]).await;

    // REST: a token made with the wrong secret, and an ACS3 signature with the wrong secret.
    let forged = rollscale_server::rest::auth::make_token(&ops.0, "wrong", chrono::Utc::now().timestamp() + 60);
    let request = Request::get("/v1/scaling-groups").header("authorization", format!("Bearer {forged}"));
    let response = app.router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), 401);
    let hashed = sign::sha256_hex(b"");
    let headers = vec![
        ("x-acs-content-sha256".to_string(), hashed.clone()),
        ("x-acs-date".to_string(), sign::format_timestamp(chrono::Utc::now())),
        ("x-acs-signature-nonce".to_string(), sign::random_nonce()),
    ];
    let names: Vec<String> = headers.iter().map(|(name, _)| name.clone()).collect();
    let canonical = sign::acs3_canonical_request("DELETE", "/v1/users/admin", &[], &headers, &names, &hashed);
    let signature = sign::acs3_signature(&sign::acs3_string_to_sign(&canonical), "wrong");
    let mut request = Request::delete("/v1/users/admin");
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let authorization =
        format!("ACS3-HMAC-SHA256 Credential={},SignedHeaders={},Signature={signature}", ops.0, names.join(";"));
    let request = request.header("authorization", authorization).body(Body::empty()).unwrap();
    assert_eq!(app.router.clone().oneshot(request).await.unwrap().status(), 400);

    // Throttled, over both APIs.
    let limited = router(app.service.clone(), AuthConfig { rate_per_key: Some(1), ..AuthConfig::default() });
    let mut throttled = 0;
    for _ in 0..4 {
        let response = limited.clone().oneshot(signed(&ops, ESS, "DescribeScalingGroups", &[])).await.unwrap();
        throttled += usize::from(response.status() == 429);
    }
    assert!(throttled >= 1, "a burst of 2 at 1 a second");

    let log = app.admin(RAM, "ListAuditEvents", &[("UserAccessKeyId", &ops.0), ("MaxResults", "100")]).await;
    let events = log["AuditEvents"].as_array().unwrap();
    let seen: Vec<(&str, &str, u64)> = events
        .iter()
        .map(|e| {
            (e["EventAction"].as_str().unwrap(), e["ResultCode"].as_str().unwrap(), e["HttpStatus"].as_u64().unwrap())
        })
        .collect();
    for expected in [
        ("ess:DescribeScalingGroups", "SignatureDoesNotMatch", 400),
        ("oos:ListExecutions", "InvalidAccessKeyId.Inactive", 403),
        ("ess:DescribeScalingGroups", "InvalidToken", 401),
        ("ram:DeleteUser", "SignatureDoesNotMatch", 400),
        ("ess:DescribeScalingGroups", "Throttling.User", 429),
    ] {
        assert!(seen.contains(&expected), "{expected:?} in {seen:?}");
    }
    // Nobody's: a claimed AccessKey id is only what the request says, so the refusals are not
    // listed as the key's user's (anyone could make them appear under `UserName admin`).
    // (The throttled router let the first calls through: those are authenticated, and hers.)
    for event in events {
        let user = if event["ResultCode"] == "Success" { "ops" } else { "" };
        assert_eq!(event["UserName"], user, "{event}");
    }
    let theirs = app.admin(RAM, "ListAuditEvents", &[("UserName", "ops"), ("MaxResults", "100")]).await;
    let theirs: Vec<&str> =
        theirs["AuditEvents"].as_array().unwrap().iter().map(|e| e["ResultCode"].as_str().unwrap()).collect();
    assert!(!theirs.is_empty() && theirs.iter().all(|code| *code == "Success"), "{theirs:?}");
    let admin_claimed = (app.admin.0.clone(), "not-the-admins-secret".to_string());
    assert_eq!(app.call(&admin_claimed, RAM, "DeleteUser", &[("UserName", "ops")]).await.0, 400);
    let admins =
        app.admin(RAM, "ListAuditEvents", &[("UserName", "admin"), ("ResultCode", "SignatureDoesNotMatch")]).await;
    assert_eq!(admins["TotalCount"], 0, "{admins}");
    let claimed = app
        .admin(RAM, "ListAuditEvents", &[("UserAccessKeyId", &app.admin.0), ("ResultCode", "SignatureDoesNotMatch")])
        .await;
    assert_eq!(claimed["TotalCount"], 1, "the claimed AccessKey id is kept: {claimed}");
    // No signature, token or secret kept.
    let text = log.to_string();
    for secret in [ops.1.as_str(), "not-the-secret", forged.as_str(), signature.as_str()] {
        assert!(!text.contains(secret), "{secret} is in the audit log");
    }
}

/// AliyunESSReadOnlyAccess reads everything that is read-only over both APIs — groups,
/// configurations, instances, activities, load balancers, events, rolling updates, images,
/// launch templates and packages — and changes nothing.
#[tokio::test]
async fn the_read_only_policy_reads_everything_read_only_over_both_apis() {
    let app = app().await;
    app.demo_group().await;
    app.service.create_package("wordpress", "v1", "echo", "").await.unwrap();
    let version = rollscale_engine::templates::NewTemplateVersion {
        image_id: "img".into(),
        instance_type: None,
        containers: vec![],
        description: None,
    };
    app.service.create_launch_template("web", version).await.unwrap();
    let reader = app.user("reader", &["AliyunESSReadOnlyAccess"]).await;
    let token = rollscale_server::rest::auth::make_token(&reader.0, &reader.1, chrono::Utc::now().timestamp() + 600);
    let rest = |path: String| {
        let request = Request::get(path).header("authorization", format!("Bearer {token}"));
        request.body(Body::empty()).unwrap()
    };
    // Every REST read but RAM's (users, policies, the audit log: AliyunRAMReadOnlyAccess) and
    // CloudMonitor's (alert rules: AliyunCloudMonitorReadOnlyAccess, below).
    let own = |action: &str| !action.starts_with("ram:") && !action.starts_with("cms:");
    for route in rollscale_server::rest::ROUTES.iter().filter(|r| r.method == "get" && own(r.action)) {
        // Ids that do not exist: found or not, the point is that it is allowed.
        let path = route.path.replace("{id}", "exec-00000000000000000000").replace("{name}", "x");
        let response = app.router.clone().oneshot(rest(path.clone())).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(status != 403, "{path}: {status} {}", String::from_utf8_lossy(&body));
    }
    for path in ["/v1/images", "/v1/launch-templates", "/v1/packages", "/v1/load-balancers"] {
        let response = app.router.clone().oneshot(rest(path.into())).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    // Every RPC read of ESS, ECS and OOS.
    let reads = rollscale_server::operations::OPERATIONS
        .iter()
        .filter(|op| own(op.action) && ["Describe", "List", "Get"].iter().any(|verb| op.name().starts_with(verb)));
    for operation in reads {
        for version in operation.versions {
            let (status, body) = app.call(&reader, version, operation.name(), &[]).await;
            assert!(status != 403, "{version} {}: {body}", operation.action);
        }
    }
    let (status, body) = app.call(&reader, "2014-05-26", "DescribeLaunchTemplates", &[]).await;
    assert_eq!(body["LaunchTemplateSets"]["LaunchTemplateSet"][0]["LaunchTemplateName"], "web", "{status} {body}");
    let (_, body) = app.call(&reader, ESS, "ListPackages", &[]).await;
    assert_eq!(body["Packages"]["Package"][0]["PackageName"], "wordpress", "{body}");
    let (_, body) = app.call(&reader, ESS, "DescribeImages", &[]).await;
    assert_eq!(body["Images"]["Image"][0]["ImageId"], "img", "{body}");
    // And writes stay refused.
    for (version, action, params) in [
        ("2014-05-26", "CreateLaunchTemplate", vec![("LaunchTemplateName", "x"), ("ImageId", "img")]),
        (ESS, "CreatePackage", vec![("PackageName", "p"), ("PackageVersion", "v")]),
        ("2014-05-26", "DeleteImage", vec![("ImageId", "img")]),
    ] {
        let (status, body) = app.call(&reader, version, action, &params).await;
        assert_eq!((status, body["Code"].as_str()), (403, Some("Forbidden.RAM")), "{action}: {body}");
    }
    assert_eq!(app.service.images().await.unwrap().len(), 1);
    assert_eq!(app.service.packages(None).await.unwrap().len(), 1);
    assert_eq!(app.service.launch_templates().await.unwrap().len(), 1);
}

/// A bearer token of `key` for `/v1`, valid for ten minutes.
fn bearer(key: &(String, String)) -> String {
    rollscale_server::rest::auth::make_token(&key.0, &key.1, chrono::Utc::now().timestamp() + 600)
}

/// `POST /v1/tokens?ttl=…` with `token`: status and body.
async fn renew(router: &axum::Router, token: &str, ttl: i64) -> (u16, Value) {
    send(router, rest_request(token, "POST", &format!("/v1/tokens?ttl={ttl}"), None)).await
}

/// Issue 14 (8): re-enabling a disabled AccessKey used to bring its old bearer tokens back. A
/// disable revokes every token made before it, for good: the tokens made by hand and the ones
/// `POST /v1/tokens` gave stay refused after the key is enabled again, and cannot be renewed;
/// a token made after the re-enable works.
#[tokio::test]
async fn a_disable_revokes_every_token_made_before_it_for_good() {
    let app = app().await;
    let key = app.user("ops", &["AliyunESSFullAccess"]).await;
    let made = bearer(&key);
    let (status, body) = renew(&app.router, &made, 3600).await;
    assert_eq!(status, 200, "{body}");
    let renewed = body["token"].as_str().unwrap().to_string();
    for token in [&made, &renewed] {
        assert_eq!(send(&app.router, rest_request(token, "GET", "/v1/scaling-groups", None)).await.0, 200);
    }

    let status = |value: &'static str| [("UserName", "ops"), ("UserAccessKeyId", key.0.as_str()), ("Status", value)];
    app.admin(RAM, "UpdateAccessKey", &status("Inactive")).await;
    let disabled_by = rollscale_engine::now_millis();
    for token in [&made, &renewed] {
        let (code, body) = send(&app.router, rest_request(token, "GET", "/v1/scaling-groups", None)).await;
        assert_eq!((code, body["Code"].as_str()), (401, Some("InvalidToken")), "while disabled: {body}");
    }
    app.admin(RAM, "UpdateAccessKey", &status("Active")).await;
    assert_eq!(app.call(&key, ESS, "DescribeScalingGroups", &[]).await.0, 200, "the key itself signs again");
    for token in [&made, &renewed] {
        let (code, body) = send(&app.router, rest_request(token, "GET", "/v1/scaling-groups", None)).await;
        assert_eq!((code, body["Code"].as_str()), (401, Some("InvalidToken")), "after the re-enable: {body}");
        assert!(body["Message"].as_str().unwrap().contains("disabled"), "says why: {body}");
        let (code, body) = renew(&app.router, token, 3600).await;
        assert_eq!((code, body["Code"].as_str()), (401, Some("InvalidToken")), "no renewal: {body}");
    }

    // A token made after the re-enable (by the clock, after the disable) is the key's again.
    rollscale_test_support::wait::until(
        "the clock to pass the disable",
        std::time::Duration::from_secs(5),
        std::time::Duration::from_millis(1),
        async || (rollscale_engine::now_millis() > disabled_by).then_some(()),
    )
    .await;
    let fresh = bearer(&key);
    let (code, body) = send(&app.router, rest_request(&fresh, "GET", "/v1/scaling-groups", None)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(renew(&app.router, &fresh, 3600).await.0, 200);

    // A token of the format of earlier versions carries no session start: refused, saying so.
    let old = format!("rs1.{}.9999999999.00", key.0);
    let (code, body) = send(&app.router, rest_request(&old, "GET", "/v1/scaling-groups", None)).await;
    assert_eq!((code, body["Code"].as_str()), (401, Some("InvalidToken")), "{body}");
    assert!(body["Message"].as_str().unwrap().contains("rs1"), "{body}");
}

/// Issue 14 (8): a token used to renew itself through `POST /v1/tokens` for ever. A renewal
/// keeps the session's start, and no renewal reaches past the maximum session age (24 hours by
/// default): the last one is cut to it, and after it the session's tokens are refused. The
/// service's clock is a manual one that the test moves, 50 minutes per renewal.
#[tokio::test]
async fn renewals_cannot_extend_a_session_past_its_maximum_age() {
    let start = rollscale_engine::now_millis();
    let clock = std::sync::Arc::new(rollscale_engine::ManualClock::new(start));
    let config = EngineConfig { clock: clock.clone(), ..EngineConfig::default() };
    let Harness { service, dir: _dir, .. } = Harness::builder().config(config).unchecked_load_balancer().build().await;
    let admin = service.create_admin_access_key("admin").await.unwrap();
    let router = router(service.clone(), AuthConfig::default());
    let max_session_ms = 24 * 3600 * 1000;

    let mut token = rollscale_server::rest::auth::make_token(&admin.id, &admin.secret, start / 1000 + 3600);
    let mut renewals = 0;
    let refused = loop {
        clock.advance(50 * 60 * 1000);
        let (status, body) = renew(&router, &token, 3600).await;
        if status != 200 {
            break body;
        }
        renewals += 1;
        assert!(renewals < 40, "renewed for {renewals} × 50 minutes, past the maximum session age: {body}");
        let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
        // Whole seconds in the answer: the cut is at the session's end, give or take its second.
        assert!(expires.timestamp_millis() <= start + max_session_ms + 1000, "{body}");
        token = body["token"].as_str().unwrap().to_string();
    };
    assert_eq!(refused["Code"], "TokenExpired", "{refused}");
    assert!(refused["Message"].as_str().unwrap().contains("session"), "says why: {refused}");
    assert_eq!(renewals, 28, "every 50 minutes until the 24 hours are over");
    let (status, body) = send(&router, rest_request(&token, "GET", "/v1/scaling-groups", None)).await;
    assert_eq!((status, body["Code"].as_str()), (401, Some("TokenExpired")), "{body}");
}
