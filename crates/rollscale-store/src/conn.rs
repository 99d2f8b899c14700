//! How the store reaches its database: one dedicated connection for SQLite, a pool for
//! PostgreSQL.
//!
//! SQLite serializes writers anyway, so one connection gives the same throughput without
//! SQLITE_BUSY. It is not held in an sqlx pool: a pool pings a connection on every release
//! (and, unless told otherwise, on every acquire), each a round trip to the connection's
//! worker thread that costs as much as a short statement. Here the connection is handed from
//! one user to the next in FIFO order. A user that is cancelled mid-statement leaves nothing
//! behind: the connection's worker runs commands in order and rolls back a transaction whose
//! `BEGIN` was never acknowledged or whose `Transaction` was dropped, before the next user's
//! first command.

use crate::StoreError;
use sqlx::pool::PoolConnection;
use sqlx::AnyConnection;
use sqlx::{Any, AnyPool};
use std::collections::VecDeque;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

#[derive(Clone)]
pub(crate) enum Db {
    Pool(AnyPool),
    Single(std::sync::Arc<Single>),
}

impl Db {
    pub(crate) async fn conn(&self) -> Result<Conn<'_>, StoreError> {
        match self {
            Db::Pool(pool) => Ok(Conn::Pooled(pool.acquire().await?)),
            Db::Single(single) => Ok(Conn::Single(Lease { single, conn: Some(Acquire::new(single).await) })),
        }
    }

    /// How many connections are lent out now (see `Store::connections_in_use`).
    pub(crate) fn in_use(&self) -> usize {
        match self {
            Db::Pool(pool) => {
                // Two counters, read one after the other: a pool that opened or closed a
                // connection meanwhile counts as busy rather than as idle.
                let (before, idle, after) = (pool.size(), pool.num_idle(), pool.size());
                if before == after {
                    (after as usize).saturating_sub(idle)
                } else {
                    before.max(after) as usize
                }
            }
            Db::Single(single) => usize::from(single.state().conn.is_none()),
        }
    }
}

/// A connection held for a few statements or a transaction; dropping it gives it back.
pub(crate) enum Conn<'a> {
    Pooled(PoolConnection<Any>),
    Single(Lease<'a>),
}

impl Deref for Conn<'_> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Conn::Pooled(conn) => conn,
            Conn::Single(lease) => lease.conn.as_ref().expect("a lease holds its connection until dropped"),
        }
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Conn::Pooled(conn) => conn,
            Conn::Single(lease) => lease.conn.as_mut().expect("a lease holds its connection until dropped"),
        }
    }
}

/// The one connection, and who waits for it, first come first served.
pub(crate) struct Single {
    state: Mutex<SingleState>,
}

struct SingleState {
    /// `None` while lent out.
    conn: Option<AnyConnection>,
    waiters: VecDeque<(u64, Waker)>,
    next_ticket: u64,
}

impl Single {
    pub(crate) fn new(conn: AnyConnection) -> Single {
        Single { state: Mutex::new(SingleState { conn: Some(conn), waiters: VecDeque::new(), next_ticket: 0 }) }
    }

    fn state(&self) -> MutexGuard<'_, SingleState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn give_back(&self, conn: AnyConnection) {
        let mut state = self.state();
        state.conn = Some(conn);
        if let Some((_, waker)) = state.waiters.front() {
            waker.wake_by_ref();
        }
    }
}

pub(crate) struct Lease<'a> {
    single: &'a Single,
    conn: Option<AnyConnection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.single.give_back(conn);
        }
    }
}

/// Waits for the connection; takes it when it is free and no earlier waiter wants it.
struct Acquire<'a> {
    single: &'a Single,
    ticket: Option<u64>,
}

impl<'a> Acquire<'a> {
    fn new(single: &'a Single) -> Acquire<'a> {
        Acquire { single, ticket: None }
    }
}

impl Future for Acquire<'_> {
    type Output = AnyConnection;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<AnyConnection> {
        let single = self.single;
        let mut state = single.state();
        let first = match self.ticket {
            None => state.waiters.is_empty(),
            Some(ticket) => state.waiters.front().is_some_and(|(t, _)| *t == ticket),
        };
        if first {
            if let Some(conn) = state.conn.take() {
                if self.ticket.take().is_some() {
                    state.waiters.pop_front();
                }
                return Poll::Ready(conn);
            }
        }
        match self.ticket {
            None => {
                let ticket = state.next_ticket;
                state.next_ticket += 1;
                state.waiters.push_back((ticket, cx.waker().clone()));
                drop(state);
                self.ticket = Some(ticket);
            }
            Some(ticket) => {
                if let Some((_, waker)) = state.waiters.iter_mut().find(|(t, _)| *t == ticket) {
                    waker.clone_from(cx.waker());
                }
            }
        }
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        // Cancelled while waiting: leave the queue, and pass a wake-up meant for us along.
        let Some(ticket) = self.ticket else { return };
        let mut state = self.single.state();
        let was_first = state.waiters.front().is_some_and(|(t, _)| *t == ticket);
        state.waiters.retain(|(t, _)| *t != ticket);
        if was_first && state.conn.is_some() {
            if let Some((_, waker)) = state.waiters.front() {
                waker.wake_by_ref();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use std::time::Duration;

    async fn store() -> (tempfile::TempDir, Store) {
        crate::testing::fresh_store().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_users_share_the_connection_in_turn() {
        let (_dir, store) = store().await;
        let mut tasks = Vec::new();
        for i in 0..64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..10 {
                    store.setting_put(&format!("k{i}"), &j.to_string()).await.expect("put");
                    assert_eq!(store.setting_get(&format!("k{i}")).await.expect("get"), Some(j.to_string()));
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_does_not_hold_up_the_others() {
        let (_dir, store) = store().await;
        if store.backend() != crate::Backend::Sqlite {
            return; // PostgreSQL has a pool of many.
        }
        let lease = store.conn().await.expect("conn");
        // Two waiters queue up; the first is cancelled while waiting.
        let first = tokio::time::timeout(Duration::from_millis(20), store.conn());
        assert!(first.await.is_err(), "the connection is lent out");
        let second = {
            let store = store.clone();
            tokio::spawn(async move { store.setting_get("x").await.expect("get") })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(lease);
        let got = tokio::time::timeout(Duration::from_secs(5), second).await.expect("not stuck").expect("task");
        assert_eq!(got, None);
    }

    #[tokio::test]
    async fn a_transaction_dropped_midway_is_rolled_back_before_the_next_user() {
        let (_dir, store) = store().await;
        {
            let mut conn = store.conn().await.expect("conn");
            let mut tx = sqlx::Connection::begin(&mut *conn).await.expect("begin");
            sqlx::query("INSERT INTO settings (name, value) VALUES ('half', 'done')")
                .execute(&mut *tx)
                .await
                .expect("insert");
            // Dropped without commit, as an aborted task would.
        }
        assert_eq!(store.setting_get("half").await.expect("get"), None);
        store.setting_put("after", "yes").await.expect("put");
        assert_eq!(store.setting_get("after").await.expect("get"), Some("yes".into()));
    }
}
