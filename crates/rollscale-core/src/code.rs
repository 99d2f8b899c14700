//! Every error code rollscale puts on the wire, in one enum: the `Code` of an error answer of
//! either API, and the `errorCode` recorded on an instance's child execution when its step
//! fails. Each code has its wire spelling ([`Code::as_str`], the one the clouds' users and the
//! official SDKs know; never change one) and a [`Class`], which is what the server turns into
//! an HTTP status, in one place (`rollscale-server`'s `error::status`). Nothing here knows HTTP.
//!
//! A variant is named after its wire spelling with the dots left out
//! (`InvalidScalingGroupId.NotFound` is [`Code::InvalidScalingGroupIdNotFound`]).

use std::fmt;
use std::str::FromStr;

/// What kind of failure a code is; the server answers each class with one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// The request cannot be done as asked: a parameter missing or wrong, a signature that does
    /// not verify, a name taken, a state that does not allow it. Nothing was changed.
    Invalid,
    /// The REST API's bearer token is missing, not one this service made, or expired.
    Unauthorized,
    /// The caller is known and not allowed: a policy does not allow it, or its key is disabled.
    Forbidden,
    /// What the request names (an action, a route, a resource) does not exist.
    NotFound,
    /// The REST route does not take the request's method.
    MethodNotAllowed,
    /// The request's body is larger than the API takes.
    TooLarge,
    /// Another writer moved first; the same request may succeed if sent again.
    Conflict,
    /// More requests than the AccessKey's rate allows; sent with the time to wait.
    Throttled,
    /// Rollscale itself failed (its store); the detail is logged, never shown.
    Internal,
    /// Rollscale cannot serve right now (its store does not answer); worth trying again later.
    Unavailable,
    /// The request line (method, path and query) is longer than the HTTP server reads.
    UriTooLong,
    /// The request's headers are larger than the HTTP server reads.
    HeadersTooLarge,
    /// The backend failed: a driver, an instance or a script on it. As an answer
    /// (`BackendError`) the detail is logged, never shown; the others are recorded on an
    /// instance's child execution when its step fails.
    Backend,
}

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $wire:literal, $class:ident;)*) => {
        /// An error code, by its wire spelling ([`Code::as_str`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* $variant,)*
        }

        impl Code {
            /// Every code, in the order of the table.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as the wire spells it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $wire,)*
                }
            }

            /// What kind of failure it is (the server's HTTP status comes from this).
            pub const fn class(self) -> Class {
                match self {
                    $(Code::$variant => Class::$class,)*
                }
            }
        }
    };
}

