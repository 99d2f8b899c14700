//! The packaging a user runs, as far as a test machine without systemd as init can run it:
//!
//! - `packaging/rollscale.service`: `systemd-analyze verify` accepts it (with its ExecStart
//!   pointed at the binary under test) and `systemd-analyze security` rates its hardening, then
//!   its ExecStart runs as written, with its environment and a fresh directory standing for its
//!   StateDirectory: `up` serves, `/readyz` answers 200, the profile is written in the data
//!   directory (a dynamic user has no home) and the secret is not printed; SIGTERM (KillSignal)
//!   stops it within TimeoutStopSec. (`scripts/systemd` installs systemd-analyze.)
//! - `packaging/Containerfile`: `scripts/image --dev` builds the image (a static binary FROM
//!   scratch) with podman, a container of it on a loopback port answers `/readyz`, and the CLI
//!   inside it works with the profile it wrote to its volume; the container and the image are
//!   removed. (`scripts/containers` installs podman.) The image is built from the dev profile's
//!   static binary: the release build that `scripts/image` makes by default would cost CI minutes
//!   of optimisation for the same image otherwise.

use rollscale_test_support::up::{bin, launch, temp_dir};
use rollscale_test_support::wait::blocking_until;
use rollscale_test_support::{script, workspace_root};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `GET path` on `address` (host:port): status and body, or `None` when nothing answers yet.
fn get(address: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.split_whitespace().nth(1)?.parse().ok()?, body.to_string()))
}

/// Waits until `/readyz` answers 200 with `{"status":"ready"}`.
fn wait_ready(address: &str) {
    let body = blocking_until(
        &format!("/readyz of {address} to answer 200"),
        Duration::from_secs(60),
        Duration::from_millis(100),
        || get(address, "/readyz").filter(|(status, _)| *status == 200).map(|(_, body)| body),
    );
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body, serde_json::json!({ "status": "ready" }));
}

fn run(command: &mut Command) -> (bool, String, String) {
    let output = command.output().unwrap_or_else(|error| panic!("{command:?} cannot run: {error}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
        String::from_utf8_lossy(&output.stderr).trim().to_string(),
    )
}

/// The values of `key=` in the unit's `[Service]` section, in order.
fn service_values(unit: &str, key: &str) -> Vec<String> {
    let mut section = "";
    let mut values = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[Service]" {
            if let Some(value) = line.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')) {
                values.push(value.to_string());
            }
        }
    }
    values
}

const INSTALLED: &str = "/usr/local/bin/rollscale";
const STATE: &str = "/var/lib/rollscale";

#[test]
fn the_systemd_unit_verifies_and_its_command_serves_until_sigterm() {
    let (ok, _, stderr) = run(Command::new("bash").arg(script("systemd")));
    assert!(ok, "scripts/systemd installs systemd-analyze: {stderr}");
    let unit = std::fs::read_to_string(workspace_root().join("packaging/rollscale.service")).expect("the unit");
    let dir = temp_dir("systemd");

    // systemd's own checks, the unit's ExecStart pointed at the binary under test.
    let binary = bin();
    let binary = binary.to_str().expect("a UTF-8 path");
    let checked = dir.join("rollscale.service");
    std::fs::write(&checked, unit.replace(INSTALLED, binary)).expect("the unit's copy");
    let (ok, stdout, stderr) = run(Command::new("systemd-analyze").arg("verify").arg(&checked));
    assert!(ok, "systemd-analyze verify: {stdout}\n{stderr}");
    let complaints: Vec<&str> = stderr.lines().filter(|line| line.contains("rollscale.service")).collect();
    assert!(complaints.is_empty(), "systemd-analyze verify complains: {complaints:#?}");
    // Exposure 2.0 at most of systemd's 10 (its "OK" band): the hardening stays.
    let (ok, stdout, stderr) =
        run(Command::new("systemd-analyze").args(["security", "--offline=yes", "--threshold=20"]).arg(&checked));
    assert!(ok, "systemd-analyze security rates the unit's exposure above 2.0:\n{stdout}\n{stderr}");

    // Its command as written, with its environment; the StateDirectory (and the listen address,
    // as a drop-in would) replaced by the test's.
    let exec = service_values(&unit, "ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart: {exec:?}");
    assert!(!exec[0].contains(['"', '\'', '$', '%']), "a command without quoting or specifiers: {}", exec[0]);
    let argv: Vec<&str> = exec[0].split_whitespace().collect();
    assert_eq!(argv[0], INSTALLED);
    let state = dir.join("state");
    std::fs::create_dir(&state).expect("the state directory");
    let state = state.to_str().expect("UTF-8").to_string();
    let home = dir.join("no-home");
    let mut command = Command::new(binary);
    command.args(argv[1..].iter().map(|arg| arg.replace(STATE, &state)));
    command.env_clear().env("PATH", "/usr/bin:/bin").env("HOME", &home);
    for assignment in service_values(&unit, "Environment") {
        let (name, value) = assignment.split_once('=').expect("NAME=value");
        let value = match name {
            "ROLLSCALE_LISTEN" => {
                assert!(value.starts_with("127.0.0.1:"), "loopback by default: {value}");
                "127.0.0.1:0".to_string()
            }
            _ => value.replace(STATE, &state),
        };
        command.env(name, value);
    }
    let mut server = match launch(command) {
        rollscale_test_support::up::Launched::Serving(server) => server,
        rollscale_test_support::up::Launched::Exited { status, lines, .. } => {
            panic!("the unit's command ended ({status}) after printing {lines:#?}")
        }
    };
    let address = server.endpoint.trim_start_matches("http://").to_string();
    wait_ready(&address);
    let profile = Path::new(&state).join("config.json");
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).expect("the profile in the state directory"))
            .expect("JSON");
    let secret = profile["access_key_secret"].as_str().expect("the admin secret");
    assert!(server.lines.iter().all(|line| !line.contains(secret)), "the journal gets no secret: {:#?}", server.lines);
    assert!(!home.exists(), "nothing is written to HOME");

    // KillSignal=SIGTERM stops it, within TimeoutStopSec, with success.
    let signal = service_values(&unit, "KillSignal");
    assert_eq!(signal, ["SIGTERM"]);
    let timeout: u64 = service_values(&unit, "TimeoutStopSec")[0].parse().expect("seconds");
    let (ok, _, stderr) = run(Command::new("kill").args(["-TERM", &server.child.id().to_string()]));
    assert!(ok, "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("the child") {
            break status;
        }
        assert!(Instant::now() < deadline, "up did not stop within TimeoutStopSec={timeout} of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "up stopped by SIGTERM exits with success: {status}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Removes the test's container and image, whatever happened.
struct Podman {
    container: String,
    image: String,
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rm", "-f", "-v", "-t", "0", &self.container]).output();
        let _ = Command::new("podman").args(["rmi", "-f", &self.image]).output();
    }
}

