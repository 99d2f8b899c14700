//! Waiting for a condition: poll it until it holds or a deadline passes, then fail saying what
//! did not happen. Tests wait for what they need; they never sleep and hope.

use std::time::{Duration, Instant};

/// Polls `probe` every `every` until it returns something, and returns that; fails the test
/// ("timed out waiting for `what`") after `timeout`. For async tests.
pub async fn until<T>(what: &str, timeout: Duration, every: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    until_ok(what, timeout, every, async || probe().await.ok_or("")).await
}

/// [`until`] with a probe that says what it saw when it is not there yet (`Err`): the failure
/// shows the last of it.
pub async fn until_ok<T, E: std::fmt::Display>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(found) => return found,
            Err(seen) => {
                assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}{}", last(&seen))
            }
        }
        tokio::time::sleep(every).await;
    }
}

fn last(seen: &impl std::fmt::Display) -> String {
    let seen = seen.to_string();
    if seen.is_empty() {
        seen
    } else {
        format!(": {seen}")
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
