//! The HAProxy load balancer: [`HaproxyLoadBalancer`] drives a running HAProxy through its
//! runtime API (the admin stats socket), with no reload ever.
//!
//! # Slots
//!
//! Each rollscale load balancer is one HAProxy backend whose servers are free slots made by
//! `server-template s 1-N 0.0.0.0:0 disabled check …`: `s1` … `sN`, in maintenance, with no
//! address. Registering an instance takes the lowest free slot and runs
//! `set server B/sK addr HOST port PORT`, `set weight B/sK W`, `set server B/sK state ready`;
//! deregistering runs `state maint`, sets the address back to `0.0.0.0:0` and frees the slot.
//! A slot is free when no instance holds it and it is in maintenance (a serving server that no
//! instance holds is never taken: in attached mode it may be the operator's).
//!
//! # Which instance holds which slot: kept in HAProxy, by name
//!
//! The mapping is written into HAProxy itself, in a string stick-table (`rollscale_slots` by
//! default, a backend holding only the table): key `<backend>/<instance id>`, `gpt0` = the slot
//! number. rollscale keeps nothing in memory, so a restarted rollscale (or a second
//! [`HaproxyLoadBalancer`] attached to the same socket) finds every registration where it left
//! it, and a call that names an instance needs nothing but its id. Keeping it by address instead
//! would make every call after a restart depend on someone first replaying each instance's
//! address from the store, and an address is not an identity (a recreated container may come
//! back on another port; a stale slot may hold an address a new instance reuses).
//!
//! Each step is ordered so that an interruption leaves a state the same call repairs:
//! registering claims the slot before configuring it (a redo finds the claim and finishes), and
//! sets the weight before `ready` (the slot never serves at a stale weight); deregistering puts
//! the slot in maintenance before releasing the claim (a redo finds the claim and finishes).
//! The mapping lives as long as the HAProxy process: a new process (managed mode after the old
//! one was stopped) starts with free slots, and registrations come back by registering again,
//! which is idempotent.
//!
//! Registrations are serialised within one [`HaproxyLoadBalancer`] (and its clones); two
//! rollscale processes registering into one backend at the same moment could pick one slot.
//!
//! # Draining
//!
//! At weight 0 HAProxy sends a server no new request, and the sessions it already has go on.
//! [`LoadBalancer::active_connections`] is the server's current sessions plus the requests
//! queued for it (`scur` + `qcur` of `show stat`), so the engine's drain waits for them. The
//! managed configuration closes the server side after each response (`option
//! http-server-close`): a keep-alive client stays connected to HAProxy, not to the instance,
//! and its next request goes to another server.
//!
//! # Health checks and retries
//!
//! Slots are `disabled` (maintenance) until used, so an empty slot runs no check. A used slot
//! is checked every second (`check inter 1s fall 2 rise 1`): with a health path
//! ([`ManagedConfig::health_path`], the group's, as the container fleet's) the check is
//! `GET path` and expects 200 (`option httpchk`); without one it is a TCP connect. A server
//! that fails two checks in a row is down and gets no traffic whatever its weight (R17), and
//! comes back at its first passing check; so an instance that dies, stops, or answers its
//! health path with an error outside a rolling update leaves the rotation within two check
//! intervals. `state ready` counts a slot up at once, as HAProxy does when a server leaves
//! maintenance, and its first check follows within a second (a failing one takes it down at
//! once): the engine registers an instance only once its own health check passed. Until a dead
//! server is down, and while an instance restarts, `retries 3` + `option redispatch 1` +
//! `retry-on conn-failure empty-response junk-response` send a request refused by one server to
//! another one (POST and PATCH are not replayed once the server may have seen them). With that
//! no request fails while at least one other server serves.
//!
//! [`LoadBalancer::check_status`] reads the checks through `show servers state`: each slot an
//! instance holds whose server is checked (not in maintenance, a check configured and enabled)
//! is passing unless HAProxy counts it down. Attached, that is whatever checks the operator's
//! configuration has; servers without `check` are left out.
//!
//! # Modes
//!
//! - Managed ([`HaproxyLoadBalancer::managed`]): rollscale writes `dir/haproxy.cfg` (see
//!   [`render_config`]), runs `haproxy -db` as its child, and stops it on
//!   [`shutdown`](HaproxyLoadBalancer::shutdown) or when the last clone is dropped, unless
//!   [`detach`](HaproxyLoadBalancer::detach)ed. An HAProxy left running by a previous rollscale
//!   (detached, or crashed) with the same configuration is adopted, registrations included.
//! - Attached ([`HaproxyLoadBalancer::attached`]): an existing HAProxy; its configuration needs
//!   the admin socket, a `server-template` backend per load balancer, and the slot table:
//!
//!   ```text
//!   backend rollscale_slots
//!       stick-table type string len 128 size 64k store gpt0
//!   ```
//!
//! # Errors
//!
//! A socket that cannot be reached or does not answer in time is [`FleetError::Unavailable`]
//! (the outcome is unknown). HAProxy refusing a command ("No such server.") is
//! [`FleetError::Failed`] with its answer.

