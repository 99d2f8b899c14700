//! `/metrics`' figures: those the engine kept as the work happened (`crate::metrics::Metrics`)
//! and those read when asked for — the tasks and instances by status (one aggregate statement
//! of the store each) and the leases this replica holds (from its memory).

use super::Service;
use crate::metrics::{Family, Kind, Sample, Value};
use crate::ServiceError;
use rollscale_core::domain::{HealthStatus, LifecycleState};

impl Service {
    /// Every figure of `/metrics`, as families the server writes out. What it costs: two
    /// aggregate statements of the store (the tasks' rows found by the `executions_parent`
    /// index; the instances counted from the `instances_state_health` index alone: about a
    /// millisecond at 10,000 instances), a look at the tasks this replica drives, and a copy of
    /// the counters. A family added later (a group's use of CPU and memory, say) is one more
    /// entry.
    pub async fn metrics(&self) -> Result<Vec<Family>, ServiceError> {
        let store = &self.engine.store;
        let tasks = store.task_counts().await?;
        let instances = store.instance_counts().await?;
        let (task_leases, reconciler_lease) = self.engine.leases_held();
        let mut families = self.engine.metrics.families();
        families.push(Family {
            name: "rollscale_tasks",
            help: "Tasks (rolling updates and image update tasks, not their instances' child executions) in the store, by template and status.",
            kind: Kind::Gauge,
            samples: tasks
                .into_iter()
                .map(|(template, status, count)| Sample {
                    labels: vec![("template", template), ("status", status)],
                    value: Value::Gauge(count as f64),
                })
                .collect(),
        });
        let mut by_state = Vec::with_capacity(LifecycleState::ALL.len() * HealthStatus::ALL.len());
        for state in LifecycleState::ALL {
            for health in HealthStatus::ALL {
                let count =
                    instances.iter().find(|(s, h, _)| s == state && h == health).map_or(0, |(_, _, count)| *count);
                by_state.push(Sample {
                    labels: vec![("lifecycle_state", state.as_str().into()), ("health_status", health.as_str().into())],
                    value: Value::Gauge(count as f64),
                });
            }
        }
        families.push(Family {
            name: "rollscale_instances",
            help: "Instances of every scaling group in the store, by lifecycle state and health status.",
            kind: Kind::Gauge,
            samples: by_state,
        });
        families.push(Family {
            name: "rollscale_leases_held",
            help: "Leases this replica holds now, by kind (task: a rolling update it drives; reconciler); always 0 without replication.",
            kind: Kind::Gauge,
            samples: vec![
                Sample { labels: vec![("kind", "task".into())], value: Value::Gauge(task_leases as f64) },
                Sample {
                    labels: vec![("kind", "reconciler".into())],
                    value: Value::Gauge(f64::from(u8::from(reconciler_lease))),
                },
            ],
        });
        Ok(families)
    }
}
