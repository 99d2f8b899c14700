//! Real instances: `rollscale up --fleet docker` runs the demo group as containers (Podman's
//! Docker-compatible service, started here on a socket of its own) behind a managed HAProxy on
//! loopback, and rolling updates move live traffic off each batch before changing it.
//!
//! Needs podman, runc, busybox-static and haproxy: `scripts/test` installs them
//! (`scripts/containers`, `scripts/haproxy`); the demo images are built here when missing.
//! Each test uses its own container name prefix and removes its containers at the end.

use rollscale_test_support::podman::{self, podman};
use rollscale_test_support::up::{cli, cli_json, instances, start, temp_dir, up, Server};
use rollscale_test_support::{haproxy, net};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const V1: &str = "localhost/rollscale-demo:v1";
const V2: &str = "localhost/rollscale-demo:v2";
const V3: &str = "localhost/rollscale-demo:v3";

/// The Podman service of this test binary (started once, idles out after ten minutes), with
/// the demo images built.
const PODMAN: &str = "rollscale-containers-tests";

/// `rollscale up --fleet docker` with its own container prefix and HAProxy frontend, and the
/// cleanup of both.
struct Site {
    dir: PathBuf,
    prefix: String,
    frontend: String,
    args: Vec<String>,
}

impl Site {
    fn new(name: &str, size: u32) -> Site {
        let socket = podman::docker_host(PODMAN);
        // Short: the HAProxy admin socket lives under it.
        let dir = temp_dir(&format!("ct-{name}"));
        let prefix = format!("rst{name}{}", std::process::id());
        let frontend = format!("127.0.0.1:{}", net::free_port());
        let args = [
            "--fleet",
            "docker",
            "--docker-host",
            &socket,
            "--health-path",
            "/health",
            "--container-prefix",
            &prefix,
            "--haproxy-listen",
            &frontend,
            "--demo-size",
            &size.to_string(),
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        let site = Site { dir, prefix, frontend, args };
        site.remove_containers();
        site
    }

    /// More arguments for `rollscale up`.
    fn with(mut self, extra: &[&str]) -> Site {
        self.args.extend(extra.iter().map(|arg| arg.to_string()));
        self
    }

    fn up(&self) -> Server {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        up(&self.dir, &args)
    }

    /// `up` without the demo checks: for `--no-demo`.
    fn start(&self) -> Server {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        start(&self.dir, &args)
    }

    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        cli(&self.dir, args)
    }

    fn json(&self, args: &[&str]) -> Value {
        cli_json(&self.dir, args)
    }

    /// Every container of this site (name, image), running or not.
    fn containers(&self) -> Vec<(String, String)> {
        let filter = format!("label={}.instance", self.prefix);
        podman(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}} {{.Image}}"])
            .lines()
            .filter_map(|line| line.split_once(' ').map(|(name, image)| (name.to_string(), image.to_string())))
            .collect()
    }

    /// Every container of this site (name, image), straight from the Podman service's API:
    /// quick enough to poll while a swap is under way.
    fn api_containers(&self) -> Vec<(String, String)> {
        let filters = format!("{{\"label\":[\"{}.instance\"]}}", self.prefix);
        let encoded: String = filters
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let socket = podman::service(PODMAN);
        let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("the Podman service");
        let request = format!("GET /v1.41/containers/json?all=true&filters={encoded} HTTP/1.0\r\nHost: d\r\n\r\n");
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let body = response.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
        let listed: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("containers/json: {e}: {response}"));
        listed
            .as_array()
            .expect("a list")
            .iter()
            .map(|container| {
                let name = container["Names"][0].as_str().unwrap_or_default().trim_start_matches('/').to_string();
                (name, container["Image"].as_str().unwrap_or_default().to_string())
            })
            .collect()
    }

    fn remove_containers(&self) {
        podman::remove_containers(&format!("label={}.instance", self.prefix));
    }

    fn admin_socket(&self) -> PathBuf {
        self.dir.join("data").join("haproxy").join("admin.sock")
    }

    /// The HAProxy servers that hold an instance: (status, weight) of each slot not in
    /// maintenance, from `show stat`.
    fn haproxy_servers(&self) -> Vec<(String, u32)> {
        let answer = haproxy::command(&self.admin_socket(), "show stat");
        let mut lines = answer.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().trim_start_matches("# ").split(',').collect();
        let column = |name: &str| header.iter().position(|c| *c == name).unwrap_or_else(|| panic!("no {name}"));
        let (pxname, svname, status, weight) = (column("pxname"), column("svname"), column("status"), column("weight"));
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|row| row.len() > weight && row[pxname].starts_with("lb-") && row[svname] != "BACKEND")
            .filter(|row| row[svname] != "FRONTEND" && !row[status].starts_with("MAINT"))
            .map(|row| (row[status].to_string(), row[weight].parse().unwrap_or(u32::MAX)))
            .collect()
    }

    /// HAProxy's process id and uptime in seconds, from `show info`: a reload would start a
    /// new process.
    fn haproxy_process(&self) -> (u32, u64) {
        let answer = haproxy::command(&self.admin_socket(), "show info");
        let field = |name: &str| {
            answer
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("no {name} in show info: {answer}"))
                .trim()
                .to_string()
        };
        (field("Pid").parse().expect("Pid"), field("Uptime_sec").parse().expect("Uptime_sec"))
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.remove_containers();
        // A managed HAProxy left by a test that failed between a kill -9 and a restart.
        let config = self.dir.join("data").join("haproxy").join("haproxy.cfg");
        let _ = Command::new("pkill").arg("-KILL").arg("-f").arg(config.display().to_string()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The first execution id in the CLI's output.
fn exec_id(stdout: &str) -> String {
    let start = stdout.find("exec-").unwrap_or_else(|| panic!("no execution id in {stdout:?}"));
    stdout[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect()
}

/// An HTTP response (status, body), or why there was none.
type Outcome = Result<(u16, String), String>;

/// One HTTP/1.1 GET on a new connection.
fn get(address: &str) -> Outcome {
    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    stream
        .write_all(format!("GET / HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| format!("read: {e}"))?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not HTTP: {response:?}"))?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.trim().to_string()).unwrap_or_default();
    Ok((status, body))
}

/// A steady, bounded load: `clients` threads, each one request at a time with a short pause.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
}

