//! HAProxy's runtime API over its stats socket: one command per connection (what
//! `echo "cmd" | socat stdio unix:PATH` does), and parsers for the answers rollscale reads.
//!
//! HAProxy answers a `set …` command with an empty line when it succeeded and with a sentence
//! ("No such server.") when it did not; queries are checked for the shape they must have, so an
//! error sentence is never mistaken for data.

use crate::FleetError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::Semaphore;

/// Most runtime-API connections open at once; more wait their turn.
const MAX_CONCURRENT_COMMANDS: usize = 8;

/// Most bytes read from one answer (a `show stat` of a few hundred servers is far smaller).
const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// A client of one HAProxy stats socket (`stats socket PATH level admin`).
#[derive(Debug)]
pub(crate) struct Cli {
    socket: PathBuf,
    timeout: Duration,
    permits: Semaphore,
}

impl Cli {
    pub(crate) fn new(socket: PathBuf, timeout: Duration) -> Self {
        Cli { socket, timeout, permits: Semaphore::new(MAX_CONCURRENT_COMMANDS) }
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one command and returns HAProxy's whole answer. A socket that cannot be reached
    /// or does not answer in time is [`FleetError::Unavailable`]: the command may or may not
    /// have taken effect.
    pub(crate) async fn raw(&self, command: &str) -> Result<String, FleetError> {
        let _permit =
            self.permits.acquire().await.map_err(|_| FleetError::Unavailable("the HAProxy client is closed".into()))?;
        let exchange = async {
            let mut stream = UnixStream::connect(&self.socket).await?;
            stream.write_all(format!("{command}\n").as_bytes()).await?;
            let mut answer = Vec::new();
            (&mut stream).take(MAX_ANSWER_BYTES).read_to_end(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        let socket = self.socket.display();
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(answer)) => Ok(String::from_utf8_lossy(&answer).into_owned()),
            Ok(Err(error)) => Err(FleetError::Unavailable(format!("HAProxy socket {socket}: {error}"))),
            Err(_) => Err(FleetError::Unavailable(format!(
                "HAProxy socket {socket} did not answer `{command}` within {:?}",
                self.timeout
            ))),
        }
    }

    /// A command that answers nothing when it succeeds (`set weight`, `set server … state`,
    /// `set table`, `clear table`).
    pub(crate) async fn set(&self, command: &str) -> Result<(), FleetError> {
        let answer = self.raw(command).await?;
        if answer.trim().is_empty() {
            Ok(())
        } else {
            Err(refused(command, &answer))
        }
    }

    /// `set server B/S addr HOST port PORT`, which reports what changed when it succeeds.
    pub(crate) async fn set_addr(&self, server: &str, host: &str, port: u16) -> Result<(), FleetError> {
        let command = format!("set server {server} addr {host} port {port}");
        let answer = self.raw(&command).await?;
        if answer.contains("changed from") || answer.contains("no need to change") {
            Ok(())
        } else {
            Err(refused(&command, &answer))
        }
    }
}

/// HAProxy answered with something else than success: a permanent failure of this command.
pub(crate) fn refused(command: &str, answer: &str) -> FleetError {
    let answer = answer.trim();
    let answer = if answer.is_empty() { "an empty answer" } else { answer };
    FleetError::Failed(format!("HAProxy refused `{command}`: {answer}"))
}

/// Checks that a word going into a runtime-API command cannot change its meaning: the CLI
/// splits on blanks and `;`, and `\` and `#` are special.
pub(crate) fn cli_word(word: &str) -> Result<&str, FleetError> {
    let safe = !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'));
    if safe {
        Ok(word)
    } else {
        Err(FleetError::Failed(format!("`{word}` cannot be used in an HAProxy runtime command")))
    }
}

/// One server of a backend, from `show servers state B`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerState {
    pub name: String,
    pub addr: String,
    pub port: u16,
    /// `srv_op_state`: 0 stopped (down), 1 starting, 2 running, 3 stopping.
    pub op_state: u32,
    /// `srv_admin_state`, a bit set: 0x01 forced maintenance, 0x02 inherited maintenance,
    /// 0x04 disabled in the configuration (kept after `state ready`), 0x08/0x10 drain,
    /// 0x20 maintenance after a resolution failure, 0x80 hostname maintenance.
    pub admin_state: u32,
    /// `srv_uweight`: the weight set by the user.
    pub weight: u32,
    /// `srv_check_state`, a bit set: 0x02 a health check is configured, 0x04 it is enabled,
    /// 0x08 it is paused (maintenance). 0 when the answer has no such column.
    pub check_state: u32,
}

impl ServerState {
    /// Whether the server is in maintenance (takes no traffic and runs no checks).
    pub fn in_maintenance(&self) -> bool {
        self.admin_state & (0x01 | 0x02 | 0x20 | 0x80) != 0
    }

