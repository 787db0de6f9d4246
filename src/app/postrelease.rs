//! Post-release validation: after a start with a new version (and on demand), synthetic
//! canary runs, then every receipt verified (signature by a trusted key, statement, log
//! inclusion against the latest checkpoint), the log checked consistent with the checkpoint
//! the last validation saw, and every recorded policy decision replayed on its pinned bundle
//! expecting the recorded outcome. The result is archived as a deterministic, signed
//! evidence bundle; readiness (`/readyz`) holds until a validation of this version passed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{App, AppError, golden, workflows};
use crate::archive;
use crate::attest::dsse;
use crate::attest::keys::PublicKey;
use crate::attest::receipt::{self, Trust};
use crate::config::Config;
use crate::domain::actor::{Access, TenantScope};
use crate::domain::execution::Decision;
use crate::domain::golden::GoldenRun;
use crate::domain::ids::{Digest, TenantId};
use crate::domain::validate;
use crate::engine::evidence::Evidence;
use crate::store::{Store, StoreError};
use crate::tlog;

/// The goldens run as canaries: they need nothing from the site (no location, no host).
pub const CANARIES: &[&str] = &["hello", "fan-out-fan-in", "transform-chain"];
/// The payload type of the evidence bundle's signed index.
pub const INDEX_PAYLOAD_TYPE: &str = "application/vnd.maestro.evidence-index.v1+text";
/// The store meta key of the last validation's summary.
const LAST_META: &str = "postrelease_last";
/// The store meta key of the checkpoint the last passed validation saw.
const CHECKPOINT_META: &str = "postrelease_checkpoint";
/// Failures listed per check (the counts are always complete).
const MAX_LISTED: usize = 100;

/// Where readiness stands with post-release validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not validated yet (it runs at start).
    Pending,
    /// Running now.
    Running,
    /// The last validation passed.
    Passed,
    /// The last validation failed.
    Failed,
}

/// One failed item of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Failure {
    /// The tenant.
    pub tenant: String,
    /// The execution or decision.
    pub id: String,
    /// What failed.
    pub detail: String,
}

/// One check of the validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckResult {
    /// `canaries`, `receipts`, `log`, `decisions`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Items checked.
    pub checked: u64,
    /// Items that failed.
    pub failed: u64,
    /// What was checked, or what failed.
    pub detail: String,
    /// How long it took, in milliseconds.
    #[serde(default)]
    pub millis: u64,
    /// The first failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
}

/// The result of one validation, as archived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    /// Evidence id (`postrelease-VERSION-UNIXMILLIS`).
    pub id: String,
    /// The version validated.
    pub version: String,
    /// The version recorded before it, when the start changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// `start` or `demand`.
    pub trigger: String,
    /// When it started.
    #[schemars(with = "String")]
    pub started_at: jiff::Timestamp,
    /// How long it took, in milliseconds.
    pub millis: u64,
    /// Whether every check passed.
    pub passed: bool,
    /// The checks.
    pub checks: Vec<CheckResult>,
    /// The canary runs.
    pub canaries: Vec<GoldenRun>,
    /// Log size and root the validation saw.
    pub tree_size: u64,
    /// Root hash at `tree_size`, hex.
    pub root_hash: String,
    /// SHA-256 of the evidence bundle (absent in the copy inside the bundle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_digest: Option<Digest>,
}

/// Post-release state shared by the appliance: readiness and the last report.
#[derive(Debug)]
pub struct PostRelease {
    state: Mutex<State>,
    /// Serializes validations.
    running: tokio::sync::Mutex<()>,
}

impl Default for PostRelease {
    fn default() -> Self {
        PostRelease {
            state: Mutex::new(State::Pending),
            running: tokio::sync::Mutex::new(()),
        }
    }
}

impl PostRelease {
    /// Where readiness stands.
    pub fn state(&self) -> State {
        self.state.lock().clone()
    }

    /// Records where readiness stands.
    pub(super) fn set(&self, s: State) {
        *self.state.lock() = s;
    }
}

fn failure(tenant: &TenantId, id: impl ToString, detail: impl Into<String>) -> Failure {
    Failure {
        tenant: tenant.to_string(),
        id: id.to_string(),
        detail: detail.into(),
    }
}

