//! Every create operation is idempotent with a token, over both APIs: `ClientToken` over RPC,
//! the `Idempotency-Key` header over REST. The same token and request give the first answer
//! and create nothing more; the token with another request is `IdempotentParameterMismatch`;
//! a token on an operation that creates nothing is refused.

use rollscale_core::ids::IdFilter;
use rollscale_engine::service::NewGroup;
use rollscale_engine::templates::NewTemplateVersion;
use rollscale_engine::Service;
use rollscale_server::operations;
use rollscale_server::rest::auth::make_token;
use rollscale_test_support::engine::group_id;
use rollscale_test_support::server::{rest_request, rpc_request, send, Api};
use serde_json::{json, Value};

const KEY: &str = "LTAIidempotency000000";
const SECRET: &str = "idempotencySecret";

/// Everything the creates could add to.
async fn snapshot(service: &Service) -> String {
    let groups = service.groups(None, None).await.unwrap();
    let configurations = service.configurations(None, None).await.unwrap();
    let lbs = service.load_balancers().await.unwrap();
    let images = service.images().await.unwrap();
    let packages = service.packages(None).await.unwrap();
    let mut templates = Vec::new();
    for template in service.launch_templates().await.unwrap() {
        let versions = service.launch_template_versions(&template.id).await.unwrap();
        templates.push((template, versions));
    }
    let filter = rollscale_store::ExecutionFilter { include_children: true, ..Default::default() };
    let (executions, _) = service.list_executions(&filter, 0, 1000).await.unwrap();
    format!("{groups:?}\n{configurations:?}\n{lbs:?}\n{images:?}\n{packages:?}\n{templates:?}\n{executions:?}")
}

struct Fixture {
    router: axum::Router,
    service: Service,
    group: String,
    template: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let Api { router, service, dir, .. } = Api::new(KEY, SECRET).await;
    service.create_image("img", None, None).await.unwrap();
    let group = service
        .create_group(NewGroup { name: "g".into(), max_size: 2, ..NewGroup::default() })
        .await
        .unwrap()
        .id
        .to_string();
    let version =
        NewTemplateVersion { image_id: "img".into(), instance_type: None, containers: vec![], description: None };
    let (template, _) = service.create_launch_template("t", version).await.unwrap();
    Fixture { router, service, group, template: template.id.to_string(), _dir: dir }
}

/// (version, action, a valid request's parameters, a parameter that makes it another request)
type Create = (&'static str, &'static str, Vec<(&'static str, String)>, (&'static str, String));

/// A valid request of each create operation, and one that differs.
fn rpc_creates(f: &Fixture) -> Vec<Create> {
    let s = |text: &str| text.to_string();
    vec![
        (
            "2014-08-28",
            "CreateScalingGroup",
            vec![("ScalingGroupName", s("a")), ("MinSize", s("0")), ("MaxSize", s("1"))],
            ("MaxSize", s("2")),
        ),
        (
            "2022-02-22",
            "CreateScalingConfiguration",
            vec![("ScalingGroupId", f.group.clone()), ("ImageId", s("img"))],
            ("InstanceType", s("big")),
        ),
        (
            "2014-08-28",
            "CreatePackage",
            vec![("PackageName", s("p")), ("PackageVersion", s("v1"))],
            ("PackageVersion", s("v2")),
        ),
        ("2014-08-28", "CreateLoadBalancer", vec![("LoadBalancerName", s("lb"))], ("DefaultWeight", s("5"))),
        ("2014-05-26", "CreateImage", vec![("ImageId", s("img-ecs"))], ("ImageName", s("other"))),
        ("2014-08-28", "CreateImage", vec![("ImageId", s("img-ess"))], ("ImageName", s("other"))),
        (
            "2014-05-26",
            "CreateLaunchTemplate",
            vec![("LaunchTemplateName", s("lt")), ("ImageId", s("img"))],
            ("InstanceType", s("big")),
        ),
        (
            "2014-05-26",
            "CreateLaunchTemplateVersion",
            vec![("LaunchTemplateId", f.template.clone()), ("ImageId", s("img"))],
            ("VersionDescription", s("other")),
        ),
    ]
}

