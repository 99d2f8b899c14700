//! CloudMonitor (CMS 2019-01-01): event-triggered alert rules (R15) with CloudMonitor's
//! parameter names and response shapes, over rollscale's events: `PutEventRule`,
//! `DescribeEventRuleList`, `DescribeEventRuleAttribute`, `EnableEventRules`,
//! `DisableEventRules`, `DeleteEventRules`, `PutEventRuleTargets` (webhooks),
//! `DescribeEventRuleTargetList`, `DeleteEventRuleTargets`; and rollscale's
//! `DescribeEventRuleDeliveries`, the record of what was sent where.

use super::render::date;
use super::request::Params;
use super::required;
use crate::error::ApiError;
use rollscale_core::alert::{
    level_name, parse_level, AlertRule, Delivery, DeliveryStatus, EventPattern, KeywordFilter, Relation, Webhook,
    WebhookMethod, PRODUCT,
};
use rollscale_core::Code;
use rollscale_engine::alerts::RuleChange;
use rollscale_engine::Service;
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub const VERSION: &str = "2019-01-01";

fn invalid(name: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidParameter, format!("the parameter \"{name}\" is invalid: {}", message.into()))
}

fn list(params: &Params, name: &str) -> Result<Vec<String>, ApiError> {
    params.list(name).map_err(ApiError::from)
}

/// The indices N of `Prefix.N.…` parameters, in order.
fn indices(params: &Params, prefix: &str) -> Result<Vec<u64>, ApiError> {
    let start = format!("{prefix}.");
    let mut found = BTreeSet::new();
    for (key, _) in params.iter() {
        if let Some(rest) = key.strip_prefix(&start) {
            let index = rest.split('.').next().unwrap_or_default();
            let n = index.parse::<u64>().map_err(|_| invalid(key, "the list index must be a number"))?;
            found.insert(n);
        }
    }
    Ok(found.into_iter().collect())
}

fn success(mut body: Value) -> Value {
    body["Success"] = json!(true);
    body["Code"] = json!("200");
    body["Message"] = json!("");
    body
}

pub async fn dispatch(service: &Service, action: &str, params: &Params) -> Result<Value, ApiError> {
    match action {
        "PutEventRule" => {
            let rule = service.put_alert_rule(rule_change(params)?).await?;
            Ok(success(json!({ "Data": format!("acs:cms:*:*:rule/{}", rule.name) })))
        }
        "DescribeEventRuleList" => {
            let number = int(params, "PageNumber", 1, 1_000_000)?.unwrap_or(1);
            let size = int(params, "PageSize", 1, 100)?.unwrap_or(10);
            let prefix = params.get("NamePrefix").unwrap_or_default();
            let (rules, total) = service.alert_rules(prefix, size, (number - 1) * size).await?;
            let rules: Vec<Value> = rules.iter().map(rule_view).collect();
            Ok(success(json!({ "Total": total, "EventRules": { "EventRule": rules } })))
        }
        "DescribeEventRuleAttribute" => {
            let rule = service.alert_rule(required(params, "RuleName")?).await?;
            Ok(success(json!({ "Result": rule_attribute_view(&rule) })))
        }
        "EnableEventRules" | "DisableEventRules" => {
            let names = list(params, "RuleNames")?;
            service.set_alert_rules_enabled(&names, action == "EnableEventRules").await?;
            Ok(success(json!({})))
        }
        "DeleteEventRules" => {
            service.delete_alert_rules(&list(params, "RuleNames")?).await?;
            Ok(success(json!({})))
        }
        "PutEventRuleTargets" => {
            let name = required(params, "RuleName")?;
            let mut webhooks = Vec::new();
            for n in indices(params, "WebhookParameters")? {
                let field = |f: &str| format!("WebhookParameters.{n}.{f}");
                let id = required(params, &field("Id"))?.to_string();
                let url = required(params, &field("Url"))?.to_string();
                // The URL's scheme decides; a Protocol given must agree with it.
                if let Some(protocol) = params.get_nonempty(&field("Protocol")).map(str::to_ascii_lowercase) {
                    if protocol != "http" && protocol != "https" {
                        return Err(invalid(&field("Protocol"), format!("\"{protocol}\" is not http or https")));
                    }
                    if !url.to_ascii_lowercase().starts_with(&format!("{protocol}://")) {
                        return Err(invalid(&field("Protocol"), format!("{protocol} does not match the URL's scheme")));
                    }
                }
                let method = match params.get_nonempty(&field("Method")) {
                    None => WebhookMethod::Post,
                    Some(text) => crate::values::webhook_method(text, &field("Method"))?,
                };
                webhooks.push(Webhook { id, url, method });
            }
            service.put_alert_webhooks(name, webhooks).await?;
            Ok(success(json!({})))
        }
        "DescribeEventRuleTargetList" => {
            let rule = service.alert_rule(required(params, "RuleName")?).await?;
            let webhooks: Vec<Value> = rule.webhooks.iter().map(webhook_view).collect();
            Ok(success(json!({ "WebhookParameters": { "WebhookParameter": webhooks } })))
        }
        "DeleteEventRuleTargets" => {
            let name = required(params, "RuleName")?;
            service.delete_alert_webhooks(name, &list(params, "Ids")?).await?;
            Ok(success(json!({})))
        }
        "DescribeEventRuleDeliveries" => {
            let status =
                params.get_nonempty("Status").map(|text| crate::values::delivery_status(text, "Status")).transpose()?;
            let limit = int(params, "PageSize", 1, 500)?.unwrap_or(100);
            let deliveries = service.alert_deliveries(params.get_nonempty("RuleName"), status, limit).await?;
            let deliveries: Vec<Value> = deliveries.iter().map(delivery_view).collect();
            Ok(success(json!({ "Deliveries": { "Delivery": deliveries } })))
        }
        other => Err(ApiError::new(Code::InvalidActionNotFound, format!("the CMS action {other} is not served"))),
    }
}

