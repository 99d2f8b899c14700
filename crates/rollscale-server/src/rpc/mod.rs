//! The Alibaba Cloud RPC API: one endpoint, `/`, with `Action` and `Version` choosing the
//! operation (WIRE.md). Parsing and signatures are in [`request`] and [`sign`]; the actions of
//! each product in [`oos`] and [`ess`]; `ClientToken` idempotency of the create operations in
//! [`idempotency`]; rendering of domain values in [`render`].

pub mod ecs;
pub mod ess;
pub mod idempotency;
pub mod oos;
pub mod ram;
pub mod render;
pub mod request;
pub mod sign;

use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use request::{Params, RpcRequest};
use serde_json::Value;
use std::sync::Arc;

/// The axum handler for `/`.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string().to_uppercase();
    let mut audit = None;
    let result = handle_request(&state, &method, &uri, &headers, body.to_vec(), &mut audit).await;
    ram::record(&state, audit, &result, &request_id, peer.map(|peer| peer.0 .0.ip())).await;
    match result {
        Ok(mut value) => {
            if let Value::Object(map) = &mut value {
                map.insert("RequestId".into(), Value::String(request_id));
            }
            ([(header::CONTENT_TYPE, "application/json;charset=utf-8")], value.to_string()).into_response()
        }
        Err(error) => {
            tracing::debug!(code = %error.code, message = %error.message, "request refused");
            error.with_request_id(&request_id).into_response()
        }
    }
}

async fn handle_request(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Vec<u8>,
    audit: &mut Option<ram::AuditDraft>,
) -> Result<Value, ApiError> {
    let header_pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str().to_ascii_lowercase(), v.to_string())))
        .collect();
    let request = RpcRequest::from_parts(method.as_str(), uri.path(), uri.query(), header_pairs, body)
        .map_err(|error| ApiError::new(error.http_status(), error.code(), error.to_string()))?;
    let (scheme, caller) = authenticate(state, &request).await?;
    let params = request.params();
    // RPC v1 signs parameters, not headers: the action must come from a signed parameter.
    let action = match scheme {
        sign::Scheme::V1 => params.get_nonempty("Action").map(str::to_string),
        sign::Scheme::Acs3 => request.action(),
    }
    .ok_or_else(|| ApiError::new(400, "MissingParameter", "the parameter Action is required"))?;
    let version =
        request.version().ok_or_else(|| ApiError::new(400, "MissingParameter", "the parameter Version is required"))?;
    ram::authorize(state, &caller, &version, &action, &params, audit).await?;
    let service = &state.service;
    match version.as_str() {
        oos::VERSION => oos::dispatch(service, &caller, &action, &params).await,
        ram::VERSION => ram::dispatch(service, &caller, &action, &params).await,
        ess::VERSION_2014 | ess::VERSION_2022 => ess::dispatch(service, &caller, &version, &action, &params).await,
        ecs::VERSION => ecs::dispatch(service, &caller, &action, &params).await,
        other => Err(ApiError::new(
            400,
            "InvalidVersion",
            format!(
                "the version \"{other}\" is not served; use 2019-06-01 (OOS), 2014-08-28 or 2022-02-22 (ESS), \
                 2014-05-26 (ECS)"
            ),
        )),
    }
}

/// The AccessKey id a request claims, by either signature scheme.
fn claimed_access_key(request: &RpcRequest) -> Option<String> {
    if let Some(authorization) = request.header("authorization") {
        let (_, rest) = authorization.split_once(' ')?;
        return rest
            .split(',')
            .filter_map(|part| part.trim().split_once('='))
            .find(|(name, _)| *name == "Credential")
            .map(|(_, value)| value.to_string());
    }
    request.params().get("AccessKeyId").map(str::to_string)
}

/// Every request is signed with a known, active AccessKey, fresh, and not replayed. Returns the
/// scheme and the AccessKey id (the caller).
pub(crate) async fn authenticate(state: &AppState, request: &RpcRequest) -> Result<(sign::Scheme, String), ApiError> {
    let key = match claimed_access_key(request) {
        Some(id) => state.service.signing_key(&id).await.map_err(ApiError::from)?,
        None => None,
    };
    let lookup = |id: &str| key.as_ref().filter(|key| key.id == id).map(|key| key.secret.clone());
    let max_skew = chrono::Duration::from_std(state.auth.max_skew).unwrap_or(chrono::Duration::minutes(15));
    let verified = sign::verify(request, &lookup, chrono::Utc::now(), max_skew)
        .map_err(|error| ApiError::new(error.http_status(), error.code(), error.to_string()))?;
    // Checked once the signature is: only the key's holder learns that it is disabled.
    if key.as_ref().is_some_and(|key| key.status != rollscale_core::domain::AccessKeyStatus::Active) {
        let message = format!("the AccessKey {} is disabled (Inactive)", verified.access_key_id);
        return Err(ApiError::new(403, "InvalidAccessKeyId.Inactive", message));
    }
    if let Some(nonce) = verified.nonce.as_deref().filter(|n| !n.is_empty()) {
        let key = format!("{}:{nonce}", verified.access_key_id);
        if !state.service.use_nonce(&key, state.auth.max_skew * 2).await.map_err(ApiError::from)? {
            return Err(ApiError::new(400, "SignatureNonceUsed", "the request's signature nonce was used before"));
        }
    }
    state.throttle(&verified.access_key_id)?;
    Ok((verified.scheme, verified.access_key_id))
}

/// A required parameter.
pub(crate) fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    params.required(name).map_err(|error| ApiError::new(error.http_status(), error.code(), error.to_string()))
}

/// Offset-based paging: `NextToken` is the offset of the next page.
pub(crate) fn page(params: &Params, size_name: &str, default: i64, max: i64) -> Result<(i64, i64), ApiError> {
    let size =
        params.i64(size_name).map_err(|error| ApiError::new(400, error.code(), error.to_string()))?.unwrap_or(default);
    if !(1..=max).contains(&size) {
        return Err(ApiError::new(400, "InvalidParameter", format!("{size_name} must be from 1 to {max}")));
    }
    let offset = match params.get_nonempty("NextToken") {
        None => 0,
        Some(token) => token
            .parse::<i64>()
            .ok()
            .filter(|offset| *offset >= 0)
            .ok_or_else(|| ApiError::new(400, "InvalidParameter", "NextToken is not a token this service gave"))?,
    };
    Ok((offset, size))
}

pub(crate) fn list(params: &Params, name: &str) -> Result<Vec<String>, ApiError> {
    params.list(name).map_err(|error| ApiError::new(400, error.code(), error.to_string()))
}
