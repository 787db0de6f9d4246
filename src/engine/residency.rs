//! The residency auditor: reads receipts from a cursor in the transparency log, checks every
//! artifact against the rules in force now (`domain::residency::check`), and stores each
//! violation once. When the rules change (a location re-tagged, a tenant's regions
//! narrowed, a replica added) it checks every receipt again, so what admission allowed
//! under the old rules is caught under the new ones; violations that no longer hold are
//! resolved by it, ones an operator resolved stay resolved. The open violations are what
//! admission blocks when the auditor enforces.

pub mod corpus;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use base64::Engine as _;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Engine, EngineError};
use crate::domain::actor::{Access, TenantScope};
use crate::domain::audit::{AuditKind, NewAuditEvent};
use crate::domain::ids::{Digest, ExecutionId, TenantId};
use crate::domain::residency::{self, ArtifactFact, Blocks, Facts, Resolution, Rules, Violation};
use crate::store::{Reader, Store, StoreError, StoredReceipt};
use crate::telemetry::Metrics;

/// Metadata key of the auditor's cursor.
const CURSOR_KEY: &str = "residency_audit";
/// Receipts read per read transaction of an incremental scan.
const CHUNK: u64 = 20_000;
/// Unreadable receipts listed in an outcome (all are counted).
const MAX_LISTED: usize = 100;

/// Where the auditor stopped, and under which rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cursor {
    /// First log leaf not checked yet.
    next_leaf: u64,
    /// Fingerprint of the rules the checked receipts were checked under.
    rules: Option<Digest>,
    /// When the last audit finished.
    finished_at: Option<Timestamp>,
}

/// What one audit did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditOutcome {
    /// Whether every receipt was checked (else only those after the cursor).
    pub full: bool,
    /// Why every receipt was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_because: Option<String>,
    /// Receipts checked.
    pub receipts: u64,
    /// The log size the audit reached: every receipt below it has been checked.
    pub through: u64,
    /// Violations found for the first time.
    pub new: usize,
    /// Violations the auditor had resolved that hold again.
    pub reopened: usize,
    /// Violations that no longer hold under the current rules (full audits only).
    pub resolved: usize,
    /// Open violations after the audit, over every tenant.
    pub open: usize,
    /// Receipts that could not be read (each one listed in `unreadable`, up to 100).
    pub unreadable_count: usize,
    /// Receipts that could not be read: `tenant/execution: why`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
    /// The same counts per tenant.
    pub tenants: BTreeMap<String, TenantCounts>,
    /// Fingerprint of the rules checked against.
    #[schemars(with = "String")]
    pub rules: Digest,
    /// Wall time in seconds.
    pub seconds: f64,
    /// When it finished.
    #[schemars(with = "String")]
    pub finished_at: Timestamp,
}

/// What an audit did for one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TenantCounts {
    /// Receipts checked.
    pub receipts: u64,
    /// Violations found for the first time.
    pub new: usize,
    /// Violations that hold again.
    pub reopened: usize,
    /// Violations that no longer hold.
    pub resolved: usize,
    /// Open violations after the audit.
    pub open: usize,
    /// Receipts that could not be read.
    pub unreadable: usize,
}

impl AuditOutcome {
    /// The outcome as one tenant may see it: its own counts and unreadable receipts only.
    pub fn for_tenant(&self, tenant: &str) -> AuditOutcome {
        let c = self.tenants.get(tenant).cloned().unwrap_or_default();
        let prefix = format!("{tenant}/");
        AuditOutcome {
            receipts: c.receipts,
            new: c.new,
            reopened: c.reopened,
            resolved: c.resolved,
            open: c.open,
            unreadable_count: c.unreadable,
            unreadable: self
                .unreadable
                .iter()
                .filter(|u| u.starts_with(&prefix))
                .cloned()
                .collect(),
            tenants: BTreeMap::from([(tenant.to_owned(), c)]),
            ..self.clone()
        }
    }
}

#[derive(Deserialize)]
struct EnvelopeView<'a> {
    #[serde(borrow)]
    payload: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct StatementView {
    predicate: PredicateView,
}

#[derive(Deserialize)]
struct PredicateView {
    #[serde(default)]
    region: String,
    #[serde(default)]
    artifacts: Vec<ArtifactView>,
}

#[derive(Deserialize)]
struct ArtifactView {
    #[serde(default)]
    task: String,
    #[serde(default)]
    name: String,
    digest: Digest,
    #[serde(default)]
    location: String,
    #[serde(default)]
    region: String,
}

