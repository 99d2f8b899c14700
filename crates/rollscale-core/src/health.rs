//! The group's health check as pure rules (R16, R17): what one look at an instance found
//! ([`Look`]), what the record keeps of it ([`Observed`]), and the judgement of a pass
//! ([`judge`]): the instance's health, whether the group replaces it, and the events to raise.
//! The engine takes the looks through the drivers and hands them in with the time.

use crate::domain::{
    ContainerSpec, EventKind, EventLevel, HealthCheckType, HealthStatus, Instance, LifecycleState, Millis, ScalingGroup,
};
use serde::{Deserialize, Serialize};

/// Consecutive failed health checks (after the grace period) that make an instance Unhealthy.
pub const UNHEALTHY_THRESHOLD: u32 = 3;

/// One look at an instance, as the engine took it through the fleet and the load balancers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Look {
    /// The instance exists on the backend.
    pub exists: bool,
    /// It runs (every container of it, for a container group).
    pub running: bool,
    /// The image it actually runs, its packages and containers (empty when it does not exist).
    pub image_id: String,
    pub packages: Vec<(String, String)>,
    pub containers: Vec<ContainerSpec>,
    /// Its own health check (the health path), asked when it runs; `None` when not asked.
    pub check: Option<HealthStatus>,
    /// The attached load balancers' checks of it: `Some(false)` when one of them fails it,
    /// `Some(true)` when they pass it, `None` when none checks it.
    pub load_balancer_check: Option<bool>,
}

impl Look {
    /// An instance the backend does not have.
    pub fn gone() -> Look {
        Look {
            exists: false,
            running: false,
            image_id: String::new(),
            packages: Vec::new(),
            containers: Vec::new(),
            check: None,
            load_balancer_check: None,
        }
    }
}

/// What the health checker last saw of an instance, kept on it apart from the record of what
/// rollscale made it (R16).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub exists: bool,
    pub running: bool,
    /// The image it runs (empty when it does not exist).
    pub image_id: String,
    #[serde(default)]
    pub packages: Vec<(String, String)>,
    /// Its containers as (name, image), for container groups.
    #[serde(default)]
    pub containers: Vec<(String, String)>,
    /// Its failed health checks in a row, counted after the grace period.
    #[serde(default)]
    pub failed_checks: u32,
    /// What is wrong with it now, in words (`stopped`, `gone`, …); `None` when nothing is.
    #[serde(default)]
    pub problem: Option<String>,
    /// Where the instance differs from its record (`image: recorded X, runs Y`), one line each.
    #[serde(default)]
    pub drift: Vec<String>,
    /// When it was first seen as it is now.
    pub since: Millis,
}

impl Observed {
    /// Whether `other` says the same of the instance (its `since` aside).
    fn same_as(&self, other: &Observed) -> bool {
        Observed { since: other.since, ..self.clone() } == *other
    }
}

/// The longest grace period a group may have, in seconds.
pub const MAX_GRACE_PERIOD_S: u32 = 7200;

/// A group's health check types as given (`name` is the parameter, for the message): repeats
/// count once; none at all, and `NONE` with another type, are refused with why.
pub fn check_types(name: &str, types: &[HealthCheckType]) -> Result<Vec<HealthCheckType>, String> {
    let mut distinct: Vec<HealthCheckType> = Vec::with_capacity(types.len());
    for kind in types {
        if !distinct.contains(kind) {
            distinct.push(*kind);
        }
    }
    if distinct.is_empty() {
        return Err(format!("{name} names no health check type: give ECS, LOAD_BALANCER or NONE"));
    }
    if distinct.len() > 1 && distinct.contains(&HealthCheckType::NONE) {
        return Err(format!("{name}: NONE (no health check) cannot be combined with another type"));
    }
    Ok(distinct)
}

/// A group's grace period in seconds, refused past [`MAX_GRACE_PERIOD_S`].
pub fn check_grace_period(seconds: u32) -> Result<u32, String> {
    match seconds <= MAX_GRACE_PERIOD_S {
        true => Ok(seconds),
        false => Err(format!("HealthCheckGracePeriod must be 0 to {MAX_GRACE_PERIOD_S} seconds")),
    }
}

/// The health check policy of a group, read from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    pub types: Vec<HealthCheckType>,
    pub grace_period_ms: Millis,
    /// The group's HealthCheck process is suspended: instances are judged and shown, never
    /// replaced.
    pub suspended: bool,
    pub threshold: u32,
}