#[tokio::test]
async fn every_rpc_create_runs_once_per_client_token() {
    let f = fixture().await;
    let creates = rpc_creates(&f);
    // Every create operation of the table is here (StartExecution has its own test in rpc_api).
    for operation in operations::OPERATIONS.iter().filter(|op| op.idempotent && op.action != "oos:StartExecution") {
        for version in operation.versions {
            let found = creates.iter().any(|(v, action, ..)| v == version && *action == operation.name());
            assert!(found || operation.versions.len() > 1, "no case for {version} {}", operation.action);
        }
        assert!(creates.iter().any(|(_, action, ..)| *action == operation.name()), "no case for {}", operation.action);
    }
    for (n, (version, action, params, other)) in creates.iter().enumerate() {
        let token = format!("token-{n}");
        let mut with_token: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        with_token.push(("ClientToken", &token));
        let (status, first) = send(&f.router, rpc_request(KEY, SECRET, version, action, &with_token)).await;
        assert_eq!(status, 200, "{action}: {first}");
        let created = snapshot(&f.service).await;
        let (status, again) = send(&f.router, rpc_request(KEY, SECRET, version, action, &with_token)).await;
        assert_eq!(status, 200, "{action} again: {again}");
        let strip = |mut value: Value| {
            value.as_object_mut().unwrap().remove("RequestId");
            value
        };
        assert_eq!(strip(again), strip(first), "{action}: the same answer");
        assert_eq!(snapshot(&f.service).await, created, "{action}: nothing more was created");
        let mut changed = with_token.clone();
        changed.retain(|(k, _)| *k != other.0);
        changed.push((other.0, &other.1));
        let (status, body) = send(&f.router, rpc_request(KEY, SECRET, version, action, &changed)).await;
        assert_eq!((status, body["Code"].as_str()), (400, Some("IdempotentParameterMismatch")), "{action}: {body}");
        assert_eq!(snapshot(&f.service).await, created, "{action}: a mismatch creates nothing");
    }
}

