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

/// A query's filter by one id, as a client gave it: none (every row), an id, or a text that
/// is no id of its kind, which names nothing — the query finds nothing, as it would for an id
/// that does not exist. The server reads a client's text into it; lists of ids that filter a
/// query are `Option<&[Id]>` (a text that is no id left out: it names nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum IdFilter<T> {
    /// Not filtered by this id.
    #[default]
    Any,
    /// Only the rows of this id.
    Only(T),
    /// A text that is no id: no row.
    Nothing,
}

impl<T: PartialEq> IdFilter<T> {
    /// Whether a row of the id `id` passes.
    pub fn matches(&self, id: &T) -> bool {
        match self {
            IdFilter::Any => true,
            IdFilter::Only(only) => only == id,
            IdFilter::Nothing => false,
        }
    }
}

impl<T> IdFilter<T> {
    /// The id the filter keeps, if it names one.
    pub fn id(&self) -> Option<&T> {
        match self {
            IdFilter::Only(id) => Some(id),
            IdFilter::Any | IdFilter::Nothing => None,
        }
    }

    /// Whether the filter names nothing.
    pub fn is_nothing(&self) -> bool {
        matches!(self, IdFilter::Nothing)
    }
}

impl<T> From<Option<T>> for IdFilter<T> {
    /// `Some(id)` keeps that id's rows, `None` all.
    fn from(id: Option<T>) -> Self {
        id.map_or(IdFilter::Any, IdFilter::Only)
    }
}

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

    #[test]
    fn a_filter_keeps_its_id_all_or_none() {
        let (a, b) = (ScalingGroupId::from_random(1), ScalingGroupId::from_random(2));
        assert!(IdFilter::Any.matches(&a) && IdFilter::<ScalingGroupId>::Any.id().is_none());
        let only = IdFilter::from(Some(a.clone()));
        assert!(only.matches(&a) && !only.matches(&b) && only.id() == Some(&a));
        assert!(!IdFilter::Nothing.matches(&a) && IdFilter::<ScalingGroupId>::Nothing.is_nothing());
        assert_eq!(IdFilter::<ScalingGroupId>::from(None), IdFilter::Any);
    }
}
