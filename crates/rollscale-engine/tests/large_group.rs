//! A rolling update of a 10,000-instance group over the simulated fleet: it succeeds, every
//! instance is changed once, and the store's writes per instance stay a small constant (they
//! do not grow with the group). No duration is asserted; `cargo bench -p rollscale-engine`
//! prints the figures.

use rollscale_core::domain::LifecycleState;
use rollscale_core::task::{InstanceStatus, TaskStatus};
use rollscale_test_support::engine::*;
use serde_json::json;
use std::time::Duration;

const SIZE: u32 = 10_000;

/// Store writes per instance of one image update, measured at `size` instances.
async fn writes_per_instance(size: u32) -> f64 {
    let h = Harness::new(0).await;
    let group = h.group(size).await;
    assert_eq!(h.instances(&group).await.len(), size as usize);
    let before = h.store.total_changes().await.expect("changes");
    let params = json!({"invokeType": "invoke", "scalingGroupId": group.id, "imageId": NEW_IMAGE, "batchNumber": 5});
    let task = h.start(IMAGE_TEMPLATE, params).await;
    // Poll as `rollscale ru wait` does: the task and its counts, not its children.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let done = loop {
        let (task, counts) = h.service.task_summary(&task.id).await.expect("summary");
        if task.status.is_final() {
            assert_eq!(counts.success, size, "{counts:?}");
            break task;
        }
        assert!(tokio::time::Instant::now() < deadline, "{size} instances: stuck at {}", task.describe_status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done.status, TaskStatus::Success, "{}", done.status_message);
    let writes = h.store.total_changes().await.expect("changes") - before;
    let (_, works) = h.service.task(&done.id).await.expect("task");
    assert!(works.iter().all(|work| work.status == InstanceStatus::Success && work.applied && !work.in_standby));
    let calls = h.fleet.calls();
    assert_eq!(calls.replace_image - calls.noop_replace_image, u64::from(size), "each instance changed once");
    for instance in h.instances(&group).await {
        assert_eq!((instance.image_id.as_str(), instance.lifecycle_state), (NEW_IMAGE, LifecycleState::InService));
    }
    writes as f64 / f64::from(size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_instances_roll_with_a_constant_number_of_writes_each() {
    let small = writes_per_instance(100).await;
    let large = writes_per_instance(SIZE).await;
    println!("store writes per instance: {small:.1} at 100 instances, {large:.1} at {SIZE}");
    // A constant: what each instance costs does not grow with the group (R14's journal, the
    // batched writes), within a little for the per-task and per-batch rows.
    assert!(large <= small + 0.5, "writes per instance grew from {small:.1} to {large:.1}");
    assert!(large < 20.0, "{large:.1} writes per instance");
}
