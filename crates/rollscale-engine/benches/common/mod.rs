//! What the container benchmarks share: their command-line shape and the Podman CLI.
#![allow(dead_code)] // each benchmark uses part of it

use std::process::Command;

/// The value of `--name N` on the command line, or `default`.
pub fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The standard output of `podman ARGS` (empty when it fails).
pub fn podman(args: &[&str]) -> String {
    Command::new("podman")
        .args(args)
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

/// Removes every container a benchmark's fleet made (labelled `<prefix>.instance`).
pub fn remove_containers(prefix: &str) {
    let filter = format!("label={prefix}.instance");
    let names = podman(&["ps", "-a", "-q", "--filter", &filter]);
    let names: Vec<&str> = names.split_whitespace().collect();
    if !names.is_empty() {
        let mut args = vec!["rm", "-f", "-t", "0"];
        args.extend(names);
        podman(&args);
    }
}

/// Starts (when needed) a Podman service on `socket` with the demo images, by
/// `scripts/containers all`; it exits after `idle_s` idle seconds.
pub fn podman_service(socket: &std::path::Path, idle_s: u32) -> Result<(), Box<dyn std::error::Error>> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/containers");
    let status = Command::new("bash")
        .arg(script)
        .args(["all", socket.to_str().ok_or("utf-8 path")?, &idle_s.to_string()])
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        return Err("scripts/containers failed: podman, runc and busybox-static are needed".into());
    }
    Ok(())
}