fn podman(args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(Command::new("podman").args(args));
    assert!(ok, "podman {args:?} failed: {stderr}");
    stdout
}

#[test]
fn the_container_image_builds_with_podman_and_answers_readyz() {
    let (ok, _, stderr) = run(Command::new("bash").arg(script("containers")));
    assert!(ok, "scripts/containers installs and configures podman (run it as root): {stderr}");
    let name = format!("rollscale-test-image-{}", std::process::id());
    let cleanup = Podman { container: name.clone(), image: format!("localhost/{name}:latest") };

    let started = Instant::now();
    let (ok, tag, stderr) = run(Command::new("bash").arg(script("image")).args(["--dev", &cleanup.image]));
    assert!(ok, "scripts/image --dev failed:\n{stderr}");
    assert_eq!(tag, cleanup.image);
    eprintln!("scripts/image --dev took {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(podman(&["image", "inspect", "--format", "{{.Config.User}}", &tag]), "65532:65532");

    podman(&["run", "-d", "--name", &name, "-p", "127.0.0.1::7878", &tag]);
    let address = podman(&["port", &name, "7878"]);
    assert!(address.starts_with("127.0.0.1:"), "published on loopback only: {address}");
    wait_ready(&address);

    // The profile is in the volume, the secret not in the log; the CLI inside the container
    // (as its user) calls the API with it, and backs the store up.
    let logs = podman(&["logs", &name]);
    assert!(logs.contains("serving the API on http://0.0.0.0:7878"), "{logs}");
    let profile: serde_json::Value =
        serde_json::from_str(&podman(&["exec", &name, "/rollscale", "configure", "get"])).expect("the profile");
    let secret = profile["access_key_secret"].as_str().expect("the admin secret");
    assert!(!logs.contains(secret), "the secret is not in `podman logs`: {logs}");
    let groups: serde_json::Value =
        serde_json::from_str(&podman(&["exec", &name, "/rollscale", "ess", "DescribeScalingGroups"])).expect("JSON");
    let listed = groups["ScalingGroups"]["ScalingGroup"].as_array().map(Vec::len);
    assert_eq!(listed, Some(1), "the demo group: {groups}");
    let backed_up = podman(&["exec", &name, "/rollscale", "backup", "/var/lib/rollscale/backups/first"]);
    assert!(backed_up.contains("rollscale up --data-dir /var/lib/rollscale/backups/first"), "{backed_up}");

    // `podman stop` (SIGTERM to `up`, the container's first process) stops it cleanly.
    podman(&["stop", "-t", "20", &name]);
    assert_eq!(podman(&["inspect", "--format", "{{.State.ExitCode}}", &name]), "0");
    assert!(podman(&["logs", &name]).contains("rollscale stopped."));
    let image = cleanup.image.clone();
    drop(cleanup);
    assert!(!run(Command::new("podman").args(["image", "exists", &image])).0, "the image is removed");
}
