//! The domain's errors. Each has a stable code, the one clients of the clouds know; the
//! server maps codes to HTTP statuses in one place.

use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CoreError {
    #[error("the input parameter \"{0}\" that is mandatory for processing this request is not supplied")]
    MissingParameter(String),
    #[error("the parameter \"{name}\" is invalid: {reason}")]
    InvalidParameter { name: String, reason: String },
    /// The execution is not in a state that allows the action.
    #[error("{0}")]
    IncorrectExecutionStatus(String),
    /// An instance of the execution is not in a state that allows the action.
    #[error("{0}")]
    IncorrectInstanceStatus(String),
    /// The rollback's source cannot be rolled back (R3).
    #[error("{0}")]
    InvalidRollbackSource(String),
}

impl CoreError {
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::MissingParameter(_) => "MissingParameter",
            CoreError::InvalidParameter { .. } => "InvalidParameter",
            CoreError::IncorrectExecutionStatus(_) => "IncorrectExecutionStatus",
            CoreError::IncorrectInstanceStatus(_) => "IncorrectInstanceStatus",
            CoreError::InvalidRollbackSource(_) => "InvalidParameter.SourceExecution",
        }
    }

    pub fn invalid(name: &str, reason: impl Into<String>) -> Self {
        CoreError::InvalidParameter { name: name.to_string(), reason: reason.into() }
    }
}
