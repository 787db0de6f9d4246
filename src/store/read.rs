//! The read side: a [`Reader`] is one consistent snapshot. Tenant data is read through a
//! [`TenantScope`]; log data (hashes, checkpoints) is appliance-wide and holds no tenant
//! content.

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable as _, ReadableTableMetadata as _};

use super::tables::*;
use super::write::decode_head;
use super::{ActiveState, Change, StoreError, StoredReceipt, codec};
use crate::domain::actor::TenantScope;
use crate::domain::audit::AuditEvent;
use crate::domain::execution::{Decision, Execution, ExecutionStatus, ExecutionSummary};
use crate::domain::ids::{DecisionId, Digest, ExecutionId, TenantId};
use crate::domain::package::{CatalogEntry, Kind};
use crate::domain::receipt::ChainHead;
use crate::domain::residency::Violation;
use crate::tlog;

/// Filters and cursor for listing executions (newest first).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<ExecutionStatus>,
    /// Only this manifest name.
    pub name: Option<String>,
    /// Only canary (true) or only regular (false) executions.
    pub canary: Option<bool>,
    /// Continue after this execution id (exclusive).
    pub after: Option<ExecutionId>,
    /// Page size.
    pub limit: usize,
}

/// Most rows a filtered list scans for one page before handing back a cursor.
pub const MAX_SCAN: usize = 10_000;

/// One page of results.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page<T> {
    /// Items in order.
    pub items: Vec<T>,
    /// Cursor for the next page, when there may be more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A consistent snapshot of the store.
pub struct Reader {
    pub(super) txn: ReadTransaction,
}

/// Reads stored log hashes for proofs.
pub struct LogHashes {
    table: ReadOnlyTable<u64, [u8; 32]>,
}

impl tlog::HashSource for LogHashes {
    fn hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, String> {
        indexes
            .iter()
            .map(|&i| match self.table.get(i) {
                Ok(Some(h)) => Ok(h.value()),
                Ok(None) => Err(format!("log hash {i} is missing")),
                Err(e) => Err(e.to_string()),
            })
            .collect()
    }
}

const ID_MAX: &str = "\u{7f}";

/// The fields of a stored execution a list shows. Decoding only these skips the rest of
/// the record (tasks, outputs, decision inputs) without building it.
#[derive(serde::Deserialize)]
struct Listed {
    id: ExecutionId,
    tenant: TenantId,
    status: ExecutionStatus,
    manifest: ListedManifest,
    region: String,
    #[serde(default)]
    canary: bool,
    submitted_at: jiff::Timestamp,
    #[serde(default)]
    finished_at: Option<jiff::Timestamp>,
    #[serde(default)]
    receipt: Option<crate::domain::execution::ReceiptRef>,
}

#[derive(serde::Deserialize)]
struct ListedManifest {
    name: String,
    version: String,
}

impl Listed {
    fn summary(self) -> ExecutionSummary {
        ExecutionSummary {
            id: self.id,
            tenant: self.tenant,
            status: self.status,
            name: self.manifest.name,
            version: self.manifest.version,
            region: self.region,
            canary: self.canary,
            submitted_at: self.submitted_at,
            finished_at: self.finished_at,
            receipt_digest: self.receipt.map(|r| r.digest),
        }
    }
}

/// An execution record as stored, not decoded yet. The live state of a queued record (see
/// [`ACTIVE`]) is not applied: for final records, which it never concerns.
pub struct StoredExecution(Vec<u8>);

impl StoredExecution {
    /// The record's JSON (an [`Execution`]), decompressed, for readers that take only some
    /// of it.
    pub fn json(&self) -> Result<Vec<u8>, StoreError> {
        codec::json_bytes(&self.0)
    }
}

/// A receipt as stored, not decoded yet.
pub struct EncodedReceipt(Vec<u8>);

impl EncodedReceipt {
    /// The receipt.
    pub fn decode(&self) -> Result<StoredReceipt, StoreError> {
        codec::decode(&self.0)
    }
}

