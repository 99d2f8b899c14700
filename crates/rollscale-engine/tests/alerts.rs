//! R15 alert rules: the events of real rolling updates over the simulated fleet reach a real
//! HTTP webhook on loopback, once each, retried while it fails, given up after the last
//! attempt, dropped when the rule is disabled.

use rollscale_core::alert::{DeliveryStatus, EventPattern, KeywordFilter, Relation, Webhook, WebhookMethod};
use rollscale_core::domain::EventLevel;
use rollscale_core::ids::ExecutionId;
use rollscale_core::task::{InstanceDecision, TaskStatus, WaitingStatus};
use rollscale_engine::alerts::{AlertSenderConfig, RuleChange};
use rollscale_engine::service::TaskInstance;
use rollscale_fleet::notify::WebhookNotifier;
use rollscale_test_support::engine::*;
use rollscale_test_support::webhook::WebhookReceiver;
use rollscale_test_support::{net, wait};
use std::sync::Arc;
use std::time::Duration;

/// Where the rules send: the receiver's path, with a secret in its query.
const HOOK: &str = "/hooks/rollscale?token=s3cret-token";

fn image_params(group: &str) -> serde_json::Value {
    serde_json::json!({
        "invokeType": "invoke", "scalingGroupId": group, "imageId": NEW_IMAGE, "sourceImageId": OLD_IMAGE,
        "batchNumber": 1, "batchPauseOption": "Automatic",
    })
}

fn fast_sender() -> AlertSenderConfig {
    AlertSenderConfig { poll_interval: Duration::from_millis(20), ..AlertSenderConfig::default() }
}

fn critical_rule(name: &str) -> RuleChange {
    RuleChange {
        name: name.into(),
        patterns: vec![EventPattern { levels: vec![EventLevel::Critical], ..Default::default() }],
        ..RuleChange::default()
    }
}

fn webhook(id: &str, url: &str) -> Webhook {
    Webhook { id: id.into(), url: url.into(), method: WebhookMethod::Post }
}

async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    wait::until(what, Duration::from_secs(20), Duration::from_millis(20), async || probe()).await
}

/// Waits until the instance's `attempt`-th try has failed and the task waits for a decision.
async fn failed_attempt(h: &Harness, task: &ExecutionId, instance: &rollscale_core::ids::InstanceId, attempt: u32) {
    wait_for_task(&h.service, task, &format!("attempt {attempt} of {instance} to fail"), |state, works| {
        let work = works.iter().find(|w| &w.instance_id == instance).expect("the instance's work");
        work.attempt >= attempt
            && work.status == rollscale_core::task::InstanceStatus::Failed
            && state.waiting == Some(WaitingStatus::FailurePaused)
    })
    .await;
}

async fn deliveries_settled(h: &Harness, rule: &str, count: usize) -> Vec<rollscale_core::alert::Delivery> {
    let what = format!("the deliveries of {rule} to settle");
    wait::until_ok(&what, Duration::from_secs(20), Duration::from_millis(20), async || {
        let all = h.service.alert_deliveries(Some(rule), None, 100).await.expect("deliveries");
        if all.len() >= count && all.iter().all(|d| d.status != DeliveryStatus::Pending) {
            Ok(all)
        } else {
            Err(format!("{all:?}"))
        }
    })
    .await
}

