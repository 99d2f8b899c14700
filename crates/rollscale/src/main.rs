//! `rollscale`: run the service, and talk to it.
//!
//! `rollscale up` runs a server; `rollscale configure` sets the profile the other commands
//! call with; `rollscale <product> <Action> --Name value …` calls any API action the way the
//! `aliyun` CLI does; `rollscale rolling-update …` (alias `ru`) is the daily work of rolling
//! updates. Every client command goes through the signed RPC API, nothing else.

/// `print!` that ends the process quietly when stdout is closed (`rollscale … | head`).
macro_rules! out {
    ($($arg:tt)*) => { $crate::write_stdout(format_args!($($arg)*)) };
}

/// `println!` that ends the process quietly when stdout is closed.
macro_rules! outln {
    () => { $crate::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

mod access;
mod actions;
mod crash;
mod files;
mod image_task;
mod logs;
mod profile;
mod rolling;
mod up;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::fmt;
use std::io::Write;
use std::process::ExitCode;

/// Exit status: success (and a task that ended in Success).
pub const EXIT_OK: u8 = 0;
/// Exit status: the API refused the call, or the server could not be reached.
pub const EXIT_API_ERROR: u8 = 1;
/// Exit status: the command line is wrong.
pub const EXIT_USAGE: u8 = 2;
/// Exit status of `--wait`: the task waits (paused between batches or on failures).
pub const EXIT_WAITING: u8 = 3;
/// Exit status of `--wait`: the task ended Failed or Cancelled.
pub const EXIT_FAILED: u8 = 4;

/// Writes to stdout. A reader that went away (a closed pipe) ends the process with status 0,
/// as a shell pipeline expects; other write errors are ignored, as `print!` cannot report them.
pub fn write_stdout(args: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(EXIT_OK));
        }
    }
}

/// A command line that cannot be run as given (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> UsageError {
        UsageError(message.into())
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

const AFTER_HELP: &str = "\
API calls, as with the `aliyun` CLI:
  rollscale oos <Action> [--Name value]...   OOS 2019-06-01: StartExecution, ListExecutions,
                                             ListTaskExecutions, NotifyExecution, CancelExecution
  rollscale ess <Action> [--Name value]...   ESS 2014-08-28 (--version 2022-02-22 for the newer API)
  rollscale cms <Action> [--Name value]...   CMS 2019-01-01: alert rules (PutEventRule, PutEventRuleTargets, …)
  Lists: --InstanceId.1 i-a --InstanceId.2 i-b, or --InstanceId i-a --InstanceId i-b.
  More: rollscale oos --help

Getting started:
  rollscale up                                   run a local server; it saves a profile for you
  rollscale ess DescribeScalingGroups            check that the profile works
  rollscale ru start --group asg-… --image IMG --batches 2 --wait
  rollscale oos StartExecution --TemplateName ACS-ESS-RollingUpdateByRunCommandInScalingGroup \\
      --Parameters '{\"invokeType\":\"invoke\",\"scalingGroupId\":\"asg-…\",\"invokeScript\":\"df -h\"}'
  rollscale oos ListExecutions --ExecutionId exec-…
  rollscale image-task create --instance i-… --configuration asc-… --wait

Profile: $ROLLSCALE_CONFIG, else ~/.rollscale/config.json. ROLLSCALE_ENDPOINT,
ROLLSCALE_ACCESS_KEY_ID and ROLLSCALE_ACCESS_KEY_SECRET override it. RUST_LOG sets the log level.

Exit status: 0 success · 1 API or connection error · 2 usage error ·
with --wait: 3 task waiting (paused) · 4 task Failed or Cancelled.";

const UP_AFTER_HELP: &str = "\
Configuration: every flag can be set in a TOML file by its long name (--config FILE, or
ROLLSCALE_CONFIG_FILE): listen = \"127.0.0.1:7878\", no-demo = true, sim-fail-instance = [\"i-1\"].
A flag on the command line wins over its environment variable, which wins over the file,
which wins over the default. --print-config prints the result, secrets masked, and exits.

Logs: on stderr, RUST_LOG sets the level; --log-format json writes one JSON object a line,
with request_id, execution_id and instance_id where they apply.";

