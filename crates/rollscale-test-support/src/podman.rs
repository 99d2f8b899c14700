//! Podman, the container host of the tests and benchmarks of the container fleet: its
//! Docker-compatible service on a socket of the caller's and the demo images, both from
//! `scripts/containers all` (which installs podman, runc and busybox-static as root when they
//! are missing), and the podman CLI.

use std::path::Path;
use std::process::Command;

/// Starts `podman system service` on `socket` unless something answers there already (it
/// exits after `idle_s` idle seconds), and builds the demo images `localhost/rollscale-demo:v1`,
/// `:v2`, `:v3` and `:broken` when missing: `scripts/containers all`. Returns the socket's
/// path, or why it could not.
pub fn start_service(socket: &Path, idle_s: u32) -> Result<String, String> {
    let script = crate::script("containers");
    let socket = socket.to_str().ok_or("the socket's path is not UTF-8")?;
    let output = Command::new("bash")
        .arg(&script)
        .args(["all", socket, &idle_s.to_string()])
        .output()
        .map_err(|error| format!("cannot run {}: {error}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "scripts/containers all failed (podman, runc and busybox-static are needed; run `scripts/containers` as \
             root to install them):\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The socket of this test binary's Podman service, `<temp>/<name>/podman.sock`, started once
/// (it idles out after ten minutes) with the demo images built. Fails the test, saying what to
/// run, without podman.
pub fn service(name: &str) -> &'static str {
    static SERVICE: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (started, socket) = SERVICE.get_or_init(|| {
        let socket = std::env::temp_dir().join(name).join("podman.sock");
        (name.to_string(), start_service(&socket, 600).unwrap_or_else(|error| panic!("{error}")))
    });
    assert_eq!(started, name, "one Podman service per test binary");
    socket
}

/// [`service`] as a Docker host URL, `unix://<socket>`.
pub fn docker_host(name: &str) -> String {
    format!("unix://{}", service(name))
}

/// Runs the podman CLI; its standard output, trimmed, or empty when it cannot run. Never
/// panics: it also cleans up while a failed test unwinds.
pub fn podman(args: &[&str]) -> String {
    match Command::new("podman").args(args).output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout).trim().to_string(),
        Err(_) => String::new(),
    }
}

/// Removes every container that `filter` (a `podman ps --filter`, e.g. `label=x.instance`)
/// selects, running or not. A container group's other containers (named `<main>--<name>`) use
/// its first one's network namespace: they go first, or Podman refuses to remove the first.
pub fn remove_containers(filter: &str) {
    let names = podman(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]);
    let (others, mains): (Vec<&str>, Vec<&str>) = names.lines().partition(|name| name.contains("--"));
    for batch in [others, mains] {
        if !batch.is_empty() {
            let mut args = vec!["rm", "-f", "-t", "0"];
            args.extend(batch);
            podman(&args);
        }
    }
}
