//! The simulated fleet and load balancer: in-memory implementations of [`Fleet`] and
//! [`LoadBalancer`](crate::LoadBalancer) with seeded randomness, configurable latency and fault
//! injection. It is the embedded default backend and the engine of large-scale tests and
//! benchmarks.
//!
//! [`SimFleet`] keeps each instance's image, packages, containers, running flag, OS, health and
//! address in memory; [`SimLoadBalancer`] keeps backend registrations and simulates connection
//! draining. Both are cheap to clone, and clones share state. The store is the truth: after a
//! restart the fleet is rebuilt from it with [`SimFleet::adopt`].
//!
//! # Operations
//!
//! Every operation waits `latency_ms` in total: half before it reaches the simulated backend
//! and the rest after, so a caller that gives up in the middle may or may not have had an
//! effect, as with a real backend. An operation on an instance that does not exist fails with
//! [`FleetError::NotFound`] (except `observe`, which reports `None`, and `remove_instance`,
//! which succeeds).
//!
//! The *apply* operations are `replace_image`, `update_containers`, `run_script` and
//! `apply_package`. Only they are subject to injected faults (below). `replace_image` to the
//! image the instance already runs, and `update_containers` with the containers it already has,
//! succeed without change (counted in [`SimCalls::noop_replace_image`] and
//! [`SimCalls::noop_update_containers`]); both set the instance's health back to `Healthy`
//! when they do change it. A real `replace_image` also forgets the installed packages: a new
//! system disk has none of them (as the container driver's new container has none).
//!
//! `create_instance` of an id that exists reports the instance as it is; otherwise it makes a
//! running, `Healthy` instance from the spec's image and containers, with its OS guessed from
//! the image id ([`OsType::guess`]) and the address `sim://<id>`. `create_image` records an
//! image `m-sim<16 hex digits of a counter>` based on the instance's current image (see
//! [`SimFleet::known_images`]); `list_images` reports those images.
//!
//! `health` is `Unhealthy` when the instance is not running or runs an image (or has a
//! container on an image) marked broken ([`SimConfig::unhealthy_images`]); otherwise it is the
//! instance's own health: `Healthy` from creation, a real `replace_image` or a changing
//! `update_containers`, or whatever [`SimFleet::set_health`] last set.
//!
//! # Faults
//!
//! An apply operation on an instance that exists, with a request the instance can run, first
//! asks whether to fail. In order:
//!
//! 1. [`SimFleet::fail_next`]: the next `n` apply operations on the instance fail;
//! 2. [`SimFleet::set_failing`] / [`SimConfig::fail_instances`]: every apply operation fails;
//! 3. [`SimConfig::fail_rate`]: the operation fails with that probability.
//!
//! A failed `replace_image` or `update_containers` returns [`FleetError::Failed`]
//! (`simulated failure: …`) and changes nothing. A failed `run_script` or `apply_package` is
//! not an error — the script ran and failed: it reports exit code 1 and `simulated failure: …`
//! as output, and records no package. The fault check comes before the no-op check: a
//! `replace_image` that would be a no-op can still fail, as a real backend call can.
//!
//! [`SimFleet::lose_next_response`] makes the next `n` apply operations that did not fail take
//! effect and then report [`FleetError::Unavailable`], the "outcome unknown" case the engine
//! must re-observe.
//!
//! A `run_script` or `apply_package` with a [`RunId`] that ran before (its outcome decided,
//! failed or not) reports that outcome again without running, deciding a fault, or taking its
//! time ([`SimCalls::replayed_runs`]).
//!
//! The random draw is replayable: it comes from a ChaCha8 generator seeded with
//! [`SimConfig::seed`], read at a position fixed by the instance (the stream) and the number of
//! apply operations that instance has had (the word position). The same seed and the same
//! operations on each instance give the same faults, however operations on different
//! instances interleave.
//!
//! # The script model
//!
//! `run_script` and `apply_package` do not run anything: they interpret the script by this
//! model. The script is read line by line; each line is trimmed, and a line is one command
//! (there are no pipes, `&&`, variables or quoting beyond what `echo` strips).
//!
//! | Line | Effect |
//! |------|--------|
//! | empty, or starting with `#` | ignored |
//! | `echo TEXT` | prints `TEXT` and a newline; one level of matching `'…'` or `"…"` around the whole `TEXT` is removed; `echo` alone prints an empty line |
//! | `exit N` | stops with exit code `N` (`exit` alone: 0); a shell script keeps `N` modulo 256; a non-number stops with exit code 2 |
//! | `sleep S` | `S` simulated seconds: a non-negative decimal, with an optional suffix `s`, `m`, `h` or `d`; several arguments add up. It takes `S` × [`SimConfig::time_scale`] real seconds. If the script's simulated time would exceed its timeout, it stops there: `timed_out` is true, the exit code is `None`, the output so far is kept, and it has taken the whole timeout |
//! | `hostname` | prints the instance id |
//! | `pwd` | prints the working directory |
//! | `cd DIR` | changes the working directory (absolute, or relative with `.` and `..`; `~` is `/root`; `cd` alone goes to `/root`). A directory that does not exist stops the script with exit code 1 and `cd: no such directory: DIR` |
//! | `fail` (exactly) | stops with exit code 1, printing `simulated failure` |
//! | anything else | prints `+ LINE`, as if run, and succeeds |
//!
//! Reaching the end of the script is exit code 0. An invalid `sleep` stops with exit code 1.
//!
//! **Working directory.** It starts at the script's `working_dir`, or `/root`. The existing
//! directories are `/` and `/root`, `/tmp`, `/opt`, `/var` and everything under them; a
//! `working_dir` elsewhere stops the script before its first line with exit code 1 and
//! `no such directory: DIR`.
//!
//! **Script types.** Linux instances run `RunShellScript` only. Windows instances (whose image
//! id contains `win`, in any case) run `RunBatScript` and `RunPowerShellScript` only. Any other
//! combination is [`FleetError::Unsupported`]: `instance i-… (linux) cannot run RunBatScript
//! scripts`. Windows scripts follow the same model, with these differences:
//!
//! - command words are matched in any case (`ECHO`, `Exit`);
//! - `exit /b N` is `exit N`, and exit codes are not reduced modulo 256;
//! - paths are Windows paths (`/` is read as `\`); the working directory starts at
//!   `C:\Windows\system32`, everything on drive `C:` exists, and `cd` alone prints the working
//!   directory;
//! - batch scripts: a leading `@` is ignored, `echo off` / `echo on` print nothing, `REM …` and
//!   `:: …` are comments, `cd /d DIR` is `cd DIR`, `timeout /t N [/nobreak]` is `sleep N`;
//! - PowerShell scripts: `Write-Output` and `Write-Host` are `echo`; `Start-Sleep N`,
//!   `Start-Sleep -Seconds N` (`-s`) and `Start-Sleep -Milliseconds N` (`-m`) sleep.
//!
//! **Package scripts.** `apply_package` runs the version's script as a `RunShellScript` in
//! `/root` on every instance, Linux or Windows, with the operation's timeout. On exit code 0,
//! `install` records the package's name and version (replacing any other version of it) and
//! `uninstall` removes the name; otherwise the packages do not change. Installing the version
//! already installed runs the script again and succeeds.
//!
//! **Output** is stdout and stderr together, cut at [`MAX_OUTPUT_BYTES`](crate::MAX_OUTPUT_BYTES)
//! on a character boundary, with `truncated` set.
//!
//! **Failing scripts.** A script (or package script) containing any of the non-empty strings in
//! [`SimConfig::fail_scripts`] is not interpreted: it reports exit code 1 and
//! `simulated failure: the script contains "…"`. So does an injected fault (above).
//!
//! # The load balancer
//!
//! [`SimLoadBalancer`] keeps, per load balancer, each registered instance's address and weight.
//! A backend with a non-zero weight serves [`SimLbConfig::connections`] connections; from the
//! moment its weight becomes 0 they fall linearly to 0 over [`SimLbConfig::drain_ms`] (setting
//! 0 again does not restart the drain). `set_weight` on an instance that is not registered
//! fails with [`FleetError::Failed`]; `weight` reports `None` and `active_connections` 0.
//! Like the fleet, it is rebuilt from the store at start with [`SimLoadBalancer::adopt`].
//!
//! Built [`with_fleet`](SimLoadBalancer::with_fleet), it checks each backend's health as a real
//! load balancer does, by the fleet's health of the instance ([`SimFleet::health_snapshot`]: a
//! stopped, unhealthy or gone instance fails), at once and without counting fleet calls. A
//! backend that fails its check gets no traffic whatever its weight: it serves no connections
//! (so its drain is over at once) and is not among [`SimLoadBalancer::serving`];
//! `check_status` reports every registered backend's check. Without a fleet it checks nothing:
//! every backend serves by its weight and `check_status` answers none.

