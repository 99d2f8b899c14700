//! Keyword search over events (R15): `rollback and Critical`, `i-abc or i-def`,
//! `failed i-abc` (two words side by side mean `and`). `and` binds tighter than `or`; a word
//! matches when it occurs, in any case, in the event's name, kind, level, scaling group id,
//! execution id or content.

use crate::domain::Event;
use crate::CoreError;

/// A parsed query: any of the groups matches when all of its words do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeywordQuery {
    any_of: Vec<Vec<String>>,
}

/// Most characters of a query.
const MAX_QUERY: usize = 512;

impl KeywordQuery {
    pub fn parse(text: &str) -> Result<KeywordQuery, CoreError> {
        let invalid = |reason: &str| CoreError::InvalidParameter { name: "Keywords".into(), reason: reason.into() };
        if text.chars().count() > MAX_QUERY {
            return Err(invalid("at most 512 characters"));
        }
        let mut any_of: Vec<Vec<String>> = vec![Vec::new()];
        let mut after_operator = true;
        for word in text.split_whitespace() {
            match word.to_ascii_lowercase().as_str() {
                "or" | "and" if after_operator => return Err(invalid("an `and` or `or` needs a word on each side")),
                "or" => {
                    any_of.push(Vec::new());
                    after_operator = true;
                }
                "and" => after_operator = true,
                _ => {
                    any_of.last_mut().expect("never empty").push(word.to_lowercase());
                    after_operator = false;
                }
            }
        }
        if any_of.iter().all(Vec::is_empty) {
            return Err(invalid("give at least one word"));
        }
        if after_operator {
            return Err(invalid("an `and` or `or` needs a word on each side"));
        }
        Ok(KeywordQuery { any_of })
    }

    pub fn matches(&self, event: &Event) -> bool {
        let text = event.search_text();
        self.any_of.iter().any(|all| all.iter().all(|word| text.contains(word.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventLevel;
    use crate::ids::{ExecutionId, ScalingGroupId};

    fn event(kind: &str, level: EventLevel, content: &str) -> Event {
        Event {
            id: "ev-1".into(),
            name: "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup".into(),
            level,
            kind: kind.parse().expect("an event kind"),
            group_id: ScalingGroupId::parse("asg-0123456789abcdef0123").expect("id"),
            execution_id: Some(ExecutionId::parse("exec-0123456789abcdef0123").expect("id")),
            content: content.into(),
            created_at: 0,
        }
    }

    #[test]
    fn and_binds_tighter_than_or_and_case_does_not_matter() {
        let failed = event("InstanceFailed", EventLevel::Critical, "instance i-aaa failed: exit code 3");
        let done = event("Succeeded", EventLevel::Info, "12 instances updated");
        let q = |text: &str| KeywordQuery::parse(text).expect("valid");
        assert!(q("critical").matches(&failed) && !q("critical").matches(&done));
        assert!(q("i-aaa AND exit").matches(&failed));
        assert!(q("i-aaa exit").matches(&failed), "side by side means and");
        assert!(!q("i-aaa and succeeded").matches(&failed));
        assert!(q("nothing or INSTANCEFAILED").matches(&failed));
        assert!(q("i-bbb and failed or updated").matches(&done));
        assert!(!q("i-bbb and failed or updated").matches(&failed));
        assert!(q("asg-0123456789abcdef0123").matches(&done), "ids are searched");
        assert!(q("ReplaceSystemDisk").matches(&done), "the template name is searched");
    }

    #[test]
    fn malformed_queries_are_refused() {
        for text in ["", "   ", "and", "or x", "x or", "x and and y", "x or or y", &"x".repeat(513)] {
            assert!(
                matches!(KeywordQuery::parse(text), Err(CoreError::InvalidParameter { .. })),
                "{text:?} should be refused"
            );
        }
    }
}