impl Load {
    fn start(address: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, outcomes, address) = (stop.clone(), outcomes.clone(), address.to_string());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let outcome = get(&address);
                        outcomes.lock().expect("outcomes").push(outcome);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                })
            })
            .collect();
        Load { stop, threads, outcomes }
    }

    /// Waits until `more` requests beyond those made so far have been answered (or failed).
    fn wait_for_more(&self, more: usize) {
        let target = self.outcomes.lock().expect("outcomes").len() + more;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.outcomes.lock().expect("outcomes").len() < target {
            assert!(Instant::now() < deadline, "the load stalled");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the load; returns (requests, the failures: errors and statuses other than 200).
    fn finish(self) -> (usize, Vec<String>) {
        let (requests, failures, _) = self.finish_with_bodies();
        (requests, failures)
    }

    /// [`Load::finish`], with every distinct body of a 200 answer.
    fn finish_with_bodies(self) -> (usize, Vec<String>, std::collections::BTreeSet<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("load thread");
        }
        let outcomes = std::mem::take(&mut *self.outcomes.lock().expect("outcomes"));
        let failures = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Ok((200, _)) => None,
                Ok((status, body)) => Some(format!("HTTP {status}: {body}")),
                Err(error) => Some(error.clone()),
            })
            .collect();
        let bodies =
            outcomes.iter().filter_map(|outcome| outcome.as_ref().ok()).map(|(_, body)| body.clone()).collect();
        (outcomes.len(), failures, bodies)
    }
}

/// Asserts that every instance of the group is InService on `image` at weight 100, in the store
/// and in HAProxy, and that the frontend serves that version only.
fn assert_settled(site: &Site, server: &Server, image: &str, size: usize) {
    assert_settled_with(site, server, image, size, &[]);
}

/// [`assert_settled`], with the weights of some instances other than 100.
fn assert_settled_with(site: &Site, server: &Server, image: &str, size: usize, weights: &[(&str, u32)]) {
    let weight_of = |id: &str| weights.iter().find(|(instance, _)| *instance == id).map_or(100, |(_, w)| *w);
    let listed = instances(&site.dir, &server.group_id);
    assert_eq!(listed.len(), size, "{listed:#?}");
    let mut expected = Vec::new();
    for instance in &listed {
        assert_eq!(instance["ImageId"], image, "{instance}");
        assert_eq!(instance["LifecycleState"], "InService", "{instance}");
        let weight = weight_of(instance["InstanceId"].as_str().expect("instance id"));
        assert_eq!(instance["LoadBalancerWeight"], weight, "{instance}");
        expected.push(weight);
    }
    let servers = site.haproxy_servers();
    assert_eq!(servers.len(), size, "HAProxy holds each instance once: {servers:?}");
    let mut held: Vec<u32> = servers.iter().map(|(_, weight)| *weight).collect();
    held.sort_unstable();
    expected.sort_unstable();
    assert_eq!(held, expected, "weights restored in HAProxy: {servers:?}");
    let containers = site.containers();
    assert_eq!(containers.len(), size, "one container per instance, no leftovers: {containers:?}");
    assert!(containers.iter().all(|(_, running)| running == image), "{containers:?}");
    let version = image.rsplit(':').next().expect("tag");
    for _ in 0..2 * size {
        let (status, body) = get(&site.frontend).expect("the frontend answers");
        assert_eq!((status, body.as_str()), (200, format!("rollscale demo version {version}").as_str()));
    }
}

