//! A copy of a SQLite store taken while it serves (`rollscale backup`), and the readiness
//! probe's trivial query.
//!
//! The copy is SQLite's `VACUUM INTO`, run on a read-only connection of its own: one read
//! transaction, so the copy is the database as of one commit (under WAL, readers see a
//! snapshot and never block the writer, nor the writer them), written page by page into a new
//! file. It takes no lock a running `rollscale up` would wait for, runs no migration and writes
//! nothing to the source. (SQLite's online backup API would copy the same snapshot, but sqlx
//! does not expose it: reaching it means the raw handle and `unsafe` calls into
//! `libsqlite3-sys`. `VACUUM INTO` also leaves the free pages out.)

use crate::{ServerKey, Store, StoreError};
use sqlx::{AnyConnection, Connection, Executor, Row};
use std::path::Path;

impl Store {
    /// A trivial query (`SELECT 1`): whether the database answers, for the readiness probe.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&mut *self.conn().await?).await?;
        Ok(())
    }

    /// Copies the SQLite database file `database` into the new file `target` (which must not
    /// exist): a consistent copy as of one commit, taken while the database may be in use (see
    /// the module's comment). When this returns, the copy is synced to disk and readable by its
    /// owner only (0600), and every AccessKey secret sealed in it opens with `server_key` (the
    /// key the copy must be kept with), else [`StoreError::Unsealable`].
    ///
    /// The source is opened read-only: a missing file is an error, never a new database.
    pub async fn sqlite_backup(database: &Path, target: &Path, server_key: &ServerKey) -> Result<(), StoreError> {
        sqlx::any::install_default_drivers();
        let io = |what: String| move |source| StoreError::Io { what, source };
        let text = |path: &Path| {
            path.to_str().map(str::to_string).ok_or_else(|| StoreError::Io {
                what: format!("{} is not a UTF-8 path", path.display()),
                source: std::io::ErrorKind::InvalidInput.into(),
            })
        };
        let (source, copy) = (text(database)?, text(target)?);
        let mut conn = AnyConnection::connect(&format!("sqlite://{source}?mode=ro")).await?;
        conn.execute("PRAGMA busy_timeout = 5000").await?;
        sqlx::query("VACUUM INTO $1").bind(&copy).execute(&mut conn).await?;
        conn.close().await?;
        // SQLite does not sync what VACUUM INTO wrote; and it made the file with the umask's
        // permissions.
        {
            use std::os::unix::fs::PermissionsExt;
            let file = std::fs::File::open(target).map_err(io(format!("cannot open the copy {copy}")))?;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io(format!("cannot make the copy {copy} private")))?;
            file.sync_all().map_err(io(format!("cannot sync the copy {copy}")))?;
        }
        // The copy is only of use with the server key that opens its secrets.
        let mut conn = AnyConnection::connect(&format!("sqlite://{copy}?mode=ro")).await?;
        let rows = sqlx::query("SELECT id, secret_sealed FROM access_keys").fetch_all(&mut conn).await?;
        conn.close().await?;
        for row in rows {
            let (id, value): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            // A secret stored in plain text by a version before sealing is sealed by the next
            // `up`; it needs no key.
            if ServerKey::is_sealed(&value) && server_key.open(&id, &value).is_none() {
                return Err(StoreError::Unsealable { id });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollscale_core::domain::{AccessKey, AccessKeyStatus};

    async fn store_with_a_key(path: &Path, key: &ServerKey) -> Store {
        let store = Store::open(&format!("sqlite://{}", path.display())).await.unwrap();
        let store = store.with_server_key(key.clone()).await.unwrap();
        store.setting_put("marker", "before").await.unwrap();
        let admin = AccessKey {
            id: "LTAIbackup".into(),
            secret: "s3cret".into(),
            user_name: "admin".into(),
            status: AccessKeyStatus::Active,
            created_at: 1,
            tokens_not_before: 0,
        };
        store.access_key_insert_bootstrap(&admin).await.unwrap();
        store
    }

    #[tokio::test]
    async fn a_copy_taken_while_the_store_is_open_is_whole_private_and_opens_with_its_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = ServerKey::generate();
        let source = dir.path().join("rollscale.db");
        let store = store_with_a_key(&source, &key).await;
        // Writes go on while the copy is taken: it is as of one commit, the marker's before or
        // after value, and the source keeps serving.
        let target = dir.path().join("copy.db");
        let (copied, _) = tokio::join!(Store::sqlite_backup(&source, &target, &key), async {
            store.setting_put("marker", "after").await.unwrap()
        });
        copied.unwrap();
        assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
        store.setting_put("marker", "later").await.unwrap();

        let copy = Store::open(&format!("sqlite://{}", target.display())).await.unwrap();
        let copy = copy.with_server_key(key.clone()).await.unwrap();
        let marker = copy.setting_get("marker").await.unwrap();
        assert!(matches!(marker.as_deref(), Some("before" | "after")), "{marker:?}");
        let stored = copy.access_key_get("LTAIbackup").await.unwrap().unwrap();
        assert_eq!(stored.secret, "s3cret");

        // The wrong key is refused; an existing target and a missing source are errors, and the
        // missing source is not created.
        let other = dir.path().join("other.db");
        let refused = Store::sqlite_backup(&source, &other, &ServerKey::generate()).await;
        assert!(matches!(refused, Err(StoreError::Unsealable { ref id }) if id == "LTAIbackup"), "{refused:?}");
        assert!(Store::sqlite_backup(&source, &target, &key).await.is_err(), "the target exists");
        let missing = dir.path().join("missing.db");
        assert!(Store::sqlite_backup(&missing, &dir.path().join("x.db"), &key).await.is_err());
        assert!(!missing.exists());
    }

    #[tokio::test]
    async fn a_store_that_is_not_open_is_copied_too() {
        let dir = tempfile::tempdir().unwrap();
        let key = ServerKey::generate();
        let source = dir.path().join("rollscale.db");
        drop(store_with_a_key(&source, &key).await);
        let target = dir.path().join("copy.db");
        Store::sqlite_backup(&source, &target, &key).await.unwrap();
        let copy = Store::open(&format!("sqlite://{}", target.display())).await.unwrap();
        assert_eq!(copy.setting_get("marker").await.unwrap().as_deref(), Some("before"));
        copy.ping().await.unwrap();
    }
}
