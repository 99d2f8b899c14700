//! The simulated load balancer: backend registrations with weights, connections that drain
//! after a backend's weight drops to 0, and (with a fleet) health checks of the backends.

use super::SimFleet;
use crate::{FleetError, LoadBalancer};
use async_trait::async_trait;
use rollscale_core::domain::HealthStatus;
use rollscale_core::ids::{InstanceId, LoadBalancerId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// How the simulated load balancer behaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimLbConfig {
    /// Milliseconds a backend's connections take to drain once its weight is 0: they fall
    /// linearly from [`connections`](Self::connections) to 0 over this time. Default 0 (they
    /// are gone as soon as the weight is 0).
    pub drain_ms: u64,
    /// Connections a backend with a non-zero weight serves. Default 10.
    pub connections: u32,
    /// Real milliseconds every operation takes. Default 0.
    pub latency_ms: u64,
}

impl Default for SimLbConfig {
    fn default() -> Self {
        SimLbConfig { drain_ms: 0, connections: 10, latency_ms: 0 }
    }
}

/// How many times each operation was called, whatever its outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimLbCalls {
    pub register: u64,
    pub deregister: u64,
    pub set_weight: u64,
    pub weight: u64,
    pub active_connections: u64,
    pub check_status: u64,
}

/// One registered backend, as [`SimLoadBalancer::backends`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimBackend {
    pub instance_id: InstanceId,
    pub address: String,
    pub weight: u32,
}

#[derive(Clone, Debug)]
struct BackendState {
    address: String,
    weight: u32,
    /// When the weight last became 0 (`None` while it is not 0, or when the backend was
    /// adopted at weight 0).
    zero_since: Option<Instant>,
    /// Connections never drain (a long-lived client), for drain-timeout tests.
    stuck: bool,
}

#[derive(Default)]
struct LbState {
    backends: HashMap<LoadBalancerId, HashMap<InstanceId, BackendState>>,
    calls: SimLbCalls,
}

struct LbInner {
    config: SimLbConfig,
    state: Mutex<LbState>,
    /// The fleet whose instances' health the backends' checks read; `None`: nothing is checked.
    fleet: Mutex<Option<SimFleet>>,
}

/// The simulated load balancer. Cheap to clone; clones share state. Time is
/// [`tokio::time::Instant`], so tests with paused time can step through a drain.
#[derive(Clone)]
pub struct SimLoadBalancer {
    inner: Arc<LbInner>,
}

impl Default for SimLoadBalancer {
    fn default() -> Self {
        SimLoadBalancer::new(SimLbConfig::default())
    }
}

impl std::fmt::Debug for SimLoadBalancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimLoadBalancer").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

fn not_registered(lb: &LoadBalancerId, instance: &InstanceId) -> FleetError {
    FleetError::Failed(format!("instance {instance} is not registered with {lb}"))
}

/// Sets a backend's weight, starting its drain when the weight becomes 0 (a repeated 0 keeps
/// the drain where it is).
fn apply_weight(backend: &mut BackendState, weight: u32, now: Instant) {
    backend.weight = weight;
    if weight > 0 {
        backend.zero_since = None;
    } else if backend.zero_since.is_none() {
        backend.zero_since = Some(now);
    }
}

impl SimLoadBalancer {
    pub fn new(config: SimLbConfig) -> Self {
        SimLoadBalancer {
            inner: Arc::new(LbInner { config, state: Mutex::new(LbState::default()), fleet: Mutex::new(None) }),
        }
    }

    /// Checks each backend's health by `fleet`'s health of its instance, as a real load
    /// balancer's health check does (see the [module docs](super)): a backend whose instance is
    /// stopped, unhealthy or gone gets no traffic, whatever its weight. Clones share it.
    pub fn with_fleet(self, fleet: SimFleet) -> Self {
        *self.inner.fleet.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(fleet);
        self
    }

