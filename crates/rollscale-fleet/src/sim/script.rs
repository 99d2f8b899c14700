//! The interpreter of the sim's script model (described in the [`sim`](super) module docs): a
//! pure function from a script and its context to the outcome and the simulated time it took.
//! It sleeps nowhere and touches no state; the fleet turns the simulated time into a real sleep.

use crate::{ScriptOutcome, MAX_OUTPUT_BYTES};

/// Which shell the script is written for. It changes comments, `exit /b`, the Windows sleep
/// commands, case sensitivity of command words and how paths look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `RunShellScript` (and every package script).
    Shell,
    /// `RunBatScript`.
    Batch,
    /// `RunPowerShellScript`.
    PowerShell,
}

impl Dialect {
    fn is_windows(self) -> bool {
        !matches!(self, Dialect::Shell)
    }

    /// The working directory when the script names none.
    pub(crate) fn default_dir(self) -> &'static str {
        match self {
            Dialect::Shell => "/root",
            Dialect::Batch | Dialect::PowerShell => r"C:\Windows\system32",
        }
    }
}

/// Everything a script run needs besides the script text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Context<'a> {
    pub dialect: Dialect,
    /// What `hostname` prints: the instance id.
    pub hostname: &'a str,
    pub working_dir: Option<&'a str>,
    pub timeout_s: u32,
}

/// What a run reports: the outcome, and how many simulated seconds it took (the sum of its
/// sleeps, or the whole timeout when it timed out).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Run {
    pub outcome: ScriptOutcome,
    pub simulated_s: f64,
}

/// Output capped at [`MAX_OUTPUT_BYTES`], cut at a char boundary.
#[derive(Default)]
struct Output {
    text: String,
    truncated: bool,
}

impl Output {
    fn push(&mut self, text: &str) {
        if self.truncated {
            return;
        }
        let room = MAX_OUTPUT_BYTES.saturating_sub(self.text.len());
        if text.len() <= room {
            self.text.push_str(text);
            return;
        }
        let mut cut = room;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(&text[..cut]);
        self.truncated = true;
    }

    fn line(&mut self, text: &str) {
        self.push(text);
        self.push("\n");
    }
}

/// A finished run with the given exit code (`None`: timed out).
fn finish(output: Output, exit_code: Option<i32>, simulated_s: f64) -> Run {
    Run {
        outcome: ScriptOutcome {
            exit_code,
            output: output.text,
            truncated: output.truncated,
            timed_out: exit_code.is_none(),
        },
        simulated_s,
    }
}

