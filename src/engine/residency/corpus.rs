//! A generated corpus for the residency auditor: signed receipts with planted violations of
//! every kind (wrong region, case and alias variants, a location re-tagged after the run, an
//! artifact copied to a second location, replication added later, missing or empty region,
//! an unknown location, a tenant's regions narrowed later) among clean runs, each with the
//! findings it must produce. The rules the runs were made under differ from the rules the
//! audit uses, as they would after a configuration change. Tests and `maestro drill
//! residency-corpus` write it into a store and compare what the auditor finds.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};

use crate::attest::dsse;
use crate::attest::keys::SigningKey;
use crate::domain::actor::{Access, TenantScope};
use crate::domain::execution::ExecutionStatus;
use crate::domain::ids::{Digest, ExecutionId, TenantId};
use crate::domain::receipt::{
    ApplianceInfo, ArtifactRecord, ManifestRef, PAYLOAD_TYPE, PREDICATE_TYPE, Predicate,
    STATEMENT_TYPE, Statement, Timings,
};
use crate::domain::residency::{LocationRule, Rules, Violation};
use crate::store::{Store, StoreError};

/// A finding a receipt must produce: its code and location.
pub type Expected = (String, Option<String>);

/// An artifact of a corpus run: location, recorded region tag (`None`: the field is absent).
#[derive(Debug, Clone)]
pub struct CorpusArtifact {
    /// Storage location.
    pub location: String,
    /// Region tag recorded at write time; `None` leaves the field out of the receipt.
    pub region: Option<String>,
    /// Content digest.
    pub digest: Digest,
}

/// One receipt of the corpus.
#[derive(Debug, Clone)]
pub struct CorpusRun {
    /// `clean` or the kind of violation planted.
    pub kind: &'static str,
    /// Tenant.
    pub tenant: TenantId,
    /// Execution id.
    pub execution: ExecutionId,
    /// The run's region as recorded.
    pub region: String,
    /// Artifacts as recorded.
    pub artifacts: Vec<CorpusArtifact>,
    /// Every finding the auditor must report (empty for clean runs).
    pub expected: BTreeSet<Expected>,
}

/// The corpus: the rules of the audit and the runs.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The rules in force when the auditor checks (after re-tagging, narrowing, …).
    pub rules: Rules,
    /// Receipts, in log order.
    pub runs: Vec<CorpusRun>,
}

fn set(items: &[(&str, &str)]) -> BTreeSet<Expected> {
    items
        .iter()
        .map(|(c, l)| ((*c).to_owned(), (!l.is_empty()).then(|| (*l).to_owned())))
        .collect()
}

