//! Rolling-update tasks (parent executions) and their per-instance child executions.

use crate::{conflict_unless_one, from_json, placeholders, to_json, versioned, Backend, Store, StoreError, Versioned};
use rollscale_core::domain::Millis;
use rollscale_core::ids::{ExecutionId, IdFilter, ScalingGroupId};
use rollscale_core::image_task::{ImageUpdateExecution, TEMPLATE_NAME as IMAGE_UPDATE_TEMPLATE};
use rollscale_core::task::{InstanceStatus, InstanceWork, TaskState};
use sqlx::Connection;
use sqlx::Row;

/// One row of `ListExecutions`: a task or one instance's child execution.
#[derive(Clone, Debug, PartialEq)]
pub enum Execution {
    Task(Versioned<TaskState>),
    Instance {
        parent_id: ExecutionId,
        template_name: String,
        group_id: ScalingGroupId,
        work: Versioned<InstanceWork>,
    },
    /// An image update task or one of its firings.
    ImageUpdate(Versioned<ImageUpdateExecution>),
}

/// Most rows [`Store::works_write`] writes with one statement. Beyond about 200, SQLite's
/// planner (without statistics) stops looking the rows up by id and scans the table instead.
pub const WORKS_WRITE_CHUNK: usize = 128;

/// The statement of [`Store::works_write`] for `slots` rows. The rows are padded to a power of
/// two with rows that match nothing, so that a handful of statement texts serve every batch
/// size and stay in the prepared-statement cache.
fn works_write_sql(backend: Backend, slots: usize) -> String {
    let mut param = placeholders(backend);
    let mut sql = String::with_capacity(300 + slots * 40);
    sql.push_str("WITH v (id, generation, status, detail_status, body) AS (VALUES ");
    for slot in 0..slots {
        if slot > 0 {
            sql.push_str(", ");
        }
        let (id, generation, status, detail_status, body) = (param(), param(), param(), param(), param());
        sql.push_str(&format!("({id}, CAST({generation} AS BIGINT), {status}, {detail_status}, {body})"));
    }
    sql.push_str(&format!(
        ") UPDATE executions SET status = v.status, detail_status = v.detail_status, body = v.body, \
         updated_at = {}, generation = executions.generation + 1 \
         FROM v WHERE executions.id = v.id AND executions.generation = v.generation",
        param()
    ));
    sql
}

/// A child execution made ready to be written with [`Store::works_write`]: encoded where it is
/// made (by the instance's worker), so the one writer that commits many of them at once only
/// binds. Opaque: it holds no row a caller could read or build by hand, only what
/// [`PreparedWork::new`] made of a domain value.
#[derive(Clone, Debug)]
pub struct PreparedWork {
    id: String,
    generation: i64,
    status: &'static str,
    detail_status: &'static str,
    body: String,
}