/// Runs `script` by the script model.
pub(crate) fn run(script: &str, context: &Context<'_>) -> Run {
    let dialect = context.dialect;
    let windows = dialect.is_windows();
    let timeout_s = f64::from(context.timeout_s);
    let mut output = Output::default();
    let mut elapsed_s = 0.0_f64;

    let mut cwd = match context.working_dir.filter(|dir| !dir.trim().is_empty()) {
        None => dialect.default_dir().to_string(),
        Some(dir) => {
            let resolved = resolve_path(dialect, dialect.default_dir(), dir.trim());
            if !dir_exists(dialect, &resolved) {
                output.line(&format!("no such directory: {}", dir.trim()));
                return finish(output, Some(1), 0.0);
            }
            resolved
        }
    };

    for raw in script.lines() {
        let mut line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if dialect == Dialect::Batch {
            line = line.strip_prefix('@').unwrap_or(line).trim_start();
            let lower = line.to_ascii_lowercase();
            if line.starts_with("::") || lower == "rem" || lower.starts_with("rem ") {
                continue;
            }
        }
        if line == "fail" {
            output.line("simulated failure");
            return finish(output, Some(1), elapsed_s);
        }
        let (word, rest) = split_word(line);
        let is = |name: &str| {
            if windows {
                word.eq_ignore_ascii_case(name)
            } else {
                word == name
            }
        };

        if is("echo") || (dialect == Dialect::PowerShell && (is("write-output") || is("write-host"))) {
            if dialect == Dialect::Batch && (rest.eq_ignore_ascii_case("off") || rest.eq_ignore_ascii_case("on")) {
                continue;
            }
            output.line(strip_quotes(rest));
        } else if is("exit") {
            let argument = if windows { strip_exit_b(rest) } else { rest };
            match parse_exit(dialect, argument) {
                Some(code) => return finish(output, Some(code), elapsed_s),
                None => {
                    output.line(&format!("exit: {argument}: numeric argument required"));
                    return finish(output, Some(2), elapsed_s);
                }
            }
        } else if is("sleep")
            || (dialect == Dialect::PowerShell && is("start-sleep"))
            || (dialect == Dialect::Batch && is("timeout"))
        {
            let seconds = if is("sleep") {
                parse_sleep(rest)
            } else if is("start-sleep") {
                parse_start_sleep(rest)
            } else {
                parse_timeout(rest)
            };
            let Some(seconds) = seconds else {
                output.line(&format!("{word}: invalid time interval '{rest}'"));
                return finish(output, Some(1), elapsed_s);
            };
            // A tiny tolerance so that sleeps summing exactly to the timeout are not cut by
            // floating-point rounding.
            if elapsed_s + seconds > timeout_s + 1e-9 {
                return finish(output, None, timeout_s);
            }
            elapsed_s += seconds;
        } else if is("hostname") {
            output.line(context.hostname);
        } else if is("pwd") {
            output.line(&cwd);
        } else if is("cd") {
            let target = if dialect == Dialect::Batch { strip_cd_d(rest) } else { rest };
            let target = strip_quotes(target);
            if target.is_empty() {
                if windows {
                    output.line(&cwd);
                } else {
                    cwd = dialect.default_dir().to_string();
                }
                continue;
            }
            let resolved = resolve_path(dialect, &cwd, target);
            if !dir_exists(dialect, &resolved) {
                output.line(&format!("cd: no such directory: {target}"));
                return finish(output, Some(1), elapsed_s);
            }
            cwd = resolved;
        } else {
            output.line(&format!("+ {line}"));
        }
    }
    finish(output, Some(0), elapsed_s)
}

/// Splits off the first whitespace-separated word.
fn split_word(line: &str) -> (&str, &str) {
    match line.find(char::is_whitespace) {
        Some(at) => (&line[..at], line[at..].trim_start()),
        None => (line, ""),
    }
}

/// Removes one level of matching single or double quotes around the whole text.
fn strip_quotes(text: &str) -> &str {
    let bytes = text.as_bytes();
    if bytes.len() >= 2 && (bytes[0] == b'"' || bytes[0] == b'\'') && bytes[bytes.len() - 1] == bytes[0] {
        &text[1..text.len() - 1]
    } else {
        text
    }
}

/// `exit /b N` → `N` (case-insensitive `/b`).
fn strip_exit_b(rest: &str) -> &str {
    let (word, after) = split_word(rest);
    if word.eq_ignore_ascii_case("/b") {
        after
    } else {
        rest
    }
}

/// `cd /d DIR` → `DIR` (case-insensitive `/d`).
fn strip_cd_d(rest: &str) -> &str {
    let (word, after) = split_word(rest);
    if word.eq_ignore_ascii_case("/d") {
        after
    } else {
        rest
    }
}

/// The exit code of `exit ARG`: 0 without an argument; a shell keeps the low 8 bits.
fn parse_exit(dialect: Dialect, argument: &str) -> Option<i32> {
    if argument.is_empty() {
        return Some(0);
    }
    let code: i64 = argument.parse().ok()?;
    match dialect {
        Dialect::Shell => i32::try_from(code.rem_euclid(256)).ok(),
        Dialect::Batch | Dialect::PowerShell => i32::try_from(code).ok(),
    }
}

/// A non-negative finite number of `unit` seconds.
fn parse_seconds(text: &str, unit: f64) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value * unit)
}

/// `sleep 1.5`, `sleep 2s`, `sleep 1m`, `sleep 1h 30m` (the arguments add up, as GNU sleep's do).
fn parse_sleep(rest: &str) -> Option<f64> {
    let mut total = None;
    for argument in rest.split_whitespace() {
        let (number, unit) = match argument.as_bytes().last() {
            Some(b's') => (&argument[..argument.len() - 1], 1.0),
            Some(b'm') => (&argument[..argument.len() - 1], 60.0),
            Some(b'h') => (&argument[..argument.len() - 1], 3600.0),
            Some(b'd') => (&argument[..argument.len() - 1], 86_400.0),
            _ => (argument, 1.0),
        };
        total = Some(total.unwrap_or(0.0) + parse_seconds(number, unit)?);
    }
    total
}

