//! Image update tasks through the CLI against `rollscale up` on loopback: the seeds' automatic
//! update (an image made from an instance, put into the configuration; new instances launched
//! afterwards use it) followed by a rolling update with that image for the instances already
//! running; the seeds' `oos StartExecution` form; a scheduled task listed, shown, surviving a
//! `kill -9` and cancelled; and the refusals.

use rollscale_test_support::up::{cli, cli_json, instances, temp_dir, up};
use rollscale_test_support::wait;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const TEMPLATE: &str = "ACS-ESS-CreateImageAndUpdateScalingConfiguration";

fn configuration_image(dir: &Path, group: &str, configuration: &str) -> String {
    let described = cli_json(dir, &["ess", "DescribeScalingConfigurations", "--ScalingGroupId", group]);
    let items = described["ScalingConfigurations"]["ScalingConfiguration"].as_array().expect("2014 shape").clone();
    let found = items.iter().find(|c| c["ScalingConfigurationId"] == configuration).expect("the configuration");
    found["ImageId"].as_str().expect("ImageId").to_string()
}

fn group_sizes(dir: &Path, group: &str) -> (u64, u64) {
    let groups = cli_json(dir, &["ess", "DescribeScalingGroups", "--ScalingGroupId.1", group]);
    let group = &groups["ScalingGroups"]["ScalingGroup"][0];
    (group["DesiredCapacity"].as_u64().expect("desired"), group["MaxSize"].as_u64().expect("max"))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    wait::blocking_until(what, Duration::from_secs(60), Duration::from_millis(100), || done().then_some(()));
}