/// Self-hosted Auto Scaling with batch rolling updates, speaking the Alibaba Cloud API.
#[derive(Debug, Parser)]
#[command(
    name = "rollscale",
    version,
    about = "Self-hosted Auto Scaling with batch rolling updates, speaking the Alibaba Cloud OOS and ESS APIs",
    long_about = "rollscale keeps scaling groups of instances at their desired size and rolls changes \
                  (a new image, a script, a package) through them batch by batch, with pauses, \
                  per-instance retry/skip, cancel and rollback.\n\n\
                  It serves the Alibaba Cloud RPC API (OOS rolling-update templates and ESS), so \
                  `aliyun` commands work with `aliyun` replaced by `rollscale`.",
    after_help = AFTER_HELP,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a rollscale server (API, engine, store) and save a profile to call it with.
    #[command(after_help = UP_AFTER_HELP)]
    Up(up::UpArgs),
    /// Copy the SQLite store of `rollscale up`, and the server key that opens its secrets, into
    /// a new directory, while it serves; `rollscale up --data-dir PATH` serves the copy.
    Backup(up::backup::BackupArgs),
    /// Set the profile: endpoint, AccessKey and region (`configure get` prints it).
    Configure(profile::ConfigureArgs),
    /// Rolling updates: start, list, show, wait, continue, retry, skip, cancel, rollback.
    #[command(name = "rolling-update", visible_alias = "ru")]
    RollingUpdate(rolling::RollingUpdateArgs),
    /// Image update tasks: make an image from an instance and put it into scaling configurations, now or on a schedule.
    #[command(name = "image-task")]
    ImageTask(image_task::ImageTaskArgs),
    /// Print a bearer token for the REST API, made from the profile's AccessKey (no call).
    Token(TokenArgs),
    /// Users: create, list, delete, attach and detach policies (RAM).
    User(access::UserArgs),
    /// AccessKeys: create, list, disable, enable, delete (RAM).
    Key(access::KeyArgs),
    /// `rollscale <product> <Action> --Name value …`: call an API action (products: oos, ess, ecs, ram).
    #[command(external_subcommand)]
    Api(Vec<String>),
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// Lifetime in seconds (60 to 86400).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(60..=86_400))]
    ttl: i64,
}

/// `Authorization: Bearer <token>` for `/v1/…`, valid for `ttl` seconds (and no longer than the
/// server's `--token-max-session-s`); disabling the AccessKey revokes it for good, deleting it
/// too.
fn token(args: TokenArgs) -> anyhow::Result<()> {
    let profile = profile::load()?;
    let expires = chrono::Utc::now().timestamp() + args.ttl;
    println!("{}", rollscale_client::token::make_token(&profile.access_key_id, &profile.access_key_secret, expires));
    Ok(())
}

/// Prints an error as `ERROR: …` and gives its exit status.
fn report(error: &anyhow::Error) -> u8 {
    if let Some(api) = error.downcast_ref::<rollscale_client::ApiError>() {
        eprintln!("ERROR: {api}");
        return EXIT_API_ERROR;
    }
    if let Some(usage) = error.downcast_ref::<UsageError>() {
        eprintln!("ERROR: {usage}");
        eprintln!("(see `rollscale --help`)");
        return EXIT_USAGE;
    }
    eprintln!("ERROR: {error:#}");
    EXIT_API_ERROR
}

async fn run(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Up(args) => up::run(args).await.map(|()| EXIT_OK),
        Command::Backup(args) => up::backup::run(args).await.map(|()| EXIT_OK),
        Command::Configure(args) => profile::configure(args).map(|()| EXIT_OK),
        Command::RollingUpdate(args) => rolling::run(args).await,
        Command::ImageTask(args) => image_task::run(args).await,
        Command::Token(args) => token(args).map(|()| EXIT_OK),
        Command::User(args) => access::run_user(args).await,
        Command::Key(args) => access::run_key(args).await,
        Command::Api(args) => actions::run(args).await.map(|()| EXIT_OK),
    }
}

