//! The [`Service`] by resource, the way omicron's nexus has `app/<resource>.rs`: each module
//! holds the commands and queries of one resource in an `impl Service` block of its own. Checks
//! come first and change nothing when they refuse (R3); then the store is written; then the
//! engine is told. `crate::service` re-exports what other crates name.

pub mod access;
mod activities;
pub mod alerts;
mod configurations;
mod events;
mod groups;
pub mod image_tasks;
mod images;
mod instances;
mod load_balancers;
mod packages;
mod rolling_updates;
pub mod templates;

pub use configurations::NewConfiguration;
pub(crate) use groups::set_suspended;
pub use groups::{GroupChanges, NewGroup};
pub use rolling_updates::{is_settled, Notification};

use crate::error::{execution_not_found, group_not_found};
use crate::{Engine, ServiceError};
use rollscale_core::ids::{ExecutionId, ScalingGroupId};
use std::sync::Arc;

/// The handle the API layers hold.
#[derive(Clone)]
pub struct Service {
    pub engine: Arc<Engine>,
}

impl Service {
    pub fn new(engine: Arc<Engine>) -> Service {
        Service { engine }
    }

    fn store(&self) -> &rollscale_store::Store {
        &self.engine.store
    }

    /// Whether the service can serve: its store answers a trivial query (the readiness
    /// probe, `/readyz`).
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.store().ping().await.map_err(ServiceError::Store)
    }
}

fn parse_group_id(text: &str) -> Result<ScalingGroupId, ServiceError> {
    ScalingGroupId::parse(text).ok_or_else(|| group_not_found(text))
}

fn parse_execution_id(text: &str) -> Result<ExecutionId, ServiceError> {
    ExecutionId::parse(text).ok_or_else(|| execution_not_found(text))
}
