//! Launch templates and their versions (migration 0003).

use crate::{conflict_unless_one, to_json, versioned, Store, StoreError, Versioned};
use rollscale_core::domain::{LaunchTemplate, LaunchTemplateVersion};
use rollscale_core::ids::LaunchTemplateId;
use sqlx::Connection;

impl Store {
    /// Creates a template with its first version, in one transaction. `false` when the name is
    /// taken.
    pub async fn template_create(
        &self,
        template: &LaunchTemplate,
        first: &LaunchTemplateVersion,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let taken = sqlx::query("SELECT id FROM launch_templates WHERE name = $1")
            .bind(&template.name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if taken {
            return Ok(false);
        }
        sqlx::query("INSERT INTO launch_templates (id, name, body, created_at, generation) VALUES ($1, $2, $3, $4, 1)")
            .bind(template.id.as_str())
            .bind(&template.name)
            .bind(to_json(template))
            .bind(template.created_at)
            .execute(&mut *tx)
            .await?;
        insert_version(&mut tx, first).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn template_get(&self, id: &LaunchTemplateId) -> Result<Option<Versioned<LaunchTemplate>>, StoreError> {
        let row = sqlx::query("SELECT body, generation FROM launch_templates WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| versioned("launch template", &row)).transpose()
    }

    /// Every template, oldest first.
    pub async fn template_list(&self) -> Result<Vec<Versioned<LaunchTemplate>>, StoreError> {
        let rows = sqlx::query("SELECT body, generation FROM launch_templates ORDER BY created_at, id")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|row| versioned("launch template", row)).collect()
    }

    /// Adds `version` and writes `template` (its new latest or default version) in one
    /// transaction, if the template is still at `generation`.
    pub async fn template_add_version(
        &self,
        template: &LaunchTemplate,
        generation: i64,
        version: &LaunchTemplateVersion,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let result = sqlx::query(
            "UPDATE launch_templates SET body = $1, generation = generation + 1 WHERE id = $2 AND generation = $3",
        )
        .bind(to_json(template))
        .bind(template.id.as_str())
        .bind(generation)
        .execute(&mut *tx)
        .await?;
        conflict_unless_one(result.rows_affected(), "launch template", template.id.as_str())?;
        insert_version(&mut tx, version).await?;
        tx.commit().await?;
        Ok(generation + 1)
    }

    /// Writes `template` (e.g. its default version) if it is still at `generation`.
    pub async fn template_update(&self, template: &LaunchTemplate, generation: i64) -> Result<i64, StoreError> {
        let result = sqlx::query(
            "UPDATE launch_templates SET body = $1, generation = generation + 1 WHERE id = $2 AND generation = $3",
        )
        .bind(to_json(template))
        .bind(template.id.as_str())
        .bind(generation)
        .execute(&mut *self.conn().await?)
        .await?;
        conflict_unless_one(result.rows_affected(), "launch template", template.id.as_str())?;
        Ok(generation + 1)
    }

    pub async fn template_version_get(
        &self,
        id: &LaunchTemplateId,
        version: u32,
    ) -> Result<Option<LaunchTemplateVersion>, StoreError> {
        let row = sqlx::query(
            "SELECT body, 0 AS generation FROM launch_template_versions WHERE template_id = $1 AND version = $2",
        )
        .bind(id.as_str())
        .bind(i64::from(version))
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(row.map(|row| versioned("launch template version", &row)).transpose()?.map(|v| v.value))
    }

    /// A template's versions, oldest first.
    pub async fn template_versions(&self, id: &LaunchTemplateId) -> Result<Vec<LaunchTemplateVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT body, 0 AS generation FROM launch_template_versions WHERE template_id = $1 ORDER BY version",
        )
        .bind(id.as_str())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(|row| versioned("launch template version", row).map(|v| v.value)).collect()
    }
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    version: &LaunchTemplateVersion,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO launch_template_versions (template_id, version, body, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(version.template_id.as_str())
    .bind(i64::from(version.version))
    .bind(to_json(version))
    .bind(version.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::fresh_store;
    use crate::StoreError;
    use rollscale_core::domain::{LaunchTemplate, LaunchTemplateVersion};
    use rollscale_core::ids::LaunchTemplateId;

    fn version(id: &LaunchTemplateId, number: u32, image: &str) -> LaunchTemplateVersion {
        LaunchTemplateVersion {
            template_id: id.clone(),
            version: number,
            image_id: image.into(),
            instance_type: "t".into(),
            containers: Vec::new(),
            description: String::new(),
            created_at: i64::from(number),
        }
    }

    #[tokio::test]
    async fn templates_and_versions_round_trip_with_compare_and_swap() {
        let (_dir, store) = fresh_store().await;
        let id = LaunchTemplateId::parse("lt-0123456789abcdef0123").expect("id");
        let template =
            LaunchTemplate { id: id.clone(), name: "web".into(), default_version: 1, latest_version: 1, created_at: 1 };
        assert!(store.template_create(&template, &version(&id, 1, "a")).await.expect("create"));
        let other =
            LaunchTemplate { id: LaunchTemplateId::parse("lt-1123456789abcdef0123").expect("id"), ..template.clone() };
        assert!(!store.template_create(&other, &version(&other.id, 1, "a")).await.expect("same name"));
        assert!(store.template_get(&other.id).await.expect("get").is_none(), "a refused create leaves nothing");

        let current = store.template_get(&id).await.expect("get").expect("exists");
        let next = LaunchTemplate { latest_version: 2, default_version: 2, ..current.value.clone() };
        store.template_add_version(&next, current.generation, &version(&id, 2, "b")).await.expect("add");
        let stale = store.template_add_version(&next, current.generation, &version(&id, 3, "c")).await;
        assert!(matches!(stale, Err(StoreError::Conflict { .. })), "{stale:?}");
        assert!(store.template_version_get(&id, 3).await.expect("get").is_none(), "the stale write left nothing");
        let versions = store.template_versions(&id).await.expect("versions");
        assert_eq!(versions.iter().map(|v| (v.version, v.image_id.as_str())).collect::<Vec<_>>(), [(1, "a"), (2, "b")]);
        assert_eq!(store.template_get(&id).await.expect("get").expect("exists").value.default_version, 2);
        assert_eq!(store.template_list().await.expect("list").len(), 1);
    }
}
