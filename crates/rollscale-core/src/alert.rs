//! Alert rules (R15): which events an operator wants to hear about, and the webhooks that
//! hear them. A rule holds event patterns in CloudMonitor's shape (`PutEventRule`): each
//! names the product, the template names, the event kinds and levels it takes (empty = any),
//! and optionally keywords that must all (`and`) or any (`or`) occur in the event. A rule
//! matches an event when any of its patterns does. Its targets (`PutEventRuleTargets`) are
//! webhooks; each matching event becomes one delivery per webhook, retried with backoff
//! until the receiver answers 2xx or the attempts run out.
//!
//! Pure: validation, matching, the retry schedule and the webhook's body are here; the store
//! keeps rules and deliveries, the engine sends.

use crate::domain::{Event, EventLevel, Millis};
use crate::CoreError;
use serde::{Deserialize, Serialize};

/// The product whose events rollscale raises; a pattern may name it as CloudMonitor does
/// (`ess`, any case) or leave it out.
pub const PRODUCT: &str = "ess";

/// Most patterns of a rule, webhooks of a rule, and entries of a pattern's lists.
pub const MAX_PATTERNS: usize = 50;
pub const MAX_TARGETS: usize = 20;
pub const MAX_LIST: usize = 50;
/// Attempts of one delivery before it is given up (Failed).
pub const MAX_ATTEMPTS: u32 = 10;
/// The wait before the second attempt; it doubles with each failure, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Millis = 1_000;
pub const MAX_BACKOFF: Millis = 300_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Relation {
    #[serde(rename = "and")]
    And,
    #[serde(rename = "or")]
    Or,
}

/// Words that must occur in the event (in its name, kind, level, group, execution or
/// content; any case).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeywordFilter {
    pub keywords: Vec<String>,
    pub relation: Relation,
}

/// One pattern of a rule. An empty list takes any value; `*` in a list does too.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPattern {
    /// The template names (`ACS-ESS-RollingUpdateBy…`) the pattern takes.
    #[serde(default)]
    pub names: Vec<String>,
    /// The event kinds by their wire names ([`crate::domain::EventKind`]: `Started`,
    /// `InstanceFailed`, …), as given: a name that is no kind is kept and matches nothing.
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub levels: Vec<EventLevel>,
    #[serde(default)]
    pub keywords: Option<KeywordFilter>,
}

macro_rules! wire_enum_local {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $wire)] $variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// The wire name, in any case.
            pub fn parse(text: &str) -> Option<$name> {
                [$($name::$variant),+].into_iter().find(|value| value.as_str().eq_ignore_ascii_case(text))
            }
        }
    };
}

wire_enum_local!(
    /// How a webhook is called: POST sends the event as a JSON body, GET as query parameters.
    WebhookMethod { Post = "POST", Get = "GET" }
);

/// A webhook a rule delivers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// The target's id within its rule (`PutEventRuleTargets` `WebhookParameters.N.Id`).
    pub id: String,
    pub url: String,
    pub method: WebhookMethod,
}

/// An alert rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRule {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub enabled: bool,
    pub patterns: Vec<EventPattern>,
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeliveryStatus {
    /// Not yet answered 2xx; tried again at `next_attempt_at`.
    Pending,
    Delivered,
    /// Given up after [`MAX_ATTEMPTS`], or its rule or webhook was deleted meanwhile.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "Pending",
            DeliveryStatus::Delivered => "Delivered",
            DeliveryStatus::Failed => "Failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Failed]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// One event on its way to one webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `<rule>/<webhook id>/<event id>`: an event reaches a webhook of a rule once.
    pub id: String,
    pub rule_name: String,
    pub webhook_id: String,
    pub url: String,
    pub method: WebhookMethod,
    pub event: Event,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Millis,
    /// The last failed attempt's reason (an HTTP status, or why no answer came).
    #[serde(default)]
    pub last_error: Option<String>,
    pub created_at: Millis,
    #[serde(default)]
    pub delivered_at: Option<Millis>,
}

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered with this status.
    Answered(u16),
    /// No answer: refused, timed out, reset.
    Unreachable(String),
}

fn invalid(name: &str, reason: impl Into<String>) -> CoreError {
    CoreError::invalid(name, reason)
}

