//! Managed mode: rollscale writes HAProxy's configuration and runs `haproxy` as its child.
//!
//! The HAProxy process outlives a crash of rollscale (a `kill -9` runs no destructor), and keeps
//! serving traffic meanwhile. When rollscale starts again with the same configuration it finds
//! the process answering on `dir/admin.sock` and adopts it, registrations included; with a
//! different configuration it stops that process and starts a new one.

use super::cli::{parse_info_pid, Cli};
use super::SLOT_TABLE;
use crate::FleetError;
use rollscale_core::ids::LoadBalancerId;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// How long a new HAProxy may take to answer on its socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of a Unix socket path (`sun_path` is 108 bytes with its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// What managed mode starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedConfig {
    /// Where `haproxy.cfg`, `admin.sock` and `haproxy.log` live. Created when missing.
    pub dir: PathBuf,
    /// One frontend per load balancer, bound to this address (loopback in tests and demos).
    pub frontends: Vec<(LoadBalancerId, SocketAddr)>,
    /// Free server slots per backend: the most instances one load balancer can hold.
    pub slots: u32,
    /// The `haproxy` executable.
    pub haproxy_bin: PathBuf,
    /// An HTTP path (e.g. `/health`) the backends' health checks `GET`, expecting 200; `None`:
    /// the check is a TCP connect. A server failing its check gets no traffic whatever its
    /// weight.
    pub health_path: Option<String>,
}

impl ManagedConfig {
    /// 64 slots per backend and the `haproxy` that [`find_haproxy`] finds (or `haproxy`, looked
    /// up in `PATH` when started).
    pub fn new(dir: impl Into<PathBuf>, frontends: Vec<(LoadBalancerId, SocketAddr)>) -> Self {
        ManagedConfig {
            dir: dir.into(),
            frontends,
            slots: 64,
            haproxy_bin: find_haproxy().unwrap_or_else(|| PathBuf::from("haproxy")),
            health_path: None,
        }
    }

    /// Checks the backends with `GET path` (see [`ManagedConfig::health_path`]).
    pub fn with_health_path(mut self, path: Option<String>) -> Self {
        self.health_path = path;
        self
    }

    /// The admin socket of the managed HAProxy.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("admin.sock")
    }
}

/// Finds the `haproxy` executable in `PATH`, then in `/usr/sbin` and `/usr/local/sbin` (where
/// Debian puts it, often outside a non-root `PATH`).
pub fn find_haproxy() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("haproxy"))
        .find(|candidate| candidate.is_file())
}

/// The backend name of a load balancer in managed mode: its id.
pub(crate) fn backend_name(lb: &LoadBalancerId) -> String {
    lb.to_string()
}

/// Whether `path` can be written into the configuration as the health check's URI: it starts
/// with `/` and holds only characters that mean nothing to HAProxy's configuration parser (no
/// blank, quote, `#`, `\` or `$`).
pub(crate) fn valid_check_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 1024
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/%?=&+:@,".contains(&b))
}

/// HAProxy's `bind`/address syntax: `127.0.0.1:8080`, `ipv6@::1:8080`.
fn bind_address(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("ipv6@{}:{}", v6.ip(), v6.port()),
    }
}

/// The configuration managed mode writes to `dir/haproxy.cfg` (with `socket` as the admin
/// socket). See the module documentation of [`crate::haproxy`] for why each setting is there.
pub fn render_config(config: &ManagedConfig, socket: &Path) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        "\
# Written by rollscale (HAProxy managed mode) at each start: edits are lost.
# Instances are registered into the `server-template` slots through the runtime API.
global
    stats socket {socket} level admin expose-fd listeners
    stats timeout 10s
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 2s
    timeout queue 5s
    # One request per server-side connection: a server set to weight 0 keeps no idle
    # connection, and its session count falls to 0 as soon as its last response is sent.
    option http-server-close
    # A request whose server refuses the connection (restarting) or closes it without an
    # answer is retried, each time on another server: no request fails while others serve.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response junk-response

# Which instance holds which slot: key \"<backend>/<instance id>\", gpt0 = slot number.
backend {SLOT_TABLE}
    stick-table type string len 128 size 64k store gpt0
