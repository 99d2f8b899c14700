//! The container fleet: [`DockerFleet`] runs instances as containers through the Docker Engine
//! API ([`bollard`]), against Docker or Podman's Docker-compatible service
//! (`podman system service`, see `scripts/containers` and docs/design.md).
//!
//! # Instances
//!
//! An **ECS** instance is one container named `rollscale-<instance id>` (the prefix is
//! [`DockerConfig::label_prefix`]), made from [`InstanceSpec::image_id`] (a local image such as
//! `localhost/rollscale-demo:v1`; nothing is pulled), with the command, environment and port
//! of `containers[0]` when the spec gives one. Its port is published on
//! [`DockerConfig::network_host`] (`127.0.0.1`) with a host port chosen by the backend; the
//! observation's `address` is `127.0.0.1:<host port>`. Without a port in the spec, every TCP
//! port the image exposes is published and the lowest is the address. Containers run with an
//! init process (`--init`), so an image whose command ignores `SIGTERM` as PID 1 (busybox
//! `httpd`) still stops at once.
//!
//! An **ECI** instance (a container group) is several containers sharing one network
//! namespace: the first, `rollscale-<id>`, owns it and publishes the ports of every container;
//! the others are `rollscale-<id>--<container name>` with `network_mode: container:rollscale-<id>`.
//!
//! Every container carries labels (`rollscale.` + key): `instance`, `group`, `group-type`,
//! `index` (0 for the main container), `spec` (its [`ContainerSpec`] as JSON), `made-from`
//! (the ID its image had when it was made), and on the main container `image` (the instance's
//! image id), `containers` (the instance's container specs as JSON) and `ports` (the published
//! container ports, the address first). All keys are always set, so labels inherited from an
//! image made by `create_image` never leak. They let
//! [`DockerFleet::list_managed`] re-adopt what exists after a restart of rollscale, and
//! `create_instance` of an existing instance adopts it (starting what is stopped) instead of
//! duplicating it.
//!
//! # Swaps, and what a crash leaves
//!
//! A container that must be recreated (`replace_image`, `update_containers`) is first created,
//! not started, as `<name>.next` with every setting; then the old one is stopped and removed,
//! the new one renamed and started. Every mutating call first *repairs* the instance: a
//! `<name>.next` whose `<name>` exists is an unfinished attempt and is removed; one whose
//! `<name>` is gone is renamed and started, finishing the swap. So a crash at any point leaves
//! either the old or the new container, never none, and redoing the call finishes it. A stopped
//! main container (a crash between the rename and the start, or a host that rebooted) is
//! started, then the group's other containers: those missing after a crash are made again from
//! the main container's `containers` label, stopped ones are started, and running ones are
//! restarted to join the restarted main container's network namespace. Calls on one instance are serialised within one `DockerFleet` (its
//! clones included); two processes must not act on one instance at once (the engine's store
//! already ensures one worker per instance). `observe` and `health` of an instance caught
//! between the two halves of a swap wait for its lock and finish the swap;
//! [`DockerFleet::list_managed`] only reads, reporting such an instance from its replacement.
//!
//! # Operations
//!
//! - `replace_image`: a no-op when the instance already runs the image (its `image` label names
//!   it and the container shows nothing else, see `observe`; "replace with X" is idempotent by
//!   name, not by what X names now), except that an instance
//!   that was not running is started (above) and waited for as after a replacement, so a redo
//!   after a crash never reports a stopped instance as done. Otherwise the container is
//!   swapped (above) keeping its name, labels, command, environment and **host ports** (the
//!   previous host port is asked for explicitly, so a load balancer entry stays valid; if the
//!   port was taken meanwhile, a new one is chosen, a warning is logged and `observe` reports
//!   the new address). Then it waits until the container runs ([`DockerConfig::start_timeout`])
//!   and, when [`DockerConfig::health_path`] is set, until `GET` of it answers 200
//!   ([`DockerConfig::health_timeout`]); otherwise it fails with [`FleetError::Failed`] (the
//!   container stays on the new image). **Packages are reset**: a new image is a new system
//!   disk, so the package file (below) is the new image's own (none, for the demo images).
//!   ECI instances change by `update_containers` only (`replace_image` is
//!   [`FleetError::Unsupported`] for them).
//! - `create_instance` waits only until the containers run (a container that does not is
//!   logged, not failed: the instance exists and `health` reports it), never for the health
//!   check: the engine's reconciler polls `health` with its own timeout and keeps the instance
//!   out of the load balancers until it says `Healthy`, so nothing waits twice.
//! - `run_script`: `exec` of `sh -c SCRIPT`, once per [`RunId`](crate::RunId) (see the `exec`
//!   submodule for the wrapper and its record of runs in the container): the working
//!   directory (default `/root`, or `/`; one that does not exist: `sh` says so and exits 1), the
//!   timeout (the script's process group is killed, `timed_out` is set and the exit code is
//!   `None`), stdout and stderr together up to [`MAX_OUTPUT_BYTES`](crate::MAX_OUTPUT_BYTES)
//!   with `truncated`. `RunBatScript` is [`FleetError::Unsupported`]; `RunPowerShellScript` runs
//!   with `pwsh -Command` if the container has `pwsh`, else is unsupported. A stopped instance
//!   fails with [`FleetError::Failed`].
//! - `apply_package`: the version's script runs like a shell script in `/root` with the
//!   operation's timeout; on exit code 0 the installed versions are written to
//!   `/etc/rollscale/packages` in the main container (`name<TAB>version` lines, sorted), which
//!   `observe` reads through the archive API (so also when stopped). An image made by
//!   `create_image` keeps the file, and instances made from it report its packages.
//! - `update_containers` (ECI only): `RenewUpdate` replaces the container specs,
//!   `IncrementalUpdate` merges the given fields by name (the simulated fleet's rule). If the
//!   main container, the names or order of the containers, or the set of ports change, the
//!   whole group is recreated (the others share the main container's network namespace);
//!   otherwise only the changed containers are swapped. Unchanged specs are a no-op (a stopped
//!   group is started and waited for, as `replace_image` does). Limits:
//!   only image, command, environment and port are modelled; a container of the group that is
//!   deleted by hand is made again from the main container's `containers` label, which a
//!   change of one non-main container does not rewrite.
//! - `create_image`: `commit` of the main container (not paused) to
//!   `localhost/rollscale-image:<name>`, the name reduced to `[A-Za-z0-9_.-]`; returns that
//!   reference, which `create_instance` and `replace_image` accept as an image id.
//! - `health`: `Unhealthy` unless every container of the instance runs and, when a health path
//!   is set and the instance publishes a port, `GET` answers 200.
//! - `observe`: `os` is always Linux. `image_id` (and, for a container group, each container's
//!   image) is the image the container actually runs: the one rollscale made it from (its
//!   `image` label or spec), unless the container shows another. It does when it was created
//!   from another image reference than that (the backend completes `x:v1` as
//!   `localhost/x:v1`, which is the same), or runs another image ID than its `made-from` label
//!   records (made again out of band from a name that meanwhile names another image: then the
//!   ID it runs is reported). So an image changed out of band shows as drift from the record,
//!   and the next `replace_image` (or container-group update) changes it back.
//! - `look` (the health checker's): one list of every container carrying this fleet's labels
//!   (names, labels, state, image and published ports) instead of an inspect of each instance;
//!   then, for each instance asked about, [`LOOK_CONCURRENCY`](crate::LOOK_CONCURRENCY) at a
//!   time, its package file is read (one archive read, so that a removed package shows) and,
//!   when it runs, its health path is asked. A stopped instance is reported `running: false`
//!   without a health check; one without containers is gone (`observation: None`); one this
//!   fleet is changing right now (a call holds its lock) is `Unavailable`, its state unknown
//!   for the moment. It changes nothing, except for an instance of which only the replacement
//!   of a swap is left (after a crash): that one is settled as `observe` settles it.
//!
//! # Errors
//!
//! Inspecting and listing containers go through a small reader of our own (the `api` submodule) with
//! lenient types, because Podman reports container states Docker does not have
//! (`stopping`, `stopped`), which `bollard`'s closed enums refuse. Everything else is `bollard`.
//!
//! A backend that cannot be reached, a timeout, or an answer that cannot be read is
//! [`FleetError::Unavailable`]; a missing instance is [`FleetError::NotFound`] (`observe`:
//! `None`; `remove_instance`: success); a missing image is
//! `FleetError::Failed("image X not found locally")`; any other refusal is
//! [`FleetError::Failed`] with the backend's message.