/// Every kind of run the corpus makes: name, tenant, run region, artifacts (location,
/// recorded tag), the findings expected.
#[allow(clippy::type_complexity)]
const KINDS: &[(&str, &str, &str, &[(&str, Option<&str>)], &[(&str, &str)])] = &[
    (
        "clean",
        "acme",
        "eu-west",
        &[("eu-bucket", Some("eu-west"))],
        &[],
    ),
    ("clean", "acme", "eu-west", &[], &[]),
    (
        "clean",
        "globex",
        "eu-central",
        &[("eu-central-bucket", Some("eu-central"))],
        &[],
    ),
    (
        "clean",
        "acme",
        "eu-west",
        &[("eu-bucket", Some("europe-west1"))],
        &[],
    ),
    (
        "clean",
        "initech",
        "us-east",
        &[("us-bucket", Some("us-east"))],
        &[],
    ),
    (
        "clean",
        "acme",
        "eu-west",
        &[
            ("eu-bucket", Some("eu-west")),
            ("eu-bucket-2", Some("eu-west")),
        ],
        &[],
    ),
    (
        "clean",
        "narrowed",
        "eu-west",
        &[("eu-bucket", Some("eu-west"))],
        &[],
    ),
    (
        "clean",
        "initech",
        "ap-south",
        &[("ap-bucket", Some("ap-south"))],
        &[],
    ),
    (
        "wrong_region",
        "acme",
        "eu-west",
        &[("us-bucket", Some("us-east"))],
        &[
            ("written_region_not_allowed", "us-bucket"),
            ("written_outside_run_region", "us-bucket"),
            ("location_region_not_allowed", "us-bucket"),
            ("location_outside_run_region", "us-bucket"),
        ],
    ),
    (
        "run_region_not_allowed",
        "acme",
        "us-east",
        &[("us-bucket", Some("us-east"))],
        &[
            ("region_not_allowed", ""),
            ("written_region_not_allowed", "us-bucket"),
            ("location_region_not_allowed", "us-bucket"),
        ],
    ),
    (
        "case_variant_run_region",
        "acme",
        "EU-West",
        &[],
        &[("region_unknown", "")],
    ),
    (
        "case_variant_artifact_region",
        "acme",
        "eu-west",
        &[("eu-bucket", Some("EU-WEST"))],
        &[("artifact_region_unknown", "eu-bucket")],
    ),
    (
        "spacing_variant",
        "acme",
        "eu-west",
        &[("eu-bucket", Some(" eu-west"))],
        &[("artifact_region_unknown", "eu-bucket")],
    ),
    (
        "homoglyph_variant",
        "acme",
        "eu-west",
        &[("eu-bucket", Some("\u{435}u-west"))],
        &[("artifact_region_unknown", "eu-bucket")],
    ),
    (
        "undeclared_alias",
        "acme",
        "eu-west",
        &[("eu-bucket", Some("europe-west"))],
        &[("artifact_region_unknown", "eu-bucket")],
    ),
    (
        "alias_of_forbidden_region",
        "acme",
        "eu-west",
        &[("us-bucket", Some("us-east-1"))],
        &[
            ("written_region_not_allowed", "us-bucket"),
            ("written_outside_run_region", "us-bucket"),
            ("location_region_not_allowed", "us-bucket"),
            ("location_outside_run_region", "us-bucket"),
        ],
    ),
    (
        "retagged_after_run",
        "acme",
        "eu-west",
        &[("retagged-bucket", Some("eu-west"))],
        &[
            ("location_region_not_allowed", "retagged-bucket"),
            ("location_outside_run_region", "retagged-bucket"),
        ],
    ),
    (
        "copied_to_second_location",
        "acme",
        "eu-west",
        &[
            ("eu-bucket", Some("eu-west")),
            ("us-bucket", Some("us-east")),
        ],
        &[
            ("written_region_not_allowed", "us-bucket"),
            ("written_outside_run_region", "us-bucket"),
            ("location_region_not_allowed", "us-bucket"),
            ("location_outside_run_region", "us-bucket"),
        ],
    ),
    (
        "replication_added_later",
        "acme",
        "eu-west",
        &[("replicated-bucket", Some("eu-west"))],
        &[
            ("replica_region_not_allowed", "us-bucket"),
            ("replica_outside_run_region", "us-bucket"),
        ],
    ),
    (
        "empty_artifact_region",
        "acme",
        "eu-west",
        &[("eu-bucket", Some(""))],
        &[("artifact_region_missing", "eu-bucket")],
    ),
    (
        "absent_artifact_region",
        "acme",
        "eu-west",
        &[("eu-bucket", None)],
        &[("artifact_region_missing", "eu-bucket")],
    ),
    (
        "empty_run_region",
        "acme",
        "",
        &[],
        &[("region_missing", "")],
    ),
    (
        "unknown_location",
        "acme",
        "eu-west",
        &[("old-bucket", Some("eu-west"))],
        &[("location_unknown", "old-bucket")],
    ),
    (
        "allowed_regions_narrowed_later",
        "narrowed",
        "us-east",
        &[("us-bucket", Some("us-east"))],
        &[
            ("region_not_allowed", ""),
            ("written_region_not_allowed", "us-bucket"),
            ("location_region_not_allowed", "us-bucket"),
        ],
    ),
    (
        "inside_allowed_but_outside_run_region",
        "globex",
        "eu-west",
        &[("eu-central-bucket", Some("eu-central"))],
        &[
            ("written_outside_run_region", "eu-central-bucket"),
            ("location_outside_run_region", "eu-central-bucket"),
        ],
    ),
];

/// The kinds of violation the corpus plants.
pub fn planted_kinds() -> BTreeSet<&'static str> {
    KINDS
        .iter()
        .map(|k| k.0)
        .filter(|k| *k != "clean")
        .collect()
}

