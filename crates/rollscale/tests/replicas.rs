//! Several `rollscale up` on one PostgreSQL database share the work: a rolling update started
//! through one replica is driven by one; `kill -9` of the replica that drives it mid-task, and
//! the other takes it over once its lease expires and finishes it. And SQLite is
//! single-replica: a second `up` on the same file is refused.
//!
//! PostgreSQL: `ROLLSCALE_TEST_POSTGRES_URL` (as the store's tests), or else the server that
//! `scripts/postgres` makes available (it installs and starts one); the test creates a
//! database of its own there.

use rollscale_test_support::postgres;
use rollscale_test_support::up::{bin, cli, cli_json, instances, start_in, temp_dir, Server};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NEW_IMAGE: &str = "aliyun_2_1903_x64_20G_alibase_20200529.vhd";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// The replica id a `rollscale up` printed.
fn replica_id(server: &Server) -> String {
    server
        .lines
        .iter()
        .find_map(|line| line.strip_prefix("Replica ").and_then(|rest| rest.split_whitespace().next()))
        .unwrap_or_else(|| panic!("up says which replica it is: {:#?}", server.lines))
        .to_string()
}

/// The CLI profile of `from` pointed at nothing yet: the next `up` with it writes its endpoint.
fn copy_profile(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    std::fs::copy(from.join("config.json"), to.join("config.json")).expect("profile");
}

