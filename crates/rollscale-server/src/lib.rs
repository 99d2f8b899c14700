//! rollscale's HTTP surface: the Alibaba Cloud RPC API on `/` (OOS 2019-06-01, ESS
//! 2014-08-28 and 2022-02-22) and the REST API under `/v1` ([`rest`]), both over the engine's
//! `Service`.
//!
//! Architecture invariant: this is the only crate that knows HTTP. Handlers parse and
//! authenticate a request, call the engine's `Service`, and render its answer or error in the
//! wire format of `shared/compat/WIRE.md`. No domain rule lives here.

pub mod error;
pub mod rest;
pub mod rpc;

use axum::routing::{any, get};
use axum::Router;
use rollscale_engine::Service;
use std::sync::Arc;
use std::time::Duration;

/// How requests are authenticated.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Requests whose timestamp is further than this from now are refused.
    pub max_skew: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { max_skew: Duration::from_secs(15 * 60) }
    }
}

pub struct AppState {
    pub service: Service,
    pub auth: AuthConfig,
}

/// The service's HTTP routes.
pub fn router(service: Service, auth: AuthConfig) -> Router {
    let state = Arc::new(AppState { service, auth });
    Router::new()
        .route("/", any(rpc::handle))
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(rest::router(state.clone()))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
