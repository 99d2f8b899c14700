//! RAM policies: the JSON document (`{"Version":"1","Statement":[{"Effect","Action","Resource"}]}`),
//! its validation, the system policies, and the evaluation of a request against the policies
//! of a user: an explicit Deny wins over an Allow, and nothing allowed is denied.
//!
//! Pure: no I/O. The engine loads a user's documents and asks [`evaluate`].

use crate::code::Code;
use serde_json::Value;
use std::fmt;

/// Longest policy document, in bytes (RAM's limit for a custom policy).
pub const MAX_DOCUMENT_BYTES: usize = 6144;

crate::domain::wire_enum!(
    /// Who made a policy: rollscale (built in, read-only) or a user.
    PolicyType { System, Custom }
);

crate::domain::wire_enum!(
    /// What a statement does when it matches.
    Effect { Allow, Deny }
);

/// One statement of a policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    /// `product:Action` patterns (`ess:Describe*`, `oos:StartExecution`, `*`).
    pub actions: Vec<String>,
    /// Resource patterns (`*`, `acs:ess:*:*:scalinggroup/asg-…`).
    pub resources: Vec<String>,
}

/// A validated policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDocument {
    pub statements: Vec<Statement>,
}

/// Why a policy document was refused (code `MalformedPolicyDocument`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the policy document is not valid: {}", self.0)
    }
}

impl std::error::Error for PolicyError {}

impl PolicyError {
    pub fn code(&self) -> Code {
        Code::MalformedPolicyDocument
    }
}

fn malformed(message: impl Into<String>) -> PolicyError {
    PolicyError(message.into())
}

/// One or more strings: `"x"` or `["x", "y"]`, none empty.
fn strings(value: &Value, field: &str, index: usize) -> Result<Vec<String>, PolicyError> {
    let items: Vec<&Value> = match value {
        Value::String(_) => vec![value],
        Value::Array(items) if !items.is_empty() => items.iter().collect(),
        Value::Array(_) => return Err(malformed(format!("Statement {index}: {field} is an empty list"))),
        _ => return Err(malformed(format!("Statement {index}: {field} must be a string or a list of strings"))),
    };
    items
        .into_iter()
        .map(|item| match item.as_str() {
            Some(text) if !text.trim().is_empty() => Ok(text.to_string()),
            _ => Err(malformed(format!("Statement {index}: every {field} must be a non-empty string"))),
        })
        .collect()
}

/// `*`, or `product:Action` where product is letters, digits and `-` (or `*`), and
/// the action is letters, digits and the wildcards `*` and `?`.
pub fn valid_action_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let Some((product, action)) = pattern.split_once(':') else { return false };
    let product_ok =
        product == "*" || (!product.is_empty() && product.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let action_ok = !action.is_empty() && action.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?');
    product_ok && action_ok
}

impl PolicyDocument {
    /// Parses and validates a document's JSON text.
    pub fn parse(text: &str) -> Result<PolicyDocument, PolicyError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(malformed(format!("it is {} bytes; at most {MAX_DOCUMENT_BYTES} are allowed", text.len())));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|error| malformed(format!("it is not JSON ({error})")))?;
        let Value::Object(top) = &value else { return Err(malformed("it must be a JSON object")) };
        for key in top.keys() {
            if key != "Version" && key != "Statement" {
                return Err(malformed(format!("unknown field \"{key}\"; a document has Version and Statement")));
            }
        }
        match top.get("Version").and_then(Value::as_str) {
            Some("1") => {}
            _ => return Err(malformed("Version must be \"1\"")),
        }
        let statements: Vec<&Value> = match top.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
            Some(object @ Value::Object(_)) => vec![object],
            _ => return Err(malformed("Statement must be a non-empty list of statements")),
        };
        let mut parsed = Vec::with_capacity(statements.len());
        for (index, statement) in statements.into_iter().enumerate() {
            let index = index + 1;
            let Value::Object(fields) = statement else {
                return Err(malformed(format!("Statement {index} must be an object")));
            };
            for key in fields.keys() {
                match key.as_str() {
                    "Effect" | "Action" | "Resource" => {}
                    "Condition" | "NotAction" | "NotResource" | "Principal" => {
                        return Err(malformed(format!("Statement {index}: {key} is not supported by rollscale")))
                    }
                    other => return Err(malformed(format!("Statement {index}: unknown field \"{other}\""))),
                }
            }
            let effect = match fields.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err(malformed(format!("Statement {index}: Effect must be \"Allow\" or \"Deny\""))),
            };
            let actions = strings(
                fields.get("Action").ok_or_else(|| malformed(format!("Statement {index}: Action is missing")))?,
                "Action",
                index,
            )?;
            if let Some(bad) = actions.iter().find(|action| !valid_action_pattern(action)) {
                return Err(malformed(format!(
                    "Statement {index}: the action \"{bad}\" is not of the form product:Action (e.g. ess:DescribeScalingGroups, oos:*)"
                )));
            }
            let resources = strings(
                fields.get("Resource").ok_or_else(|| malformed(format!("Statement {index}: Resource is missing")))?,
                "Resource",
                index,
            )?;
            if let Some(bad) = resources.iter().find(|r| r.as_str() != "*" && !r.starts_with("acs:")) {
                return Err(malformed(format!(
                    "Statement {index}: the resource \"{bad}\" is neither \"*\" nor an acs:… name"
                )));
            }
            parsed.push(Statement { effect, actions, resources });
        }
        Ok(PolicyDocument { statements: parsed })
    }

    /// The document as JSON text, in the canonical shape.
    pub fn to_json(&self) -> String {
        let statements: Vec<Value> = self
            .statements
            .iter()
            .map(|s| {
                serde_json::json!({
                    "Effect": s.effect.as_str(),
                    "Action": s.actions,
                    "Resource": s.resources,
                })
            })
            .collect();
        serde_json::json!({ "Version": "1", "Statement": statements }).to_string()
    }
}

