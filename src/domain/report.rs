//! The tenant isolation report: what was checked against the live appliance (chaos checks,
//! resource boundaries), how many cross-tenant attempts the audit log holds, and the evidence
//! behind it; rendered to Markdown through the template `docs/release/ISOLATION_REPORT.md`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ids::{DecisionId, Digest, ExecutionId, TenantId};

/// DSSE payload type of an archived report.
pub const PAYLOAD_TYPE: &str = "application/vnd.maestro.isolation-report+json";

/// Prefix of report ids.
pub const ID_PREFIX: &str = "ir_";

/// The report template (placeholders `{{name}}`).
pub const TEMPLATE: &str = include_str!("../../docs/release/ISOLATION_REPORT.md");

/// A tenant isolation report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IsolationReport {
    /// Report id (`ir_` and a ULID); also its evidence id.
    pub id: String,
    /// Appliance version.
    pub version: String,
    /// When the checks ran.
    #[schemars(with = "String")]
    pub generated_at: Timestamp,
    /// Who asked for it.
    pub generated_by: String,
    /// The transparency log's origin (names the appliance).
    pub log_origin: String,
    /// The tenant the report is about, or none for the whole appliance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<TenantId>,
    /// Tenants covered.
    pub tenants: Vec<TenantId>,
    /// Whether every check and boundary passed.
    pub passed: bool,
    /// Chaos checks run through the API.
    pub checks: Vec<Check>,
    /// Resource boundaries verified (namespaces, queues, storage).
    pub boundaries: Vec<Check>,
    /// Cross-tenant attempts.
    pub attempts: Attempts,
    /// Evidence behind the report.
    pub evidence: Evidence,
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// Requests or records it took.
    pub count: u64,
    /// What was seen (for a failure: what went wrong and where).
    pub detail: String,
}

/// Cross-tenant attempts: the report's own probes, and everyone else's in the audit log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attempts {
    /// Attempts the probes made on other tenants' real data.
    pub probe_attempts: u64,
    /// Of those, the ones found in the audit log as `cross_tenant_denied`.
    pub probe_audited: u64,
    /// Of those, the ones counted in `mc_tenant_cross_access_total`.
    pub probe_counted: u64,
    /// Denied cross-tenant attempts in the audit log not made by any report's probes.
    pub outside: u64,
    /// Cross-tenant reads policy allowed (auditors), from the audit log.
    pub allowed_reads: u64,
    /// The latest attempts outside the probes (at most 10), newest first.
    pub recent: Vec<AttemptRef>,
}

/// A cross-tenant attempt in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AttemptRef {
    /// Audit sequence number.
    pub seq: u64,
    /// When.
    #[schemars(with = "String")]
    pub at: Timestamp,
    /// `cross_tenant_denied` or `cross_tenant_read`.
    pub kind: String,
    /// Who.
    pub actor: String,
    /// The actor's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_tenant: Option<TenantId>,
    /// The tenant whose data it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
    /// The route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// Evidence: what the report's claims can be checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// Digest of the active policy bundle (every decision pins it).
    pub policy_digest: Digest,
    /// Audit events in the log when the report was made.
    pub audit_events: u64,
    /// Hash of the last audit event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_head: Option<Digest>,
    /// Whether the audit log's hash chain verified, or what broke it.
    pub audit_chain: String,
    /// Sequence numbers of the first and last audit event the probes caused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_events: Option<(u64, u64)>,
    /// Access decisions recorded for the probes' attempts (a sample).
    pub decisions: Vec<DecisionRef>,
    /// The latest signed checkpoint of the transparency log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointRef>,
    /// The receipts the probes targeted, with their inclusion in the checkpoint.
    pub receipts: Vec<ReceiptEvidence>,
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DecisionRef {
    /// The tenant it is stored under.
    pub tenant: TenantId,
    /// Its id.
    pub id: DecisionId,
}

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckpointRef {
    /// Tree size.
    pub size: u64,
    /// Root hash, base64 (as in the checkpoint note).
    pub root: String,
}

