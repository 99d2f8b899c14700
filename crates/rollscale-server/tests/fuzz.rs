//! Random and malformed requests at both APIs: RPC calls of every action of every product and
//! version (and of none), with random parameter names and values, signed with RPC v1 or ACS3,
//! by the administrator or by a restricted user (so that refusals by policy are fuzzed too);
//! unsigned garbage; REST calls with random methods, paths, JSON bodies and Idempotency-Keys,
//! by either user with a token or an ACS3 signature, or by nobody. Whatever arrives, the service
//! answers with JSON, never with a 500 or a panic, and a request it refuses (status 400 and
//! above) changes nothing of the state: groups, configurations, instances, load balancers,
//! images, packages, executions, users, AccessKeys, policies, attachments, launch templates and
//! ClientToken records. (The audit log, which records every request, and the nonces seen are
//! meant to change.)

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use proptest::prelude::*;
use rollscale_core::policy::PolicyType;
use rollscale_engine::access::NewUser;
use rollscale_engine::service::NewGroup;
use rollscale_engine::templates::NewTemplateVersion;
use rollscale_engine::Service;
use rollscale_server::rest::auth::make_token;
use rollscale_server::rpc::sign;
use rollscale_server::{operations, router, AuthConfig};
use rollscale_store::ExecutionFilter;
use rollscale_test_support::engine::StartTemplate;
use rollscale_test_support::engine::{configuration, enabled_group};
use rollscale_test_support::server;
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
    /// The administrator's and the restricted user's (id, secret, bearer token).
    callers: [(String, String, String); 2],
    /// Real ids and names, so that random requests also reach past the lookups.
    ids: Vec<String>,
    _dir: tempfile::TempDir,
}

/// The restricted user's policy: reads of ESS and OOS, all of ECS, its own RAM reads, and
/// nothing at all on the fixture's group.
fn restricted_policy(group: &str) -> String {
    json!({"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["ess:Describe*", "oos:List*", "ecs:*", "ram:Get*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": format!("acs:ess:*:*:scalinggroup/{group}")},
    ]})
    .to_string()
}

/// One service for every case of a test binary: state accumulates, as it would in production.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (router, service, callers, ids, dir) = runtime.block_on(async {
            let (service, dir) = server::service(KEY_ID, SECRET, 0).await;
            service.create_image("img-a", None, None).await.unwrap();
            service.create_image("img-b", None, None).await.unwrap();
            service.create_package("wordpress", "v1", "echo install", "echo remove").await.unwrap();
            let lb = service.create_load_balancer("lb", 100).await.unwrap();
            let new = NewGroup {
                name: "fuzz".into(),
                max_size: 6,
                desired_capacity: Some(3),
                load_balancer_ids: vec![lb.id.clone()],
                ..NewGroup::default()
            };
            let (group, configuration) = enabled_group(&service, new, configuration("img-a")).await;
            service.reconcile_group(&group).await.unwrap();
            let params = json!({"invokeType": "invoke", "scalingGroupId": group.id, "invokeScript": "echo hi",
                                "batchPauseOption": "FirstBatchPause", "batchNumber": 2});
            let task = service
                .start_template("ACS-ESS-RollingUpdateByRunCommandInScalingGroup", &params.to_string())
                .await
                .unwrap();
            let version = NewTemplateVersion {
                image_id: "img-a".into(),
                instance_type: None,
                containers: vec![],
                description: None,
            };
            let (template, _) = service.create_launch_template("fuzz-template", version).await.unwrap();
            // Users and policies for RAM's actions to act on (never the two callers: the
            // fuzz may delete what it can name).
            service.create_user(NewUser { name: "fuzz-user".into(), ..NewUser::default() }).await.unwrap();
            let user_key = service.create_access_key("fuzz-user").await.unwrap();
            let document = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oos:*","Resource":"*"}]}"#;
            service.create_policy("FuzzPolicy", document, "").await.unwrap();
            service.attach_policy("fuzz-user", PolicyType::Custom, "FuzzPolicy").await.unwrap();
            service.create_policy("restricted-policy", &restricted_policy(group.id.as_str()), "").await.unwrap();
            service.create_user(NewUser { name: "restricted".into(), ..NewUser::default() }).await.unwrap();
            service.attach_policy("restricted", PolicyType::Custom, "restricted-policy").await.unwrap();
            let restricted = service.create_access_key("restricted").await.unwrap();
            let mut ids = vec![
                group.id.to_string(),
                configuration.id.to_string(),
                lb.id.to_string(),
                task.id.to_string(),
                "img-a".to_string(),
                template.id.to_string(),
                "fuzz-user".to_string(),
                user_key.id.clone(),
                "FuzzPolicy".to_string(),
                "wordpress".to_string(),
            ];
            let instances = service.instances(Some(&group.id), None, None).await.unwrap();
            ids.extend(instances.iter().map(|i| i.id.to_string()));
            let router = router(service.clone(), AuthConfig::default());
            // A ClientToken record for the snapshot to watch.
            let request = rpc_request(
                (KEY_ID, SECRET),
                Scheme::V1,
                "CreateLoadBalancer",
                "2014-08-28",
                &[("LoadBalancerName".into(), "lb-token".into()), ("ClientToken".into(), "fuzz-token".into())],
            );
            assert_eq!(router.clone().oneshot(request).await.unwrap().status(), 200);
            assert_eq!(service.engine.store().client_token_list().await.unwrap().len(), 1);
            let expires = chrono::Utc::now().timestamp() + 3600;
            let callers = [
                (KEY_ID.to_string(), SECRET.to_string(), make_token(KEY_ID, SECRET, expires)),
                (
                    restricted.id.clone(),
                    restricted.secret.clone(),
                    make_token(&restricted.id, &restricted.secret, expires),
                ),
            ];
            (router, service, callers, ids, dir)
        });
        Fixture { runtime, router, service, callers, ids, _dir: dir }
    })
}