mod api;
mod exec;
mod layout;
mod probe;

pub use probe::http_get;

use crate::{Fleet, FleetError, InstanceObservation, InstanceSpec, PackageOperation, RunId, ScriptOutcome};
use api::{Endpoint, Inspect, Reader, Summary};
use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerConfig, ContainerCreateBody, HostConfig, PortBinding, PortMap};
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListImagesOptions, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder, RestartContainerOptionsBuilder,
    StartContainerOptions, StopContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker};
use futures_util::StreamExt;
use layout::{Labels, Layout, Member, Recorded, NEXT_SUFFIX, PACKAGES_FILE};
use rollscale_core::domain::{ContainerSpec, GroupType, HealthStatus, OsType};
use rollscale_core::ids::InstanceId;
use rollscale_core::params::{CommandType, ContainerUpdateType, PackageAction, ScriptSpec};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The Docker API version asked for: Podman 4.3 speaks 1.41.
const API_VERSION: ClientVersion = ClientVersion { major_version: 1, minor_version: 41 };

/// How `create_member` reports a name taken meanwhile.
const NAME_IN_USE: &str = "the container name is already in use";

/// Where `create_image` puts its images.
pub const IMAGE_REPOSITORY: &str = "localhost/rollscale-image";

/// How [`DockerFleet`] makes and checks containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerConfig {
    /// The host address published ports are bound to, and instances' addresses use.
    /// Default `127.0.0.1` (loopback only).
    pub network_host: String,
    /// An HTTP path (e.g. `/health`) that answers 200 when an instance is healthy; `None`: a
    /// running instance is healthy. Default `None`.
    pub health_path: Option<String>,
    /// How long `replace_image` and `update_containers` wait for the health path to answer
    /// 200 (`create_instance` does not wait for it). Default 30 s.
    pub health_timeout: Duration,
    /// How long they wait for the containers to run. Default 30 s.
    pub start_timeout: Duration,
    /// How long a container is given to stop before it is killed. Default 5 s.
    pub stop_timeout: Duration,
    /// How long one API request may take before the backend counts as unavailable
    /// (a commit can take a while). Default 120 s.
    pub request_timeout: Duration,
    /// The prefix of container names (`<prefix>-<id>`) and labels (`<prefix>.instance`).
    /// Default `rollscale`.
    pub label_prefix: String,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            network_host: "127.0.0.1".to_string(),
            health_path: None,
            health_timeout: Duration::from_secs(30),
            start_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(120),
            label_prefix: "rollscale".to_string(),
        }
    }
}

pub use crate::LocalImage;

/// The container fleet. Cheap to clone; clones share the connection and the per-instance locks.
#[derive(Clone)]
pub struct DockerFleet {
    inner: Arc<Inner>,
}

struct Inner {
    docker: Docker,
    /// Inspects and lists (see the `api` submodule).
    reader: Reader,
    endpoint: String,
    config: DockerConfig,
    labels: Labels,
    locks: Mutex<HashMap<InstanceId, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for DockerFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerFleet")
            .field("endpoint", &self.inner.endpoint)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// One container of an existing instance, from the list of its containers.
#[derive(Clone, Debug)]
struct Present {
    name: String,
    running: bool,
    recorded: Recorded,
    /// The image reference it was created from and the ID of the image it runs.
    image: String,
    image_id: String,
}

impl Present {
    fn of(labels: &Labels, summary: &Summary) -> Present {
        Present {
            name: summary.name(),
            running: summary.running(),
            recorded: Recorded::read(labels, &summary.labels()),
            image: summary.image.clone().unwrap_or_default(),
            image_id: summary.image_id.clone().unwrap_or_default(),
        }
    }
}

/// An existing instance: its main container, inspected, and its other containers.
#[derive(Clone, Debug)]
struct Existing {
    primary: Inspect,
    recorded: Recorded,
    /// The other containers (not `.next` ones), by index.
    others: Vec<Present>,
    /// Whether [`DockerFleet::repair`] had to start (or make) a container of it.
    started: bool,
}

impl Existing {
    fn running(&self) -> bool {
        self.primary.running() && self.others.iter().all(|other| other.running)
    }

    fn is_group(&self) -> bool {
        self.recorded.group_type == Some(GroupType::ECI)
    }

    /// The image the instance runs: its container's (see [`layout::running_image`]); a container
    /// group's is the one recorded (its containers have their own).
    fn image(&self) -> String {
        let recorded = &self.recorded;
        if self.is_group() && !recorded.specs.is_empty() {
            return if recorded.image_id.is_empty() { self.primary.image() } else { recorded.image_id.clone() };
        }
        layout::running_image(&recorded.image_id, &recorded.made_from, &self.primary.image(), self.primary.image_id())
    }

