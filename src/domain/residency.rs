//! Data residency as the auditor sees it: the rules in force (regions, aliases, storage
//! locations with their current region tags and replicas, the regions each tenant may use),
//! the facts a receipt records (the run's region, every artifact's location and the region
//! tag it had when written), and the check that turns facts into findings. The check is
//! strict: a region tag must be a declared region or a declared alias, exactly; anything
//! else (a case variant, an unknown alias, an empty tag) is a finding, never a guess.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ids::{Digest, ExecutionId, TenantId};

/// A storage location under the current configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationRule {
    /// Its region tag now.
    pub region: String,
    /// Locations that hold a copy of everything written here (replication targets).
    pub replicas: Vec<String>,
}

/// The residency rules in force: what the auditor checks receipts against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// Declared regions; empty accepts any well-formed region id.
    pub regions: BTreeSet<String>,
    /// Other names of declared regions (e.g. names earlier configurations used).
    pub aliases: BTreeMap<String, String>,
    /// Storage locations by name.
    pub locations: BTreeMap<String, LocationRule>,
    /// Regions each tenant may use; an empty set allows every region. A tenant that is not
    /// configured any more has no entry: its runs are checked for everything but that.
    pub tenants: BTreeMap<String, BTreeSet<String>>,
}

/// A region id: lowercase ASCII letters, digits and `-`, 1 to 32 characters, starting with a
/// letter.
pub fn is_region_id(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.starts_with(|c: char| c.is_ascii_lowercase())
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// How a region tag reads under the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Region {
    /// A declared region (after an alias, if the tag was one).
    Known(String),
    /// No tag at all (empty or blank).
    Missing,
    /// A tag that is neither a declared region nor a declared alias; with the declared
    /// region it resembles, if any.
    Unknown {
        /// The declared region it most resembles (case or separators differ).
        resembles: Option<String>,
    },
}

impl Rules {
    /// Digest of the rules: the auditor rescans every receipt when it changes.
    pub fn fingerprint(&self) -> Digest {
        Digest::of(&serde_json::to_vec(self).expect("rules serialize"))
    }

    /// Reads a region tag.
    pub fn region(&self, tag: &str) -> Region {
        if tag.trim().is_empty() {
            return Region::Missing;
        }
        let declared = |r: &str| {
            if self.regions.is_empty() {
                is_region_id(r)
            } else {
                self.regions.contains(r)
            }
        };
        if declared(tag) {
            return Region::Known(tag.to_owned());
        }
        if let Some(target) = self.aliases.get(tag) {
            return Region::Known(target.clone());
        }
        let folded = fold(tag);
        let resembles = if self.regions.is_empty() {
            is_region_id(&folded).then_some(folded.clone())
        } else {
            self.regions.iter().find(|r| fold(r) == folded).cloned()
        }
        .or_else(|| {
            self.aliases
                .iter()
                .find(|(a, _)| fold(a) == folded)
                .map(|(_, r)| r.clone())
        });
        Region::Unknown { resembles }
    }

    /// Whether the tenant may keep data in `region` (a declared region).
    pub fn allowed(&self, tenant: &str, region: &str) -> bool {
        match self.tenants.get(tenant) {
            Some(allowed) => allowed.is_empty() || allowed.contains(region),
            None => true,
        }
    }
}

/// Lowercase, with `_`, `.` and spaces read as `-`: how a person might misspell a region.
fn fold(tag: &str) -> String {
    tag.trim()
        .chars()
        .map(|c| match c {
            '_' | '.' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// An artifact as a receipt records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ArtifactFact {
    /// Task that wrote it.
    pub task: String,
    /// Name.
    pub name: String,
    /// SHA-256 of the bytes.
    pub digest: Digest,
    /// Storage location.
    pub location: String,
    /// Region tag of the location when written.
    pub region: String,
}

/// What the auditor reads from one receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Owning tenant.
    pub tenant: TenantId,
    /// Execution.
    pub execution: ExecutionId,
    /// Digest of the receipt (its DSSE payload).
    pub receipt: Digest,
    /// Leaf of the receipt in the transparency log.
    pub log_index: u64,
    /// Region the run's data had to stay in.
    pub region: String,
    /// Every artifact it wrote.
    pub artifacts: Vec<ArtifactFact>,
}

/// One way a receipt breaks residency under the current rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// Stable code (see [`CODES`]).
    pub code: String,
    /// The region at fault (a declared region, or the tag as recorded when it is not one).
    pub region: String,
    /// The storage location concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The artifact concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactFact>,
    /// What is wrong, for people.
    pub message: String,
}

