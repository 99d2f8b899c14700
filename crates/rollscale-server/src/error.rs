//! The one mapping from errors to the wire: `{RequestId, HostId, Code, Message}` with the HTTP
//! status of the code's class, as the Alibaba Cloud SDKs expect (docs/wire.md, "A response").
//! An error is built from a [`Code`] and a message ([`ApiError::new`], or `From` a service,
//! request or signature error); [`status`] is the only place a status is chosen.

use crate::rpc::request::RequestError;
use crate::rpc::sign::AuthError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rollscale_core::{Class, Code};
use rollscale_engine::ServiceError;

/// The HTTP status of every code of a class.
pub fn status(class: Class) -> StatusCode {
    match class {
        Class::Invalid => StatusCode::BAD_REQUEST,
        Class::Unauthorized => StatusCode::UNAUTHORIZED,
        Class::Forbidden => StatusCode::FORBIDDEN,
        Class::NotFound => StatusCode::NOT_FOUND,
        Class::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Class::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Class::Conflict => StatusCode::CONFLICT,
        Class::Throttled => StatusCode::TOO_MANY_REQUESTS,
        Class::Internal | Class::Backend => StatusCode::INTERNAL_SERVER_ERROR,
        Class::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Class::UriTooLong => StatusCode::URI_TOO_LONG,
        Class::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    }
}

/// What a client is told of a failure of rollscale or its backend; the detail is in the log.
const NOT_SHOWN: &str = "the request could not be processed; see the service log";

#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub request_id: String,
    /// For throttling: milliseconds until a retry may succeed (`x-acs-retry-after`).
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    /// An error answer with `code` (its status is the code's class's); the message says what
    /// is wrong, without the code.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), request_id: String::new(), retry_after_ms: None }
    }

    /// `InternalError` without detail, for a failure the caller has logged.
    pub fn internal() -> Self {
        ApiError::new(Code::InternalError, NOT_SHOWN)
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        status(self.code.class())
    }

    pub fn with_retry_after(mut self, milliseconds: u64) -> Self {
        self.retry_after_ms = Some(milliseconds);
        self
    }

    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = request_id.to_string();
        self
    }
}

/// The most characters of a refusal's message a client is shown.
const MESSAGE_MAX: usize = 512;

/// A refusal's message as a client is shown it: it may repeat what the client sent (a name, an
/// id), so its control characters are escaped and it is cut at [`MESSAGE_MAX`] characters.
fn shown_message(message: &str) -> String {
    let mut shown = String::with_capacity(message.len().min(MESSAGE_MAX + 8));
    for (i, c) in message.chars().enumerate() {
        if i == MESSAGE_MAX {
            shown.push('…');
            break;
        }
        match c.is_control() {
            true => shown.extend(c.escape_debug()),
            false => shown.push(c),
        }
    }
    shown
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let code = error.code();
        if matches!(code.class(), Class::Internal | Class::Backend) {
            // Logged once, here, where it is handled; the client sees no internals.
            tracing::error!(error = %error, source = ?std::error::Error::source(&error), "request failed");
            return ApiError::new(code, NOT_SHOWN);
        }
        ApiError::new(code, shown_message(&error.to_string()))
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        ApiError::new(error.code(), error.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::new(error.code(), error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let request_id = match self.request_id.is_empty() {
            true => crate::audit::RequestId::generate().0,
            false => self.request_id,
        };
        let body = body(self.code, &self.message, &request_id);
        let mut response = (status, [(header::CONTENT_TYPE, JSON)], body).into_response();
        if let Some(milliseconds) = self.retry_after_ms {
            // The tea SDKs turn an error with this header into a ThrottlingException.
            response.headers_mut().insert("x-acs-retry-after", milliseconds.into());
        }
        response
    }
}

/// The content type of every error answer.
const JSON: &str = "application/json;charset=utf-8";

/// The JSON error shape's text.
fn body(code: Code, message: &str, request_id: &str) -> String {
    serde_json::json!({
        "RequestId": request_id,
        "HostId": "rollscale",
        "Code": code.as_str(),
        "Message": message,
    })
    .to_string()
}

/// A whole HTTP/1.1 answer, as bytes on the wire, with the JSON error shape: for the refusals
/// the HTTP server makes by itself, below the router (`connection.rs`). The connection closes
/// after it, as it does after any of those.
pub fn raw_refusal(code: Code, message: &str) -> Vec<u8> {
    let status = status(code.class());
    let body = body(code, message, &crate::audit::RequestId::generate().0);
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {JSON}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
    )
    .into_bytes()
}

/// The code of a refusal made below the API (axum's extractors, the router itself), by its
/// HTTP status.
fn code_of_status(status: StatusCode) -> Code {
    match status {
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => Code::InvalidBodyTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::InvalidContentType,
        status if status.is_server_error() => Code::InternalError,
        _ => Code::InvalidParameter,
    }
}