/// A failed instance's Critical event reaches the webhook once, as JSON naming the execution,
/// the group and the rule; events of other levels do not; a rule that takes `Succeeded`
/// events of the script template hears the task's success.
#[tokio::test]
async fn an_instance_failure_reaches_the_webhook_once() {
    let h = Harness::new(1).await;
    let group = h.group(3).await;
    let receiver = WebhookReceiver::start();
    h.service.put_alert_rule(critical_rule("critical")).await.expect("rule");
    h.service.put_alert_webhooks("critical", vec![webhook("ops", &receiver.url(HOOK))]).await.expect("webhook");
    h.service
        .put_alert_rule(RuleChange {
            name: "script-done".into(),
            patterns: vec![EventPattern {
                names: vec![SCRIPT_TEMPLATE.into()],
                kinds: vec!["Succeeded".into()],
                ..Default::default()
            }],
            ..RuleChange::default()
        })
        .await
        .expect("rule");
    h.service.put_alert_webhooks("script-done", vec![webhook("ops", &receiver.url(HOOK))]).await.expect("webhook");
    let _sender = h.service.spawn_alert_sender(Arc::new(WebhookNotifier::default()), fast_sender());

    let victim = h.instances(&group).await[1].id.clone();
    h.fleet.fail_next(&victim, 1);
    let params = serde_json::json!({
        "invokeType": "invoke", "scalingGroupId": group.id.as_str(), "commandType": "RunShellScript",
        "invokeScript": "echo hi", "batchNumber": 1, "batchPauseOption": "Automatic",
    });
    let task = h.start(SCRIPT_TEMPLATE, params).await;
    h.wait(&task.id, Some(WaitingStatus::FailurePaused)).await;

    // Two Critical events: the instance's failure, and the task's FailurePaused pause.
    let critical = deliveries_settled(&h, "critical", 2).await;
    let mut kinds: Vec<&str> = critical.iter().map(|d| d.event.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, vec!["InstanceFailed", "Paused"], "{critical:?}");
    assert!(critical.iter().all(|d| d.status == DeliveryStatus::Delivered && d.attempts == 1), "{critical:?}");
    let got = wait_for("the webhook's requests", || Some(receiver.got()).filter(|got| got.len() >= 2)).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let failed = got.iter().find(|r| r.body.contains("InstanceFailed")).expect("the instance's failure was sent");
    assert!(failed.request_line.starts_with("POST /hooks/rollscale?token=s3cret-token "), "{}", failed.request_line);
    let delivery = critical.iter().find(|d| d.event.kind == "InstanceFailed").unwrap();
    assert_eq!(failed.delivery.as_deref(), Some(delivery.id.as_str()));
    let body: serde_json::Value = serde_json::from_str(&failed.body).expect("a JSON body");
    assert_eq!(body["kind"], "InstanceFailed");
    assert_eq!(body["level"], "CRITICAL");
    assert_eq!(body["ruleName"], "critical");
    assert_eq!(body["executionId"], task.id.as_str());
    assert_eq!(body["scalingGroupId"], group.id.as_str());
    assert!(body["content"].as_str().unwrap_or_default().contains(victim.as_str()), "{body}");

    // The retry succeeds: the task's success reaches the second rule, nothing more the first.
    h.service
        .decide_instance(&task.id, &TaskInstance::Instance(victim.clone()), InstanceDecision::Retry)
        .await
        .expect("retry");
    let (done, _) = h.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Success);
    let succeeded = deliveries_settled(&h, "script-done", 1).await;
    assert_eq!(succeeded.len(), 1);
    let got = wait_for("the third request", || Some(receiver.got()).filter(|got| got.len() >= 3)).await;
    let body: serde_json::Value = serde_json::from_str(&got[2].body).expect("a JSON body");
    assert_eq!((body["kind"].as_str(), body["ruleName"].as_str()), (Some("Succeeded"), Some("script-done")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.got().len(), 3, "no event twice, none of another level");
    assert_eq!(h.service.alert_deliveries(Some("critical"), None, 100).await.unwrap().len(), 2);
}

