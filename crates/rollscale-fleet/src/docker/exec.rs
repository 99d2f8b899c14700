//! Running a script in a container through `exec`: the working directory, the timeout, and
//! stdout and stderr captured together, in the order they arrive, up to
//! [`MAX_OUTPUT_BYTES`](crate::MAX_OUTPUT_BYTES).
//!
//! The command is a small `sh` wrapper: it sends stderr to stdout (two pipes would lose the
//! order in which the script wrote), prints `rollscale-exec-pid <PID>` as its first line
//! (the driver reads and removes that line), changes to the working directory (a directory
//! that does not exist makes `sh` report it and exit 1) or else to `/root` (or `/`), then
//! `exec`s the interpreter with the script. An exec started by runc is a session and process
//! group leader, so on timeout the driver runs `kill -9 -<PID>` in the container, which ends
//! the script and everything it started in its process group, and reports `timed_out` with no
//! exit code and the output so far.
//!
//! A run with a [`RunId`] is recorded in the container, under `/tmp/.rollscale/runs/<run>`:
//! the wrapper's pid and start time when it begins (the `mkdir` of that directory is the claim:
//! two wrappers for one run cannot both run it), the output as it is written (through `tee`
//! and a fifo, so it still streams; the record keeps the first 24 KiB, what the driver keeps),
//! and the exit code once it ends (written to a temporary file and renamed, so a waiter never
//! reads half of it). Asked for the same run again
//! (the engine redoes a step whose outcome it lost in a crash), the wrapper does not run the
//! script: it reports the recorded output and exit code, or, if that run is still going (the
//! same pid with the same start time is alive), waits for it first. A run that began and
//! never ended (the container restarted meanwhile, or the run timed out and was killed) is
//! not run again either: it fails with exit code 125 and says so, and an operator's retry (a
//! new attempt, so a new run) runs the script anew. Records older than a week are removed.
//! Where `/tmp` cannot be written, runs are not recorded (the output says so); where it is a
//! tmpfs, a restart of the container loses the records, and a redo then runs the script again.

use crate::{RunId, ScriptOutcome, MAX_OUTPUT_BYTES};
use bollard::errors::Error;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::Docker;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::time::Instant;

const PID_MARKER: &str = "rollscale-exec-pid ";

const WRAPPER: &str = r#"exec 2>&1
printf 'rollscale-exec-pid %s\n' "$$"
run=$1 dir=$2
shift 2
started() { cut -d' ' -f22 "/proc/$1/stat" 2>/dev/null; }
nap() { sleep 0.2 2>/dev/null || sleep 1; }
report() { cat "$d/output" 2>/dev/null; exit "$(cat "$d/exit")"; }
if [ -n "$run" ]; then
  runs=/tmp/.rollscale/runs d=/tmp/.rollscale/runs/$run
  if ! mkdir -p "$runs" 2>/dev/null || ! [ -w "$runs" ]; then
    echo "rollscale: /tmp is not writable here, so run $run is not recorded (a redo after a crash would run it again)"
    run=
  elif ! mkdir "$d" 2>/dev/null; then
    [ -d "$d" ] || { echo "rollscale: cannot record run $run in $runs"; exit 125; }
    n=0
    while [ ! -f "$d/exit" ] && [ ! -f "$d/pid" ] && [ "$n" -lt 50 ]; do nap; n=$((n + 1)); done
    if [ ! -f "$d/exit" ] && [ -f "$d/pid" ]; then
      read -r pid since < "$d/pid"
      while [ ! -f "$d/exit" ] && [ -n "$since" ] && [ "$(started "$pid")" = "$since" ]; do nap; done
    fi
    [ -f "$d/exit" ] && report
    cat "$d/output" 2>/dev/null
    echo "rollscale: run $run of this script began earlier and did not finish (the instance restarted, or the run was stopped at its timeout); it is not run again: retry the instance to run it anew"
    exit 125
  else
    echo "$$ $(started $$)" > "$d/pid.new" && mv "$d/pid.new" "$d/pid"
    find "$runs" -mindepth 1 -maxdepth 1 -mtime +7 -exec rm -rf {} \; 2>/dev/null
  fi
