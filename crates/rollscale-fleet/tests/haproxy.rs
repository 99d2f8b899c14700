//! The HAProxy load balancer against a real HAProxy: each test starts a managed HAProxy with one
//! frontend on a free loopback port and small HTTP servers in-process, and stops them. The
//! servers answer their health path (`/health`) with 200 while healthy and 503 otherwise.
//!
//! These tests need the `haproxy` executable and fail, saying so, when it is missing
//! (`scripts/haproxy` installs it).

use rollscale_core::ids::{InstanceId, LoadBalancerId};
use rollscale_fleet::haproxy::{BackendSlot, HaproxyLoadBalancer, ManagedConfig, SlotState};
use rollscale_fleet::{FleetError, LoadBalancer};
use rollscale_test_support::haproxy;
use rollscale_test_support::net::{free_address, Scratch};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

fn instance(n: u32) -> InstanceId {
    InstanceId::parse(&format!("i-hx{n:04}")).expect("valid instance id")
}

fn lb_id() -> LoadBalancerId {
    LoadBalancerId::parse("lb-web").expect("valid load balancer id")
}

/// A scratch directory, removed when dropped.
fn scratch(name: &str) -> Scratch {
    Scratch::new("rs-hx", name)
}

/// A managed HAProxy with one frontend for [`lb_id`].
struct Proxy {
    lb: HaproxyLoadBalancer,
    config: ManagedConfig,
    front: SocketAddr,
    _dir: Scratch,
}

async fn start_proxy(name: &str, slots: u32) -> Proxy {
    start_checked_proxy(name, slots, None).await
}

/// A managed HAProxy whose health checks `GET health_path` (a TCP connect without one).
async fn start_checked_proxy(name: &str, slots: u32, health_path: Option<&str>) -> Proxy {
    let dir = scratch(name);
    let front = free_address();
    let config = ManagedConfig {
        dir: dir.path().to_path_buf(),
        frontends: vec![(lb_id(), front)],
        slots,
        haproxy_bin: haproxy::binary(),
        health_path: health_path.map(str::to_string),
    };
    let lb = HaproxyLoadBalancer::managed(config.clone()).await.expect("start the managed haproxy");
    Proxy { lb, config, front, _dir: dir }
}

/// A tiny HTTP server answering `server N`; `/slow/<ms>` answers after that many milliseconds,
/// `/health` 200 while `healthy` and 503 otherwise.
struct Server {
    addr: SocketAddr,
    /// Requests other than `/health`.
    hits: Arc<AtomicU32>,
    /// `/health` requests (HAProxy's checks).
    checks: Arc<AtomicU32>,
    healthy: Arc<AtomicBool>,
    accept: JoinHandle<()>,
}

#[derive(Clone)]
struct Counters {
    hits: Arc<AtomicU32>,
    checks: Arc<AtomicU32>,
    healthy: Arc<AtomicBool>,
}

async fn start_server(n: u32) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a server");
    let addr = listener.local_addr().expect("server address");
    let counters = Counters {
        hits: Arc::new(AtomicU32::new(0)),
        checks: Arc::new(AtomicU32::new(0)),
        healthy: Arc::new(AtomicBool::new(true)),
    };
    let shared = counters.clone();
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(serve(stream, n, shared.clone()));
        }
    });
    Server { addr, hits: counters.hits, checks: counters.checks, healthy: counters.healthy, accept }
}

impl Server {
    fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Stops accepting: the listener is closed and new connections are refused. Requests in
    /// progress finish.
    async fn kill(self) {
        self.accept.abort();
        let _ = self.accept.await;
    }
}

