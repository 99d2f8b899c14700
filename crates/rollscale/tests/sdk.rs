//! Alibaba Cloud's official Python SDKs against `rollscale up` on loopback: each SDK family
//! drives a whole rolling update (tests/sdk/*.py) and asserts on what it read. One test per
//! family, each with its own service, so a failure names the SDK.
//!
//! The SDKs live in a venv made by `scripts/sdk-venv` (target/sdk-venv, or the directory in
//! `ROLLSCALE_SDK_VENV`); it is created here when missing.

use rollscale_test_support::up::{temp_dir, up};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The venv's python, made once per test run by scripts/sdk-venv when needed.
fn python() -> PathBuf {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let venv = VENV.get_or_init(|| {
        let root = workspace();
        let dir = std::env::var_os("ROLLSCALE_SDK_VENV").map(PathBuf::from).unwrap_or(root.join("target/sdk-venv"));
        // The script returns at once when the venv is up to date.
        let output = Command::new("bash")
            .arg(root.join("scripts/sdk-venv"))
            .arg(&dir)
            .current_dir(&root)
            .output()
            .map_err(|e| format!("cannot run bash scripts/sdk-venv: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "scripts/sdk-venv {} failed ({}):\n{}{}",
                dir.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(dir.join("bin/python"))
    });
    match venv {
        Ok(python) => python.clone(),
        Err(error) => panic!(
            "the official Python SDKs are needed: {error}\nhint: run `bash scripts/sdk-venv` (it needs python3 with \
             its venv module, and the Python package index reachable), or point ROLLSCALE_SDK_VENV at a venv it made"
        ),
    }
}

/// Runs tests/sdk/`script` against a fresh `rollscale up`; it must exit 0.
fn run_sdk_script(script: &str) {
    let python = python();
    let dir = temp_dir(&format!("sdk-{}", script.trim_end_matches(".py")));
    let server = up(&dir, &["--sim-latency-ms", "2"]);
    assert!(server.endpoint.starts_with("http://127.0.0.1:"), "loopback only: {}", server.endpoint);
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).expect("up wrote the profile"))
            .expect("the profile is JSON");
    let key_id = profile["access_key_id"].as_str().expect("access_key_id");
    let secret = profile["access_key_secret"].as_str().expect("access_key_secret");
    let started = Instant::now();
    let mut command = Command::new(&python);
    command
        .arg(workspace().join("tests/sdk").join(script))
        .current_dir(workspace().join("tests/sdk"))
        .env("ROLLSCALE_ENDPOINT", &server.endpoint)
        .env("ROLLSCALE_ACCESS_KEY_ID", key_id)
        .env("ROLLSCALE_ACCESS_KEY_SECRET", secret)
        .env("ROLLSCALE_GROUP_ID", &server.group_id)
        .env("ROLLSCALE_CONFIGURATION_ID", &server.configuration_id)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    // The SDKs use proxy variables and ignore NO_PROXY (docs/wire.md).
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        command.env_remove(name);
    }
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tests/sdk/{script} failed ({}) after {:.1}s\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        started.elapsed().as_secs_f64()
    );
    assert!(stdout.lines().last().is_some_and(|l| l.starts_with("OK")), "tests/sdk/{script} did not finish:\n{stdout}");
    println!("{stdout}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn old_core_sdk_rpc_v1_drives_a_rolling_update() {
    run_sdk_script("old_sdk.py");
}

#[test]
fn tea_oos_sdk_acs3_drives_a_rolling_update() {
    run_sdk_script("tea_oos.py");
}

#[test]
fn tea_ess_2022_sdk_acs3_drives_a_rolling_update() {
    run_sdk_script("tea_ess.py");
}

#[test]
fn cloudmonitor_sdks_set_up_an_alert_rule_whose_webhook_hears_a_failure() {
    run_sdk_script("cms.py");
}
