//! The first start of `rollscale up` is crash-safe: killed anywhere in its setup (the server
//! key, the admin AccessKey and its profile, the demo), the next `up` on the same data
//! directory and `HOME` serves, the operator ends with a profile whose key works, and the demo
//! exists once, whole.
//!
//! `first_start_killed_at_every_step_is_finished_by_the_next` is the durability harness's
//! walk for the binary: `ROLLSCALE_CRASH_AT=N` (a test hook of `up`, see `src/crash.rs`) kills
//! the first start with SIGKILL at its N-th crash point, for N = 1, 2, … until a start reaches
//! no N-th point and serves. `kill_9_as_soon_as_the_profile_directory_appears` is the report's
//! own reproduction: `kill -9` 0 to 3 ms after `$HOME/.rollscale/` appears, 16 times, and then
//! at later moments, into the demo group's first scale-out.

use rollscale_test_support::up::{bin, launch, temp_dir, up_command, Launched, Server};
use rollscale_test_support::wait::blocking_until;
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The crash points a first start on the simulated fleet with the demo passes, in order; the
/// walk must reach each of them (a point removed or renamed is a coverage lost).
const POINTS: [&str; 19] = [
    "store-opened",
    "server-key-loaded",
    "demo-lb-created",
    "admin-handover-pending",
    "admin-key-created",
    "profile-temp-written",
    "profile-renamed",
    "admin-key-printed",
    "admin-handover-recorded",
    "demo-image-created centos_7_8_x64_20G_alibase_20200717.vhd",
    "demo-image-created aliyun_2_1903_x64_20G_alibase_20200529.vhd",
    "demo-image-created win2019_1809_x64_dtc_en-us_40G_alibase_20200722.vhd",
    "demo-package-created wordpress v3",
    "demo-package-created wordpress v4",
    "demo-group-created",
    "demo-configuration-created",
    "demo-group-enabled",
    "demo-recorded",
    "first-passes-done",
];

/// `rollscale up` with its profile in `$HOME/.rollscale/config.json` (no `ROLLSCALE_CONFIG`),
/// as an operator runs it, on the data directory `home/data`.
fn up_in_home(home: &Path) -> Command {
    let mut command = up_command(home, &home.join("data"), &[]);
    command.env_remove("ROLLSCALE_CONFIG").env("HOME", home).env_remove("ROLLSCALE_CRASH_AT");
    command
}

/// The CLI with the profile of `home`; (exit code, stdout, stderr).
fn cli(home: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(bin())
        .args(args)
        .env("HOME", home)
        .env_remove("ROLLSCALE_CONFIG")
        .env_remove("ROLLSCALE_ENDPOINT")
        .env_remove("ROLLSCALE_ACCESS_KEY_ID")
        .env_remove("ROLLSCALE_ACCESS_KEY_SECRET")
        .env_remove("ROLLSCALE_CRASH_AT")
        .output()
        .expect("rollscale runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn cli_json(home: &Path, args: &[&str], context: &str) -> Value {
    let (code, stdout, stderr) = cli(home, args);
    assert_eq!(code, 0, "{context}: rollscale {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{context}: rollscale {args:?}: not JSON ({e}): {stdout}"))
}

fn list<'a>(value: &'a Value, outer: &str, inner: &str) -> &'a Vec<Value> {
    value[outer][inner].as_array().unwrap_or_else(|| panic!("{outer}.{inner} in {value}"))
}

/// `up` after a crashed first start: it must serve.
fn restart(home: &Path, context: &str) -> Server {
    match launch(up_in_home(home)) {
        Launched::Serving(server) => server,
        Launched::Exited { status, lines, .. } => {
            panic!("{context}: the next up must serve; it ended ({status}) after printing {lines:#?}")
        }
    }
}

