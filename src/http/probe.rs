//! The isolation probe: runs the chaos checks against the live appliance through its own
//! router — authentication, the guard, the handlers and the middleware, everything but the
//! socket — with probe identities that exist only while it runs, then assembles the
//! isolation report with the boundaries, attempts and evidence of `app/report.rs`.
//!
//! For every ordered pair of tenants, the attacker's probe names the victim's real objects
//! (an execution, its receipt and proof, a decision and its explanation, the tenant itself in
//! queries, filters and a submission) and, for comparison, missing objects of the same shape.
//! Each attempt must answer exactly like the missing one, carry nothing of the victim, and
//! add one `cross_tenant_denied` audit event and one to `mc_tenant_cross_access_total`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::error::ApiError;
use crate::app::App;
use crate::app::tokens::ProbeToken;
use crate::domain::actor::{Access, Actor, Role, TenantScope};
use crate::domain::audit::{AuditEvent, AuditKind};
use crate::domain::ids::{DecisionId, Digest, ExecutionId, TenantId};
use crate::domain::report::{Attempts, Check, DecisionRef, Evidence, ID_PREFIX, IsolationReport};
use crate::store::ListQuery;

/// Most tenants probed pairwise; above it each tenant is paired with its two neighbours.
const ALL_PAIRS_UP_TO: usize = 8;

/// A tenant's object the probes aim at.
#[derive(Debug, Clone)]
struct Target {
    tenant: TenantId,
    exec: ExecutionId,
    digest: Digest,
    decision: DecisionId,
    manifest: String,
}

/// An answer.
struct Answer {
    status: StatusCode,
    body: Value,
    text: String,
}

/// One attempt of an attacker on a victim, with its missing-object twin.
struct Attempt {
    check: &'static str,
    method: Method,
    /// The matched route, as metrics and audit events name it.
    route: &'static str,
    real: String,
    missing: String,
    /// Whether the attempt names the victim's data, so it must be audited and counted.
    recorded: bool,
}

/// Results of one check, accumulated over pairs.
struct Acc {
    name: String,
    count: u64,
    failures: Vec<String>,
    ok: String,
}

impl Acc {
    fn check(self) -> Check {
        Check {
            passed: self.failures.is_empty(),
            count: self.count,
            detail: if self.failures.is_empty() {
                self.ok
            } else {
                let mut d: Vec<String> = self.failures.iter().take(3).cloned().collect();
                if self.failures.len() > 3 {
                    d.push(format!("{} failures in all", self.failures.len()));
                }
                d.join("; ")
            },
            name: self.name,
        }
    }
}

struct Probe {
    app: Arc<App>,
    router: Router,
    id: String,
    checks: Vec<Acc>,
    attempts: Attempts,
    first_event: Option<u64>,
    last_event: Option<u64>,
    decisions: Vec<DecisionRef>,
}

const YAML: &str = "application/yaml";

fn probe_manifest(region: &str) -> String {
    format!(
        "name: isolation-probe\nversion: \"1.0.0\"\nregion: {region}\ntasks:\n  - id: probe\n    uses: builtin/echo\n    with: {{message: isolation report probe}}\n"
    )
}

/// `body` with every id of `ids` replaced by a placeholder, so two answers about different
/// objects compare equal when they say the same thing.
fn normalized(text: &str, ids: &[&str]) -> String {
    let mut t = text.to_owned();
    for id in ids.iter().filter(|i| !i.is_empty()) {
        t = t.replace(id, "<id>");
    }
    t
}

impl Probe {
    fn acc(&mut self, name: &str, ok: &str) -> &mut Acc {
        if let Some(i) = self.checks.iter().position(|a| a.name == name) {
            return &mut self.checks[i];
        }
        self.checks.push(Acc {
            name: name.into(),
            count: 0,
            failures: Vec::new(),
            ok: ok.into(),
        });
        self.checks.last_mut().expect("just pushed")
    }

    fn record(&mut self, name: &str, ok: &str, failure: Option<String>) {
        let acc = self.acc(name, ok);
        acc.count += 1;
        if let Some(f) = failure {
            acc.failures.push(f);
        }
    }

    async fn send(
        &self,
        token: Option<&str>,
        method: Method,
        uri: &str,
        body: Option<String>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", YAML);
        }
        let Ok(req) = req.body(Body::from(body.unwrap_or_default())) else {
            return Answer {
                status: StatusCode::BAD_REQUEST,
                body: Value::Null,
                text: format!("the probe could not build a request for {uri}"),
            };
        };
        let resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    fn events_after(&self, seq: Option<u64>) -> Result<Vec<AuditEvent>, ApiError> {
        Ok(self.app.engine.store().read()?.audit_all(seq, 100_000)?)
    }

