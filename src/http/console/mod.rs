//! The read-only ops console: who is looking (a session cookie, or a bearer token), the
//! guard's scopes for every page that shows tenant data, the data, and the HTML from
//! `pages` (maud; `view` frames it, `chart` draws SVG, `assets` holds the embedded files). Only GET (and HEAD) routes exist here; every other method answers 405.
//! Each page's render time is exported as `mc_console_view_ms{page}`.

pub mod assets;
pub mod chart;
pub mod pages;
#[cfg(test)]
mod tests;
pub mod view;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::Markup;
use serde::Deserialize;

use super::auth::{Caller, bearer, refuse_credentials};
use super::error::ApiError;
use crate::app::App;
use crate::domain::actor::{Access, Actor, TenantScope};
use crate::domain::execution::ExecutionStatus;
use crate::domain::ids::{DecisionId, ExecutionId};
use crate::domain::search::{self, Clause, Hit, Query as SearchQuery, Term};
use crate::store::ListQuery;
use pages::{DecisionView, ListFilters, Overview, ReceiptView, TenantPanel};
use view::{Viewer, query};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "maestro_session";

/// The value of cookie `name` in the request.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

fn viewer_of(actor: &Actor, session: bool) -> Viewer {
    Viewer {
        subject: actor.subject.clone(),
        tenant: actor.tenant.as_ref().map(|t| t.as_str().to_owned()),
        roles: actor.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        session,
    }
}

/// A person (session) or a program (bearer token) looking at the console.
pub struct ConsoleCaller {
    caller: Caller,
    viewer: Viewer,
}

/// An HTML page response.
pub fn html(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        page.into_string(),
    )
        .into_response()
}

/// An error as a page (for people) with the API's status.
pub fn error_page(viewer: Option<&Viewer>, e: &ApiError) -> Response {
    let title = match e.status() {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::BAD_REQUEST => "Bad request",
        StatusCode::UNAUTHORIZED => "Not signed in",
        StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
        _ => "Error",
    };
    html(
        e.status(),
        pages::error(viewer, e.status().as_u16(), title, &e.to_string()),
    )
}

impl FromRequestParts<Arc<App>> for ConsoleCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        if let Some(actor) =
            cookie(&parts.headers, SESSION_COOKIE).and_then(|c| app.sessions.get(c))
        {
            let viewer = viewer_of(&actor, true);
            return Ok(ConsoleCaller {
                caller: Caller::authenticated(actor, parts),
                viewer,
            });
        }
        if parts.headers.contains_key(header::AUTHORIZATION) {
            let route = format!(
                "{} {}",
                parts.method,
                parts
                    .extensions
                    .get::<axum::extract::MatchedPath>()
                    .map_or(parts.uri.path(), |p| p.as_str())
            );
            let actor = match bearer(parts) {
                Ok(token) => app.authenticate(token).await,
                Err(e) => Err(e),
            };
            return match actor {
                Ok(actor) => {
                    let viewer = viewer_of(&actor, false);
                    Ok(ConsoleCaller {
                        caller: Caller::authenticated(actor, parts),
                        viewer,
                    })
                }
                Err(e) => Err(error_page(None, &refuse_credentials(app, &route, e).await)),
            };
        }
        let next = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        Err(Redirect::to(&format!("/login{}", query(&[("next", &next)]))).into_response())
    }
}

fn observe(app: &App, page: &str, started: Instant) {
    app.metrics
        .console_view_ms
        .with_label_values(&[page])
        .observe(started.elapsed().as_secs_f64() * 1000.0);
}

impl ConsoleCaller {
    /// The scopes a page shows: the named tenant's, or every tenant the caller may read.
    async fn scopes(
        &self,
        app: &App,
        named: &str,
        access: Access,
        kind: &str,
    ) -> Result<Vec<TenantScope>, Response> {
        let named = (!named.is_empty()).then_some(named);
        self.caller
            .scopes(app, named, access, kind, None)
            .await
            .map_err(|e| error_page(Some(&self.viewer), &e))
    }

