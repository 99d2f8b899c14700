//! Leases: which replica drives a rolling update (`task/<execution id>`) or runs the capacity
//! reconciler (`reconciler`) now, so that several replicas on one database share the work and
//! never do the same work at once.
//!
//! Every statement reads the time from the database itself (`now()` on PostgreSQL, `'now'` on
//! SQLite), never from the caller: the replicas' clocks may disagree, the database has one. A
//! lease is taken by one compare-and-swap statement when it is absent, expired, or already the
//! taker's; only its owner renews or releases it. The holder cannot read the database's clock
//! either, so it counts its lease as valid for a safe part of the time to live from the moment
//! it *sent* the statement that took or renewed it (the database can only have set a later
//! expiry): see `rollscale-engine`'s `leases`.

use crate::{Backend, Store, StoreError};
use rollscale_core::domain::Millis;
use rollscale_core::ids::ExecutionId;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::time::Duration;

/// A lease as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    /// The replica id of the holder.
    pub owner: String,
    /// In the database's clock, milliseconds since the epoch.
    pub expires_at: Millis,
    /// How many times it was taken or renewed.
    pub generation: i64,
}

/// The name of the lease of a rolling-update task's driver.
pub fn task_lease_name(id: &ExecutionId) -> String {
    format!("task/{id}")
}

/// The name of the reconciler's lease (one for all groups).
pub const RECONCILER_LEASE: &str = "reconciler";

/// The database's time, in milliseconds since the epoch, as an SQL expression. On PostgreSQL
/// `now()` is the start of the statement's transaction (here: of the statement): a statement
/// that waited for a row lock compares with the time it was sent, which only makes a lease
/// look younger, never older.
fn now_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "CAST(FLOOR(EXTRACT(EPOCH FROM now()) * 1000) AS BIGINT)",
        // 'now' is the same for the whole statement.
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    }
}

fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

fn lease_from_row(row: &AnyRow) -> Result<Lease, StoreError> {
    Ok(Lease {
        name: row.try_get(0)?,
        owner: row.try_get(1)?,
        expires_at: row.try_get(2)?,
        generation: row.try_get(3)?,
    })
}

