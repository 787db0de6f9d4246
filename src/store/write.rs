//! The write side: a [`Writer`] holds every table of one write transaction open, so a batch
//! of executions, decisions, receipts, log leaves and a checkpoint commits atomically.

use redb::{ReadableTable as _, Table, WriteTransaction};

use super::tables::*;
use super::{ActiveState, EncodedDecision, EncodedExecution, StoreError, StoredReceipt, codec};
use crate::domain::actor::TenantScope;
use crate::domain::audit::{AuditEvent, NewAuditEvent};
use crate::domain::execution::{Decision, Execution, ExecutionStatus, ReceiptRef};
use crate::domain::ids::{Digest, ExecutionId, TenantId};
use crate::domain::package::CatalogEntry;
use crate::domain::receipt::ChainHead;
use crate::domain::residency::Violation;
use crate::tlog;

/// Creates every table so read transactions always find them.
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    Writer::new(txn).map(|_| ())
}

/// The tables of one write transaction.
pub struct Writer<'t> {
    meta: Table<'t, &'static str, &'static [u8]>,
    executions: Table<'t, (&'static str, &'static str), &'static [u8]>,
    by_status: Table<'t, (&'static str, &'static str, &'static str), ()>,
    active: Table<'t, (&'static str, &'static str), u64>,
    decisions: Table<'t, (&'static str, &'static str), &'static [u8]>,
    receipts: Table<'t, (&'static str, &'static str), &'static [u8]>,
    receipts_by_digest: Table<'t, (&'static str, &'static str), &'static str>,
    heads: Table<'t, &'static str, &'static [u8]>,
    artifacts: Table<'t, (&'static str, &'static str), &'static [u8]>,
    leaves: Table<'t, u64, (&'static str, &'static str)>,
    hashes: Table<'t, u64, [u8; 32]>,
    checkpoints: Table<'t, u64, &'static str>,
    changes: Table<'t, u64, (&'static str, &'static str, &'static str)>,
    keys: Table<'t, &'static str, &'static [u8]>,
    policies: Table<'t, &'static str, &'static [u8]>,
    audit: Table<'t, u64, &'static [u8]>,
    audit_by_tenant: Table<'t, (&'static str, u64), ()>,
    evidence: Table<'t, (&'static str, &'static str), &'static [u8]>,
    residency: Table<'t, (&'static str, &'static str), &'static [u8]>,
    catalog: Table<'t, (&'static str, &'static str, &'static str), &'static [u8]>,
    releases: Table<'t, (&'static str, &'static str, &'static str), &'static [u8]>,
    log_size: u64,
    next_change: u64,
}

struct Hashes<'a, 't>(&'a Table<'t, u64, [u8; 32]>);

impl tlog::HashSource for Hashes<'_, '_> {
    fn hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, String> {
        indexes
            .iter()
            .map(|&i| match self.0.get(i) {
                Ok(Some(h)) => Ok(h.value()),
                Ok(None) => Err(format!("log hash {i} is missing")),
                Err(e) => Err(e.to_string()),
            })
            .collect()
    }
}

/// Microseconds since the Unix epoch, at least 1 (0 means queued).
pub(super) fn micros(t: Option<jiff::Timestamp>) -> u64 {
    t.map_or(1, |t| u64::try_from(t.as_microsecond()).unwrap_or(1).max(1))
}

fn check_scope(scope: &TenantScope, tenant: &TenantId) -> Result<(), StoreError> {
    if scope.tenant() != tenant {
        return Err(StoreError::ScopeMismatch {
            scope: scope.tenant().to_string(),
            record: tenant.to_string(),
        });
    }
    Ok(())
}

/// Encodes a chain head as 8 bytes of count and 32 bytes of digest.
pub(super) fn encode_head(head: &ChainHead) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..8].copy_from_slice(&head.count.to_le_bytes());
    if let Some(d) = head.last {
        out[8..].copy_from_slice(&d.0);
    }
    out
}