    fn last_seq(&self) -> Result<Option<u64>, ApiError> {
        Ok(self.app.engine.store().read()?.audit_last_seq()?)
    }

    fn note_events(&mut self, events: &[AuditEvent]) {
        for e in events {
            self.first_event.get_or_insert(e.seq);
            self.last_event = Some(e.seq);
        }
    }

    /// The victim's newest execution with a receipt and a decision, or a canary run made by
    /// its own probe when it has none.
    async fn target(&self, tenant: &TenantId, own: &ProbeToken) -> Result<Target, String> {
        if let Some(t) = self.find_target(tenant).map_err(|e| e.to_string())? {
            return Ok(t);
        }
        let settings = self.app.engine.config();
        let region = settings
            .tenants
            .get(tenant)
            .and_then(|s| s.allowed_regions.first())
            .or(settings.regions.first())
            .cloned()
            .unwrap_or_else(|| "local".into());
        let a = self
            .send(
                Some(&own.token),
                Method::POST,
                "/api/v1/executions?canary=true&wait=30s",
                Some(probe_manifest(&region)),
            )
            .await;
        if !a.status.is_success() && a.status != StatusCode::FORBIDDEN {
            return Err(format!(
                "tenant {tenant} holds no execution to probe and a canary run was refused ({}: {})",
                a.status.as_u16(),
                a.body["message"].as_str().unwrap_or(&a.text)
            ));
        }
        self.find_target(tenant)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("tenant {tenant}'s canary run did not finish with a receipt"))
    }

    fn find_target(&self, tenant: &TenantId) -> Result<Option<Target>, crate::store::StoreError> {
        let scope = TenantScope::system(tenant.clone(), Access::Read);
        let r = self.app.engine.store().read()?;
        let page = r.list_executions(
            &scope,
            &ListQuery {
                limit: 50,
                ..ListQuery::default()
            },
        )?;
        for s in page.items {
            let Some(e) = r.execution(&scope, &s.id)? else {
                continue;
            };
            if let (Some(receipt), Some(d)) = (&e.receipt, e.decisions.first()) {
                return Ok(Some(Target {
                    tenant: tenant.clone(),
                    exec: e.id.clone(),
                    digest: receipt.digest,
                    decision: d.id.clone(),
                    manifest: e.manifest.name.clone(),
                }));
            }
        }
        Ok(None)
    }

    /// The attempts of `attacker` on `v`, with the ids each form names (longest first, for
    /// [`normalized`]).
    fn attempts_on(attacker: &TenantId, v: &Target) -> (Vec<Attempt>, Vec<String>, Vec<String>) {
        let mx = ExecutionId::generate();
        let md = DecisionId::generate();
        let mdig = Digest::of(mx.as_str().as_bytes());
        let t = &v.tenant;
        let missing_tenant = format!("{t}-missing-{}", &mx.as_str()[3..9]);
        let mut real_ids = vec![
            v.digest.to_string(),
            v.digest.hex(),
            v.exec.to_string(),
            v.decision.to_string(),
            t.to_string(),
        ];
        let mut missing_ids = vec![
            mdig.to_string(),
            mdig.hex(),
            mx.to_string(),
            md.to_string(),
            missing_tenant.clone(),
        ];
        real_ids.sort_by_key(|s| std::cmp::Reverse(s.len()));
        missing_ids.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let get = |check, route, real: String, missing: String| Attempt {
            check,
            method: Method::GET,
            route,
            real,
            missing,
            recorded: true,
        };
        let attempts = vec![
            get(
                "another tenant's execution by id",
                "/api/v1/executions/{id}",
                format!("/api/v1/executions/{}", v.exec),
                format!("/api/v1/executions/{mx}"),
            ),
            get(
                "another tenant's receipt",
                "/api/v1/executions/{id}/receipt",
                format!("/api/v1/executions/{}/receipt", v.exec),
                format!("/api/v1/executions/{mx}/receipt"),
            ),
            get(
                "another tenant's inclusion proof",
                "/api/v1/executions/{id}/proof",
                format!("/api/v1/executions/{}/proof", v.exec),
                format!("/api/v1/executions/{mx}/proof"),
            ),
            get(
                "another tenant's receipt by digest",
                "/api/v1/receipts/{digest}",
                format!("/api/v1/receipts/{}", v.digest),
                format!("/api/v1/receipts/{mdig}"),
            ),
            get(
                "another tenant's policy decision",
                "/api/v1/decisions/{id}",
                format!("/api/v1/decisions/{}", v.decision),
                format!("/api/v1/decisions/{md}"),
            ),
            get(
                "another tenant's decision explanation",
                "/api/v1/decisions/{id}/explain",
                format!("/api/v1/decisions/{}/explain", v.decision),
                format!("/api/v1/decisions/{md}/explain"),
            ),
            get(
                "another tenant named in a list query",
                "/api/v1/executions",
                format!("/api/v1/executions?tenant={t}"),
                format!("/api/v1/executions?tenant={missing_tenant}"),
            ),
            get(
                "another tenant's manifest name in a filter",
                "/api/v1/executions",
                format!("/api/v1/executions?name={}&tenant={t}", v.manifest),
                format!(
                    "/api/v1/executions?name={}&tenant={missing_tenant}",
                    v.manifest
                ),
            ),
            get(
                "another tenant named on an object",
                "/api/v1/executions/{id}",
                format!("/api/v1/executions/{}?tenant={t}", v.exec),
                format!("/api/v1/executions/{mx}?tenant={missing_tenant}"),
            ),
            get(
                "another tenant named in a search",
                "/api/v1/search",
                format!("/api/v1/search?tenant={t}&q={}", v.digest),
                format!("/api/v1/search?tenant={missing_tenant}&q={mdig}"),
            ),
            get(
                "another tenant's execution on a console page",
                "/executions/{id}",
                format!("/executions/{}", v.exec),
                format!("/executions/{mx}"),
            ),
            get(
                "another tenant's audit log",
                "/api/v1/audit",
                format!("/api/v1/audit?tenant={t}"),
                format!("/api/v1/audit?tenant={missing_tenant}"),
            ),
            Attempt {
                check: "a submission into another tenant",
                method: Method::POST,
                route: "/api/v1/executions",
                real: format!("/api/v1/executions?tenant={t}&canary=true"),
                missing: format!("/api/v1/executions?tenant={missing_tenant}&canary=true"),
                recorded: true,
            },
            Attempt {
                check: "a duplicated tenant parameter",
                method: Method::GET,
                route: "/api/v1/executions",
                real: format!("/api/v1/executions?tenant={attacker}&tenant={t}"),
                missing: format!("/api/v1/executions?tenant={attacker}&tenant={missing_tenant}"),
                recorded: false,
            },
            Attempt {
                check: "path traversal to another tenant's object",
                method: Method::GET,
                route: "/api/v1/executions/{id}",
                real: format!(
                    "/api/v1/executions/..%2F..%2Fapi%2Fv1%2Fexecutions%2F{}",
                    v.exec
                ),
                missing: format!("/api/v1/executions/..%2F..%2Fapi%2Fv1%2Fexecutions%2F{mx}"),
                recorded: false,
            },
        ];
        (attempts, real_ids, missing_ids)
    }

    /// Runs every attempt of `attacker` on `victim`.
    async fn pair(
        &mut self,
        attacker: &ProbeToken,
        victim: &Target,
        region: &str,
    ) -> Result<(), ApiError> {
        let Some(from) = attacker.actor.tenant.clone() else {
            return Ok(());
        };
        let hex = victim.digest.hex();
        let secrets = [victim.exec.as_str(), hex.as_str(), victim.decision.as_str()];
        let (attempts, real_ids, missing_ids) = Self::attempts_on(&from, victim);
        let real_ids: Vec<&str> = real_ids.iter().map(String::as_str).collect();
        let missing_ids: Vec<&str> = missing_ids.iter().map(String::as_str).collect();
        for a in attempts {
            let body = (a.method == Method::POST).then(|| probe_manifest(region));
            let route = format!("{} {}", a.method, a.route);
            let counter = self.app.metrics.cross_tenant_access.with_label_values(&[
                route.as_str(),
                "denied",
                "probe",
            ]);
            let before_count = counter.get();
            let before = self.last_seq()?;
            let real = self
                .send(
                    Some(&attacker.token),
                    a.method.clone(),
                    &a.real,
                    body.clone(),
                )
                .await;
            let events = self.events_after(before)?;
            self.note_events(&events);
            let counted = counter.get() - before_count;
            let audited: Vec<&AuditEvent> = events
                .iter()
                .filter(|e| {
                    e.kind == AuditKind::CrossTenantDenied
                        && e.actor == attacker.actor.subject
                        && e.tenant.as_ref() == Some(&victim.tenant)
                })
                .collect();
            if let Some(d) = audited.iter().find_map(|e| e.decision.clone())
                && self.decisions.len() < 5
            {
                self.decisions.push(DecisionRef {
                    tenant: victim.tenant.clone(),
                    id: d,
                });
            }
            let missing = self
                .send(Some(&attacker.token), a.method.clone(), &a.missing, body)
                .await;
            let pair = format!("{from} -> {}", victim.tenant);
            let mut problems = Vec::new();
            let leaked = real.status.is_success() && a.recorded
                || secrets
                    .iter()
                    .any(|s| real.text.contains(s) && !a.real.contains(s))
                || real
                    .text
                    .contains(&format!("\"tenant\":\"{}\"", victim.tenant));
            if leaked {
                problems.push(format!(
                    "answered {} with the victim's data",
                    real.status.as_u16()
                ));
            }
            let rn = normalized(&real.text, &real_ids);
            let mn = normalized(&missing.text, &missing_ids);
            if real.status != missing.status || rn != mn {
                problems.push(format!(
                    "answered {} ({}) where a missing object answers {} ({}): an existence oracle",
                    real.status.as_u16(),
                    real.body["code"].as_str().unwrap_or("-"),
                    missing.status.as_u16(),
                    missing.body["code"].as_str().unwrap_or("-")
                ));
            }
            if a.recorded {
                self.attempts.probe_attempts += 1;
                self.attempts.probe_audited += audited.len().min(1) as u64;
                self.attempts.probe_counted += counted.min(1);
                if audited.len() != 1 {
                    problems.push(format!(
                        "{} cross_tenant_denied audit events instead of 1",
                        audited.len()
                    ));
                }
                if counted != 1 {
                    problems.push(format!(
                        "mc_tenant_cross_access_total{{route=\"{route}\"}} rose by {counted} instead of 1"
                    ));
                }
            }
            let ok = if a.recorded {
                "answered like a missing object, nothing of the victim's, audited and counted"
            } else {
                "answered like a missing object, nothing of the victim's"
            };
            let failure = (!problems.is_empty())
                .then(|| format!("{pair}: {} {}", a.method, a.real) + ": " + &problems.join(", "));
            self.record(a.check, ok, failure);
        }
        Ok(())
    }

    /// Credentials an attacker could present: none, unknown, malformed, forged.
    async fn credentials(&mut self, tenant: &TenantId) -> Result<(), ApiError> {
        let oidc = &self.app.config.oidc;
        let now = jiff::Timestamp::now().as_second();
        let claims = json!({
            "iss": oidc.issuer.clone().unwrap_or_else(|| "https://issuer.invalid".into()),
            "aud": oidc.audience,
            "sub": "isolation-probe",
            "iat": now,
            "exp": now + 300,
            oidc.tenant_claim.clone(): tenant,
            oidc.roles_claim.clone(): ["admin"],
        });
        let mut tokens: Vec<(&str, Option<String>)> = vec![
            ("no token", None),
            ("an unknown API token", Some(crate::app::tokens::generate())),
            ("a malformed token", Some("not a token %00 ..".into())),
        ];
        tokens.extend(
            crate::app::oidc::forged_tokens(&claims)
                .into_iter()
                .map(|(n, t)| (n, Some(t))),
        );
        let uri = format!("/api/v1/executions?tenant={tenant}");
        for (name, token) in tokens {
            let before = self.last_seq()?;
            let a = self.send(token.as_deref(), Method::GET, &uri, None).await;
            let events = self.events_after(before)?;
            self.note_events(&events);
            let refused = events
                .iter()
                .filter(|e| e.kind == AuditKind::AuthenticationFailed)
                .count();
            let mut problems = Vec::new();
            if a.status != StatusCode::UNAUTHORIZED {
                problems.push(format!("answered {} instead of 401", a.status.as_u16()));
            }
            if a.body.get("items").is_some() {
                problems.push("served a list".into());
            }
            if token.is_some() && refused != 1 {
                problems.push(format!(
                    "{refused} authentication_failed audit events instead of 1"
                ));
            }
            self.record(
                &format!("refused credentials: {name}"),
                if token.is_some() {
                    "401, nothing served, audited as authentication_failed"
                } else {
                    "401, nothing served"
                },
                (!problems.is_empty()).then(|| problems.join(", ")),
            );
        }
        Ok(())
    }

    /// A viewer of `tenant` may not submit: 403, recorded as `access_denied`.
    async fn roles(&mut self, viewer: &ProbeToken, region: &str) -> Result<(), ApiError> {
        let before = self.last_seq()?;
        let a = self
            .send(
                Some(&viewer.token),
                Method::POST,
                "/api/v1/executions?canary=true",
                Some(probe_manifest(region)),
            )
            .await;
        let events = self.events_after(before)?;
        self.note_events(&events);
        let denied = events
            .iter()
            .filter(|e| e.kind == AuditKind::AccessDenied && e.actor == viewer.actor.subject)
            .count();
        let mut problems = Vec::new();
        if a.status != StatusCode::FORBIDDEN {
            problems.push(format!("answered {} instead of 403", a.status.as_u16()));
        }
        if denied != 1 {
            problems.push(format!("{denied} access_denied audit events instead of 1"));
        }
        self.record(
            "a role the actor lacks (viewer submits)",
            "403, recorded as access_denied with its decision",
            (!problems.is_empty()).then(|| problems.join(", ")),
        );
        Ok(())
    }
}

