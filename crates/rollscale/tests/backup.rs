//! `rollscale backup` while `rollscale up` serves: a rolling update waits at its batch pause, the
//! store is copied with its server key, the server is killed (`kill -9`) and its data directory
//! removed, and `rollscale up --data-dir BACKUP` serves the copy: the profile's AccessKey still
//! signs calls, and Continue takes the task to Success with every instance updated once.

use rollscale_test_support::up::{bin, cli, cli_json, instances, start_in, temp_dir, up};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const NEW_IMAGE: &str = "aliyun_2_1903_x64_20G_alibase_20200529.vhd";

/// `rollscale backup ARGS…`: (exit code, stdout, stderr).
fn backup(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(bin())
        .arg("backup")
        .args(args)
        .env_remove("ROLLSCALE_DATA_DIR")
        .env_remove("ROLLSCALE_DATABASE_URL")
        .output()
        .expect("rollscale backup runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn events(dir: &Path, execution: &str) -> Vec<String> {
    let events = cli_json(dir, &["ess", "DescribeEvents", "--ExecutionId", execution, "--PageSize", "500"]);
    events["Events"]["Event"]
        .as_array()
        .expect("2014 shape")
        .iter()
        .map(|e| e["Kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_backup_taken_while_up_serves_is_served_by_up_and_its_task_finishes() {
    let dir = temp_dir("backup");
    let data = dir.join("data");
    let mut server = up(&dir, &["--sim-latency-ms", "2"]);
    let group = server.group_id.clone();
    let before: BTreeSet<String> =
        instances(&dir, &group).iter().map(|i| i["InstanceId"].as_str().expect("id").to_string()).collect();
    assert_eq!(before.len(), 10);

    // A rolling update that waits after its first batch.
    let (code, stdout, stderr) = cli(
        &dir,
        &["ru", "start", "--group", &group, "--image", NEW_IMAGE, "--batches", "3", "--pause", "FirstBatchPause"],
    );
    assert_eq!(code, 0, "{stderr}");
    let id = stdout.trim().to_string();
    let (code, stdout, stderr) = cli(&dir, &["ru", "wait", &id]);
    assert_eq!(code, 3, "waiting at the batch pause: {stdout}{stderr}");

    // Copied while `up` serves (and holds its lock on the database).
    let copy = dir.join("backups").join("paused");
    let copy_text = copy.to_str().expect("UTF-8");
    let data_text = data.to_str().expect("UTF-8");
    let (code, stdout, stderr) = backup(&[copy_text, "--data-dir", data_text]);
    assert_eq!(code, 0, "rollscale backup: {stdout}{stderr}");
    assert!(stdout.contains("rollscale up --data-dir"), "it says how to serve it: {stdout}");
    let mut files: Vec<String> = std::fs::read_dir(&copy)
        .expect("the backup's directory")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["rollscale.db", "server.key"]);
    assert!(!stdout.contains(&std::fs::read_to_string(data.join("server.key")).expect("key").trim().to_string()));
    let (code, _, stderr) = backup(&[copy_text, "--data-dir", data_text]);
    assert_eq!(code, 1, "a non-empty directory is refused");
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(cli_json(&dir, &["oos", "ListExecutions", "--ExecutionId", &id])["Executions"][0]["Status"], "Waiting");

    // The server dies, and its data with it: the backup alone is served.
    server.child.kill().expect("kill -9");
    server.child.wait().expect("reaped");
    std::fs::remove_dir_all(&data).expect("the original data directory removed");
    let restored = start_in(&dir, &copy, &["--sim-latency-ms", "2"]);
    assert!(restored.lines.iter().all(|line| !line.contains("Created the admin AccessKey")), "{:#?}", restored.lines);
    let listed = cli_json(&dir, &["oos", "ListExecutions", "--ExecutionId", &id]);
    assert_eq!(listed["Executions"][0]["Status"], "Waiting", "the copy holds the paused task: {listed}");

    let (code, stdout, stderr) = cli(&dir, &["ru", "continue", &id, "--wait"]);
    assert_eq!(code, 0, "the task finishes from the copy: {stdout}{stderr}");
    let listed = cli_json(&dir, &["oos", "ListExecutions", "--ExecutionId", &id]);
    assert_eq!(listed["Executions"][0]["Status"], "Success", "{listed}");

    // Every instance updated once: the same ten, each by one child execution that succeeded at
    // its first attempt.
    let after = instances(&dir, &group);
    let ids: BTreeSet<String> = after.iter().map(|i| i["InstanceId"].as_str().expect("id").to_string()).collect();
    assert_eq!(ids, before, "no instance replaced, lost or added");
    for instance in &after {
        assert_eq!(instance["ImageId"], NEW_IMAGE, "{instance}");
        assert_eq!(instance["LifecycleState"], "InService", "{instance}");
        assert_eq!(instance["LoadBalancerWeight"], 100, "{instance}");
    }
    let children = cli_json(&dir, &["oos", "ListExecutions", "--ParentExecutionId", &id, "--MaxResults", "100"]);
    let children = children["Executions"].as_array().expect("children");
    let mut changed = BTreeSet::new();
    for child in children {
        assert_eq!(child["Status"], "Success", "{child}");
        let outputs: Value = serde_json::from_str(child["Outputs"].as_str().expect("outputs")).expect("JSON");
        assert_eq!(outputs["attempt"], 1, "{outputs}");
        assert!(changed.insert(child["Parameters"]["instanceId"].as_str().expect("id").to_string()), "{child}");
    }
    assert_eq!(changed, before);
    // Each step of the task's own once: started, paused after batch 1, batches 1 and 2 done
    // (the third ends it), succeeded.
    let mut kinds = events(&dir, &id);
    kinds.sort();
    assert_eq!(kinds, ["BatchDone", "BatchDone", "Paused", "Started", "Succeeded"]);
    drop(restored);
    let _ = std::fs::remove_dir_all(&dir);
}