mod cli;
mod managed;

pub use managed::{find_haproxy, render_config, ManagedConfig};

use crate::{FleetError, LoadBalancer};
use async_trait::async_trait;
use cli::{cli_word, parse_servers_state, parse_stat, parse_table, parse_weight, Cli, ServerState};
use managed::Process;
use rollscale_core::ids::{InstanceId, LoadBalancerId};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::RwLock;

/// The default name of the stick-table that records which instance holds which slot.
pub const SLOT_TABLE: &str = "rollscale_slots";

/// The default prefix of the slots' server names (`server-template s 1-64 …` makes `s1`…).
pub const SLOT_PREFIX: &str = "s";

/// The largest weight HAProxy accepts.
pub const MAX_WEIGHT: u32 = 256;

/// The longest `<backend>/<instance id>` key the slot table holds (`len 128`, less one so that a
/// key is never cut, whatever HAProxy counts).
const MAX_KEY_LEN: usize = 127;

/// How long one runtime-API command may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The state of a slot, from `show servers state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlotState {
    /// Takes no traffic: free, or being registered or deregistered.
    Maintenance,
    /// Ready, and its health check says down.
    Down,
    /// Ready and coming up.
    Starting,
    /// Ready and up: takes traffic in proportion to its weight.
    Up,
    /// Ready and going down.
    Stopping,
}

impl SlotState {
    fn of(server: &ServerState) -> SlotState {
        if server.in_maintenance() {
            return SlotState::Maintenance;
        }
        match server.op_state {
            0 => SlotState::Down,
            1 => SlotState::Starting,
            2 => SlotState::Up,
            _ => SlotState::Stopping,
        }
    }
}

/// One slot of a backend, as [`HaproxyLoadBalancer::backend_addresses`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendSlot {
    /// The slot number (`3` for `s3`).
    pub slot: u32,
    /// The HAProxy server name (`s3`).
    pub server: String,
    /// The instance holding the slot, if any.
    pub instance: Option<InstanceId>,
    /// `host:port`, or `None` while the slot has no address (`0.0.0.0:0`).
    pub address: Option<String>,
    pub weight: u32,
    pub state: SlotState,
}

/// Settings that name things inside HAProxy; cheap to clone.
#[derive(Clone, Debug)]
struct Names {
    backends: HashMap<LoadBalancerId, String>,
    slot_table: String,
    slot_prefix: String,
}

struct Shared {
    cli: Cli,
    /// Held for writing while a slot is claimed or released, for reading while one is used: a
    /// weight is never set on a slot that changes hands meanwhile.
    slots: RwLock<()>,
    /// The managed HAProxy, `None` when attached or after `shutdown`.
    process: Mutex<Option<Process>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let process = self.process.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(process) = process.as_mut() {
            process.stop_now();
        }
    }
}

/// The HAProxy load balancer driver. Cheap to clone; clones share the socket client and, in
/// managed mode, the HAProxy process, which stops when the last clone is dropped.
#[derive(Clone)]
pub struct HaproxyLoadBalancer {
    names: Names,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HaproxyLoadBalancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaproxyLoadBalancer")
            .field("socket", &self.shared.cli.socket())
            .field("backends", &self.names.backends)
            .field("slot_table", &self.names.slot_table)
            .finish_non_exhaustive()
    }
}

fn not_registered(lb: &LoadBalancerId, instance: &InstanceId) -> FleetError {
    FleetError::Failed(format!("instance {instance} is not registered with {lb}"))
}

/// Reads `host:port` (an IP address or a name to resolve) into the address HAProxy is given.
async fn resolve(address: &str) -> Result<SocketAddr, FleetError> {
    let invalid = || FleetError::Failed(format!("address `{address}` is not host:port"));
    let resolved = match address.parse::<SocketAddr>() {
        Ok(resolved) => resolved,
        Err(_) => {
            let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
            cli_word(host).map_err(|_| invalid())?;
            port.parse::<u16>().map_err(|_| invalid())?;
            tokio::net::lookup_host(address)
                .await
                .map_err(|error| FleetError::Failed(format!("cannot resolve `{address}`: {error}")))?
                .next()
                .ok_or_else(|| FleetError::Failed(format!("`{address}` resolves to no address")))?
        }
    };
    if resolved.port() == 0 {
        return Err(invalid());
    }
    Ok(resolved)
}

