//! Who calls the REST API: an ACS3-HMAC-SHA256 signature (verified exactly as the RPC API
//! verifies one, nonce and clock skew included), or a bearer token made from an AccessKey.
//!
//! A token is `rs2.<AccessKey id>.<session start>.<expiry>.<hex HMAC-SHA256 of the part before
//! it, keyed with the AccessKey secret>` (`rollscale_client::token`, times in Unix
//! milliseconds). Anyone holding the secret can make one (`rollscale token`), and the server
//! checks it without storing it: deleting the key revokes every token made from it, disabling it
//! revokes for good every token whose session began before (the key's `tokens_not_before`), and
//! no token is accepted once its session is older than `AuthConfig::token_max_session`, however
//! it was renewed.

use super::State as AppStateRef;
use crate::error::ApiError;
use crate::rpc::request::RpcRequest;
use crate::{audit, operations};
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rollscale_client::token::{self, Token};
pub use rollscale_client::token::{make_session_token, make_token};
use rollscale_core::domain::{AccessKeyStatus, Millis};
use rollscale_core::Code;
use rollscale_engine::idempotency::Begin;
use std::net::SocketAddr;

/// The caller of a request, put into the request's extensions once authenticated.
#[derive(Clone, Debug)]
pub struct Caller {
    pub access_key_id: String,
    /// The action the call is authorized as (`ess:DescribeScalingGroups`, …).
    pub action: &'static str,
    /// When the session of the caller's bearer token began (Unix milliseconds); `None` for a
    /// signed request, which proves the secret now.
    pub session_start: Option<Millis>,
}

/// Most bytes of a REST request body.
const MAX_BODY: usize = 1024 * 1024;

/// Verifies a bearer token: the AccessKey id it was made with and when its session began.
async fn bearer(state: &crate::AppState, text: &str) -> Result<(String, Millis), ApiError> {
    let invalid = || ApiError::new(Code::InvalidToken, "the bearer token is not one this service made");
    let text = text.trim();
    if token::is_retired_format(text) {
        return Err(ApiError::new(
            Code::InvalidToken,
            "the bearer token is of the rs1 format of an earlier rollscale, which is no longer taken; \
             make a new one (`rollscale token`, or sign in again)",
        ));
    }
    let token = Token::parse(text).ok_or_else(invalid)?;
    let key = state.service.signing_key(token.access_key_id).await?.ok_or_else(invalid)?;
    if !token.signed_with(&key.secret) {
        return Err(invalid());
    }
    if key.status != AccessKeyStatus::Active {
        return Err(ApiError::new(Code::InvalidToken, "the bearer token's AccessKey is disabled"));
    }
    check_token(&token, key.tokens_not_before, state.service.token_time(), &state.auth)?;
    Ok((token.access_key_id.to_string(), token.session_start))
}

/// What a token made with its key's secret must also be, `now`: of a session that began after
/// the key was last disabled (`not_before`), not in the future (beyond the signatures' skew),
/// nor longer ago than the maximum session age, and not expired.
fn check_token(token: &Token, not_before: Millis, now: Millis, auth: &crate::AuthConfig) -> Result<(), ApiError> {
    if token.session_start <= not_before {
        return Err(ApiError::new(
            Code::InvalidToken,
            "the bearer token was made before its AccessKey was last disabled, which revoked it for good; \
             make a new one",
        ));
    }
    if token.session_start > now.saturating_add(auth.max_skew.as_millis() as Millis) {
        return Err(ApiError::new(
            Code::InvalidToken,
            "the bearer token's session begins in the future; check the clock of the machine that made it",
        ));
    }
    let max_session = auth.token_max_session.as_millis() as Millis;
    if now.saturating_sub(token.session_start) > max_session {
        return Err(ApiError::new(
            Code::TokenExpired,
            format!(
                "the bearer token's session began more than {} s ago, the longest a session lasts; \
                 make a new token from the AccessKey",
                auth.token_max_session.as_secs()
            ),
        ));
    }
    if token.expires < now {
        return Err(ApiError::new(Code::TokenExpired, "the bearer token has expired; make a new one"));
    }
    Ok(())
}

/// The middleware of every authenticated route: authenticates, authorizes the route's
/// operation on the resources its parameters name, refuses query parameters the route does
/// not take, runs an idempotent create once per `Idempotency-Key`, and writes the call to the
/// audit log whatever happened, unauthenticated refusals included.
pub async fn require(
    State((state, route)): State<(AppStateRef, &'static super::Route)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let request_id = audit::RequestId::of(&parts.extensions);
    let source_ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    let mut draft = audit::Draft {
        access_key_id: claimed_access_key(&parts.headers),
        action: route.action.to_string(),
        ..audit::Draft::new(rollscale_engine::metrics::Api::Rest)
    };
    let response = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            draft.request = audit_request(&parts, &bytes);
            serve(&state, route, parts, bytes, next, &mut draft).await
        }
        Err(_) => {
            draft.request = audit_request(&parts, b"");
            Err(ApiError::new(Code::InvalidBodyTooLarge, format!("the body is larger than {MAX_BODY} bytes")))
        }
    };
    let response = response.unwrap_or_else(|error| error.with_request_id(&request_id).into_response());
    let (response, result_code) = result_code(response).await;
    audit::record(&state, draft, &result_code, response.status().as_u16(), &request_id, source_ip).await;
    response
}