impl PreparedWork {
    /// `work` to be written if its row is still at `generation`.
    pub fn new(work: &InstanceWork, generation: i64) -> PreparedWork {
        PreparedWork {
            id: work.execution_id.to_string(),
            generation,
            status: work.status.wire_status(),
            detail_status: work.status.as_str(),
            body: to_json(work),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Filters of `ListExecutions`. Without `parent_id` or `execution_id`, only tasks are listed
/// unless `include_children`. An id filter that names nothing ([`IdFilter::Nothing`]) lists
/// nothing.
#[derive(Clone, Debug, Default)]
pub struct ExecutionFilter {
    pub execution_id: IdFilter<ExecutionId>,
    pub parent_id: IdFilter<ExecutionId>,
    pub template_name: Option<String>,
    pub status: Option<String>,
    pub group_id: IdFilter<ScalingGroupId>,
    pub include_children: bool,
}

pub(crate) const TASK_STATUSES_ACTIVE: &str = "('Running', 'Waiting')";

impl Store {
    /// Creates a task and its child executions in one transaction, if the group is still at
    /// `group_generation` and has no Running or Waiting task (one rolling update per group).
    /// Returns `Ok(false)` when another task is active.
    pub async fn task_create(
        &self,
        task: &TaskState,
        works: &[InstanceWork],
        group_generation: i64,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        // Take the group row first: concurrent creations for the group serialize on it.
        let bumped =
            sqlx::query("UPDATE scaling_groups SET generation = generation + 1 WHERE id = $1 AND generation = $2")
                .bind(task.spec.group_id.as_str())
                .bind(group_generation)
                .execute(&mut *tx)
                .await?;
        conflict_unless_one(bumped.rows_affected(), "scaling group", task.spec.group_id.as_str())?;
        let active: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) FROM executions WHERE group_id = $1 AND parent_id = '' AND status IN {TASK_STATUSES_ACTIVE}"
        ))
        .bind(task.spec.group_id.as_str())
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if active > 0 {
            return Ok(false);
        }
        let template = task.spec.kind.template_name();
        sqlx::query(
            "INSERT INTO executions (id, parent_id, template_name, status, detail_status, group_id, instance_id, position, \
             body, created_at, updated_at, generation) VALUES ($1, '', $2, $3, $3, $4, '', 0, $5, $6, $6, 1)",
        )
        .bind(task.id.as_str())
        .bind(template)
        .bind(task.status.as_str())
        .bind(task.spec.group_id.as_str())
        .bind(to_json(task))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Many rows a statement: one round trip to the database each 100 children, not each.
        for chunk in works.chunks(100) {
            let mut param = placeholders(self.backend);
            let mut sql = String::from(
                "INSERT INTO executions (id, parent_id, template_name, status, detail_status, group_id, instance_id, \
                 position, body, created_at, updated_at, generation) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                let row: Vec<String> = (0..11).map(|_| param()).collect();
                sql.push_str(&format!("({}, 1)", row.join(", ")));
            }
            let mut query = sqlx::query(&sql);
            for work in chunk {
                query = query
                    .bind(work.execution_id.as_str())
                    .bind(task.id.as_str())
                    .bind(template)
                    .bind(work.status.wire_status())
                    .bind(work.status.as_str())
                    .bind(task.spec.group_id.as_str())
                    .bind(work.instance_id.as_str())
                    .bind(i64::from(work.position))
                    .bind(to_json(work))
                    .bind(now)
                    .bind(now);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn task_get(&self, id: &ExecutionId) -> Result<Option<Versioned<TaskState>>, StoreError> {
        let row = sqlx::query(
            "SELECT body, generation FROM executions WHERE id = $1 AND parent_id = '' AND template_name <> $2",
        )
        .bind(id.as_str())
        .bind(IMAGE_UPDATE_TEMPLATE)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.map(|row| versioned("task", &row)).transpose()
    }

    /// Writes the task if it is still at `generation`; returns the new generation.
    pub async fn task_update(&self, task: &TaskState, generation: i64, now: Millis) -> Result<i64, StoreError> {
        let result = sqlx::query(
            "UPDATE executions SET status = $1, detail_status = $1, body = $2, updated_at = $3, \
             generation = generation + 1 WHERE id = $4 AND generation = $5",
        )
        .bind(task.status.as_str())
        .bind(to_json(task))
        .bind(now)
        .bind(task.id.as_str())
        .bind(generation)
        .execute(&mut *self.conn().await?)
        .await?;
        conflict_unless_one(result.rows_affected(), "execution", task.id.as_str())?;
        Ok(generation + 1)
    }

    /// Tasks that are neither finished nor done: the engine resumes them at start.
    pub async fn task_list_unfinished(&self) -> Result<Vec<Versioned<TaskState>>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT body, generation FROM executions WHERE parent_id = '' AND status IN {TASK_STATUSES_ACTIVE} \
             AND template_name <> $1 ORDER BY created_at, id"
        ))
        .bind(IMAGE_UPDATE_TEMPLATE)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut tasks: Vec<Versioned<TaskState>> =
            rows.iter().map(|row| versioned("task", row)).collect::<Result<_, _>>()?;
        // A task whose final status is written but whose phase is not Done cannot exist: the
        // status becomes final in the same write that makes the phase Done.
        tasks.retain(|task| !task.value.status.is_final());
        Ok(tasks)
    }