    /// What the server's health check says: `Some(true)` passing (the server is up, or going
    /// down but not yet down), `Some(false)` failing (down); `None` when the server is not
    /// checked now: no check configured, checks disabled, or in maintenance.
    pub fn check_passing(&self) -> Option<bool> {
        let checked = self.check_state & 0x06 == 0x06 && self.check_state & 0x08 == 0;
        (checked && !self.in_maintenance()).then_some(self.op_state != 0)
    }
}

/// Parses `show servers state B`: a format version line `1`, a `# be_id be_name …` header and
/// one space-separated row per server.
pub(crate) fn parse_servers_state(command: &str, answer: &str) -> Result<Vec<ServerState>, FleetError> {
    let mut lines = answer.lines().map(str::trim).filter(|line| !line.is_empty());
    if lines.next() != Some("1") {
        return Err(refused(command, answer));
    }
    let header: Vec<&str> = match lines.next().and_then(|line| line.strip_prefix('#')) {
        Some(header) => header.split_whitespace().collect(),
        None => return Err(refused(command, answer)),
    };
    let column = |name: &str| {
        header.iter().position(|field| *field == name).ok_or_else(|| {
            FleetError::Failed(format!("`{command}` answered without the column {name}: {}", answer.trim()))
        })
    };
    let (name, addr, op, admin, weight, port) = (
        column("srv_name")?,
        column("srv_addr")?,
        column("srv_op_state")?,
        column("srv_admin_state")?,
        column("srv_uweight")?,
        column("srv_port")?,
    );
    let check = header.iter().position(|field| *field == "srv_check_state");
    let unreadable = |line: &str| FleetError::Failed(format!("`{command}` answered an unreadable row: {line}"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let field = |index: usize| fields.get(index).copied().ok_or_else(|| unreadable(line));
            let number = |index: usize| field(index).and_then(|text| text.parse::<u32>().map_err(|_| unreadable(line)));
            Ok(ServerState {
                name: field(name)?.to_string(),
                addr: field(addr)?.to_string(),
                port: field(port)?.parse().map_err(|_| unreadable(line))?,
                op_state: number(op)?,
                admin_state: number(admin)?,
                weight: number(weight)?,
                check_state: check.map(number).transpose()?.unwrap_or(0),
            })
        })
        .collect()
}

/// Parses `show table T [key K]`: a `# table: T, type: …` header and one line per entry,
/// `0x…: key=K use=0 exp=0 gpt0=3`. Returns each key with its `gpt0`.
pub(crate) fn parse_table(command: &str, answer: &str) -> Result<Vec<(String, u32)>, FleetError> {
    let mut lines = answer.lines().map(str::trim).filter(|line| !line.is_empty());
    if !lines.next().is_some_and(|line| line.starts_with("# table:")) {
        return Err(refused(command, answer));
    }
    let mut entries = Vec::new();
    for line in lines {
        let fields: HashMap<&str, &str> = line.split_whitespace().filter_map(|field| field.split_once('=')).collect();
        let (Some(key), Some(gpt0)) = (fields.get("key"), fields.get("gpt0")) else {
            return Err(FleetError::Failed(format!("`{command}` answered an unreadable entry: {line}")));
        };
        let gpt0 = gpt0
            .parse()
            .map_err(|_| FleetError::Failed(format!("`{command}` answered an unreadable entry: {line}")))?;
        entries.push((key.to_string(), gpt0));
    }
    Ok(entries)
}

/// Parses `get weight B/S`: `50 (initial 1)`. Returns the current weight.
pub(crate) fn parse_weight(command: &str, answer: &str) -> Result<u32, FleetError> {
    answer.split_whitespace().next().and_then(|word| word.parse().ok()).ok_or_else(|| refused(command, answer))
}

/// The sessions of one server, from `show stat B 4 -1` (CSV with a `# pxname,svname,…` header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ServerSessions {
    /// `scur`: sessions the server serves now.
    pub current: u32,
    /// `qcur`: requests queued for this server.
    pub queued: u32,
}

/// Parses `show stat B 4 -1` and returns the sessions of each server by name.
pub(crate) fn parse_stat(command: &str, answer: &str) -> Result<HashMap<String, ServerSessions>, FleetError> {
    let mut lines = answer.lines().map(str::trim).filter(|line| !line.is_empty());
    let header: Vec<&str> = match lines.next().and_then(|line| line.strip_prefix("# ")) {
        Some(header) => header.split(',').collect(),
        None => return Err(refused(command, answer)),
    };
    let column = |name: &str| {
        header.iter().position(|field| *field == name).ok_or_else(|| {
            FleetError::Failed(format!("`{command}` answered without the column {name}: {}", answer.trim()))
        })
    };
    let (svname, scur, qcur) = (column("svname")?, column("scur")?, column("qcur")?);
    let mut sessions = HashMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let count = |index: usize| -> Result<u32, FleetError> {
            match fields.get(index) {
                // An empty field is a counter that does not apply: none.
                Some(&"") => Ok(0),
                Some(text) => text
                    .parse()
                    .map_err(|_| FleetError::Failed(format!("`{command}` answered an unreadable row: {line}"))),
                None => Err(FleetError::Failed(format!("`{command}` answered a short row: {line}"))),
            }
        };
        let Some(name) = fields.get(svname) else { continue };
        sessions.insert(name.to_string(), ServerSessions { current: count(scur)?, queued: count(qcur)? });
    }
    Ok(sessions)
}