",
        socket = socket.display(),
    );
    // With a health path the check asks the application (`GET path`, 200 expected); otherwise
    // it is a TCP connect.
    let http_check = match &config.health_path {
        Some(path) => format!(
            "    # The health check: a server that does not answer 200 gets no traffic, whatever its weight.
    option httpchk
    http-check send meth GET uri {path}
    http-check expect status 200
"
        ),
        None => String::new(),
    };
    for (lb, addr) in &config.frontends {
        let backend = backend_name(lb);
        let _ = write!(
            text,
            "
frontend fe_{backend}
    bind {bind}
    default_backend {backend}

backend {backend}
    balance roundrobin
    # Never replay a request that is not idempotent after the server may have seen it.
    http-request disable-l7-retry if {{ method POST PATCH }}
{http_check}    server-template s 1-{slots} 0.0.0.0:0 disabled check inter 1s fall 2 rise 1
",
            bind = bind_address(addr),
            slots = config.slots,
        );
    }
    text
}

/// The HAProxy process managed mode runs: its own child, or one adopted after a restart.
#[derive(Debug)]
pub(crate) enum Process {
    Child(Child),
    Adopted(u32),
}

impl Process {
    /// Stops the process and waits until it is gone.
    pub(crate) async fn stop(self, cli: &Cli) -> Result<(), FleetError> {
        match self {
            Process::Child(mut child) => {
                // SIGKILL: HAProxy keeps nothing that needs a clean exit.
                let _ = child.start_kill();
                child.wait().await.map_err(|error| FleetError::Failed(format!("waiting for haproxy: {error}")))?;
            }
            Process::Adopted(pid) => {
                send_kill(pid);
                wait_until_silent(cli).await?;
            }
        }
        let _ = std::fs::remove_file(cli.socket());
        Ok(())
    }

    /// Lets the process run on without this handle.
    pub(crate) fn detach(self) {
        if let Process::Child(child) = self {
            tracing::info!(pid = child.id(), "haproxy left running");
            // The handle would kill the process when dropped (`kill_on_drop`, so that a start
            // that fails or is cancelled leaves nothing behind): forget it instead. Nothing
            // reaps the process any more if it exits while rollscale still runs; detaching is
            // for when rollscale is about to exit.
            std::mem::forget(child);
        }
    }

    /// Stops the process without waiting (for `Drop`).
    pub(crate) fn stop_now(&mut self) {
        match self {
            Process::Child(child) => {
                let _ = child.start_kill();
            }
            Process::Adopted(pid) => send_kill(*pid),
        }
    }
}

/// Sends SIGKILL to a process rollscale did not start itself (one it adopted), through
/// `kill(1)`: the crate has no direct binding to `kill(2)`.
fn send_kill(pid: u32) {
    let outcome = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(error) = outcome {
        tracing::warn!(pid, %error, "could not stop the adopted haproxy");
    }
}

