//! Users, custom policies, which policies are attached to whom, and the audit log.
//! System policies are built in (`rollscale_core::policy::SYSTEM_POLICIES`), never stored.

use crate::{from_json, is_unique_violation, to_json, Store, StoreError};
use rollscale_core::access::{AuditEvent, AuditFilter, Policy, User};
use rollscale_core::domain::Millis;
use rollscale_core::policy::PolicyType;
use sqlx::any::AnyRow;
use sqlx::{Connection, Row};

/// A numeric `UserId` (RAM's are 16 digits) derived from what makes a user unique.
pub(crate) fn user_id_from(created_at: Millis, salt: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in salt.bytes().chain(created_at.to_le_bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:016}", hash % 10_000_000_000_000_000)
}

const USER_COLUMNS: &str = "name, id, display_name, comments, created_at, updated_at";
const POLICY_COLUMNS: &str = "name, description, document, created_at, updated_at";

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        name: row.try_get(0)?,
        id: row.try_get(1)?,
        display_name: row.try_get(2)?,
        comments: row.try_get(3)?,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
    })
}

fn policy_from_row(row: &AnyRow) -> Result<Policy, StoreError> {
    Ok(Policy {
        name: row.try_get(0)?,
        policy_type: PolicyType::Custom,
        description: row.try_get(1)?,
        document: row.try_get(2)?,
        created_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
    })
}

impl Store {
    // ------------------------------------------------------------------ users

    pub async fn user_insert(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(&format!("INSERT INTO users ({USER_COLUMNS}, generation) VALUES ($1, $2, $3, $4, $5, $6, 0)"))
            .bind(user.name.as_str())
            .bind(user.id.as_str())
            .bind(user.display_name.as_str())
            .bind(user.comments.as_str())
            .bind(user.created_at)
            .bind(user.updated_at)
            .execute(&mut *self.conn().await?)
            .await
            .map_err(|error| match is_unique_violation(&error) {
                true => StoreError::AlreadyExists { what: "user", id: user.name.clone() },
                false => error.into(),
            })?;
        Ok(())
    }

    pub async fn user_get(&self, name: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"))
            .bind(name)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Users by name, `limit` from `offset`.
    pub async fn user_list(&self, offset: i64, limit: i64) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name LIMIT $1 OFFSET $2"))
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Deletes a user with its AccessKeys and policy attachments, in one transaction; `false`
    /// when there is no such user. The user's row is deleted first, which locks it: the same
    /// order as [`Store::access_key_insert`] and [`Store::user_policy_attach`], which write it
    /// first. So on PostgreSQL an insert that holds the row commits before this deletes the
    /// user's keys and attachments (which then include its key), and one that comes after
    /// finds no user; on SQLite the write lock serializes them.
    pub async fn user_delete(&self, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let deleted = sqlx::query("DELETE FROM users WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if deleted.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM access_keys WHERE user_name = $1").bind(name).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM user_policies WHERE user_name = $1").bind(name).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    // ------------------------------------------------------------------ custom policies

    pub async fn policy_insert(&self, policy: &Policy) -> Result<(), StoreError> {
        sqlx::query(&format!("INSERT INTO policies ({POLICY_COLUMNS}, generation) VALUES ($1, $2, $3, $4, $5, 0)"))
            .bind(policy.name.as_str())
            .bind(policy.description.as_str())
            .bind(policy.document.as_str())
            .bind(policy.created_at)
            .bind(policy.updated_at)
            .execute(&mut *self.conn().await?)
            .await
            .map_err(|error| match is_unique_violation(&error) {
                true => StoreError::AlreadyExists { what: "policy", id: policy.name.clone() },
                false => error.into(),
            })?;
        Ok(())
    }

    pub async fn policy_get(&self, name: &str) -> Result<Option<Policy>, StoreError> {
        let row = sqlx::query(&format!("SELECT {POLICY_COLUMNS} FROM policies WHERE name = $1"))
            .bind(name)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(policy_from_row).transpose()
    }

    /// Every custom policy, by name.
    pub async fn policy_list(&self) -> Result<Vec<Policy>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {POLICY_COLUMNS} FROM policies ORDER BY name"))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(policy_from_row).collect()
    }

    /// Deletes a custom policy unless it is attached to someone: `Ok(None)` when there is no
    /// such policy, `Ok(Some(n))` with the number of users it is attached to (deleted when 0).
    /// The policy's row is locked first, so an attach that holds it commits before the count.
    pub async fn policy_delete(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let locked = sqlx::query("UPDATE policies SET generation = generation + 1 WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() != 1 {
            return Ok(None);
        }
        let attached: i64 =
            sqlx::query("SELECT COUNT(*) FROM user_policies WHERE policy_type = 'Custom' AND policy_name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        if attached > 0 {
            return Ok(Some(attached));
        }
        let deleted = sqlx::query("DELETE FROM policies WHERE name = $1").bind(name).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok((deleted.rows_affected() == 1).then_some(0))
    }

    /// How many users each policy is attached to.
    pub async fn policy_attachment_counts(&self) -> Result<Vec<(PolicyType, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT policy_type, policy_name, COUNT(*) FROM user_policies GROUP BY policy_type, policy_name",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in rows {
            let policy_type: String = row.try_get(0)?;
            let Ok(policy_type) = policy_type.parse() else { continue };
            counts.push((policy_type, row.try_get(1)?, row.try_get(2)?));
        }
        Ok(counts)
    }

