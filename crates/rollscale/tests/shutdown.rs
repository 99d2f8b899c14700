//! SIGTERM stops `rollscale up` gracefully within `--shutdown-timeout`: with an event stream
//! (Server-Sent Events) and a long poll open and a rolling update in flight, the stream gets a
//! last `shutdown` event and ends, the long poll answers with the task as it stands, the steps
//! in flight finish and the process exits within the bound. On PostgreSQL the stopped replica
//! hands its leases back: the other takes the task over within 2 s, not once a lease expires,
//! and finishes it with each instance done once.
//!
//! The bound is given through `ROLLSCALE_SHUTDOWN_TIMEOUT`, which a `rollscale up` without the
//! flag ignores: on such a build the tests run the same way and fail saying what did not end.
//!
//! PostgreSQL: `ROLLSCALE_TEST_POSTGRES_URL`, or else the server that `scripts/postgres` makes
//! available (see `tests/replicas.rs`).

use rollscale_test_support::postgres;
use rollscale_test_support::up::{cli, cli_json, instances, start_with, temp_dir, Server};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const NEW_IMAGE: &str = "aliyun_2_1903_x64_20G_alibase_20200529.vhd";

/// The shutdown timeout the tests give `up`, in seconds.
const BOUND_S: u64 = 5;

/// What the tests allow beyond the bound for the process to end and be reaped on a busy
/// machine.
const MARGIN: Duration = Duration::from_secs(2);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// A bearer token for the REST API from the profile in `dir`.
fn token(dir: &Path) -> String {
    let (code, stdout, stderr) = cli(dir, &["token"]);
    assert_eq!(code, 0, "{stderr}");
    stdout.trim().to_string()
}

/// Starts a rolling update of the demo group through the profile in `dir`; its id.
fn start_task(dir: &Path, group: &str, batches: &str) -> String {
    let (code, stdout, stderr) =
        cli(dir, &["rolling-update", "start", "--group", group, "--image", NEW_IMAGE, "--batches", batches]);
    assert_eq!(code, 0, "{stderr}");
    let id = stdout.trim().to_string();
    assert!(id.starts_with("exec-"), "{stdout}");
    id
}

/// The task as `ListExecutions` shows it: (status, instances done).
fn progress(dir: &Path, id: &str) -> (String, u64) {
    let listed = cli_json(dir, &["oos", "ListExecutions", "--ExecutionId", id]);
    let execution = &listed["Executions"][0];
    (
        execution["Status"].as_str().unwrap_or_default().to_string(),
        execution["Counters"]["Success"].as_u64().unwrap_or(0),
    )
}

/// Waits until the task is mid-run: Running, an instance's step in flight.
fn wait_for_a_step(dir: &Path, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let children = cli_json(dir, &["oos", "ListExecutions", "--ParentExecutionId", id, "--MaxResults", "100"]);
        let children = children["Executions"].as_array().expect("children").clone();
        if children.iter().any(|child| child["Status"] == "Running") {
            let (status, _) = progress(dir, id);
            assert_eq!(status, "Running", "the stop must land mid-task");
            return;
        }
        assert!(Instant::now() < deadline, "the task never got going: {children:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The task's event stream, open: it has answered with its headers (the handler runs).
struct Stream {
    response: reqwest::Response,
    text: String,
}

impl Stream {
    async fn open(endpoint: &str, id: &str, token: &str) -> Stream {
        let response = reqwest::Client::new()
            .get(format!("{endpoint}/v1/rolling-updates/{id}/events"))
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("the event stream");
        assert_eq!(response.status(), 200);
        let mut stream = Stream { response, text: String::new() };
        // The first `progress` event comes at once.
        while !stream.text.contains("event: progress") {
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.response.chunk())
                .await
                .expect("the first event within 10 s")
                .expect("the stream reads");
            let chunk = chunk.expect("the stream is still open");
            stream.text.push_str(&String::from_utf8_lossy(&chunk));
        }
        stream
    }

    /// Reads the stream until it ends, for at most `within`: everything it sent.
    async fn read_to_end(mut self, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => panic!("the event stream did not end within {within:?}; it sent:\n{}", self.text),
                Ok(Err(error)) => panic!("the event stream broke instead of ending ({error}); it sent:\n{}", self.text),
                Ok(Ok(None)) => return self.text,
                Ok(Ok(Some(chunk))) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
            }
        }
    }
}