/// `Start-Sleep N`, `Start-Sleep -Seconds N`, `Start-Sleep -s N`, `Start-Sleep -Milliseconds N`,
/// `Start-Sleep -m N`.
fn parse_start_sleep(rest: &str) -> Option<f64> {
    let mut words = rest.split_whitespace();
    let first = words.next()?;
    let (unit, number) = if first.starts_with('-') {
        let unit = match first.to_ascii_lowercase().as_str() {
            "-seconds" | "-s" => 1.0,
            "-milliseconds" | "-m" => 0.001,
            _ => return None,
        };
        (unit, words.next()?)
    } else {
        (1.0, first)
    };
    if words.next().is_some() {
        return None;
    }
    parse_seconds(number, unit)
}

/// `timeout /t N [/nobreak]` or `timeout N`.
fn parse_timeout(rest: &str) -> Option<f64> {
    let mut seconds = None;
    let mut words = rest.split_whitespace();
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("/nobreak") {
            continue;
        }
        let number = if word.eq_ignore_ascii_case("/t") { words.next()? } else { word };
        if seconds.is_some() {
            return None;
        }
        seconds = Some(parse_seconds(number, 1.0)?);
    }
    seconds
}

/// `arg` taken from `cwd`, with `.` and `..` resolved: `/a/b` on Linux, `C:\a\b` on Windows.
fn resolve_path(dialect: Dialect, cwd: &str, arg: &str) -> String {
    if dialect.is_windows() {
        resolve_windows(cwd, arg)
    } else {
        resolve_unix(cwd, arg)
    }
}

