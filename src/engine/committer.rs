//! Group commit: one thread owns the write path. It drains every pending command into one
//! transaction — accepted executions, started ones, and sealed ones with their receipts and
//! log leaves — signs one checkpoint for the batch, commits (one fsync), and only then
//! answers each command. Durable before acknowledged; the fsync is shared by the batch.
//!
//! Records arrive already encoded and receipts already signed (see `sealer`), so the thread
//! spends its time on B-tree inserts and the disk. If a commit ever fails, the committer
//! stops accepting work (fail-stop): the in-memory chain and log positions may be ahead of
//! the store, and only a restart reloads them from disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use crate::attest::keys::SigningKey;
use crate::domain::actor::{Access, TenantScope};
use crate::domain::audit::NewAuditEvent;
use crate::domain::ids::{Digest, ExecutionId, TenantId};
use crate::store::{EncodedDecision, EncodedExecution, Store, StoreError, Writer};
use crate::telemetry::Metrics;
use crate::tlog;

/// Why a command was not committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The store refused or failed; the message is for logs.
    #[error("{0}")]
    Store(String),
    /// Signing failed.
    #[error("signing: {0}")]
    Signing(String),
    /// The committer has stopped (shutdown, or a failed commit).
    #[error("the committer has stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<(), CommitError>>;

/// A final execution with its signed receipt, positioned in the tenant chain and the log.
pub struct Sealed {
    /// The final record (with its receipt reference).
    pub record: EncodedExecution,
    /// Decisions to store with it (for denials, which were never accepted before).
    pub decisions: Vec<EncodedDecision>,
    /// Artifact bytes by digest.
    pub artifacts: Vec<(Digest, Vec<u8>)>,
    /// The signed Statement bytes (the log leaf).
    pub payload: Vec<u8>,
    /// The DSSE envelope.
    pub envelope: Box<serde_json::value::RawValue>,
    /// Key id of the signing key.
    pub keyid: String,
    /// The log index the sealer assigned.
    pub log_index: u64,
    /// The tenant chain sequence the sealer assigned.
    pub sequence: u64,
}

enum Command {
    Put {
        record: EncodedExecution,
        decisions: Vec<EncodedDecision>,
        reply: Reply,
    },
    Start {
        tenant: TenantId,
        id: ExecutionId,
        started_at: jiff::Timestamp,
        reply: Reply,
    },
    Seal {
        sealed: Box<Sealed>,
        reply: Reply,
    },
    Audit {
        event: Box<NewAuditEvent>,
        decision: Option<EncodedDecision>,
        reply: Reply,
    },
    Stop,
}

impl Command {
    fn reply(self) -> Option<Reply> {
        match self {
            Command::Put { reply, .. }
            | Command::Start { reply, .. }
            | Command::Seal { reply, .. }
            | Command::Audit { reply, .. } => Some(reply),
            Command::Stop => None,
        }
    }
}

/// What signs checkpoints.
pub struct CheckpointSigner {
    /// The appliance key.
    pub key: Arc<SigningKey>,
    /// The log origin (the key name).
    pub origin: String,
}

/// Handle to the committer thread.
#[derive(Clone)]
pub struct Committer {
    tx: Sender<Command>,
    failed: Arc<AtomicBool>,
}

impl Committer {
    /// Starts the thread.
    pub fn spawn(
        store: Arc<Store>,
        signer: CheckpointSigner,
        metrics: Arc<Metrics>,
        max_batch: usize,
    ) -> std::io::Result<(Committer, std::thread::JoinHandle<()>)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let handle = std::thread::Builder::new()
            .name("maestro-commit".into())
            .spawn(move || run(rx, &store, &signer, &metrics, max_batch.max(1), &flag))?;
        Ok((Committer { tx, failed }, handle))
    }

    /// Whether a commit has failed (the appliance must restart).
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), CommitError> {
        if self.has_failed() {
            return Err(CommitError::Stopped);
        }
        Ok(())
    }

    /// Asks the thread to exit after the commands already sent.
    pub fn stop(&self) {
        let _ = self.tx.send(Command::Stop);
    }

    /// Durably records an accepted (queued) execution and its decisions.
    pub async fn put(
        &self,
        record: EncodedExecution,
        decisions: Vec<EncodedDecision>,
    ) -> Result<(), CommitError> {
        self.check()?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Put {
                record,
                decisions,
                reply,
            })
            .map_err(|_| CommitError::Stopped)?;
        rx.await.map_err(|_| CommitError::Stopped)?
    }

    /// Durably marks a queued execution running.
    pub async fn start(
        &self,
        tenant: TenantId,
        id: ExecutionId,
        started_at: jiff::Timestamp,
    ) -> Result<(), CommitError> {
        self.check()?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Start {
                tenant,
                id,
                started_at,
                reply,
            })
            .map_err(|_| CommitError::Stopped)?;
        rx.await.map_err(|_| CommitError::Stopped)?
    }

    /// Durably appends an audit event, with the decision it records (same transaction).
    pub async fn audit(
        &self,
        event: NewAuditEvent,
        decision: Option<EncodedDecision>,
    ) -> Result<(), CommitError> {
        self.check()?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Audit {
                event: Box::new(event),
                decision,
                reply,
            })
            .map_err(|_| CommitError::Stopped)?;
        rx.await.map_err(|_| CommitError::Stopped)?
    }

    /// Queues a sealed execution; the caller awaits the answer. Sending (not awaiting) is what
    /// fixes its place in the commit order, so the sealer sends under its lock.
    pub fn seal(
        &self,
        sealed: Sealed,
    ) -> Result<oneshot::Receiver<Result<(), CommitError>>, CommitError> {
        self.check()?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Seal {
                sealed: Box::new(sealed),
                reply,
            })
            .map_err(|_| CommitError::Stopped)?;
        Ok(rx)
    }
}

