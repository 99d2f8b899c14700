//! Events: a task's or a group's, and keyword search (R15).

use super::Service;
use crate::ServiceError;
use rollscale_core::domain::*;
use rollscale_core::ids::{ExecutionId, IdFilter, ScalingGroupId};
use rollscale_core::search::KeywordQuery;

impl Service {
    /// Events, newest first, of one execution and of one scaling group when given.
    pub async fn events(
        &self,
        execution_id: &IdFilter<ExecutionId>,
        group_id: &IdFilter<ScalingGroupId>,
        limit: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        if execution_id.is_nothing() || group_id.is_nothing() {
            return Ok(Vec::new());
        }
        let (execution_id, group_id) =
            (execution_id.id().map(ExecutionId::as_str), group_id.id().map(ScalingGroupId::as_str));
        Ok(self.store().event_list(execution_id, group_id, limit).await?)
    }

    /// Events matching a keyword query (R15: words with `and`/`or`, read by the server with
    /// `core::search`), newest first, among the newest 10,000 (of one execution and of one
    /// scaling group, when given).
    pub async fn search_events(
        &self,
        execution_id: &IdFilter<ExecutionId>,
        group_id: &IdFilter<ScalingGroupId>,
        query: &KeywordQuery,
        limit: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        let scanned = self.events(execution_id, group_id, 10_000).await?;
        Ok(scanned.into_iter().filter(|event| query.matches(event)).take(limit.max(0) as usize).collect())
    }
}
