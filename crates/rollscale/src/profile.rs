//! The client profile: which rollscale endpoint to call and with which AccessKey.
//!
//! It lives in one JSON file (`$ROLLSCALE_CONFIG`, else `~/.rollscale/config.json`), written
//! atomically with mode 0600. Environment variables override it field by field, so CI can run
//! without a file. `rollscale configure` edits the file; `rollscale up` writes it.

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Environment variable naming the profile file.
pub const ENV_CONFIG: &str = "ROLLSCALE_CONFIG";
/// Environment variable overriding the profile's endpoint.
pub const ENV_ENDPOINT: &str = "ROLLSCALE_ENDPOINT";
/// Environment variable overriding the profile's AccessKey id.
pub const ENV_ACCESS_KEY_ID: &str = "ROLLSCALE_ACCESS_KEY_ID";
/// Environment variable overriding the profile's AccessKey secret.
pub const ENV_ACCESS_KEY_SECRET: &str = "ROLLSCALE_ACCESS_KEY_SECRET";

/// The region a profile uses when none is configured.
pub const DEFAULT_REGION_ID: &str = "local";

fn default_region_id() -> String {
    DEFAULT_REGION_ID.to_string()
}

/// Where and how to call rollscale. Serialized with exactly the keys `endpoint`,
/// `access_key_id`, `access_key_secret` and `region_id`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub access_key_id: String,
    #[serde(default)]
    pub access_key_secret: String,
    #[serde(default = "default_region_id")]
    pub region_id: String,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            endpoint: String::new(),
            access_key_id: String::new(),
            access_key_secret: String::new(),
            region_id: default_region_id(),
        }
    }
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &redact(&self.access_key_secret))
            .field("region_id", &self.region_id)
            .finish()
    }
}

pub use rollscale_client::redact;

impl Profile {
    /// Applies the environment overrides, read through `lookup` (tests pass a map).
    pub fn with_overrides(mut self, lookup: impl Fn(&str) -> Option<String>) -> Profile {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        if let Some(endpoint) = get(ENV_ENDPOINT) {
            self.endpoint = endpoint.trim().to_string();
        }
        if let Some(id) = get(ENV_ACCESS_KEY_ID) {
            self.access_key_id = id.trim().to_string();
        }
        if let Some(secret) = get(ENV_ACCESS_KEY_SECRET) {
            self.access_key_secret = secret;
        }
        if self.region_id.trim().is_empty() {
            self.region_id = default_region_id();
        }
        self
    }

    /// The `configure` flags of the fields a call cannot go without and that are unset.
    fn missing_fields(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.endpoint.trim().is_empty() {
            missing.push("--endpoint");
        }
        if self.access_key_id.trim().is_empty() {
            missing.push("--access-key-id");
        }
        if self.access_key_secret.is_empty() {
            missing.push("--access-key-secret");
        }
        missing
    }
}

/// The profile file: `$ROLLSCALE_CONFIG` when set, else `$HOME/.rollscale/config.json`.
pub fn config_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(ENV_CONFIG).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow!("HOME is not set; set {ENV_CONFIG} to the profile file to use"))?;
    Ok(PathBuf::from(home).join(".rollscale").join("config.json"))
}

/// Reads the profile file at `path` as it is stored, without environment overrides.
/// `Ok(None)` when there is no such file.
pub fn read(path: &Path) -> anyhow::Result<Option<Profile>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("cannot read the profile {}", path.display())),
    };
    let profile: Profile = serde_json::from_str(&text).with_context(|| {
        format!(
            "the profile {} is not valid JSON with endpoint, access_key_id, access_key_secret, region_id",
            path.display()
        )
    })?;
    Ok(Some(profile))
}

/// The profile to call with: the file (if any) with the environment overrides applied.
/// Fails, naming what is missing, when the endpoint or the AccessKey is unknown.
pub fn load() -> anyhow::Result<Profile> {
    let path = config_path()?;
    let stored = read(&path)?;
    let found = stored.is_some();
    let profile = stored.unwrap_or_default().with_overrides(|name| std::env::var(name).ok());
    let missing = profile.missing_fields();
    if missing.is_empty() {
        return Ok(profile);
    }
    if found {
        bail!(
            "the profile {} is incomplete: run `rollscale up`, or `rollscale configure {} …`",
            path.display(),
            missing.join(" … ")
        );
    }
    bail!(
        "no rollscale profile at {}: run `rollscale up` or `rollscale configure` \
         (or set {ENV_ENDPOINT}, {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET})",
        path.display()
    )
}

