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
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

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
    match caller {
        Ok(access_key_id) => {
            parts.extensions.insert(Caller { access_key_id, action: route.action });
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        Err(error) => error.with_request_id(&request_id).into_response(),
    }
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