/// The rules of the audit: the run-time configuration after `retagged-bucket` moved to
/// us-east, `old-bucket` was removed, `replicated-bucket` started replicating to
/// us-bucket, and tenant `narrowed` lost us-east.
pub fn audit_rules() -> Rules {
    let loc = |region: &str, replicas: &[&str]| LocationRule {
        region: region.into(),
        replicas: replicas.iter().map(|r| (*r).to_owned()).collect(),
    };
    let regions = |r: &[&str]| r.iter().map(|x| (*x).to_owned()).collect::<BTreeSet<_>>();
    Rules {
        regions: regions(&["eu-west", "eu-central", "us-east", "ap-south"]),
        aliases: BTreeMap::from([
            ("europe-west1".into(), "eu-west".into()),
            ("us-east-1".into(), "us-east".into()),
        ]),
        locations: BTreeMap::from([
            ("eu-bucket".into(), loc("eu-west", &[])),
            ("eu-bucket-2".into(), loc("eu-west", &[])),
            ("eu-central-bucket".into(), loc("eu-central", &[])),
            ("us-bucket".into(), loc("us-east", &[])),
            ("ap-bucket".into(), loc("ap-south", &[])),
            ("retagged-bucket".into(), loc("us-east", &[])),
            ("replicated-bucket".into(), loc("eu-west", &["us-bucket"])),
        ]),
        tenants: BTreeMap::from([
            ("acme".into(), regions(&["eu-west"])),
            ("globex".into(), regions(&["eu-west", "eu-central"])),
            ("initech".into(), BTreeSet::new()),
            ("narrowed".into(), regions(&["eu-west"])),
        ]),
    }
}

/// Generates `n` runs from `seed`: every kind at least once (when `n` allows), the rest
/// drawn at random, about half of them clean; planted runs often carry clean artifacts
/// too, so a violation hides among compliant data.
pub fn generate(seed: u64, n: usize) -> Corpus {
    let mut rng = StdRng::seed_from_u64(seed);
    let clean: Vec<usize> = (0..KINDS.len())
        .filter(|&i| KINDS[i].0 == "clean")
        .collect();
    let mut runs = Vec::with_capacity(n);
    for i in 0..n {
        let k = if i < KINDS.len() {
            i
        } else if rng.random_range(0..2) == 0 {
            clean[rng.random_range(0..clean.len())]
        } else {
            rng.random_range(0..KINDS.len())
        };
        let (kind, tenant, region, artifacts, expected) = KINDS[k];
        let mut arts: Vec<CorpusArtifact> = artifacts
            .iter()
            .map(|(location, region)| CorpusArtifact {
                location: (*location).into(),
                region: region.map(str::to_owned),
                digest: Digest::of(format!("{seed}/{i}/{location}").as_bytes()),
            })
            .collect();
        if kind == "copied_to_second_location" {
            // The same bytes in both places.
            let first = arts[0].digest;
            arts[1].digest = first;
        }
        // A compliant artifact beside the planted one, in the run's own region.
        if kind != "clean"
            && region == "eu-west"
            && tenant != "narrowed"
            && rng.random_range(0..2) == 0
        {
            arts.insert(
                rng.random_range(0..=arts.len()),
                CorpusArtifact {
                    location: "eu-bucket-2".into(),
                    region: Some("eu-west".into()),
                    digest: Digest::of(format!("{seed}/{i}/extra").as_bytes()),
                },
            );
        }
        runs.push(CorpusRun {
            kind,
            tenant: TenantId::new(tenant).expect("corpus tenant"),
            execution: ExecutionId::new(&format!(
                "ex_{}",
                ulid::Ulid::from_parts(1_700_000_000_000 + i as u64, u128::from(seed))
                    .to_string()
                    .to_ascii_lowercase()
            ))
            .expect("corpus id"),
            region: region.into(),
            artifacts: arts,
            expected: set(expected),
        });
    }
    Corpus {
        rules: audit_rules(),
        runs,
    }
}