    /// The group's Running or Waiting task, if any.
    pub async fn task_active_for_group(
        &self,
        group_id: &ScalingGroupId,
    ) -> Result<Option<Versioned<TaskState>>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT body, generation FROM executions WHERE group_id = $1 AND parent_id = '' \
             AND status IN {TASK_STATUSES_ACTIVE} ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(group_id.as_str())
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.map(|row| versioned("task", &row)).transpose()
    }

    /// The group's most recently finished task (Success, Failed or Cancelled).
    pub async fn task_latest_finished(
        &self,
        group_id: &ScalingGroupId,
    ) -> Result<Option<Versioned<TaskState>>, StoreError> {
        let rows = sqlx::query(
            "SELECT body, generation FROM executions WHERE group_id = $1 AND parent_id = '' \
             AND status IN ('Success', 'Failed', 'Cancelled') ORDER BY updated_at DESC, created_at DESC LIMIT 1",
        )
        .bind(group_id.as_str())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.first().map(|row| versioned("task", row)).transpose()
    }

    pub async fn work_get(
        &self,
        id: &ExecutionId,
    ) -> Result<Option<(ExecutionId, Versioned<InstanceWork>)>, StoreError> {
        let row = sqlx::query("SELECT parent_id, body, generation FROM executions WHERE id = $1 AND parent_id <> '' AND template_name <> $2",
        )
        .bind(id.as_str())
        .bind(IMAGE_UPDATE_TEMPLATE)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let parent: String = row.try_get(0)?;
                let parent = ExecutionId::parse(&parent).ok_or_else(|| StoreError::Corrupt {
                    what: "execution parent id",
                    source: serde::de::Error::custom(parent),
                })?;
                Ok(Some((parent, versioned("instance execution", &row)?)))
            }
        }
    }

    /// A task's child executions, in target order.
    pub async fn work_list(&self, task_id: &ExecutionId) -> Result<Vec<Versioned<InstanceWork>>, StoreError> {
        let rows = sqlx::query("SELECT body, generation FROM executions WHERE parent_id = $1 ORDER BY position")
            .bind(task_id.as_str())
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|row| versioned("instance execution", row)).collect()
    }

    /// Writes one child execution if it is still at `generation`.
    pub async fn work_update(&self, work: &InstanceWork, generation: i64, now: Millis) -> Result<i64, StoreError> {
        let result = sqlx::query(
            "UPDATE executions SET status = $1, detail_status = $6, body = $2, updated_at = $3, \
             generation = generation + 1 WHERE id = $4 AND generation = $5",
        )
        .bind(work.status.wire_status())
        .bind(to_json(work))
        .bind(now)
        .bind(work.execution_id.as_str())
        .bind(generation)
        .bind(work.status.as_str())
        .execute(&mut *self.conn().await?)
        .await?;
        conflict_unless_one(result.rows_affected(), "execution", work.execution_id.as_str())?;
        Ok(generation + 1)
    }

    /// Writes child executions, each if it is still at its generation (its new generation is
    /// then its old one + 1), in as few statements as possible, and says for each whether it
    /// was written. `false` is what [`Store::work_update`] reports as a conflict.
    ///
    /// This is the group commit of many workers' journal entries: one statement (and so one
    /// commit) per [`WORKS_WRITE_CHUNK`] rows instead of one per row. Which rows a statement
    /// wrote is not asked of it (`RETURNING` sends each row back separately, which costs more
    /// than the statement): when it wrote as many as it was given, it wrote them all; when not
    /// (a row moved on, which for a running child only its own worker writes does not happen
    /// in practice), each of its rows is read back and counted as written if it now holds
    /// exactly what was to be written at the generation after.
    pub async fn works_write(&self, rows: &[PreparedWork], now: Millis) -> Result<Vec<bool>, StoreError> {
        let mut written = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(WORKS_WRITE_CHUNK) {
            let rows_affected = self.works_write_chunk(&mut *self.conn().await?, chunk, now).await?;
            if rows_affected == chunk.len() as u64 {
                written.extend(std::iter::repeat_n(true, chunk.len()));
                continue;
            }
            for row in chunk {
                let stored = sqlx::query("SELECT generation, body FROM executions WHERE id = $1")
                    .bind(row.id.as_str())
                    .fetch_optional(&mut *self.conn().await?)
                    .await?;
                written.push(match stored {
                    Some(stored) => {
                        stored.try_get::<i64, _>(0)? == row.generation + 1
                            && stored.try_get::<String, _>(1)? == row.body
                    }
                    None => false,
                });
            }
        }
        Ok(written)
    }

    /// One statement of [`Store::works_write`]: at most [`WORKS_WRITE_CHUNK`] rows. Returns
    /// how many were written.
    async fn works_write_chunk(
        &self,
        conn: &mut sqlx::AnyConnection,
        chunk: &[PreparedWork],
        now: Millis,
    ) -> Result<u64, StoreError> {
        let slots = chunk.len().next_power_of_two();
        let sql = works_write_sql(self.backend, slots);
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(row.id.as_str())
                .bind(row.generation)
                .bind(row.status)
                .bind(row.detail_status)
                .bind(row.body.as_str());
        }
        for _ in chunk.len()..slots {
            query = query.bind("").bind(-1_i64).bind("").bind("").bind("");
        }
        Ok(query.bind(now).execute(conn).await?.rows_affected())
    }

    /// Writes several child executions and optionally their task in one transaction; every row
    /// must still be at its generation, or nothing is written. The children are written
    /// [`WORKS_WRITE_CHUNK`] a statement.
    pub async fn works_update(
        &self,
        works: &[Versioned<InstanceWork>],
        task: Option<&Versioned<TaskState>>,
        now: Millis,
    ) -> Result<(), StoreError> {
        let rows: Vec<PreparedWork> =
            works.iter().map(|work| PreparedWork::new(&work.value, work.generation)).collect();
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        for chunk in rows.chunks(WORKS_WRITE_CHUNK) {
            if self.works_write_chunk(&mut tx, chunk, now).await? != chunk.len() as u64 {
                // Dropping the transaction rolls back whatever it wrote.
                return Err(StoreError::Conflict { what: "execution", id: chunk[0].id.clone() });
            }
        }
        if let Some(task) = task {
            let result = sqlx::query(
                "UPDATE executions SET status = $1, detail_status = $1, body = $2, updated_at = $3, \
                 generation = generation + 1 WHERE id = $4 AND generation = $5",
            )
            .bind(task.value.status.as_str())
            .bind(to_json(&task.value))
            .bind(now)
            .bind(task.value.id.as_str())
            .bind(task.generation)
            .execute(&mut *tx)
            .await?;
            conflict_unless_one(result.rows_affected(), "execution", task.value.id.as_str())?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A task's child executions with the given engine status, or at positions
    /// `[from, to)`, in target order.
    pub async fn work_list_where(
        &self,
        task_id: &ExecutionId,
        detail_status: Option<&str>,
        positions: Option<(i64, i64)>,
    ) -> Result<Vec<Versioned<InstanceWork>>, StoreError> {
        let (from, to) = positions.unwrap_or((0, i64::MAX));
        let rows = sqlx::query(
            "SELECT body, generation FROM executions WHERE parent_id = $1 AND ($2 = '' OR detail_status = $2) \
             AND position >= $3 AND position < $4 ORDER BY position",
        )
        .bind(task_id.as_str())
        .bind(detail_status.unwrap_or(""))
        .bind(from)
        .bind(to)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(|row| versioned("instance execution", row)).collect()
    }

    /// How many tasks (executions without a parent: rolling updates and image update tasks)
    /// there are of each template and status (`/metrics`): one statement over the tasks'
    /// rows (the `executions_parent` index), not their instances'.
    pub async fn task_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT template_name, status, COUNT(*) FROM executions WHERE parent_id = '' \
             GROUP BY template_name, status ORDER BY template_name, status",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in rows {
            counts.push((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?, row.try_get::<i64, _>(2)?));
        }
        Ok(counts)
    }

    /// How many of a task's child executions have each engine status: overall, and among
    /// positions `[from, to)` (the current batch).
    pub async fn work_counts(
        &self,
        task_id: &ExecutionId,
        from: i64,
        to: i64,
    ) -> Result<Vec<(InstanceStatus, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT detail_status, COUNT(*), SUM(CASE WHEN position >= $2 AND position < $3 THEN 1 ELSE 0 END) \
             FROM executions WHERE parent_id = $1 GROUP BY detail_status",
        )
        .bind(task_id.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in rows {
            let status = crate::text_enum("child execution status", &row, 0)?;
            counts.push((status, row.try_get::<i64, _>(1)?, row.try_get::<i64, _>(2)?));
        }
        Ok(counts)
    }

    /// `ListExecutions`: matching executions (newest tasks first; children in target order)
    /// from `offset`, at most `limit`, and the total count.
    pub async fn execution_list(
        &self,
        filter: &ExecutionFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Execution>, i64), StoreError> {
        if filter.execution_id.is_nothing() || filter.parent_id.is_nothing() || filter.group_id.is_nothing() {
            return Ok((Vec::new(), 0));
        }
        // scope: 0 = tasks only, 1 = children of $2, 2 = tasks and children.
        let scope: i64 = if filter.parent_id.id().is_some() {
            1
        } else if filter.include_children || filter.execution_id.id().is_some() {
            2
        } else {
            0
        };
        // Each filter is a plain equality when given and `$n = ''` (true: it is bound empty)
        // when not, so the planner can use an index; `($n = '' OR col = $n)` kept it from
        // any, and a lookup by execution id (what `--wait` polls) scanned every execution.
        let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.is_empty());
        let equal = |given: bool, column: &str, n: u8| {
            if given {
                format!("{column} = ${n}")
            } else {
                format!("${n} = ''")
            }
        };
        let scope_condition = match scope {
            0 => "$3 = 0 AND parent_id = '' AND $2 = ''",
            1 => "$3 = 1 AND parent_id = $2",
            _ => "$3 = 2 AND $2 = ''",
        };
        let conditions = format!(
            "{} AND {scope_condition} AND {} AND {} AND {}",
            equal(filter.execution_id.id().is_some(), "id", 1),
            equal(given(&filter.template_name), "template_name", 4),
            equal(given(&filter.status), "status", 5),
            equal(filter.group_id.id().is_some(), "group_id", 6),
        );
        let order = if scope == 1 { "position, id" } else { "created_at DESC, parent_id, position, id" };
        fn bind_filter<'q>(
            query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
            filter: &ExecutionFilter,
            scope: i64,
        ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
            query
                .bind(filter.execution_id.id().map_or_else(String::new, ToString::to_string))
                .bind(filter.parent_id.id().map_or_else(String::new, ToString::to_string))
                .bind(scope)
                .bind(filter.template_name.clone().unwrap_or_default())
                .bind(filter.status.clone().unwrap_or_default())
                .bind(filter.group_id.id().map_or_else(String::new, ToString::to_string))
        }
        let count_sql = format!("SELECT COUNT(*) FROM executions WHERE {conditions}");
        let total: i64 = bind_filter(sqlx::query(&count_sql), filter, scope)
            .fetch_one(&mut *self.conn().await?)
            .await?
            .try_get(0)?;
        let list_sql = format!(
            "SELECT parent_id, template_name, group_id, body, generation FROM executions WHERE {conditions} \
             ORDER BY {order} LIMIT $7 OFFSET $8"
        );
        let rows = bind_filter(sqlx::query(&list_sql), filter, scope)
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let mut executions = Vec::with_capacity(rows.len());
        for row in rows {
            let parent: String = row.try_get(0)?;
            let template_name: String = row.try_get(1)?;
            if template_name == IMAGE_UPDATE_TEMPLATE {
                executions.push(Execution::ImageUpdate(versioned("image update execution", &row)?));
            } else if parent.is_empty() {
                executions.push(Execution::Task(versioned("task", &row)?));
            } else {
                let group: String = row.try_get(2)?;
                let (Some(parent_id), Some(group_id)) = (ExecutionId::parse(&parent), ScalingGroupId::parse(&group))
                else {
                    continue;
                };
                let body: String = row.try_get(3)?;
                let generation: i64 = row.try_get(4)?;
                executions.push(Execution::Instance {
                    parent_id,
                    template_name,
                    group_id,
                    work: Versioned { value: from_json("instance execution", &body)?, generation },
                });
            }
        }
        Ok((executions, total))
    }
}