/// A rule's name: 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit.
pub fn check_rule_name(name: &str) -> Result<(), CoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid("RuleName", "1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit"))
    }
}

/// A webhook's id within its rule: as a rule's name, at most 64 characters.
pub fn check_webhook_id(id: &str) -> Result<(), CoreError> {
    check_rule_name(id).map_err(|_| invalid("Id", "1 to 64 letters, digits, '-', '_' or '.'"))
}

/// A webhook's URL: `http://` or `https://host[:port]/…`, at most 2048 characters, no spaces,
/// no credentials in the authority (they would be shown back by every Describe call).
pub fn check_webhook_url(url: &str) -> Result<(), CoreError> {
    let bad = |reason: &str| invalid("Url", reason.to_string());
    if url.len() > 2048 {
        return Err(bad("at most 2048 characters"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("no spaces or control characters"));
    }
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        return Err(bad("must start with http:// or https://"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad("no user or password in the URL; put a token in its path or query instead"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("an IPv6 host needs its closing ']'"))?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(|| bad("':' must follow ']'"))?)),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(bad("needs a host"));
    }
    if port.is_some_and(|port| port.parse::<u16>().map_or(true, |port| port == 0)) {
        return Err(bad("the port must be 1 to 65535"));
    }
    Ok(())
}

/// The URL with its path and query left out, for logs: a webhook's token often rides in
/// its query (`?access_token=…`), and secrets never reach logs.
pub fn redacted_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let hidden = rest.len() > authority.len();
    format!("{scheme}://{authority}{}", if hidden { "/…" } else { "" })
}

impl EventPattern {
    /// Checks the pattern's lists; `*` entries and duplicates are dropped (an empty list
    /// takes any value).
    pub fn normalized(mut self) -> Result<EventPattern, CoreError> {
        for (name, list) in [("NameList", &mut self.names), ("EventTypeList", &mut self.kinds)] {
            if list.len() > MAX_LIST {
                return Err(invalid(name, format!("at most {MAX_LIST} entries")));
            }
            if list.iter().any(|value| value.trim().is_empty() || value.len() > 128) {
                return Err(invalid(name, "entries are 1 to 128 characters"));
            }
            list.retain(|value| value != "*");
            dedup(list);
        }
        self.levels.sort();
        self.levels.dedup();
        if let Some(filter) = &mut self.keywords {
            if filter.keywords.is_empty() || filter.keywords.len() > MAX_LIST {
                return Err(invalid("KeywordFilterObj.Keywords", format!("1 to {MAX_LIST} keywords")));
            }
            if filter.keywords.iter().any(|word| word.trim().is_empty() || word.len() > 128) {
                return Err(invalid("KeywordFilterObj.Keywords", "keywords are 1 to 128 characters"));
            }
            for word in &mut filter.keywords {
                *word = word.trim().to_lowercase();
            }
            dedup(&mut filter.keywords);
        }
        Ok(self)
    }

    pub fn matches(&self, event: &Event) -> bool {
        let takes = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        if !takes(&self.names, &event.name) || !takes(&self.kinds, event.kind.as_str()) {
            return false;
        }
        if !self.levels.is_empty() && !self.levels.contains(&event.level) {
            return false;
        }
        match &self.keywords {
            None => true,
            Some(filter) => {
                let text = event.search_text();
                let found = |word: &String| text.contains(word.as_str());
                match filter.relation {
                    Relation::And => filter.keywords.iter().all(found),
                    Relation::Or => filter.keywords.iter().any(found),
                }
            }
        }
    }
}

fn dedup(list: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|value| seen.insert(value.clone()));
}

/// An event level as CloudMonitor spells it (`CRITICAL`, `WARN`, `INFO`; any case).
pub fn parse_level(text: &str) -> Option<EventLevel> {
    EventLevel::ALL.iter().copied().find(|level| level.as_str().eq_ignore_ascii_case(text))
}

/// CloudMonitor's spelling of a level.
pub fn level_name(level: EventLevel) -> &'static str {
    match level {
        EventLevel::Info => "INFO",
        EventLevel::Warn => "WARN",
        EventLevel::Critical => "CRITICAL",
    }
}