/// Every finding code, with what it means.
pub const CODES: &[(&str, &str)] = &[
    ("region_missing", "the run recorded no region"),
    (
        "region_unknown",
        "the run's region is neither a declared region nor a declared alias",
    ),
    (
        "region_not_allowed",
        "the run's region is not one the tenant may use",
    ),
    (
        "artifact_region_missing",
        "an artifact was recorded without a region tag",
    ),
    (
        "artifact_region_unknown",
        "an artifact's recorded region tag is neither a declared region nor a declared alias",
    ),
    (
        "written_region_not_allowed",
        "an artifact was written to a region the tenant may not use",
    ),
    (
        "written_outside_run_region",
        "an artifact was written outside the run's region",
    ),
    (
        "location_unknown",
        "an artifact's storage location is not configured any more",
    ),
    (
        "location_region_not_allowed",
        "an artifact's location is now tagged with a region the tenant may not use",
    ),
    (
        "location_outside_run_region",
        "an artifact's location is now tagged with another region than the run's",
    ),
    (
        "replica_region_not_allowed",
        "a location replicates the artifact into a region the tenant may not use",
    ),
    (
        "replica_outside_run_region",
        "a location replicates the artifact outside the run's region",
    ),
];

fn describe(tag: &str, resembles: &Option<String>) -> String {
    match resembles {
        Some(r) => format!("{tag:?} is not a declared region or alias (it resembles {r:?})"),
        None => format!("{tag:?} is not a declared region or alias"),
    }
}

/// Checks one receipt against the rules: every finding, in a stable order.
pub fn check(rules: &Rules, facts: &Facts) -> Vec<Finding> {
    let tenant = facts.tenant.as_str();
    let mut out = Vec::new();
    let mut push = |code: &str,
                    region: &str,
                    location: Option<&str>,
                    artifact: Option<&ArtifactFact>,
                    message: String| {
        out.push(Finding {
            code: code.into(),
            region: region.into(),
            location: location.map(str::to_owned),
            artifact: artifact.cloned(),
            message,
        })
    };
    let run = match rules.region(&facts.region) {
        Region::Known(r) => {
            if !rules.allowed(tenant, &r) {
                push(
                    "region_not_allowed",
                    &r,
                    None,
                    None,
                    format!("the run's region {r:?} is not one tenant {tenant} may use"),
                );
            }
            Some(r)
        }
        Region::Missing => {
            push(
                "region_missing",
                "",
                None,
                None,
                "the run recorded no region".into(),
            );
            None
        }
        Region::Unknown { resembles } => {
            push(
                "region_unknown",
                &facts.region,
                None,
                None,
                format!("the run's region {}", describe(&facts.region, &resembles)),
            );
            None
        }
    };
    for a in &facts.artifacts {
        let what = format!("artifact {:?} of task {:?}", a.name, a.task);
        match rules.region(&a.region) {
            Region::Known(w) => {
                if !rules.allowed(tenant, &w) {
                    push(
                        "written_region_not_allowed",
                        &w,
                        Some(&a.location),
                        Some(a),
                        format!(
                            "{what} was written to {:?} in region {w:?}, which tenant {tenant} may not use",
                            a.location
                        ),
                    );
                }
                if let Some(run) = run.as_deref().filter(|run| *run != w) {
                    push(
                        "written_outside_run_region",
                        &w,
                        Some(&a.location),
                        Some(a),
                        format!(
                            "{what} was written to {:?} in region {w:?}, outside the run's region {run:?}",
                            a.location
                        ),
                    );
                }
            }
            Region::Missing => push(
                "artifact_region_missing",
                "",
                Some(&a.location),
                Some(a),
                format!("{what} in {:?} was recorded without a region", a.location),
            ),
            Region::Unknown { resembles } => push(
                "artifact_region_unknown",
                &a.region,
                Some(&a.location),
                Some(a),
                format!(
                    "{what} in {:?} was recorded in region {}",
                    a.location,
                    describe(&a.region, &resembles)
                ),
            ),
        }
        let Some(loc) = rules.locations.get(&a.location) else {
            push(
                "location_unknown",
                &a.region,
                Some(&a.location),
                Some(a),
                format!(
                    "{what} is in location {:?}, which is not configured any more: its region cannot be checked",
                    a.location
                ),
            );
            continue;
        };
        let places = std::iter::once((a.location.as_str(), loc, false)).chain(
            loc.replicas.iter().filter_map(|name| {
                rules
                    .locations
                    .get(name)
                    .map(|replica| (name.as_str(), replica, true))
            }),
        );
        for (name, place, replica) in places {
            let now = &place.region;
            let (not_allowed, outside, how) = if replica {
                (
                    "replica_region_not_allowed",
                    "replica_outside_run_region",
                    format!("{what} is replicated from {:?} to {name:?}", a.location),
                )
            } else {
                (
                    "location_region_not_allowed",
                    "location_outside_run_region",
                    format!("{what} is in {name:?}"),
                )
            };
            if !rules.allowed(tenant, now) {
                push(
                    not_allowed,
                    now,
                    Some(name),
                    Some(a),
                    format!("{how}, now tagged {now:?}, a region tenant {tenant} may not use"),
                );
            }
            if let Some(run) = run.as_deref().filter(|run| *run != now) {
                push(
                    outside,
                    now,
                    Some(name),
                    Some(a),
                    format!("{how}, now tagged {now:?}, outside the run's region {run:?}"),
                );
            }
        }
    }
    out
}

