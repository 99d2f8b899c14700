//! The server's fixtures: a service on a fresh store with an administrator's AccessKey, the
//! router over it and requests signed as the official SDKs sign them ([`Api`]), and the whole
//! server on a loopback port ([`spawn_app`]).

use crate::engine::Harness;
use axum::body::Body;
use axum::http::Request;
use rollscale_core::domain::{AccessKey, AccessKeyStatus};
use rollscale_engine::{EngineConfig, Service};
use rollscale_fleet::sim::{SimConfig, SimFleet};
use rollscale_server::rest::auth::make_token;
use rollscale_server::rpc::sign;
use rollscale_server::{router, AuthConfig};
use serde_json::Value;
use std::time::Duration;

/// A service on SQLite in a temporary directory, over the simulated fleet (each call taking
/// `latency_ms`) and a load balancer that checks no backend, with an AccessKey of the given id
/// and secret (its user gets AdministratorAccess, as a key without a user does). Returns the
/// directory its database lives in (removed when dropped).
pub async fn service(key_id: &str, secret: &str, latency_ms: u64) -> (Service, tempfile::TempDir) {
    service_over(key_id, secret, SimFleet::new(SimConfig { latency_ms, ..SimConfig::default() })).await
}

/// [`service`] over the given simulated fleet (which a test may then make faulty).
pub async fn service_over(key_id: &str, secret: &str, fleet: SimFleet) -> (Service, tempfile::TempDir) {
    let config = EngineConfig { health_poll: Duration::from_millis(5), ..EngineConfig::default() };
    let Harness { service, store, dir, .. } =
        Harness::builder().fleet(fleet).config(config).unchecked_load_balancer().build().await;
    store
        .access_key_insert_bootstrap(&AccessKey {
            id: key_id.into(),
            secret: secret.into(),
            user_name: "admin".into(),
            status: AccessKeyStatus::Active,
            created_at: 0,
            tokens_not_before: 0,
        })
        .await
        .expect("the administrator's AccessKey");
    (service, dir)
}

/// A bearer token of the AccessKey, valid for ten minutes.
pub fn token(key_id: &str, secret: &str) -> String {
    make_token(key_id, secret, chrono::Utc::now().timestamp() + 600)
}

/// The router over a fresh [`service`] (no fleet latency), and the administrator's AccessKey
/// and token: what the server's tests send their requests through.
pub struct Api {
    pub router: axum::Router,
    pub service: Service,
    pub key_id: String,
    pub secret: String,
    /// A bearer token of the key ([`token`]).
    pub token: String,
    /// The database's directory, removed when dropped.
    pub dir: tempfile::TempDir,
}

impl Api {
    pub async fn new(key_id: &str, secret: &str) -> Api {
        Api::with(key_id, secret, 0, AuthConfig::default()).await
    }

    /// With fleet calls taking `latency_ms`, and the router checking requests by `auth`.
    pub async fn with(key_id: &str, secret: &str, latency_ms: u64, auth: AuthConfig) -> Api {
        let (service, dir) = service(key_id, secret, latency_ms).await;
        Api {
            router: router(service.clone(), auth),
            service,
            key_id: key_id.to_string(),
            secret: secret.to_string(),
            token: token(key_id, secret),
            dir,
        }
    }

    /// An RPC call signed with the administrator's key ([`rpc_request`]): status and body.
    pub async fn rpc(&self, version: &str, action: &str, params: &[(&str, &str)]) -> (u16, Value) {
        send(&self.router, rpc_request(&self.key_id, &self.secret, version, action, params)).await
    }

    /// A REST call with the administrator's token ([`rest_request`]): status and body.
    pub async fn rest(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        send(&self.router, rest_request(&self.token, method, path, body)).await
    }
}

/// An RPC request signed with RPC v1 (HMAC-SHA1), its parameters in the query: `Action`,
/// `Version` and `extra`.
pub fn rpc_request(key_id: &str, secret: &str, version: &str, action: &str, extra: &[(&str, &str)]) -> Request<Body> {
    let mut params: Vec<(String, String)> = vec![("Action".into(), action.into()), ("Version".into(), version.into())];
    params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let timestamp = sign::format_timestamp(chrono::Utc::now());
    sign::sign_v1_params("POST", &mut params, key_id, secret, &timestamp, &sign::random_nonce());
    let query: Vec<String> =
        params.iter().map(|(k, v)| format!("{}={}", sign::percent_encode(k), sign::percent_encode(v))).collect();
    Request::post(format!("/?{}", query.join("&"))).body(Body::empty()).expect("a request")
}

/// A REST request with a bearer token and, maybe, a JSON body.
pub fn rest_request(token: &str, method: &str, path: &str, body: Option<&Value>) -> Request<Body> {
    let mut request = Request::builder()
        .method(method.to_ascii_uppercase().as_str())
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    request.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).expect("a request")
}

/// Sends a request through the router: the status and the JSON body (the test fails when
/// the body is not JSON).
pub async fn send(router: &axum::Router, request: Request<Body>) -> (u16, Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response = router.clone().oneshot(request).await.expect("the router answers");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("the body").to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"));
    (status, body)
}

/// The server on a loopback port: a fresh store, the simulated fleet and a load balancer that
/// checks it (as `rollscale up` builds them), an administrator's AccessKey as `up` makes one, and the router served as `up` serves it (the peer's
/// address reaching the audit log). It stops when dropped.
pub struct SpawnedApp {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    pub key_id: String,
    pub secret: String,
    /// A bearer token of the key ([`token`]).
    pub token: String,
    pub service: Service,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

/// Serves the API and the console on 127.0.0.1 (a free port) until the [`SpawnedApp`] is
/// dropped. Needs a Tokio runtime.
pub async fn spawn_app() -> SpawnedApp {
    let Harness { service, dir, .. } = Harness::builder().build().await;
    let key = service.create_admin_access_key("admin").await.expect("the administrator's AccessKey");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("the listener's address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(service.clone(), AuthConfig::default());
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        rollscale_server::serve(listener, app, shutdown).await.expect("the server serves");
    });
    SpawnedApp {
        base_url: format!("http://{address}"),
        token: token(&key.id, &key.secret),
        key_id: key.id,
        secret: key.secret,
        service,
        stop: Some(stop),
        _dir: dir,
    }
}

impl Drop for SpawnedApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