impl AlertRule {
    /// Checks a rule before it is stored.
    pub fn check(&self) -> Result<(), CoreError> {
        check_rule_name(&self.name)?;
        crate::names::check_text("Description", &self.description, 256)?;
        if self.patterns.is_empty() {
            return Err(CoreError::MissingParameter("EventPattern.1.Product".into()));
        }
        if self.patterns.len() > MAX_PATTERNS {
            return Err(invalid("EventPattern", format!("at most {MAX_PATTERNS} patterns")));
        }
        if self.webhooks.len() > MAX_TARGETS {
            return Err(invalid("WebhookParameters", format!("at most {MAX_TARGETS} webhooks a rule")));
        }
        for webhook in &self.webhooks {
            check_webhook_id(&webhook.id)?;
            check_webhook_url(&webhook.url)?;
        }
        Ok(())
    }

    /// Whether the rule, enabled, takes the event.
    pub fn matches(&self, event: &Event) -> bool {
        self.enabled && self.patterns.iter().any(|pattern| pattern.matches(event))
    }

    /// The deliveries an event makes for this rule: one per webhook, due at once.
    pub fn deliveries_for(&self, event: &Event, now: Millis) -> Vec<Delivery> {
        if !self.matches(event) {
            return Vec::new();
        }
        self.webhooks
            .iter()
            .map(|webhook| Delivery {
                id: format!("{}/{}/{}", self.name, webhook.id, event.id),
                rule_name: self.name.clone(),
                webhook_id: webhook.id.clone(),
                url: webhook.url.clone(),
                method: webhook.method,
                event: event.clone(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
                created_at: now,
                delivered_at: None,
            })
            .collect()
    }
}

/// The wait after the `attempts`-th failed attempt: 1 s, 2 s, 4 s, … up to 5 minutes.
pub fn backoff(attempts: u32) -> Millis {
    let doublings = attempts.saturating_sub(1).min(20);
    (FIRST_BACKOFF << doublings).min(MAX_BACKOFF)
}

impl Delivery {
    /// The delivery after an attempt at `now` that ended with `outcome`; `max_attempts` is
    /// usually [`MAX_ATTEMPTS`]. A 2xx answer delivers it; anything else tries again after
    /// [`backoff`], until the attempts run out.
    pub fn after_attempt(&self, outcome: &AttemptOutcome, now: Millis, max_attempts: u32) -> Delivery {
        let mut next = self.clone();
        if next.status != DeliveryStatus::Pending {
            return next;
        }
        next.attempts += 1;
        match outcome {
            AttemptOutcome::Answered(status) if (200..300).contains(status) => {
                next.status = DeliveryStatus::Delivered;
                next.delivered_at = Some(now);
                next.last_error = None;
            }
            failure => {
                next.last_error = Some(match failure {
                    AttemptOutcome::Answered(status) => format!("the webhook answered HTTP {status}"),
                    AttemptOutcome::Unreachable(reason) => format!("no answer: {reason}"),
                });
                if next.attempts >= max_attempts {
                    next.status = DeliveryStatus::Failed;
                } else {
                    next.next_attempt_at = now + backoff(next.attempts);
                }
            }
        }
        next
    }

    /// What the webhook receives: the event, which rule and delivery sent it, and the
    /// attempt (a receiver dedupes on `deliveryId`: delivery is at least once).
    pub fn body(&self) -> serde_json::Value {
        let event = &self.event;
        serde_json::json!({
            "deliveryId": self.id,
            "ruleName": self.rule_name,
            "attempt": self.attempts + 1,
            "product": "ESS",
            "eventId": event.id,
            "name": event.name,
            "kind": event.kind.as_str(),
            "level": level_name(event.level),
            "scalingGroupId": event.group_id,
            "executionId": event.execution_id.as_ref().map_or("", |id| id.as_str()),
            "content": event.content,
            "time": event.created_at,
        })
    }

