//! `rollscale up --fleet docker`: instances as containers through the Docker Engine API
//! (Docker, or Podman's Docker-compatible service), behind a real HAProxy driven through its
//! runtime API (started and stopped by rollscale, or attached to an existing one).
//!
//! At start the store is the truth and the backends are brought in line with it: every
//! instance the store has is looked up on the container host (a container that vanished is
//! made again, with the same identity, from what the store says; one that is not running is
//! started, as after a reboot of the host; one that cannot be is marked Unhealthy and the
//! others go on), its address is refreshed, and every load-balancer registration is made again
//! at the weight the store has (HAProxy forgets its registrations when it restarts;
//! re-registering is idempotent).

use anyhow::{bail, Context};
use rollscale_core::domain::{GroupType, HealthStatus, Instance, LifecycleState, ScalingGroup};
use rollscale_core::ids::{InstanceId, LoadBalancerId, ScalingGroupId};
use rollscale_engine::{Engine, Service};
use rollscale_fleet::docker::{DockerConfig, DockerFleet};
use rollscale_fleet::haproxy::{HaproxyLoadBalancer, ManagedConfig};
use rollscale_fleet::{Fleet, FleetError, InstanceObservation, InstanceSpec};
use rollscale_store::Store;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct RealArgs {
    /// The Docker Engine API of the container host: `unix:///path.sock` or
    /// `tcp://127.0.0.1:PORT` (Docker's, or Podman's: `scripts/containers service SOCKET`).
    #[arg(long, env = "DOCKER_HOST", default_value = "unix:///run/podman/podman.sock")]
    pub docker_host: String,
    /// An HTTP path that answers 200 when an instance is healthy (the demo images serve
    /// `/health`); without it a running container counts as healthy. The managed HAProxy's
    /// health checks ask it too (without it they are TCP connects).
    #[arg(long)]
    pub health_path: Option<String>,
    /// Prefix of the containers' names and labels; two rollscales sharing one container host
    /// need different ones.
    #[arg(long, default_value = "rollscale")]
    pub container_prefix: String,
    /// The image of the demo group's containers (`scripts/containers images` builds it).
    #[arg(long, default_value = "localhost/rollscale-demo:v1")]
    pub demo_image: String,
    /// Where the managed HAProxy's frontend of the first load balancer listens; the next load
    /// balancers (in creation order) listen on the following ports.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub haproxy_listen: SocketAddr,
    /// Directory of the managed HAProxy's configuration, admin socket and log
    /// (default: DATA_DIR/haproxy; its path must be short enough for a Unix socket).
    #[arg(long)]
    pub haproxy_dir: Option<PathBuf>,
    /// Server slots per HAProxy backend: the most instances one load balancer can hold.
    #[arg(long, default_value_t = 64)]
    pub haproxy_slots: u32,
    /// Attach to a running HAProxy through this admin socket (`level admin`) instead of
    /// starting one. Its backends need `server-template s 1-N …` slots and a
    /// `rollscale_slots` stick-table (see `haproxy.cfg` of managed mode).
    #[arg(long)]
    pub haproxy_socket: Option<PathBuf>,
    /// In attached mode, the HAProxy backend of a load balancer as `LB_ID=BACKEND`
    /// (repeatable; default: the backend named after the load balancer's id).
    #[arg(long = "haproxy-backend", value_name = "LB_ID=BACKEND")]
    pub haproxy_backends: Vec<String>,
    /// Leave the managed HAProxy serving when rollscale stops; the next start adopts it.
    #[arg(long)]
    pub haproxy_keep: bool,
}

/// Connects to the container host and checks that it answers.
pub async fn docker_fleet(args: &RealArgs, health_timeout: Duration) -> anyhow::Result<DockerFleet> {
    let config = DockerConfig {
        health_path: args.health_path.clone(),
        health_timeout,
        label_prefix: args.container_prefix.clone(),
        ..DockerConfig::default()
    };
    let fleet = DockerFleet::connect(&args.docker_host, config)?;
    fleet.ping().await.with_context(|| {
        format!(
            "no container API answers on {}: start one (e.g. `sudo scripts/containers service \
             /run/rollscale-podman.sock`) and pass --docker-host unix:///run/rollscale-podman.sock",
            args.docker_host
        )
    })?;
    Ok(fleet)
}

