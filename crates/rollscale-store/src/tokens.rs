//! ClientToken records: the first request with a token claims it, and records what it created;
//! a request with the same token then finds that record instead of creating again. The claim is
//! one `INSERT … ON CONFLICT DO NOTHING`, so two concurrent requests cannot both win, on any
//! number of replicas.
//!
//! A claim names its holder (`claim`, an id the holding request chose): only the holder
//! refreshes it ([`Store::client_token_heartbeat`]), records its answer or gives it back, so a
//! request whose claim was taken over cannot touch its successor's. A claim is taken over only
//! as it was seen (holder and last heartbeat both unchanged), so a heartbeat in between wins.

use crate::{Store, StoreError};
use rollscale_core::domain::Millis;
use sqlx::any::AnyRow;
use sqlx::Row;

/// What a token names: the first request's parameter digest and, once it finished, its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTokenRecord {
    pub fingerprint: String,
    /// Empty while the first request runs.
    pub result: String,
    pub created_at: Millis,
    /// The id of the request that holds the claim (the one that ran it, once finished).
    pub claim: String,
    /// When the holder last said it is still running (its claim or last heartbeat).
    pub alive_at: Millis,
}

const COLUMNS: &str = "fingerprint, result, created_at, claim, alive_at";

fn record_from_row(row: &AnyRow, first: usize) -> Result<ClientTokenRecord, StoreError> {
    Ok(ClientTokenRecord {
        fingerprint: row.try_get(first)?,
        result: row.try_get(first + 1)?,
        created_at: row.try_get(first + 2)?,
        claim: row.try_get(first + 3)?,
        alive_at: row.try_get(first + 4)?,
    })
}