#[cfg(test)]
mod tests {
    use super::{works_write_sql, PreparedWork, WORKS_WRITE_CHUNK};
    use crate::{Backend, Store, Versioned};
    use rollscale_core::ids::{ExecutionId, InstanceId};
    use rollscale_core::task::{InstanceStatus, InstanceWork};
    use sqlx::Row;

    async fn store_with(n: u32) -> (tempfile::TempDir, Store, Vec<InstanceWork>) {
        let (dir, store) = crate::testing::fresh_store().await;
        let works: Vec<InstanceWork> = (0..n)
            .map(|i| {
                let bits = u128::from(i) + 1;
                InstanceWork::new(ExecutionId::from_random(bits), InstanceId::from_random(bits), 0, i, false)
            })
            .collect();
        let mut conn = store.conn().await.expect("conn");
        for work in &works {
            sqlx::query(
                "INSERT INTO executions (id, parent_id, template_name, status, detail_status, group_id, instance_id, \
                 position, body, created_at, updated_at, generation) \
                 VALUES ($1, 'exec-parent', 't', 'Queued', 'Queued', 'g', 'i', $2, $3, 0, 0, 1)",
            )
            .bind(work.execution_id.as_str())
            .bind(i64::from(work.position))
            .bind(crate::to_json(work))
            .execute(&mut *conn)
            .await
            .expect("insert");
        }
        drop(conn);
        (dir, store, works)
    }

