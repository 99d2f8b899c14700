//! The Alibaba Cloud RPC API: one endpoint, `/`, with `Action` and `Version` choosing the
//! operation (docs/wire.md). Parsing and signatures are in [`request`] and [`sign`]; the actions of
//! each product in [`oos`], [`ess`], [`ecs`] and [`ram`]; which operation a request is, what it
//! is authorized as and which parameters it takes in [`crate::operations`]; `ClientToken` of the
//! create operations in [`idempotency`]; rendering of domain values in [`render`].

pub mod cms;
pub mod ecs;
pub mod ess;
pub mod idempotency;
pub mod oos;
pub mod ram;
pub mod render;
pub mod request;
pub mod sign;

use crate::error::ApiError;
use crate::{audit, operations, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use request::{Params, RpcRequest};
use rollscale_core::Code;
use rollscale_engine::idempotency::Begin;
use serde_json::Value;
use std::sync::Arc;

/// The axum handler for `/`.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    request_id: Option<axum::Extension<audit::RequestId>>,
    body: Bytes,
) -> Response {
    let request_id = request_id.map_or_else(audit::RequestId::generate, |id| id.0).0;
    let mut draft = audit::Draft::new(rollscale_engine::metrics::Api::Rpc);
    let result = handle_request(&state, &method, &uri, &headers, body.to_vec(), &mut draft).await;
    let (code, status) = match &result {
        Ok(_) => ("Success".to_string(), 200),
        Err(error) => (error.code.as_str().to_string(), error.status().as_u16()),
    };
    audit::record(&state, draft, &code, status, &request_id, peer.map(|peer| peer.0 .0.ip())).await;
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

/// Whether an ACS3 request lists `header` among its signed headers.
fn acs3_signs(request: &RpcRequest, header: &str) -> bool {
    request
        .header("authorization")
        .and_then(|value| sign::parse_acs3_authorization(value).ok())
        .is_some_and(|authorization| authorization.signed_headers.iter().any(|name| name == header))
}

/// `product:Action` as far as a request names it, before it is known to be served.
fn claimed_action(version: Option<&str>, action: Option<&str>) -> String {
    let action = action.unwrap_or_default();
    match version.and_then(|version| operations::find(version, action)) {
        Some(operation) => operation.action.to_string(),
        None => format!("{}:{action}", version.and_then(operations::product_of).unwrap_or("unknown")),
    }
}

async fn handle_request(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Vec<u8>,
    draft: &mut audit::Draft,
) -> Result<Value, ApiError> {
    let header_pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str().to_ascii_lowercase(), v.to_string())))
        .collect();
    let request =
        RpcRequest::from_parts(method.as_str(), uri.path(), uri.query(), header_pairs, body).map_err(ApiError::from)?;
    let params = request.params();
    // What the request claims, for the audit log even when it is not authenticated.
    // (Cut: an unauthenticated sender chooses their length.)
    draft.access_key_id = audit::cut(&claimed_access_key(&request).unwrap_or_default(), 128);
    draft.action = audit::cut(&claimed_action(request.version().as_deref(), request.action().as_deref()), 128);
    draft.request = audit::rpc_parameters(&params);
    let (scheme, caller) = authenticate(state, &request).await?;
    if scheme == sign::Scheme::Acs3 && !request.body.is_empty() && !acs3_signs(&request, "content-type") {
        // The body's hash is signed, but not how it is read: an unsigned content type could be
        // changed so that the body's parameters are silently left out.
        return Err(ApiError::new(
            Code::IncompleteSignature,
            "a request with a body must sign its content-type header (list it in SignedHeaders)",
        ));
    }
    draft.authenticated = true;
    draft.access_key_id.clone_from(&caller);
    // RPC v1 signs parameters, not headers: the action must come from a signed parameter.
    let action = match scheme {
        sign::Scheme::V1 => params.get_nonempty("Action").map(str::to_string),
        sign::Scheme::Acs3 => request.action(),
    }
    .ok_or_else(|| ApiError::new(Code::MissingParameter, "the parameter Action is required"))?;
    let version =
        request.version().ok_or_else(|| ApiError::new(Code::MissingParameter, "the parameter Version is required"))?;
    draft.action = audit::cut(&claimed_action(Some(&version), Some(&action)), 128);
    if operations::product_of(&version).is_none() {
        return Err(ApiError::new(
            Code::InvalidVersion,
            format!(
                "the version \"{version}\" is not served; use 2019-06-01 (OOS), 2014-08-28 or 2022-02-22 (ESS), \
                 2014-05-26 (ECS), 2015-05-01 (RAM)"
            ),
        ));
    }
    let operation = operations::find(&version, &action).ok_or_else(|| {
        ApiError::new(Code::InvalidActionNotFound, format!("the action {action} is not served in version {version}"))
    })?;
    // Authorized on every resource the parameters name, then the parameters are checked.
    let resources = operations::resources(operation.action, &operations::named_in_params(&params));
    draft.resource = resources.join(",");
    for resource in &resources {
        state.service.authorize(&caller, operation.action, resource).await?;
    }
    if let Some(name) = operation.unknown_param(params.iter().map(|(name, _)| name)) {
        let mut takes: Vec<&str> = operation.params.to_vec();
        takes.sort_unstable();
        return Err(ApiError::new(
            Code::InvalidParameter,
            format!(
                "the parameter \"{name}\" is not one that {} takes ({}; `.N` marks a list)",
                operation.name(),
                match takes.is_empty() {
                    true => "it takes none but the common ones".to_string(),
                    false => format!("it takes {}", takes.join(", ")),
                }
            ),
        ));
    }
    let service = &state.service;
    let claim = match params.get_nonempty("ClientToken").filter(|_| operation.idempotent) {
        None => None,
        Some(token) => {
            rollscale_engine::idempotency::check_token(token, "ClientToken")?;
            let fingerprint = idempotency::fingerprint(&params);
            match service.begin_idempotent(&caller, operation.action, token, &fingerprint).await? {
                Begin::Run(claim) => Some(claim),
                Begin::Replay(answer) => return replay(service, operation, &answer).await,
            }
        }
    };
    let host = request.header("host").map(str::to_string);
    let call = dispatch(service.clone(), version, action, params, caller, host);
    match claim {
        None => call.await,
        // The operation and the record of its answer run to their end even if this request
        // is dropped (its client went away).
        Some(claim) => {
            let answer = |result: &Result<Value, ApiError>| result.as_ref().ok().map(Value::to_string);
            service.run_idempotent(claim, call, answer).await
        }
    }
}

