//! The boundary scan: every tenant-keyed record checked, in one snapshot, against the tenant
//! and id it names — executions, their status index and live state, decisions, receipts
//! (down to the tenant inside the signed statement), the digest index, the per-tenant chain
//! heads, the log's leaves and the audit index. The isolation report shows its result as the
//! storage and namespace boundaries.

use std::collections::BTreeMap;

use base64::Engine as _;
use redb::{ReadableTable as _, ReadableTableMetadata as _};
use serde::Serialize;

use super::read::Reader;
use super::tables::*;
use super::write::decode_head;
use super::{StoreError, StoredReceipt, codec};
use crate::domain::audit::AuditEvent;
use crate::domain::execution::{Decision, Execution};

/// Most problems listed one by one; the count covers all.
const MAX_LISTED: usize = 100;

/// What one tenant's namespace holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TenantRecords {
    /// Execution records.
    pub executions: u64,
    /// Executions not yet final (queued or running).
    pub active: u64,
    /// Policy decisions.
    pub decisions: u64,
    /// Receipts.
    pub receipts: u64,
    /// Stored artifacts.
    pub artifacts: u64,
    /// Audit events about the tenant's data.
    pub audit_events: u64,
}

/// The outcome of [`Reader::boundary_scan`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct BoundaryScan {
    /// Records per tenant key.
    pub tenants: BTreeMap<String, TenantRecords>,
    /// Records checked.
    pub checked: u64,
    /// Problems found (at most 100 listed).
    pub problems: Vec<ScanProblem>,
    /// Number of problems found.
    pub problem_count: u64,
    /// Leaves of the transparency log.
    pub log_leaves: u64,
}

/// Which boundary a problem breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// Tenant-keyed records: executions, decisions, audit events.
    Namespaces,
    /// Queue entries of executions not yet final.
    Queues,
    /// Receipts, their chains, the digest index and the log.
    Storage,
}

/// One problem of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanProblem {
    /// The boundary it breaks.
    pub area: Area,
    /// What is wrong, naming the records.
    pub message: String,
}

impl BoundaryScan {
    fn problem(&mut self, area: Area, message: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(ScanProblem { area, message });
        }
    }

    /// Problems of one area.
    pub fn problems_of(&self, area: Area) -> impl Iterator<Item = &str> {
        self.problems
            .iter()
            .filter(move |p| p.area == area)
            .map(|p| p.message.as_str())
    }

    fn tenant(&mut self, t: &str) -> &mut TenantRecords {
        self.tenants.entry(t.to_owned()).or_default()
    }
}

/// Tenant and execution id named inside a receipt's signed statement.
fn statement_names(r: &StoredReceipt) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Env {
        payload: String,
    }
    let env: Env = serde_json::from_str(r.envelope.get()).ok()?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env.payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    let p = &v["predicate"];
    Some((
        p["tenant"].as_str()?.to_owned(),
        p["executionId"].as_str()?.to_owned(),
    ))
}

