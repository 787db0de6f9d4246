//! Every console page as a function from the data it shows to HTML: status overview,
//! executions (list and detail), search, audit events, catalog, login, and errors.

use maud::{Markup, html};

use crate::domain::package::{CatalogEntry, Verdict};

use super::view::{Section, Viewer, badge, layout, pretty, query, short_digest, when};
use crate::app::replay::Replay;
use crate::attest::receipt::{Outcome, ReceiptBundle, Report};
use crate::domain::actions::ActionSpec;
use crate::domain::audit::AuditEvent;
use crate::domain::execution::{Decision, Execution, ExecutionStatus, ExecutionSummary};
use crate::domain::residency::Violation;
use crate::domain::search::{DocKind, Hit, Results};
use crate::engine::evidence::CheckpointView;
use crate::engine::residency::AuditorState;

fn enum_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A tenant's panel on the status page.
pub struct TenantPanel {
    /// Tenant id.
    pub tenant: String,
    /// Display name, if configured.
    pub display_name: Option<String>,
    /// Executions queued now.
    pub queued: usize,
    /// The chart of executions, failures and denies over time.
    pub chart: Markup,
}

/// What the status page shows.
pub struct Overview {
    /// Per tenant.
    pub tenants: Vec<TenantPanel>,
    /// Queue depth over the last hour.
    pub queue_chart: Markup,
    /// Latest failed executions.
    pub failures: Vec<Hit>,
    /// Latest denied executions and accesses.
    pub denies: Vec<Hit>,
    /// Latest runs denied by the residency policy.
    pub residency: Vec<Hit>,
    /// Open residency violations the auditor found in the visible tenants, newest first.
    pub violations: Vec<Violation>,
    /// How far the residency auditor got.
    pub auditor: AuditorState,
    /// Whether open violations block runs and rollouts.
    pub enforced: bool,
    /// The latest signed checkpoint.
    pub checkpoint: Option<CheckpointView>,
    /// This version, and the one recorded before it when it differs.
    pub version: String,
    /// The previous version, when this start changed it.
    pub previous_version: Option<String>,
    /// Canary runs (post-release checks) in the visible tenants, newest first.
    pub canaries: Vec<Hit>,
    /// Where post-release validation stands (readiness).
    pub validation: crate::app::postrelease::State,
    /// The last validation: its checks' verdicts for everyone, details for appliance-wide
    /// viewers only (`detailed`).
    pub last_validation: Option<crate::app::postrelease::Report>,
    /// Whether the viewer is appliance-wide.
    pub detailed: bool,
    /// When the appliance started.
    pub started_at: jiff::Timestamp,
    /// Search index: documents and changes behind.
    pub index: (u64, u64),
}