/// The AccessKey id a request claims: a bearer token's, or an ACS3 signature's `Credential`.
fn claimed_access_key(headers: &axum::http::HeaderMap) -> String {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else { return String::new() };
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            token::claimed_access_key_id(token.trim()).map(|key| audit::cut(key, 128)).unwrap_or_default()
        }
        Some((_, rest)) => rest
            .split(',')
            .filter_map(|part| part.trim().split_once('='))
            .find(|(name, _)| *name == "Credential")
            .map(|(_, value)| audit::cut(value, 128))
            .unwrap_or_default(),
        None => String::new(),
    }
}

async fn serve(
    state: &AppStateRef,
    route: &'static super::Route,
    mut parts: axum::http::request::Parts,
    bytes: axum::body::Bytes,
    next: Next,
    draft: &mut audit::Draft,
) -> Result<Response, ApiError> {
    let (access_key_id, session_start) = authenticate(state, &parts, &bytes).await?;
    draft.authenticated = true;
    draft.access_key_id.clone_from(&access_key_id);
    // The route's operation, on the resources its parameters name, as the RPC API decides
    // them (`crate::operations`).
    let body: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let action = match route.action_by {
        None => route.action,
        Some((field, choices)) => {
            let chosen = body.as_ref().and_then(|body| body[field].as_str());
            choices.iter().find(|(value, _)| Some(*value) == chosen).map_or(route.action, |(_, action)| action)
        }
    };
    draft.action = action.to_string();
    let named = named(route, parts.uri.path(), parts.uri.query().unwrap_or_default(), body.as_ref());
    let resources = operations::resources(action, &named);
    draft.resource = resources.join(",");
    // A token is made from the caller's own key and grants nothing more: anyone may make one.
    if route.path != "/v1/tokens" {
        for resource in &resources {
            state.service.authorize(&access_key_id, action, resource).await?;
        }
    }
    let query = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes());
    for (name, _) in query {
        if !route.query.iter().any(|(known, _)| *known == name) {
            let known: Vec<&str> = route.query.iter().map(|(known, _)| *known).collect();
            let message = match known.is_empty() {
                true => format!("the query parameter \"{name}\" is not one this route takes (it takes none)"),
                false => format!("the query parameter \"{name}\" is not one of {}", known.join(", ")),
            };
            return Err(ApiError::new(Code::InvalidParameter, message));
        }
    }
    let claim = match parts.headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => {
            if !super::idempotent(route) {
                return Err(ApiError::new(
                    Code::InvalidParameter,
                    format!("the {IDEMPOTENCY_KEY} header is taken by the create operations only, not by {action}"),
                ));
            }
            let token = value.to_str().unwrap_or("\u{0}");
            rollscale_engine::idempotency::check_token(token, "Idempotency-Key")?;
            let fingerprint = fingerprint(&parts, &bytes, body.as_ref());
            match state.service.begin_idempotent(&access_key_id, action, token, &fingerprint).await? {
                Begin::Run(claim) => Some(claim),
                Begin::Replay(answer) => {
                    return Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], answer).into_response())
                }
            }
        }
    };
    parts.extensions.insert(Caller { access_key_id, action, session_start });
    let request = Request::from_parts(parts, Body::from(bytes));
    let Some(claim) = claim else { return Ok(next.run(request).await) };
    // The handler, its whole answer and the record of it run to their end even if this
    // request is dropped (its client went away). A refused create gives its key back.
    let call = async move {
        let (parts, body) = next.run(request).await.into_parts();
        (parts, to_bytes(body, MAX_BODY).await.unwrap_or_default())
    };
    let answer = |(parts, body): &(axum::http::response::Parts, axum::body::Bytes)| {
        parts.status.is_success().then(|| String::from_utf8_lossy(body).into_owned())
    };
    let (parts, body) = state.service.run_idempotent(claim, call, answer).await;
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// The header that makes a REST create idempotent (the RPC API's `ClientToken`).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What a REST request asks for: method, path, query and its JSON body (canonical: keys
/// sorted), to tell a retry from another request with the same key.
fn fingerprint(parts: &axum::http::request::Parts, bytes: &[u8], body: Option<&serde_json::Value>) -> String {
    use sha2::{Digest, Sha256};
    let body = match body {
        Some(value) => value.to_string(),
        None => String::from_utf8_lossy(bytes).into_owned(),
    };
    let mut hasher = Sha256::new();
    for part in [parts.method.as_str(), parts.uri.path(), parts.uri.query().unwrap_or_default(), body.as_str()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("rest:{}", hex::encode(hasher.finalize()))
}

/// Authenticates by bearer token or ACS3 signature: the caller's AccessKey id and, for a
/// token, when its session began.
async fn authenticate(
    state: &AppStateRef,
    parts: &axum::http::request::Parts,
    bytes: &[u8],
) -> Result<(String, Option<Millis>), ApiError> {
    let authorization = parts.headers.get("authorization").and_then(|v| v.to_str().ok());
    match authorization {
        Some(value) if value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer ") => {
            let (key, session_start) = bearer(state, &value[7..]).await?;
            state.throttle(&key)?;
            Ok((key, Some(session_start)))
        }
        Some(_) => {
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str().to_string(), v.to_string())))
                .collect();
            let signed = RpcRequest::from_parts(
                parts.method.as_str(),
                parts.uri.path(),
                parts.uri.query(),
                headers,
                bytes.to_vec(),
            )
            .map_err(ApiError::from)?;
            crate::rpc::authenticate(state, &signed).await.map(|(_, key)| (key, None))
        }
        None => Err(ApiError::new(
            Code::MissingAuthorization,
            "sign the request (ACS3-HMAC-SHA256) or send `Authorization: Bearer <token>` (`rollscale token`)",
        )),
    }
}