fn check(name: &str, checked: u64, failures: Vec<Failure>, ok_detail: String) -> CheckResult {
    let failed = failures.len() as u64;
    CheckResult {
        name: name.into(),
        passed: failed == 0,
        checked,
        failed,
        millis: 0,
        detail: if failed == 0 {
            ok_detail
        } else {
            format!(
                "{failed} of {checked} failed; first: {}",
                failures[0].detail
            )
        },
        failures: failures.into_iter().take(MAX_LISTED).collect(),
    }
}

/// The keys receipts must verify with: `postrelease.trusted_keys`, else every key the
/// store records as having signed; the log `origin` pinned.
pub(super) fn receipt_trust(
    store: &Store,
    config: &Config,
    origin: &str,
) -> Result<Trust, AppError> {
    let mut keys = Vec::new();
    if config.postrelease.trusted_keys.is_empty() {
        for v in store.read()?.keys()? {
            if let Some(k) = v["pem"].as_str().and_then(|p| PublicKey::from_pem(p).ok()) {
                keys.push(k);
            }
        }
    } else {
        for path in &config.postrelease.trusted_keys {
            let text = std::fs::read_to_string(path).map_err(|e| {
                AppError::Other(format!("postrelease.trusted_keys: {}: {e}", path.display()))
            })?;
            keys.push(PublicKey::from_pem(&text).map_err(|e| {
                AppError::Other(format!("postrelease.trusted_keys: {}: {e}", path.display()))
            })?);
        }
    }
    Ok(Trust {
        keys,
        origin: Some(origin.to_owned()),
    })
}

/// Verifies every receipt of every tenant of `store` with an inclusion proof against the
/// latest checkpoint, on every core.
pub(super) fn verify_receipts(
    store: &Store,
    origin: &str,
    trust: &Trust,
) -> Result<CheckResult, AppError> {
    let evidence = Evidence::new(store, origin);
    let mut all = Vec::new();
    for tenant in store.read()?.tenants_with_receipts()? {
        let scope = TenantScope::system(tenant.clone(), Access::Read);
        store.read()?.for_each_receipt(&scope, |id, _| {
            all.push((scope.clone(), id));
            true
        })?;
    }
    let checked = all.len() as u64;
    let failures = parallel(&all, |(scope, id)| {
        let tenant = scope.tenant();
        let bundle = match evidence.receipt_bundle(scope, id) {
            Ok(Some(b)) => b,
            Ok(None) => return Some(failure(tenant, id, "the receipt has no log entry")),
            Err(e) => return Some(failure(tenant, id, e.to_string())),
        };
        let bytes = match serde_json::to_vec(&bundle) {
            Ok(b) => b,
            Err(e) => return Some(failure(tenant, id, e.to_string())),
        };
        let report = receipt::verify(&bytes, trust);
        report
            .first_failure()
            .map(|c| failure(tenant, id, format!("{}: {}", c.name, c.detail)))
    });
    Ok(check(
        "receipts",
        checked,
        failures,
        format!("{checked} receipts: signature, statement, checkpoint and inclusion verified"),
    ))
}

/// A check about the whole appliance: one problem, or what passed.
pub(super) fn appliance_check(
    name: &str,
    checked: u64,
    outcome: Result<String, String>,
) -> CheckResult {
    match outcome {
        Ok(detail) => check(name, checked, Vec::new(), detail),
        Err(problem) => check(
            name,
            checked,
            vec![Failure {
                tenant: "appliance".into(),
                id: name.into(),
                detail: problem,
            }],
            String::new(),
        ),
    }
}

impl App {
    /// The tenant canaries run as: `postrelease.tenant`, else `golden.tenant`.
    fn canary_tenant(&self) -> Option<TenantId> {
        self.config
            .postrelease
            .tenant
            .as_ref()
            .or(self.config.golden.tenant.as_ref())
            .and_then(|t| TenantId::new(t).ok())
    }

    /// The keys receipts must verify with (see [`receipt_trust`]).
    fn receipt_trust(&self) -> Result<Trust, AppError> {
        receipt_trust(
            self.engine.store(),
            &self.config,
            &self.engine.signing().origin,
        )
    }