/// A webhook that fails is tried again after the backoff and delivered when it answers 2xx;
/// the receiver sees the same delivery id each time. One that cannot be reached is given up
/// after the last attempt, with a reason that names its host and never its query.
#[tokio::test]
async fn failing_webhooks_are_retried_then_given_up() {
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    let flaky = WebhookReceiver::failing(&[503]);
    // A port that was just free: nobody listens there.
    let closed = format!("http://{}/x?access_token=do-not-log-me", net::free_address());
    h.service
        .put_alert_rule(RuleChange {
            name: "failures".into(),
            patterns: vec![EventPattern {
                keywords: Some(KeywordFilter { keywords: vec!["failed".into()], relation: Relation::And }),
                kinds: vec!["InstanceFailed".into()],
                ..Default::default()
            }],
            ..RuleChange::default()
        })
        .await
        .expect("rule");
    h.service
        .put_alert_webhooks("failures", vec![webhook("flaky", &flaky.url(HOOK)), webhook("gone", &closed)])
        .await
        .expect("webhooks");
    let config = AlertSenderConfig { max_attempts: 2, ..fast_sender() };
    let _sender = h.service.spawn_alert_sender(Arc::new(WebhookNotifier::new(Duration::from_secs(2))), config);

    let victim = h.instances(&group).await[0].id.clone();
    h.fleet.fail_next(&victim, 1);
    let task = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str())).await;
    h.wait(&task.id, Some(WaitingStatus::FailurePaused)).await;

    let settled = deliveries_settled(&h, "failures", 2).await;
    let by_webhook = |id: &str| settled.iter().find(|d| d.webhook_id == id).expect("a delivery per webhook").clone();
    let delivered = by_webhook("flaky");
    assert_eq!((delivered.status, delivered.attempts), (DeliveryStatus::Delivered, 2), "{delivered:?}");
    let got = flaky.got();
    assert_eq!(got.len(), 2, "one failed attempt and one delivered: {got:?}");
    assert_eq!(got[0].delivery, got[1].delivery, "a retry carries the same delivery id");
    let attempts: Vec<i64> = got
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts, vec![1, 2]);

    let given_up = by_webhook("gone");
    assert_eq!((given_up.status, given_up.attempts), (DeliveryStatus::Failed, 2), "{given_up:?}");
    let reason = given_up.last_error.clone().unwrap_or_default();
    assert!(reason.contains("could not connect") && reason.contains("127.0.0.1"), "{reason}");
    assert!(!reason.contains("do-not-log-me"), "the query never reaches the record: {reason}");
    let failed = h.service.alert_deliveries(None, Some(DeliveryStatus::Failed), 10).await.unwrap();
    assert_eq!(failed.len(), 1);
}

/// Deliveries of a rule disabled before their turn are dropped with the reason, and a
/// disabled rule makes no new ones; enabled again, it hears the next event.
#[tokio::test]
async fn a_disabled_rule_goes_quiet() {
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    let receiver = WebhookReceiver::start();
    h.service.put_alert_rule(critical_rule("critical")).await.expect("rule");
    h.service.put_alert_webhooks("critical", vec![webhook("ops", &receiver.url(HOOK))]).await.expect("webhook");

    // No sender yet: the delivery waits in the store.
    let victim = h.instances(&group).await[0].id.clone();
    h.fleet.fail_next(&victim, 3);
    let task = h.start(IMAGE_TEMPLATE, image_params(group.id.as_str())).await;
    h.wait(&task.id, Some(WaitingStatus::FailurePaused)).await;
    let pending = h.service.alert_deliveries(Some("critical"), Some(DeliveryStatus::Pending), 10).await.unwrap();
    assert_eq!(pending.len(), 2, "the failure and the pause: {pending:?}");
    h.service.set_alert_rules_enabled(&["critical".into()], false).await.expect("disable");

    let sender = h.service.spawn_alert_sender(Arc::new(WebhookNotifier::default()), fast_sender());
    let dropped = deliveries_settled(&h, "critical", 2).await;
    for delivery in &dropped {
        assert_eq!(delivery.status, DeliveryStatus::Failed);
        assert_eq!(delivery.last_error.as_deref(), Some("dropped: its alert rule is disabled"));
        assert_eq!(delivery.attempts, 0, "never sent");
    }

    // Disabled: the retry's failure makes no delivery.
    h.service
        .decide_instance(&task.id, &TaskInstance::Instance(victim.clone()), InstanceDecision::Retry)
        .await
        .expect("retry");
    failed_attempt(&h, &task.id, &victim, 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.service.alert_deliveries(Some("critical"), None, 10).await.unwrap().len(), 2);
    assert!(receiver.got().is_empty(), "nothing was sent for the dropped deliveries");
    // Enabled again: the next failure is heard.
    h.service.set_alert_rules_enabled(&["critical".into()], true).await.expect("enable");
    h.service
        .decide_instance(&task.id, &TaskInstance::Instance(victim.clone()), InstanceDecision::Retry)
        .await
        .expect("retry");
    failed_attempt(&h, &task.id, &victim, 3).await;
    let got = wait_for("the third failure's alert", || {
        Some(receiver.got()).filter(|got| got.iter().any(|r| r.body.contains("InstanceFailed")))
    })
    .await;
    assert!(got.iter().all(|r| !r.body.contains("dropped")), "{got:?}");
    h.service
        .decide_instance(&task.id, &TaskInstance::Instance(victim.clone()), InstanceDecision::Retry)
        .await
        .expect("retry");
    let (done, _) = h.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Success, "the fourth try succeeds");
    drop(sender);
}