#[test]
fn an_image_update_and_its_rollback_drop_no_request() {
    let site = Site::new("zero", 6);
    let server = site.up();
    assert!(
        server.lines.iter().any(|line| line.contains(&format!("serves on http://{}", site.frontend))),
        "{:#?}",
        server.lines
    );
    assert_settled(&site, &server, V1, 6);
    // One instance at a weight of its own: ExitStandby must give back that one, not the
    // load balancer's default.
    let lb = server
        .lines
        .iter()
        .find_map(|line| line.strip_prefix("Load balancer ").and_then(|rest| rest.split_whitespace().next()))
        .expect("up names the load balancer")
        .to_string();
    let light = instances(&site.dir, &server.group_id)[2]["InstanceId"].as_str().expect("instance id").to_string();
    let servers = format!("[{{\"ServerId\":\"{light}\",\"Weight\":37}}]");
    site.json(&["ess", "SetBackendServers", "--LoadBalancerId", &lb, "--BackendServers", &servers]);
    let weights = [(light.as_str(), 37)];
    assert_settled_with(&site, &server, V1, 6, &weights);
    let (pid, uptime) = site.haproxy_process();

    let load = Load::start(&site.frontend, 2);
    std::thread::sleep(Duration::from_millis(300));
    let (code, stdout, stderr) = site.cli(&[
        "rolling-update",
        "start",
        "--group",
        &server.group_id,
        "--image",
        V2,
        "--rollback-image",
        V1,
        "--configuration",
        &server.configuration_id,
        "--batches",
        "3",
        "--wait",
    ]);
    assert_eq!(code, 0, "the update succeeds: {stdout}{stderr}");
    let (requests, failures) = load.finish();
    let id = exec_id(&stdout);
    assert!(requests >= 50, "the load ran throughout the update: {requests} requests");
    assert!(failures.is_empty(), "{} of {requests} requests failed: {failures:?}", failures.len());
    let task = site.json(&["oos", "ListExecutions", "--ExecutionId", &id]);
    assert_eq!(task["Executions"][0]["Status"], "Success", "{task}");
    assert_eq!(task["Executions"][0]["Counters"]["Success"], 6, "{task}");
    assert_settled_with(&site, &server, V2, 6, &weights);
    let (after, later) = site.haproxy_process();
    assert_eq!(after, pid, "HAProxy was not reloaded: the same process serves");
    assert!(later >= uptime, "the same process, up since before the update: {uptime} s then {later} s");

    let load = Load::start(&site.frontend, 2);
    std::thread::sleep(Duration::from_millis(300));
    let (code, stdout, stderr) = site.cli(&["rolling-update", "rollback", &id, "--wait"]);
    assert_eq!(code, 0, "the rollback succeeds: {stdout}{stderr}");
    let (requests, failures) = load.finish();
    assert!(requests >= 50, "the load ran throughout the rollback: {requests} requests");
    assert!(failures.is_empty(), "{} of {requests} requests failed: {failures:?}", failures.len());
    assert_settled_with(&site, &server, V1, 6, &weights);
    assert_eq!(site.haproxy_process().0, pid, "HAProxy was not reloaded by the rollback either");
    let configurations =
        site.json(&["ess", "DescribeScalingConfigurations", "--ScalingConfigurationId.1", &server.configuration_id]);
    assert_eq!(
        configurations["ScalingConfigurations"]["ScalingConfiguration"][0]["ImageId"], V1,
        "the rollback restores the configuration's image: {configurations}"
    );
}

#[test]
fn a_failing_script_pauses_the_task_until_a_retry_succeeds() {
    let site = Site::new("script", 3);
    let server = site.up();
    let before = instances(&site.dir, &server.group_id);
    let broken = before[1]["InstanceId"].as_str().expect("instance id").to_string();
    // The cause of the failure, on one instance only.
    podman(&["exec", &format!("{}-{broken}", site.prefix), "touch", "/tmp/broken"]);

    let script = "if [ -f /tmp/broken ]; then echo cannot deploy here >&2; exit 3; fi; \
                  echo deployed in $(pwd) on $(hostname)";
    let (code, stdout, stderr) = site.cli(&[
        "rolling-update",
        "start",
        "--group",
        &server.group_id,
        "--script",
        script,
        "--working-dir",
        "/tmp",
        "--batches",
        "1",
        "--wait",
    ]);
    assert_eq!(code, 3, "the task waits for a decision: {stdout}{stderr}");
    let id = exec_id(&stdout);
    let task = site.json(&["oos", "ListExecutions", "--ExecutionId", &id]);
    assert_eq!(task["Executions"][0]["Status"], "Waiting", "{task}");
    assert_eq!(task["Executions"][0]["WaitingStatus"], "FailurePaused", "{task}");

    let children = site.json(&["oos", "ListExecutions", "--ParentExecutionId", &id]);
    let children = children["Executions"].as_array().expect("children").clone();
    assert_eq!(children.len(), 3);
    for child in &children {
        let instance = child["Parameters"]["instanceId"].as_str().expect("instanceId");
        let outputs: Value = serde_json::from_str(child["Outputs"].as_str().expect("outputs")).expect("JSON");
        let container =
            podman(&["inspect", "--format", "{{.Config.Hostname}}", &format!("{}-{instance}", site.prefix)]);
        if instance == broken {
            assert_eq!(child["Status"], "Failed", "{child}");
            assert_eq!(outputs["exitCode"], 3, "{outputs}");
            assert!(outputs["output"].as_str().is_some_and(|o| o.contains("cannot deploy here")), "{outputs}");
        } else {
            assert_eq!(child["Status"], "Success", "{child}");
            assert_eq!(outputs["exitCode"], 0, "{outputs}");
            let expected = format!("deployed in /tmp on {}", container.trim());
            assert_eq!(outputs["output"].as_str().map(str::trim), Some(expected.as_str()), "{outputs}");
        }
    }
    // The failed instance stays in Standby, out of HAProxy's rotation; the others serve.
    let paused = instances(&site.dir, &server.group_id);
    let state = |listed: &[Value], id: &str| listed.iter().find(|i| i["InstanceId"] == id).cloned().expect("listed");
    assert_eq!(state(&paused, &broken)["LifecycleState"], "Standby");
    assert_eq!(state(&paused, &broken)["LoadBalancerWeight"], 0);
    let mut weights: Vec<u32> = site.haproxy_servers().into_iter().map(|(_, weight)| weight).collect();
    weights.sort();
    assert_eq!(weights, vec![0, 100, 100], "HAProxy: the failed instance at weight 0");
    for _ in 0..6 {
        assert_eq!(get(&site.frontend).map(|(status, _)| status), Ok(200));
    }

    // Fix the cause, retry: the instance succeeds and comes back.
    podman(&["exec", &format!("{}-{broken}", site.prefix), "rm", "/tmp/broken"]);
    let (code, stdout, stderr) = site.cli(&["rolling-update", "retry", &id, &broken, "--wait"]);
    assert_eq!(code, 0, "the retry succeeds and the task finishes: {stdout}{stderr}");
    let task = site.json(&["oos", "ListExecutions", "--ExecutionId", &id]);
    assert_eq!(task["Executions"][0]["Status"], "Success", "{task}");
    assert_settled(&site, &server, V1, 3);
}

