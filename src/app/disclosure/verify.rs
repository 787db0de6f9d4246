//! Offline verification of a disclosure pack, from its bytes and the keys the verifier
//! trusts: the archive opens safely, the index is signed by a trusted key and lists every
//! file with its digest, the checkpoint is signed, every receipt verifies and proves
//! inclusion against that checkpoint, every record and decision agrees with its signed
//! receipt, and every execution is the pack's tenant's and in its region.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use serde::Serialize;

use crate::archive::{self, Limits};
use crate::attest::dsse::Envelope;
use crate::attest::receipt::{self, Check, Outcome, Trust};
use crate::domain::disclosure::{
    self as layout, IndexStatement, PREDICATE_TYPE, PackedExecution, file,
};
use crate::domain::execution::Decision;
use crate::domain::ids::Digest;
use crate::domain::receipt::{PAYLOAD_TYPE, STATEMENT_TYPE, Statement};
use crate::policy::PolicyBundle;
use crate::tlog;

/// Problems listed per check before the rest are only counted.
const SHOWN: usize = 5;

/// The result of verifying a pack.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PackReport {
    /// True when every check passed.
    pub valid: bool,
    /// Tenant named by the signed index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Region named by the signed index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Executions found.
    pub executions: u64,
    /// Files found under `data/`.
    pub files: u64,
    /// Every check in order.
    pub checks: Vec<Check>,
}

/// Problems of one check.
#[derive(Default)]
struct Problems {
    list: Vec<String>,
    count: usize,
}

impl Problems {
    fn add(&mut self, p: impl Into<String>) {
        self.count += 1;
        if self.list.len() < SHOWN {
            self.list.push(p.into());
        }
    }

    fn check(&self, name: &str, passed: String) -> Check {
        if self.count == 0 {
            return Check {
                name: name.into(),
                outcome: Outcome::Pass,
                detail: passed,
            };
        }
        let more = self.count - self.list.len();
        let mut detail = self.list.join("; ");
        if more > 0 {
            detail.push_str(&format!("; and {more} more"));
        }
        Check {
            name: name.into(),
            outcome: Outcome::Fail,
            detail,
        }
    }
}

/// What one execution directory held.
#[derive(Default)]
struct Dir {
    execution: Option<PackedExecution>,
    decisions: Option<Vec<Decision>>,
    artifact_bytes: BTreeSet<Digest>,
}

/// What the pack showed about one execution, kept until the index says what to expect.
struct Seen {
    id: String,
    tenant: String,
    run_region: String,
    has_region_artifacts: bool,
}

#[derive(Default)]
struct State {
    digests: BTreeMap<String, Digest>,
    checkpoint: Option<tlog::Checkpoint>,
    envelope: Option<Vec<u8>>,
    index: Option<Vec<u8>>,
    current: Option<(String, Dir)>,
    seen: Vec<Seen>,
    pinned: BTreeSet<Digest>,
    bundles: BTreeSet<Digest>,
    receipts_ok: u64,
    receipts: Problems,
    records: Problems,
    policies: Problems,
    layout: Problems,
    checkpoint_problem: Option<String>,
}