    #[tokio::test]
    async fn task_counts_count_the_tasks_by_template_and_status_not_their_children() {
        let (_dir, store, _) = store_with(50).await;
        let mut conn = store.conn().await.expect("conn");
        for (n, (template, status)) in
            [("a", "Success"), ("a", "Success"), ("a", "Running"), ("b", "Failed")].iter().enumerate()
        {
            sqlx::query(
                "INSERT INTO executions (id, parent_id, template_name, status, detail_status, group_id, instance_id, \
                 position, body, created_at, updated_at, generation) VALUES ($1, '', $2, $3, $3, 'g', '', 0, '{}', 0, 0, 1)",
            )
            .bind(format!("exec-task{n}"))
            .bind(*template)
            .bind(*status)
            .execute(&mut *conn)
            .await
            .expect("insert");
        }
        drop(conn);
        let counts = store.task_counts().await.expect("counts");
        let expected = [("a", "Running", 1), ("a", "Success", 2), ("b", "Failed", 1)];
        assert_eq!(counts, expected.map(|(t, s, n)| (t.to_string(), s.to_string(), n)));
        if store.backend() == Backend::Sqlite {
            // The tasks' rows only, by the index: not a scan of every instance's child execution.
            let sql = "EXPLAIN QUERY PLAN SELECT template_name, status, COUNT(*) FROM executions \
                       WHERE parent_id = '' GROUP BY template_name, status ORDER BY template_name, status";
            let plan: Vec<String> = sqlx::query(sql)
                .fetch_all(&mut *store.conn().await.unwrap())
                .await
                .expect("plan")
                .iter()
                .map(|row| row.get::<String, _>(3))
                .collect();
            assert!(
                plan.iter()
                    .any(|step| step.starts_with("SEARCH executions USING INDEX executions_parent (parent_id=?)")),
                "{plan:?}"
            );
        }
    }