fn statement(run: &CorpusRun, sequence: u64, previous: Option<Digest>) -> serde_json::Value {
    let at = jiff::Timestamp::UNIX_EPOCH;
    let s = Statement {
        statement_type: STATEMENT_TYPE.into(),
        subject: Vec::new(),
        predicate_type: PREDICATE_TYPE.into(),
        predicate: Predicate {
            receipt_version: 1,
            tenant: run.tenant.clone(),
            execution_id: run.execution.clone(),
            sequence,
            previous_receipt: previous,
            status: ExecutionStatus::Succeeded,
            canary: false,
            region: run.region.clone(),
            manifest: ManifestRef {
                name: format!("corpus-{}", run.kind.replace('_', "-")),
                version: "1.0.0".into(),
                digest: Digest::of(run.kind.as_bytes()),
            },
            tasks: Vec::new(),
            artifacts: run
                .artifacts
                .iter()
                .enumerate()
                .map(|(i, a)| ArtifactRecord {
                    task: format!("write-{i}"),
                    name: format!("artifact-{i}.txt"),
                    digest: a.digest,
                    size: 1,
                    media_type: "text/plain".into(),
                    location: a.location.clone(),
                    region: a.region.clone().unwrap_or_default(),
                })
                .collect(),
            decisions: Vec::new(),
            timings: Timings {
                submitted_at: at,
                started_at: Some(at),
                finished_at: at,
            },
            error: None,
            submitted_by: "corpus".into(),
            appliance: ApplianceInfo {
                version: env!("CARGO_PKG_VERSION").into(),
                log_origin: "maestro.corpus/log".into(),
            },
        },
    };
    let mut v = serde_json::to_value(&s).expect("statement serializes");
    for (i, a) in run.artifacts.iter().enumerate() {
        if a.region.is_none() {
            v["predicate"]["artifacts"][i]
                .as_object_mut()
                .expect("artifact object")
                .remove("region");
        }
    }
    v
}

/// Writes the corpus into `store` as signed, logged receipts.
pub fn write(store: &Store, key: &SigningKey, corpus: &Corpus) -> Result<(), StoreError> {
    for chunk in corpus.runs.chunks(1000) {
        store.write(|w| {
            for run in chunk {
                let scope = TenantScope::system(run.tenant.clone(), Access::Run);
                let head = w.chain_head(&run.tenant)?;
                let payload = serde_json::to_vec(&statement(run, head.count + 1, head.last))
                    .expect("statement serializes");
                let env = dsse::sign(PAYLOAD_TYPE, &payload, key)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                let raw = serde_json::value::to_raw_value(&env).expect("envelope serializes");
                w.append_receipt(
                    &scope,
                    &run.execution,
                    &payload,
                    raw,
                    key.public().keyid().into(),
                )?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// How the auditor's findings compare with what was planted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Comparison {
    /// Runs with a planted violation.
    pub planted: usize,
    /// Clean runs.
    pub clean: usize,
    /// Expected findings, over every run.
    pub expected_findings: usize,
    /// Findings the auditor did not report: `execution kind code location`.
    pub missed: Vec<String>,
    /// Findings the auditor reported that were not planted (on clean runs: false positives).
    pub unexpected: Vec<String>,
    /// Planted kinds with at least one run.
    pub kinds: BTreeSet<&'static str>,
}

/// Compares the open violations with the corpus.
pub fn compare(corpus: &Corpus, violations: &[Violation]) -> Comparison {
    let mut found: BTreeMap<&str, BTreeSet<Expected>> = BTreeMap::new();
    for v in violations.iter().filter(|v| v.is_open()) {
        found
            .entry(v.execution.as_str())
            .or_default()
            .insert((v.finding.code.clone(), v.finding.location.clone()));
    }
    let mut c = Comparison::default();
    let empty = BTreeSet::new();
    for run in &corpus.runs {
        if run.kind == "clean" {
            c.clean += 1;
        } else {
            c.planted += 1;
            c.kinds.insert(run.kind);
        }
        c.expected_findings += run.expected.len();
        let got = found.remove(run.execution.as_str()).unwrap_or_default();
        let show = |(code, loc): &Expected| {
            format!(
                "{} {} {code} {}",
                run.execution,
                run.kind,
                loc.as_deref().unwrap_or("-")
            )
        };
        c.missed.extend(run.expected.difference(&got).map(show));
        c.unexpected.extend(got.difference(&run.expected).map(show));
    }
    for (exec, rest) in found {
        for (code, loc) in rest.difference(&empty) {
            c.unexpected.push(format!(
                "{exec} (not in the corpus) {code} {}",
                loc.as_deref().unwrap_or("-")
            ));
        }
    }
    c
}
