//! The image and package catalogs.

use crate::{from_json, is_unique_violation, to_json, Store, StoreError};
use rollscale_core::domain::{Image, PackageVersion};
use sqlx::Row;

impl Store {
    pub async fn image_insert(&self, image: &Image) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO images (id, body, created_at) VALUES ($1, $2, $3)")
            .bind(image.id.as_str())
            .bind(to_json(image))
            .bind(image.created_at)
            .execute(&mut *self.conn().await?)
            .await
            .map_err(|error| {
                if is_unique_violation(&error) {
                    StoreError::AlreadyExists { what: "image", id: image.id.clone() }
                } else {
                    error.into()
                }
            })?;
        Ok(())
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

    /// Deletes the image; returns whether it existed.
    pub async fn image_delete(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM images WHERE id = $1").bind(id).execute(&mut *self.conn().await?).await?;
        Ok(result.rows_affected() == 1)
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
