//! The server key of `rollscale up`: the key that seals the stored AccessKey secrets.

use anyhow::Context;
use rollscale_store::{ServerKey, Store};
use std::path::Path;

/// Environment variable with the server key itself (64 hex digits).
pub const SERVER_KEY_ENV: &str = "ROLLSCALE_SERVER_KEY";
/// Environment variable naming the file with the server key (default `DATA_DIR/server.key`).
pub const SERVER_KEY_FILE_ENV: &str = "ROLLSCALE_SERVER_KEY_FILE";

/// Gives the store its server key: `$ROLLSCALE_SERVER_KEY`, else the file
/// `$ROLLSCALE_SERVER_KEY_FILE`, else `DATA_DIR/server.key` (created with mode 0600 at first
/// start). Replicas sharing a database need the same key.
pub async fn with_server_key(store: Store, data_dir: &Path) -> anyhow::Result<Store> {
    let key = match std::env::var(SERVER_KEY_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            ServerKey::from_hex(&text).with_context(|| format!("${SERVER_KEY_ENV} is not a server key"))?
        }
        _ => {
            let path = match std::env::var(SERVER_KEY_FILE_ENV) {
                Ok(path) if !path.is_empty() => path.into(),
                _ => {
                    std::fs::create_dir_all(data_dir)
                        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
                    data_dir.join("server.key")
                }
            };
            remove_stale_temps(&path);
            ServerKey::load_or_create(&path).context("cannot load the server key")?
        }
    };
    store.with_server_key(key).await.context("cannot seal the stored AccessKey secrets")
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
