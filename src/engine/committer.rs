//! Group commit: one thread owns the write path. It drains every pending command into one
//! transaction — accepted executions, started ones, and final ones sealed with a signed
//! receipt appended to the transparency log — signs one checkpoint for the batch, commits
//! (one fsync), and only then answers each command. Durable before acknowledged; the fsync
//! cost is shared by the whole batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use tokio::sync::oneshot;

use crate::attest::dsse;
use crate::attest::keys::SigningKey;
use crate::domain::actor::{Access, TenantScope};
use crate::domain::execution::{Execution, ExecutionStatus, ReceiptRef};
use crate::domain::ids::{Digest, TenantId};
use crate::domain::receipt::{self, ApplianceInfo, PAYLOAD_TYPE};
use crate::store::{Store, StoreError, Writer};
use crate::telemetry::Metrics;
use crate::tlog;

/// The keys and identity that seal receipts.
pub struct Signing {
    /// The appliance key: signs checkpoints, and receipts of tenants without a key.
    pub appliance: Arc<SigningKey>,
    /// Keys of tenants that sign with their own.
    pub tenant_keys: HashMap<TenantId, Arc<SigningKey>>,
    /// The log origin.
    pub origin: String,
    /// The appliance version written into receipts.
    pub version: String,
}

impl Signing {
    /// The key that signs a tenant's receipts.
    pub fn key_for(&self, tenant: &TenantId) -> &SigningKey {
        self.tenant_keys.get(tenant).map_or(&self.appliance, |k| k)
    }

    fn info(&self) -> ApplianceInfo {
        ApplianceInfo {
            version: self.version.clone(),
            log_origin: self.origin.clone(),
        }
    }
}

/// Why a command was not committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The store refused or failed; the message is for logs.
    #[error("{0}")]
    Store(String),
    /// Signing failed.
    #[error("signing: {0}")]
    Signing(String),
    /// The committer has stopped.
    #[error("the committer has stopped")]
    Stopped,
}

type Reply<T> = oneshot::Sender<Result<T, CommitError>>;

enum Command {
    /// Persist a queued (accepted) or running execution.
    Put {
        exec: Box<Execution>,
        reply: Reply<()>,
    },
    /// Persist a final execution with its artifacts and a signed, logged receipt.
    Seal {
        exec: Box<Execution>,
        artifacts: Vec<(Digest, Vec<u8>)>,
        reply: Reply<Execution>,
    },
    /// Finish the commands sent before, then exit.
    Stop,
}

/// Handle to the committer thread.
#[derive(Clone)]
pub struct Committer {
    tx: Sender<Command>,
}

impl Committer {
    /// Starts the thread.
    pub fn spawn(
        store: Arc<Store>,
        signing: Arc<Signing>,
        metrics: Arc<Metrics>,
        max_batch: usize,
    ) -> std::io::Result<(Committer, std::thread::JoinHandle<()>)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = std::thread::Builder::new()
            .name("maestro-commit".into())
            .spawn(move || run(rx, &store, &signing, &metrics, max_batch.max(1)))?;
        Ok((Committer { tx }, handle))
    }

    /// Asks the thread to exit after the commands already sent.
    pub fn stop(&self) {
        let _ = self.tx.send(Command::Stop);
    }

    /// Durably records a queued or running execution.
    pub async fn put(&self, exec: Execution) -> Result<(), CommitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Put {
                exec: Box::new(exec),
                reply,
            })
            .map_err(|_| CommitError::Stopped)?;
        rx.await.map_err(|_| CommitError::Stopped)?
    }

    /// Durably records a final execution with its receipt; returns it with the receipt
    /// reference filled in.
    pub async fn seal(
        &self,
        exec: Execution,
        artifacts: Vec<(Digest, Vec<u8>)>,
    ) -> Result<Execution, CommitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Seal {
                exec: Box::new(exec),
                artifacts,
                reply,
            })
            .map_err(|_| CommitError::Stopped)?;
        rx.await.map_err(|_| CommitError::Stopped)?
    }
}

enum Done {
    Put(Reply<()>, Result<(), CommitError>),
    Seal(Reply<Execution>, Result<Box<Execution>, CommitError>),
}