#[test]
fn kill_9_during_a_container_update_then_restart_finishes_it() {
    let site = Site::new("kill", 4);
    let mut server = site.up();
    let group = server.group_id.clone();
    let (code, stdout, stderr) =
        site.cli(&["rolling-update", "start", "--group", &group, "--image", V2, "--batches", "2"]);
    assert_eq!(code, 0, "{stderr}");
    let id = exec_id(&stdout);
    // Kill while a container is being swapped: once a replacement (`<name>.next`) exists, or a
    // container is already on the new image, as the Podman API reports them.
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let now = site.api_containers();
        if now.iter().any(|(name, image)| name.ends_with(".next") || image == V2) {
            break now;
        }
        assert!(Instant::now() < deadline, "no container was ever swapped: {now:?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    server.child.kill().expect("kill -9");
    server.child.wait().expect("reaped");
    let left = site.containers();
    eprintln!("killed when the containers were {seen:?}; left: {left:?}");
    let unfinished = left.iter().any(|(name, image)| name.ends_with(".next") || image == V1);
    assert!(unfinished, "the kill lands before the update is done: {left:?}");

    let server = site.up();
    let (code, stdout, stderr) = site.cli(&["rolling-update", "wait", &id]);
    assert_eq!(code, 0, "the task finishes after the restart: {stdout}{stderr}");
    assert_settled(&site, &server, V2, 4);
    let all = site.containers();
    assert!(all.iter().all(|(name, _)| !name.ends_with(".next")), "no half-made replacement left: {all:?}");
}

/// Whether the container runs, as Podman says.
fn container_running(name: &str) -> bool {
    podman(&["inspect", "--format", "{{.State.Running}}", name]).trim() == "true"
}

#[test]
fn a_restart_starts_the_instances_that_stopped_meanwhile() {
    let site = Site::new("reboot", 2);
    let mut server = site.up();
    assert_settled(&site, &server, V1, 2);
    server.stop();
    // As after a reboot of the container host: every container stopped.
    let names: Vec<String> = site.containers().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names.len(), 2);
    for name in &names {
        podman(&["stop", "-t", "0", name]);
        assert!(!container_running(name), "{name} stopped");
    }

    let server = site.up();
    for name in &names {
        assert!(container_running(name), "{name} runs again");
    }
    assert!(server.lines.iter().any(|line| line == "Started 2 stopped instance(s) again."), "{:#?}", server.lines);
    assert_settled(&site, &server, V1, 2);
}

/// The host ports a container publishes (from its configuration: known while it is stopped).
fn host_ports(name: &str) -> Vec<u16> {
    let bindings = podman(&["inspect", "--format", "{{json .HostConfig.PortBindings}}", name]);
    let bindings: Value = serde_json::from_str(bindings.trim()).unwrap_or_else(|e| panic!("{e}: {bindings}"));
    let bindings = bindings.as_object().expect("port bindings").values();
    bindings.filter_map(Value::as_array).flatten().filter_map(|b| b["HostPort"].as_str()?.parse().ok()).collect()
}

#[test]
fn a_restart_goes_on_when_a_stopped_instance_cannot_be_started() {
    // What `up` does at start, alone: the health checker would replace the instance that
    // cannot start (`a_stopped_or_removed_container_is_replaced_…` checks that).
    let site = Site::new("nostart", 3).with(&["--health-check-interval-ms", "600000"]);
    let mut server = site.up();
    assert_settled(&site, &server, V1, 3);
    let broken = instances(&site.dir, &server.group_id)[0]["InstanceId"].as_str().expect("id").to_string();
    server.stop();
    let broken_name = format!("{}-{broken}", site.prefix);
    let names: Vec<String> = site.containers().into_iter().map(|(name, _)| name).collect();
    for name in &names {
        podman(&["stop", "-t", "0", name]);
    }
    // Another process holds one instance's host port: its container cannot start.
    let ports = host_ports(&broken_name);
    let taken: Vec<TcpListener> =
        ports.iter().map(|port| TcpListener::bind(("127.0.0.1", *port)).expect("take the port")).collect();
    assert!(!taken.is_empty(), "{broken_name} publishes a port");

    let mut server = site.up();
    let reported =
        format!("Could not start 1 instance(s), marked Unhealthy (see DescribeScalingInstances): {broken} (");
    assert!(server.lines.iter().any(|line| line.starts_with(&reported)), "{:#?}", server.lines);
    assert!(server.lines.iter().any(|line| line == "Started 2 stopped instance(s) again."), "{:#?}", server.lines);
    for name in names.iter().filter(|name| **name != broken_name) {
        assert!(container_running(name), "{name} runs again");
    }
    assert!(!container_running(&broken_name));
    for instance in instances(&site.dir, &server.group_id) {
        let health = if instance["InstanceId"] == broken.as_str() { "Unhealthy" } else { "Healthy" };
        assert_eq!(instance["HealthStatus"], health, "{instance}");
        assert_eq!(instance["LifecycleState"], "InService", "{instance}");
    }
    // It gets no traffic (its port is another process's now): weight 0 in HAProxy.
    let mut weights: Vec<u32> = site.haproxy_servers().into_iter().map(|(_, weight)| weight).collect();
    weights.sort_unstable();
    assert_eq!(weights, vec![0, 100, 100], "{:?}", site.haproxy_servers());
    for _ in 0..6 {
        assert_eq!(get(&site.frontend), Ok((200, "rollscale demo version v1".to_string())), "the others serve");
    }

    // The port free again, the next start starts it and marks it Healthy.
    server.stop();
    drop(taken);
    let server = site.up();
    assert!(server.lines.iter().any(|line| line == "Started 1 stopped instance(s) again."), "{:#?}", server.lines);
    assert!(container_running(&broken_name));
    let listed = instances(&site.dir, &server.group_id);
    assert!(listed.iter().all(|instance| instance["HealthStatus"] == "Healthy"), "{listed:#?}");
    assert_settled(&site, &server, V1, 3);
}