pub(super) fn decode_head(bytes: &[u8]) -> Result<ChainHead, StoreError> {
    if bytes.len() != 40 {
        return Err(StoreError::Corrupt(
            "tenant chain head is not 40 bytes".into(),
        ));
    }
    let count = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let mut d = [0u8; 32];
    d.copy_from_slice(&bytes[8..]);
    Ok(ChainHead {
        count,
        last: (count > 0).then_some(Digest(d)),
    })
}

impl<'t> Writer<'t> {
    pub(super) fn new(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        let leaves = txn.open_table(LOG_LEAVES)?;
        let changes = txn.open_table(CHANGES)?;
        let log_size = leaves.last()?.map(|(k, _)| k.value() + 1).unwrap_or(0);
        let next_change = changes.last()?.map(|(k, _)| k.value() + 1).unwrap_or(0);
        Ok(Writer {
            meta: txn.open_table(META)?,
            executions: txn.open_table(EXECUTIONS)?,
            by_status: txn.open_table(EXECUTIONS_BY_STATUS)?,
            active: txn.open_table(ACTIVE)?,
            decisions: txn.open_table(DECISIONS)?,
            receipts: txn.open_table(RECEIPTS)?,
            receipts_by_digest: txn.open_table(RECEIPTS_BY_DIGEST)?,
            heads: txn.open_table(TENANT_HEADS)?,
            artifacts: txn.open_table(ARTIFACTS)?,
            leaves,
            hashes: txn.open_table(LOG_HASHES)?,
            checkpoints: txn.open_table(CHECKPOINTS)?,
            changes,
            keys: txn.open_table(KEYS)?,
            policies: txn.open_table(POLICIES)?,
            audit: txn.open_table(AUDIT)?,
            audit_by_tenant: txn.open_table(AUDIT_BY_TENANT)?,
            evidence: txn.open_table(EVIDENCE)?,
            residency: txn.open_table(RESIDENCY)?,
            catalog: txn.open_table(CATALOG)?,
            releases: txn.open_table(CATALOG_RELEASES)?,
            log_size,
            next_change,
        })
    }

    fn record_change(&mut self, tenant: &str, kind: &str, id: &str) -> Result<(), StoreError> {
        self.changes.insert(self.next_change, (tenant, kind, id))?;
        self.next_change += 1;
        Ok(())
    }

    /// Inserts or updates an execution and its status index. Final executions are
    /// immutable: rewriting one is refused.
    pub fn put_execution(
        &mut self,
        scope: &TenantScope,
        exec: &Execution,
    ) -> Result<(), StoreError> {
        self.put_encoded_execution(scope, &EncodedExecution::new(exec)?)
    }

    /// [`Writer::put_execution`] with a record encoded beforehand (outside the transaction).
    pub fn put_encoded_execution(
        &mut self,
        scope: &TenantScope,
        exec: &EncodedExecution,
    ) -> Result<(), StoreError> {
        check_scope(scope, &exec.tenant)?;
        let tenant = exec.tenant.as_str();
        let id = exec.id.as_str();
        let previous = match self.active.get((tenant, id))? {
            Some(state) => Some(match ActiveState::of(state.value()) {
                ActiveState::Queued => ExecutionStatus::Queued,
                ActiveState::Running => ExecutionStatus::Running,
            }),
            None if self.executions.get((tenant, id))?.is_some() => {
                return Err(StoreError::Invalid(format!(
                    "execution {id} is final and cannot change"
                )));
            }
            None => None,
        };
        if let Some(prev) = previous
            && prev != exec.status
        {
            self.by_status.remove((tenant, prev.as_str(), id))?;
        }
        self.by_status
            .insert((tenant, exec.status.as_str(), id), ())?;
        match exec.status {
            ExecutionStatus::Queued => {
                self.active.insert((tenant, id), 0)?;
            }
            ExecutionStatus::Running => {
                self.active.insert((tenant, id), micros(exec.started_at))?;
            }
            _ => {
                self.active.remove((tenant, id))?;
            }
        }
        self.executions
            .insert((tenant, id), exec.bytes.as_slice())?;
        self.record_change(tenant, "execution", id)
    }