    /// The container specs as the containers say, with the images they run (ECI), or as the
    /// instance was made (ECS).
    fn containers(&self) -> Vec<ContainerSpec> {
        if !self.is_group() {
            return self.recorded.specs.clone();
        }
        let running = |spec: &Option<ContainerSpec>, made_from: &str, name: &str, image_id: &str| {
            spec.clone().map(|spec| ContainerSpec {
                image: layout::running_image(&spec.image, made_from, name, image_id),
                ..spec
            })
        };
        let primary =
            running(&self.recorded.spec, &self.recorded.made_from, &self.primary.image(), self.primary.image_id());
        let others =
            self.others.iter().filter_map(|o| running(&o.recorded.spec, &o.recorded.made_from, &o.image, &o.image_id));
        primary.into_iter().chain(others).collect()
    }

    /// The container specs as the labels record them (ECI), or as the instance was made (ECS).
    fn recorded_containers(&self) -> Vec<ContainerSpec> {
        if !self.is_group() {
            return self.recorded.specs.clone();
        }
        self.recorded.spec.iter().cloned().chain(self.others.iter().filter_map(|o| o.recorded.spec.clone())).collect()
    }
}

fn status_of(error: &DockerError) -> Option<u16> {
    match error {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn is_not_found(error: &DockerError) -> bool {
    status_of(error) == Some(404)
}

fn is_name_conflict(error: &DockerError) -> bool {
    match error {
        DockerError::DockerResponseServerError { status_code, message } => {
            *status_code == 409 || message.contains("already in use")
        }
        _ => false,
    }
}

fn is_port_conflict(error: &DockerError) -> bool {
    match error {
        DockerError::DockerResponseServerError { message, .. } => {
            message.contains("address already in use") || message.contains("port is already allocated")
        }
        _ => false,
    }
}

/// Maps a backend error: unreachable or unreadable is `Unavailable`, the rest `Failed`.
fn fail(context: &str, error: DockerError) -> FleetError {
    match error {
        DockerError::DockerResponseServerError { status_code, message } => {
            FleetError::Failed(format!("{context}: {message} (status {status_code})"))
        }
        DockerError::RequestTimeoutError
        | DockerError::IOError { .. }
        | DockerError::HyperResponseError { .. }
        | DockerError::HyperLegacyError { .. }
        | DockerError::SocketNotFoundError(_)
        | DockerError::JsonDataError { .. }
        | DockerError::JsonSerdeError { .. } => FleetError::Unavailable(format!("{context}: {error}")),
        other => FleetError::Failed(format!("{context}: {other}")),
    }
}

/// The published host ports of a container, by container port: what it runs with, else what
/// its configuration asks for (a stopped container reports no runtime ports).
fn published(inspect: &Inspect) -> HashMap<u16, (String, String)> {
    let mut ports = HashMap::new();
    let mut read = |map: &api::Ports| {
        for (key, bindings) in map {
            let Some(port) = layout::parse_port_key(key) else { continue };
            let binding =
                bindings.iter().flatten().find(|b| b.host_port.as_deref().is_some_and(|p| !p.is_empty() && p != "0"));
            if let Some(binding) = binding {
                ports.entry(port).or_insert_with(|| {
                    (binding.host_ip.clone().unwrap_or_default(), binding.host_port.clone().unwrap_or_default())
                });
            }
        }
    };
    if let Some(map) = inspect.network_settings.as_ref().and_then(|settings| settings.ports.as_ref()) {
        read(map);
    }
    if let Some(map) = inspect.host_config.as_ref().and_then(|host| host.port_bindings.as_ref()) {
        read(map);
    }
    ports
}

impl DockerFleet {
    /// A fleet speaking to `endpoint`: `unix:///path/to.sock` (or a bare `/path`), or
    /// `tcp://127.0.0.1:PORT` (`http://` too). This does not contact the backend; see
    /// [`DockerFleet::ping`].
    pub fn connect(endpoint: &str, config: DockerConfig) -> Result<Self, FleetError> {
        let timeout = config.request_timeout.as_secs().max(1);
        let Some(parsed) = Endpoint::parse(endpoint) else {
            return Err(FleetError::Failed(format!(
                "unsupported container endpoint {endpoint:?}: use unix:///path or tcp://127.0.0.1:port"
            )));
        };
        let docker = match &parsed {
            Endpoint::Unix(path) => Docker::connect_with_unix(&path.to_string_lossy(), timeout, &API_VERSION),
            Endpoint::Tcp(address) => Docker::connect_with_http(address, timeout, &API_VERSION),
        }
        .map_err(|error| fail(&format!("connecting to {endpoint}"), error))?;
        let version = format!("{}.{}", API_VERSION.major_version, API_VERSION.minor_version);
        let reader = Reader::new(parsed, &version, config.request_timeout);
        let labels = config.labels();
        Ok(DockerFleet {
            inner: Arc::new(Inner {
                docker,
                reader,
                endpoint: endpoint.to_string(),
                config,
                labels,
                locks: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Checks that the backend answers.
    pub async fn ping(&self) -> Result<(), FleetError> {
        self.docker().ping().await.map(|_| ()).map_err(|error| fail(&format!("ping {}", self.inner.endpoint), error))
    }

    pub fn config(&self) -> &DockerConfig {
        &self.inner.config
    }

    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The name of the instance's (main) container.
    pub fn container_name(&self, id: &InstanceId) -> String {
        self.inner.labels.primary_name(id)
    }

    /// Every instance whose containers carry this fleet's labels, as `observe` reports them,
    /// sorted by id: what `rollscale up` re-adopts after a restart.
    pub async fn list_managed(&self) -> Result<Vec<InstanceObservation>, FleetError> {
        let key = self.inner.labels.instance();
        let summaries = self.inner.reader.list(&key).await?;
        let mut ids: Vec<InstanceId> = summaries
            .iter()
            .filter_map(|summary| {
                let id = InstanceId::parse(summary.labels.as_ref()?.get(&key)?)?;
                let name = summary.name();
                let primary = self.container_name(&id);
                (name == primary || name.strip_suffix(NEXT_SUFFIX) == Some(primary.as_str())).then_some(id)
            })
            .collect();
        ids.sort();
        ids.dedup();
        let mut observations = Vec::with_capacity(ids.len());
        for id in ids {
            // Read only: an instance whose swap is unfinished is reported from its replacement,
            // and the next mutating call (or `observe`) finishes the swap.
            let mut existing = self.load(&id).await?;
            if existing.is_none() {
                existing = self.load_as(&id, &format!("{}{NEXT_SUFFIX}", self.container_name(&id))).await?;
            }
            if let Some(existing) = existing {
                observations.push(self.observation(&id, &existing).await?);
            }
        }
        Ok(observations)
    }

    fn docker(&self) -> &Docker {
        &self.inner.docker
    }

    fn labels(&self) -> &Labels {
        &self.inner.labels
    }

    fn lock(&self, id: &InstanceId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(id.clone()).or_default().clone()
    }

    async fn inspect(&self, name: &str) -> Result<Option<Inspect>, FleetError> {
        self.inner.reader.inspect(name).await
    }

    /// All containers of the instance (any state), with their names.
    async fn containers_of(&self, id: &InstanceId) -> Result<Vec<Summary>, FleetError> {
        self.inner.reader.list(&format!("{}={id}", self.labels().instance())).await
    }

    /// The instance as it is, changing nothing.
    async fn load(&self, id: &InstanceId) -> Result<Option<Existing>, FleetError> {
        self.load_as(id, &self.container_name(id)).await
    }

    /// The instance as it is, with `primary_name` taken as its main container.
    async fn load_as(&self, id: &InstanceId, primary_name: &str) -> Result<Option<Existing>, FleetError> {
        let Some(primary) = self.inspect(primary_name).await? else {
            return Ok(None);
        };
        let recorded = Recorded::read(self.labels(), &primary.labels());
        let others = match recorded.group_type {
            Some(GroupType::ECI) => self.others_of(id, primary_name, &self.containers_of(id).await?),
            _ => Vec::new(),
        };
        Ok(Some(Existing { primary, recorded, others, started: false }))
    }

    /// A group's containers other than its main one (`primary_name`), by index, among
    /// `summaries` (the instance's containers).
    fn others_of(&self, id: &InstanceId, primary_name: &str, summaries: &[Summary]) -> Vec<Present> {
        let mut others: Vec<Present> = summaries
            .iter()
            .filter(|summary| {
                let name = summary.name();
                name != primary_name && name != self.container_name(id) && !name.ends_with(NEXT_SUFFIX)
            })
            .map(|summary| Present::of(self.labels(), summary))
            .collect();
        others.sort_by_key(|other| other.recorded.index);
        others
    }

    /// The instance as it is; if only its main container's replacement exists (a swap in
    /// progress or interrupted), waits for the instance's lock and repairs it first.
    async fn load_settled(&self, id: &InstanceId) -> Result<Option<Existing>, FleetError> {
        if let Some(existing) = self.load(id).await? {
            return Ok(Some(existing));
        }
        if self.inspect(&format!("{}{NEXT_SUFFIX}", self.container_name(id))).await?.is_none() {
            return Ok(None);
        }
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.repair(id).await
    }

    /// Finishes or undoes what an interrupted call left (see the module docs), then loads the
    /// instance. Call with the instance's lock held.
    async fn repair(&self, id: &InstanceId) -> Result<Option<Existing>, FleetError> {
        let summaries = self.containers_of(id).await?;
        let names: Vec<String> = summaries.iter().map(Summary::name).collect();
        let primary_name = self.container_name(id);
        // The main container's swap first: the others may need it to exist.
        let mut nexts: Vec<&String> = names.iter().filter(|name| name.ends_with(NEXT_SUFFIX)).collect();
        nexts.sort_by_key(|name| **name != format!("{primary_name}{NEXT_SUFFIX}"));
        for next in nexts {
            let base = &next[..next.len() - NEXT_SUFFIX.len()];
            if names.iter().any(|name| name == base) {
                tracing::info!(%id, container = %next, "removing an unfinished replacement");
                self.remove_container(next).await?;
            } else {
                tracing::info!(%id, container = %base, "finishing an interrupted replacement");
                if let Err(error) = self.rename(next, base).await {
                    // Finished meanwhile by someone else: fine.
                    if self.inspect(next).await?.is_some() {
                        return Err(error);
                    }
                }
                self.start(base).await?;
            }
        }
        let Some(existing) = self.load(id).await? else {
            // Containers of a group whose main container is gone are left-overs.
            for name in names.iter().filter(|name| **name != primary_name) {
                self.remove_container(name).await?;
            }
            return Ok(None);
        };
        // A stopped main container (a crash between renaming a replacement and starting it,
        // or a host that rebooted) is started first: the others join its network namespace.
        let mut started = false;
        if !existing.primary.running() {
            tracing::info!(%id, container = %primary_name, "starting a stopped instance");
            self.start(&primary_name).await?;
            started = true;
        }
        // A group's containers missing after an interrupted recreation of the group.
        let group_id = existing.recorded.group_id.clone();
        if let Some(group_id) = group_id
            .filter(|_| existing.recorded.group_type == Some(GroupType::ECI) && !existing.recorded.specs.is_empty())
        {
            let layout = Layout::group(
                self.labels(),
                id.clone(),
                group_id,
                &existing.recorded.image_id,
                existing.recorded.specs.clone(),
            )?;
            for member in layout.members.iter().skip(1) {
                if !existing.others.iter().any(|other| other.name == member.name) {
                    tracing::info!(%id, container = %member.name, "making a missing container of the group again");
                    self.create_member(&layout, member, &member.name, &[]).await?;
                    self.start(&member.name).await?;
                    started = true;
                }
            }
        }
        for other in &existing.others {
            if !other.running {
                tracing::info!(%id, container = %other.name, "starting a stopped container of the group");
                self.start(&other.name).await?;
                started = true;
            } else if started && !existing.primary.running() {
                // It outlived the main container's network namespace; the one it shares now
                // is the restarted main container's.
                self.restart(&other.name).await?;
            }
        }
        if !started {
            return Ok(Some(existing));
        }
        Ok(self.load(id).await?.map(|existing| Existing { started: true, ..existing }))
    }

    async fn observation(&self, id: &InstanceId, existing: &Existing) -> Result<InstanceObservation, FleetError> {
        Ok(InstanceObservation {
            id: id.clone(),
            image_id: existing.image(),
            packages: self.read_packages(existing.primary.id.as_deref().unwrap_or(&self.container_name(id))).await?,
            containers: existing.containers(),
            running: existing.running(),
            os: OsType::Linux,
            address: self.address(existing),
        })
    }

    /// `host:port` of the first published port, or empty.
    fn address(&self, existing: &Existing) -> String {
        let Some(port) = existing.recorded.ports.first() else {
            return String::new();
        };
        match published(&existing.primary).get(port) {
            Some((host_ip, host_port)) => {
                let host = if host_ip.is_empty() || host_ip == "0.0.0.0" {
                    self.inner.config.network_host.as_str()
                } else {
                    host_ip.as_str()
                };
                format!("{host}:{host_port}")
            }
            None => String::new(),
        }
    }

    async fn read_packages(&self, container: &str) -> Result<Vec<(String, String)>, FleetError> {
        let options = DownloadFromContainerOptionsBuilder::new().path(PACKAGES_FILE).build();
        let mut stream = self.docker().download_from_container(container, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(error) if is_not_found(&error) => return Ok(Vec::new()),
                Err(error) => return Err(fail(&format!("reading the packages of {container}"), error)),
            }
        }
        Ok(layout::untar_single_file(&archive)
            .map(|content| layout::parse_packages(&String::from_utf8_lossy(&content)))
            .unwrap_or_default())
    }

    async fn write_packages(&self, container: &str, packages: &[(String, String)]) -> Result<(), FleetError> {
        let content = layout::format_packages(packages);
        let script = format!(
            "mkdir -p \"$(dirname {PACKAGES_FILE})\" && printf '%s' \"$1\" > {PACKAGES_FILE}.tmp && mv {PACKAGES_FILE}.tmp {PACKAGES_FILE}"
        );
        let outcome = exec::quick(self.docker(), container, &["sh", "-c", &script, "rollscale", &content])
            .await
            .map_err(|error| fail(&format!("recording the packages of {container}"), error))?;
        if outcome.exit_code == Some(0) {
            Ok(())
        } else {
            Err(FleetError::Failed(format!("could not record the packages of {container}: {}", outcome.output.trim())))
        }
    }

    /// Checks that every image exists locally and settles the ports: without ports in the
    /// spec, the main image's exposed TCP ports, lowest first.
    async fn prepare(&self, layout: &mut Layout) -> Result<(), FleetError> {
        let members = layout.members.clone();
        for (position, member) in members.iter().enumerate() {
            let image = match self.docker().inspect_image(&member.image).await {
                Ok(image) => image,
                Err(error) if is_not_found(&error) => {
                    return Err(FleetError::Failed(format!("image {} not found locally", member.image)))
                }
                Err(error) => return Err(fail(&format!("inspecting image {}", member.image), error)),
            };
            if let Some(image_id) = image.id.clone().filter(|image_id| !image_id.is_empty()) {
                layout.image_ids.insert(member.image.clone(), image_id);
            }
            if position == 0 && layout.ports.is_empty() {
                let exposed = image.config.as_ref().and_then(|config| config.exposed_ports.as_ref());
                let mut ports: Vec<u16> = exposed
                    .map(|map| map.keys().filter_map(|key| layout::parse_port_key(key)).collect())
                    .unwrap_or_default();
                ports.sort_unstable();
                ports.dedup();
                layout.ports = ports;
            }
        }
        Ok(())
    }

    /// Creates (does not start) one container of the layout under `name`. The main container
    /// publishes the layout's ports with the given host ports (`""`: the backend chooses).
    async fn create_member(
        &self,
        layout: &Layout,
        member: &Member,
        name: &str,
        host_ports: &[(u16, String)],
    ) -> Result<(), FleetError> {
        let config = &self.inner.config;
        let primary = member.index == 0;
        let mut host_config = HostConfig { init: Some(true), ..HostConfig::default() };
        let mut exposed_ports = None;
        if primary {
            let mut bindings = PortMap::new();
            let mut exposed = HashMap::new();
            for port in &layout.ports {
                let host_port = host_ports.iter().find(|(p, _)| p == port).map(|(_, h)| h.clone()).unwrap_or_default();
                bindings.insert(
                    layout::port_key(*port),
                    Some(vec![PortBinding { host_ip: Some(config.network_host.clone()), host_port: Some(host_port) }]),
                );
                exposed.insert(layout::port_key(*port), HashMap::new());
            }
            host_config.port_bindings = Some(bindings);
            exposed_ports = Some(exposed);
        } else {
            host_config.network_mode = Some(format!("container:{}", self.container_name(&layout.id)));
        }
        let body = ContainerCreateBody {
            image: Some(member.image.clone()),
            cmd: (!member.command.is_empty()).then(|| member.command.clone()),
            env: (!member.env.is_empty()).then(|| member.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(layout.labels_of(self.labels(), member)),
            exposed_ports,
            host_config: Some(host_config),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        match self.docker().create_container(Some(options), body).await {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => {
                Err(FleetError::Failed(format!("image {} not found locally", member.image)))
            }
            Err(error) if is_name_conflict(&error) => Err(FleetError::Failed(format!("{name}: {NAME_IN_USE}"))),
            Err(error) => Err(fail(&format!("creating container {name}"), error)),
        }
    }

    async fn start(&self, name: &str) -> Result<(), FleetError> {
        match self.docker().start_container(name, None::<StartContainerOptions>).await {
            Ok(()) => Ok(()),
            Err(error) if status_of(&error) == Some(304) => Ok(()),
            Err(error) => Err(fail(&format!("starting {name}"), error)),
        }
    }

    async fn restart(&self, name: &str) -> Result<(), FleetError> {
        let seconds = i32::try_from(self.inner.config.stop_timeout.as_secs()).unwrap_or(i32::MAX);
        let options = RestartContainerOptionsBuilder::new().t(seconds).build();
        self.docker()
            .restart_container(name, Some(options))
            .await
            .map_err(|error| fail(&format!("restarting {name}"), error))
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), FleetError> {
        let options = RenameContainerOptionsBuilder::new().name(to).build();
        self.docker()
            .rename_container(from, options)
            .await
            .map_err(|error| fail(&format!("renaming {from} to {to}"), error))
    }

    /// Stops (gracefully, then by force) and removes a container; absent is fine.
    async fn remove_container(&self, name: &str) -> Result<(), FleetError> {
        let seconds = i32::try_from(self.inner.config.stop_timeout.as_secs()).unwrap_or(i32::MAX);
        let stop = StopContainerOptionsBuilder::new().t(seconds).build();
        match self.docker().stop_container(name, Some(stop)).await {
            Ok(()) => {}
            Err(error) if is_not_found(&error) => return Ok(()),
            Err(error) if status_of(&error) == Some(304) => {}
            Err(error) => tracing::warn!(container = name, %error, "stopping failed; removing by force"),
        }
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        match self.docker().remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(fail(&format!("removing {name}"), error)),
        }
    }

    /// Replaces the instance's containers by the layout's: the main container is swapped
    /// (keeping host ports where it can), the others are removed and made again.
    async fn recreate(&self, existing: &Existing, layout: &Layout) -> Result<(), FleetError> {
        let primary = &layout.members[0];
        let next = format!("{}{NEXT_SUFFIX}", primary.name);
        self.remove_container(&next).await?;
        let host_ports = carried_ports(&existing.primary, &existing.recorded.ports, &layout.ports);
        self.create_member(layout, primary, &next, &host_ports).await?;
        for other in existing.others.iter().rev() {
            self.remove_container(&other.name).await?;
        }
        self.remove_container(&primary.name).await?;
        self.rename(&next, &primary.name).await?;
        match self.docker().start_container(&primary.name, None::<StartContainerOptions>).await {
            Ok(()) => {}
            Err(error) if is_port_conflict(&error) && !host_ports.is_empty() => {
                tracing::warn!(
                    instance = %layout.id, %error,
                    "the previous host port is taken; publishing on a new one (the address changes)"
                );
                self.remove_container(&primary.name).await?;
                self.create_member(layout, primary, &primary.name, &[]).await?;
                self.start(&primary.name).await?;
            }
            Err(error) => return Err(fail(&format!("starting {}", primary.name), error)),
        }
        for member in layout.members.iter().skip(1) {
            self.remove_container(&member.name).await?;
            self.create_member(layout, member, &member.name, &[]).await?;
            self.start(&member.name).await?;
        }
        Ok(())
    }

    /// Swaps one non-main container of a group.
    async fn swap_member(&self, layout: &Layout, member: &Member) -> Result<(), FleetError> {
        let next = format!("{}{NEXT_SUFFIX}", member.name);
        self.remove_container(&next).await?;
        self.create_member(layout, member, &next, &[]).await?;
        self.remove_container(&member.name).await?;
        self.rename(&next, &member.name).await?;
        self.start(&member.name).await
    }

    /// Waits until the instance's containers run (at most [`DockerConfig::start_timeout`], less
    /// when the main container exits); not for its health check.
    async fn wait_running(&self, id: &InstanceId) -> Result<Existing, FleetError> {
        let config = &self.inner.config;
        let until = Instant::now() + config.start_timeout;
        loop {
            let Some(existing) = self.load(id).await? else {
                return Err(FleetError::NotFound(id.clone()));
            };
            if existing.running() {
                return Ok(existing);
            }
            let exited = matches!(existing.primary.status(), "exited" | "stopped" | "dead");
            if exited || Instant::now() >= until {
                let code = existing.primary.exit_code();
                let what = if exited { format!("exited with code {code}") } else { "is not running".to_string() };
                return Err(FleetError::Failed(format!(
                    "instance {id} {what} after {} s",
                    config.start_timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the instance runs and (with a health path) answers 200; returns its address.
    /// `Err` says why not.
    async fn wait_ready(&self, id: &InstanceId) -> Result<String, FleetError> {
        let config = &self.inner.config;
        let existing = self.wait_running(id).await?;
        let address = self.address(&existing);
        let Some(path) = config.health_path.as_deref().filter(|_| !address.is_empty()) else {
            return Ok(address);
        };
        let until = Instant::now() + config.health_timeout;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let last = match http_get(&address, path, left.min(Duration::from_secs(2))).await {
                Ok((200, _)) => return Ok(address),
                Ok((status, _)) => format!("status {status}"),
                Err(error) => error.to_string(),
            };
            if Instant::now() >= until {
                return Err(FleetError::Failed(format!(
                    "instance {id} did not answer 200 on {path} within {} s (last: {last})",
                    config.health_timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The instance's health check: `Unhealthy` unless every container of it runs and, when a
    /// health path is set and it publishes a port, `GET` of the path answers 200.
    async fn check(&self, existing: &Existing) -> HealthStatus {
        if !existing.running() {
            return HealthStatus::Unhealthy;
        }
        let config = &self.inner.config;
        let address = self.address(existing);
        let Some(path) = config.health_path.as_deref().filter(|_| !address.is_empty()) else {
            return HealthStatus::Healthy;
        };
        let timeout = config.health_timeout.min(Duration::from_secs(5));
        match http_get(&address, path, timeout).await {
            Ok((200, _)) => HealthStatus::Healthy,
            _ => HealthStatus::Unhealthy,
        }
    }

    /// Whether a call of this fleet is changing the instance now (it holds the instance's lock).
    fn busy(&self, id: &InstanceId) -> bool {
        let locks = self.inner.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.get(id).is_some_and(|lock| lock.try_lock().is_err())
    }

    /// One look at the instance, from `summaries`, the list of its containers (see `look`).
    async fn sight(&self, id: &InstanceId, summaries: &[Summary]) -> Result<crate::Sighting, FleetError> {
        if self.busy(id) {
            return Err(FleetError::Unavailable(format!("instance {id} is being changed")));
        }
        let primary_name = self.container_name(id);
        let Some(primary) = summaries.iter().find(|summary| summary.name() == primary_name) else {
            let next = format!("{primary_name}{NEXT_SUFFIX}");
            if !summaries.iter().any(|summary| summary.name() == next) {
                return Ok(crate::Sighting::default());
            }
            // Only a replacement: a swap a crash left unfinished, settled as `observe` does.
            return match self.load_settled(id).await? {
                Some(existing) => self.sighting(id, &existing).await,
                None => Ok(crate::Sighting::default()),
            };
        };
        let primary = primary.as_inspect();
        let recorded = Recorded::read(self.labels(), &primary.labels());
        let others = match recorded.group_type {
            Some(GroupType::ECI) => self.others_of(id, &primary_name, summaries),
            _ => Vec::new(),
        };
        self.sighting(id, &Existing { primary, recorded, others, started: false }).await
    }

    /// The instance as `observe` reports it and, when it runs, its health check.
    async fn sighting(&self, id: &InstanceId, existing: &Existing) -> Result<crate::Sighting, FleetError> {
        let health = async {
            match existing.running() {
                true => Some(self.check(existing).await),
                false => None,
            }
        };
        let (observation, health) = tokio::join!(self.observation(id, existing), health);
        Ok(crate::Sighting { observation: Some(observation?), health })
    }

    /// The running main container, or why a script cannot run.
    async fn running_primary(&self, id: &InstanceId) -> Result<String, FleetError> {
        let name = self.container_name(id);
        match self.inspect(&name).await? {
            None => Err(FleetError::NotFound(id.clone())),
            Some(inspect) if !inspect.running() => Err(FleetError::Failed(format!("instance {id} is not running"))),
            Some(_) => Ok(name),
        }
    }

    async fn has_pwsh(&self, container: &str) -> Result<bool, FleetError> {
        let outcome = exec::quick(self.docker(), container, &["sh", "-c", "command -v pwsh >/dev/null 2>&1"])
            .await
            .map_err(|error| fail(&format!("looking for pwsh in {container}"), error))?;
        Ok(outcome.exit_code == Some(0))
    }
}

/// The host ports to ask for: the previous one of each container port still published, and
/// the previous address's port for the new address if its container port changed.
fn carried_ports(previous: &Inspect, previous_ports: &[u16], ports: &[u16]) -> Vec<(u16, String)> {
    let old = published(previous);
    let mut carried: Vec<(u16, String)> =
        ports.iter().filter_map(|port| old.get(port).map(|(_, host)| (*port, host.clone()))).collect();
    if let (Some(first), Some(old_first)) = (ports.first(), previous_ports.first()) {
        if !carried.iter().any(|(port, _)| port == first) {
            if let Some((_, host)) = old.get(old_first) {
                if !carried.iter().any(|(_, used)| used == host) {
                    carried.push((*first, host.clone()));
                }
            }
        }
    }
    carried
}

fn script_seconds(timeout_s: u32) -> Duration {
    Duration::from_secs(u64::from(timeout_s.max(1)))
}

#[async_trait]
impl Fleet for DockerFleet {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn reachable(&self) -> Result<(), FleetError> {
        self.ping().await
    }

    async fn create_instance(&self, spec: &InstanceSpec) -> Result<InstanceObservation, FleetError> {
        let lock = self.lock(&spec.id);
        let _guard = lock.lock().await;
        if self.repair(&spec.id).await?.is_none() {
            let mut layout = Layout::of_spec(self.labels(), spec)?;
            self.prepare(&mut layout).await?;
            let primary = &layout.members[0];
            match self.create_member(&layout, primary, &primary.name, &[]).await {
                Ok(()) => {
                    for member in layout.members.iter().skip(1) {
                        self.create_member(&layout, member, &member.name, &[]).await?;
                    }
                }
                // Made meanwhile by another rollscale: adopt it.
                Err(FleetError::Failed(message)) if message.ends_with(NAME_IN_USE) => {}
                Err(error) => return Err(error),
            }
        }
        // Adopt: start whatever is stopped, main container first.
        let Some(existing) = self.load(&spec.id).await? else {
            return Err(FleetError::Unavailable(format!("instance {} vanished while it was created", spec.id)));
        };
        if existing.recorded.index != 0 || existing.recorded.group_id.is_none() {
            return Err(FleetError::Failed(format!(
                "container {} exists but is not a rollscale instance",
                self.container_name(&spec.id)
            )));
        }
        if !existing.primary.running() {
            self.start(&self.container_name(&spec.id)).await?;
        }
        for other in existing.others.iter().filter(|other| !other.running) {
            self.start(&other.name).await?;
        }
        // Only until it runs: whether it is healthy is the caller's question (`health`), asked
        // with the caller's own patience (the engine's reconciler gates new instances on it).
        if let Err(error) = self.wait_running(&spec.id).await {
            tracing::warn!(instance = %spec.id, %error, "the new instance is not running");
        }
        let Some(existing) = self.load(&spec.id).await? else {
            return Err(FleetError::NotFound(spec.id.clone()));
        };
        self.observation(&spec.id, &existing).await
    }

    async fn remove_instance(&self, id: &InstanceId) -> Result<(), FleetError> {
        let lock = self.lock(id);
        let guard = lock.lock().await;
        let primary = self.container_name(id);
        let mut names: Vec<String> = self.containers_of(id).await?.iter().map(Summary::name).collect();
        if !names.contains(&primary) {
            names.push(primary.clone());
        }
        // The others share the main container's network namespace: they go first.
        let others = format!("{primary}--");
        names.sort_by_key(|name| match name {
            name if name.starts_with(&others) => 0,
            name if *name != primary => 1,
            _ => 2,
        });
        for name in &names {
            self.remove_container(name).await?;
        }
        drop(guard);
        self.inner.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(id);
        Ok(())
    }

    async fn observe(&self, id: &InstanceId) -> Result<Option<InstanceObservation>, FleetError> {
        match self.load_settled(id).await? {
            Some(existing) => Ok(Some(self.observation(id, &existing).await?)),
            None => Ok(None),
        }
    }

    async fn replace_image(&self, id: &InstanceId, image_id: &str) -> Result<String, FleetError> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let Some(existing) = self.repair(id).await? else {
            return Err(FleetError::NotFound(id.clone()));
        };
        let recorded = &existing.recorded;
        if recorded.group_type == Some(GroupType::ECI) && !recorded.specs.is_empty() {
            return Err(FleetError::Unsupported(format!(
                "instance {id} is a container group: its images change by a container-group update"
            )));
        }
        // The image it runs, not only the one it was asked to run: one made again out of band
        // from another image is not "already on" the image.
        if existing.image() == image_id {
            // Already on the image; a stopped instance (repaired above) must also be ready.
            if existing.started || !existing.running() {
                return self.wait_ready(id).await;
            }
            return Ok(self.address(&existing));
        }
        let Some(group_id) = recorded.group_id.clone() else {
            return Err(FleetError::Failed(format!("container {} has no group label", self.container_name(id))));
        };
        let spec = InstanceSpec {
            id: id.clone(),
            group_id,
            group_type: recorded.group_type.unwrap_or(GroupType::ECS),
            image_id: image_id.to_string(),
            containers: recorded.specs.clone(),
        };
        let mut layout = Layout::of_spec(self.labels(), &spec)?;
        self.prepare(&mut layout).await?;
        self.recreate(&existing, &layout).await?;
        self.wait_ready(id).await
    }

    async fn run_script(&self, id: &InstanceId, script: &ScriptSpec, run: &RunId) -> Result<ScriptOutcome, FleetError> {
        let container = self.running_primary(id).await?;
        let command: Vec<&str> = match script.command_type {
            CommandType::RunShellScript => vec!["sh", "-c", &script.script],
            CommandType::RunPowerShellScript if self.has_pwsh(&container).await? => {
                vec!["pwsh", "-NoLogo", "-NoProfile", "-NonInteractive", "-Command", &script.script]
            }
            other => {
                return Err(FleetError::Unsupported(format!(
                    "instance {id} ({}) cannot run {other} scripts",
                    OsType::Linux
                )))
            }
        };
        let timeout = script_seconds(script.timeout_s);
        exec::run(self.docker(), &container, &command, script.working_dir.as_deref(), timeout, Some(run))
            .await
            .map_err(|error| fail(&format!("running a script on {id}"), error))
    }

    async fn apply_package(
        &self,
        id: &InstanceId,
        operation: &PackageOperation,
        run: &RunId,
    ) -> Result<ScriptOutcome, FleetError> {
        if !layout::valid_package_field(&operation.name) || !layout::valid_package_field(&operation.version) {
            return Err(FleetError::Failed(format!(
                "package {:?} version {:?} cannot be recorded (empty, or a tab or line break)",
                operation.name, operation.version
            )));
        }
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let container = self.running_primary(id).await?;
        let outcome = exec::run(
            self.docker(),
            &container,
            &["sh", "-c", &operation.script],
            None,
            script_seconds(operation.timeout_s),
            Some(run),
        )
        .await
        .map_err(|error| fail(&format!("running a package script on {id}"), error))?;
        if outcome.exit_code == Some(0) {
            let mut packages = self.read_packages(&container).await?;
            packages.retain(|(name, _)| *name != operation.name);
            if operation.action == PackageAction::Install {
                packages.push((operation.name.clone(), operation.version.clone()));
            }
            self.write_packages(&container, &packages).await?;
        }
        Ok(outcome)
    }

    async fn update_containers(
        &self,
        id: &InstanceId,
        update_type: ContainerUpdateType,
        containers: &[ContainerSpec],
    ) -> Result<String, FleetError> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let Some(existing) = self.repair(id).await? else {
            return Err(FleetError::NotFound(id.clone()));
        };
        if existing.recorded.group_type != Some(GroupType::ECI) {
            return Err(FleetError::Unsupported(format!("instance {id} is not a container group (ECI)")));
        }
        let Some(group_id) = existing.recorded.group_id.clone() else {
            return Err(FleetError::Failed(format!("container {} has no group label", self.container_name(id))));
        };
        // What the containers run, against what the update asks of the recorded ones: a container
        // made again out of band from another image is changed back.
        let current = existing.containers();
        let desired = update_type.apply(&existing.recorded_containers(), containers);
        if desired == current {
            if existing.started || !existing.running() {
                return self.wait_ready(id).await;
            }
            return Ok(self.address(&existing));
        }
        let mut layout =
            Layout::group(self.labels(), id.clone(), group_id, &existing.recorded.image_id, desired.clone())?;
        self.prepare(&mut layout).await?;
        let names = |specs: &[ContainerSpec]| specs.iter().map(|spec| spec.name.clone()).collect::<Vec<_>>();
        let whole = current.is_empty()
            || desired[0] != current[0]
            || names(&desired) != names(&current)
            || layout.ports != existing.recorded.ports
            || existing.others.len() + 1 != current.len();
        if whole {
            self.recreate(&existing, &layout).await?;
        } else {
            for (member, before) in layout.members.iter().zip(&current).skip(1) {
                if member.spec.as_ref() != Some(before) {
                    self.swap_member(&layout, member).await?;
                }
            }
        }
        self.wait_ready(id).await
    }

    async fn create_image(&self, id: &InstanceId, image_name: &str) -> Result<String, FleetError> {
        let container = self.container_name(id);
        if self.inspect(&container).await?.is_none() {
            return Err(FleetError::NotFound(id.clone()));
        }
        let tag = layout::sanitize_tag(image_name);
        let options = CommitContainerOptionsBuilder::new()
            .container(&container)
            .repo(IMAGE_REPOSITORY)
            .tag(&tag)
            .comment(&format!("rollscale image {image_name:?} from {id}"))
            .pause(false)
            .build();
        self.docker()
            .commit_container(options, ContainerConfig::default())
            .await
            .map_err(|error| fail(&format!("committing {container}"), error))?;
        Ok(format!("{IMAGE_REPOSITORY}:{tag}"))
    }

    /// The commit `create_image` tags with the name, if it exists.
    async fn find_image_named(&self, image_name: &str) -> Result<Option<String>, FleetError> {
        let reference = format!("{IMAGE_REPOSITORY}:{}", layout::sanitize_tag(image_name));
        Ok(self.find_image(&reference).await?.map(|_| reference))
    }

    /// The local images, newest first.
    async fn list_images(&self) -> Result<Vec<LocalImage>, FleetError> {
        let images = self
            .docker()
            .list_images(None::<ListImagesOptions>)
            .await
            .map_err(|error| fail("listing images", error))?;
        let mut images: Vec<LocalImage> = images
            .into_iter()
            .map(|image| LocalImage {
                id: image.id,
                tags: image.repo_tags,
                created: image.created,
                size: image.size,
                os: OsType::Linux,
            })
            .collect();
        images.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.tags.cmp(&b.tags)));
        Ok(images)
    }

    async fn health(&self, id: &InstanceId) -> Result<HealthStatus, FleetError> {
        let Some(existing) = self.load_settled(id).await? else {
            return Err(FleetError::NotFound(id.clone()));
        };
        Ok(self.check(&existing).await)
    }

    /// One list of every container carrying this fleet's labels stands for an inspect of each
    /// instance; then, for each instance looked at (a few at a time), its package file is read
    /// and, when it runs, its health path asked (see the module docs).
    async fn look(&self, ids: &[InstanceId]) -> Vec<(InstanceId, Result<crate::Sighting, FleetError>)> {
        let key = self.labels().instance();
        let listed = match self.inner.reader.list(&key).await {
            Ok(listed) => listed,
            Err(error) => return ids.iter().map(|id| (id.clone(), Err(error.clone()))).collect(),
        };
        let mut by_instance: HashMap<String, Vec<Summary>> = HashMap::new();
        for summary in listed {
            if let Some(instance) = summary.labels.as_ref().and_then(|labels| labels.get(&key)).cloned() {
                by_instance.entry(instance).or_default().push(summary);
            }
        }
        let none = Vec::new();
        let (by_instance, none) = (&by_instance, &none);
        futures_util::stream::iter(ids.iter().cloned())
            .map(|id| async move {
                let summaries = by_instance.get(id.as_str()).unwrap_or(none);
                let sighting = self.sight(&id, summaries).await;
                (id, sighting)
            })
            .buffered(crate::LOOK_CONCURRENCY)
            .collect()
            .await
    }
}