    /// The object `kind`/`id` in a tenant the guard lets the viewer read (the page's
    /// `?tenant=`, the viewer's own, or any for appliance-wide viewers), or the error page.
    async fn locate<T>(
        &self,
        app: &App,
        tenant: &str,
        kind: &str,
        id: &str,
        lookup: impl Fn(&TenantScope) -> Result<Option<T>, crate::store::StoreError>,
    ) -> Result<(TenantScope, T), Response> {
        let named = (!tenant.is_empty()).then_some(tenant);
        self.caller
            .locate(app, named, kind, id, lookup)
            .await
            .map_err(|e| error_page(Some(&self.viewer), &e))
    }

    /// The tenants the viewer may pick from (appliance-wide viewers only).
    fn tenant_choices(&self, app: &App) -> Vec<String> {
        if self.caller.actor.tenant.is_some() {
            return Vec::new();
        }
        app.tenant_ids()
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect()
    }
}

/// Query of pages that may name a tenant.
#[derive(Debug, Default, Deserialize)]
pub struct TenantParam {
    /// The tenant (appliance-wide viewers).
    #[serde(default)]
    pub tenant: String,
}

async fn search_blocking(
    app: &Arc<App>,
    scopes: Vec<TenantScope>,
    q: SearchQuery,
    limit: usize,
) -> Result<Vec<Hit>, ApiError> {
    Ok(super::search::blocking(app, scopes, q, limit, 0)
        .await?
        .hits)
}

fn terms(clauses: Vec<Clause>) -> SearchQuery {
    SearchQuery {
        terms: clauses
            .into_iter()
            .map(|clause| Term {
                clause,
                negated: false,
            })
            .collect(),
    }
}

const HOURS: usize = 24;

/// `GET /`: the status overview.
pub async fn overview(
    State(app): State<Arc<App>>,
    who: ConsoleCaller,
    Query(p): Query<TenantParam>,
) -> Response {
    let started = Instant::now();
    let scopes = match who
        .scopes(&app, &p.tenant, Access::Read, "executions")
        .await
    {
        Ok(s) => s,
        Err(r) => return r,
    };
    let result = overview_data(&app, &scopes, who.caller.actor.tenant.is_none()).await;
    let page = match result {
        Ok(o) => html(StatusCode::OK, pages::overview(&who.viewer, &o)),
        Err(e) => error_page(Some(&who.viewer), &e),
    };
    observe(&app, "overview", started);
    page
}