    /// Marks a queued execution as running without rewriting its record: the live state is
    /// kept in the active table and read over the record.
    pub fn mark_running(
        &mut self,
        scope: &TenantScope,
        id: &ExecutionId,
        started_at: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        let tenant = scope.tenant().as_str();
        let id = id.as_str();
        match self
            .active
            .get((tenant, id))?
            .map(|v| ActiveState::of(v.value()))
        {
            Some(ActiveState::Queued) => {}
            Some(ActiveState::Running) => return Ok(()),
            None => {
                return Err(StoreError::Invalid(format!("execution {id} is not queued")));
            }
        }
        self.by_status
            .remove((tenant, ExecutionStatus::Queued.as_str(), id))?;
        self.by_status
            .insert((tenant, ExecutionStatus::Running.as_str(), id), ())?;
        self.active.insert((tenant, id), micros(Some(started_at)))?;
        self.record_change(tenant, "execution", id)
    }

    /// Stores a policy decision.
    pub fn put_decision(
        &mut self,
        scope: &TenantScope,
        decision: &Decision,
    ) -> Result<(), StoreError> {
        self.put_encoded_decision(scope, &EncodedDecision::new(decision)?)
    }

    /// [`Writer::put_decision`] with a record encoded beforehand.
    pub fn put_encoded_decision(
        &mut self,
        scope: &TenantScope,
        decision: &EncodedDecision,
    ) -> Result<(), StoreError> {
        check_scope(scope, &decision.tenant)?;
        let tenant = decision.tenant.as_str();
        let id = decision.id.as_str();
        self.decisions
            .insert((tenant, id), decision.bytes.as_slice())?;
        self.record_change(tenant, "decision", id)
    }

    /// Stores artifact bytes under their digest (idempotent).
    pub fn put_artifact(
        &mut self,
        scope: &TenantScope,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        if Digest::of(bytes) != *digest {
            return Err(StoreError::Invalid(format!(
                "artifact bytes do not match {digest}"
            )));
        }
        let key = (scope.tenant().as_str(), digest.hex());
        if self.artifacts.get((key.0, key.1.as_str()))?.is_none() {
            self.artifacts.insert(
                (key.0, key.1.as_str()),
                codec::encode_bytes(bytes).as_slice(),
            )?;
        }
        Ok(())
    }

    /// The tenant's receipt chain head, including receipts added in this batch.
    pub fn chain_head(&self, tenant: &TenantId) -> Result<ChainHead, StoreError> {
        match self.heads.get(tenant.as_str())? {
            Some(v) => decode_head(v.value()),
            None => Ok(ChainHead::default()),
        }
    }

    /// Number of leaves in the log, including this batch's.
    pub fn log_size(&self) -> u64 {
        self.log_size
    }

    /// Appends a receipt: a log leaf (the Statement payload), the receipt record, the
    /// digest index and the tenant's chain head.
    pub fn append_receipt(
        &mut self,
        scope: &TenantScope,
        execution: &ExecutionId,
        payload: &[u8],
        envelope: Box<serde_json::value::RawValue>,
        keyid: String,
    ) -> Result<ReceiptRef, StoreError> {
        let tenant = scope.tenant().as_str();
        let id = execution.as_str();
        if self.receipts.get((tenant, id))?.is_some() {
            return Err(StoreError::Invalid(format!(
                "execution {id} already has a receipt"
            )));
        }
        let index = self.log_size;
        let stored_from = tlog::first_stored_index(index);
        let new = tlog::hashes_to_store(index, tlog::leaf_hash(payload), &Hashes(&self.hashes))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        for (i, h) in new.iter().enumerate() {
            self.hashes.insert(stored_from + i as u64, h)?;
        }
        self.leaves.insert(index, (tenant, id))?;
        self.log_size += 1;
        let digest = Digest::of(payload);
        let stored = StoredReceipt {
            digest,
            log_index: index,
            envelope,
            keyid,
        };
        self.receipts
            .insert((tenant, id), codec::encode(&stored)?.as_slice())?;
        self.receipts_by_digest
            .insert((tenant, digest.hex().as_str()), id)?;
        let head = self.chain_head(scope.tenant())?;
        let next = ChainHead {
            count: head.count + 1,
            last: Some(digest),
        };
        self.heads.insert(tenant, encode_head(&next).as_slice())?;
        self.record_change(tenant, "receipt", id)?;
        Ok(ReceiptRef {
            digest,
            log_index: index,
        })
    }