fn int(params: &Params, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    match params.i64(name).map_err(ApiError::from)? {
        Some(value) if value < min || value > max => Err(invalid(name, format!("must be from {min} to {max}"))),
        value => Ok(value),
    }
}

/// `PutEventRule`'s parameters: the rule, and its patterns `EventPattern.N.…`.
fn rule_change(params: &Params) -> Result<RuleChange, ApiError> {
    let name = required(params, "RuleName")?.to_string();
    let enabled = match params.get_nonempty("State") {
        None => None,
        Some(state) if state.eq_ignore_ascii_case("ENABLED") || state.eq_ignore_ascii_case("ENABLE") => Some(true),
        Some(state) if state.eq_ignore_ascii_case("DISABLED") || state.eq_ignore_ascii_case("DISABLE") => Some(false),
        Some(state) => return Err(invalid("State", format!("\"{state}\" is not ENABLED or DISABLED"))),
    };
    if let Some(kind) = params.get_nonempty("EventType").filter(|kind| !kind.eq_ignore_ascii_case("SYSTEM")) {
        return Err(invalid("EventType", format!("\"{kind}\": rollscale raises SYSTEM events only")));
    }
    let mut patterns = Vec::new();
    for n in indices(params, "EventPattern")? {
        let field = |f: &str| format!("EventPattern.{n}.{f}");
        let product = required(params, &field("Product"))?;
        if !product.eq_ignore_ascii_case(PRODUCT) && !product.eq_ignore_ascii_case("oos") {
            return Err(invalid(&field("Product"), format!("\"{product}\": rollscale raises the events of ESS")));
        }
        let mut levels = Vec::new();
        for level in list(params, &field("LevelList"))? {
            if level == "*" {
                continue;
            }
            levels.push(parse_level(&level).ok_or_else(|| {
                invalid(&field("LevelList"), format!("\"{level}\" is not CRITICAL, WARN, INFO or *"))
            })?);
        }
        // The API reference says `KeywordFilterObj`, aliyun-python-sdk-cms sends `KeywordFilter`.
        let mut keywords = None;
        for filter in ["KeywordFilterObj", "KeywordFilter"] {
            let words = list(params, &field(&format!("{filter}.Keywords")))?;
            let relation_name = field(&format!("{filter}.Relation"));
            let relation = match params.get_nonempty(&relation_name) {
                None => Relation::Or,
                Some(text) if text.eq_ignore_ascii_case("and") => Relation::And,
                Some(text) if text.eq_ignore_ascii_case("or") => Relation::Or,
                Some(text) => return Err(invalid(&relation_name, format!("\"{text}\" is not and or or"))),
            };
            if words.is_empty() {
                if params.contains(&relation_name) {
                    return Err(invalid(&field(&format!("{filter}.Keywords")), "a Relation needs keywords"));
                }
                continue;
            }
            if keywords.is_some() {
                return Err(invalid(&field(filter), "give KeywordFilterObj or KeywordFilter, not both"));
            }
            keywords = Some(KeywordFilter { keywords: words, relation });
        }
        patterns.push(EventPattern {
            names: list(params, &field("NameList"))?,
            kinds: list(params, &field("EventTypeList"))?,
            levels,
            keywords,
        });
    }
    Ok(RuleChange { name, description: params.get("Description").map(str::to_string), enabled, patterns })
}

