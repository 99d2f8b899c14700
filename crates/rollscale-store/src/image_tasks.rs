//! Image update tasks: executions of the template `ACS-ESS-CreateImageAndUpdateScalingConfiguration`,
//! kept in `executions` beside the rolling updates (so `ListExecutions` lists both), with an
//! [`ImageUpdateExecution`] body and no group (`group_id = ''`).

use crate::{conflict_unless_one, to_json, versioned, Store, StoreError, Versioned};
use rollscale_core::domain::Millis;
use rollscale_core::ids::ExecutionId;
use rollscale_core::image_task::{ImageUpdateExecution, TEMPLATE_NAME};
use sqlx::Connection;

const INSERT: &str = "INSERT INTO executions (id, parent_id, template_name, status, detail_status, group_id, \
     instance_id, position, body, created_at, updated_at, generation) VALUES ($1, $2, $3, $4, $4, '', $5, $6, $7, $8, $8, 1)";

const UPDATE: &str = "UPDATE executions SET status = $1, detail_status = $1, body = $2, updated_at = $3, \
     generation = generation + 1 WHERE id = $4 AND generation = $5 AND template_name = $6";

impl Store {
    /// Creates an image update execution (a task, or a firing of one).
    pub async fn image_execution_insert(
        &self,
        execution: &ImageUpdateExecution,
        now: Millis,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(INSERT)
            .bind(execution.id.as_str())
            .bind(execution.parent_id.as_ref().map(|id| id.as_str()).unwrap_or(""))
            .bind(TEMPLATE_NAME)
            .bind(execution.status.as_str())
            .bind(execution.spec.instance_id.as_str())
            .bind(i64::from(execution.schedule.as_ref().map_or(0, |s| s.firings)))
            .bind(to_json(execution))
            .bind(now)
            .execute(&mut *self.conn().await?)
            .await;
        match result {
            Err(error) if crate::is_unique_violation(&error) => {
                Err(StoreError::AlreadyExists { what: "execution", id: execution.id.to_string() })
            }
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    pub async fn image_execution_get(
        &self,
        id: &ExecutionId,
    ) -> Result<Option<Versioned<ImageUpdateExecution>>, StoreError> {
        let row = sqlx::query("SELECT body, generation FROM executions WHERE id = $1 AND template_name = $2")
            .bind(id.as_str())
            .bind(TEMPLATE_NAME)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| versioned("image update execution", &row)).transpose()
    }

    /// Writes the execution if it is still at `generation`; returns the new generation.
    pub async fn image_execution_update(
        &self,
        execution: &ImageUpdateExecution,
        generation: i64,
        now: Millis,
    ) -> Result<i64, StoreError> {
        let result = sqlx::query(UPDATE)
            .bind(execution.status.as_str())
            .bind(to_json(execution))
            .bind(now)
            .bind(execution.id.as_str())
            .bind(generation)
            .bind(TEMPLATE_NAME)
            .execute(&mut *self.conn().await?)
            .await?;
        conflict_unless_one(result.rows_affected(), "execution", execution.id.as_str())?;
        Ok(generation + 1)
    }

    /// A firing: the parent (still at `generation`) and its new child, in one transaction, so
    /// a crash leaves either both or neither.
    pub async fn image_execution_fire(
        &self,
        parent: &ImageUpdateExecution,
        generation: i64,
        child: &ImageUpdateExecution,
        now: Millis,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let result = sqlx::query(UPDATE)
            .bind(parent.status.as_str())
            .bind(to_json(parent))
            .bind(now)
            .bind(parent.id.as_str())
            .bind(generation)
            .bind(TEMPLATE_NAME)
            .execute(&mut *tx)
            .await?;
        conflict_unless_one(result.rows_affected(), "execution", parent.id.as_str())?;
        sqlx::query(INSERT)
            .bind(child.id.as_str())
            .bind(parent.id.as_str())
            .bind(TEMPLATE_NAME)
            .bind(child.status.as_str())
            .bind(child.spec.instance_id.as_str())
            .bind(i64::from(parent.schedule.as_ref().map_or(0, |s| s.firings)))
            .bind(to_json(child))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(generation + 1)
    }

    /// The Running and Waiting image update executions (tasks and firings), oldest first:
    /// what the scheduler looks at each tick and resumes after a restart.
    pub async fn image_execution_list_unfinished(&self) -> Result<Vec<Versioned<ImageUpdateExecution>>, StoreError> {
        let rows = sqlx::query(
            "SELECT body, generation FROM executions WHERE template_name = $1 AND status IN ('Running', 'Waiting') \
             ORDER BY created_at, id",
        )
        .bind(TEMPLATE_NAME)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(|row| versioned("image update execution", row)).collect()
    }

    /// The image update tasks (not their firings), newest first.
    pub async fn image_execution_list_tasks(&self) -> Result<Vec<Versioned<ImageUpdateExecution>>, StoreError> {
        let rows = sqlx::query(
            "SELECT body, generation FROM executions WHERE template_name = $1 AND parent_id = '' \
             ORDER BY created_at DESC, id",
        )
        .bind(TEMPLATE_NAME)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(|row| versioned("image update execution", row)).collect()
    }

    /// A scheduled task's firings, in order.
    pub async fn image_execution_children(
        &self,
        parent: &ExecutionId,
    ) -> Result<Vec<Versioned<ImageUpdateExecution>>, StoreError> {
        let rows = sqlx::query(
            "SELECT body, generation FROM executions WHERE template_name = $1 AND parent_id = $2 \
             ORDER BY position, created_at, id",
        )
        .bind(TEMPLATE_NAME)
        .bind(parent.as_str())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(|row| versioned("image update execution", row)).collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Execution, ExecutionFilter, StoreError};
    use rollscale_core::ids::{ExecutionId, IdFilter};
    use rollscale_core::image_task::{self, ImageUpdateExecution, TEMPLATE_NAME};
    use rollscale_core::task::TaskStatus;
    use serde_json::json;

    const NOW: i64 = 1_796_083_200_000;

    #[tokio::test]
    async fn a_task_fires_children_and_lists_beside_the_rolling_updates() {
        let (_dir, store) = crate::testing::fresh_store().await;
        let params = json!({
            "instanceId": "i-src", "scalingConfigurationIds": ["asc-a"], "OOSAssumeRole": "r",
            "timerTrigger": {"Type": "rate", "Expression": "1 hour", "EndDate": "2026-12-02T00:00:00Z"},
        });
        let spec = image_task::parse_start(&params).unwrap();
        let schedule = spec.first_schedule(NOW).unwrap();
        let parent = ImageUpdateExecution::scheduled(
            ExecutionId::from_random(1),
            spec,
            schedule.unwrap().next_after(NOW).unwrap(),
            NOW,
        );
        store.image_execution_insert(&parent, NOW).await.expect("insert");
        assert!(matches!(store.image_execution_insert(&parent, NOW).await, Err(StoreError::AlreadyExists { .. })));
        let stored = store.image_execution_get(&parent.id).await.unwrap().unwrap();
        assert_eq!((stored.value.clone(), stored.generation), (parent.clone(), 1));
        // Not a rolling update: the rolling-update lookups do not see it.
        assert!(store.task_get(&parent.id).await.unwrap().is_none());
        assert!(store.task_list_unfinished().await.unwrap().is_empty());

        let (running, child) = parent.fire(ExecutionId::from_random(2), NOW + 3_600_000).unwrap();
        assert_eq!(store.image_execution_fire(&running, 1, &child, NOW + 3_600_000).await.unwrap(), 2);
        // The same firing again (another replica, or a redo): refused, nothing written.
        let (again, other_child) = parent.fire(ExecutionId::from_random(3), NOW + 3_600_000).unwrap();
        assert!(store.image_execution_fire(&again, 1, &other_child, NOW + 3_600_000).await.is_err());
        assert!(store.image_execution_get(&other_child.id).await.unwrap().is_none());
        assert!(store.work_get(&child.id).await.unwrap().is_none());

        let unfinished = store.image_execution_list_unfinished().await.unwrap();
        assert_eq!(unfinished.len(), 2);
        let done = child.image_made("m-1", NOW).configurations_updated(NOW);
        store.image_execution_update(&done, 1, NOW).await.unwrap();
        assert!(store.image_execution_update(&done, 1, NOW).await.is_err(), "compare-and-swap");
        assert_eq!(store.image_execution_children(&parent.id).await.unwrap()[0].value.status, TaskStatus::Success);
        assert_eq!(store.image_execution_list_tasks().await.unwrap().len(), 1);

        let filter = ExecutionFilter { template_name: Some(TEMPLATE_NAME.into()), ..Default::default() };
        let (listed, total) = store.execution_list(&filter, 0, 10).await.unwrap();
        assert_eq!(total, 1);
        assert!(matches!(&listed[0], Execution::ImageUpdate(e) if e.value.id == parent.id));
        let filter = ExecutionFilter { parent_id: IdFilter::Only(parent.id.clone()), ..Default::default() };
        let (listed, _) = store.execution_list(&filter, 0, 10).await.unwrap();
        assert!(matches!(&listed[..], [Execution::ImageUpdate(e)] if e.value.id == child.id));
        // A filter that names nothing lists nothing.
        let filter = ExecutionFilter { parent_id: IdFilter::Nothing, ..Default::default() };
        assert_eq!(store.execution_list(&filter, 0, 10).await.unwrap().1, 0);
    }
}
