//! The engine: it performs what `rollscale-core` decides, through the drivers, and records
//! every outcome in the store before the next step acts.
//!
//! - [`runner`]: drives each rolling-update task and its instances' steps; resumes every
//!   unfinished task at start.
//! - [`reconcile`]: keeps each scaling group at its desired capacity.
//! - [`health`]: the health checker: observes every instance, replaces unhealthy ones.
//! - [`image_tasks`]: the image update tasks' scheduler and firings.
//! - [`alerts`]: alert rules, and the sender that delivers their events to webhooks.
//! - [`metrics`]: the figures of `/metrics`, recorded where the work happens; the drivers'
//!   calls are measured at the engine's boundary (`timed`: every call of the fleet and the load
//!   balancer the engine was given goes through it).
//! - [`service`]: the commands and queries that the API and CLI call; the only way in. They are
//!   written by resource in `app/` (groups, configurations, instances, images, packages, load
//!   balancers, rolling updates, events, image tasks, templates, access, alerts), one
//!   `impl Service` block each.
//! - `cas`: the one compare-and-swap loop (`Engine::modify`) behind each resource's
//!   `<resource>_modify`.
//!
//! Architecture invariants: `Engine`'s fields are private; no module names, by path, a module
//! that names it back (`tests/module_graph.rs`).
//!
//! Architecture invariant: the engine knows nothing of HTTP. It holds no state that the store
//! does not also hold, except caches and the set of tasks it is driving right now.

pub mod adopt;
mod app;
mod cas;
pub mod error;
pub mod health;
pub mod idempotency;
mod journal;
pub mod leases;
pub mod metrics;
pub mod ops;
pub mod reconcile;
pub mod runner;
pub mod service;
pub mod shutdown;
mod timed;

/// The resources of `app` that other crates name by their own paths.
pub use app::{access, alerts, image_tasks, templates};
pub use error::ServiceError;
pub use leases::Replication;
pub use service::Service;

use rollscale_core::domain::Millis;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
}

/// Where the image update tasks' scheduler reads the time: the system clock, or a clock a
/// test sets ([`ManualClock`]), so firings hours apart can be driven without waiting.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Millis;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        now_millis()
    }
}