    /// Runs the canaries, each one of [`CANARIES`] from its embedded source, in a region
    /// the tenant may use.
    async fn run_canaries(&self) -> (CheckResult, Vec<GoldenRun>) {
        let Some(tenant) = self.canary_tenant() else {
            return (
                check(
                    "canaries",
                    0,
                    Vec::new(),
                    "no canary tenant (postrelease.tenant or golden.tenant); no canary ran".into(),
                ),
                Vec::new(),
            );
        };
        let region = self
            .config
            .node_region
            .clone()
            .or_else(|| {
                self.config
                    .tenants
                    .get(tenant.as_str())
                    .and_then(|t| t.allowed_regions.first().cloned())
            })
            .or_else(|| self.config.regions.first().cloned());
        let actor = golden::actor(Some(&tenant));
        let Some(scope) = self.system_scope(&tenant, Access::Run) else {
            return (
                check(
                    "canaries",
                    0,
                    vec![failure(&tenant, "-", "the canary tenant is not configured")],
                    String::new(),
                ),
                Vec::new(),
            );
        };
        let runs = CANARIES.iter().map(|name| {
            let (scope, actor, region) = (scope.clone(), actor.clone(), region.clone());
            async move {
                let manifest = self.canary_manifest(name, region.as_deref());
                self.run_expected(name, &scope, &actor, manifest).await
            }
        });
        let runs: Vec<GoldenRun> = futures::future::join_all(runs).await;
        let failures = runs
            .iter()
            .filter(|r| !r.passed)
            .map(|r| {
                failure(
                    &tenant,
                    r.execution
                        .as_ref()
                        .map_or(r.name.clone(), |e| e.to_string()),
                    format!("{}: {}", r.name, r.problems.join("; ")),
                )
            })
            .collect();
        (
            check(
                "canaries",
                runs.len() as u64,
                failures,
                format!("{} canary runs as {tenant} ended as expected", runs.len()),
            ),
            runs,
        )
    }