/// A long poll of the task (`?wait=300`) over a socket of its own, sent and read by the server
/// (so it is in its handler, not in a queue, when the test goes on).
struct LongPoll {
    socket: TcpStream,
}

impl LongPoll {
    fn send(endpoint: &str, id: &str, token: &str) -> LongPoll {
        let server: SocketAddr = endpoint.trim_start_matches("http://").parse().expect("an address");
        let mut socket = TcpStream::connect(server).expect("connect");
        let request = format!(
            "GET /v1/rolling-updates/{id}?wait=300 HTTP/1.1\r\nHost: {server}\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).expect("send the long poll");
        let client = socket.local_addr().expect("local address");
        let deadline = Instant::now() + Duration::from_secs(10);
        // First the request is all in the server's socket (acknowledged), then read from it.
        for (what, done) in [("received", Queue::ClientSending), ("read", Queue::ServerReceiving)] {
            while queued(done, server, client) != Some(0) {
                assert!(Instant::now() < deadline, "the server's end had not {what} the long poll within 10 s");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        LongPoll { socket }
    }

    /// Its answer, waited for at most `within`: (status code, body).
    fn answer(mut self, within: Duration) -> (u16, serde_json::Value) {
        self.socket.set_read_timeout(Some(within)).expect("timeout");
        let mut answer = Vec::new();
        if let Err(error) = self.socket.read_to_end(&mut answer) {
            panic!(
                "the long poll was not answered within {within:?} ({error}); it read:\n{}",
                String::from_utf8_lossy(&answer)
            );
        }
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("an HTTP answer: {answer}"));
        let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
        let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("a JSON body ({e}): {answer}"));
        (status, body)
    }
}

/// A queue of one end of a loopback connection.
#[derive(Clone, Copy)]
enum Queue {
    /// The client's bytes sent and not yet acknowledged by the server's end.
    ClientSending,
    /// The bytes in the server's end that the server has not read.
    ServerReceiving,
}

/// How many bytes are in `queue` of the connection from `client` to `server` (Linux's
/// `/proc/net/tcp`); `None` while that end is not there. The server's end shows nothing left
/// to read once the server accepted the connection and read what arrived.
fn queued(queue: Queue, server: SocketAddr, client: SocketAddr) -> Option<u32> {
    let hex = |address: SocketAddr| match address {
        SocketAddr::V4(v4) => format!("{:08X}:{:04X}", u32::from_le_bytes(v4.ip().octets()), v4.port()),
        SocketAddr::V6(_) => panic!("the tests serve on IPv4 loopback"),
    };
    let (local, remote, field) = match queue {
        Queue::ClientSending => (hex(client), hex(server), 0),
        Queue::ServerReceiving => (hex(server), hex(client), 1),
    };
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() > 4 && fields[1] == local && fields[2] == remote {
            let queue = fields[4].split(':').nth(field)?;
            u32::from_str_radix(queue, 16).ok()
        } else {
            None
        }
    })
}

/// SIGTERM to `server`; waits for it to exit, for at most the bound and the margin (then
/// kills it and fails). How long it took.
fn terminate(server: &mut Server) -> Duration {
    let sent = Instant::now();
    let status = std::process::Command::new("kill").arg("-TERM").arg(server.child.id().to_string()).status();
    assert!(status.expect("kill runs").success());
    let within = Duration::from_secs(BOUND_S) + MARGIN;
    loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            let took = sent.elapsed();
            assert!(status.success(), "up exited with {status}");
            return took;
        }
        if sent.elapsed() > within {
            let _ = server.child.kill();
            let _ = server.child.wait();
            panic!("rollscale up did not exit within {within:?} of SIGTERM (its shutdown timeout is {BOUND_S} s)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What `up` printed after it served, until it exited (its stdout read to the end).
fn printed_after(server: &Server) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    loop {
        match server.more.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => lines.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return lines,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("up's stdout did not end: {lines:#?}"),
        }
    }
}