#[tokio::test]
async fn every_rest_create_runs_once_per_idempotency_key() {
    let f = fixture().await;
    let token = make_token(KEY, SECRET, chrono::Utc::now().timestamp() + 600);
    // An Active group (of no instances: its rolling updates succeed at once).
    let configuration = rollscale_engine::service::NewConfiguration { image_id: "img".into(), ..Default::default() };
    let group = group_id(&f.group);
    f.service.create_configuration(&group, configuration).await.unwrap();
    f.service.enable_group(&group, None).await.unwrap();
    // A body for each route that creates, and another one.
    let bodies = |path: &str| -> Option<(String, Value, Value)> {
        let (path, body, other) = match path {
            "/v1/scaling-groups" => (
                path.to_string(),
                json!({"name": "r", "min_size": 0, "max_size": 1}),
                json!({"name": "r", "min_size": 0, "max_size": 2}),
            ),
            "/v1/scaling-configurations" => (
                path.to_string(),
                json!({"scaling_group_id": f.group, "image_id": "img"}),
                json!({"scaling_group_id": f.group, "image_id": "img", "name": "x"}),
            ),
            "/v1/launch-templates" => (
                path.to_string(),
                json!({"name": "rt", "version": {"image_id": "img"}}),
                json!({"name": "rt2", "version": {"image_id": "img"}}),
            ),
            "/v1/launch-templates/{id}/versions" => (
                format!("/v1/launch-templates/{}/versions", f.template),
                json!({"image_id": "img"}),
                json!({"image_id": "img", "description": "x"}),
            ),
            "/v1/load-balancers" => (path.to_string(), json!({"name": "rlb"}), json!({"name": "rlb2"})),
            "/v1/images" => (path.to_string(), json!({"id": "rimg"}), json!({"id": "rimg2"})),
            "/v1/packages" => (
                path.to_string(),
                json!({"name": "rp", "version": "v1", "install_script": "echo"}),
                json!({"name": "rp", "version": "v2", "install_script": "echo"}),
            ),
            // Below: a rolling update needs an Active group.
            "/v1/rolling-updates" | "/v1/rolling-updates/{id}/rollback" => return None,
            // Below: an image update task needs an instance.
            "/v1/image-update-tasks" => return None,
            other => panic!("a create route without a case: {other}"),
        };
        Some((path, body, other))
    };
    let mut seen = 0;
    for route in rollscale_server::rest::ROUTES.iter().filter(|route| rollscale_server::rest::idempotent(route)) {
        let Some((path, body, other)) = bodies(route.path) else { continue };
        seen += 1;
        let key = format!("key-{seen}");
        let request = |body: &Value| {
            let mut request = rest_request(&token, "post", &path, Some(body));
            request.headers_mut().insert("idempotency-key", key.parse().unwrap());
            request
        };
        let (status, first) = send(&f.router, request(&body)).await;
        assert_eq!(status, 200, "{path}: {first}");
        let created = snapshot(&f.service).await;
        let (status, again) = send(&f.router, request(&body)).await;
        assert_eq!((status, &again), (200, &first), "{path}: the first answer again");
        assert_eq!(snapshot(&f.service).await, created, "{path}: nothing more was created");
        let (status, error) = send(&f.router, request(&other)).await;
        assert_eq!((status, error["Code"].as_str()), (400, Some("IdempotentParameterMismatch")), "{path}: {error}");
        assert_eq!(snapshot(&f.service).await, created, "{path}: a mismatch creates nothing");
    }
    assert_eq!(seen, 7);

    // A rolling update: the same key gives the same one, and no second.
    let start = json!({"template_name": "ACS-ESS-RollingUpdateByRunCommandInScalingGroup",
                       "parameters": {"invokeType": "invoke", "scalingGroupId": f.group, "invokeScript": "echo 2"}});
    let started = |key: &str| {
        let mut request = rest_request(&token, "post", "/v1/rolling-updates", Some(&start));
        request.headers_mut().insert("idempotency-key", key.parse().unwrap());
        request
    };
    let (status, first) = send(&f.router, started("ru-1")).await;
    assert_eq!(status, 200, "{first}");
    let executions = || async {
        let filter = rollscale_store::ExecutionFilter::default();
        f.service.list_executions(&filter, 0, 100).await.unwrap().1
    };
    assert_eq!(executions().await, 1);
    let (status, again) = send(&f.router, started("ru-1")).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]), "{again}");
    assert_eq!(executions().await, 1, "no second rolling update");

    // An image update task: the same key gives the same one, and no second.
    let changes =
        rollscale_engine::service::GroupChanges { max_size: Some(1), desired_capacity: Some(1), ..Default::default() };
    let group = f.service.modify_group(&group_id(&f.group), changes).await.unwrap();
    f.service.reconcile_group(&group).await.unwrap();
    let instance = f.service.instances(Some(&group.id), None, None).await.unwrap()[0].id.to_string();
    let configuration = f.service.configurations(Some(&group.id), None).await.unwrap()[0].id.to_string();
    let trigger = json!({"Type": "rate", "Expression": "1 day", "EndDate": "2099-01-01T00:00:00Z"});
    let image_task = json!({"parameters": {"instanceId": instance, "scalingConfigurationIds": [configuration],
                                           "OOSAssumeRole": "r", "timerTrigger": trigger}});
    let image_started = |key: &str, body: &Value| {
        let mut request = rest_request(&token, "post", "/v1/image-update-tasks", Some(body));
        request.headers_mut().insert("idempotency-key", key.parse().unwrap());
        request
    };
    let (status, first) = send(&f.router, image_started("it-1", &image_task)).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = send(&f.router, image_started("it-1", &image_task)).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]), "{again}");
    assert_eq!(f.service.image_updates(&IdFilter::Any).await.unwrap().len(), 1, "no second image update task");
    let mut other = image_task.clone();
    other["parameters"]["OOSAssumeRole"] = json!("other");
    let (status, error) = send(&f.router, image_started("it-1", &other)).await;
    assert_eq!((status, error["Code"].as_str()), (400, Some("IdempotentParameterMismatch")), "{error}");

    // A key where nothing is created, or one that is not a key, is refused.
    let mut request = rest_request(&token, "post", "/v1/users", Some(&json!({"name": "u"})));
    request.headers_mut().insert("idempotency-key", "k".parse().unwrap());
    let (status, error) = send(&f.router, request).await;
    assert_eq!((status, error["Code"].as_str()), (400, Some("InvalidParameter")), "{error}");
    assert!(f.service.user("u").await.is_err());
    let mut request = rest_request(&token, "post", "/v1/load-balancers", Some(&json!({"name": "long"})));
    request.headers_mut().insert("idempotency-key", "k".repeat(65).parse().unwrap());
    let (status, error) = send(&f.router, request).await;
    assert_eq!((status, error["Code"].as_str()), (400, Some("InvalidParameter")), "{error}");
    assert!(f.service.load_balancers().await.unwrap().iter().all(|lb| lb.name != "long"));
}
