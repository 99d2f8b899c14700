//! `rollscale up`: the service. Opens (or creates) the store, starts the drivers (the
//! simulated fleet by default; containers through the Docker API behind HAProxy with
//! `--fleet docker`) and brings them in line with the store, resumes every unfinished rolling
//! update, keeps the groups at capacity, creates the demo on first start, and serves the API
//! until SIGINT or SIGTERM, then stops gracefully within `--shutdown-timeout` (see [`stop`]).
//! On SQLite it is the only process on its database (it locks the file); on PostgreSQL it is
//! one replica of several that share the work through leases.

pub mod backup;
pub mod config;
mod real;
mod server_key;

use crate::profile::{self, Profile};
use anyhow::{bail, Context};
use rollscale_core::domain::LoadBalancer;
use rollscale_core::domain::{AccessKeyStatus, GroupStatus, OsType};
use rollscale_core::ids::LoadBalancerId;
use rollscale_engine::access::AuditRetention;
use rollscale_engine::service::{NewConfiguration, NewGroup};
use rollscale_engine::{now_millis, random_bits, Engine, EngineConfig, Replication, Service};
use rollscale_fleet::sim::{SimConfig, SimFleet, SimLbConfig, SimLoadBalancer};
use rollscale_fleet::{Fleet, LoadBalancer as LbDriver};
use rollscale_server::AuthConfig;
use rollscale_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The two public images of the seeds' CLI walkthrough.
pub const DEMO_IMAGES: [&str; 2] =
    ["centos_7_8_x64_20G_alibase_20200717.vhd", "aliyun_2_1903_x64_20G_alibase_20200529.vhd"];

/// The compute backend of `rollscale up`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetKind {
    /// The built-in simulated fleet (in memory, driven by the store).
    Sim,
    /// Containers through the Docker Engine API (Docker, or Podman's service).
    Docker,
}

/// The load balancer of `rollscale up`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbKind {
    /// The built-in simulated load balancer.
    Sim,
    /// A real HAProxy, driven through its runtime API.
    Haproxy,
}

