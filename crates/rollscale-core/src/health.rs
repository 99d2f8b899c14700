//! The group's health check as pure rules (R16, R17): what one look at an instance found
//! ([`Look`]), what the record keeps of it ([`Observed`]), and the judgement of a pass
//! ([`judge`]): the instance's health, whether the group replaces it, and the events to raise.
//! The engine takes the looks through the drivers and hands them in with the time.

use crate::domain::{
    ContainerSpec, EventLevel, HealthCheckType, HealthStatus, Instance, LifecycleState, Millis, ScalingGroup,
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
    pub kind: &'static str,
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
    let in_grace = now < grace_start.saturating_add(policy.grace_period_ms);
    let immediate = !look.exists || !look.running;
    let failed_checks = match (&problem, in_grace || immediate) {
        (None, _) => 0,
        (Some(_), true) => previous.map_or(0, |p| p.failed_checks),
        (Some(_), false) => previous.map_or(0, |p| p.failed_checks).saturating_add(1),
    };
    let unhealthy = enabled && problem.is_some() && (immediate || failed_checks >= policy.threshold);
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
                kind: "InstanceUnhealthy",
                level: EventLevel::Warn,
                content: format!(
                    "instance {} is unhealthy: {}",
                    instance.id,
                    problem.clone().unwrap_or_else(|| "its health check fails".into())
                ),
            },
            HealthStatus::Healthy => HealthEvent {
                kind: "InstanceHealthy",
                level: EventLevel::Info,
                content: format!("instance {} is healthy again", instance.id),
            },
        });
    }
    let old_drift = previous.map(|p| p.drift.as_slice()).unwrap_or_default();
    if !observed.drift.is_empty() && observed.drift.as_slice() != old_drift {
        events.push(HealthEvent {
            kind: "InstanceDrift",
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
