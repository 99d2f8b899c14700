//! The binary's end-to-end fixture: `rollscale up` on loopback as a child process, and the CLI
//! run with the profile it wrote. For the tests of the `rollscale` crate, whose `cargo test`
//! builds the binary ([`bin`]).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `rollscale` executable under test: `CARGO_BIN_EXE_rollscale`, which `cargo test` sets
/// for the binary's integration tests, or else the one beside the test executable (the target
/// directory's profile directory, where cargo builds it for them).
pub fn bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("CARGO_BIN_EXE_rollscale") {
            return PathBuf::from(path);
        }
        let test = std::env::current_exe().expect("the test's executable");
        // <target>/<profile>/deps/<test>: the binary is <target>/<profile>/rollscale.
        let beside = test.parent().and_then(Path::parent).map(|profile| profile.join("rollscale"));
        match beside {
            Some(path) if path.is_file() => path,
            _ => panic!("the rollscale executable was not found: run these tests with `cargo test -p rollscale`"),
        }
    })
    .clone()
}

/// A running `rollscale up`, stopped when dropped.
pub struct Server {
    pub child: Child,
    pub endpoint: String,
    pub group_id: String,
    pub configuration_id: String,
    /// Every line `up` printed to stdout until it served.
    pub lines: Vec<String>,
    /// The lines it prints after that, as it prints them (its stdout is read until it exits).
    pub more: std::sync::mpsc::Receiver<String>,
}

impl Server {
    /// SIGTERM, as an operator stops it: `up` stops what it started (a managed HAProxy).
    /// SIGKILL after 20 s.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `rollscale up` with the demo; its group and configuration ids are in the `Server`.
pub fn up(dir: &Path, extra: &[&str]) -> Server {
    let server = start(dir, extra);
    assert!(
        server.group_id.starts_with("asg-") && server.configuration_id.starts_with("asc-"),
        "demo ids: {} {}",
        server.group_id,
        server.configuration_id
    );
    server
}

/// `rollscale up` as given (with `--no-demo`, say): the ids are empty when it printed none.
pub fn start(dir: &Path, extra: &[&str]) -> Server {
    start_in(dir, &dir.join("data"), extra)
}

/// [`start`] with the data directory `data` (replicas on one database share one, for its
/// server key) and the profile in `dir`.
pub fn start_in(dir: &Path, data: &Path, extra: &[&str]) -> Server {
    start_with(dir, data, extra, &[])
}

/// [`start_in`] with environment variables `env` set for `up`.
pub fn start_with(dir: &Path, data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut command = up_command(dir, data, extra);
    command.envs(env.iter().copied());
    match launch(command) {
        Launched::Serving(server) => server,
        Launched::Exited { status, lines, .. } => {
            panic!("up prints where it serves; it ended ({status}) after printing {lines:#?}")
        }
    }
}

/// The command [`start_in`] runs: `rollscale up` on a free loopback port with the data
/// directory `data` and the profile `dir/config.json` (`ROLLSCALE_CONFIG`), stderr inherited.
/// A test changes what it needs (another profile through `HOME`, a piped stderr, more
/// environment) and passes it to [`launch`].
pub fn up_command(dir: &Path, data: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .env("ROLLSCALE_CONFIG", dir.join("config.json"))
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    command
}

/// How a `rollscale up` that [`launch`] started went.
pub enum Launched {
    /// It serves.
    Serving(Server),
    /// It ended before it served: its exit status, the lines it printed to stdout, and its
    /// stderr when the command piped it (empty otherwise).
    Exited { status: std::process::ExitStatus, lines: Vec<String>, stderr: String },
}

/// Starts an `up` command (its stdout piped here) and waits, for at most 60 s, until it says
/// where it serves or it ends.
pub fn launch(mut command: Command) -> Launched {
    let mut child = command.stdout(Stdio::piped()).spawn().expect("rollscale up starts");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    // Read until `up` exits, whether or not anyone still takes the lines: a closed stdout
    // would fail its later prints.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    // A piped stderr is read on a thread of its own, so that it never fills and blocks `up`.
    let stderr = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        })
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut endpoint, mut group_id, mut configuration_id) = (String::new(), String::new(), String::new());
    let mut lines = Vec::new();
    while endpoint.is_empty() {
        let line = match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("rollscale up is waited for");
                let stderr = stderr.map(|reader| reader.join().unwrap_or_default()).unwrap_or_default();
                return Launched::Exited { status, lines, stderr };
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("up prints where it serves within 60 s; it printed {lines:#?}")
            }
        };
        lines.push(line.clone());
        if let Some(rest) = line.strip_prefix("Scaling group ") {
            group_id = rest.split_whitespace().next().unwrap_or_default().to_string();
            configuration_id = rest
                .split("scaling configuration ")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .unwrap_or_default()
                .to_string();
        }
        if let Some(rest) = line.split("serving the API on ").nth(1) {
            endpoint = rest.split_whitespace().next().unwrap_or_default().to_string();
        }
    }
    Launched::Serving(Server { child, endpoint, group_id, configuration_id, lines, more: receiver })
}

/// Runs the CLI with the profile `up` wrote; returns (exit code, stdout, stderr).
pub fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(bin())
        .args(args)
        .env("ROLLSCALE_CONFIG", dir.join("config.json"))
        .env_remove("ROLLSCALE_ENDPOINT")
        .output()
        .expect("rollscale runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// [`cli`], which must succeed: its output as JSON.
pub fn cli_json(dir: &Path, args: &[&str]) -> Value {
    let (code, stdout, stderr) = cli(dir, args);
    assert_eq!(code, 0, "rollscale {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("rollscale {args:?}: not JSON ({e}): {stdout}"))
}

/// The group's instances, as `ess DescribeScalingInstances` lists them.
pub fn instances(dir: &Path, group: &str) -> Vec<Value> {
    let described = cli_json(dir, &["ess", "DescribeScalingInstances", "--ScalingGroupId", group, "--PageSize", "100"]);
    described["ScalingInstances"]["ScalingInstance"].as_array().expect("2014 shape").clone()
}

/// An empty directory `rollscale-e2e-<name>-<process id>` under the system's temporary
/// directory (the test removes it at its end).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollscale-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
