//! Stopping the engine gracefully (`rollscale up` on SIGTERM): no new work is taken, every
//! rolling update's driver stops at its next decision and each of its workers once its current
//! step is committed, background work (reconcile and health passes, the image schedule's
//! ticks and firings) ends, and then every lease is handed back, so that another replica takes
//! the work over at once instead of after the lease's expiry. What is still running at the end
//! of the grace is stopped as a crash would stop it (the journal makes its step resumable), and
//! its lease, if any, is left to expire: only work that ended on its own is handed back, so no
//! write or driver call of this replica can land after another replica took over.

use crate::Engine;
use rollscale_core::ids::ExecutionId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Whether the engine is stopping, and how much background work runs now. One value behind
/// one lock, so that no background work can start once stopping began and be missed by the
/// wait for it to end.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stopping {
    /// [`Engine::shut_down`] began.
    requested: bool,
    /// Background work running now (see [`Engine::busy`]).
    busy: usize,
}

/// A piece of background work running (see [`Engine::busy`]); it ends when this is dropped.
pub(crate) struct Busy(watch::Sender<Stopping>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|stopping| stopping.busy = stopping.busy.saturating_sub(1));
    }
}

/// What became of a lease the engine held as it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandOver {
    /// It held none (alone on its store, or another replica held it).
    NotHeld,
    /// Handed back: the work under it ended on its own, another replica may take it at once.
    HandedBack,
    /// Work under it was still running at the end of the grace and was stopped as a crash
    /// would stop it: the lease expires on its own, as a dead replica's does.
    LeftToExpire,
}

/// What [`Engine::shut_down`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Rolling updates whose driver and workers stopped between two steps, each step they had
    /// begun committed: with replicas their leases were handed back (another replica goes on
    /// at once); alone, they resume at the next start.
    pub between_steps: Vec<ExecutionId>,
    /// Rolling updates still in a step at the end of the grace: stopped there as a crash would
    /// stop them (their journal has the step to redo); their leases are left to expire.
    pub cut_short: Vec<ExecutionId>,
    /// Background work still running at the end of the grace (reconcile or health passes,
    /// image update firings), stopped there as a crash would stop it.
    pub background_cut_short: usize,
    /// The reconciler's lease.
    pub reconciler: HandOver,
}

impl Engine {
    /// Whether [`Engine::shut_down`] began: no task is driven anew, no driver decides again, no
    /// worker takes another step, no background work starts.
    pub fn is_stopping(&self) -> bool {
        self.stop.borrow().requested
    }

    /// Marks a piece of background work (a reconcile or health pass, an image schedule tick or
    /// firing, taking the reconciler's lease) as running until the guard is dropped; `None`
    /// once the engine is stopping, when none starts. [`Engine::shut_down`] hands the
    /// reconciler's lease back only once none runs.
    pub(crate) fn busy(&self) -> Option<Busy> {
        let mut started = false;
        self.stop.send_if_modified(|stopping| {
            if stopping.requested {
                return false;
            }
            stopping.busy += 1;
            started = true;
            false // nobody waits for a start
        });
        started.then(|| Busy(self.stop.clone()))
    }

    /// Stops the engine gracefully, within `grace` (then for good):
    ///
    /// 1. no new work: no task is driven anew (the lease poller, a start through the API), no
    ///    background work starts, the reconciler's lease is not taken;
    /// 2. each rolling update's driver stops at its next decision, and each worker once the
    ///    step it is in is committed; the driver then hands the task's lease back (through
    ///    the same wind-down as a finished task: only once its workers and journal ended);
    /// 3. once the background work running has ended, the reconciler's lease is handed back;
    /// 4. at the end of `grace`, whatever still runs is stopped as [`Engine::halt`] stops it,
    ///    its leases left to expire; so is everything else of the engine (the pollers, the
    ///    alert sender).
    ///
    /// Handed back, a lease is expired at once with its row kept, so another replica takes the
    /// task over at its next look (see `Engine::spawn_lease_poller`).
    pub async fn shut_down(self: &Arc<Self>, grace: Duration) -> Stopped {
        self.stop.send_modify(|stopping| stopping.requested = true);
        let driving: Vec<ExecutionId> = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        for id in &driving {
            // A driver waiting for a wake-up decides now, and so stops now.
            self.wake(id, false);
        }
        // The reconciler's lease as soon as no background work runs, the tasks' as each task
        // stops: each goes on elsewhere as soon as it can.
        let reconciler = async {
            let mut stop = self.stop.subscribe();
            let idle = tokio::time::timeout(grace, stop.wait_for(|stopping| stopping.busy == 0)).await.is_ok();
            let background_cut_short = self.stop.borrow().busy;
            let held = self.reconciler_lease.lock().unwrap_or_else(|e| e.into_inner()).take();
            let reconciler = match held {
                None => HandOver::NotHeld,
                Some(held) if idle => match self.lease_hand_back(held).await {
                    true => HandOver::HandedBack,
                    false => HandOver::LeftToExpire,
                },
                Some(_) => HandOver::LeftToExpire,
            };
            (reconciler, background_cut_short)
        };
        let tasks = async {
            let _ = tokio::time::timeout(grace, self.tasks_ended()).await;
        };
        let ((reconciler, background_cut_short), ()) = tokio::join!(reconciler, tasks);
        let mut cut_short: Vec<ExecutionId> =
            self.tasks.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        cut_short.sort();
        let between_steps = driving.into_iter().filter(|id| !cut_short.contains(id)).collect();
        self.halt();
        Stopped { between_steps, cut_short, background_cut_short, reconciler }
    }

    /// Resolves once no task is driven. Looks every few milliseconds: it only runs while
    /// stopping, when no task is driven anew.
    async fn tasks_ended(&self) {
        while !self.tasks.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