impl Reader {
    pub(super) fn new(txn: ReadTransaction) -> Self {
        Reader { txn }
    }

    /// One execution of the scope's tenant.
    pub fn execution(
        &self,
        scope: &TenantScope,
        id: &ExecutionId,
    ) -> Result<Option<Execution>, StoreError> {
        let table = self.txn.open_table(EXECUTIONS)?;
        let Some(v) = table.get((scope.tenant().as_str(), id.as_str()))? else {
            return Ok(None);
        };
        let mut e: Execution = codec::decode(v.value())?;
        self.overlay(&mut e)?;
        Ok(Some(e))
    }

    /// Applies the live state of the active table (running, and since when) to a record.
    fn overlay(&self, e: &mut Execution) -> Result<(), StoreError> {
        if e.status != ExecutionStatus::Queued {
            return Ok(());
        }
        let active = self.txn.open_table(ACTIVE)?;
        if let Some(v) = active.get((e.tenant.as_str(), e.id.as_str()))?
            && v.value() > 0
        {
            e.status = ExecutionStatus::Running;
            e.started_at = i64::try_from(v.value())
                .ok()
                .and_then(|m| jiff::Timestamp::from_microsecond(m).ok());
        }
        Ok(())
    }

    /// A page of the tenant's executions, newest first.
    pub fn list_executions(
        &self,
        scope: &TenantScope,
        q: &ListQuery,
    ) -> Result<Page<ExecutionSummary>, StoreError> {
        let tenant = scope.tenant().as_str();
        let limit = q.limit.clamp(1, 1000);
        let upper = q.after.as_ref().map(|c| c.as_str()).unwrap_or(ID_MAX);
        let executions = self.txn.open_table(EXECUTIONS)?;
        let mut items = Vec::new();
        let mut scanned = 0usize;
        let mut last_seen: Option<String> = None;
        let matches = |e: &Listed| {
            q.name.as_ref().is_none_or(|n| &e.manifest.name == n)
                && q.canary.is_none_or(|c| e.canary == c)
                && q.status.is_none_or(|s| e.status == s)
        };
        let active = self.txn.open_table(ACTIVE)?;
        // The live state (running) of a queued record comes from the active table.
        let decode = |bytes: &[u8]| -> Result<Listed, StoreError> {
            let mut e: Listed = codec::decode(bytes)?;
            if e.status == ExecutionStatus::Queued
                && let Some(v) = active.get((e.tenant.as_str(), e.id.as_str()))?
                && v.value() > 0
            {
                e.status = ExecutionStatus::Running;
            }
            Ok(e)
        };
        let mut exhausted = true;
        if let Some(status) = q.status {
            let index = self.txn.open_table(EXECUTIONS_BY_STATUS)?;
            let mut rows = index
                .range((tenant, status.as_str(), "")..(tenant, status.as_str(), upper))?
                .rev();
            while let Some(row) = rows.next() {
                let (key, _) = row?;
                let id = key.value().2.to_owned();
                scanned += 1;
                if let Some(v) = executions.get((tenant, id.as_str()))? {
                    let e = decode(v.value())?;
                    if matches(&e) {
                        items.push(e.summary());
                    }
                }
                last_seen = Some(id);
                if items.len() >= limit || scanned >= MAX_SCAN {
                    // A cursor only when there is something after it.
                    exhausted = rows.next().is_none();
                    break;
                }
            }
        } else {
            let mut rows = executions.range((tenant, "")..(tenant, upper))?.rev();
            while let Some(row) = rows.next() {
                let (key, value) = row?;
                scanned += 1;
                let e = decode(value.value())?;
                if matches(&e) {
                    items.push(e.summary());
                }
                last_seen = Some(key.value().1.to_owned());
                if items.len() >= limit || scanned >= MAX_SCAN {
                    exhausted = rows.next().is_none();
                    break;
                }
            }
        }
        Ok(Page {
            items,
            next_cursor: if exhausted { None } else { last_seen },
        })
    }