impl Store {
    /// Takes the lease `name` for `owner` for `ttl` from now (the database's now): `true`
    /// when `owner` holds it now, because it was absent, expired or `owner`'s already. One
    /// statement: of concurrent takers, one wins.
    pub async fn lease_take(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = now_sql(self.backend);
        let taken = sqlx::query(&format!(
            "INSERT INTO leases (name, owner, expires_at, generation) VALUES ($1, $2, {now} + $3, 1) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, \
             generation = leases.generation + 1 \
             WHERE leases.owner = excluded.owner OR leases.expires_at < {now}"
        ))
        .bind(name)
        .bind(owner)
        .bind(ttl_millis(ttl))
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Extends `owner`'s lease `name` to `ttl` from now: `false` (nothing written) when
    /// `owner` no longer holds it. A lease that expired but was not taken by another is still
    /// its owner's (nobody else can have acted under it).
    pub async fn lease_renew(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = now_sql(self.backend);
        let renewed = sqlx::query(&format!(
            "UPDATE leases SET expires_at = {now} + $3, generation = generation + 1 WHERE name = $1 AND owner = $2"
        ))
        .bind(name)
        .bind(owner)
        .bind(ttl_millis(ttl))
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Gives `owner`'s lease `name` up (its work is done): `false` when `owner` did not hold it.
    pub async fn lease_release(&self, name: &str, owner: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// Gives `owner`'s lease `name` back before its work is done (its replica is stopping and
    /// has stopped working under it): the row stays, expired as of now and owned by nobody
    /// (an empty owner), so that any replica may take it at once and can tell it from a lease
    /// nobody has taken yet (see [`Store::tasks_unleased`]), and a renewal `owner` still had
    /// in flight finds it lost. `false` when `owner` did not hold it.
    pub async fn lease_hand_back(&self, name: &str, owner: &str) -> Result<bool, StoreError> {
        let now = now_sql(self.backend);
        let handed = sqlx::query(&format!(
            "UPDATE leases SET owner = '', expires_at = {now} - 1, generation = generation + 1 \
             WHERE name = $1 AND owner = $2 AND owner <> ''"
        ))
        .bind(name)
        .bind(owner)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(handed.rows_affected() == 1)
    }

    pub async fn lease_get(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let row = sqlx::query("SELECT name, owner, expires_at, generation FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(lease_from_row).transpose()
    }

    /// Every lease, by name.
    pub async fn lease_list(&self) -> Result<Vec<Lease>, StoreError> {
        let rows = sqlx::query("SELECT name, owner, expires_at, generation FROM leases ORDER BY name")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(lease_from_row).collect()
    }

    /// The database's clock, in milliseconds since the epoch.
    pub async fn database_now(&self) -> Result<Millis, StoreError> {
        let row = sqlx::query(&format!("SELECT {}", now_sql(self.backend))).fetch_one(&mut *self.conn().await?).await?;
        Ok(row.try_get(0)?)
    }

    /// The unfinished rolling-update tasks whose driver's lease is absent or expired, oldest
    /// first: what a replica looks for to take over.
    pub async fn task_ids_unleased(&self) -> Result<Vec<ExecutionId>, StoreError> {
        Ok(self.tasks_unleased().await?.into_iter().map(|task| task.id).collect())
    }

    /// [`Store::task_ids_unleased`], each saying whether its lease is there, expired or handed
    /// back ([`Store::lease_hand_back`]): a replica held it, and nobody is about to take it as
    /// its creator (who takes the lease of a new task, which has none, a moment after
    /// committing it).
    pub async fn tasks_unleased(&self) -> Result<Vec<Unleased>, StoreError> {
        let now = now_sql(self.backend);
        let rows = sqlx::query(&format!(
            "SELECT e.id, CAST(CASE WHEN l.name IS NULL THEN 0 ELSE 1 END AS BIGINT) \
             FROM executions e LEFT JOIN leases l ON l.name = 'task/' || e.id \
             WHERE e.parent_id = '' AND e.status IN {} AND (l.name IS NULL OR l.expires_at < {now}) \
             AND e.template_name <> $1 ORDER BY e.created_at, e.id",
            crate::executions::TASK_STATUSES_ACTIVE
        ))
        // Image update tasks share the table; their scheduler is the reconciler's leader's.
        .bind(rollscale_core::image_task::TEMPLATE_NAME)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut tasks = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get(0)?;
            let was_leased: i64 = row.try_get(1)?;
            tasks.push(Unleased {
                id: ExecutionId::parse(&id).ok_or_else(|| StoreError::Corrupt {
                    what: "execution id",
                    source: serde::de::Error::custom(id),
                })?,
                was_leased: was_leased != 0,
            });
        }
        Ok(tasks)
    }
}

/// An unfinished rolling-update task without a live lease ([`Store::tasks_unleased`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unleased {
    pub id: ExecutionId,
    /// Its lease row is there, expired or handed back: a replica held it. `false`: it never
    /// had one (or it was released as finished).
    pub was_leased: bool,
}

#[cfg(test)]
mod tests {
    use crate::testing::fresh_store;
    use std::time::Duration;

    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_lease_is_taken_renewed_and_released_by_its_owner_only() {
        let (_dir, store) = fresh_store().await;
        assert!(store.lease_take("task/x", "a", LONG).await.unwrap());
        let taken = store.lease_get("task/x").await.unwrap().expect("stored");
        assert_eq!((taken.owner.as_str(), taken.generation), ("a", 1));
        let now = store.database_now().await.unwrap();
        assert!(taken.expires_at > now + 50_000 && taken.expires_at <= now + 60_000, "{taken:?} at {now}");
        // Held: another cannot take, renew or release it; the owner takes it again (a renewal).
        assert!(!store.lease_take("task/x", "b", LONG).await.unwrap());
        assert!(!store.lease_renew("task/x", "b", LONG).await.unwrap());
        assert!(!store.lease_release("task/x", "b").await.unwrap());
        assert!(store.lease_take("task/x", "a", LONG).await.unwrap());
        assert!(store.lease_renew("task/x", "a", LONG).await.unwrap());
        let renewed = store.lease_get("task/x").await.unwrap().unwrap();
        assert_eq!((renewed.owner.as_str(), renewed.generation), ("a", 3));
        assert!(renewed.expires_at >= taken.expires_at);
        // Released: anyone may take it; the old owner can no longer renew it.
        assert!(store.lease_release("task/x", "a").await.unwrap());
        assert_eq!(store.lease_get("task/x").await.unwrap(), None);
        assert!(!store.lease_renew("task/x", "a", LONG).await.unwrap());
        assert!(store.lease_take("task/x", "b", LONG).await.unwrap());
        // Leases of other names are apart.
        assert!(store.lease_take("reconciler", "a", LONG).await.unwrap());
        let names: Vec<String> = store.lease_list().await.unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(names, vec!["reconciler".to_string(), "task/x".to_string()]);
    }

    #[tokio::test]
    async fn an_expired_lease_is_stolen_and_its_old_owner_cannot_renew_it() {
        let (_dir, store) = fresh_store().await;
        assert!(store.lease_take("task/y", "a", Duration::from_millis(200)).await.unwrap());
        assert!(!store.lease_take("task/y", "b", LONG).await.unwrap(), "not expired yet");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(store.lease_get("task/y").await.unwrap().unwrap().expires_at < store.database_now().await.unwrap());
        // Expired but not taken: still the owner's to renew.
        assert!(store.lease_renew("task/y", "a", Duration::from_millis(200)).await.unwrap());
        assert!(!store.lease_take("task/y", "b", LONG).await.unwrap(), "renewed");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(store.lease_take("task/y", "b", LONG).await.unwrap(), "stolen after expiry");
        let stolen = store.lease_get("task/y").await.unwrap().unwrap();
        assert_eq!(stolen.owner, "b");
        assert!(!store.lease_renew("task/y", "a", LONG).await.unwrap(), "the old owner lost it");
        assert!(!store.lease_release("task/y", "a").await.unwrap());
        assert!(!store.lease_take("task/y", "a", LONG).await.unwrap());
        assert_eq!(store.lease_get("task/y").await.unwrap().unwrap().owner, "b");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_concurrent_takers_exactly_one_owns_a_lease() {
        let (_dir, store) = fresh_store().await;
        for (round, ttl) in [(0, Duration::from_millis(300)), (1, LONG)] {
            // Round 0 races for an absent lease; round 1 for the expired one round 0 left.
            if round == 1 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let mut takers = Vec::new();
            for i in 0..16 {
                let store = store.clone();
                takers.push(tokio::spawn(async move {
                    let owner = format!("r{round}-{i}");
                    (owner.clone(), store.lease_take("task/z", &owner, ttl).await.expect("take"))
                }));
            }
            let mut winners = Vec::new();
            for taker in takers {
                let (owner, won) = taker.await.expect("taker");
                if won {
                    winners.push(owner);
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
            assert_eq!(store.lease_get("task/z").await.unwrap().unwrap().owner, winners[0]);
        }
    }

    #[tokio::test]
    async fn unfinished_tasks_without_a_live_lease_are_listed() {
        use rollscale_core::ids::ExecutionId;
        let (_dir, store) = fresh_store().await;
        let ids: Vec<ExecutionId> = (1..=4).map(ExecutionId::from_random).collect();
        // The fourth, Waiting, is an image update task: the reconciler's leader schedules
        // those, no replica takes them over as rolling updates.
        let rows = ["Running", "Waiting", "Success", "Waiting"];
        for (n, (id, status)) in ids.iter().zip(rows).enumerate() {
            let template = if n == 3 { rollscale_core::image_task::TEMPLATE_NAME } else { "t" };
            sqlx::query(
                "INSERT INTO executions (id, parent_id, template_name, status, detail_status, group_id, instance_id, \
                 position, body, created_at, updated_at, generation) \
                 VALUES ($1, '', $4, $2, '', 'g', '', 0, '{}', $3, 0, 1)",
            )
            .bind(id.as_str())
            .bind(status)
            .bind(n as i64)
            .bind(template)
            .execute(&mut *store.conn().await.unwrap())
            .await
            .expect("insert");
        }
        // The finished one is never listed.
        assert_eq!(store.task_ids_unleased().await.unwrap(), ids[..2].to_vec());
        assert!(store.lease_take(&super::task_lease_name(&ids[0]), "a", LONG).await.unwrap());
        assert_eq!(store.task_ids_unleased().await.unwrap(), vec![ids[1].clone()]);
        assert!(store.lease_take(&super::task_lease_name(&ids[1]), "a", Duration::from_millis(1)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.task_ids_unleased().await.unwrap(), vec![ids[1].clone()], "expired");
        // Handed back by its owner only, at once; listed as having been leased, unlike a task
        // that never had a lease.
        let first = super::task_lease_name(&ids[0]);
        assert!(!store.lease_hand_back(&first, "b").await.unwrap());
        assert!(store.lease_hand_back(&first, "a").await.unwrap());
        assert!(!store.lease_renew(&first, "a", LONG).await.unwrap(), "no longer its old owner's");
        assert_eq!(store.lease_get(&first).await.unwrap().unwrap().owner, "");
        let unleased = store.tasks_unleased().await.unwrap();
        let listed: Vec<(ExecutionId, bool)> = unleased.into_iter().map(|t| (t.id, t.was_leased)).collect();
        assert_eq!(listed, vec![(ids[0].clone(), true), (ids[1].clone(), true)]);
        assert!(store.lease_take(&first, "b", LONG).await.unwrap(), "anyone takes a handed-back lease");
        assert!(store.lease_release(&super::task_lease_name(&ids[1]), "a").await.unwrap());
        let unleased = store.tasks_unleased().await.unwrap();
        assert_eq!(unleased, vec![super::Unleased { id: ids[1].clone(), was_leased: false }]);
    }
}