async fn overview_data(
    app: &Arc<App>,
    scopes: &[TenantScope],
    detailed: bool,
) -> Result<Overview, ApiError> {
    let now = jiff::Timestamp::now();
    let hour = jiff::SignedDuration::from_hours(1);
    // Buckets end at the next full hour, so the last bar is the current hour.
    let end_secs = (now.as_second() / 3600 + 1) * 3600;
    let from =
        jiff::Timestamp::from_second(end_secs - 3600 * HOURS as i64).map_err(ApiError::internal)?;
    let labels: Vec<String> = (0..HOURS)
        .map(|i| (from + hour * i as i32).strftime("%H:00").to_string())
        .collect();
    let depths = app.engine.queue_depths();
    let mut tenants = Vec::new();
    for scope in scopes {
        let index = app.search.clone();
        let scope2 = scope.clone();
        let series = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for status in [
                Some(ExecutionStatus::Succeeded),
                Some(ExecutionStatus::Failed),
                Some(ExecutionStatus::Denied),
                None,
            ] {
                let mut clauses = vec![
                    Clause::Kind(search::DocKind::Execution),
                    Clause::Canary(false),
                ];
                if let Some(s) = status {
                    clauses.push(Clause::Status(s));
                }
                out.push(index.histogram(&scope2, &terms(clauses), from, hour, HOURS)?);
            }
            Ok::<_, crate::search::SearchError>(out)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
        let other: Vec<u64> = (0..HOURS)
            .map(|i| series[3][i].saturating_sub(series[0][i] + series[1][i] + series[2][i]))
            .collect();
        let chart = chart::stacked_bars(
            &format!("Executions of {} per hour", scope.tenant().as_str()),
            &labels,
            &[
                chart::Stack {
                    class: "succeeded",
                    label: "succeeded",
                    values: series[0].clone(),
                },
                chart::Stack {
                    class: "failed",
                    label: "failed",
                    values: series[1].clone(),
                },
                chart::Stack {
                    class: "denied",
                    label: "denied",
                    values: series[2].clone(),
                },
                chart::Stack {
                    class: "other",
                    label: "queued, running or interrupted",
                    values: other,
                },
            ],
            3,
        );
        tenants.push(TenantPanel {
            tenant: scope.tenant().as_str().to_owned(),
            display_name: app
                .config
                .tenants
                .get(scope.tenant().as_str())
                .and_then(|t| t.display_name.clone()),
            queued: depths
                .iter()
                .find(|(t, _)| t == scope.tenant())
                .map_or(0, |(_, d)| *d),
            chart,
        });
    }
    let samples = app.queue_history.samples();
    let queue_labels: Vec<String> = samples
        .iter()
        .map(|s| s.at.strftime("%H:%M").to_string())
        .collect();
    let series: Vec<(String, Vec<u64>)> = scopes
        .iter()
        .map(|scope| {
            (
                scope.tenant().as_str().to_owned(),
                samples
                    .iter()
                    .map(|s| {
                        s.depths
                            .iter()
                            .find(|(t, _)| t == scope.tenant())
                            .map_or(0, |(_, d)| *d as u64)
                    })
                    .collect(),
            )
        })
        .collect();
    let queue_chart = chart::lines("Queued executions", &queue_labels, &series, 30);
    let failures = search_blocking(
        app,
        scopes.to_vec(),
        terms(vec![
            Clause::Status(ExecutionStatus::Failed),
            Clause::Canary(false),
        ]),
        8,
    )
    .await?;
    let denies = search_blocking(
        app,
        scopes.to_vec(),
        terms(vec![Clause::Status(ExecutionStatus::Denied)]),
        8,
    )
    .await?;
    let residency_codes = [
        "region_not_allowed",
        "location_outside_region",
        "location_region_not_allowed",
        "node_outside_region",
        "residency_violation_open",
    ];
    let residency: Vec<Hit> = search_blocking(
        app,
        scopes.to_vec(),
        terms(vec![
            Clause::Status(ExecutionStatus::Denied),
            Clause::Policy("mc.residency".into()),
        ]),
        40,
    )
    .await?
    .into_iter()
    .filter(|h| {
        h.summary
            .as_deref()
            .is_some_and(|s| residency_codes.iter().any(|c| s.starts_with(c)))
    })
    .take(8)
    .collect();
    let canaries =
        search_blocking(app, scopes.to_vec(), terms(vec![Clause::Canary(true)]), 3).await?;
    let state = app.search.state();
    let last = app
        .engine
        .store()
        .read()
        .and_then(|r| r.last_change())
        .map_err(ApiError::internal)?;
    let behind = state.behind(last);
    let mut violations = Vec::new();
    {
        let r = app.engine.store().read().map_err(ApiError::internal)?;
        for scope in scopes {
            violations.extend(r.violations(scope, true).map_err(ApiError::internal)?);
        }
    }
    violations.sort_by(|a, b| b.found_at.cmp(&a.found_at).then(a.id.cmp(&b.id)));
    Ok(Overview {
        violations,
        auditor: app.engine.residency_state().map_err(ApiError::internal)?,
        enforced: app.engine.residency_enforced(),
        tenants,
        queue_chart,
        failures,
        denies,
        residency,
        checkpoint: app
            .engine
            .evidence()
            .latest_checkpoint()
            .map_err(ApiError::internal)?,
        version: env!("CARGO_PKG_VERSION").into(),
        previous_version: app.previous_version.clone(),
        canaries,
        validation: app.postrelease.state(),
        last_validation: app.last_post_release()?,
        detailed,
        started_at: app.started_at,
        index: (state.documents, behind),
    })
}

/// Query of `/executions`.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    status: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    cursor: String,
}

/// Executions shown per page.
pub const PAGE: usize = 50;