    /// The receipt of an execution of the scope's tenant.
    pub fn receipt(
        &self,
        scope: &TenantScope,
        id: &ExecutionId,
    ) -> Result<Option<StoredReceipt>, StoreError> {
        let table = self.txn.open_table(RECEIPTS)?;
        table
            .get((scope.tenant().as_str(), id.as_str()))?
            .map(|v| codec::decode(v.value()))
            .transpose()
    }

    /// A receipt of the scope's tenant by its digest.
    pub fn receipt_by_digest(
        &self,
        scope: &TenantScope,
        digest: &Digest,
    ) -> Result<Option<(ExecutionId, StoredReceipt)>, StoreError> {
        let index = self.txn.open_table(RECEIPTS_BY_DIGEST)?;
        let Some(id) = index.get((scope.tenant().as_str(), digest.hex().as_str()))? else {
            return Ok(None);
        };
        let id = ExecutionId::new(id.value()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(self.receipt(scope, &id)?.map(|r| (id, r)))
    }

    /// A decision of the scope's tenant.
    pub fn decision(
        &self,
        scope: &TenantScope,
        id: &DecisionId,
    ) -> Result<Option<Decision>, StoreError> {
        let table = self.txn.open_table(DECISIONS)?;
        table
            .get((scope.tenant().as_str(), id.as_str()))?
            .map(|v| codec::decode(v.value()))
            .transpose()
    }

    /// Artifact bytes of the scope's tenant.
    pub fn artifact(
        &self,
        scope: &TenantScope,
        digest: &Digest,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let table = self.txn.open_table(ARTIFACTS)?;
        table
            .get((scope.tenant().as_str(), digest.hex().as_str()))?
            .map(|v| codec::decode_bytes(v.value()))
            .transpose()
    }

    /// The tenant's receipt chain head.
    pub fn chain_head(&self, tenant: &TenantId) -> Result<ChainHead, StoreError> {
        let table = self.txn.open_table(TENANT_HEADS)?;
        match table.get(tenant.as_str())? {
            Some(v) => decode_head(v.value()),
            None => Ok(ChainHead::default()),
        }
    }

    /// Number of leaves in the log.
    pub fn log_size(&self) -> Result<u64, StoreError> {
        let table = self.txn.open_table(LOG_LEAVES)?;
        Ok(table.last()?.map(|(k, _)| k.value() + 1).unwrap_or(0))
    }

    /// The (tenant, execution) whose receipt is at a leaf. Appliance-internal.
    pub fn log_leaf(&self, index: u64) -> Result<Option<(TenantId, ExecutionId)>, StoreError> {
        let table = self.txn.open_table(LOG_LEAVES)?;
        let Some(v) = table.get(index)? else {
            return Ok(None);
        };
        let (t, e) = v.value();
        let tenant = TenantId::new(t).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let exec = ExecutionId::new(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some((tenant, exec)))
    }

    /// The newest log leaf of the scope's tenant whose execution `wanted` accepts, walking
    /// the log back from its end: for a tenant that ran there lately, a few steps; at
    /// worst, one read of each of the tenant's sealed records.
    pub fn last_leaf_of(
        &self,
        scope: &TenantScope,
        mut wanted: impl FnMut(&StoredExecution) -> Result<bool, StoreError>,
    ) -> Result<Option<u64>, StoreError> {
        let tenant = scope.tenant().as_str();
        let leaves = self.txn.open_table(LOG_LEAVES)?;
        let executions = self.txn.open_table(EXECUTIONS)?;
        for row in leaves.iter()?.rev() {
            let (index, owner) = row?;
            let (t, id) = owner.value();
            if t != tenant {
                continue;
            }
            if let Some(v) = executions.get((tenant, id))?
                && wanted(&StoredExecution(v.value().to_vec()))?
            {
                return Ok(Some(index.value()));
            }
        }
        Ok(None)
    }

    /// The stored log hashes, for proofs.
    pub fn log_hashes(&self) -> Result<LogHashes, StoreError> {
        Ok(LogHashes {
            table: self.txn.open_table(LOG_HASHES)?,
        })
    }

    /// The signed checkpoint for a tree size, if one was signed.
    pub fn checkpoint(&self, size: u64) -> Result<Option<String>, StoreError> {
        let table = self.txn.open_table(CHECKPOINTS)?;
        Ok(table.get(size)?.map(|v| v.value().to_owned()))
    }

    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        let table = self.txn.open_table(CHECKPOINTS)?;
        Ok(table
            .last()?
            .map(|(k, v)| (k.value(), v.value().to_owned())))
    }