fn main() -> ExitCode {
    // `up` reads its configuration file (--config) into its flags' defaults.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (matches, config_file) = match up::config::parse(Cli::command(), &args) {
        Ok(parsed) => parsed,
        Err(up::config::ParseError::Clap(error)) => error.exit(),
        Err(up::config::ParseError::File(error)) => return ExitCode::from(report(&error.into())),
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match &cli.command {
        Command::Up(args) if args.config.print_config => {
            let up = up::config::up_command(&Cli::command());
            let up_matches = matches.subcommand_matches("up").unwrap_or(&matches);
            out!("{}", up::config::print(&up, up_matches, config_file.as_ref()));
            return ExitCode::from(EXIT_OK);
        }
        Command::Up(args) => logs::init("info", args.logs.log_format),
        _ => logs::init("warn", logs::LogFormat::Human),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return ExitCode::from(report(&anyhow::Error::new(error).context("cannot start the runtime"))),
    };
    let code = match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(error) => report(&error),
    };
    // Whatever still runs (work `up`'s shutdown timeout cut short, a blocking lookup) does not
    // hold the exit up: `up` stops within its bound.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("rollscale").chain(args.iter().copied()))
    }

    #[test]
    fn products_go_to_the_generic_caller() {
        let cli = parse(&["oos", "ListExecutions", "--ExecutionId", "exec-1"]).unwrap();
        match cli.command {
            Command::Api(args) => {
                assert_eq!(args, ["oos", "ListExecutions", "--ExecutionId", "exec-1"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rolling_update_alias_and_start_groups() {
        let cli =
            parse(&["ru", "start", "--group", "asg-1", "--package", "wordpress", "--version", "v4", "-o", "json"])
                .unwrap();
        let Command::RollingUpdate(args) = cli.command else { panic!("not rolling-update") };
        assert_eq!(args.output, rolling::OutputFormat::Json);
        // Exactly one kind of change.
        assert!(parse(&["ru", "start", "--group", "asg-1"]).is_err());
        assert!(parse(&["rolling-update", "start", "--group", "asg-1", "--image", "a", "--script", "b"]).is_err());
        // A package needs its version; kind options need their kind.
        let change_error = |args: &[&str]| {
            let Command::RollingUpdate(rolling::RollingUpdateArgs {
                command: rolling::RollingCommand::Start(start),
                ..
            }) = parse(args).unwrap().command
            else {
                panic!("not start")
            };
            start.change().unwrap_err().downcast::<UsageError>().unwrap().to_string()
        };
        assert!(change_error(&["ru", "start", "--group", "asg-1", "--package", "wordpress"]).contains("--version"));
        assert!(change_error(&["ru", "start", "--group", "asg-1", "--script", "x", "--rollback-image", "y"])
            .contains("--rollback-image does not apply"));
        assert!(change_error(&["ru", "start", "--group", "asg-1", "--image", "x", "--timeout", "5"])
            .contains("--timeout does not apply"));
        assert!(change_error(&["ru", "start", "--group", "asg-1", "--image", "x", "--version", "5"])
            .contains("--version does not apply"));
        assert!(parse(&["ru", "start", "--group", "asg-1", "--script", "x", "--batches", "101"]).is_err());
        assert!(parse(&["ru", "start", "--group", "g-1", "--script", "x"]).is_err());
        let ok = parse(&[
            "ru",
            "start",
            "--group",
            "asg-1",
            "--script-file",
            "/x.sh",
            "--pause",
            "EveryBatchPause",
            "--wait",
        ]);
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn instance_commands_take_two_ids() {
        assert!(parse(&["ru", "retry", "exec-1", "i-1"]).is_ok());
        assert!(parse(&["ru", "skip", "exec-1", "exec-child", "--wait"]).is_ok());
        assert!(parse(&["ru", "cancel-instance", "exec-1"]).is_err());
        assert!(parse(&["ru", "cancel", "exec-1", "--restore"]).is_ok());
        assert!(parse(&["ru", "rollback", "exec-1", "--version", "v3", "--batches", "2"]).is_ok());
    }

    #[test]
    fn start_takes_one_kind_of_change() {
        let containers = r#"[{"name": "app", "image": "app:2"}]"#;
        assert!(parse(&["ru", "start", "--group", "asg-1", "--containers", containers]).is_ok());
        assert!(parse(&["ru", "start", "--group", "asg-1", "--containers", containers, "--image", "x"]).is_err());
        assert!(parse(&["ru", "start", "--group", "asg-1", "--containers", "not json"]).is_err());
        assert!(parse(&["ru", "start", "--group", "asg-1"]).is_err(), "a change is required");
    }

    #[test]
    fn configure_get_and_flags() {
        assert!(parse(&["configure", "get"]).is_ok());
        assert!(parse(&["configure", "--endpoint", "http://127.0.0.1:8080", "--region-id", "local"]).is_ok());
    }

    #[test]
    fn errors_map_to_exit_statuses() {
        let api = rollscale_client::ApiError {
            http_status: Some(400),
            code: "InvalidParameter".into(),
            message: "bad".into(),
            request_id: "R".into(),
        };
        assert_eq!(report(&anyhow::Error::new(api)), EXIT_API_ERROR);
        assert_eq!(report(&UsageError::new("no").into()), EXIT_USAGE);
        assert_eq!(report(&anyhow::anyhow!("other")), EXIT_API_ERROR);
    }
}