mod lb;
mod script;

pub use lb::{SimBackend, SimLbCalls, SimLbConfig, SimLoadBalancer};

use crate::{Fleet, FleetError, InstanceObservation, InstanceSpec, PackageOperation, RunId, ScriptOutcome};
use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rollscale_core::domain::{ContainerSpec, HealthStatus, OsType};
use rollscale_core::ids::InstanceId;
use rollscale_core::params::{CommandType, ContainerUpdateType, PackageAction, ScriptSpec};
use script::Dialect;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How the simulated fleet behaves. `SimConfig::default()` is a fast, fault-free fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Real milliseconds every operation takes (half before it acts, half after). Default 5.
    pub latency_ms: u64,
    /// Probability, from 0.0 to 1.0, that an apply operation (`replace_image`,
    /// `update_containers`, `run_script`, `apply_package`) fails. Default 0.0.
    pub fail_rate: f64,
    /// Seed of the random faults: the same seed and operations give the same faults. Default 0.
    pub seed: u64,
    /// Instances on which every apply operation fails (see also [`SimFleet::set_failing`]).
    pub fail_instances: HashSet<InstanceId>,
    /// A script or package script containing any of these (non-empty) strings fails with exit
    /// code 1.
    pub fail_scripts: Vec<String>,
    /// Real seconds per simulated second of a script's `sleep`. Default 0.01, so `sleep 60`
    /// takes 0.6 s.
    pub time_scale: f64,
    /// Instances on one of these images (or with a container on one) report `Unhealthy`, as
    /// though the image were broken (see also [`SimFleet::set_unhealthy_image`]).
    pub unhealthy_images: HashSet<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            latency_ms: 5,
            fail_rate: 0.0,
            seed: 0,
            fail_instances: HashSet::new(),
            fail_scripts: Vec::new(),
            time_scale: 0.01,
            unhealthy_images: HashSet::new(),
        }
    }
}

