//! The [`Service`] by resource, the way omicron's nexus has `app/<resource>.rs`: each module
//! holds the commands and queries of one resource in an `impl Service` block of its own. Checks
//! come first and change nothing when they refuse (R3); then the store is written; then the
//! engine is told. `crate::service` re-exports what other crates name.
//!
//! The service takes typed values only: ids are `rollscale_core::ids` types (a query's filter
//! an `IdFilter` or a list of ids), enums are enums. The server reads a client's text into them,
//! once for both APIs; no id a client gave is parsed here.

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
mod metrics;
mod packages;
mod rolling_updates;
pub mod templates;

pub use configurations::NewConfiguration;
pub(crate) use groups::set_suspended;
pub use groups::{GroupChanges, NewGroup};
pub use rolling_updates::{is_settled, Notification, TaskInstance};

use crate::{Engine, ServiceError};
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

    /// Whether the service can serve (the readiness probe, `/readyz`): its store answers a
    /// trivial query (migrations ran before it opened), then its fleet answers
    /// (`Fleet::reachable`).
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.store().ping().await.map_err(ServiceError::Store)?;
        self.engine.fleet.reachable().await.map_err(ServiceError::Fleet)
    }
}
