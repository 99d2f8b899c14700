//! Alert rules and their deliveries (R15). Recording an event ([`Store::event_insert`]) makes
//! the deliveries of every enabled rule that matches it, in the same transaction: an event is
//! never recorded without them, nor alerted twice.

use crate::{conflict_unless_one, from_json, is_unique_violation, to_json, versioned, Store, StoreError, Versioned};
use rollscale_core::alert::{AlertRule, Delivery, DeliveryStatus};
use rollscale_core::domain::{Event, Millis};
use sqlx::{AnyConnection, Row};

impl Store {
    /// Stores a new rule (`generation` `None`), or replaces one still at `generation`.
    /// Returns the rule's new generation.
    pub async fn alert_rule_put(&self, rule: &AlertRule, generation: Option<i64>) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        match generation {
            None => {
                sqlx::query(
                    "INSERT INTO alert_rules (name, enabled, body, generation, created_at) VALUES ($1, $2, $3, 1, $4)",
                )
                .bind(rule.name.as_str())
                .bind(i64::from(rule.enabled))
                .bind(to_json(rule))
                .bind(rule.created_at)
                .execute(&mut *conn)
                .await
                .map_err(|error| {
                    if is_unique_violation(&error) {
                        StoreError::AlreadyExists { what: "alert rule", id: rule.name.clone() }
                    } else {
                        error.into()
                    }
                })?;
                Ok(1)
            }
            Some(generation) => {
                let result = sqlx::query(
                    "UPDATE alert_rules SET enabled = $2, body = $3, generation = generation + 1 \
                     WHERE name = $1 AND generation = $4",
                )
                .bind(rule.name.as_str())
                .bind(i64::from(rule.enabled))
                .bind(to_json(rule))
                .bind(generation)
                .execute(&mut *conn)
                .await?;
                conflict_unless_one(result.rows_affected(), "alert rule", &rule.name)?;
                Ok(generation + 1)
            }
        }
    }

    pub async fn alert_rule_get(&self, name: &str) -> Result<Option<Versioned<AlertRule>>, StoreError> {
        let row = sqlx::query("SELECT body, generation FROM alert_rules WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| versioned("alert rule", &row)).transpose()
    }

    /// Rules whose name starts with `prefix`, by name, a page at `offset`; with their total.
    pub async fn alert_rule_list(
        &self,
        prefix: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AlertRule>, i64), StoreError> {
        // A prefix match without LIKE, whose `%`/`_` would need escaping: the names of
        // rules are short, and compared as text.
        let upper = format!("{prefix}\u{10FFFF}");
        let mut conn = self.conn().await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) FROM alert_rules WHERE name >= $1 AND name < $2")
            .bind(prefix)
            .bind(upper.as_str())
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        let rows =
            sqlx::query("SELECT body FROM alert_rules WHERE name >= $1 AND name < $2 ORDER BY name LIMIT $3 OFFSET $4")
                .bind(prefix)
                .bind(upper.as_str())
                .bind(limit)
                .bind(offset)
                .fetch_all(&mut *conn)
                .await?;
        let rules =
            rows.iter().map(|row| from_json("alert rule", &row.get::<String, _>(0))).collect::<Result<_, _>>()?;
        Ok((rules, total))
    }

    /// Deletes a rule; returns whether it existed. Its pending deliveries are dropped when
    /// their turn comes (the sender finds the rule gone).
    pub async fn alert_rule_delete(&self, name: &str) -> Result<bool, StoreError> {
        let result =
            sqlx::query("DELETE FROM alert_rules WHERE name = $1").bind(name).execute(&mut *self.conn().await?).await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deliveries due at `now` and not being sent, oldest due first.
    pub async fn alert_deliveries_due(&self, now: Millis, limit: i64) -> Result<Vec<Versioned<Delivery>>, StoreError> {
        let rows = sqlx::query(
            "SELECT body, generation FROM alert_deliveries \
             WHERE status = 'Pending' AND next_attempt_at <= $1 AND claimed_until <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(|row| versioned("alert delivery", row)).collect()
    }

    /// Takes a due delivery for one attempt until `until`, if nobody moved it since
    /// `generation`; returns its new generation ([`StoreError::Conflict`] when another
    /// sender has it).
    pub async fn alert_delivery_claim(&self, id: &str, generation: i64, until: Millis) -> Result<i64, StoreError> {
        let result = sqlx::query(
            "UPDATE alert_deliveries SET claimed_until = $3, generation = generation + 1 \
             WHERE id = $1 AND generation = $2 AND status = 'Pending'",
        )
        .bind(id)
        .bind(generation)
        .bind(until)
        .execute(&mut *self.conn().await?)
        .await?;
        conflict_unless_one(result.rows_affected(), "alert delivery", id)?;
        Ok(generation + 1)
    }

    /// Records an attempt's outcome on a delivery still at `generation`, and releases it.
    pub async fn alert_delivery_update(&self, delivery: &Delivery, generation: i64) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE alert_deliveries SET status = $2, next_attempt_at = $3, claimed_until = 0, body = $4, \
             generation = generation + 1 WHERE id = $1 AND generation = $5",
        )
        .bind(delivery.id.as_str())
        .bind(delivery.status.as_str())
        .bind(delivery.next_attempt_at)
        .bind(to_json(delivery))
        .bind(generation)
        .execute(&mut *self.conn().await?)
        .await?;
        conflict_unless_one(result.rows_affected(), "alert delivery", &delivery.id)
    }

    /// Deletes the settled deliveries (Delivered or Failed) made before `before`, at most
    /// `limit` of them; returns how many. Pending ones are kept, however old.
    pub async fn alert_deliveries_prune(&self, before: Millis, limit: i64) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "DELETE FROM alert_deliveries WHERE id IN (SELECT id FROM alert_deliveries \
             WHERE status <> 'Pending' AND created_at < $1 ORDER BY created_at LIMIT $2)",
        )
        .bind(before)
        .bind(limit)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(result.rows_affected())
    }

    /// Deliveries, newest first: of one rule, of one status, or all.
    pub async fn alert_delivery_list(
        &self,
        rule_name: Option<&str>,
        status: Option<DeliveryStatus>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM alert_deliveries WHERE ($1 = '' OR rule_name = $1) AND ($2 = '' OR status = $2) \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(rule_name.unwrap_or(""))
        .bind(status.map_or("", DeliveryStatus::as_str))
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(|row| from_json("alert delivery", &row.get::<String, _>(0))).collect()
    }
}