codes! {
    // Parameters and requests.
    MissingParameter = "MissingParameter", Invalid;
    InvalidParameter = "InvalidParameter", Invalid;
    InvalidParameterHealthCheckType = "InvalidParameter.HealthCheckType", Invalid;
    InvalidParameterKind = "InvalidParameter.Kind", Invalid;
    InvalidParameterPolicyName = "InvalidParameter.PolicyName", Invalid;
    InvalidParameterPolicyType = "InvalidParameter.PolicyType", Invalid;
    /// An AccessKey status that is neither Active nor Inactive.
    InvalidParameterStatus = "InvalidParameter.Status", Invalid;
    InvalidParameterUserName = "InvalidParameter.UserName", Invalid;
    /// A rollback's source cannot be rolled back (R3).
    InvalidParameterSourceExecution = "InvalidParameter.SourceExecution", Invalid;
    /// An RPC `Version` that is not served.
    InvalidVersion = "InvalidVersion", Invalid;
    /// A REST body without a JSON content type.
    InvalidContentType = "InvalidContentType", Invalid;
    InvalidQueryString = "InvalidQueryString", Invalid;
    /// An RPC form body that cannot be decoded.
    InvalidBody = "InvalidBody", Invalid;
    /// A body over the size a request may have (1 MiB), over either API.
    InvalidBodyTooLarge = "InvalidBody.TooLarge", TooLarge;
    /// A request that is not HTTP as the server reads it (a bad method, header or version).
    InvalidRequestMalformed = "InvalidRequest.Malformed", Invalid;
    /// A request line (path and query) over 64 KB.
    InvalidRequestUriTooLong = "InvalidRequest.UriTooLong", UriTooLong;
    /// Request headers over the HTTP server's limits.
    InvalidRequestHeadersTooLarge = "InvalidRequest.HeadersTooLarge", HeadersTooLarge;
    MalformedPolicyDocument = "MalformedPolicyDocument", Invalid;
    /// A `ClientToken` or `Idempotency-Key` used again for another request.
    IdempotentParameterMismatch = "IdempotentParameterMismatch", Invalid;
    /// A `ClientToken` or `Idempotency-Key` whose first request is still running.
    LastTokenProcessing = "LastTokenProcessing", Invalid;

    // Authentication.
    IncompleteSignature = "IncompleteSignature", Invalid;
    SignatureDoesNotMatch = "SignatureDoesNotMatch", Invalid;
    SignatureNonceUsed = "SignatureNonceUsed", Invalid;
    InvalidTimeStampFormat = "InvalidTimeStamp.Format", Invalid;
    InvalidTimeStampExpired = "InvalidTimeStamp.Expired", Invalid;
    InvalidAccessKeyIdNotFound = "InvalidAccessKeyId.NotFound", NotFound;
    InvalidAccessKeyIdInactive = "InvalidAccessKeyId.Inactive", Forbidden;
    MissingAuthorization = "MissingAuthorization", Unauthorized;
    InvalidToken = "InvalidToken", Unauthorized;
    TokenExpired = "TokenExpired", Unauthorized;
    /// RAM's policies do not allow the call.
    ForbiddenRAM = "Forbidden.RAM", Forbidden;
    ThrottlingUser = "Throttling.User", Throttled;

    // What a request names does not exist.
    InvalidActionNotFound = "InvalidAction.NotFound", NotFound;
    /// No such REST route.
    NotFound = "NotFound", NotFound;
    MethodNotAllowed = "MethodNotAllowed", MethodNotAllowed;
    InvalidScalingGroupIdNotFound = "InvalidScalingGroupId.NotFound", NotFound;
    InvalidScalingConfigurationIdNotFound = "InvalidScalingConfigurationId.NotFound", NotFound;
    InvalidInstanceIdNotFound = "InvalidInstanceId.NotFound", NotFound;
    InvalidImageIdNotFound = "InvalidImageId.NotFound", NotFound;
    InvalidLoadBalancerIdNotFound = "InvalidLoadBalancerId.NotFound", NotFound;
    InvalidBackendServerNotFound = "InvalidBackendServer.NotFound", NotFound;
    InvalidLaunchTemplateNotFound = "InvalidLaunchTemplate.NotFound", NotFound;
    InvalidLaunchTemplateVersionNotFound = "InvalidLaunchTemplateVersion.NotFound", NotFound;
    EntityNotExistsExecution = "EntityNotExists.Execution", NotFound;
    EntityNotExistsTaskExecution = "EntityNotExists.TaskExecution", NotFound;
    EntityNotExistsTemplate = "EntityNotExists.Template", NotFound;
    EntityNotExistsPackage = "EntityNotExists.Package", NotFound;
    EntityNotExistsPackageVersion = "EntityNotExists.PackageVersion", NotFound;
    EntityNotExistUser = "EntityNotExist.User", NotFound;
    EntityNotExistPolicy = "EntityNotExist.Policy", NotFound;
    EntityNotExistUserAccessKey = "EntityNotExist.User.AccessKey", NotFound;
    EntityNotExistUserPolicy = "EntityNotExist.User.Policy", NotFound;
    /// An alert rule or one of its targets.
    ResourceNotFound = "ResourceNotFound", NotFound;

    // States and names that refuse the request.
    IncorrectScalingGroupStatus = "IncorrectScalingGroupStatus", Invalid;
    IncorrectScalingGroupType = "IncorrectScalingGroupType", Invalid;
    IncorrectInstanceStatus = "IncorrectInstanceStatus", Invalid;
    IncorrectExecutionStatus = "IncorrectExecutionStatus", Invalid;
    IncorrectCapacityMinSize = "IncorrectCapacity.MinSize", Invalid;
    ScalingActivityInProgress = "ScalingActivityInProgress", Invalid;
    ScalingGroupHasInstances = "ScalingGroup.HasInstances", Invalid;
    ScalingGroupNameDuplicate = "ScalingGroupName.Duplicate", Invalid;
    InvalidImageNameDuplicated = "InvalidImageName.Duplicated", Invalid;
    InvalidImageNameMalformed = "InvalidImageName.Malformed", Invalid;
    InvalidLaunchTemplateNameDuplicate = "InvalidLaunchTemplateName.Duplicate", Invalid;
    InvalidLaunchTemplateNameMalformed = "InvalidLaunchTemplateName.Malformed", Invalid;
    ImageInUse = "ImageInUse", Invalid;
    OperationDenied = "OperationDenied", Invalid;
    /// A health check that did not pass in time: a refusal, and a step's failure.
    HealthCheckFailed = "HealthCheckFailed", Invalid;
    EntityAlreadyExists = "EntityAlreadyExists", Invalid;
    EntityAlreadyExistsUser = "EntityAlreadyExists.User", Invalid;
    EntityAlreadyExistsPolicy = "EntityAlreadyExists.Policy", Invalid;
    EntityAlreadyExistsUserPolicy = "EntityAlreadyExists.User.Policy", Invalid;
    DeleteConflictPolicyUser = "DeleteConflict.Policy.User", Invalid;
    LimitExceededUserAccessKey = "LimitExceeded.User.AccessKey", Invalid;
    InvalidOperationLastAdministrator = "InvalidOperation.LastAdministrator", Invalid;

    // Rollscale's own failures.
    ConcurrentModification = "ConcurrentModification", Conflict;
    InternalError = "InternalError", Internal;
    /// The readiness probe's answer while the store does not answer (`/readyz`).
    ServiceUnavailable = "ServiceUnavailable", Unavailable;
    BackendError = "BackendError", Backend;

    // An instance's failed step, recorded on its child execution.
    /// The fleet has no such instance.
    InstanceNotFound = "InstanceNotFound", Backend;
    /// The instance cannot do this (a Windows script on a Linux instance).
    Unsupported = "Unsupported", Backend;
    /// The driver's operation ran and failed.
    OperationFailed = "OperationFailed", Backend;
    /// The backend did not answer; the outcome is unknown.
    BackendUnavailable = "BackendUnavailable", Backend;
    ScriptFailed = "ScriptFailed", Backend;
    ScriptTimeout = "ScriptTimeout", Backend;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A wire spelling that is no [`Code`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownCode(pub String);

impl fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\" is not an error code of rollscale", self.0)
    }
}

