//! A test hook, not a feature: `ROLLSCALE_CRASH_AT` makes the process kill itself with
//! SIGKILL (what `kill -9` does: no destructor, no flush, no clean-up) when it reaches one of
//! the crash points of `rollscale up`'s first start, so that a test can crash the first start
//! at every step in turn and check that the next `up` finishes what it began
//! (`tests/first_start.rs`, the durability harness's style for the binary).
//!
//! The variable holds a point's name (`admin-key-created`) or its number: `N` crashes at the
//! N-th point the process reaches (from 1), so a test can walk every point without knowing
//! their names, new ones included. Before it dies the process writes `crash point N (name)` to
//! stderr, so a test sees where it died. Unset (always, outside tests) a point does nothing
//! but read the variable once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The variable naming the point to crash at (test hook).
pub const ENV: &str = "ROLLSCALE_CRASH_AT";

/// The process dies here when `ROLLSCALE_CRASH_AT` names this point or its number.
pub fn point(name: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    static REACHED: AtomicUsize = AtomicUsize::new(0);
    let Some(at) = AT.get_or_init(|| std::env::var(ENV).ok().filter(|at| !at.trim().is_empty())) else {
        return;
    };
    let number = REACHED.fetch_add(1, Ordering::SeqCst) + 1;
    if at.trim() == name || at.trim() == number.to_string() {
        eprintln!("crash point {number} ({name}): killed by {ENV}");
        // SAFETY: sends a signal to this very process; no memory is shared with the call.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        // SIGKILL cannot be caught; should the signal be late, die all the same.
        std::process::abort();
    }
}
