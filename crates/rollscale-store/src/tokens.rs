//! ClientToken records: the first request with a token claims it, and records what it created;
//! a request with the same token then finds that record instead of creating again. The claim is
//! one `INSERT … ON CONFLICT DO NOTHING`, so two concurrent requests cannot both win, on any
//! number of replicas.

use crate::{Store, StoreError};
use rollscale_core::domain::Millis;
use sqlx::Row;

/// What a token names: the first request's parameter digest and, once it finished, its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTokenRecord {
    pub fingerprint: String,
    /// Empty while the first request runs.
    pub result: String,
    pub created_at: Millis,
}

impl Store {
    /// Claims `scope` for a request with `fingerprint`: `None` when this caller now holds it,
    /// or the record that was there.
    pub async fn client_token_claim(
        &self,
        scope: &str,
        fingerprint: &str,
        now: Millis,
    ) -> Result<Option<ClientTokenRecord>, StoreError> {
        let mut conn = self.conn().await?;
        let inserted = sqlx::query(
            "INSERT INTO client_tokens (scope, fingerprint, result, created_at) VALUES ($1, $2, '', $3) \
             ON CONFLICT (scope) DO NOTHING",
        )
        .bind(scope)
        .bind(fingerprint)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT fingerprint, result, created_at FROM client_tokens WHERE scope = $1")
            .bind(scope)
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(row) => Ok(Some(ClientTokenRecord {
                fingerprint: row.try_get(0)?,
                result: row.try_get(1)?,
                created_at: row.try_get(2)?,
            })),
            // Released between the two statements: claim again.
            None => {
                drop(conn);
                Box::pin(self.client_token_claim(scope, fingerprint, now)).await
            }
        }
    }

    /// Takes over an unfinished claim that was made at `claimed_at` (its request died): `true`
    /// when this caller now holds it.
    pub async fn client_token_take_over(
        &self,
        scope: &str,
        claimed_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE client_tokens SET created_at = $3 WHERE scope = $1 AND result = '' AND created_at = $2",
        )
        .bind(scope)
        .bind(claimed_at)
        .bind(now)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records what the request holding `scope` created.
    pub async fn client_token_complete(&self, scope: &str, result: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE client_tokens SET result = $2 WHERE scope = $1")
            .bind(scope)
            .bind(result)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// Every token record (scope, fingerprint, result), by scope: what an operator (or a test
    /// that checks a refused request left them alone) sees.
    pub async fn client_token_list(&self) -> Result<Vec<(String, ClientTokenRecord)>, StoreError> {
        let rows = sqlx::query("SELECT scope, fingerprint, result, created_at FROM client_tokens ORDER BY scope")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0)?,
                    ClientTokenRecord {
                        fingerprint: row.try_get(1)?,
                        result: row.try_get(2)?,
                        created_at: row.try_get(3)?,
                    },
                ))
            })
            .collect()
    }

    /// Gives up an unfinished claim (its request was refused), so the token can be used again.
    pub async fn client_token_release(&self, scope: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM client_tokens WHERE scope = $1 AND result = ''")
            .bind(scope)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("open");
        (store, dir)
    }

    #[tokio::test]
    async fn a_token_is_claimed_once_completed_and_found_again() {
        let (store, _dir) = store().await;
        assert_eq!(store.client_token_claim("k/a/t", "f1", 10).await.unwrap(), None);
        let pending = store.client_token_claim("k/a/t", "f1", 11).await.unwrap().expect("held");
        assert_eq!((pending.result.as_str(), pending.created_at), ("", 10));
        store.client_token_complete("k/a/t", "exec-1").await.unwrap();
        let done = store.client_token_claim("k/a/t", "f2", 12).await.unwrap().expect("done");
        assert_eq!((done.fingerprint.as_str(), done.result.as_str()), ("f1", "exec-1"));
        // A finished record is neither released nor taken over.
        store.client_token_release("k/a/t").await.unwrap();
        assert!(!store.client_token_take_over("k/a/t", 10, 13).await.unwrap());
        assert_eq!(store.client_token_claim("k/a/t", "f1", 14).await.unwrap().unwrap().result, "exec-1");
        let listed = store.client_token_list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].0.as_str(), listed[0].1.result.as_str()), ("k/a/t", "exec-1"));
    }

    #[tokio::test]
    async fn a_released_or_stale_claim_can_be_claimed_again() {
        let (store, _dir) = store().await;
        assert_eq!(store.client_token_claim("s", "f", 1).await.unwrap(), None);
        store.client_token_release("s").await.unwrap();
        assert_eq!(store.client_token_claim("s", "f", 2).await.unwrap(), None);
        // Only one of two takers-over of the same stale claim wins.
        assert!(store.client_token_take_over("s", 2, 3).await.unwrap());
        assert!(!store.client_token_take_over("s", 2, 4).await.unwrap());
    }
}
