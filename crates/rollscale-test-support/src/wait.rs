//! Waiting for a condition: poll it until it holds or a deadline passes, then fail saying what
//! did not happen. Tests wait for what they need; they never sleep and hope.

use std::time::{Duration, Instant};

/// Polls `probe` every `every` until it returns something, and returns that; fails the test
/// ("timed out waiting for `what`") after `timeout`. For async tests.
pub async fn until<T>(what: &str, timeout: Duration, every: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(every).await;
    }
}

/// [`until`] for tests without a runtime: polls `probe` on this thread.
pub fn blocking_until<T>(what: &str, timeout: Duration, every: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}