/// The stream's last event, which must be `shutdown`, after `progress` ones and no `end`.
fn assert_ended_by_shutdown(text: &str, id: &str) {
    assert!(text.contains("event: progress"), "{text}");
    assert!(!text.contains("event: end"), "the task was not finished: {text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
    assert!(last.contains("event: shutdown"), "the last event is `shutdown`: {text}");
    assert!(last.contains("data: the server is stopping") && last.contains(id), "{last}");
}

#[test]
fn sigterm_ends_streams_and_long_polls_finishes_the_steps_in_flight_and_exits_within_the_bound() {
    let rt = runtime();
    let dir = temp_dir("shutdown-sqlite");
    let bound = BOUND_S.to_string();
    let env = [("ROLLSCALE_SHUTDOWN_TIMEOUT", bound.as_str())];
    // One instance at a time, each slow (a second per call of the fleet, 300 ms per call of the
    // load balancer): far longer than the bound in all.
    let slow = ["--sim-latency-ms", "1000", "--sim-lb-latency-ms", "300", "--demo-size", "4"];
    let mut up = start_with(&dir, &dir.join("data"), &slow, &env);
    let id = start_task(&dir, &up.group_id, "4");
    wait_for_a_step(&dir, &id);
    let token = token(&dir);
    let stream = rt.block_on(Stream::open(&up.endpoint, &id, &token));
    let poll = LongPoll::send(&up.endpoint, &id, &token);

    let took = terminate(&mut up);
    eprintln!("rollscale up exited {} ms after SIGTERM", took.as_millis());
    // Both ended before the process did; what is left to read is there.
    let text = rt.block_on(stream.read_to_end(Duration::from_secs(1)));
    assert_ended_by_shutdown(&text, &id);
    let (status, view) = poll.answer(Duration::from_secs(1));
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["id"], id.as_str(), "{view}");
    assert_eq!(view["status"], "Running", "the task as it stood: {view}");
    let printed = printed_after(&up);
    assert!(printed.iter().any(|line| line.starts_with("Stopping within 5 s")), "{printed:#?}");
    assert!(
        printed.iter().any(|line| line.starts_with("Stopped 1 rolling update(s) between two steps")),
        "the step in flight finished: {printed:#?}"
    );
    assert!(printed.iter().any(|line| line == "rollscale stopped."), "{printed:#?}");

    // Started again, it goes on where the journal stands and finishes the task.
    let again = start_with(&dir, &dir.join("data"), &["--sim-latency-ms", "1"], &env);
    let (code, _, stderr) = cli(&dir, &["rolling-update", "wait", &id]);
    assert_eq!(code, 0, "{stderr}");
    let children = cli_json(&dir, &["oos", "ListExecutions", "--ParentExecutionId", &id, "--MaxResults", "100"]);
    let children = children["Executions"].as_array().expect("children");
    assert_eq!(children.len(), 4);
    assert!(children.iter().all(|child| child["Status"] == "Success"), "{children:#?}");
    for instance in instances(&dir, &again.group_id) {
        assert_eq!(instance["ImageId"], NEW_IMAGE, "{instance}");
        assert_eq!(instance["LifecycleState"], "InService", "{instance}");
    }
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
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

#[test]
fn a_replica_stopped_by_sigterm_mid_task_hands_it_over_at_once() {
    let rt = runtime();
    let url = rt.block_on(postgres::database("rollscale_e2e_shutdown"));
    let store = rt.block_on(rollscale_store::Store::open(&url)).expect("the test's own view of the store");
    let dir = temp_dir("shutdown-replicas");
    let (dir_a, dir_b, data) = (dir.join("a"), dir.join("b"), dir.join("data"));
    std::fs::create_dir_all(&dir_a).expect("dir");
    std::fs::create_dir_all(&dir_b).expect("dir");
    // Leases of the default 15 s: a takeover within 2 s is a hand-back, not an expiry.
    let flags = |latency: &'static str, lb_latency: &'static str| {
        let mut flags = vec!["--database-url", url.as_str(), "--lease-renew-ms", "500", "--lease-poll-ms", "300"];
        flags.extend(["--sim-latency-ms", latency, "--sim-lb-latency-ms", lb_latency]);
        flags
    };
    let bound = BOUND_S.to_string();
    let env = [("ROLLSCALE_SHUTDOWN_TIMEOUT", bound.as_str())];
    // A slow (as in the test above), B quick.
    let mut a = start_with(&dir_a, &data, &flags("1000", "300"), &env);
    let group = a.group_id.clone();
    assert!(group.starts_with("asg-"), "A made the demo: {:#?}", a.lines);
    std::fs::copy(dir_a.join("config.json"), dir_b.join("config.json")).expect("profile");
    let b = start_with(&dir_b, &data, &flags("20", "0"), &env);
    let (id_a, id_b) = (replica_id(&a), replica_id(&b));

    // Started through A, which takes its lease and drives it.
    let id = start_task(&dir_a, &group, "5");
    let execution = rollscale_core::ids::ExecutionId::parse(&id).expect("an execution id");
    let lease_name = rollscale_store::task_lease_name(&execution);
    wait_for_a_step(&dir_b, &id);
    let owner = rt.block_on(store.lease_get(&lease_name)).expect("lease").map(|lease| lease.owner);
    assert_eq!(owner.as_deref(), Some(id_a.as_str()), "the replica the task was started through drives it");
    let token = token(&dir_a);
    let stream = rt.block_on(Stream::open(&a.endpoint, &id, &token));
    let poll = LongPoll::send(&a.endpoint, &id, &token);

    let took = terminate(&mut a);
    let exited = Instant::now();
    let text = rt.block_on(stream.read_to_end(Duration::from_secs(1)));
    assert_ended_by_shutdown(&text, &id);
    let (status, view) = poll.answer(Duration::from_secs(1));
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "Running", "{view}");
    let printed = printed_after(&a);
    assert!(
        printed.iter().any(|line| line.starts_with("Stopped 1 rolling update(s) between two steps (handed back")),
        "{printed:#?}"
    );

    // B takes the task over within 2 s of A's exit, long before the lease would have expired;
    // and the reconciler at its next pass (every 2 s).
    let owned_by_b = |lease: &str, within: Duration| {
        let mut owner = None;
        while owner.as_deref() != Some(id_b.as_str()) {
            assert!(exited.elapsed() < within, "B did not take {lease} within {within:?} of A's exit: {owner:?}");
            std::thread::sleep(Duration::from_millis(10));
            owner = rt.block_on(store.lease_get(lease)).expect("lease").map(|lease| lease.owner);
        }
        exited.elapsed()
    };
    let takeover = owned_by_b(&lease_name, Duration::from_secs(2));
    let reconciler = owned_by_b(rollscale_store::RECONCILER_LEASE, Duration::from_secs(4));
    eprintln!(
        "A exited {} ms after SIGTERM; B took the task over {} ms and the reconciler {} ms after A exited",
        took.as_millis(),
        takeover.as_millis(),
        reconciler.as_millis()
    );

    // B finishes it, each instance done once.
    let (code, _, stderr) = cli(&dir_b, &["rolling-update", "wait", &id]);
    assert_eq!(code, 0, "B did not finish the task: {stderr}");
    assert_eq!(progress(&dir_b, &id), ("Success".to_string(), 10));
    let children = cli_json(&dir_b, &["oos", "ListExecutions", "--ParentExecutionId", &id, "--MaxResults", "100"]);
    let children = children["Executions"].as_array().expect("children");
    assert_eq!(children.len(), 10);
    assert!(children.iter().all(|child| child["Status"] == "Success"), "{children:#?}");
    let after = instances(&dir_b, &group);
    assert_eq!(after.len(), 10, "no instance lost or duplicated");
    for instance in &after {
        assert_eq!(instance["ImageId"], NEW_IMAGE, "{instance}");
        assert_eq!(instance["LifecycleState"], "InService", "{instance}");
        assert_eq!(instance["LoadBalancerWeight"], 100, "{instance}");
    }
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}
