//! `--wait` and `rollscale ru wait`: follow a task until it ends or waits for a decision, with a
//! progress bar on a terminal, and the exit status that tells a script what happened.

use super::{fetch_execution, next_steps, print_json, OutputFormat};
use crate::{EXIT_FAILED, EXIT_OK, EXIT_WAITING};
use indicatif::{ProgressBar, ProgressStyle};
use rollscale_client::rpc::Client;
use rollscale_client::wire::{Execution, ExecutionStatus};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often `--wait` asks for the task's state.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long `--wait` keeps trying while the server cannot be reached.
const UNREACHABLE_GRACE: Duration = Duration::from_secs(60);

/// The exit code for a task's final (or waiting) status.
pub fn exit_code(status: &ExecutionStatus) -> u8 {
    match status {
        ExecutionStatus::Success => EXIT_OK,
        ExecutionStatus::Waiting => EXIT_WAITING,
        _ => EXIT_FAILED,
    }
}

/// Polls the task every [`POLL_INTERVAL`] until it is final or Waiting, with a progress bar on
/// a terminal and one line per change otherwise. Waiting counts only once the task has been
/// seen doing something else, or after `waiting_grace`.
pub(super) async fn wait_for(
    client: &Client,
    id: &str,
    output: OutputFormat,
    waiting_grace: Duration,
) -> anyhow::Result<u8> {
    let started = Instant::now();
    let interactive = std::io::stderr().is_terminal() && output == OutputFormat::Table;
    let bar = if interactive {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} {msg}")?
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    } else {
        None
    };
    let mut last_line = String::new();
    let mut unreachable_since: Option<Instant> = None;
    let mut seen_not_waiting = false;
    loop {
        let value = match fetch_execution(client, id).await {
            Ok(value) => {
                unreachable_since = None;
                value
            }
            Err(error) if error.is_transient() => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > UNREACHABLE_GRACE {
                    if let Some(bar) = &bar {
                        bar.finish_and_clear();
                    }
                    return Err(error.into());
                }
                let note = format!("server unreachable, retrying ({})", error.code);
                match &bar {
                    Some(bar) => bar.set_message(note.clone()),
                    None if last_line != note => eprintln!("{id}: {note}"),
                    None => {}
                }
                last_line = note;
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
            Err(error) => {
                if let Some(bar) = &bar {
                    bar.finish_and_clear();
                }
                return Err(error.into());
            }
        };
        let task = Execution::from_json(&value);
        if task.status != ExecutionStatus::Waiting {
            seen_not_waiting = true;
        }
        let waiting_counts =
            task.status == ExecutionStatus::Waiting && (seen_not_waiting || started.elapsed() >= waiting_grace);
        let done = task.is_final() || waiting_counts;
        let line = task.progress_line();
        match &bar {
            Some(bar) => {
                bar.set_length(task.counters.total);
                bar.set_position(task.n_done());
                bar.set_message(line.clone());
            }
            // The final line goes to stdout below; do not say it twice.
            None if line != last_line && !(done && output == OutputFormat::Table) => {
                eprintln!("{id}: {line}")
            }
            None => {}
        }
        last_line = line;
        if done {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            match output {
                OutputFormat::Json => print_json(&value)?,
                OutputFormat::Table => {
                    outln!("{id}: {}", task.progress_line());
                    if !task.status_message.is_empty() {
                        eprintln!("{}", task.status_message);
                    }
                    if let Some(hint) = next_steps(&task) {
                        eprintln!("{hint}");
                    }
                }
            }
            return Ok(exit_code(&task.status));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_tell_a_script_what_happened() {
        assert_eq!(exit_code(&ExecutionStatus::Success), 0);
        assert_eq!(exit_code(&ExecutionStatus::Waiting), 3);
        assert_eq!(exit_code(&ExecutionStatus::Failed), 4);
        assert_eq!(exit_code(&ExecutionStatus::Cancelled), 4);
        assert_eq!(exit_code(&ExecutionStatus::Other("Started".into())), 4);
    }
}