/// Removes the named images when dropped, whatever the test's outcome.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for image in &self.0 {
            podman(&["rmi", "-f", image]);
        }
    }
}

#[test]
fn images_made_from_an_instance_or_added_to_the_host_later_are_rolled_out() {
    let site = Site::new("image", 2);
    let server = site.up();
    let group = server.group_id.clone();
    let source = instances(&site.dir, &group)[0]["InstanceId"].as_str().expect("instance id").to_string();
    let page = format!("rollscale custom build {}", site.prefix);
    let container = format!("{}-{source}", site.prefix);
    podman(&["exec", &container, "sh", "-c", &format!("echo '{page}' > /www/index.html")]);

    // CreateImage from the instance: a commit of its container, put into the catalog.
    let name = format!("golden-{}", site.prefix);
    let made = site.json(&["ess", "CreateImage", "--InstanceId", &source, "--ImageName", &name]);
    let image = made["ImageId"].as_str().unwrap_or_else(|| panic!("{made}")).to_string();
    let late = format!("localhost/rollscale-late-{}:v2", site.prefix);
    let _images = Images(vec![image.clone(), late.clone()]);
    let catalog = site.json(&["ess", "DescribeImages"]);
    assert!(catalog.to_string().contains(&image), "{catalog}");

    let (code, stdout, stderr) =
        site.cli(&["rolling-update", "start", "--group", &group, "--image", &image, "--batches", "2", "--wait"]);
    assert_eq!(code, 0, "the update to the image made from an instance succeeds: {stdout}{stderr}");
    for instance in instances(&site.dir, &group) {
        assert_eq!(instance["ImageId"], image.as_str(), "{instance}");
        assert_eq!(instance["LifecycleState"], "InService", "{instance}");
    }
    let containers = site.containers();
    assert_eq!(containers.len(), 2, "{containers:?}");
    assert!(containers.iter().all(|(_, running)| *running == image), "{containers:?}");
    for _ in 0..4 {
        assert_eq!(get(&site.frontend), Ok((200, page.clone())), "every instance serves the committed page");
    }

    // An image added to the container host after `up` started: accepted at StartExecution.
    podman(&["tag", V2, &late]);
    let (code, stdout, stderr) =
        site.cli(&["rolling-update", "start", "--group", &group, "--image", &late, "--batches", "2", "--wait"]);
    assert_eq!(code, 0, "the update to an image built after the start succeeds: {stdout}{stderr}");
    let containers = site.containers();
    assert!(containers.iter().all(|(_, running)| *running == late), "{containers:?}");
    for _ in 0..4 {
        assert_eq!(get(&site.frontend), Ok((200, "rollscale demo version v2".to_string())));
    }
}