/// A pattern as CloudMonitor shows it; its keyword filter under `filter_name`
/// (`KeywordFilter` in `DescribeEventRuleList`, `KeywordFilterObj` in
/// `DescribeEventRuleAttribute`, as the SDKs' models read them).
fn pattern_view(pattern: &EventPattern, filter_name: &str) -> Value {
    let levels: Vec<&str> = pattern.levels.iter().map(|level| level_name(*level)).collect();
    let mut view = json!({
        "Product": "ess",
        "NameList": { "NameList": pattern.names },
        "EventTypeList": { "EventTypeList": pattern.kinds },
        "LevelList": { "LevelList": levels },
    });
    if let Some(filter) = &pattern.keywords {
        let relation = match filter.relation {
            Relation::And => "and",
            Relation::Or => "or",
        };
        view[filter_name] = json!({ "Relation": relation, "Keywords": { "Keywords": filter.keywords } });
    }
    view
}

/// A rule in `DescribeEventRuleList`'s shape: every pattern, in a list.
fn rule_view(rule: &AlertRule) -> Value {
    let patterns: Vec<Value> = rule.patterns.iter().map(|pattern| pattern_view(pattern, "KeywordFilter")).collect();
    let mut view = rule_fields(rule);
    view["EventPattern"] = json!({ "EventPattern": patterns });
    view
}

/// A rule in `DescribeEventRuleAttribute`'s shape, whose `EventPattern` is one object (the
/// first pattern; `DescribeEventRuleList` shows them all).
fn rule_attribute_view(rule: &AlertRule) -> Value {
    let mut view = rule_fields(rule);
    if let Some(first) = rule.patterns.first() {
        view["EventPattern"] = pattern_view(first, "KeywordFilterObj");
    }
    view
}

fn rule_fields(rule: &AlertRule) -> Value {
    json!({
        "Name": rule.name,
        "Description": rule.description,
        "State": if rule.enabled { "ENABLED" } else { "DISABLED" },
        "EventType": "SYSTEM",
    })
}

fn webhook_view(webhook: &Webhook) -> Value {
    let protocol = if webhook.url.starts_with("https://") { "https" } else { "http" };
    json!({ "Id": webhook.id, "Protocol": protocol, "Method": webhook.method.as_str(), "Url": webhook.url })
}

fn delivery_view(delivery: &Delivery) -> Value {
    json!({
        "DeliveryId": delivery.id,
        "RuleName": delivery.rule_name,
        "WebhookId": delivery.webhook_id,
        "Url": delivery.url,
        "Method": delivery.method.as_str(),
        "Status": delivery.status.as_str(),
        "Attempts": delivery.attempts,
        "NextAttemptTime": if delivery.status == DeliveryStatus::Pending { date(Some(delivery.next_attempt_at)) } else { String::new() },
        "LastError": delivery.last_error.clone().unwrap_or_default(),
        "CreateTime": date(Some(delivery.created_at)),
        "DeliveredTime": date(delivery.delivered_at),
        "Event": {
            "EventId": delivery.event.id,
            "Name": delivery.event.name,
            "Kind": delivery.event.kind,
            "Level": level_name(delivery.event.level),
            "ScalingGroupId": delivery.event.group_id,
            // "" for a group's own events (its health check's), which no execution raised.
            "ExecutionId": delivery.event.execution_id.as_ref().map_or("", |id| id.as_str()),
            "Content": delivery.event.content,
            "Time": date(Some(delivery.event.created_at)),
        },
    })
}