    /// The smallest signed checkpoint at or above `size`.
    pub fn checkpoint_at_or_after(&self, size: u64) -> Result<Option<(u64, String)>, StoreError> {
        let table = self.txn.open_table(CHECKPOINTS)?;
        let mut range = table.range(size..)?;
        Ok(range
            .next()
            .transpose()?
            .map(|(k, v)| (k.value(), v.value().to_owned())))
    }

    /// Executions that are not final, across tenants. Appliance-internal (recovery).
    pub fn active(&self) -> Result<Vec<(TenantId, ExecutionId, ActiveState)>, StoreError> {
        let table = self.txn.open_table(ACTIVE)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let (t, e) = k.value();
            out.push((
                TenantId::new(t).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                ExecutionId::new(e).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                ActiveState::of(v.value()),
            ));
        }
        Ok(out)
    }

    /// Changes after sequence `after` (exclusive), at most `limit`.
    pub fn changes_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let table = self.txn.open_table(CHANGES)?;
        let start = after.map(|a| a + 1).unwrap_or(0);
        let mut out = Vec::new();
        for row in table.range(start..)? {
            let (k, v) = row?;
            let (tenant, kind, id) = v.value();
            out.push(Change {
                seq: k.value(),
                tenant: tenant.to_owned(),
                kind: kind.to_owned(),
                id: id.to_owned(),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Sequence number of the last recorded change, if any.
    pub fn last_change(&self) -> Result<Option<u64>, StoreError> {
        let table = self.txn.open_table(CHANGES)?;
        Ok(table.last()?.map(|(k, _)| k.value()))
    }

    /// Tenants that hold executions or decisions, including tenants no longer configured
    /// (rebuilding derived state must see all data).
    pub fn tenants_with_data(&self) -> Result<Vec<TenantId>, StoreError> {
        let mut out: Vec<TenantId> = Vec::new();
        for name in [EXECUTIONS, DECISIONS] {
            let table = self.txn.open_table(name)?;
            let mut next = String::new();
            // Skip from tenant to tenant: one seek per tenant, not one per row.
            while let Some(row) = table.range((next.as_str(), "")..)?.next() {
                let (key, _) = row?;
                let tenant = key.value().0.to_owned();
                let id = TenantId::new(&tenant).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if !out.contains(&id) {
                    out.push(id);
                }
                next = format!("{tenant}{ID_MAX}");
            }
        }
        out.sort();
        Ok(out)
    }

    /// Tenants with at least one receipt.
    pub fn tenants_with_receipts(&self) -> Result<Vec<TenantId>, StoreError> {
        let table = self.txn.open_table(TENANT_HEADS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, _) = row?;
            out.push(TenantId::new(k.value()).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// How many executions and decisions are stored, over every tenant.
    pub fn counts(&self) -> Result<(u64, u64), StoreError> {
        Ok((
            self.txn.open_table(EXECUTIONS)?.len()?,
            self.txn.open_table(DECISIONS)?.len()?,
        ))
    }

    /// Calls `f` with every execution of the scope's tenant, oldest first, until it returns
    /// `false`.
    pub fn for_each_execution(
        &self,
        scope: &TenantScope,
        mut f: impl FnMut(Execution) -> bool,
    ) -> Result<(), StoreError> {
        let tenant = scope.tenant().as_str();
        let table = self.txn.open_table(EXECUTIONS)?;
        for row in table.range((tenant, "")..(tenant, ID_MAX))? {
            let (_, v) = row?;
            let mut e: Execution = codec::decode(v.value())?;
            self.overlay(&mut e)?;
            if !f(e) {
                break;
            }
        }
        Ok(())
    }

    /// Calls `f` with every execution record of the scope's tenant as stored, with its
    /// receipt if it has one, oldest first, until it returns `false`; both decode on any
    /// thread. Receipts are keyed like executions, so one pass over each table pairs them.
    pub fn for_each_stored_execution(
        &self,
        scope: &TenantScope,
        mut f: impl FnMut(StoredExecution, Option<EncodedReceipt>) -> bool,
    ) -> Result<(), StoreError> {
        let tenant = scope.tenant().as_str();
        let table = self.txn.open_table(EXECUTIONS)?;
        let receipts = self.txn.open_table(RECEIPTS)?;
        let mut receipts = receipts.range((tenant, "")..(tenant, ID_MAX))?;
        let next_receipt = |receipts: &mut redb::Range<'_, (&str, &str), &[u8]>| {
            receipts
                .next()
                .transpose()
                .map(|r| r.map(|(k, v)| (k.value().1.to_owned(), v.value().to_vec())))
        };
        let mut receipt = next_receipt(&mut receipts)?;
        for row in table.range((tenant, "")..(tenant, ID_MAX))? {
            let (k, v) = row?;
            let id = k.value().1;
            while receipt.as_ref().is_some_and(|(r, _)| r.as_str() < id) {
                receipt = next_receipt(&mut receipts)?;
            }
            let its = match &receipt {
                Some((r, _)) if r == id => {
                    let (_, bytes) = receipt.take().expect("matched above");
                    receipt = next_receipt(&mut receipts)?;
                    Some(EncodedReceipt(bytes))
                }
                _ => None,
            };
            if !f(StoredExecution(v.value().to_vec()), its) {
                break;
            }
        }
        Ok(())
    }

    /// Calls `f` with every decision of the scope's tenant, oldest first, until it returns
    /// `false`.
    pub fn for_each_decision(
        &self,
        scope: &TenantScope,
        mut f: impl FnMut(Decision) -> bool,
    ) -> Result<(), StoreError> {
        let tenant = scope.tenant().as_str();
        let table = self.txn.open_table(DECISIONS)?;
        for row in table.range((tenant, "")..(tenant, ID_MAX))? {
            let (_, v) = row?;
            if !f(codec::decode(v.value())?) {
                break;
            }
        }
        Ok(())
    }

    /// The residency violations of the scope's tenant (open ones only, if asked).
    pub fn violations(
        &self,
        scope: &TenantScope,
        open_only: bool,
    ) -> Result<Vec<Violation>, StoreError> {
        let tenant = scope.tenant().as_str();
        let table = self.txn.open_table(RESIDENCY)?;
        let mut out = Vec::new();
        for row in table.range((tenant, "")..(tenant, ID_MAX))? {
            let v: Violation = codec::decode(row?.1.value())?;
            if !open_only || v.is_open() {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Every residency violation of every tenant. Appliance-internal: the auditor, its
    /// metrics and the admission blocks.
    pub fn all_violations(&self) -> Result<Vec<Violation>, StoreError> {
        let table = self.txn.open_table(RESIDENCY)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            out.push(codec::decode(row?.1.value())?);
        }
        Ok(out)
    }

    /// Calls `f` with every stored receipt of the scope's tenant, in execution id order,
    /// until it returns `false`.
    pub fn for_each_receipt(
        &self,
        scope: &TenantScope,
        mut f: impl FnMut(ExecutionId, StoredReceipt) -> bool,
    ) -> Result<(), StoreError> {
        let tenant = scope.tenant().as_str();
        let table = self.txn.open_table(RECEIPTS)?;
        for row in table.range((tenant, "")..(tenant, ID_MAX))? {
            let (k, v) = row?;
            let id =
                ExecutionId::new(k.value().1).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if !f(id, codec::decode(v.value())?) {
                break;
            }
        }
        Ok(())
    }

    /// A stored policy bundle by digest.
    pub fn policy(&self, digest: &Digest) -> Result<Option<serde_json::Value>, StoreError> {
        let table = self.txn.open_table(POLICIES)?;
        table
            .get(digest.hex().as_str())?
            .map(|v| codec::decode(v.value()))
            .transpose()
    }

    /// Audit events about a tenant's data, oldest first, after `after`. An attempt by one
    /// tenant's actor on another tenant's data belongs to the tenant whose data it was, so it
    /// tells the attacker's tenant nothing.
    pub fn audit_of(
        &self,
        scope: &TenantScope,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let index = self.txn.open_table(AUDIT_BY_TENANT)?;
        let events = self.txn.open_table(AUDIT)?;
        let tenant = scope.tenant().as_str();
        let from = after.map_or(0, |a| a.saturating_add(1));
        let mut out = Vec::new();
        for row in index.range((tenant, from)..=(tenant, u64::MAX))? {
            let (k, _) = row?;
            if let Some(v) = events.get(k.value().1)? {
                out.push(codec::decode(v.value())?);
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Sequence number of the last audit event, if any.
    pub fn audit_last_seq(&self) -> Result<Option<u64>, StoreError> {
        let events = self.txn.open_table(AUDIT)?;
        Ok(events.last()?.map(|(k, _)| k.value()))
    }

    /// Every audit event, oldest first, after `after`. Appliance-wide (admins).
    pub fn audit_all(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let events = self.txn.open_table(AUDIT)?;
        let from = after.map_or(0, |a| a.saturating_add(1));
        let mut out = Vec::new();
        for row in events.range(from..)? {
            let (_, v) = row?;
            out.push(codec::decode(v.value())?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Archived evidence of the scope's tenant, or of the appliance for `None` (callers
    /// check appliance-wide access first).
    pub fn evidence(
        &self,
        owner: Option<&TenantScope>,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let table = self.txn.open_table(EVIDENCE)?;
        let owner = owner.map_or(APPLIANCE_OWNER, |s| s.tenant().as_str());
        table
            .get((owner, id))?
            .map(|v| codec::decode_bytes(v.value()))
            .transpose()
    }

    /// Every public key that ever signed.
    pub fn keys(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        let table = self.txn.open_table(KEYS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (_, v) = row?;
            out.push(codec::decode(v.value())?);
        }
        Ok(out)
    }
}

impl Reader {
    /// Every catalog entry, by kind, name and version.
    pub fn catalog(&self) -> Result<Vec<CatalogEntry>, StoreError> {
        let table = self.txn.open_table(CATALOG)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            out.push(codec::decode(row?.1.value())?);
        }
        Ok(out)
    }

    /// One catalog entry.
    pub fn catalog_entry(
        &self,
        kind: Kind,
        name: &str,
        version: &str,
    ) -> Result<Option<CatalogEntry>, StoreError> {
        let table = self.txn.open_table(CATALOG)?;
        table
            .get((kind.as_str(), name, version))?
            .map(|v| codec::decode(v.value()))
            .transpose()
    }

    /// The release of a catalog entry, as published.
    pub fn catalog_release(
        &self,
        kind: Kind,
        name: &str,
        version: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let table = self.txn.open_table(CATALOG_RELEASES)?;
        table
            .get((kind.as_str(), name, version))?
            .map(|v| codec::decode_bytes(v.value()))
            .transpose()
    }
}