/// Parses the `Pid: N` line of `show info`.
pub(crate) fn parse_info_pid(command: &str, answer: &str) -> Result<u32, FleetError> {
    answer
        .lines()
        .find_map(|line| line.strip_prefix("Pid:"))
        .and_then(|pid| pid.trim().parse().ok())
        .ok_or_else(|| refused(command, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVERS_STATE: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n\
3 lb-test 1 s1 0.0.0.0 0 5 1 1 2 1 0 0 14 0 0 0 - 0 - 0 0 - - 0\n\
3 lb-test 3 s3 127.0.0.1 2 4 50 1 1 1 0 1 6 0 0 0 - 19001 - 0 0 - - 0\n\n";

    #[test]
    fn servers_state_is_read_by_column_name() {
        let servers = parse_servers_state("show servers state lb-test", SERVERS_STATE).expect("parses");
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].name, "s1");
        assert!(servers[0].in_maintenance());
        assert_eq!(
            servers[1],
            ServerState {
                name: "s3".into(),
                addr: "127.0.0.1".into(),
                port: 19001,
                op_state: 2,
                admin_state: 4,
                weight: 50,
                check_state: 6,
            }
        );
        // Disabled in the configuration, then set ready: not in maintenance.
        assert!(!servers[1].in_maintenance());
    }

    #[test]
    fn a_check_counts_when_configured_enabled_and_not_paused() {
        let server = |op_state, admin_state, check_state| ServerState {
            name: "s1".into(),
            addr: "127.0.0.1".into(),
            port: 80,
            op_state,
            admin_state,
            weight: 1,
            check_state,
        };
        assert_eq!(server(2, 4, 6).check_passing(), Some(true));
        assert_eq!(server(0, 4, 6).check_passing(), Some(false));
        // In maintenance (a free slot): paused, and not counted.
        assert_eq!(server(0, 5, 14).check_passing(), None);
        assert_eq!(server(0, 1, 6).check_passing(), None);
        // No check configured (an attached HAProxy's server without `check`), or disabled.
        assert_eq!(server(2, 0, 0).check_passing(), None);
        assert_eq!(server(2, 0, 2).check_passing(), None);
    }

    #[test]
    fn error_sentences_are_not_data() {
        let error = parse_servers_state("show servers state nope", "Can't find backend.\n\n").expect_err("refused");
        assert_eq!(error, FleetError::Failed("HAProxy refused `show servers state nope`: Can't find backend.".into()));
        assert!(parse_table("show table t", "No such table\n\n").is_err());
        assert!(parse_weight("get weight b/s9", "No such server.\n\n").is_err());
        assert!(parse_stat("show stat nope 4 -1", "No such proxy.\n\n").is_err());
        assert!(parse_info_pid("show info", "Permission denied\n").is_err());
    }

    #[test]
    fn table_entries_give_key_and_gpt0() {
        let answer = "# table: rollscale_slots, type: string, size:65536, used:2\n\
0x56433d4bd328: key=lb-test/i-abc use=0 exp=0 gpt0=3\n0x7fc8d40465f8: key=lb-test/i-x use=0 exp=0 gpt0=2\n\n";
        let entries = parse_table("show table rollscale_slots", answer).expect("parses");
        assert_eq!(entries, vec![("lb-test/i-abc".to_string(), 3), ("lb-test/i-x".to_string(), 2)]);
        let empty = parse_table("show table rollscale_slots", "# table: rollscale_slots, type: string\n\n");
        assert_eq!(empty.expect("parses"), Vec::new());
    }

    #[test]
    fn weight_is_the_current_one() {
        assert_eq!(parse_weight("get weight b/s3", "50 (initial 1)\n\n").expect("parses"), 50);
    }

    #[test]
    fn stat_gives_current_and_queued_sessions() {
        let answer = "# pxname,svname,qcur,qmax,scur,smax,slim\nlb-test,s1,0,0,0,0,\nlb-test,s3,1,0,4,7,\n\n";
        let sessions = parse_stat("show stat lb-test 4 -1", answer).expect("parses");
        assert_eq!(sessions["s1"], ServerSessions { current: 0, queued: 0 });
        assert_eq!(sessions["s3"], ServerSessions { current: 4, queued: 1 });
    }

    #[test]
    fn info_gives_the_pid() {
        let answer = "Name: HAProxy\nVersion: 2.6.12\nNbthread: 2\nPid: 32217\nUptime: 0d\n";
        assert_eq!(parse_info_pid("show info", answer).expect("parses"), 32217);
    }

    #[test]
    fn words_that_would_change_a_command_are_refused() {
        assert!(cli_word("lb-test/i-abc").is_ok());
        assert!(cli_word("::1").is_ok());
        for bad in ["", "a b", "a;b", "a\\b", "a#b", "a\nb"] {
            assert!(cli_word(bad).is_err(), "{bad:?}");
        }
    }
}
