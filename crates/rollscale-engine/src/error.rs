//! The service layer's error: a [`Code`] for clients and a message. Internal detail (a
//! database error's text) stays in the log, never in the message.

use rollscale_core::{Class, Code, CoreError};
use rollscale_fleet::FleetError;
use rollscale_store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ServiceError {
    /// The request was refused and nothing was changed: bad input, a state that does not allow
    /// it, a thing that does not exist, a caller who may not. The code's class says which.
    #[error("{message}")]
    Refused { code: Code, message: String },
    /// Another writer moved first; the caller may retry.
    #[error("the resource was changed concurrently, retry the request")]
    Conflict,
    #[error("internal error")]
    Store(#[source] StoreError),
    /// The driver's words are in the message (and so not also its source, which would say them
    /// twice in a report that follows sources).
    #[error("the backend failed: {0}")]
    Fleet(FleetError),
}

impl ServiceError {
    /// A refusal with `code`; the message says what was refused and why, without the code.
    pub fn refused(code: Code, message: impl Into<String>) -> Self {
        ServiceError::Refused { code, message: message.into() }
    }

    pub fn code(&self) -> Code {
        match self {
            ServiceError::Refused { code, .. } => *code,
            ServiceError::Conflict => Code::ConcurrentModification,
            ServiceError::Store(_) => Code::InternalError,
            ServiceError::Fleet(_) => Code::BackendError,
        }
    }

    /// Whether the request named something that does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code().class() == Class::NotFound
    }
}

impl From<CoreError> for ServiceError {
    fn from(error: CoreError) -> Self {
        ServiceError::refused(error.code(), error.to_string())
    }
}

impl From<rollscale_core::admission::Refusal> for ServiceError {
    fn from(refusal: rollscale_core::admission::Refusal) -> Self {
        ServiceError::refused(refusal.code(), refusal.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { .. } => ServiceError::Conflict,
            StoreError::AlreadyExists { what, id } => {
                ServiceError::refused(Code::EntityAlreadyExists, format!("the {what} {id} already exists"))
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

/// The refusal for an instance that does not exist (by its id, parsed or as given).
pub(crate) fn instance_not_found(id: impl std::fmt::Display) -> ServiceError {
    ServiceError::refused(Code::InvalidInstanceIdNotFound, format!("the instance {id} does not exist"))
}

/// The refusal for a scaling group that does not exist.
pub(crate) fn group_not_found(id: impl std::fmt::Display) -> ServiceError {
    ServiceError::refused(Code::InvalidScalingGroupIdNotFound, format!("the scaling group {id} does not exist"))
}

/// The refusal for a scaling configuration that does not exist.
pub(crate) fn configuration_not_found(id: impl std::fmt::Display) -> ServiceError {
    ServiceError::refused(
        Code::InvalidScalingConfigurationIdNotFound,
        format!("the scaling configuration {id} does not exist"),
    )
}

/// The refusal for an execution (a task, a child, an image update task) that does not exist.
pub(crate) fn execution_not_found(id: impl std::fmt::Display) -> ServiceError {
    ServiceError::refused(Code::EntityNotExistsExecution, format!("the execution {id} does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_failure_says_its_cause_once() {
        let error = ServiceError::from(FleetError::Unavailable("connection refused".into()));
        assert_eq!(error.code(), Code::BackendError);
        assert_eq!(error.to_string(), "the backend failed: backend unavailable: connection refused");
        assert!(std::error::Error::source(&error).is_none(), "the cause is in the message already");
    }

    #[test]
    fn a_refusal_is_not_found_by_its_code() {
        let missing = ServiceError::refused(Code::InvalidInstanceIdNotFound, "the instance i-1 does not exist");
        assert!(missing.is_not_found());
        assert_eq!(missing.to_string(), "the instance i-1 does not exist");
        assert!(!ServiceError::refused(Code::IncorrectInstanceStatus, "the instance i-1 is in Standby").is_not_found());
        assert!(!ServiceError::Conflict.is_not_found());
    }
}