/// Everything a request could change, as text (AccessKeys without their secrets).
async fn snapshot(service: &Service) -> String {
    let groups = service.groups(None, None).await.unwrap();
    let configurations = service.configurations(None, None).await.unwrap();
    let instances = service.instances(None, None, None).await.unwrap();
    let lbs = service.load_balancers().await.unwrap();
    let images = service.images().await.unwrap();
    let packages = service.packages(None).await.unwrap();
    let filter = ExecutionFilter { include_children: true, ..ExecutionFilter::default() };
    let (executions, _) = service.list_executions(&filter, 0, 10_000).await.unwrap();
    let store = service.engine.store();
    let mut users = Vec::new();
    for user in store.user_list(0, 10_000).await.unwrap() {
        let keys: Vec<String> = store
            .access_key_list(&user.name)
            .await
            .unwrap()
            .iter()
            .map(|key| format!("{}/{}/{}", key.id, key.status.as_str(), key.created_at))
            .collect();
        let attached = store.user_policy_list(&user.name).await.unwrap();
        users.push(format!("{user:?} keys {keys:?} policies {attached:?}"));
    }
    let policies = store.policy_list().await.unwrap();
    let mut templates = Vec::new();
    for template in service.launch_templates().await.unwrap() {
        let versions = service.launch_template_versions(&template.id).await.unwrap();
        templates.push(format!("{template:?} {versions:?}"));
    }
    let tokens = store.client_token_list().await.unwrap();
    format!(
        "{groups:?}\n{configurations:?}\n{instances:?}\n{lbs:?}\n{images:?}\n{packages:?}\n{executions:?}\n\
         {users:?}\n{policies:?}\n{templates:?}\n{tokens:?}"
    )
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
    // The three tests share the fixture and run in parallel: one request at a time, so that
    // only the request under test changes state between the two snapshots.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let fixture = fixture();
    fixture.runtime.block_on(async {
        settle(&fixture.service).await;
        let before = snapshot(&fixture.service).await;
        let response = fixture.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let stream = response.headers().get("content-type").is_some_and(|v| v == "text/event-stream");
        if stream {
            return Ok(()); // a live stream: its own test reads it
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        prop_assert!(status < 500, "{what}: status {status}: {}", String::from_utf8_lossy(&bytes));
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| TestCaseError::fail(format!("{what}: not JSON ({e}): {bytes:?}")))?;
        if std::env::var_os("FUZZ_TRACE").is_some() {
            let code = body["Code"].as_str().unwrap_or("-");
            eprintln!("FUZZ {status} {code} {}", what.chars().take(100).collect::<String>());
        }
        if status >= 400 {
            prop_assert!(body["Code"].as_str().is_some_and(|c| !c.is_empty()), "{what}: no code: {body}");
            let after = snapshot(&fixture.service).await;
            prop_assert_eq!(before, after, "{}: refused ({}) but changed state: {}", what, status, body);
        }
        Ok(())
    })
}

/// Every action the RPC API serves, and two it does not.
fn actions() -> Vec<&'static str> {
    let mut actions: Vec<&'static str> = operations::OPERATIONS.iter().map(|op| op.name()).collect();
    actions.extend(["NoSuchAction", ""]);
    actions
}

/// Every version served, and two that are not.
fn versions() -> Vec<&'static str> {
    let mut versions: Vec<&'static str> =
        operations::OPERATIONS.iter().flat_map(|op| op.versions.iter().copied()).collect();
    versions.sort_unstable();
    versions.dedup();
    versions.extend(["1999-01-01", ""]);
    versions
}

