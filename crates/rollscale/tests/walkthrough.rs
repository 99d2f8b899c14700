//! The README's five-minute walkthrough, command by command, against `rollscale up` on the
//! simulated fleet: a batch pause and Continue, an injected failure, its retry, a rollback;
//! then the other operator actions it mentions (skip, cancel-instance, cancel with and without
//! restore) and `ListExecutions`'s filters and paging. Exit codes are the documented ones: 0
//! success, 3 waiting, 4 failed or cancelled.

use rollscale_test_support::up::{cli, cli_json, instances, temp_dir, up};
use serde_json::Value;
use std::path::Path;

const NEW_IMAGE: &str = "aliyun_2_1903_x64_20G_alibase_20200529.vhd";
const OLD_IMAGE: &str = "centos_7_8_x64_20G_alibase_20200717.vhd";
const SCRIPT_TEMPLATE: &str = "ACS-ESS-RollingUpdateByRunCommandInScalingGroup";

/// Runs a `--wait` command; returns its exit code and what it printed (stdout and stderr).
fn waited(dir: &Path, args: &[&str]) -> (i32, String) {
    let (code, stdout, stderr) = cli(dir, args);
    (code, format!("{stdout}{stderr}"))
}

fn instance(dir: &Path, group: &str, id: &str) -> Value {
    instances(dir, group).into_iter().find(|i| i["InstanceId"] == id).unwrap_or_else(|| panic!("{id} in {group}"))
}

fn suspended(dir: &Path, group: &str) -> Vec<Value> {
    let groups = cli_json(dir, &["ess", "DescribeScalingGroups", "--ScalingGroupId.1", group]);
    groups["ScalingGroups"]["ScalingGroup"][0]["SuspendedProcesses"]["SuspendedProcess"]
        .as_array()
        .expect("2014 shape")
        .clone()
}

/// The instances of a task as `ru show -o json` lists them: (instance id, batch, status).
fn shown(dir: &Path, execution: &str) -> Vec<(String, u64, String)> {
    let shown = cli_json(dir, &["ru", "show", execution, "-o", "json"]);
    shown["Instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|child| {
            (
                child["Parameters"]["instanceId"].as_str().expect("instance id").to_string(),
                child["Parameters"]["batch"].as_u64().expect("batch"),
                child["Status"].as_str().expect("status").to_string(),
            )
        })
        .collect()
}

fn start(dir: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = cli(dir, &[&["ru", "start"], args].concat());
    assert_eq!(code, 0, "ru start {args:?}: {stderr}");
    let id = stdout.trim().to_string();
    assert!(id.starts_with("exec-"), "ru start prints the execution id: {stdout}");
    id
}