impl HealthPolicy {
    pub fn of(group: &ScalingGroup) -> HealthPolicy {
        HealthPolicy {
            types: group.health_check_types.clone(),
            grace_period_ms: Millis::from(group.health_check_grace_period_s) * 1000,
            suspended: group.is_suspended(crate::domain::Process::HealthCheck),
            threshold: UNHEALTHY_THRESHOLD,
        }
    }

    /// Whether the group checks health at all (`NONE` turns it off).
    pub fn enabled(&self) -> bool {
        !self.types.is_empty() && !self.types.contains(&HealthCheckType::NONE)
    }
}

/// An event the judgement raises, for the engine to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    /// `InstanceUnhealthy`, `InstanceHealthy` or `InstanceDrift`.
    pub kind: EventKind,
    pub level: EventLevel,
    pub content: String,
}

/// What a pass concludes about one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// The instance as it should be recorded now: its observation and its health.
    pub instance: Instance,
    /// Whether the record changed (the engine writes only then).
    pub changed: bool,
    /// `Some(why)` when the group removes it and makes a replacement (R17).
    pub replace: Option<String>,
    pub events: Vec<HealthEvent>,
}

/// Judges one instance from one look at it (R16, R17).
///
/// - A gone or stopped instance is unhealthy at once; one whose health check (its own, for
///   `ECS`, or its load balancers', for `LOAD_BALANCER`) fails is unhealthy after
///   `threshold` failures in a row, not counting those in the grace period after it was made
///   or changed. It is healthy again as soon as nothing is wrong.
/// - With `NONE` nothing is judged: the instance stays Healthy and its observation is shown.
/// - Only an InService instance is replaced, and not while the HealthCheck process is
///   suspended; Protected and Standby ones are shown Unhealthy and kept, Pending ones are the
///   scale-out's own business (they are not judged here).
/// - Drift (the record and the instance disagree on the image, packages or containers) is noted
///   on the observation and raised once when it appears or changes; it is judged only for
///   InService and Protected instances, whose record no task is changing.
pub fn judge(instance: &Instance, look: &Look, policy: &HealthPolicy, now: Millis) -> Judgement {
    let previous = instance.observed.as_ref();
    let enabled = policy.enabled();
    let problem = problem_of(look, policy);
    let grace_start = instance.created_at.max(instance.changed_at.unwrap_or(Millis::MIN));
    // (Creation times are spread by a millisecond each within a scale-out, so without a grace
    // period an instance is never in one, whatever its creation time says.)
    let in_grace = policy.grace_period_ms > 0 && now < grace_start.saturating_add(policy.grace_period_ms);
    let immediate = !look.exists || !look.running;
    let failed_checks = match (&problem, in_grace || immediate) {
        (None, _) => 0,
        (Some(_), true) => previous.map_or(0, |p| p.failed_checks),
        (Some(_), false) => previous.map_or(0, |p| p.failed_checks).saturating_add(1),
    };
    // One already Unhealthy (its health gate failed, say) stays so while its check fails: the
    // count in a row is what it takes to judge a healthy one ill, not to judge it well again.
    let already = instance.health_status == HealthStatus::Unhealthy;
    let unhealthy = enabled && problem.is_some() && (immediate || already || failed_checks >= policy.threshold);
    let health = if unhealthy { HealthStatus::Unhealthy } else { HealthStatus::Healthy };
    let drift = match instance.lifecycle_state {
        LifecycleState::InService | LifecycleState::Protected if look.exists => drift_of(instance, look),
        _ => previous.map(|p| p.drift.clone()).unwrap_or_default(),
    };
    let mut observed = Observed {
        exists: look.exists,
        running: look.running,
        image_id: look.image_id.clone(),
        packages: sorted(look.packages.clone()),
        containers: container_images(&look.containers),
        failed_checks,
        problem: problem.clone(),
        drift,
        since: now,
    };
    if let Some(previous) = previous {
        if previous.same_as(&observed) {
            observed.since = previous.since;
        }
    }

    let mut events = Vec::new();
    if health != instance.health_status {
        events.push(match health {
            HealthStatus::Unhealthy => HealthEvent {
                kind: EventKind::InstanceUnhealthy,
                level: EventLevel::Warn,
                content: format!(
                    "instance {} is unhealthy: {}",
                    instance.id,
                    problem.clone().unwrap_or_else(|| "its health check fails".into())
                ),
            },
            HealthStatus::Healthy => HealthEvent {
                kind: EventKind::InstanceHealthy,
                level: EventLevel::Info,
                content: format!("instance {} is healthy again", instance.id),
            },
        });
    }
    let old_drift = previous.map(|p| p.drift.as_slice()).unwrap_or_default();
    if !observed.drift.is_empty() && observed.drift.as_slice() != old_drift {
        events.push(HealthEvent {
            kind: EventKind::InstanceDrift,
            level: EventLevel::Warn,
            content: format!("instance {} differs from its record: {}", instance.id, observed.drift.join("; ")),
        });
    }

    let replace = match (unhealthy, instance.lifecycle_state, policy.suspended) {
        (true, LifecycleState::InService, false) => problem,
        _ => None,
    };
    let changed = previous != Some(&observed) || health != instance.health_status;
    let mut next = instance.clone();
    next.health_status = health;
    next.observed = Some(observed);
    Judgement { instance: next, changed, replace, events }
}