/// `GET /executions`
pub async fn executions(
    State(app): State<Arc<App>>,
    who: ConsoleCaller,
    Query(p): Query<ListParams>,
) -> Response {
    let started = Instant::now();
    let scopes = match who
        .scopes(&app, &p.tenant, Access::Read, "executions")
        .await
    {
        Ok(s) => s,
        Err(r) => return r,
    };
    let result = (|| {
        let status = match p.status.as_str() {
            "" => None,
            s => Some(ExecutionStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "status {s:?} is not one of {}",
                    ExecutionStatus::ALL.map(|s| s.as_str()).join(", ")
                ))
            })?),
        };
        let after = match p.cursor.as_str() {
            "" => None,
            c => Some(
                ExecutionId::new(c)
                    .map_err(|_| ApiError::bad_request("the cursor is not an execution id"))?,
            ),
        };
        let q = ListQuery {
            status,
            name: (!p.name.is_empty()).then(|| p.name.clone()),
            canary: None,
            after,
            limit: PAGE,
        };
        let reader = app.engine.store().read().map_err(ApiError::internal)?;
        // Several tenants: each one's newest page, merged newest first (ids sort by time).
        let mut items = Vec::new();
        let mut more = false;
        for scope in &scopes {
            let page = reader
                .list_executions(scope, &q)
                .map_err(ApiError::internal)?;
            more |= page.next_cursor.is_some();
            items.extend(page.items);
        }
        items.sort_by(|a, b| b.id.as_str().cmp(a.id.as_str()));
        if items.len() > PAGE {
            items.truncate(PAGE);
            more = true;
        }
        let next = more
            .then(|| items.last().map(|e| e.id.as_str().to_owned()))
            .flatten();
        Ok::<_, ApiError>((items, next))
    })();
    let page = match result {
        Ok((items, next)) => {
            let filters = ListFilters {
                status: p.status.clone(),
                name: p.name.clone(),
                tenant: p.tenant.clone(),
                tenants: who.tenant_choices(&app),
                limit: PAGE,
            };
            html(
                StatusCode::OK,
                pages::executions(&who.viewer, &items, &filters, next.as_deref()),
            )
        }
        Err(e) => error_page(Some(&who.viewer), &e),
    };
    observe(&app, "executions", started);
    page
}

fn decision_view(app: &App, decision: crate::domain::execution::Decision) -> DecisionView {
    let replay = app.replay_cached(&decision).map_err(|e| e.to_string());
    DecisionView { decision, replay }
}

/// `GET /executions/{id}`
pub async fn execution(
    State(app): State<Arc<App>>,
    who: ConsoleCaller,
    Path(id): Path<String>,
    Query(p): Query<TenantParam>,
) -> Response {
    let started = Instant::now();
    let store = app.engine.store();
    let found = who
        .locate(&app, &p.tenant, "executions", &id, |scope| {
            let Ok(id) = ExecutionId::new(&id) else {
                return Ok(None);
            };
            store.read().and_then(|r| r.execution(scope, &id))
        })
        .await;
    let page = match found {
        Ok((scope, e)) => {
            let receipt = match app.engine.evidence().receipt_bundle(&scope, &e.id) {
                Ok(Some(bundle)) => {
                    let bytes = serde_json::to_vec(&bundle).unwrap_or_default();
                    let report = crate::attest::receipt::verify(&bytes, &app.trust());
                    Some(ReceiptView { bundle, report })
                }
                _ => None,
            };
            let decisions: Vec<DecisionView> = e
                .decisions
                .iter()
                .cloned()
                .map(|d| decision_view(&app, d))
                .collect();
            html(
                StatusCode::OK,
                pages::execution(&who.viewer, &e, receipt.as_ref(), &decisions),
            )
        }
        Err(r) => r,
    };
    observe(&app, "execution", started);
    page
}

/// `GET /decisions/{id}`
pub async fn decision(
    State(app): State<Arc<App>>,
    who: ConsoleCaller,
    Path(id): Path<String>,
    Query(p): Query<TenantParam>,
) -> Response {
    let started = Instant::now();
    let store = app.engine.store();
    let found = who
        .locate(&app, &p.tenant, "decisions", &id, |scope| {
            let Ok(id) = DecisionId::new(&id) else {
                return Ok(None);
            };
            store.read().and_then(|r| r.decision(scope, &id))
        })
        .await;
    let page = match found {
        Ok((_, d)) => html(
            StatusCode::OK,
            pages::decision(&who.viewer, &decision_view(&app, d)),
        ),
        Err(r) => r,
    };
    observe(&app, "decision", started);
    page
}

/// Query of `/search`.
#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    cursor: String,
}