/// A stored violation: one finding about one receipt, kept once however often it is found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Violation {
    /// Stable id: the same finding about the same receipt always has the same id.
    pub id: String,
    /// Tenant.
    pub tenant: TenantId,
    /// Execution.
    pub execution: ExecutionId,
    /// Receipt digest.
    pub receipt: Digest,
    /// Leaf of the receipt in the log.
    pub log_index: u64,
    /// What is wrong.
    #[serde(flatten)]
    pub finding: Finding,
    /// When the auditor first found it.
    #[schemars(with = "String")]
    pub found_at: Timestamp,
    /// Set once it no longer holds, or an operator resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Resolution>,
}

/// How a violation was resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Resolution {
    /// When.
    #[schemars(with = "String")]
    pub at: Timestamp,
    /// `auditor` (the rules changed and it no longer holds) or the operator's subject.
    pub by: String,
    /// Why.
    pub reason: String,
}

impl Violation {
    /// The stable id of a finding about a receipt.
    pub fn id_of(facts: &Facts, f: &Finding) -> String {
        let a = f.artifact.as_ref();
        let key = serde_json::json!([
            facts.tenant,
            facts.execution,
            f.code,
            f.location,
            a.map(|a| (&a.task, &a.name, a.digest.hex(), &a.location)),
        ]);
        Digest::of(key.to_string().as_bytes()).hex()[..24].to_owned()
    }

    /// A new, open violation.
    pub fn new(facts: &Facts, finding: Finding, now: Timestamp) -> Self {
        Violation {
            id: Self::id_of(facts, &finding),
            tenant: facts.tenant.clone(),
            execution: facts.execution.clone(),
            receipt: facts.receipt,
            log_index: facts.log_index,
            finding,
            found_at: now,
            resolved: None,
        }
    }

    /// Whether it still stands.
    pub fn is_open(&self) -> bool {
        self.resolved.is_none()
    }
}

/// What an open violation blocks when the auditor enforces: new runs of the tenant that
/// use the location, or (without one) that run in the region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Blocks {
    /// Tenant → locations and regions blocked.
    pub tenants: BTreeMap<String, TenantBlocks>,
}

/// The blocks of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TenantBlocks {
    /// Storage locations with open violations.
    pub locations: BTreeSet<String>,
    /// Regions of open violations that concern the run, not a location.
    pub regions: BTreeSet<String>,
}

impl Blocks {
    /// The blocks of a set of violations (open ones count).
    pub fn of<'a>(violations: impl IntoIterator<Item = &'a Violation>) -> Self {
        let mut b = Blocks::default();
        for v in violations.into_iter().filter(|v| v.is_open()) {
            let t = b.tenants.entry(v.tenant.to_string()).or_default();
            match &v.finding.location {
                Some(l) => {
                    t.locations.insert(l.clone());
                }
                None => {
                    t.regions.insert(v.finding.region.clone());
                }
            }
        }
        b
    }
}

#[cfg(test)]
mod tests;