impl Store {
    /// Claims `scope` for a request with `fingerprint`, held as `claim`: `None` when this
    /// request now holds it, or the record that was there.
    pub async fn client_token_claim(
        &self,
        scope: &str,
        fingerprint: &str,
        claim: &str,
        now: Millis,
    ) -> Result<Option<ClientTokenRecord>, StoreError> {
        let mut conn = self.conn().await?;
        let inserted = sqlx::query(
            "INSERT INTO client_tokens (scope, fingerprint, result, created_at, claim, alive_at) \
             VALUES ($1, $2, '', $3, $4, $3) ON CONFLICT (scope) DO NOTHING",
        )
        .bind(scope)
        .bind(fingerprint)
        .bind(now)
        .bind(claim)
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM client_tokens WHERE scope = $1"))
            .bind(scope)
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(row) => Ok(Some(record_from_row(&row, 0)?)),
            // Released between the two statements: claim again.
            None => {
                drop(conn);
                Box::pin(self.client_token_claim(scope, fingerprint, claim, now)).await
            }
        }
    }

    /// Takes over an unfinished claim, as `claim`, if it is still as `seen` (the same holder,
    /// not refreshed since): `true` when this request now holds it.
    pub async fn client_token_take_over(
        &self,
        scope: &str,
        seen: &ClientTokenRecord,
        claim: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE client_tokens SET claim = $4, alive_at = $5 \
             WHERE scope = $1 AND result = '' AND claim = $2 AND alive_at = $3",
        )
        .bind(scope)
        .bind(seen.claim.as_str())
        .bind(seen.alive_at)
        .bind(claim)
        .bind(now)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Says that the request holding `scope` as `claim` still runs: `false` when it no longer
    /// holds it (it was taken over, or finished).
    pub async fn client_token_heartbeat(&self, scope: &str, claim: &str, now: Millis) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE client_tokens SET alive_at = $3 WHERE scope = $1 AND claim = $2 AND result = ''")
                .bind(scope)
                .bind(claim)
                .bind(now)
                .execute(&mut *self.conn().await?)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records what the request holding `scope` as `claim` created: `false` (and nothing
    /// written) when it no longer holds it.
    pub async fn client_token_complete(&self, scope: &str, claim: &str, result: &str) -> Result<bool, StoreError> {
        let updated =
            sqlx::query("UPDATE client_tokens SET result = $3 WHERE scope = $1 AND claim = $2 AND result = ''")
                .bind(scope)
                .bind(claim)
                .bind(result)
                .execute(&mut *self.conn().await?)
                .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Every token record (scope, fingerprint, result), by scope: what an operator (or a test
    /// that checks a refused request left them alone) sees.
    pub async fn client_token_list(&self) -> Result<Vec<(String, ClientTokenRecord)>, StoreError> {
        let rows = sqlx::query(&format!("SELECT scope, {COLUMNS} FROM client_tokens ORDER BY scope"))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|row| Ok((row.try_get(0)?, record_from_row(row, 1)?))).collect()
    }

    /// Gives up the unfinished claim `claim` (its request was refused), so the token can be
    /// used again: `false` (and nothing deleted) when that request no longer holds it.
    pub async fn client_token_release(&self, scope: &str, claim: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM client_tokens WHERE scope = $1 AND claim = $2 AND result = ''")
            .bind(scope)
            .bind(claim)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::fresh_store;

    #[tokio::test]
    async fn a_token_is_claimed_once_completed_and_found_again() {
        let (_dir, store) = fresh_store().await;
        assert_eq!(store.client_token_claim("k/a/t", "f1", "c1", 10).await.unwrap(), None);
        let pending = store.client_token_claim("k/a/t", "f1", "c2", 11).await.unwrap().expect("held");
        assert_eq!((pending.result.as_str(), pending.created_at), ("", 10));
        assert_eq!((pending.claim.as_str(), pending.alive_at), ("c1", 10));
        assert!(store.client_token_complete("k/a/t", "c1", "exec-1").await.unwrap());
        let done = store.client_token_claim("k/a/t", "f2", "c3", 12).await.unwrap().expect("done");
        assert_eq!((done.fingerprint.as_str(), done.result.as_str()), ("f1", "exec-1"));
        // A finished record is neither completed again, refreshed, released nor taken over.
        assert!(!store.client_token_complete("k/a/t", "c1", "exec-2").await.unwrap());
        assert!(!store.client_token_heartbeat("k/a/t", "c1", 13).await.unwrap());
        assert!(!store.client_token_release("k/a/t", "c1").await.unwrap());
        assert!(!store.client_token_take_over("k/a/t", &done, "c4", 13).await.unwrap());
        assert_eq!(store.client_token_claim("k/a/t", "f1", "c5", 14).await.unwrap().unwrap().result, "exec-1");
        let listed = store.client_token_list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].0.as_str(), listed[0].1.result.as_str()), ("k/a/t", "exec-1"));
    }

    #[tokio::test]
    async fn a_released_or_stale_claim_can_be_claimed_again() {
        let (_dir, store) = fresh_store().await;
        assert_eq!(store.client_token_claim("s", "f", "c1", 1).await.unwrap(), None);
        assert!(store.client_token_release("s", "c1").await.unwrap());
        assert_eq!(store.client_token_claim("s", "f", "c2", 2).await.unwrap(), None);
        // Only one of two takers-over of the same stale claim wins.
        let seen = store.client_token_claim("s", "f", "c3", 3).await.unwrap().expect("held");
        assert!(store.client_token_take_over("s", &seen, "c3", 3).await.unwrap());
        assert!(!store.client_token_take_over("s", &seen, "c4", 4).await.unwrap());
        let now_held = store.client_token_claim("s", "f", "c5", 5).await.unwrap().expect("held");
        assert_eq!((now_held.claim.as_str(), now_held.alive_at), ("c3", 3));
    }

    #[tokio::test]
    async fn only_the_holder_of_a_claim_refreshes_completes_or_releases_it() {
        let (_dir, store) = fresh_store().await;
        assert_eq!(store.client_token_claim("s", "f", "old", 1).await.unwrap(), None);
        let seen = store.client_token_claim("s", "f", "new", 2).await.unwrap().expect("held");
        // The holder's heartbeat after the claim was seen: the claim is no longer as seen,
        // so it is not taken over.
        assert!(store.client_token_heartbeat("s", "old", 50).await.unwrap());
        assert!(!store.client_token_take_over("s", &seen, "new", 60).await.unwrap());
        let refreshed = store.client_token_claim("s", "f", "new", 61).await.unwrap().expect("held");
        assert_eq!((refreshed.claim.as_str(), refreshed.alive_at), ("old", 50));
        // Taken over once it really went quiet: the old holder can no longer refresh, give
        // back or complete it.
        assert!(store.client_token_take_over("s", &refreshed, "new", 200).await.unwrap());
        assert!(!store.client_token_heartbeat("s", "old", 201).await.unwrap());
        assert!(!store.client_token_release("s", "old").await.unwrap());
        assert!(!store.client_token_complete("s", "old", "exec-old").await.unwrap());
        let held = store.client_token_claim("s", "f", "x", 202).await.unwrap().expect("still held");
        assert_eq!((held.claim.as_str(), held.result.as_str(), held.alive_at), ("new", "", 200));
        // The new holder's own answer is the one kept.
        assert!(store.client_token_heartbeat("s", "new", 203).await.unwrap());
        assert!(store.client_token_complete("s", "new", "exec-new").await.unwrap());
        assert_eq!(store.client_token_claim("s", "f", "y", 204).await.unwrap().unwrap().result, "exec-new");
    }
}