#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Address to serve the API on (loopback by default).
    #[arg(long, env = "ROLLSCALE_LISTEN", default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
    /// Directory of the SQLite database (and of the managed HAProxy's files).
    #[arg(long, env = "ROLLSCALE_DATA_DIR", default_value = "./rollscale-data")]
    pub data_dir: PathBuf,
    /// Database URL instead of the SQLite file in --data-dir (`sqlite://…` or `postgres://…`).
    /// Its password is masked by --print-config.
    #[arg(long, env = "ROLLSCALE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Compute backend.
    #[arg(long, value_enum, default_value = "sim")]
    pub fleet: FleetKind,
    /// Load balancer: `sim` with the simulated fleet, `haproxy` with containers, by default.
    #[arg(long, value_enum)]
    pub lb: Option<LbKind>,
    /// Simulated latency of each fleet operation, in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub sim_latency_ms: u64,
    /// Probability (0 to 1) that a simulated change (image, script, package) fails.
    #[arg(long, default_value_t = 0.0)]
    pub sim_fail_rate: f64,
    /// Seed of the simulated fleet's randomness: the same seed replays the same faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// An instance id whose every change fails (repeatable).
    #[arg(long = "sim-fail-instance")]
    pub sim_fail_instances: Vec<String>,
    /// A text that makes any script containing it fail (repeatable).
    #[arg(long = "sim-fail-script")]
    pub sim_fail_scripts: Vec<String>,
    /// Real seconds per simulated second of a script's `sleep`.
    #[arg(long, default_value_t = 0.01)]
    pub sim_time_scale: f64,
    /// How long a simulated load balancer takes to drain a backend, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub sim_drain_ms: u64,
    /// Simulated latency of each load-balancer operation (register, weight, connections), in
    /// milliseconds.
    #[arg(long, default_value_t = 0)]
    pub sim_lb_latency_ms: u64,
    /// How long an instance may take to pass its health check after it was created or changed,
    /// in seconds: a rolling update's health gate, and a new instance's before it gets traffic
    /// (the container fleet waits as long for a container's health path).
    #[arg(long, default_value_t = 120)]
    pub health_timeout: u64,
    /// How often the health checker looks at every instance of every group, in milliseconds
    /// (R16, R17: an unhealthy InService instance is replaced unless `HealthCheck` is
    /// suspended).
    #[arg(long, env = "ROLLSCALE_HEALTH_CHECK_INTERVAL_MS", default_value_t = 5_000)]
    pub health_check_interval_ms: u64,
    #[command(flatten)]
    pub real: real::RealArgs,
    #[command(flatten)]
    pub logs: crate::logs::LogArgs,
    #[command(flatten)]
    pub config: config::ConfigArgs,
    /// Do not create the demo group on first start.
    #[arg(long)]
    pub no_demo: bool,
    /// Number of instances of the demo group.
    #[arg(long, default_value_t = 10)]
    pub demo_size: u32,
    /// Where to write the CLI profile with the admin AccessKey (default: the standard profile).
    #[arg(long, env = "ROLLSCALE_CONFIG")]
    pub profile: Option<PathBuf>,
    /// Allowed clock skew of signed requests, in seconds.
    #[arg(long, default_value_t = 900)]
    pub max_skew_s: u64,
    /// Certificate authorities (a PEM file) to trust for https webhooks of alert rules, besides
    /// the system's: an internal CA that signs the receivers' certificates.
    #[arg(long, env = "ROLLSCALE_WEBHOOK_CA_FILE")]
    pub webhook_ca_file: Option<PathBuf>,
    /// Requests per second each AccessKey may make (bursts of twice that); beyond, the API
    /// answers `Throttling.User`. 0: no limit.
    #[arg(long, default_value_t = 100)]
    pub rate_limit: u32,
    /// The longest a REST session lasts, in seconds: a bearer token is refused once this long
    /// has passed since its session began (the token made from the AccessKey's secret), and
    /// `POST /v1/tokens` renews one no further.
    #[arg(long, env = "ROLLSCALE_TOKEN_MAX_SESSION_S", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(60..))]
    pub token_max_session_s: u64,
    /// How long the audit log keeps an event, in days; older ones are deleted in the
    /// background, every minute. 0: whatever their age.
    #[arg(long, env = "ROLLSCALE_AUDIT_MAX_AGE_DAYS", default_value_t = 30)]
    pub audit_max_age_days: u64,
    /// How many events the audit log keeps at most: the newest; older ones are deleted in the
    /// background, every minute. 0: however many.
    #[arg(long, env = "ROLLSCALE_AUDIT_MAX_ROWS", default_value_t = 1_000_000)]
    pub audit_max_rows: u64,
    /// On PostgreSQL, where several replicas share the work: how long the lease of a task's
    /// driver (and of the reconciler) lasts after each renewal, in milliseconds of the
    /// database's clock. A replica that dies has its tasks taken over this long after its last
    /// renewal; it stops acting itself after two thirds of it without one.
    #[arg(long, env = "ROLLSCALE_LEASE_TTL_MS", default_value_t = 15_000)]
    pub lease_ttl_ms: u64,
    /// How often a replica renews its leases, in milliseconds (well under two thirds of
    /// --lease-ttl-ms).
    #[arg(long, env = "ROLLSCALE_LEASE_RENEW_MS", default_value_t = 5_000)]
    pub lease_renew_ms: u64,
    /// How often a replica looks for tasks without a live lease (to take them over) and for a
    /// free reconciler lease, in milliseconds.
    #[arg(long, env = "ROLLSCALE_LEASE_POLL_MS", default_value_t = 2_000)]
    pub lease_poll_ms: u64,
    /// On SIGTERM or SIGINT, the most seconds to stop in: the listener closes at once, event
    /// streams end with a `shutdown` event and long polls answer; rolling updates stop once the
    /// steps in flight are committed, and on PostgreSQL their leases and the reconciler's are
    /// handed back, for another replica to take over at once. What still runs then is cut
    /// short, as a crash would cut it (said on stderr), and the process exits.
    #[arg(
        long,
        env = "ROLLSCALE_SHUTDOWN_TIMEOUT",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub shutdown_timeout: u64,
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.sim_fail_rate) {
        bail!("--sim-fail-rate must be between 0 and 1");
    }
    // Checked before anything starts: a bad CA file is the operator's to fix first.
    let notifier = webhook_notifier(args.webhook_ca_file.as_deref())?;
    let lb_kind = args.lb.unwrap_or(match args.fleet {
        FleetKind::Sim => LbKind::Sim,
        FleetKind::Docker => LbKind::Haproxy,
    });
    if args.fleet == FleetKind::Sim && lb_kind == LbKind::Haproxy {
        bail!("--lb haproxy needs real instances to send traffic to: use it with --fleet docker");
    }
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            private_data_dir(&args.data_dir)?;
            format!("sqlite://{}", args.data_dir.join("rollscale.db").display())
        }
    };
    // SQLite is single-replica: the database file is locked for as long as this process runs.
    let _sqlite_lock = match sqlite_path(&url) {
        Some(path) => Some(lock_sqlite(&path)?),
        None => None,
    };
    let replication = replication(&args, &url)?;
    let store = Store::open(&url).await.context("cannot open the database")?;
    crate::crash::point("store-opened");
    let store = server_key::with_server_key(store, &args.data_dir).await?;
    crate::crash::point("server-key-loaded");
    // Replicas starting together on a new database: one sets it up (admin key, demo) while the
    // others wait, then find it done.
    let setup_lease = match &replication {
        Some(replication) => Some(setup_lease(&store, replication).await?),
        None => None,
    };
    // Every step of the first start below is made unless it was made already, so a start
    // killed anywhere in it (`kill -9`, a power cut) is finished by the next one: the admin
    // AccessKey is handed over until that is recorded, each piece of the demo is found by its
    // name before it is made, and the demo is recorded as made only once it all is.
    let demo = !args.no_demo && store.setting_get(DEMO_CREATED).await?.is_none();
    if demo {
        // The demo's load balancer exists before the drivers start, so a managed HAProxy
        // serves it from the first start.
        demo_load_balancer(&store).await?;
        crate::crash::point("demo-lb-created");
    }

    let mut haproxy = None;
    let mut docker = None;
    let (fleet, lb): (Arc<dyn Fleet>, Arc<dyn LbDriver>) = match args.fleet {
        FleetKind::Sim => {
            let (fleet, lb) = sim_drivers(&args).await?;
            (Arc::new(fleet), Arc::new(lb))
        }
        FleetKind::Docker => {
            let fleet = real::docker_fleet(&args.real, Duration::from_secs(args.health_timeout)).await?;
            docker = Some(fleet.clone());
            let lb: Arc<dyn LbDriver> = match lb_kind {
                LbKind::Sim => Arc::new(SimLoadBalancer::new(SimLbConfig {
                    drain_ms: args.sim_drain_ms,
                    ..SimLbConfig::default()
                })),
                LbKind::Haproxy => {
                    let driver = real::haproxy(&args.real, &args.data_dir, &store).await?;
                    haproxy = Some(driver.clone());
                    Arc::new(driver)
                }
            };
            (Arc::new(fleet), lb)
        }
    };
    let fleet_name = fleet.name();

    let config = EngineConfig {
        health_timeout: Duration::from_secs(args.health_timeout),
        health_check_interval: Duration::from_millis(args.health_check_interval_ms.max(100)),
        replication: replication.clone(),
        ..EngineConfig::default()
    };
    let engine = Engine::new(store.clone(), fleet, lb, config);
    if args.fleet == FleetKind::Sim {
        // The simulated fleet lives in memory; the store holds the truth. Rebuild it.
        engine.adopt_recorded(None).await?;
    }
    let service = Service::new(engine.clone());
    if let Some(docker) = &docker {
        real::adopt(&engine, docker).await?;
        real::sync_images(&service).await?;
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    hand_over_admin_key(&service, &endpoint, args.profile.as_deref()).await?;

    if demo {
        let made = match args.fleet {
            FleetKind::Sim => create_demo(&service, args.demo_size).await,
            FleetKind::Docker => real::create_demo(&service, &args.real, args.demo_size).await,
        };
        match made {
            Ok(()) => {
                store.setting_put(DEMO_CREATED, "1").await?;
                crate::crash::point("demo-recorded");
            }
            // Something of the operator's holds a name the demo needs: serve without the rest
            // of the demo rather than not at all; the next start tries again.
            Err(error) if error.is::<DemoConflict>() => {
                eprintln!("warning: the demo was not finished: {error} (start with --no-demo to stop trying)");
            }
            Err(error) => return Err(error),
        }
    }
    if let (Some(replication), Some(setup_lease)) = (&replication, setup_lease) {
        store.lease_release(&setup_lease, &replication.replica_id).await?;
    }
    // With replicas, the first passes run here only on the one that runs the reconciler.
    if service.lead_reconciler().await? {
        for group in service.groups(None, None).await? {
            if group.status == GroupStatus::Active {
                if let Err(error) = service.reconcile_group(&group).await {
                    // The reconciler tries again every pass; the service serves meanwhile.
                    eprintln!("warning: scaling group {} is not at its desired capacity yet: {error}", group.id);
                }
            }
        }
        crate::crash::point("first-passes-done");
    }
    let resumed = engine.resume_all().await?;
    if resumed > 0 {
        println!("Resumed {resumed} unfinished rolling update(s).");
    }
    service.spawn_reconciler();
    service.spawn_health_checker();
    // Every image update schedule in the store resumes; a firing a crash interrupted goes on.
    service.spawn_image_scheduler();
    engine.spawn_lease_poller();
    if let Some(replication) = &replication {
        println!(
            "Replica {} shares the work with the other replicas on this database (leases of {} ms, renewed every {} ms).",
            replication.replica_id,
            replication.lease_ttl.as_millis(),
            replication.renew_every.as_millis()
        );
    }
    service.spawn_alert_sender(notifier, Default::default());
    service.spawn_audit_pruner(AuditRetention {
        max_age: Some(Duration::from_secs(args.audit_max_age_days.saturating_mul(24 * 3600)))
            .filter(|age| !age.is_zero()),
        max_rows: Some(args.audit_max_rows).filter(|rows| *rows > 0),
        ..AuditRetention::default()
    });

    print_groups(&service).await?;
    if let Some(haproxy) = &haproxy {
        real::print_frontends(&store, haproxy, &args.real).await?;
    }
    println!("rollscale is serving the API on {endpoint} (store: {}, fleet: {fleet_name}).", redact_url(&url));
    let auth = AuthConfig {
        max_skew: Duration::from_secs(args.max_skew_s),
        rate_per_key: Some(args.rate_limit).filter(|rate| *rate > 0),
        token_max_session: Duration::from_secs(args.token_max_session_s),
    };
    let shutdown = rollscale_server::Shutdown::new();
    let router = rollscale_server::router_with_shutdown(service, auth, shutdown.clone());
    let begun = shutdown.clone();
    let mut server = tokio::spawn(rollscale_server::serve(listener, router, async move { begun.begun().await }));
    tokio::select! {
        () = shutdown_signal() => {}
        served = &mut server => {
            // It only ends on its own when it fails.
            engine.halt();
            served.context("the HTTP server stopped")??;
            bail!("the HTTP server stopped");
        }
    }
    let timeout = Duration::from_secs(args.shutdown_timeout);
    let deadline = tokio::time::Instant::now() + timeout;
    stop(&engine, &shutdown, server, timeout, replication.is_some()).await;
    if let Some(haproxy) = haproxy {
        if args.real.haproxy_keep {
            haproxy.detach();
        } else {
            match tokio::time::timeout_at(deadline, haproxy.shutdown()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => warn(format_args!("{error}")),
                Err(_) => warn(format_args!("the managed HAProxy did not stop in time; the next start adopts it")),
            }
        }
    }
    say(format_args!("rollscale stopped."));
    Ok(())
}

