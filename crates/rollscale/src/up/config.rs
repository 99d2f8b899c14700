//! `rollscale up --config FILE`: every flag of `up` from a TOML file, and `--print-config`.
//!
//! The file's keys are the flags' long names (`listen`, `data-dir`, `no-demo`,
//! `sim-fail-instance`, …), read from clap's definition of `up`, so a new flag is a key at
//! once. A flag that is a switch takes a boolean, a repeatable one an array, a number a TOML
//! number, anything else a string. Each value becomes the flag's default before the command
//! line is parsed again, so clap's own precedence holds: a flag on the command line, then its
//! environment variable, then the file, then the built-in default. A key that is not a flag of
//! `up`, or a value of the wrong type or that the flag refuses, is a usage error naming the
//! file, the line and the key.
//!
//! `--print-config` prints the configuration `up` would run with, as a file `--config` loads,
//! each value with where it came from. A flag that can hold a secret (marked
//! `hide_env_values`, e.g. `--database-url`) is printed masked and commented out when it holds
//! one, so the output can be shared. The server key is not a flag: it is never in the file.

use crate::UsageError;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::any::TypeId;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `up`'s options about its configuration (not keys of the file themselves).
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArgs {
    /// A TOML file setting any of these flags by its long name: `listen = "0.0.0.0:7878"`,
    /// `no-demo = true`, `sim-fail-instance = ["i-1"]`. A flag given here wins over its
    /// environment variable, which wins over the file.
    #[arg(long = "config", env = "ROLLSCALE_CONFIG_FILE", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Print the configuration `up` would run with (as TOML that --config loads, each value
    /// with where it came from, secrets masked) and exit without starting anything.
    #[arg(long)]
    pub print_config: bool,
}

/// The ids of `up`'s arguments that are not keys of the file: those about the file itself.
const NOT_KEYS: [&str; 2] = ["config_file", "print_config"];

/// A configuration file as read: its path, and each key it sets with its values.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// Argument id → the values, as the command line would give them.
    values: HashMap<String, Vec<String>>,
}

/// Why the command line could not be read.
#[derive(Debug)]
pub enum ParseError {
    /// clap's own (help and version included): `exit()` prints it as clap does.
    Clap(clap::Error),
    /// The configuration file: unreadable, unknown keys, wrong values.
    File(UsageError),
}

/// Parses `args` with `cli`, the whole command line's definition; for `up` with a
/// configuration file, the file's values become its flags' defaults and the command line is
/// parsed again. Returns the matches and the file.
pub fn parse(cli: Command, args: &[OsString]) -> Result<(ArgMatches, Option<ConfigFile>), ParseError> {
    let matches = cli.clone().try_get_matches_from(args).map_err(ParseError::Clap)?;
    let Some(("up", up)) = matches.subcommand() else { return Ok((matches, None)) };
    let Some(path) = up.get_one::<PathBuf>("config_file") else { return Ok((matches, None)) };
    let text = std::fs::read_to_string(path).map_err(|error| {
        ParseError::File(UsageError::new(format!("cannot read the configuration file {}: {error}", path.display())))
    })?;
    let file = ConfigFile::parse(path, &text, &up_command(&cli)).map_err(ParseError::File)?;
    let cli = cli.mut_subcommand("up", |up| file.as_defaults(up));
    let matches = cli.try_get_matches_from(args).map_err(ParseError::Clap)?;
    Ok((matches, Some(file)))
}

/// `up`'s definition, built (every argument's action and parser set).
pub fn up_command(cli: &Command) -> Command {
    let mut up = cli.find_subcommand("up").cloned().unwrap_or_else(|| Command::new("up"));
    up.build();
    up
}

/// The arguments of `up` that are keys of the file, in their order: every one with a long
/// name but help, version and those of [`ConfigArgs`].
pub fn keys(up: &Command) -> impl Iterator<Item = (&str, &Arg)> {
    up.get_arguments().filter_map(|arg| {
        let long = arg.get_long()?;
        let meta = matches!(
            arg.get_action(),
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
        ) || NOT_KEYS.contains(&arg.get_id().as_str());
        (!meta).then_some((long, arg))
    })
}

/// What a key's value is in TOML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Integer,
    Float,
    Text,
}