/// What a first start leaves once it is finished, whatever killed it before: the profile
/// holds the one admin AccessKey and points at `server`; a signed call with it works; the demo's
/// group, configuration, load balancer, images and packages exist once each, and its instances
/// are InService; no temporary file is left beside the profile or the server key. `printed` is
/// what the starts printed: the operator was shown the key (its id at least).
fn check_finished(home: &Path, server: &Server, printed: &[String], context: &str) -> String {
    let (code, stdout, stderr) = cli(home, &["configure", "get"]);
    assert_eq!(code, 0, "{context}: the operator has a profile: {stderr}");
    let profile: Value = serde_json::from_str(&stdout).expect("configure get prints JSON");
    assert_eq!(profile["endpoint"], server.endpoint.as_str(), "{context}: the profile points at the server");
    let key_id = profile["access_key_id"].as_str().unwrap_or_default().to_string();
    assert!(key_id.starts_with("LTAI"), "{context}: {profile}");
    assert!(
        printed.iter().any(|line| line.contains(&key_id)),
        "{context}: the admin key {key_id} was shown to the operator: {printed:#?}"
    );

    // Signed calls with the profile's key.
    let keys = cli_json(home, &["ram", "ListAccessKeys"], context);
    let keys = list(&keys, "AccessKeys", "AccessKey");
    assert_eq!(keys.len(), 1, "{context}: one admin key: {keys:?}");
    assert_eq!(keys[0]["AccessKeyId"], key_id.as_str(), "{context}");

    let groups = cli_json(home, &["ess", "DescribeScalingGroups"], context);
    let groups = list(&groups, "ScalingGroups", "ScalingGroup");
    assert_eq!(groups.len(), 1, "{context}: the demo group exists once: {groups:#?}");
    assert_eq!(groups[0]["ScalingGroupName"], "demo", "{context}");
    assert_eq!(groups[0]["LifecycleState"], "Active", "{context}");
    let group = groups[0]["ScalingGroupId"].as_str().expect("group id").to_string();
    let configurations = cli_json(home, &["ess", "DescribeScalingConfigurations", "--ScalingGroupId", &group], context);
    let configurations = list(&configurations, "ScalingConfigurations", "ScalingConfiguration");
    assert_eq!(configurations.len(), 1, "{context}: {configurations:#?}");
    assert_eq!(configurations[0]["ScalingConfigurationName"], "demo-config", "{context}");
    assert_eq!(groups[0]["ActiveScalingConfigurationId"], configurations[0]["ScalingConfigurationId"], "{context}");

    let lbs = cli_json(home, &["ess", "DescribeLoadBalancers"], context);
    let lbs: Vec<&str> =
        list(&lbs, "LoadBalancers", "LoadBalancer").iter().filter_map(|lb| lb["LoadBalancerName"].as_str()).collect();
    assert_eq!(lbs, ["demo-lb"], "{context}");
    let images = cli_json(home, &["ess", "DescribeImages"], context);
    let mut images: Vec<&str> = list(&images, "Images", "Image").iter().filter_map(|i| i["ImageId"].as_str()).collect();
    images.sort_unstable();
    assert_eq!(
        images,
        [
            "aliyun_2_1903_x64_20G_alibase_20200529.vhd",
            "centos_7_8_x64_20G_alibase_20200717.vhd",
            "win2019_1809_x64_dtc_en-us_40G_alibase_20200722.vhd"
        ],
        "{context}"
    );
    let packages = cli_json(home, &["ess", "ListPackages"], context);
    let mut packages: Vec<String> = list(&packages, "Packages", "Package")
        .iter()
        .map(|p| format!("{} {}", p["PackageName"].as_str().unwrap_or(""), p["PackageVersion"].as_str().unwrap_or("")))
        .collect();
    packages.sort_unstable();
    assert_eq!(packages, ["wordpress v3", "wordpress v4"], "{context}");

    // The instances: the restart's first passes make them before it serves; wait all the same.
    blocking_until(
        &format!("{context}: 10 InService instances in the demo group"),
        Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let described = cli_json(
                home,
                &["ess", "DescribeScalingInstances", "--ScalingGroupId", &group, "--PageSize", "100"],
                context,
            );
            let instances = list(&described, "ScalingInstances", "ScalingInstance");
            let in_service = instances.iter().filter(|i| i["LifecycleState"] == "InService").count();
            (instances.len() == 10 && in_service == 10).then_some(())
        },
    );

    assert_eq!(entries(&home.join(".rollscale")), ["config.json"], "{context}: no temporary profile is left");
    let data = entries(&home.join("data"));
    assert!(!data.iter().any(|name| name.ends_with(".tmp")), "{context}: no temporary server key is left: {data:?}");
    group
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_unstable();
    names
}

