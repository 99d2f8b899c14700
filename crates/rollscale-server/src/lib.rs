//! rollscale's HTTP surface: the Alibaba Cloud RPC API on `/` (OOS 2019-06-01, ESS
//! 2014-08-28 and 2022-02-22, ECS 2014-05-26, RAM 2015-05-01) and the REST API under `/v1`
//! ([`rest`]), both over the engine's `Service`, with one table of their operations
//! ([`operations`]) and one audit log writer ([`audit`]); the web console under
//! `/console/` ([`console`]), static files that call the REST API; and `/metrics`
//! ([`metrics`]), the figures in Prometheus' text format.
//!
//! Architecture invariant: this is the only crate that serves HTTP. Handlers parse and
//! authenticate a request, call the engine's `Service`, and render its answer or error in the
//! wire format of `docs/wire.md`. No domain rule lives here.

pub mod audit;
pub mod connection;
pub mod console;
pub mod error;
pub mod metrics;
pub mod operations;
pub mod rest;
pub mod rpc;
pub mod starts;
pub mod values;

use axum::routing::{any, get};
use axum::Router;
use rollscale_core::Code;
use rollscale_engine::Service;
use std::sync::Arc;
use std::time::Duration;

/// How requests are authenticated.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Requests whose timestamp is further than this from now are refused.
    pub max_skew: Duration,
    /// Requests per second each AccessKey may make, on average, with bursts of twice that;
    /// beyond, `Throttling.User` (HTTP 429). `None`: no limit.
    pub rate_per_key: Option<u32>,
    /// The longest a REST session lasts: a bearer token is refused once this long has passed
    /// since its session began (the token made from the secret), and `POST /v1/tokens` renews
    /// one no further.
    pub token_max_session: Duration,
}

/// The default of [`AuthConfig::token_max_session`]: 24 hours, the longest lifetime a token may
/// be asked for.
pub const TOKEN_MAX_SESSION: Duration = Duration::from_secs(24 * 3600);

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { max_skew: Duration::from_secs(15 * 60), rate_per_key: None, token_max_session: TOKEN_MAX_SESSION }
    }
}

/// The server's stop, as its long-lived answers see it: once begun, each rolling update's
/// event stream sends a last `shutdown` event and ends, and each long poll (`?wait=`) answers
/// at once with the task as it stands, so that a graceful shutdown of the HTTP server (which
/// waits for the answers under way) is not held up by them. Clones share it.
#[derive(Clone, Debug)]
pub struct Shutdown(tokio::sync::watch::Sender<bool>);

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown(tokio::sync::watch::Sender::new(false))
    }

    /// Begins the stop (again: nothing more).
    pub fn begin(&self) {
        self.0.send_replace(true);
    }

    pub fn has_begun(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop has begun (at once if it has).
    pub async fn begun(&self) {
        let mut begun = self.0.subscribe();
        // It cannot fail: `self` holds the sender.
        let _ = begun.wait_for(|begun| *begun).await;
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

pub struct AppState {
    pub service: Service,
    pub auth: AuthConfig,
    /// Ends the long-lived answers when the server stops.
    pub shutdown: Shutdown,
    /// Each AccessKey's token bucket: (tokens left, when last filled).
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
    /// How many unauthenticated refusals each source address may have recorded.
    failures: audit::FailureLimiter,
}

impl AppState {
    /// Takes one request from the AccessKey's bucket, or says how long until one is there.
    pub(crate) fn throttle(&self, access_key_id: &str) -> Result<(), error::ApiError> {
        let Some(rate) = self.auth.rate_per_key.filter(|rate| *rate > 0) else { return Ok(()) };
        let (rate, burst) = (f64::from(rate), f64::from(rate) * 2.0);
        let now = std::time::Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > 100_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = buckets.entry(access_key_id.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait_ms = (((1.0 - *tokens) / rate) * 1000.0).ceil().max(1.0) as u64;
        Err(error::ApiError::new(
            Code::ThrottlingUser,
            format!("more than {rate} requests a second with this AccessKey; try again in {wait_ms} ms"),
        )
        .with_retry_after(wait_ms))
    }
}

/// The service's HTTP routes.
pub fn router(service: Service, auth: AuthConfig) -> Router {
    router_with_shutdown(service, auth, Shutdown::new())
}

/// [`router`], whose event streams and long polls end when `shutdown` begins.
pub fn router_with_shutdown(service: Service, auth: AuthConfig, shutdown: Shutdown) -> Router {
    let state =
        Arc::new(AppState { service, auth, shutdown, buckets: Default::default(), failures: Default::default() });
    Router::new()
        .route("/", any(rpc::handle))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::handle))
        .merge(rest::router(state.clone()))
        .merge(console::router())
        .layer(axum::middleware::from_fn(error::json_refusals))
        .layer(axum::middleware::from_fn(audit::request_span))
        .with_state(state)
}

/// How long `/readyz` waits for the store before answering that the service is not ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `/readyz`, the readiness probe, unauthenticated like `/healthz` (which only says that the
/// process serves HTTP): 200 `{"status":"ready"}` when the store answers a trivial query within
/// [`READY_TIMEOUT`]; else 503 `ServiceUnavailable` in the JSON error shape, the cause logged
/// and not shown.
async fn readyz(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let not_ready = match tokio::time::timeout(READY_TIMEOUT, state.service.ready()).await {
        Ok(Ok(())) => return axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        Ok(Err(error)) => {
            let what = match error {
                rollscale_engine::ServiceError::Fleet(_) => "the fleet",
                _ => "the store",
            };
            tracing::warn!(error = %error, source = ?std::error::Error::source(&error), "not ready: {what} failed");
            format!("not ready: {what} failed; see the service log")
        }
        Err(_) => {
            tracing::warn!("not ready: the store or the fleet did not answer within {} s", READY_TIMEOUT.as_secs());
            format!("not ready: the store or the fleet did not answer within {} s", READY_TIMEOUT.as_secs())
        }
    };
    error::ApiError::new(Code::ServiceUnavailable, not_ready).into_response()
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer's address goes to the audit log, as `ConnectInfo<SocketAddr>`; the connections
    // answer hyper's own refusals in the JSON error shape (`connection.rs`).
    let make = move |incoming: axum::serve::IncomingStream<'_, connection::Listener>| {
        let peer = axum::extract::ConnectInfo(*incoming.remote_addr());
        let service = router.clone().layer(axum::Extension(peer));
        std::future::ready(Ok::<_, std::convert::Infallible>(service))
    };
    axum::serve(connection::Listener(listener), tower::service_fn(make)).with_graceful_shutdown(shutdown).await
}