/// Waits until nothing answers on the socket any more.
async fn wait_until_silent(cli: &Cli) -> Result<(), FleetError> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while cli.raw("show info").await.is_ok() {
        if tokio::time::Instant::now() >= deadline {
            return Err(FleetError::Failed(format!("haproxy on {} did not stop", cli.socket().display())));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn io_failure(what: &str, path: &Path, error: std::io::Error) -> FleetError {
    FleetError::Failed(format!("{what} {}: {error}", path.display()))
}

/// Starts HAProxy for `config`, or adopts the one already running with the same configuration.
/// Returns the process and its admin socket's client.
pub(crate) async fn start(config: &ManagedConfig, timeout: Duration) -> Result<(Process, Cli), FleetError> {
    if config.slots == 0 {
        return Err(FleetError::Failed("managed HAProxy needs at least one slot per backend".into()));
    }
    if let Some(path) = config.health_path.as_deref().filter(|path| !valid_check_path(path)) {
        return Err(FleetError::Failed(format!(
            "the health path {path:?} cannot be HAProxy's health check: it must start with `/` and hold only \
             letters, digits and -._~/%?=&+:@,"
        )));
    }
    let mut seen = HashSet::new();
    if let Some((lb, _)) = config.frontends.iter().find(|(lb, _)| !seen.insert(lb)) {
        return Err(FleetError::Failed(format!("load balancer {lb} has two frontends")));
    }
    std::fs::create_dir_all(&config.dir).map_err(|error| io_failure("cannot create", &config.dir, error))?;
    let dir = std::path::absolute(&config.dir).map_err(|error| io_failure("cannot resolve", &config.dir, error))?;
    let socket = dir.join("admin.sock");
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(FleetError::Failed(format!(
            "the socket path {} is longer than a Unix socket allows ({MAX_SOCKET_PATH} bytes): use a shorter dir",
            socket.display()
        )));
    }
    let cfg_path = dir.join("haproxy.cfg");
    let text = render_config(config, &socket);
    let cli = Cli::new(socket.clone(), timeout);

    // A previous rollscale's HAProxy still running here: adopt it if it runs this very
    // configuration (its registrations are the truth), otherwise replace it.
    if let Ok(answer) = cli.raw("show info").await {
        let pid = parse_info_pid("show info", &answer)?;
        let running = std::fs::read_to_string(&cfg_path).unwrap_or_default();
        if running == text {
            tracing::info!(pid, socket = %socket.display(), "adopted the running haproxy");
            return Ok((Process::Adopted(pid), cli));
        }
        tracing::warn!(pid, socket = %socket.display(), "stopping the running haproxy: its configuration changed");
        Process::Adopted(pid).stop(&cli).await?;
    }

    std::fs::write(&cfg_path, &text).map_err(|error| io_failure("cannot write", &cfg_path, error))?;
    match std::fs::remove_file(&socket) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_failure("cannot remove the stale socket", &socket, error)),
    }
    let log_path = dir.join("haproxy.log");
    let log = std::fs::File::create(&log_path).map_err(|error| io_failure("cannot create", &log_path, error))?;
    let log_err = log.try_clone().map_err(|error| io_failure("cannot open", &log_path, error))?;
    // `-db`: stay in the foreground, no daemon and no master process, so that this child is
    // HAProxy itself and killing it stops it.
    let mut child = Command::new(&config.haproxy_bin)
        .arg("-db")
        .arg("-f")
        .arg(&cfg_path)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                FleetError::Failed(format!(
                    "the haproxy executable {} was not found: install HAProxy (scripts/haproxy, or \
                     apt-get install -y haproxy)",
                    config.haproxy_bin.display()
                ))
            } else {
                io_failure("cannot start", &config.haproxy_bin, error)
            }
        })?;

    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let _ = std::fs::remove_file(&socket);
            return Err(FleetError::Failed(format!(
                "haproxy exited at start ({status}) with {}: {}",
                cfg_path.display(),
                log.trim()
            )));
        }
        if cli.raw("show info").await.is_ok() {
            tracing::info!(pid = child.id(), socket = %socket.display(), "started haproxy");
            return Ok((Process::Child(child), cli));
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(FleetError::Failed(format!(
                "haproxy did not answer on {} within {START_TIMEOUT:?}",
                socket.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frontend_and_backend_per_load_balancer() {
        let lb = LoadBalancerId::parse("lb-web").expect("valid id");
        let config = ManagedConfig {
            dir: PathBuf::from("/run/rs"),
            frontends: vec![(lb, "127.0.0.1:8080".parse().expect("addr"))],
            slots: 16,
            haproxy_bin: PathBuf::from("haproxy"),
            health_path: None,
        };
        let text = render_config(&config, Path::new("/run/rs/admin.sock"));
        assert!(text.contains("stats socket /run/rs/admin.sock level admin expose-fd listeners\n"));
        assert!(text.contains("frontend fe_lb-web\n    bind 127.0.0.1:8080\n    default_backend lb-web\n"));
        assert!(text.contains("server-template s 1-16 0.0.0.0:0 disabled check"));
        assert!(text.contains(&format!("backend {SLOT_TABLE}\n    stick-table type string len 128")));
        assert!(text.contains("option redispatch 1"));
        assert!(!text.contains("httpchk"), "without a health path the check is a TCP connect");

        let checked = render_config(&config.with_health_path(Some("/health".into())), Path::new("/run/rs/admin.sock"));
        assert!(checked.contains(
            "    option httpchk\n    http-check send meth GET uri /health\n    http-check expect status 200\n    \
             server-template s 1-16 0.0.0.0:0 disabled check inter 1s fall 2 rise 1\n"
        ));
    }

    #[test]
    fn only_plain_paths_become_the_health_check() {
        for good in ["/health", "/a/b-c_d.e~f", "/h?x=1&y=%20", "/"] {
            assert!(valid_check_path(good), "{good}");
        }
        for bad in ["", "health", "/a b", "/a#b", "/a\\b", "/\"x\"", "/a\nb", "/${X}", "/a'b"] {
            assert!(!valid_check_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn ipv6_binds_carry_their_family() {
        assert_eq!(bind_address(&"[::1]:8080".parse().expect("addr")), "ipv6@::1:8080");
        assert_eq!(bind_address(&"127.0.0.1:80".parse().expect("addr")), "127.0.0.1:80");
    }
}
