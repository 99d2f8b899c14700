//! The web console in a real browser: `rollscale up` on loopback (simulated fleet, the demo
//! group), Debian's headless Chromium driven through chromedriver's W3C WebDriver protocol (a
//! small client over reqwest). It signs in with the admin key of the profile `up` wrote, opens
//! the demo group, rolls a new image through the form with FirstBatchPause, sees the pause
//! arrive and then the end without a reload, continues it; runs a script with two failing
//! instances and retries one and skips the other from the page; refuses a wrong secret; and a
//! read-only user's Start is refused with Forbidden.RAM. A second test, beside it, makes image
//! update tasks from the Update image form (now; periodic, refused without a RAM role, then
//! cancelled) and an alert rule whose webhook, a receiver on loopback, gets an instance's
//! failure. Screenshots go to `target/console-*.png` for a person to look at.
//!
//! Chromium and chromedriver come from `scripts/browser`; without them this test fails.

use rollscale_test_support::net;
use rollscale_test_support::up::{self, cli_json, temp_dir, up};
use rollscale_test_support::webhook::WebhookReceiver;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NEW_IMAGE: &str = "aliyun_2_1903_x64_20G_alibase_20200529.vhd";
const OLD_IMAGE: &str = "centos_7_8_x64_20G_alibase_20200717.vhd";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long the page may take to show what a step leads to.
const PATIENCE: Duration = Duration::from_secs(20);

fn find(program: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file());
    found.unwrap_or_else(|| {
        panic!("{program} is not installed: run `bash scripts/browser` (Debian's chromium and chromium-driver)")
    })
}

