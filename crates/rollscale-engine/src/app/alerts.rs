//! Alert rules and the sender that delivers their events to webhooks (R15).
//!
//! The store makes a delivery for each webhook of each enabled rule that matches an event, in
//! the transaction that records the event. The sender ([`Service::spawn_alert_sender`]) takes
//! due deliveries, claims each for one attempt (so replicas sharing a database do not send one
//! twice at once), sends it through a [`Notifier`], and records the outcome with the retry
//! schedule of `rollscale_core::alert`. A delivery whose rule was deleted or disabled, or whose
//! webhook was removed, is dropped (Failed, with the reason) when its turn comes; one whose
//! webhook's URL changed is sent to the new URL. Delivery is at least once: a crash between
//! the receiver's answer and the record sends it again, with the same delivery id.

use crate::{now_millis, Service, ServiceError};
use rollscale_core::alert::{
    check_rule_name, check_webhook_id, redacted_url, AlertRule, Delivery, DeliveryStatus, EventPattern, Webhook,
    MAX_ATTEMPTS, MAX_TARGETS,
};
use rollscale_core::Code;
use rollscale_fleet::notify::Notifier;
use rollscale_store::StoreError;
use std::sync::Arc;
use std::time::Duration;

/// Tunables of the alert sender.
#[derive(Clone, Debug)]
pub struct AlertSenderConfig {
    /// How often due deliveries are looked for.
    pub poll_interval: Duration,
    /// Attempts of a delivery before it is given up.
    pub max_attempts: u32,
    /// How long one attempt keeps its delivery from other senders; well over the notifier's
    /// own time limit.
    pub claim: Duration,
    /// Most deliveries taken per look.
    pub batch: i64,
    /// How long the record of a settled delivery (Delivered or Failed) is kept.
    pub retention: Duration,
}