async fn serve(mut stream: TcpStream, n: u32, counters: Counters) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            // A TCP health check connects and closes without asking anything.
            Ok(0) | Err(_) => return,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    }
    let request = String::from_utf8_lossy(&request);
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = if path == "/health" {
        counters.checks.fetch_add(1, Ordering::SeqCst);
        match counters.healthy.load(Ordering::SeqCst) {
            true => ("200 OK", "ok".to_string()),
            false => ("503 Service Unavailable", "sick".to_string()),
        }
    } else {
        counters.hits.fetch_add(1, Ordering::SeqCst);
        if let Some(ms) = path.strip_prefix("/slow/").and_then(|ms| ms.parse().ok()) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        ("200 OK", format!("server {n}"))
    };
    let response = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// One request through the frontend; `Ok(body)` for a 200, `Err` with what happened otherwise.
async fn get(front: SocketAddr, path: &str) -> Result<String, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(front).await.map_err(|error| format!("connect: {error}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|error| format!("write: {error}"))?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.map_err(|error| format!("read: {error}"))?;
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| format!("no header end: {response:?}"))?;
        if head.starts_with("HTTP/1.1 200") {
            Ok(body.to_string())
        } else {
            Err(head.lines().next().unwrap_or_default().to_string())
        }
    };
    tokio::time::timeout(Duration::from_secs(10), exchange).await.map_err(|_| "timed out".to_string())?
}

/// A client connection kept alive across requests.
struct KeepAlive {
    stream: BufReader<TcpStream>,
}

impl KeepAlive {
    async fn open(front: SocketAddr) -> KeepAlive {
        KeepAlive { stream: BufReader::new(TcpStream::connect(front).await.expect("connect to haproxy")) }
    }

    /// One request on the connection; the body of a 200 answer.
    async fn get(&mut self, path: &str) -> String {
        let exchange = async {
            let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
            self.stream.get_mut().write_all(request.as_bytes()).await.expect("write");
            let mut status = String::new();
            self.stream.read_line(&mut status).await.expect("read the status line");
            assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");
            let mut length = 0;
            loop {
                let mut line = String::new();
                self.stream.read_line(&mut line).await.expect("read a header");
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    assert!(!name.eq_ignore_ascii_case("connection") || !value.contains("close"), "{line}");
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().expect("a content length");
                    }
                }
            }
            let mut body = vec![0; length];
            self.stream.read_exact(&mut body).await.expect("read the body");
            String::from_utf8_lossy(&body).into_owned()
        };
        tokio::time::timeout(Duration::from_secs(10), exchange).await.expect("a kept-alive request in time")
    }
}

/// Sends `count` requests one after another and counts the answers by body.
async fn spread(front: SocketAddr, count: u32) -> HashMap<String, u32> {
    let mut answers = HashMap::new();
    for _ in 0..count {
        let body = get(front, "/").await.expect("a request through haproxy");
        *answers.entry(body).or_default() += 1;
    }
    answers
}