#[test]
fn a_new_instance_that_fails_its_health_check_gets_no_traffic() {
    let site = Site::new("gate", 2).with(&["--health-timeout", "3"]);
    let server = site.up();
    let group = server.group_id.clone();
    assert_settled(&site, &server, V1, 2);
    // New instances are made from an image whose health check fails.
    let broken = "localhost/rollscale-demo:broken";
    let configuration = &server.configuration_id;
    site.json(&["ess", "ModifyScalingConfiguration", "--ScalingConfigurationId", configuration, "--ImageId", broken]);
    let load = Load::start(&site.frontend, 2);
    site.json(&["ess", "ModifyScalingGroup", "--ScalingGroupId", &group, "--DesiredCapacity", "3"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let new = loop {
        let listed = instances(&site.dir, &group);
        if let Some(new) = listed.iter().find(|i| i["LifecycleState"] == "Pending" && i["HealthStatus"] == "Unhealthy")
        {
            break new.clone();
        }
        assert!(Instant::now() < deadline, "no new instance was found unhealthy: {listed:#?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let new_id = new["InstanceId"].as_str().expect("instance id").to_string();
    assert_eq!(new["LoadBalancerWeight"], Value::Null, "not registered: {new}");
    let containers = site.containers();
    assert!(containers.iter().any(|(name, image)| name.ends_with(&new_id) && image == broken), "{containers:?}");
    assert!(container_running(&format!("{}-{new_id}", site.prefix)), "the container itself runs");
    // A few reconcile passes later it is still kept out of HAProxy.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(site.haproxy_servers().len(), 2, "HAProxy holds the two healthy instances only");
    let (requests, failures, bodies) = load.finish_with_bodies();
    assert!(failures.is_empty(), "{} of {requests} requests failed: {failures:?}", failures.len());
    assert_eq!(bodies.into_iter().collect::<Vec<_>>(), vec!["rollscale demo version v1".to_string()]);
    let still = instances(&site.dir, &group);
    let still = still.iter().find(|i| i["InstanceId"] == new_id.as_str()).expect("still there");
    assert_eq!(
        (still["LifecycleState"].as_str(), still["HealthStatus"].as_str()),
        (Some("Pending"), Some("Unhealthy"))
    );

    // A scale-in removes the instance that never became healthy, not a serving one.
    site.json(&["ess", "ModifyScalingGroup", "--ScalingGroupId", &group, "--DesiredCapacity", "2"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while instances(&site.dir, &group).len() != 2 {
        assert!(Instant::now() < deadline, "the unhealthy instance was never scaled in");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(instances(&site.dir, &group).iter().all(|i| i["InstanceId"] != new_id.as_str()));
    assert_settled(&site, &server, V1, 2);
}

/// Waits until the group has `size` instances, none of `gone`, every one InService, Healthy
/// and serving in HAProxy (every slot UP at weight 100).
fn wait_healed(site: &Site, server: &Server, size: usize, gone: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let listed = instances(&site.dir, &server.group_id);
        let whole = listed.len() == size
            && listed.iter().all(|i| {
                i["LifecycleState"] == "InService"
                    && i["HealthStatus"] == "Healthy"
                    && !gone.iter().any(|id| i["InstanceId"] == *id)
            });
        let servers = site.haproxy_servers();
        let serving = servers.len() == size && servers.iter().all(|(status, weight)| status == "UP" && *weight == 100);
        if whole && serving {
            return;
        }
        assert!(Instant::now() < deadline, "the group did not heal: {listed:#?} {servers:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The activities of the group that removed an unhealthy instance (R17), as (description, cause).
fn removals(site: &Site, server: &Server) -> Vec<(String, String)> {
    let described = site.json(&["ess", "DescribeScalingActivities", "--ScalingGroupId", &server.group_id]);
    let activities = described["ScalingActivities"]["ScalingActivity"].as_array().cloned().unwrap_or_default();
    activities
        .iter()
        .map(|a| {
            (
                a["Description"].as_str().unwrap_or_default().to_string(),
                a["Cause"].as_str().unwrap_or_default().to_string(),
            )
        })
        .filter(|(description, _)| description.contains("unhealthy instance"))
        .collect()
}

/// R17 with real containers: `podman stop` of one instance, then `podman rm -f` of another;
/// each time the health checker removes it and the group makes a new one, back to its
/// desired size of healthy instances, and a client sending requests through HAProxy the whole
/// time gets every answer from a serving instance (HAProxy's own check takes the dead one out
/// of rotation; a request that met it on the way is retried on another).
#[test]
fn a_stopped_or_removed_container_is_replaced_without_a_failed_request() {
    let site = Site::new("heal", 3).with(&["--health-check-interval-ms", "500"]);
    let server = site.up();
    assert_settled(&site, &server, V1, 3);
    let listed = instances(&site.dir, &server.group_id);
    let id = |n: usize| listed[n]["InstanceId"].as_str().expect("instance id").to_string();
    let (stopped, removed) = (id(0), id(1));
    let load = Load::start(&site.frontend, 2);
    // Requests before, between and after: the load runs throughout.
    load.wait_for_more(10);
    podman(&["stop", "-t", "0", &format!("{}-{stopped}", site.prefix)]);
    wait_healed(&site, &server, 3, &[&stopped]);
    load.wait_for_more(10);
    podman(&["rm", "-f", "-t", "0", &format!("{}-{removed}", site.prefix)]);
    wait_healed(&site, &server, 3, &[&stopped, &removed]);
    load.wait_for_more(10);

    let (requests, failures, bodies) = load.finish_with_bodies();
    assert!(failures.is_empty(), "{} of {requests} requests failed: {failures:?}", failures.len());
    assert_eq!(bodies.into_iter().collect::<Vec<_>>(), vec!["rollscale demo version v1".to_string()]);
    let removals = removals(&site, &server);
    assert_eq!(removals.len(), 2, "{removals:#?}");
    assert!(removals.iter().any(|(d, cause)| d.contains(&stopped) && cause.contains("stopped")), "{removals:#?}");
    // `podman rm -f` stops the container before it removes it: a look between the two sees it
    // stopped.
    let gone = |cause: &str| cause.contains("gone") || cause.contains("stopped");
    assert!(removals.iter().any(|(d, cause)| d.contains(&removed) && gone(cause)), "{removals:#?}");
    assert_eq!(site.containers().len(), 3, "the dead containers are gone: {:?}", site.containers());
    assert_settled(&site, &server, V1, 3);
}

/// R16, R17 with real containers: a broken image (its `/health` answers 404) rolled through
/// the group fails its first instance, whose record then says what it became (the broken
/// image, Unhealthy), so a rollback targets it and restores it; a second broken roll, cancelled,
/// and the seeds' manual ExitStandby of the failed instance: its weight comes back, but HAProxy
/// sends it nothing while its check fails, and the health checker replaces it. No answer ever
/// comes from the broken version.
#[test]
fn a_broken_image_is_recorded_rolled_back_and_never_served() {
    let broken = "localhost/rollscale-demo:broken";
    let site = Site::new("broken", 3).with(&["--health-check-interval-ms", "500", "--health-timeout", "4"]);
    let server = site.up();
    assert_settled(&site, &server, V1, 3);
    let load = Load::start(&site.frontend, 2);
    load.wait_for_more(10);
    let roll = || {
        let (code, stdout, stderr) = site.cli(&[
            "rolling-update",
            "start",
            "--group",
            &server.group_id,
            "--image",
            broken,
            "--rollback-image",
            V1,
            "--batches",
            "3",
            "--wait",
        ]);
        assert_eq!(code, 3, "the task waits for a decision: {stdout}{stderr}");
        exec_id(&stdout)
    };
    let failed_instance = |id: &str| {
        let children = site.json(&["oos", "ListExecutions", "--ParentExecutionId", id]);
        let children = children["Executions"].as_array().expect("children").clone();
        let failed: Vec<&Value> = children.iter().filter(|c| c["Status"] == "Failed").collect();
        assert_eq!(failed.len(), 1, "{children:#?}");
        failed[0]["Parameters"]["instanceId"].as_str().expect("instanceId").to_string()
    };

    let first = roll();
    let victim = failed_instance(&first);
    let shown = instances(&site.dir, &server.group_id);
    let shown = shown.iter().find(|i| i["InstanceId"] == victim.as_str()).expect("listed");
    assert_eq!(shown["ImageId"], broken, "the record says what the instance became: {shown}");
    assert_eq!(shown["HealthStatus"], "Unhealthy", "{shown}");
    assert_eq!(shown["LifecycleState"], "Standby", "{shown}");
    let (code, stdout, stderr) = site.cli(&["rolling-update", "rollback", &first, "--wait"]);
    assert_eq!(code, 0, "the rollback succeeds: {stdout}{stderr}");
    let rollback = site.json(&["oos", "ListExecutions", "--ParentExecutionId", &exec_id(&stdout)]);
    let targets: Vec<&str> = rollback["Executions"]
        .as_array()
        .expect("children")
        .iter()
        .filter_map(|c| c["Parameters"]["instanceId"].as_str())
        .collect();
    assert_eq!(targets, vec![victim.as_str()], "the rollback targets the instance the task changed");
    wait_healed(&site, &server, 3, &[]);
    assert_settled(&site, &server, V1, 3);

    let second = roll();
    let victim = failed_instance(&second);
    let (code, stdout, stderr) = site.cli(&["rolling-update", "cancel", &second]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The seeds' manual steps after a cancel: out of Standby, processes resumed (R10).
    let exited = site.json(&["ess", "ExitStandby", "--ScalingGroupId", &server.group_id, "--InstanceId.1", &victim]);
    let said = exited["StatusMessage"].as_str().unwrap_or_default();
    assert!(said.contains(&victim) && said.contains("no traffic"), "the answer says it gets no traffic: {exited}");
    let back = instances(&site.dir, &server.group_id);
    let back = back.iter().find(|i| i["InstanceId"] == victim.as_str()).cloned().expect("listed");
    assert_eq!(
        (back["LifecycleState"].as_str(), back["HealthStatus"].as_str()),
        (Some("InService"), Some("Unhealthy"))
    );
    let mut resume = vec!["ess", "ResumeProcesses", "--ScalingGroupId", server.group_id.as_str()];
    let processes = ["ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction"];
    let names: Vec<String> = (1..=processes.len()).map(|n| format!("--Process.{n}")).collect();
    for (name, process) in names.iter().zip(processes) {
        resume.extend([name.as_str(), process]);
    }
    site.json(&resume);
    wait_healed(&site, &server, 3, &[&victim]);
    load.wait_for_more(10);

    let (requests, failures, bodies) = load.finish_with_bodies();
    assert!(failures.is_empty(), "{} of {requests} requests failed: {failures:?}", failures.len());
    assert_eq!(
        bodies.into_iter().collect::<Vec<_>>(),
        vec!["rollscale demo version v1".to_string()],
        "no answer from the broken version"
    );
    assert!(removals(&site, &server).iter().any(|(d, _)| d.contains(&victim)), "{:#?}", removals(&site, &server));
}

const ECI_TEMPLATE: &str = "ACS-ESS-RollingUpdateByUpdateContainerGroup";

/// A container group: `web` (the main container, serving the frontend's traffic on 8080) and
/// `side` (on 8081 in the same network namespace).
fn web_and_side(web: &str, side: &str) -> Value {
    json!([
        {"name": "web", "image": web, "port": 8080},
        {"name": "side", "image": side, "command": ["/bin/httpd", "-f", "-p", "8081", "-h", "/www"], "port": 8081},
    ])
}

/// Every container group of the site: (main container, web's image, side's image), and what
/// side answers on loopback inside the main container's network namespace.
fn container_groups(site: &Site) -> Vec<(String, String, String, String)> {
    let all = site.containers();
    let mut groups: Vec<(String, String, String, String)> = all
        .iter()
        .filter(|(name, _)| !name.contains("--"))
        .map(|(main, web)| {
            let side = all
                .iter()
                .find(|(name, _)| *name == format!("{main}--side"))
                .map(|(_, image)| image.clone())
                .unwrap_or_else(|| panic!("{main} has no side container: {all:?}"));
            let peek = podman(&["exec", main, "wget", "-q", "-O", "-", "http://127.0.0.1:8081/"]);
            (main.clone(), web.clone(), side, peek.trim().to_string())
        })
        .collect();
    groups.sort();
    groups
}

/// Asserts that every group runs web on `web` and side on `side`, InService at `weight` in the
/// store and in HAProxy, and that the frontend serves web's version.
fn assert_groups(site: &Site, group: &str, web: &str, side: &str, weight: u32) {
    let version = |image: &str| format!("rollscale demo version {}", image.rsplit(':').next().expect("tag"));
    let groups = container_groups(site);
    assert_eq!(groups.len(), 3, "{groups:?}");
    for (main, web_image, side_image, peek) in &groups {
        assert_eq!((web_image.as_str(), side_image.as_str()), (web, side), "{main}");
        assert_eq!(*peek, version(side), "{main}: side answers in web's network namespace");
    }
    for instance in instances(&site.dir, group) {
        assert_eq!(instance["LifecycleState"], "InService", "{instance}");
        assert_eq!(instance["LoadBalancerWeight"], weight, "{instance}");
    }
    let servers = site.haproxy_servers();
    assert_eq!(servers.iter().map(|(_, w)| *w).collect::<Vec<_>>(), vec![weight; 3], "{servers:?}");
    for _ in 0..6 {
        assert_eq!(get(&site.frontend), Ok((200, version(web))));
    }
}

/// Runs a container-group rolling update (StartExecution, or a rollback with `rollback_of`)
/// under a steady load; asserts it succeeds with no failed request. Returns its id.
fn container_update(site: &Site, parameters: Option<Value>, rollback_of: Option<&str>) -> String {
    let load = Load::start(&site.frontend, 2);
    std::thread::sleep(Duration::from_millis(300));
    let id = match (parameters, rollback_of) {
        (Some(parameters), None) => {
            let (code, stdout, stderr) = site.cli(&[
                "oos",
                "StartExecution",
                "--TemplateName",
                ECI_TEMPLATE,
                "--Parameters",
                &parameters.to_string(),
            ]);
            assert_eq!(code, 0, "{stdout}{stderr}");
            let id = exec_id(&stdout);
            let (code, stdout, stderr) = site.cli(&["rolling-update", "wait", &id]);
            assert_eq!(code, 0, "the update succeeds: {stdout}{stderr}");
            id
        }
        (None, Some(source)) => {
            let (code, stdout, stderr) = site.cli(&["rolling-update", "rollback", source, "--wait"]);
            assert_eq!(code, 0, "the rollback succeeds: {stdout}{stderr}");
            exec_id(&stdout)
        }
        _ => unreachable!("an update or a rollback"),
    };
    let (requests, failures) = load.finish();
    assert!(requests >= 20, "the load ran throughout: {requests} requests");
    assert!(failures.is_empty(), "{} of {requests} requests failed: {failures:?}", failures.len());
    let task = site.json(&["oos", "ListExecutions", "--ExecutionId", &id]);
    assert_eq!(task["Executions"][0]["Status"], "Success", "{task}");
    assert_eq!(task["Executions"][0]["TemplateName"], ECI_TEMPLATE, "{task}");
    id
}

#[test]
fn container_groups_renew_and_merge_behind_haproxy_without_a_failed_request() {
    let site = Site::new("eci", 3).with(&["--no-demo"]);
    // A load balancer gets its HAProxy frontend at the next start.
    let mut first = site.start();
    let lb = site.json(&["ess", "CreateLoadBalancer", "--LoadBalancerName", "eci-lb", "--DefaultWeight", "40"]);
    let lb = lb["LoadBalancerId"].as_str().expect("load balancer id").to_string();
    first.stop();
    let server = site.start();
    let serves = format!("Load balancer {lb} (eci-lb) serves on http://{} (HAProxy).", site.frontend);
    assert!(server.lines.contains(&serves), "{:#?}", server.lines);

    let created = site.json(&[
        "ess",
        "CreateScalingGroup",
        "--ScalingGroupName",
        "eci",
        "--GroupType",
        "ECI",
        "--MinSize",
        "0",
        "--MaxSize",
        "6",
        "--DesiredCapacity",
        "3",
        "--LoadBalancerIds.1",
        &lb,
        "--DrainTimeout",
        "10",
    ]);
    let group = created["ScalingGroupId"].as_str().expect("group id").to_string();
    let containers = web_and_side(V1, V2).to_string();
    site.json(&[
        "ess",
        "CreateScalingConfiguration",
        "--ScalingGroupId",
        &group,
        "--ImageId",
        V1,
        "--Containers",
        &containers,
    ]);
    site.json(&["ess", "EnableScalingGroup", "--ScalingGroupId", &group]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let listed = instances(&site.dir, &group);
        if listed.len() == 3 && listed.iter().all(|i| i["LifecycleState"] == "InService") {
            break;
        }
        assert!(Instant::now() < deadline, "the group never came up: {listed:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_groups(&site, &group, V1, V2, 40);

    // RenewUpdate: the spec is replaced; web changes, so each group is made again (same
    // address), batch by batch, drained first.
    let renew = container_update(
        &site,
        Some(json!({
            "invokeType": "invoke", "scalingGroupId": group, "updateType": "RenewUpdate",
            "containers": web_and_side(V2, V3), "rollbackContainers": web_and_side(V1, V2), "batchNumber": 3,
        })),
        None,
    );
    assert_groups(&site, &group, V2, V3, 40);
    container_update(&site, None, Some(&renew));
    assert_groups(&site, &group, V1, V2, 40);

    // IncrementalUpdate: only side is named, so only side is swapped; web keeps running.
    let mains: Vec<String> = container_groups(&site)
        .iter()
        .map(|(main, ..)| podman(&["inspect", "--format", "{{.Id}}", main]).trim().to_string())
        .collect();
    let merge = container_update(
        &site,
        Some(json!({
            "invokeType": "invoke", "scalingGroupId": group, "updateType": "IncrementalUpdate",
            "containers": [{"name": "side", "image": V3}], "rollbackContainers": web_and_side(V1, V2),
            "batchNumber": 2,
        })),
        None,
    );
    assert_groups(&site, &group, V1, V3, 40);
    let kept: Vec<String> = container_groups(&site)
        .iter()
        .map(|(main, ..)| podman(&["inspect", "--format", "{{.Id}}", main]).trim().to_string())
        .collect();
    assert_eq!(kept, mains, "the main containers were not recreated");
    container_update(&site, None, Some(&merge));
    assert_groups(&site, &group, V1, V2, 40);
}