    // ------------------------------------------------------------------ attachments

    /// Attaches a policy to an existing user (and an existing custom policy); `false` when it
    /// already was. The user's row, and a custom policy's, are written first in the same
    /// transaction (locking them, as [`Store::access_key_insert`] does), so an attachment
    /// cannot outlive a concurrent `user_delete` or `policy_delete` and pass to a later user or
    /// policy of the same name: a missing one is [`StoreError::Missing`], nothing written.
    pub async fn user_policy_attach(
        &self,
        user_name: &str,
        policy_type: PolicyType,
        policy_name: &str,
        at: Millis,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let locked = sqlx::query("UPDATE users SET generation = generation + 1 WHERE name = $1")
            .bind(user_name)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() != 1 {
            return Err(StoreError::Missing { what: "user", id: user_name.to_string() });
        }
        // A custom policy's row too: `policy_delete` locks it before it counts attachments.
        if policy_type == PolicyType::Custom {
            let locked = sqlx::query("UPDATE policies SET generation = generation + 1 WHERE name = $1")
                .bind(policy_name)
                .execute(&mut *tx)
                .await?;
            if locked.rows_affected() != 1 {
                return Err(StoreError::Missing { what: "policy", id: policy_name.to_string() });
            }
        }
        let result = sqlx::query(
            "INSERT INTO user_policies (user_name, policy_type, policy_name, attached_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_name, policy_type, policy_name) DO NOTHING",
        )
        .bind(user_name)
        .bind(policy_type.as_str())
        .bind(policy_name)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Detaches a policy from a user; `false` when it was not attached.
    pub async fn user_policy_detach(
        &self,
        user_name: &str,
        policy_type: PolicyType,
        policy_name: &str,
    ) -> Result<bool, StoreError> {
        let result =
            sqlx::query("DELETE FROM user_policies WHERE user_name = $1 AND policy_type = $2 AND policy_name = $3")
                .bind(user_name)
                .bind(policy_type.as_str())
                .bind(policy_name)
                .execute(&mut *self.conn().await?)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The policies attached to a user (type, name, when), in the order attached.
    pub async fn user_policy_list(&self, user_name: &str) -> Result<Vec<(PolicyType, String, Millis)>, StoreError> {
        let rows = sqlx::query(
            "SELECT policy_type, policy_name, attached_at FROM user_policies WHERE user_name = $1 \
             ORDER BY attached_at, policy_type, policy_name",
        )
        .bind(user_name)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut attached = Vec::with_capacity(rows.len());
        for row in rows {
            let policy_type: String = row.try_get(0)?;
            let Ok(policy_type) = policy_type.parse() else { continue };
            attached.push((policy_type, row.try_get(1)?, row.try_get(2)?));
        }
        Ok(attached)
    }

    // ------------------------------------------------------------------ audit log

    pub async fn audit_insert(&self, event: &AuditEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_events (id, created_at, user_name, access_key_id, action, result_code, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(event.id.as_str())
        .bind(event.at)
        .bind(event.user_name.as_str())
        .bind(event.access_key_id.as_str())
        .bind(event.action.as_str())
        .bind(event.result_code.as_str())
        .bind(to_json(event))
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Audit events matching `filter`, newest first, `limit` from `offset`, and how many match.
    pub async fn audit_list(
        &self,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<AuditEvent>, i64), StoreError> {
        let mut conditions = Vec::new();
        let mut texts: Vec<&str> = Vec::new();
        let mut numbers: Vec<i64> = Vec::new();
        for (column, value) in [
            ("user_name", &filter.user_name),
            ("access_key_id", &filter.access_key_id),
            ("action", &filter.action),
            ("result_code", &filter.result_code),
        ] {
            if let Some(value) = value {
                texts.push(value);
                conditions.push(format!("{column} = ${}", texts.len()));
            }
        }
        for (op, value) in [(">=", filter.since), ("<", filter.until)] {
            if let Some(value) = value {
                numbers.push(value);
                conditions.push(format!("created_at {op} ${}", texts.len() + numbers.len()));
            }
        }
        let predicate = match conditions.is_empty() {
            true => String::new(),
            false => format!(" WHERE {}", conditions.join(" AND ")),
        };
        let n = texts.len() + numbers.len();
        let select = format!(
            "SELECT body FROM audit_events{predicate} ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let count = format!("SELECT COUNT(*) FROM audit_events{predicate}");
        let mut conn = self.conn().await?;
        let mut query = sqlx::query(&select);
        let mut count_query = sqlx::query(&count);
        for text in &texts {
            query = query.bind(*text);
            count_query = count_query.bind(*text);
        }
        for number in &numbers {
            query = query.bind(*number);
            count_query = count_query.bind(*number);
        }
        let rows = query.bind(limit).bind(offset).fetch_all(&mut *conn).await?;
        let total: i64 = count_query.fetch_one(&mut *conn).await?.try_get(0)?;
        let events = rows
            .iter()
            .map(|row| from_json("audit event", &row.try_get::<String, _>(0)?))
            .collect::<Result<Vec<AuditEvent>, StoreError>>()?;
        Ok((events, total))
    }

    /// Deletes audit events recorded before `before`, oldest first, at most `limit` of them (one
    /// short statement: a pruner calls it again until it deletes fewer); returns how many.
    /// Deleting what is older than a time is the same whoever does it and however often, so
    /// replicas pruning at once delete nothing twice and nothing they should keep.
    pub async fn audit_prune_before(&self, before: Millis, limit: i64) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "DELETE FROM audit_events WHERE id IN \
             (SELECT id FROM audit_events WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
        )
        .bind(before)
        .bind(limit)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(result.rows_affected())
    }

    /// When the `keep`-th newest audit event was recorded: what is older is beyond the newest
    /// `keep` ([`Store::audit_prune_before`] that time keeps them, and the events of the same
    /// millisecond as the oldest of them). `None` when there are no more than `keep` (or `keep`
    /// is 0). Reads the `created_at` index only, as far as `keep` entries.
    pub async fn audit_time_keeping(&self, keep: i64) -> Result<Option<Millis>, StoreError> {
        if keep <= 0 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT created_at FROM audit_events ORDER BY created_at DESC LIMIT 1 OFFSET $1")
            .bind(keep - 1)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| row.try_get(0)).transpose().map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::fresh_store;
    use crate::ServerKey;
    use rollscale_core::access::{AuditEvent, AuditFilter, Policy, User};
    use rollscale_core::domain::{AccessKey, AccessKeyStatus};
    use rollscale_core::policy::PolicyType;
    use sqlx::Row;

    fn key(id: &str, user: &str, secret: &str) -> AccessKey {
        AccessKey {
            id: id.into(),
            secret: secret.into(),
            user_name: user.into(),
            status: AccessKeyStatus::Active,
            created_at: 5,
            tokens_not_before: 0,
        }
    }

    fn user(name: &str) -> User {
        User {
            id: "1234".into(),
            name: name.into(),
            display_name: name.into(),
            comments: String::new(),
            created_at: 1,
            updated_at: 1,
        }
    }

    #[tokio::test]
    async fn secrets_are_stored_sealed_and_read_back_plain() {
        let (_dir, store) = fresh_store().await;
        let secret = "s3cr3t-0123456789abcdef0123456789";
        store.access_key_insert_bootstrap(&key("LTAIone", "admin", secret)).await.unwrap();
        let stored: String = sqlx::query("SELECT secret_sealed FROM access_keys WHERE id = 'LTAIone'")
            .fetch_one(&mut *store.conn().await.unwrap())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert!(stored.starts_with("v1.") && !stored.contains(secret) && !stored.contains(&secret[..12]), "{stored}");
        assert_eq!(store.access_key_get("LTAIone").await.unwrap().unwrap().secret, secret);
        // A bootstrap key's user exists now, with AdministratorAccess.
        assert_eq!(store.user_get("admin").await.unwrap().unwrap().name, "admin");
        let attached = store.user_policy_list("admin").await.unwrap();
        assert_eq!(
            attached.iter().map(|(t, n, _)| (*t, n.as_str())).collect::<Vec<_>>(),
            [(PolicyType::System, "AdministratorAccess")]
        );
        // Another server key cannot open it.
        let other = store.clone().with_server_key(ServerKey::generate()).await.unwrap();
        assert!(matches!(other.access_key_get("LTAIone").await, Err(crate::StoreError::Unsealable { .. })));
    }

    #[tokio::test]
    async fn plain_secrets_from_before_sealing_are_sealed_with_the_server_key() {
        let (_dir, store) = fresh_store().await;
        sqlx::query(
            "INSERT INTO access_keys (id, secret_sealed, user_name, status, created_at) \
             VALUES ('LTAIold', 'plain-old-secret', 'admin', 'Active', 1)",
        )
        .execute(&mut *store.conn().await.unwrap())
        .await
        .unwrap();
        let server_key = ServerKey::generate();
        let store = store.with_server_key(server_key.clone()).await.unwrap();
        let stored: String = sqlx::query("SELECT secret_sealed FROM access_keys WHERE id = 'LTAIold'")
            .fetch_one(&mut *store.conn().await.unwrap())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert!(!stored.contains("plain-old-secret"), "{stored}");
        assert_eq!(store.access_key_get("LTAIold").await.unwrap().unwrap().secret, "plain-old-secret");
        // Idempotent: a second start changes nothing.
        let store = store.with_server_key(server_key).await.unwrap();
        assert_eq!(store.access_key_get("LTAIold").await.unwrap().unwrap().secret, "plain-old-secret");
    }

    #[tokio::test]
    async fn a_disable_sets_the_time_before_which_tokens_stay_refused_and_an_enable_keeps_it() {
        let (_dir, store) = fresh_store().await;
        store.user_insert(&user("alice")).await.unwrap();
        store.access_key_insert(&key("LTAIa1", "alice", "one"), 2).await.unwrap();
        let not_before = async || store.access_key_get("LTAIa1").await.unwrap().unwrap().tokens_not_before;
        assert_eq!(not_before().await, 0, "never disabled");
        assert!(store.access_key_set_status("alice", "LTAIa1", AccessKeyStatus::Inactive, 1_000).await.unwrap());
        assert_eq!(not_before().await, 1_000);
        assert!(store.access_key_set_status("alice", "LTAIa1", AccessKeyStatus::Active, 2_000).await.unwrap());
        assert_eq!(not_before().await, 1_000, "an enable does not bring older tokens back");
        // A later disable moves it on; one stamped earlier (another replica's clock behind)
        // never moves it back.
        assert!(store.access_key_set_status("alice", "LTAIa1", AccessKeyStatus::Inactive, 3_000).await.unwrap());
        assert!(store.access_key_set_status("alice", "LTAIa1", AccessKeyStatus::Inactive, 2_500).await.unwrap());
        let key = store.access_key_get("LTAIa1").await.unwrap().unwrap();
        assert_eq!((key.status, key.tokens_not_before), (AccessKeyStatus::Inactive, 3_000));
        assert_eq!(store.access_key_list("alice").await.unwrap()[0].tokens_not_before, 3_000);
    }

    #[tokio::test]
    async fn users_keys_policies_and_attachments_round_trip() {
        let (_dir, store) = fresh_store().await;
        store.user_insert(&user("alice")).await.unwrap();
        assert!(matches!(store.user_insert(&user("alice")).await, Err(crate::StoreError::AlreadyExists { .. })));
        store.user_insert(&user("bob")).await.unwrap();
        assert_eq!(
            store.user_list(0, 10).await.unwrap().iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        assert_eq!(store.user_list(1, 10).await.unwrap().len(), 1);
        store.access_key_insert(&key("LTAIa1", "alice", "one"), 2).await.unwrap();
        store.access_key_insert(&key("LTAIa2", "alice", "two"), 2).await.unwrap();
        // alice existed: no policy was attached to her by the insert.
        assert!(store.user_policy_list("alice").await.unwrap().is_empty());
        assert_eq!(store.access_key_list("alice").await.unwrap().len(), 2);
        assert!(store.access_key_set_status("alice", "LTAIa1", AccessKeyStatus::Inactive, 7).await.unwrap());
        assert!(!store.access_key_set_status("bob", "LTAIa1", AccessKeyStatus::Active, 8).await.unwrap());
        assert_eq!(store.access_key_get("LTAIa1").await.unwrap().unwrap().status, AccessKeyStatus::Inactive);

        let policy = Policy {
            name: "Ops".into(),
            policy_type: PolicyType::Custom,
            description: "d".into(),
            document: "{}".into(),
            created_at: 2,
            updated_at: 2,
        };
        store.policy_insert(&policy).await.unwrap();
        assert_eq!(store.policy_get("Ops").await.unwrap(), Some(policy.clone()));
        assert!(store.user_policy_attach("alice", PolicyType::Custom, "Ops", 3).await.unwrap());
        assert!(!store.user_policy_attach("alice", PolicyType::Custom, "Ops", 4).await.unwrap());
        assert_eq!(store.policy_delete("Ops").await.unwrap(), Some(1), "attached: not deleted");
        assert_eq!(store.policy_attachment_counts().await.unwrap(), [(PolicyType::Custom, "Ops".to_string(), 1)]);

        assert!(store.user_delete("alice").await.unwrap());
        assert!(store.access_key_get("LTAIa2").await.unwrap().is_none(), "a deleted user's keys go with it");
        assert!(store.user_policy_list("alice").await.unwrap().is_empty());
        assert_eq!(store.policy_delete("Ops").await.unwrap(), Some(0));
        assert_eq!(store.policy_delete("Ops").await.unwrap(), None);
        assert!(!store.user_delete("alice").await.unwrap());
    }

    #[tokio::test]
    async fn the_normal_insert_never_creates_a_user_and_keeps_the_limit_inside_its_transaction() {
        let (_dir, store) = fresh_store().await;
        // A user deleted between the service's check and the insert: refused, and the user
        // is not brought back (let alone as an administrator).
        store.user_insert(&user("carol")).await.unwrap();
        assert!(store.user_delete("carol").await.unwrap());
        let refused = store.access_key_insert(&key("LTAIc1", "carol", "one"), 2).await;
        assert!(matches!(refused, Err(crate::StoreError::Missing { what: "user", .. })), "{refused:?}");
        assert_eq!(store.user_get("carol").await.unwrap(), None);
        assert!(store.user_policy_list("carol").await.unwrap().is_empty());
        assert!(store.access_key_get("LTAIc1").await.unwrap().is_none());
        assert_eq!(store.access_key_count().await.unwrap(), 0);

        // The limit, checked in the same transaction: of eight concurrent inserts for one
        // user, exactly two succeed, and the others are refused with nothing written.
        store.user_insert(&user("dave")).await.unwrap();
        let mut handles = Vec::new();
        for n in 0..8 {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                store.access_key_insert(&key(&format!("LTAId{n}"), "dave", "s"), 2).await
            }));
        }
        let mut inserted = 0;
        for handle in handles {
            match handle.await.unwrap() {
                Ok(()) => inserted += 1,
                Err(crate::StoreError::LimitExceeded { limit: 2, .. }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(inserted, 2);
        assert_eq!(store.access_key_list("dave").await.unwrap().len(), 2);
        assert!(store.user_policy_list("dave").await.unwrap().is_empty(), "no policy comes with a key");

        // The bootstrap insert is the one that makes an administrator.
        store.access_key_insert_bootstrap(&key("LTAIboot", "root", "s")).await.unwrap();
        let attached = store.user_policy_list("root").await.unwrap();
        assert_eq!(
            attached.iter().map(|(t, n, _)| (*t, n.as_str())).collect::<Vec<_>>(),
            [(PolicyType::System, "AdministratorAccess")]
        );
        store.access_key_insert_bootstrap(&key("LTAIboot2", "root", "s")).await.unwrap();
        assert_eq!(store.user_policy_list("root").await.unwrap().len(), 1, "attached once");
    }

    /// Keys and attachments whose user does not exist.
    async fn orphans(store: &crate::Store) -> (i64, i64) {
        let mut conn = store.conn().await.unwrap();
        let mut counts = [0i64; 2];
        for (count, table) in counts.iter_mut().zip(["access_keys", "user_policies"]) {
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE user_name NOT IN (SELECT name FROM users)");
            *count = sqlx::query(&sql).fetch_one(&mut *conn).await.unwrap().try_get(0).unwrap();
        }
        (counts[0], counts[1])
    }

    /// On PostgreSQL (many connections) the inserts, attaches and the delete really run at
    /// once; on SQLite its one connection serializes them. Either way no key or attachment is
    /// left without its user, and each insert either committed before the delete (its key
    /// deleted with the user) or found no user.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_user_deleted_during_key_inserts_and_attaches_leaves_nothing_behind() {
        let (_dir, store) = fresh_store().await;
        let policy = Policy {
            name: "Ops".into(),
            policy_type: PolicyType::Custom,
            description: String::new(),
            document: "{}".into(),
            created_at: 1,
            updated_at: 1,
        };
        store.policy_insert(&policy).await.unwrap();
        for round in 0..12 {
            let name = format!("erin{round}");
            store.user_insert(&user(&name)).await.unwrap();
            let start = std::sync::Arc::new(tokio::sync::Barrier::new(9));
            let mut inserts = Vec::new();
            for n in 0..8 {
                let (store, start, name) = (store.clone(), start.clone(), name.clone());
                inserts.push(tokio::spawn(async move {
                    start.wait().await;
                    match n % 4 {
                        3 => store.user_policy_attach(&name, PolicyType::Custom, "Ops", 2).await.map(|_| ()),
                        2 => store
                            .user_policy_attach(&name, PolicyType::System, "AdministratorAccess", 2)
                            .await
                            .map(|_| ()),
                        _ => store.access_key_insert(&key(&format!("LTAI{name}k{n}"), &name, "s"), 100).await,
                    }
                }));
            }
            let deleting = {
                let (store, start, name) = (store.clone(), start.clone(), name.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    store.user_delete(&name).await
                })
            };
            for insert in inserts {
                match insert.await.unwrap() {
                    Ok(()) | Err(crate::StoreError::Missing { what: "user", .. }) => {}
                    Err(other) => panic!("{other:?}"),
                }
            }
            assert!(deleting.await.unwrap().unwrap(), "the user existed");
            assert_eq!(store.user_get(&name).await.unwrap(), None);
            assert_eq!(orphans(&store).await, (0, 0), "round {round}: a key or attachment outlived its user");
        }
        assert_eq!(store.access_key_count().await.unwrap(), 0);
        // The policy's attachments went with the users: it can be deleted.
        assert_eq!(store.policy_delete("Ops").await.unwrap(), Some(0));
    }

    fn audit_event(id: &str, at: i64) -> AuditEvent {
        AuditEvent {
            id: id.into(),
            at,
            user_name: "alice".into(),
            access_key_id: "LTAIalice".into(),
            action: "ess:DescribeScalingGroups".into(),
            resource: "*".into(),
            source_ip: "127.0.0.1".into(),
            result_code: "Success".into(),
            http_status: 200,
            request_id: id.into(),
            request: serde_json::json!({}),
        }
    }

    async fn audit_ids(store: &crate::Store) -> Vec<String> {
        let (events, _) = store.audit_list(&AuditFilter::default(), 0, 1000).await.unwrap();
        events.into_iter().map(|event| event.id).collect()
    }

    #[tokio::test]
    async fn the_audit_log_is_pruned_by_age_oldest_first_in_bounded_batches() {
        let (_dir, store) = fresh_store().await;
        for i in 0..10 {
            store.audit_insert(&audit_event(&format!("ev-{i}"), 100 + i)).await.unwrap();
        }
        assert_eq!(store.audit_prune_before(100, 5).await.unwrap(), 0, "none before its time");
        assert_eq!(store.audit_prune_before(107, 3).await.unwrap(), 3, "at most a batch");
        assert_eq!(audit_ids(&store).await.last().map(String::as_str), Some("ev-3"), "the oldest went first");
        assert_eq!(store.audit_prune_before(107, 3).await.unwrap(), 3);
        assert_eq!(store.audit_prune_before(107, 3).await.unwrap(), 1, "what is left before 107");
        assert_eq!(store.audit_prune_before(107, 3).await.unwrap(), 0, "again: nothing more");
        assert_eq!(audit_ids(&store).await, ["ev-9", "ev-8", "ev-7"]);
    }

    #[tokio::test]
    async fn the_audit_log_is_pruned_to_its_newest_rows() {
        let (_dir, store) = fresh_store().await;
        assert_eq!(store.audit_time_keeping(3).await.unwrap(), None, "an empty log");
        // Two events share the millisecond 104.
        for (i, at) in [100, 101, 102, 103, 104, 104, 105].into_iter().enumerate() {
            store.audit_insert(&audit_event(&format!("ev-{i}"), at)).await.unwrap();
        }
        assert_eq!(store.audit_time_keeping(7).await.unwrap(), Some(100));
        assert_eq!(store.audit_time_keeping(8).await.unwrap(), None, "fewer than that");
        assert_eq!(store.audit_time_keeping(0).await.unwrap(), None, "no limit");
        let cut = store.audit_time_keeping(4).await.unwrap();
        assert_eq!(cut, Some(103));
        assert_eq!(store.audit_prune_before(103, 100).await.unwrap(), 3);
        assert_eq!(audit_ids(&store).await, ["ev-6", "ev-5", "ev-4", "ev-3"]);
        // Keeping 2: the oldest kept is one of the two at 104, and both stay.
        assert_eq!(store.audit_time_keeping(2).await.unwrap(), Some(104));
        assert_eq!(store.audit_prune_before(104, 100).await.unwrap(), 1);
        assert_eq!(audit_ids(&store).await.len(), 3);
        // A second pruner with the same view deletes nothing more.
        assert_eq!(store.audit_prune_before(104, 100).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn audit_events_filter_and_page_newest_first() {
        let (_dir, store) = fresh_store().await;
        for (i, (user, action, code)) in [
            ("alice", "ess:DescribeScalingGroups", "Success"),
            ("alice", "oos:StartExecution", "Forbidden.RAM"),
            ("bob", "ram:ListUsers", "Success"),
        ]
        .into_iter()
        .enumerate()
        {
            store
                .audit_insert(&AuditEvent {
                    id: format!("ev-{i}"),
                    at: 100 + i as i64,
                    user_name: user.into(),
                    access_key_id: format!("LTAI{user}"),
                    action: action.into(),
                    resource: "*".into(),
                    source_ip: "127.0.0.1".into(),
                    result_code: code.into(),
                    http_status: if code == "Success" { 200 } else { 403 },
                    request_id: format!("R{i}"),
                    request: serde_json::json!({ "i": i }),
                })
                .await
                .unwrap();
        }
        let (all, total) = store.audit_list(&AuditFilter::default(), 0, 10).await.unwrap();
        assert_eq!((all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), total), (vec!["ev-2", "ev-1", "ev-0"], 3));
        let alice = AuditFilter { user_name: Some("alice".into()), ..AuditFilter::default() };
        let (page, total) = store.audit_list(&alice, 1, 1).await.unwrap();
        assert_eq!((page[0].id.as_str(), total), ("ev-0", 2));
        let denied = AuditFilter {
            result_code: Some("Forbidden.RAM".into()),
            since: Some(101),
            until: Some(102),
            ..AuditFilter::default()
        };
        let (found, _) = store.audit_list(&denied, 0, 10).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].action, "oos:StartExecution");
        assert_eq!(found[0].request, serde_json::json!({ "i": 1 }));
    }
}
