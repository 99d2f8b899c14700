//! The scaling processes through every way a rolling update ends (docs/design.md R4, R10,
//! R11, R12): success, cancel with and without restore, a rollback of a waiting, a finished, a
//! cancelled or an empty source, and a rollback that fails. Each test checks the group's exact
//! set of suspended processes afterwards, including one the user suspended before the source
//! started, which no task ever resumes.

use rollscale_core::domain::{Process, ScalingGroup};
use rollscale_core::task::{InstanceStatus, TaskState, TaskStatus, WaitingStatus};
use rollscale_test_support::engine::*;
use serde_json::json;

use Process::*;

/// An image update of `group` in `batches` batches with the pause option `pause`.
fn image_update(group: &ScalingGroup, batches: u32, pause: &str) -> serde_json::Value {
    json!({"invokeType": "invoke", "scalingGroupId": group.id, "imageId": NEW_IMAGE, "sourceImageId": OLD_IMAGE,
           "batchNumber": batches, "batchPauseOption": pause})
}

fn rollback_of(group: &ScalingGroup, source: &TaskState) -> serde_json::Value {
    json!({"invokeType": "rollback", "scalingGroupId": group.id, "sourceExecutionId": source.id})
}

/// A group of `size` instances with ScheduledAction suspended by the user beforehand.
async fn group_with_scheduled_action_suspended(h: &Harness, size: u32) -> ScalingGroup {
    let group = h.group(size).await;
    h.service.set_processes(&group.id, &[ScheduledAction], true).await.expect("suspend");
    assert_eq!(suspended(h, &group).await, vec![ScheduledAction]);
    group
}

async fn suspended(h: &Harness, group: &ScalingGroup) -> Vec<Process> {
    let mut processes = h.service.group(&group.id).await.expect("group").suspended_processes;
    processes.sort();
    processes
}

/// Starts `params` and waits for it to end (or to wait for `until_waiting`).
async fn run(
    h: &Harness,
    template: &str,
    params: serde_json::Value,
    until_waiting: Option<WaitingStatus>,
) -> (TaskState, Vec<rollscale_core::task::InstanceWork>) {
    let task = h.start(template, params).await;
    h.wait(&task.id, until_waiting).await
}

async fn cancel(h: &Harness, task: &TaskState, restore: bool) -> TaskState {
    h.service.cancel_task(&task.id, restore).await.expect("cancel");
    let (done, _) = h.wait(&task.id, None).await;
    assert_eq!(done.status, TaskStatus::Cancelled);
    done
}

/// R4, R11: a success resumes every process but those suspended before it.
#[tokio::test]
async fn a_success_resumes_all_but_those_suspended_before() {
    let h = Harness::new(1).await;
    let group = group_with_scheduled_action_suspended(&h, 3).await;
    let (done, _) = run(&h, IMAGE_TEMPLATE, image_update(&group, 2, "Automatic"), None).await;
    assert_eq!(done.status, TaskStatus::Success, "{}", done.status_message);
    assert_eq!(suspended(&h, &group).await, vec![ScheduledAction]);
}

/// R4, R11 with its own processes: only `enterProcess` is suspended, only `exitProcess` resumed.
#[tokio::test]
async fn a_success_suspends_enter_process_and_resumes_exit_process() {
    let h = Harness::new(1).await;
    let group = group_with_scheduled_action_suspended(&h, 2).await;
    let mut params = image_update(&group, 2, "FirstBatchPause");
    params["enterProcess"] = json!(["ScaleIn", "ScaleOut", "ScheduledAction"]);
    params["exitProcess"] = json!(["ScaleIn", "ScheduledAction"]);
    let (paused, _) = run(&h, IMAGE_TEMPLATE, params, Some(WaitingStatus::BatchPaused)).await;
    assert_eq!(suspended(&h, &group).await, vec![ScaleIn, ScaleOut, ScheduledAction]);
    h.service.continue_task(&paused.id).await.expect("continue");
    let (done, _) = h.wait(&paused.id, None).await;
    assert_eq!(done.status, TaskStatus::Success);
    // ScaleOut is not in exitProcess; ScheduledAction was suspended before the task.
    assert_eq!(suspended(&h, &group).await, vec![ScaleOut, ScheduledAction]);
}