/// How many times each operation was called, whatever its outcome (including `NotFound` and
/// injected faults), so tests can assert a step was not repeated with effect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimCalls {
    pub create: u64,
    pub remove: u64,
    pub observe: u64,
    pub replace_image: u64,
    /// `replace_image` calls that found the instance already on the image.
    pub noop_replace_image: u64,
    pub run_script: u64,
    pub apply_package: u64,
    /// `run_script` and `apply_package` calls for a run done before, answered from its record.
    pub replayed_runs: u64,
    pub update_containers: u64,
    /// `update_containers` calls that left the containers as they were.
    pub noop_update_containers: u64,
    pub create_image: u64,
    pub health: u64,
    /// `look` calls (each looks at many instances at once).
    pub look: u64,
    /// Apply operations failed by an injected fault (`fail_next`, `set_failing`, `fail_rate`).
    pub injected_failures: u64,
    /// Apply operations that took effect but reported `Unavailable` (`lose_next_response`).
    pub lost_responses: u64,
}

/// An image made by [`Fleet::create_image`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimImage {
    /// `m-sim` and 16 hex digits of a counter.
    pub id: String,
    pub name: String,
    /// The image the instance ran when the image was made.
    pub base_image_id: String,
    pub os: OsType,
}

/// One instance's state. Kept small: 10,000 of them are a normal test.
#[derive(Clone, Debug)]
struct SimInstance {
    image_id: String,
    packages: Vec<(String, String)>,
    containers: Vec<ContainerSpec>,
    running: bool,
    os: OsType,
    health: HealthStatus,
    address: String,
    /// Apply operations so far: the position of the next random fault draw.
    apply_ops: u64,
}

impl SimInstance {
    fn observation(&self, id: &InstanceId) -> InstanceObservation {
        InstanceObservation {
            id: id.clone(),
            image_id: self.image_id.clone(),
            packages: self.packages.clone(),
            containers: self.containers.clone(),
            running: self.running,
            os: self.os,
            address: self.address.clone(),
        }
    }
}

struct State {
    instances: HashMap<InstanceId, SimInstance>,
    rng: ChaCha8Rng,
    fail_rate: f64,
    failing: HashSet<InstanceId>,
    fail_next: HashMap<InstanceId, u32>,
    lose_next: HashMap<InstanceId, u32>,
    fail_scripts: Arc<[String]>,
    unhealthy_images: HashSet<String>,
    images: Vec<SimImage>,
    calls: SimCalls,
    /// The outcome of each run done, by instance and run id.
    runs: HashMap<(InstanceId, RunId), ScriptOutcome>,
}

struct Inner {
    state: Mutex<State>,
    latency_ms: AtomicU64,
    time_scale: f64,
}

/// The simulated fleet. See the [module docs](self) for its behaviour.
#[derive(Clone)]
pub struct SimFleet {
    inner: Arc<Inner>,
}

/// What an apply operation does, decided before it acts.
enum Fault {
    /// Act and report the outcome.
    None,
    /// Fail without acting; the text says why.
    Fail(String),
    /// Act, then report `Unavailable`.
    LoseResponse,
}