    fn state(&self) -> MutexGuard<'_, LbState> {
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fleet(&self) -> Option<SimFleet> {
        self.inner.fleet.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The health check of the instance's backend: `Some(passing)`, or `None` when nothing is
    /// checked (no fleet). Read before the balancer's own lock is taken.
    fn check_of(fleet: Option<&SimFleet>, instance: &InstanceId) -> Option<bool> {
        fleet.map(|fleet| fleet.health_snapshot(instance) == Some(HealthStatus::Healthy))
    }

    /// The backends of `lb` that get new traffic, sorted: a non-zero weight, and a passing
    /// health check (when checked).
    pub fn serving(&self, lb: &LoadBalancerId) -> Vec<InstanceId> {
        let fleet = self.fleet();
        self.backends(lb)
            .into_iter()
            .filter(|backend| backend.weight > 0 && Self::check_of(fleet.as_ref(), &backend.instance_id) != Some(false))
            .map(|backend| backend.instance_id)
            .collect()
    }

    async fn latency(&self) {
        if self.inner.config.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.inner.config.latency_ms)).await;
        }
    }

    /// Loads `lb`'s backends as the store knows them, replacing any registration of the same
    /// instance (the store is the truth: after a restart the balancer is rebuilt from it, so
    /// that `set_weight` finds the backends the engine knows of). A backend adopted at weight 0
    /// has already drained.
    pub fn adopt(&self, lb: &LoadBalancerId, backends: Vec<SimBackend>) {
        let mut state = self.state();
        let registered = state.backends.entry(lb.clone()).or_default();
        for backend in backends {
            // `Instant` cannot go before the runtime's start: "drained long ago" is written as
            // `None` plus weight 0 and read as drained (see `connections_of`).
            registered.insert(
                backend.instance_id,
                BackendState { address: backend.address, weight: backend.weight, zero_since: None, stuck: false },
            );
        }
    }

    /// The calls made so far.
    pub fn calls(&self) -> SimLbCalls {
        self.state().calls
    }

    /// The backends registered with `lb`, sorted by instance id.
    pub fn backends(&self, lb: &LoadBalancerId) -> Vec<SimBackend> {
        let state = self.state();
        let mut backends: Vec<SimBackend> = state
            .backends
            .get(lb)
            .into_iter()
            .flatten()
            .map(|(instance_id, backend)| SimBackend {
                instance_id: instance_id.clone(),
                address: backend.address.clone(),
                weight: backend.weight,
            })
            .collect();
        backends.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        backends
    }

    /// Makes the backend's connections never drain (or drain again, counting from when its
    /// weight became 0). Returns whether it is registered.
    pub fn set_stuck(&self, lb: &LoadBalancerId, instance: &InstanceId, stuck: bool) -> bool {
        let mut state = self.state();
        match state.backends.get_mut(lb).and_then(|backends| backends.get_mut(instance)) {
            Some(backend) => {
                backend.stuck = stuck;
                true
            }
            None => false,
        }
    }

    fn connections_of(&self, backend: &BackendState, now: Instant) -> u32 {
        let full = self.inner.config.connections;
        if backend.stuck || backend.weight > 0 {
            return full;
        }
        // Weight 0 without a start: adopted at 0, drained long ago.
        let Some(zero_since) = backend.zero_since else {
            return 0;
        };
        let drain_ms = u128::from(self.inner.config.drain_ms);
        let elapsed_ms = now.saturating_duration_since(zero_since).as_millis();
        if elapsed_ms >= drain_ms {
            return 0;
        }
        // Linear fall, rounded up: at least 1 until the drain is over.
        let remaining = u128::from(full) * (drain_ms - elapsed_ms);
        u32::try_from(remaining.div_ceil(drain_ms)).unwrap_or(full)
    }
}

#[async_trait]
impl LoadBalancer for SimLoadBalancer {
    fn adopt_recorded(&self, lb: &LoadBalancerId, backends: Vec<(InstanceId, String, u32)>) {
        let backends =
            backends.into_iter().map(|(instance_id, address, weight)| SimBackend { instance_id, address, weight });
        self.adopt(lb, backends.collect());
    }