#[test]
fn an_image_task_updates_the_configuration_new_instances_use_it_and_a_rolling_update_follows() {
    let dir = temp_dir("image-task");
    let server = up(&dir, &["--sim-latency-ms", "2"]);
    let (group, configuration) = (server.group_id.clone(), server.configuration_id.clone());
    let before = instances(&dir, &group);
    let old_image = configuration_image(&dir, &group, &configuration);
    let source = before[0]["InstanceId"].as_str().unwrap().to_string();

    // 1. Automatic update, now: the image is made from the source and put into the configuration.
    let (code, stdout, stderr) = cli(
        &dir,
        &[
            "image-task",
            "create",
            "--instance",
            &source,
            "--configuration",
            &configuration,
            "--name",
            "webapp",
            "--tag",
            "release=v2",
            "--wait",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let task: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(task["Status"], "Success", "{task}");
    let outputs: Value = serde_json::from_str(task["Outputs"].as_str().unwrap()).unwrap();
    let new_image = outputs["imageId"].as_str().expect("imageId").to_string();
    assert_ne!(new_image, old_image);
    assert_eq!(configuration_image(&dir, &group, &configuration), new_image);
    let images = cli_json(&dir, &["ecs", "DescribeImages"]);
    let image =
        images["Images"]["Image"].as_array().unwrap().iter().find(|i| i["ImageId"] == new_image.as_str()).cloned();
    let name = image.expect("the image is in the catalog")["ImageName"].as_str().unwrap().to_string();
    let id = task["ExecutionId"].as_str().unwrap();
    assert!(name.starts_with(&format!("webapp_on_{id}_at_")) && name.ends_with('Z'), "{name}");
    // Existing instances keep their image.
    assert!(instances(&dir, &group).iter().all(|i| i["ImageId"] == old_image.as_str()));

    // 2. A capacity increase: the new instance is made from the new image.
    let (desired, max) = group_sizes(&dir, &group);
    let (size, max) = ((desired + 1).to_string(), (max.max(desired + 1)).to_string());
    cli_json(
        &dir,
        &["ess", "ModifyScalingGroup", "--ScalingGroupId", &group, "--MaxSize", &max, "--DesiredCapacity", &size],
    );
    wait_until("a new instance on the new image", || {
        let now = instances(&dir, &group);
        now.len() as u64 == desired + 1
            && now.iter().any(|i| i["ImageId"] == new_image.as_str() && i["LifecycleState"] == "InService")
    });
    let on_new = instances(&dir, &group).iter().filter(|i| i["ImageId"] == new_image.as_str()).count();
    assert_eq!(on_new, 1, "only the instance launched after the update");

    // 3. The instances already running get it by a rolling update (the seeds' third way).
    let (code, stdout, stderr) =
        cli(&dir, &["ru", "start", "--group", &group, "--image", &new_image, "--batches", "2", "--wait"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(instances(&dir, &group).iter().all(|i| i["ImageId"] == new_image.as_str()));
    // `ru list` shows rolling updates only.
    let (_, listed, _) = cli(&dir, &["ru", "list"]);
    assert!(!listed.contains(id), "{listed}");

    // 4. The seeds' form of the same call.
    let parameters = format!(r#"{{"instanceId": "{source}", "scalingConfigurationIds": ["{configuration}"]}}"#);
    let started = cli_json(&dir, &["oos", "StartExecution", "--TemplateName", TEMPLATE, "--Parameters", &parameters]);
    let second = started["Execution"]["ExecutionId"].as_str().expect("an execution").to_string();
    wait_until("the second task", || {
        let listed = cli_json(&dir, &["oos", "ListExecutions", "--ExecutionId", &second]);
        listed["Executions"][0]["Status"] == "Success"
    });
    let listed = cli_json(&dir, &["oos", "ListExecutions", "--TemplateName", TEMPLATE]);
    assert_eq!(listed["TotalCount"], 2, "{listed}");
    let third_image = configuration_image(&dir, &group, &configuration);
    assert_ne!(third_image, new_image, "a second image, named after the second execution");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_scheduled_task_is_listed_shown_survives_a_kill_9_and_is_cancelled() {
    let dir = temp_dir("image-task-scheduled");
    let mut server = up(&dir, &["--sim-latency-ms", "1"]);
    let (group, configuration) = (server.group_id.clone(), server.configuration_id.clone());
    let source = instances(&dir, &group)[0]["InstanceId"].as_str().unwrap().to_string();

    // Refusals: a code, nothing created.
    for (args, code) in [
        (vec!["--instance", "i-nowhere", "--configuration", &configuration], "InvalidInstanceId.NotFound"),
        (vec!["--instance", &source, "--configuration", "asc-nowhere"], "InvalidScalingConfigurationId.NotFound"),
        (
            vec![
                "--instance",
                &source,
                "--configuration",
                &configuration,
                "--rate",
                "1 day",
                "--until",
                "2099-01-01T00:00:00Z",
            ],
            "OOSAssumeRole",
        ),
        (
            vec![
                "--instance",
                &source,
                "--configuration",
                &configuration,
                "--cron",
                "0 0 2 L * ?",
                "--until",
                "2099-01-01T00:00:00Z",
                "--role",
                "R",
            ],
            "InvalidParameter",
        ),
        (
            vec![
                "--instance",
                &source,
                "--configuration",
                &configuration,
                "--rate",
                "1 day",
                "--until",
                "2001-01-01T00:00:00Z",
                "--role",
                "R",
            ],
            "is not in the future",
        ),
    ] {
        let (status, stdout, stderr) = cli(&dir, &[&["image-task", "create"][..], &args].concat());
        assert_eq!(status, 1, "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(code), "{args:?}: {stderr}");
    }
    let (_, empty, _) = cli(&dir, &["image-task", "list"]);
    assert_eq!(empty.trim(), "No image update tasks.");

    let (code, stdout, stderr) = cli(
        &dir,
        &[
            "image-task",
            "create",
            "--instance",
            &source,
            "--configuration",
            &configuration,
            "--cron",
            "0 0 2 21-25 * ?",
            "--time-zone",
            "Asia/Shanghai",
            "--until",
            "2099-08-26T00:00:00Z",
            "--role",
            "OOSServiceRole",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let id = stdout.trim().to_string();
    assert!(id.starts_with("exec-"), "{stdout}");
    let (_, table, _) = cli(&dir, &["image-task", "list", "--group", &group]);
    assert!(table.starts_with("EXECUTION") && table.contains(&id), "{table}");
    assert!(table.contains("cron 0 0 2 21-25 * ? (Asia/Shanghai) until 2099-08-26T00:00:00Z"), "{table}");
    let (_, other, _) = cli(&dir, &["image-task", "list", "--group", "asg-nowhere"]);
    assert!(!other.contains(&id), "{other}");
    let (code, shown, stderr) = cli(&dir, &["image-task", "show", &id]);
    assert_eq!(code, 0, "{stderr}");
    assert!(shown.contains("Waiting") && shown.contains("Next firing:") && shown.contains("T18:00:00Z"), "{shown}");

    // kill -9 and restart: the schedule is still there, as it was.
    server.child.kill().expect("kill -9");
    server.child.wait().expect("reaped");
    let restarted = up(&dir, &["--sim-latency-ms", "1"]);
    let (_, again, _) = cli(&dir, &["image-task", "show", &id]);
    assert_eq!(again, shown, "the schedule survives the restart");

    let (code, stdout, stderr) = cli(&dir, &["image-task", "cancel", &id]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("no further firing"), "{stdout}");
    let shown = cli_json(&dir, &["image-task", "show", &id, "-o", "json"]);
    assert_eq!(shown["Execution"]["Status"], "Cancelled", "{shown}");
    let (code, _, stderr) = cli(&dir, &["image-task", "cancel", &id]);
    assert_eq!(code, 1);
    assert!(stderr.contains("IncorrectExecutionStatus"), "{stderr}");
    drop(restarted);
    let _ = std::fs::remove_dir_all(&dir);
}
