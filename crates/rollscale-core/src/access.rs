//! Users, their policies and the audit log, as plain data. AccessKeys are in [`crate::domain`].

use crate::domain::Millis;
use crate::policy::PolicyType;
use serde::{Deserialize, Serialize};

/// A RAM user: who an AccessKey belongs to, and what its policies allow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// RAM's `UserId`: a number, as text.
    pub id: String,
    /// RAM's `UserName`: 1 to 64 letters, digits, `.`, `_` or `-`.
    pub name: String,
    pub display_name: String,
    pub comments: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A policy: a system one (built in) or a custom one (made with CreatePolicy).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub policy_type: PolicyType,
    pub description: String,
    /// The document's JSON text, as given.
    pub document: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A policy attached to a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub policy: Policy,
    pub attached_at: Millis,
}

/// One authenticated call, as the audit log keeps it: who, what, on what, from where, when,
/// and with what result. Never a secret: request parameters are summarised without the
/// signature's, and no reply is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub at: Millis,
    pub user_name: String,
    pub access_key_id: String,
    /// `product:Action`, e.g. `oos:StartExecution`.
    pub action: String,
    /// The resource the call was authorized on (`*` or an `acs:…` name).
    pub resource: String,
    /// The caller's address (IP), when known.
    pub source_ip: String,
    /// `Success`, or the error code the call was answered with.
    pub result_code: String,
    pub http_status: u16,
    pub request_id: String,
    /// The request's parameters (signature parameters left out, long values cut).
    pub request: serde_json::Value,
}

/// Which audit events to read, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub user_name: Option<String>,
    pub access_key_id: Option<String>,
    pub action: Option<String>,
    pub result_code: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
}

/// Whether `name` is a valid `UserName`: 1 to 64 of letters, digits, `.`, `_` and `-`.
pub fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `name` is a valid custom `PolicyName`: 1 to 128 of letters, digits and `-`.
pub fn valid_policy_name(name: &str) -> bool {
    (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_user_name("alice") && valid_user_name("a.b_c-1") && valid_user_name(&"a".repeat(64)));
        assert!(!valid_user_name("") && !valid_user_name(&"a".repeat(65)) && !valid_user_name("al ice"));
        assert!(!valid_user_name("alice@corp"));
        assert!(valid_policy_name("OSS-Administrator") && !valid_policy_name("a_b") && !valid_policy_name(""));
    }
}