/// A receipt used as a probe target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReceiptEvidence {
    /// Owning tenant.
    pub tenant: TenantId,
    /// Execution.
    pub execution: ExecutionId,
    /// Receipt digest.
    pub digest: Digest,
    /// Leaf index in the log.
    pub log_index: u64,
    /// Whether its inclusion proof verified against the checkpoint.
    pub included: bool,
}

fn pass(b: bool) -> &'static str {
    if b { "PASS" } else { "FAIL" }
}

/// Text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn checks_table(checks: &[Check], count_label: &str) -> String {
    let mut out = format!("| Check | Result | {count_label} | Detail |\n|---|---|---|---|\n");
    for c in checks {
        out.push_str(&format!(
            "| {} | **{}** | {} | {} |\n",
            cell(&c.name),
            pass(c.passed),
            c.count,
            cell(&c.detail)
        ));
    }
    out
}

/// Fills `{{name}}` placeholders; a placeholder without a value is an error.
pub fn fill(template: &str, values: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "unclosed {{ in the report template".to_owned())?;
        let name = after[..end].trim();
        let value = values.get(name).ok_or_else(|| {
            format!("the report template names {{{{{name}}}}}, which has no value")
        })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

impl IsolationReport {
    /// The values of the template's placeholders.
    fn values(&self) -> BTreeMap<&'static str, String> {
        let chaos = self.checks.iter().all(|c| c.passed);
        let bounds = self.boundaries.iter().all(|c| c.passed);
        let failed: Vec<&str> = self
            .checks
            .iter()
            .chain(&self.boundaries)
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        let verdict = if self.passed {
            format!(
                "**PASS**: {} checks and {} boundaries held; no data crossed a tenant boundary.",
                self.checks.len(),
                self.boundaries.len()
            )
        } else {
            format!("**FAIL**: {} did not hold.", failed.join("; "))
        };
        let a = &self.attempts;
        let mut attempts = format!(
            "- Probe attempts on other tenants' real data: {}; audited as `cross_tenant_denied`: {}; counted in `mc_tenant_cross_access_total`: {}.\n\
             - Denied attempts outside the probes, in the whole audit log: **{}**.\n\
             - Cross-tenant reads allowed by policy (auditors): {}.\n",
            a.probe_attempts, a.probe_audited, a.probe_counted, a.outside, a.allowed_reads
        );
        if a.recent.is_empty() {
            attempts.push_str("\nNo attempts outside the probes are on record.\n");
        } else {
            attempts.push_str(
                "\nLatest attempts outside the probes:\n\n| Audit seq | When | Kind | Actor | Tenant | Route |\n|---|---|---|---|---|---|\n",
            );
            for r in &a.recent {
                attempts.push_str(&format!(
                    "| {} | {} | {} | `{}` ({}) | {} | `{}` |\n",
                    r.seq,
                    r.at,
                    r.kind,
                    cell(&r.actor),
                    r.actor_tenant.as_ref().map_or("-", |t| t.as_str()),
                    r.tenant.as_ref().map_or("-", |t| t.as_str()),
                    cell(r.route.as_deref().unwrap_or("-"))
                ));
            }
        }
        let e = &self.evidence;
        let mut evidence = format!(
            "- Policy bundle: `{}` (`GET /api/v1/decisions/{{id}}/explain` replays any decision against it).\n\
             - Audit log: {} events, head `{}`, hash chain {} (`maestro audit verify`).\n",
            e.policy_digest,
            e.audit_events,
            e.audit_head.map_or("-".into(), |h| h.to_string()),
            e.audit_chain
        );
        if let Some((first, last)) = e.probe_events {
            evidence.push_str(&format!(
                "- Audit events of this report's probes: {first} to {last} (`GET /api/v1/audit?after={}`).\n",
                first.saturating_sub(1)
            ));
        }
        if let Some(c) = &e.checkpoint {
            evidence.push_str(&format!(
                "- Transparency log checkpoint: size {}, root `{}` (`GET /api/v1/log/checkpoint`).\n",
                c.size, c.root
            ));
        }
        if !e.decisions.is_empty() {
            evidence.push_str("- Access decisions recorded for probe attempts:");
            for d in &e.decisions {
                evidence.push_str(&format!(" `{}` ({})", d.id, d.tenant));
            }
            evidence.push_str(".\n");
        }
        if !e.receipts.is_empty() {
            evidence.push_str(
                "\nReceipts the probes targeted:\n\n| Tenant | Execution | Receipt | Log index | Included in checkpoint |\n|---|---|---|---|---|\n",
            );
            for r in &e.receipts {
                evidence.push_str(&format!(
                    "| {} | `{}` | `{}` | {} | **{}** |\n",
                    r.tenant,
                    r.execution,
                    r.digest,
                    r.log_index,
                    pass(r.included)
                ));
            }
        }
        let tenants: Vec<&str> = self.tenants.iter().map(|t| t.as_str()).collect();
        BTreeMap::from([
            ("version", self.version.clone()),
            ("verdict", verdict),
            ("id", self.id.clone()),
            ("generated_at", self.generated_at.to_string()),
            ("generated_by", cell(&self.generated_by)),
            ("log_origin", self.log_origin.clone()),
            ("policy_digest", e.policy_digest.to_string()),
            (
                "scope",
                match &self.scope {
                    Some(t) => format!("tenant {t}"),
                    None => "the whole appliance".into(),
                },
            ),
            ("tenants", tenants.join(", ")),
            ("chaos_result", pass(chaos).into()),
            ("boundaries_result", pass(bounds).into()),
            ("attempts_count", a.outside.to_string()),
            ("checks", checks_table(&self.checks, "Requests")),
            ("boundaries", checks_table(&self.boundaries, "Records")),
            ("attempts", attempts),
            ("evidence", evidence),
        ])
    }

    /// The report as Markdown, through [`TEMPLATE`].
    pub fn to_markdown(&self) -> String {
        fill(TEMPLATE, &self.values()).expect("the shipped template names only known values")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IsolationReport {
        let t = |s: &str| TenantId::new(s).unwrap();
        IsolationReport {
            id: "ir_01".into(),
            version: "0.1.0".into(),
            generated_at: "2026-01-02T03:04:05Z".parse().unwrap(),
            generated_by: "token:admin".into(),
            log_origin: "maestro/abc".into(),
            scope: None,
            tenants: vec![t("acme"), t("globex")],
            passed: false,
            checks: vec![
                Check {
                    name: "globex -> acme: execution by id".into(),
                    passed: true,
                    count: 2,
                    detail: "404 like a missing id | no data".into(),
                },
                Check {
                    name: "forged token".into(),
                    passed: false,
                    count: 1,
                    detail: "answered 200".into(),
                },
            ],
            boundaries: vec![],
            attempts: Attempts::default(),
            evidence: Evidence {
                policy_digest: Digest::of(b"p"),
                audit_events: 3,
                audit_head: None,
                audit_chain: "verified".into(),
                probe_events: Some((1, 2)),
                decisions: vec![],
                checkpoint: None,
                receipts: vec![],
            },
        }
    }

    #[test]
    fn the_template_renders_every_section() {
        let md = sample().to_markdown();
        assert!(
            md.starts_with("# Tenant Isolation Report — MC 0.1.0"),
            "{md}"
        );
        assert!(!md.contains("{{"), "{md}");
        assert!(md.contains("**FAIL**: forged token did not hold."), "{md}");
        assert!(md.contains("404 like a missing id \\| no data"), "{md}");
        assert!(md.contains("Cross-tenant access attempts: count=0"), "{md}");
        assert!(
            md.contains("Audit events of this report's probes: 1 to 2"),
            "{md}"
        );
    }

    #[test]
    fn unknown_or_unclosed_placeholders_are_errors() {
        let values = BTreeMap::from([("a", "1".to_owned())]);
        assert_eq!(fill("x {{ a }} y", &values).unwrap(), "x 1 y");
        assert!(fill("{{b}}", &values).unwrap_err().contains("{{b}}"));
        assert!(fill("{{a", &values).unwrap_err().contains("unclosed"));
    }
}
