//! Alert rules end to end: `rollscale cms PutEventRule` and `PutEventRuleTargets` against
//! `rollscale up`, a failing rolling update, and a real webhook receiver on loopback that
//! gets every Critical event once, even when it was down and rollscale was killed with
//! SIGKILL meanwhile.

use rollscale_test_support::up::{cli_json, temp_dir, up};
use rollscale_test_support::webhook::WebhookReceiver;
use rollscale_test_support::{net, wait};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::Duration;

fn deliveries(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let listed = cli_json(dir, &["cms", "DescribeEventRuleDeliveries", "--RuleName", "oncall", "--PageSize", "500"]);
    listed["Deliveries"]["Delivery"].as_array().expect("deliveries").clone()
}

fn wait_until<T>(what: &str, timeout: Duration, probe: impl FnMut() -> Option<T>) -> T {
    wait::blocking_until(what, timeout, Duration::from_millis(100), probe)
}

#[test]
fn critical_events_reach_a_webhook_once_across_its_outage_and_a_crash() {
    let dir = temp_dir("alerts");
    // The receiver's port, reserved now and served later: until then nobody listens there.
    let port = net::free_port();
    let url = format!("http://127.0.0.1:{port}/hooks/oncall?token=t0ps3cret");
    let extra = ["--sim-latency-ms", "1", "--sim-fail-script", "BOOM"];
    let mut server = up(&dir, &extra);
    let group = server.group_id.clone();

    let put = cli_json(
        &dir,
        &[
            "cms",
            "PutEventRule",
            "--RuleName",
            "oncall",
            "--EventPattern.1.Product",
            "ess",
            "--EventPattern.1.LevelList.1",
            "CRITICAL",
        ],
    );
    assert_eq!(put["Data"], "acs:cms:*:*:rule/oncall", "{put}");
    cli_json(
        &dir,
        &[
            "cms",
            "PutEventRuleTargets",
            "--RuleName",
            "oncall",
            "--WebhookParameters.1.Id",
            "pager",
            "--WebhookParameters.1.Url",
            &url,
            "--WebhookParameters.1.Method",
            "POST",
        ],
    );
    let targets = cli_json(&dir, &["cms", "DescribeEventRuleTargetList", "--RuleName", "oncall"]);
    assert_eq!(targets["WebhookParameters"]["WebhookParameter"][0]["Url"], url.as_str());

    // Every instance of the demo group fails the script: ten InstanceFailed events and the
    // FailurePaused pause, all Critical.
    let parameters = serde_json::json!({
        "invokeType": "invoke", "scalingGroupId": group, "invokeScript": "echo BOOM", "batchNumber": 1,
    })
    .to_string();
    let started = cli_json(
        &dir,
        &[
            "oos",
            "StartExecution",
            "--TemplateName",
            "ACS-ESS-RollingUpdateByRunCommandInScalingGroup",
            "--Parameters",
            &parameters,
        ],
    );
    let execution = started["Execution"]["ExecutionId"].as_str().expect("an execution").to_string();
    // The webhook is down: each delivery is tried and waits for its retry.
    let tried = wait_until("every delivery tried once", Duration::from_secs(30), || {
        let all = deliveries(&dir);
        (all.len() == 11 && all.iter().all(|d| d["Attempts"].as_u64() >= Some(1))).then_some(all)
    });
    assert!(tried.iter().all(|d| d["Status"] == "Pending"), "{tried:#?}");
    let reason = tried[0]["LastError"].as_str().unwrap_or_default();
    assert!(reason.contains("could not connect"), "{reason}");

    // rollscale dies with SIGKILL; the webhook comes back; rollscale starts again.
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    let receiver = WebhookReceiver::serve(TcpListener::bind(("127.0.0.1", port)).expect("the receiver's port is free"));
    let _server = up(&dir, &extra);
    let ids = wait_until("all eleven alerts", Duration::from_secs(60), || {
        let ids: BTreeSet<String> = receiver.got().into_iter().map(|r| r.delivery.unwrap_or_default()).collect();
        Some(ids).filter(|ids| ids.len() >= 11)
    });
    assert_eq!(ids.len(), 11, "{ids:?}");
    let settled = wait_until("the deliveries recorded as Delivered", Duration::from_secs(20), || {
        let all = deliveries(&dir);
        all.iter().all(|d| d["Status"] == "Delivered").then_some(all)
    });
    let recorded: BTreeSet<String> = settled.iter().map(|d| d["DeliveryId"].as_str().unwrap().to_string()).collect();
    assert_eq!(recorded, ids, "the receiver got exactly the recorded deliveries");
    let got = receiver.got();
    assert_eq!(got.len(), 11, "each once: {:?}", got.iter().map(|r| &r.delivery).collect::<Vec<_>>());
    let mut kinds = BTreeSet::new();
    for received in &got {
        let body: serde_json::Value = serde_json::from_str(&received.body).expect("JSON");
        assert_eq!(
            (body["level"].as_str(), body["executionId"].as_str()),
            (Some("CRITICAL"), Some(execution.as_str()))
        );
        assert_eq!(body["scalingGroupId"], group.as_str());
        kinds.insert(body["kind"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(kinds, BTreeSet::from(["InstanceFailed".to_string(), "Paused".to_string()]));
    let _ = std::fs::remove_dir_all(dir);
}