/// The graceful stop, on SIGTERM or SIGINT, within `timeout`: the listener closes and the
/// event streams and long polls end at once (`shutdown`); the engine stops taking work, lets
/// the steps in flight be committed and hands its leases back (`Engine::shut_down`), with a
/// grace that leaves a fifth of the time (at most 2 s) for that and for the connections to
/// close. What is still running at the end (said on stderr) is cut short, as a crash would cut
/// it. A second signal cuts everything short at once.
async fn stop(
    engine: &Arc<Engine>,
    shutdown: &rollscale_server::Shutdown,
    mut server: tokio::task::JoinHandle<std::io::Result<()>>,
    timeout: Duration,
    replicated: bool,
) {
    let began = tokio::time::Instant::now();
    let deadline = began + timeout;
    let leases = if replicated { ", leases are handed back" } else { "" };
    say(format_args!(
        "Stopping within {} s: no new connections, event streams and long polls end, steps in flight finish{leases}.",
        timeout.as_secs()
    ));
    shutdown.begin();
    let grace = timeout - (timeout / 5).min(Duration::from_secs(2));
    let stopping = async {
        tokio::join!(
            tokio::time::timeout_at(deadline, engine.shut_down(grace)),
            tokio::time::timeout_at(deadline, &mut server)
        )
    };
    let (stopped, served) = tokio::select! {
        both = stopping => both,
        () = shutdown_signal() => {
            warn(format_args!("a second signal: stopping at once; what runs is cut short"));
            server.abort();
            engine.halt();
            return;
        }
    };
    match stopped {
        Ok(stopped) => report_stopped(&stopped, replicated),
        Err(_) => warn(format_args!(
            "the engine did not stop within the shutdown timeout ({} s; the database did not answer?): \
             what it ran is cut short, its leases expire on their own",
            timeout.as_secs()
        )),
    }
    match served {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => warn(format_args!("the HTTP server: {error}")),
        Ok(Err(error)) => warn(format_args!("the HTTP server: {error}")),
        Err(_) => {
            warn(format_args!("connections still open at the shutdown timeout ({} s) are closed", timeout.as_secs()))
        }
    }
    server.abort();
    engine.halt();
    say(format_args!("Stopped in {:.1} s.", began.elapsed().as_secs_f64()));
}

