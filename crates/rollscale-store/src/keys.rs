//! AccessKeys and the request nonces seen recently (replay protection).

use crate::{Store, StoreError};
use rollscale_core::domain::{AccessKey, AccessKeyStatus, Millis};
use sqlx::Row;

impl Store {
    pub async fn access_key_insert(&self, key: &AccessKey) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO access_keys (id, secret, user_name, status, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(key.id.as_str())
            .bind(key.secret.as_str())
            .bind(key.user_name.as_str())
            .bind(key.status.as_str())
            .bind(key.created_at)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    pub async fn access_key_get(&self, id: &str) -> Result<Option<AccessKey>, StoreError> {
        let row = sqlx::query("SELECT id, secret, user_name, status, created_at FROM access_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get(3)?;
        Ok(Some(AccessKey {
            id: row.try_get(0)?,
            secret: row.try_get(1)?,
            user_name: row.try_get(2)?,
            status: status.parse().unwrap_or(AccessKeyStatus::Inactive),
            created_at: row.try_get(4)?,
        }))
    }

    pub async fn access_key_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM access_keys").fetch_one(&mut *self.conn().await?).await?.try_get(0)?)
    }

    /// Records a request nonce until `expires_at`. Returns `false` when it was already used.
    /// Expired nonces are swept on the way.
    pub async fn nonce_use(&self, nonce: &str, now: Millis, expires_at: Millis) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM request_nonces WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *self.conn().await?)
            .await?;
        let result = sqlx::query(
            "INSERT INTO request_nonces (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(expires_at)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
