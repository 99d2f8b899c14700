//! Scaling activities: the ones the API's instance actions record, and R3's check for one
//! under way.

use super::Service;
use crate::{now_millis, random_bits, ServiceError};
use rollscale_core::domain::*;
use rollscale_core::ids::*;

impl Service {
    pub async fn activities(
        &self,
        group_id: &ScalingGroupId,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<ScalingActivity>, i64), ServiceError> {
        Ok(self.store().activity_list(group_id, offset, limit).await?)
    }

    pub(crate) async fn activity_begin(
        &self,
        group: &ScalingGroup,
        kind: ActivityKind,
        description: &str,
        instances: &[Instance],
    ) -> Result<ScalingActivity, ServiceError> {
        let activity = ScalingActivity {
            id: ScalingActivityId::from_random(random_bits()),
            group_id: group.id.clone(),
            kind: Some(kind),
            description: description.to_string(),
            cause: format!("a user request at {}", now_millis()),
            status: ActivityStatus::InProgress,
            status_message: String::new(),
            instance_ids: instances.iter().map(|i| i.id.clone()).collect(),
            started_at: now_millis(),
            ended_at: None,
        };
        self.store().activity_put(&activity).await?;
        Ok(activity)
    }

    pub(crate) async fn activity_end(&self, activity: &mut ScalingActivity) -> Result<(), ServiceError> {
        activity.status = ActivityStatus::Successful;
        activity.ended_at = Some(now_millis());
        self.store().activity_put(activity).await?;
        Ok(())
    }

    /// Whether a scale-out or scale-in of the group is under way (R3).
    pub(super) async fn activity_in_progress(&self, group_id: &ScalingGroupId) -> Result<bool, ServiceError> {
        let (activities, _) = self.store().activity_list(group_id, 0, 20).await?;
        Ok(activities.iter().any(|a| a.status == ActivityStatus::InProgress && a.kind().is_scaling()))
    }
}