/// R10: a cancel leaves the processes suspended; a cancel with restore resumes them as a
/// success would.
#[tokio::test]
async fn a_cancel_leaves_them_suspended_and_a_restore_resumes_them() {
    for restore in [false, true] {
        let h = Harness::new(1).await;
        let group = group_with_scheduled_action_suspended(&h, 2).await;
        let victim = h.instances(&group).await[0].id.clone();
        h.fleet.set_failing(&victim, true);
        let (waiting, _) =
            run(&h, IMAGE_TEMPLATE, image_update(&group, 2, "Automatic"), Some(WaitingStatus::FailurePaused)).await;
        assert_eq!(suspended(&h, &group).await, Process::ALL.to_vec());
        cancel(&h, &waiting, restore).await;
        let expected = if restore { vec![ScheduledAction] } else { Process::ALL.to_vec() };
        assert_eq!(suspended(&h, &group).await, expected, "restore {restore}");
    }
}

/// R12, issue 8: `--pause FirstBatchPause`, then a rollback of the waiting task. The rollback
/// cancels its source first (which leaves the processes suspended), and resumes on success
/// what the source suspended, but not what was suspended before it.
#[tokio::test]
async fn a_rollback_of_a_waiting_task_resumes_what_its_source_suspended() {
    let h = Harness::new(1).await;
    let group = group_with_scheduled_action_suspended(&h, 4).await;
    let (source, _) =
        run(&h, IMAGE_TEMPLATE, image_update(&group, 2, "FirstBatchPause"), Some(WaitingStatus::BatchPaused)).await;
    assert_eq!(suspended(&h, &group).await, Process::ALL.to_vec());
    let (rollback, works) = run(&h, IMAGE_TEMPLATE, rollback_of(&group, &source), None).await;
    assert_eq!(rollback.status, TaskStatus::Success, "{}", rollback.status_message);
    assert_eq!(h.service.task(&source.id).await.unwrap().0.status, TaskStatus::Cancelled);
    assert_eq!(works.len(), 2, "the first batch's instances");
    assert_eq!(rollback.suspended_before, vec![ScheduledAction]);
    assert_eq!(suspended(&h, &group).await, vec![ScheduledAction]);
}

/// R12: a rollback of a finished source, whichever way it ended, ends with what was suspended
/// before the source, and what someone suspended after the source ended, suspended; nothing
/// else. (A process suspended again while the cancelled source still holds it suspended cannot
/// be told from the source's own, and is resumed with them.)
#[tokio::test]
async fn a_rollback_of_a_finished_task_resumes_what_its_source_left_suspended() {
    for (ending, suspend_since) in
        [("success", false), ("cancel", false), ("restore", false), ("success", true), ("restore", true)]
    {
        let h = Harness::new(1).await;
        let group = group_with_scheduled_action_suspended(&h, 2).await;
        let victim = h.instances(&group).await[1].id.clone();
        let source = if ending == "success" {
            let (done, _) = run(&h, IMAGE_TEMPLATE, image_update(&group, 2, "Automatic"), None).await;
            assert_eq!(done.status, TaskStatus::Success);
            done
        } else {
            // The second batch's instance fails: the first was changed, and the task waits.
            h.fleet.set_failing(&victim, true);
            let (waiting, _) =
                run(&h, IMAGE_TEMPLATE, image_update(&group, 2, "Automatic"), Some(WaitingStatus::FailurePaused)).await;
            h.fleet.set_failing(&victim, false);
            cancel(&h, &waiting, ending == "restore").await
        };
        let mut expected = vec![ScheduledAction];
        if suspend_since {
            h.service.set_processes(&group.id, &[AlarmNotification], true).await.unwrap();
            expected = vec![AlarmNotification, ScheduledAction];
        }
        let (rollback, works) = run(&h, IMAGE_TEMPLATE, rollback_of(&group, &source), None).await;
        assert_eq!(rollback.status, TaskStatus::Success, "{ending}: {}", rollback.status_message);
        assert!(!works.is_empty(), "{ending}");
        assert_eq!(suspended(&h, &group).await, expected, "{ending}, suspended since: {suspend_since}");
    }
}

