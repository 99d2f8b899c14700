//! `rollscale up --fleet docker`: instances as containers through the Docker Engine API
//! (Docker, or Podman's Docker-compatible service), behind a real HAProxy driven through its
//! runtime API (started and stopped by rollscale, or attached to an existing one).
//!
//! At start the store is the truth and the backends are brought in line with it by the engine
//! (`Engine::adopt_fleet`: missing containers made again, stopped ones started, addresses
//! refreshed, every load-balancer registration made again at the store's weight); this module
//! connects the drivers and reports what was done.

use anyhow::{bail, Context};
use rollscale_core::ids::LoadBalancerId;
use rollscale_engine::{Engine, Service};
use rollscale_fleet::docker::{DockerConfig, DockerFleet};
use rollscale_fleet::haproxy::{HaproxyLoadBalancer, ManagedConfig};
use rollscale_store::Store;
use std::collections::HashMap;
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

/// Brings the container host and the load balancer in line with the store
/// (`Engine::adopt_fleet`), and says what it did; containers with rollscale's labels that the
/// store does not know are reported and left alone.
pub async fn adopt(engine: &Engine, fleet: &DockerFleet) -> anyhow::Result<()> {
    let adoption = engine.adopt_fleet().await.context("cannot bring the container host in line with the store")?;
    if !adoption.remade.is_empty() {
        println!("Made {} missing instance container(s) again.", adoption.remade.len());
    }
    if !adoption.started.is_empty() {
        println!("Started {} stopped instance(s) again.", adoption.started.len());
    }
    if !adoption.failed.is_empty() {
        let failed: Vec<String> = adoption.failed.iter().map(|(id, error)| format!("{id} ({error})")).collect();
        println!(
            "Could not start {} instance(s), marked Unhealthy (see DescribeScalingInstances): {}.",
            failed.len(),
            failed.join(", ")
        );
    }
    for observed in fleet.list_managed().await? {
        if !adoption.known.contains(&observed.id) {
            eprintln!(
                "warning: container {} carries rollscale's labels but this store has no instance {}; left alone",
                fleet.container_name(&observed.id),
                observed.id
            );
        }
    }
    Ok(())
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
