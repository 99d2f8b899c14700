//! Issue 14 (7): the audit log had no retention, and a flood of calls grew it without bound.
//! The audit pruner deletes, in the background and again at each interval, the events older
//! than the maximum age and those beyond the newest maximum number, oldest first.

use rollscale_core::access::{AuditEvent, AuditFilter};
use rollscale_engine::access::AuditRetention;
use rollscale_engine::{now_millis, Service};
use rollscale_test_support::engine::Harness;
use rollscale_test_support::wait;
use std::time::Duration;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn event(id: &str, at: i64) -> AuditEvent {
    AuditEvent {
        id: id.into(),
        at,
        user_name: "alice".into(),
        access_key_id: "LTAIalice".into(),
        action: "ess:DescribeScalingGroups".into(),
        resource: "*".into(),
        source_ip: "127.0.0.1".into(),
        result_code: "Success".into(),
        http_status: 200,
        request_id: id.into(),
        request: serde_json::json!({}),
    }
}

async fn ids(service: &Service) -> Vec<String> {
    let (events, _) = service.audit_events(&AuditFilter::default(), 0, 1000).await.expect("the audit log");
    events.into_iter().map(|event| event.id).collect()
}

#[tokio::test]
async fn the_audit_pruner_keeps_the_log_within_its_age_and_size_in_the_background() {
    let harness = Harness::builder().build().await;
    let now = now_millis();
    for i in 0..4 {
        harness.store.audit_insert(&event(&format!("old-{i}"), now - 31 * DAY_MS + i)).await.expect("insert");
    }
    for i in 0..3 {
        harness.store.audit_insert(&event(&format!("new-{i}"), now - 1000 + i)).await.expect("insert");
    }
    let retention = AuditRetention {
        max_age: Some(Duration::from_secs(30 * 24 * 3600)),
        max_rows: Some(5),
        every: Duration::from_millis(20),
        batch: 2,
        pause: Duration::from_millis(1),
    };
    harness.service.spawn_audit_pruner(retention);

    // Older than 30 days: gone, in batches of 2, though 7 events are within 5 + 2.
    let service = &harness.service;
    let kept = wait::until_ok(
        "the events over 30 days old pruned",
        Duration::from_secs(10),
        Duration::from_millis(10),
        async || {
            let ids = ids(service).await;
            if ids.iter().any(|id| id.starts_with("old-")) {
                Err(format!("{ids:?}"))
            } else {
                Ok(ids)
            }
        },
    )
    .await;
    assert_eq!(kept, ["new-2", "new-1", "new-0"], "what is young enough stays");

    // Beyond the newest 5: the oldest go, at the pruner's next pass, without being asked.
    for i in 3..9 {
        harness.store.audit_insert(&event(&format!("new-{i}"), now + i)).await.expect("insert");
    }
    let kept =
        wait::until_ok("the log cut to its newest 5", Duration::from_secs(10), Duration::from_millis(10), async || {
            let ids = ids(service).await;
            if ids.len() > 5 {
                Err(format!("{ids:?}"))
            } else {
                Ok(ids)
            }
        })
        .await;
    assert_eq!(kept, ["new-8", "new-7", "new-6", "new-5", "new-4"]);
}

#[tokio::test]
async fn a_pass_without_limits_deletes_nothing_and_reports_what_it_deleted() {
    let harness = Harness::builder().build().await;
    for i in 0..5 {
        harness.store.audit_insert(&event(&format!("ev-{i}"), 1000 + i)).await.expect("insert");
    }
    let unlimited = AuditRetention { max_age: None, max_rows: None, ..AuditRetention::default() };
    assert_eq!(harness.service.prune_audit_log(&unlimited).await.expect("a pass"), 0);
    assert_eq!(ids(&harness.service).await.len(), 5);
    let three = AuditRetention { max_age: None, max_rows: Some(3), batch: 1, ..AuditRetention::default() };
    assert_eq!(harness.service.prune_audit_log(&three).await.expect("a pass"), 2, "in batches of one");
    assert_eq!(ids(&harness.service).await, ["ev-4", "ev-3", "ev-2"]);
    // The default keeps a month: events from 1970 go.
    assert_eq!(harness.service.prune_audit_log(&AuditRetention::default()).await.expect("a pass"), 3);
}