    fn name(&self) -> &'static str {
        "sim"
    }

    async fn register(
        &self,
        lb: &LoadBalancerId,
        instance: &InstanceId,
        address: &str,
        weight: u32,
    ) -> Result<(), FleetError> {
        self.latency().await;
        let now = Instant::now();
        let mut state = self.state();
        state.calls.register += 1;
        let backend = state
            .backends
            .entry(lb.clone())
            .or_default()
            .entry(instance.clone())
            .or_insert_with(|| BackendState { address: String::new(), weight, zero_since: None, stuck: false });
        backend.address = address.to_string();
        apply_weight(backend, weight, now);
        Ok(())
    }

    async fn deregister(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<(), FleetError> {
        self.latency().await;
        let mut state = self.state();
        state.calls.deregister += 1;
        if let Some(backends) = state.backends.get_mut(lb) {
            backends.remove(instance);
            if backends.is_empty() {
                state.backends.remove(lb);
            }
        }
        Ok(())
    }

    async fn set_weight(&self, lb: &LoadBalancerId, instance: &InstanceId, weight: u32) -> Result<(), FleetError> {
        self.latency().await;
        let now = Instant::now();
        let mut state = self.state();
        state.calls.set_weight += 1;
        match state.backends.get_mut(lb).and_then(|backends| backends.get_mut(instance)) {
            Some(backend) => {
                apply_weight(backend, weight, now);
                Ok(())
            }
            None => Err(not_registered(lb, instance)),
        }
    }

    async fn weight(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<Option<u32>, FleetError> {
        self.latency().await;
        let mut state = self.state();
        state.calls.weight += 1;
        Ok(state.backends.get(lb).and_then(|backends| backends.get(instance)).map(|backend| backend.weight))
    }

    /// A backend with a non-zero weight serves [`SimLbConfig::connections`]; once its weight is
    /// 0 they fall to 0 over [`SimLbConfig::drain_ms`]. An unregistered backend serves none, nor
    /// does one that fails its health check.
    async fn active_connections(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<u32, FleetError> {
        self.latency().await;
        let now = Instant::now();
        let check = Self::check_of(self.fleet().as_ref(), instance);
        let mut state = self.state();
        state.calls.active_connections += 1;
        let backend = state.backends.get(lb).and_then(|backends| backends.get(instance));
        Ok(match (backend, check) {
            (None, _) | (Some(_), Some(false)) => 0,
            (Some(backend), _) => self.connections_of(backend, now),
        })
    }

    /// Each registered backend's health check, by instance id (none without a fleet).
    async fn check_status(&self, lb: &LoadBalancerId) -> Result<Vec<(InstanceId, bool)>, FleetError> {
        self.latency().await;
        self.state().calls.check_status += 1;
        let Some(fleet) = self.fleet() else { return Ok(Vec::new()) };
        let backends = self.backends(lb);
        Ok(backends
            .into_iter()
            .map(|backend| {
                let passing = fleet.health_snapshot(&backend.instance_id) == Some(HealthStatus::Healthy);
                (backend.instance_id, passing)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(weight: u32, zero_since: Option<Instant>) -> BackendState {
        BackendState { address: "sim://i-a".into(), weight, zero_since, stuck: false }
    }

    #[test]
    fn connections_fall_linearly_over_the_drain() {
        let lb = SimLoadBalancer::new(SimLbConfig { drain_ms: 1000, connections: 10, latency_ms: 0 });
        let start = Instant::now();
        assert_eq!(lb.connections_of(&backend(100, None), start), 10);
        let draining = backend(0, Some(start));
        assert_eq!(lb.connections_of(&draining, start), 10);
        assert_eq!(lb.connections_of(&draining, start + Duration::from_millis(500)), 5);
        assert_eq!(lb.connections_of(&draining, start + Duration::from_millis(999)), 1);
        assert_eq!(lb.connections_of(&draining, start + Duration::from_millis(1000)), 0);
        let stuck = BackendState { stuck: true, ..draining };
        assert_eq!(lb.connections_of(&stuck, start + Duration::from_secs(60)), 10);
    }

    #[test]
    fn without_a_drain_time_connections_go_at_once() {
        let lb = SimLoadBalancer::default();
        let start = Instant::now();
        assert_eq!(lb.connections_of(&backend(0, Some(start)), start), 0);
    }

    #[test]
    fn a_repeated_zero_weight_keeps_the_drain_going() {
        let start = Instant::now();
        let mut state = backend(5, None);
        apply_weight(&mut state, 0, start);
        apply_weight(&mut state, 0, start + Duration::from_secs(1));
        assert_eq!(state.zero_since, Some(start));
        apply_weight(&mut state, 3, start + Duration::from_secs(2));
        assert_eq!(state.zero_since, None);
        assert_eq!(state.weight, 3);
    }
}