impl std::error::Error for UnknownCode {}

impl FromStr for Code {
    type Err = UnknownCode;

    /// The code of a wire spelling (exact, case and dots included).
    fn from_str(text: &str) -> Result<Code, UnknownCode> {
        Code::ALL.iter().copied().find(|code| code.as_str() == text).ok_or_else(|| UnknownCode(text.to_string()))
    }
}

/// A code equals its wire spelling (for comparing with what a client received).
impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Code> for &str {
    fn eq(&self, other: &Code) -> bool {
        *self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_code_has_its_own_spelling_and_reads_back() {
        let mut seen = HashSet::new();
        for &code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code:?}: {} is used twice", code.as_str());
            assert_eq!(code.as_str().parse::<Code>(), Ok(code));
            assert_eq!(code.to_string(), code.as_str());
            assert_eq!(code, code.as_str());
        }
        assert_eq!(seen.len(), Code::ALL.len());
    }

    #[test]
    fn spellings_are_the_wires_and_variants_are_named_after_them() {
        for &code in Code::ALL {
            let wire = code.as_str();
            assert!(!wire.is_empty() && wire.split('.').all(|part| !part.is_empty()), "{wire}");
            assert!(wire.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'), "{wire}");
            assert_eq!(format!("{code:?}"), wire.replace('.', ""), "a variant is its spelling without dots");
        }
    }

    #[test]
    fn an_unknown_spelling_is_no_code() {
        for text in ["", "invalidparameter", "InvalidParameter ", "Forbidden", "Success", "SDK.HttpError"] {
            assert_eq!(text.parse::<Code>(), Err(UnknownCode(text.to_string())), "{text:?}");
        }
    }

    #[test]
    fn classes_of_some_codes() {
        assert_eq!(Code::InvalidParameter.class(), Class::Invalid);
        assert_eq!(Code::ForbiddenRAM.class(), Class::Forbidden);
        assert_eq!(Code::InvalidAccessKeyIdInactive.class(), Class::Forbidden);
        assert_eq!(Code::InvalidScalingGroupIdNotFound.class(), Class::NotFound);
        assert_eq!(Code::ConcurrentModification.class(), Class::Conflict);
        assert_eq!(Code::InternalError.class(), Class::Internal);
        assert_eq!(Code::ServiceUnavailable.class(), Class::Unavailable);
        // Every code named `….NotFound` is of the class NotFound.
        for &code in Code::ALL {
            if code.as_str().ends_with(".NotFound") {
                assert_eq!(code.class(), Class::NotFound, "{code}");
            }
        }
    }
}