#[test]
fn the_readme_walkthrough_and_every_operator_action_through_the_cli() {
    let dir = temp_dir("walkthrough");
    let server = up(&dir, &["--sim-latency-ms", "5"]);
    let (group, configuration) = (server.group_id.as_str(), server.configuration_id.as_str());

    // 2. A new image in 3 batches, pausing after the first: 4 of 10 done, the rest queued.
    let image = start(
        &dir,
        &[
            "--group",
            group,
            "--configuration",
            configuration,
            "--image",
            NEW_IMAGE,
            "--rollback-image",
            OLD_IMAGE,
            "--batches",
            "3",
            "--pause",
            "FirstBatchPause",
        ],
    );
    let (code, printed) = waited(&dir, &["ru", "wait", &image]);
    assert_eq!(code, 3, "waiting at the batch pause: {printed}");
    assert!(printed.contains("batch 1 of 3") && printed.contains("Waiting (BatchPaused)"), "{printed}");
    let (code, table, _) = cli(&dir, &["ru", "show", &image]);
    assert_eq!(code, 0);
    assert!(table.contains("Waiting (BatchPaused)") && table.contains("1 of 3"), "{table}");
    let children = shown(&dir, &image);
    let sizes: Vec<usize> = (1..=3).map(|b| children.iter().filter(|(_, batch, _)| *batch == b).count()).collect();
    assert_eq!(sizes, [4, 3, 3], "R2: larger batches first");
    assert!(children.iter().all(|(_, batch, status)| (*batch == 1) == (status == "Success")), "{children:?}");
    assert_eq!(suspended(&dir, group).len(), 5, "R4: the group's processes are suspended");

    // 3. An instance of the next batch fails once; Continue runs the batch and pauses on it.
    let victim = children.iter().find(|(_, batch, _)| *batch == 2).expect("batch 2").0.clone();
    cli_json(&dir, &["ess", "InjectFault", "--InstanceId", &victim, "--Times", "1"]);
    let (code, printed) = waited(&dir, &["ru", "continue", &image, "--wait"]);
    assert_eq!(code, 3, "{printed}");
    assert!(printed.contains("batch 2 of 3") && printed.contains("Waiting (FailurePaused)"), "{printed}");
    assert!(printed.contains("failed 1"), "{printed}");
    let failed = instance(&dir, group, &victim);
    assert_eq!((failed["LifecycleState"].as_str(), failed["LoadBalancerWeight"].as_u64()), (Some("Standby"), Some(0)));
    assert!(shown(&dir, &image).iter().filter(|(_, batch, _)| *batch == 3).all(|(_, _, status)| status == "Queued"));

    // 4. Retry: it succeeds, gets its weight back, and the task runs to the end.
    let (code, printed) = waited(&dir, &["ru", "retry", &image, &victim, "--wait"]);
    assert_eq!(code, 0, "{printed}");
    assert!(printed.contains("Success"), "{printed}");
    for i in instances(&dir, group) {
        assert_eq!((i["ImageId"].as_str(), i["LifecycleState"].as_str()), (Some(NEW_IMAGE), Some("InService")), "{i}");
        assert_eq!(i["LoadBalancerWeight"], 100, "{i}");
    }
    assert!(suspended(&dir, group).is_empty(), "R11: processes resumed");

    // 5. Roll it back: every instance and the configuration go back to the old image.
    let (code, printed) = waited(&dir, &["ru", "rollback", &image, "--batches", "2", "--wait"]);
    assert_eq!(code, 0, "{printed}");
    assert!(instances(&dir, group).iter().all(|i| i["ImageId"] == OLD_IMAGE));
    let configurations = cli_json(&dir, &["ess", "DescribeScalingConfigurations", "--ScalingGroupId", group]);
    assert_eq!(configurations["ScalingConfigurations"]["ScalingConfiguration"][0]["ImageId"], OLD_IMAGE);
    let (code, list, _) = cli(&dir, &["ru", "list"]);
    assert_eq!(code, 0);
    let rows: Vec<&str> = list.lines().filter(|line| line.starts_with("exec-")).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows[0].contains("rollback") && rows[0].contains("Success"), "newest first: {list}");
    assert!(rows[1].contains(&image) && rows[1].contains("invoke") && rows[1].contains("Success"), "{list}");

    // Skip and cancel-instance: two failures in one batch, one decision each; the task goes on.
    let all: Vec<String> =
        instances(&dir, group).iter().map(|i| i["InstanceId"].as_str().unwrap().to_string()).collect();
    for id in &all[..2] {
        cli_json(&dir, &["ess", "InjectFault", "--InstanceId", id, "--Times", "1"]);
    }
    let script = start(&dir, &["--group", group, "--script", "echo hello\nhostname", "--batches", "1"]);
    let (code, printed) = waited(&dir, &["ru", "wait", &script]);
    assert_eq!(code, 3, "{printed}");
    assert!(printed.contains("Waiting (FailurePaused)") && printed.contains("failed 2"), "{printed}");
    let (code, printed) = waited(&dir, &["ru", "skip", &script, &all[0]]);
    assert_eq!(code, 0, "{printed}");
    let (code, printed) = waited(&dir, &["ru", "cancel-instance", &script, &all[1], "--wait"]);
    assert_eq!(code, 0, "the last decision lets the task finish: {printed}");
    let statuses: Vec<(String, String)> =
        shown(&dir, &script).into_iter().map(|(id, _, status)| (id, status)).collect();
    let status_of = |id: &str| statuses.iter().find(|(i, _)| i == id).map(|(_, s)| s.as_str());
    assert_eq!(status_of(&all[0]), Some("Success"), "R8: a skipped instance shows Success");
    assert_eq!(status_of(&all[1]), Some("Failed"), "R8: a cancelled instance shows Failed");
    assert!(all[2..].iter().all(|id| status_of(id) == Some("Success")), "{statuses:?}");
    let outputs = cli_json(&dir, &["oos", "ListExecutions", "--ParentExecutionId", &script, "--MaxResults", "100"]);
    let third = outputs["Executions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|child| child["Parameters"]["instanceId"] == all[2].as_str())
        .expect("a child per instance");
    let third: Value = serde_json::from_str(third["Outputs"].as_str().unwrap()).unwrap();
    assert_eq!(third["output"], format!("hello\n{}\n", all[2]), "the script's output, per instance");
    for id in &all[..2] {
        assert_eq!(instance(&dir, group, id)["LifecycleState"], "Standby", "R8: left in Standby for the operator");
    }
    cli_json(
        &dir,
        &["ess", "ExitStandby", "--ScalingGroupId", group, "--InstanceId.1", &all[0], "--InstanceId.2", &all[1]],
    );
    assert!(instances(&dir, group).iter().all(|i| i["LifecycleState"] == "InService"));

    // Cancel at a batch pause, without restore: processes stay suspended, as on the cloud.
    let kept = start(&dir, &["--group", group, "--script", "uptime", "--batches", "2", "--pause", "FirstBatchPause"]);
    assert_eq!(waited(&dir, &["ru", "wait", &kept]).0, 3);
    let (code, printed) = waited(&dir, &["ru", "cancel", &kept, "--wait"]);
    assert_eq!(code, 4, "cancelled: {printed}");
    assert_eq!(suspended(&dir, group).len(), 5, "R10: processes stay suspended");
    let resumed = ["ess", "ResumeProcesses", "--ScalingGroupId", group, "--Process.1", "ScaleIn", "--Process.2"];
    cli_json(
        &dir,
        &[&resumed[..], &["ScaleOut", "--Process.3", "HealthCheck", "--Process.4", "AlarmNotification"]].concat(),
    );
    cli_json(&dir, &["ess", "ResumeProcesses", "--ScalingGroupId", group, "--Process.1", "ScheduledAction"]);
    assert!(suspended(&dir, group).is_empty());

    // Cancel with restore: processes resume as a success would have resumed them.
    let restored =
        start(&dir, &["--group", group, "--script", "uptime", "--batches", "2", "--pause", "FirstBatchPause"]);
    assert_eq!(waited(&dir, &["ru", "wait", &restored]).0, 3);
    let (code, printed) = waited(&dir, &["ru", "cancel", &restored, "--restore", "--wait"]);
    assert_eq!(code, 4, "{printed}");
    assert!(suspended(&dir, group).is_empty(), "R10 restore: processes resumed");
    assert!(instances(&dir, group).iter().all(|i| i["LifecycleState"] == "InService"));
    let after = shown(&dir, &restored);
    assert!(after.iter().all(|(_, batch, status)| if *batch == 1 {
        status == "Success"
    } else {
        status == "Cancelled"
    }));

    // ListExecutions: by template, by status, and page by page.
    let scripts = cli_json(&dir, &["oos", "ListExecutions", "--TemplateName", SCRIPT_TEMPLATE]);
    let ids: Vec<&str> =
        scripts["Executions"].as_array().unwrap().iter().map(|e| e["ExecutionId"].as_str().unwrap()).collect();
    assert_eq!(ids, [restored.as_str(), kept.as_str(), script.as_str()], "newest first");
    let cancelled = cli_json(&dir, &["oos", "ListExecutions", "--Status", "Cancelled"]);
    let ids: Vec<&str> =
        cancelled["Executions"].as_array().unwrap().iter().map(|e| e["ExecutionId"].as_str().unwrap()).collect();
    assert_eq!(ids, [restored.as_str(), kept.as_str()]);
    let mut token = String::new();
    let mut paged = Vec::new();
    loop {
        let mut args = vec!["oos", "ListExecutions", "--MaxResults", "2"];
        if !token.is_empty() {
            args.extend(["--NextToken", token.as_str()]);
        }
        let page = cli_json(&dir, &args);
        assert_eq!(page["TotalCount"], 5, "{page}");
        let items = page["Executions"].as_array().unwrap();
        assert!(items.len() <= 2);
        paged.extend(items.iter().map(|e| e["ExecutionId"].as_str().unwrap().to_string()));
        token = page["NextToken"].as_str().unwrap_or_default().to_string();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(paged.len(), 5, "every task once: {paged:?}");
    assert_eq!(paged[..3], [restored.clone(), kept.clone(), script.clone()]);
    assert_eq!(paged[4], image);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Copies the files of a stopped `rollscale up`'s data directory (the database and its WAL).
fn copy_data(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("data")).expect("data dir");
    for entry in std::fs::read_dir(from.join("data")).expect("data dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join("data").join(entry.file_name())).expect("copy");
        }
    }
    std::fs::copy(from.join("config.json"), to.join("config.json")).expect("profile");
}