/// Verifies a pack read from `input` against `trust`.
pub fn verify(input: impl Read, trust: &Trust) -> PackReport {
    let mut st = State::default();
    let read = archive::read(input, &Limits::LARGE, |e| {
        let mut bytes = Vec::with_capacity(e.size.min(1 << 20) as usize);
        e.data.read_to_end(&mut bytes)?;
        st.file(&e.path, bytes, trust);
        Ok(())
    });
    st.close_dir();
    let mut checks = Vec::new();
    let files = st.digests.len() as u64;
    match &read {
        Ok(stats) => checks.push(pass(
            "archive",
            format!(
                "{} files, {} bytes, no unsafe entry",
                stats.files, stats.bytes
            ),
        )),
        Err(e) => checks.push(fail("archive", e.to_string())),
    }

    // The signed index.
    let statement = signed_index(&st, trust, &mut checks);
    let mut report = PackReport {
        valid: false,
        tenant: statement.as_ref().map(|s| s.predicate.tenant.to_string()),
        region: statement.as_ref().map(|s| s.predicate.region.clone()),
        executions: st.seen.len() as u64,
        files,
        checks: Vec::new(),
    };
    let Some(statement) = statement else {
        for name in [
            "index",
            "checkpoint",
            "receipts",
            "records",
            "scope",
            "policies",
        ] {
            checks.push(skip(name, "the index is not signed by a trusted key"));
        }
        report.checks = checks;
        return report;
    };
    let p = &statement.predicate;

    // Every file listed, with its digest.
    let mut index = Problems::default();
    match st.index.as_deref().map(std::str::from_utf8) {
        None => index.add(format!("{} is missing", layout::INDEX)),
        Some(Err(_)) => index.add(format!("{} is not UTF-8", layout::INDEX)),
        Some(Ok(text)) => match layout::parse_index(text) {
            Err(e) => index.add(e),
            Ok(lines) => {
                let listed: BTreeMap<&str, &Digest> =
                    lines.iter().map(|(d, p)| (p.as_str(), d)).collect();
                for (path, digest) in &listed {
                    match st.digests.get(*path) {
                        None => index.add(format!("{path} is listed but not in the pack")),
                        Some(d) if d != *digest => {
                            index.add(format!("{path} does not have the digest the index lists"))
                        }
                        Some(_) => {}
                    }
                }
                for path in st.digests.keys() {
                    if !listed.contains_key(path.as_str()) {
                        index.add(format!("{path} is in the pack but not in the index"));
                    }
                }
                if lines.len() as u64 != p.files {
                    index.add(format!(
                        "the index lists {} files, the signed statement says {}",
                        lines.len(),
                        p.files
                    ));
                }
            }
        },
    }
    checks.push(index.check(
        "index",
        format!("{files} files, each with the digest the signed index lists"),
    ));

    // The checkpoint.
    let cp_check = match (&p.checkpoint, &st.checkpoint, &st.checkpoint_problem) {
        (_, _, Some(problem)) => fail("checkpoint", problem.clone()),
        (None, None, None) if st.seen.is_empty() => {
            pass("checkpoint", "no execution, so no checkpoint".into())
        }
        (Some(want), Some(cp), None)
            if want.size == cp.size
                && want.origin == cp.origin
                && want.root_hash == tlog::hex_hash(&cp.root) =>
        {
            pass(
                "checkpoint",
                format!("{} at size {} signed by a trusted key", cp.origin, cp.size),
            )
        }
        (Some(_), Some(_), None) => fail(
            "checkpoint",
            "checkpoint.txt is not the checkpoint the signed index names".into(),
        ),
        _ => fail(
            "checkpoint",
            "the signed index and checkpoint.txt disagree on whether there is a checkpoint".into(),
        ),
    };
    checks.push(cp_check);
    checks.push(st.receipts.check(
        "receipts",
        format!(
            "{} receipts signed by trusted keys, each included in the log at the pack's checkpoint",
            st.receipts_ok
        ),
    ));
    checks.push(st.records.check(
        "records",
        "every execution record and decision agrees with its signed receipt".into(),
    ));

    // Scope: the tenant and region the index names, both ways.
    let mut scope = Problems::default();
    let names: BTreeSet<&str> = p.region_names.iter().map(String::as_str).collect();
    for s in &st.seen {
        if s.tenant != p.tenant.as_str() {
            scope.add(format!("execution {} is tenant {}'s", s.id, s.tenant));
        }
        if !names.contains(s.run_region.as_str()) && !s.has_region_artifacts {
            scope.add(format!(
                "execution {} ran in {:?} and has no artifact in {}",
                s.id, s.run_region, p.region
            ));
        }
        if p.execution
            .as_ref()
            .is_some_and(|only| only.as_str() != s.id)
        {
            scope.add(format!("execution {} is not the one the pack is for", s.id));
        }
    }
    if st.seen.len() as u64 != p.executions {
        scope.add(format!(
            "the pack holds {} executions, the signed index says {}",
            st.seen.len(),
            p.executions
        ));
    }
    checks.push(scope.check(
        "scope",
        format!(
            "{} executions, all of tenant {} and in region {}",
            st.seen.len(),
            p.tenant,
            p.region
        ),
    ));

    // Policies: every pinned bundle present, with its digest.
    let mut policies = st.policies;
    for d in st.pinned.difference(&st.bundles) {
        policies.add(format!(
            "policy bundle {d} is pinned by a decision but missing"
        ));
    }
    checks.push(policies.check(
        "policies",
        format!(
            "{} pinned policy bundles, each with its digest",
            st.bundles.len()
        ),
    ));
    checks.push(
        st.layout
            .check("layout", "every file is where the format puts it".into()),
    );

    report.valid = checks.iter().all(|c| c.outcome == Outcome::Pass);
    report.checks = checks;
    report
}

