//! The webhook notifier against real receivers on 127.0.0.1: plain HTTP and HTTPS (a
//! self-signed certificate served by rustls), POST and GET, a receiver's error status, a
//! redirect (not followed), a closed port, and a certificate nobody vouched for.

use rollscale_core::alert::{AttemptOutcome, Delivery, DeliveryStatus, WebhookMethod};
use rollscale_core::domain::{Event, EventKind, EventLevel};
use rollscale_core::ids::{ExecutionId, ScalingGroupId};
use rollscale_fleet::notify::{Notifier, WebhookNotifier};
use rollscale_test_support::net;
use rollscale_test_support::webhook::WebhookReceiver;
use std::time::Duration;

fn delivery(url: &str, method: WebhookMethod) -> Delivery {
    let event = Event {
        id: "exec-0123456789abcdef0123-7-InstanceFailed".into(),
        name: "ACS-ESS-RollingUpdateByRunCommandInScalingGroup".into(),
        level: EventLevel::Critical,
        kind: EventKind::InstanceFailed,
        group_id: ScalingGroupId::parse("asg-0123456789abcdef0123").unwrap(),
        execution_id: Some(ExecutionId::parse("exec-0123456789abcdef0123").unwrap()),
        content: "instance i-1 failed: exit 3".into(),
        created_at: 1_000,
    };
    Delivery {
        id: format!("oncall/pager/{}", event.id),
        rule_name: "oncall".into(),
        webhook_id: "pager".into(),
        url: url.into(),
        method,
        event,
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: 0,
        last_error: None,
        created_at: 0,
        delivered_at: None,
    }
}

#[tokio::test]
async fn posts_json_and_gets_query_parameters_over_http() {
    let receiver = WebhookReceiver::start();
    let notifier = WebhookNotifier::new(Duration::from_secs(5));
    let post = delivery(&receiver.url("/hook?token=abc"), WebhookMethod::Post);
    assert_eq!(notifier.send(&post).await, AttemptOutcome::Answered(200));
    let get = delivery(&receiver.url("/get"), WebhookMethod::Get);
    assert_eq!(notifier.send(&get).await, AttemptOutcome::Answered(200));
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    assert!(got[0].request_line.starts_with("POST /hook?token=abc "), "{}", got[0].request_line);
    assert_eq!(got[0].delivery.as_deref(), Some(post.id.as_str()));
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!((body["kind"].as_str(), body["level"].as_str()), (Some("InstanceFailed"), Some("CRITICAL")));
    assert!(got[1].request_line.starts_with("GET /get?"), "{}", got[1].request_line);
    assert!(
        got[1].request_line.contains("kind=InstanceFailed") && got[1].request_line.contains("level=CRITICAL"),
        "{}",
        got[1].request_line
    );
}

#[tokio::test]
async fn an_error_status_or_a_redirect_is_the_answer_and_a_closed_port_is_no_answer() {
    let failing = WebhookReceiver::answering(503);
    let moving = WebhookReceiver::redirecting("http://127.0.0.1:1/");
    let notifier = WebhookNotifier::new(Duration::from_secs(5));
    assert_eq!(notifier.send(&delivery(&failing.base(), WebhookMethod::Post)).await, AttemptOutcome::Answered(503));
    assert_eq!(
        notifier.send(&delivery(&moving.base(), WebhookMethod::Post)).await,
        AttemptOutcome::Answered(302),
        "not followed"
    );
    let closed = format!("http://{}/x?secret=do-not-log", net::free_address());
    match notifier.send(&delivery(&closed, WebhookMethod::Post)).await {
        AttemptOutcome::Unreachable(reason) => {
            assert!(reason.starts_with("could not connect (http://127.0.0.1:"), "{reason}");
            assert!(!reason.contains("do-not-log"), "{reason}");
        }
        other => panic!("a closed port answered: {other:?}"),
    }
}

#[tokio::test]
async fn https_webhooks_trust_the_given_ca_and_refuse_an_unknown_one() {
    let receiver = WebhookReceiver::https();
    let url = receiver.url("/secure?token=t");
    let trusting =
        WebhookNotifier::with_roots(Duration::from_secs(5), Some(receiver.certificate().as_bytes())).unwrap();
    assert_eq!(trusting.send(&delivery(&url, WebhookMethod::Post)).await, AttemptOutcome::Answered(204));
    let got_now = receiver.got();
    assert_eq!(got_now.len(), 1);
    assert!(got_now[0].request_line.starts_with("POST /secure?token=t "), "{}", got_now[0].request_line);
    assert!(got_now[0].body.contains("\"deliveryId\""), "{}", got_now[0].body);

    let default = WebhookNotifier::new(Duration::from_secs(5));
    match default.send(&delivery(&url, WebhookMethod::Post)).await {
        AttemptOutcome::Unreachable(reason) => {
            assert!(reason.contains("TLS handshake failed"), "{reason}");
            assert!(!reason.contains("token=t"), "{reason}");
        }
        other => panic!("an untrusted certificate was accepted: {other:?}"),
    }
    assert_eq!(receiver.got().len(), 1, "nothing reached the receiver without trust");
    assert!(WebhookNotifier::with_roots(Duration::from_secs(5), Some(b"not a certificate")).is_err());
}