    #[tokio::test]
    async fn works_write_writes_every_row_at_its_generation_in_chunks() {
        let (_dir, store, works) = store_with(300).await;
        let started: Vec<InstanceWork> = works.iter().map(|w| w.clone().start(7)).collect();
        let rows: Vec<PreparedWork> = started.iter().map(|w| PreparedWork::new(w, 1)).collect();
        assert_eq!(store.works_write(&rows, 42).await.expect("write"), vec![true; 300]);
        for work in &started {
            let (_, stored) = store.work_get(&work.execution_id).await.expect("get").expect("row");
            assert_eq!(stored.generation, 2);
            assert_eq!(&stored.value, work);
        }
        let running: i64 =
            sqlx::query("SELECT COUNT(*) FROM executions WHERE detail_status = 'Running' AND updated_at = 42")
                .fetch_one(&mut *store.conn().await.unwrap())
                .await
                .unwrap()
                .get(0);
        assert_eq!(running, 300);
        // Written again at the old generation: nothing changes, each is told so.
        let again: Vec<PreparedWork> = started.iter().map(|w| PreparedWork::new(&w.clone().abort(9), 1)).collect();
        assert_eq!(store.works_write(&again, 43).await.expect("write"), vec![false; 300]);
        let (_, stored) = store.work_get(&started[0].execution_id).await.unwrap().unwrap();
        assert_eq!((stored.generation, stored.value.status), (2, InstanceStatus::Running));
    }

    #[tokio::test]
    async fn works_write_tells_exactly_which_rows_moved_on() {
        let (_dir, store, works) = store_with(10).await;
        // Row 3 moved on before the batch.
        store.work_update(&works[3].clone().start(1), 1, 1).await.expect("update");
        let next: Vec<InstanceWork> = works.iter().map(|w| w.clone().start(5)).collect();
        let rows: Vec<PreparedWork> = next.iter().map(|w| PreparedWork::new(w, 1)).collect();
        let written = store.works_write(&rows, 5).await.expect("write");
        let expected: Vec<bool> = (0..10).map(|i| i != 3).collect();
        assert_eq!(written, expected);
        let (_, moved) = store.work_get(&works[3].execution_id).await.unwrap().unwrap();
        assert_eq!((moved.generation, moved.value.started_at), (2, Some(1)), "the row that moved on is untouched");
    }