/// Makes the deliveries of a newly recorded event, inside the transaction that records it.
pub(crate) async fn enqueue_deliveries(conn: &mut AnyConnection, event: &Event) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT body FROM alert_rules WHERE enabled = 1").fetch_all(&mut *conn).await?;
    for row in rows {
        let rule: AlertRule = from_json("alert rule", &row.get::<String, _>(0))?;
        for delivery in rule.deliveries_for(event, event.created_at) {
            sqlx::query(
                "INSERT INTO alert_deliveries (id, rule_name, status, next_attempt_at, claimed_until, generation, body, \
                 created_at) VALUES ($1, $2, $3, $4, 0, 1, $5, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(delivery.id.as_str())
            .bind(delivery.rule_name.as_str())
            .bind(delivery.status.as_str())
            .bind(delivery.next_attempt_at)
            .bind(to_json(&delivery))
            .bind(delivery.created_at)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::fresh_store;
    use crate::StoreError;
    use rollscale_core::alert::{AlertRule, AttemptOutcome, DeliveryStatus, EventPattern, Webhook, WebhookMethod};
    use rollscale_core::domain::{Event, EventKind, EventLevel};
    use rollscale_core::ids::{ExecutionId, ScalingGroupId};

    fn rule(name: &str, levels: Vec<EventLevel>, enabled: bool) -> AlertRule {
        AlertRule {
            name: name.into(),
            description: String::new(),
            enabled,
            patterns: vec![EventPattern { levels, ..Default::default() }],
            webhooks: vec![
                Webhook { id: "a".into(), url: "http://127.0.0.1:9/a".into(), method: WebhookMethod::Post },
                Webhook { id: "b".into(), url: "http://127.0.0.1:9/b".into(), method: WebhookMethod::Get },
            ],
            created_at: 1,
            updated_at: 1,
        }
    }

    fn event(id: &str, level: EventLevel) -> Event {
        Event {
            id: id.into(),
            name: "ACS-ESS-RollingUpdateByRunCommandInScalingGroup".into(),
            level,
            kind: EventKind::InstanceFailed,
            group_id: ScalingGroupId::parse("asg-0123456789abcdef0123").expect("id"),
            execution_id: Some(ExecutionId::parse("exec-0123456789abcdef0123").expect("id")),
            content: "instance i-1 failed".into(),
            created_at: 100,
        }
    }

    #[tokio::test]
    async fn recording_an_event_makes_one_delivery_per_webhook_of_each_enabled_matching_rule_once() {
        let (_dir, store) = fresh_store().await;
        store.alert_rule_put(&rule("critical", vec![EventLevel::Critical], true), None).await.expect("put");
        store.alert_rule_put(&rule("info", vec![EventLevel::Info], true), None).await.expect("put");
        store.alert_rule_put(&rule("off", vec![], false), None).await.expect("put");
        let again = store.alert_rule_put(&rule("critical", vec![], true), None).await;
        assert!(matches!(again, Err(StoreError::AlreadyExists { .. })), "{again:?}");

        store.event_insert(&event("e1", EventLevel::Critical)).await.expect("event");
        store.event_insert(&event("e1", EventLevel::Critical)).await.expect("the same event again");
        let made = store.alert_delivery_list(None, None, 100).await.expect("list");
        let mut ids: Vec<&str> = made.iter().map(|d| d.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, vec!["critical/a/e1", "critical/b/e1"], "the disabled and the non-matching rule make none");

        let due = store.alert_deliveries_due(100, 10).await.expect("due");
        assert_eq!(due.len(), 2);
        assert!(store.alert_deliveries_due(99, 10).await.expect("due").is_empty(), "not before its time");

        // One sender at a time: a second claim of the same generation loses.
        let first = &due[0];
        let claimed = store.alert_delivery_claim(&first.value.id, first.generation, 10_000).await.expect("claim");
        let lost = store.alert_delivery_claim(&first.value.id, first.generation, 10_000).await;
        assert!(matches!(lost, Err(StoreError::Conflict { .. })), "{lost:?}");
        assert_eq!(store.alert_deliveries_due(200, 10).await.expect("due").len(), 1, "claimed: not due to others");

        let failed = first.value.after_attempt(&AttemptOutcome::Answered(500), 200, 10);
        store.alert_delivery_update(&failed, claimed).await.expect("record");
        let pending =
            store.alert_delivery_list(Some("critical"), Some(DeliveryStatus::Pending), 10).await.expect("list");
        assert_eq!(pending.len(), 2);
        let retried = pending.iter().find(|d| d.id == first.value.id).expect("still there");
        assert_eq!((retried.attempts, retried.next_attempt_at), (1, 1_200));
        assert!(store.alert_delivery_list(Some("info"), None, 10).await.expect("list").is_empty());

        // Pruning takes settled deliveries made before the time, never a Pending one.
        let delivered = pending[1].after_attempt(&AttemptOutcome::Answered(204), 300, 10);
        let current = store.alert_deliveries_due(10_000, 10).await.expect("due");
        let row = current.iter().find(|d| d.value.id == delivered.id).expect("due");
        let claimed = store.alert_delivery_claim(&row.value.id, row.generation, 20_000).await.expect("claim");
        store.alert_delivery_update(&delivered, claimed).await.expect("record");
        assert_eq!(store.alert_deliveries_prune(100, 100).await.expect("prune"), 0, "not before its time");
        assert_eq!(store.alert_deliveries_prune(101, 100).await.expect("prune"), 1);
        let left = store.alert_delivery_list(None, None, 10).await.expect("list");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].status, DeliveryStatus::Pending, "the pending one stays");
    }

    #[tokio::test]
    async fn rules_are_replaced_at_their_generation_listed_by_prefix_and_deleted() {
        let (_dir, store) = fresh_store().await;
        for name in ["ops-critical", "ops-info", "team_b"] {
            store.alert_rule_put(&rule(name, vec![], true), None).await.expect("put");
        }
        let current = store.alert_rule_get("ops-info").await.expect("get").expect("there");
        let mut changed = current.value.clone();
        changed.enabled = false;
        let next = store.alert_rule_put(&changed, Some(current.generation)).await.expect("replace");
        assert_eq!(next, current.generation + 1);
        let stale = store.alert_rule_put(&changed, Some(current.generation)).await;
        assert!(matches!(stale, Err(StoreError::Conflict { .. })), "{stale:?}");
        let (ops, total) = store.alert_rule_list("ops-", 10, 0).await.expect("list");
        assert_eq!(
            (ops.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), total),
            (vec!["ops-critical", "ops-info"], 2)
        );
        let (page, total) = store.alert_rule_list("", 1, 1).await.expect("page");
        assert_eq!((page[0].name.as_str(), total), ("ops-info", 3));
        assert!(store.alert_rule_delete("team_b").await.expect("delete"));
        assert!(!store.alert_rule_delete("team_b").await.expect("again"));
        // A disabled rule makes no delivery.
        store.event_insert(&event("e2", EventLevel::Info)).await.expect("event");
        let made = store.alert_delivery_list(None, None, 10).await.expect("list");
        assert!(made.iter().all(|d| d.rule_name == "ops-critical"), "{made:?}");
        assert_eq!(made.len(), 2);
    }
}