/// Whether `text` matches `pattern`, where `*` is any run of characters and `?` any one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it is taken to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Actions compare without regard to case, as RAM's do.
fn action_matches(pattern: &str, action: &str) -> bool {
    wildcard_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

impl Statement {
    pub fn matches(&self, action: &str, resource: &str) -> bool {
        self.actions.iter().any(|p| action_matches(p, action))
            && self.resources.iter().any(|p| wildcard_match(p, resource))
    }
}

/// The outcome of evaluating a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A Deny statement matched: no Allow can override it.
    ExplicitDeny,
    /// No statement allowed the request.
    ImplicitDeny,
}

/// Evaluates `action` on `resource` against every statement of `documents`: an explicit Deny
/// wins, then an Allow; nothing else is allowed.
pub fn evaluate<'a>(documents: impl IntoIterator<Item = &'a PolicyDocument>, action: &str, resource: &str) -> Decision {
    let mut allowed = false;
    for statement in documents.into_iter().flat_map(|d| d.statements.iter()) {
        if statement.matches(action, resource) {
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// A policy rollscale has built in.
#[derive(Clone, Copy, Debug)]
pub struct SystemPolicy {
    pub name: &'static str,
    pub description: &'static str,
    pub document: &'static str,
}

/// The name of the policy the admin user of `rollscale up` gets.
pub const ADMINISTRATOR_ACCESS: &str = "AdministratorAccess";

/// The system policies: read-only, always present, attachable by name with PolicyType System.
pub const SYSTEM_POLICIES: &[SystemPolicy] = &[
    SystemPolicy {
        name: ADMINISTRATOR_ACCESS,
        description: "Full access to every action of rollscale",
        document: r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    },
    SystemPolicy {
        name: "AliyunESSFullAccess",
        description: "Full access to Auto Scaling (ESS)",
        document: r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ess:*","Resource":"*"}]}"#,
    },
    SystemPolicy {
        name: "AliyunOOSFullAccess",
        description: "Full access to CloudOps Orchestration (OOS): rolling updates",
        document: r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oos:*","Resource":"*"}]}"#,
    },
    SystemPolicy {
        name: "AliyunECSFullAccess",
        description: "Full access to Elastic Compute Service (ECS)",
        document: r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"}]}"#,
    },
    SystemPolicy {
        name: "AliyunESSReadOnlyAccess",
        description:
            "Read-only access to Auto Scaling, its images, launch templates and packages, and to rolling updates",
        document: r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["ess:Describe*","ess:List*","ecs:Describe*","oos:List*","oos:Get*"],"Resource":"*"}]}"#,
    },
    SystemPolicy {
        name: "AliyunCloudMonitorFullAccess",
        description: "Full access to CloudMonitor (CMS): alert rules, their webhooks and deliveries",
        document: r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"cms:*","Resource":"*"}]}"#,
    },
    SystemPolicy {
        name: "AliyunCloudMonitorReadOnlyAccess",
        description: "Read-only access to alert rules, their webhooks and deliveries (CMS)",
        document: r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["cms:Describe*"],"Resource":"*"}]}"#,
    },
    SystemPolicy {
        name: "AliyunRAMFullAccess",
        description: "Full access to users, AccessKeys, policies and the audit log (RAM)",
        document: r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ram:*","Resource":"*"}]}"#,
    },
    SystemPolicy {
        name: "AliyunRAMReadOnlyAccess",
        description: "Read-only access to users, policies and the audit log (RAM)",
        document: r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["ram:Get*","ram:List*"],"Resource":"*"}]}"#,
    },
];

