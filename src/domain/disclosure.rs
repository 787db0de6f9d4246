//! Disclosure packs: the layout of a pack (every path), the in-toto Statement its signed
//! index carries, and the index file (`sha256sum` format). Shared by the builder and the
//! offline verifier. See `docs/disclosure.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::execution::Execution;
use super::ids::{Digest, ExecutionId, TenantId};
use super::receipt::{STATEMENT_TYPE, Subject};

/// Predicate type of the signed index.
pub const PREDICATE_TYPE: &str = "https://maestro.conductor/disclosure/v1";
/// Media type of a pack.
pub const MEDIA_TYPE: &str = "application/gzip";
/// The index: one `sha256  path` line per file of `data/`, sorted by path.
pub const INDEX: &str = "index.sha256";
/// The DSSE envelope whose Statement names the index by digest.
pub const INDEX_ENVELOPE: &str = "index.dsse.json";
/// What the pack is and how to check it.
pub const README: &str = "data/README.md";
/// The signed checkpoint every receipt of the pack proves inclusion against.
pub const CHECKPOINT: &str = "data/checkpoint.txt";
/// The public keys that signed receipts, checkpoint and index (hints: trust them separately).
pub const KEYS: &str = "data/keys.json";
/// The residency report, JSON.
pub const REPORT_JSON: &str = "data/residency-report.json";
/// The residency report, Markdown.
pub const REPORT_MD: &str = "data/residency-report.md";
/// Directory of the executions.
pub const EXECUTIONS_DIR: &str = "data/executions/";
/// Directory of the policy bundles the decisions pinned.
pub const POLICIES_DIR: &str = "data/policies/";

/// File names inside an execution's directory, in pack order.
pub mod file {
    /// The region's artifacts (metadata).
    pub const ARTIFACTS: &str = "artifacts.json";
    /// Directory of artifact bytes, by digest hex (only when asked for).
    pub const ARTIFACT_BYTES: &str = "artifacts/";
    /// The decisions with their inputs and explanations.
    pub const DECISIONS: &str = "decisions.json";
    /// The execution record with its manifest.
    pub const EXECUTION: &str = "execution.json";
    /// The receipt file, proved against the pack's checkpoint.
    pub const RECEIPT: &str = "receipt.json";
}

/// The directory of an execution: `data/executions/ID/`.
pub fn execution_dir(id: &ExecutionId) -> String {
    format!("{EXECUTIONS_DIR}{id}/")
}

/// The file of a pinned policy bundle.
pub fn policy_path(digest: &Digest) -> String {
    format!("{POLICIES_DIR}{}.json", digest.hex())
}

/// Which decisions carry a rule-by-rule explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Explain {
    /// Every decision that denied (allow decisions carry their input and outcome; the
    /// pinned bundle in `data/policies/` replays them).
    #[default]
    Denies,
    /// Every decision.
    All,
}

impl Explain {
    /// Parses `denies` or `all`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "denies" => Some(Explain::Denies),
            "all" => Some(Explain::All),
            _ => None,
        }
    }

    /// Whether `d` gets an explanation.
    pub fn wants(self, allow: bool) -> bool {
        self == Explain::All || !allow
    }
}

/// The checkpoint of a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackCheckpoint {
    /// Log origin.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash, hex.
    pub root_hash: String,
}

/// What a pack holds: the predicate of its signed index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IndexPredicate {
    /// Format version (1).
    pub pack_version: u32,
    /// The tenant; every execution of the pack is this tenant's.
    pub tenant: TenantId,
    /// The declared region; every execution of the pack ran there or wrote an artifact there.
    pub region: String,
    /// Every name that reads as the region (the region and its aliases).
    pub region_names: Vec<String>,
    /// The one execution asked for, for a pack of one execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionId>,
    /// The checkpoint every receipt proves against (absent when the pack has no execution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<PackCheckpoint>,
    /// Executions in the pack.
    pub executions: u64,
    /// Files listed in the index.
    pub files: u64,
    /// Whether artifact bytes are included (else metadata only).
    pub artifact_bytes: bool,
    /// Which decisions carry an explanation.
    pub explanations: Explain,
}

/// The in-toto Statement of the signed index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexStatement {
    /// Always the in-toto Statement v1 type.
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The index file by digest.
    pub subject: Vec<Subject>,
    /// Always [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// What the pack holds.
    pub predicate: IndexPredicate,
}

impl IndexStatement {
    /// The Statement naming an index of digest `index`.
    pub fn new(index: &Digest, predicate: IndexPredicate) -> Self {
        IndexStatement {
            statement_type: STATEMENT_TYPE.into(),
            subject: vec![Subject {
                name: INDEX.into(),
                digest: BTreeMap::from([("sha256".to_owned(), index.hex())]),
            }],
            predicate_type: PREDICATE_TYPE.into(),
            predicate,
        }
    }

    /// The index digest the Statement names, if it names exactly the index.
    pub fn index_digest(&self) -> Option<Digest> {
        match self.subject.as_slice() {
            [s] if s.name == INDEX => Digest::parse(s.digest.get("sha256")?).ok(),
            _ => None,
        }
    }
}

/// An execution as packed: the record with its manifest, without its decisions (in
/// `decisions.json`), with only the region's artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackedExecution {
    /// Why it is in the pack: `run_region` and/or `artifact_region`.
    pub included_because: Vec<String>,
    /// Artifacts written outside the region, left out (the receipt still lists them).
    pub withheld_artifacts: u64,
    /// The record.
    pub execution: Execution,
}

/// One line of the index.
pub fn index_line(digest: &Digest, path: &str) -> String {
    format!("{}  {path}\n", digest.hex())
}

/// Parses an index: `HEX  PATH` lines, paths strictly ascending.
pub fn parse_index(text: &str) -> Result<Vec<(Digest, String)>, String> {
    let mut out: Vec<(Digest, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let (hex, path) = line
            .split_once("  ")
            .ok_or_else(|| format!("{INDEX} line {}: not `SHA256  PATH`", n + 1))?;
        let digest = Digest::parse(hex)
            .map_err(|_| format!("{INDEX} line {}: {hex:?} is not a SHA-256", n + 1))?;
        if let Some((_, last)) = out.last()
            && last.as_str() >= path
        {
            return Err(format!(
                "{INDEX} line {}: {path:?} is not after {last:?}",
                n + 1
            ));
        }
        out.push((digest, path.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lines_round_trip_and_must_ascend() {
        let a = Digest::of(b"a");
        let text = index_line(&a, "data/a") + &index_line(&a, "data/b");
        assert_eq!(
            parse_index(&text).unwrap(),
            vec![(a, "data/a".into()), (a, "data/b".into())]
        );
        let back = index_line(&a, "data/b") + &index_line(&a, "data/a");
        assert!(parse_index(&back).unwrap_err().contains("not after"));
        assert!(
            parse_index("zz  data/a\n")
                .unwrap_err()
                .contains("not a SHA-256")
        );
        assert!(parse_index("nospace\n").is_err());
    }

    #[test]
    fn statement_names_the_index() {
        let d = Digest::of(b"i");
        let s = IndexStatement::new(
            &d,
            IndexPredicate {
                pack_version: 1,
                tenant: TenantId::new("acme").unwrap(),
                region: "eu".into(),
                region_names: vec!["eu".into()],
                execution: None,
                checkpoint: None,
                executions: 0,
                files: 3,
                artifact_bytes: false,
                explanations: Explain::Denies,
            },
        );
        assert_eq!(s.index_digest(), Some(d));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["predicateType"], PREDICATE_TYPE);
        assert_eq!(v["predicate"]["regionNames"][0], "eu");
    }
}