/// Each load balancer's frontend: the first (in creation order) on `--haproxy-listen`, the
/// next ones on the following ports.
async fn frontends(store: &Store, args: &RealArgs) -> anyhow::Result<Vec<(LoadBalancerId, SocketAddr)>> {
    let mut frontends = Vec::new();
    for (index, lb) in store.lb_list().await?.into_iter().enumerate() {
        let Some(port) = u16::try_from(index).ok().and_then(|index| args.haproxy_listen.port().checked_add(index))
        else {
            bail!("too many load balancers for frontends from port {}", args.haproxy_listen.port());
        };
        frontends.push((lb.value.id, SocketAddr::new(args.haproxy_listen.ip(), port)));
    }
    Ok(frontends)
}

/// The HAProxy driver: attached to `--haproxy-socket`, or a managed HAProxy with one frontend
/// and backend per load balancer of the store.
pub async fn haproxy(args: &RealArgs, data_dir: &Path, store: &Store) -> anyhow::Result<HaproxyLoadBalancer> {
    let lbs = store.lb_list().await?;
    if let Some(socket) = &args.haproxy_socket {
        let mut backends: HashMap<LoadBalancerId, String> =
            lbs.iter().map(|lb| (lb.value.id.clone(), lb.value.id.to_string())).collect();
        for pair in &args.haproxy_backends {
            let Some((lb, backend)) = pair.split_once('=') else {
                bail!("--haproxy-backend {pair}: expected LB_ID=BACKEND");
            };
            let Some(lb) = LoadBalancerId::parse(lb) else {
                bail!("--haproxy-backend {pair}: {lb} is not a load balancer id");
            };
            backends.insert(lb, backend.to_string());
        }
        let driver = HaproxyLoadBalancer::attached(socket.clone(), backends);
        driver.verify().await.with_context(|| format!("the HAProxy on {} is not usable", socket.display()))?;
        return Ok(driver);
    }
    let dir = args.haproxy_dir.clone().unwrap_or_else(|| data_dir.join("haproxy"));
    let mut config = ManagedConfig::new(dir, frontends(store, args).await?);
    config.slots = args.haproxy_slots;
    // The backends' health checks ask what the container fleet asks: a server failing it gets
    // no traffic, whatever its weight (R17).
    config.health_path = args.health_path.clone();
    HaproxyLoadBalancer::managed(config).await.context("cannot start HAProxy")
}

/// Prints where each load balancer serves.
pub async fn print_frontends(store: &Store, haproxy: &HaproxyLoadBalancer, args: &RealArgs) -> anyhow::Result<()> {
    if args.haproxy_socket.is_some() {
        for lb in store.lb_list().await? {
            let backend = haproxy.backend_name(&lb.value.id).unwrap_or("-");
            println!("Load balancer {} ({}): HAProxy backend {backend}.", lb.value.id, lb.value.name);
        }
        return Ok(());
    }
    for (lb, address) in frontends(store, args).await? {
        let name = store.lb_get(&lb).await?.map(|lb| lb.value.name).unwrap_or_default();
        println!("Load balancer {lb} ({name}) serves on http://{address} (HAProxy).");
    }
    Ok(())
}

/// How many stopped or missing instances `adopt` starts or makes at once.
const ADOPT_CONCURRENCY: usize = 16;