/// The system policy named `name`.
pub fn system_policy(name: &str) -> Option<&'static SystemPolicy> {
    SYSTEM_POLICIES.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> PolicyDocument {
        PolicyDocument::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn every_system_policy_is_valid() {
        for policy in SYSTEM_POLICIES {
            let parsed = doc(policy.document);
            assert!(!parsed.statements.is_empty(), "{}", policy.name);
            assert_eq!(PolicyDocument::parse(&parsed.to_json()).as_ref(), Ok(&parsed), "{}", policy.name);
        }
    }

    #[test]
    fn read_only_allows_describes_and_lists_only() {
        let read_only = doc(system_policy("AliyunESSReadOnlyAccess").unwrap().document);
        let decide = |action| evaluate([&read_only], action, "*");
        assert_eq!(decide("ess:DescribeScalingGroups"), Decision::Allow);
        assert_eq!(decide("oos:ListExecutions"), Decision::Allow);
        assert_eq!(decide("oos:ListTaskExecutions"), Decision::Allow);
        assert_eq!(decide("ess:ListPackages"), Decision::Allow);
        assert_eq!(decide("ecs:DescribeImages"), Decision::Allow);
        assert_eq!(decide("ecs:DescribeLaunchTemplateVersions"), Decision::Allow);
        assert_eq!(decide("ecs:CreateLaunchTemplate"), Decision::ImplicitDeny);
        assert_eq!(decide("ess:CreatePackage"), Decision::ImplicitDeny);
        assert_eq!(decide("oos:StartExecution"), Decision::ImplicitDeny);
        assert_eq!(decide("ess:DeleteScalingGroup"), Decision::ImplicitDeny);
        assert_eq!(decide("ram:ListUsers"), Decision::ImplicitDeny);
    }

    #[test]
    fn explicit_deny_beats_allow_whatever_the_order() {
        let admin = doc(system_policy(ADMINISTRATOR_ACCESS).unwrap().document);
        let deny = doc(r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"ess:Delete*","Resource":"*"}]}"#);
        assert_eq!(evaluate([&admin, &deny], "ess:DeleteScalingGroup", "*"), Decision::ExplicitDeny);
        assert_eq!(evaluate([&deny, &admin], "ess:DeleteScalingGroup", "*"), Decision::ExplicitDeny);
        assert_eq!(evaluate([&deny, &admin], "ess:CreateScalingGroup", "*"), Decision::Allow);
        assert_eq!(evaluate([&deny], "ess:CreateScalingGroup", "*"), Decision::ImplicitDeny);
        assert_eq!(evaluate(std::iter::empty(), "ess:CreateScalingGroup", "*"), Decision::ImplicitDeny);
    }

    #[test]
    fn actions_match_without_case_and_resources_with_it() {
        let policy = doc(
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["OOS:start*"],"Resource":["acs:ess:*:*:scalinggroup/asg-A*"]}]}"#,
        );
        assert_eq!(evaluate([&policy], "oos:StartExecution", "acs:ess:*:*:scalinggroup/asg-Abc"), Decision::Allow);
        assert_eq!(
            evaluate([&policy], "oos:StartExecution", "acs:ess:*:*:scalinggroup/asg-abc"),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate([&policy], "oos:ListExecutions", "acs:ess:*:*:scalinggroup/asg-Abc"),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("ess:*", "ess:DescribeScalingGroups"));
        assert!(!wildcard_match("ess:*", "oos:ListExecutions"));
        assert!(wildcard_match("ess:Describe*Groups", "ess:DescribeScalingGroups"));
        assert!(wildcard_match("a*b*c", "aXbYbZc"));
        assert!(!wildcard_match("a*b*c", "aXbYbZ"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(!wildcard_match("abc", "abcd"));
        assert!(wildcard_match("**", "x"));
    }

    #[test]
    fn malformed_documents_are_refused_with_a_reason() {
        let refused = |text: &str| PolicyDocument::parse(text).unwrap_err().0;
        assert!(refused("not json").contains("not JSON"));
        assert!(refused("[]").contains("object"));
        assert!(refused(r#"{"Statement":[]}"#).contains("Version"));
        assert!(refused(r#"{"Version":"2","Statement":[]}"#).contains("Version"));
        assert!(refused(r#"{"Version":"1","Statement":[]}"#).contains("non-empty"));
        assert!(refused(r#"{"Version":"1","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#)
            .contains("Effect"));
        assert!(
            refused(r#"{"Version":"1","Statement":[{"Effect":"Allow","Resource":"*"}]}"#).contains("Action is missing")
        );
        assert!(refused(
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"StartExecution","Resource":"*"}]}"#
        )
        .contains("product:Action"));
        assert!(refused(r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#)
            .contains("empty list"));
        assert!(refused(r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"bucket"}]}"#)
            .contains("acs:"));
        assert!(refused(
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]}"#
        )
        .contains("Condition is not supported"));
        assert!(refused(r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}],"Id":"x"}"#)
            .contains("unknown field"));
        let big = format!(
            r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"*","Resource":"acs:{}"}}]}}"#,
            "x".repeat(MAX_DOCUMENT_BYTES)
        );
        assert!(refused(&big).contains("bytes"));
        // A single statement object and single strings are accepted.
        let single = doc(r#"{"Version":"1","Statement":{"Effect":"Deny","Action":"oos:*","Resource":"*"}}"#);
        assert_eq!(single.statements[0].actions, ["oos:*"]);
    }
}
