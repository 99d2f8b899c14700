//! The service layer's error: a stable code for clients and a message. Internal detail (a
//! database error's text) stays in the log, never in the message.

use rollscale_core::CoreError;
use rollscale_fleet::FleetError;
use rollscale_store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ServiceError {
    /// Bad input or a state that does not allow the request; nothing was changed.
    #[error("{message}")]
    Rejected { code: &'static str, message: String },
    /// The named thing does not exist.
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// Another writer moved first; the caller may retry.
    #[error("the resource was changed concurrently, retry the request")]
    Conflict,
    #[error("internal error")]
    Store(#[source] StoreError),
    #[error("the backend failed: {0}")]
    Fleet(#[source] FleetError),
}

impl ServiceError {
    pub fn rejected(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Rejected { code, message: message.into() }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::NotFound { code, message: message.into() }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Rejected { code, .. } | ServiceError::NotFound { code, .. } => code,
            ServiceError::Conflict => "ConcurrentModification",
            ServiceError::Store(_) => "InternalError",
            ServiceError::Fleet(_) => "BackendError",
        }
    }
}

impl From<CoreError> for ServiceError {
    fn from(error: CoreError) -> Self {
        ServiceError::Rejected { code: error.code(), message: error.to_string() }
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { .. } => ServiceError::Conflict,
            StoreError::AlreadyExists { what, id } => {
                ServiceError::rejected("EntityAlreadyExists", format!("the {what} {id} already exists"))
            }
            other => ServiceError::Store(other),
        }
    }
}

impl From<FleetError> for ServiceError {
    fn from(error: FleetError) -> Self {
        ServiceError::Fleet(error)
    }
}