    /// [`Delivery::body`] as query parameters, for a GET webhook.
    pub fn query(&self) -> Vec<(String, String)> {
        let body = self.body();
        let mut pairs = Vec::new();
        if let Some(fields) = body.as_object() {
            for (name, value) in fields {
                let text = match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                pairs.push((name.clone(), text));
            }
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventKind;
    use crate::ids::{ExecutionId, ScalingGroupId};

    fn event(kind: EventKind, level: EventLevel, content: &str) -> Event {
        Event {
            id: format!("exec-0123456789abcdef0123-3-{kind}"),
            name: "ACS-ESS-RollingUpdateByRunCommandInScalingGroup".into(),
            level,
            kind,
            group_id: ScalingGroupId::parse("asg-0123456789abcdef0123").expect("id"),
            execution_id: Some(ExecutionId::parse("exec-0123456789abcdef0123").expect("id")),
            content: content.into(),
            created_at: 1_000,
        }
    }

    fn rule(patterns: Vec<EventPattern>) -> AlertRule {
        AlertRule {
            name: "critical".into(),
            description: String::new(),
            enabled: true,
            patterns,
            webhooks: vec![Webhook {
                id: "hook".into(),
                url: "http://127.0.0.1:9/alerts".into(),
                method: WebhookMethod::Post,
            }],
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_pattern_takes_what_its_lists_name_and_any_value_of_an_empty_list() {
        let failed = event(EventKind::InstanceFailed, EventLevel::Critical, "instance i-aaa failed: exit code 3");
        let done = event(EventKind::Succeeded, EventLevel::Info, "10 instances updated");
        let critical = EventPattern { levels: vec![EventLevel::Critical], ..Default::default() };
        assert!(critical.matches(&failed) && !critical.matches(&done));
        let any = EventPattern::default();
        assert!(any.matches(&failed) && any.matches(&done));
        let by_kind = EventPattern { kinds: vec!["Succeeded".into(), "Cancelled".into()], ..Default::default() };
        assert!(!by_kind.matches(&failed) && by_kind.matches(&done));
        let by_name =
            EventPattern { names: vec!["ACS-ESS-RollingUpdateByConfigureOOSPackage".into()], ..Default::default() };
        assert!(!by_name.matches(&failed));
        let star = EventPattern { names: vec!["*".into()], kinds: vec!["*".into()], ..Default::default() }
            .normalized()
            .unwrap();
        assert!(star.matches(&failed) && star.matches(&done));
    }

    #[test]
    fn keywords_need_all_with_and_and_one_with_or_in_any_case() {
        let failed = event(EventKind::InstanceFailed, EventLevel::Critical, "instance i-aaa failed: exit code 3");
        let with = |words: &[&str], relation| {
            EventPattern {
                keywords: Some(KeywordFilter { keywords: words.iter().map(|w| w.to_string()).collect(), relation }),
                ..Default::default()
            }
            .normalized()
            .unwrap()
        };
        assert!(with(&["I-AAA", "exit code"], Relation::And).matches(&failed));
        assert!(!with(&["i-aaa", "i-bbb"], Relation::And).matches(&failed));
        assert!(with(&["i-bbb", "i-aaa"], Relation::Or).matches(&failed));
        assert!(with(&["ASG-0123456789abcdef0123"], Relation::And).matches(&failed), "the group id is searched too");
        assert!(!with(&["rollback"], Relation::Or).matches(&failed));
    }

    #[test]
    fn a_disabled_rule_or_one_without_webhooks_makes_no_delivery() {
        let failed = event(EventKind::InstanceFailed, EventLevel::Critical, "x");
        let mut r = rule(vec![EventPattern { levels: vec![EventLevel::Critical], ..Default::default() }]);
        let made = r.deliveries_for(&failed, 5);
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].id, "critical/hook/exec-0123456789abcdef0123-3-InstanceFailed");
        assert_eq!((made[0].status, made[0].attempts, made[0].next_attempt_at), (DeliveryStatus::Pending, 0, 5));
        r.enabled = false;
        assert!(r.deliveries_for(&failed, 5).is_empty());
        r.enabled = true;
        r.webhooks.clear();
        assert!(r.deliveries_for(&failed, 5).is_empty());
    }

    #[test]
    fn attempts_back_off_doubling_to_five_minutes_and_give_up_after_the_last() {
        assert_eq!((1..=5).map(backoff).collect::<Vec<_>>(), vec![1_000, 2_000, 4_000, 8_000, 16_000]);
        assert_eq!(backoff(12), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
        let failed = event(EventKind::InstanceFailed, EventLevel::Critical, "x");
        let mut delivery = rule(vec![EventPattern::default()]).deliveries_for(&failed, 0).remove(0);
        delivery = delivery.after_attempt(&AttemptOutcome::Answered(503), 10, 3);
        assert_eq!((delivery.status, delivery.attempts, delivery.next_attempt_at), (DeliveryStatus::Pending, 1, 1_010));
        assert_eq!(delivery.last_error.as_deref(), Some("the webhook answered HTTP 503"));
        delivery = delivery.after_attempt(&AttemptOutcome::Unreachable("connection refused".into()), 2_000, 3);
        assert_eq!((delivery.status, delivery.next_attempt_at), (DeliveryStatus::Pending, 4_000));
        let given_up = delivery.after_attempt(&AttemptOutcome::Answered(500), 5_000, 3);
        assert_eq!((given_up.status, given_up.attempts), (DeliveryStatus::Failed, 3));
        let delivered = delivery.after_attempt(&AttemptOutcome::Answered(204), 5_000, 3);
        assert_eq!(
            (delivered.status, delivered.delivered_at, delivered.last_error.clone()),
            (DeliveryStatus::Delivered, Some(5_000), None)
        );
        // A settled delivery stays as it is.
        assert_eq!(delivered.after_attempt(&AttemptOutcome::Answered(500), 9_000, 3), delivered);
    }

    #[test]
    fn the_body_carries_the_event_and_names_the_delivery() {
        let failed = event(EventKind::InstanceFailed, EventLevel::Critical, "instance i-aaa failed");
        let delivery = rule(vec![EventPattern::default()]).deliveries_for(&failed, 0).remove(0);
        let body = delivery.body();
        assert_eq!(body["level"], "CRITICAL");
        assert_eq!(body["kind"], "InstanceFailed");
        assert_eq!(body["scalingGroupId"], "asg-0123456789abcdef0123");
        assert_eq!(body["executionId"], "exec-0123456789abcdef0123");
        assert_eq!(body["deliveryId"], "critical/hook/exec-0123456789abcdef0123-3-InstanceFailed");
        assert_eq!(body["attempt"], 1);
        let query = delivery.query();
        assert!(query.contains(&("level".to_string(), "CRITICAL".to_string())));
        assert!(query.contains(&("attempt".to_string(), "1".to_string())));
    }

    #[test]
    fn names_urls_and_lists_are_checked() {
        for good in ["critical", "a", "rule-1_x.y", &"r".repeat(64)] {
            assert!(check_rule_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a b", "ü", &"r".repeat(65)] {
            assert!(check_rule_name(bad).is_err(), "{bad:?}");
        }
        for good in
            ["http://127.0.0.1:8080/hook", "http://alerts.internal/x?token=abc", "http://[::1]:9000/", "http://h"]
        {
            assert!(check_webhook_url(good).is_ok(), "{good}");
        }
        for bad in [
            "ftp://h/",
            "http://",
            "http:///path",
            "http://user:pw@h/",
            "http://h:0/",
            "http://h:99999/",
            "http://h/a b",
            "https://",
            "127.0.0.1:80",
        ] {
            assert!(check_webhook_url(bad).is_err(), "{bad}");
        }
        let too_many = EventPattern { names: vec!["x".into(); MAX_LIST + 1], ..Default::default() };
        assert!(too_many.normalized().is_err());
        let empty_keywords = EventPattern {
            keywords: Some(KeywordFilter { keywords: vec![], relation: Relation::Or }),
            ..Default::default()
        };
        assert!(empty_keywords.normalized().is_err());
        assert!(rule(vec![]).check().is_err());
        let mut r = rule(vec![EventPattern::default()]);
        assert!(r.check().is_ok());
        r.webhooks[0].url = "http://user@h/".into();
        assert!(r.check().is_err());
    }

    #[test]
    fn logs_see_a_webhooks_host_never_its_path_or_query() {
        assert_eq!(
            redacted_url("http://hooks.internal:8080/robot/send?access_token=s3cret"),
            "http://hooks.internal:8080/…"
        );
        assert_eq!(redacted_url("http://h"), "http://h");
    }

    #[test]
    fn levels_parse_in_cloudmonitors_spelling() {
        assert_eq!(parse_level("CRITICAL"), Some(EventLevel::Critical));
        assert_eq!(parse_level("warn"), Some(EventLevel::Warn));
        assert_eq!(parse_level("Info"), Some(EventLevel::Info));
        assert_eq!(parse_level("FATAL"), None);
        assert_eq!(WebhookMethod::parse("post"), Some(WebhookMethod::Post));
        assert_eq!(WebhookMethod::parse("PUT"), None);
    }
}