impl HaproxyLoadBalancer {
    /// Drives an HAProxy that runs already, through its admin socket, with `backends` naming
    /// the backend of each load balancer. Checks nothing yet: see [`verify`](Self::verify).
    pub fn attached(socket: PathBuf, backends: HashMap<LoadBalancerId, String>) -> Self {
        HaproxyLoadBalancer {
            names: Names { backends, slot_table: SLOT_TABLE.into(), slot_prefix: SLOT_PREFIX.into() },
            shared: Arc::new(Shared {
                cli: Cli::new(socket, DEFAULT_TIMEOUT),
                slots: RwLock::new(()),
                process: Mutex::new(None),
            }),
        }
    }

    /// Uses another stick-table for the slot mapping (attached mode).
    pub fn with_slot_table(mut self, table: impl Into<String>) -> Self {
        self.names.slot_table = table.into();
        self
    }

    /// Uses another prefix for the slots' server names (attached mode).
    pub fn with_slot_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.names.slot_prefix = prefix.into();
        self
    }

    /// Writes `config.dir/haproxy.cfg`, starts HAProxy on it (or adopts the one a previous
    /// rollscale left running with the same configuration) and returns once its socket
    /// answers. Each load balancer's backend is named after its id.
    pub async fn managed(config: ManagedConfig) -> Result<Self, FleetError> {
        let (process, cli) = managed::start(&config, DEFAULT_TIMEOUT).await?;
        let backends = config.frontends.iter().map(|(lb, _)| (lb.clone(), managed::backend_name(lb))).collect();
        Ok(HaproxyLoadBalancer {
            names: Names { backends, slot_table: SLOT_TABLE.into(), slot_prefix: SLOT_PREFIX.into() },
            shared: Arc::new(Shared { cli, slots: RwLock::new(()), process: Mutex::new(Some(process)) }),
        })
    }

    /// Stops the managed HAProxy and waits until it is gone. Nothing to do when attached.
    pub async fn shutdown(&self) -> Result<(), FleetError> {
        let process = self.shared.process.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        match process {
            Some(process) => process.stop(&self.shared.cli).await,
            None => Ok(()),
        }
    }

    /// Leaves the managed HAProxy running when this driver (its last clone) goes away, so
    /// that traffic keeps flowing while rollscale restarts; the next
    /// [`managed`](Self::managed) with the same configuration adopts it.
    pub fn detach(&self) {
        let process = self.shared.process.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(process) = process {
            process.detach();
        }
    }

    /// The admin socket.
    pub fn socket(&self) -> &Path {
        self.shared.cli.socket()
    }

    /// The HAProxy backend of a load balancer.
    pub fn backend_name(&self, lb: &LoadBalancerId) -> Option<&str> {
        self.names.backends.get(lb).map(String::as_str)
    }

    /// Checks that the socket answers with admin rights, that the slot table exists, and that
    /// each backend exists and has slots.
    pub async fn verify(&self) -> Result<(), FleetError> {
        self.claims(None).await?;
        for (lb, backend) in &self.names.backends {
            let slots = self.slots(cli_word(backend)?).await?;
            if slots.is_empty() {
                return Err(FleetError::Failed(format!(
                    "backend {backend} of {lb} has no `{}<n>` slots (server-template {} 1-N …)",
                    self.names.slot_prefix, self.names.slot_prefix
                )));
            }
        }
        Ok(())
    }

    /// Every slot of `lb`'s backend with the instance holding it, its address, weight and
    /// state, by slot number.
    pub async fn backend_addresses(&self, lb: &LoadBalancerId) -> Result<Vec<BackendSlot>, FleetError> {
        let backend = self.backend(lb)?;
        let _guard = self.shared.slots.read().await;
        let holders: HashMap<u32, InstanceId> =
            self.claims(Some(backend)).await?.into_iter().map(|(instance, slot)| (slot, instance)).collect();
        let slots = self.slots(backend).await?;
        Ok(slots
            .into_iter()
            .map(|(slot, server)| BackendSlot {
                slot,
                instance: holders.get(&slot).cloned(),
                address: (server.port != 0 && server.addr != "0.0.0.0").then(|| match server.addr.contains(':') {
                    true => format!("[{}]:{}", server.addr, server.port),
                    false => format!("{}:{}", server.addr, server.port),
                }),
                weight: server.weight,
                state: SlotState::of(&server),
                server: server.name,
            })
            .collect())
    }

    fn backend(&self, lb: &LoadBalancerId) -> Result<&str, FleetError> {
        let backend = self.names.backends.get(lb).ok_or_else(|| {
            FleetError::Failed(format!(
                "load balancer {lb} has no HAProxy backend (one created while rollscale runs gets its frontend \
                     and backend at the next start of rollscale up; attached: name it with --haproxy-backend)"
            ))
        })?;
        cli_word(backend)
    }

    fn table(&self) -> Result<&str, FleetError> {
        cli_word(&self.names.slot_table)
    }

    fn server(&self, backend: &str, slot: u32) -> Result<String, FleetError> {
        let server = format!("{backend}/{}{slot}", self.names.slot_prefix);
        cli_word(&server)?;
        Ok(server)
    }

    fn claim_key(backend: &str, instance: &InstanceId) -> Result<String, FleetError> {
        let key = format!("{backend}/{instance}");
        cli_word(&key)?;
        // The table keeps at most this many bytes of a key: a longer one would be cut and
        // could name two instances at once.
        if key.len() > MAX_KEY_LEN {
            return Err(FleetError::Failed(format!("`{key}` is longer than the slot table's keys ({MAX_KEY_LEN})")));
        }
        Ok(key)
    }

    /// The slot `instance` holds in `backend`, if any.
    async fn claimed_slot(&self, backend: &str, instance: &InstanceId) -> Result<Option<u32>, FleetError> {
        let key = Self::claim_key(backend, instance)?;
        let command = format!("show table {} key {key}", self.table()?);
        let answer = self.shared.cli.raw(&command).await?;
        // A key that is not in the table gets an empty answer, without the table's header.
        if answer.trim().is_empty() {
            return Ok(None);
        }
        let entries = parse_table(&command, &answer)?;
        Ok(entries.into_iter().find(|(entry, _)| *entry == key).map(|(_, slot)| slot))
    }

    /// Every claim, or those of one backend: `(instance, slot)`.
    async fn claims(&self, backend: Option<&str>) -> Result<Vec<(InstanceId, u32)>, FleetError> {
        let command = format!("show table {}", self.table()?);
        let answer = self.shared.cli.raw(&command).await?;
        let entries = parse_table(&command, &answer)?;
        Ok(entries
            .into_iter()
            .filter_map(|(key, slot)| {
                let (entry_backend, instance) = key.rsplit_once('/')?;
                if backend.is_some_and(|backend| backend != entry_backend) {
                    return None;
                }
                Some((InstanceId::parse(instance)?, slot))
            })
            .collect())
    }

    /// The slots of `backend` (its servers named `<prefix><number>`), by number.
    async fn slots(&self, backend: &str) -> Result<Vec<(u32, ServerState)>, FleetError> {
        let command = format!("show servers state {backend}");
        let answer = self.shared.cli.raw(&command).await?;
        let mut slots: Vec<(u32, ServerState)> = parse_servers_state(&command, &answer)?
            .into_iter()
            .filter_map(|server| {
                let slot = server.name.strip_prefix(self.names.slot_prefix.as_str())?.parse().ok()?;
                Some((slot, server))
            })
            .collect();
        slots.sort_by_key(|(slot, _)| *slot);
        Ok(slots)
    }

    /// The instance's slot, or the lowest free one, claimed for it.
    async fn claim(&self, backend: &str, instance: &InstanceId) -> Result<u32, FleetError> {
        if let Some(slot) = self.claimed_slot(backend, instance).await? {
            return Ok(slot);
        }
        let taken: HashSet<u32> = self.claims(Some(backend)).await?.into_iter().map(|(_, slot)| slot).collect();
        let slots = self.slots(backend).await?;
        let total = slots.len();
        let slot = slots
            .into_iter()
            .find(|(slot, server)| server.in_maintenance() && !taken.contains(slot))
            .map(|(slot, _)| slot)
            .ok_or_else(|| FleetError::Failed(format!("backend {backend} has no free slot (of {total})")))?;
        let key = Self::claim_key(backend, instance)?;
        self.shared.cli.set(&format!("set table {} key {key} data.gpt0 {slot}", self.table()?)).await?;
        Ok(slot)
    }
}