/// What is wrong with the instance by the group's health check types, if anything.
fn problem_of(look: &Look, policy: &HealthPolicy) -> Option<String> {
    if !look.exists {
        return Some("it is gone from the backend".into());
    }
    if !look.running {
        return Some("it is stopped".into());
    }
    if policy.types.contains(&HealthCheckType::ECS) && look.check == Some(HealthStatus::Unhealthy) {
        return Some("its health check fails".into());
    }
    if policy.types.contains(&HealthCheckType::LoadBalancer) && look.load_balancer_check == Some(false) {
        return Some("the load balancer's health check fails".into());
    }
    None
}

/// Where the record and the instance differ, one line each.
fn drift_of(instance: &Instance, look: &Look) -> Vec<String> {
    let mut drift = Vec::new();
    if instance.containers.len() > 1 || look.containers.len() > 1 {
        let recorded = container_images(&instance.containers);
        let running = container_images(&look.containers);
        if recorded != running {
            drift.push(format!("containers: recorded {}, runs {}", describe(&recorded), describe(&running)));
        }
    } else if !look.image_id.is_empty() && look.image_id != instance.image_id {
        drift.push(format!("image: recorded {}, runs {}", instance.image_id, look.image_id));
    }
    let recorded = sorted(instance.packages.clone());
    let running = sorted(look.packages.clone());
    if recorded != running {
        drift.push(format!("packages: recorded {}, has {}", describe(&recorded), describe(&running)));
    }
    drift
}

fn container_images(containers: &[ContainerSpec]) -> Vec<(String, String)> {
    sorted(containers.iter().map(|c| (c.name.clone(), c.image.clone())).collect())
}

fn sorted(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.sort();
    pairs
}

