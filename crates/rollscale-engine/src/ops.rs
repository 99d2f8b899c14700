//! Operations on one instance that both the rolling-update steps and the ESS actions use:
//! Standby with load-balancer weights, protection, and compare-and-swap updates.
//!
//! Each is idempotent: the store records the intent first (the remembered weights, the new
//! lifecycle state), then the driver is told; a redo finds the intent and repeats the call.

use crate::error::instance_not_found;
use crate::journal::{Journal, StepMemory};
use crate::{Engine, ServiceError};
use rollscale_core::domain::{Instance, LifecycleState};
use rollscale_core::ids::{InstanceId, LoadBalancerId};
use rollscale_fleet::FleetError;
use rollscale_store::{StoreError, Versioned};
use std::time::{Duration, Instant};

impl Engine {
    /// Changes an instance with `change`, retrying on a concurrent write. Returns the instance
    /// as written, or `None` when it does not exist.
    pub async fn instance_modify(
        &self,
        id: &InstanceId,
        change: impl Fn(&mut Instance),
    ) -> Result<Option<Instance>, ServiceError> {
        Ok(self.instance_modify_from(id, None, None, change).await?.map(|instance| instance.value))
    }

    /// [`Engine::instance_modify`] starting from `read`, a copy of the instance the caller
    /// read or wrote earlier, instead of reading it now. The write compares the copy's
    /// generation, so a stale copy costs a conflict and a fresh read, never a lost update; and
    /// a copy that `change` leaves as it is proves nothing, so that case reads afresh too.
    /// Returns the instance as written (or as read, when there was nothing to change). With a
    /// `journal` (a rolling-update worker's), the write is committed with other workers'.
    pub(crate) async fn instance_modify_from(
        &self,
        id: &InstanceId,
        mut read: Option<Versioned<Instance>>,
        journal: Option<&Journal>,
        change: impl Fn(&mut Instance),
    ) -> Result<Option<Versioned<Instance>>, ServiceError> {
        loop {
            let (current, fresh) = match read.take() {
                Some(current) => (current, false),
                None => match self.store.instance_get(id).await? {
                    Some(current) => (current, true),
                    None => return Ok(None),
                },
            };
            let mut next = current.value.clone();
            change(&mut next);
            if next == current.value {
                if fresh {
                    return Ok(Some(current));
                }
                continue;
            }
            match self.instance_write(journal, &next, current.generation).await {
                Ok(generation) => return Ok(Some(Versioned { value: next, generation })),
                Err(StoreError::Conflict { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Puts the instance in Standby: each load balancer's weight goes to 0, the old one
    /// remembered. Returns the remembered weights.
    pub async fn enter_standby(&self, id: &InstanceId) -> Result<Vec<(LoadBalancerId, u32)>, ServiceError> {
        self.standby_with(id, true, &mut StepMemory::default()).await
    }

    /// [`Engine::enter_standby`] (`enter`) or [`Engine::exit_standby`] with `memory`: a copy of
    /// the instance from an earlier step to start from (see [`Engine::instance_modify_from`]),
    /// and the journal to write through; it is left holding the instance as written, and none
    /// after an error. Entering sets every load balancer's weight to 0, the old one remembered;
    /// leaving restores the remembered weights. Returns those weights.
    pub(crate) async fn standby_with(
        &self,
        id: &InstanceId,
        enter: bool,
        memory: &mut StepMemory,
    ) -> Result<Vec<(LoadBalancerId, u32)>, ServiceError> {
        let read = memory.instance.take();
        let weights = match enter {
            true => self.store.backend_zero_weights(id).await?,
            false => self.store.backend_restore_weights(id).await?,
        };
        for (lb, weight) in &weights {
            let weight = if enter { 0 } else { *weight };
            self.lb_call(|| self.lb.set_weight(lb, id, weight)).await?;
        }
        self.instance_modify_remembered(id, read, memory, |instance| {
            instance.lifecycle_state = match (instance.lifecycle_state, enter) {
                (_, true) => LifecycleState::Standby,
                (LifecycleState::Standby, false) => LifecycleState::InService,
                (state, false) => state,
            }
        })
        .await?;
        Ok(weights)
    }

    /// Waits until no load balancer sends the instance connections, or `timeout` passes.
    pub async fn drain(&self, id: &InstanceId, timeout: Duration) -> Result<(), ServiceError> {
        self.drain_with(id, async { Ok(timeout) }).await
    }

    /// [`Engine::drain`] with a timeout that is only looked up when a load balancer still
    /// reports connections; it counts from the start of the drain either way.
    pub(crate) async fn drain_with(
        &self,
        id: &InstanceId,
        timeout: impl std::future::Future<Output = Result<Duration, ServiceError>>,
    ) -> Result<(), ServiceError> {
        let backends = self.store.backend_list(None, Some(id)).await?;
        let started = Instant::now();
        let mut timeout = Some(timeout);
        let mut deadline = None;
        for backend in backends {
            loop {
                let connections = self.lb_call(|| self.lb.active_connections(&backend.load_balancer_id, id)).await?;
                if connections == 0 {
                    break;
                }
                let until = match (deadline, timeout.take()) {
                    (Some(until), _) => until,
                    (None, Some(timeout)) => *deadline.insert(started + timeout.await?),
                    (None, None) => started,
                };
                if Instant::now() >= until {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Takes the instance out of Standby: the remembered weights come back.
    pub async fn exit_standby(&self, id: &InstanceId) -> Result<Vec<(LoadBalancerId, u32)>, ServiceError> {
        self.standby_with(id, false, &mut StepMemory::default()).await
    }

    /// Points the instance's load-balancer registrations at `address`, each at the weight the
    /// store has for it (0 while in Standby): a change moved the instance. Nothing to do for
    /// an empty address or one that did not change.
    pub(crate) async fn follow_address(&self, instance: &Instance, address: &str) -> Result<(), ServiceError> {
        if address.is_empty() || address == instance.address {
            return Ok(());
        }
        tracing::warn!(instance_id = %instance.id, from = %instance.address, to = %address, "the instance moved");
        for backend in self.store.backend_list(None, Some(&instance.id)).await? {
            let lb = &backend.load_balancer_id;
            self.lb_call(|| self.lb.register(lb, &instance.id, address, backend.weight)).await?;
        }
        Ok(())
    }

    /// Sets or clears protection: a protected instance is `Protected` instead of `InService`.
    pub async fn set_protected(&self, id: &InstanceId, protected: bool) -> Result<(), ServiceError> {
        self.set_protected_with(id, protected, &mut StepMemory::default()).await
    }

    /// [`Engine::set_protected`] with `memory`, as [`Engine::standby_with`].
    pub(crate) async fn set_protected_with(
        &self,
        id: &InstanceId,
        protected: bool,
        memory: &mut StepMemory,
    ) -> Result<(), ServiceError> {
        let read = memory.instance.take();
        self.instance_modify_remembered(id, read, memory, |instance| {
            instance.lifecycle_state = match (instance.lifecycle_state, protected) {
                (LifecycleState::InService, true) => LifecycleState::Protected,
                (LifecycleState::Protected, false) => LifecycleState::InService,
                (state, _) => state,
            }
        })
        .await
    }

    /// [`Engine::instance_modify_from`] from `read` (taken from `memory` by the caller before
    /// it acted), through `memory`'s journal, refused when the instance does not exist; leaves
    /// `memory` holding the instance as written.
    async fn instance_modify_remembered(
        &self,
        id: &InstanceId,
        read: Option<Versioned<Instance>>,
        memory: &mut StepMemory,
        change: impl Fn(&mut Instance),
    ) -> Result<(), ServiceError> {
        let written = self
            .instance_modify_from(id, read, memory.journal.as_ref(), change)
            .await?
            .ok_or_else(|| instance_not_found(id))?;
        memory.instance = Some(written);
        Ok(())
    }

    /// Calls the load balancer, re-trying while its outcome is unknown.
    async fn lb_call<T, F, Fut>(&self, call: F) -> Result<T, ServiceError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, FleetError>>,
    {
        self.retry_unknown(call).await.map_err(ServiceError::from)
    }

    /// Calls a driver, re-trying while its outcome is unknown (`Unavailable`; the calls are
    /// idempotent), up to [`EngineConfig::transient_retries`](crate::EngineConfig) times.
    pub(crate) async fn retry_unknown<T, F, Fut>(&self, call: F) -> Result<T, FleetError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, FleetError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Err(FleetError::Unavailable(_)) if attempt < self.config.transient_retries => {
                    attempt += 1;
                    tokio::time::sleep(self.config.transient_backoff).await;
                }
                other => return other,
            }
        }
    }
}