fn pass(name: &str, detail: String) -> Check {
    Check {
        name: name.into(),
        outcome: Outcome::Pass,
        detail,
    }
}

fn fail(name: &str, detail: String) -> Check {
    Check {
        name: name.into(),
        outcome: Outcome::Fail,
        detail,
    }
}

fn skip(name: &str, because: &str) -> Check {
    Check {
        name: name.into(),
        outcome: Outcome::Skipped,
        detail: format!("skipped: {because}"),
    }
}

fn signed_index(st: &State, trust: &Trust, checks: &mut Vec<Check>) -> Option<IndexStatement> {
    let Some(bytes) = &st.envelope else {
        checks.push(fail(
            "signature",
            format!("{} is missing", layout::INDEX_ENVELOPE),
        ));
        return None;
    };
    let envelope: Envelope = match serde_json::from_slice(bytes) {
        Ok(e) => e,
        Err(e) => {
            checks.push(fail(
                "signature",
                format!("{} is not a DSSE envelope: {e}", layout::INDEX_ENVELOPE),
            ));
            return None;
        }
    };
    if trust.keys.is_empty() {
        checks.push(fail("signature", "no trusted key was given".into()));
        return None;
    }
    let verified = match envelope.verify(PAYLOAD_TYPE, &trust.keys) {
        Ok(v) => v,
        Err(e) => {
            checks.push(fail(
                "signature",
                format!("{}: {e}", layout::INDEX_ENVELOPE),
            ));
            return None;
        }
    };
    let statement: IndexStatement = match serde_json::from_slice(&verified.payload) {
        Ok(s) => s,
        Err(e) => {
            checks.push(fail(
                "signature",
                format!("the signed payload is not a disclosure index statement: {e}"),
            ));
            return None;
        }
    };
    if statement.statement_type != STATEMENT_TYPE || statement.predicate_type != PREDICATE_TYPE {
        checks.push(fail(
            "signature",
            format!(
                "statement type {:?} / predicate type {:?}, expected {STATEMENT_TYPE:?} / {PREDICATE_TYPE:?}",
                statement.statement_type, statement.predicate_type
            ),
        ));
        return None;
    }
    let index = st.index.as_deref().map(Digest::of);
    if statement.index_digest().is_none() || statement.index_digest() != index {
        checks.push(fail(
            "signature",
            format!(
                "the signed statement does not name {} by its digest",
                layout::INDEX
            ),
        ));
        return None;
    }
    checks.push(pass(
        "signature",
        format!(
            "index signed by trusted key {}; tenant {}, region {}",
            verified.keyid, statement.predicate.tenant, statement.predicate.region
        ),
    ));
    Some(statement)
}

impl State {
    fn file(&mut self, path: &str, bytes: Vec<u8>, trust: &Trust) {
        if path == layout::INDEX {
            self.index = Some(bytes);
            return;
        }
        if path == layout::INDEX_ENVELOPE {
            self.envelope = Some(bytes);
            return;
        }
        if !path.starts_with("data/") {
            self.layout.add(format!("{path} is outside data/"));
            return;
        }
        self.digests.insert(path.to_owned(), Digest::of(&bytes));
        if let Some(rest) = path.strip_prefix(layout::EXECUTIONS_DIR) {
            let Some((id, name)) = rest.split_once('/') else {
                self.layout
                    .add(format!("{path} is not inside an execution directory"));
                return;
            };
            if self.current.as_ref().is_none_or(|(cur, _)| cur != id) {
                self.close_dir();
                self.current = Some((id.to_owned(), Dir::default()));
            }
            self.execution_file(id, name, &bytes, trust);
            return;
        }
        self.close_dir();
        if path == layout::CHECKPOINT {
            self.read_checkpoint(&bytes, trust);
        } else if let Some(name) = path.strip_prefix(layout::POLICIES_DIR) {
            self.policy(name, &bytes);
        } else if ![
            layout::README,
            layout::KEYS,
            layout::REPORT_JSON,
            layout::REPORT_MD,
        ]
        .contains(&path)
        {
            self.layout
                .add(format!("{path} is not a file of the format"));
        }
    }

