//! AccessKeys (their secrets sealed with the server key, see `seal.rs`) and the request
//! nonces seen recently (replay protection).

use crate::{is_unique_violation, ServerKey, Store, StoreError};
use rollscale_core::domain::{AccessKey, AccessKeyStatus, Millis};
use rollscale_core::policy::ADMINISTRATOR_ACCESS;
use sqlx::any::AnyRow;
use sqlx::{Connection, Row};

const KEY_COLUMNS: &str = "id, secret_sealed, user_name, status, created_at, tokens_not_before";

impl Store {
    /// Inserts an AccessKey for an existing user, its secret sealed, unless the user already
    /// has `max_per_user` keys. Both conditions are checked inside the transaction that
    /// inserts: the user's row is written first (its generation bumped), which locks it on
    /// PostgreSQL and takes the write lock on SQLite, so a concurrent `user_delete` or a second
    /// insert for the same user waits until this one is done. A missing user is
    /// [`StoreError::Missing`] (and no user is created), a full one
    /// [`StoreError::LimitExceeded`]; either way nothing is written.
    pub async fn access_key_insert(&self, key: &AccessKey, max_per_user: i64) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let locked = sqlx::query("UPDATE users SET generation = generation + 1 WHERE name = $1")
            .bind(key.user_name.as_str())
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() != 1 {
            return Err(StoreError::Missing { what: "user", id: key.user_name.clone() });
        }
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM access_keys WHERE user_name = $1")
            .bind(key.user_name.as_str())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if count >= max_per_user {
            return Err(StoreError::LimitExceeded {
                what: "AccessKeys",
                id: key.user_name.clone(),
                limit: max_per_user,
            });
        }
        self.insert_key_row(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Bootstrap only (the admin key of `rollscale up`, test fixtures): inserts an AccessKey,
    /// creating its user with the system policy AdministratorAccess when the user does not
    /// exist, and attaching AdministratorAccess when it does. No limit on the user's keys.
    /// (Keys made before users existed got the same from migration 0004.) Never reachable from
    /// an API: the service's `create_access_key` uses [`Store::access_key_insert`].
    pub async fn access_key_insert_bootstrap(&self, key: &AccessKey) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let user = sqlx::query("SELECT name FROM users WHERE name = $1")
            .bind(key.user_name.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if user.is_none() {
            sqlx::query(
                "INSERT INTO users (name, id, display_name, comments, created_at, updated_at, generation) \
                 VALUES ($1, $2, $1, '', $3, $3, 0)",
            )
            .bind(key.user_name.as_str())
            .bind(crate::access::user_id_from(key.created_at, &key.id))
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO user_policies (user_name, policy_type, policy_name, attached_at) VALUES ($1, 'System', $2, $3) \
             ON CONFLICT (user_name, policy_type, policy_name) DO NOTHING",
        )
        .bind(key.user_name.as_str())
        .bind(ADMINISTRATOR_ACCESS)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
        self.insert_key_row(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_key_row(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        key: &AccessKey,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO access_keys (id, secret_sealed, user_name, status, created_at, generation) \
             VALUES ($1, $2, $3, $4, $5, 0)",
        )
        .bind(key.id.as_str())
        .bind(self.server_key.seal(&key.id, &key.secret))
        .bind(key.user_name.as_str())
        .bind(key.status.as_str())
        .bind(key.created_at)
        .execute(&mut **tx)
        .await
        .map_err(|error| match is_unique_violation(&error) {
            true => StoreError::AlreadyExists { what: "AccessKey", id: key.id.clone() },
            false => error.into(),
        })?;
        Ok(())
    }

    fn access_key_from_row(&self, row: &AnyRow) -> Result<AccessKey, StoreError> {
        let id: String = row.try_get(0)?;
        let sealed: String = row.try_get(1)?;
        let secret = self.server_key.open(&id, &sealed).ok_or_else(|| StoreError::Unsealable { id: id.clone() })?;
        let status: String = row.try_get(3)?;
        Ok(AccessKey {
            id,
            secret,
            user_name: row.try_get(2)?,
            status: status.parse().unwrap_or(AccessKeyStatus::Inactive),
            created_at: row.try_get(4)?,
            tokens_not_before: row.try_get(5)?,
        })
    }

    /// The AccessKey `id`, its secret opened.
    pub async fn access_key_get(&self, id: &str) -> Result<Option<AccessKey>, StoreError> {
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM access_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| self.access_key_from_row(&row)).transpose()
    }

    /// The AccessKeys of a user, oldest first, secrets opened.
    pub async fn access_key_list(&self, user_name: &str) -> Result<Vec<AccessKey>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM access_keys WHERE user_name = $1 ORDER BY created_at, id"))
                .bind(user_name)
                .fetch_all(&mut *self.conn().await?)
                .await?;
        rows.iter().map(|row| self.access_key_from_row(row)).collect()
    }

    /// Sets a key's status; `false` when the user has no such key. A disable (`Inactive`) at
    /// `now` also revokes for good the bearer tokens made until then: the key's
    /// `tokens_not_before` becomes `now` (never earlier than it was), and an enable leaves it.
    pub async fn access_key_set_status(
        &self,
        user_name: &str,
        id: &str,
        status: AccessKeyStatus,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE access_keys SET status = $3, generation = generation + 1, tokens_not_before = \
             CASE WHEN $3 = 'Inactive' AND $4 > tokens_not_before THEN $4 ELSE tokens_not_before END \
             WHERE id = $1 AND user_name = $2",
        )
        .bind(id)
        .bind(user_name)
        .bind(status.as_str())
        .bind(now)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes a key; `false` when the user has no such key.
    pub async fn access_key_delete(&self, user_name: &str, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM access_keys WHERE id = $1 AND user_name = $2")
            .bind(id)
            .bind(user_name)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn access_key_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM access_keys").fetch_one(&mut *self.conn().await?).await?.try_get(0)?)
    }

    /// Uses `key` to seal and open AccessKey secrets from now on (a store opened without one
    /// uses a random key that lives as long as the process: fine for tests, not for a
    /// service). Secrets stored in plain text before sealing existed are sealed now.
    pub async fn with_server_key(mut self, key: ServerKey) -> Result<Store, StoreError> {
        self.server_key = std::sync::Arc::new(key);
        let rows = sqlx::query("SELECT id, secret_sealed FROM access_keys").fetch_all(&mut *self.conn().await?).await?;
        for row in rows {
            let (id, value): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            if !ServerKey::is_sealed(&value) {
                sqlx::query("UPDATE access_keys SET secret_sealed = $2 WHERE id = $1 AND secret_sealed = $3")
                    .bind(&id)
                    .bind(self.server_key.seal(&id, &value))
                    .bind(&value)
                    .execute(&mut *self.conn().await?)
                    .await?;
            }
        }
        Ok(self)
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