/// Every refusal of the APIs has the JSON error shape, whatever layer made it: an answer of 400
/// or more that is not JSON (a body over the extractor's limit, a path that is not UTF-8, a
/// route's wrong method) is answered again as `{RequestId, HostId, Code, Message}`, its code
/// from its status ([`code_of_status`]) and its text kept as the message. The console's static
/// files are left as they are.
pub async fn json_refusals(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let console = request.uri().path().starts_with("/console");
    let request_id = crate::audit::RequestId::of(request.extensions());
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if console || status.as_u16() < 400 || is_json {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let code = code_of_status(status);
    let message = match text.is_empty() {
        true => format!("the request was refused ({})", status.canonical_reason().unwrap_or("an HTTP error")),
        false => text.chars().filter(|c| !c.is_control()).take(300).collect(),
    };
    let error = match code.class() {
        Class::Internal => ApiError::internal(),
        _ => ApiError::new(code, message),
    };
    error.with_request_id(&request_id).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollscale_fleet::FleetError;

    /// The status of each code that clients see today. A code's status changes only with its
    /// class, here, on purpose: this table is what fails when it does.
    #[test]
    fn codes_keep_their_statuses() {
        let table: &[(Code, u16)] = &[
            (Code::InvalidParameter, 400),
            (Code::MissingParameter, 400),
            (Code::InvalidParameterSourceExecution, 400),
            (Code::IncorrectScalingGroupStatus, 400),
            (Code::IncorrectInstanceStatus, 400),
            (Code::ScalingActivityInProgress, 400),
            (Code::SignatureDoesNotMatch, 400),
            (Code::InvalidTimeStampExpired, 400),
            (Code::IncompleteSignature, 400),
            (Code::SignatureNonceUsed, 400),
            (Code::InvalidBody, 400),
            (Code::InvalidBodyTooLarge, 413),
            (Code::InvalidRequestMalformed, 400),
            (Code::InvalidRequestUriTooLong, 414),
            (Code::InvalidRequestHeadersTooLarge, 431),
            (Code::IdempotentParameterMismatch, 400),
            (Code::EntityAlreadyExistsUser, 400),
            (Code::HealthCheckFailed, 400),
            (Code::InvalidToken, 401),
            (Code::TokenExpired, 401),
            (Code::MissingAuthorization, 401),
            (Code::ForbiddenRAM, 403),
            (Code::InvalidAccessKeyIdInactive, 403),
            (Code::InvalidAccessKeyIdNotFound, 404),
            (Code::InvalidActionNotFound, 404),
            (Code::NotFound, 404),
            (Code::InvalidScalingGroupIdNotFound, 404),
            (Code::EntityNotExistsExecution, 404),
            (Code::EntityNotExistsPackageVersion, 404),
            (Code::EntityNotExistUser, 404),
            (Code::ResourceNotFound, 404),
            (Code::MethodNotAllowed, 405),
            (Code::ConcurrentModification, 409),
            (Code::ThrottlingUser, 429),
            (Code::InternalError, 500),
            (Code::BackendError, 500),
            (Code::ServiceUnavailable, 503),
        ];
        for (code, expected) in table {
            assert_eq!(ApiError::new(*code, "m").status().as_u16(), *expected, "{code}");
        }
    }

    #[test]
    fn a_policy_refusal_is_403_forbidden_ram() {
        let error = ApiError::from(ServiceError::refused(Code::ForbiddenRAM, "not allowed"));
        assert_eq!(error.status(), StatusCode::FORBIDDEN);
        assert_eq!(error.code.as_str(), "Forbidden.RAM");
        assert_eq!(error.message, "not allowed");
        // No other code is 403 for its name alone: the class decides.
        for code in Code::ALL {
            let forbidden = status(code.class()) == StatusCode::FORBIDDEN;
            assert_eq!(forbidden, matches!(code, Code::ForbiddenRAM | Code::InvalidAccessKeyIdInactive), "{code}");
        }
    }

    #[test]
    fn service_errors_take_their_codes_status_and_hide_internals() {
        let missing = ApiError::from(ServiceError::refused(Code::InvalidInstanceIdNotFound, "no i-1"));
        assert_eq!((missing.status().as_u16(), missing.code.as_str()), (404, "InvalidInstanceId.NotFound"));
        let conflict = ApiError::from(ServiceError::Conflict);
        assert_eq!((conflict.status().as_u16(), conflict.code.as_str()), (409, "ConcurrentModification"));
        let backend = ApiError::from(ServiceError::from(FleetError::Unavailable("10.0.0.7 refused".into())));
        assert_eq!((backend.status().as_u16(), backend.code.as_str()), (500, "BackendError"));
        assert_eq!(backend.message, NOT_SHOWN, "a backend's words stay in the log");
    }

    /// A refusal may repeat what the client sent: its message is shown escaped and cut.
    #[test]
    fn a_refusal_shows_a_clients_text_escaped_and_cut() {
        let named =
            ApiError::from(ServiceError::refused(Code::EntityNotExistUser, "the user a\0b\u{1b}[31m does not exist"));
        assert_eq!(named.message, "the user a\\0b\\u{1b}[31m does not exist");
        let long =
            ApiError::from(ServiceError::refused(Code::EntityNotExistUser, format!("the user {}", "a".repeat(10_000))));
        assert_eq!(long.message.chars().count(), MESSAGE_MAX + 1);
        assert!(long.message.ends_with('…'));
        let plain = ApiError::from(ServiceError::refused(Code::InvalidParameter, "MaxSize must be 0 to 10000"));
        assert_eq!(plain.message, "MaxSize must be 0 to 10000");
    }

    #[tokio::test]
    async fn an_answer_carries_the_code_by_its_spelling() {
        let response = ApiError::new(Code::ThrottlingUser, "slow down").with_retry_after(250).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-acs-retry-after"], "250");
        let body = axum::body::to_bytes(response.into_body(), 4096).await.expect("a body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["Code"], "Throttling.User");
        assert_eq!(body["Message"], "slow down");
    }
}
