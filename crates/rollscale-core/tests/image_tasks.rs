//! Image update tasks: the template's parameters, the schedule's invariants (proptests) and
//! the executions' transitions.

use proptest::prelude::*;
use rollscale_core::ids::ExecutionId;
use rollscale_core::image_task::{self, ImageUpdateExecution};
use rollscale_core::schedule::{Cron, Schedule, ScheduleKind, TimerTrigger};
use rollscale_core::task::TaskStatus;
use serde_json::json;

/// What a start does with its parameters at `now`: parse them, then fix the schedule.
fn parse(
    params: &serde_json::Value,
    now: rollscale_core::domain::Millis,
) -> Result<(image_task::ImageUpdateSpec, Option<rollscale_core::schedule::Schedule>), rollscale_core::error::CoreError>
{
    let spec = image_task::parse_start(params)?;
    let schedule = spec.first_schedule(now)?;
    Ok((spec, schedule))
}

const NOW: i64 = 1_796_083_200_000; // 2026-12-01T00:00:00Z
const HOUR: i64 = 3_600_000;

fn params(extra: serde_json::Value) -> serde_json::Value {
    let mut base = json!({"instanceId": "i-source1", "scalingConfigurationIds": ["asc-one", "asc-two"]});
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[test]
fn defaults_name_the_image_after_the_instance_and_run_now() {
    let (spec, schedule) = parse(&params(json!({})), NOW).expect("spec");
    assert_eq!(spec.target_image_name, "UpdateImage_from_i-source1");
    assert_eq!(spec.configuration_ids.len(), 2);
    assert!(spec.tags.is_empty() && spec.assume_role.is_empty() && schedule.is_none());
    let execution = ImageUpdateExecution::run_now(ExecutionId::from_random(1), spec, NOW);
    assert_eq!(execution.status, TaskStatus::Running);
    assert_eq!(
        execution.firing.unwrap().image_name,
        format!("UpdateImage_from_i-source1_on_{}_at_20261201T000000Z", ExecutionId::from_random(1))
    );
}

#[test]
fn bad_parameters_are_refused_with_a_code() {
    let trigger = json!({"Type": "rate", "Expression": "1 day", "EndDate": "2027-01-01T00:00:00Z"});
    for (bad, code) in [
        (json!({"instanceId": ""}), "MissingParameter"),
        (json!({"instanceId": "vm-1"}), "InvalidParameter"),
        (json!({"scalingConfigurationIds": []}), "InvalidParameter"),
        (json!({"scalingConfigurationIds": "asc-one"}), "InvalidParameter"),
        (json!({"scalingConfigurationIds": ["asc-one", "asc-one"]}), "InvalidParameter"),
        (json!({"scalingConfigurationIds": ["asg-one"]}), "InvalidParameter"),
        (json!({"targetImageName": "1image"}), "InvalidParameter"),
        (json!({"targetImageName": "x"}), "InvalidParameter"),
        (json!({"targetImageName": "http://image"}), "InvalidParameter"),
        (json!({"targetImageName": "my image"}), "InvalidParameter"),
        (json!({"targetImageName": "a".repeat(129)}), "InvalidParameter"),
        (json!({"tags": [{"Value": "no key"}]}), "InvalidParameter"),
        (json!({"tags": "not json"}), "InvalidParameter"),
        (json!({"imageId": "m-1"}), "InvalidParameter"),
        (json!({"timerTrigger": trigger}), "InvalidParameter"), // no OOSAssumeRole
        (
            json!({"timerTrigger": {"Type": "cron", "Expression": "0 0 2 * * ?"}, "OOSAssumeRole": "r"}),
            "InvalidParameter",
        ),
    ] {
        let error = parse(&params(bad.clone()), NOW).expect_err(&bad.to_string());
        assert_eq!(error.code(), code, "{bad}: {error}");
    }
    let missing = parse(&json!({"instanceId": "i-1"}), NOW).unwrap_err();
    assert_eq!(missing.code(), "MissingParameter");
    let ok = parse(
        &params(json!({"timerTrigger": trigger, "OOSAssumeRole": "OOSServiceRole", "targetImageName": "web:v2_x-y",
                       "tags": [{"Key": "app", "Value": "web"}]})),
        NOW,
    )
    .expect("scheduled");
    assert_eq!(ok.0.tags[0].key, "app");
    assert_eq!(ok.1.unwrap().next_after(NOW), Some(NOW + 24 * HOUR));
}

#[test]
fn a_periodic_task_fires_children_then_ends_success_and_missed_slots_fire_once() {
    let trigger = json!({"Type": "rate", "Expression": "1 hour", "EndDate": "2026-12-01T05:30:00Z"});
    let (spec, schedule) = parse(&params(json!({"timerTrigger": trigger, "OOSAssumeRole": "r"})), NOW).unwrap();
    let first = schedule.unwrap().next_after(NOW).unwrap();
    let mut parent = ImageUpdateExecution::scheduled(ExecutionId::from_random(1), spec, first, NOW);
    assert!(!parent.is_due(NOW));
    assert!(parent.fire(ExecutionId::from_random(2), NOW).is_err());
    let (running, child) = parent.fire(ExecutionId::from_random(2), NOW + HOUR).unwrap();
    assert_eq!(running.status, TaskStatus::Running);
    assert_eq!(child.parent_id.as_ref(), Some(&parent.id));
    assert!(child.spec.trigger.is_none());
    assert!(!running.is_due(NOW + 10 * HOUR), "one child at a time");
    let done = child.image_made("m-1", NOW + HOUR).configurations_updated(NOW + HOUR);
    assert_eq!(done.outputs(), json!({"imageId": "m-1"}));
    parent = running.child_ended(&done, NOW + HOUR);
    assert_eq!(parent.status, TaskStatus::Waiting);
    assert_eq!(parent.schedule.as_ref().unwrap().next_fire_at, Some(NOW + 2 * HOUR));
    // Down from 01:00 to 04:10: one firing, then the next slot is 05:00.
    let (running, child) = parent.fire(ExecutionId::from_random(3), NOW + 4 * HOUR + 600_000).unwrap();
    assert_eq!(running.schedule.as_ref().unwrap().next_fire_at, Some(NOW + 5 * HOUR));
    let failed = child.failed("the instance is gone", NOW + 4 * HOUR);
    parent = running.child_ended(&failed, NOW + 4 * HOUR);
    assert_eq!(parent.status, TaskStatus::Waiting, "a failed firing keeps the schedule");
    let (running, child) = parent.fire(ExecutionId::from_random(4), NOW + 5 * HOUR).unwrap();
    assert_eq!(running.schedule.as_ref().unwrap().next_fire_at, None, "06:00 is past the expiry");
    parent = running.child_ended(&child.image_made("m-3", 0).configurations_updated(0), NOW + 5 * HOUR);
    assert_eq!(parent.status, TaskStatus::Waiting, "until the expiry at 05:30");
    assert!(!parent.is_due(NOW + 6 * HOUR));
    assert!(parent.expire(NOW + 5 * HOUR + 1_799_999).is_none());
    parent = parent.expire(NOW + 5 * HOUR + 1_800_000).expect("expired");
    assert_eq!(parent.status, TaskStatus::Success);
    assert_eq!(parent.schedule.as_ref().unwrap().firings, 3);
    assert_eq!(parent.outputs(), json!({"imageId": "m-3"}));
}

#[test]
fn a_firing_missed_past_the_expiry_is_not_made_and_the_task_ends() {
    let trigger = json!({"Type": "rate", "Expression": "1 hour", "EndDate": "2026-12-01T05:30:00Z"});
    let (spec, schedule) = parse(&params(json!({"timerTrigger": trigger, "OOSAssumeRole": "r"})), NOW).unwrap();
    let parent = ImageUpdateExecution::scheduled(
        ExecutionId::from_random(1),
        spec,
        schedule.unwrap().next_after(NOW).unwrap(),
        NOW,
    );
    // Down from before 01:00 until 06:00: the 01:00 firing was missed and the task expired.
    assert!(parent.is_due(NOW + 5 * HOUR), "still before the expiry: it fires once");
    assert!(!parent.is_due(NOW + 6 * HOUR));
    assert!(parent.expire(NOW + 5 * HOUR).is_none());
    let ended = parent.expire(NOW + 6 * HOUR).expect("expired");
    assert_eq!(ended.status, TaskStatus::Success);
    assert_eq!(ended.schedule.unwrap().firings, 0);
}

#[test]
fn cancel_stops_a_schedule_but_not_a_firing() {
    let trigger = json!({"Type": "at", "Expression": "2026-12-02T02:00:00Z"});
    let (spec, schedule) = parse(&params(json!({"timerTrigger": trigger, "OOSAssumeRole": "r"})), NOW).unwrap();
    let parent = ImageUpdateExecution::scheduled(
        ExecutionId::from_random(1),
        spec.clone(),
        schedule.unwrap().next_after(NOW).unwrap(),
        NOW,
    );
    let cancelled = parent.cancel(NOW).unwrap();
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert!(!cancelled.is_due(i64::MAX));
    assert_eq!(cancelled.cancel(NOW).unwrap_err().code(), "IncorrectExecutionStatus");
    let firing = ImageUpdateExecution::run_now(ExecutionId::from_random(2), spec, NOW);
    assert_eq!(firing.cancel(NOW).unwrap_err().code(), "IncorrectExecutionStatus");
}

fn cron_strategy() -> impl Strategy<Value = String> {
    let field = |max: u32, min: u32| {
        prop_oneof![
            Just("*".to_string()),
            (min..=max).prop_map(|v| v.to_string()),
            (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            (1..=max.max(1)).prop_map(|s| format!("*/{s}")),
            (min..=max, min..=max).prop_map(|(a, b)| format!("{a},{b}")),
        ]
    };
    (field(59, 0), field(59, 0), field(23, 0), field(28, 1), field(12, 1), field(7, 1), any::<bool>()).prop_map(
        |(s, m, h, dom, mon, dow, by_dom)| {
            if by_dom {
                format!("{s} {m} {h} {dom} {mon} ?")
            } else {
                format!("{s} {m} {h} ? {mon} {dow}")
            }
        },
    )
}

fn zone() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("UTC"),
        Just("Asia/Shanghai"),
        Just("Europe/Berlin"),
        Just("America/New_York"),
        Just("Australia/Lord_Howe")
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The next firing is strictly after `now`, never before the start nor at or after the
    /// end, and matches the expression (asking again just before it gives it again).
    #[test]
    fn cron_next_is_after_now_and_before_the_end(
        expression in cron_strategy(),
        zone in zone(),
        offset_h in 0i64..24 * 400,
        length_h in 1i64..24 * 800,
    ) {
        let now = NOW + offset_h * HOUR;
        let trigger = TimerTrigger::from_value(&json!({
            "Type": "cron", "Expression": expression, "TimeZone": zone,
            "EndDate": rollscale_core::schedule::format_utc(now + length_h * HOUR),
        })).unwrap();
        let schedule: Schedule = trigger.compile(NOW).unwrap();
        if let Some(next) = schedule.next_after(now) {
            prop_assert!(next > now);
            prop_assert!(next < schedule.end.unwrap());
            prop_assert_eq!(schedule.next_after(next - 1), Some(next));
            let ScheduleKind::Cron(cron) = &schedule.kind else { unreachable!() };
            prop_assert_eq!(cron.next_after(next - 1, schedule.time_zone, None), Some(next));
        }
    }

    /// A rate's firings are its start plus whole periods, strictly after `now`, before the end,
    /// and the first one after `now` (no slot in between).
    #[test]
    fn rate_next_is_the_first_slot_after_now(
        minutes in 1i64..3000,
        start_offset in -1000i64..1000,
        now_offset in -5000i64..500_000,
        length in 1i64..1_000_000,
    ) {
        let start = NOW + start_offset * 60_000;
        let end = start + length * 60_000;
        let schedule = Schedule {
            kind: ScheduleKind::Rate { period_ms: minutes * 60_000, anchor: start },
            time_zone: chrono_tz::Tz::UTC,
            start: Some(start),
            end: Some(end),
        };
        let now = NOW + now_offset * 60_000 + 17;
        match schedule.next_after(now) {
            Some(next) => {
                prop_assert!(next > now && next >= start && next < end);
                prop_assert_eq!((next - start) % (minutes * 60_000), 0);
                prop_assert!(next - minutes * 60_000 <= now || next == start);
            }
            None => prop_assert!(now + minutes * 60_000 >= end || now >= end),
        }
    }

    #[test]
    fn parsing_never_panics(expression in "[0-9*?/,A-Z -]{0,30}") {
        let _ = Cron::parse(&expression);
    }
}
