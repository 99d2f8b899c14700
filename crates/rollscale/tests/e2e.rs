//! End to end: the `rollscale` binary serves on loopback (`rollscale up`), and the commands of
//! Alibaba Cloud's rolling-update CLI walkthrough (with `aliyun` replaced by `rollscale` and the
//! ids replaced) run against it through the CLI. Then a `kill -9` in the
//! middle of a rolling update, a restart on the same data, and the task finishes.

use rollscale_test_support::up::{cli, cli_json, instances, temp_dir, up};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// `rollscale oos StartExecution --TemplateName T --Parameters P`, then wait for the end.
fn start_and_wait(dir: &Path, template: &str, parameters: &str) -> String {
    let started = cli_json(dir, &["oos", "StartExecution", "--TemplateName", template, "--Parameters", parameters]);
    let id = started["Execution"]["ExecutionId"].as_str().expect("execution id").to_string();
    let (code, _, stderr) = cli(dir, &["rolling-update", "wait", &id]);
    assert_eq!(code, 0, "{template} {id} did not succeed: {stderr}");
    let listed = cli_json(dir, &["oos", "ListExecutions", "--ExecutionId", &id]);
    assert_eq!(listed["Executions"][0]["Status"], "Success", "{listed}");
    id
}

/// The body of `GET path` from `endpoint` (`http://host:port`), which must answer 200.
fn get(endpoint: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let address = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("the server");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("a request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    body.to_string()
}

#[test]
fn the_seed_commands_run_against_rollscale_up() {
    let dir = temp_dir("seeds");
    let server = up(&dir, &["--sim-latency-ms", "2"]);
    let (group, configuration) = (server.group_id.as_str(), server.configuration_id.as_str());
    assert!(server.endpoint.starts_with("http://127.0.0.1:"));
    let profile = cli_json(&dir, &["configure", "get"]);
    assert_eq!(profile["endpoint"], server.endpoint.as_str());
    assert!(profile["access_key_secret"].as_str().is_some_and(|s| s.len() >= 30));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("config.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the profile holds a secret");
    }

    // The seeds' image update, verbatim but for the ids.
    let image = start_and_wait(
        &dir,
        "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup",
        &format!(
            r#"{{ "invokeType": "invoke", "scalingGroupId": "{group}", "scalingConfigurationId": "{configuration}", "imageId": "aliyun_2_1903_x64_20G_alibase_20200529.vhd", "sourceImageId": "centos_7_8_x64_20G_alibase_20200717.vhd", "OOSAssumeRole": "", "enterProcess": [ "ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction" ], "exitProcess": [ "ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction" ], "batchNumber": 2, "batchPauseOption": "Automatic" }}"#
        ),
    );
    let after = instances(&dir, group);
    assert_eq!(after.len(), 10);
    assert!(after
        .iter()
        .all(|i| i["ImageId"] == "aliyun_2_1903_x64_20G_alibase_20200529.vhd" && i["LifecycleState"] == "InService"));
    // `up` serves its figures, unauthenticated: the task, the instances, the CLI's calls.
    let metrics = get(&server.endpoint, "/metrics");
    for line in [
        r#"rollscale_tasks{template="ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup",status="Success"} 1"#,
        r#"rollscale_instances{lifecycle_state="InService",health_status="Healthy"} 10"#,
        r#"rollscale_api_requests_total{api="rpc",action="oos:StartExecution",code="Success"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line} in:\n{metrics}");
    }
    // Its rollback.
    start_and_wait(
        &dir,
        "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup",
        &format!(
            r#"{{ "invokeType": "rollback", "scalingGroupId": "{group}", "scalingConfigurationId": "{configuration}", "sourceImageId": "centos_7_8_x64_20G_alibase_20200717.vhd", "sourceExecutionId": "{image}", "OOSAssumeRole": "", "batchNumber": 2, "batchPauseOption": "Automatic" }}"#
        ),
    );
    assert!(instances(&dir, group).iter().all(|i| i["ImageId"] == "centos_7_8_x64_20G_alibase_20200717.vhd"));

    // The seeds' script execution: `df -h` and `ifconfig`, with the output per instance.
    let script = start_and_wait(
        &dir,
        "ACS-ESS-RollingUpdateByRunCommandInScalingGroup",
        &format!(
            r#"{{ "invokeType": "invoke", "scalingGroupId": "{group}", "commandType": "RunShellScript", "invokeScript": "df -h\nifconfig", "rollbackScript": "df -h\nifconfig", "OOSAssumeRole": "", "exitProcess": [ "ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction" ], "enterProcess": [ "ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction" ], "batchNumber": 2, "batchPauseOption": "Automatic" }}"#
        ),
    );
    let children = cli_json(&dir, &["oos", "ListExecutions", "--ParentExecutionId", &script, "--MaxResults", "100"]);
    let children = children["Executions"].as_array().expect("children");
    assert_eq!(children.len(), 10);
    for child in children {
        assert!(child["Parameters"]["instanceId"].as_str().is_some_and(|id| id.starts_with("i-")));
        let outputs: Value = serde_json::from_str(child["Outputs"].as_str().unwrap()).unwrap();
        assert_eq!(outputs["exitCode"], 0);
        assert!(outputs["output"].as_str().unwrap().contains("df -h"), "{outputs}");
    }
    start_and_wait(
        &dir,
        "ACS-ESS-RollingUpdateByRunCommandInScalingGroup",
        &format!(
            r#"{{ "invokeType": "rollback", "commandType": "RunShellScript", "rollbackScript": "df -h\nifconfig", "scalingGroupId": "{group}", "sourceExecutionId": "{script}", "OOSAssumeRole": "", "batchNumber": 2, "batchPauseOption": "Automatic" }}"#
        ),
    );

    // The seeds' package install (wordpress v4), after v3 so the rollback has somewhere to go.
    start_and_wait(
        &dir,
        "ACS-ESS-RollingUpdateByConfigureOOSPackage",
        &format!(
            r#"{{ "invokeType": "invoke", "scalingGroupId": "{group}", "packageName": "wordpress", "packageVersion": "v3", "action": "install", "batchNumber": 5 }}"#
        ),
    );
    let package = start_and_wait(
        &dir,
        "ACS-ESS-RollingUpdateByConfigureOOSPackage",
        &format!(
            r#"{{ "invokeType": "invoke", "scalingGroupId": "{group}", "packageName": "wordpress", "packageVersion": "v4", "action": "install", "OOSAssumeRole": "", "enterProcess": [ "ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction" ], "exitProcess": [ "ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction" ], "batchNumber": 2, "batchPauseOption": "Automatic" }}"#
        ),
    );
    assert!(instances(&dir, group).iter().all(|i| i["Packages"] == "wordpress=v4"));
    start_and_wait(
        &dir,
        "ACS-ESS-RollingUpdateByConfigureOOSPackage",
        &format!(
            r#"{{ "invokeType": "rollback", "scalingGroupId": "{group}", "packageVersion": "v3", "packageName": "wordpress", "sourceExecutionId": "{package}", "OOSAssumeRole": "", "batchNumber": 2, "batchPauseOption": "Automatic" }}"#
        ),
    );
    assert!(instances(&dir, group).iter().all(|i| i["Packages"] == "wordpress=v3"));

    // Processes are back, and errors carry their codes with a non-zero exit.
    let groups = cli_json(&dir, &["ess", "DescribeScalingGroups", "--ScalingGroupId.1", group]);
    assert_eq!(
        groups["ScalingGroups"]["ScalingGroup"][0]["SuspendedProcesses"]["SuspendedProcess"],
        serde_json::json!([])
    );
    let (code, _, stderr) = cli(&dir, &["oos", "ListExecutions", "--MaxResults", "0"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("InvalidParameter"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_9_during_a_rolling_update_then_restart_finishes_it() {
    let dir = temp_dir("kill9");
    let mut server = up(&dir, &["--sim-latency-ms", "150"]);
    let group = server.group_id.clone();
    let (code, stdout, stderr) = cli(
        &dir,
        &[
            "rolling-update",
            "start",
            "--group",
            &group,
            "--image",
            "aliyun_2_1903_x64_20G_alibase_20200529.vhd",
            "--batches",
            "5",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let id = stdout.trim().to_string();
    assert!(id.starts_with("exec-"), "{stdout}");
    std::thread::sleep(Duration::from_millis(700));
    let before = cli_json(&dir, &["oos", "ListExecutions", "--ExecutionId", &id]);
    assert_eq!(before["Executions"][0]["Status"], "Running", "the kill must land mid-task: {before}");
    let done_before = before["Executions"][0]["Counters"]["Success"].as_u64().unwrap();
    assert!(done_before < 10, "the kill must land mid-task: {done_before} of 10 done");
    // SIGKILL: no chance to clean up.
    server.child.kill().expect("kill -9");
    server.child.wait().expect("reaped");
    let listed_before = {
        let restarted = up(&dir, &["--sim-latency-ms", "20"]);
        let (code, _, stderr) = cli(&dir, &["rolling-update", "wait", &id]);
        assert_eq!(code, 0, "the task did not finish after the restart: {stderr}");
        let all = instances(&dir, &group);
        drop(restarted);
        all
    };
    assert_eq!(listed_before.len(), 10, "no instance lost or duplicated");
    for instance in &listed_before {
        assert_eq!(instance["ImageId"], "aliyun_2_1903_x64_20G_alibase_20200529.vhd", "{instance}");
        assert_eq!(instance["LifecycleState"], "InService", "{instance}");
        assert_eq!(instance["LoadBalancerWeight"], 100, "{instance}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The REST API of `rollscale up`, with a token from `rollscale token`: what a pipeline does.
#[test]
fn the_rest_api_answers_with_a_token_from_the_cli() {
    use std::io::{Read, Write};
    let dir = temp_dir("rest");
    let server = up(&dir, &["--sim-latency-ms", "1"]);
    let (code, token, stderr) = cli(&dir, &["token", "--ttl", "120"]);
    assert_eq!(code, 0, "{stderr}");
    let address = server.endpoint.trim_start_matches("http://");
    let get = |path: &str, token: &str| {
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            token.trim()
        );
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let (head, body) = response.split_once("\r\n\r\n").expect("HTTP");
        (head.split_whitespace().nth(1).unwrap_or_default().to_string(), body.to_string())
    };
    let (status, body) = get(&format!("/v1/scaling-groups/{}", server.group_id), &token);
    assert_eq!(status, "200", "{body}");
    let group: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(group["desired_capacity"], 10);
    assert_eq!(group["scaling_configuration_id"], server.configuration_id.as_str());
    let (status, body) = get("/v1/scaling-groups", "rs1.LTAIforged.9999999999.00");
    assert_eq!(status, "401", "{body}");
    let (code, _, stderr) = cli(&dir, &["token", "--ttl", "5"]);
    assert_ne!(code, 0, "a lifetime under 60 s is refused: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rollscale ecs …`: a launch template, and a scaling group made from it.
#[test]
fn launch_templates_through_the_cli() {
    let dir = temp_dir("templates");
    let _server = up(&dir, &["--sim-latency-ms", "1", "--demo-size", "2"]);
    let image = "aliyun_2_1903_x64_20G_alibase_20200529.vhd";
    let created = cli_json(&dir, &["ecs", "CreateLaunchTemplate", "--LaunchTemplateName", "web", "--ImageId", image]);
    let id = created["LaunchTemplateId"].as_str().expect("id").to_string();
    let group = cli_json(
        &dir,
        &[
            "ess",
            "CreateScalingGroup",
            "--ScalingGroupName",
            "from-template",
            "--MinSize",
            "0",
            "--MaxSize",
            "3",
            "--DesiredCapacity",
            "1",
            "--LaunchTemplateId",
            &id,
            "--LaunchTemplateVersion",
            "Latest",
        ],
    );
    let group_id = group["ScalingGroupId"].as_str().expect("group id").to_string();
    let described = cli_json(&dir, &["ess", "DescribeScalingGroups", "--ScalingGroupId.1", &group_id]);
    let described = &described["ScalingGroups"]["ScalingGroup"][0];
    assert_eq!(
        (described["LaunchTemplateId"].as_str(), described["LaunchTemplateVersion"].as_str()),
        (Some(id.as_str()), Some("Latest"))
    );
    let versions = cli_json(&dir, &["ecs", "DescribeLaunchTemplateVersions", "--LaunchTemplateId", &id]);
    assert_eq!(
        versions["LaunchTemplateVersionSets"]["LaunchTemplateVersionSet"][0]["LaunchTemplateData"]["ImageId"],
        image
    );
    let (code, _, stderr) =
        cli(&dir, &["ecs", "CreateLaunchTemplate", "--LaunchTemplateName", "web", "--ImageId", image]);
    assert_ne!(code, 0);
    assert!(stderr.contains("InvalidLaunchTemplateName.Duplicate"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Self-healing as a user of the default `rollscale up` finds it (R16, R17): `InjectFault
/// --Kind Crash` stops a simulated instance; the health checker shows it, removes it with an
/// activity and an event that say why, and the group is back at its desired size of healthy
/// instances. An unknown kind is refused and changes nothing.
#[test]
fn a_crashed_instance_is_replaced_through_the_cli() {
    let dir = temp_dir("heal");
    let server = up(&dir, &["--sim-latency-ms", "1", "--demo-size", "3", "--health-check-interval-ms", "200"]);
    let group = server.group_id.clone();
    let victim = instances(&dir, &group)[0]["InstanceId"].as_str().expect("id").to_string();
    let (code, _, stderr) = cli(&dir, &["ess", "InjectFault", "--InstanceId", &victim, "--Kind", "Melt"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("InvalidParameter.Kind"), "{stderr}");
    cli_json(&dir, &["ess", "InjectFault", "--InstanceId", &victim, "--Kind", "Crash"]);

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let listed = instances(&dir, &group);
        let healed = listed.len() == 3
            && listed.iter().all(|i| {
                i["InstanceId"] != victim.as_str()
                    && i["LifecycleState"] == "InService"
                    && i["HealthStatus"] == "Healthy"
                    && i["Running"] == true
                    && i["LastObservedTime"].as_str().is_some_and(|t| !t.is_empty())
            });
        if healed {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not healed: {listed:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let activities = cli_json(&dir, &["ess", "DescribeScalingActivities", "--ScalingGroupId", &group]);
    let activities = activities["ScalingActivities"]["ScalingActivity"].as_array().cloned().unwrap_or_default();
    let removal = activities
        .iter()
        .find(|a| a["Description"].as_str().is_some_and(|d| d.contains(&victim)))
        .unwrap_or_else(|| panic!("no removal activity: {activities:#?}"));
    assert!(removal["Cause"].as_str().is_some_and(|c| c.contains("stopped")), "{removal}");
    let events = cli_json(&dir, &["ess", "DescribeEvents", "--ScalingGroupId", &group, "--Keywords", &victim]);
    let kinds: Vec<&str> = events["Events"]["Event"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["Kind"].as_str()).collect())
        .unwrap_or_default();
    assert!(kinds.contains(&"InstanceUnhealthy") && kinds.contains(&"InstanceReplaced"), "{events}");
}
