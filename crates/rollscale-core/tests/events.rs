//! Event kinds (`domain::EventKind`, R15, R17): their wire names are the strings events were
//! stored and sent with when the kind was a string, so stored rows read back unchanged, and
//! alert rules' `EventTypeList` compares by them.

use rollscale_core::alert::EventPattern;
use rollscale_core::domain::{Event, EventKind, EventLevel};
use serde_json::json;

const WIRE_NAMES: [&str; 14] = [
    "Started",
    "BatchDone",
    "Paused",
    "InstanceFailed",
    "Succeeded",
    "Cancelled",
    "Failed",
    "Fired",
    "ImageCreated",
    "ConfigurationsUpdated",
    "InstanceUnhealthy",
    "InstanceHealthy",
    "InstanceDrift",
    "InstanceReplaced",
];

/// R15: every kind the engine raises has the wire name it had as a string, in serde, `as_str`,
/// `Display` and `FromStr` alike; other names are no kind.
#[test]
fn r15_event_kinds_keep_their_wire_names() {
    assert_eq!(EventKind::ALL.len(), WIRE_NAMES.len());
    for (kind, name) in EventKind::ALL.iter().zip(WIRE_NAMES) {
        assert_eq!(kind.as_str(), name);
        assert_eq!(kind.to_string(), name);
        assert_eq!(name.parse::<EventKind>(), Ok(*kind));
        assert_eq!(serde_json::to_value(kind).expect("serializes"), json!(name));
        assert_eq!(serde_json::from_value::<EventKind>(json!(name)).expect("deserializes"), *kind);
        assert!(*kind == name, "{kind} equals its wire name");
    }
    for other in ["", "started", "Success", "InstanceFailed "] {
        assert!(other.parse::<EventKind>().is_err(), "{other:?}");
        assert!(serde_json::from_value::<EventKind>(json!(other)).is_err(), "{other:?}");
    }
}

/// An event's body as the store kept it while the kind was a string reads back, and is written
/// again byte for byte the same.
#[test]
fn r15_a_stored_event_reads_back_and_writes_the_same_json() {
    let stored = json!({
        "id": "exec-0123456789abcdef0123-4-InstanceFailed",
        "name": "ACS-ESS-RollingUpdateByRunCommandInScalingGroup",
        "level": "Critical",
        "kind": "InstanceFailed",
        "group_id": "asg-0123456789abcdef0123",
        "execution_id": "exec-0123456789abcdef0123",
        "content": "instance i-1 failed at Apply: exit code 3",
        "created_at": 1_700_000_000_000_i64,
    });
    let event: Event = serde_json::from_value(stored.clone()).expect("a stored event reads");
    assert_eq!(event.kind, EventKind::InstanceFailed);
    assert_eq!(event.level, EventLevel::Critical);
    assert_eq!(serde_json::to_value(&event).expect("serializes"), stored);
    assert!(event.search_text().contains("\ninstancefailed\n"), "the kind is searched by its name");

    let health = json!({
        "id": "i-1-InstanceDrift-5",
        "name": "ESS-HealthCheck",
        "level": "Warn",
        "kind": "InstanceDrift",
        "group_id": "asg-0123456789abcdef0123",
        "execution_id": null,
        "content": "instance i-1 differs from its record: image",
        "created_at": 5,
    });
    let event: Event = serde_json::from_value(health.clone()).expect("a health event reads");
    assert_eq!(event.kind, EventKind::InstanceDrift);
    assert_eq!(serde_json::to_value(&event).expect("serializes"), health);
}

/// R15: an alert rule's `EventTypeList` takes events by kind name; a name that is no kind is
/// kept as given and matches nothing.
#[test]
fn r15_alert_patterns_take_kinds_by_their_wire_names() {
    let event = |kind: EventKind| Event {
        id: format!("exec-0123456789abcdef0123-1-{kind}"),
        name: "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup".into(),
        level: EventLevel::Info,
        kind,
        group_id: rollscale_core::ids::ScalingGroupId::parse("asg-0123456789abcdef0123").expect("id"),
        execution_id: None,
        content: String::new(),
        created_at: 0,
    };
    let pattern = EventPattern { kinds: vec!["Succeeded".into(), "Nothing".into()], ..Default::default() }
        .normalized()
        .expect("a valid pattern");
    assert_eq!(pattern.kinds, vec!["Succeeded".to_string(), "Nothing".to_string()]);
    assert!(pattern.matches(&event(EventKind::Succeeded)));
    assert!(!pattern.matches(&event(EventKind::Failed)));
    let lower = EventPattern { kinds: vec!["succeeded".into()], ..Default::default() };
    assert!(!lower.matches(&event(EventKind::Succeeded)), "kind names are compared exactly");
}