/// The parameter names of `params` as sent: a list's first and second items and its bare name.
fn expand(params: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for param in params {
        match param.strip_suffix(".N") {
            Some(list) => names.extend([format!("{list}.1"), format!("{list}.2"), list.to_string()]),
            None => names.push(param.to_string()),
        }
    }
    names
}

/// Every parameter any action takes, the common ones, and strangers.
fn param_names() -> Vec<String> {
    let all: Vec<&str> = operations::OPERATIONS.iter().flat_map(|op| op.params.iter().copied()).collect();
    let mut names = expand(&all);
    names.extend(["RegionId", "Format", "Version", "Bogus", "ScalingGroupId.x"].map(String::from));
    names.sort_unstable();
    names.dedup();
    names
}

/// An RPC call: mostly an operation with a version that serves it and parameters it takes
/// (so that calls get past the checks of names to those of values, and run); sometimes any
/// action, version and parameters.
fn rpc_call() -> impl Strategy<Value = (&'static str, &'static str, Vec<(String, String)>)> {
    let served = (0..operations::OPERATIONS.len()).prop_flat_map(|index| {
        let operation = &operations::OPERATIONS[index];
        let mut names = expand(operation.params);
        names.push("RegionId".into());
        (
            Just(operation.name()),
            prop::sample::select(operation.versions.to_vec()),
            // Each name once: a repeated one is the other strategy's business.
            prop::collection::btree_map(prop::sample::select(names), value(), 0..6)
                .prop_map(|params| params.into_iter().collect::<Vec<_>>()),
        )
    });
    let any_call = (
        prop::sample::select(actions()),
        prop::sample::select(versions()),
        prop::collection::vec((prop::sample::select(param_names()), value()), 0..8),
    );
    prop_oneof![6 => served, 1 => any_call]
}

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
        Just("Reject".to_string()),
        Just("SkipTask".to_string()),
        Just("System".to_string()),
        Just("Custom".to_string()),
        Just("Inactive".to_string()),
        Just("AdministratorAccess".to_string()),
        Just("AliyunESSReadOnlyAccess".to_string()),
        Just("Default".to_string()),
        Just("InService".to_string()),
        Just("fuzz-token".to_string()),
        Just(r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"ess:*","Resource":"*"}]}"#.to_string()),
        Just(r#"["a","b"]"#.to_string()),
        Just("ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup".to_string()),
        Just("ACS-ESS-RollingUpdateByRunCommandInScalingGroup".to_string()),
        Just(r#"{"invokeType":"invoke","scalingGroupId":"asg-0","imageId":"img-b"}"#.to_string()),
        Just("a".repeat(5000)),
        Just("é中\u{0}\u{202e}".to_string()),
        (0usize..16).prop_map(|i| format!("@{i}")),
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

#[derive(Clone, Copy, Debug)]
enum Scheme {
    /// RPC v1 (HMAC-SHA1), the parameters in a form body.
    V1,
    /// ACS3-HMAC-SHA256, the parameters in the query and the action in headers.
    Acs3,
}

fn rpc_request(
    (key, secret): (&str, &str),
    scheme: Scheme,
    action: &str,
    version: &str,
    params: &[(String, String)],
) -> Request<Body> {
    let params: Vec<(String, String)> = params.iter().map(|(k, v)| (k.clone(), resolve(v))).collect();
    match scheme {
        Scheme::V1 => {
            let mut pairs: Vec<(String, String)> =
                vec![("Action".into(), action.into()), ("Version".into(), version.into())];
            pairs.extend(params);
            let timestamp = sign::format_timestamp(chrono::Utc::now());
            sign::sign_v1_params("POST", &mut pairs, key, secret, &timestamp, &sign::random_nonce());
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
            Request::post("/")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap()
        }
        Scheme::Acs3 => {
            let headers = vec![
                ("x-acs-action".to_string(), action.to_string()),
                ("x-acs-version".to_string(), version.to_string()),
            ];
            acs3_request("POST", "/", &params, headers, "", (key, secret))
        }
    }
}

/// A request signed with ACS3-HMAC-SHA256 as the tea SDKs sign it.
fn acs3_request(
    method: &str,
    path: &str,
    query: &[(String, String)],
    mut headers: Vec<(String, String)>,
    body: &str,
    (key, secret): (&str, &str),
) -> Request<Body> {
    let hashed = sign::sha256_hex(body.as_bytes());
    headers.extend([
        ("x-acs-content-sha256".to_string(), hashed.clone()),
        ("x-acs-date".to_string(), sign::format_timestamp(chrono::Utc::now())),
        ("x-acs-signature-nonce".to_string(), sign::random_nonce()),
    ]);
    headers.sort();
    let names: Vec<String> = headers.iter().map(|(name, _)| name.clone()).collect();
    let canonical = sign::acs3_canonical_request(method, path, query, &headers, &names, &hashed);
    let signature = sign::acs3_signature(&sign::acs3_string_to_sign(&canonical), secret);
    let encoded: Vec<String> =
        query.iter().map(|(k, v)| format!("{}={}", sign::percent_encode(k), sign::percent_encode(v))).collect();
    let uri = match encoded.is_empty() {
        true => path.to_string(),
        false => format!("{path}?{}", encoded.join("&")),
    };
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let authorization =
        format!("ACS3-HMAC-SHA256 Credential={key},SignedHeaders={},Signature={signature}", names.join(";"));
    request.header("authorization", authorization).body(Body::from(body.to_string())).unwrap()
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
    "policy_type",
    "policy_name",
    "document",
    "status",
    "default_version",
    "make_default",
    "display_name",
    "invokeType",
    "scalingGroupId",
    "imageId",
    "batchNumber",
    "colour",
];

/// A route's method (mostly), path with random or real ids, and maybe a query parameter.
fn rest_call() -> impl Strategy<Value = (String, String, Vec<(String, String)>)> {
    let routes: Vec<(&'static str, &'static str)> =
        rollscale_server::rest::ROUTES.iter().map(|route| (route.method, route.path)).collect();
    let other_method = prop::sample::select(vec!["get", "post", "patch", "delete", "put"]);
    (
        prop::sample::select(routes),
        prop::option::weighted(0.2, other_method),
        prop::collection::vec(value(), 3),
        prop::option::of((
            prop::sample::select(vec![
                "name",
                "scaling_group_id",
                "status",
                "user_name",
                "wait",
                "force",
                "ttl",
                "limit",
                "x",
            ]),
            value(),
        )),
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
            let query: Vec<(String, String)> =
                query.map(|(name, value)| (name.to_string(), resolve(&value))).into_iter().collect();
            (other.unwrap_or(method).to_ascii_uppercase(), path, query)
        })
}

/// Who calls over REST.
#[derive(Clone, Copy, Debug)]
enum RestAuth {
    Nobody,
    Bearer(usize),
    Acs3(usize),
}

fn rest_auth() -> impl Strategy<Value = RestAuth> {
    prop_oneof![
        1 => Just(RestAuth::Nobody),
        4 => (0usize..2).prop_map(RestAuth::Bearer),
        2 => (0usize..2).prop_map(RestAuth::Acs3),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn signed_rpc_calls_with_random_parameters(
        (action, version, params) in rpc_call(),
        caller in prop::sample::select(vec![0usize, 0, 1]),
        acs3 in any::<bool>(),
    ) {
        let fixture = fixture();
        let (key, secret, _) = &fixture.callers[caller];
        let scheme = if acs3 { Scheme::Acs3 } else { Scheme::V1 };
        let request = rpc_request((key, secret), scheme, action, version, &params);
        check(request, &format!("{scheme:?} caller {caller} {action} {version} {params:?}"))?;
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
        (method, path, query) in rest_call(),
        body in prop::option::of(json_value()),
        auth in rest_auth(),
        idempotency_key in prop::option::weighted(0.2, prop::sample::select(vec!["k1", "k2", "fuzz-token"])),
    ) {
        let fixture = fixture();
        let body_text = body.as_ref().map(Value::to_string).unwrap_or_default();
        let mut headers: Vec<(String, String)> = Vec::new();
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        if let Some(key) = idempotency_key {
            headers.push(("idempotency-key".into(), key.into()));
        }
        let uri = match query.is_empty() {
            true => path.clone(),
            false => format!("{path}?{}", form_urlencoded::Serializer::new(String::new()).extend_pairs(&query).finish()),
        };
        let request = match auth {
            RestAuth::Acs3(caller) => {
                let (key, secret, _) = &fixture.callers[caller];
                if Request::builder().method(method.as_str()).uri(uri.as_str()).body(()).is_err() {
                    return Ok(());
                }
                acs3_request(&method, &path, &query, headers, &body_text, (key, secret))
            }
            RestAuth::Nobody | RestAuth::Bearer(_) => {
                let mut request = Request::builder().method(method.as_str()).uri(uri.as_str());
                if let RestAuth::Bearer(caller) = auth {
                    request = request.header("authorization", format!("Bearer {}", fixture.callers[caller].2));
                }
                for (name, value) in &headers {
                    request = request.header(name, value);
                }
                let Ok(request) = request.body(Body::from(body_text.clone())) else { return Ok(()) };
                request
            }
        };
        check(request, &format!("{auth:?} {method} {uri} {body_text}"))?;
    }
}