/// After the finishing start, an ordinary restart: nothing is handed over again (no secret
/// printed), the profile and the demo stay as they are.
fn check_settled(home: &Path, group: &str, context: &str) {
    let before = cli_json(home, &["configure", "get"], context);
    let mut server = restart(home, context);
    assert!(
        !server.lines.iter().any(|line| line.contains("secret") || line.contains("admin AccessKey")),
        "{context}: a settled start hands nothing over: {:#?}",
        server.lines
    );
    assert_eq!(server.group_id, group, "{context}: the same demo group");
    let after = cli_json(home, &["configure", "get"], context);
    assert_eq!(after["access_key_id"], before["access_key_id"], "{context}");
    assert_eq!(after["access_key_secret"], before["access_key_secret"], "{context}");
    assert_eq!(after["endpoint"], server.endpoint.as_str(), "{context}");
    server.stop();
}

/// The point a crashed start named on stderr: `crash point N (name): …`.
fn crash_point(stderr: &str, n: usize) -> Option<String> {
    let line = stderr.lines().find(|line| line.starts_with(&format!("crash point {n} (")))?;
    let rest = line.split_once('(')?.1;
    Some(rest.rsplit_once("):")?.0.to_string())
}

#[test]
fn first_start_killed_at_every_step_is_finished_by_the_next() {
    let mut reached = Vec::new();
    for n in 1.. {
        let home: PathBuf = temp_dir(&format!("first-start-{n}"));
        let mut command = up_in_home(&home);
        command.env("ROLLSCALE_CRASH_AT", n.to_string()).stderr(Stdio::piped());
        let (crashed_lines, point) = match launch(command) {
            Launched::Serving(mut server) => {
                // Past the last point: every one was walked.
                server.stop();
                std::fs::remove_dir_all(&home).ok();
                break;
            }
            Launched::Exited { status, lines, stderr } => {
                let point = crash_point(&stderr, n)
                    .unwrap_or_else(|| panic!("start {n} ended ({status}) without its crash point: {stderr}"));
                assert_eq!(status.signal(), Some(9), "start {n} was killed (SIGKILL) at {point}: {stderr}");
                (lines, point)
            }
        };
        let context = format!("killed at point {n} ({point})");
        eprintln!("{context}: starting again");
        let mut server = restart(&home, &context);
        let printed: Vec<String> = crashed_lines.iter().chain(&server.lines).cloned().collect();
        let group = check_finished(&home, &server, &printed, &context);
        server.stop();
        check_settled(&home, &group, &context);
        reached.push(point);
        std::fs::remove_dir_all(&home).ok();
    }
    assert_eq!(reached, POINTS, "the walk reached every crash point of the first start, in order");
}

#[test]
fn kill_9_as_soon_as_the_profile_directory_appears() {
    // The report's 16 tries, 0 to 3 ms after `$HOME/.rollscale/` appears (the admin key's
    // profile being written, the demo being made), then later moments, into the demo group's
    // first scale-out.
    let delays_ms: Vec<u64> = (0..16).map(|attempt| attempt % 4).chain([5, 10, 15, 20, 25, 30, 40, 60]).collect();
    for (attempt, delay_ms) in delays_ms.into_iter().enumerate() {
        let home = temp_dir(&format!("first-start-kill-{attempt}"));
        let out = home.join("first-up.out");
        let mut command = up_in_home(&home);
        command.stdout(std::fs::File::create(&out).expect("stdout file"));
        let mut child = command.spawn().expect("rollscale up starts");
        let profile_dir = home.join(".rollscale");
        blocking_until("$HOME/.rollscale/ to appear", Duration::from_secs(60), Duration::from_micros(100), || {
            profile_dir.exists().then_some(())
        });
        // The kill's moment is what this test varies; nothing is waited for here.
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("kill -9");
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(9), "attempt {attempt}: the first start was killed, not ended: {status}");
        let first: Vec<String> =
            std::fs::read_to_string(&out).unwrap_or_default().lines().map(str::to_string).collect();
        let context = format!(
            "attempt {attempt}, killed {delay_ms} ms after $HOME/.rollscale/ appeared (it left {:?}, had printed {} line(s){})",
            entries(&profile_dir),
            first.len(),
            if first.iter().any(|line| line.contains("serving")) { ", serving" } else { "" }
        );
        eprintln!("{context}: starting again");
        let mut server = restart(&home, &context);
        let printed: Vec<String> = first.iter().chain(&server.lines).cloned().collect();
        let group = check_finished(&home, &server, &printed, &context);
        server.stop();
        check_settled(&home, &group, &context);
        std::fs::remove_dir_all(&home).ok();
    }
}