/// Runs the action: an owned future, so an idempotent one can run in a task of its own.
async fn dispatch(
    service: rollscale_engine::Service,
    version: String,
    action: String,
    params: Params,
    caller: String,
    host: Option<String>,
) -> Result<Value, ApiError> {
    match version.as_str() {
        oos::VERSION => oos::dispatch(&service, &action, &params).await,
        ram::VERSION => ram::dispatch(&service, &caller, &action, &params).await,
        cms::VERSION => cms::dispatch(&service, &action, &params).await,
        ess::VERSION_2014 | ess::VERSION_2022 => ess::dispatch(&service, &version, &action, &params).await,
        _ => ecs::dispatch(&service, &action, &params, host.as_deref()).await,
    }
}

/// The answer a token's first request got: as recorded, but for StartExecution the execution
/// as it stands now.
async fn replay(
    service: &rollscale_engine::Service,
    operation: &operations::Operation,
    answer: &str,
) -> Result<Value, ApiError> {
    let recorded: Value = serde_json::from_str(answer).map_err(|error| {
        tracing::error!(%error, "a ClientToken record is not JSON");
        ApiError::internal()
    })?;
    if operation.action == "oos:StartExecution" {
        // Records made before whole answers were kept hold just the id.
        let id = recorded["ExecutionId"].as_str().or_else(|| recorded["Execution"]["ExecutionId"].as_str());
        return oos::execution_answer(service, &crate::values::execution_id(id.unwrap_or_default())?).await;
    }
    Ok(recorded)
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
    let verified = sign::verify(request, &lookup, chrono::Utc::now(), max_skew).map_err(ApiError::from)?;
    // Checked once the signature is: only the key's holder learns that it is disabled.
    if key.as_ref().is_some_and(|key| key.status != rollscale_core::domain::AccessKeyStatus::Active) {
        let message = format!("the AccessKey {} is disabled (Inactive)", verified.access_key_id);
        return Err(ApiError::new(Code::InvalidAccessKeyIdInactive, message));
    }
    if let Some(nonce) = verified.nonce.as_deref().filter(|n| !n.is_empty()) {
        let key = format!("{}:{nonce}", verified.access_key_id);
        if !state.service.use_nonce(&key, state.auth.max_skew * 2).await.map_err(ApiError::from)? {
            return Err(ApiError::new(Code::SignatureNonceUsed, "the request's signature nonce was used before"));
        }
    }
    state.throttle(&verified.access_key_id)?;
    Ok((verified.scheme, verified.access_key_id))
}

/// A required parameter.
pub(crate) fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    params.required(name).map_err(ApiError::from)
}

/// Offset-based paging: `NextToken` is the offset of the next page.
pub(crate) fn page(params: &Params, size_name: &str, default: i64, max: i64) -> Result<(i64, i64), ApiError> {
    let size = params.i64(size_name).map_err(ApiError::from)?.unwrap_or(default);
    if !(1..=max).contains(&size) {
        return Err(ApiError::new(Code::InvalidParameter, format!("{size_name} must be from 1 to {max}")));
    }
    let offset = match params.get_nonempty("NextToken") {
        None => 0,
        Some(token) => token
            .parse::<i64>()
            .ok()
            .filter(|offset| *offset >= 0)
            .ok_or_else(|| ApiError::new(Code::InvalidParameter, "NextToken is not a token this service gave"))?,
    };
    Ok((offset, size))
}

pub(crate) fn list(params: &Params, name: &str) -> Result<Vec<String>, ApiError> {
    params.list(name).map_err(ApiError::from)
}

/// A reply of `rollscale_client::wire`'s types as the JSON answered. (Writing them cannot fail:
/// their maps have text keys; a failure would be logged and answered as an internal error.)
pub(crate) fn reply<T: serde::Serialize>(reply: &T) -> Result<Value, ApiError> {
    serde_json::to_value(reply).map_err(|error| {
        tracing::error!(%error, "a reply could not be written as JSON");
        ApiError::internal()
    })
}