fn resolve_unix(cwd: &str, arg: &str) -> String {
    let (base, arg) = if arg == "~" {
        ("/root", "")
    } else if let Some(rest) = arg.strip_prefix("~/") {
        ("/root", rest)
    } else if arg.starts_with('/') {
        ("/", arg)
    } else {
        (cwd, arg)
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('/').chain(arg.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

fn resolve_windows(cwd: &str, arg: &str) -> String {
    let arg = arg.replace('/', "\\");
    let (cwd_drive, cwd_rest) = split_drive(cwd).unwrap_or(('C', cwd));
    let (drive, base, rest) = match split_drive(&arg) {
        Some((drive, rest)) => (drive, "", rest.to_string()),
        None if arg.starts_with('\\') => (cwd_drive, "", arg.clone()),
        None => (cwd_drive, cwd_rest, arg.clone()),
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('\\').chain(rest.split('\\')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("{drive}:\\{}", parts.join("\\"))
}

/// `C:\x` → `('C', "\x")`.
fn split_drive(path: &str) -> Option<(char, &str)> {
    let mut chars = path.chars();
    let letter = chars.next().filter(char::is_ascii_alphabetic)?;
    (chars.next() == Some(':')).then(|| (letter.to_ascii_uppercase(), &path[2..]))
}

/// Linux: `/`, and `/root`, `/tmp`, `/opt`, `/var` and everything under them. Windows:
/// everything on drive `C:`.
fn dir_exists(dialect: Dialect, path: &str) -> bool {
    if dialect.is_windows() {
        return path.starts_with("C:");
    }
    if path == "/" {
        return true;
    }
    let top = path.trim_start_matches('/').split('/').next().unwrap_or("");
    matches!(top, "root" | "tmp" | "opt" | "var")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Run {
        run_with(Dialect::Shell, script, None, 600)
    }

    fn run_with(dialect: Dialect, script: &str, working_dir: Option<&str>, timeout_s: u32) -> Run {
        run(script, &Context { dialect, hostname: "i-host", working_dir, timeout_s })
    }

    #[test]
    fn echo_strips_one_level_of_matching_quotes() {
        let run = shell("echo hello world\necho 'single'\necho \"double\"\necho \"'nested'\"\necho \"odd'\necho\n");
        assert_eq!(run.outcome.output, "hello world\nsingle\ndouble\n'nested'\n\"odd'\n\n");
        assert_eq!(run.outcome.exit_code, Some(0));
        assert!(!run.outcome.timed_out && !run.outcome.truncated);
        assert_eq!(run.simulated_s, 0.0);
    }

    #[test]
    fn exit_stops_the_script_with_its_code() {
        let run = shell("echo before\nexit 3\necho after\n");
        assert_eq!(run.outcome.exit_code, Some(3));
        assert_eq!(run.outcome.output, "before\n");
        assert_eq!(shell("exit").outcome.exit_code, Some(0));
        assert_eq!(shell("exit 256").outcome.exit_code, Some(0));
        assert_eq!(shell("exit 300").outcome.exit_code, Some(44));
        assert_eq!(shell("exit -1").outcome.exit_code, Some(255));
    }

    #[test]
    fn exit_with_a_non_number_is_exit_code_2() {
        let run = shell("exit soon");
        assert_eq!(run.outcome.exit_code, Some(2));
        assert_eq!(run.outcome.output, "exit: soon: numeric argument required\n");
    }

    #[test]
    fn comments_blank_lines_and_crlf_are_ignored() {
        let run = shell("#!/bin/bash\r\n\r\n  # a comment\r\n   echo  spaced  \r\n");
        assert_eq!(run.outcome.output, "spaced\n");
    }

    #[test]
    fn other_lines_are_echoed_as_if_run() {
        let run = shell("cat /etc/os-release\nset -e\necho a && exit 3\n");
        assert_eq!(run.outcome.output, "+ cat /etc/os-release\n+ set -e\na && exit 3\n");
        assert_eq!(run.outcome.exit_code, Some(0));
    }

    #[test]
    fn fail_line_exits_1() {
        let run = shell("echo one\nfail\necho two");
        assert_eq!(run.outcome.exit_code, Some(1));
        assert_eq!(run.outcome.output, "one\nsimulated failure\n");
        // Only the exact line: `fail` inside another line is just a command.
        assert_eq!(shell("failover start").outcome.exit_code, Some(0));
    }

    #[test]
    fn hostname_prints_the_instance_id() {
        assert_eq!(shell("hostname").outcome.output, "i-host\n");
    }

    #[test]
    fn sleeps_add_up_and_count_toward_the_timeout() {
        let run = run_with(Dialect::Shell, "sleep 1.5\nsleep 2s\necho done", None, 10);
        assert_eq!(run.outcome.exit_code, Some(0));
        assert_eq!(run.simulated_s, 3.5);
        assert_eq!(shell("sleep 1m 30s").simulated_s, 90.0);
        assert_eq!(shell("sleep 0.1h").simulated_s, 360.0);
        let exact = run_with(Dialect::Shell, &"sleep 0.1\n".repeat(10), None, 1);
        assert_eq!(exact.outcome.exit_code, Some(0));
    }

    #[test]
    fn a_sleep_past_the_timeout_times_out() {
        let run = run_with(Dialect::Shell, "echo start\nsleep 5\nsleep 6\necho never", None, 10);
        assert_eq!(run.outcome.exit_code, None);
        assert!(run.outcome.timed_out);
        assert_eq!(run.outcome.output, "start\n");
        assert_eq!(run.simulated_s, 10.0);
    }

    #[test]
    fn an_invalid_sleep_fails() {
        for script in ["sleep", "sleep abc", "sleep -1", "sleep inf", "sleep nan"] {
            let run = shell(script);
            assert_eq!(run.outcome.exit_code, Some(1), "{script}");
            assert!(run.outcome.output.contains("invalid time interval"), "{script}");
        }
    }

    #[test]
    fn cd_and_pwd_follow_the_working_dir() {
        assert_eq!(shell("pwd").outcome.output, "/root\n");
        let run = shell("cd /tmp\npwd\ncd sub/dir\npwd\ncd ..\npwd\ncd ../..\npwd\ncd\npwd\ncd ~/x\npwd");
        assert_eq!(run.outcome.output, "/tmp\n/tmp/sub/dir\n/tmp/sub\n/\n/root\n/root/x\n");
        assert_eq!(run.outcome.exit_code, Some(0));
        let run = run_with(Dialect::Shell, "pwd", Some("/opt/app/"), 600);
        assert_eq!(run.outcome.output, "/opt/app\n");
    }

    #[test]
    fn cd_to_a_missing_dir_fails() {
        let run = shell("cd /etc\necho never");
        assert_eq!(run.outcome.exit_code, Some(1));
        assert_eq!(run.outcome.output, "cd: no such directory: /etc\n");
        assert_eq!(shell("cd /rootless").outcome.exit_code, Some(1));
        assert_eq!(shell("cd /var/log\ncd ../../usr").outcome.exit_code, Some(1));
    }

    #[test]
    fn a_missing_working_dir_fails_before_any_line() {
        let run = run_with(Dialect::Shell, "echo hi", Some("/srv/app"), 600);
        assert_eq!(run.outcome.exit_code, Some(1));
        assert_eq!(run.outcome.output, "no such directory: /srv/app\n");
        for dir in ["/", "/root", "/tmp/x", "/opt", "/var/lib/app", "relative"] {
            assert_eq!(run_with(Dialect::Shell, "", Some(dir), 600).outcome.exit_code, Some(0), "{dir}");
        }
    }

    #[test]
    fn output_is_capped_at_a_char_boundary() {
        // 3-byte characters: the cap (24 KiB) is not a multiple of 3 plus the newline.
        let line = "€".repeat(1000);
        let script = format!("echo {line}\n").repeat(20);
        let run = shell(&script);
        assert!(run.outcome.truncated);
        assert!(run.outcome.output.len() <= MAX_OUTPUT_BYTES);
        assert!(run.outcome.output.len() > MAX_OUTPUT_BYTES - 4);
        assert_eq!(run.outcome.exit_code, Some(0));
    }

    #[test]
    fn batch_scripts() {
        let script = "@echo off\r\nREM a remark\r\n:: another\r\nECHO hello\r\nhostname\r\ncd\r\ncd /d D:\\work\r\n";
        let run = run_with(Dialect::Batch, script, None, 600);
        assert_eq!(run.outcome.output, "hello\ni-host\nC:\\Windows\\system32\ncd: no such directory: D:\\work\n");
        assert_eq!(run.outcome.exit_code, Some(1));
        let run = run_with(Dialect::Batch, "timeout /t 5 /nobreak\nexit /B 7", None, 600);
        assert_eq!(run.outcome.exit_code, Some(7));
        assert_eq!(run.simulated_s, 5.0);
        assert_eq!(run_with(Dialect::Batch, "exit /b", None, 600).outcome.exit_code, Some(0));
        assert_eq!(run_with(Dialect::Batch, "exit 300", None, 600).outcome.exit_code, Some(300));
    }

    #[test]
    fn powershell_scripts() {
        let script = "Write-Output 'one'\nWrite-Host two\necho three\ncd ..\\Temp\npwd\nStart-Sleep -Seconds 2\nStart-Sleep -Milliseconds 500\nStart-Sleep 1\nExit 4";
        let run = run_with(Dialect::PowerShell, script, None, 600);
        assert_eq!(run.outcome.output, "one\ntwo\nthree\nC:\\Windows\\Temp\n");
        assert_eq!(run.outcome.exit_code, Some(4));
        assert_eq!(run.simulated_s, 3.5);
        let run = run_with(Dialect::PowerShell, "pwd", Some("c:/app"), 600);
        assert_eq!(run.outcome.output, "C:\\app\n");
        let run = run_with(Dialect::PowerShell, "pwd", Some("E:\\app"), 600);
        assert_eq!(run.outcome.exit_code, Some(1));
    }

    #[test]
    fn shell_commands_are_case_sensitive_windows_ones_not() {
        assert_eq!(shell("ECHO hi").outcome.output, "+ ECHO hi\n");
        assert_eq!(run_with(Dialect::Batch, "EcHo hi", None, 600).outcome.output, "hi\n");
        // Windows sleep commands are not shell ones.
        assert_eq!(shell("timeout /t 5").outcome.output, "+ timeout /t 5\n");
    }
}