impl Reader {
    /// Checks every tenant-keyed record against the tenant and id it names. Reads the whole
    /// store once (linear in its size); appliance-internal.
    pub fn boundary_scan(&self) -> Result<BoundaryScan, StoreError> {
        let mut scan = BoundaryScan::default();
        let executions = self.txn.open_table(EXECUTIONS)?;
        for row in executions.iter()? {
            let (k, v) = row?;
            let (t, id) = k.value();
            scan.checked += 1;
            scan.tenant(t).executions += 1;
            match codec::decode::<Execution>(v.value()) {
                Ok(e) if e.tenant.as_str() == t && e.id.as_str() == id => {}
                Ok(e) => scan.problem(
                    Area::Namespaces,
                    format!(
                        "execution {id} under tenant {t} names tenant {} and id {}",
                        e.tenant, e.id
                    ),
                ),
                Err(e) => scan.problem(
                    Area::Namespaces,
                    format!("execution {id} under tenant {t}: {e}"),
                ),
            }
        }
        let by_status = self.txn.open_table(EXECUTIONS_BY_STATUS)?;
        for row in by_status.iter()? {
            let (k, _) = row?;
            let (t, status, id) = k.value();
            scan.checked += 1;
            if executions.get((t, id))?.is_none() {
                scan.problem(Area::Namespaces, format!(
                    "status index {status} lists execution {id} under tenant {t}, which holds no such execution"
                ));
            }
        }
        let active = self.txn.open_table(ACTIVE)?;
        for row in active.iter()? {
            let (k, _) = row?;
            let (t, id) = k.value();
            scan.checked += 1;
            scan.tenant(t).active += 1;
            if executions.get((t, id))?.is_none() {
                scan.problem(
                    Area::Queues,
                    format!("queue entry {id} under tenant {t} has no execution in that tenant"),
                );
            }
        }
        let decisions = self.txn.open_table(DECISIONS)?;
        for row in decisions.iter()? {
            let (k, v) = row?;
            let (t, id) = k.value();
            scan.checked += 1;
            scan.tenant(t).decisions += 1;
            match codec::decode::<Decision>(v.value()) {
                Ok(d) if d.tenant.as_str() != t || d.id.as_str() != id => scan.problem(
                    Area::Namespaces,
                    format!(
                        "decision {id} under tenant {t} names tenant {} and id {}",
                        d.tenant, d.id
                    ),
                ),
                Ok(d) => {
                    if let Some(x) = &d.execution
                        && executions.get((t, x.as_str()))?.is_none()
                    {
                        scan.problem(Area::Namespaces, format!(
                            "decision {id} under tenant {t} governs execution {x}, which is not in that tenant"
                        ));
                    }
                }
                Err(e) => scan.problem(
                    Area::Namespaces,
                    format!("decision {id} under tenant {t}: {e}"),
                ),
            }
        }
        let receipts = self.txn.open_table(RECEIPTS)?;
        let by_digest = self.txn.open_table(RECEIPTS_BY_DIGEST)?;
        let leaves = self.txn.open_table(LOG_LEAVES)?;
        for row in receipts.iter()? {
            let (k, v) = row?;
            let (t, id) = k.value();
            scan.checked += 1;
            scan.tenant(t).receipts += 1;
            if executions.get((t, id))?.is_none() {
                scan.problem(
                    Area::Storage,
                    format!("receipt of {id} under tenant {t} has no execution in that tenant"),
                );
            }
            let r: StoredReceipt = match codec::decode(v.value()) {
                Ok(r) => r,
                Err(e) => {
                    scan.problem(
                        Area::Storage,
                        format!("receipt of {id} under tenant {t}: {e}"),
                    );
                    continue;
                }
            };
            match statement_names(&r) {
                Some((st, sid)) if st == t && sid == id => {}
                Some((st, sid)) => scan.problem(Area::Storage, format!(
                    "receipt of {id} under tenant {t} signs tenant {st} and execution {sid}"
                )),
                None => scan.problem(Area::Storage, format!(
                    "receipt of {id} under tenant {t}: the signed statement does not name its tenant"
                )),
            }
            match leaves.get(r.log_index)? {
                Some(l) if l.value() == (t, id) => {}
                Some(l) => {
                    let (lt, lid) = l.value();
                    scan.problem(Area::Storage, format!(
                        "receipt of {id} under tenant {t} claims log leaf {} which holds {lid} of tenant {lt}",
                        r.log_index
                    ));
                }
                None => scan.problem(
                    Area::Storage,
                    format!(
                        "receipt of {id} under tenant {t} claims log leaf {}, which does not exist",
                        r.log_index
                    ),
                ),
            }
            match by_digest.get((t, r.digest.hex().as_str()))? {
                Some(x) if x.value() == id => {}
                _ => scan.problem(Area::Storage, format!(
                    "receipt of {id} under tenant {t} is missing from that tenant's digest index"
                )),
            }
        }
        for row in by_digest.iter()? {
            let (k, v) = row?;
            let (t, digest) = k.value();
            scan.checked += 1;
            if receipts.get((t, v.value()))?.is_none() {
                scan.problem(Area::Storage, format!(
                    "digest {digest} under tenant {t} points to {}, which has no receipt in that tenant",
                    v.value()
                ));
            }
        }
        let heads = self.txn.open_table(TENANT_HEADS)?;
        for row in heads.iter()? {
            let (k, v) = row?;
            let t = k.value();
            scan.checked += 1;
            let head = decode_head(v.value())?;
            let count = scan.tenants.get(t).map_or(0, |r| r.receipts);
            if head.count != count {
                scan.problem(Area::Storage, format!(
                    "tenant {t}'s receipt chain counts {} receipts but the tenant holds {count}",
                    head.count
                ));
            }
        }
        scan.log_leaves = leaves.len()?;
        let total: u64 = scan.tenants.values().map(|r| r.receipts).sum();
        if scan.log_leaves != total {
            scan.problem(
                Area::Storage,
                format!(
                    "the log has {} leaves but tenants hold {total} receipts",
                    scan.log_leaves
                ),
            );
        }
        let artifacts = self.txn.open_table(ARTIFACTS)?;
        for row in artifacts.iter()? {
            let (k, _) = row?;
            scan.checked += 1;
            scan.tenant(k.value().0).artifacts += 1;
        }
        let audit = self.txn.open_table(AUDIT)?;
        let audit_index = self.txn.open_table(AUDIT_BY_TENANT)?;
        for row in audit_index.iter()? {
            let (k, _) = row?;
            let (t, seq) = k.value();
            scan.checked += 1;
            scan.tenant(t).audit_events += 1;
            match audit.get(seq)? {
                Some(v) => match codec::decode::<AuditEvent>(v.value()) {
                    Ok(e) if e.tenant.as_ref().is_some_and(|et| et.as_str() == t) => {}
                    Ok(_) => scan.problem(
                        Area::Namespaces,
                        format!(
                            "audit event {seq} is indexed under tenant {t} but concerns another"
                        ),
                    ),
                    Err(e) => scan.problem(Area::Namespaces, format!("audit event {seq}: {e}")),
                },
                None => scan.problem(
                    Area::Namespaces,
                    format!("audit index of tenant {t} lists event {seq}, which does not exist"),
                ),
            }
        }
        Ok(scan)
    }
}
