//! Typed identifiers in the forms the seeds use (`asg-…`, `asc-…`, `i-…`, `exec-…`).
//!
//! Identifiers are made from random bits handed in by the caller: this crate reads no
//! randomness of its own.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every identifier of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Makes a new identifier from 80 random bits (20 lower-case hex digits).
            pub fn from_random(bits: u128) -> Self {
                Self(format!("{}{:020x}", $prefix, bits & ((1u128 << 80) - 1)))
            }

            /// Accepts an identifier given by a client: it must carry the prefix and only
            /// `[A-Za-z0-9_-]` after it.
            pub fn parse(text: &str) -> Option<Self> {
                let rest = text.strip_prefix($prefix)?;
                let valid = !rest.is_empty()
                    && rest.len() <= 64
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                valid.then(|| Self(text.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

typed_id!(
    /// A scaling group, `asg-…`.
    ScalingGroupId,
    "asg-"
);
typed_id!(
    /// A scaling configuration, `asc-…`.
    ScalingConfigurationId,
    "asc-"
);
typed_id!(
    /// A launch template, `lt-…`.
    LaunchTemplateId,
    "lt-"
);
typed_id!(
    /// An instance (a VM, a container or a container group), `i-…`.
    InstanceId,
    "i-"
);
typed_id!(
    /// An OOS execution: a rolling-update task or one instance's child execution, `exec-…`.
    ExecutionId,
    "exec-"
);
typed_id!(
    /// A load balancer, `lb-…`.
    LoadBalancerId,
    "lb-"
);
typed_id!(
    /// A scaling activity, `asa-…`.
    ScalingActivityId,
    "asa-"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_carry_prefix_and_fixed_width() {
        let id = ExecutionId::from_random(0xabc);
        assert_eq!(id.as_str(), "exec-00000000000000000abc");
        assert_eq!(InstanceId::from_random(u128::MAX).as_str().len(), 2 + 20);
    }

    #[test]
    fn parse_checks_prefix_and_charset() {
        assert!(ScalingGroupId::parse("asg-bp18p2yfxow2dloq").is_some());
        assert!(ScalingGroupId::parse("asc-bp18p2yfxow2dloq").is_none());
        assert!(ScalingGroupId::parse("asg-").is_none());
        assert!(ScalingGroupId::parse("asg-a b").is_none());
        assert!(ScalingGroupId::parse("asg-****").is_none());
    }
}
