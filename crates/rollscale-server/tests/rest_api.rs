//! The REST API through the real router: authentication (bearer tokens and ACS3 signatures),
//! a whole rolling update driven over `/v1` (long-poll wait, continue, the SSE stream), refusals
//! that change nothing, and the OpenAPI document checked against `docs/openapi.json`.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use rollscale_server::rest::auth::make_token;
use rollscale_server::rpc::sign;
use rollscale_server::{router, AuthConfig};
use rollscale_test_support::engine::group_id;
use rollscale_test_support::server::{send, Api};
use serde_json::{json, Value};
use std::time::Duration;
use tower::ServiceExt;

const KEY_ID: &str = "LTAIrestAccessKeyId00";
const SECRET: &str = "restSecret";

async fn app() -> Api {
    Api::with(KEY_ID, SECRET, 1, AuthConfig::default()).await
}

/// A call with the administrator's token: status and body.
async fn call(app: &Api, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    app.rest(method, path, body.as_ref()).await
}

/// [`call`], which must answer 200: the body.
async fn ok(app: &Api, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, value) = call(app, method, path, body).await;
    assert_eq!(status, 200, "{method} {path}: {value}");
    value
}

/// A request signed with ACS3-HMAC-SHA256, as the tea SDKs sign.
fn signed(method: &str, path: &str, body: &str, secret: &str) -> Request<Body> {
    let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
    let query: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let hashed = sign::sha256_hex(body.as_bytes());
    let headers = vec![
        ("host".to_string(), "127.0.0.1".to_string()),
        ("x-acs-content-sha256".to_string(), hashed.clone()),
        ("x-acs-date".to_string(), sign::format_timestamp(chrono::Utc::now())),
        ("x-acs-signature-nonce".to_string(), sign::random_nonce()),
    ];
    let names: Vec<String> = headers.iter().map(|(name, _)| name.clone()).collect();
    let canonical = sign::acs3_canonical_request(method, path_only, &query, &headers, &names, &hashed);
    let signature = sign::acs3_signature(&sign::acs3_string_to_sign(&canonical), secret);
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    request
        .header(
            "authorization",
            format!("ACS3-HMAC-SHA256 Credential={KEY_ID},SignedHeaders={},Signature={signature}", names.join(";")),
        )
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A load balancer, a group of `size` InService instances, its configuration, the images.
async fn group(app: &Api, size: u32) -> (String, String) {
    let lb = ok(app, "POST", "/v1/load-balancers", Some(json!({"name": "web"}))).await;
    let group = ok(
        app,
        "POST",
        "/v1/scaling-groups",
        Some(json!({"name": "web", "min_size": 0, "max_size": 20, "desired_capacity": size,
                        "load_balancer_ids": [lb["id"]]})),
    )
    .await;
    let id = group["id"].as_str().unwrap().to_string();
    assert_eq!(group["status"], "Inactive");
    for image in ["img-old", "img-new"] {
        ok(app, "POST", "/v1/images", Some(json!({"id": image}))).await;
    }
    let configuration =
        ok(app, "POST", "/v1/scaling-configurations", Some(json!({"scaling_group_id": id, "image_id": "img-old"})))
            .await;
    let enabled = ok(app, "POST", &format!("/v1/scaling-groups/{id}/enable"), None).await;
    assert_eq!(enabled["status"], "Active");
    assert_eq!(enabled["scaling_configuration_id"], configuration["id"]);
    app.service.reconcile_all().await.unwrap();
    let instances = ok(app, "GET", &format!("/v1/instances?scaling_group_id={id}"), None).await;
    assert_eq!(instances["items"].as_array().unwrap().len(), size as usize);
    (id, configuration["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn requests_without_valid_credentials_are_refused() {
    let app = app().await;
    let (status, body) = send(&app.router, Request::get("/v1/scaling-groups").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["Code"].as_str()), (401, Some("MissingAuthorization")), "{body}");
    assert!(body["RequestId"].as_str().is_some_and(|id| !id.is_empty()));

    let forged = make_token(KEY_ID, "not the secret", chrono::Utc::now().timestamp() + 600);
    let expired = make_token(KEY_ID, SECRET, chrono::Utc::now().timestamp() - 1);
    let unknown = make_token("LTAInobody", SECRET, chrono::Utc::now().timestamp() + 600);
    for (token, code) in
        [(forged, "InvalidToken"), (expired, "TokenExpired"), (unknown, "InvalidToken"), ("x.y".into(), "InvalidToken")]
    {
        let request = Request::get("/v1/scaling-groups").header("authorization", format!("Bearer {token}"));
        let (status, body) = send(&app.router, request.body(Body::empty()).unwrap()).await;
        assert_eq!((status, body["Code"].as_str()), (401, Some(code)), "{body}");
    }

    // ACS3: the SDKs' signature works; a wrong secret, a changed body or a replay do not.
    let (status, body) = send(&app.router, signed("GET", "/v1/scaling-groups?name=web", "", SECRET)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], json!([]));
    let (status, body) = send(&app.router, signed("GET", "/v1/scaling-groups", "", "wrong")).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("SignatureDoesNotMatch")), "{body}");
    let request = signed("POST", "/v1/load-balancers", r#"{"name":"a"}"#, SECRET);
    let (parts, _) = request.into_parts();
    let tampered = Request::from_parts(parts, Body::from(r#"{"name":"b"}"#));
    let (status, body) = send(&app.router, tampered).await;
    assert_eq!(status, 400, "{body}");
    assert!(app.service.load_balancers().await.unwrap().is_empty(), "a refused request changes nothing");
    let request = signed("POST", "/v1/load-balancers", r#"{"name":"a"}"#, SECRET);
    let (parts, body) = request.into_parts();
    let again = Request::from_parts(parts.clone(), Body::from(r#"{"name":"a"}"#));
    assert_eq!(send(&app.router, Request::from_parts(parts, body)).await.0, 200);
    let (status, body) = send(&app.router, again).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("SignatureNonceUsed")), "{body}");
    assert_eq!(app.service.load_balancers().await.unwrap().len(), 1);

    // A token made over the API works like one made by the CLI.
    let (status, made) = send(&app.router, signed("POST", "/v1/tokens?ttl=120", "", SECRET)).await;
    assert_eq!(status, 200, "{made}");
    assert_eq!((made["access_key_id"].as_str(), made["user_name"].as_str()), (Some(KEY_ID), Some("admin")), "who");
    let request = Request::get("/v1/load-balancers")
        .header("authorization", format!("Bearer {}", made["token"].as_str().unwrap()));
    let (status, body) = send(&app.router, request.body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["items"].as_array().map(Vec::len)), (200, Some(1)), "{body}");
}

#[tokio::test]
async fn a_rolling_update_over_rest_with_wait_continue_and_a_live_stream() {
    let app = app().await;
    let (group, configuration) = group(&app, 6).await;
    let started = ok(
        &app,
        "POST",
        "/v1/rolling-updates",
        Some(json!({
            "template_name": "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup",
            "parameters": {"invokeType": "invoke", "scalingGroupId": group, "scalingConfigurationId": configuration,
                           "imageId": "img-new", "sourceImageId": "img-old", "batchNumber": 3,
                           "batchPauseOption": "FirstBatchPause"},
        })),
    )
    .await;
    let id = started["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("exec-"));
    assert_eq!(started["batch_sizes"], json!([2, 2, 2]));
    assert_eq!(started["kind"], "ImageUpdate");

    // Long poll: returns once the task waits at its first-batch pause.
    let paused = ok(&app, "GET", &format!("/v1/rolling-updates/{id}?wait=20"), None).await;
    assert_eq!(paused["status"], "Waiting", "{paused}");
    assert_eq!(paused["waiting_status"], "BatchPaused");
    assert_eq!(paused["counters"]["success"], 2);
    assert_eq!(paused["current_batch"], 1);

    // The stream: the current state at once, then each change, then `end`.
    let stream = app
        .router
        .clone()
        .oneshot(
            Request::get(format!("/v1/rolling-updates/{id}/events"))
                .header("authorization", format!("Bearer {}", app.token))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let continued = ok(&app, "POST", &format!("/v1/rolling-updates/{id}/continue"), None).await;
    assert_eq!(continued["status"], "Running", "{continued}");
    let text = tokio::time::timeout(Duration::from_secs(30), stream.into_body().collect())
        .await
        .expect("the stream ends with the task")
        .unwrap()
        .to_bytes();
    let text = String::from_utf8(text.to_vec()).unwrap();
    let progress: Vec<Value> = text
        .split("\n\n")
        .filter(|event| event.starts_with("event: progress"))
        .map(|event| serde_json::from_str(event.split_once("data: ").unwrap().1).unwrap())
        .collect();
    assert!(progress.len() >= 2, "{text}");
    assert_eq!(progress[0]["status"], "Waiting", "the stream starts with the state at connection");
    let last = progress.last().unwrap();
    assert_eq!(last["status"], "Success", "{last}");
    assert_eq!(last["counters"]["success"], 6);
    assert!(progress.windows(2).all(|pair| pair[0] != pair[1]), "each event is a change");
    assert!(text.trim_end().ends_with(&format!("event: end\ndata: {id}")), "{text}");

    let instances = ok(&app, "GET", &format!("/v1/rolling-updates/{id}/instances"), None).await;
    let instances = instances["items"].as_array().unwrap();
    assert_eq!(instances.len(), 6);
    assert!(instances.iter().all(|i| i["status"] == "Success" && i["started_at"].is_string()));
    let listed = ok(&app, "GET", &format!("/v1/instances?scaling_group_id={group}"), None).await;
    assert!(listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["image_id"] == "img-new" && i["lifecycle_state"] == "InService"));

    // Roll back, waiting for the end with the long poll.
    let rollback = ok(&app, "POST", &format!("/v1/rolling-updates/{id}/rollback"), Some(json!({}))).await;
    assert_eq!(rollback["invoke_type"], "rollback");
    let done =
        ok(&app, "GET", &format!("/v1/rolling-updates/{}?wait=20", rollback["id"].as_str().unwrap()), None).await;
    assert_eq!(done["status"], "Success", "{done}");
    let listed = ok(&app, "GET", &format!("/v1/instances?scaling_group_id={group}"), None).await;
    assert!(listed["items"].as_array().unwrap().iter().all(|i| i["image_id"] == "img-old"));
    let all = ok(&app, "GET", &format!("/v1/rolling-updates?scaling_group_id={group}"), None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let events = ok(&app, "GET", &format!("/v1/events?execution_id={id}"), None).await;
    assert!(events["items"].as_array().unwrap().iter().any(|e| e["kind"] == "Succeeded"), "{events}");
    // Keyword search (R15): `and` within, `or` between.
    let query = |keywords: &str| {
        let encoded = form_urlencoded::Serializer::new(String::new()).append_pair("keywords", keywords).finish();
        format!("/v1/events?{encoded}")
    };
    let found = ok(&app, "GET", &query(&format!("succeeded and {id}")), None).await;
    let found = found["items"].as_array().unwrap();
    assert!(!found.is_empty() && found.iter().all(|e| e["kind"] == "Succeeded" && e["execution_id"] == id.as_str()));
    let either = ok(&app, "GET", &query("Paused or nothing-like-this"), None).await;
    assert!(!either["items"].as_array().unwrap().is_empty());
    assert!(either["items"].as_array().unwrap().iter().all(|e| e["kind"] == "Paused"), "{either}");
    // A group's events, with or without keywords.
    let of_group = ok(&app, "GET", &format!("/v1/events?scaling_group_id={group}&keywords=succeeded"), None).await;
    let of_group = of_group["items"].as_array().unwrap();
    assert_eq!(of_group.len(), 2, "the update's success and the rollback's: {of_group:?}");
    assert!(of_group.iter().all(|e| e["scaling_group_id"] == group.as_str() && e["kind"] == "Succeeded"));
    let other =
        ok(&app, "POST", "/v1/scaling-groups", Some(json!({"name": "other", "min_size": 0, "max_size": 1}))).await;
    let none = ok(&app, "GET", &format!("/v1/events?scaling_group_id={}", other["id"].as_str().unwrap()), None).await;
    assert_eq!(none["items"], json!([]), "another group has none");
    let (status, error) = call(&app, "GET", &query("succeeded and"), None).await;
    assert_eq!((status, error["Code"].as_str()), (400, Some("InvalidParameter")), "{error}");
    let mut params = vec![
        ("Action".to_string(), "DescribeEvents".to_string()),
        ("Version".to_string(), "2014-08-28".to_string()),
        ("Keywords".to_string(), format!("{id} and succeeded")),
    ];
    sign::sign_v1_params(
        "GET",
        &mut params,
        KEY_ID,
        SECRET,
        &sign::format_timestamp(chrono::Utc::now()),
        &sign::random_nonce(),
    );
    let rpc = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    let (status, body) = send(&app.router, Request::get(format!("/?{rpc}")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["Events"]["Event"]
            .as_array()
            .is_some_and(|all| !all.is_empty() && all.iter().all(|e| e["Kind"] == "Succeeded")),
        "{body}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_a_code_and_changes_nothing() {
    let app = app().await;
    let (group, _) = group(&app, 2).await;
    let cases: Vec<(&str, String, Option<Value>, u16, &str)> = vec![
        // A body over 1 MiB: too large, whatever it holds.
        (
            "POST",
            "/v1/scaling-groups".into(),
            Some(json!({"name": "x".repeat(1024 * 1024), "min_size": 0, "max_size": 1})),
            413,
            "InvalidBody.TooLarge",
        ),
        (
            "POST",
            "/v1/scaling-groups".into(),
            Some(json!({"name": "x", "min_size": 0, "max_size": 1, "colour": "red"})),
            400,
            "InvalidParameter",
        ),
        (
            "POST",
            "/v1/scaling-groups".into(),
            Some(json!({"name": "x", "min_size": 0, "max_size": 20000})),
            400,
            "InvalidParameter",
        ),
        (
            "POST",
            "/v1/scaling-groups".into(),
            Some(json!({"name": "x", "min_size": 5, "max_size": 1})),
            400,
            "InvalidParameter",
        ),
        (
            "POST",
            "/v1/scaling-groups".into(),
            Some(json!({"name": "   ", "min_size": 0, "max_size": 1})),
            400,
            "InvalidParameter",
        ),
        (
            "PATCH",
            format!("/v1/scaling-groups/{group}"),
            Some(json!({"desired_capacity": "ten"})),
            400,
            "InvalidParameter",
        ),
        ("GET", "/v1/scaling-groups/asg-doesnotexist000000".into(), None, 404, "InvalidScalingGroupId.NotFound"),
        ("GET", "/v1/scaling-groups?colour=red".into(), None, 400, "InvalidParameter"),
        (
            "POST",
            format!("/v1/scaling-groups/{group}/processes"),
            Some(json!({"action": "pause", "processes": ["ScaleIn"]})),
            400,
            "InvalidParameter",
        ),
        (
            "POST",
            "/v1/rolling-updates".into(),
            Some(
                json!({"template_name": "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup", "parameters": {"invokeType": "invoke", "scalingGroupId": group, "imageId": "img-unknown"}}),
            ),
            404,
            "InvalidImageId.NotFound",
        ),
        (
            "POST",
            "/v1/rolling-updates".into(),
            Some(
                json!({"template_name": "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup", "parameters": {"invokeType": "invoke", "scalingGroupId": group, "batchNumber": 0, "imageId": "img-new"}}),
            ),
            400,
            "InvalidParameter",
        ),
        (
            "POST",
            "/v1/rolling-updates".into(),
            Some(json!({"template_name": "NoSuchTemplate", "parameters": {}})),
            404,
            "EntityNotExists.Template",
        ),
        (
            "POST",
            "/v1/rolling-updates".into(),
            Some(
                json!({"template_name": "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup", "parameters": "a string"}),
            ),
            400,
            "InvalidParameter",
        ),
        ("GET", "/v1/rolling-updates/exec-doesnotexist00000?wait=1".into(), None, 404, "EntityNotExists.Execution"),
        ("GET", "/v1/rolling-updates/x?wait=301".into(), None, 400, "InvalidParameter"),
        ("GET", "/v1/no-such-thing".into(), None, 404, "NotFound"),
        ("POST", "/v1/load-balancers".into(), Some(json!({"name": "", "default_weight": 5})), 400, "InvalidParameter"),
        (
            "POST",
            "/v1/load-balancers".into(),
            Some(json!({"name": "x", "default_weight": 500})),
            400,
            "InvalidParameter",
        ),
    ];
    let before = (
        app.service.groups(None, None).await.unwrap(),
        app.service.load_balancers().await.unwrap(),
        ok(&app, "GET", "/v1/rolling-updates", None).await,
    );
    for (method, path, body, status, code) in cases {
        let (got, error) = call(&app, method, &path, body.clone()).await;
        assert_eq!(got, status, "{method} {path} {body:?}: {error}");
        assert!(
            error["Code"].as_str().is_some_and(|c| !c.is_empty() && (code.is_empty() || c == code)),
            "{method} {path}: {error}"
        );
        assert!(error["Message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Not JSON at all.
    let request = Request::post("/v1/scaling-groups")
        .header("authorization", format!("Bearer {}", app.token))
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, error) = send(&app.router, request).await;
    assert_eq!((status, error["Code"].as_str()), (400, Some("InvalidParameter")), "{error}");
    let after = (
        app.service.groups(None, None).await.unwrap(),
        app.service.load_balancers().await.unwrap(),
        ok(&app, "GET", "/v1/rolling-updates", None).await,
    );
    assert_eq!(before, after, "refused requests changed something");
}

#[tokio::test]
async fn the_openapi_document_is_generated_from_the_routes_and_checked_in() {
    let app = app().await;
    let response =
        app.router.clone().oneshot(Request::get("/v1/openapi.json").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), 200, "the document needs no credentials");
    let served = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let document: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.0.3");
    for route in rollscale_server::rest::ROUTES {
        let operation = &document["paths"][route.path][route.method];
        assert_eq!(operation["x-rollscale-action"], route.action, "{} {}", route.method, route.path);
    }
    // Every reference resolves.
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let name = reference.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{reference}"));
        assert!(schemas.contains_key(name), "{reference} does not resolve");
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &served).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == served,
        "docs/openapi.json differs from the document the code makes: run \
         `UPDATE_OPENAPI=1 cargo test -p rollscale-server --test rest_api` and commit it"
    );
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => refs.push(reference.clone()),
                    _ => collect_refs(value, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[tokio::test]
async fn each_access_key_is_throttled_beyond_its_rate() {
    let app = app().await;
    let limited = router(app.service.clone(), AuthConfig { rate_per_key: Some(5), ..AuthConfig::default() });
    let get = || {
        Request::get("/v1/load-balancers").header("authorization", format!("Bearer {}", app.token)).body(Body::empty())
    };
    // A burst of twice the rate passes; the next request is throttled, with a retry hint.
    for n in 0..10 {
        let response = limited.clone().oneshot(get().unwrap()).await.unwrap();
        assert_eq!(response.status(), 200, "request {n} of the burst");
    }
    let response = limited.clone().oneshot(get().unwrap()).await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_ms: u64 = response.headers()["x-acs-retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=200).contains(&retry_ms), "{retry_ms}");
    let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["Code"], "Throttling.User", "{body}");
    // The RPC API shares the bucket.
    let mut params = vec![
        ("Action".to_string(), "DescribeScalingGroups".to_string()),
        ("Version".to_string(), "2014-08-28".to_string()),
    ];
    sign::sign_v1_params(
        "GET",
        &mut params,
        KEY_ID,
        SECRET,
        &sign::format_timestamp(chrono::Utc::now()),
        &sign::random_nonce(),
    );
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    let (status, body) = send(&limited, Request::get(format!("/?{query}")).body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["Code"].as_str()), (429, Some("Throttling.User")), "{body}");
    // Once the hinted time has passed, requests go through again.
    tokio::time::sleep(Duration::from_millis(retry_ms + 50)).await;
    assert_eq!(limited.clone().oneshot(get().unwrap()).await.unwrap().status(), 200);
}

/// Launch templates over REST and over ECS's RPC actions: a group made from one, updated by a
/// rolling update that leaves the template alone.
#[tokio::test]
async fn launch_templates_over_rest_and_rpc() {
    let app = app().await;
    for image in ["img-old", "img-new"] {
        ok(&app, "POST", "/v1/images", Some(json!({"id": image}))).await;
    }
    let template =
        ok(&app, "POST", "/v1/launch-templates", Some(json!({"name": "web", "version": {"image_id": "img-old"}})))
            .await;
    let id = template["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("lt-"), "{template}");
    assert_eq!((template["default_version"].as_u64(), template["latest_version"].as_u64()), (Some(1), Some(1)));
    let group = ok(
        &app,
        "POST",
        "/v1/scaling-groups",
        Some(json!({"name": "web", "min_size": 0, "max_size": 4, "desired_capacity": 2, "launch_template_id": id})),
    )
    .await;
    assert_eq!(group["launch_template_version"], "Default");
    let group_id = group["id"].as_str().unwrap().to_string();
    ok(&app, "POST", &format!("/v1/scaling-groups/{group_id}/enable"), None).await;
    app.service.reconcile_all().await.unwrap();
    let started = ok(
        &app,
        "POST",
        "/v1/rolling-updates",
        Some(json!({"template_name": "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup",
                        "parameters": {"invokeType": "invoke", "scalingGroupId": group_id, "imageId": "img-new"}})),
    )
    .await;
    let done = ok(&app, "GET", &format!("/v1/rolling-updates/{}?wait=20", started["id"].as_str().unwrap()), None).await;
    assert_eq!(done["status"], "Success", "{done}");
    let versions = ok(&app, "GET", &format!("/v1/launch-templates/{id}/versions"), None).await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 1);
    assert_eq!(versions["items"][0]["image_id"], "img-old", "a rolling update leaves the template alone");

    let second = ok(
        &app,
        "POST",
        &format!("/v1/launch-templates/{id}/versions"),
        Some(json!({"image_id": "img-new", "make_default": true})),
    )
    .await;
    assert_eq!(second["version"], 2);
    let (status, error) =
        call(&app, "PATCH", &format!("/v1/launch-templates/{id}"), Some(json!({"default_version": 9}))).await;
    assert_eq!((status, error["Code"].as_str()), (404, Some("InvalidLaunchTemplateVersion.NotFound")), "{error}");

    // ECS's own actions see the same templates.
    let mut params = vec![
        ("Action".to_string(), "DescribeLaunchTemplates".to_string()),
        ("Version".to_string(), "2014-05-26".to_string()),
        ("LaunchTemplateName.1".to_string(), "web".to_string()),
    ];
    sign::sign_v1_params(
        "GET",
        &mut params,
        KEY_ID,
        SECRET,
        &sign::format_timestamp(chrono::Utc::now()),
        &sign::random_nonce(),
    );
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    let (status, body) = send(&app.router, Request::get(format!("/?{query}")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let set = &body["LaunchTemplateSets"]["LaunchTemplateSet"][0];
    assert_eq!((set["LaunchTemplateId"].as_str(), set["DefaultVersionNumber"].as_u64()), (Some(id.as_str()), Some(2)));
    assert_eq!(set["LatestVersionNumber"], 2);
}

/// The REST API is authorized as the RPC API is, and every call is in the audit log.
#[tokio::test]
async fn rest_calls_are_authorized_by_policy_and_audited() {
    use rollscale_core::access::AuditFilter;
    use rollscale_core::policy::PolicyType;
    use rollscale_engine::access::NewUser;
    let app = app().await;
    let (group, _) = group(&app, 2).await;
    app.service.create_user(NewUser { name: "viewer".into(), display_name: None, comments: None }).await.unwrap();
    app.service.attach_policy("viewer", PolicyType::System, "AliyunESSReadOnlyAccess").await.unwrap();
    let key = app.service.create_access_key("viewer").await.unwrap();
    let token = make_token(&key.id, &key.secret, chrono::Utc::now().timestamp() + 600);
    let call = |method: &str, path: &str, body: Option<Value>| {
        let mut request =
            Request::builder().method(method).uri(path).header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        request.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap()
    };
    let (status, listed) = send(&app.router, call("GET", "/v1/scaling-groups", None)).await;
    assert_eq!(status, 200, "{listed}");
    let before = ok(&app, "GET", "/v1/rolling-updates", None).await;
    let start = json!({"template_name": "ACS-ESS-RollingUpdateByRunCommandInScalingGroup",
                       "parameters": {"invokeType": "invoke", "scalingGroupId": group, "invokeScript": "uptime"}});
    let (status, denied) = send(&app.router, call("POST", "/v1/rolling-updates", Some(start))).await;
    assert_eq!((status, denied["Code"].as_str()), (403, Some("Forbidden.RAM")), "{denied}");
    assert!(denied["Message"].as_str().unwrap().contains("oos:StartExecution"), "{denied}");
    let (status, denied) = send(&app.router, call("DELETE", &format!("/v1/scaling-groups/{group}"), None)).await;
    assert_eq!((status, denied["Code"].as_str()), (403, Some("Forbidden.RAM")), "{denied}");
    assert_eq!(ok(&app, "GET", "/v1/rolling-updates", None).await, before, "a denied call changes nothing");
    assert_eq!(app.service.groups(None, None).await.unwrap().len(), 1);
    let (status, _) = send(&app.router, call("POST", "/v1/tokens", None)).await;
    assert_eq!(status, 200, "any caller may make a token from its own key");

    let filter = AuditFilter { user_name: Some("viewer".into()), ..AuditFilter::default() };
    let (events, _) = app.service.audit_events(&filter, 0, 50).await.unwrap();
    let seen: Vec<(&str, &str)> = events.iter().map(|e| (e.action.as_str(), e.result_code.as_str())).collect();
    assert!(seen.contains(&("ess:DescribeScalingGroups", "Success")), "{seen:?}");
    assert!(seen.contains(&("oos:StartExecution", "Forbidden.RAM")), "{seen:?}");
    assert!(seen.contains(&("ess:DeleteScalingGroup", "Forbidden.RAM")), "{seen:?}");
    let delete = events.iter().find(|e| e.action == "ess:DeleteScalingGroup").unwrap();
    assert_eq!(delete.resource, format!("acs:ess:*:*:scalinggroup/{group}"));
    assert_eq!(delete.http_status, 403);
    let logged = serde_json::to_string(&events.iter().map(|e| &e.request).collect::<Vec<_>>()).unwrap();
    assert!(!logged.contains(&key.secret) && !logged.contains(&token), "no secret or token in the audit log");
}

/// Users, their keys and policies, and the audit log, over REST.
#[tokio::test]
async fn users_keys_policies_and_the_audit_log_over_rest() {
    let app = app().await;
    let user = ok(&app, "POST", "/v1/users", Some(json!({"name": "deployer", "display_name": "CI"}))).await;
    assert_eq!(user["name"], "deployer");
    let key = ok(&app, "POST", "/v1/users/deployer/keys", None).await;
    let (key_id, secret) = (key["id"].as_str().unwrap().to_string(), key["secret"].as_str().unwrap().to_string());
    assert!(secret.len() >= 30, "the secret is shown once, at creation");
    let keys = ok(&app, "GET", "/v1/users/deployer/keys", None).await;
    assert_eq!(keys["items"][0]["id"], key_id.as_str());
    assert!(keys["items"][0].get("secret").is_none(), "never listed: {keys}");

    let policy = ok(
        &app,
        "POST",
        "/v1/policies",
        Some(json!({"name": "rolling-only", "document": {"Version": "1", "Statement": [
                {"Effect": "Allow", "Action": ["oos:*", "ess:Describe*"], "Resource": "*"}]}})),
    )
    .await;
    assert_eq!(policy["policy_type"], "Custom");
    let (status, error) =
        call(&app, "POST", "/v1/policies", Some(json!({"name": "bad", "document": {"Statement": "nope"}}))).await;
    assert_eq!((status, error["Code"].as_str()), (400, Some("MalformedPolicyDocument")), "{error}");
    let attached = ok(
        &app,
        "POST",
        "/v1/users/deployer/policies",
        Some(json!({"policy_type": "Custom", "policy_name": "rolling-only"})),
    )
    .await;
    assert_eq!(attached["items"][0]["name"], "rolling-only");

    let token = make_token(&key_id, &secret, chrono::Utc::now().timestamp() + 600);
    let as_deployer = |method: &str, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&app.router, as_deployer("GET", "/v1/rolling-updates")).await.0, 200);
    let (status, denied) = send(&app.router, as_deployer("POST", "/v1/users/deployer/keys")).await;
    assert_eq!((status, denied["Code"].as_str()), (403, Some("Forbidden.RAM")), "{denied}");
    assert_eq!(ok(&app, "GET", "/v1/users/deployer/keys", None).await["items"].as_array().unwrap().len(), 1);

    // Disabling the key revokes its tokens.
    let disabled =
        ok(&app, "PATCH", &format!("/v1/users/deployer/keys/{key_id}"), Some(json!({"status": "Inactive"}))).await;
    assert_eq!(disabled["status"], "Inactive");
    assert_eq!(send(&app.router, as_deployer("GET", "/v1/rolling-updates")).await.0, 401);

    let events = ok(&app, "GET", "/v1/audit-events?user_name=deployer", None).await;
    let events = events["items"].as_array().unwrap();
    assert!(events.iter().any(|e| e["action"] == "oos:ListExecutions" && e["result_code"] == "Success"), "{events:?}");
    assert!(events.iter().any(|e| e["action"] == "ram:CreateAccessKey" && e["result_code"] == "Forbidden.RAM"));
    let denied_only = ok(&app, "GET", "/v1/audit-events?result_code=Forbidden.RAM", None).await;
    assert!(denied_only["items"].as_array().unwrap().iter().all(|e| e["result_code"] == "Forbidden.RAM"));

    let detached = ok(&app, "DELETE", "/v1/users/deployer/policies/Custom/rolling-only", None).await;
    assert_eq!(detached["items"], json!([]));
    ok(&app, "DELETE", &format!("/v1/users/deployer/keys/{key_id}"), None).await;
    ok(&app, "DELETE", "/v1/users/deployer", None).await;
    let (status, gone) = call(&app, "GET", "/v1/users/deployer", None).await;
    assert_eq!((status, gone["Code"].as_str()), (404, Some("EntityNotExist.User")), "{gone}");
}

#[tokio::test]
async fn post_images_with_an_instance_id_makes_the_image_from_that_instance() {
    let app = app().await;
    let (group, _) = group(&app, 1).await;
    let instances = ok(&app, "GET", &format!("/v1/instances?scaling_group_id={group}"), None).await;
    let instance = instances["items"][0]["id"].as_str().expect("instance id").to_string();
    let made = ok(&app, "POST", "/v1/images", Some(json!({"instance_id": instance, "name": "golden"}))).await;
    assert_eq!((made["name"].as_str(), made["kind"].as_str()), (Some("golden"), Some("custom")), "{made}");
    let listed = ok(&app, "GET", "/v1/images", None).await;
    assert!(listed["items"].as_array().unwrap().iter().any(|image| image["id"] == made["id"]), "{listed}");
    let unnamed = ok(&app, "POST", "/v1/images", Some(json!({"instance_id": instance}))).await;
    assert!(unnamed["name"].as_str().is_some_and(|name| name.starts_with(&format!("from_{instance}_at_"))));

    for body in
        [json!({}), json!({"id": "x", "instance_id": instance}), json!({"instance_id": instance, "os": "linux"})]
    {
        let (status, answer) = call(&app, "POST", "/v1/images", Some(body.clone())).await;
        assert_eq!((status, answer["Code"].as_str()), (400, Some("InvalidParameter")), "{body}: {answer}");
    }
}

#[tokio::test]
async fn backend_server_weights_are_set_over_rest_for_in_service_instances_only() {
    let app = app().await;
    let (group, _) = group(&app, 2).await;
    let lb = ok(&app, "GET", "/v1/load-balancers", None).await["items"][0]["id"].as_str().unwrap().to_string();
    let instances = ok(&app, "GET", &format!("/v1/instances?scaling_group_id={group}"), None).await;
    let ids: Vec<String> =
        instances["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    let path = format!("/v1/load-balancers/{lb}/backend-servers");
    let set = json!({"backend_servers": [{"instance_id": ids[0], "weight": 37}]});
    assert_eq!(ok(&app, "PUT", &path, Some(set.clone())).await, set);
    let weight = |id: &str| {
        let id = rollscale_core::ids::InstanceId::parse(id).unwrap();
        let service = app.service.clone();
        async move { service.backends(&id).await.unwrap()[0].weight }
    };
    assert_eq!(weight(&ids[0]).await, 37);

    // A Standby instance keeps the weight it will get back; bad bodies change nothing.
    ok(
        &app,
        "POST",
        &format!("/v1/scaling-groups/{group}/standby"),
        Some(json!({"action": "enter", "instance_ids": [ids[1]]})),
    )
    .await;
    let cases = [
        (json!({"backend_servers": [{"instance_id": ids[1], "weight": 50}]}), 400, "IncorrectInstanceStatus"),
        (json!({"backend_servers": [{"instance_id": ids[0], "weight": 101}]}), 400, "InvalidParameter"),
        (json!({"backend_servers": [{"instance_id": ids[0], "weight": 5, "extra": 1}]}), 400, "InvalidParameter"),
        (json!({"backend_servers": []}), 400, "MissingParameter"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = call(&app, "PUT", &path, Some(body.clone())).await;
        assert_eq!((got, answer["Code"].as_str()), (status, Some(code)), "{body}: {answer}");
    }
    let (got, answer) = call(&app, "PUT", "/v1/load-balancers/lb-nope/backend-servers", Some(set)).await;
    assert_eq!((got, answer["Code"].as_str()), (404, Some("InvalidLoadBalancerId.NotFound")), "{answer}");
    assert_eq!((weight(&ids[0]).await, weight(&ids[1]).await), (37, 0));
}

#[tokio::test]
async fn groups_take_health_check_types_and_instances_show_what_was_observed() {
    let app = app().await;
    let created = ok(
        &app,
        "POST",
        "/v1/scaling-groups",
        Some(json!({"name": "checked", "min_size": 0, "max_size": 2,
                        "health_check_types": ["ECS", "LOADBALANCER"], "health_check_grace_period_s": 90})),
    )
    .await;
    assert_eq!(created["health_check_types"], json!(["ECS", "LOAD_BALANCER"]), "{created}");
    assert_eq!(created["health_check_grace_period_s"], 90);
    let id = created["id"].as_str().unwrap().to_string();
    let plain =
        ok(&app, "POST", "/v1/scaling-groups", Some(json!({"name": "plain", "min_size": 0, "max_size": 2}))).await;
    assert_eq!(
        (plain["health_check_types"].clone(), plain["health_check_grace_period_s"].clone()),
        (json!(["ECS"]), json!(0))
    );
    let path = format!("/v1/scaling-groups/{id}");
    let patched = ok(&app, "PATCH", &path, Some(json!({"health_check_types": ["NONE"]}))).await;
    assert_eq!(
        (patched["health_check_types"].clone(), patched["health_check_grace_period_s"].clone()),
        (json!(["NONE"]), json!(90))
    );
    let patched = ok(&app, "PATCH", &path, Some(json!({"max_size": 3, "health_check_grace_period_s": 0}))).await;
    assert_eq!(
        (patched["health_check_types"].clone(), patched["health_check_grace_period_s"].clone()),
        (json!(["NONE"]), json!(0))
    );
    assert_eq!(ok(&app, "GET", &path, None).await, patched);

    // An instance the health checker saw stopped and on another image.
    let (group, _) = group(&app, 2).await;
    let instances = app.service.instances(Some(&group_id(&group)), None, None).await.unwrap();
    let stored = app.service.engine.store().instance_get(&instances[0].id).await.unwrap().unwrap();
    let mut seen = stored.value.clone();
    seen.health_status = rollscale_core::domain::HealthStatus::Unhealthy;
    seen.observed = Some(rollscale_core::health::Observed {
        exists: true,
        running: false,
        image_id: "img-elsewhere".into(),
        packages: Vec::new(),
        containers: vec![("web".into(), "nginx:1".into())],
        failed_checks: 2,
        problem: Some("stopped".into()),
        drift: vec!["image: recorded img-old, runs img-elsewhere".into()],
        since: 1_700_000_000_000,
    });
    app.service.engine.store().instance_update(&seen, stored.generation).await.unwrap();
    app.service.engine.store().instances_observed(&[&seen.id], 1_700_000_005_000).await.unwrap();
    let view = ok(&app, "GET", &format!("/v1/instances/{}", seen.id), None).await;
    assert_eq!((view["health_status"].as_str(), view["image_id"].as_str()), (Some("Unhealthy"), Some("img-old")));
    assert_eq!(view["observed_at"], "2023-11-14T22:13:25Z", "{view}");
    assert_eq!(
        view["observed"],
        json!({"exists": true, "running": false, "image_id": "img-elsewhere", "packages": [],
               "containers": [["web", "nginx:1"]], "failed_checks": 2, "problem": "stopped",
               "drift": ["image: recorded img-old, runs img-elsewhere"], "since": "2023-11-14T22:13:20Z"}),
        "{view}"
    );
    let listed = ok(&app, "GET", &format!("/v1/instances?scaling_group_id={group}"), None).await;
    let unseen = listed["items"].as_array().unwrap().iter().find(|i| i["id"] == instances[1].id.as_str()).unwrap();
    assert!(unseen["observed_at"].is_null() && unseen["observed"].is_null(), "never looked at: {unseen}");
}