/// Reads what the auditor checks from a stored receipt: its signed Statement's region and
/// artifacts.
pub fn facts(
    tenant: &TenantId,
    execution: &ExecutionId,
    stored: &StoredReceipt,
) -> Result<Facts, String> {
    let env: EnvelopeView<'_> = serde_json::from_str(stored.envelope.get())
        .map_err(|e| format!("the envelope is not DSSE JSON: {e}"))?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env.payload.as_bytes())
        .map_err(|e| format!("the payload is not base64: {e}"))?;
    let s: StatementView = serde_json::from_slice(&payload)
        .map_err(|e| format!("the Statement cannot be read: {e}"))?;
    Ok(Facts {
        tenant: tenant.clone(),
        execution: execution.clone(),
        receipt: stored.digest,
        log_index: stored.log_index,
        region: s.predicate.region,
        artifacts: s
            .predicate
            .artifacts
            .into_iter()
            .map(|a| ArtifactFact {
                task: a.task,
                name: a.name,
                digest: a.digest,
                location: a.location,
                region: a.region,
            })
            .collect(),
    })
}

/// The audit in progress: known violations and what changed.
struct Pass<'r> {
    rules: &'r Rules,
    now: Timestamp,
    known: HashMap<String, Violation>,
    changed: BTreeMap<(String, String), Violation>,
    seen: HashSet<String>,
    receipts: u64,
    new: usize,
    reopened: usize,
    unreadable: Vec<String>,
    unreadable_count: usize,
    tenants: BTreeMap<String, TenantCounts>,
}

impl Pass<'_> {
    fn counts(&mut self, tenant: &str) -> &mut TenantCounts {
        self.tenants.entry(tenant.to_owned()).or_default()
    }

    fn unreadable(&mut self, tenant: &TenantId, what: String) {
        self.unreadable_count += 1;
        self.counts(tenant.as_str()).unreadable += 1;
        if self.unreadable.len() < MAX_LISTED {
            self.unreadable.push(format!("{tenant}/{what}"));
        }
    }

    fn receipt(&mut self, tenant: &TenantId, id: &ExecutionId, stored: &StoredReceipt) {
        self.receipts += 1;
        self.counts(tenant.as_str()).receipts += 1;
        let facts = match facts(tenant, id, stored) {
            Ok(f) => f,
            Err(e) => {
                self.unreadable(tenant, format!("{id}: {e}"));
                return;
            }
        };
        for finding in residency::check(self.rules, &facts) {
            let v = Violation::new(&facts, finding, self.now);
            self.seen.insert(v.id.clone());
            let key = (v.tenant.to_string(), v.id.clone());
            match self.known.get(&v.id) {
                None => {
                    self.new += 1;
                    self.counts(tenant.as_str()).new += 1;
                    self.known.insert(v.id.clone(), v.clone());
                    self.changed.insert(key, v);
                }
                Some(old) if old.resolved.as_ref().is_some_and(|r| r.by == AUDITOR) => {
                    let mut again = old.clone();
                    again.resolved = None;
                    again.finding = v.finding;
                    self.reopened += 1;
                    self.counts(tenant.as_str()).reopened += 1;
                    self.known.insert(v.id.clone(), again.clone());
                    self.changed.insert(key, again);
                }
                Some(_) => {}
            }
        }
    }
}

/// Who resolves violations that no longer hold.
pub const AUDITOR: &str = "auditor";

fn scope(tenant: &TenantId) -> TenantScope {
    TenantScope::system(tenant.clone(), Access::Read)
}