#[async_trait]
impl LoadBalancer for HaproxyLoadBalancer {
    fn name(&self) -> &'static str {
        "haproxy"
    }

    /// Puts the instance in its slot (the one it holds, or the lowest free one) at `address`
    /// with `weight`, ready. Registering again updates the address and weight.
    async fn register(
        &self,
        lb: &LoadBalancerId,
        instance: &InstanceId,
        address: &str,
        weight: u32,
    ) -> Result<(), FleetError> {
        let backend = self.backend(lb)?;
        if weight > MAX_WEIGHT {
            return Err(FleetError::Failed(format!("weight {weight} is above HAProxy's most, {MAX_WEIGHT}")));
        }
        let target = resolve(address).await?;
        let _guard = self.shared.slots.write().await;
        let slot = self.claim(backend, instance).await?;
        let server = self.server(backend, slot)?;
        let cli = &self.shared.cli;
        cli.set_addr(&server, &target.ip().to_string(), target.port()).await?;
        cli.set(&format!("set weight {server} {weight}")).await?;
        cli.set(&format!("set server {server} state ready")).await?;
        tracing::debug!(%lb, %instance, %server, %target, weight, "registered");
        Ok(())
    }

    /// Puts the instance's slot in maintenance, clears its address and frees it. Sessions still
    /// open go on until they end.
    async fn deregister(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<(), FleetError> {
        let Ok(backend) = self.backend(lb) else { return Ok(()) };
        let _guard = self.shared.slots.write().await;
        let Some(slot) = self.claimed_slot(backend, instance).await? else { return Ok(()) };
        let server = self.server(backend, slot)?;
        let cli = &self.shared.cli;
        cli.set(&format!("set server {server} state maint")).await?;
        cli.set_addr(&server, "0.0.0.0", 0).await?;
        let key = Self::claim_key(backend, instance)?;
        cli.set(&format!("clear table {} key {key}", self.table()?)).await?;
        tracing::debug!(%lb, %instance, %server, "deregistered");
        Ok(())
    }

    async fn set_weight(&self, lb: &LoadBalancerId, instance: &InstanceId, weight: u32) -> Result<(), FleetError> {
        let backend = self.backend(lb)?;
        if weight > MAX_WEIGHT {
            return Err(FleetError::Failed(format!("weight {weight} is above HAProxy's most, {MAX_WEIGHT}")));
        }
        let _guard = self.shared.slots.read().await;
        let slot = self.claimed_slot(backend, instance).await?.ok_or_else(|| not_registered(lb, instance))?;
        self.shared.cli.set(&format!("set weight {} {weight}", self.server(backend, slot)?)).await
    }

    async fn weight(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<Option<u32>, FleetError> {
        let Ok(backend) = self.backend(lb) else { return Ok(None) };
        let _guard = self.shared.slots.read().await;
        let Some(slot) = self.claimed_slot(backend, instance).await? else { return Ok(None) };
        let command = format!("get weight {}", self.server(backend, slot)?);
        let answer = self.shared.cli.raw(&command).await?;
        parse_weight(&command, &answer).map(Some)
    }

    /// The sessions the instance's server serves now plus the requests queued for it; 0 when
    /// the instance is not registered.
    async fn active_connections(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<u32, FleetError> {
        let Ok(backend) = self.backend(lb) else { return Ok(0) };
        let _guard = self.shared.slots.read().await;
        let Some(slot) = self.claimed_slot(backend, instance).await? else { return Ok(0) };
        let command = format!("show stat {backend} 4 -1");
        let answer = self.shared.cli.raw(&command).await?;
        let name = format!("{}{slot}", self.names.slot_prefix);
        let sessions = parse_stat(&command, &answer)?
            .remove(&name)
            .ok_or_else(|| FleetError::Failed(format!("backend {backend} has no server {name}")))?;
        Ok(sessions.current.saturating_add(sessions.queued))
    }

    /// HAProxy's health check of each instance registered with `lb` whose server is checked
    /// (see the module docs), by instance id; none for a load balancer without a backend.
    async fn check_status(&self, lb: &LoadBalancerId) -> Result<Vec<(InstanceId, bool)>, FleetError> {
        let Ok(backend) = self.backend(lb) else { return Ok(Vec::new()) };
        let _guard = self.shared.slots.read().await;
        let mut holders: HashMap<u32, InstanceId> =
            self.claims(Some(backend)).await?.into_iter().map(|(instance, slot)| (slot, instance)).collect();
        let mut checks: Vec<(InstanceId, bool)> = self
            .slots(backend)
            .await?
            .into_iter()
            .filter_map(|(slot, server)| Some((holders.remove(&slot)?, server.check_passing()?)))
            .collect();
        checks.sort();
        Ok(checks)
    }
}