/// R12 with R1: a rollback whose source changed nothing has no targets and succeeds at once,
/// and still resumes what the waiting source suspended.
#[tokio::test]
async fn a_rollback_without_targets_still_resumes_what_its_source_suspended() {
    let h = Harness::new(1).await;
    let group = group_with_scheduled_action_suspended(&h, 1).await;
    let victim = h.instances(&group).await[0].id.clone();
    h.fleet.set_failing(&victim, true);
    let (source, works) =
        run(&h, IMAGE_TEMPLATE, image_update(&group, 1, "Automatic"), Some(WaitingStatus::FailurePaused)).await;
    assert!(works.iter().all(|work| !work.applied), "the image never changed");
    assert_eq!(suspended(&h, &group).await, Process::ALL.to_vec());
    let (rollback, works) = run(&h, IMAGE_TEMPLATE, rollback_of(&group, &source), None).await;
    assert_eq!(rollback.status, TaskStatus::Success);
    assert!(works.is_empty() && !rollback.begun);
    assert_eq!(suspended(&h, &group).await, vec![ScheduledAction]);
}

/// R12 with its own processes: a process the user suspended before the source started stays
/// suspended even when it is in the source's `enterProcess` and `exitProcess`; one outside
/// `exitProcess` stays suspended too, as after a success of the source.
#[tokio::test]
async fn a_rollback_keeps_what_was_suspended_before_its_source_even_in_its_processes() {
    let h = Harness::new(1).await;
    let group = h.group(2).await;
    h.service.set_processes(&group.id, &[ScaleIn], true).await.unwrap();
    let mut params = image_update(&group, 2, "FirstBatchPause");
    params["enterProcess"] = json!(["ScaleIn", "ScaleOut", "HealthCheck"]);
    params["exitProcess"] = json!(["ScaleIn", "ScaleOut"]);
    let (source, _) = run(&h, IMAGE_TEMPLATE, params, Some(WaitingStatus::BatchPaused)).await;
    assert_eq!(suspended(&h, &group).await, vec![ScaleIn, ScaleOut, HealthCheck]);
    let (rollback, _) = run(&h, IMAGE_TEMPLATE, rollback_of(&group, &source), None).await;
    assert_eq!(rollback.status, TaskStatus::Success);
    assert_eq!(suspended(&h, &group).await, vec![ScaleIn, HealthCheck]);
}

/// R10 applied to a rollback that fails: cancelled, it leaves the processes suspended; cancelled
/// with restore, it resumes what its source suspended, as its success would.
#[tokio::test]
async fn a_failed_rollback_cancelled_leaves_them_suspended_and_restored_resumes_them() {
    for restore in [false, true] {
        let h = Harness::new(1).await;
        let group = group_with_scheduled_action_suspended(&h, 2).await;
        let (source, _) = run(&h, IMAGE_TEMPLATE, image_update(&group, 1, "Automatic"), None).await;
        assert_eq!(source.status, TaskStatus::Success);
        assert_eq!(suspended(&h, &group).await, vec![ScheduledAction]);
        let victim = h.instances(&group).await[0].id.clone();
        h.fleet.set_failing(&victim, true);
        let (rollback, works) =
            run(&h, IMAGE_TEMPLATE, rollback_of(&group, &source), Some(WaitingStatus::FailurePaused)).await;
        assert!(works.iter().any(|work| work.status == InstanceStatus::Failed));
        assert_eq!(suspended(&h, &group).await, Process::ALL.to_vec());
        cancel(&h, &rollback, restore).await;
        let expected = if restore { vec![ScheduledAction] } else { Process::ALL.to_vec() };
        assert_eq!(suspended(&h, &group).await, expected, "restore {restore}");
    }
}
