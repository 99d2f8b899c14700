//! The domain's errors. Each has a stable [`Code`], the one clients of the clouds know; the
//! server maps a code's class to an HTTP status in one place.

use crate::code::Code;
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
    pub fn code(&self) -> Code {
        match self {
            CoreError::MissingParameter(_) => Code::MissingParameter,
            CoreError::InvalidParameter { .. } => Code::InvalidParameter,
            CoreError::IncorrectExecutionStatus(_) => Code::IncorrectExecutionStatus,
            CoreError::IncorrectInstanceStatus(_) => Code::IncorrectInstanceStatus,
            CoreError::InvalidRollbackSource(_) => Code::InvalidParameterSourceExecution,
        }
    }

    pub fn invalid(name: &str, reason: impl Into<String>) -> Self {
        CoreError::InvalidParameter { name: name.to_string(), reason: reason.into() }
    }
}
