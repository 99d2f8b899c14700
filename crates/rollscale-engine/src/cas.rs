//! The compare-and-swap loop that every `<resource>_modify` helper is made of, and the helpers
//! (`group_modify`, `configuration_modify`, `task_modify`, `work_modify`, `template_modify`,
//! `image_execution_modify`, declared together at the end; `Engine::instance_modify` in
//! `ops.rs` is the instance's, with a journal and a remembered copy to start from): read the row, let the change make the next
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

/// Each kind of row changed by compare-and-swap: its [`Row`] (how it is read and written) and its
/// helper `<resource>_modify(id, change)`, which [`Engine::modify`]s it and gives back the value
/// as written, or `None` when there is no such row.
macro_rules! rows {
    ($($helper:ident: $row:ty, by $id:ty, read |$e:ident, $i:ident| $read:expr, write |$we:ident, $v:ident, $g:ident| $write:expr;)*) => {$(
        impl Row for $row {
            type Id = $id;

            fn read($e: &Engine, $i: &$id) -> impl Future<Output = Result<Option<Versioned<Self>>, StoreError>> + Send {
                $read
            }

            fn write($we: &Engine, $v: &Self, $g: i64) -> impl Future<Output = Result<i64, StoreError>> + Send {
                $write
            }
        }

        impl Engine {
            #[doc = concat!("Changes the `", stringify!($row), "` `id` with `change` by compare-and-swap ([`Engine::modify`]).")]
            pub(crate) async fn $helper<Fut>(&self, id: &$id, change: impl FnMut($row) -> Fut) -> Result<Option<$row>, ServiceError>
            where
                Fut: Future<Output = Result<$row, ServiceError>>,
            {
                Ok(self.modify(id, change).await?.map(|row| row.value))
            }
        }
    )*};
}

rows! {
    group_modify: ScalingGroup, by ScalingGroupId,
        read |e, id| e.store.group_get(id), write |e, v, g| e.store.group_update(v, g);
    configuration_modify: ScalingConfiguration, by ScalingConfigurationId,
        read |e, id| e.store.configuration_get(id), write |e, v, g| e.store.configuration_update(v, g);
    task_modify: TaskState, by ExecutionId,
        read |e, id| e.store.task_get(id), write |e, v, g| e.store.task_update(v, g, now_millis());
    // A child execution (one instance's work of a task).
    work_modify: InstanceWork, by ExecutionId,
        read |e, id| async move { Ok(e.store.work_get(id).await?.map(|(_, work)| work)) },
        write |e, v, g| e.store.work_update(v, g, now_millis());
    template_modify: LaunchTemplate, by LaunchTemplateId,
        read |e, id| e.store.template_get(id), write |e, v, g| e.store.template_update(v, g);
    // Written at the engine's clock, the time image update schedules are computed by.
    image_execution_modify: ImageUpdateExecution, by ExecutionId,
        read |e, id| e.store.image_execution_get(id),
        write |e, v, g| e.store.image_execution_update(v, g, e.config.clock.now());
}