    fn read_checkpoint(&mut self, bytes: &[u8], trust: &Trust) {
        let Ok(text) = std::str::from_utf8(bytes) else {
            self.checkpoint_problem = Some("checkpoint.txt is not UTF-8".into());
            return;
        };
        let origin = tlog::note_body(text)
            .and_then(|b| tlog::parse_body(b.as_bytes()).ok())
            .map(|cp| cp.origin);
        let Some(origin) = origin else {
            self.checkpoint_problem = Some("checkpoint.txt is not a checkpoint note".into());
            return;
        };
        if let Some(pinned) = &trust.origin
            && pinned != &origin
        {
            self.checkpoint_problem =
                Some(format!("log origin is {origin:?}, expected {pinned:?}"));
            return;
        }
        let mut errors = Vec::new();
        for key in &trust.keys {
            match tlog::open_checkpoint(text, &key.note_verifier(&origin)) {
                Ok(cp) => {
                    self.checkpoint = Some(cp);
                    return;
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        self.checkpoint_problem = Some(format!(
            "checkpoint.txt is not signed by a trusted key: {}",
            errors.join("; ")
        ));
    }

    fn policy(&mut self, name: &str, bytes: &[u8]) {
        let Some(digest) = name
            .strip_suffix(".json")
            .and_then(|h| Digest::parse(h).ok())
        else {
            self.layout
                .add(format!("policies/{name} is not named by a digest"));
            return;
        };
        match serde_json::from_slice::<PolicyBundle>(bytes) {
            Ok(b) if b.digest() == digest => {
                self.bundles.insert(digest);
            }
            Ok(b) => self.policies.add(format!(
                "policies/{name} has digest {}, not the one it is named by",
                b.digest()
            )),
            Err(e) => self
                .policies
                .add(format!("policies/{name} is not a policy bundle: {e}")),
        }
    }

    fn execution_file(&mut self, id: &str, name: &str, bytes: &[u8], trust: &Trust) {
        let Some((_, dir)) = self.current.as_mut() else {
            return;
        };
        if let Some(hex) = name.strip_prefix(file::ARTIFACT_BYTES) {
            match Digest::parse(hex) {
                Ok(d) if d == Digest::of(bytes) => {
                    dir.artifact_bytes.insert(d);
                }
                Ok(_) => self
                    .records
                    .add(format!("{id}: artifact {hex} does not have that digest")),
                Err(_) => self
                    .layout
                    .add(format!("{id}: artifacts/{hex} is not named by a digest")),
            }
            return;
        }
        match name {
            file::DECISIONS => match serde_json::from_slice::<Vec<serde_json::Value>>(bytes)
                .map_err(|e| e.to_string())
                .and_then(|list| {
                    list.into_iter()
                        .map(|v| serde_json::from_value::<Decision>(v["decision"].clone()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| e.to_string())
                }) {
                Ok(d) => dir.decisions = Some(d),
                Err(e) => self
                    .records
                    .add(format!("{id}: decisions.json does not parse: {e}")),
            },
            file::EXECUTION => match serde_json::from_slice::<PackedExecution>(bytes) {
                Ok(e) => dir.execution = Some(e),
                Err(e) => self
                    .records
                    .add(format!("{id}: execution.json does not parse: {e}")),
            },
            file::RECEIPT => {
                let taken = std::mem::take(dir);
                self.receipt(id, bytes, taken, trust);
            }
            other => self
                .layout
                .add(format!("{id}: {other} is not a file of the format")),
        }
    }

    /// Checks the end of an execution directory: a receipt must have closed it.
    fn close_dir(&mut self) {
        if let Some((id, dir)) = self.current.take()
            && (dir.execution.is_some() || dir.decisions.is_some())
        {
            self.records.add(format!("{id}: no receipt.json"));
        }
    }

    fn receipt(&mut self, id: &str, bytes: &[u8], dir: Dir, trust: &Trust) {
        let r = receipt::verify(bytes, trust);
        if !r.valid {
            let why = r
                .first_failure()
                .map(|c| format!("{}: {}", c.name, c.detail))
                .unwrap_or_default();
            self.receipts.add(format!("{id}: {why}"));
            return;
        }
        let Ok(bundle) = serde_json::from_slice::<receipt::ReceiptBundle>(bytes) else {
            return;
        };
        if let Some(cp) = &self.checkpoint
            && (bundle.log_entry.tree_size != cp.size
                || bundle.log_entry.root_hash != tlog::hex_hash(&cp.root))
        {
            self.receipts.add(format!(
                "{id}: proves against size {}, not the pack's checkpoint",
                bundle.log_entry.tree_size
            ));
            return;
        }
        self.receipts_ok += 1;
        let statement: Option<Statement> = bundle
            .dsse_envelope
            .payload_bytes()
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok());
        let Some(s) = statement else { return };
        let p = &s.predicate;
        let mut problems = Vec::new();
        if p.execution_id.as_str() != id {
            problems.push(format!("the receipt is execution {}'s", p.execution_id));
        }
        let mut has_region_artifacts = false;
        match &dir.execution {
            None => problems.push("no execution.json".into()),
            Some(pe) => {
                let e = &pe.execution;
                if e.id != p.execution_id
                    || e.tenant != p.tenant
                    || e.status != p.status
                    || e.region != p.region
                    || e.manifest_digest != p.manifest.digest
                    || e.receipt.as_ref().map(|r| r.digest) != r.digest
                {
                    problems.push(
                        "execution.json differs from the receipt (id, tenant, status, region, manifest or receipt digest)"
                            .into(),
                    );
                }
                let signed: BTreeSet<(Digest, &str)> = p
                    .artifacts
                    .iter()
                    .map(|a| (a.digest, a.location.as_str()))
                    .collect();
                for a in &e.artifacts {
                    if !signed.contains(&(a.digest, a.location.as_str())) {
                        problems.push(format!("artifact {} is not in the receipt", a.name));
                    }
                }
                let listed: BTreeSet<Digest> = e.artifacts.iter().map(|a| a.digest).collect();
                for d in &dir.artifact_bytes {
                    if !listed.contains(d) {
                        problems.push(format!("artifact bytes {d} belong to no listed artifact"));
                    }
                }
                has_region_artifacts = !e.artifacts.is_empty();
            }
        }
        match &dir.decisions {
            None => problems.push("no decisions.json".into()),
            Some(ds) => {
                let signed: BTreeMap<&str, _> =
                    p.decisions.iter().map(|d| (d.id.as_str(), d)).collect();
                if ds.len() != signed.len() {
                    problems.push(format!(
                        "{} decisions, the receipt records {}",
                        ds.len(),
                        signed.len()
                    ));
                }
                for d in ds {
                    self.pinned.insert(d.policy_digest);
                    let input = serde_json_canonicalizer::to_vec(&d.input)
                        .map(|b| Digest::of(&b))
                        .ok();
                    match signed.get(d.id.as_str()) {
                        None => problems.push(format!("decision {} is not in the receipt", d.id)),
                        Some(s)
                            if s.allow != d.allow
                                || s.policy_digest != d.policy_digest
                                || s.input_digest != d.input_digest =>
                        {
                            problems.push(format!("decision {} differs from the receipt", d.id))
                        }
                        Some(_) if input != Some(d.input_digest) => problems.push(format!(
                            "decision {}: the input does not have the recorded digest",
                            d.id
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
        for problem in problems {
            self.records.add(format!("{id}: {problem}"));
        }
        self.seen.push(Seen {
            id: id.to_owned(),
            tenant: p.tenant.to_string(),
            run_region: p.region.clone(),
            has_region_artifacts,
        });
    }
}
