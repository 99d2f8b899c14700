//! Alert rules over the CMS 2019-01-01 RPC API and the REST API: CloudMonitor's parameter
//! names (patterns as `EventPattern.N.…`, webhooks as `WebhookParameters.N.…`) and response
//! shapes, the refusals (each with a code, changing nothing), and the read-only policy.

use rollscale_core::policy::PolicyType;
use rollscale_engine::access::NewUser;
use rollscale_test_support::server::{rest_request, rpc_request, send, Api};
use serde_json::{json, Value};

const KEY: &str = "LTAIalertsAdmin000000";
const SECRET: &str = "alertsAdminSecret";
const CMS: &str = "2019-01-01";

async fn app() -> Api {
    Api::new(KEY, SECRET).await
}

#[tokio::test]
async fn rules_and_webhooks_in_cloudmonitors_shape() {
    let app = app().await;
    let (status, body) = app
        .rpc(
            CMS,
            "PutEventRule",
            &[
                ("RuleName", "rolling-failures"),
                ("Description", "page the on-call"),
                ("EventPattern.1.Product", "ess"),
                ("EventPattern.1.LevelList.1", "CRITICAL"),
                ("EventPattern.1.LevelList.2", "WARN"),
                ("EventPattern.1.NameList.1", "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup"),
                ("EventPattern.2.Product", "ESS"),
                ("EventPattern.2.EventTypeList.1", "Cancelled"),
                ("EventPattern.2.KeywordFilterObj.Relation", "and"),
                ("EventPattern.2.KeywordFilterObj.Keywords.1", "asg-"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["Success"].as_bool(), body["Code"].as_str()), (Some(true), Some("200")), "{body}");
    assert_eq!(body["Data"], "acs:cms:*:*:rule/rolling-failures");

    let (status, body) = app
        .rpc(
            CMS,
            "PutEventRuleTargets",
            &[
                ("RuleName", "rolling-failures"),
                ("WebhookParameters.1.Id", "oncall"),
                ("WebhookParameters.1.Protocol", "http"),
                ("WebhookParameters.1.Method", "POST"),
                ("WebhookParameters.1.Url", "http://127.0.0.1:9000/hook?token=t"),
                ("WebhookParameters.2.Id", "chat"),
                ("WebhookParameters.2.Url", "http://127.0.0.1:9001/"),
                ("WebhookParameters.2.Method", "get"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (_, body) = app.rpc(CMS, "DescribeEventRuleList", &[("NamePrefix", "rolling")]).await;
    assert_eq!(body["Total"], 1, "{body}");
    let rule = &body["EventRules"]["EventRule"][0];
    assert_eq!((rule["Name"].as_str(), rule["State"].as_str()), (Some("rolling-failures"), Some("ENABLED")));
    assert_eq!(rule["Description"], "page the on-call");
    let patterns = &rule["EventPattern"]["EventPattern"];
    assert_eq!(patterns[0]["LevelList"]["LevelList"], json!(["WARN", "CRITICAL"]), "{rule}");
    assert_eq!(patterns[1]["EventTypeList"]["EventTypeList"], json!(["Cancelled"]));
    assert_eq!(patterns[1]["KeywordFilter"], json!({"Relation": "and", "Keywords": {"Keywords": ["asg-"]}}));
    let (_, body) = app.rpc(CMS, "DescribeEventRuleList", &[("NamePrefix", "other")]).await;
    assert_eq!(body["Total"], 0);

    // aliyun-python-sdk-cms spells the keyword filter `KeywordFilter`; both spellings at once
    // are refused.
    let spelled = [
        ("RuleName", "old-sdk"),
        ("EventPattern.1.Product", "ess"),
        ("EventPattern.1.KeywordFilter.Relation", "or"),
        ("EventPattern.1.KeywordFilter.Keywords.1", "i-abc"),
    ];
    assert_eq!(app.rpc(CMS, "PutEventRule", &spelled).await.0, 200);
    let keywords = app.service.alert_rule("old-sdk").await.unwrap().patterns[0].keywords.clone();
    assert_eq!(keywords.map(|k| k.keywords), Some(vec!["i-abc".to_string()]));
    let both = [
        ("RuleName", "both"),
        ("EventPattern.1.Product", "ess"),
        ("EventPattern.1.KeywordFilter.Keywords.1", "a"),
        ("EventPattern.1.KeywordFilterObj.Keywords.1", "b"),
    ];
    let (status, body) = app.rpc(CMS, "PutEventRule", &both).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("InvalidParameter")), "{body}");
    assert_eq!(app.rpc(CMS, "DeleteEventRules", &[("RuleNames.1", "old-sdk")]).await.0, 200);

    let (_, body) = app.rpc(CMS, "DescribeEventRuleTargetList", &[("RuleName", "rolling-failures")]).await;
    assert_eq!(
        body["WebhookParameters"]["WebhookParameter"],
        json!([
            {"Id": "oncall", "Protocol": "http", "Method": "POST", "Url": "http://127.0.0.1:9000/hook?token=t"},
            {"Id": "chat", "Protocol": "http", "Method": "GET", "Url": "http://127.0.0.1:9001/"},
        ]),
        "{body}"
    );

    // A second Put changes the patterns and keeps the webhooks; Disable and Enable; targets
    // are removed by id; deleting the rule ends it.
    let (status, _) = app
        .rpc(
            CMS,
            "PutEventRule",
            &[("RuleName", "rolling-failures"), ("State", "DISABLED"), ("EventPattern.1.Product", "ess")],
        )
        .await;
    assert_eq!(status, 200);
    let rule = app.service.alert_rule("rolling-failures").await.unwrap();
    assert_eq!((rule.enabled, rule.patterns.len(), rule.webhooks.len()), (false, 1, 2));
    assert_eq!(rule.description, "page the on-call", "an absent Description is kept");
    assert_eq!(app.rpc(CMS, "EnableEventRules", &[("RuleNames.1", "rolling-failures")]).await.0, 200);
    assert!(app.service.alert_rule("rolling-failures").await.unwrap().enabled);
    assert_eq!(
        app.rpc(CMS, "DeleteEventRuleTargets", &[("RuleName", "rolling-failures"), ("Ids.1", "chat")]).await.0,
        200
    );
    assert_eq!(app.service.alert_rule("rolling-failures").await.unwrap().webhooks.len(), 1);
    let (_, body) = app.rpc(CMS, "DescribeEventRuleDeliveries", &[("RuleName", "rolling-failures")]).await;
    assert_eq!(body["Deliveries"]["Delivery"], json!([]), "{body}");
    let (_, body) = app.rpc(CMS, "DescribeEventRuleAttribute", &[("RuleName", "rolling-failures")]).await;
    assert_eq!(body["Result"]["Name"], "rolling-failures", "{body}");
    assert_eq!(body["Result"]["EventPattern"]["Product"], "ess", "one pattern object: {body}");
    assert_eq!(app.rpc(CMS, "DeleteEventRules", &[("RuleNames.1", "rolling-failures")]).await.0, 200);
    let (status, body) = app.rpc(CMS, "DescribeEventRuleAttribute", &[("RuleName", "rolling-failures")]).await;
    assert_eq!((status, body["Code"].as_str()), (404, Some("ResourceNotFound")), "{body}");
}

/// An action, its parameters, and the code that refuses them.
type Refusal = (&'static str, Vec<(&'static str, &'static str)>, &'static str);

#[tokio::test]
async fn bad_rules_are_refused_with_a_code_and_change_nothing() {
    let app = app().await;
    let refusals: Vec<Refusal> = vec![
        ("PutEventRule", vec![("EventPattern.1.Product", "ess")], "MissingParameter"),
        ("PutEventRule", vec![("RuleName", "r")], "MissingParameter"),
        ("PutEventRule", vec![("RuleName", "r"), ("EventPattern.1.Product", "ecs")], "InvalidParameter"),
        ("PutEventRule", vec![("RuleName", "r"), ("EventPattern.1.LevelList.1", "CRITICAL")], "MissingParameter"),
        (
            "PutEventRule",
            vec![("RuleName", "r"), ("EventPattern.1.Product", "ess"), ("EventPattern.1.LevelList.1", "FATAL")],
            "InvalidParameter",
        ),
        (
            "PutEventRule",
            vec![("RuleName", "r"), ("EventPattern.1.Product", "ess"), ("State", "ON")],
            "InvalidParameter",
        ),
        ("PutEventRule", vec![("RuleName", "a b"), ("EventPattern.1.Product", "ess")], "InvalidParameter"),
        (
            "PutEventRule",
            vec![("RuleName", "r"), ("EventPattern.1.Product", "ess"), ("EventPattern.1.SQLFilter", "x")],
            "InvalidParameter",
        ),
        (
            "PutEventRule",
            vec![("RuleName", "r"), ("EventPattern.1.Product", "ess"), ("EventType", "CUSTOM")],
            "InvalidParameter",
        ),
        (
            "PutEventRule",
            vec![
                ("RuleName", "r"),
                ("EventPattern.1.Product", "ess"),
                ("EventPattern.1.KeywordFilterObj.Relation", "and"),
            ],
            "InvalidParameter",
        ),
        ("PutEventRule", vec![("RuleName", "r"), ("EventPattern.x.Product", "ess")], "InvalidParameter"),
        (
            "PutEventRuleTargets",
            vec![("RuleName", "nope"), ("WebhookParameters.1.Id", "a"), ("WebhookParameters.1.Url", "http://h/")],
            "ResourceNotFound",
        ),
        ("DeleteEventRules", vec![("RuleNames.1", "nope")], "ResourceNotFound"),
        ("DescribeEventRuleDeliveries", vec![("Status", "Sent")], "InvalidParameter"),
        ("DescribeEventRuleList", vec![("PageSize", "1000")], "InvalidParameter"),
    ];
    for (action, params, code) in &refusals {
        let (status, body) = app.rpc(CMS, action, params).await;
        assert_eq!(body["Code"].as_str(), Some(*code), "{action} {params:?}: {status} {body}");
        assert!((400..500).contains(&status), "{action} {params:?}: {status}");
    }
    assert_eq!(app.service.alert_rules("", 10, 0).await.unwrap().1, 0, "no refused Put made a rule");

    let put = [("RuleName", "r"), ("EventPattern.1.Product", "ess")];
    assert_eq!(app.rpc(CMS, "PutEventRule", &put).await.0, 200);
    for (url, protocol, method) in [
        ("https://h/", "http", "POST"),
        ("http://h/", "https", "POST"),
        ("http://h/", "gopher", "POST"),
        ("ftp://h/", "http", "POST"),
        ("http://u:p@h/", "http", "POST"),
        ("http://h/", "http", "PUT"),
    ] {
        let params = [
            ("RuleName", "r"),
            ("WebhookParameters.1.Id", "a"),
            ("WebhookParameters.1.Url", url),
            ("WebhookParameters.1.Protocol", protocol),
            ("WebhookParameters.1.Method", method),
        ];
        let (status, body) = app.rpc(CMS, "PutEventRuleTargets", &params).await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (400, Some("InvalidParameter")),
            "{url} {protocol} {method}: {body}"
        );
    }
    assert!(app.service.alert_rule("r").await.unwrap().webhooks.is_empty());
    let (status, body) = app.rpc(CMS, "DeleteEventRules", &[("RuleNames.1", "r"), ("RuleNames.2", "nope")]).await;
    assert_eq!((status, body["Code"].as_str()), (404, Some("ResourceNotFound")), "{body}");
    assert!(app.service.alert_rule("r").await.is_ok(), "an unknown name among several deletes none");
}

#[tokio::test]
async fn the_rest_api_serves_the_same_rules() {
    let app = app().await;
    let call = |method: &'static str, path: &str, body: Option<Value>| {
        let request = rest_request(&app.token, method, path, body.as_ref());
        let router = app.router.clone();
        async move { send(&router, request).await }
    };
    let (status, rule) = call(
        "put",
        "/v1/alert-rules/pager",
        Some(json!({"description": "3 a.m.", "patterns": [{"levels": ["CRITICAL"], "keywords": ["i-"], "relation": "and"}]})),
    )
    .await;
    assert_eq!(status, 200, "{rule}");
    assert_eq!(
        rule["patterns"][0],
        json!({"names": [], "kinds": [], "levels": ["CRITICAL"], "keywords": ["i-"], "relation": "and"})
    );
    let (status, rule) =
        call("put", "/v1/alert-rules/pager/webhooks/ops", Some(json!({"url": "http://127.0.0.1:9/x"}))).await;
    assert_eq!(status, 200, "{rule}");
    assert_eq!(rule["webhooks"], json!([{"id": "ops", "url": "http://127.0.0.1:9/x", "method": "POST"}]));
    let (_, rule) = call("post", "/v1/alert-rules/pager/state", Some(json!({"action": "disable"}))).await;
    assert_eq!(rule["enabled"], false);
    let (_, list) = call("get", "/v1/alert-rules?prefix=pa", None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    let (status, deliveries) = call("get", "/v1/alert-rules/pager/deliveries?status=Failed", None).await;
    assert_eq!((status, deliveries["items"].clone()), (200, json!([])), "{deliveries}");
    for (method, path, body, code) in [
        ("put", "/v1/alert-rules/pager", Some(json!({"patterns": [{"levels": ["LOUD"]}]})), "InvalidParameter"),
        ("put", "/v1/alert-rules/pager", Some(json!({"patterns": [], "bogus": 1})), "InvalidParameter"),
        ("put", "/v1/alert-rules/pager/webhooks/ops", Some(json!({"url": "ftp://h/"})), "InvalidParameter"),
        ("post", "/v1/alert-rules/pager/state", Some(json!({"action": "mute"})), "InvalidParameter"),
        ("get", "/v1/alert-rules/nope", None, "ResourceNotFound"),
        ("delete", "/v1/alert-rules/pager/webhooks/nope", None, "ResourceNotFound"),
    ] {
        let (status, body) = call(method, path, body).await;
        assert_eq!(body["Code"].as_str(), Some(code), "{method} {path}: {status} {body}");
    }
    let rule = app.service.alert_rule("pager").await.unwrap();
    assert_eq!(
        (rule.patterns[0].levels.len(), rule.webhooks[0].url.as_str()),
        (1, "http://127.0.0.1:9/x"),
        "unchanged"
    );
    let (status, _) = call("delete", "/v1/alert-rules/pager", None).await;
    assert_eq!(status, 200);
    assert!(app.service.alert_rule("pager").await.is_err());
}

/// AliyunCloudMonitorReadOnlyAccess reads rules, webhooks and deliveries and changes none;
/// AliyunESSReadOnlyAccess does not reach them.
#[tokio::test]
async fn the_cloudmonitor_read_only_policy_reads_and_changes_nothing() {
    let app = app().await;
    assert_eq!(app.rpc(CMS, "PutEventRule", &[("RuleName", "r"), ("EventPattern.1.Product", "ess")]).await.0, 200);
    let mut keys = Vec::new();
    for (user, policy) in [("watcher", "AliyunCloudMonitorReadOnlyAccess"), ("ess-reader", "AliyunESSReadOnlyAccess")] {
        app.service.create_user(NewUser { name: user.into(), ..NewUser::default() }).await.unwrap();
        app.service.attach_policy(user, PolicyType::System, policy).await.unwrap();
        keys.push(app.service.create_access_key(user).await.unwrap());
    }
    let (watcher, ess_reader) = (&keys[0], &keys[1]);
    let as_user = |key: &rollscale_core::domain::AccessKey, action: &str, params: &[(&str, &str)]| {
        let request = rpc_request(&key.id, &key.secret, CMS, action, params);
        let router = app.router.clone();
        async move { send(&router, request).await }
    };
    for action in ["DescribeEventRuleList", "DescribeEventRuleDeliveries"] {
        let (status, body) = as_user(watcher, action, &[]).await;
        assert_eq!(status, 200, "{action}: {body}");
        let (status, body) = as_user(ess_reader, action, &[]).await;
        assert_eq!((status, body["Code"].as_str()), (403, Some("Forbidden.RAM")), "{action}: {body}");
    }
    let (status, body) = as_user(watcher, "DescribeEventRuleTargetList", &[("RuleName", "r")]).await;
    assert_eq!(status, 200, "{body}");
    for (action, params) in [
        ("PutEventRule", vec![("RuleName", "r"), ("EventPattern.1.Product", "ess"), ("State", "DISABLED")]),
        ("DisableEventRules", vec![("RuleNames.1", "r")]),
        ("DeleteEventRules", vec![("RuleNames.1", "r")]),
    ] {
        let (status, body) = as_user(watcher, action, &params).await;
        assert_eq!((status, body["Code"].as_str()), (403, Some("Forbidden.RAM")), "{action}: {body}");
        assert!(body["Message"].as_str().unwrap_or_default().contains(&format!("cms:{action}")), "{body}");
    }
    assert!(app.service.alert_rule("r").await.unwrap().enabled, "nothing changed");
}