/// What the engine's stop did, for the operator: cut-short work on stderr.
fn report_stopped(stopped: &rollscale_engine::shutdown::Stopped, replicated: bool) {
    use rollscale_engine::shutdown::HandOver;
    let list =
        |ids: &[rollscale_core::ids::ExecutionId]| ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(" ");
    if !stopped.between_steps.is_empty() {
        let next = if replicated { "handed back to the other replicas" } else { "they go on at the next start" };
        say(format_args!(
            "Stopped {} rolling update(s) between two steps ({next}): {}",
            stopped.between_steps.len(),
            list(&stopped.between_steps)
        ));
    }
    if !stopped.cut_short.is_empty() {
        let next =
            if replicated { "by the replica that takes it over once its lease expires" } else { "at the next start" };
        warn(format_args!(
            "the shutdown timeout cut {} rolling update(s) short in the middle of a step, which is redone {next}: {}",
            stopped.cut_short.len(),
            list(&stopped.cut_short)
        ));
    }
    if stopped.background_cut_short > 0 {
        warn(format_args!(
            "the shutdown timeout cut short {} reconcile or health pass(es) or image update firing(s); \
             the next pass or tick finishes their work",
            stopped.background_cut_short
        ));
    }
    match stopped.reconciler {
        HandOver::NotHeld => {}
        HandOver::HandedBack => say(format_args!("Handed the reconciler back to the other replicas.")),
        HandOver::LeftToExpire => {
            warn(format_args!("the reconciler's lease is left to expire: work under it was cut short"))
        }
    }
}

/// A line on stdout while stopping; a closed stdout does not stop the stop (`println!` would
/// panic).
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// A warning on stderr while stopping, likewise.
fn warn(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "warning: {line}");
}

/// Makes the data directory, readable by its owner only (0700): it holds the database, with
/// the audit log and its request parameters, and the server key. One made by an earlier version
/// with wider permissions is narrowed.
fn private_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make the data directory {} private", dir.display()))
}

/// The file of a `sqlite://` URL, `None` for PostgreSQL and in-memory SQLite.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// Locks the SQLite database file for this process (`flock`, released by the kernel when the
/// process ends, `kill -9` included), or refuses: SQLite is single-replica. The file is made
/// when missing (an empty file is an empty database). SQLite's own locks are `fcntl` locks, which
/// this does not touch.
fn lock_sqlite(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open the database {}", path.display()))?;
    // Its owner's only (SQLite gives its -wal and -shm files the database's permissions); a
    // database made by an earlier version with wider ones is narrowed, its -wal and -shm too.
    let beside = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    for file in [path.to_path_buf(), beside("-wal"), beside("-shm")] {
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot make {} private", file.display()))?;
        }
    }
    // SAFETY: flock on a file descriptor this function owns; no memory is shared with it.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            bail!(
                "another rollscale is already serving the SQLite database {}: SQLite is single-replica. \
                 Stop it first, or run several replicas on PostgreSQL (--database-url postgres://…)",
                path.display()
            );
        }
        return Err(error).with_context(|| format!("cannot lock the database {}", path.display()));
    }
    Ok(file)
}

