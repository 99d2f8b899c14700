//! The one mapping from errors to the wire: `{RequestId, HostId, Code, Message}` with a
//! fitting HTTP status, as the Alibaba Cloud SDKs expect (docs/wire.md, "A response").

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rollscale_engine::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub request_id: String,
    /// For throttling: milliseconds until a retry may succeed (`x-acs-retry-after`).
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code: code.to_string(),
            message: message.into(),
            request_id: String::new(),
            retry_after_ms: None,
        }
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

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let status = match &error {
            ServiceError::Refused { code, .. } if code.as_str().starts_with("Forbidden") => 403,
            ServiceError::Refused { .. } if error.is_not_found() => 404,
            ServiceError::Refused { .. } => 400,
            ServiceError::Conflict => 409,
            ServiceError::Store(_) | ServiceError::Fleet(_) => 500,
        };
        if status == 500 {
            // Logged once, here, where it is handled; the client sees no internals.
            tracing::error!(error = %error, source = ?std::error::Error::source(&error), "request failed");
            return ApiError::new(
                500,
                error.code().as_str(),
                "the request could not be processed; see the service log",
            );
        }
        ApiError::new(status, error.code().as_str(), error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = match self.request_id.is_empty() {
            true => uuid::Uuid::new_v4().to_string().to_uppercase(),
            false => self.request_id,
        };
        let body = serde_json::json!({
            "RequestId": request_id,
            "HostId": "rollscale",
            "Code": self.code,
            "Message": self.message,
        });
        let mut response =
            (self.status, [(header::CONTENT_TYPE, "application/json;charset=utf-8")], body.to_string()).into_response();
        if let Some(milliseconds) = self.retry_after_ms {
            // The tea SDKs turn an error with this header into a ThrottlingException.
            response.headers_mut().insert("x-acs-retry-after", milliseconds.into());
        }
        response
    }
}