/// chromedriver in a process group of its own, so that stopping it also stops the Chromium it
/// started, even when the test panics.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let chromedriver = find("chromedriver");
        let port = net::free_port();
        use std::os::unix::process::CommandExt;
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        Driver { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A WebDriver session: the few commands the test needs.
struct Browser {
    http: reqwest::Client,
    session: String,
}

impl Browser {
    async fn open(driver: &Driver, profile: &Path) -> Browser {
        let chromium = find("chromium");
        let http = reqwest::Client::new();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1100",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        // chromedriver takes a moment to listen.
        let deadline = Instant::now() + Duration::from_secs(20);
        let answer: Value = loop {
            match http.post(format!("{}/session", driver.url)).json(&capabilities).send().await {
                Ok(response) => break response.json().await.expect("a WebDriver answer"),
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("chromedriver does not answer on {}: {error}", driver.url),
            }
        };
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session (is Chromium working? scripts/browser): {answer}"))
            .to_string();
        Browser { http, session: format!("{}/session/{session}", driver.url) }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_command(method.clone(), path, body)
            .await
            .unwrap_or_else(|error| panic!("WebDriver {method} {path}: {error}"))
    }

    /// A WebDriver command: its value, or the error WebDriver answered with.
    async fn try_command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.expect("chromedriver answers").json().await.expect("JSON");
        if answer["value"]["error"].is_string() {
            return Err(answer["value"].clone());
        }
        Ok(answer["value"].clone())
    }

    /// Acts on the element `css` selects; when the page re-rendered it between finding and
    /// acting (a live update replaced it: "stale element reference"), finds it again.
    async fn on_element(&self, css: &str, action: &str, body: Value) {
        for attempt in 0.. {
            let element = self.element(css).await;
            let path = format!("/element/{element}/{action}");
            match self.try_command(reqwest::Method::POST, &path, Some(body.clone())).await {
                Ok(_) => return,
                Err(error) if error["error"] == "stale element reference" && attempt < 50 => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("WebDriver {action} on {css}: {error}"),
            }
        }
    }

    async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// Runs `script` (a function body) in the page; its return value.
    async fn run(&self, script: &str, args: Value) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    /// Waits until `script` returns something truthy in the page; that value.
    async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.run(script, args.clone()).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false)) && value != json!("") && value != json!(0);
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let page = self.run("return document.querySelector('main').innerText", json!([])).await;
                panic!("the page did not show {what} within {PATIENCE:?}; it shows:\n{}", page.as_str().unwrap_or(""));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element `css` selects, once it is there.
    async fn element(&self, css: &str) -> String {
        let script = "return document.querySelector(arguments[0]) !== null";
        self.wait_for(&format!("an element {css}"), script, json!([css])).await;
        let found =
            self.command(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        found[ELEMENT].as_str().expect("an element reference").to_string()
    }

    async fn click(&self, css: &str) {
        self.on_element(css, "click", json!({})).await;
    }

    /// Clears a field and types `text` into it.
    async fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, "clear", json!({})).await;
        self.on_element(css, "value", json!({"text": text})).await;
    }

    /// Chooses the option of a `<select>` whose value is `value` (WebDriver's click on an
    /// option selects it and fires `change`, as a person's choice does).
    async fn choose(&self, select: &str, value: &str) {
        self.click(&format!("{select} option[value=\"{value}\"]")).await;
        let script = "return document.querySelector(arguments[0]).value === arguments[1]";
        self.wait_for(&format!("{value} chosen in {select}"), script, json!([select, value])).await;
    }

    /// Sets a field's value as the page's script sees it after a person's input (for the
    /// date-time fields, whose typing WebDriver does not spell the same in every locale).
    async fn set_value(&self, css: &str, value: &str) {
        self.element(css).await;
        let script = "const e = document.querySelector(arguments[0]); e.value = arguments[1]; \
                      e.dispatchEvent(new Event('input', {bubbles: true})); \
                      e.dispatchEvent(new Event('change', {bubbles: true})); return e.value";
        let set = self.run(script, json!([css, value])).await;
        assert_eq!(set, json!(value), "the value of {css}");
    }

    async fn text(&self, css: &str) -> String {
        let script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''";
        self.run(script, json!([css])).await.as_str().unwrap_or_default().to_string()
    }

    async fn wait_text(&self, css: &str, needle: &str) -> String {
        let script = "const e = document.querySelector(arguments[0]); \
                      return e && e.innerText.includes(arguments[1]) ? e.innerText : null";
        let found = self.wait_for(&format!("{needle:?} in {css}"), script, json!([css, needle])).await;
        found.as_str().unwrap_or_default().to_string()
    }

    async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let data = self.command(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap_or_default()).expect("PNG");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target").join(name);
        std::fs::write(&path, png).expect("the screenshot is written");
        eprintln!("screenshot: {}", path.display());
    }

    async fn quit(&self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// Waits for the task page to show the task of the address with this status (and waiting
/// status).
async fn task_status(browser: &Browser, status: &str, waiting: &str) -> String {
    let script = "const e = document.getElementById('task-status'); \
                  return e && location.hash === '#/tasks/' + e.dataset.task \
                  && e.dataset.status === arguments[0] && e.dataset.waiting === arguments[1] \
                  ? location.hash : null";
    let hash = browser.wait_for(&format!("the task {status} {waiting}"), script, json!([status, waiting])).await;
    hash.as_str().unwrap_or_default().trim_start_matches("#/tasks/").to_string()
}

async fn sign_in(browser: &Browser, key: &str, secret: &str) {
    browser.type_into("#access-key-id", key).await;
    browser.type_into("#access-key-secret", secret).await;
    browser.click("#sign-in").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_drives_rolling_updates_in_a_real_browser() {
    let started = Instant::now();
    let dir = temp_dir("console");
    // Slow enough that a batch takes a visible moment, so the page's updates come from the
    // stream and not from the first load.
    let server = up(&dir, &["--sim-latency-ms", "40"]);
    let group = server.group_id.clone();
    let profile = cli_json(&dir, &["configure", "get"]);
    let (key, secret) = (profile["access_key_id"].as_str().unwrap(), profile["access_key_secret"].as_str().unwrap());
    let console = format!("{}/console/", server.endpoint);

    let driver = Driver::start();
    let browser = Browser::open(&driver, &dir.join("chromium-profile")).await;

    // A wrong secret: the server's refusal, shown as it is; nothing kept.
    browser.goto(&console).await;
    sign_in(&browser, key, "not-the-secret").await;
    let refused = browser.wait_text("#sign-in-status .error", "InvalidToken").await;
    assert!(refused.contains("InvalidToken: the bearer token is not one this service made"), "{refused}");
    let stored = browser.run("return JSON.stringify(sessionStorage) + JSON.stringify(localStorage)", json!([])).await;
    assert!(!stored.as_str().unwrap().contains("not-the-secret") && stored == json!("{}{}"), "{stored}");

    // The admin key: the groups, the demo group with its ten instances.
    sign_in(&browser, key, secret).await;
    browser.wait_text("#who-key", key).await;
    let user = cli_json(&dir, &["ram", "ListUsers"]);
    let admin = user["Users"]["User"][0]["UserName"].as_str().unwrap_or_default().to_string();
    assert!(!admin.is_empty(), "{user}");
    assert_eq!(browser.text("#who-user").await, admin, "who is signed in: {user}");
    let stored = browser.run("return JSON.stringify(sessionStorage) + JSON.stringify(localStorage)", json!([])).await;
    let stored = stored.as_str().unwrap();
    assert!(!stored.contains(secret) && stored.ends_with("{}"), "no secret kept, nothing in localStorage: {stored}");
    let row = browser.wait_text(&format!("tr[data-group='{group}']"), "demo").await;
    assert!(row.contains("10 (10 InService)") && row.contains("none"), "ten instances, no process suspended: {row}");
    browser.click(&format!("tr[data-group='{group}'] a")).await;
    let script = "return document.querySelectorAll('#tab tr[data-instance]').length === 10";
    browser.wait_for("the group's ten instances", script, json!([])).await;
    assert!(browser.text("#tab").await.contains("InService"));

    // An image update over the form, in 2 batches, pausing after the first.
    browser.click(&format!("a[href='#/groups/{group}/rolling-updates']")).await;
    browser.wait_text("#tab", "No rolling update yet").await;
    browser.click("#create-task").await;
    browser.choose("#task-type", "image").await;
    browser.choose("#image", NEW_IMAGE).await;
    browser.type_into("#batches", "2").await;
    browser.choose("#pause", "FirstBatchPause").await;
    browser.screenshot("console-new-task.png").await;
    browser.click("#create-submit").await;
    browser.wait_for("the new task's page", "return location.hash.startsWith('#/tasks/exec-')", json!([])).await;
    // A mark that a reload would wipe: the page changes below without one.
    browser.run("window.stillTheSamePage = true", json!([])).await;
    let image_task = task_status(&browser, "Waiting", "BatchPaused").await;
    assert!(browser.text("#task-batch").await.contains("batch 1 of 2"));
    let counters = browser.text("#task-counters").await;
    assert!(counters.contains("5 succeeded") && counters.contains("5 queued"), "{counters}");
    browser.screenshot("console-task.png").await;
    browser.click("#continue").await;
    task_status(&browser, "Success", "").await;
    assert_eq!(browser.run("return window.stillTheSamePage === true", json!([])).await, json!(true), "no reload");
    assert!(browser.text("#task-counters").await.contains("10 succeeded"));
    assert!(browser.text("#task-actions").await.contains("Roll back"), "a finished task may be rolled back");
    assert!(!browser.text("#task-actions").await.contains("Continue"));

    // The instances are on the new image.
    browser.goto(&format!("{console}#/groups/{group}/instances")).await;
    let script = "const cells = [...document.querySelectorAll('#tab td.image')]; \
                  return cells.length === 10 && cells.every(c => c.innerText === arguments[0])";
    browser.wait_for("every instance on the new image", script, json!([NEW_IMAGE])).await;
    browser.screenshot("console-group.png").await;
    assert!(browser.text("#tab").await.contains(&image_task), "each is tagged with the task that updated it");

    // Edit image: the scaling configuration's image, for new instances.
    let configuration = server.configuration_id.clone();
    browser.click(&format!("a[href='#/groups/{group}/configurations']")).await;
    browser.wait_text("#tab", "Edit image").await;
    assert!(browser.text("#tab").await.contains(NEW_IMAGE), "R4: the update set the configuration's image");
    browser.click("#tab button").await;
    browser.choose(&format!("#image-{configuration}"), OLD_IMAGE).await;
    browser.click("#tab button[data-save]").await;
    browser.wait_text("#tab td .image", OLD_IMAGE).await;
    let described = cli_json(&dir, &["ess", "DescribeScalingConfigurations", "--ScalingGroupId", &group]);
    assert_eq!(described["ScalingConfigurations"]["ScalingConfiguration"][0]["ImageId"], OLD_IMAGE);

    // Roll back the image update from its page: a new task, back to the rollback image.
    browser.goto(&format!("{console}#/tasks/{image_task}")).await;
    browser.click("#rollback").await;
    browser.type_into("#rollback-batches", "1").await;
    browser.click("#rollback-submit").await;
    let script = "return location.hash.startsWith('#/tasks/exec-') && !location.hash.endsWith(arguments[0])";
    browser.wait_for("the rollback's page", script, json!([image_task])).await;
    task_status(&browser, "Success", "").await;
    assert!(browser.text("#task-summary").await.contains("rollback"));
    assert!(!browser.text("#task-actions").await.contains("Roll back"), "a rollback is not rolled back");
    assert!(up::instances(&dir, &group).iter().all(|i| i["ImageId"] == OLD_IMAGE));

    // A script whose change fails on two instances (the simulated fleet's InjectFault): the
    // task pauses on them; one is retried, the other skipped, from the page.
    let instances = up::instances(&dir, &group);
    let failing: Vec<&str> = instances[..2].iter().map(|i| i["InstanceId"].as_str().unwrap()).collect();
    for id in &failing {
        cli_json(&dir, &["ess", "InjectFault", "--InstanceId", id, "--Times", "1"]);
    }
    browser.goto(&format!("{console}#/groups/{group}/new-task")).await;
    browser.choose("#task-type", "script").await;
    browser.type_into("#script", "echo hello\nhostname").await;
    browser.type_into("#batches", "1").await;
    browser.choose("#pause", "Automatic").await;
    browser.click("#create-submit").await;
    browser.wait_for("the new task's page", "return location.hash.startsWith('#/tasks/exec-')", json!([])).await;
    task_status(&browser, "Waiting", "FailurePaused").await;
    for id in &failing {
        browser.wait_text(&format!("tr[data-instance='{id}']"), "Failed").await;
    }
    browser.screenshot("console-failure.png").await;
    browser.click(&format!("button[data-action='retry'][data-instance='{}']", failing[0])).await;
    browser.wait_text(&format!("tr[data-instance='{}']", failing[0]), "Success").await;
    // One failure still awaits a decision.
    task_status(&browser, "Waiting", "FailurePaused").await;
    assert!(browser.text("#task-counters").await.contains("1 failed"));
    browser.click(&format!("button[data-action='skip'][data-instance='{}']", failing[1])).await;
    task_status(&browser, "Success", "").await;
    let retried = browser.text(&format!("tr[data-instance='{}']", failing[0])).await;
    assert!(retried.contains("attempt 2"), "{retried}");
    let skipped = browser.text(&format!("tr[data-instance='{}']", failing[1])).await;
    assert!(skipped.contains("Skipped"), "{skipped}");
    let standby = browser.text(&format!("tr[data-instance='{}'] td.standby", failing[1])).await;
    assert_eq!(standby, "Standby", "R8: a skipped instance stays in Standby");

    // The group's events, searched with the API's keywords.
    browser.goto(&format!("{console}#/groups/{group}/events")).await;
    browser.wait_text("#tab", "Critical").await;
    browser.type_into("#keywords", &format!("{} or nothing-like-this", failing[1])).await;
    browser.click("#tab button[type=submit]").await;
    let script = "const rows = [...document.querySelectorAll('#tab tbody tr')]; \
                  return rows.length > 0 && rows.every(r => r.innerText.includes(arguments[0]))";
    browser.wait_for("only the events naming the skipped instance", script, json!([failing[1]])).await;

    // Cancel at a batch pause with restore: the batch leaves Standby, processes resume.
    browser.goto(&format!("{console}#/groups/{group}/new-task")).await;
    browser.choose("#task-type", "script").await;
    browser.type_into("#script", "uptime").await;
    browser.type_into("#batches", "2").await;
    browser.choose("#pause", "FirstBatchPause").await;
    browser.click("#create-submit").await;
    browser.wait_for("the new task's page", "return location.hash.startsWith('#/tasks/exec-')", json!([])).await;
    task_status(&browser, "Waiting", "BatchPaused").await;
    browser.click("#cancel-restore").await;
    browser.click("#cancel-task").await;
    browser.command(reqwest::Method::POST, "/alert/accept", Some(json!({}))).await;
    task_status(&browser, "Cancelled", "").await;
    let script = "return [...document.querySelectorAll('#task-instances tr[data-instance]')] \
                  .every(r => r.querySelector('td.standby').innerText === '')";
    browser.wait_for("no instance of the task left in Standby", script, json!([])).await;
    let groups = cli_json(&dir, &["ess", "DescribeScalingGroups", "--ScalingGroupId.1", &group]);
    let suspended = &groups["ScalingGroups"]["ScalingGroup"][0]["SuspendedProcesses"]["SuspendedProcess"];
    assert_eq!(suspended.as_array().map(Vec::len), Some(0), "R10 restore: processes resumed: {suspended}");

    // A read-only user (made over the RPC API) may look but not start: Forbidden.RAM, shown.
    cli_json(&dir, &["ram", "CreateUser", "--UserName", "viewer"]);
    let viewer = cli_json(&dir, &["ram", "CreateAccessKey", "--UserName", "viewer"]);
    let (viewer_key, viewer_secret) = (
        viewer["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string(),
        viewer["AccessKey"]["AccessKeySecret"].as_str().unwrap().to_string(),
    );
    cli_json(
        &dir,
        &[
            "ram",
            "AttachPolicyToUser",
            "--PolicyType",
            "System",
            "--PolicyName",
            "AliyunESSReadOnlyAccess",
            "--UserName",
            "viewer",
        ],
    );
    browser.click("#sign-out").await;
    browser.element("#access-key-id").await;
    assert_eq!(browser.run("return sessionStorage.length", json!([])).await, json!(0), "signed out");
    // By keyboard this time: Enter in the secret's field submits the form.
    browser.type_into("#access-key-id", &viewer_key).await;
    browser.type_into("#access-key-secret", &format!("{viewer_secret}\u{e007}")).await;
    browser.wait_text("#who-key", &viewer_key).await;
    assert_eq!(browser.text("#who-user").await, "viewer");
    browser.goto(&format!("{console}#/groups/{group}/new-task")).await;
    browser.choose("#task-type", "script").await;
    browser.type_into("#script", "uptime").await;
    browser.click("#create-submit").await;
    let refused = browser.wait_text("#create-status .error", "Forbidden.RAM").await;
    assert!(refused.contains("oos:StartExecution"), "the server's message, as it is: {refused}");
    let tasks = cli_json(&dir, &["oos", "ListExecutions"]);
    assert_eq!(tasks["Executions"].as_array().map(Vec::len), Some(4), "nothing started: {tasks}");

    browser.quit().await;
    drop(driver);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("the console test took {:?}", started.elapsed());
}

/// Waits for the image update task page to show the task of the address with this status.
async fn image_task_status(browser: &Browser, status: &str) -> String {
    let script = "const e = document.getElementById('image-task-status'); \
                  return e && location.hash === '#/image-tasks/' + e.dataset.task \
                  && e.dataset.status === arguments[0] ? location.hash : null";
    let hash = browser.wait_for(&format!("the image update task {status}"), script, json!([status])).await;
    hash.as_str().unwrap_or_default().trim_start_matches("#/image-tasks/").to_string()
}

/// Opens the Update image form of the group and fills in the source and the configuration.
async fn update_image_form(browser: &Browser, console: &str, group: &str, source: &str, configuration: &str) {
    browser.goto(&format!("{console}#/groups/{group}/configurations/image-tasks")).await;
    browser.click("#update-image").await;
    browser.choose("#source-instance", source).await;
    let placeholder = browser.run("return document.getElementById('image-name').placeholder", json!([])).await;
    assert_eq!(placeholder, json!(format!("UpdateImage_from_{source}")), "the default name, shown");
    browser.click(&format!("#configurations input[value='{configuration}']")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_makes_image_update_tasks_and_alert_rules_in_a_real_browser() {
    let started = Instant::now();
    let dir = temp_dir("console-tasks-alerts");
    let server = up(&dir, &["--sim-latency-ms", "20"]);
    let (group, configuration) = (server.group_id.clone(), server.configuration_id.clone());
    let profile = cli_json(&dir, &["configure", "get"]);
    let (key, secret) = (profile["access_key_id"].as_str().unwrap(), profile["access_key_secret"].as_str().unwrap());
    let console = format!("{}/console/", server.endpoint);
    let instances = up::instances(&dir, &group);
    let source = instances[0]["InstanceId"].as_str().unwrap().to_string();
    let described = cli_json(&dir, &["ess", "DescribeScalingConfigurations", "--ScalingGroupId", &group]);
    let old_image =
        described["ScalingConfigurations"]["ScalingConfiguration"][0]["ImageId"].as_str().unwrap().to_string();

    let driver = Driver::start();
    let browser = Browser::open(&driver, &dir.join("chromium-profile")).await;
    browser.goto(&console).await;
    sign_in(&browser, key, secret).await;
    browser.wait_text("#who-key", key).await;

    // An image update task that runs now, from the Update image form.
    browser.goto(&format!("{console}#/groups/{group}/configurations/image-tasks")).await;
    browser.wait_text("#image-tasks", "No image update task yet").await;
    update_image_form(&browser, &console, &group, &source, &configuration).await;
    browser.click("#update-image-submit").await;
    let now_task = image_task_status(&browser, "Success").await;
    let made = browser.wait_text("#image-task-image", "_on_").await;
    let name_start = format!("UpdateImage_from_{source}_on_{now_task}_at_");
    assert!(made.contains(&name_start), "the image's name: {made}");
    let image_id = browser.text("#image-task-image .image").await;
    assert!(image_id.starts_with("m-"), "the image made: {made}");
    browser.goto(&format!("{console}#/groups/{group}/configurations/image-tasks")).await;
    let row = browser.wait_text(&format!("tr[data-image-task='{now_task}']"), "Success").await;
    assert!(row.contains("now") && row.contains(&image_id), "{row}");
    // The configuration's image column, and the RPC API, say the new image.
    browser.click(&format!("nav.subtabs a[href='#/groups/{group}/configurations']")).await;
    let row = browser.wait_text(&format!("tr[data-configuration='{configuration}']"), &name_start).await;
    assert!(row.contains(&image_id), "{row}");
    let described = cli_json(&dir, &["ess", "DescribeScalingConfigurations", "--ScalingGroupId", &group]);
    let now_image = described["ScalingConfigurations"]["ScalingConfiguration"][0]["ImageId"].as_str().unwrap();
    assert_eq!(now_image, image_id);
    assert_ne!(now_image, old_image);

    // Periodic, without a RAM role: the server's refusal, shown as it is; nothing made.
    update_image_form(&browser, &console, &group, &source, &configuration).await;
    browser.click("#executed-periodic").await;
    browser.choose("#recurrence", "rate").await;
    browser.type_into("#expression", "1 day").await;
    browser.set_value("#expires-at", "2099-01-01T00:00").await;
    assert_eq!(browser.run("return document.getElementById('time-zone').value", json!([])).await, json!("UTC"));
    browser.click("#update-image-submit").await;
    let refused = browser.wait_text("#update-image-status .error", "OOSAssumeRole").await;
    assert!(
        refused.starts_with("InvalidParameter") && refused.contains("required for a scheduled or periodic"),
        "{refused}"
    );
    let listed = cli_json(
        &dir,
        &["oos", "ListExecutions", "--TemplateName", "ACS-ESS-CreateImageAndUpdateScalingConfiguration"],
    );
    assert_eq!(listed["Executions"].as_array().map(Vec::len), Some(1), "nothing made: {listed}");
    // With a role: Waiting, its next firing shown; then cancelled from its page.
    browser.type_into("#role", "OOSServiceRole").await;
    browser.click("#update-image-submit").await;
    let periodic = image_task_status(&browser, "Waiting").await;
    assert!(browser.text("#image-task-schedule").await.starts_with("rate 1 day"));
    let next = browser.text("#image-task-next").await;
    assert!(next.len() >= 10 && next.chars().next().is_some_and(|c| c.is_ascii_digit()), "a next firing: {next}");
    browser.screenshot("console-image-tasks.png").await;
    browser.click("#cancel-image-task").await;
    browser.command(reqwest::Method::POST, "/alert/accept", Some(json!({}))).await;
    assert_eq!(image_task_status(&browser, "Cancelled").await, periodic);
    assert!(browser.text("#image-task-actions").await.is_empty(), "no Cancel for a cancelled task");
    // Scheduled, once, at a time in a time zone.
    update_image_form(&browser, &console, &group, &source, &configuration).await;
    browser.click("#executed-scheduled").await;
    browser.set_value("#run-at", "2099-06-01T08:30").await;
    browser.type_into("#time-zone", "Asia/Shanghai").await;
    browser.type_into("#role", "OOSServiceRole").await;
    browser.click("#update-image-submit").await;
    image_task_status(&browser, "Waiting").await;
    let schedule = browser.text("#image-task-schedule").await;
    assert!(schedule.starts_with("at 2099-06-01T08:30") && schedule.contains("Asia/Shanghai"), "{schedule}");
    assert_eq!(browser.text("#image-task-next").await, "2099-06-01T00:30:00Z", "08:30 in Shanghai");

    // Alerts: a rule for CRITICAL with a webhook to a receiver on loopback.
    let receiver = WebhookReceiver::start();
    let receiver_url = receiver.url("/hooks/console");
    browser.click("#nav a[href='#/alerts']").await;
    browser.wait_text("main", "No alert rule yet").await;
    browser.click("#create-rule").await;
    browser.type_into("#rule-name", "oncall").await;
    browser.click("input[name='pattern-0-level'][value='CRITICAL']").await;
    browser.click("#rule-save").await;
    let script = "const e = document.getElementById('rule-state'); \
                  return location.hash === '#/alerts/oncall' && e && e.dataset.enabled === 'true'";
    browser.wait_for("the new rule, enabled", script, json!([])).await;
    browser.type_into("#webhook-id", "pager").await;
    browser.type_into("#webhook-url", &receiver_url).await;
    browser.choose("#webhook-method", "POST").await;
    browser.click("#webhook-save").await;
    browser.wait_text("tr[data-webhook='pager']", &receiver_url).await;
    let rule = cli_json(&dir, &["cms", "DescribeEventRuleAttribute", "--RuleName", "oncall"]);
    assert_eq!(rule["Result"]["EventPattern"]["LevelList"]["LevelList"], json!(["CRITICAL"]), "{rule}");

    // A script rolling update that fails on one instance: its InstanceFailed event is sent.
    let failing = instances[1]["InstanceId"].as_str().unwrap();
    cli_json(&dir, &["ess", "InjectFault", "--InstanceId", failing, "--Times", "1"]);
    let parameters =
        json!({"invokeType": "invoke", "scalingGroupId": group, "invokeScript": "uptime", "batchNumber": 1})
            .to_string();
    let template = "ACS-ESS-RollingUpdateByRunCommandInScalingGroup";
    let started_update =
        cli_json(&dir, &["oos", "StartExecution", "--TemplateName", template, "--Parameters", &parameters]);
    let execution = started_update["Execution"]["ExecutionId"].as_str().unwrap().to_string();
    let script = "return [...document.querySelectorAll('#rule-deliveries tr[data-status=Delivered]')] \
                  .some(r => r.innerText.includes('InstanceFailed') && r.innerText.includes(arguments[0]))";
    browser.wait_for("the InstanceFailed delivery, Delivered", script, json!([execution])).await;
    let row = browser.text("#rule-deliveries tbody tr").await;
    assert!(row.to_uppercase().contains("CRITICAL") && row.contains("pager"), "{row}");
    let bodies: Vec<Value> =
        receiver.got().iter().map(|r| serde_json::from_str(&r.body).expect("a JSON body")).collect();
    let failed = bodies.iter().find(|b| b["kind"] == "InstanceFailed").unwrap_or_else(|| panic!("{bodies:#?}"));
    assert_eq!(
        (failed["level"].as_str(), failed["executionId"].as_str()),
        (Some("CRITICAL"), Some(execution.as_str()))
    );
    assert!(failed["content"].as_str().unwrap_or_default().contains(failing), "{failed}");
    assert!(bodies.iter().all(|b| b["level"] == "CRITICAL"), "only Critical events: {bodies:#?}");
    browser.screenshot("console-alerts.png").await;

    // Disabled from the page: so says the API.
    browser.click("#rule-toggle").await;
    browser
        .wait_for(
            "the rule, disabled",
            "return document.getElementById('rule-state')?.dataset.enabled === 'false'",
            json!([]),
        )
        .await;
    let rule = cli_json(&dir, &["cms", "DescribeEventRuleAttribute", "--RuleName", "oncall"]);
    assert_eq!(rule["Result"]["State"], "DISABLED", "{rule}");
    browser.goto(&format!("{console}#/alerts")).await;
    browser.wait_text("tr[data-rule='oncall']", "Disabled").await;

    // Edit its pattern, remove its webhook, delete it.
    browser.click("tr[data-rule='oncall'] a").await;
    browser.click("input[name='pattern-0-kind'][value='InstanceFailed']").await;
    browser.type_into("#pattern-0-keywords", "failed i-").await;
    browser.choose("#pattern-0-relation", "and").await;
    browser.click("#rule-save").await;
    browser.wait_text("#rule-summary", "kinds InstanceFailed").await;
    let rule = cli_json(&dir, &["cms", "DescribeEventRuleAttribute", "--RuleName", "oncall"]);
    let pattern = &rule["Result"]["EventPattern"];
    assert_eq!(pattern["EventTypeList"]["EventTypeList"], json!(["InstanceFailed"]), "{rule}");
    assert_eq!(pattern["KeywordFilterObj"]["Relation"], "and", "{rule}");
    assert_eq!(rule["Result"]["State"], "DISABLED", "saving patterns keeps the state: {rule}");
    browser.click("button[data-remove-webhook='pager']").await;
    browser.wait_text("#rule-webhooks", "No webhook yet").await;
    browser.click("#rule-delete").await;
    browser.command(reqwest::Method::POST, "/alert/accept", Some(json!({}))).await;
    browser.wait_text("main", "No alert rule yet").await;
    let rules = cli_json(&dir, &["cms", "DescribeEventRuleList"]);
    assert!(!rules.to_string().contains("oncall"), "deleted: {rules}");

    browser.quit().await;
    drop(driver);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("the image tasks and alerts console test took {:?}", started.elapsed());
}