fi
finish() { echo "$1" > "$d/exit.new" && mv "$d/exit.new" "$d/exit"; exit "$1"; }
if [ -n "$dir" ]; then
  if ! cd -- "$dir" 2>/dev/null; then
    echo "rollscale: cannot change to the working directory $dir"
    [ -z "$run" ] && exit 1
    echo "rollscale: cannot change to the working directory $dir" > "$d/output"
    finish 1
  fi
else
  cd /root 2>/dev/null || cd /
fi
[ -n "$run" ] || exec "$@"
mkfifo "$d/capped" || finish 125
{ { head -c 24580 > "$d/output"; cat > /dev/null; } < "$d/capped"; rm -f "$d/capped"; } &
{ "$@"; echo $? > "$d/code"; } 2>&1 | tee "$d/capped"
wait
finish "$(cat "$d/code" 2>/dev/null || echo 125)""#;

/// How long, after a timeout's kill, the output still drains.
const DRAIN_AFTER_KILL: Duration = Duration::from_secs(2);

/// Runs `command` (an interpreter and its arguments, e.g. `["sh", "-c", script]`) in the
/// container through the wrapper; as `run` once only, when given (see the module docs).
pub(crate) async fn run(
    docker: &Docker,
    container: &str,
    command: &[&str],
    working_dir: Option<&str>,
    timeout: Duration,
    run: Option<&RunId>,
) -> Result<ScriptOutcome, Error> {
    let mut cmd = vec!["sh".to_string(), "-c".to_string(), WRAPPER.to_string(), "rollscale-exec".to_string()];
    cmd.push(run.map(RunId::as_str).unwrap_or_default().to_string());
    cmd.push(working_dir.unwrap_or_default().to_string());
    cmd.extend(command.iter().map(|part| part.to_string()));
    let created = docker
        .create_exec(
            container,
            ExecConfig {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(cmd),
                ..ExecConfig::default()
            },
        )
        .await?;
    let started = docker.start_exec(&created.id, Some(StartExecOptions::default())).await?;
    let StartExecResults::Attached { mut output, input } = started else {
        return Err(Error::DockerStreamError { error: "the exec did not attach".to_string() });
    };
    drop(input);

    let deadline = Instant::now() + timeout;
    let mut capture = Capture::default();
    let mut timed_out = false;
    loop {
        match tokio::time::timeout_at(deadline, output.next()).await {
            Ok(Some(Ok(frame))) => capture.push(frame),
            Ok(Some(Err(error))) => return Err(error),
            Ok(None) => break,
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }
    if timed_out {
        if let Some(pid) = capture.pid {
            kill_group(docker, container, pid).await;
        }
        let drain_until = Instant::now() + DRAIN_AFTER_KILL;
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(drain_until, output.next()).await {
            capture.push(frame);
        }
        let (output, truncated) = capture.finish();
        return Ok(ScriptOutcome { exit_code: None, output, truncated, timed_out: true });
    }
    let exit_code = exit_code(docker, &created.id).await?;
    let (output, truncated) = capture.finish();
    Ok(ScriptOutcome { exit_code, output, truncated, timed_out: false })
}

/// Runs a short command and returns its exit code and output (used for `command -v pwsh`,
/// writing the package file).
pub(crate) async fn quick(docker: &Docker, container: &str, command: &[&str]) -> Result<ScriptOutcome, Error> {
    run(docker, container, command, Some("/"), Duration::from_secs(30), None).await
}

/// The exit code once the exec has ended (podman may report it a moment after the stream
/// closes).
async fn exit_code(docker: &Docker, exec_id: &str) -> Result<Option<i32>, Error> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let inspect = docker.inspect_exec(exec_id).await?;
        if inspect.running != Some(true) || Instant::now() >= until {
            return Ok(inspect.exit_code.and_then(|code| i32::try_from(code).ok()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills the script's process group (and, if that fails, the process itself).
async fn kill_group(docker: &Docker, container: &str, pid: u32) {
    let pid = pid.to_string();
    let cmd = vec![
        "sh".to_string(),
        "-c".to_string(),
        r#"kill -9 -"$1" 2>/dev/null || kill -9 "$1""#.to_string(),
        "rollscale-kill".to_string(),
        pid,
    ];
    let config =
        ExecConfig { attach_stdout: Some(true), attach_stderr: Some(true), cmd: Some(cmd), ..ExecConfig::default() };
    let result = async {
        let created = docker.create_exec(container, config).await?;
        if let StartExecResults::Attached { mut output, .. } = docker.start_exec(&created.id, None).await? {
            while output.next().await.is_some() {}
        }
        Ok::<_, Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(10), result).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(container, %error, "could not kill a timed-out script"),
        Err(_) => tracing::warn!(container, "killing a timed-out script did not finish"),
    }
}

/// stdout and stderr as they arrive, with the wrapper's first line taken off stdout.
#[derive(Default)]
struct Capture {
    /// stdout bytes before the marker line is complete.
    head: Vec<u8>,
    head_done: bool,
    pid: Option<u32>,
    bytes: Vec<u8>,
    cut: bool,
}

impl Capture {
    fn push(&mut self, frame: bollard::container::LogOutput) {
        use bollard::container::LogOutput;
        match frame {
            LogOutput::StdOut { message } if !self.head_done => {
                self.head.extend_from_slice(&message);
                if let Some(newline) = self.head.iter().position(|&b| b == b'\n') {
                    self.head_done = true;
                    let head = std::mem::take(&mut self.head);
                    let line = String::from_utf8_lossy(&head[..newline]);
                    match line.strip_prefix(PID_MARKER).and_then(|pid| pid.trim().parse().ok()) {
                        Some(pid) => {
                            self.pid = Some(pid);
                            self.keep(&head[newline + 1..]);
                        }
                        None => self.keep(&head),
                    }
                } else if self.head.len() > 64 {
                    self.head_done = true;
                    let head = std::mem::take(&mut self.head);
                    self.keep(&head);
                }
            }
            LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message } => {
                self.keep(&message)
            }
            LogOutput::StdIn { .. } => {}
        }
    }

    fn keep(&mut self, message: &[u8]) {
        // Keep a few bytes more than the limit so the cut can fall on a character boundary.
        let room = (MAX_OUTPUT_BYTES + 4).saturating_sub(self.bytes.len());
        if message.len() > room {
            self.cut = true;
        }
        self.bytes.extend_from_slice(&message[..message.len().min(room)]);
    }

    fn finish(mut self) -> (String, bool) {
        if !self.head_done {
            let head = std::mem::take(&mut self.head);
            self.keep(&head);
        }
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        let mut truncated = self.cut;
        if text.len() > MAX_OUTPUT_BYTES {
            let mut end = MAX_OUTPUT_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            truncated = true;
        }
        (text, truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::container::LogOutput;

    fn out(text: &str) -> LogOutput {
        LogOutput::StdOut { message: text.as_bytes().to_vec().into() }
    }

    fn err(text: &str) -> LogOutput {
        LogOutput::StdErr { message: text.as_bytes().to_vec().into() }
    }

    #[test]
    fn the_marker_line_is_taken_off_and_streams_interleave() {
        let mut capture = Capture::default();
        capture.push(out("rollscale-exec-"));
        capture.push(out("pid 42\nhello\n"));
        capture.push(err("oops\n"));
        capture.push(out("bye\n"));
        assert_eq!(capture.pid, Some(42));
        assert_eq!(capture.finish(), ("hello\noops\nbye\n".to_string(), false));
    }

    #[test]
    fn output_without_marker_is_kept() {
        let mut capture = Capture::default();
        capture.push(err("sh: not found\n"));
        capture.push(out("partial"));
        assert_eq!(capture.pid, None);
        assert_eq!(capture.finish(), ("sh: not found\npartial".to_string(), false));
    }

    #[test]
    fn long_output_is_cut_on_a_character_boundary() {
        let mut capture = Capture::default();
        capture.push(out("rollscale-exec-pid 1\n"));
        let chunk = "é".repeat(1000);
        for _ in 0..20 {
            capture.push(out(&chunk));
        }
        let (text, truncated) = capture.finish();
        assert!(truncated);
        assert!(text.len() <= MAX_OUTPUT_BYTES && text.len() > MAX_OUTPUT_BYTES - 4);
        assert!(text.chars().all(|c| c == 'é'));
    }
}
