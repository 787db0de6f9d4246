//! The receipt file: a DSSE-signed in-toto Statement plus its transparency-log entry
//! (inclusion proof and signed checkpoint), and its offline verification, which reports
//! every check with what exactly failed.

use serde::{Deserialize, Serialize};

use super::dsse::Envelope;
use super::keys::{Algorithm, PublicKey};
use crate::domain::ids::Digest;
use crate::domain::receipt::{self, PAYLOAD_TYPE, Statement};
use crate::tlog;

/// Media type of a receipt file.
pub const MEDIA_TYPE: &str = "application/vnd.maestro.receipt.v1+json";

/// A receipt as exported and verified: envelope, key hint and log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiptBundle {
    /// Always [`MEDIA_TYPE`].
    pub media_type: String,
    /// The signed in-toto Statement.
    pub dsse_envelope: Envelope,
    /// The public key that signed it (a hint: verifiers must trust the key separately).
    pub public_key: KeyHint,
    /// Where the receipt is in the transparency log, with a proof.
    pub log_entry: LogEntry,
}

/// Identifies the signing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyHint {
    /// securesystemslib key id.
    pub keyid: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// PEM public key.
    pub pem: String,
}

impl KeyHint {
    /// The hint for a key.
    pub fn of(key: &PublicKey) -> Self {
        KeyHint {
            keyid: key.keyid().to_owned(),
            algorithm: key.algorithm(),
            pem: key.pem().to_owned(),
        }
    }
}

/// The log entry of a receipt: its leaf index and a proof against a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogEntry {
    /// The log's origin.
    pub origin: String,
    /// Leaf index of the receipt (the leaf is the Statement payload bytes).
    pub log_index: u64,
    /// Size of the tree the proof is against.
    pub tree_size: u64,
    /// Root hash of that tree, hex.
    pub root_hash: String,
    /// Inclusion proof hashes, hex, leaf to root.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint (C2SP signed note) for `tree_size`.
    pub checkpoint: String,
}

/// What verification trusts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Keys allowed to sign receipts and checkpoints.
    pub keys: Vec<PublicKey>,
    /// The expected log origin, if pinned.
    pub origin: Option<String>,
}

/// One verification step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Check {
    /// Step name: format, signature, statement, predicate, checkpoint, inclusion.
    pub name: String,
    /// Outcome: `pass`, `fail`, or `skipped` when an earlier step failed.
    pub outcome: Outcome,
    /// What was checked, or exactly what failed.
    pub detail: String,
}

/// Outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Not run because something it needs failed.
    Skipped,
}

/// The result of verifying a receipt.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Report {
    /// True when every check passed.
    pub valid: bool,
    /// Receipt digest (SHA-256 of the Statement), when the envelope decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Execution id from the predicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    /// Tenant from the predicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Final status from the predicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Every check in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// The first failed check.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.outcome == Outcome::Fail)
    }
}

struct Checks(Vec<Check>);

impl Checks {
    fn pass(&mut self, name: &str, detail: impl Into<String>) {
        self.push(name, Outcome::Pass, detail.into());
    }
    fn fail(&mut self, name: &str, detail: impl Into<String>) {
        self.push(name, Outcome::Fail, detail.into());
    }
    fn skip(&mut self, name: &str, because: &str) {
        self.push(name, Outcome::Skipped, format!("skipped: {because}"));
    }
    fn push(&mut self, name: &str, outcome: Outcome, detail: String) {
        self.0.push(Check {
            name: name.into(),
            outcome,
            detail,
        });
    }
}