#[test]
fn two_replicas_on_postgres_share_a_rolling_update_and_the_survivor_of_a_kill_9_finishes_it() {
    let rt = runtime();
    let url = rt.block_on(postgres::database("rollscale_e2e_replicas"));
    let store = rt.block_on(rollscale_store::Store::open(&url)).expect("the test's own view of the store");

    // Two replicas, one data directory (their server key); each its own CLI profile.
    let dir = temp_dir("replicas");
    let (dir_a, dir_b) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&dir_a).expect("dir");
    let data = dir.join("data");
    let lease_flags = ["--lease-ttl-ms", "3000", "--lease-renew-ms", "500", "--lease-poll-ms", "300"];
    let flags_for = |latency: &'static str| {
        let mut flags = vec!["--database-url", url.as_str(), "--sim-latency-ms", latency];
        flags.extend(lease_flags);
        flags
    };
    let mut a = start_in(&dir_a, &data, &flags_for("200"));
    let group = a.group_id.clone();
    assert!(group.starts_with("asg-"), "the first replica made the demo: {:#?}", a.lines);
    copy_profile(&dir_a, &dir_b);
    let mut b = start_in(&dir_b, &data, &flags_for("200"));
    assert!(b.group_id == group, "the second replica sees the same group: {:#?}", b.lines);
    assert!(!b.lines.iter().any(|line| line.contains("Created the admin AccessKey")), "set up once");
    let (id_a, id_b) = (replica_id(&a), replica_id(&b));
    assert_ne!(id_a, id_b);
    assert_ne!(a.endpoint, b.endpoint);
    assert_eq!(instances(&dir_b, &group).len(), 10, "B serves the same store");

    // Started through A.
    let (code, stdout, stderr) =
        cli(&dir_a, &["rolling-update", "start", "--group", &group, "--image", NEW_IMAGE, "--batches", "5"]);
    assert_eq!(code, 0, "{stderr}");
    let id = stdout.trim().to_string();
    assert!(id.starts_with("exec-"), "{stdout}");
    let execution = rollscale_core::ids::ExecutionId::parse(&id).expect("an execution id");
    let lease_name = rollscale_store::task_lease_name(&execution);

    // Exactly one replica drives it; wait until it is mid-task, then kill -9 that one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let owner = loop {
        let lease = rt.block_on(store.lease_get(&lease_name)).expect("lease");
        let listed = cli_json(&dir_b, &["oos", "ListExecutions", "--ExecutionId", &id]);
        let done = listed["Executions"][0]["Counters"]["Success"].as_u64().unwrap_or(0);
        if let (Some(lease), true) = (lease, done >= 2) {
            assert_eq!(listed["Executions"][0]["Status"], "Running", "the kill must land mid-task: {listed}");
            assert!(done < 10, "the kill must land mid-task: {done} of 10 done");
            break lease.owner;
        }
        assert!(Instant::now() < deadline, "the task never got going: {listed}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(owner == id_a || owner == id_b, "{owner} is one of {id_a} {id_b}");
    let (killed, survivor, survivor_dir) =
        if owner == id_a { (&mut a, &mut b, &dir_b) } else { (&mut b, &mut a, &dir_a) };
    killed.child.kill().expect("kill -9");
    killed.child.wait().expect("reaped");
    let survivor_id = if owner == id_a { id_b.clone() } else { id_a.clone() };

    // The survivor takes it over once the lease expires, and finishes it with the right result.
    let (code, _, stderr) = cli(survivor_dir, &["rolling-update", "wait", &id]);
    assert_eq!(code, 0, "the survivor did not finish the task: {stderr}");
    let listed = cli_json(survivor_dir, &["oos", "ListExecutions", "--ExecutionId", &id]);
    assert_eq!(listed["Executions"][0]["Status"], "Success", "{listed}");
    let after = instances(survivor_dir, &group);
    assert_eq!(after.len(), 10, "no instance lost or duplicated");
    for instance in &after {
        assert_eq!(instance["ImageId"], NEW_IMAGE, "{instance}");
        assert_eq!(instance["LifecycleState"], "InService", "{instance}");
        assert_eq!(instance["LoadBalancerWeight"], 100, "{instance}");
    }
    // Each instance's child execution done once, successfully.
    let children =
        cli_json(survivor_dir, &["oos", "ListExecutions", "--ParentExecutionId", &id, "--MaxResults", "100"]);
    let children = children["Executions"].as_array().expect("children");
    assert_eq!(children.len(), 10);
    assert!(children.iter().all(|child| child["Status"] == "Success"), "{children:#?}");
    // Finished: its lease given back by the survivor; the reconciler's is the survivor's.
    let reconciler = rt.block_on(store.lease_get(rollscale_store::RECONCILER_LEASE)).expect("lease");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut reconciler = reconciler;
    while reconciler.as_ref().map(|lease| lease.owner.as_str()) != Some(survivor_id.as_str()) {
        assert!(Instant::now() < deadline, "the survivor runs the reconciler: {reconciler:?}");
        std::thread::sleep(Duration::from_millis(100));
        reconciler = rt.block_on(store.lease_get(rollscale_store::RECONCILER_LEASE)).expect("lease");
    }
    // The task is marked finished before its lease is released: wait for the release.
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Some(lease) = rt.block_on(store.lease_get(&lease_name)).expect("lease") {
        assert!(Instant::now() < deadline, "the finished task's lease is given back: {lease:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    survivor.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_up_on_one_sqlite_file_is_refused() {
    let dir = temp_dir("sqlite-single");
    let mut first = start_in(&dir, &dir.join("data"), &["--sim-latency-ms", "1", "--demo-size", "2"]);
    let mut second = Command::new(bin())
        .args(["up", "--listen", "127.0.0.1:0", "--no-demo", "--data-dir"])
        .arg(dir.join("data"))
        .env("ROLLSCALE_CONFIG", dir.join("second.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rollscale up starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second up on the same SQLite file kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = second.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "refused");
    // The data directory and the database are their owner's only: they hold the audit log.
    let mode = |path: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
    };
    assert_eq!(mode(&dir.join("data")), 0o700);
    // (The first is still serving, so SQLite's -wal and -shm files are there.)
    for file in ["rollscale.db", "rollscale.db-wal", "rollscale.db-shm", "server.key"] {
        assert_eq!(mode(&dir.join("data").join(file)), 0o600, "{file}");
    }
    assert!(stderr.contains("SQLite is single-replica") && stderr.contains("postgres://"), "{stderr}");
    // The first serves on, untouched.
    assert_eq!(instances(&dir, &first.group_id).len(), 2);
    // Once it is gone (even by kill -9), the file is free again.
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");
    let again = start_in(&dir, &dir.join("data"), &["--sim-latency-ms", "1"]);
    assert_eq!(instances(&dir, &again.group_id).len(), 2);
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}
