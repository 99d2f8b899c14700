//! Operating `rollscale up`: its configuration file (`--config`, `ROLLSCALE_CONFIG_FILE`) under
//! the environment and the command line, `--print-config`, and its JSON log lines
//! (`--log-format json`), which carry the request id, execution id and instance id where they
//! apply and never a secret.

use rollscale_test_support::net::free_address;
use rollscale_test_support::up::{bin, cli, cli_json, instances, launch, temp_dir, up_command, Launched};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// `rollscale up ARGS` with `env`, which must exit: (exit code, stdout, stderr).
fn up_exits(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(bin());
    command.arg("up").args(args).env("RUST_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("rollscale runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `up` serving with the configuration file `file` (through `ROLLSCALE_CONFIG_FILE`) and no
/// flag, the profile in `dir`.
fn up_from_file(dir: &Path, file: &Path) -> rollscale_test_support::up::Server {
    let mut command = Command::new(bin());
    command
        .arg("up")
        .env("ROLLSCALE_CONFIG", dir.join("config.json"))
        .env("ROLLSCALE_CONFIG_FILE", file)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    match launch(command) {
        Launched::Serving(server) => server,
        Launched::Exited { status, lines, .. } => panic!("up ended ({status}) after printing {lines:#?}"),
    }
}

#[test]
fn a_configuration_file_sets_up_under_the_environment_and_the_command_line() {
    let dir = temp_dir("config-file");
    let data = dir.join("data");
    let listen = free_address();
    let file = dir.join("rollscale.toml");
    std::fs::write(
        &file,
        format!(
            "# rollscale up\nlisten = \"{listen}\"\ndata-dir = \"{}\"\ndemo-size = 3\nsim-latency-ms = 1\n\
             audit-max-rows = 5\nlease-poll-ms = 9\nsim-fail-script = [\"boom\"]\n",
            data.display()
        ),
    )
    .unwrap();

    // What up would run with: a flag beats its environment variable, which beats the file,
    // which beats the default; secrets masked; nothing started or made.
    let secret_url = "postgres://rollscale:hunter2@127.0.0.1:1/rollscale";
    let file_arg = file.to_str().unwrap();
    let (code, printed, stderr) = up_exits(
        &["--config", file_arg, "--print-config", "--lease-poll-ms", "7"],
        &[("ROLLSCALE_AUDIT_MAX_ROWS", "6"), ("ROLLSCALE_LEASE_POLL_MS", "8"), ("ROLLSCALE_DATABASE_URL", secret_url)],
    );
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        format!("\nlisten = \"{listen}\"  # from: file {file_arg}\n"),
        format!("\ndemo-size = 3  # from: file {file_arg}\n"),
        "\naudit-max-rows = 6  # from: env ROLLSCALE_AUDIT_MAX_ROWS\n".to_string(),
        "\nlease-poll-ms = 7  # from: flag\n".to_string(),
        "\nmax-skew-s = 900  # from: default\n".to_string(),
        "\nsim-fail-script = [\"boom\"]  # from: file".to_string(),
        "\n# database-url = \"postgres://rollscale:****@127.0.0.1:1/rollscale\"  # from: env ROLLSCALE_DATABASE_URL (masked)\n"
            .to_string(),
    ] {
        assert!(printed.contains(&expected), "{expected:?} not in:\n{printed}");
    }
    assert!(!printed.contains("hunter2") && !stderr.contains("hunter2"), "{printed}");
    assert!(!data.exists(), "--print-config made the data directory");

    // The printed configuration is a file up loads: the same values, now all from it.
    let again = dir.join("printed.toml");
    std::fs::write(&again, &printed).unwrap();
    let (code, reprinted, stderr) =
        up_exits(&["--print-config"], &[("ROLLSCALE_CONFIG_FILE", again.to_str().unwrap())]);
    assert_eq!(code, 0, "{stderr}");
    let values = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| line.split("  # from:").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(values(&reprinted), values(&printed));
    assert!(reprinted.contains("\naudit-max-rows = 6  # from: file"), "{reprinted}");

    // A key that is not a flag: a usage error naming the file and the key.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:0\"\ndemo_size = 3\n").unwrap();
    let (code, _, stderr) = up_exits(&["--config", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("bad.toml, line 2: `demo_size` is not a flag") && stderr.contains("`demo-size`"),
        "{stderr}"
    );
    assert!(!data.exists());

    // Served from the file alone: its address, its data directory, its demo size.
    let mut server = up_from_file(&dir, &file);
    assert_eq!(server.endpoint, format!("http://{listen}"));
    assert!(data.join("rollscale.db").exists());
    assert_eq!(instances(&dir, &server.group_id).len(), 3);
    server.stop();

    // And `no-demo`: a new data directory gets no demo group.
    let quiet = dir.join("quiet.toml");
    std::fs::write(
        &quiet,
        format!("listen = \"127.0.0.1:0\"\ndata-dir = \"{}\"\nno-demo = true\n", dir.join("quiet").display()),
    )
    .unwrap();
    let server = up_from_file(&dir, &quiet);
    assert!(server.group_id.is_empty(), "{:?}", server.lines);
    let groups = cli_json(&dir, &["ess", "DescribeScalingGroups"]);
    assert_eq!(groups["TotalCount"], 0, "{groups}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `GET path` with a bearer token; (status, body).
fn get(address: &str, path: &str, token: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP");
    (head.split_whitespace().nth(1).unwrap_or_default().to_string(), body.to_string())
}

#[test]
fn json_log_lines_carry_the_request_execution_and_instance_ids_and_no_secret() {
    let dir = temp_dir("json-logs");
    let data = dir.join("data");
    let log = dir.join("up.log");
    let mut command = up_command(&dir, &data, &["--demo-size", "2", "--sim-latency-ms", "1"]);
    command
        .env("ROLLSCALE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,rollscale_server=debug,rollscale_engine=debug")
        .stderr(std::fs::File::create(&log).unwrap());
    let mut server = match launch(command) {
        Launched::Serving(server) => server,
        Launched::Exited { status, lines, .. } => panic!("up ended ({status}) after printing {lines:#?}"),
    };
    let admin_secret = cli_json(&dir, &["configure", "get"])["access_key_secret"].as_str().unwrap().to_string();

    // A rolling update of the demo's two instances, to its end.
    let (code, started, stderr) =
        cli(&dir, &["ru", "start", "--group", &server.group_id, "--script", "echo hello", "--batches", "1", "--wait"]);
    assert_eq!(code, 0, "{stderr}");
    let execution = started
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|word| word.starts_with("exec-"))
        .unwrap_or_else(|| panic!("an execution id in {started}"))
        .to_string();
    // A refused call: its RequestId is in the answer.
    let (code, _, refused) = cli(&dir, &["ess", "DescribeScalingGroups", "--ScalingGroupId", "nope"]);
    assert_ne!(code, 0);
    let request_id =
        refused.split("RequestId: ").nth(1).and_then(|rest| rest.split(')').next()).expect(&refused).to_string();
    // Secrets through both APIs: a new AccessKey's, a bearer token.
    let (code, _, stderr) = cli(&dir, &["user", "create", "carol"]);
    assert_eq!(code, 0, "{stderr}");
    let created = cli_json(&dir, &["key", "create", "--user", "carol", "-o", "json"]);
    let key_secret = created["AccessKey"]["AccessKeySecret"].as_str().expect("secret").to_string();
    let (code, token, stderr) = cli(&dir, &["token", "--ttl", "120"]);
    assert_eq!(code, 0, "{stderr}");
    let token = token.trim().to_string();
    let (status, body) = get(server.endpoint.trim_start_matches("http://"), "/v1/scaling-groups", &token);
    assert_eq!(status, "200", "{body}");
    server.stop();

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    assert!(lines.iter().all(|line| line["timestamp"].is_string() && line["level"].is_string()), "{text}");
    // The refused request's line, by the RequestId its answer gave.
    assert!(
        lines.iter().any(|line| line["request_id"] == request_id.as_str()
            && line["message"] == "request served"
            && line["status"] == 400),
        "no line of request {request_id}:\n{text}"
    );
    // The start's, inside the request that made it; then the engine's, with the task's id.
    assert!(
        lines.iter().any(|line| line["message"] == "rolling update started"
            && line["request_id"].is_string()
            && line["execution_id"] == execution.as_str()),
        "{text}"
    );
    let steps: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "instance step recorded" && line["execution_id"] == execution.as_str())
        .collect();
    let instances: std::collections::HashSet<&str> =
        steps.iter().filter_map(|line| line["instance_id"].as_str()).filter(|id| id.starts_with("i-")).collect();
    assert_eq!(instances.len(), 2, "the steps of both instances, each with its id:\n{text}");
    assert!(steps.iter().all(|line| line["request_id"].is_null()), "the task's lines are not the request's");

    // No secret in any line.
    let server_key = std::fs::read_to_string(data.join("server.key")).unwrap();
    for (what, secret) in [
        ("admin secret", admin_secret.as_str()),
        ("key secret", &key_secret),
        ("token", &token),
        ("server key", server_key.trim()),
    ] {
        assert!(secret.len() >= 30, "{what}: {secret}");
        assert!(!text.contains(secret), "the {what} is in the log");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