/// Verifies a receipt file offline: format, signature by a trusted key, statement and
/// predicate integrity, checkpoint signature, and log inclusion.
pub fn verify(bytes: &[u8], trust: &Trust) -> Report {
    let mut checks = Checks(Vec::new());
    let mut report = Report {
        valid: false,
        digest: None,
        execution_id: None,
        tenant: None,
        status: None,
        checks: Vec::new(),
    };
    let bundle: ReceiptBundle = match serde_json::from_slice(bytes) {
        Ok(b) => b,
        Err(e) => {
            checks.fail("format", format!("not a receipt file: {e}"));
            for name in [
                "signature",
                "statement",
                "predicate",
                "checkpoint",
                "inclusion",
            ] {
                checks.skip(name, "the file did not parse");
            }
            report.checks = checks.0;
            return report;
        }
    };
    if bundle.media_type == MEDIA_TYPE {
        checks.pass("format", format!("{MEDIA_TYPE} receipt"));
    } else {
        checks.fail(
            "format",
            format!(
                "mediaType is {:?}, expected {MEDIA_TYPE:?}",
                bundle.media_type
            ),
        );
    }

    let payload = bundle.dsse_envelope.payload_bytes().ok();
    if let Some(p) = &payload {
        report.digest = Some(Digest::of(p));
    }
    if trust.keys.is_empty() {
        checks.fail("signature", "no trusted key was given");
    } else {
        match bundle.dsse_envelope.verify(PAYLOAD_TYPE, &trust.keys) {
            Ok(v) => checks.pass(
                "signature",
                format!("DSSE signature by trusted key {}", v.keyid),
            ),
            Err(e) => checks.fail("signature", e.to_string()),
        }
    }

    let statement = match &payload {
        None => {
            checks.fail("statement", "envelope payload is not base64");
            None
        }
        Some(p) => match serde_json::from_slice::<Statement>(p) {
            Ok(s) => {
                checks.pass(
                    "statement",
                    format!("in-toto Statement with predicate {}", s.predicate_type),
                );
                Some(s)
            }
            Err(e) => {
                checks.fail(
                    "statement",
                    format!("payload is not an execution receipt statement: {e}"),
                );
                None
            }
        },
    };
    match &statement {
        Some(s) => {
            report.execution_id = Some(s.predicate.execution_id.to_string());
            report.tenant = Some(s.predicate.tenant.to_string());
            report.status = Some(s.predicate.status.as_str().to_owned());
            let problems = receipt::check_integrity(s);
            if problems.is_empty() {
                checks.pass(
                    "predicate",
                    format!(
                        "{} subjects match the execution record; sequence {}",
                        s.subject.len(),
                        s.predicate.sequence
                    ),
                );
            } else {
                checks.fail("predicate", problems.join("; "));
            }
        }
        None => checks.skip("predicate", "the statement did not parse"),
    }

    let entry = &bundle.log_entry;
    let checkpoint = check_checkpoint(entry, trust);
    match &checkpoint {
        Ok(cp) => checks.pass(
            "checkpoint",
            format!(
                "checkpoint of {} at size {} signed by a trusted key",
                cp.origin, cp.size
            ),
        ),
        Err(e) => checks.fail("checkpoint", e.clone()),
    }
    match (&payload, &checkpoint) {
        (Some(p), Ok(cp)) => match check_inclusion(entry, cp, p) {
            Ok(()) => checks.pass(
                "inclusion",
                format!("leaf {} is in the log of size {}", entry.log_index, cp.size),
            ),
            Err(e) => checks.fail("inclusion", e),
        },
        (None, _) => checks.skip("inclusion", "the payload did not decode"),
        (_, Err(_)) => checks.skip("inclusion", "the checkpoint did not verify"),
    }
    report.valid = checks.0.iter().all(|c| c.outcome == Outcome::Pass);
    report.checks = checks.0;
    report
}

fn check_checkpoint(entry: &LogEntry, trust: &Trust) -> Result<tlog::Checkpoint, String> {
    if let Some(pinned) = &trust.origin
        && pinned != &entry.origin
    {
        return Err(format!(
            "log origin is {:?}, expected {pinned:?}",
            entry.origin
        ));
    }
    if trust.keys.is_empty() {
        return Err("no trusted key was given".into());
    }
    let mut errors = Vec::new();
    for key in &trust.keys {
        match tlog::open_checkpoint(&entry.checkpoint, &key.note_verifier(&entry.origin)) {
            Ok(cp) => {
                if cp.origin != entry.origin {
                    return Err(format!(
                        "checkpoint origin {:?} differs from the entry's {:?}",
                        cp.origin, entry.origin
                    ));
                }
                if cp.size != entry.tree_size {
                    return Err(format!(
                        "checkpoint is for size {}, the proof for size {}",
                        cp.size, entry.tree_size
                    ));
                }
                if tlog::hex_hash(&cp.root) != entry.root_hash.to_ascii_lowercase() {
                    return Err("checkpoint root hash differs from the entry's rootHash".into());
                }
                return Ok(cp);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(errors.join("; "))
}

fn check_inclusion(entry: &LogEntry, cp: &tlog::Checkpoint, payload: &[u8]) -> Result<(), String> {
    if entry.inclusion_proof.len() > tlog::MAX_PROOF_HASHES {
        return Err(format!(
            "inclusion proof has {} hashes",
            entry.inclusion_proof.len()
        ));
    }
    let proof = entry
        .inclusion_proof
        .iter()
        .map(|h| tlog::parse_hex_hash(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("inclusion proof: {e}"))?;
    tlog::verify_inclusion(
        &proof,
        cp.size,
        cp.root,
        entry.log_index,
        tlog::leaf_hash(payload),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
