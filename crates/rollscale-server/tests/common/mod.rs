//! What the server's integration tests share: a service on SQLite in a temporary directory,
//! over the simulated fleet, with an AccessKey of the given id and secret (its user gets
//! AdministratorAccess, as a key without a user does).
#![allow(dead_code)] // each test binary uses part of it

use rollscale_core::domain::{AccessKey, AccessKeyStatus};
use rollscale_engine::{Engine, EngineConfig, Service};
use rollscale_fleet::sim::{SimConfig, SimFleet, SimLbConfig, SimLoadBalancer};
use rollscale_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// The service, and the directory its database lives in (removed when dropped).
pub async fn service(key_id: &str, secret: &str, latency_ms: u64) -> (Service, tempfile::TempDir) {
    service_over(key_id, secret, SimFleet::new(SimConfig { latency_ms, ..SimConfig::default() })).await
}

/// The same over the given simulated fleet (which a test may then make faulty).
pub async fn service_over(key_id: &str, secret: &str, fleet: SimFleet) -> (Service, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("test.db").display())).await.unwrap();
    store
        .access_key_insert_bootstrap(&AccessKey {
            id: key_id.into(),
            secret: secret.into(),
            user_name: "admin".into(),
            status: AccessKeyStatus::Active,
            created_at: 0,
        })
        .await
        .unwrap();
    let config = EngineConfig { health_poll: Duration::from_millis(5), ..EngineConfig::default() };
    let engine = Engine::new(store, Arc::new(fleet), Arc::new(SimLoadBalancer::new(SimLbConfig::default())), config);
    (Service::new(engine), dir)
}

/// An RPC request signed with RPC v1 (HMAC-SHA1), its parameters in the query.
pub fn rpc_request(
    key_id: &str,
    secret: &str,
    version: &str,
    action: &str,
    extra: &[(&str, &str)],
) -> axum::http::Request<axum::body::Body> {
    use rollscale_server::rpc::sign;
    let mut params: Vec<(String, String)> = vec![("Action".into(), action.into()), ("Version".into(), version.into())];
    params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let timestamp = sign::format_timestamp(chrono::Utc::now());
    sign::sign_v1_params("POST", &mut params, key_id, secret, &timestamp, &sign::random_nonce());
    let query: Vec<String> =
        params.iter().map(|(k, v)| format!("{}={}", sign::percent_encode(k), sign::percent_encode(v))).collect();
    axum::http::Request::post(format!("/?{}", query.join("&"))).body(axum::body::Body::empty()).unwrap()
}

/// A REST request with a bearer token and, maybe, a JSON body.
pub fn rest_request(
    token: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> axum::http::Request<axum::body::Body> {
    let mut request = axum::http::Request::builder()
        .method(method.to_ascii_uppercase().as_str())
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    request.body(body.map(|b| axum::body::Body::from(b.to_string())).unwrap_or_else(axum::body::Body::empty)).unwrap()
}

/// Sends a request through the router: the status and the JSON body.
pub async fn send(router: &axum::Router, request: axum::http::Request<axum::body::Body>) -> (u16, serde_json::Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"));
    (status, body)
}