/// Writes `profile` to `path` (default: [`config_path`]) atomically and durably, as a file of
/// mode 0600 in a directory created with mode 0700: a temporary file beside it, synced, renamed
/// over it, then the directory synced, so after a crash (`kill -9`, a power cut) the file is
/// either the old one or the new one, and once this returns the new one stays. Temporary files
/// that killed processes left beside it are removed. Returns the path written.
pub fn save(profile: &Profile, path: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match path {
        Some(path) => path.to_path_buf(),
        None => config_path()?,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} is not a file path", path.display()))?
        .to_string_lossy()
        .into_owned();
    let prefix = format!(".{file_name}.");
    crate::files::remove_stale_temps(&dir, &prefix);
    let temp = dir.join(format!("{prefix}{}.{:08x}.tmp", std::process::id(), rand::random::<u32>()));
    let mut text = serde_json::to_string_pretty(profile).context("cannot serialize the profile")?;
    text.push('\n');
    let written = write_private_file(&temp, text.as_bytes())
        .and_then(|()| {
            crate::crash::point("profile-temp-written");
            std::fs::rename(&temp, &path)
        })
        .with_context(|| format!("cannot write the profile {}", path.display()));
    if written.is_err() {
        // Best effort: the temporary file is useless once the rename failed.
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    crate::crash::point("profile-renamed");
    crate::files::sync_dir(&dir).with_context(|| format!("cannot write the profile {}", path.display()))?;
    Ok(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the directory {}", dir.display()))
}

fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// `rollscale configure`: set the profile's fields.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "With no flags in a terminal, asks for each field in turn (Enter keeps the current value).\n\
                  The profile is stored at $ROLLSCALE_CONFIG, else ~/.rollscale/config.json (mode 0600).\n\
                  ROLLSCALE_ENDPOINT, ROLLSCALE_ACCESS_KEY_ID and ROLLSCALE_ACCESS_KEY_SECRET override it per call.\n\n\
                  Examples:\n  \
                  rollscale configure --endpoint http://127.0.0.1:8080 --access-key-id LTAI... --access-key-secret ...\n  \
                  rollscale configure get"
)]
pub struct ConfigureArgs {
    #[command(subcommand)]
    pub command: Option<ConfigureCommand>,
    /// The rollscale server's URL, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The AccessKey id to sign requests with.
    #[arg(long, value_name = "ID")]
    pub access_key_id: Option<String>,
    /// The AccessKey secret to sign requests with (kept in the profile file, mode 0600).
    #[arg(long, value_name = "SECRET")]
    pub access_key_secret: Option<String>,
    /// The region sent as RegionId [default: local].
    #[arg(long, value_name = "REGION")]
    pub region_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigureCommand {
    /// Print the profile in effect (file plus environment overrides) as JSON, secret included.
    Get,
}

/// Runs `rollscale configure`.
pub fn configure(args: ConfigureArgs) -> anyhow::Result<()> {
    if let Some(ConfigureCommand::Get) = args.command {
        let profile = load()?;
        let text = serde_json::to_string_pretty(&profile).context("cannot serialize the profile")?;
        outln!("{text}");
        return Ok(());
    }
    let path = config_path()?;
    let mut profile = read(&path)?.unwrap_or_default();
    let any_flag = args.endpoint.is_some()
        || args.access_key_id.is_some()
        || args.access_key_secret.is_some()
        || args.region_id.is_some();
    if any_flag {
        apply_fields(&mut profile, args)?;
    } else if std::io::stdin().is_terminal() {
        prompt_fields(&mut profile)?;
    } else {
        return Err(crate::UsageError::new(
            "nothing to configure: give --endpoint, --access-key-id, --access-key-secret or --region-id \
             (or run `rollscale configure` in a terminal to be asked)",
        )
        .into());
    }
    let written = save(&profile, Some(&path))?;
    eprintln!("Saved the profile to {}", written.display());
    let missing = profile.missing_fields();
    if !missing.is_empty() {
        eprintln!("Still missing: {} (set with `rollscale configure {} …`)", missing.join(", "), missing[0]);
    }
    Ok(())
}

fn apply_fields(profile: &mut Profile, args: ConfigureArgs) -> anyhow::Result<()> {
    if let Some(endpoint) = args.endpoint {
        profile.endpoint = normalize_endpoint(&endpoint)?;
    }
    if let Some(id) = args.access_key_id {
        profile.access_key_id = id.trim().to_string();
    }
    if let Some(secret) = args.access_key_secret {
        profile.access_key_secret = secret;
    }
    if let Some(region) = args.region_id {
        let region = region.trim();
        profile.region_id = if region.is_empty() { default_region_id() } else { region.to_string() };
    }
    Ok(())
}

/// A client for the profile's endpoint and AccessKey.
pub fn client(profile: &Profile) -> anyhow::Result<rollscale_client::Client> {
    let endpoint = normalize_endpoint(&profile.endpoint)?;
    Ok(rollscale_client::Client::new(
        &endpoint,
        &profile.access_key_id,
        &profile.access_key_secret,
        &profile.region_id,
    )?)
}

/// Checks an endpoint and puts it in the form `http://host:port` (no trailing slash); a bare
/// `host:port` gets `http://`.
pub fn normalize_endpoint(text: &str) -> anyhow::Result<String> {
    let text = text.trim().trim_end_matches('/');
    if text.is_empty() {
        return Err(crate::UsageError::new("the endpoint is empty; give a URL like http://127.0.0.1:8080").into());
    }
    let with_scheme = if text.contains("://") { text.to_string() } else { format!("http://{text}") };
    if !(with_scheme.starts_with("http://") || with_scheme.starts_with("https://")) {
        return Err(crate::UsageError::new(format!("the endpoint {text} must be an http:// or https:// URL")).into());
    }
    if reqwest::Url::parse(&with_scheme).is_err() {
        return Err(crate::UsageError::new(format!("the endpoint {text} is not a valid URL")).into());
    }
    Ok(with_scheme)
}

fn prompt_fields(profile: &mut Profile) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let endpoint = prompt_line(&mut input, "Endpoint", &profile.endpoint, false)?;
    if !endpoint.is_empty() {
        profile.endpoint = normalize_endpoint(&endpoint)?;
    }
    let id = prompt_line(&mut input, "AccessKey id", &profile.access_key_id, false)?;
    if !id.is_empty() {
        profile.access_key_id = id;
    }
    let secret = prompt_line(&mut input, "AccessKey secret", &redact(&profile.access_key_secret), true)?;
    if !secret.is_empty() {
        profile.access_key_secret = secret;
    }
    let region = prompt_line(&mut input, "Region id", &profile.region_id, false)?;
    if !region.is_empty() {
        profile.region_id = region;
    }
    Ok(())
}