/// A fixed 64-bit hash of an instance id (FNV-1a): the random stream of its faults.
fn stream_of(id: &InstanceId) -> u64 {
    id.as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

fn sanitize_rate(rate: f64) -> f64 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

fn dialect_of(command_type: CommandType) -> Dialect {
    match command_type {
        CommandType::RunShellScript => Dialect::Shell,
        CommandType::RunBatScript => Dialect::Batch,
        CommandType::RunPowerShellScript => Dialect::PowerShell,
    }
}

fn can_run(os: OsType, command_type: CommandType) -> bool {
    match os {
        OsType::Linux => command_type == CommandType::RunShellScript,
        OsType::Windows => command_type != CommandType::RunShellScript,
    }
}

fn failed_outcome(reason: &str) -> ScriptOutcome {
    ScriptOutcome {
        exit_code: Some(1),
        output: format!("simulated failure: {reason}\n"),
        truncated: false,
        timed_out: false,
    }
}

fn lost(operation: &str, id: &InstanceId) -> FleetError {
    FleetError::Unavailable(format!("simulated lost response: {operation} on {id}"))
}

impl Default for SimFleet {
    fn default() -> Self {
        SimFleet::new(SimConfig::default())
    }
}

impl std::fmt::Debug for SimFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimFleet")
            .field("instances", &self.len())
            .field("latency_ms", &self.inner.latency_ms.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SimFleet {
    /// An empty fleet.
    pub fn new(config: SimConfig) -> Self {
        let SimConfig { latency_ms, fail_rate, seed, fail_instances, fail_scripts, time_scale, unhealthy_images } =
            config;
        let fail_scripts: Vec<String> = fail_scripts.into_iter().filter(|pattern| !pattern.is_empty()).collect();
        let state = State {
            instances: HashMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            fail_rate: sanitize_rate(fail_rate),
            failing: fail_instances,
            fail_next: HashMap::new(),
            lose_next: HashMap::new(),
            fail_scripts: fail_scripts.into(),
            unhealthy_images,
            images: Vec::new(),
            calls: SimCalls::default(),
            runs: HashMap::new(),
        };
        let time_scale = if time_scale.is_finite() && time_scale > 0.0 { time_scale } else { 0.0 };
        SimFleet {
            inner: Arc::new(Inner { state: Mutex::new(state), latency_ms: AtomicU64::new(latency_ms), time_scale }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Loads instances as the store knows them, replacing any of the same id (the store is the
    /// truth). Running instances come up `Healthy`; an empty address becomes `sim://<id>`.
    pub fn adopt(&self, observations: Vec<InstanceObservation>) {
        let mut state = self.state();
        for observation in observations {
            let apply_ops = state.instances.get(&observation.id).map_or(0, |instance| instance.apply_ops);
            let address =
                if observation.address.is_empty() { format!("sim://{}", observation.id) } else { observation.address };
            let instance = SimInstance {
                image_id: observation.image_id,
                packages: observation.packages,
                containers: observation.containers,
                running: observation.running,
                os: observation.os,
                health: HealthStatus::Healthy,
                address,
                apply_ops,
            };
            state.instances.insert(observation.id, instance);
        }
    }

    /// The instance as `observe` would report it, without latency or counting a call.
    pub fn snapshot(&self, id: &InstanceId) -> Option<InstanceObservation> {
        self.state().instances.get(id).map(|instance| instance.observation(id))
    }

    /// The ids of all instances, sorted.
    pub fn instance_ids(&self) -> Vec<InstanceId> {
        let mut ids: Vec<InstanceId> = self.state().instances.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// How many instances exist.
    pub fn len(&self) -> usize {
        self.state().instances.len()
    }

    /// Whether no instance exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The calls made so far.
    pub fn calls(&self) -> SimCalls {
        self.state().calls
    }

    /// How many apply operations the instance has had, or `None` if it does not exist.
    pub fn apply_op_count(&self, id: &InstanceId) -> Option<u64> {
        self.state().instances.get(id).map(|instance| instance.apply_ops)
    }

    /// The images made by `create_image`, oldest first.
    pub fn known_images(&self) -> Vec<SimImage> {
        self.state().images.clone()
    }

    /// Makes the next `n` apply operations on the instance fail (replacing any earlier count;
    /// 0 clears it). The instance need not exist yet.
    pub fn fail_next(&self, id: &InstanceId, n: u32) {
        let mut state = self.state();
        if n == 0 {
            state.fail_next.remove(id);
        } else {
            state.fail_next.insert(id.clone(), n);
        }
    }

    /// Makes the next `n` apply operations on the instance that do not fail take effect and
    /// then report [`FleetError::Unavailable`] (replacing any earlier count; 0 clears it).
    pub fn lose_next_response(&self, id: &InstanceId, n: u32) {
        let mut state = self.state();
        if n == 0 {
            state.lose_next.remove(id);
        } else {
            state.lose_next.insert(id.clone(), n);
        }
    }

    /// Makes every apply operation on the instance fail, or stops doing so. The instance need
    /// not exist yet.
    pub fn set_failing(&self, id: &InstanceId, failing: bool) {
        let mut state = self.state();
        if failing {
            state.failing.insert(id.clone());
        } else {
            state.failing.remove(id);
        }
    }

    /// Changes [`SimConfig::fail_rate`] (clamped to 0.0..=1.0).
    pub fn set_fail_rate(&self, rate: f64) {
        self.state().fail_rate = sanitize_rate(rate);
    }

    /// Sets the instance's health until an operation changes it (`replace_image` and a
    /// changing `update_containers` make it `Healthy`). Returns whether the instance exists.
    pub fn set_health(&self, id: &InstanceId, health: HealthStatus) -> bool {
        match self.state().instances.get_mut(id) {
            Some(instance) => {
                instance.health = health;
                true
            }
            None => false,
        }
    }

    /// Stops or starts the instance (a stopped instance is `Unhealthy`). Returns whether the
    /// instance exists.
    pub fn set_running(&self, id: &InstanceId, running: bool) -> bool {
        match self.state().instances.get_mut(id) {
            Some(instance) => {
                instance.running = running;
                true
            }
            None => false,
        }
    }

    /// The instance's health as [`Fleet::health`] reports it, or `None` when it does not exist;
    /// without latency or counting a call (the simulated load balancer's health check reads it).
    pub fn health_snapshot(&self, id: &InstanceId) -> Option<HealthStatus> {
        let state = self.state();
        state.instances.get(id).map(|instance| state.health_of(instance))
    }

    /// Marks an image as broken (its instances report `Unhealthy`) or not.
    pub fn set_unhealthy_image(&self, image_id: &str, unhealthy: bool) {
        let mut state = self.state();
        if unhealthy {
            state.unhealthy_images.insert(image_id.to_string());
        } else {
            state.unhealthy_images.remove(image_id);
        }
    }

    /// Changes the latency of every later operation.
    pub fn set_latency_ms(&self, latency_ms: u64) {
        self.inner.latency_ms.store(latency_ms, Ordering::Relaxed);
    }

    /// The two halves of the latency: before the operation acts, and after.
    fn latency(&self) -> (Duration, Duration) {
        let total = self.inner.latency_ms.load(Ordering::Relaxed);
        let before = total / 2;
        (Duration::from_millis(before), Duration::from_millis(total - before))
    }

    /// Waits `simulated_s` of script time, scaled to real time.
    async fn script_time(&self, simulated_s: f64) {
        let real = Duration::try_from_secs_f64(simulated_s * self.inner.time_scale).unwrap_or(Duration::ZERO);
        pause(real).await;
    }
}

async fn pause(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

impl State {
    /// Decides an apply operation's fault and counts it. The instance must exist.
    fn decide(&mut self, id: &InstanceId, operation: &str) -> Fault {
        let Some(instance) = self.instances.get_mut(id) else {
            return Fault::None;
        };
        let position = instance.apply_ops;
        instance.apply_ops += 1;

        let reason = if let Some(remaining) = self.fail_next.get_mut(id) {
            *remaining -= 1;
            if *remaining == 0 {
                self.fail_next.remove(id);
            }
            Some("injected by fail_next")
        } else if self.failing.contains(id) {
            Some("the instance is set to fail")
        } else if self.fail_rate > 0.0 && self.draw(id, position) < self.fail_rate {
            Some("random fault")
        } else {
            None
        };
        if let Some(reason) = reason {
            self.calls.injected_failures += 1;
            tracing::debug!(instance = %id, operation, reason, "sim: injected failure");
            return Fault::Fail(format!("{operation} on {id} ({reason})"));
        }
        if let Some(remaining) = self.lose_next.get_mut(id) {
            *remaining -= 1;
            if *remaining == 0 {
                self.lose_next.remove(id);
            }
            self.calls.lost_responses += 1;
            tracing::debug!(instance = %id, operation, "sim: losing the response");
            return Fault::LoseResponse;
        }
        Fault::None
    }

    /// The random number in [0, 1) of the instance's apply operation number `position`.
    fn draw(&mut self, id: &InstanceId, position: u64) -> f64 {
        self.rng.set_stream(stream_of(id));
        // `gen::<f64>` reads one u64: two 32-bit words.
        self.rng.set_word_pos(u128::from(position) * 2);
        self.rng.gen::<f64>()
    }

    fn health_of(&self, instance: &SimInstance) -> HealthStatus {
        let broken = self.unhealthy_images.contains(&instance.image_id)
            || instance.containers.iter().any(|container| self.unhealthy_images.contains(&container.image));
        if !instance.running || broken {
            HealthStatus::Unhealthy
        } else {
            instance.health
        }
    }

    /// The pattern of `fail_scripts` the script contains, if any.
    fn failing_pattern(&self, script: &str) -> Option<String> {
        self.fail_scripts.iter().find(|pattern| script.contains(pattern.as_str())).cloned()
    }
}

/// How to run one script, settled under the lock.
enum ScriptPlan {
    /// Report exit code 1 with `simulated failure: <reason>`, without running anything.
    Fail(String),
    /// Interpret the script; report `Unavailable` afterwards if `lose_response`.
    Run { lose_response: bool },
}

impl ScriptPlan {
    fn settle(state: &mut State, id: &InstanceId, operation: &str, script: &str) -> ScriptPlan {
        match state.decide(id, operation) {
            Fault::Fail(reason) => ScriptPlan::Fail(reason),
            fault => match state.failing_pattern(script) {
                Some(pattern) => ScriptPlan::Fail(format!("the script contains \"{pattern}\"")),
                None => ScriptPlan::Run { lose_response: matches!(fault, Fault::LoseResponse) },
            },
        }
    }
}

/// The synchronous parts of the operations, done under the lock between the two halves of the
/// latency.
impl SimFleet {
    fn create_now(&self, spec: &InstanceSpec) -> InstanceObservation {
        let mut state = self.state();
        state.calls.create += 1;
        let instance = state.instances.entry(spec.id.clone()).or_insert_with(|| SimInstance {
            image_id: spec.image_id.clone(),
            packages: Vec::new(),
            containers: spec.containers.clone(),
            running: true,
            os: OsType::guess(&spec.image_id),
            health: HealthStatus::Healthy,
            address: format!("sim://{}", spec.id),
            apply_ops: 0,
        });
        // As on a container host: creating an instance that exists adopts it, started.
        instance.running = true;
        instance.observation(&spec.id)
    }

    fn remove_now(&self, id: &InstanceId) {
        let mut state = self.state();
        state.calls.remove += 1;
        state.instances.remove(id);
    }

    fn observe_now(&self, id: &InstanceId) -> Option<InstanceObservation> {
        let mut state = self.state();
        state.calls.observe += 1;
        state.instances.get(id).map(|instance| instance.observation(id))
    }

    fn replace_image_now(&self, id: &InstanceId, image_id: &str) -> Result<String, FleetError> {
        let mut guard = self.state();
        let state = &mut *guard;
        state.calls.replace_image += 1;
        if !state.instances.contains_key(id) {
            return Err(FleetError::NotFound(id.clone()));
        }
        let fault = state.decide(id, "replace_image");
        if let Fault::Fail(reason) = fault {
            return Err(FleetError::Failed(format!("simulated failure: {reason}")));
        }
        let Some(instance) = state.instances.get_mut(id) else {
            return Err(FleetError::NotFound(id.clone()));
        };
        if instance.image_id == image_id {
            state.calls.noop_replace_image += 1;
        } else {
            instance.image_id = image_id.to_string();
            instance.os = OsType::guess(image_id);
            instance.health = HealthStatus::Healthy;
            // A new system disk: what was installed on the old one is gone.
            instance.packages.clear();
        }
        let address = instance.address.clone();
        match fault {
            Fault::LoseResponse => Err(lost("replace_image", id)),
            _ => Ok(address),
        }
    }

    fn plan_run_script(&self, id: &InstanceId, script: &ScriptSpec) -> Result<ScriptPlan, FleetError> {
        let mut state = self.state();
        state.calls.run_script += 1;
        let Some(instance) = state.instances.get(id) else {
            return Err(FleetError::NotFound(id.clone()));
        };
        if !can_run(instance.os, script.command_type) {
            return Err(FleetError::Unsupported(format!(
                "instance {id} ({}) cannot run {} scripts",
                instance.os, script.command_type
            )));
        }
        Ok(ScriptPlan::settle(&mut state, id, "run_script", &script.script))
    }

    fn plan_apply_package(&self, id: &InstanceId, operation: &PackageOperation) -> Result<ScriptPlan, FleetError> {
        let mut state = self.state();
        state.calls.apply_package += 1;
        if !state.instances.contains_key(id) {
            return Err(FleetError::NotFound(id.clone()));
        }
        Ok(ScriptPlan::settle(&mut state, id, "apply_package", &operation.script))
    }

    /// The outcome of `run` on the instance if it ran before, counted as a replayed call of
    /// `operation`.
    fn replay(&self, id: &InstanceId, run: &RunId, package: bool) -> Option<ScriptOutcome> {
        let mut state = self.state();
        let outcome = state.runs.get(&(id.clone(), run.clone())).cloned()?;
        if package {
            state.calls.apply_package += 1;
        } else {
            state.calls.run_script += 1;
        }
        state.calls.replayed_runs += 1;
        Some(outcome)
    }

    /// Remembers what `run` did on the instance.
    fn remember(&self, id: &InstanceId, run: &RunId, outcome: &ScriptOutcome) {
        self.state().runs.insert((id.clone(), run.clone()), outcome.clone());
    }

    /// Records a package script's success on the instance.
    fn record_package(&self, id: &InstanceId, operation: &PackageOperation) -> Result<(), FleetError> {
        let mut state = self.state();
        // The instance may have been removed while its script ran.
        let Some(instance) = state.instances.get_mut(id) else {
            return Err(FleetError::NotFound(id.clone()));
        };
        let packages = &mut instance.packages;
        match operation.action {
            PackageAction::Install => match packages.iter_mut().find(|(name, _)| *name == operation.name) {
                Some(entry) => entry.1.clone_from(&operation.version),
                None => packages.push((operation.name.clone(), operation.version.clone())),
            },
            PackageAction::Uninstall => packages.retain(|(name, _)| *name != operation.name),
        }
        Ok(())
    }

    /// Interprets a script by the model and waits its simulated time.
    async fn interpret(&self, script: &str, context: script::Context<'_>) -> ScriptOutcome {
        let run = script::run(script, &context);
        self.script_time(run.simulated_s).await;
        run.outcome
    }

    async fn run_script_planned(
        &self,
        id: &InstanceId,
        script: &ScriptSpec,
        plan: ScriptPlan,
        run: &RunId,
    ) -> Result<ScriptOutcome, FleetError> {
        let context = script::Context {
            dialect: dialect_of(script.command_type),
            hostname: id.as_str(),
            working_dir: script.working_dir.as_deref(),
            timeout_s: script.timeout_s,
        };
        self.run_planned(id, run, plan, "run_script", &script.script, context, || Ok(())).await
    }

    async fn apply_package_planned(
        &self,
        id: &InstanceId,
        operation: &PackageOperation,
        plan: ScriptPlan,
        run: &RunId,
    ) -> Result<ScriptOutcome, FleetError> {
        let context = script::Context {
            dialect: Dialect::Shell,
            hostname: id.as_str(),
            working_dir: None,
            timeout_s: operation.timeout_s,
        };
        let record = || self.record_package(id, operation);
        self.run_planned(id, run, plan, "apply_package", &operation.script, context, record).await
    }

    /// Runs `script` as `plan` decided (or fails it without running it), calls `succeeded` when
    /// it exits 0, remembers the outcome under `run`, and loses the response when the plan says
    /// so: what a script and a package operation have in common.
    #[allow(clippy::too_many_arguments)]
    async fn run_planned(
        &self,
        id: &InstanceId,
        run: &RunId,
        plan: ScriptPlan,
        operation: &str,
        script: &str,
        context: script::Context<'_>,
        succeeded: impl FnOnce() -> Result<(), FleetError>,
    ) -> Result<ScriptOutcome, FleetError> {
        let lose_response = match plan {
            ScriptPlan::Fail(reason) => {
                let outcome = failed_outcome(&reason);
                self.remember(id, run, &outcome);
                return Ok(outcome);
            }
            ScriptPlan::Run { lose_response } => lose_response,
        };
        let outcome = self.interpret(script, context).await;
        if outcome.exit_code == Some(0) {
            succeeded()?;
        }
        self.remember(id, run, &outcome);
        if lose_response {
            Err(lost(operation, id))
        } else {
            Ok(outcome)
        }
    }

    fn update_containers_now(
        &self,
        id: &InstanceId,
        update_type: ContainerUpdateType,
        containers: &[ContainerSpec],
    ) -> Result<String, FleetError> {
        let mut guard = self.state();
        let state = &mut *guard;
        state.calls.update_containers += 1;
        if !state.instances.contains_key(id) {
            return Err(FleetError::NotFound(id.clone()));
        }
        let fault = state.decide(id, "update_containers");
        if let Fault::Fail(reason) = fault {
            return Err(FleetError::Failed(format!("simulated failure: {reason}")));
        }
        let Some(instance) = state.instances.get_mut(id) else {
            return Err(FleetError::NotFound(id.clone()));
        };
        let updated = update_type.apply(&instance.containers, containers);
        if updated == instance.containers {
            state.calls.noop_update_containers += 1;
        } else {
            instance.containers = updated;
            instance.health = HealthStatus::Healthy;
        }
        let address = instance.address.clone();
        match fault {
            Fault::LoseResponse => Err(lost("update_containers", id)),
            _ => Ok(address),
        }
    }

    fn create_image_now(&self, id: &InstanceId, image_name: &str) -> Result<String, FleetError> {
        let mut state = self.state();
        state.calls.create_image += 1;
        let Some(instance) = state.instances.get(id) else {
            return Err(FleetError::NotFound(id.clone()));
        };
        let (base_image_id, os) = (instance.image_id.clone(), instance.os);
        let image_id = format!("m-sim{:016x}", state.images.len() + 1);
        state.images.push(SimImage { id: image_id.clone(), name: image_name.to_string(), base_image_id, os });
        Ok(image_id)
    }

    fn health_now(&self, id: &InstanceId) -> Result<HealthStatus, FleetError> {
        let mut state = self.state();
        state.calls.health += 1;
        match state.instances.get(id) {
            Some(instance) => Ok(state.health_of(instance)),
            None => Err(FleetError::NotFound(id.clone())),
        }
    }
}

#[async_trait]
impl Fleet for SimFleet {
    fn adopt_recorded(&self, instances: Vec<InstanceObservation>) {
        self.adopt(instances);
    }

    fn name(&self) -> &'static str {
        "sim"
    }

    async fn create_instance(&self, spec: &InstanceSpec) -> Result<InstanceObservation, FleetError> {
        let (before, after) = self.latency();
        pause(before).await;
        let observation = self.create_now(spec);
        pause(after).await;
        Ok(observation)
    }

    async fn remove_instance(&self, id: &InstanceId) -> Result<(), FleetError> {
        let (before, after) = self.latency();
        pause(before).await;
        self.remove_now(id);
        pause(after).await;
        Ok(())
    }

    async fn observe(&self, id: &InstanceId) -> Result<Option<InstanceObservation>, FleetError> {
        let (before, after) = self.latency();
        pause(before).await;
        let observation = self.observe_now(id);
        pause(after).await;
        Ok(observation)
    }

    async fn replace_image(&self, id: &InstanceId, image_id: &str) -> Result<String, FleetError> {
        let (before, after) = self.latency();
        pause(before).await;
        let result = self.replace_image_now(id, image_id);
        pause(after).await;
        result
    }

    async fn run_script(&self, id: &InstanceId, script: &ScriptSpec, run: &RunId) -> Result<ScriptOutcome, FleetError> {
        let (before, after) = self.latency();
        pause(before).await;
        let result = match self.replay(id, run, false) {
            Some(outcome) => Ok(outcome),
            None => match self.plan_run_script(id, script) {
                Ok(plan) => self.run_script_planned(id, script, plan, run).await,
                Err(error) => Err(error),
            },
        };
        pause(after).await;
        result
    }

    async fn apply_package(
        &self,
        id: &InstanceId,
        operation: &PackageOperation,
        run: &RunId,
    ) -> Result<ScriptOutcome, FleetError> {
        let (before, after) = self.latency();
        pause(before).await;
        let result = match self.replay(id, run, true) {
            Some(outcome) => Ok(outcome),
            None => match self.plan_apply_package(id, operation) {
                Ok(plan) => self.apply_package_planned(id, operation, plan, run).await,
                Err(error) => Err(error),
            },
        };
        pause(after).await;
        result
    }

    async fn update_containers(
        &self,
        id: &InstanceId,
        update_type: ContainerUpdateType,
        containers: &[ContainerSpec],
    ) -> Result<String, FleetError> {
        let (before, after) = self.latency();
        pause(before).await;
        let result = self.update_containers_now(id, update_type, containers);
        pause(after).await;
        result
    }

    async fn create_image(&self, id: &InstanceId, image_name: &str) -> Result<String, FleetError> {
        let (before, after) = self.latency();
        pause(before).await;
        let result = self.create_image_now(id, image_name);
        pause(after).await;
        result
    }

    /// The images made by `create_image`, newest first (no latency: a listing of the
    /// backend's catalog, not an operation on an instance).
    async fn list_images(&self) -> Result<Vec<crate::LocalImage>, FleetError> {
        let images = self.state().images.clone();
        Ok(images
            .into_iter()
            .rev()
            .map(|image| crate::LocalImage {
                id: image.id.clone(),
                tags: vec![image.id],
                created: 0,
                size: 0,
                os: image.os,
            })
            .collect())
    }

    async fn find_image_named(&self, image_name: &str) -> Result<Option<String>, FleetError> {
        Ok(self.state().images.iter().rev().find(|image| image.name == image_name).map(|image| image.id.clone()))
    }

    async fn health(&self, id: &InstanceId) -> Result<HealthStatus, FleetError> {
        let (before, after) = self.latency();
        pause(before).await;
        let result = self.health_now(id);
        pause(after).await;
        result
    }

    async fn look(&self, ids: &[InstanceId]) -> Vec<(InstanceId, Result<crate::Sighting, FleetError>)> {
        // One look at all of them: the latency of one call, one lock.
        let (before, after) = self.latency();
        pause(before).await;
        let sightings = {
            let mut state = self.state();
            state.calls.look += 1;
            ids.iter()
                .map(|id| {
                    let sighting = match state.instances.get(id) {
                        None => crate::Sighting::default(),
                        Some(instance) => crate::Sighting {
                            observation: Some(instance.observation(id)),
                            health: instance.running.then(|| state.health_of(instance)),
                        },
                    };
                    (id.clone(), Ok(sighting))
                })
                .collect()
        };
        pause(after).await;
        sightings
    }

    async fn inject_fault(&self, id: &InstanceId, fault: crate::Fault) -> Result<(), FleetError> {
        if self.snapshot(id).is_none() {
            return Err(FleetError::NotFound(id.clone()));
        }
        match fault {
            crate::Fault::FailNext { times } => self.fail_next(id, times),
            crate::Fault::Crash => {
                self.set_running(id, false);
            }
            crate::Fault::Unhealthy => {
                self.set_health(id, HealthStatus::Unhealthy);
            }
            crate::Fault::Clear => {
                self.fail_next(id, 0);
                self.set_failing(id, false);
                self.set_health(id, HealthStatus::Healthy);
                self.set_running(id, true);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> InstanceId {
        InstanceId::parse(text).expect("valid id")
    }

    #[test]
    fn stream_hash_is_fixed() {
        // FNV-1a of the empty string is the offset basis; a stable function of the id.
        assert_eq!(stream_of(&id("i-a")), stream_of(&id("i-a")));
        assert_ne!(stream_of(&id("i-a")), stream_of(&id("i-b")));
        let empty =
            "".bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        assert_eq!(empty, 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn draws_depend_on_seed_instance_and_position_only() {
        let fleet = SimFleet::new(SimConfig { seed: 7, ..SimConfig::default() });
        let mut state = fleet.state();
        let a0 = state.draw(&id("i-a"), 0);
        let b0 = state.draw(&id("i-b"), 0);
        let a1 = state.draw(&id("i-a"), 1);
        assert_eq!(state.draw(&id("i-a"), 0), a0);
        assert_eq!(state.draw(&id("i-a"), 1), a1);
        assert_ne!(a0, b0);
        assert_ne!(a0, a1);
        assert!((0.0..1.0).contains(&a0));
        drop(state);
        let other = SimFleet::new(SimConfig { seed: 8, ..SimConfig::default() });
        assert_ne!(other.state().draw(&id("i-a"), 0), a0);
    }

    #[test]
    fn fail_rate_is_clamped() {
        assert_eq!(sanitize_rate(f64::NAN), 0.0);
        assert_eq!(sanitize_rate(-1.0), 0.0);
        assert_eq!(sanitize_rate(2.0), 1.0);
        assert_eq!(sanitize_rate(0.25), 0.25);
    }

    #[test]
    fn script_types_by_os() {
        assert!(can_run(OsType::Linux, CommandType::RunShellScript));
        assert!(!can_run(OsType::Linux, CommandType::RunBatScript));
        assert!(!can_run(OsType::Linux, CommandType::RunPowerShellScript));
        assert!(!can_run(OsType::Windows, CommandType::RunShellScript));
        assert!(can_run(OsType::Windows, CommandType::RunBatScript));
        assert!(can_run(OsType::Windows, CommandType::RunPowerShellScript));
    }

    #[test]
    fn config_deserializes_with_defaults() {
        let config: SimConfig = serde_json::from_str(r#"{"seed": 3, "fail_instances": ["i-x"]}"#).expect("config");
        assert_eq!(config.seed, 3);
        assert_eq!(config.latency_ms, 5);
        assert_eq!(config.time_scale, 0.01);
        assert!(config.fail_instances.contains(&id("i-x")));
    }
}
