//! The planner: which instances a rolling update targets (R1) and how they fall into
//! batches (R2). Deterministic: the same group gives the same plan.

use crate::domain::{CreationType, Instance, LifecycleState};
use crate::ids::InstanceId;

/// R1: the instances in one of `lifecycle_states`, created or attached into the group,
/// ordered by creation time then id.
pub fn select_targets(instances: &[Instance], lifecycle_states: &[LifecycleState]) -> Vec<InstanceId> {
    let mut chosen: Vec<&Instance> = instances
        .iter()
        .filter(|instance| lifecycle_states.contains(&instance.lifecycle_state))
        .filter(|instance| matches!(instance.creation_type, CreationType::AutoCreated | CreationType::Attached))
        .collect();
    chosen.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
    chosen.into_iter().map(|instance| instance.id.clone()).collect()
}

/// R2: `n_targets` instances in `min(batch_number, n_targets)` batches whose sizes differ by at
/// most one, larger batches first. Zero targets give no batch.
pub fn batch_sizes(n_targets: usize, batch_number: u32) -> Vec<u32> {
    if n_targets == 0 {
        return Vec::new();
    }
    let n_batches = (batch_number.max(1) as usize).min(n_targets);
    let base = n_targets / n_batches;
    let n_larger = n_targets % n_batches;
    (0..n_batches).map(|index| (base + usize::from(index < n_larger)) as u32).collect()
}

/// The batch index of each target position, for `sizes` from [`batch_sizes`].
pub fn batch_of_each(sizes: &[u32]) -> Vec<u32> {
    sizes.iter().enumerate().flat_map(|(index, size)| std::iter::repeat_n(index as u32, *size as usize)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::HealthStatus;
    use crate::ids::ScalingGroupId;
    use proptest::prelude::*;

    fn instance(id: &str, state: LifecycleState, creation: CreationType, created_at: i64) -> Instance {
        Instance {
            id: InstanceId::parse(id).unwrap(),
            group_id: ScalingGroupId::parse("asg-1").unwrap(),
            lifecycle_state: state,
            health_status: HealthStatus::Healthy,
            creation_type: creation,
            image_id: "img".into(),
            packages: vec![],
            containers: vec![],
            tags: vec![],
            address: String::new(),
            created_at,
            changed_at: None,
            observed: None,
            observed_at: None,
        }
    }

    #[test]
    fn r1_targets_in_service_ordered_by_creation_then_id() {
        let instances = vec![
            instance("i-c", LifecycleState::InService, CreationType::AutoCreated, 5),
            instance("i-b", LifecycleState::InService, CreationType::Attached, 1),
            instance("i-a", LifecycleState::InService, CreationType::AutoCreated, 5),
            instance("i-d", LifecycleState::Standby, CreationType::AutoCreated, 0),
            instance("i-e", LifecycleState::Protected, CreationType::AutoCreated, 0),
            instance("i-f", LifecycleState::Pending, CreationType::AutoCreated, 0),
        ];
        let ids: Vec<String> =
            select_targets(&instances, &[LifecycleState::InService]).into_iter().map(|id| id.to_string()).collect();
        assert_eq!(ids, ["i-b", "i-a", "i-c"]);
        let with_protected = select_targets(&instances, &[LifecycleState::InService, LifecycleState::Protected]);
        assert_eq!(with_protected.first().unwrap().as_str(), "i-e");
        assert_eq!(with_protected.len(), 4);
    }

    #[test]
    fn r2_examples() {
        assert_eq!(batch_sizes(10, 3), vec![4, 3, 3]);
        assert_eq!(batch_sizes(10, 2), vec![5, 5]);
        assert_eq!(batch_sizes(2, 5), vec![1, 1]);
        assert_eq!(batch_sizes(0, 5), Vec::<u32>::new());
        assert_eq!(batch_of_each(&[2, 1]), vec![0, 0, 1]);
    }

    proptest! {
        #[test]
        fn r2_batches_cover_all_and_differ_by_at_most_one(n in 0usize..5000, batches in 1u32..=100) {
            let sizes = batch_sizes(n, batches);
            prop_assert_eq!(sizes.iter().map(|s| *s as usize).sum::<usize>(), n);
            prop_assert_eq!(sizes.len(), (batches as usize).min(n));
            prop_assert!(sizes.iter().all(|s| *s >= 1));
            prop_assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
            if let (Some(max), Some(min)) = (sizes.iter().max(), sizes.iter().min()) {
                prop_assert!(max - min <= 1);
            }
        }
    }
}
