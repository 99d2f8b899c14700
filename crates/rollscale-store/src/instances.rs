//! Instances of scaling groups.

use crate::{conflict_unless_one, to_json, versioned, Store, StoreError, Versioned};
use rollscale_core::domain::Instance;
use rollscale_core::ids::{InstanceId, ScalingGroupId};
use sqlx::Connection;

impl Store {
    pub async fn instance_insert(&self, instance: &Instance) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (id, group_id, lifecycle_state, body, created_at, generation) \
             VALUES ($1, $2, $3, $4, $5, 1)",
        )
        .bind(instance.id.as_str())
        .bind(instance.group_id.as_str())
        .bind(instance.lifecycle_state.as_str())
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
                "INSERT INTO instances (id, group_id, lifecycle_state, body, created_at, generation) \
                 VALUES ($1, $2, $3, $4, $5, 1)",
            )
            .bind(instance.id.as_str())
            .bind(instance.group_id.as_str())
            .bind(instance.lifecycle_state.as_str())
            .bind(to_json(instance))
            .bind(instance.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn instance_get(&self, id: &InstanceId) -> Result<Option<Versioned<Instance>>, StoreError> {
        let row = sqlx::query("SELECT body, generation FROM instances WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| versioned("instance", &row)).transpose()
    }

    /// A group's instances (or every instance), by creation time then id.
    pub async fn instance_list(
        &self,
        group_id: Option<&ScalingGroupId>,
    ) -> Result<Vec<Versioned<Instance>>, StoreError> {
        let rows = match group_id {
            Some(group_id) => {
                sqlx::query("SELECT body, generation FROM instances WHERE group_id = $1 ORDER BY created_at, id")
                    .bind(group_id.as_str())
                    .fetch_all(&mut *self.conn().await?)
                    .await?
            }
            None => {
                sqlx::query("SELECT body, generation FROM instances ORDER BY created_at, id")
                    .fetch_all(&mut *self.conn().await?)
                    .await?
            }
        };
        rows.iter().map(|row| versioned("instance", row)).collect()
    }

    pub async fn instance_update(&self, instance: &Instance, generation: i64) -> Result<i64, StoreError> {
        let result = sqlx::query(
            "UPDATE instances SET lifecycle_state = $1, body = $2, generation = generation + 1 \
             WHERE id = $3 AND generation = $4",
        )
        .bind(instance.lifecycle_state.as_str())
        .bind(to_json(instance))
        .bind(instance.id.as_str())
        .bind(generation)
        .execute(&mut *self.conn().await?)
        .await?;
        conflict_unless_one(result.rows_affected(), "instance", instance.id.as_str())?;
        Ok(generation + 1)
    }

    /// Writes several instances in one transaction, each if it is still at its generation;
    /// on a conflict nothing is written.
    pub async fn instances_update(&self, instances: &[Versioned<Instance>]) -> Result<(), StoreError> {
        if instances.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        for instance in instances {
            let result = sqlx::query(
                "UPDATE instances SET lifecycle_state = $1, body = $2, generation = generation + 1 \
                 WHERE id = $3 AND generation = $4",
            )
            .bind(instance.value.lifecycle_state.as_str())
            .bind(to_json(&instance.value))
            .bind(instance.value.id.as_str())
            .bind(instance.generation)
            .execute(&mut *tx)
            .await?;
            conflict_unless_one(result.rows_affected(), "instance", instance.value.id.as_str())?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes the instance and its load-balancer registrations.
    pub async fn instance_delete(&self, id: &InstanceId) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM instances WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM lb_backends WHERE instance_id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
