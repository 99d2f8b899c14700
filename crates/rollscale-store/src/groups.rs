//! Scaling groups and scaling configurations.

use crate::{conflict_unless_one, is_unique_violation, to_json, versioned, Store, StoreError, Versioned};
use rollscale_core::domain::{ScalingConfiguration, ScalingGroup};
use rollscale_core::ids::{ScalingConfigurationId, ScalingGroupId};
use sqlx::Connection;

impl Store {
    pub async fn group_insert(&self, group: &ScalingGroup) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO scaling_groups (id, name, region_id, status, body, created_at, generation) \
             VALUES ($1, $2, $3, $4, $5, $6, 1)",
        )
        .bind(group.id.as_str())
        .bind(group.name.as_str())
        .bind(group.region_id.as_str())
        .bind(group.status.as_str())
        .bind(to_json(group))
        .bind(group.created_at)
        .execute(&mut *self.conn().await?)
        .await
        .map_err(|error| {
            if is_unique_violation(&error) {
                StoreError::AlreadyExists { what: "scaling group", id: group.id.to_string() }
            } else {
                error.into()
            }
        })?;
        Ok(())
    }

    pub async fn group_get(&self, id: &ScalingGroupId) -> Result<Option<Versioned<ScalingGroup>>, StoreError> {
        let row = sqlx::query("SELECT body, generation FROM scaling_groups WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| versioned("scaling group", &row)).transpose()
    }

    pub async fn group_get_by_name(&self, name: &str) -> Result<Option<Versioned<ScalingGroup>>, StoreError> {
        let row = sqlx::query("SELECT body, generation FROM scaling_groups WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| versioned("scaling group", &row)).transpose()
    }

    /// All groups, oldest first.
    pub async fn group_list(&self) -> Result<Vec<Versioned<ScalingGroup>>, StoreError> {
        let rows = sqlx::query("SELECT body, generation FROM scaling_groups ORDER BY created_at, id")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|row| versioned("scaling group", row)).collect()
    }

    /// Writes `group` if it is still at `generation`; returns the new generation.
    pub async fn group_update(&self, group: &ScalingGroup, generation: i64) -> Result<i64, StoreError> {
        let result = sqlx::query(
            "UPDATE scaling_groups SET name = $1, status = $2, body = $3, generation = generation + 1 \
             WHERE id = $4 AND generation = $5",
        )
        .bind(group.name.as_str())
        .bind(group.status.as_str())
        .bind(to_json(group))
        .bind(group.id.as_str())
        .bind(generation)
        .execute(&mut *self.conn().await?)
        .await?;
        conflict_unless_one(result.rows_affected(), "scaling group", group.id.as_str())?;
        Ok(generation + 1)
    }

    pub async fn group_delete(&self, id: &ScalingGroupId, generation: i64) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let result = sqlx::query("DELETE FROM scaling_groups WHERE id = $1 AND generation = $2")
            .bind(id.as_str())
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        conflict_unless_one(result.rows_affected(), "scaling group", id.as_str())?;
        sqlx::query("DELETE FROM scaling_configurations WHERE group_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn configuration_insert(&self, configuration: &ScalingConfiguration) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO scaling_configurations (id, group_id, body, created_at, generation) \
             VALUES ($1, $2, $3, $4, 1)",
        )
        .bind(configuration.id.as_str())
        .bind(configuration.group_id.as_str())
        .bind(to_json(configuration))
        .bind(configuration.created_at)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    pub async fn configuration_get(
        &self,
        id: &ScalingConfigurationId,
    ) -> Result<Option<Versioned<ScalingConfiguration>>, StoreError> {
        let row = sqlx::query("SELECT body, generation FROM scaling_configurations WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| versioned("scaling configuration", &row)).transpose()
    }

    /// Configurations of one group, or of all groups, oldest first.
    pub async fn configuration_list(
        &self,
        group_id: Option<&ScalingGroupId>,
    ) -> Result<Vec<Versioned<ScalingConfiguration>>, StoreError> {
        let rows =
            match group_id {
                Some(group_id) => sqlx::query(
                    "SELECT body, generation FROM scaling_configurations WHERE group_id = $1 ORDER BY created_at, id",
                )
                .bind(group_id.as_str())
                .fetch_all(&mut *self.conn().await?)
                .await?,
                None => {
                    sqlx::query("SELECT body, generation FROM scaling_configurations ORDER BY created_at, id")
                        .fetch_all(&mut *self.conn().await?)
                        .await?
                }
            };
        rows.iter().map(|row| versioned("scaling configuration", row)).collect()
    }

    pub async fn configuration_update(
        &self,
        configuration: &ScalingConfiguration,
        generation: i64,
    ) -> Result<i64, StoreError> {
        let result = sqlx::query(
            "UPDATE scaling_configurations SET body = $1, generation = generation + 1 WHERE id = $2 AND generation = $3",
        )
        .bind(to_json(configuration))
        .bind(configuration.id.as_str())
        .bind(generation)
        .execute(&mut *self.conn().await?)
        .await?;
        conflict_unless_one(result.rows_affected(), "scaling configuration", configuration.id.as_str())?;
        Ok(generation + 1)
    }
}