    #[tokio::test]
    async fn works_update_writes_all_or_nothing() {
        let (_dir, store, works) = store_with(300).await;
        let started: Vec<Versioned<InstanceWork>> =
            works.iter().map(|w| Versioned { value: w.clone().start(3), generation: 1 }).collect();
        // One row moved on: nothing is written, not even the rows before it.
        store.work_update(&works[200].clone().start(1), 1, 1).await.expect("update");
        let refused = store.works_update(&started, None, 3).await;
        assert!(matches!(refused, Err(crate::StoreError::Conflict { .. })), "{refused:?}");
        let (_, first) = store.work_get(&works[0].execution_id).await.unwrap().unwrap();
        assert_eq!((first.generation, first.value.status), (1, InstanceStatus::Queued));
        // Without it, all are written.
        let mut all = started.clone();
        all.remove(200);
        store.works_update(&all, None, 3).await.expect("update");
        for work in &all {
            let (_, stored) = store.work_get(&work.value.execution_id).await.unwrap().unwrap();
            assert_eq!(stored, Versioned { value: work.value.clone(), generation: 2 });
        }
    }

    #[tokio::test]
    async fn task_create_writes_the_task_and_every_child() {
        let (_dir, store) = crate::testing::fresh_store().await;
        let group = rollscale_core::ids::ScalingGroupId::from_random(5);
        sqlx::query(
            "INSERT INTO scaling_groups (id, name, region_id, status, body, created_at, generation) \
             VALUES ($1, 'g', 'r', 'Active', '{}', 0, 3)",
        )
        .bind(group.as_str())
        .execute(&mut *store.conn().await.unwrap())
        .await
        .expect("group");
        let params = serde_json::json!({"invokeType": "invoke", "scalingGroupId": group, "imageId": "new"});
        let request =
            rollscale_core::params::parse_start("ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup", &params)
                .expect("params");
        let spec = rollscale_core::params::resolve(request, None).expect("spec");
        let task =
            rollscale_core::task::TaskState::new(ExecutionId::from_random(7_000), spec, vec![150, 100], vec![], 9);
        let works: Vec<InstanceWork> = (0..250)
            .map(|i| {
                let bits = u128::from(i) + 1;
                InstanceWork::new(ExecutionId::from_random(bits), InstanceId::from_random(bits), i / 150, i, false)
            })
            .collect();
        assert!(store.task_create(&task, &works, 3, 11).await.expect("create"));
        assert_eq!(store.task_get(&task.id).await.unwrap().unwrap().value, task);
        let listed = store.work_list(&task.id).await.expect("list");
        assert_eq!(listed.iter().map(|w| w.value.clone()).collect::<Vec<_>>(), works);
        assert!(listed.iter().all(|w| w.generation == 1));
        assert_eq!(store.work_counts(&task.id, 0, 150).await.unwrap(), vec![(InstanceStatus::Queued, 250, 150)]);
        // The group moved on: a second creation at the same generation is refused, nothing written.
        let other = rollscale_core::task::TaskState { id: ExecutionId::from_random(7_001), ..task.clone() };
        assert!(store.task_create(&other, &[], 3, 12).await.is_err());
        assert!(store.task_get(&other.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn works_write_looks_rows_up_by_id_at_every_chunk_size() {
        let (_dir, store, _works) = store_with(1000).await;
        if store.backend() != Backend::Sqlite {
            return;
        }
        let mut slots = 1;
        while slots <= WORKS_WRITE_CHUNK {
            let sql = format!("EXPLAIN QUERY PLAN {}", works_write_sql(Backend::Sqlite, slots));
            let plan: Vec<String> = sqlx::query(&sql)
                .fetch_all(&mut *store.conn().await.unwrap())
                .await
                .expect("plan")
                .iter()
                .map(|row| row.get::<String, _>(3))
                .collect();
            assert!(plan.iter().any(|step| step.starts_with("SEARCH executions")), "{slots} rows: {plan:?}");
            assert!(!plan.iter().any(|step| step.starts_with("SCAN executions")), "{slots} rows: {plan:?}");
            slots *= 2;
        }
    }
}