fn run(
    rx: Receiver<Command>,
    store: &Store,
    signing: &Signing,
    metrics: &Metrics,
    max_batch: usize,
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
            if batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(c) => next = Some(c),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        let started = Instant::now();
        let size = batch.len();
        let mut done: Vec<Done> = Vec::with_capacity(size);
        let mut sealed = 0u64;
        let result = store.write(|w| {
            done.clear();
            sealed = 0;
            for command in batch.drain(..) {
                match command {
                    Command::Put { exec, reply } => {
                        let scope = TenantScope::system(exec.tenant.clone(), Access::Run);
                        let r = soft(w.put_execution(&scope, &exec))?;
                        if r.is_ok() && exec.status == ExecutionStatus::Queued {
                            for d in &exec.decisions {
                                w.put_decision(&scope, d)?;
                            }
                        }
                        done.push(Done::Put(reply, r));
                    }
                    Command::Seal {
                        exec,
                        artifacts,
                        reply,
                    } => {
                        let r = seal(w, signing, *exec, &artifacts)?.map(Box::new);
                        if r.is_ok() {
                            sealed += 1;
                        }
                        done.push(Done::Seal(reply, r));
                    }
                    Command::Stop => {}
                }
            }
            if sealed > 0 {
                let size = w.log_size();
                let root = w.log_root()?;
                let note = tlog::sign_checkpoint(
                    &tlog::Checkpoint {
                        origin: signing.origin.clone(),
                        size,
                        root,
                    },
                    &signing.appliance.note_signer(&signing.origin),
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
                for d in done {
                    match d {
                        Done::Put(reply, r) => {
                            let _ = reply.send(r);
                        }
                        Done::Seal(reply, r) => {
                            let _ = reply.send(r.map(|e| *e));
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = size, "group commit failed; nothing in the batch was written");
                let err = CommitError::Store(e.to_string());
                for d in done {
                    match d {
                        Done::Put(reply, _) => {
                            let _ = reply.send(Err(err.clone()));
                        }
                        Done::Seal(reply, _) => {
                            let _ = reply.send(Err(err.clone()));
                        }
                    }
                }
                for command in batch.drain(..) {
                    match command {
                        Command::Put { reply, .. } => {
                            let _ = reply.send(Err(err.clone()));
                        }
                        Command::Seal { reply, .. } => {
                            let _ = reply.send(Err(err.clone()));
                        }
                        Command::Stop => {}
                    }
                }
            }
        }
    }
}

/// Keeps logical refusals (a bug in a caller) per command; storage failures abort the batch.
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

fn seal(
    w: &mut Writer<'_>,
    signing: &Signing,
    mut exec: Execution,
    artifacts: &[(Digest, Vec<u8>)],
) -> Result<Result<Execution, CommitError>, StoreError> {
    let scope = TenantScope::system(exec.tenant.clone(), Access::Run);
    let head = w.chain_head(&exec.tenant)?;
    // The receipt reference is part of the stored record; the statement does not contain it.
    let statement = receipt::statement(&exec, &head, signing.info());
    let payload = statement.to_payload();
    let key = signing.key_for(&exec.tenant);
    let envelope = match dsse::sign(PAYLOAD_TYPE, &payload, key) {
        Ok(e) => e,
        Err(e) => return Ok(Err(CommitError::Signing(e.to_string()))),
    };
    let envelope_json = serde_json::to_string(&envelope).expect("envelope serializes");
    exec.receipt = Some(ReceiptRef {
        digest: Digest::of(&payload),
        log_index: w.log_size(),
    });
    if let Err(e) = soft(w.put_execution(&scope, &exec))? {
        return Ok(Err(e));
    }
    if exec.status == ExecutionStatus::Denied {
        for d in &exec.decisions {
            w.put_decision(&scope, d)?;
        }
    }
    for (digest, bytes) in artifacts {
        w.put_artifact(&scope, digest, bytes)?;
    }
    let reference = w.append_receipt(
        &scope,
        &exec.id,
        &payload,
        envelope_json,
        key.public().keyid().to_owned(),
    )?;
    debug_assert_eq!(Some(&reference), exec.receipt.as_ref());
    Ok(Ok(exec))
}