impl Default for AlertSenderConfig {
    fn default() -> Self {
        AlertSenderConfig {
            poll_interval: Duration::from_secs(1),
            max_attempts: MAX_ATTEMPTS,
            claim: Duration::from_secs(60),
            batch: 32,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What `PutEventRule` sets: a new rule, or the patterns, description and state of one that
/// exists (its webhooks are kept).
#[derive(Clone, Debug, Default)]
pub struct RuleChange {
    pub name: String,
    pub description: Option<String>,
    /// `None` keeps the current state (a new rule is enabled).
    pub enabled: Option<bool>,
    pub patterns: Vec<EventPattern>,
}

fn rule_not_found(name: &str) -> ServiceError {
    ServiceError::refused(Code::ResourceNotFound, format!("the alert rule {name} does not exist"))
}

/// Attempts of a read-modify-write of a rule before giving up to a busy writer.
const RULE_WRITE_ATTEMPTS: usize = 8;

impl Service {
    /// Creates the rule, or changes the one of that name (`PutEventRule`).
    pub async fn put_alert_rule(&self, change: RuleChange) -> Result<AlertRule, ServiceError> {
        check_rule_name(&change.name)?;
        let patterns = change.patterns.into_iter().map(EventPattern::normalized).collect::<Result<Vec<_>, _>>()?;
        for _ in 0..RULE_WRITE_ATTEMPTS {
            let now = now_millis();
            let current = self.engine.store.alert_rule_get(&change.name).await?;
            let rule = match &current {
                Some(current) => AlertRule {
                    description: change.description.clone().unwrap_or_else(|| current.value.description.clone()),
                    enabled: change.enabled.unwrap_or(current.value.enabled),
                    patterns: patterns.clone(),
                    updated_at: now,
                    ..current.value.clone()
                },
                None => AlertRule {
                    name: change.name.clone(),
                    description: change.description.clone().unwrap_or_default(),
                    enabled: change.enabled.unwrap_or(true),
                    patterns: patterns.clone(),
                    webhooks: Vec::new(),
                    created_at: now,
                    updated_at: now,
                },
            };
            rule.check()?;
            match self.engine.store.alert_rule_put(&rule, current.map(|c| c.generation)).await {
                Ok(_) => return Ok(rule),
                Err(StoreError::Conflict { .. } | StoreError::AlreadyExists { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Conflict)
    }

    pub async fn alert_rule(&self, name: &str) -> Result<AlertRule, ServiceError> {
        match self.engine.store.alert_rule_get(name).await? {
            Some(rule) => Ok(rule.value),
            None => Err(rule_not_found(name)),
        }
    }

    /// Rules whose names start with `prefix`, by name: a page and the total.
    pub async fn alert_rules(
        &self,
        prefix: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AlertRule>, i64), ServiceError> {
        Ok(self.engine.store.alert_rule_list(prefix, limit, offset).await?)
    }

    /// Changes rules one by one with `edit` (read, edit, compare-and-swap), after checking that
    /// every one exists: an unknown name changes nothing.
    async fn edit_rules(
        &self,
        names: &[String],
        edit: impl Fn(&mut AlertRule) -> Result<(), ServiceError>,
    ) -> Result<Vec<AlertRule>, ServiceError> {
        if names.is_empty() {
            return Err(ServiceError::refused(Code::MissingParameter, "give at least one rule name"));
        }
        for name in names {
            if self.engine.store.alert_rule_get(name).await?.is_none() {
                return Err(rule_not_found(name));
            }
        }
        let mut edited = Vec::new();
        for name in names {
            let mut done = None;
            for _ in 0..RULE_WRITE_ATTEMPTS {
                let Some(current) = self.engine.store.alert_rule_get(name).await? else {
                    return Err(rule_not_found(name));
                };
                let mut rule = current.value.clone();
                edit(&mut rule)?;
                rule.updated_at = now_millis();
                rule.check()?;
                match self.engine.store.alert_rule_put(&rule, Some(current.generation)).await {
                    Ok(_) => {
                        done = Some(rule);
                        break;
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(other) => return Err(other.into()),
                }
            }
            edited.push(done.ok_or(ServiceError::Conflict)?);
        }
        Ok(edited)
    }

    /// Enables or disables rules (`EnableEventRules`, `DisableEventRules`).
    pub async fn set_alert_rules_enabled(&self, names: &[String], enabled: bool) -> Result<(), ServiceError> {
        self.edit_rules(names, |rule| {
            rule.enabled = enabled;
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Deletes rules (`DeleteEventRules`); every name must exist.
    pub async fn delete_alert_rules(&self, names: &[String]) -> Result<(), ServiceError> {
        if names.is_empty() {
            return Err(ServiceError::refused(Code::MissingParameter, "give at least one rule name"));
        }
        for name in names {
            if self.engine.store.alert_rule_get(name).await?.is_none() {
                return Err(rule_not_found(name));
            }
        }
        for name in names {
            self.engine.store.alert_rule_delete(name).await?;
        }
        Ok(())
    }

    /// Adds webhooks to a rule, or changes those whose ids it has (`PutEventRuleTargets`).
    pub async fn put_alert_webhooks(&self, name: &str, webhooks: Vec<Webhook>) -> Result<AlertRule, ServiceError> {
        if webhooks.is_empty() {
            return Err(ServiceError::refused(
                Code::MissingParameter,
                "give at least one webhook (WebhookParameters.1.Id, .Url)",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for webhook in &webhooks {
            check_webhook_id(&webhook.id)?;
            rollscale_core::alert::check_webhook_url(&webhook.url)?;
            if !seen.insert(webhook.id.as_str()) {
                return Err(ServiceError::refused(
                    Code::InvalidParameter,
                    format!("the webhook id {} is given twice", webhook.id),
                ));
            }
        }
        let mut rules = self
            .edit_rules(&[name.to_string()], |rule| {
                for webhook in &webhooks {
                    match rule.webhooks.iter_mut().find(|known| known.id == webhook.id) {
                        Some(known) => *known = webhook.clone(),
                        None => rule.webhooks.push(webhook.clone()),
                    }
                }
                if rule.webhooks.len() > MAX_TARGETS {
                    return Err(ServiceError::refused(
                        Code::InvalidParameter,
                        format!("a rule has at most {MAX_TARGETS} webhooks"),
                    ));
                }
                Ok(())
            })
            .await?;
        Ok(rules.remove(0))
    }

    /// Removes webhooks from a rule (`DeleteEventRuleTargets`); every id must be the rule's.
    pub async fn delete_alert_webhooks(&self, name: &str, ids: &[String]) -> Result<AlertRule, ServiceError> {
        if ids.is_empty() {
            return Err(ServiceError::refused(Code::MissingParameter, "give at least one webhook id (Ids.1)"));
        }
        let mut rules = self
            .edit_rules(&[name.to_string()], |rule| {
                if let Some(missing) = ids.iter().find(|id| rule.webhooks.iter().all(|w| &w.id != *id)) {
                    return Err(ServiceError::refused(
                        Code::ResourceNotFound,
                        format!("the alert rule {} has no webhook {missing}", rule.name),
                    ));
                }
                rule.webhooks.retain(|webhook| !ids.contains(&webhook.id));
                Ok(())
            })
            .await?;
        Ok(rules.remove(0))
    }

    /// Deliveries, newest first: of one rule (which must exist), of one status, or all.
    pub async fn alert_deliveries(
        &self,
        rule: Option<&str>,
        status: Option<DeliveryStatus>,
        limit: i64,
    ) -> Result<Vec<Delivery>, ServiceError> {
        if let Some(name) = rule {
            self.alert_rule(name).await?;
        }
        Ok(self.engine.store.alert_delivery_list(rule, status, limit).await?)
    }

    /// The alert sender: every `poll_interval`, the due deliveries, each sent once through
    /// `notifier` (concurrently within a look) and its outcome recorded.
    pub fn spawn_alert_sender(
        &self,
        notifier: Arc<dyn Notifier>,
        config: AlertSenderConfig,
    ) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        let handle = tokio::spawn(async move {
            // Once an hour, from the first look (an Instant an hour back may not exist soon
            // after boot, so: none yet).
            let mut pruned_at: Option<tokio::time::Instant> = None;
            loop {
                if pruned_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
                    pruned_at = Some(tokio::time::Instant::now());
                    let before = now_millis() - config.retention.as_millis() as i64;
                    match service.engine.store.alert_deliveries_prune(before, 10_000).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(deliveries = n, "old settled alert deliveries pruned"),
                        Err(error) => tracing::warn!(%error, "could not prune old alert deliveries"),
                    }
                }
                match service.send_due_alerts(notifier.as_ref(), &config).await {
                    Ok(0) => tokio::time::sleep(config.poll_interval).await,
                    // A full batch: more may be due at once.
                    Ok(sent) if sent as i64 >= config.batch => {}
                    Ok(_) => tokio::time::sleep(config.poll_interval).await,
                    Err(error) => {
                        tracing::warn!(%error, "the alert sender could not read its deliveries");
                        tokio::time::sleep(config.poll_interval).await;
                    }
                }
            }
        });
        self.engine.track(handle.abort_handle());
        handle
    }

    /// One look: sends what is due now; returns how many deliveries it took.
    pub async fn send_due_alerts(
        &self,
        notifier: &dyn Notifier,
        config: &AlertSenderConfig,
    ) -> Result<usize, ServiceError> {
        let store = &self.engine.store;
        let now = now_millis();
        let due = store.alert_deliveries_due(now, config.batch).await?;
        let taken = due.len();
        let mut attempts = Vec::new();
        for delivery in due {
            let claim_until = now + config.claim.as_millis() as i64;
            let generation =
                match store.alert_delivery_claim(&delivery.value.id, delivery.generation, claim_until).await {
                    Ok(generation) => generation,
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(other) => return Err(other.into()),
                };
            let mut current = delivery.value;
            // The rule as it is now decides: gone or disabled drops it, a changed URL is used.
            let target = match store.alert_rule_get(&current.rule_name).await?.map(|rule| rule.value) {
                None => Err("its alert rule was deleted"),
                Some(rule) if !rule.enabled => Err("its alert rule is disabled"),
                Some(rule) => match rule.webhooks.into_iter().find(|w| w.id == current.webhook_id) {
                    Some(webhook) => Ok(webhook),
                    None => Err("its webhook was removed from the rule"),
                },
            };
            match target {
                Ok(webhook) => {
                    current.url = webhook.url;
                    current.method = webhook.method;
                    attempts.push(async move {
                        let started = std::time::Instant::now();
                        let outcome = notifier.send(&current).await;
                        self.engine.metrics.webhook_attempt(&outcome, started.elapsed());
                        (current, generation, outcome)
                    });
                }
                Err(reason) => {
                    current.status = DeliveryStatus::Failed;
                    current.last_error = Some(format!("dropped: {reason}"));
                    record(store, &current, generation).await?;
                    self.engine.metrics.webhook_dropped();
                }
            }
        }
        for (delivery, generation, outcome) in futures_util::future::join_all(attempts).await {
            let next = delivery.after_attempt(&outcome, now_millis(), config.max_attempts);
            match next.status {
                DeliveryStatus::Delivered => {
                    tracing::debug!(delivery = %next.id, webhook = %redacted_url(&next.url), "alert delivered")
                }
                DeliveryStatus::Failed => tracing::warn!(
                    delivery = %next.id,
                    webhook = %redacted_url(&next.url),
                    attempts = next.attempts,
                    error = next.last_error.as_deref().unwrap_or_default(),
                    "alert given up"
                ),
                DeliveryStatus::Pending => tracing::debug!(
                    delivery = %next.id,
                    attempts = next.attempts,
                    error = next.last_error.as_deref().unwrap_or_default(),
                    "alert attempt failed; will retry"
                ),
            }
            record(store, &next, generation).await?;
            self.engine.metrics.webhook_settled(next.status);
        }
        Ok(taken)
    }
}

/// Records a delivery's outcome; a claim another sender took over meanwhile (the attempt
/// outlived its claim) leaves that sender's record.
async fn record(store: &rollscale_store::Store, delivery: &Delivery, generation: i64) -> Result<(), ServiceError> {
    match store.alert_delivery_update(delivery, generation).await {
        Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(other) => Err(other.into()),
    }
}
