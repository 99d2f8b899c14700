//! The image and package catalogs.

use crate::{from_json, is_unique_violation, to_json, Store, StoreError};
use rollscale_core::domain::{Image, PackageVersion};
use sqlx::{Connection, Row};

fn image_insert_error(error: sqlx::Error, image: &Image) -> StoreError {
    if is_unique_violation(&error) {
        StoreError::AlreadyExists { what: "image", id: image.id.clone() }
    } else {
        error.into()
    }
}

impl Store {
    /// Adds the image to the catalog on someone's explicit request (`CreateImage`), clearing
    /// the mark a `DeleteImage` left, in one transaction.
    pub async fn image_insert(&self, image: &Image) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM image_tombstones WHERE id = $1").bind(image.id.as_str()).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO images (id, body, created_at) VALUES ($1, $2, $3)")
            .bind(image.id.as_str())
            .bind(to_json(image))
            .bind(image.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|error| image_insert_error(error, image))?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds an image found on the fleet unless a `DeleteImage` removed it from the catalog
    /// (checked in the same statement); returns whether it was added.
    pub async fn image_insert_discovered(&self, image: &Image) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO images (id, body, created_at) SELECT $1, $2, $3 \
             WHERE NOT EXISTS (SELECT 1 FROM image_tombstones WHERE id = $1)",
        )
        .bind(image.id.as_str())
        .bind(to_json(image))
        .bind(image.created_at)
        .execute(&mut *self.conn().await?)
        .await
        .map_err(|error| image_insert_error(error, image))?;
        Ok(result.rows_affected() == 1)
    }

    /// Whether a `DeleteImage` removed the image and no `CreateImage` added it since.
    pub async fn image_deleted(&self, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT id FROM image_tombstones WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row.is_some())
    }

    pub async fn image_get(&self, id: &str) -> Result<Option<Image>, StoreError> {
        let row = sqlx::query("SELECT body FROM images WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| from_json("image", &row.get::<String, _>(0))).transpose()
    }

    pub async fn image_list(&self) -> Result<Vec<Image>, StoreError> {
        let rows =
            sqlx::query("SELECT body FROM images ORDER BY created_at, id").fetch_all(&mut *self.conn().await?).await?;
        rows.iter().map(|row| from_json("image", &row.get::<String, _>(0))).collect()
    }

    /// Deletes the image and marks it deleted (see [`Store::image_insert_discovered`]), in one
    /// transaction; returns whether it existed (when not, nothing is written).
    pub async fn image_delete(&self, id: &str, deleted_at: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let result = sqlx::query("DELETE FROM images WHERE id = $1").bind(id).execute(&mut *tx).await?;
        if result.rows_affected() != 1 {
            return Ok(false); // rolled back when dropped: nothing was written
        }
        sqlx::query(
            "INSERT INTO image_tombstones (id, deleted_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at",
        )
        .bind(id)
        .bind(deleted_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn package_insert(&self, package: &PackageVersion) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO package_versions (name, version, body, created_at) VALUES ($1, $2, $3, $4)")
            .bind(package.name.as_str())
            .bind(package.version.as_str())
            .bind(to_json(package))
            .bind(package.created_at)
            .execute(&mut *self.conn().await?)
            .await
            .map_err(|error| {
                if is_unique_violation(&error) {
                    StoreError::AlreadyExists {
                        what: "package version",
                        id: format!("{} {}", package.name, package.version),
                    }
                } else {
                    error.into()
                }
            })?;
        Ok(())
    }

    pub async fn package_get(&self, name: &str, version: &str) -> Result<Option<PackageVersion>, StoreError> {
        let row = sqlx::query("SELECT body FROM package_versions WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| from_json("package version", &row.get::<String, _>(0))).transpose()
    }

    /// Every version of every package, or of the one named.
    pub async fn package_list(&self, name: Option<&str>) -> Result<Vec<PackageVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM package_versions WHERE ($1 = '' OR name = $1) ORDER BY name, created_at, version",
        )
        .bind(name.unwrap_or(""))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(|row| from_json("package version", &row.get::<String, _>(0))).collect()
    }

    pub async fn package_delete(&self, name: &str, version: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM package_versions WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(result.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::fresh_store;
    use crate::StoreError;
    use rollscale_core::domain::{Image, OsType};

    fn image(id: &str) -> Image {
        Image { id: id.into(), name: id.into(), kind: "custom".into(), os: OsType::Linux, created_at: 1 }
    }

    #[tokio::test]
    async fn a_deleted_image_is_not_rediscovered_until_created_again() {
        let (_dir, store) = fresh_store().await;
        assert!(store.image_insert_discovered(&image("a")).await.expect("discover"), "unknown: added");
        let twice = store.image_insert_discovered(&image("a")).await;
        assert!(matches!(twice, Err(StoreError::AlreadyExists { .. })), "{twice:?}");
        assert!(!store.image_delete("missing", 2).await.expect("delete"), "nothing to delete");
        assert!(!store.image_deleted("missing").await.expect("mark"), "and no mark left");

        assert!(store.image_delete("a", 2).await.expect("delete"));
        assert!(store.image_deleted("a").await.expect("mark"));
        assert!(!store.image_insert_discovered(&image("a")).await.expect("discover"), "deleted: not added");
        assert!(store.image_get("a").await.expect("get").is_none());

        store.image_insert(&image("a")).await.expect("created again");
        assert!(!store.image_deleted("a").await.expect("mark"), "CreateImage clears the mark");
        assert_eq!(store.image_get("a").await.expect("get"), Some(image("a")));
        let again = store.image_insert(&image("a")).await;
        assert!(matches!(again, Err(StoreError::AlreadyExists { .. })), "{again:?}");
    }
}
