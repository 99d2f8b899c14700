//! The compare-and-swap loop that every `<resource>_modify` helper is made of (`group_modify`,
//! `configuration_modify`, `task_modify`, `work_modify`, `template_modify`,
//! `image_execution_modify`; `Engine::instance_modify` in `ops.rs` is the instance's, with a
//! journal and a remembered copy to start from): read the row, let the change make the next
//! value from it (or refuse, writing nothing), write it only if the row is still at the
//! generation read, and on a conflict start again from a fresh read. A change that leaves the
//! value as it was writes nothing.

use crate::{now_millis, Engine, ServiceError};
use rollscale_core::domain::{LaunchTemplate, ScalingConfiguration, ScalingGroup};
use rollscale_core::ids::{ExecutionId, LaunchTemplateId, ScalingConfigurationId, ScalingGroupId};
use rollscale_core::image_task::ImageUpdateExecution;
use rollscale_core::task::{InstanceWork, TaskState};
use rollscale_store::{StoreError, Versioned};
use std::future::Future;

/// A kind of row that is changed by compare-and-swap: how one is read by its id and written
/// at a generation (returning the new one).
pub(crate) trait Row: Clone + PartialEq + Send + Sync + Sized {
    type Id: ?Sized + Sync;

    fn read(engine: &Engine, id: &Self::Id)
        -> impl Future<Output = Result<Option<Versioned<Self>>, StoreError>> + Send;

    fn write(engine: &Engine, value: &Self, generation: i64) -> impl Future<Output = Result<i64, StoreError>> + Send;
}

impl Engine {
    /// Changes the row `id` with `change`, retrying from a fresh read whenever another writer
    /// moved first. `change` may refuse (its error is returned, nothing is written). Returns
    /// the row as written (or as read, when `change` left it as it was), or `None` when it does
    /// not exist.
    ///
    /// `change` takes the value and gives back the next one, so that its future holds the
    /// value rather than a borrow of it: an async closure over `&mut T` makes a future that
    /// the compiler cannot prove `Send` for every lifetime, which the servers' handlers need.
    pub(crate) async fn modify<T: Row, Fut>(
        &self,
        id: &T::Id,
        mut change: impl FnMut(T) -> Fut,
    ) -> Result<Option<Versioned<T>>, ServiceError>
    where
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        loop {
            let Some(current) = T::read(self, id).await? else { return Ok(None) };
            let next = change(current.value.clone()).await?;
            if next == current.value {
                return Ok(Some(current));
            }
            match T::write(self, &next, current.generation).await {
                Ok(generation) => return Ok(Some(Versioned { value: next, generation })),
                Err(StoreError::Conflict { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }
}

impl Row for ScalingGroup {
    type Id = ScalingGroupId;

    fn read(
        engine: &Engine,
        id: &ScalingGroupId,
    ) -> impl Future<Output = Result<Option<Versioned<Self>>, StoreError>> + Send {
        engine.store.group_get(id)
    }

    fn write(engine: &Engine, value: &Self, generation: i64) -> impl Future<Output = Result<i64, StoreError>> + Send {
        engine.store.group_update(value, generation)
    }
}

impl Row for ScalingConfiguration {
    type Id = ScalingConfigurationId;

    fn read(
        engine: &Engine,
        id: &ScalingConfigurationId,
    ) -> impl Future<Output = Result<Option<Versioned<Self>>, StoreError>> + Send {
        engine.store.configuration_get(id)
    }

    fn write(engine: &Engine, value: &Self, generation: i64) -> impl Future<Output = Result<i64, StoreError>> + Send {
        engine.store.configuration_update(value, generation)
    }
}

impl Row for TaskState {
    type Id = ExecutionId;

    fn read(
        engine: &Engine,
        id: &ExecutionId,
    ) -> impl Future<Output = Result<Option<Versioned<Self>>, StoreError>> + Send {
        engine.store.task_get(id)
    }

    fn write(engine: &Engine, value: &Self, generation: i64) -> impl Future<Output = Result<i64, StoreError>> + Send {
        engine.store.task_update(value, generation, now_millis())
    }
}

impl Row for InstanceWork {
    type Id = ExecutionId;

    async fn read(engine: &Engine, id: &ExecutionId) -> Result<Option<Versioned<Self>>, StoreError> {
        Ok(engine.store.work_get(id).await?.map(|(_, work)| work))
    }

    fn write(engine: &Engine, value: &Self, generation: i64) -> impl Future<Output = Result<i64, StoreError>> + Send {
        engine.store.work_update(value, generation, now_millis())
    }
}

impl Row for LaunchTemplate {
    type Id = LaunchTemplateId;

    fn read(
        engine: &Engine,
        id: &LaunchTemplateId,
    ) -> impl Future<Output = Result<Option<Versioned<Self>>, StoreError>> + Send {
        engine.store.template_get(id)
    }

    fn write(engine: &Engine, value: &Self, generation: i64) -> impl Future<Output = Result<i64, StoreError>> + Send {
        engine.store.template_update(value, generation)
    }
}

/// Image update executions are written at the engine's clock (`EngineConfig::clock`), the
/// time their schedules are computed by.
impl Row for ImageUpdateExecution {
    type Id = ExecutionId;

    fn read(
        engine: &Engine,
        id: &ExecutionId,
    ) -> impl Future<Output = Result<Option<Versioned<Self>>, StoreError>> + Send {
        engine.store.image_execution_get(id)
    }

    fn write(engine: &Engine, value: &Self, generation: i64) -> impl Future<Output = Result<i64, StoreError>> + Send {
        engine.store.image_execution_update(value, generation, engine.config.clock.now())
    }
}