/// A clock that stands still until it is set or advanced (tests).
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn new(now: Millis) -> ManualClock {
        ManualClock(std::sync::atomic::AtomicI64::new(now))
    }

    pub fn set(&self, now: Millis) {
        self.0.store(now, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn advance(&self, by: Millis) {
        self.0.fetch_add(by, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// 80 random bits for a new identifier.
pub fn random_bits() -> u128 {
    rand::random::<u128>()
}

use rollscale_core::ids::{ExecutionId, ScalingGroupId};
use rollscale_fleet::{Fleet, LoadBalancer};
use rollscale_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tunables of the engine. The defaults suit real backends; tests shorten them.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How long an instance may take to report Healthy after a change before it fails.
    pub health_timeout: Duration,
    pub health_poll: Duration,
    /// How often an unknown outcome (backend unavailable) is re-observed before the step fails.
    pub transient_retries: u32,
    /// Pause between those re-observations.
    pub transient_backoff: Duration,
    /// How often the reconciler checks every group's capacity.
    pub reconcile_interval: Duration,
    /// How often the health checker looks at every instance (R16, R17). Default 5 s.
    pub health_check_interval: Duration,
    /// Default weight of an instance registered with a load balancer.
    pub default_weight: u32,
    /// A ClientToken claim not refreshed for this long belongs to a request that died, and
    /// is taken over ([`idempotency::STALE_CLAIM`]). The same on every replica.
    pub claim_stale_after: Duration,
    /// How often a request refreshes its claim while its operation runs
    /// ([`idempotency::CLAIM_HEARTBEAT`]); well under `claim_stale_after`.
    pub claim_heartbeat: Duration,
    /// How often the image update tasks' scheduler looks for due firings.
    pub image_task_interval: Duration,
    /// The time image update schedules are computed and fired by.
    pub clock: Arc<dyn Clock>,
    /// How often a task's driver reads its task again when nothing woke it: how soon it sees
    /// an operator action written by another replica (in this one, the action wakes it).
    pub task_poll: Duration,
    /// Several replicas on one (PostgreSQL) store: each task is driven, and the reconciler
    /// run, under a lease ([`leases`]). `None`: this engine is alone on its store (SQLite).
    pub replication: Option<Replication>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            health_timeout: Duration::from_secs(120),
            health_poll: Duration::from_millis(100),
            transient_retries: 5,
            transient_backoff: Duration::from_millis(200),
            reconcile_interval: Duration::from_secs(2),
            health_check_interval: Duration::from_secs(5),
            default_weight: 100,
            claim_stale_after: idempotency::STALE_CLAIM,
            claim_heartbeat: idempotency::CLAIM_HEARTBEAT,
            image_task_interval: Duration::from_secs(1),
            clock: Arc::new(SystemClock),
            task_poll: Duration::from_secs(1),
            replication: None,
        }
    }
}

/// What the engine acts with: the store, the drivers, and the tasks being driven now.
///
/// Its fields are private: other crates reach the engine through its operations and the
/// [`Service`]; [`Engine::store`] and [`Engine::fleet`] are for start-up and for tests that
/// look behind them.
pub struct Engine {
    store: Store,
    fleet: Arc<dyn Fleet>,
    lb: Arc<dyn LoadBalancer>,
    config: EngineConfig,
    tasks: Mutex<HashMap<ExecutionId, Arc<runner::TaskHandle>>>,
    spawned: Mutex<Spawned>,
    /// Wakes the reconciler's loop before its interval is up (a group changed).
    reconcile_wake: tokio::sync::Notify,
    /// One reconcile pass at a time per group (see `Service::reconcile_group`).
    group_passes: Mutex<HashMap<ScalingGroupId, Arc<tokio::sync::Mutex<()>>>>,
    /// The image update firings being performed now (one worker each).
    image_firings: Mutex<std::collections::HashSet<ExecutionId>>,
    /// Wakes the image update scheduler before its interval is up.
    image_wake: tokio::sync::Notify,
    /// Writes that lost a compare-and-swap in the drivers and workers (see [`Engine::cas_conflicts`]).
    conflicts: std::sync::atomic::AtomicU64,
    /// How many times the lease poller has looked for tasks to take over (see
    /// [`Engine::lease_looks`]).
    lease_looks: std::sync::atomic::AtomicU64,
    /// The reconciler's lease while this replica holds it (replication only).
    reconciler_lease: Mutex<Option<leases::Held>>,
    /// Whether [`Engine::shut_down`] began, and the background work running now (see
    /// [`Engine::busy`]).
    stop: tokio::sync::watch::Sender<shutdown::Stopping>,
    /// The figures of `/metrics` ([`Engine::metrics`]).
    metrics: Arc<metrics::Metrics>,
}

/// The engine's tasks and workers, for [`Engine::halt`]. Finished ones are dropped whenever
/// the list has doubled since the last sweep, so tracking costs O(1) amortized.
#[derive(Default)]
struct Spawned {
    handles: Vec<tokio::task::AbortHandle>,
    sweep_at: usize,
}

impl Engine {
    /// The engine over `store`, acting through `fleet` and `lb`, each of whose calls is
    /// measured (`timed`).
    pub fn new(store: Store, fleet: Arc<dyn Fleet>, lb: Arc<dyn LoadBalancer>, config: EngineConfig) -> Arc<Engine> {
        let metrics = Arc::new(metrics::Metrics::default());
        Arc::new(Engine {
            store,
            fleet: Arc::new(timed::Timed::new(fleet, metrics.clone())),
            lb: Arc::new(timed::Timed::new(lb, metrics.clone())),
            config,
            tasks: Mutex::new(HashMap::new()),
            spawned: Mutex::new(Spawned::default()),
            reconcile_wake: tokio::sync::Notify::new(),
            group_passes: Mutex::new(HashMap::new()),
            image_firings: Mutex::new(std::collections::HashSet::new()),
            image_wake: tokio::sync::Notify::new(),
            conflicts: std::sync::atomic::AtomicU64::new(0),
            lease_looks: std::sync::atomic::AtomicU64::new(0),
            reconciler_lease: Mutex::new(None),
            stop: tokio::sync::watch::Sender::new(shutdown::Stopping::default()),
            metrics,
        })
    }

    /// The store the engine records everything in: for `rollscale up`'s start-up (before the
    /// engine runs) and for tests that read or arrange rows behind the service.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The instances' driver: for tests that look at the fleet behind the engine.
    pub fn fleet(&self) -> &Arc<dyn Fleet> {
        &self.fleet
    }

    /// The figures this engine keeps for `/metrics`: the server records its API calls here
    /// too. `Service::metrics` reads them with those computed when asked for.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// Asks the reconciler (`Service::spawn_reconciler`) for a pass now rather than at its next
    /// interval; returns at once. Without a running reconciler it does nothing.
    pub fn wake_reconciler(&self) {
        self.reconcile_wake.notify_one();
    }

    /// The lock that makes a group's reconcile passes one at a time.
    pub(crate) fn group_pass_lock(&self, id: &ScalingGroupId) -> Arc<tokio::sync::Mutex<()>> {
        let mut passes = self.group_passes.lock().unwrap_or_else(|e| e.into_inner());
        passes.entry(id.clone()).or_default().clone()
    }

    /// How many writes of this engine's task drivers and instance workers found their row moved
    /// on since it started (a compare-and-swap conflict: another writer, in this process or
    /// another replica, moved first; the write is decided again from a fresh read). With
    /// leases, a replica that drives a task should see none from another replica; tests read
    /// this to check that the second line of defence was not needed, or held.
    pub fn cas_conflicts(&self) -> u64 {
        self.conflicts.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn count_conflict(&self, what: &str, id: &ExecutionId) {
        let n = self.conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        tracing::debug!(%what, execution = %id, conflicts = n, "compare-and-swap conflict; reading again");
    }

    /// How many times this replica's lease poller (`Engine::spawn_lease_poller`) has looked
    /// for tasks without a live lease and taken over those it found at the look before: a
    /// task leased by no one is driven here by the end of the second look after. Tests wait
    /// for it to have looked, rather than for time to pass.
    pub fn lease_looks(&self) -> u64 {
        self.lease_looks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// This engine's replica id, when it shares its store with other replicas.
    pub fn replica_id(&self) -> Option<&str> {
        self.config.replication.as_ref().map(|r| r.replica_id.as_str())
    }

    /// Stops every task and worker of this engine at its next await point, as a crash would,
    /// leaving the store as it is. Used by tests that restart the engine mid-task, and by
    /// [`Engine::shut_down`] for what is left at the end of its grace.
    pub fn halt(&self) {
        for handle in self.spawned.lock().unwrap_or_else(|e| e.into_inner()).handles.drain(..) {
            handle.abort();
        }
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.image_firings.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.reconciler_lease.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    pub(crate) fn track(&self, handle: tokio::task::AbortHandle) {
        let mut spawned = self.spawned.lock().unwrap_or_else(|e| e.into_inner());
        if spawned.handles.len() >= spawned.sweep_at {
            spawned.handles.retain(|h| !h.is_finished());
            spawned.sweep_at = (spawned.handles.len() * 2).max(64);
        }
        spawned.handles.push(handle);
    }
}
