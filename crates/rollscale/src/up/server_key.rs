//! The server key of `rollscale up`: the key that seals the stored AccessKey secrets.

use anyhow::Context;
use rollscale_store::{ServerKey, Store};
use std::path::{Path, PathBuf};

/// Environment variable with the server key itself (64 hex digits).
pub const SERVER_KEY_ENV: &str = "ROLLSCALE_SERVER_KEY";
/// Environment variable naming the file with the server key (default `DATA_DIR/server.key`).
pub const SERVER_KEY_FILE_ENV: &str = "ROLLSCALE_SERVER_KEY_FILE";

/// Gives the store its server key: `$ROLLSCALE_SERVER_KEY`, else the file
/// `$ROLLSCALE_SERVER_KEY_FILE`, else `DATA_DIR/server.key` (created with mode 0600 at first
/// start). Replicas sharing a database need the same key.
pub async fn with_server_key(store: Store, data_dir: &Path) -> anyhow::Result<Store> {
    let key = match key_from_env() {
        Some(text) => ServerKey::from_hex(&text).with_context(|| format!("${SERVER_KEY_ENV} is not a server key"))?,
        None => {
            let path = key_file(data_dir);
            if path == data_dir.join("server.key") {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
            }
            remove_stale_temps(&path);
            ServerKey::load_or_create(&path).context("cannot load the server key")?
        }
    };
    store.with_server_key(key).await.context("cannot seal the stored AccessKey secrets")
}

/// The server key `up` on `data_dir` uses, found as [`with_server_key`] finds it but never
/// made: the key, its 64 hex digits (to be written beside a copy of the store), and where it
/// was found (for messages). For `rollscale backup`.
pub fn existing(data_dir: &Path) -> anyhow::Result<(ServerKey, String, String)> {
    let (text, place) = match key_from_env() {
        Some(text) => (text, format!("${SERVER_KEY_ENV}")),
        None => {
            let path = key_file(data_dir);
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "cannot read the server key {} (it seals the stored AccessKey secrets; \
                     --data-dir must be the one `rollscale up` runs with)",
                    path.display()
                )
            })?;
            (text, path.display().to_string())
        }
    };
    let key = ServerKey::from_hex(&text).with_context(|| format!("{place} is not a server key"))?;
    Ok((key, text.trim().to_string(), place))
}

/// `$ROLLSCALE_SERVER_KEY`, when set and not blank.
fn key_from_env() -> Option<String> {
    std::env::var(SERVER_KEY_ENV).ok().filter(|text| !text.trim().is_empty())
}

/// The server key's file: `$ROLLSCALE_SERVER_KEY_FILE`, else `DATA_DIR/server.key`.
fn key_file(data_dir: &Path) -> PathBuf {
    match std::env::var(SERVER_KEY_FILE_ENV) {
        Ok(path) if !path.is_empty() => path.into(),
        _ => data_dir.join("server.key"),
    }
}

/// Removes the temporary files (`.server.key.<pid>.<random>.tmp`, `ServerKey::load_or_create`'s)
/// that a process killed while making the key left beside it.
fn remove_stale_temps(path: &Path) {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if let Some(name) = path.file_name() {
        crate::files::remove_stale_temps(dir, &format!(".{}.", name.to_string_lossy()));
    }
}