    /// The root hash of the log at its current size.
    pub fn log_root(&self) -> Result<tlog::Hash, StoreError> {
        tlog::root(self.log_size, &Hashes(&self.hashes))
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// Stores a signed checkpoint for a tree size.
    pub fn put_checkpoint(&mut self, size: u64, note: &str) -> Result<(), StoreError> {
        self.checkpoints.insert(size, note)?;
        Ok(())
    }

    /// Records a public key that signs receipts or checkpoints.
    pub fn put_key(&mut self, keyid: &str, record: &serde_json::Value) -> Result<(), StoreError> {
        if self.keys.get(keyid)?.is_none() {
            self.keys.insert(keyid, codec::encode(record)?.as_slice())?;
        }
        Ok(())
    }

    /// Stores a policy bundle by its digest (idempotent).
    pub fn put_policy(
        &mut self,
        digest: &Digest,
        bundle: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let key = digest.hex();
        if self.policies.get(key.as_str())?.is_none() {
            self.policies
                .insert(key.as_str(), codec::encode(bundle)?.as_slice())?;
        }
        Ok(())
    }

    /// Appends an audit event after the last one, linking it by hash.
    pub fn append_audit(&mut self, event: NewAuditEvent) -> Result<AuditEvent, StoreError> {
        let prev = match self.audit.last()? {
            Some((k, v)) => {
                let last: AuditEvent = codec::decode(v.value())?;
                Some((k.value(), last.hash))
            }
            None => None,
        };
        let sealed = event.seal(prev, jiff::Timestamp::now());
        self.audit
            .insert(sealed.seq, codec::encode(&sealed)?.as_slice())?;
        if let Some(tenant) = &sealed.tenant {
            self.audit_by_tenant
                .insert((tenant.as_str(), sealed.seq), ())?;
        }
        Ok(sealed)
    }

    /// Archives evidence under its owner: the scope's tenant, or the appliance for `None`.
    /// Evidence is written once; an id that exists is refused.
    pub fn put_evidence(
        &mut self,
        owner: Option<&TenantScope>,
        id: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let owner = owner.map_or(APPLIANCE_OWNER, |s| s.tenant().as_str());
        if self.evidence.get((owner, id))?.is_some() {
            return Err(StoreError::Invalid(format!(
                "evidence {id} exists and is never rewritten"
            )));
        }
        self.evidence
            .insert((owner, id), codec::encode_bytes(bytes).as_slice())?;
        Ok(())
    }

    /// Reads a metadata value as this transaction sees it (for read-modify-write).
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key)?.map(|v| v.value().to_vec()))
    }

    /// Sets a metadata value.
    pub fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(key, value)?;
        Ok(())
    }

    /// Stores a residency violation (new, or its changed resolution).
    pub fn put_violation(&mut self, v: &Violation) -> Result<(), StoreError> {
        self.residency.insert(
            (v.tenant.as_str(), v.id.as_str()),
            codec::encode(v)?.as_slice(),
        )?;
        Ok(())
    }

    /// Stores a catalog entry: new with its release (which is never replaced), or an
    /// existing one with a new installation verdict (`release: None`).
    pub fn put_catalog(
        &mut self,
        entry: &CatalogEntry,
        release: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let key = (
            entry.kind.as_str(),
            entry.name.as_str(),
            entry.version.as_str(),
        );
        match release {
            Some(bytes) => {
                if self.releases.get(key)?.is_some() {
                    return Err(StoreError::Invalid(format!(
                        "{} is published and is never replaced",
                        entry.reference()
                    )));
                }
                self.releases
                    .insert(key, codec::encode_bytes(bytes).as_slice())?;
            }
            None if self.catalog.get(key)?.is_none() => {
                return Err(StoreError::Invalid(format!(
                    "{} is not in the catalog",
                    entry.reference()
                )));
            }
            None => {}
        }
        self.catalog.insert(key, codec::encode(entry)?.as_slice())?;
        Ok(())
    }
}
