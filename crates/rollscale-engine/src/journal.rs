//! The task's journal: its workers' writes (their steps' outcomes, and the instance changes
//! their steps make) are committed together, a hundred or so rows a statement, and each writer
//! is answered once its write is committed. Both the runner's workers and the instance
//! operations of [`crate::ops`] write through it, so it is a module of its own that both
//! import (and neither imports the other).

use crate::{now_millis, Engine, ServiceError};
use rollscale_core::domain::Instance;
use rollscale_core::task::InstanceWork;
use rollscale_store::{PreparedWork, StoreError, Versioned};
use std::collections::HashSet;
use tokio::sync::{mpsc, oneshot};

/// The task's journal: its workers' writes (their steps' outcomes, and the instance changes
/// their steps make) go to one task that commits whatever has arrived together, and answers
/// each writer once its write is committed (group commit). A writer waits for that answer
/// before it acts further, exactly as it would wait for its own statement.
#[derive(Clone)]
pub(crate) struct Journal(mpsc::UnboundedSender<JournalEntry>);

/// One write for the journal, and where to say whether it was made (`false`: its row had
/// moved on, a conflict).
struct JournalEntry {
    row: JournalRow,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

enum JournalRow {
    Work(PreparedWork),
    /// Boxed: an instance (with its observation) is several times the size of a child row.
    Instance(Box<Versioned<Instance>>),
}

impl JournalRow {
    fn key(&self) -> String {
        match self {
            JournalRow::Work(row) => row.id().to_string(),
            JournalRow::Instance(instance) => instance.value.id.to_string(),
        }
    }
}

impl Journal {
    /// Commits `row`: whether it was written, or `None` when the journal has stopped (maybe
    /// midway through committing it).
    async fn commit(&self, row: JournalRow) -> Option<Result<bool, StoreError>> {
        let (reply, committed) = oneshot::channel();
        self.0.send(JournalEntry { row, reply }).ok()?;
        committed.await.ok()
    }
}

/// What a worker carries from one step to the next: the instance as its last step wrote it
/// (see [`Engine::instance_modify_from`]), and its task's journal. Empty outside a worker.
#[derive(Default)]
pub(crate) struct StepMemory {
    pub(crate) instance: Option<Versioned<Instance>>,
    pub(crate) journal: Option<Journal>,
}

/// Most journal entries committed at once.
const JOURNAL_BATCH: usize = 512;

impl Journal {
    /// A journal for a task being driven: its committing loop runs until every sender (the
    /// driver's and its workers') is gone, and ends the returned task when it stops.
    pub(crate) fn start(engine: &Engine) -> (Journal, tokio::task::JoinHandle<()>) {
        let (journal, entries) = mpsc::unbounded_channel();
        let committing = tokio::spawn(journal_loop(engine.store.clone(), entries));
        engine.track(committing.abort_handle());
        (Journal(journal), committing)
    }
}

impl Journal {
    /// Writes the row `row()` makes, if it is still at `generation`, through `journal`: its new
    /// generation, or a conflict (`what` `id` had moved on). `None` without a journal, or when
    /// the journal has stopped (maybe midway through committing it): the caller writes
    /// directly, which is safe either way, as the write compares the generation.
    async fn write(
        journal: Option<&Journal>,
        row: impl FnOnce() -> JournalRow,
        generation: i64,
        what: &'static str,
        id: &str,
    ) -> Option<Result<i64, StoreError>> {
        match journal?.commit(row()).await? {
            Ok(true) => Some(Ok(generation + 1)),
            Ok(false) => Some(Err(StoreError::Conflict { what, id: id.to_string() })),
            Err(error) => Some(Err(error)),
        }
    }
}

impl Engine {
    /// Commits a worker's step outcome if its child execution is still at `generation`, and
    /// returns the new generation, as `work_update` does; but through the task's journal, so
    /// that the outcomes of many workers are committed by one statement. The worker waits for
    /// that commit before it takes its next step, as before.
    pub(crate) async fn work_write(
        &self,
        journal: Option<&Journal>,
        work: &InstanceWork,
        generation: i64,
    ) -> Result<i64, ServiceError> {
        let row = || JournalRow::Work(PreparedWork::new(work, generation));
        if let Some(written) = Journal::write(journal, row, generation, "execution", work.execution_id.as_str()).await {
            return Ok(written?);
        }
        Ok(self.store.work_update(work, generation, now_millis()).await?)
    }

    /// Writes `instance` if it is still at `generation`, as `instance_update` does; through
    /// `journal` when there is one.
    pub(crate) async fn instance_write(
        &self,
        journal: Option<&Journal>,
        instance: &Instance,
        generation: i64,
    ) -> Result<i64, StoreError> {
        let row = || JournalRow::Instance(Box::new(Versioned { value: instance.clone(), generation }));
        if let Some(written) = Journal::write(journal, row, generation, "instance", instance.id.as_str()).await {
            return written;
        }
        self.store.instance_update(instance, generation).await
    }
}

/// Commits the journal entries of a task's workers: whatever has arrived while the previous
/// commit ran goes into the next one, child executions in one statement and instances in
/// another (a few, beyond 128 rows). Each entry is answered only once the statement that
/// wrote it (or found its row moved on) has committed.
async fn journal_loop(store: rollscale_store::Store, mut entries: mpsc::UnboundedReceiver<JournalEntry>) {
    let mut batch: Vec<JournalEntry> = Vec::new();
    let mut later: Vec<JournalEntry> = Vec::new();
    loop {
        if batch.is_empty() {
            match entries.recv().await {
                Some(entry) => batch.push(entry),
                None => return,
            }
        }
        while batch.len() < JOURNAL_BATCH {
            match entries.try_recv() {
                Ok(entry) => batch.push(entry),
                Err(_) => break,
            }
        }
        // One entry per row at a time (a worker has one in flight, but be sure).
        let mut keys = HashSet::with_capacity(batch.len());
        let (now, next): (Vec<_>, Vec<_>) = batch.drain(..).partition(|entry| keys.insert(entry.row.key()));
        later.extend(next);
        let (mut work_entries, mut instance_entries) = (Vec::new(), Vec::new());
        let (mut work_rows, mut instance_rows) = (Vec::new(), Vec::new());
        for entry in now {
            match entry.row {
                JournalRow::Work(row) => {
                    work_rows.push(row);
                    work_entries.push(entry.reply);
                }
                JournalRow::Instance(instance) => {
                    instance_rows.push(*instance);
                    instance_entries.push(entry.reply);
                }
            }
        }
        if !work_rows.is_empty() {
            answer(work_entries, store.works_write(&work_rows, now_millis()).await);
        }
        if !instance_rows.is_empty() {
            answer(instance_entries, store.instances_write(&instance_rows).await);
        }
        batch.append(&mut later);
    }
}

/// Tells each writer whether its row was written; on a failed commit, each gets its text (it
/// reads its row again and retries).
fn answer(replies: Vec<oneshot::Sender<Result<bool, StoreError>>>, written: Result<Vec<bool>, StoreError>) {
    match written {
        Ok(written) => {
            for (reply, written) in replies.into_iter().zip(written) {
                let _ = reply.send(Ok(written));
            }
        }
        Err(error) => {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            for reply in replies {
                let _ = reply.send(Err(StoreError::Batch(message.clone())));
            }
        }
    }
}