const CONTROL: &str = "control: each tenant's probe reads its own data";
const CONTROL_OK: &str = "every probe read its own tenant's execution, so the targets are real";

/// Ordered (attacker, victim) index pairs to probe.
fn pairs(n: usize, focus: Option<usize>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for a in 0..n {
        for b in 0..n {
            let near = n <= ALL_PAIRS_UP_TO || (b + n - a) % n <= 2 || (a + n - b) % n <= 2;
            let about = focus.is_none_or(|f| a == f || b == f);
            if a != b && near && about {
                out.push((a, b));
            }
        }
    }
    out
}

/// Runs the checks against the live appliance and assembles the report (not archived).
pub async fn isolation_report(
    app: &Arc<App>,
    by: &Actor,
    focus: Option<TenantId>,
) -> Result<IsolationReport, ApiError> {
    let id = format!(
        "{ID_PREFIX}{}",
        ulid::Ulid::generate().to_string().to_ascii_lowercase()
    );
    let tenants = app.tenant_ids();
    let mut probe = Probe {
        app: app.clone(),
        router: super::router::router(app.clone()),
        id,
        checks: Vec::new(),
        attempts: Attempts::default(),
        first_event: None,
        last_event: None,
        decisions: Vec::new(),
    };
    let probes: Vec<ProbeToken> = tenants
        .iter()
        .map(|t| {
            app.tokens.issue_probe(
                &format!("isolation-report/{}/{t}", probe.id),
                Some(t.clone()),
                vec![Role::Operator],
            )
        })
        .collect();
    let region_of = |t: &TenantId| {
        let c = app.engine.config();
        c.tenants
            .get(t)
            .and_then(|s| s.allowed_regions.first())
            .or(c.regions.first())
            .cloned()
            .unwrap_or_else(|| "local".into())
    };
    let focus_index = focus
        .as_ref()
        .and_then(|f| tenants.iter().position(|t| t == f));
    let pairs = pairs(tenants.len(), focus_index);
    // Targets, and the control: each tenant's own probe reads its target.
    let mut targets: Vec<Option<Target>> = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        let involved = pairs.iter().any(|(a, b)| *a == i || *b == i);
        if !involved {
            targets.push(None);
            continue;
        }
        // A report about one tenant writes nothing into the others: a tenant without data
        // is not aimed at (its attempts on the focus still run).
        let outside_focus = focus.as_ref().is_some_and(|f| f != t);
        if outside_focus {
            match probe.find_target(t) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    probe.record(
                        "tenants without data to aim at",
                        "every tenant outside the report's focus that holds no execution was left alone (no canary run is made outside the focus)",
                        None,
                    );
                    targets.push(None);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        match probe.target(t, &probes[i]).await {
            Ok(target) => {
                let a = probe
                    .send(
                        Some(&probes[i].token),
                        Method::GET,
                        &format!("/api/v1/executions/{}", target.exec),
                        None,
                    )
                    .await;
                let seen = a.status == StatusCode::OK && a.body["id"] == target.exec.as_str();
                probe.record(
                    CONTROL,
                    CONTROL_OK,
                    (!seen).then(|| {
                        format!(
                            "tenant {t}'s probe could not read its own execution {} ({})",
                            target.exec,
                            a.status.as_u16()
                        )
                    }),
                );
                targets.push(Some(target));
            }
            Err(e) => {
                probe.record(CONTROL, CONTROL_OK, Some(e));
                targets.push(None);
            }
        }
    }
    if pairs.is_empty() {
        probe.record(
            "tenant pairs to probe",
            "only one tenant is configured: there is no boundary between tenants to probe",
            None,
        );
    }
    for (a, b) in &pairs {
        if let Some(victim) = targets[*b].clone() {
            probe
                .pair(&probes[*a], &victim, &region_of(&victim.tenant))
                .await?;
        }
    }
    let first = focus.clone().or_else(|| tenants.first().cloned());
    if let Some(t) = &first {
        probe.credentials(t).await?;
        let viewer = app.tokens.issue_probe(
            &format!("isolation-report/{}/{t}/viewer", probe.id),
            Some(t.clone()),
            vec![Role::Viewer],
        );
        probe.roles(&viewer, &region_of(t)).await?;
    }
    drop(probes);

    // The store side, off the executor.
    let receipts: Vec<(TenantId, ExecutionId)> = targets
        .iter()
        .flatten()
        .map(|t| (t.tenant.clone(), t.exec.clone()))
        .collect();
    let a2 = app.clone();
    let f2 = focus.clone();
    let (boundaries, summary, (checkpoint, receipts)) = tokio::task::spawn_blocking(move || {
        let b = a2.boundaries(f2.as_ref())?;
        let s = a2.audit_summary(f2.as_ref())?;
        let r = a2.receipt_evidence(&receipts).map_err(ApiError::from)?;
        Ok::<_, ApiError>((b, s, r))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let mut boundaries = boundaries;
    boundaries.push(Check {
        name: "storage: probed receipts are included in the signed checkpoint".into(),
        passed: receipts.iter().all(|r| r.included),
        count: receipts.len() as u64,
        detail: if receipts.iter().all(|r| r.included) {
            format!(
                "{} receipts proven against the checkpoint, whose signature verified",
                receipts.len()
            )
        } else {
            "a receipt's inclusion proof or the checkpoint's signature did not verify".into()
        },
    });
    boundaries.push(Check {
        name: "storage: the audit log's hash chain verifies".into(),
        passed: summary.chain == "verified",
        count: summary.events,
        detail: format!("{} events: {}", summary.events, summary.chain),
    });
    let Probe {
        id,
        checks,
        mut attempts,
        first_event,
        last_event,
        decisions,
        ..
    } = probe;
    attempts.outside = summary.attempts.outside;
    attempts.allowed_reads = summary.attempts.allowed_reads;
    attempts.recent = summary.attempts.recent;
    let checks: Vec<Check> = checks.into_iter().map(Acc::check).collect();
    let passed = checks.iter().chain(&boundaries).all(|c| c.passed);
    Ok(IsolationReport {
        id,
        version: env!("CARGO_PKG_VERSION").into(),
        generated_at: jiff::Timestamp::now(),
        generated_by: by.subject.clone(),
        log_origin: app.engine.signing().origin.clone(),
        scope: focus.clone(),
        tenants: match &focus {
            Some(f) => vec![f.clone()],
            None => tenants,
        },
        passed,
        checks,
        boundaries,
        attempts,
        evidence: Evidence {
            policy_digest: app.engine.policies().digest(),
            audit_events: summary.events,
            audit_head: summary.head,
            audit_chain: summary.chain,
            probe_events: first_event.zip(last_event),
            decisions,
            checkpoint,
            receipts,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_cover_every_ordered_pair_or_the_focus() {
        assert_eq!(pairs(3, None).len(), 6);
        assert_eq!(pairs(3, Some(1)), vec![(0, 1), (1, 0), (1, 2), (2, 1)]);
        assert!(pairs(1, None).is_empty());
        // Many tenants: neighbours only, both ways.
        let many = pairs(20, None);
        assert_eq!(many.len(), 20 * 4);
        assert!(many.contains(&(0, 19)) && many.contains(&(19, 0)));
    }

    #[test]
    fn normalization_makes_answers_about_different_ids_comparable() {
        let a = normalized(r#"{"message":"execution ex_1 not found"}"#, &["ex_1"]);
        let b = normalized(r#"{"message":"execution ex_2 not found"}"#, &["ex_2"]);
        assert_eq!(a, b);
    }
}
