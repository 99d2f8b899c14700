//! Users, AccessKeys and policies end to end: `rollscale up` on loopback, the admin creates a
//! user and a key with the friendly commands, attaches a read-only policy, and the user's key
//! (a second profile through ROLLSCALE_CONFIG) reads but is refused a rolling update; a
//! disabled key is refused; the audit log shows both.

use rollscale_test_support::up::{bin, cli, cli_json, temp_dir, up};
use std::path::Path;
use std::process::Command;

/// Runs the CLI with the profile at `profile`; (exit code, stdout, stderr).
fn cli_as(profile: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(bin())
        .args(args)
        .env("ROLLSCALE_CONFIG", profile)
        .env_remove("ROLLSCALE_ENDPOINT")
        .env_remove("ROLLSCALE_ACCESS_KEY_ID")
        .env_remove("ROLLSCALE_ACCESS_KEY_SECRET")
        .output()
        .expect("rollscale runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_read_only_user_key_reads_is_refused_a_rolling_update_and_stops_when_disabled() {
    let dir = temp_dir("access");
    let server = up(&dir, &["--demo-size", "2"]);
    let key_file = dir.join("data").join("server.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).expect("server.key made at first start").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (code, stdout, stderr) = cli(&dir, &["user", "create", "alice", "--display-name", "Alice"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Created the user alice"), "{stdout}");
    let created = cli_json(&dir, &["key", "create", "--user", "alice", "-o", "json"]);
    let id = created["AccessKey"]["AccessKeyId"].as_str().expect("id").to_string();
    let secret = created["AccessKey"]["AccessKeySecret"].as_str().expect("secret").to_string();
    let (code, _, stderr) = cli(&dir, &["user", "attach", "alice", "AliyunESSReadOnlyAccess"]);
    assert_eq!(code, 0, "{stderr}");
    // The same through the generic caller, as with `aliyun ram …`.
    let policies = cli_json(&dir, &["ram", "ListPoliciesForUser", "--UserName", "alice"]);
    assert_eq!(policies["Policies"]["Policy"][0]["PolicyName"], "AliyunESSReadOnlyAccess");
    let (code, table, _) = cli(&dir, &["user", "list"]);
    assert_eq!(code, 0);
    assert!(table.lines().any(|line| line.starts_with("alice ")) && table.starts_with("USER"), "{table}");

    let alice = dir.join("alice.json");
    std::fs::write(
        &alice,
        serde_json::json!({
            "endpoint": server.endpoint, "access_key_id": id, "access_key_secret": secret, "region_id": "local"
        })
        .to_string(),
    )
    .expect("profile");
    #[cfg(unix)]
    std::fs::set_permissions(&alice, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");

    let (code, stdout, stderr) = cli_as(&alice, &["ess", "DescribeScalingGroups"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&server.group_id), "{stdout}");
    let (code, _, stderr) =
        cli_as(&alice, &["ru", "start", "--group", &server.group_id, "--script", "echo hi", "--batches", "1"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Forbidden.RAM") && stderr.contains("oos:StartExecution"), "{stderr}");
    let (code, _, stderr) = cli_as(&alice, &["ess", "DeleteScalingGroup", "--ScalingGroupId", &server.group_id]);
    assert_eq!(code, 1);
    assert!(stderr.contains("ess:DeleteScalingGroup"), "{stderr}");
    let (code, stdout, _) = cli(&dir, &["ess", "DescribeScalingGroups"]);
    assert_eq!(code, 0);
    assert!(stdout.contains(&server.group_id), "the group is still there");

    let (code, _, stderr) = cli(&dir, &["key", "disable", &id, "--user", "alice"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, table, _) = cli(&dir, &["key", "list", "--user", "alice"]);
    assert_eq!(code, 0);
    assert!(table.contains(&id) && table.contains("Inactive") && !table.contains(&secret), "{table}");
    let (code, _, stderr) = cli_as(&alice, &["ess", "DescribeScalingGroups"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("InvalidAccessKeyId.Inactive"), "{stderr}");
    let (code, _, _) = cli(&dir, &["key", "enable", &id, "--user", "alice"]);
    assert_eq!(code, 0);
    assert_eq!(cli_as(&alice, &["ess", "DescribeScalingGroups"]).0, 0);

    let log = cli_json(&dir, &["ram", "ListAuditEvents", "--UserName", "alice", "--MaxResults", "100"]);
    let actions: Vec<(&str, &str)> = log["AuditEvents"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| (e["EventAction"].as_str().unwrap_or(""), e["ResultCode"].as_str().unwrap_or("")))
        .collect();
    assert!(actions.contains(&("oos:StartExecution", "Forbidden.RAM")), "{actions:?}");
    assert!(actions.contains(&("ess:DescribeScalingGroups", "Success")), "{actions:?}");
    assert!(log["AuditEvents"][0]["SourceIpAddress"] == "127.0.0.1", "{log}");
    assert!(!log.to_string().contains(&secret));

    let (code, _, _) = cli(&dir, &["user", "delete", "alice"]);
    assert_eq!(code, 0);
    let (code, _, stderr) = cli_as(&alice, &["ess", "DescribeScalingGroups"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("InvalidAccessKeyId.NotFound"), "{stderr}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes a 0600 profile for an AccessKey at `path`.
fn profile(path: &Path, endpoint: &str, id: &str, secret: &str) {
    let text = serde_json::json!({
        "endpoint": endpoint, "access_key_id": id, "access_key_secret": secret, "region_id": "local"
    });
    std::fs::write(path, text.to_string()).expect("profile");
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
}

/// The seeds' style, `rollscale ram <Action> --Name value`, end to end: the admin makes a user,
/// an AccessKey and an attachment with RAM's own actions; the new key reads (ECS's
/// DescribeRegions too, as `aliyun ecs DescribeRegions` checks a configuration) and is refused
/// what the policy does not allow; bad input is refused with its code.
#[test]
fn the_generic_ram_caller_makes_a_user_a_key_and_an_attachment() {
    let dir = temp_dir("access-ram");
    let server = up(&dir, &["--demo-size", "1"]);

    let created = cli_json(&dir, &["ram", "CreateUser", "--UserName", "bob", "--DisplayName", "Bob"]);
    assert_eq!(created["User"]["UserName"], "bob", "{created}");
    let key = cli_json(&dir, &["ram", "CreateAccessKey", "--UserName", "bob"]);
    let id = key["AccessKey"]["AccessKeyId"].as_str().expect("id").to_string();
    let secret = key["AccessKey"]["AccessKeySecret"].as_str().expect("the secret, this once").to_string();
    assert_eq!(key["AccessKey"]["Status"], "Active");
    let attached = cli_json(
        &dir,
        &[
            "ram",
            "AttachPolicyToUser",
            "--UserName",
            "bob",
            "--PolicyType",
            "System",
            "--PolicyName",
            "AliyunESSReadOnlyAccess",
        ],
    );
    assert!(attached["RequestId"].is_string(), "{attached}");
    let policies = cli_json(&dir, &["ram", "ListPoliciesForUser", "--UserName", "bob"]);
    assert_eq!(policies["Policies"]["Policy"][0]["PolicyName"], "AliyunESSReadOnlyAccess", "{policies}");
    let keys = cli_json(&dir, &["ram", "ListAccessKeys", "--UserName", "bob"]);
    assert_eq!(keys["AccessKeys"]["AccessKey"][0]["AccessKeyId"], id.as_str());
    assert!(!keys.to_string().contains(&secret), "a listed key shows no secret");

    let bob = dir.join("bob.json");
    profile(&bob, &server.endpoint, &id, &secret);
    let (code, stdout, stderr) = cli_as(&bob, &["ess", "DescribeScalingGroups"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&server.group_id), "{stdout}");
    let (code, stdout, stderr) = cli_as(&bob, &["ecs", "DescribeRegions"]);
    assert_eq!(code, 0, "{stderr}");
    let regions: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(regions["Regions"]["Region"][0]["RegionId"], "local", "{regions}");
    let (code, _, stderr) = cli_as(&bob, &["ram", "CreateUser", "--UserName", "mallory"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Forbidden.RAM") && stderr.contains("ram:CreateUser"), "{stderr}");

    // Bad input, refused with its code, changes nothing.
    let (code, _, stderr) = cli(&dir, &["ram", "CreateUser"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("MissingParameter") && stderr.contains("UserName"), "{stderr}");
    let (code, _, stderr) = cli(&dir, &["ram", "CreateUser", "--UserName", "carol", "--Emial", "c@example.org"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("InvalidParameter") && stderr.contains("Emial"), "{stderr}");
    let (code, _, stderr) = cli(&dir, &["ram", "CreateAccessKey", "--UserName", "nobody"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("EntityNotExist.User"), "{stderr}");
    let users = cli_json(&dir, &["ram", "ListUsers"]);
    let names: Vec<&str> =
        users["Users"]["User"].as_array().expect("users").iter().filter_map(|u| u["UserName"].as_str()).collect();
    assert_eq!(names, ["admin", "bob"], "{users}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