fn hits_table(hits: &[Hit], empty: &str) -> Markup {
    html! {
        @if hits.is_empty() {
            p.muted { (empty) }
        } @else {
            table {
                thead { tr { th { "What" } th { "Tenant" } th { "Status" } th { "Name" } th { "When" } th { "Why" } } }
                tbody {
                    @for h in hits {
                        tr {
                            td { a href=(hit_href(h)) class="mono" { (h.id) } }
                            td { (h.tenant) }
                            td { (badge(&h.status)) }
                            td { (h.name) @if let Some(v) = &h.version { span.muted { "@" (v) } } }
                            td.muted { (h.at.parse::<jiff::Timestamp>().map(when).unwrap_or_else(|_| h.at.clone())) }
                            td { (h.summary.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

fn violations_table(vs: &[Violation]) -> Markup {
    html! {
        @if vs.is_empty() {
            p.muted { "No open residency violation." }
        } @else {
            table {
                thead { tr { th { "Execution" } th { "Tenant" } th { "Finding" } th { "Location" } th { "Region" } th { "Found" } th { "Why" } } }
                tbody {
                    @for v in vs.iter().take(50) {
                        tr {
                            td { a href=(format!("/executions/{}{}", v.execution, query(&[("tenant", v.tenant.as_str())]))) class="mono" { (v.execution) } }
                            td { (v.tenant) }
                            td { (badge("violation")) " " span.mono { (v.finding.code) } }
                            td.mono { (v.finding.location.as_deref().unwrap_or("")) }
                            td.mono { (v.finding.region) }
                            td.muted { (when(v.found_at)) }
                            td { (v.finding.message) }
                        }
                    }
                }
            }
            @if vs.len() > 50 { p.help { (vs.len() - 50) " more: maestro audit violations lists them all." } }
        }
    }
}

fn hit_href(h: &Hit) -> String {
    match h.kind {
        DocKind::Execution => format!("/executions/{}{}", h.id, query(&[("tenant", &h.tenant)])),
        DocKind::Decision => format!("/decisions/{}{}", h.id, query(&[("tenant", &h.tenant)])),
    }
}

/// `/`: the status overview.
pub fn overview(viewer: &Viewer, o: &Overview) -> Markup {
    let body = html! {
        h1 { "Status" }
        div.grid {
            div.card {
                h2 { "Appliance" }
                dl.kv {
                    dt { "Version" } dd { (o.version) }
                    dt { "Started" } dd { (when(o.started_at)) }
                    dt { "Search index" } dd { (o.index.0) " documents" @if o.index.1 > 0 { ", " (o.index.1) " changes behind" } @else { ", caught up" } }
                }
            }
            div.card {
                h2 { "Transparency log" }
                @match &o.checkpoint {
                    Some(cp) => {
                        dl.kv {
                            dt { "Origin" } dd.mono { (cp.origin) }
                            dt { "Tree size" } dd { (cp.size) " receipts" }
                            dt { "Root hash" } dd { (short_digest(&cp.root_hash)) }
                        }
                        details { summary { "Signed checkpoint" } pre { (cp.note) } }
                    }
                    None => { p.muted { "No receipt logged yet." } }
                }
            }
            div.card {
                h2 { "Post-release" }
                dl.kv {
                    dt { "This version" } dd { (o.version) }
                    dt { "Previous version" } dd { (o.previous_version.as_deref().unwrap_or("same as this one")) }
                    dt { "Validation" } dd {
                        (badge(match o.validation {
                            crate::app::postrelease::State::Pending => "pending",
                            crate::app::postrelease::State::Running => "running",
                            crate::app::postrelease::State::Passed => "pass",
                            crate::app::postrelease::State::Failed => "fail",
                        }))
                        @if let Some(r) = &o.last_validation {
                            " " span.muted { (when(r.started_at)) " · " (r.trigger) " · " (r.millis) " ms" }
                            ul {
                                @for c in &r.checks {
                                    li {
                                        (badge(if c.passed { "pass" } else { "fail" })) " " (c.name)
                                        @if o.detailed { span.muted { " — " (c.detail) } }
                                    }
                                }
                            }
                            @if o.detailed {
                                @if let Some(d) = &r.evidence_digest {
                                    span.muted { "evidence " (r.id) " " } (short_digest(&d.to_string()))
                                }
                            }
                        } @else {
                            " " span.muted { "not run yet" }
                        }
                    }
                    dt { "Canary runs" } dd {
                        @if o.canaries.is_empty() { span.muted { "none recorded" } }
                        @for h in o.canaries.iter().take(3) { (badge(&h.status)) " " }
                    }
                    dt { "Rollout gate" } dd {
                        @if o.enforced && !o.violations.is_empty() {
                            (badge("blocked")) " open residency violations"
                        } @else {
                            (badge("open"))
                        }
                    }
                }
            }
        }
        h2 { "Executions, failures and denies (last 24 hours)" }
        div.grid {
            @for t in &o.tenants {
                div.card {
                    h3 { (t.display_name.as_deref().unwrap_or(&t.tenant)) " " span.muted { "(" (t.tenant) ")" } }
                    (t.chart)
                    p.help { (t.queued) " queued now" }
                }
            }
        }
        div.grid {
            div.card { h2 { "Queue depth (last hour)" } (o.queue_chart) }
        }
        h2 { "Recent failures" }
        (hits_table(&o.failures, "No failed execution."))
        h2 { "Recent denies" }
        (hits_table(&o.denies, "Nothing denied."))
        h2 { "Residency violations" }
        p.help {
            "What the residency auditor found in receipts, checked against the regions and locations in force now. "
            @if o.enforced { "Enforced: an open violation blocks new runs into its location and the rollout." }
            @else { "Reported only (features.residency_auditor_enforce is off)." }
            " Last audit: "
            (o.auditor.finished_at.map(when).unwrap_or_else(|| "not yet".into()))
            @if !o.auditor.rules_current { " (the rules changed since; a full audit is due)" }
            "."
        }
        (violations_table(&o.violations))
        h2 { "Refused at admission" }
        p.help { "Runs the residency policy (mc.residency) refused at admission: data that would have left the tenant's allowed regions." }
        (hits_table(&o.residency, "Nothing refused for residency."))
    };
    layout("Status", Section::Overview, Some(viewer), body)
}

/// The filters of the executions list.
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    /// Status.
    pub status: String,
    /// Manifest name.
    pub name: String,
    /// Tenant (appliance-wide viewers).
    pub tenant: String,
    /// Tenants the viewer may pick.
    pub tenants: Vec<String>,
    /// Page size.
    pub limit: usize,
}

fn tenant_select(selected: &str, tenants: &[String]) -> Markup {
    html! {
        @if tenants.len() > 1 {
            label { "Tenant"
                select name="tenant" {
                    option value="" selected[selected.is_empty()] { "all" }
                    @for t in tenants { option value=(t) selected[selected == t] { (t) } }
                }
            }
        }
    }
}

/// `/executions`: a page of executions with filters.
pub fn executions(
    viewer: &Viewer,
    items: &[ExecutionSummary],
    f: &ListFilters,
    next: Option<&str>,
) -> Markup {
    let body = html! {
        h1 { "Executions" }
        form.filters method="get" action="/executions" {
            label { "Status"
                select name="status" {
                    option value="" selected[f.status.is_empty()] { "any" }
                    @for s in ExecutionStatus::ALL { option value=(s.as_str()) selected[f.status == s.as_str()] { (s.as_str()) } }
                }
            }
            label { "Manifest name" input type="text" name="name" value=(f.name) placeholder="e.g. nightly-etl"; }
            (tenant_select(&f.tenant, &f.tenants))
            button type="submit" { "Filter" }
        }
        @if items.is_empty() {
            p.muted { "No execution matches." }
        } @else {
            table {
                thead { tr { th { "Execution" } th { "Tenant" } th { "Status" } th { "Manifest" } th { "Region" } th { "Submitted" } th { "Receipt" } } }
                tbody {
                    @for e in items {
                        tr {
                            td { a.mono href={"/executions/" (e.id) (query(&[("tenant", e.tenant.as_str())]))} { (e.id) } @if e.canary { " " span.badge { "canary" } } }
                            td { (e.tenant.as_str()) }
                            td { (badge(e.status.as_str())) }
                            td { (e.name) span.muted { "@" (e.version) } }
                            td { (e.region) }
                            td.muted { (when(e.submitted_at)) }
                            td { @if let Some(d) = &e.receipt_digest { (short_digest(&d.to_string())) } }
                        }
                    }
                }
            }
        }
        div.pager {
            @if let Some(c) = next {
                a href={"/executions" (query(&[("status", &f.status), ("name", &f.name), ("tenant", &f.tenant), ("cursor", c)]))} { "Older →" }
            }
        }
    };
    layout("Executions", Section::Executions, Some(viewer), body)
}

/// The receipt of an execution with its verification.
pub struct ReceiptView {
    /// The receipt file (with a fresh inclusion proof).
    pub bundle: ReceiptBundle,
    /// The offline verification of it against the appliance's keys.
    pub report: Report,
}

/// A decision and its replay through the explain API.
pub struct DecisionView {
    /// The recorded decision.
    pub decision: Decision,
    /// The replay on its pinned bundle, or why it could not run.
    pub replay: Result<std::sync::Arc<Replay>, String>,
}

fn decision_block(d: &DecisionView) -> Markup {
    let dec = &d.decision;
    html! {
        div.card id=(dec.id.as_str()) {
            h3 { (dec.policy) " " (badge(if dec.allow { "allowed" } else { "denied" })) " " span.muted.mono { (dec.id.as_str()) } }
            dl.kv {
                dt { "Kind" } dd { (dec.kind) }
                dt { "Decided" } dd { (when(dec.decided_at)) }
                dt { "Policy bundle" } dd { (short_digest(&dec.policy_digest.to_string())) }
                dt { "Input digest" } dd { (short_digest(&dec.input_digest.to_string())) }
                @if !dec.reasons.is_empty() {
                    dt { "Reasons" } dd { ul { @for r in &dec.reasons { li { code { (r.code) } ": " (r.message) } } } }
                }
            }
            @match &d.replay {
                Ok(r) => {
                    p {
                        "Replayed on its pinned bundle: "
                        @if r.matches_recorded { (badge("pass")) " same outcome" } @else { (badge("fail")) " the replay differs from the record" }
                    }
                    details {
                        summary { "Explanation: " (r.explanation.rules.iter().filter(|x| x.outcome == "fired").count()) " rules fired of " (r.explanation.rules.len()) }
                        table.rules {
                            thead { tr { th { "Rule" } th { "Where" } th { "Outcome" } th { "Value" } } }
                            tbody {
                                @for rule in &r.explanation.rules {
                                    tr {
                                        td.mono { (rule.rule) }
                                        td.mono.muted { (rule.file) ":" (rule.line) }
                                        td { (rule.outcome) }
                                        td { @if let Some(v) = &rule.value { code { (v.to_string().chars().take(300).collect::<String>()) } } }
                                    }
                                }
                            }
                        }
                    }
                }
                Err(e) => { p.error-box { "The decision could not be replayed: " (e) } }
            }
            details { summary { "Input" } (pretty(&dec.input)) }
        }
    }
}

/// `/executions/{id}`: tasks, artifacts, the receipt and its proof, every decision.
pub fn execution(
    viewer: &Viewer,
    e: &Execution,
    receipt: Option<&ReceiptView>,
    decisions: &[DecisionView],
) -> Markup {
    let body = html! {
        h1 { (e.manifest.name) span.muted { "@" (e.manifest.version) } " " (badge(e.status.as_str())) }
        div.grid {
            div.card {
                h2 { "Execution" }
                dl.kv {
                    dt { "Id" } dd.mono { (e.id.as_str()) }
                    dt { "Tenant" } dd { (e.tenant.as_str()) }
                    dt { "Region" } dd { (e.region) }
                    dt { "Submitted by" } dd { (e.submitted_by) }
                    dt { "Submitted" } dd { (when(e.submitted_at)) }
                    @if let Some(t) = e.started_at { dt { "Started" } dd { (when(t)) } }
                    @if let Some(t) = e.finished_at { dt { "Finished" } dd { (when(t)) } }
                    dt { "Manifest digest" } dd { (short_digest(&e.manifest_digest.to_string())) }
                    @if e.canary { dt { "Canary" } dd { "yes (synthetic, kept out of statistics)" } }
                    @if let Some(d) = &e.manifest.description { dt { "Description" } dd { (d) } }
                    @if let Some(err) = &e.error { dt { "Error" } dd { (err) } }
                }
            }
            div.card {
                h2 { "Receipt" }
                @match receipt {
                    Some(r) => {
                        p {
                            @if r.report.valid { (badge("verified")) } @else { (badge("unverified")) }
                            " signature, statement, checkpoint and log inclusion checked now"
                        }
                        dl.kv {
                            dt { "Digest" } dd.digest { (r.report.digest.as_ref().map(|d| d.to_string()).unwrap_or_default()) }
                            dt { "Signed by" } dd { (short_digest(&r.bundle.public_key.keyid)) }
                            dt { "Log index" } dd { (r.bundle.log_entry.log_index) " of " (r.bundle.log_entry.tree_size) }
                            dt { "Root hash" } dd { (short_digest(&r.bundle.log_entry.root_hash)) }
                        }
                        table {
                            thead { tr { th { "Check" } th { "Outcome" } th { "Detail" } } }
                            tbody {
                                @for c in &r.report.checks {
                                    tr {
                                        td { (c.name) }
                                        td { (badge(match c.outcome { Outcome::Pass => "pass", Outcome::Fail => "fail", Outcome::Skipped => "skipped" })) }
                                        td.detail { (c.detail) }
                                    }
                                }
                            }
                        }
                        details {
                            summary { "Inclusion proof (" (r.bundle.log_entry.inclusion_proof.len()) " hashes)" }
                            ol { @for h in &r.bundle.log_entry.inclusion_proof { li.digest { (h) } } }
                            pre { (r.bundle.log_entry.checkpoint) }
                        }
                        p { a href={"/api/v1/executions/" (e.id.as_str()) "/receipt" (query(&[("tenant", e.tenant.as_str())]))} { "Receipt file (JSON, for maestro verify-receipt)" } }
                    }
                    None => {
                        @if e.status.is_final() { p.muted { "No receipt." } } @else { p.muted { "Sealed when the execution finishes." } }
                    }
                }
            }
        }
        h2 { "Tasks" }
        table {
            thead { tr { th { "Task" } th { "Uses" } th { "Status" } th { "Attempts" } th { "Outputs" } } }
            tbody {
                @for t in &e.tasks {
                    tr {
                        td.mono { (t.id) }
                        td.mono { (t.uses) }
                        td { (badge(&enum_name(&t.status))) }
                        td {
                            @for a in &t.attempts {
                                div { "#" (a.number) " " (badge(if a.ok { "pass" } else { "fail" })) " " @if let Some(err) = &a.error { span { (err) } } }
                            }
                        }
                        td { @if !t.outputs.is_empty() { (pretty(&serde_json::Value::Object(t.outputs.clone()))) } }
                    }
                }
            }
        }
        h2 { "Artifacts" }
        @if e.artifacts.is_empty() {
            p.muted { "None." }
        } @else {
            table {
                thead { tr { th { "Name" } th { "Task" } th { "Digest" } th.num { "Size" } th { "Location" } th { "Region" } } }
                tbody {
                    @for a in &e.artifacts {
                        tr {
                            td { (a.name) }
                            td.mono { (a.task) }
                            td { a href={"/search" (query(&[("q", &a.digest.to_string())]))} { (short_digest(&a.digest.to_string())) } }
                            td.num { (a.size) }
                            td { (a.location) }
                            td { (a.region) }
                        }
                    }
                }
            }
        }
        h2 { "Policy decisions" }
        @if decisions.is_empty() { p.muted { "None recorded." } }
        @for d in decisions { (decision_block(d)) }
        details { summary { "Manifest" } (pretty(&serde_json::to_value(&e.manifest).unwrap_or_default())) }
    };
    layout(
        &format!("Execution {}", e.id.as_str()),
        Section::Executions,
        Some(viewer),
        body,
    )
}

/// `/decisions/{id}`: one decision that belongs to no execution (an access decision).
pub fn decision(viewer: &Viewer, d: &DecisionView) -> Markup {
    let body = html! {
        h1 { "Decision" }
        @if let Some(e) = &d.decision.execution {
            p { "Part of execution " a.mono href={"/executions/" (e.as_str()) (query(&[("tenant", d.decision.tenant.as_str())]))} { (e.as_str()) } }
        }
        (decision_block(d))
    };
    layout("Decision", Section::Search, Some(viewer), body)
}

const EXAMPLES: &[(&str, &str)] = &[
    (
        "sha256:9f86d081",
        "a digest or its prefix: artifact, receipt, manifest, decision input",
    ),
    (
        "status:failed task:fetch",
        "failed runs with a task named fetch",
    ),
    (
        "reason:http_host_not_allowed",
        "runs denied for a reason code",
    ),
    ("reason:\"not on the allow-list\"", "words of a deny reason"),
    ("policy:mc.isolation kind:decision", "access decisions"),
    (
        "uses:builtin/http after:2026-11-01",
        "runs using an action since a date",
    ),
];

/// `/search`: the search box, examples, and results.
pub fn search(
    viewer: &Viewer,
    q: &str,
    tenant: &str,
    tenants: &[String],
    results: Option<&Result<Results, String>>,
) -> Markup {
    let body = html! {
        h1 { "Search" }
        form.filters method="get" action="/search" {
            label { "Query" input.q type="search" name="q" value=(q) placeholder="digest, id, status:failed, task:fetch, reason:…, free text" autofocus; }
            (tenant_select(tenant, tenants))
            button type="submit" { "Search" }
        }
        @match results {
            None => {
                h2 { "Examples" }
                table {
                    tbody {
                        @for (ex, what) in EXAMPLES {
                            tr { td { a.mono href={"/search" (query(&[("q", ex)]))} { (ex) } } td.muted { (what) } }
                        }
                    }
                }
                p.help { "Fields: digest, id, status, name, version, task, uses, region, policy, reason, kind, after, before. A leading - excludes. The tenants you see come from your sign-in, never from the query." }
            }
            Some(Err(e)) => { p.error-box { (e) } }
            Some(Ok(r)) => {
                p.muted {
                    @if r.total_exact { (r.total) @if r.total == 1 { " match" } @else { " matches" } }
                    @else { "more than " (r.total) " matches; newest first" }
                }
                (hits_table(&r.hits, "Nothing matches."))
                div.pager {
                    @if let Some(c) = &r.next_cursor {
                        a href={"/search" (query(&[("q", q), ("tenant", tenant), ("cursor", c)]))} { "More →" }
                    }
                }
            }
        }
    };
    layout("Search", Section::Search, Some(viewer), body)
}

/// `/audit`: audit events, oldest first from a position.
pub fn audit(
    viewer: &Viewer,
    events: &[AuditEvent],
    tenant: &str,
    tenants: &[String],
    next: Option<u64>,
) -> Markup {
    let body = html! {
        h1 { "Audit events" }
        form.filters method="get" action="/audit" {
            (tenant_select(tenant, tenants))
            @if tenants.len() > 1 { button type="submit" { "Show" } }
        }
        @if events.is_empty() {
            p.muted { "No event." }
        } @else {
            table {
                thead { tr { th.num { "#" } th { "When" } th { "Event" } th { "Tenant" } th { "Actor" } th { "Route" } th { "Detail" } } }
                tbody {
                    @for ev in events {
                        tr {
                            td.num { (ev.seq) }
                            td.muted { (when(ev.at)) }
                            td { (badge(&enum_name(&ev.kind))) }
                            td { (ev.tenant.as_ref().map(|t| t.as_str()).unwrap_or("—")) @if let Some(a) = &ev.actor_tenant { span.muted { " by " (a.as_str()) } } }
                            td.mono { (ev.actor) }
                            td.mono { (ev.route.as_deref().unwrap_or("")) }
                            td {
                                @if let (Some(d), Some(t)) = (&ev.decision, &ev.tenant) {
                                    a href={"/decisions/" (d.as_str()) (query(&[("tenant", t.as_str())]))} { "decision" } " "
                                }
                                details { summary { "detail" } (pretty(&ev.detail)) }
                            }
                        }
                    }
                }
            }
        }
        div.pager {
            @if let Some(n) = next { a href={"/audit" (query(&[("tenant", tenant), ("after", &n.to_string())]))} { "Newer →" } }
        }
    };
    layout("Audit", Section::Audit, Some(viewer), body)
}

/// `/catalog`: the built-in actions and the embedded workflows.
pub fn catalog(
    viewer: &Viewer,
    actions: &[ActionSpec],
    workflows: &[(String, String)],
    packages: &[CatalogEntry],
) -> Markup {
    let verdict = |v: &Verdict| {
        html! {
            (badge(if v.verified { "verified" } else { "unverified" }))
            " " span.muted { (v.by) " · " (when(v.at)) }
            @if !v.failures.is_empty() {
                details { summary { (v.failures.len()) " failures" } ul { @for f in &v.failures { li { (f) } } } }
            }
        }
    };
    let body = html! {
        h1 { "Catalog" }
        h2 { "Packages and policy bundles" }
        p.help { "Signed releases, verified under the in-toto layout when published and again when installed. Publish with maestro package publish." }
        @if packages.is_empty() {
            p.muted { "Nothing is published yet." }
        } @else {
            table {
                thead { tr { th { "Kind" } th { "Package" } th { "Archive" } th { "Published" } th { "Installed" } } }
                tbody {
                    @for e in packages {
                        tr {
                            td { (e.kind.noun()) }
                            td.mono { (e.name) span.muted { "@" (e.version) } }
                            td { (short_digest(&e.digest.to_string())) }
                            td { (verdict(&e.published)) }
                            td { @if let Some(i) = &e.installed { (verdict(i)) } @else { span.muted { "not installed" } } }
                        }
                    }
                }
            }
        }
        h2 { "Built-in actions" }
        table {
            thead { tr { th { "uses" } th { "What it does" } th { "Inputs" } th { "Outputs" } } }
            tbody {
                @for a in actions {
                    tr {
                        td.mono { (a.name) }
                        td { (a.summary) }
                        td { ul { @for i in a.inputs { li { code { (i.name) } @if i.required { " (required)" } ": " (i.doc) } } } }
                        td { @for o in a.outputs { code { (o) } " " } }
                    }
                }
            }
        }
        h2 { "Workflows" }
        p.help { "Run one with maestro run -w NAME." }
        table {
            thead { tr { th { "Name" } th { "Manifest" } } }
            tbody {
                @for (name, text) in workflows {
                    tr { td.mono { (name) } td { details { summary { "show" } pre { (text) } } } }
                }
            }
        }
    };
    layout("Catalog", Section::Catalog, Some(viewer), body)
}

/// The golden workflows: each one's signed package, whether it is installed, and its last
/// run (with its execution for appliance-wide viewers).
pub fn goldens(viewer: &Viewer, goldens: &[crate::http::golden::GoldenStatus]) -> Markup {
    let red = goldens
        .iter()
        .filter(|g| g.last.as_ref().is_some_and(|r| !r.passed))
        .count();
    let body = html! {
        h1 { "Golden workflows" }
        p.help { "Ten signed workflows, each checked against how it must end. They run from their catalog packages on a schedule (golden.tenant, golden.interval) and with maestro golden run; a red golden is an alert." }
        @if red > 0 { p { (badge("fail")) " " (red) " red" } }
        table {
            thead { tr { th { "Golden" } th { "Package" } th { "Last run" } th { "Status" } th { "When" } th { "Execution" } } }
            tbody {
                @for g in goldens {
                    tr {
                        td.mono { (g.name) }
                        td.mono { (g.package) " " @if g.installed { (badge("verified")) } @else { span.muted { "not installed" } } }
                        @if let Some(r) = &g.last {
                            td {
                                (badge(if r.passed { "pass" } else { "fail" }))
                                @if !r.problems.is_empty() { ul { @for p in &r.problems { li { (p) } } } }
                            }
                            td { @if let Some(s) = r.status { (badge(s.as_str())) } }
                            td { (when(r.at)) span.muted { " · " (r.millis) " ms" } }
                            td.mono {
                                @if let Some(e) = &r.execution {
                                    a href={"/executions/" (e) (query(&[("tenant", r.tenant.as_str())]))} { (e) }
                                }
                            }
                        } @else {
                            td.muted colspan="4" { "never ran" }
                        }
                    }
                }
            }
        }
    };
    layout("Goldens", Section::Goldens, Some(viewer), body)
}

/// A demo identity offered by the local login.
pub struct DemoLogin {
    /// Token name (the login key).
    pub name: String,
    /// Its tenant.
    pub tenant: Option<String>,
    /// Its roles.
    pub roles: Vec<String>,
}

/// `/login`: single sign-on, and in demo mode on a loopback address, the demo identities.
pub fn login(oidc: Option<&str>, demo: &[DemoLogin], next: &str, error: Option<&str>) -> Markup {
    let body = html! {
        div.login {
            div.card {
                h1 { "Sign in" }
                @if let Some(e) = error { p.error-box { (e) } }
                @if let Some(issuer) = oidc {
                    a.button href={"/login/oidc" (query(&[("next", next)]))} { "Sign in with single sign-on" }
                    p.help { "Identity provider: " (issuer) }
                }
                @if !demo.is_empty() {
                    h3 { "Demo identities" }
                    p.help { "Demo mode on a loopback address only." }
                    ul {
                        @for d in demo {
                            li {
                                a href={"/login/demo" (query(&[("as", &d.name), ("next", next)]))} { (d.name) }
                                span.muted { " · " (d.tenant.as_deref().unwrap_or("all tenants")) " · " (d.roles.join(", ")) }
                            }
                        }
                    }
                }
                @if oidc.is_none() && demo.is_empty() {
                    p { "No sign-in is configured. Set [oidc] issuer and client_id in the configuration, or call the console with an API token (Authorization: Bearer)." }
                }
            }
        }
    };
    layout("Sign in", Section::None, None, body)
}

/// An error page.
pub fn error(viewer: Option<&Viewer>, status: u16, title: &str, message: &str) -> Markup {
    let body = html! {
        h1 { (title) }
        p.error-box { (message) }
        p { a href="/" { "Back to the status page" } }
        p.muted { "HTTP " (status) }
    };
    layout(title, Section::None, viewer, body)
}
