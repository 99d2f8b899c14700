//! `rollscale backup PATH`: a copy of `up`'s SQLite store, taken while it serves, with the
//! server key that opens its sealed secrets (a copy without it is of no use). PATH becomes a
//! directory holding `rollscale.db` and `server.key`, a data directory of its own:
//! `rollscale up --data-dir PATH` serves it.
//!
//! The copy is the store's (`Store::sqlite_backup`: SQLite's `VACUUM INTO` on a read-only
//! connection of its own), so it needs neither `up`'s lock on the database nor its stopping.
//! The directory appears whole or not at all: it is made under a temporary name beside PATH
//! (0700, the files 0600, all synced) and renamed into place.

use anyhow::{bail, Context};
use rollscale_store::Store;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct BackupArgs {
    /// The backup's directory: made, or an empty one filled; never an existing non-empty one.
    pub path: PathBuf,
    /// The data directory of the `rollscale up` to back up (its database and server key).
    #[arg(long, env = "ROLLSCALE_DATA_DIR", default_value = "./rollscale-data")]
    pub data_dir: PathBuf,
    /// The database, when `up` runs with --database-url (`sqlite://…`; PostgreSQL is backed up
    /// with pg_dump).
    #[arg(long, env = "ROLLSCALE_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// The names of the files in a backup, as `up` names them in a data directory.
const DATABASE: &str = "rollscale.db";
const SERVER_KEY: &str = "server.key";

pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    let database = match &args.database_url {
        None => args.data_dir.join(DATABASE),
        Some(url) if url.starts_with("postgres") => bail!(
            "rollscale backup copies a SQLite store; back a PostgreSQL database up with pg_dump, and keep the \
             server key ({}) with the dump: it opens the AccessKey secrets sealed in it",
            args.data_dir.join(SERVER_KEY).display()
        ),
        Some(url) => super::sqlite_path(url)
            .with_context(|| format!("--database-url {url} names no SQLite file (sqlite://PATH) to back up"))?,
    };
    if !database.is_file() {
        bail!(
            "there is no database at {}: give the --data-dir (or --database-url) that `rollscale up` runs with",
            database.display()
        );
    }
    let (key, key_hex, key_place) = super::server_key::existing(&args.data_dir)?;
    let target = absolute(&args.path)?;
    refuse_non_empty(&target)?;
    let (parent, name) = match (target.parent(), target.file_name()) {
        (Some(parent), Some(name)) => (parent.to_path_buf(), name.to_string_lossy().into_owned()),
        _ => bail!("{} cannot be a backup's directory", target.display()),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let prefix = format!(".{name}.");
    crate::files::remove_stale_temps(&parent, &prefix);
    let temp = parent.join(format!("{prefix}{}.{:08x}.tmp", std::process::id(), rand::random::<u32>()));
    let made = fill(&temp, &database, &key, &key_hex).await.and_then(|()| {
        // Over an empty directory, rename(2) replaces it; over anything else it fails.
        std::fs::rename(&temp, &target).with_context(|| format!("cannot move the backup into {}", target.display()))?;
        crate::files::sync_dir(&parent).with_context(|| format!("cannot sync {}", parent.display()))
    });
    if made.is_err() {
        // Best effort: the half-made copy is of no use.
        let _ = std::fs::remove_dir_all(&temp);
    }
    made?;
    let size = std::fs::metadata(target.join(DATABASE)).map(|meta| meta.len()).unwrap_or_default();
    println!(
        "Backed up {} ({size} bytes) and its server key (from {key_place}) to {}.",
        database.display(),
        target.display()
    );
    println!("To serve it: rollscale up --data-dir {}", target.display());
    Ok(())
}

/// Makes `dir` (0700) with the copy of `database` and the server key (0600 each), synced.
async fn fill(dir: &Path, database: &Path, key: &rollscale_store::ServerKey, key_hex: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new().mode(0o700).create(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Store::sqlite_backup(database, &dir.join(DATABASE), key)
        .await
        .with_context(|| format!("cannot copy the database {}", database.display()))?;
    let key_path = dir.join(SERVER_KEY);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .and_then(|mut file| {
            file.write_all(format!("{key_hex}\n").as_bytes())?;
            file.sync_all()
        })
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    crate::files::sync_dir(dir).with_context(|| format!("cannot sync {}", dir.display()))
}

/// `path` made absolute against the working directory (so its parent is known).
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("{} is not a usable path", path.display()))
}

/// Refuses a PATH that exists and is not an empty directory: a backup never mixes with, nor
/// replaces, other files.
fn refuse_non_empty(path: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(path) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} exists and is not empty: give a new or empty directory for the backup", path.display());
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if path.exists() => bail!("{} exists and is not a directory", path.display()),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_new_or_empty_directory_takes_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        assert!(refuse_non_empty(&dir.path().join("new")).is_ok());
        assert!(refuse_non_empty(dir.path()).is_ok(), "empty");
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let full = refuse_non_empty(dir.path()).unwrap_err().to_string();
        assert!(full.contains("is not empty"), "{full}");
        let file = refuse_non_empty(&dir.path().join("file")).unwrap_err().to_string();
        assert!(file.contains("is not a directory"), "{file}");
    }

    #[tokio::test]
    async fn a_backup_is_a_data_directory_with_the_database_and_its_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let store = Store::open(&format!("sqlite://{}", data.join(DATABASE).display())).await.unwrap();
        let store = super::super::server_key::with_server_key(store, &data).await.unwrap();
        store.setting_put("marker", "1").await.unwrap();
        let args = |path: PathBuf, url: Option<&str>| BackupArgs {
            path,
            data_dir: data.clone(),
            database_url: url.map(str::to_string),
        };
        let target = dir.path().join("backups").join("one");
        run(args(target.clone(), None)).await.unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&target), 0o700);
        assert_eq!((mode(&target.join(DATABASE)), mode(&target.join(SERVER_KEY))), (0o600, 0o600));
        assert_eq!(
            std::fs::read_to_string(target.join(SERVER_KEY)).unwrap(),
            std::fs::read_to_string(data.join(SERVER_KEY)).unwrap()
        );
        let names: Vec<_> =
            std::fs::read_dir(target.parent().unwrap()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["one"], "no temporary directory left");
        let copy = Store::open(&format!("sqlite://{}", target.join(DATABASE).display())).await.unwrap();
        assert_eq!(copy.setting_get("marker").await.unwrap().as_deref(), Some("1"));

        // Refused: a non-empty target, PostgreSQL, a data directory without a database.
        let again = run(args(target.clone(), None)).await.unwrap_err().to_string();
        assert!(again.contains("is not empty"), "{again}");
        let postgres = run(args(dir.path().join("pg"), Some("postgres://u@127.0.0.1/db"))).await.unwrap_err();
        assert!(postgres.to_string().contains("pg_dump"), "{postgres}");
        let empty = BackupArgs { data_dir: dir.path().join("nothing"), ..args(dir.path().join("two"), None) };
        let missing = run(empty).await.unwrap_err().to_string();
        assert!(missing.contains("there is no database"), "{missing}");
        assert!(!dir.path().join("two").exists());
    }
}