/// Bad rules and webhooks are refused with a code and change nothing.
#[tokio::test]
async fn bad_rules_and_webhooks_are_refused() {
    let h = Harness::new(1).await;
    let refused = h.service.put_alert_rule(RuleChange { name: "x".into(), ..RuleChange::default() }).await;
    assert_eq!(refused.unwrap_err().code(), "MissingParameter", "a rule needs a pattern");
    let refused = h.service.put_alert_rule(RuleChange { name: "bad name".into(), ..critical_rule("") }).await;
    assert_eq!(refused.unwrap_err().code(), "InvalidParameter");
    let unknown = h.service.put_alert_webhooks("nope", vec![webhook("a", "http://127.0.0.1:1/")]).await;
    assert_eq!(unknown.unwrap_err().code(), "ResourceNotFound");
    h.service.put_alert_rule(critical_rule("r")).await.expect("rule");
    for url in ["ftp://h/", "http://user:pw@h/", "https://"] {
        let refused = h.service.put_alert_webhooks("r", vec![webhook("a", url)]).await;
        assert_eq!(refused.unwrap_err().code(), "InvalidParameter", "{url}");
    }
    let twice = h.service.put_alert_webhooks("r", vec![webhook("a", "http://h/"), webhook("a", "http://h/2")]).await;
    assert_eq!(twice.unwrap_err().code(), "InvalidParameter");
    assert!(h.service.alert_rule("r").await.unwrap().webhooks.is_empty(), "nothing was added");
    let missing = h.service.delete_alert_rules(&["r".into(), "nope".into()]).await;
    assert_eq!(missing.unwrap_err().code(), "ResourceNotFound");
    assert!(h.service.alert_rule("r").await.is_ok(), "an unknown name deletes nothing");
    // A webhook is changed by its id; the rule's patterns are changed by a second Put.
    h.service.put_alert_webhooks("r", vec![webhook("a", "http://h/1")]).await.unwrap();
    let rule = h.service.put_alert_webhooks("r", vec![webhook("a", "http://h/2")]).await.unwrap();
    assert_eq!(rule.webhooks, vec![webhook("a", "http://h/2")]);
    let rule =
        h.service.put_alert_rule(RuleChange { description: Some("pager".into()), ..critical_rule("r") }).await.unwrap();
    assert_eq!((rule.description.as_str(), rule.webhooks.len(), rule.enabled), ("pager", 1, true));
    let gone = h.service.delete_alert_webhooks("r", &["b".into()]).await;
    assert_eq!(gone.unwrap_err().code(), "ResourceNotFound");
    assert!(h.service.delete_alert_webhooks("r", &["a".into()]).await.unwrap().webhooks.is_empty());
}