fn read_cursor(store: &Store) -> Result<Cursor, StoreError> {
    Ok(store
        .meta(CURSOR_KEY)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

/// Audits receipts against `rules`: those after the cursor, or every one when `full` is
/// asked, the rules changed since the last audit, or none ran yet. Findings are stored
/// with the new cursor in one transaction.
pub fn audit(store: &Store, rules: &Rules, full: bool) -> Result<AuditOutcome, EngineError> {
    let started = Instant::now();
    let cursor = read_cursor(store)?;
    let fingerprint = rules.fingerprint();
    let full_because = if full {
        Some("asked for".to_owned())
    } else if cursor.rules.is_none() {
        Some("first audit".to_owned())
    } else if cursor.rules != Some(fingerprint) {
        Some("the residency rules changed".to_owned())
    } else {
        None
    };
    let reader = store.read()?;
    let mut pass = Pass {
        rules,
        now: Timestamp::now(),
        known: reader
            .all_violations()?
            .into_iter()
            .map(|v| (v.id.clone(), v))
            .collect(),
        changed: BTreeMap::new(),
        seen: HashSet::new(),
        receipts: 0,
        new: 0,
        reopened: 0,
        unreadable: Vec::new(),
        unreadable_count: 0,
        tenants: BTreeMap::new(),
    };
    let through = reader.log_size()?;
    let mut resolved = 0;
    if full_because.is_some() {
        for tenant in reader.tenants_with_receipts()? {
            reader.for_each_receipt(&scope(&tenant), |id, stored| {
                pass.receipt(&tenant, &id, &stored);
                true
            })?;
        }
        for v in pass.known.values_mut() {
            if v.is_open() && !pass.seen.contains(&v.id) {
                v.resolved = Some(Resolution {
                    at: pass.now,
                    by: AUDITOR.into(),
                    reason: "it no longer holds under the current residency rules".into(),
                });
                resolved += 1;
                pass.tenants
                    .entry(v.tenant.to_string())
                    .or_default()
                    .resolved += 1;
                pass.changed
                    .insert((v.tenant.to_string(), v.id.clone()), v.clone());
            }
        }
    } else {
        drop(reader);
        let mut leaf = cursor.next_leaf.min(through);
        while leaf < through {
            let r = store.read()?;
            let end = (leaf + CHUNK).min(through);
            incremental(&r, leaf..end, &mut pass)?;
            leaf = end;
        }
    }
    let finished_at = Timestamp::now();
    let open = pass.known.values().filter(|v| v.is_open()).count();
    for v in pass.known.values().filter(|v| v.is_open()) {
        pass.tenants.entry(v.tenant.to_string()).or_default().open += 1;
    }
    let next = Cursor {
        next_leaf: through,
        rules: Some(fingerprint),
        finished_at: Some(finished_at),
    };
    store.write(|w| {
        for v in pass.changed.values() {
            w.put_violation(v)?;
        }
        w.set_meta(
            CURSOR_KEY,
            &serde_json::to_vec(&next).expect("cursor serializes"),
        )
    })?;
    Ok(AuditOutcome {
        full: full_because.is_some(),
        full_because,
        receipts: pass.receipts,
        through,
        new: pass.new,
        reopened: pass.reopened,
        resolved,
        open,
        unreadable_count: pass.unreadable_count,
        unreadable: pass.unreadable,
        tenants: pass.tenants,
        rules: fingerprint,
        seconds: started.elapsed().as_secs_f64(),
        finished_at,
    })
}

fn incremental(
    r: &Reader,
    leaves: std::ops::Range<u64>,
    pass: &mut Pass<'_>,
) -> Result<(), EngineError> {
    for i in leaves {
        let Some((tenant, id)) = r.log_leaf(i)? else {
            continue;
        };
        match r.receipt(&scope(&tenant), &id)? {
            Some(stored) => pass.receipt(&tenant, &id, &stored),
            None => pass.unreadable(&tenant, format!("{id}: log leaf {i} has no stored receipt")),
        }
    }
    Ok(())
}

/// The auditor's state: when it last finished, and how far it got.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AuditorState {
    /// First log leaf not audited yet.
    pub next_leaf: u64,
    /// When the last audit finished.
    #[schemars(with = "Option<String>")]
    pub finished_at: Option<Timestamp>,
    /// Whether the rules in force are the ones the last audit used.
    pub rules_current: bool,
}

/// The auditor's state against the rules in force.
pub fn state(store: &Store, rules: &Rules) -> Result<AuditorState, StoreError> {
    let c = read_cursor(store)?;
    Ok(AuditorState {
        next_leaf: c.next_leaf,
        finished_at: c.finished_at,
        rules_current: c.rules == Some(rules.fingerprint()),
    })
}

/// Publishes the violations as metrics: every one found (counter) and the open ones
/// (gauge), by tenant and region; each tenant's allowed (or every declared) region starts
/// at zero, so dashboards and alerts see the series before anything is found.
fn publish(metrics: &Metrics, rules: &Rules, all: &[Violation]) {
    let mut found: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut open: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (tenant, allowed) in &rules.tenants {
        let regions = if allowed.is_empty() {
            &rules.regions
        } else {
            allowed
        };
        for region in regions {
            found.insert((tenant, region), 0);
            open.insert((tenant, region), 0);
        }
    }
    for v in all {
        let key = (v.tenant.as_str(), v.finding.region.as_str());
        *found.entry(key).or_default() += 1;
        if v.is_open() {
            *open.entry(key).or_default() += 1;
        }
    }
    for ((tenant, region), n) in found {
        let c = metrics
            .residency_violations
            .with_label_values(&[tenant, region]);
        if n > c.get() {
            c.inc_by(n - c.get());
        }
    }
    metrics.residency_open.reset();
    for ((tenant, region), n) in open {
        metrics
            .residency_open
            .with_label_values(&[tenant, region])
            .set(n);
    }
}

/// The admission blocks of the stored violations; publishes their metrics.
pub(super) fn load_blocks(
    store: &Store,
    rules: &Rules,
    metrics: &Metrics,
) -> Result<Blocks, StoreError> {
    let all = store.read()?.all_violations()?;
    publish(metrics, rules, &all);
    Ok(Blocks::of(&all))
}

/// Why a violation could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No such violation for the tenant.
    #[error("no residency violation {0} of this tenant")]
    NotFound(String),
    /// It is resolved already.
    #[error("residency violation {0} is resolved already")]
    AlreadyResolved(String),
    /// The store failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Engine {
    /// Runs the residency auditor (blocking: call it off the async executor). One audit runs
    /// at a time; the admission blocks and metrics follow its result.
    pub fn audit_residency(&self, full: bool) -> Result<AuditOutcome, EngineError> {
        let _one = self.inner.residency_audit.lock();
        let result = audit(self.store(), &self.inner.cfg.residency, full);
        let metrics = &self.inner.metrics;
        match &result {
            Ok(o) => {
                metrics
                    .residency_audit_runs
                    .with_label_values(&["ok"])
                    .inc();
                metrics.residency_audit_receipts.inc_by(o.receipts);
                metrics
                    .residency_audit_last_success
                    .set(o.finished_at.as_second() as f64);
            }
            Err(_) => metrics
                .residency_audit_runs
                .with_label_values(&["failed"])
                .inc(),
        }
        let outcome = result?;
        *self.inner.residency_blocks.write() =
            load_blocks(self.store(), &self.inner.cfg.residency, metrics)?;
        Ok(outcome)
    }

    /// The auditor's state against the rules in force.
    pub fn residency_state(&self) -> Result<AuditorState, EngineError> {
        Ok(state(self.store(), &self.inner.cfg.residency)?)
    }

    /// What open violations block, by tenant (enforced only with
    /// `features.residency_auditor_enforce`).
    pub fn residency_blocks(&self) -> Blocks {
        self.inner.residency_blocks.read().clone()
    }

    /// Whether open violations block runs.
    pub fn residency_enforced(&self) -> bool {
        self.inner.cfg.residency_enforce
    }

    /// Resolves an open violation of the scope's tenant by hand (the data was moved or
    /// deleted), with an audit event in the same transaction; the auditor does not reopen
    /// it. Returns the resolved violation.
    pub fn resolve_violation(
        &self,
        scope: &TenantScope,
        id: &str,
        by: &str,
        reason: &str,
    ) -> Result<Violation, ResolveError> {
        let _one = self.inner.residency_audit.lock();
        let mut v = self
            .store()
            .read()
            .map_err(EngineError::from)?
            .violations(scope, false)
            .map_err(EngineError::from)?
            .into_iter()
            .find(|v| v.id == id)
            .ok_or_else(|| ResolveError::NotFound(id.to_owned()))?;
        if !v.is_open() {
            return Err(ResolveError::AlreadyResolved(id.to_owned()));
        }
        v.resolved = Some(Resolution {
            at: Timestamp::now(),
            by: by.to_owned(),
            reason: reason.to_owned(),
        });
        let event = NewAuditEvent {
            kind: AuditKind::ResidencyViolationResolved,
            tenant: Some(v.tenant.clone()),
            actor_tenant: None,
            actor: by.to_owned(),
            route: None,
            decision: None,
            detail: serde_json::json!({
                "violation": v.id,
                "execution": v.execution,
                "code": v.finding.code,
                "location": v.finding.location,
                "region": v.finding.region,
                "reason": reason,
            }),
        };
        self.store()
            .write(|w| {
                w.put_violation(&v)?;
                w.append_audit(event).map(|_| ())
            })
            .map_err(EngineError::from)?;
        *self.inner.residency_blocks.write() =
            load_blocks(self.store(), &self.inner.cfg.residency, &self.inner.metrics)
                .map_err(EngineError::from)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests;