    /// One canary: the embedded source of `name`, in `region` when given.
    fn canary_manifest(
        &self,
        name: &str,
        region: Option<&str>,
    ) -> Result<validate::ValidManifest, String> {
        let text = workflows::get(name).ok_or_else(|| format!("{name} is not embedded"))?;
        let mut doc = validate::parse_document(&text).map_err(|p| p.to_string())?;
        if let Some(r) = region {
            doc["region"] = serde_json::Value::String(r.to_owned());
        }
        validate::validate(doc, &self.engine.validation_context()).map_err(|p| {
            p.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The log against the checkpoint the last passed validation saw: the root it recorded
    /// must still be the root at that size, and a consistency proof to now must verify.
    fn check_log(&self) -> Result<(CheckResult, u64, String, Option<serde_json::Value>), AppError> {
        let store = self.engine.store();
        let r = store.read()?;
        let size = r.log_size()?;
        let hashes = r.log_hashes()?;
        let root = if size == 0 {
            String::new()
        } else {
            tlog::hex_hash(&tlog::root(size, &hashes).map_err(|e| AppError::Other(e.to_string()))?)
        };
        let previous: Option<(u64, String)> = store
            .meta(CHECKPOINT_META)?
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some((old_size, old_root)) = previous else {
            return Ok((
                check(
                    "log",
                    size,
                    Vec::new(),
                    format!("tree size {size}; no earlier validation to be consistent with"),
                ),
                size,
                root,
                None,
            ));
        };
        let appliance = TenantId::new("appliance").map_err(|e| AppError::Other(e.to_string()))?;
        let mut failures = Vec::new();
        let mut proof_json = None;
        if old_size > size {
            failures.push(failure(
                &appliance,
                old_size,
                format!("the log shrank from {old_size} to {size} leaves"),
            ));
        } else if old_size > 0 {
            let result = (|| -> Result<serde_json::Value, String> {
                let now_old = tlog::root(old_size, &hashes).map_err(|e| e.to_string())?;
                if tlog::hex_hash(&now_old) != old_root {
                    return Err(format!(
                        "the root at tree size {old_size} is {} now, but was {old_root}",
                        tlog::hex_hash(&now_old)
                    ));
                }
                let proof =
                    tlog::consistency_proof(old_size, size, &hashes).map_err(|e| e.to_string())?;
                let new_root = tlog::root(size, &hashes).map_err(|e| e.to_string())?;
                tlog::verify_consistency(&proof, old_size, now_old, size, new_root)
                    .map_err(|e| e.to_string())?;
                Ok(serde_json::json!({
                    "from": old_size, "to": size, "from_root": old_root, "to_root": root,
                    "hashes": proof.iter().map(tlog::hex_hash).collect::<Vec<_>>(),
                }))
            })();
            match result {
                Ok(p) => proof_json = Some(p),
                Err(e) => failures.push(failure(&appliance, old_size, e)),
            }
        }
        Ok((
            check(
                "log",
                size,
                failures,
                format!(
                    "tree size {size} is consistent with tree size {old_size} of the last validation"
                ),
            ),
            size,
            root,
            proof_json,
        ))
    }

    /// Replays every recorded decision of every tenant on its pinned bundle, on every
    /// core, a batch of decisions in memory at a time.
    fn replay_decisions(&self) -> Result<CheckResult, AppError> {
        const BATCH: usize = 4096;
        let store = self.engine.store();
        let (mut checked, mut failures) = (0u64, Vec::new());
        let replay_batch = |batch: &mut Vec<(TenantId, Decision)>, failures: &mut Vec<Failure>| {
            failures.extend(parallel(batch, |(tenant, d)| match self.replay(d) {
                Ok(r) if r.matches_recorded => None,
                Ok(r) => Some(failure(
                    tenant,
                    &d.id,
                    format!(
                        "{} replays to allow={} with {:?}, but recorded allow={}",
                        r.policy,
                        r.explanation.allow,
                        r.explanation
                            .reasons
                            .iter()
                            .map(|x| &x.code)
                            .collect::<Vec<_>>(),
                        d.allow
                    ),
                )),
                Err(e) => Some(failure(tenant, &d.id, e.to_string())),
            }));
            batch.clear();
        };
        let mut batch = Vec::with_capacity(BATCH);
        for tenant in store.read()?.tenants_with_data()? {
            let scope = TenantScope::system(tenant.clone(), Access::Read);
            store.read()?.for_each_decision(&scope, |d| {
                checked += 1;
                batch.push((tenant.clone(), d));
                if batch.len() == BATCH {
                    replay_batch(&mut batch, &mut failures);
                }
                true
            })?;
        }
        replay_batch(&mut batch, &mut failures);
        Ok(check(
            "decisions",
            checked,
            failures,
            format!(
                "{checked} decisions replayed on their pinned bundles with the recorded outcome"
            ),
        ))
    }

    /// Runs one validation: canaries, receipts, log, decisions; archives the evidence;
    /// updates readiness, metrics and the last report. One at a time.
    pub async fn validate_post_release(
        self: &Arc<Self>,
        trigger: &str,
    ) -> Result<Report, AppError> {
        let _one = self.postrelease.running.lock().await;
        self.postrelease.set(State::Running);
        let result = self.validate_now(trigger).await;
        let passed = matches!(&result, Ok(r) if r.passed);
        self.postrelease
            .set(if passed { State::Passed } else { State::Failed });
        let result_label = if passed { "passed" } else { "failed" };
        if passed {
            self.metrics.postrelease_success.inc();
        } else {
            self.metrics.postrelease_failure.inc();
        }
        self.metrics.postrelease_last_passed.set(i64::from(passed));
        match &result {
            Ok(r) => {
                tracing::info!(id = %r.id, result = result_label, millis = r.millis, "post-release validation finished")
            }
            Err(e) => tracing::error!(error = %e, "post-release validation could not run"),
        }
        result
    }

    async fn validate_now(self: &Arc<Self>, trigger: &str) -> Result<Report, AppError> {
        let started = Instant::now();
        let started_at = jiff::Timestamp::now();
        let version = self.engine.signing().version.clone();
        let (canary_check, canaries) = self.run_canaries().await;
        // Reading and verifying the whole store: off the async workers.
        let app = self.clone();
        let (receipts, (log, tree_size, root_hash, consistency), decisions) =
            tokio::task::spawn_blocking(move || {
                let trust = app.receipt_trust()?;
                Ok::<_, AppError>((
                    timed(|| {
                        verify_receipts(app.engine.store(), &app.engine.signing().origin, &trust)
                    })?,
                    app.check_log()?,
                    timed(|| app.replay_decisions())?,
                ))
            })
            .await
            .map_err(|e| AppError::Other(format!("post-release validation: {e}")))??;
        let checks = vec![canary_check, receipts, log, decisions];
        let passed = checks.iter().all(|c| c.passed);
        let mut report = Report {
            id: format!("postrelease-{version}-{}", started_at.as_millisecond()),
            version,
            previous_version: self.previous_version.clone(),
            trigger: trigger.to_owned(),
            started_at,
            millis: 0,
            passed,
            checks,
            canaries,
            tree_size,
            root_hash,
            evidence_digest: None,
        };
        report.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let bundle = self.evidence_bundle(&report, consistency)?;
        report.evidence_digest = Some(Digest::of(&bundle));
        let summary = serde_json::to_vec(&report).map_err(|e| AppError::Other(e.to_string()))?;
        self.engine.store().write(|w| {
            w.put_evidence(None, &report.id, &bundle)?;
            w.set_meta(LAST_META, &summary)?;
            if passed {
                let cp = serde_json::to_vec(&(report.tree_size, &report.root_hash))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                w.set_meta(CHECKPOINT_META, &cp)?;
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// The deterministic evidence bundle: the report, the latest signed checkpoint, the
    /// consistency proof, each canary's receipt with its inclusion proof, and `index.txt`
    /// (every file's SHA-256) signed by the appliance key in `index.dsse.json`.
    fn evidence_bundle(
        &self,
        report: &Report,
        consistency: Option<serde_json::Value>,
    ) -> Result<Vec<u8>, AppError> {
        let other = |e: &dyn std::fmt::Display| AppError::Other(format!("evidence bundle: {e}"));
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        files.insert("report.json".into(), pretty(report).map_err(|e| other(&e))?);
        if let Some(cp) = self.engine.store().read()?.latest_checkpoint()? {
            files.insert("checkpoint.txt".into(), cp.1.into_bytes());
        }
        if let Some(c) = consistency {
            files.insert(
                "consistency.json".into(),
                pretty(&c).map_err(|e| other(&e))?,
            );
        }
        for run in &report.canaries {
            let Some(id) = &run.execution else { continue };
            let tenant = TenantId::new(&run.tenant).map_err(|e| other(&e))?;
            let scope = TenantScope::system(tenant, Access::Read);
            if let Some(b) = self
                .engine
                .evidence()
                .receipt_bundle(&scope, id)
                .map_err(|e| other(&e))?
            {
                files.insert(
                    format!("canaries/{id}.receipt.json"),
                    pretty(&b).map_err(|e| other(&e))?,
                );
            }
        }
        let index: String = files
            .iter()
            .map(|(path, bytes)| crate::domain::disclosure::index_line(&Digest::of(bytes), path))
            .collect();
        let envelope = dsse::sign(
            INDEX_PAYLOAD_TYPE,
            index.as_bytes(),
            &self.engine.signing().appliance,
        )
        .map_err(|e| other(&e))?;
        files.insert("index.txt".into(), index.into_bytes());
        files.insert(
            "index.dsse.json".into(),
            pretty(&envelope).map_err(|e| other(&e))?,
        );
        let mut w = archive::Writer::new(Vec::new(), 9);
        for (path, bytes) in &files {
            w.add(path, bytes).map_err(|e| other(&e))?;
        }
        w.finish().map_err(|e| other(&e))
    }

    /// The last validation's report, if one ran.
    pub fn last_post_release(&self) -> Result<Option<Report>, StoreError> {
        Ok(self
            .engine
            .store()
            .meta(LAST_META)?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// An archived evidence bundle by id.
    pub fn post_release_evidence(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if !id.starts_with("postrelease-") {
            return Ok(None);
        }
        self.engine.store().read()?.evidence(None, id)
    }

    /// Whether this start must validate: a version change, or no passed validation of
    /// this version on record.
    pub fn post_release_due(&self) -> bool {
        self.config.postrelease.on_start
            && (self.previous_version.is_some()
                || !self
                    .last_post_release()
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.passed && r.version == self.engine.signing().version))
    }
}

/// Runs `f` over `items` on every core; returns what it found, in item order.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Option<R> + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().filter_map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// A check with how long it took in its detail.
fn timed(f: impl FnOnce() -> Result<CheckResult, AppError>) -> Result<CheckResult, AppError> {
    let started = Instant::now();
    let mut c = f()?;
    c.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(c)
}

/// Pretty JSON with a final newline.
fn pretty<T: Serialize>(v: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = serde_json::to_vec_pretty(v)?;
    out.push(b'\n');
    Ok(out)
}