fn describe(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return "none".into();
    }
    pairs.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CreationType, HealthCheckType};
    use crate::ids::{InstanceId, ScalingGroupId};

    fn instance(state: LifecycleState) -> Instance {
        Instance {
            id: InstanceId::from_random(1),
            group_id: ScalingGroupId::from_random(2),
            lifecycle_state: state,
            health_status: HealthStatus::Healthy,
            creation_type: CreationType::AutoCreated,
            image_id: "img-1".into(),
            packages: vec![("app".into(), "1".into())],
            containers: vec![],
            tags: vec![],
            address: String::new(),
            created_at: 1_000,
            changed_at: None,
            observed: None,
            observed_at: None,
        }
    }

    fn look() -> Look {
        Look {
            exists: true,
            running: true,
            image_id: "img-1".into(),
            packages: vec![("app".into(), "1".into())],
            containers: vec![],
            check: Some(HealthStatus::Healthy),
            load_balancer_check: None,
        }
    }

    fn policy(types: &[HealthCheckType]) -> HealthPolicy {
        HealthPolicy { types: types.to_vec(), grace_period_ms: 0, suspended: false, threshold: 3 }
    }

    /// Judges `times` looks in a row, each from the record the previous one left.
    fn judge_times(mut instance: Instance, look: &Look, policy: &HealthPolicy, times: u32) -> Judgement {
        let mut last = judge(&instance, look, policy, 10_000);
        for n in 1..times {
            instance = last.instance.clone();
            last = judge(&instance, look, policy, 10_000 + i64::from(n));
        }
        last
    }

    #[test]
    fn a_healthy_instance_changes_once_then_never() {
        let first = judge(&instance(LifecycleState::InService), &look(), &policy(&[HealthCheckType::ECS]), 5_000);
        assert!(first.changed && first.events.is_empty() && first.replace.is_none());
        let again = judge(&first.instance, &look(), &policy(&[HealthCheckType::ECS]), 9_000);
        assert!(!again.changed, "the same look is not written again");
        assert_eq!(again.instance.observed.as_ref().map(|o| o.since), Some(5_000), "seen so since the first look");
    }

    #[test]
    fn stopped_and_gone_are_judged_at_once_and_replaced_only_in_service() {
        let stopped = Look { running: false, check: None, ..look() };
        for (state, replaced) in
            [(LifecycleState::InService, true), (LifecycleState::Standby, false), (LifecycleState::Protected, false)]
        {
            for seen in [&stopped, &Look::gone()] {
                let judged = judge(&instance(state), seen, &policy(&[HealthCheckType::ECS]), 5_000);
                assert_eq!(judged.instance.health_status, HealthStatus::Unhealthy);
                assert_eq!(judged.replace.is_some(), replaced, "{state}");
                assert_eq!(judged.events[0].kind, EventKind::InstanceUnhealthy);
            }
        }
        let suspended = HealthPolicy { suspended: true, ..policy(&[HealthCheckType::ECS]) };
        let judged = judge(&instance(LifecycleState::InService), &stopped, &suspended, 5_000);
        assert_eq!((judged.instance.health_status, judged.replace), (HealthStatus::Unhealthy, None));
    }

    #[test]
    fn failing_checks_count_after_the_grace_period_up_to_the_threshold() {
        let failing = Look { check: Some(HealthStatus::Unhealthy), ..look() };
        let ecs = policy(&[HealthCheckType::ECS]);
        assert_eq!(
            judge_times(instance(LifecycleState::InService), &failing, &ecs, 2).instance.health_status,
            HealthStatus::Healthy
        );
        let third = judge_times(instance(LifecycleState::InService), &failing, &ecs, 3);
        assert_eq!(third.instance.health_status, HealthStatus::Unhealthy);
        assert!(third.replace.is_some());
        // In the grace period after a change, failures are not counted.
        let mut changed = instance(LifecycleState::InService);
        changed.changed_at = Some(9_000);
        let graced = HealthPolicy { grace_period_ms: 60_000, ..ecs.clone() };
        let judged = judge_times(changed, &failing, &graced, 5);
        assert_eq!(judged.instance.observed.map(|o| o.failed_checks), Some(0));
        // The load balancer's check counts only for LOAD_BALANCER.
        let lb_failing = Look { load_balancer_check: Some(false), ..look() };
        assert_eq!(
            judge_times(instance(LifecycleState::InService), &lb_failing, &ecs, 3).instance.health_status,
            HealthStatus::Healthy
        );
        let lb = policy(&[HealthCheckType::LoadBalancer]);
        assert_eq!(
            judge_times(instance(LifecycleState::InService), &lb_failing, &lb, 3).instance.health_status,
            HealthStatus::Unhealthy
        );
        // NONE judges nothing.
        let none = policy(&[HealthCheckType::NONE]);
        let judged = judge(&instance(LifecycleState::InService), &Look::gone(), &none, 5_000);
        assert_eq!((judged.instance.health_status, judged.replace), (HealthStatus::Healthy, None));
    }

    #[test]
    fn an_unhealthy_instance_stays_so_while_its_check_fails() {
        let failing = Look { check: Some(HealthStatus::Unhealthy), ..look() };
        let mut ill = instance(LifecycleState::InService);
        ill.health_status = HealthStatus::Unhealthy;
        ill.changed_at = Some(9_000);
        let graced = HealthPolicy { grace_period_ms: 60_000, ..policy(&[HealthCheckType::ECS]) };
        let judged = judge(&ill, &failing, &graced, 10_000);
        assert_eq!(judged.instance.health_status, HealthStatus::Unhealthy, "not flipped back to Healthy");
        assert!(judged.replace.is_some() && judged.events.is_empty());
        let recovered = judge(&judged.instance, &look(), &graced, 11_000);
        assert_eq!(recovered.instance.health_status, HealthStatus::Healthy);
        assert_eq!(recovered.events[0].kind, crate::domain::EventKind::InstanceHealthy);
    }

    #[test]
    fn drift_is_noted_once_and_only_where_no_task_changes_the_record() {
        let other = Look { image_id: "img-2".into(), packages: vec![], ..look() };
        let ecs = policy(&[HealthCheckType::ECS]);
        let first = judge(&instance(LifecycleState::InService), &other, &ecs, 5_000);
        let drift = first.instance.observed.clone().map(|o| o.drift).unwrap_or_default();
        assert_eq!(
            drift,
            vec!["image: recorded img-1, runs img-2".to_string(), "packages: recorded app=1, has none".to_string()]
        );
        assert_eq!(first.events.iter().filter(|e| e.kind == EventKind::InstanceDrift).count(), 1);
        assert_eq!(first.instance.image_id, "img-1", "the record is kept");
        let again = judge(&first.instance, &other, &ecs, 6_000);
        assert!(again.events.is_empty(), "raised once");
        let standby = judge(&instance(LifecycleState::Standby), &other, &ecs, 5_000);
        assert!(standby.instance.observed.is_some_and(|o| o.drift.is_empty()));
    }
}
