//! Events: a task's or a group's, and keyword search (R15).

use super::Service;
use crate::ServiceError;
use rollscale_core::domain::*;

impl Service {
    pub async fn events(
        &self,
        execution_id: Option<&str>,
        group_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        Ok(self.store().event_list(execution_id, group_id, limit).await?)
    }

    /// Events matching a keyword query (R15: words with `and`/`or`), newest first, among the
    /// newest 10,000 (of one execution and of one scaling group, when given).
    pub async fn search_events(
        &self,
        execution_id: Option<&str>,
        group_id: Option<&str>,
        keywords: &str,
        limit: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        let query = rollscale_core::search::KeywordQuery::parse(keywords)?;
        let scanned = self.store().event_list(execution_id, group_id, 10_000).await?;
        Ok(scanned.into_iter().filter(|event| query.matches(event)).take(limit.max(0) as usize).collect())
    }
}
