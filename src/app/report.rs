//! The isolation report's appliance side: resource boundaries (the store's boundary scan,
//! each tenant's queue and limits), cross-tenant attempts and the audit chain from the audit
//! log, receipts checked against the signed checkpoint, and archiving a report as signed
//! evidence (DSSE, write-once, with an audit event). The checks that go through the HTTP API
//! are in `http/probe.rs`.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::App;
use super::tokens::PROBE_SUBJECT;
use crate::attest::dsse::{self, Envelope};
use crate::domain::actor::{Access, TenantScope};
use crate::domain::audit::{AuditEvent, AuditKind, NewAuditEvent, verify_chain};
use crate::domain::ids::{Digest, ExecutionId, TenantId};
use crate::domain::report::{
    AttemptRef, Attempts, Check, CheckpointRef, IsolationReport, PAYLOAD_TYPE, ReceiptEvidence,
};
use crate::store::{Area, BoundaryScan, Store, StoreError};
use crate::tlog;

/// What the audit log says about cross-tenant attempts, and its chain.
#[derive(Debug, Clone, Default)]
pub struct AuditSummary {
    /// Attempts outside the probes (the probe fields are left at zero).
    pub attempts: Attempts,
    /// Events in the log.
    pub events: u64,
    /// Hash of the last event.
    pub head: Option<Digest>,
    /// `verified`, or where the chain broke.
    pub chain: String,
}

/// An archived report: the signed envelope and what it says.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArchivedReport {
    /// The report.
    pub report: IsolationReport,
    /// SHA-256 of the signed payload (the report's canonical JSON).
    pub digest: Digest,
    /// The DSSE envelope signed by the appliance key.
    pub envelope: Envelope,
}

/// Messages of one area, only those naming `focus` when the report is about one tenant.
fn problems(scan: &BoundaryScan, area: Area, focus: Option<&TenantId>) -> (usize, Vec<String>) {
    let all: Vec<&str> = scan.problems_of(area).collect();
    let shown = all
        .iter()
        .filter(|m| focus.is_none_or(|t| m.contains(&format!("tenant {t}"))))
        .map(|m| (*m).to_owned())
        .collect();
    (all.len(), shown)
}

fn boundary(name: &str, count: u64, (total, shown): (usize, Vec<String>), ok: String) -> Check {
    let detail = if total == 0 {
        ok
    } else {
        let mut d: Vec<String> = shown.into_iter().take(5).collect();
        if d.len() < total {
            d.push(format!("{total} problems in all"));
        }
        d.join("; ")
    };
    Check {
        name: name.into(),
        passed: total == 0,
        count,
        detail,
    }
}

