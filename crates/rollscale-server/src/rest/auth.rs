//! Who calls the REST API: an ACS3-HMAC-SHA256 signature (verified exactly as the RPC API
//! verifies one, nonce and clock skew included), or a bearer token made from an AccessKey.
//!
//! A token is `rs1.<AccessKey id>.<expiry, Unix seconds>.<hex HMAC-SHA256 of the part before it,
//! keyed with the AccessKey secret>`. Anyone holding the secret can make one (`rollscale
//! token`), the server can check it without storing it, and disabling or deleting the key
//! revokes every token made from it.

use super::State as AppStateRef;
use crate::error::ApiError;
use crate::rpc::request::RpcRequest;
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use rollscale_core::access::AuditEvent;
use sha2::Sha256;
use std::net::SocketAddr;

/// The caller of a request, put into the request's extensions once authenticated.
#[derive(Clone, Debug)]
pub struct Caller {
    pub access_key_id: String,
    /// The action the route is authorized as (`ess:DescribeScalingGroups`, …).
    pub action: &'static str,
}

const TOKEN_PREFIX: &str = "rs1";

/// Most bytes of a REST request body.
const MAX_BODY: usize = 1024 * 1024;

fn token_mac(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A bearer token for `access_key_id`, valid until `expires` (Unix seconds).
pub fn make_token(access_key_id: &str, secret: &str, expires: i64) -> String {
    let payload = format!("{TOKEN_PREFIX}.{access_key_id}.{expires}");
    let mac = token_mac(secret, &payload);
    format!("{payload}.{mac}")
}

/// The AccessKey id a token claims, and its expiry, if it has a token's shape.
fn parse_token(token: &str) -> Option<(&str, i64, &str, &str)> {
    let (payload, mac) = token.rsplit_once('.')?;
    let mut parts = payload.splitn(3, '.');
    let (prefix, key, expires) = (parts.next()?, parts.next()?, parts.next()?);
    if prefix != TOKEN_PREFIX || key.is_empty() {
        return None;
    }
    Some((key, expires.parse().ok()?, payload, mac))
}

async fn bearer(state: &crate::AppState, token: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::new(401, "InvalidToken", "the bearer token is not one this service made");
    let (key, expires, payload, mac) = parse_token(token.trim()).ok_or_else(invalid)?;
    let secret = state.service.access_key_secret(key).await?.ok_or_else(invalid)?;
    let expected = token_mac(&secret, payload);
    if !constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
        return Err(invalid());
    }
    if expires < chrono::Utc::now().timestamp() {
        return Err(ApiError::new(401, "TokenExpired", "the bearer token has expired; make a new one"));
    }
    Ok(key.to_string())
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware of every authenticated route: refuses query parameters the route does not
/// take, then authenticates.
pub async fn require(
    State((state, route)): State<(AppStateRef, &'static super::Route)>,
    request: Request,
    next: Next,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string().to_uppercase();
    let (mut parts, body) = request.into_parts();
    let query = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes());
    for (name, _) in query {
        if !route.query.iter().any(|(known, _)| *known == name) {
            let known: Vec<&str> = route.query.iter().map(|(known, _)| *known).collect();
            let message = match known.is_empty() {
                true => format!("the query parameter \"{name}\" is not one this route takes (it takes none)"),
                false => format!("the query parameter \"{name}\" is not one of {}", known.join(", ")),
            };
            return ApiError::new(400, "InvalidParameter", message).with_request_id(&request_id).into_response();
        }
    }
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(413, "InvalidBody", format!("the body is larger than {MAX_BODY} bytes"))
                .with_request_id(&request_id)
                .into_response()
        }
    };
    let authorization = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let caller = match authorization.as_deref() {
        Some(value) if value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer ") => {
            bearer(&state, &value[7..]).await.and_then(|key| state.throttle(&key).map(|()| key))
        }
        Some(_) => {
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str().to_string(), v.to_string())))
                .collect();
            match RpcRequest::from_parts(
                parts.method.as_str(),
                parts.uri.path(),
                parts.uri.query(),
                headers,
                bytes.to_vec(),
            ) {
                Ok(signed) => crate::rpc::authenticate(&state, &signed).await.map(|(_, key)| key),
                Err(error) => Err(ApiError::new(error.http_status(), error.code(), error.to_string())),
            }
        }
        None => Err(ApiError::new(
            401,
            "MissingAuthorization",
            "sign the request (ACS3-HMAC-SHA256) or send `Authorization: Bearer <token>` (`rollscale token`)",
        )),
    };
    let access_key_id = match caller {
        Ok(access_key_id) => access_key_id,
        Err(error) => return error.with_request_id(&request_id).into_response(),
    };
    // Authorized as the route's RPC action, on the resource its path names; every
    // authenticated call goes to the audit log, refused or not.
    let resource = resource_of(route, parts.uri.path());
    let source_ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip().to_string());
    let draft = AuditEvent {
        id: String::new(),
        at: 0,
        user_name: String::new(),
        access_key_id: access_key_id.clone(),
        action: route.action.to_string(),
        resource: resource.clone(),
        source_ip: source_ip.unwrap_or_default(),
        result_code: String::new(),
        http_status: 0,
        request_id: request_id.clone(),
        request: audit_request(&parts, &bytes),
    };
    // A token is made from the caller's own key and grants nothing more: anyone may make one.
    let authorized = match route.path == "/v1/tokens" {
        true => Ok(()),
        false => state.service.authorize(&access_key_id, route.action, &resource).await,
    };
    let response = match authorized {
        Ok(()) => {
            parts.extensions.insert(Caller { access_key_id, action: route.action });
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        Err(error) => ApiError::from(error).with_request_id(&request_id).into_response(),
    };
    let (response, result_code) = result_code(response).await;
    let event = AuditEvent { http_status: response.status().as_u16(), result_code, ..draft };
    if let Err(error) = state.service.record_audit(event).await {
        tracing::error!(error = %error, "the audit log could not be written");
    }
    response
}

/// The resource a route acts on, as policies name it (the RPC API's names): the scaling group
/// or rolling update in its path, else every resource of the product.
fn resource_of(route: &super::Route, path: &str) -> String {
    let product = route.action.split(':').next().unwrap_or("*");
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let id = |after: &str| {
        let template: Vec<&str> = route.path.trim_start_matches('/').split('/').collect();
        template.iter().position(|segment| *segment == after).and_then(|i| segments.get(i + 1)).copied()
    };
    let named = match route.path {
        p if p.starts_with("/v1/scaling-groups/{id}") => id("scaling-groups").map(|id| format!("scalinggroup/{id}")),
        p if p.starts_with("/v1/rolling-updates/{id}") => id("rolling-updates").map(|id| format!("execution/{id}")),
        _ => None,
    };
    format!("acs:{product}:*:*:{}", named.as_deref().unwrap_or("*"))
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

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let token = make_token("LTAIexample", "secret", 2_000_000_000);
        let (key, expires, payload, mac) = parse_token(&token).expect("shape");
        assert_eq!((key, expires), ("LTAIexample", 2_000_000_000));
        assert_eq!(token_mac("secret", payload), mac);
        assert_ne!(token_mac("other secret", payload), mac);
        let longer = token.replace(".2000000000.", ".2000000001.");
        let (_, _, payload, mac) = parse_token(&longer).expect("shape");
        assert_ne!(token_mac("secret", payload), mac, "the expiry is covered by the MAC");
        assert!(parse_token("rs2.LTAI.1.ab").is_none());
        assert!(parse_token("rs1..1.ab").is_none());
        assert!(parse_token("garbage").is_none());
    }
}