/// Brings the container host and the load balancer in line with the store (module docs).
/// Instances to start or make again are done concurrently, each waited for only until it runs
/// (not for its health check). One that cannot be started does not stop the others or `up`:
/// it is reported, marked Unhealthy in the store, and registered with its load balancers at
/// weight 0, so it gets no traffic (its host port may even be another process's now); the store
/// keeps its weight, which a later start that starts it gives back, marking it Healthy.
pub async fn adopt(engine: &Engine, fleet: &DockerFleet) -> anyhow::Result<()> {
    let store = &engine.store;
    let groups: HashMap<ScalingGroupId, ScalingGroup> =
        store.group_list().await?.into_iter().map(|group| (group.value.id.clone(), group.value)).collect();
    let mut known: HashSet<InstanceId> = HashSet::new();
    let mut addresses: HashMap<InstanceId, String> = HashMap::new();
    // (instance, whether its container is gone rather than stopped)
    let mut to_start: Vec<(Instance, bool)> = Vec::new();
    for instance in store.instance_list(None).await? {
        let instance = instance.value;
        known.insert(instance.id.clone());
        if matches!(instance.lifecycle_state, LifecycleState::Pending | LifecycleState::Removing) {
            continue; // the reconciler finishes these
        }
        match fleet.observe(&instance.id).await? {
            Some(observed) if observed.running => {
                let address = refresh_address(engine, &instance, &observed.address).await?;
                addresses.insert(instance.id, address);
            }
            Some(_) => {
                // Stopped meanwhile (a host reboot, a crash mid-swap): creating an existing
                // instance adopts it and starts what is stopped, main container first.
                tracing::warn!(instance = %instance.id, "the instance is not running: starting it");
                to_start.push((instance, false));
            }
            None => {
                tracing::warn!(instance = %instance.id, "the instance's container is gone: making it again");
                to_start.push((instance, true));
            }
        }
    }
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(ADOPT_CONCURRENCY));
    let mut starts = tokio::task::JoinSet::new();
    for (index, (instance, _)) in to_start.iter().enumerate() {
        let spec = InstanceSpec {
            id: instance.id.clone(),
            group_id: instance.group_id.clone(),
            group_type: groups.get(&instance.group_id).map_or(GroupType::ECS, |group| group.group_type),
            image_id: instance.image_id.clone(),
            containers: instance.containers.clone(),
        };
        let (fleet, permits) = (fleet.clone(), permits.clone());
        starts.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, fleet.create_instance(&spec).await)
        });
    }
    let mut outcomes: Vec<Option<Result<InstanceObservation, FleetError>>> = to_start.iter().map(|_| None).collect();
    while let Some(joined) = starts.join_next().await {
        let (index, outcome) = joined.context("starting an instance panicked")?;
        outcomes[index] = Some(outcome);
    }
    let (mut remade, mut started, mut failed) = (0, 0, Vec::new());
    let mut unstarted: HashSet<InstanceId> = HashSet::new();
    for ((instance, missing), outcome) in to_start.into_iter().zip(outcomes) {
        let outcome = outcome.unwrap_or_else(|| Err(FleetError::Failed("not started".into())));
        let health = match outcome {
            Ok(observed) => {
                if missing {
                    remade += 1;
                } else {
                    started += 1;
                }
                let address = refresh_address(engine, &instance, &observed.address).await?;
                addresses.insert(instance.id.clone(), address);
                HealthStatus::Healthy
            }
            Err(error) => {
                tracing::warn!(instance = %instance.id, %error, "the instance could not be started; marked Unhealthy");
                failed.push(format!("{} ({error})", instance.id));
                unstarted.insert(instance.id.clone());
                addresses.insert(instance.id.clone(), instance.address.clone());
                HealthStatus::Unhealthy
            }
        };
        if instance.health_status != health {
            engine.instance_modify(&instance.id, |current| current.health_status = health).await?;
        }
    }
    if remade > 0 {
        println!("Made {remade} missing instance container(s) again.");
    }
    if started > 0 {
        println!("Started {started} stopped instance(s) again.");
    }
    if !failed.is_empty() {
        println!(
            "Could not start {} instance(s), marked Unhealthy (see DescribeScalingInstances): {}.",
            failed.len(),
            failed.join(", ")
        );
    }
    for observed in fleet.list_managed().await? {
        if !known.contains(&observed.id) {
            eprintln!(
                "warning: container {} carries rollscale's labels but this store has no instance {}; left alone",
                fleet.container_name(&observed.id),
                observed.id
            );
        }
    }
    for backend in store.backend_list(None, None).await? {
        let Some(address) = addresses.get(&backend.instance_id).filter(|address| !address.is_empty()) else {
            continue;
        };
        let weight = if unstarted.contains(&backend.instance_id) { 0 } else { backend.weight };
        engine
            .lb
            .register(&backend.load_balancer_id, &backend.instance_id, address, weight)
            .await
            .with_context(|| format!("cannot register {} with {}", backend.instance_id, backend.load_balancer_id))?;
    }
    Ok(())
}

/// The instance's address as the fleet reports it now, written to the store when it moved.
async fn refresh_address(engine: &Engine, instance: &Instance, observed: &str) -> anyhow::Result<String> {
    if observed.is_empty() || observed == instance.address {
        return Ok(instance.address.clone());
    }
    let address = observed.to_string();
    engine.instance_modify(&instance.id, |current| current.address = address.clone()).await?;
    Ok(address)
}

/// Puts the container host's images into the image catalog, so rolling updates to them pass
/// the start checks (R3). (An image added to the host later is put there when a check first
/// misses it.)
pub async fn sync_images(service: &Service) -> anyhow::Result<()> {
    service.sync_fleet_images().await?;
    Ok(())
}

/// The demo on containers: a group of `size` containers of `--demo-image` behind the demo
/// load balancer, with a 10 s drain, and the package `wordpress` v3/v4.
pub async fn create_demo(service: &Service, args: &RealArgs, size: u32) -> anyhow::Result<()> {
    if service.images().await?.iter().all(|image| image.id != args.demo_image) {
        bail!(
            "the demo image {} is not on the container host: build the demo images with \
             `sudo scripts/containers images`, or pass --demo-image",
            args.demo_image
        );
    }
    super::create_demo_packages(service).await?;
    super::demo_group(service, size, size.max(20), &args.demo_image, Some(10)).await
}
