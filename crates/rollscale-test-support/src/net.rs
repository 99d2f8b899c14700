//! Loopback ports and scratch directories.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A loopback address (127.0.0.1 and a port) nobody listens on now: the port was free when
/// asked, and is again once this returns.
pub fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("the listener's address")
}

/// The port of [`free_address`].
pub fn free_port() -> u16 {
    free_address().port()
}

/// A directory of its own under the system's temporary directory,
/// `<prefix>-<process id>-<name>`, emptied when made and removed when dropped. Keep `prefix`
/// and `name` short where a Unix socket lives under it (108 bytes at most for its path).
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(prefix: &str, name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