/// The instances of a script task that failed, once it waits on them.
fn failed_instances(dir: &Path, group: &str, script: &str) -> Vec<String> {
    let id = start(dir, &["--group", group, "--script", script, "--batches", "1"]);
    let (code, printed) = waited(dir, &["ru", "wait", &id]);
    let mut failed: Vec<String> =
        shown(dir, &id).into_iter().filter(|(_, _, status)| status == "Failed").map(|(id, _, _)| id).collect();
    failed.sort();
    assert_eq!(code, if failed.is_empty() { 0 } else { 3 }, "{printed}");
    failed
}

/// `rollscale up`'s fault flags: `--sim-fail-rate` with `--seed` replays the same faults on
/// the same group; `--sim-fail-instance` fails one instance, `--sim-fail-script` any script
/// that contains the text.
#[test]
fn the_simulated_fleet_fails_what_up_is_told_to() {
    let first = temp_dir("faults-a");
    let replay = temp_dir("faults-b");
    let (group, victim) = {
        let mut server = up(&first, &["--sim-latency-ms", "1"]);
        let victim = instances(&first, &server.group_id)[3]["InstanceId"].as_str().unwrap().to_string();
        server.stop();
        (server.group_id.clone(), victim)
    };
    copy_data(&first, &replay);

    let seeded = ["--sim-latency-ms", "1", "--sim-fail-rate", "0.5", "--seed", "7"];
    let failed = {
        let _server = up(&first, &seeded);
        failed_instances(&first, &group, "echo chance")
    };
    assert!(!failed.is_empty() && failed.len() < 10, "about half of 10 fail: {failed:?}");
    let replayed = {
        let _server = up(&replay, &seeded);
        failed_instances(&replay, &group, "echo chance")
    };
    assert_eq!(replayed, failed, "the same seed fails the same instances");

    let targeted = temp_dir("faults-c");
    copy_data(&replay, &targeted);
    let _server =
        up(&targeted, &["--sim-latency-ms", "1", "--sim-fail-instance", &victim, "--sim-fail-script", "BOOM"]);
    // The replayed task waits on its failures; a cancel frees the group for the next ones.
    let waiting = {
        let listed = cli_json(&targeted, &["oos", "ListExecutions", "--Status", "Waiting"]);
        listed["Executions"][0]["ExecutionId"].as_str().expect("the waiting task").to_string()
    };
    let (code, printed) = waited(&targeted, &["ru", "cancel", &waiting, "--restore", "--wait"]);
    assert_eq!(code, 4, "{printed}");
    assert!(instances(&targeted, &group).iter().all(|i| i["LifecycleState"] == "InService"), "restored");
    assert_eq!(failed_instances(&targeted, &group, "echo hello"), std::slice::from_ref(&victim));
    let (code, _) = waited(&targeted, &["ru", "skip", &latest(&targeted), &victim, "--wait"]);
    assert_eq!(code, 0);
    cli_json(&targeted, &["ess", "ExitStandby", "--ScalingGroupId", &group, "--InstanceId.1", &victim]);
    assert_eq!(failed_instances(&targeted, &group, "echo BOOM").len(), 10, "every instance runs the failing script");
    for dir in [first, replay, targeted] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The newest rolling update's execution id.
fn latest(dir: &Path) -> String {
    let listed = cli_json(dir, &["oos", "ListExecutions", "--MaxResults", "1"]);
    listed["Executions"][0]["ExecutionId"].as_str().expect("a task").to_string()
}