fn run(
    rx: Receiver<Command>,
    store: &Store,
    signer: &CheckpointSigner,
    metrics: &Metrics,
    max_batch: usize,
    failed: &AtomicBool,
) {
    let mut stopping = false;
    while !stopping {
        let Ok(first) = rx.recv() else { break };
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Stop => {
                    stopping = true;
                    break;
                }
                c => batch.push(c),
            }
            if batch.len() < max_batch
                && let Ok(c) = rx.try_recv()
            {
                next = Some(c);
            }
        }
        if batch.is_empty() {
            continue;
        }
        if failed.load(Ordering::SeqCst) {
            for c in batch {
                if let Some(r) = c.reply() {
                    let _ = r.send(Err(CommitError::Stopped));
                }
            }
            continue;
        }
        let started = Instant::now();
        let size = batch.len();
        let mut outcomes: Vec<(Reply, Result<(), CommitError>)> = Vec::with_capacity(size);
        let mut sealed = 0u64;
        let result = store.write(|w| {
            outcomes.clear();
            sealed = 0;
            for command in batch.drain(..) {
                match command {
                    Command::Put {
                        record,
                        decisions,
                        reply,
                    } => {
                        let scope = TenantScope::system(record.tenant().clone(), Access::Run);
                        let r = soft(w.put_encoded_execution(&scope, &record))?;
                        if r.is_ok() {
                            for d in &decisions {
                                w.put_encoded_decision(&scope, d)?;
                            }
                        }
                        outcomes.push((reply, r));
                    }
                    Command::Start {
                        tenant,
                        id,
                        started_at,
                        reply,
                    } => {
                        let scope = TenantScope::system(tenant, Access::Run);
                        let r = soft(w.mark_running(&scope, &id, started_at))?;
                        outcomes.push((reply, r));
                    }
                    Command::Seal { sealed: s, reply } => {
                        let r = seal(w, &s)?;
                        if r.is_ok() {
                            sealed += 1;
                        }
                        outcomes.push((reply, r));
                    }
                    Command::Audit {
                        event,
                        decision,
                        reply,
                    } => {
                        if let Some(d) = &decision {
                            let scope = TenantScope::system(d.tenant().clone(), Access::Run);
                            w.put_encoded_decision(&scope, d)?;
                        }
                        w.append_audit(*event)?;
                        outcomes.push((reply, Ok(())));
                    }
                    Command::Stop => {}
                }
            }
            if sealed > 0 {
                let size = w.log_size();
                let root = w.log_root()?;
                let note = tlog::sign_checkpoint(
                    &tlog::Checkpoint {
                        origin: signer.origin.clone(),
                        size,
                        root,
                    },
                    &signer.key.note_signer(&signer.origin),
                )
                .map_err(|e| StoreError::Invalid(format!("signing the checkpoint: {e}")))?;
                w.put_checkpoint(size, &note)?;
            }
            Ok(w.log_size())
        });
        metrics.commit_batch.observe(size as f64);
        metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(log_size) => {
                metrics.log_size.set(log_size as i64);
                metrics.receipts.inc_by(sealed);
                for (reply, r) in outcomes {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                failed.store(true, Ordering::SeqCst);
                tracing::error!(error = %e, batch = size, "group commit failed; nothing in the batch was written; the appliance stops accepting work until it is restarted");
                let err = CommitError::Store(e.to_string());
                for (reply, _) in outcomes {
                    let _ = reply.send(Err(err.clone()));
                }
                for c in batch.drain(..) {
                    if let Some(r) = c.reply() {
                        let _ = r.send(Err(err.clone()));
                    }
                }
            }
        }
    }
}

/// Keeps logical refusals (a caller bug) per command; storage failures abort the batch.
fn soft<T>(r: Result<T, StoreError>) -> Result<Result<T, CommitError>, StoreError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e @ (StoreError::Invalid(_) | StoreError::ScopeMismatch { .. })) => {
            tracing::error!(error = %e, "store refused a command");
            Ok(Err(CommitError::Store(e.to_string())))
        }
        Err(e) => Err(e),
    }
}

fn seal(w: &mut Writer<'_>, s: &Sealed) -> Result<Result<(), CommitError>, StoreError> {
    let tenant = s.record.tenant().clone();
    // The sealer predicted these positions; if the store disagrees, the two have diverged
    // and only a restart can reconcile them.
    if w.log_size() != s.log_index {
        return Err(StoreError::Corrupt(format!(
            "receipt sealed for log index {} but the log has {} leaves",
            s.log_index,
            w.log_size()
        )));
    }
    let head = w.chain_head(&tenant)?;
    if head.count + 1 != s.sequence {
        return Err(StoreError::Corrupt(format!(
            "receipt sealed as number {} of tenant {tenant} but the chain has {}",
            s.sequence, head.count
        )));
    }
    let scope = TenantScope::system(tenant, Access::Run);
    if let Err(e) = soft(w.put_encoded_execution(&scope, &s.record))? {
        return Ok(Err(e));
    }
    for d in &s.decisions {
        w.put_encoded_decision(&scope, d)?;
    }
    for (digest, bytes) in &s.artifacts {
        w.put_artifact(&scope, digest, bytes)?;
    }
    let id = s.record.id().clone();
    w.append_receipt(&scope, &id, &s.payload, s.envelope.clone(), s.keyid.clone())?;
    Ok(Ok(()))
}
