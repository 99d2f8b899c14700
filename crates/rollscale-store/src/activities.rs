//! Scaling activities and rolling-update events.

use crate::{from_json, to_json, Store, StoreError};
use rollscale_core::domain::{Event, ScalingActivity};
use rollscale_core::ids::ScalingGroupId;
use sqlx::{Connection, Row};

impl Store {
    /// Records a scaling activity, or replaces it when it exists (its status moved on).
    pub async fn activity_put(&self, activity: &ScalingActivity) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO scaling_activities (id, group_id, body, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
        )
        .bind(activity.id.as_str())
        .bind(activity.group_id.as_str())
        .bind(to_json(activity))
        .bind(activity.started_at)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// A group's activities, newest first, from `offset`, at most `limit`, and the total.
    pub async fn activity_list(
        &self,
        group_id: &ScalingGroupId,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<ScalingActivity>, i64), StoreError> {
        let total: i64 = sqlx::query("SELECT COUNT(*) FROM scaling_activities WHERE group_id = $1")
            .bind(group_id.as_str())
            .fetch_one(&mut *self.conn().await?)
            .await?
            .try_get(0)?;
        let rows = sqlx::query(
            "SELECT body FROM scaling_activities WHERE group_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(group_id.as_str())
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let activities =
            rows.iter().map(|row| from_json("scaling activity", &row.get::<String, _>(0))).collect::<Result<_, _>>()?;
        Ok((activities, total))
    }

    /// Records an event once: an event id seen before is ignored, so a replayed step does not
    /// raise its event twice.
    ///
    /// A new event makes, in the same transaction, the deliveries of the alert rules that
    /// match it (`alerts.rs`).
    pub async fn event_insert(&self, event: &Event) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO events (id, group_id, execution_id, level, name, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(event.id.as_str())
        .bind(event.group_id.as_str())
        .bind(event.execution_id.as_ref().map_or("", |id| id.as_str()))
        .bind(event.level.as_str())
        .bind(event.name.as_str())
        .bind(to_json(event))
        .bind(event.created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            crate::alerts::enqueue_deliveries(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Events, newest first, optionally of one execution and of one scaling group.
    pub async fn event_list(
        &self,
        execution_id: Option<&str>,
        group_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM events WHERE ($1 = '' OR execution_id = $1) AND ($2 = '' OR group_id = $2) \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(execution_id.unwrap_or(""))
        .bind(group_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(|row| from_json("event", &row.get::<String, _>(0))).collect()
    }
}