/// `GET /search`
pub async fn search_page(
    State(app): State<Arc<App>>,
    who: ConsoleCaller,
    Query(p): Query<SearchParams>,
) -> Response {
    let started = Instant::now();
    let scopes = match who.scopes(&app, &p.tenant, Access::Read, "search").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let results = match &p.q {
        None => None,
        Some(q) => Some(
            super::search::run(&app, scopes, q, 25, Some(p.cursor.as_str()))
                .await
                .map_err(|e| e.to_string()),
        ),
    };
    let page = html(
        if matches!(results, Some(Err(_))) {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        pages::search(
            &who.viewer,
            p.q.as_deref().unwrap_or(""),
            &p.tenant,
            &who.tenant_choices(&app),
            results.as_ref(),
        ),
    );
    observe(&app, "search", started);
    page
}

/// Query of `/audit`.
#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    after: Option<u64>,
}

/// Audit events per page.
const AUDIT_PAGE: usize = 100;

/// `GET /audit`
pub async fn audit_page(
    State(app): State<Arc<App>>,
    who: ConsoleCaller,
    Query(p): Query<AuditParams>,
) -> Response {
    let started = Instant::now();
    let all = p.tenant.is_empty() && who.caller.actor.tenant.is_none();
    let result = async {
        let reader = app.engine.store().read().map_err(ApiError::internal)?;
        if all {
            who.caller.appliance(&app, Access::Audit, "audit").await?;
            reader
                .audit_all(p.after, AUDIT_PAGE)
                .map_err(ApiError::internal)
        } else {
            let named = (!p.tenant.is_empty()).then_some(p.tenant.as_str());
            let scope = who
                .caller
                .scope(&app, named, Access::Audit, "audit", None)
                .await?;
            reader
                .audit_of(&scope, p.after, AUDIT_PAGE)
                .map_err(ApiError::internal)
        }
    }
    .await;
    let page = match result {
        Ok(events) => {
            let next = (events.len() == AUDIT_PAGE)
                .then(|| events.last().map(|e| e.seq))
                .flatten();
            html(
                StatusCode::OK,
                pages::audit(
                    &who.viewer,
                    &events,
                    &p.tenant,
                    &who.tenant_choices(&app),
                    next,
                ),
            )
        }
        Err(e) => error_page(Some(&who.viewer), &e),
    };
    observe(&app, "audit", started);
    page
}

/// `GET /catalog`
pub async fn catalog(
    State(app): State<Arc<App>>,
    who: ConsoleCaller,
    Query(p): Query<TenantParam>,
) -> Response {
    let started = Instant::now();
    if let Err(r) = who.scopes(&app, &p.tenant, Access::Read, "catalog").await {
        return r;
    }
    let workflows: Vec<(String, String)> = crate::app::workflows::names()
        .into_iter()
        .filter_map(|n| crate::app::workflows::get(&n).map(|t| (n, t)))
        .collect();
    let packages = match app.catalog() {
        Ok(p) => p,
        Err(e) => return error_page(Some(&who.viewer), &e.into()),
    };
    let page = html(
        StatusCode::OK,
        pages::catalog(
            &who.viewer,
            crate::domain::actions::BUILTINS,
            &workflows,
            &packages,
        ),
    );
    observe(&app, "catalog", started);
    page
}

/// `GET /goldens`
pub async fn goldens(
    State(app): State<Arc<App>>,
    who: ConsoleCaller,
    Query(p): Query<TenantParam>,
) -> Response {
    let started = Instant::now();
    if let Err(r) = who.scopes(&app, &p.tenant, Access::Read, "catalog").await {
        return r;
    }
    let goldens = match crate::http::golden::statuses(&app, who.caller.actor.tenant.is_none()) {
        Ok(g) => g,
        Err(e) => return error_page(Some(&who.viewer), &e),
    };
    let page = html(StatusCode::OK, pages::goldens(&who.viewer, &goldens));
    observe(&app, "goldens", started);
    page
}

/// `GET /assets/{name}`: embedded static files, cached for good (their URLs carry a digest).
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(a) = assets::get(&name) else {
        return ApiError::not_found(format!("no asset {name:?}")).into_response();
    };
    let etag = HeaderValue::from_str(&a.etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    if headers.get(header::IF_NONE_MATCH) == Some(&etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(a.media_type)),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache),
        ],
        a.bytes.into_owned(),
    )
        .into_response()
}
