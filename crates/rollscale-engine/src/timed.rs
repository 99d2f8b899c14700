//! The drivers as the engine calls them: each call of the [`Fleet`] and the [`LoadBalancer`]
//! the engine was given goes through a wrapper here that measures it ([`Metrics::driver_call`]:
//! its duration by operation, and its error's kind), at the engine's boundary, so no driver
//! knows of metrics. A call cut short (the engine halted, a lease lost) is not counted.

use crate::metrics::{DriverCall, Metrics};
use async_trait::async_trait;
use rollscale_core::domain::{ContainerSpec, HealthStatus};
use rollscale_core::ids::{InstanceId, LoadBalancerId};
use rollscale_core::params::{ContainerUpdateType, ScriptSpec};
use rollscale_fleet::{
    Fault, Fleet, FleetError, InstanceObservation, InstanceSpec, LoadBalancer, LocalImage, PackageOperation, RunId,
    ScriptOutcome, Sighting,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// A driver and the figures its calls go to.
pub(crate) struct Timed<D: ?Sized> {
    inner: Arc<D>,
    metrics: Arc<Metrics>,
}

impl<D: ?Sized> Timed<D> {
    pub(crate) fn new(inner: Arc<D>, metrics: Arc<Metrics>) -> Timed<D> {
        Timed { inner, metrics }
    }

    async fn time<T>(
        &self,
        call: DriverCall,
        work: impl Future<Output = Result<T, FleetError>>,
    ) -> Result<T, FleetError> {
        let started = Instant::now();
        let result = work.await;
        self.metrics.driver_call(call, started.elapsed(), result.as_ref().err());
        result
    }
}

#[async_trait]
impl Fleet for Timed<dyn Fleet> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn reachable(&self) -> Result<(), FleetError> {
        self.time(DriverCall::Reachable, self.inner.reachable()).await
    }

    async fn create_instance(&self, spec: &InstanceSpec) -> Result<InstanceObservation, FleetError> {
        self.time(DriverCall::CreateInstance, self.inner.create_instance(spec)).await
    }

    async fn remove_instance(&self, id: &InstanceId) -> Result<(), FleetError> {
        self.time(DriverCall::RemoveInstance, self.inner.remove_instance(id)).await
    }

    async fn observe(&self, id: &InstanceId) -> Result<Option<InstanceObservation>, FleetError> {
        self.time(DriverCall::Observe, self.inner.observe(id)).await
    }

    async fn replace_image(&self, id: &InstanceId, image_id: &str) -> Result<String, FleetError> {
        self.time(DriverCall::ReplaceImage, self.inner.replace_image(id, image_id)).await
    }

    async fn run_script(&self, id: &InstanceId, script: &ScriptSpec, run: &RunId) -> Result<ScriptOutcome, FleetError> {
        self.time(DriverCall::RunScript, self.inner.run_script(id, script, run)).await
    }

    async fn apply_package(
        &self,
        id: &InstanceId,
        operation: &PackageOperation,
        run: &RunId,
    ) -> Result<ScriptOutcome, FleetError> {
        self.time(DriverCall::ApplyPackage, self.inner.apply_package(id, operation, run)).await
    }

    async fn update_containers(
        &self,
        id: &InstanceId,
        update_type: ContainerUpdateType,
        containers: &[ContainerSpec],
    ) -> Result<String, FleetError> {
        self.time(DriverCall::UpdateContainers, self.inner.update_containers(id, update_type, containers)).await
    }

    async fn create_image(&self, id: &InstanceId, image_name: &str) -> Result<String, FleetError> {
        self.time(DriverCall::CreateImage, self.inner.create_image(id, image_name)).await
    }

    async fn list_images(&self) -> Result<Vec<LocalImage>, FleetError> {
        self.time(DriverCall::ListImages, self.inner.list_images()).await
    }

    async fn find_image(&self, reference: &str) -> Result<Option<LocalImage>, FleetError> {
        self.time(DriverCall::FindImage, self.inner.find_image(reference)).await
    }

    async fn find_image_named(&self, image_name: &str) -> Result<Option<String>, FleetError> {
        self.time(DriverCall::FindImageNamed, self.inner.find_image_named(image_name)).await
    }

    async fn health(&self, id: &InstanceId) -> Result<HealthStatus, FleetError> {
        self.time(DriverCall::Health, self.inner.health(id)).await
    }

    /// One look at many instances is one call (its errors are the instances', not counted).
    async fn look(&self, ids: &[InstanceId]) -> Vec<(InstanceId, Result<Sighting, FleetError>)> {
        let looks = self.time(DriverCall::Look, async { Ok(self.inner.look(ids).await) }).await;
        looks.unwrap_or_default()
    }

    async fn inject_fault(&self, id: &InstanceId, fault: Fault) -> Result<(), FleetError> {
        self.time(DriverCall::InjectFault, self.inner.inject_fault(id, fault)).await
    }

    fn adopt_recorded(&self, instances: Vec<InstanceObservation>) {
        self.inner.adopt_recorded(instances)
    }
}

#[async_trait]
impl LoadBalancer for Timed<dyn LoadBalancer> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn register(
        &self,
        lb: &LoadBalancerId,
        instance: &InstanceId,
        address: &str,
        weight: u32,
    ) -> Result<(), FleetError> {
        self.time(DriverCall::Register, self.inner.register(lb, instance, address, weight)).await
    }

    async fn deregister(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<(), FleetError> {
        self.time(DriverCall::Deregister, self.inner.deregister(lb, instance)).await
    }

    async fn set_weight(&self, lb: &LoadBalancerId, instance: &InstanceId, weight: u32) -> Result<(), FleetError> {
        self.time(DriverCall::SetWeight, self.inner.set_weight(lb, instance, weight)).await
    }

    async fn weight(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<Option<u32>, FleetError> {
        self.time(DriverCall::Weight, self.inner.weight(lb, instance)).await
    }

    async fn active_connections(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<u32, FleetError> {
        self.time(DriverCall::ActiveConnections, self.inner.active_connections(lb, instance)).await
    }

    async fn check_status(&self, lb: &LoadBalancerId) -> Result<Vec<(InstanceId, bool)>, FleetError> {
        self.time(DriverCall::CheckStatus, self.inner.check_status(lb)).await
    }

    fn adopt_recorded(&self, lb: &LoadBalancerId, backends: Vec<(InstanceId, String, u32)>) {
        self.inner.adopt_recorded(lb, backends)
    }
}