/// Asks for one value; an empty answer keeps `current`. A secret is read with echo off when
/// `stty` can do that.
fn prompt_line(input: &mut impl BufRead, label: &str, current: &str, secret: bool) -> anyhow::Result<String> {
    let mut stderr = std::io::stderr();
    if current.is_empty() {
        write!(stderr, "{label}: ")?;
    } else {
        write!(stderr, "{label} [{current}]: ")?;
    }
    stderr.flush()?;
    let echo_off = secret && set_echo(false);
    let mut line = String::new();
    let read = input.read_line(&mut line);
    if echo_off {
        set_echo(true);
        writeln!(stderr)?;
    }
    read.context("cannot read from the terminal")?;
    Ok(line.trim().to_string())
}

/// Turns the terminal's echo on or off with `stty`; false when that did not work.
fn set_echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sample() -> Profile {
        Profile {
            endpoint: "http://127.0.0.1:8080".into(),
            access_key_id: "LTAIexample".into(),
            access_key_secret: "s3cr3t-value-0123456789".into(),
            region_id: "local".into(),
        }
    }

    #[test]
    fn save_then_read_roundtrips_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("config.json");
        let written = save(&sample(), Some(&path)).unwrap();
        assert_eq!(written, path);
        assert_eq!(read(&path).unwrap(), Some(sample()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let file_mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(file_mode, 0o600);
            let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
            assert_eq!(dir_mode, 0o700);
        }
        // Saving again replaces the file and leaves no temporary file behind.
        let mut changed = sample();
        changed.region_id = "cn-hangzhou".into();
        save(&changed, Some(&path)).unwrap();
        assert_eq!(read(&path).unwrap(), Some(changed));
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.json")]);
    }

    #[test]
    fn stored_json_has_exactly_the_four_keys() {
        let value = serde_json::to_value(sample()).unwrap();
        let mut keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["access_key_id", "access_key_secret", "endpoint", "region_id"]);
    }

    #[test]
    fn missing_file_reads_as_none_and_region_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(&dir.path().join("absent.json")).unwrap(), None);
        let path = dir.path().join("partial.json");
        std::fs::write(&path, r#"{"endpoint":"http://h:1","access_key_id":"a","access_key_secret":"b"}"#).unwrap();
        assert_eq!(read(&path).unwrap().unwrap().region_id, "local");
    }

    #[test]
    fn environment_overrides_apply_field_by_field() {
        let env: HashMap<&str, &str> =
            [(ENV_ENDPOINT, "http://other:9"), (ENV_ACCESS_KEY_SECRET, "env-secret"), (ENV_ACCESS_KEY_ID, "")]
                .into_iter()
                .collect();
        let profile = sample().with_overrides(|name| env.get(name).map(|v| v.to_string()));
        assert_eq!(profile.endpoint, "http://other:9");
        assert_eq!(profile.access_key_secret, "env-secret");
        assert_eq!(profile.access_key_id, "LTAIexample", "an empty variable does not override");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert!(text.contains("****6789"), "{text}");
        assert_eq!(redact("short"), "****");
    }

    #[test]
    fn endpoints_are_normalized() {
        assert_eq!(normalize_endpoint("127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(normalize_endpoint("https://h.example").unwrap(), "https://h.example");
        assert!(normalize_endpoint("ftp://h").is_err());
        assert!(normalize_endpoint(" ").is_err());
    }
}