impl App {
    /// The resource boundaries: namespaces, queues and storage, from one scan of the store
    /// and the engine's queues and limits.
    pub fn boundaries(&self, focus: Option<&TenantId>) -> Result<Vec<Check>, StoreError> {
        let scan = self.engine.store().read()?.boundary_scan()?;
        let configured: BTreeSet<String> =
            self.tenant_ids().iter().map(|t| t.to_string()).collect();
        let shown = |t: &str| focus.is_none_or(|f| f.as_str() == t);
        let per_tenant = |f: &dyn Fn(&crate::store::TenantRecords) -> String| {
            scan.tenants
                .iter()
                .filter(|(t, _)| shown(t))
                .map(|(t, r)| format!("{t}: {}", f(r)))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut out = vec![boundary(
            "namespaces: every record is filed under the tenant it names",
            scan.checked,
            problems(&scan, Area::Namespaces, focus),
            format!(
                "{} records checked; {}",
                scan.checked,
                per_tenant(&|r| format!(
                    "{} executions, {} decisions, {} audit events",
                    r.executions, r.decisions, r.audit_events
                ))
            ),
        )];
        let orphans: Vec<&String> = scan
            .tenants
            .keys()
            .filter(|t| !configured.contains(*t) && shown(t))
            .collect();
        out.push(Check {
            name: "namespaces: data only under configured tenants".into(),
            passed: orphans.is_empty(),
            count: scan.tenants.len() as u64,
            detail: if orphans.is_empty() {
                format!("{} tenant namespaces hold data", scan.tenants.len())
            } else {
                format!(
                    "data under tenants no configuration serves: {}",
                    orphans
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        });
        let settings = &self.engine.config().tenants;
        let depths = self.engine.queue_depths();
        let stray: Vec<String> = depths
            .iter()
            .filter(|(t, _)| !settings.contains_key(t))
            .map(|(t, _)| t.to_string())
            .collect();
        let unlimited: Vec<String> = settings
            .iter()
            .filter(|(_, s)| s.rate == 0 || s.burst == 0 || s.max_queued == 0)
            .map(|(t, _)| t.to_string())
            .collect();
        let (queue_total, mut queue_shown) = problems(&scan, Area::Queues, focus);
        queue_shown.extend(
            stray
                .iter()
                .map(|t| format!("a queue of unconfigured tenant {t}")),
        );
        queue_shown.extend(
            unlimited
                .iter()
                .map(|t| format!("tenant {t} has no rate limit or queue bound")),
        );
        let limits = settings
            .iter()
            .filter(|(t, _)| shown(t.as_str()))
            .map(|(t, s)| {
                let depth = depths
                    .iter()
                    .find(|(d, _)| d == t)
                    .map_or(0, |(_, n)| *n);
                let stored = scan.tenants.get(t.as_str()).map_or(0, |r| r.active);
                format!(
                    "{t}: own queue (weight {}, at most {} queued, {depth} queued now, {stored} not final in the store) and own limiter ({}/s, burst {})",
                    s.weight, s.max_queued, s.rate, s.burst
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        out.push(boundary(
            "queues: one queue and one rate limiter per tenant",
            settings.len() as u64,
            (queue_total + stray.len() + unlimited.len(), queue_shown),
            limits,
        ));
        let receipts: u64 = scan.tenants.values().map(|r| r.receipts).sum();
        out.push(boundary(
            "storage: receipts, chains, digest index and log leaves agree per tenant",
            receipts + scan.log_leaves,
            problems(&scan, Area::Storage, focus),
            format!(
                "{} log leaves, one per receipt; {}",
                scan.log_leaves,
                per_tenant(&|r| format!(
                    "{} receipts signing their own tenant, {} artifacts",
                    r.receipts, r.artifacts
                ))
            ),
        ));
        Ok(out)
    }

    /// Cross-tenant attempts outside the probes (about `focus`, or every tenant) and the
    /// audit log's hash chain, from one pass over the log.
    pub fn audit_summary(&self, focus: Option<&TenantId>) -> Result<AuditSummary, StoreError> {
        audit_summary(self.engine.store(), focus)
    }

    /// The latest checkpoint, verified with the appliance key, and each receipt's inclusion
    /// in it.
    pub fn receipt_evidence(
        &self,
        receipts: &[(TenantId, ExecutionId)],
    ) -> Result<(Option<CheckpointRef>, Vec<ReceiptEvidence>), crate::engine::EngineError> {
        let evidence = self.engine.evidence();
        let Some(cp) = evidence.latest_checkpoint()? else {
            return Ok((None, Vec::new()));
        };
        let signing = self.engine.signing();
        let signed = tlog::open_checkpoint(
            &cp.note,
            &signing.appliance.public().note_verifier(&signing.origin),
        )
        .is_ok();
        let mut out = Vec::new();
        for (tenant, id) in receipts {
            let scope = TenantScope::system(tenant.clone(), Access::Read);
            let (Some(stored), Some(proof)) = (
                evidence.stored_receipt(&scope, id)?,
                evidence.inclusion_proof(&scope, id, Some(cp.size))?,
            ) else {
                continue;
            };
            let hash = |h: &str| -> Option<tlog::Hash> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(h, &mut out).ok().map(|_| out)
            };
            let hashes: Option<Vec<tlog::Hash>> = proof.hashes.iter().map(|h| hash(h)).collect();
            let included = signed
                && match (hashes, hash(&proof.root_hash), hash(&proof.leaf_hash)) {
                    (Some(p), Some(root), Some(leaf)) => {
                        tlog::verify_inclusion(&p, proof.tree_size, root, proof.log_index, leaf)
                            .is_ok()
                    }
                    _ => false,
                };
            out.push(ReceiptEvidence {
                tenant: tenant.clone(),
                execution: id.clone(),
                digest: stored.digest,
                log_index: stored.log_index,
                included,
            });
        }
        Ok((
            Some(CheckpointRef {
                size: cp.size,
                root: cp.root_hash,
            }),
            out,
        ))
    }

    /// Signs a report with the appliance key and archives it under `owner` (a tenant, or the
    /// appliance for `None`), with an `evidence_archived` audit event, in one transaction.
    pub async fn archive_report(
        &self,
        report: &IsolationReport,
        owner: Option<TenantScope>,
    ) -> Result<ArchivedReport, super::AppError> {
        let payload =
            serde_json::to_vec(report).map_err(|e| super::AppError::Other(e.to_string()))?;
        let envelope = dsse::sign(PAYLOAD_TYPE, &payload, &self.engine.signing().appliance)?;
        let digest = Digest::of(&payload);
        let bytes =
            serde_json::to_vec(&envelope).map_err(|e| super::AppError::Other(e.to_string()))?;
        let event = NewAuditEvent {
            kind: AuditKind::EvidenceArchived,
            tenant: owner.as_ref().map(|s| s.tenant().clone()),
            actor_tenant: None,
            actor: report.generated_by.clone(),
            route: None,
            decision: None,
            detail: json!({
                "kind": "isolation_report",
                "id": report.id,
                "digest": digest,
                "passed": report.passed,
            }),
        };
        let engine = self.engine.clone();
        let id = report.id.clone();
        tokio::task::spawn_blocking(move || {
            engine.store().write(|w| {
                w.put_evidence(owner.as_ref(), &id, &bytes)?;
                w.append_audit(event).map(|_| ())
            })
        })
        .await
        .map_err(|e| super::AppError::Other(e.to_string()))??;
        Ok(ArchivedReport {
            report: report.clone(),
            digest,
            envelope,
        })
    }

    /// An archived report of `owner` (a tenant, or the appliance for `None`), its signature
    /// checked with the appliance's keys.
    pub fn archived_report(
        &self,
        owner: Option<&TenantScope>,
        id: &str,
    ) -> Result<Option<ArchivedReport>, StoreError> {
        let Some(bytes) = self.engine.store().read()?.evidence(owner, id)? else {
            return Ok(None);
        };
        let corrupt = |e: String| StoreError::Corrupt(format!("evidence {id}: {e}"));
        let envelope: Envelope =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        // Any key that ever signed for this appliance (keys rotate; evidence stays).
        let evidence = self.engine.evidence();
        let trusted: Vec<_> = envelope
            .signatures
            .iter()
            .filter_map(|s| evidence.public_key(&s.keyid))
            .collect();
        envelope
            .verify(PAYLOAD_TYPE, &trusted)
            .map_err(|e| corrupt(e.to_string()))?;
        let payload = envelope
            .payload_bytes()
            .map_err(|e| corrupt(e.to_string()))?;
        let report = serde_json::from_slice(&payload).map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(ArchivedReport {
            report,
            digest: Digest::of(&payload),
            envelope,
        }))
    }
}

/// [`App::audit_summary`] of a store: cross-tenant attempts outside the probes (about
/// `focus`, or every tenant) and the audit log's hash chain, from one pass over the log.
pub fn audit_summary(store: &Store, focus: Option<&TenantId>) -> Result<AuditSummary, StoreError> {
    let mut s = AuditSummary {
        chain: "verified".into(),
        ..AuditSummary::default()
    };
    let mut recent: VecDeque<AttemptRef> = VecDeque::new();
    let mut after: Option<u64> = None;
    let mut last: Option<AuditEvent> = None;
    loop {
        let page = store.read()?.audit_all(after, 10_000)?;
        let Some(end) = page.last() else { break };
        after = Some(end.seq);
        let linked: Vec<AuditEvent> = last.take().into_iter().chain(page).collect();
        if s.chain == "verified"
            && let Err(e) = verify_chain(&linked)
        {
            s.chain = format!("broken: {e}");
        }
        for e in &linked[usize::from(s.events > 0)..] {
            s.events += 1;
            s.head = Some(e.hash);
            if focus.is_some_and(|t| e.tenant.as_ref() != Some(t)) {
                continue;
            }
            let kind = match e.kind {
                AuditKind::CrossTenantDenied if !e.actor.starts_with(PROBE_SUBJECT) => {
                    s.attempts.outside += 1;
                    "cross_tenant_denied"
                }
                AuditKind::CrossTenantRead => {
                    s.attempts.allowed_reads += 1;
                    "cross_tenant_read"
                }
                _ => continue,
            };
            recent.push_front(AttemptRef {
                seq: e.seq,
                at: e.at,
                kind: kind.into(),
                actor: e.actor.clone(),
                actor_tenant: e.actor_tenant.clone(),
                tenant: e.tenant.clone(),
                route: e.route.clone(),
            });
            recent.truncate(10);
        }
        last = linked.into_iter().last();
    }
    s.attempts.recent = recent.into();
    Ok(s)
}