/// Polls `active_connections` until `done` holds, for at most `within`.
async fn connections_until(
    lb: &HaproxyLoadBalancer,
    instance: &InstanceId,
    within: Duration,
    done: impl Fn(u32) -> bool,
) -> u32 {
    let deadline = Instant::now() + within;
    loop {
        let connections = lb.active_connections(&lb_id(), instance).await.expect("active connections");
        if done(connections) || Instant::now() >= deadline {
            return connections;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn holder(slots: &[BackendSlot], slot: u32) -> &BackendSlot {
    slots.iter().find(|entry| entry.slot == slot).expect("the slot exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_weights_drain_and_slots() {
    let proxy = start_proxy("main", 8).await;
    let (lb, front) = (&proxy.lb, proxy.front);
    let servers = [start_server(1).await, start_server(2).await, start_server(3).await];
    for (n, server) in (1..).zip(&servers) {
        lb.register(&lb_id(), &instance(n), &server.address(), 10).await.expect("register");
    }

    // Three instances in slots 1-3, up, with their addresses.
    let slots = lb.backend_addresses(&lb_id()).await.expect("backend addresses");
    assert_eq!(slots.len(), 8);
    for (n, server) in (1..).zip(&servers) {
        let slot = holder(&slots, n);
        assert_eq!(slot.instance, Some(instance(n)));
        assert_eq!(slot.address.as_deref(), Some(server.address().as_str()));
        assert_eq!((slot.weight, slot.state), (10, SlotState::Up));
    }
    assert_eq!(holder(&slots, 4).state, SlotState::Maintenance);
    assert_eq!(holder(&slots, 4).address, None);

    // Round robin over all three.
    let answers = spread(front, 30).await;
    for n in 1..=3 {
        assert!(answers.get(&format!("server {n}")).copied().unwrap_or(0) >= 5, "{answers:?}");
    }
    assert_eq!(lb.weight(&lb_id(), &instance(2)).await.expect("weight"), Some(10));

    // Weight 0: no new requests, the others take them.
    lb.set_weight(&lb_id(), &instance(2), 0).await.expect("set weight");
    assert_eq!(lb.weight(&lb_id(), &instance(2)).await.expect("weight"), Some(0));
    let before = servers[1].hits.load(Ordering::SeqCst);
    let answers = spread(front, 20).await;
    assert!(!answers.contains_key("server 2"), "{answers:?}");
    assert!(answers.contains_key("server 1") && answers.contains_key("server 3"), "{answers:?}");
    assert_eq!(servers[1].hits.load(Ordering::SeqCst), before);

    // Draining: a slow request held open on instance 3 is counted after its weight drops to 0,
    // while new requests go elsewhere; the count falls to 0 when it ends.
    lb.set_weight(&lb_id(), &instance(1), 0).await.expect("set weight");
    let slow = tokio::spawn(get(front, "/slow/2500"));
    let open = connections_until(lb, &instance(3), Duration::from_secs(2), |n| n > 0).await;
    assert_eq!(open, 1, "the slow request is in progress on instance 3");
    lb.set_weight(&lb_id(), &instance(3), 0).await.expect("set weight");
    lb.set_weight(&lb_id(), &instance(1), 10).await.expect("set weight");
    assert_eq!(spread(front, 5).await, HashMap::from([("server 1".to_string(), 5)]));
    assert_eq!(lb.active_connections(&lb_id(), &instance(3)).await.expect("connections"), 1);
    assert_eq!(lb.active_connections(&lb_id(), &instance(1)).await.expect("connections"), 0);
    assert_eq!(slow.await.expect("the slow request task"), Ok("server 3".to_string()));
    let drained = connections_until(lb, &instance(3), Duration::from_secs(2), |n| n == 0).await;
    assert_eq!(drained, 0);

    // A kept-alive client is not held by the server that answered it: once that server is at
    // weight 0 its count is 0 while the client stays connected, and the client's next request
    // goes to another server.
    lb.set_weight(&lb_id(), &instance(3), 10).await.expect("set weight");
    let mut client = KeepAlive::open(front).await;
    let first = client.get("/").await;
    let (answered, other) = match first.as_str() {
        "server 1" => (instance(1), "server 3"),
        "server 3" => (instance(3), "server 1"),
        body => panic!("answered by {body}"),
    };
    lb.set_weight(&lb_id(), &answered, 0).await.expect("set weight");
    assert_eq!(connections_until(lb, &answered, Duration::from_secs(1), |n| n == 0).await, 0);
    assert_eq!(client.get("/").await, other);
    assert_eq!(client.get("/").await, other);
    lb.set_weight(&lb_id(), &answered, 10).await.expect("set weight");

    // Deregistering frees the slot; doing it again is fine.
    lb.deregister(&lb_id(), &instance(2)).await.expect("deregister");
    lb.deregister(&lb_id(), &instance(2)).await.expect("deregister again");
    let slots = lb.backend_addresses(&lb_id()).await.expect("backend addresses");
    assert_eq!(holder(&slots, 2).instance, None);
    assert_eq!(holder(&slots, 2).address, None);
    assert_eq!(holder(&slots, 2).state, SlotState::Maintenance);
    assert_eq!(lb.weight(&lb_id(), &instance(2)).await.expect("weight"), None);
    assert_eq!(lb.active_connections(&lb_id(), &instance(2)).await.expect("connections"), 0);
    match lb.set_weight(&lb_id(), &instance(2), 10).await {
        Err(FleetError::Failed(message)) => assert!(message.contains("is not registered with lb-web"), "{message}"),
        other => panic!("set_weight of a deregistered instance: {other:?}"),
    }

    // A new instance reuses the lowest free slot, and serves.
    let fourth = start_server(4).await;
    lb.register(&lb_id(), &instance(4), &fourth.address(), 10).await.expect("register");
    let slots = lb.backend_addresses(&lb_id()).await.expect("backend addresses");
    assert_eq!(holder(&slots, 2).instance, Some(instance(4)));
    assert_eq!(holder(&slots, 2).address.as_deref(), Some(fourth.address().as_str()));
    let answers = spread(front, 10).await;
    assert!(answers.contains_key("server 4"), "{answers:?}");

    // Registering again keeps the slot and updates the weight.
    lb.register(&lb_id(), &instance(4), &fourth.address(), 20).await.expect("register again");
    let slots = lb.backend_addresses(&lb_id()).await.expect("backend addresses");
    let held: Vec<u32> = slots.iter().filter(|slot| slot.instance == Some(instance(4))).map(|slot| slot.slot).collect();
    assert_eq!(held, vec![2]);
    assert_eq!(holder(&slots, 2).weight, 20);
    assert_eq!(lb.weight(&lb_id(), &instance(4)).await.expect("weight"), Some(20));

    lb.shutdown().await.expect("shutdown");
    match lb.weight(&lb_id(), &instance(1)).await {
        Err(FleetError::Unavailable(_)) => {}
        other => panic!("a stopped haproxy is unavailable: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_survive_a_restart_of_rollscale() {
    let proxy = start_proxy("restart", 8).await;
    let servers = [start_server(1).await, start_server(2).await];
    proxy.lb.register(&lb_id(), &instance(1), &servers[0].address(), 7).await.expect("register");
    proxy.lb.register(&lb_id(), &instance(2), &servers[1].address(), 7).await.expect("register");
    proxy.lb.deregister(&lb_id(), &instance(1)).await.expect("deregister");
    proxy.lb.register(&lb_id(), &instance(1), &servers[0].address(), 7).await.expect("register");
    // Instance 2 in Standby when rollscale stops.
    proxy.lb.set_weight(&lb_id(), &instance(2), 0).await.expect("set weight");
    let before = proxy.lb.backend_addresses(&lb_id()).await.expect("backend addresses");

    // A new driver attached to the same socket knows nothing but the backend's name.
    let backends = HashMap::from([(lb_id(), "lb-web".to_string())]);
    let attached = HaproxyLoadBalancer::attached(proxy.lb.socket().to_path_buf(), backends);
    attached.verify().await.expect("the attached haproxy is usable");
    assert_eq!(attached.backend_addresses(&lb_id()).await.expect("backend addresses"), before);
    assert_eq!(attached.weight(&lb_id(), &instance(1)).await.expect("weight"), Some(7));
    assert_eq!(attached.weight(&lb_id(), &instance(2)).await.expect("weight"), Some(0));
    attached.set_weight(&lb_id(), &instance(2), 7).await.expect("ExitStandby after the restart");
    assert_eq!(proxy.lb.weight(&lb_id(), &instance(2)).await.expect("weight"), Some(7));
    let answers = spread(proxy.front, 10).await;
    assert!(answers.contains_key("server 1") && answers.contains_key("server 2"), "{answers:?}");

    // rollscale stops, or is killed, leaving its HAProxy running: traffic keeps flowing, and a
    // new managed driver with the same configuration adopts it with its registrations.
    let Proxy { lb, config, front, _dir } = proxy;
    lb.detach();
    drop(lb);
    assert_eq!(get(front, "/").await.map(|body| body.starts_with("server ")), Ok(true));
    let adopted = HaproxyLoadBalancer::managed(config.clone()).await.expect("adopt the running haproxy");
    assert_eq!(adopted.weight(&lb_id(), &instance(1)).await.expect("weight"), Some(7));
    assert_eq!(adopted.backend_addresses(&lb_id()).await.expect("backend addresses").len(), 8);

    // With another configuration the old process is replaced: a fresh HAProxy, free slots.
    let replaced =
        HaproxyLoadBalancer::managed(ManagedConfig { slots: 4, ..config }).await.expect("replace the running haproxy");
    assert_eq!(replaced.weight(&lb_id(), &instance(1)).await.expect("weight"), None);
    assert_eq!(replaced.backend_addresses(&lb_id()).await.expect("backend addresses").len(), 4);
    replaced.shutdown().await.expect("shutdown");
    // The adopted handle's process is gone already; shutting it down again is harmless.
    drop(adopted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_under_load_drops_no_request() {
    const REQUESTS: u32 = 150;
    let proxy = start_proxy("kill", 8).await;
    let mut servers = vec![start_server(1).await, start_server(2).await, start_server(3).await];
    for (n, server) in (1..).zip(&servers) {
        proxy.lb.register(&lb_id(), &instance(n), &server.address(), 10).await.expect("register");
    }
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut answers: HashMap<String, u32> = HashMap::new();
    let mut after_kill: HashMap<String, u32> = HashMap::new();
    let mut killed = false;
    for request in 0..REQUESTS {
        if request == REQUESTS / 3 {
            servers.remove(1).kill().await;
            killed = true;
        }
        match get(proxy.front, "/").await {
            Ok(body) => {
                if killed {
                    *after_kill.entry(body.clone()).or_default() += 1;
                }
                *answers.entry(body).or_default() += 1;
            }
            Err(error) => failures.push((request, error)),
        }
    }
    assert_eq!(failures, Vec::new(), "no request fails while other servers serve");
    assert!(answers.get("server 2").copied().unwrap_or(0) > 0, "server 2 served before it died: {answers:?}");
    assert!(!after_kill.contains_key("server 2"), "{after_kill:?}");
    assert!(after_kill.contains_key("server 1") && after_kill.contains_key("server 3"), "{after_kill:?}");
    // The dead server is taken out by its health check.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let slots = proxy.lb.backend_addresses(&lb_id()).await.expect("backend addresses");
        if holder(&slots, 2).state == SlotState::Down {
            break;
        }
        assert!(Instant::now() < deadline, "slot 2 is still {:?}", holder(&slots, 2).state);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{REQUESTS} requests, one server killed after {}, in {:?}", REQUESTS / 3, started.elapsed());
    proxy.lb.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_failures_and_a_missing_socket_is_unavailable() {
    let proxy = start_proxy("refusals", 2).await;
    let lb = &proxy.lb;
    let server = start_server(1).await;

    // An unknown load balancer: writes fail, reads and removals find nothing.
    let unknown = LoadBalancerId::parse("lb-other").expect("valid id");
    assert!(matches!(
        lb.register(&unknown, &instance(1), &server.address(), 10).await,
        Err(FleetError::Failed(message)) if message.contains("has no HAProxy backend")
    ));
    assert_eq!(lb.weight(&unknown, &instance(1)).await, Ok(None));
    assert_eq!(lb.active_connections(&unknown, &instance(1)).await, Ok(0));
    assert_eq!(lb.deregister(&unknown, &instance(1)).await, Ok(()));

    // Bad addresses and weights change nothing.
    for address in ["nowhere", "127.0.0.1", "127.0.0.1:0", "a b:80", "x;y:80"] {
        assert!(
            matches!(lb.register(&lb_id(), &instance(1), address, 10).await, Err(FleetError::Failed(_))),
            "{address}"
        );
    }
    assert!(matches!(
        lb.register(&lb_id(), &instance(1), &server.address(), 300).await,
        Err(FleetError::Failed(message)) if message.contains("256")
    ));
    assert!(lb.backend_addresses(&lb_id()).await.expect("slots").iter().all(|slot| slot.instance.is_none()));

    // A name resolves; the slots run out.
    lb.register(&lb_id(), &instance(1), &format!("localhost:{}", server.addr.port()), 10).await.expect("register");
    lb.register(&lb_id(), &instance(2), &server.address(), 10).await.expect("register");
    assert!(matches!(
        lb.register(&lb_id(), &instance(3), &server.address(), 10).await,
        Err(FleetError::Failed(message)) if message.contains("no free slot")
    ));
    assert_eq!(get(proxy.front, "/").await, Ok("server 1".to_string()));

    // Attached to a backend or a table that does not exist: verify says so.
    let socket = lb.socket().to_path_buf();
    let wrong_backend =
        HaproxyLoadBalancer::attached(socket.clone(), HashMap::from([(lb_id(), "no-such-backend".to_string())]));
    assert!(matches!(wrong_backend.verify().await, Err(FleetError::Failed(_))));
    let wrong_table = HaproxyLoadBalancer::attached(socket, HashMap::from([(lb_id(), "lb-web".to_string())]))
        .with_slot_table("no_such_table");
    assert!(
        matches!(wrong_table.verify().await, Err(FleetError::Failed(message)) if message.contains("No such table"))
    );

    // Nothing listening on the socket: the outcome is unknown.
    let nowhere = HaproxyLoadBalancer::attached(
        proxy._dir.path().join("missing.sock"),
        HashMap::from([(lb_id(), "lb-web".to_string())]),
    );
    assert!(matches!(nowhere.weight(&lb_id(), &instance(1)).await, Err(FleetError::Unavailable(_))));
    assert!(matches!(nowhere.set_weight(&lb_id(), &instance(1), 0).await, Err(FleetError::Unavailable(_))));
    assert!(matches!(nowhere.verify().await, Err(FleetError::Unavailable(_))));
    lb.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_cannot_succeed_says_why() {
    let dir = scratch("start");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let front = taken.local_addr().expect("local address");
    let config = ManagedConfig {
        dir: dir.path().to_path_buf(),
        frontends: vec![(lb_id(), front)],
        slots: 4,
        haproxy_bin: haproxy::binary(),
        health_path: None,
    };
    match HaproxyLoadBalancer::managed(config.clone()).await {
        Err(FleetError::Failed(message)) => {
            assert!(message.contains("haproxy exited at start") && message.contains("fe_lb-web"), "{message}")
        }
        other => panic!("a frontend port in use: {other:?}"),
    }
    let missing = ManagedConfig { haproxy_bin: dir.path().join("no-haproxy-here"), ..config };
    match HaproxyLoadBalancer::managed(missing).await {
        Err(FleetError::Failed(message)) => assert!(message.contains("install HAProxy"), "{message}"),
        other => panic!("a missing executable: {other:?}"),
    }
}

/// Polls the load balancer's `check_status` until it is `expected`, for at most 10 s (HAProxy
/// checks every second and takes a server down after two failures).
async fn checks_until(lb: &HaproxyLoadBalancer, expected: &[(InstanceId, bool)]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let checks = lb.check_status(&lb_id()).await.expect("check status");
        if checks == expected {
            return;
        }
        assert!(Instant::now() < deadline, "the checks stay {checks:?}, not {expected:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_failing_its_health_check_gets_no_traffic_whatever_its_weight() {
    let proxy = start_checked_proxy("checks", 4, Some("/health")).await;
    let (lb, front) = (&proxy.lb, proxy.front);
    let servers = [start_server(1).await, start_server(2).await];
    for (n, server) in (1..).zip(&servers) {
        lb.register(&lb_id(), &instance(n), &server.address(), 10).await.expect("register");
    }
    checks_until(lb, &[(instance(1), true), (instance(2), true)]).await;
    let answers = spread(front, 10).await;
    assert!(answers.contains_key("server 1") && answers.contains_key("server 2"), "{answers:?}");
    // Up at once when made ready, as HAProxy does; its first check follows within a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    while servers.iter().any(|server| server.checks.load(Ordering::SeqCst) == 0) {
        assert!(Instant::now() < deadline, "the checks never asked the health path");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Instance 2's health path fails: HAProxy takes it down, and no request reaches it, not
    // even at the highest weight.
    servers[1].healthy.store(false, Ordering::SeqCst);
    checks_until(lb, &[(instance(1), true), (instance(2), false)]).await;
    let slots = lb.backend_addresses(&lb_id()).await.expect("backend addresses");
    assert_eq!(holder(&slots, 2).state, SlotState::Down);
    lb.set_weight(&lb_id(), &instance(2), 256).await.expect("set weight");
    let before = servers[1].hits.load(Ordering::SeqCst);
    assert_eq!(spread(front, 20).await, HashMap::from([("server 1".to_string(), 20)]));
    assert_eq!(servers[1].hits.load(Ordering::SeqCst), before, "no request reached the failing backend");
    assert_eq!(lb.weight(&lb_id(), &instance(2)).await.expect("weight"), Some(256), "its weight is kept");

    // A driver attached to the same HAProxy reads the same checks.
    let attached =
        HaproxyLoadBalancer::attached(lb.socket().to_path_buf(), HashMap::from([(lb_id(), "lb-web".to_string())]));
    assert_eq!(attached.check_status(&lb_id()).await, Ok(vec![(instance(1), true), (instance(2), false)]));

    // It recovers: up again at its first passing check, and it serves.
    servers[1].healthy.store(true, Ordering::SeqCst);
    checks_until(lb, &[(instance(1), true), (instance(2), true)]).await;
    let answers = spread(front, 30).await;
    assert!(answers.get("server 2").copied().unwrap_or(0) > 0, "{answers:?}");

    // Free slots are not checked and not reported; a deregistered instance is no longer
    // checked: while instance 1 is checked three more times, instance 2's health path is asked
    // at most once more (a check already under way).
    lb.deregister(&lb_id(), &instance(2)).await.expect("deregister");
    let (asked, other) = (servers[1].checks.load(Ordering::SeqCst), servers[0].checks.load(Ordering::SeqCst));
    let deadline = Instant::now() + Duration::from_secs(10);
    while servers[0].checks.load(Ordering::SeqCst) < other + 3 {
        assert!(Instant::now() < deadline, "instance 1 is no longer checked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(servers[1].checks.load(Ordering::SeqCst) <= asked + 1, "a free slot stays quiet");
    assert_eq!(lb.check_status(&lb_id()).await, Ok(vec![(instance(1), true)]));
    let unknown = LoadBalancerId::parse("lb-other").expect("valid id");
    assert_eq!(lb.check_status(&unknown).await, Ok(vec![]));
    lb.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_health_path_the_check_is_a_connect() {
    let proxy = start_proxy("connect", 4).await;
    let lb = &proxy.lb;
    let servers = vec![start_server(1).await, start_server(2).await];
    for (n, server) in (1..).zip(&servers) {
        lb.register(&lb_id(), &instance(n), &server.address(), 10).await.expect("register");
    }
    // A failing health path means nothing to a TCP check; a server that stops listening fails.
    servers[0].healthy.store(false, Ordering::SeqCst);
    checks_until(lb, &[(instance(1), true), (instance(2), true)]).await;
    let mut servers = servers;
    servers.remove(1).kill().await;
    checks_until(lb, &[(instance(1), true), (instance(2), false)]).await;
    assert_eq!(servers[0].checks.load(Ordering::SeqCst), 0, "nothing asks the health path");
    lb.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_path_that_would_change_the_configuration_is_refused() {
    let dir = scratch("badpath");
    let config = ManagedConfig {
        dir: dir.path().to_path_buf(),
        frontends: vec![(lb_id(), free_address())],
        slots: 2,
        haproxy_bin: haproxy::binary(),
        health_path: Some("/health\n    server evil 10.0.0.1:80".into()),
    };
    match HaproxyLoadBalancer::managed(config).await {
        Err(FleetError::Failed(message)) => assert!(message.contains("cannot be HAProxy's health check"), "{message}"),
        other => panic!("a health path with a line break: {other:?}"),
    }
    assert!(!dir.path().join("haproxy.cfg").exists(), "nothing written");
}
