//! HAProxy, the real load balancer of the tests: the executable (`scripts/haproxy` installs
//! it) and its runtime API on an admin socket.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The `haproxy` executable, as the driver finds it; fails the test, saying how to install
/// it, when it is missing.
pub fn binary() -> PathBuf {
    rollscale_fleet::haproxy::find_haproxy().unwrap_or_else(|| {
        panic!(
            "the haproxy executable is missing (looked in PATH, /usr/sbin, /usr/local/sbin): these tests need a \
             real HAProxy; install it with scripts/haproxy (or apt-get install -y haproxy)"
        )
    })
}

/// One command of HAProxy's runtime API (`show stat`, say) on its admin socket: the answer.
pub fn command(socket: &Path, command: &str) -> String {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("HAProxy's admin socket");
    stream.write_all(format!("{command}\n").as_bytes()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}
