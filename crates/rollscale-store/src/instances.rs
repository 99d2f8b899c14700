//! Instances of scaling groups.

use crate::{conflict_unless_one, placeholders, to_json, versioned, Backend, Store, StoreError, Versioned};
use rollscale_core::domain::{HealthStatus, Instance, LifecycleState};
use rollscale_core::ids::{InstanceId, ScalingGroupId};
use sqlx::Connection;
use sqlx::Row;

impl Store {
    pub async fn instance_insert(&self, instance: &Instance) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (id, group_id, lifecycle_state, health_status, body, created_at, generation) \
             VALUES ($1, $2, $3, $4, $5, $6, 1)",
        )
        .bind(instance.id.as_str())
        .bind(instance.group_id.as_str())
        .bind(instance.lifecycle_state.as_str())
        .bind(instance.health_status.as_str())
        .bind(to_json(instance))
        .bind(instance.created_at)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Inserts many instances in one transaction (a group's initial capacity).
    pub async fn instance_insert_many(&self, instances: &[Instance]) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        for instance in instances {
            sqlx::query(
                "INSERT INTO instances (id, group_id, lifecycle_state, health_status, body, created_at, generation) \
                 VALUES ($1, $2, $3, $4, $5, $6, 1)",
            )
            .bind(instance.id.as_str())
            .bind(instance.group_id.as_str())
            .bind(instance.lifecycle_state.as_str())
            .bind(instance.health_status.as_str())
            .bind(to_json(instance))
            .bind(instance.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn instance_get(&self, id: &InstanceId) -> Result<Option<Versioned<Instance>>, StoreError> {
        let row = sqlx::query("SELECT body, generation, observed_at FROM instances WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| instance_row(&row)).transpose()
    }

    /// The instances of `ids` that exist, in no particular order: one statement each 128.
    pub async fn instances_get(&self, ids: &[&InstanceId]) -> Result<Vec<Versioned<Instance>>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(INSTANCES_WRITE_CHUNK) {
            let mut param = placeholders(self.backend);
            let list: Vec<String> = chunk.iter().map(|_| param()).collect();
            let sql = format!("SELECT body, generation, observed_at FROM instances WHERE id IN ({})", list.join(", "));
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&mut *self.conn().await?).await? {
                found.push(instance_row(&row)?);
            }
        }
        Ok(found)
    }

    /// A group's instances (or every instance), by creation time then id.
    pub async fn instance_list(
        &self,
        group_id: Option<&ScalingGroupId>,
    ) -> Result<Vec<Versioned<Instance>>, StoreError> {
        let rows =
            match group_id {
                Some(group_id) => sqlx::query(
                    "SELECT body, generation, observed_at FROM instances WHERE group_id = $1 ORDER BY created_at, id",
                )
                .bind(group_id.as_str())
                .fetch_all(&mut *self.conn().await?)
                .await?,
                None => {
                    sqlx::query("SELECT body, generation, observed_at FROM instances ORDER BY created_at, id")
                        .fetch_all(&mut *self.conn().await?)
                        .await?
                }
            };
        rows.iter().map(instance_row).collect()
    }

    pub async fn instance_update(&self, instance: &Instance, generation: i64) -> Result<i64, StoreError> {
        let result = sqlx::query(
            "UPDATE instances SET lifecycle_state = $1, health_status = $5, body = $2, generation = generation + 1 \
             WHERE id = $3 AND generation = $4",
        )
        .bind(instance.lifecycle_state.as_str())
        .bind(to_json(instance))
        .bind(instance.id.as_str())
        .bind(generation)
        .bind(instance.health_status.as_str())
        .execute(&mut *self.conn().await?)
        .await?;
        conflict_unless_one(result.rows_affected(), "instance", instance.id.as_str())?;
        Ok(generation + 1)
    }

    /// Writes instances, each if it is still at its generation (its new generation is then
    /// its old one + 1), in as few statements as possible, and says for each whether it was
    /// written (`false` is what [`Store::instance_update`] reports as a conflict). As
    /// [`Store::works_write`]: [`INSTANCES_WRITE_CHUNK`] rows a statement, and a statement
    /// that did not write all its rows has each of them read back.
    pub async fn instances_write(&self, instances: &[Versioned<Instance>]) -> Result<Vec<bool>, StoreError> {
        let mut written = Vec::with_capacity(instances.len());
        for chunk in instances.chunks(INSTANCES_WRITE_CHUNK) {
            let slots = chunk.len().next_power_of_two();
            let sql = instances_write_sql(self.backend, slots);
            let mut query = sqlx::query(&sql);
            let bodies: Vec<String> = chunk.iter().map(|instance| to_json(&instance.value)).collect();
            for (instance, body) in chunk.iter().zip(&bodies) {
                query = query
                    .bind(instance.value.id.as_str())
                    .bind(instance.generation)
                    .bind(instance.value.lifecycle_state.as_str())
                    .bind(instance.value.health_status.as_str())
                    .bind(body.as_str());
            }
            for _ in chunk.len()..slots {
                query = query.bind("").bind(-1_i64).bind("").bind("").bind("");
            }
            let result = query.execute(&mut *self.conn().await?).await?;
            if result.rows_affected() == chunk.len() as u64 {
                written.extend(std::iter::repeat_n(true, chunk.len()));
                continue;
            }
            for (instance, body) in chunk.iter().zip(&bodies) {
                let stored = sqlx::query("SELECT generation, body FROM instances WHERE id = $1")
                    .bind(instance.value.id.as_str())
                    .fetch_optional(&mut *self.conn().await?)
                    .await?;
                written.push(match stored {
                    Some(stored) => {
                        stored.try_get::<i64, _>(0)? == instance.generation + 1
                            && &stored.try_get::<String, _>(1)? == body
                    }
                    None => false,
                });
            }
        }
        Ok(written)
    }

    /// Records that the instances of `ids` were looked at `at` (R16), without writing their
    /// records: their generation stays, so a task's compare-and-swap on them is not disturbed.
    pub async fn instances_observed(&self, ids: &[&InstanceId], at: i64) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        for chunk in ids.chunks(INSTANCES_WRITE_CHUNK) {
            let mut param = placeholders(self.backend);
            let at_param = param();
            let list: Vec<String> = chunk.iter().map(|_| param()).collect();
            let sql = format!("UPDATE instances SET observed_at = {at_param} WHERE id IN ({})", list.join(", "));
            let mut query = sqlx::query(&sql).bind(at);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes the instance and its load-balancer registrations.
    /// How many instances there are of each lifecycle state and health status, over every
    /// group (`/metrics`): one statement, read from the `instances_state_health` index alone
    /// (migration 0012), whatever the number of instances. Pairs without instances are left out.
    pub async fn instance_counts(&self) -> Result<Vec<(LifecycleState, HealthStatus, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT lifecycle_state, health_status, COUNT(*) FROM instances \
             GROUP BY lifecycle_state, health_status ORDER BY lifecycle_state, health_status",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in rows {
            let state = crate::text_enum("instance lifecycle state", &row, 0)?;
            let health = crate::text_enum("instance health status", &row, 1)?;
            counts.push((state, health, row.try_get::<i64, _>(2)?));
        }
        Ok(counts)
    }

    pub async fn instance_delete(&self, id: &InstanceId) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM instances WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM lb_backends WHERE instance_id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// An instance read with its generation and the time it was last looked at.
fn instance_row(row: &sqlx::any::AnyRow) -> Result<Versioned<Instance>, StoreError> {
    let mut instance: Versioned<Instance> = versioned("instance", row)?;
    instance.value.observed_at = row.try_get::<Option<i64>, _>("observed_at")?;
    Ok(instance)
}

/// Most rows [`Store::instances_write`] writes with one statement (see `WORKS_WRITE_CHUNK`).
pub const INSTANCES_WRITE_CHUNK: usize = 128;

/// The statement of [`Store::instances_write`] for `slots` rows, padded as `works_write_sql`.
fn instances_write_sql(backend: Backend, slots: usize) -> String {
    let mut param = placeholders(backend);
    let mut sql = String::with_capacity(300 + slots * 40);
    sql.push_str("WITH v (id, generation, lifecycle_state, health_status, body) AS (VALUES ");
    for slot in 0..slots {
        if slot > 0 {
            sql.push_str(", ");
        }
        let (id, generation, state, health, body) = (param(), param(), param(), param(), param());
        sql.push_str(&format!("({id}, CAST({generation} AS BIGINT), {state}, {health}, {body})"));
    }
    sql.push_str(
        ") UPDATE instances SET lifecycle_state = v.lifecycle_state, health_status = v.health_status, body = v.body, \
         generation = instances.generation + 1 \
         FROM v WHERE instances.id = v.id AND instances.generation = v.generation",
    );
    sql
}

#[cfg(test)]
mod tests {
    use super::{instances_write_sql, INSTANCES_WRITE_CHUNK};
    use crate::{Backend, Versioned};
    use rollscale_core::domain::{CreationType, HealthStatus, Instance, LifecycleState};
    use rollscale_core::ids::{InstanceId, ScalingGroupId};
    use sqlx::Row;

    fn instance(i: u32) -> Instance {
        Instance {
            id: InstanceId::from_random(u128::from(i) + 1),
            group_id: ScalingGroupId::from_random(99),
            lifecycle_state: LifecycleState::InService,
            health_status: HealthStatus::Healthy,
            creation_type: CreationType::AutoCreated,
            image_id: "old".into(),
            packages: Vec::new(),
            containers: Vec::new(),
            tags: Vec::new(),
            address: String::new(),
            created_at: i64::from(i),
            changed_at: None,
            observed: None,
            observed_at: None,
        }
    }

    #[tokio::test]
    async fn instances_write_writes_those_still_at_their_generation() {
        let (_dir, store) = crate::testing::fresh_store().await;
        let instances: Vec<Instance> = (0..300).map(instance).collect();
        store.instance_insert_many(&instances).await.expect("insert");
        // One of them moves on first.
        let mut moved = instances[150].clone();
        moved.tags.push("someone else's".into());
        store.instance_update(&moved, 1).await.expect("update");
        let writes: Vec<Versioned<Instance>> = instances
            .iter()
            .map(|i| {
                let mut next = i.clone();
                next.lifecycle_state = LifecycleState::Standby;
                Versioned { value: next, generation: 1 }
            })
            .collect();
        let written = store.instances_write(&writes).await.expect("write");
        assert_eq!(written, (0..300).map(|i| i != 150).collect::<Vec<_>>());
        for (i, write) in writes.iter().enumerate() {
            let stored = store.instance_get(&write.value.id).await.unwrap().unwrap();
            if i == 150 {
                assert_eq!(stored, Versioned { value: moved.clone(), generation: 2 });
            } else {
                assert_eq!(stored, Versioned { value: write.value.clone(), generation: 2 });
            }
        }
        let standby: Vec<String> = store
            .instance_list(None)
            .await
            .unwrap()
            .iter()
            .filter(|i| i.value.lifecycle_state == LifecycleState::Standby)
            .map(|i| i.value.id.to_string())
            .collect();
        assert_eq!(standby.len(), 299);
        let column: i64 = sqlx::query("SELECT COUNT(*) FROM instances WHERE lifecycle_state = 'Standby'")
            .fetch_one(&mut *store.conn().await.unwrap())
            .await
            .unwrap()
            .get(0);
        assert_eq!(column, 299, "the lifecycle_state column follows the body");
    }

    #[tokio::test]
    async fn instance_counts_follow_every_write_from_the_index_alone() {
        let (_dir, store) = crate::testing::fresh_store().await;
        assert_eq!(store.instance_counts().await.expect("counts"), vec![]);
        let instances: Vec<Instance> = (0..10)
            .map(|i| {
                let mut instance = instance(i);
                instance.lifecycle_state = if i < 7 { LifecycleState::InService } else { LifecycleState::Standby };
                if matches!(i % 3, 0) {
                    instance.health_status = HealthStatus::Unhealthy;
                }
                instance
            })
            .collect();
        store.instance_insert_many(&instances[1..]).await.expect("insert");
        store.instance_insert(&instances[0]).await.expect("insert");
        let (healthy, unhealthy) = (HealthStatus::Healthy, HealthStatus::Unhealthy);
        let (in_service, standby) = (LifecycleState::InService, LifecycleState::Standby);
        assert_eq!(
            store.instance_counts().await.expect("counts"),
            vec![(in_service, healthy, 4), (in_service, unhealthy, 3), (standby, healthy, 2), (standby, unhealthy, 1)]
        );
        // An update and a batched write move them.
        let mut recovered = instances[0].clone();
        recovered.health_status = HealthStatus::Healthy;
        store.instance_update(&recovered, 1).await.expect("update");
        let mut failed = instances[1].clone();
        failed.health_status = HealthStatus::Unhealthy;
        failed.lifecycle_state = LifecycleState::Standby;
        assert_eq!(store.instances_write(&[Versioned { value: failed, generation: 1 }]).await.expect("write"), [true]);
        assert_eq!(
            store.instance_counts().await.expect("counts"),
            vec![(in_service, healthy, 4), (in_service, unhealthy, 2), (standby, healthy, 2), (standby, unhealthy, 2)]
        );
        if store.backend() == Backend::Sqlite {
            let sql = "EXPLAIN QUERY PLAN SELECT lifecycle_state, health_status, COUNT(*) FROM instances \
                       GROUP BY lifecycle_state, health_status ORDER BY lifecycle_state, health_status";
            let plan: Vec<String> = sqlx::query(sql)
                .fetch_all(&mut *store.conn().await.unwrap())
                .await
                .expect("plan")
                .iter()
                .map(|row| row.get::<String, _>(3))
                .collect();
            assert_eq!(plan, ["SCAN instances USING COVERING INDEX instances_state_health"], "{plan:?}");
        }
    }

    /// Migration 0012 gives the rows written before it their health status from their body.
    #[tokio::test]
    async fn the_health_status_column_of_older_rows_is_read_from_their_body() {
        let (_dir, store) = crate::testing::fresh_store().await;
        let instances: Vec<Instance> = (0..6)
            .map(|i| {
                let mut instance = instance(i);
                if matches!(i % 2, 0) {
                    instance.health_status = HealthStatus::Unhealthy;
                }
                // Text like the key inside a string is no match: its quotes are escaped there.
                instance.image_id = r#"x","health_status":"Unhealthy"#.into();
                instance.address = r#""health_status":"Unhealthy""#.into();
                instance
            })
            .collect();
        store.instance_insert_many(&instances).await.expect("insert");
        // As the column was for every row before the migration, then the migration's backfill.
        let mut conn = store.conn().await.unwrap();
        sqlx::query("UPDATE instances SET health_status = 'Healthy'").execute(&mut *conn).await.unwrap();
        let migration = include_str!("../migrations/0012_instance_health_status.sql");
        let backfill = migration.lines().find(|line| line.starts_with("UPDATE instances")).expect("the backfill");
        sqlx::query(backfill).execute(&mut *conn).await.expect("the backfill runs");
        drop(conn);
        let (in_service, healthy, unhealthy) =
            (LifecycleState::InService, HealthStatus::Healthy, HealthStatus::Unhealthy);
        assert_eq!(
            store.instance_counts().await.expect("counts"),
            vec![(in_service, healthy, 3), (in_service, unhealthy, 3)]
        );
    }

    #[tokio::test]
    async fn instances_write_looks_rows_up_by_id_at_every_chunk_size() {
        let (_dir, store) = crate::testing::fresh_store().await;
        if store.backend() != Backend::Sqlite {
            return;
        }
        store.instance_insert_many(&(0..1000).map(instance).collect::<Vec<_>>()).await.expect("insert");
        let mut slots = 1;
        while slots <= INSTANCES_WRITE_CHUNK {
            let sql = format!("EXPLAIN QUERY PLAN {}", instances_write_sql(Backend::Sqlite, slots));
            let plan: Vec<String> = sqlx::query(&sql)
                .fetch_all(&mut *store.conn().await.unwrap())
                .await
                .expect("plan")
                .iter()
                .map(|row| row.get::<String, _>(3))
                .collect();
            assert!(plan.iter().any(|step| step.starts_with("SEARCH instances")), "{slots} rows: {plan:?}");
            assert!(!plan.iter().any(|step| step.starts_with("SCAN instances")), "{slots} rows: {plan:?}");
            slots *= 2;
        }
    }
}