/// Replication on PostgreSQL (several `up` on one database share the work); none on SQLite.
fn replication(args: &UpArgs, url: &str) -> anyhow::Result<Option<Replication>> {
    if !url.starts_with("postgres") {
        return Ok(None);
    }
    let replication = Replication {
        lease_ttl: Duration::from_millis(args.lease_ttl_ms),
        renew_every: Duration::from_millis(args.lease_renew_ms),
        poll_every: Duration::from_millis(args.lease_poll_ms),
        ..Replication::new()
    };
    if args.lease_ttl_ms < 300 || args.lease_renew_ms == 0 || args.lease_renew_ms * 3 > args.lease_ttl_ms * 2 {
        bail!("--lease-renew-ms must be above 0 and at most two thirds of --lease-ttl-ms (at least 300)");
    }
    if args.lease_poll_ms == 0 {
        bail!("--lease-poll-ms must be above 0");
    }
    Ok(Some(replication))
}

/// The setup lease: held while this replica creates what a new database needs (the admin key,
/// the demo), so that replicas started together do not both create them. Waits while another
/// holds it (at most its time to live, should that one die).
async fn setup_lease(store: &Store, replication: &Replication) -> anyhow::Result<String> {
    const SETUP: &str = "setup";
    let ttl = Duration::from_secs(120);
    let deadline = tokio::time::Instant::now() + ttl + Duration::from_secs(5);
    while !store.lease_take(SETUP, &replication.replica_id, ttl).await? {
        if tokio::time::Instant::now() > deadline {
            bail!("another replica has been setting the database up for over {} s", ttl.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(SETUP.to_string())
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// The name of the demo's load balancer.
const DEMO_LB: &str = "demo-lb";

/// Creates the demo's load balancer unless it exists.
pub(crate) async fn demo_load_balancer(store: &Store) -> anyhow::Result<LoadBalancerId> {
    if let Some(lb) = store.lb_list().await?.into_iter().find(|lb| lb.value.name == DEMO_LB) {
        return Ok(lb.value.id);
    }
    let lb = LoadBalancer { id: LoadBalancerId::from_random(random_bits()), name: DEMO_LB.into(), default_weight: 100 };
    store.lb_insert(&lb, now_millis()).await?;
    Ok(lb.id)
}

/// The simulated fleet and load balancer, empty (`Engine::adopt_recorded` rebuilds them).
async fn sim_drivers(args: &UpArgs) -> anyhow::Result<(SimFleet, SimLoadBalancer)> {
    let mut fail_instances = std::collections::HashSet::new();
    for text in &args.sim_fail_instances {
        let id = rollscale_core::ids::InstanceId::parse(text)
            .with_context(|| format!("--sim-fail-instance {text} is not an instance id"))?;
        fail_instances.insert(id);
    }
    let fleet = SimFleet::new(SimConfig {
        latency_ms: args.sim_latency_ms,
        fail_rate: args.sim_fail_rate,
        seed: args.seed,
        fail_instances,
        fail_scripts: args.sim_fail_scripts.clone(),
        time_scale: args.sim_time_scale,
        ..SimConfig::default()
    });
    // Its health checks read the fleet's instances: a failing backend gets no traffic (R17).
    let lb = SimLoadBalancer::new(SimLbConfig {
        drain_ms: args.sim_drain_ms,
        latency_ms: args.sim_lb_latency_ms,
        ..SimLbConfig::default()
    })
    .with_fleet(fleet.clone());
    Ok((fleet, lb))
}

/// The setting that records that the demo was made, whole.
const DEMO_CREATED: &str = "demo.created";

/// The demo could not be finished because something that is not the demo's holds a name it
/// needs (a group named `demo` of the operator's, say). `up` warns and serves without it.
#[derive(Debug)]
pub(crate) struct DemoConflict(String);

impl std::fmt::Display for DemoConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DemoConflict {}

fn conflict(message: String) -> anyhow::Error {
    DemoConflict(message).into()
}

/// The demo: the seeds' images and package, a load balancer, and a group of InService
/// instances on CentOS, so the seeds' commands run as written once the ids are replaced.
///
/// Each piece is keyed by its name and made unless it exists, so that a first start killed in
/// the middle of this is finished by the next one, nothing made twice. What exists counts as
/// the demo's only when it is what the demo makes ([`DemoConflict`] otherwise).
pub async fn create_demo(service: &Service, size: u32) -> anyhow::Result<()> {
    for image in DEMO_IMAGES {
        demo_image(service, image, OsType::Linux).await?;
    }
    demo_image(service, "win2019_1809_x64_dtc_en-us_40G_alibase_20200722.vhd", OsType::Windows).await?;
    create_demo_packages(service).await?;
    demo_group(service, size, size.max(100), DEMO_IMAGES[0], None).await
}

/// A public image of the demo's catalog, unless it is there.
async fn demo_image(service: &Service, id: &str, os: OsType) -> anyhow::Result<()> {
    match service.images().await?.into_iter().find(|image| image.id == id) {
        Some(image) if image.os == os => {}
        Some(image) => {
            return Err(conflict(format!("the image {id} exists with the OS type {} rather than {os}", image.os)));
        }
        None => {
            service.create_image(id, None, Some(os)).await?;
        }
    }
    crate::crash::point(&format!("demo-image-created {id}"));
    Ok(())
}

/// The demo group: `size` instances of `image` behind the demo load balancer, enabled with a
/// scaling configuration. A group named `demo` behind the demo load balancer, and its
/// configuration named `demo-config` with `image`, are the demo's from an earlier start that
/// was killed: they are taken as they are, and what is missing is done.
pub(crate) async fn demo_group(
    service: &Service,
    size: u32,
    max_size: u32,
    image: &str,
    drain_timeout_s: Option<u32>,
) -> anyhow::Result<()> {
    const GROUP: &str = "demo";
    const CONFIGURATION: &str = "demo-config";
    let lb = demo_load_balancer(service.engine.store()).await?;
    let group = match service.groups(None, Some(GROUP)).await?.into_iter().next() {
        Some(group) if group.load_balancer_ids == [lb.clone()] => group,
        Some(group) => {
            return Err(conflict(format!(
            "the scaling group {} is named {GROUP} but is not the demo's (its load balancers are not only {DEMO_LB})",
            group.id
        )))
        }
        None => {
            service
                .create_group(NewGroup {
                    name: GROUP.into(),
                    region_id: "local".into(),
                    min_size: 0,
                    max_size,
                    desired_capacity: Some(size),
                    load_balancer_ids: vec![lb],
                    drain_timeout_s,
                    ..NewGroup::default()
                })
                .await?
        }
    };
    crate::crash::point("demo-group-created");
    let configurations = service.configurations(Some(&group.id), None).await?;
    let configuration = match configurations.into_iter().find(|configuration| configuration.name == CONFIGURATION) {
        Some(configuration) if configuration.image_id == image => configuration,
        Some(configuration) => {
            return Err(conflict(format!(
                "the scaling configuration {} of the demo group uses the image {} rather than {image}",
                configuration.id, configuration.image_id
            )))
        }
        None => {
            service
                .create_configuration(
                    &group.id,
                    NewConfiguration {
                        name: Some(CONFIGURATION.into()),
                        image_id: image.into(),
                        ..NewConfiguration::default()
                    },
                )
                .await?
        }
    };
    crate::crash::point("demo-configuration-created");
    if service.group(&group.id).await?.status != GroupStatus::Active {
        service.enable_group(&group.id, Some(&configuration.id)).await?;
    }
    crate::crash::point("demo-group-enabled");
    Ok(())
}

/// The demo's package catalog: `wordpress` v3 and v4, as in the seeds; a version is made
/// unless it is there.
pub(crate) async fn create_demo_packages(service: &Service) -> anyhow::Result<()> {
    for version in ["v3", "v4"] {
        let install = format!("echo installing wordpress {version}\necho wordpress {version} is installed");
        let uninstall = format!("echo removing wordpress {version}");
        let existing =
            service.packages(Some("wordpress")).await?.into_iter().find(|package| package.version == version);
        match existing {
            Some(package) if package.install_script == install && package.uninstall_script == uninstall => {}
            Some(_) => return Err(conflict(format!("the package wordpress {version} exists with other scripts"))),
            None => {
                service.create_package("wordpress", version, &install, &uninstall).await?;
            }
        }
        crate::crash::point(&format!("demo-package-created wordpress {version}"));
    }
    Ok(())
}

/// The setting that records how far the admin AccessKey's hand-over to the operator went:
/// [`HANDOVER_PENDING`] from before the key is made until the profile holding it is written
/// and it is printed, then [`HANDED_OVER`]. (A store of an earlier version, which did not
/// record it, has neither.)
const ADMIN_HANDOVER: &str = "admin.handover";
const HANDOVER_PENDING: &str = "pending";
const HANDED_OVER: &str = "done";
/// The user of the admin AccessKey that `up` makes.
const ADMIN_USER: &str = "admin";

/// Gives the operator the admin AccessKey: on a new store, makes it, writes it to the profile
/// (atomically and durably) and prints it; and only then records it as handed over. A start
/// killed before that record hands it over again (the same key, its secret read back from the
/// store, or a new one when it was killed before the key was made), so the operator always
/// ends with a working profile and one admin key. Once handed over, a profile holding one of
/// this store's keys is kept pointing at where this start serves.
async fn hand_over_admin_key(
    service: &Service,
    endpoint: &str,
    profile: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let store = service.engine.store();
    let path = match profile {
        Some(path) => path.to_path_buf(),
        None => profile::config_path()?,
    };
    let state = store.setting_get(ADMIN_HANDOVER).await?;
    let pending = match state.as_deref() {
        Some(HANDED_OVER) => return follow_endpoint(store, &path, endpoint).await,
        Some(_) => true,
        None if store.access_key_count().await? == 0 => {
            store.setting_put(ADMIN_HANDOVER, HANDOVER_PENDING).await?;
            crate::crash::point("admin-handover-pending");
            true
        }
        // A store of an earlier version: its first start made a key.
        None => false,
    };
    let stored = profile::read(&path);
    if let Ok(Some(existing)) = &stored {
        let working = store
            .access_key_get(&existing.access_key_id)
            .await?
            .is_some_and(|key| key.status == AccessKeyStatus::Active && key.secret == existing.access_key_secret);
        if working {
            // Written by a start killed before it recorded the hand-over (or by an earlier
            // version): the operator has it.
            follow_endpoint(store, &path, endpoint).await?;
            println!(
                "The admin AccessKey {} is saved in {}; `rollscale configure get` shows it.",
                existing.access_key_id,
                path.display()
            );
            store.setting_put(ADMIN_HANDOVER, HANDED_OVER).await?;
            return Ok(());
        }
    }
    // A store of an earlier version whose profile exists, whatever it holds, is the
    // operator's: left as it is. A missing one is what a kill of that version's first start
    // left (its profile never written): the admin key is handed over below.
    if !pending && !matches!(stored, Ok(None)) {
        store.setting_put(ADMIN_HANDOVER, HANDED_OVER).await?;
        return Ok(());
    }
    let existing =
        store.access_key_list(ADMIN_USER).await?.into_iter().find(|key| key.status == AccessKeyStatus::Active);
    let (key, made) = match existing {
        Some(key) => (key, false),
        None if pending => {
            let key = service.create_admin_access_key(ADMIN_USER).await?;
            crate::crash::point("admin-key-created");
            (key, true)
        }
        // An earlier version's store without an active admin key: its operator chose so.
        None => {
            store.setting_put(ADMIN_HANDOVER, HANDED_OVER).await?;
            return Ok(());
        }
    };
    let profile = Profile {
        endpoint: endpoint.to_string(),
        access_key_id: key.id.clone(),
        access_key_secret: key.secret.clone(),
        region_id: "local".into(),
    };
    let path = profile::save(&profile, Some(&path))?;
    // Printed to a terminal only, on the first start (or the one that finishes it); never
    // logged. Where the output is not a terminal it is kept (a service manager's journal,
    // `podman logs`, a file), so the secret is left to the profile.
    use std::io::IsTerminal;
    let secret = match std::io::stdout().is_terminal() {
        true => format!("secret {}", key.secret),
        false => "its secret is in the profile only: the output is not a terminal".to_string(),
    };
    if made {
        println!("Created the admin AccessKey {} ({secret}).", key.id);
    } else {
        println!("The admin AccessKey {} ({secret}) is handed over again: a first start was interrupted.", key.id);
    }
    println!("It is saved in {} (mode 0600); `rollscale configure get` shows it.", path.display());
    crate::crash::point("admin-key-printed");
    store.setting_put(ADMIN_HANDOVER, HANDED_OVER).await?;
    crate::crash::point("admin-handover-recorded");
    Ok(())
}

/// Keeps a profile that holds one of this store's AccessKeys pointing at where this start
/// serves (another `--listen`, a free port); leaves any other profile alone.
async fn follow_endpoint(store: &Store, path: &std::path::Path, endpoint: &str) -> anyhow::Result<()> {
    if let Ok(Some(mut existing)) = profile::read(path) {
        let ours = store.access_key_get(&existing.access_key_id).await?.is_some();
        if ours && existing.endpoint != endpoint {
            existing.endpoint = endpoint.to_string();
            profile::save(&existing, Some(path))?;
        }
    }
    Ok(())
}

async fn print_groups(service: &Service) -> anyhow::Result<()> {
    for group in service.groups(None, None).await? {
        let configuration = match &group.source {
            rollscale_core::domain::InstanceSource::Configuration(id) => id.to_string(),
            _ => "-".into(),
        };
        let instances = service.instances(Some(&group.id), None, None).await?;
        println!(
            "Scaling group {} ({}): {} instance(s), scaling configuration {}, {}.",
            group.id,
            group.name,
            instances.len(),
            configuration,
            group.status
        );
    }
    Ok(())
}

/// A database URL without its password, for output.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// The alerts' webhook client, trusting `--webhook-ca-file` too when given.
fn webhook_notifier(
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<Arc<rollscale_fleet::notify::WebhookNotifier>> {
    let pem = match ca_file {
        None => None,
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("--webhook-ca-file {}: cannot read it", path.display()))?)
        }
    };
    let notifier = rollscale_fleet::notify::WebhookNotifier::with_roots(Duration::from_secs(10), pem.as_deref())
        .map_err(|error| anyhow::anyhow!("--webhook-ca-file: {error}"))?;
    Ok(Arc::new(notifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn new_service() -> Service {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let fleet = SimFleet::new(SimConfig { latency_ms: 0, ..SimConfig::default() });
        let lb = SimLoadBalancer::new(SimLbConfig::default()).with_fleet(fleet.clone());
        Service::new(Engine::new(store, Arc::new(fleet), Arc::new(lb), EngineConfig::default()))
    }

    /// (groups, configurations, images, packages, load balancers) by name.
    async fn demo_pieces(service: &Service) -> (Vec<String>, Vec<String>, usize, usize, Vec<String>) {
        let groups = service.groups(None, None).await.unwrap();
        let configurations = service.configurations(None, None).await.unwrap();
        let lbs = service.engine.store().lb_list().await.unwrap();
        (
            groups.iter().map(|g| format!("{} {}", g.name, g.status)).collect(),
            configurations.iter().map(|c| format!("{} {}", c.name, c.state)).collect(),
            service.images().await.unwrap().len(),
            service.packages(None).await.unwrap().len(),
            lbs.into_iter().map(|lb| lb.value.name).collect(),
        )
    }

    #[tokio::test]
    async fn the_demo_is_finished_from_any_piece_an_earlier_start_made_and_made_once() {
        let whole =
            (vec!["demo Active".to_string()], vec!["demo-config Active".to_string()], 3, 2, vec![DEMO_LB.to_string()]);
        // Made whole, then made again: nothing twice.
        let service = new_service().await;
        create_demo(&service, 2).await.unwrap();
        assert_eq!(demo_pieces(&service).await, whole);
        create_demo(&service, 2).await.unwrap();
        assert_eq!(demo_pieces(&service).await, whole);

        // What a killed start left: one image, a package, the group with a configuration that
        // was never activated (killed between the two writes of CreateScalingConfiguration).
        let service = new_service().await;
        service.create_image(DEMO_IMAGES[0], None, Some(OsType::Linux)).await.unwrap();
        create_demo_packages(&service).await.unwrap();
        let lb = demo_load_balancer(service.engine.store()).await.unwrap();
        let group = service
            .create_group(NewGroup {
                name: "demo".into(),
                max_size: 100,
                desired_capacity: Some(2),
                load_balancer_ids: vec![lb],
                ..NewGroup::default()
            })
            .await
            .unwrap();
        let configuration = rollscale_core::domain::ScalingConfiguration {
            id: rollscale_core::ids::ScalingConfigurationId::from_random(random_bits()),
            name: "demo-config".into(),
            group_id: group.id.clone(),
            image_id: DEMO_IMAGES[0].into(),
            instance_type: "sim.small".into(),
            state: rollscale_core::domain::ConfigurationState::Inactive,
            containers: Vec::new(),
            created_at: now_millis(),
        };
        service.engine.store().configuration_insert(&configuration).await.unwrap();
        create_demo(&service, 2).await.unwrap();
        assert_eq!(demo_pieces(&service).await, whole);
        let group = service.group(&group.id).await.unwrap();
        assert_eq!(group.source, rollscale_core::domain::InstanceSource::Configuration(configuration.id));
    }

    #[tokio::test]
    async fn the_admin_key_is_handed_over_until_that_is_recorded_and_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let handover = async |service: &Service| service.engine.store().setting_get(ADMIN_HANDOVER).await.unwrap();

        // A new store: a key made, the profile written, the hand-over recorded.
        let service = new_service().await;
        hand_over_admin_key(&service, "http://127.0.0.1:1", Some(&path)).await.unwrap();
        let first = profile::read(&path).unwrap().unwrap();
        assert_eq!(handover(&service).await.as_deref(), Some(HANDED_OVER));
        // Later starts keep it, following the endpoint.
        hand_over_admin_key(&service, "http://127.0.0.1:2", Some(&path)).await.unwrap();
        let again = profile::read(&path).unwrap().unwrap();
        assert_eq!(
            (again.access_key_id.as_str(), again.endpoint.as_str()),
            (first.access_key_id.as_str(), "http://127.0.0.1:2")
        );
        assert_eq!(service.engine.store().access_key_count().await.unwrap(), 1);

        // Killed after the key was made, before the profile was written: the same key is
        // handed over, and a profile of something else at the path is replaced, as a first
        // start replaces it.
        let service = new_service().await;
        let store = service.engine.store();
        store.setting_put(ADMIN_HANDOVER, HANDOVER_PENDING).await.unwrap();
        let key = service.create_admin_access_key(ADMIN_USER).await.unwrap();
        let foreign = Profile {
            endpoint: "http://elsewhere:1".into(),
            access_key_id: "LTAIother".into(),
            access_key_secret: "x".into(),
            region_id: "local".into(),
        };
        profile::save(&foreign, Some(&path)).unwrap();
        hand_over_admin_key(&service, "http://127.0.0.1:3", Some(&path)).await.unwrap();
        let saved = profile::read(&path).unwrap().unwrap();
        assert_eq!((saved.access_key_id, saved.access_key_secret), (key.id.clone(), key.secret.clone()));
        assert_eq!(store.access_key_count().await.unwrap(), 1, "no second key");
        assert_eq!(handover(&service).await.as_deref(), Some(HANDED_OVER));

        // A store of an earlier version (keys, no record): a missing profile (what a kill of
        // its first start left) is written with the admin key; an existing one, whatever it
        // holds, is the operator's and left alone.
        let service = new_service().await;
        let key = service.create_admin_access_key(ADMIN_USER).await.unwrap();
        std::fs::remove_file(&path).unwrap();
        hand_over_admin_key(&service, "http://127.0.0.1:4", Some(&path)).await.unwrap();
        assert_eq!(profile::read(&path).unwrap().unwrap().access_key_id, key.id);
        let service = new_service().await;
        service.create_admin_access_key(ADMIN_USER).await.unwrap();
        profile::save(&foreign, Some(&path)).unwrap();
        hand_over_admin_key(&service, "http://127.0.0.1:5", Some(&path)).await.unwrap();
        assert_eq!(profile::read(&path).unwrap().unwrap(), foreign);
        assert_eq!(handover(&service).await.as_deref(), Some(HANDED_OVER));
    }

    #[tokio::test]
    async fn what_is_not_the_demos_is_a_conflict_and_left_alone() {
        let service = new_service().await;
        let group =
            service.create_group(NewGroup { name: "demo".into(), max_size: 5, ..NewGroup::default() }).await.unwrap();
        let error = create_demo(&service, 2).await.unwrap_err();
        assert!(error.is::<DemoConflict>(), "{error}");
        assert!(error.to_string().contains(group.id.as_str()), "{error}");
        let groups = service.groups(None, None).await.unwrap();
        assert_eq!(groups.len(), 1);
        assert!(groups[0].load_balancer_ids.is_empty(), "the operator's group is untouched");

        let service = new_service().await;
        service.create_package("wordpress", "v3", "echo mine", "").await.unwrap();
        let error = create_demo(&service, 2).await.unwrap_err();
        assert!(error.is::<DemoConflict>() && error.to_string().contains("wordpress v3"), "{error}");
    }
}