impl Kind {
    fn of(arg: &Arg) -> Kind {
        if !arg.get_action().takes_values() {
            return Kind::Bool;
        }
        let id = arg.get_value_parser().type_id();
        let integers = [
            TypeId::of::<u8>(),
            TypeId::of::<u16>(),
            TypeId::of::<u32>(),
            TypeId::of::<u64>(),
            TypeId::of::<usize>(),
            TypeId::of::<i8>(),
            TypeId::of::<i16>(),
            TypeId::of::<i32>(),
            TypeId::of::<i64>(),
            TypeId::of::<isize>(),
        ];
        if integers.iter().any(|integer| id == *integer) {
            Kind::Integer
        } else if id == TypeId::of::<f64>() || id == TypeId::of::<f32>() {
            Kind::Float
        } else if id == TypeId::of::<bool>() {
            Kind::Bool
        } else {
            Kind::Text
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Bool => "a boolean (true or false)",
            Kind::Integer => "an integer",
            Kind::Float => "a number",
            Kind::Text => "a string",
        }
    }
}

fn repeatable(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// The value as the command line would give it, if it is of `kind`.
fn scalar(value: &toml_edit::Value, kind: Kind) -> Option<String> {
    match (kind, value) {
        (Kind::Bool, toml_edit::Value::Boolean(b)) => Some(b.value().to_string()),
        (Kind::Integer | Kind::Float, toml_edit::Value::Integer(i)) => Some(i.value().to_string()),
        (Kind::Float, toml_edit::Value::Float(f)) => Some(f.value().to_string()),
        (Kind::Text, toml_edit::Value::String(s)) => Some(s.value().clone()),
        _ => None,
    }
}

impl ConfigFile {
    /// Reads `text`, the file at `path`, against `up` (built).
    pub fn parse(path: &Path, text: &str, up: &Command) -> Result<ConfigFile, UsageError> {
        let document = toml_edit::Document::parse(text).map_err(|error| {
            UsageError::new(format!("{} is not valid TOML: {}", path.display(), error.to_string().trim_end()))
        })?;
        let keys: HashMap<&str, &Arg> = keys(up).collect();
        let mut values = HashMap::new();
        for (key, item) in document.as_table().iter() {
            let line = document
                .as_table()
                .get_key_value(key)
                .and_then(|(key, _)| key.span())
                .map_or(0, |span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let at = format!("{}, line {line}: `{key}`", path.display());
            let Some(arg) = keys.get(key) else {
                let hint = match keys.contains_key(key.replace('_', "-").as_str()) {
                    true => format!("; did you mean `{}`?", key.replace('_', "-")),
                    false => String::new(),
                };
                let not_here = match NOT_KEYS
                    .iter()
                    .any(|id| up.get_arguments().any(|a| a.get_id() == id && a.get_long() == Some(key)))
                {
                    true => " (it can only be given on the command line or in the environment)",
                    false => "",
                };
                return Err(UsageError::new(format!(
                    "{at} is not a flag of `rollscale up`{not_here}{hint} (the keys are the flags' long names, see `rollscale up --help`)"
                )));
            };
            let kind = Kind::of(arg);
            let wrong = |found: &str| {
                let wanted = match repeatable(arg) {
                    true => format!("an array of {}s", kind.name().trim_start_matches("an ").trim_start_matches("a ")),
                    false => kind.name().to_string(),
                };
                UsageError::new(format!("{at} takes {wanted}, not {found}"))
            };
            let Some(value) = item.as_value() else { return Err(wrong(item.type_name())) };
            let given: Vec<String> = match (repeatable(arg), value) {
                (true, toml_edit::Value::Array(array)) => array
                    .iter()
                    .map(|value| {
                        scalar(value, kind).ok_or_else(|| wrong(&format!("an array with {}", value.type_name())))
                    })
                    .collect::<Result<_, _>>()?,
                (true, _) => return Err(wrong(value.type_name())),
                (false, value) => vec![scalar(value, kind).ok_or_else(|| wrong(value.type_name()))?],
            };
            // The flag's own parser checks each value (a range, a choice, an address).
            if let Some(long) = arg.get_long() {
                for one in &given {
                    let flag = match kind {
                        Kind::Bool if !arg.get_action().takes_values() => continue,
                        _ => format!("--{long}={one}"),
                    };
                    if let Err(error) = up.clone().try_get_matches_from(["up", flag.as_str()]) {
                        return Err(UsageError::new(format!("{at}: {}", clap_message(&error))));
                    }
                }
            }
            values.insert(arg.get_id().to_string(), given);
        }
        Ok(ConfigFile { path: path.to_path_buf(), values })
    }

    /// `up` with the file's values as its flags' defaults.
    pub fn as_defaults(&self, up: Command) -> Command {
        up.mut_args(|arg| match self.values.get(arg.get_id().as_str()) {
            Some(values) => arg.default_values(values.clone()),
            None => arg,
        })
    }

    /// Whether the file sets the argument `id`.
    pub fn sets(&self, id: &str) -> bool {
        self.values.contains_key(id)
    }
}

/// clap's message for a value, on one line, without its advice.
fn clap_message(error: &clap::Error) -> String {
    let text = error.to_string();
    let text = text.split("\n\nFor more information").next().unwrap_or_default();
    let text = text.trim().trim_start_matches("error: ");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The configuration `up` runs with, as TOML that `--config` loads: each key with its value
/// and where it came from, its help above it; a key without a value is commented out, and so
/// is a value that holds a secret, masked.
pub fn print(up: &Command, matches: &ArgMatches, file: Option<&ConfigFile>) -> String {
    let mut out = String::from(
        "# The configuration of `rollscale up`, as `rollscale up --config FILE` loads it.\n\
         # Precedence: a flag on the command line, then its environment variable, then this file,\n\
         # then the default. A value that holds a secret is masked and commented out here: give it\n\
         # through its environment variable.\n",
    );
    for (key, arg) in keys(up) {
        out.push('\n');
        if let Some(help) = arg.get_help() {
            for line in wrap(&help.to_string(), 94) {
                out.push_str(format!("# {line}").trim_end());
                out.push('\n');
            }
        }
        let id = arg.get_id().as_str();
        let source = match (matches.value_source(id), file) {
            (Some(ValueSource::CommandLine), _) => "flag".to_string(),
            (Some(ValueSource::EnvVariable), _) => {
                format!("env {}", arg.get_env().map(|env| env.to_string_lossy().into_owned()).unwrap_or_default())
            }
            (Some(ValueSource::DefaultValue), Some(file)) if file.sets(id) => format!("file {}", file.path.display()),
            (Some(ValueSource::DefaultValue), _) => "default".to_string(),
            (Some(_), _) => "elsewhere".to_string(),
            (None, _) => {
                out.push_str(&format!("# {key}: not set\n"));
                continue;
            }
        };
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|values| values.map(|value| value.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let kind = Kind::of(arg);
        let masked: Vec<Option<String>> = match arg.is_hide_env_values_set() {
            true => raw.iter().map(|value| mask(value)).collect(),
            false => vec![None; raw.len()],
        };
        let shown: Vec<String> = raw
            .iter()
            .zip(&masked)
            .map(|(value, masked)| toml_value(masked.as_deref().unwrap_or(value), kind))
            .collect();
        let value = match repeatable(arg) {
            true => format!("[{}]", shown.join(", ")),
            false => shown.into_iter().next().unwrap_or_default(),
        };
        match masked.iter().any(Option::is_some) {
            true => out.push_str(&format!("# {key} = {value}  # from: {source} (masked)\n")),
            false => out.push_str(&format!("{key} = {value}  # from: {source}\n")),
        }
    }
    out
}

/// `text` in lines of at most `width` characters (a longer word alone on its line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

/// A value of `kind` as TOML.
fn toml_value(value: &str, kind: Kind) -> String {
    match kind {
        Kind::Bool if value == "true" || value == "false" => value.to_string(),
        Kind::Integer => match value.parse::<i128>() {
            Ok(integer) => integer.to_string(),
            Err(_) => toml_string(value),
        },
        Kind::Float => match value.parse::<f64>() {
            Ok(float) if float.is_nan() => "nan".to_string(),
            Ok(float) if float.is_infinite() => (if float > 0.0 { "inf" } else { "-inf" }).to_string(),
            // Debug always has a fraction or an exponent: TOML's float.
            Ok(float) => format!("{float:?}"),
            Err(_) => toml_string(value),
        },
        _ => toml_string(value),
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What to show of a value that may hold a secret, when it holds one: a URL's password (of its
/// user info, or a query parameter named like one) replaced by `****`; anything that is not a
/// URL wholly. `None`: nothing in it is secret.
pub fn mask(value: &str) -> Option<String> {
    const HIDDEN: &str = "****";
    let scheme_end = value.find(':').filter(|&end| {
        end > 0
            && value[..end].chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && value[..end].chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let Some(scheme_end) = scheme_end else {
        return (!value.is_empty()).then(|| HIDDEN.to_string());
    };
    let mut masked = false;
    let mut out = value[..=scheme_end].to_string();
    let rest = &value[scheme_end + 1..];
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    match before_query.strip_prefix("//") {
        Some(after) => {
            let authority_end = after.find('/').unwrap_or(after.len());
            let (authority, path) = after.split_at(authority_end);
            out.push_str("//");
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    match userinfo.split_once(':') {
                        Some((user, _password)) => {
                            masked = true;
                            out.push_str(&format!("{user}:{HIDDEN}"));
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push('@');
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _))
                    if ["pass", "secret", "token"].iter().any(|s| name.to_ascii_lowercase().contains(s)) =>
                {
                    masked = true;
                    format!("{name}={HIDDEN}")
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    masked.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;
    use clap::{CommandFactory, FromArgMatches};

    /// The whole command line's definition, with no environment variable read: these tests
    /// see the same whatever the environment they run in (the integration tests cover the
    /// environment's place in the precedence, in a process of their own).
    fn cli() -> Command {
        Cli::command().mut_subcommand("up", |up| up.mut_args(|arg| arg.env(None)))
    }

    fn up() -> Command {
        up_command(&cli())
    }

    /// `rollscale up ARGS` with `text` as its configuration file.
    fn parse_with(text: &str, args: &[&str]) -> Result<(ArgMatches, Option<ConfigFile>), ParseError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollscale.toml");
        std::fs::write(&path, text).unwrap();
        let mut line: Vec<OsString> = vec!["rollscale".into(), "up".into(), "--config".into(), path.into()];
        line.extend(args.iter().map(OsString::from));
        parse(cli(), &line)
    }

    fn up_args(matches: &ArgMatches) -> crate::up::UpArgs {
        let crate::Command::Up(args) = Cli::from_arg_matches(matches).unwrap().command else { panic!("not up") };
        args
    }

    fn file_error(text: &str) -> String {
        match parse_with(text, &[]) {
            Err(ParseError::File(error)) => error.to_string(),
            Err(ParseError::Clap(error)) => panic!("{text}: a clap error: {error}"),
            Ok(_) => panic!("{text}: accepted"),
        }
    }

    /// A value each key accepts, unlike its default, as the command line gives it.
    /// A value of each kind that every flag of that kind accepts (3600 is within every integer
    /// flag's range: `--shutdown-timeout` takes 1 to 3600, `--token-max-session-s` 60 and more).
    fn sample(arg: &Arg) -> Vec<String> {
        let one = match Kind::of(arg) {
            Kind::Bool => "true".to_string(),
            Kind::Integer => "3600".to_string(),
            Kind::Float => "0.5".to_string(),
            Kind::Text => match arg.get_possible_values().last() {
                Some(value) => value.get_name().to_string(),
                None if arg.get_value_parser().type_id() == TypeId::of::<std::net::SocketAddr>() => {
                    "127.0.0.1:3601".to_string()
                }
                None => format!("{}-3601", arg.get_id()),
            },
        };
        match repeatable(arg) {
            true => vec![one.clone(), format!("{one}-2")],
            false => vec![one],
        }
    }

    #[test]
    fn every_flag_of_up_can_be_set_from_the_file() {
        let up = up();
        let names: Vec<&str> = keys(&up).map(|(key, _)| key).collect();
        for expected in [
            "listen",
            "data-dir",
            "database-url",
            "no-demo",
            "demo-size",
            "sim-fail-instance",
            "docker-host",
            "haproxy-keep",
            "haproxy-backend",
            "log-format",
            "token-max-session-s",
            "lease-poll-ms",
        ] {
            assert!(names.contains(&expected), "{expected} is not a key: {names:?}");
        }
        for meta in ["config", "print-config", "help"] {
            assert!(!names.contains(&meta), "{meta} is a key");
        }
        // Every long flag of `up` is a key, but those about the file and help.
        let longs = up.get_arguments().filter_map(Arg::get_long).count();
        assert_eq!(names.len(), longs - 3);

        let mut text = String::new();
        let mut expected = Vec::new();
        for (key, arg) in keys(&up) {
            let values = sample(arg);
            let kind = Kind::of(arg);
            let shown: Vec<String> = values.iter().map(|value| toml_value(value, kind)).collect();
            match repeatable(arg) {
                true => text.push_str(&format!("{key} = [{}]\n", shown.join(", "))),
                false => text.push_str(&format!("{key} = {}\n", shown[0])),
            }
            expected.push((arg.get_id().to_string(), values));
        }
        let (matches, file) = parse_with(&text, &[]).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let file = file.unwrap();
        let up_matches = matches.subcommand_matches("up").unwrap();
        for (id, values) in &expected {
            assert!(file.sets(id), "{id}");
            assert_eq!(up_matches.value_source(id), Some(ValueSource::DefaultValue), "{id}");
            let raw: Vec<String> =
                up_matches.get_raw(id).unwrap().map(|value| value.to_string_lossy().into_owned()).collect();
            assert_eq!(&raw, values, "{id}");
        }
        let args = up_args(&matches);
        assert!(args.no_demo && args.real.haproxy_keep);
        assert_eq!((args.demo_size, args.real.haproxy_slots, args.token_max_session_s), (3600, 3600, 3600));
        assert_eq!(args.shutdown_timeout, 3600);
        assert_eq!(args.listen, "127.0.0.1:3601".parse().unwrap());
        assert_eq!(args.sim_fail_rate, 0.5);
        assert_eq!(args.logs.log_format, crate::logs::LogFormat::Json);
        assert_eq!(args.sim_fail_instances, ["sim_fail_instances-3601", "sim_fail_instances-3601-2"]);
    }

    #[test]
    fn a_flag_wins_over_the_file_which_wins_over_the_default() {
        let text = "# the demo\ndemo-size = 3\nseed = 7\nlisten = \"127.0.0.1:9\"\nsim-fail-script = [\"boom\"]\n";
        let (matches, _) = parse_with(text, &["--seed", "8", "--sim-fail-script", "bang"]).unwrap();
        let up_matches = matches.subcommand_matches("up").unwrap();
        let args = up_args(&matches);
        assert_eq!((args.demo_size, args.seed, args.sim_latency_ms), (3, 8, 5));
        assert_eq!(args.listen, "127.0.0.1:9".parse().unwrap());
        assert_eq!(args.sim_fail_scripts, ["bang"], "the command line's list replaces the file's");
        assert_eq!(up_matches.value_source("seed"), Some(ValueSource::CommandLine));
        assert_eq!(up_matches.value_source("demo_size"), Some(ValueSource::DefaultValue));
        // Without a file, nothing changes.
        let plain = parse(cli(), &["rollscale".into(), "up".into()]).unwrap();
        assert!(plain.1.is_none());
        assert_eq!(up_args(&plain.0).demo_size, 10);
        // Other commands are not concerned.
        let (_, file) = parse(cli(), &["rollscale".into(), "configure".into(), "get".into()]).unwrap();
        assert!(file.is_none());
    }

    #[test]
    fn an_unknown_key_is_refused_naming_it_and_the_file() {
        let error = file_error("listen = \"127.0.0.1:1\"\ndemo_size = 3\n");
        assert!(error.contains("rollscale.toml, line 2: `demo_size` is not a flag"), "{error}");
        assert!(error.contains("did you mean `demo-size`?"), "{error}");
        let error = file_error("no-such-flag = 1\n");
        assert!(error.contains("`no-such-flag` is not a flag of `rollscale up`"), "{error}");
        let error = file_error("config = \"other.toml\"\n");
        assert!(error.contains("only be given on the command line"), "{error}");
        let error = file_error("[up]\nlisten = \"127.0.0.1:1\"\n");
        assert!(error.contains("`up` is not a flag"), "{error}");
        // The exit status of a usage error.
        assert_eq!(crate::report(&UsageError::new(error).into()), crate::EXIT_USAGE);
    }

    #[test]
    fn a_value_of_the_wrong_type_or_refused_by_its_flag_is_an_error() {
        let cases = [
            ("demo-size = \"ten\"", "`demo-size` takes an integer, not string"),
            ("demo-size = 1.5", "`demo-size` takes an integer, not float"),
            ("no-demo = \"yes\"", "`no-demo` takes a boolean (true or false), not string"),
            ("listen = 7878", "`listen` takes a string, not integer"),
            ("sim-fail-instance = \"i-1\"", "`sim-fail-instance` takes an array of strings, not string"),
            ("sim-fail-instance = [1]", "`sim-fail-instance` takes an array of strings, not an array with integer"),
            ("lb = { kind = \"sim\" }", "`lb` takes a string, not inline table"),
            ("token-max-session-s = 10", "`token-max-session-s`: invalid value '10' for '--token-max-session-s"),
            ("fleet = \"kvm\"", "`fleet`: invalid value 'kvm' for '--fleet <FLEET>' [possible values: sim, docker]"),
            ("listen = \"nowhere\"", "`listen`: invalid value 'nowhere' for '--listen <LISTEN>'"),
            ("demo-size = -1", "`demo-size`: invalid value '-1'"),
            ("demo-size = ", "is not valid TOML: TOML parse error at line 1"),
        ];
        for (text, expected) in cases {
            let error = file_error(text);
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.contains("rollscale.toml"), "{text}: {error}");
        }
        // A float flag takes an integer too.
        let (matches, _) = parse_with("sim-fail-rate = 1", &[]).unwrap();
        assert_eq!(up_args(&matches).sim_fail_rate, 1.0);
    }

    #[test]
    fn the_printed_configuration_loads_back_to_the_same_but_masked_values() {
        let text = "demo-size = 3\nno-demo = true\nsim-fail-instance = [\"i-1\", \"i \\\"2\\\"\"]\nhealth-path = \"/health\"\n";
        let flags = [
            "--seed",
            "8",
            "--database-url",
            "postgres://rollscale:hunter2@127.0.0.1:5432/rollscale",
            "--sim-fail-script",
            "a\tb",
            "--sim-time-scale",
            "1e-7",
        ];
        let (matches, file) = parse_with(text, &flags).unwrap();
        let up = up();
        let printed = print(&up, matches.subcommand_matches("up").unwrap(), file.as_ref());
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains(
                "# database-url = \"postgres://rollscale:****@127.0.0.1:5432/rollscale\"  # from: flag (masked)"
            ),
            "{printed}"
        );
        assert!(printed.contains("\ndemo-size = 3  # from: file "), "{printed}");
        assert!(printed.contains("\nseed = 8  # from: flag\n"), "{printed}");
        assert!(printed.contains("\nlisten = \"127.0.0.1:7878\"  # from: default\n"), "{printed}");
        assert!(printed.contains("\nno-demo = true  # from: file"), "{printed}");
        assert!(printed.contains("\n# lb: not set\n"), "{printed}");

        // Loaded back, alone: every value the same, from the file; the masked one not set.
        let (again, file) = parse_with(&printed, &[]).unwrap_or_else(|e| panic!("{e:?}\n{printed}"));
        let file = file.unwrap();
        let (before, after) = (matches.subcommand_matches("up").unwrap(), again.subcommand_matches("up").unwrap());
        for (key, arg) in keys(&up) {
            let id = arg.get_id().as_str();
            // As TOML: `1e-7` is read back as `0.0000001`, the same number.
            let raw = |matches: &ArgMatches| -> Option<Vec<String>> {
                let values = matches.get_raw(id)?;
                Some(values.map(|v| toml_value(&v.to_string_lossy(), Kind::of(arg))).collect())
            };
            if key == "database-url" {
                assert_eq!(raw(after), None);
                continue;
            }
            assert_eq!(raw(after), raw(before), "{key}");
            assert_eq!(file.sets(id), raw(before).is_some(), "{key}");
        }
        let args = up_args(&again);
        assert_eq!(args.sim_fail_instances, ["i-1", "i \"2\""]);
        assert_eq!(args.sim_fail_scripts, ["a\tb"]);
        assert_eq!(args.sim_time_scale, 1e-7);
        // And printed again, the same text but for where the values came from.
        let twice = print(&up, after, Some(&file));
        let values = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|line| !line.starts_with('#'))
                .map(|line| line.split("  # from:").next().unwrap().to_string())
                .collect()
        };
        assert_eq!(values(&twice), values(&printed));
    }

    #[test]
    fn secrets_are_masked_and_nothing_else() {
        assert_eq!(mask("postgres://u:p@h:5432/db").as_deref(), Some("postgres://u:****@h:5432/db"));
        assert_eq!(
            mask("postgres://u:p:q@h/db?sslmode=require").as_deref(),
            Some("postgres://u:****@h/db?sslmode=require")
        );
        assert_eq!(
            mask("postgres://u@h/db?password=p&sslmode=require").as_deref(),
            Some("postgres://u@h/db?password=****&sslmode=require")
        );
        assert_eq!(mask("postgres://u@h/db"), None, "a user name is no secret");
        assert_eq!(mask("sqlite://./data/rollscale.db"), None);
        assert_eq!(mask("sqlite:rollscale.db"), None);
        assert_eq!(mask("not a url"), Some("****".to_string()));
        assert_eq!(mask(""), None);
    }
}
