//! Holding a lease of the store (`rollscale_store::Store::lease_take`) while working under it:
//! several replicas on one PostgreSQL database drive each task, and run the reconciler, one at
//! a time.
//!
//! Clocks: the expiry is the database's (the store's statements compute it); the holder's own
//! clock is only used as a stopwatch (`Instant`). A take or renewal sent at instant `t` set an
//! expiry of at least `t + ttl` in the database's time, so the holder counts the lease as its
//! own until `t + ttl × 2/3` at the latest, renews every `renew_every` (well before that), and
//! stops working under it when that point passes without a successful renewal, or at once when
//! a renewal finds it taken. The last third of the time to live is the margin for a step in
//! flight and for the two clocks running at slightly different rates; no replica's wall clock
//! is compared with another's or with the database's.

use crate::Engine;
use rollscale_core::domain::{LifecycleState, OsType};
use rollscale_core::ids::{InstanceId, LoadBalancerId, ScalingGroupId};
use rollscale_fleet::InstanceObservation;
use rollscale_store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// How several replicas share the work (`EngineConfig::replication`); `None` there: this
/// engine is the only one on its store and takes no leases (SQLite).
#[derive(Clone, Debug)]
pub struct Replication {
    /// This replica's id, the owner of its leases: unique per process.
    pub replica_id: String,
    /// How long a lease lasts after each take or renewal, in the database's clock.
    pub lease_ttl: Duration,
    /// How often the holder renews (well under `lease_ttl × 2/3`).
    pub renew_every: Duration,
    /// How often the replica looks for tasks without a live lease, and for the reconciler's.
    pub poll_every: Duration,
}

impl Replication {
    /// A fresh replica id and the default times: leases of 15 s, renewed every 5 s, looked for
    /// every 2 s.
    pub fn new() -> Replication {
        Replication {
            replica_id: format!("replica-{:020x}", crate::random_bits() >> 48),
            lease_ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            poll_every: Duration::from_secs(2),
        }
    }

    /// How long after sending a successful take or renewal the holder may still act.
    fn validity(&self) -> Duration {
        self.lease_ttl * 2 / 3
    }
}

impl Default for Replication {
    fn default() -> Self {
        Replication::new()
    }
}

/// A lease this replica holds, renewed in the background until dropped or lost. Clones share
/// it.
#[derive(Clone)]
pub(crate) struct Held {
    inner: Arc<HeldInner>,
}

struct HeldInner {
    name: String,
    /// Until when this replica may act under it (monotonic clock).
    valid_until: Mutex<Instant>,
    /// `true` once lost.
    lost: watch::Receiver<bool>,
    /// Dropped with the last clone: the keeper stops renewing.
    _stop: oneshot::Sender<()>,
}