/// The resource-naming parameters of a REST call, by their RPC names: each of the route's
/// `names` found as a `{path}` parameter (percent-decoded), a query parameter, or a string (or
/// list of strings) at the top of the JSON body.
fn named(route: &super::Route, path: &str, query: &str, body: Option<&serde_json::Value>) -> operations::Named {
    let template: Vec<&str> = route.path.trim_start_matches('/').split('/').collect();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut named = operations::Named::new();
    for (rest_name, rpc_name) in route.names {
        let Some(rpc_name) = operations::RESOURCE_PARAMS.iter().find(|known| *known == rpc_name) else { continue };
        let placeholder = format!("{{{rest_name}}}");
        let mut values: Vec<String> = Vec::new();
        if let Some(segment) = template.iter().position(|s| *s == placeholder).and_then(|i| segments.get(i)) {
            values.push(percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned());
        }
        let from_query = form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == rest_name);
        values.extend(from_query.map(|(_, v)| v.into_owned()));
        match body.map(|body| &body[*rest_name]) {
            Some(serde_json::Value::String(value)) => values.push(value.clone()),
            Some(serde_json::Value::Array(items)) => {
                values.extend(items.iter().filter_map(|item| item.as_str().map(str::to_string)))
            }
            _ => {}
        }
        values.retain(|value| !value.is_empty());
        if !values.is_empty() {
            named.entry(rpc_name).or_default().extend(values);
        }
    }
    named
}

/// Most characters of a body kept in the audit log.
const MAX_AUDIT_BODY: usize = 2048;

/// What the audit log keeps of a request: method, path, query and the start of its body (the
/// REST API takes no secret in a body; a token or signature is in a header, never kept).
fn audit_request(parts: &axum::http::request::Parts, body: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(body);
    let body = match text.chars().count() > MAX_AUDIT_BODY {
        true => format!("{}…", text.chars().take(MAX_AUDIT_BODY).collect::<String>()),
        false => text.into_owned(),
    };
    serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or_default(),
        "body": body,
    })
}

/// `Success`, or the code of an error response (whose body is read and put back).
async fn result_code(response: Response) -> (Response, String) {
    if response.status().is_success() {
        return (response, "Success".into());
    }
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let code = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|value| value["Code"].as_str().map(str::to_string))
        .unwrap_or_else(|| parts.status.as_u16().to_string());
    (Response::from_parts(parts, Body::from(bytes)), code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn code(token: &str, not_before: Millis, now: Millis, auth: &crate::AuthConfig) -> Option<Code> {
        check_token(&Token::parse(token).expect("a token"), not_before, now, auth).err().map(|error| error.code)
    }

    #[test]
    fn a_token_is_refused_before_the_disable_past_its_session_in_the_future_and_expired() {
        let auth = crate::AuthConfig {
            max_skew: Duration::from_secs(1),
            token_max_session: Duration::from_secs(10),
            ..crate::AuthConfig::default()
        };
        let token = make_session_token("LTAIk", "s", 100_000, 105_000);
        assert_eq!(code(&token, 0, 100_000, &auth), None);
        assert_eq!(code(&token, 99_999, 104_000, &auth), None, "made after the last disable");
        assert_eq!(code(&token, 100_000, 104_000, &auth), Some(Code::InvalidToken), "made at the disable");
        assert_eq!(code(&token, 100_500, 104_000, &auth), Some(Code::InvalidToken), "made before it");
        assert_eq!(code(&token, 0, 98_999, &auth), Some(Code::InvalidToken), "beyond the skew in the future");
        assert_eq!(code(&token, 0, 99_000, &auth), None, "within it");
        assert_eq!(code(&token, 0, 105_000, &auth), None, "until its expiry");
        assert_eq!(code(&token, 0, 105_001, &auth), Some(Code::TokenExpired));
        // However late its expiry, a session ends after its maximum age.
        let renewed = make_session_token("LTAIk", "s", 100_000, 900_000);
        assert_eq!(code(&renewed, 0, 110_000, &auth), None);
        assert_eq!(code(&renewed, 0, 110_001, &auth), Some(Code::TokenExpired));
    }
}