impl Held {
    /// Whether this replica may still take a step under the lease.
    pub(crate) fn is_valid(&self) -> bool {
        !*self.inner.lost.borrow() && Instant::now() < *self.inner.valid_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once the lease is lost (a renewal found it taken, or it went unrenewed too
    /// long); never while it is held.
    pub(crate) async fn lost(&self) {
        let mut lost = self.inner.lost.clone();
        let _ = lost.wait_for(|lost| *lost).await;
        if !*lost.borrow() {
            // The keeper is gone without saying so: only when the lease is being released.
            std::future::pending::<()>().await;
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.inner.name
    }
}

impl Engine {
    /// Takes the lease `name` for this replica and keeps renewing it until the returned
    /// [`Held`] is dropped: `None` when another replica holds it.
    pub(crate) async fn lease_hold(
        self: &Arc<Self>,
        replication: &Replication,
        name: &str,
    ) -> Result<Option<Held>, StoreError> {
        let replication = replication.clone();
        let sent = Instant::now();
        if !self.store.lease_take(name, &replication.replica_id, replication.lease_ttl).await? {
            return Ok(None);
        }
        let (stop, stopped) = oneshot::channel();
        let (lost_tx, lost) = watch::channel(false);
        let held = Held {
            inner: Arc::new(HeldInner {
                name: name.to_string(),
                valid_until: Mutex::new(sent + replication.validity()),
                lost,
                _stop: stop,
            }),
        };
        tracing::debug!(lease = name, replica = %replication.replica_id, "lease taken");
        let keeper = self.clone().keep(held.inner.clone(), replication, lost_tx, stopped);
        self.track(tokio::spawn(keeper).abort_handle());
        Ok(Some(held))
    }

    /// Renews the lease until stopped; on losing it, says so through `lost`. Holds only a weak
    /// hold on the lease's state so that dropping every [`Held`] stops it.
    async fn keep(
        self: Arc<Self>,
        inner: Arc<HeldInner>,
        replication: Replication,
        lost: watch::Sender<bool>,
        mut stopped: oneshot::Receiver<()>,
    ) {
        let name = inner.name.clone();
        let weak = Arc::downgrade(&inner);
        drop(inner);
        let mut next_renewal = Instant::now() + replication.renew_every;
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let valid_until = *inner.valid_until.lock().unwrap_or_else(|e| e.into_inner());
            drop(inner);
            tokio::select! {
                _ = &mut stopped => return,
                () = tokio::time::sleep_until(next_renewal.min(valid_until)) => {}
            }
            if Instant::now() >= valid_until {
                tracing::warn!(lease = %name, "lease not renewed in time; stopping the work under it");
                let _ = lost.send(true);
                return;
            }
            let sent = Instant::now();
            let renewal = self.store.lease_renew(&name, &replication.replica_id, replication.lease_ttl);
            match tokio::time::timeout_at(valid_until, renewal).await {
                Ok(Ok(true)) => {
                    let Some(inner) = weak.upgrade() else { return };
                    *inner.valid_until.lock().unwrap_or_else(|e| e.into_inner()) = sent + replication.validity();
                    next_renewal = sent + replication.renew_every;
                }
                Ok(Ok(false)) => {
                    tracing::warn!(lease = %name, "lease taken by another replica; stopping the work under it");
                    let _ = lost.send(true);
                    return;
                }
                Ok(Err(error)) => {
                    tracing::warn!(lease = %name, %error, "lease renewal failed; trying again");
                    next_renewal = Instant::now() + (replication.renew_every / 5).max(Duration::from_millis(50));
                }
                Err(_) => {} // past valid_until: the top of the loop says it is lost
            }
        }
    }

    /// The leases this replica holds now, by its own stopwatch (`/metrics`): of the tasks it
    /// drives, and whether it holds the reconciler's. None without replication.
    pub(crate) fn leases_held(&self) -> (usize, bool) {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).values().filter(|t| t.holds_lease()).count();
        let reconciler =
            self.reconciler_lease.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(Held::is_valid);
        (tasks, reconciler)
    }

    /// Gives the lease up (the work under it is done), if this replica still holds it.
    pub(crate) async fn lease_release(&self, held: Held) {
        let Some(replication) = &self.config.replication else { return };
        let name = held.name().to_string();
        drop(held);
        if let Err(error) = self.store.lease_release(&name, &replication.replica_id).await {
            // It expires on its own.
            tracing::debug!(lease = %name, %error, "lease not released");
        }
    }

    /// Gives the lease back before its work is done (this replica is stopping, and nothing
    /// works under it any more): expired at once, so another replica takes it at its next
    /// look. Whether it was handed back (`false`: no longer this replica's, or the database
    /// could not be reached; it then expires on its own).
    pub(crate) async fn lease_hand_back(&self, held: Held) -> bool {
        let Some(replication) = &self.config.replication else { return false };
        let name = held.name().to_string();
        drop(held);
        match self.store.lease_hand_back(&name, &replication.replica_id).await {
            Ok(handed) => {
                tracing::debug!(lease = %name, handed, "lease handed back");
                handed
            }
            Err(error) => {
                tracing::warn!(lease = %name, %error, "lease not handed back; it expires on its own");
                false
            }
        }
    }
}

impl Engine {
    /// Gives the drivers the store's record of the instances of `group` (of every group with
    /// `None`) and of their load-balancer backends. Drivers that live in this process's memory
    /// (the simulated ones) take it as the truth: `rollscale up` rebuilds them so at start,
    /// and a replica that takes a task over does so for the task's group, whose instances
    /// another replica changed meanwhile. Real drivers ignore it.
    pub async fn adopt_recorded(&self, group: Option<&ScalingGroupId>) -> Result<(), StoreError> {
        let instances = self.store.instance_list(group).await?;
        let mut addresses = HashMap::new();
        let mut observations = Vec::with_capacity(instances.len());
        for instance in instances {
            let instance = instance.value;
            addresses.insert(instance.id.clone(), instance.address.clone());
            if instance.lifecycle_state == LifecycleState::Pending {
                continue; // the reconciler creates it
            }
            observations.push(InstanceObservation {
                id: instance.id.clone(),
                os: OsType::guess(&instance.image_id),
                image_id: instance.image_id,
                packages: instance.packages,
                containers: instance.containers,
                running: true,
                address: instance.address,
            });
        }
        self.fleet.adopt_recorded(observations);
        let mut by_lb: HashMap<LoadBalancerId, Vec<(InstanceId, String, u32)>> = HashMap::new();
        for backend in self.store.backend_list(None, None).await? {
            let address = match addresses.get(&backend.instance_id) {
                Some(address) => address.clone(),
                None if group.is_none() => String::new(),
                None => continue, // another group's
            };
            by_lb.entry(backend.load_balancer_id.clone()).or_default().push((
                backend.instance_id,
                address,
                backend.weight,
            ));
        }
        for (id, backends) in by_lb {
            self.lb.adopt_recorded(&id, backends);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The holder's side of a lease: renewed while held, lost when taken, and lost by the
    //! holder's own stopwatch when its renewals stop getting through, before the database lets
    //! another replica take it.

    use super::Replication;
    use crate::{Engine, EngineConfig};
    use rollscale_fleet::sim::{SimConfig, SimFleet, SimLbConfig, SimLoadBalancer};
    use rollscale_store::Store;
    use std::sync::Arc;
    use std::time::Duration;

    fn replication() -> Replication {
        Replication {
            replica_id: "r1".into(),
            lease_ttl: Duration::from_millis(600),
            renew_every: Duration::from_millis(100),
            poll_every: Duration::from_millis(100),
        }
    }

    async fn engine(store: Store) -> Arc<Engine> {
        let config = EngineConfig { replication: Some(replication()), ..EngineConfig::default() };
        let fleet = SimFleet::new(SimConfig::default());
        Engine::new(store, Arc::new(fleet), Arc::new(SimLoadBalancer::new(SimLbConfig::default())), config)
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("store");
        (dir, store)
    }

    #[tokio::test]
    async fn a_held_lease_is_renewed_and_lost_at_once_when_taken() {
        let (_dir, store) = store().await;
        let engine = engine(store.clone()).await;
        let held = engine.lease_hold(&replication(), "task/t").await.unwrap().expect("free");
        assert!(engine
            .lease_hold(&Replication { replica_id: "r2".into(), ..replication() }, "task/t")
            .await
            .unwrap()
            .is_none());
        // Renewed well past its time to live.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(held.is_valid());
        assert!(store.lease_get("task/t").await.unwrap().unwrap().generation > 5);
        // Taken from under it: lost at the next renewal.
        assert!(store.lease_release("task/t", "r1").await.unwrap());
        assert!(store.lease_take("task/t", "r2", Duration::from_secs(60)).await.unwrap());
        tokio::time::timeout(Duration::from_millis(500), held.lost()).await.expect("lost at the next renewal");
        assert!(!held.is_valid());
        assert_eq!(store.lease_get("task/t").await.unwrap().unwrap().owner, "r2");
        // Released when done: only by its owner.
        engine.lease_release(held).await;
        assert_eq!(store.lease_get("task/t").await.unwrap().unwrap().owner, "r2");
    }

    #[tokio::test]
    async fn a_lease_whose_renewals_hang_is_given_up_before_it_expires() {
        let (_dir, store) = store().await;
        // The take goes through; every call after it (the renewals) hangs, as with a database
        // that stopped answering.
        let (hanging, point) = store.crashing_at(1);
        let engine = engine(hanging).await;
        let replication = Replication { lease_ttl: Duration::from_millis(1500), ..replication() };
        let held = engine.lease_hold(&replication, "task/t").await.unwrap().expect("free");
        let taken = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(3), held.lost()).await.expect("given up");
        let after = taken.elapsed();
        assert!(point.hit(), "a renewal was attempted");
        assert!(!held.is_valid());
        // Two thirds of the time to live, before the database would let anyone take it.
        assert!(after >= Duration::from_millis(950) && after < Duration::from_millis(1500), "{after:?}");
        let lease = store.lease_get("task/t").await.unwrap().unwrap();
        assert!(store.database_now().await.unwrap() < lease.expires_at, "still not expired in the database");
    }
}
