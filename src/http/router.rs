//! Every route in one table. The router, the OpenAPI document and the route tests are all
//! built from [`routes`], so a route cannot exist without its description, its auth rule
//! and its place in the isolation tests.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

use super::auth::GuardMark;
use super::error::{ApiError, ErrorBody};
use super::{
    audit, backup, catalog, console, disclosure, executions, golden, log, login, meta, postrelease,
    reports, residency, search,
};
use crate::app::App;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone: holds no tenant data.
    Public,
    /// A bearer token; tenant data goes through a tenant scope.
    Token,
    /// A bearer token; appliance-wide data every tenant shares (the package catalog). The
    /// guard is asked with no subject tenant; reads are open to every reader role, writes
    /// to appliance-wide administrators.
    Shared,
    /// A bearer token; appliance-wide data only appliance-wide actors read (post-release
    /// validation). The guard is asked with no subject tenant; tenant actors are refused.
    Appliance,
    /// A console page: a session cookie or a bearer token; tenant data goes through a tenant
    /// scope. HTML, not part of the OpenAPI document.
    Console,
    /// A public console page (sign-in, static files). HTML, not part of the OpenAPI document.
    Page,
}

/// A parameter of a route.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Name.
    pub name: &'static str,
    /// `path` or `query`.
    pub location: &'static str,
    /// Whether it must be given.
    pub required: bool,
    /// JSON type: `string`, `integer`, `boolean`.
    pub kind: &'static str,
    /// Description.
    pub description: &'static str,
}

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// A response of a route.
#[derive(Clone, Copy)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Description.
    pub description: &'static str,
    /// Media type and body schema, if any.
    pub body: Option<(&'static str, SchemaFn)>,
}

/// One route.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path, with `{param}` segments.
    pub path: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Who may call it.
    pub auth: Auth,
    /// Parameters.
    pub params: &'static [Param],
    /// Request body media types and schema.
    pub request: Option<(&'static [&'static str], SchemaFn)>,
    /// Responses.
    pub responses: Vec<Resp>,
    /// The handler.
    pub handler: MethodRouter<Arc<App>>,
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

fn binary_schema(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({"type": "string", "format": "binary"})
}

fn text_schema(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({"type": "string"})
}

const JSON: &str = "application/json";

fn ok<T: JsonSchema>(description: &'static str) -> Resp {
    Resp {
        status: 200,
        description,
        body: Some((JSON, schema::<T>)),
    }
}

fn error(status: u16, description: &'static str) -> Resp {
    Resp {
        status,
        description,
        body: Some((JSON, schema::<ErrorBody>)),
    }
}

const ID: Param = Param {
    name: "id",
    location: "path",
    required: true,
    kind: "string",
    description: "Execution id (ex_…)",
};
const CATALOG_ENTRY: &[Param] = &[
    Param {
        name: "kind",
        location: "path",
        required: true,
        kind: "string",
        description: "workflow-package or policy-bundle",
    },
    Param {
        name: "name",
        location: "path",
        required: true,
        kind: "string",
        description: "Package name",
    },
    Param {
        name: "version",
        location: "path",
        required: true,
        kind: "string",
        description: "Version",
    },
];
const DECISION: Param = Param {
    name: "id",
    location: "path",
    required: true,
    kind: "string",
    description: "Decision id (dc_…)",
};
const TENANT: Param = Param {
    name: "tenant",
    location: "query",
    required: false,
    kind: "string",
    description: "Tenant, for tokens not bound to one",
};
const REGION: Param = Param {
    name: "region",
    location: "query",
    required: true,
    kind: "string",
    description: "A declared region (or an alias of one)",
};
const ARTIFACTS: Param = Param {
    name: "artifacts",
    location: "query",
    required: false,
    kind: "boolean",
    description: "Include artifact bytes, not only their metadata (default false)",
};
const EXPLAIN: Param = Param {
    name: "explain",
    location: "query",
    required: false,
    kind: "string",
    description: "Decisions explained rule by rule: denies (default) or all",
};

fn disclosure_responses() -> Vec<Resp> {
    let mut r = vec![
        Resp {
            status: 200,
            description: "The pack (tar.gz); its SHA-256 in X-Maestro-Pack-Sha256",
            body: Some((crate::domain::disclosure::MEDIA_TYPE, text_schema)),
        },
        error(400, "The region is missing or not declared"),
        error(409, "The execution is not final, or not in the region"),
    ];
    r.extend(token_errors());
    r
}

const FORMAT: Param = Param {
    name: "format",
    location: "query",
    required: false,
    kind: "string",
    description: "maestro (default) or sigstore",
};

fn token_errors() -> [Resp; 2] {
    [
        error(401, "Missing or invalid token"),
        error(404, "Not found (also for other tenants' objects)"),
    ]
}

fn page(
    path: &'static str,
    summary: &'static str,
    auth: Auth,
    handler: MethodRouter<Arc<App>>,
) -> Route {
    Route {
        method: Method::GET,
        path,
        summary,
        auth,
        params: &[],
        request: None,
        responses: vec![Resp {
            status: 200,
            description: "An HTML page",
            body: Some(("text/html", text_schema)),
        }],
        handler,
    }
}

/// The console's pages (read-only: GET only).
fn console_routes() -> Vec<Route> {
    vec![
        page(
            "/",
            "Status overview",
            Auth::Console,
            get(console::overview),
        ),
        page(
            "/executions",
            "Executions, with filters",
            Auth::Console,
            get(console::executions),
        ),
        page(
            "/executions/{id}",
            "One execution: tasks, artifacts, receipt, decisions",
            Auth::Console,
            get(console::execution),
        ),
        page(
            "/decisions/{id}",
            "One decision and its explanation",
            Auth::Console,
            get(console::decision),
        ),
        page(
            "/search",
            "Search by digest, task, deny reason, free text",
            Auth::Console,
            get(console::search_page),
        ),
        page(
            "/audit",
            "Audit events",
            Auth::Console,
            get(console::audit_page),
        ),
        page(
            "/catalog",
            "Built-in actions and workflows",
            Auth::Console,
            get(console::catalog),
        ),
        page(
            "/goldens",
            "The golden workflows and the last run of each",
            Auth::Console,
            get(console::goldens),
        ),
        page(
            "/assets/{name}",
            "Embedded stylesheet and icon",
            Auth::Page,
            get(console::asset),
        ),
        page("/login", "Sign-in page", Auth::Page, get(login::login)),
        page(
            "/login/oidc",
            "Starts single sign-on (authorization code + PKCE)",
            Auth::Page,
            get(login::login_oidc),
        ),
        page(
            "/login/demo",
            "Local login with a demo identity (demo mode on loopback only)",
            Auth::Page,
            get(login::login_demo),
        ),
        page(
            "/auth/callback",
            "Single sign-on callback",
            Auth::Page,
            get(login::callback),
        ),
        page(
            "/logout",
            "Ends the console session",
            Auth::Page,
            get(login::logout),
        ),
    ]
}

/// Every route: the API and the console.
pub fn routes() -> Vec<Route> {
    let mut all = api_routes();
    all.extend(console_routes());
    all
}

/// Every route of the API.
fn api_routes() -> Vec<Route> {
    vec![
        Route {
            method: Method::POST,
            path: "/api/v1/executions",
            summary: "Submit an execution (JSON with a manifest or workflow name, or a YAML manifest)",
            auth: Auth::Token,
            params: &[
                Param {
                    name: "wait",
                    location: "query",
                    required: false,
                    kind: "string",
                    description: "Wait up to this long for the result, e.g. 30s (max 5m)",
                },
                TENANT,
                Param {
                    name: "canary",
                    location: "query",
                    required: false,
                    kind: "boolean",
                    description: "Synthetic run (YAML bodies)",
                },
            ],
            request: Some((
                &["application/json", "application/yaml"],
                schema::<executions::SubmitRequest>,
            )),
            responses: vec![
                Resp {
                    status: 201,
                    description: "Finished within the wait",
                    body: Some((JSON, schema::<crate::domain::execution::Execution>)),
                },
                Resp {
                    status: 202,
                    description: "Accepted (durable) and queued",
                    body: Some((JSON, schema::<crate::domain::execution::Execution>)),
                },
                error(400, "Invalid manifest (every problem listed) or request"),
                error(401, "Missing or invalid token"),
                error(
                    403,
                    "Denied by admission policy (recorded with a receipt), or role missing",
                ),
                error(404, "Tenant or workflow not found"),
                error(413, "Body too large"),
                error(415, "Unsupported content type"),
                error(429, "Rate limit or queue bound exceeded; see Retry-After"),
                error(503, "Not recorded (storage) or shutting down"),
            ],
            handler: post(executions::submit),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/executions",
            summary: "List executions, newest first, with filters and cursor pagination",
            auth: Auth::Token,
            params: &[
                Param {
                    name: "status",
                    location: "query",
                    required: false,
                    kind: "string",
                    description: "queued, running, succeeded, failed, denied, interrupted",
                },
                Param {
                    name: "name",
                    location: "query",
                    required: false,
                    kind: "string",
                    description: "Manifest name",
                },
                Param {
                    name: "canary",
                    location: "query",
                    required: false,
                    kind: "boolean",
                    description: "Only canary or only regular runs",
                },
                Param {
                    name: "limit",
                    location: "query",
                    required: false,
                    kind: "integer",
                    description: "Page size, 1-1000 (default 50)",
                },
                Param {
                    name: "cursor",
                    location: "query",
                    required: false,
                    kind: "string",
                    description: "next_cursor of the previous page",
                },
                TENANT,
            ],
            request: None,
            responses: {
                let mut r = vec![
                    ok::<executions::ExecutionList>("A page of executions"),
                    error(400, "Bad filter or cursor"),
                ];
                r.extend(token_errors());
                r
            },
            handler: get(executions::list),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/executions/{id}",
            summary: "One execution: tasks, attempts, artifacts, decisions, receipt reference",
            auth: Auth::Token,
            params: &[ID, TENANT],
            request: None,
            responses: {
                let mut r = vec![ok::<crate::domain::execution::Execution>("The execution")];
                r.extend(token_errors());
                r
            },
            handler: get(executions::get),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/executions/{id}/receipt",
            summary: "The execution's receipt with a fresh inclusion proof, or a Sigstore bundle",
            auth: Auth::Token,
            params: &[ID, FORMAT, TENANT],
            request: None,
            responses: {
                let mut r = vec![Resp {
                    status: 200,
                    description: "Receipt file (application/vnd.maestro.receipt.v1+json) or Sigstore bundle v0.3",
                    body: Some((
                        crate::attest::receipt::MEDIA_TYPE,
                        schema::<crate::attest::receipt::ReceiptBundle>,
                    )),
                }];
                r.extend(token_errors());
                r
            },
            handler: get(executions::receipt),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/disclosure",
            summary: "The tenant's disclosure pack for one region: a deterministic, signed tar.gz",
            auth: Auth::Token,
            params: &[REGION, TENANT, ARTIFACTS, EXPLAIN],
            request: None,
            responses: disclosure_responses(),
            handler: get(disclosure::tenant_pack),
        },
        Route {
            method: Method::GET,
            path: "/api/disclosure",
            summary: "The tenant's disclosure pack for one region (the same as /api/v1/disclosure)",
            auth: Auth::Token,
            params: &[REGION, TENANT, ARTIFACTS, EXPLAIN],
            request: None,
            responses: disclosure_responses(),
            handler: get(disclosure::tenant_pack),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/executions/{id}/disclosure",
            summary: "One execution's disclosure pack for one region",
            auth: Auth::Token,
            params: &[ID, REGION, TENANT, ARTIFACTS, EXPLAIN],
            request: None,
            responses: disclosure_responses(),
            handler: get(disclosure::execution_pack),
        },
        Route {
            method: Method::GET,
            path: "/api/executions/{id}/disclosure",
            summary: "One execution's disclosure pack (the same as /api/v1/executions/{id}/disclosure)",
            auth: Auth::Token,
            params: &[ID, REGION, TENANT, ARTIFACTS, EXPLAIN],
            request: None,
            responses: disclosure_responses(),
            handler: get(disclosure::execution_pack),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/executions/{id}/proof",
            summary: "Inclusion proof of the execution's receipt in the transparency log",
            auth: Auth::Token,
            params: &[
                ID,
                Param {
                    name: "tree_size",
                    location: "query",
                    required: false,
                    kind: "integer",
                    description: "A signed tree size above the leaf (default: latest)",
                },
                TENANT,
            ],
            request: None,
            responses: {
                let mut r = vec![
                    ok::<crate::engine::evidence::InclusionProof>("The proof and its checkpoint"),
                    error(400, "No checkpoint at that size"),
                ];
                r.extend(token_errors());
                r
            },
            handler: get(executions::proof),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/receipts/{digest}",
            summary: "A receipt by its digest (sha256:…)",
            auth: Auth::Token,
            params: &[
                Param {
                    name: "digest",
                    location: "path",
                    required: true,
                    kind: "string",
                    description: "Receipt digest, sha256:<hex>",
                },
                FORMAT,
                TENANT,
            ],
            request: None,
            responses: {
                let mut r = vec![Resp {
                    status: 200,
                    description: "Receipt file or Sigstore bundle",
                    body: Some((
                        crate::attest::receipt::MEDIA_TYPE,
                        schema::<crate::attest::receipt::ReceiptBundle>,
                    )),
                }];
                r.extend(token_errors());
                r
            },
            handler: get(executions::receipt_by_digest),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/search",
            summary: "Searches executions, receipts and decisions by digest (full or prefix), id, status, name, task, uses, policy, deny reason, region, time or free text",
            auth: Auth::Token,
            params: &[
                Param {
                    name: "q",
                    location: "query",
                    required: false,
                    kind: "string",
                    description: "The query, e.g. sha256:9f86d081, status:failed task:fetch, reason:http_host_not_allowed (docs/search.md)",
                },
                Param {
                    name: "limit",
                    location: "query",
                    required: false,
                    kind: "integer",
                    description: "Page size, 1-100 (default 20)",
                },
                Param {
                    name: "cursor",
                    location: "query",
                    required: false,
                    kind: "string",
                    description: "next_cursor of the previous page",
                },
                Param {
                    name: "tenant",
                    location: "query",
                    required: false,
                    kind: "string",
                    description: "Tenant, for tokens not bound to one (default: every tenant the token may read)",
                },
            ],
            request: None,
            responses: {
                let mut r = vec![
                    ok::<crate::domain::search::Results>("A page of hits, newest first"),
                    error(
                        400,
                        "The query is not valid (the message gives the column and the reason), or a bad limit or cursor",
                    ),
                ];
                r.extend(token_errors());
                r
            },
            handler: get(search::search),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/decisions/{id}",
            summary: "A recorded policy decision: policy, pinned bundle digest, input, outcome",
            auth: Auth::Token,
            params: &[DECISION, TENANT],
            request: None,
            responses: {
                let mut r = vec![ok::<crate::domain::execution::Decision>("The decision")];
                r.extend(token_errors());
                r
            },
            handler: get(audit::get),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/decisions/{id}/explain",
            summary: "Replays a decision on its pinned policy bundle: which rules fired and why",
            auth: Auth::Token,
            params: &[DECISION, TENANT],
            request: None,
            responses: {
                let mut r = vec![
                    ok::<crate::app::replay::Replay>("The replay and its explanation"),
                    error(409, "The pinned bundle cannot be loaded"),
                ];
                r.extend(token_errors());
                r
            },
            handler: get(audit::explain),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/audit",
            summary: "Audit events, oldest first (a tenant's; every event for appliance-wide admins)",
            auth: Auth::Token,
            params: &[
                Param {
                    name: "after",
                    location: "query",
                    required: false,
                    kind: "integer",
                    description: "Only events after this sequence number (next_after of the previous page)",
                },
                Param {
                    name: "limit",
                    location: "query",
                    required: false,
                    kind: "integer",
                    description: "Page size, 1-1000 (default 100)",
                },
                TENANT,
            ],
            request: None,
            responses: {
                let mut r = vec![
                    ok::<audit::AuditPage>("A page of events"),
                    error(400, "Bad paging"),
                    error(403, "The token's roles do not grant reading the audit log"),
                ];
                r.extend(token_errors());
                r
            },
            handler: get(audit::list),
        },
        Route {
            method: Method::POST,
            path: "/api/v1/reports/isolation",
            summary: "Runs the tenant isolation checks against the live appliance and archives the signed report",
            auth: Auth::Token,
            params: &[TENANT],
            request: None,
            responses: {
                let mut r = vec![
                    Resp {
                        status: 201,
                        description: "The report, its digest and its DSSE envelope (archived)",
                        body: Some((JSON, schema::<crate::app::report::ArchivedReport>)),
                    },
                    error(403, "The token's roles do not grant auditing"),
                    error(503, "The report could not be archived"),
                ];
                r.extend(token_errors());
                r
            },
            handler: post(reports::create),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/reports/isolation/{id}",
            summary: "An archived isolation report, its signature checked",
            auth: Auth::Token,
            params: &[
                Param {
                    name: "id",
                    location: "path",
                    required: true,
                    kind: "string",
                    description: "Report id (ir_…)",
                },
                TENANT,
            ],
            request: None,
            responses: {
                let mut r = vec![ok::<crate::app::report::ArchivedReport>(
                    "The archived report",
                )];
                r.extend(token_errors());
                r
            },
            handler: get(reports::get),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/residency/violations",
            summary: "Residency violations found by the auditor, with its state",
            auth: Auth::Token,
            params: &[
                TENANT,
                Param {
                    name: "status",
                    location: "query",
                    required: false,
                    kind: "string",
                    description: "open (default), resolved or all",
                },
            ],
            request: None,
            responses: {
                let mut r = vec![
                    ok::<residency::ViolationList>("The violations"),
                    error(400, "Unknown status"),
                ];
                r.extend(token_errors());
                r
            },
            handler: get(residency::list),
        },
        Route {
            method: Method::POST,
            path: "/api/v1/residency/audit",
            summary: "Runs the residency auditor now over every tenant's receipts; answers with the counts the caller may see",
            auth: Auth::Token,
            params: &[
                Param {
                    name: "full",
                    location: "query",
                    required: false,
                    kind: "boolean",
                    description: "Check every receipt, not only those since the last audit",
                },
                TENANT,
            ],
            request: None,
            responses: {
                let mut r = vec![
                    ok::<crate::engine::residency::AuditOutcome>("What the audit did"),
                    error(403, "The token's roles do not grant auditing"),
                ];
                r.extend(token_errors());
                r
            },
            handler: post(residency::audit),
        },
        Route {
            method: Method::POST,
            path: "/api/v1/residency/violations/{id}/resolve",
            summary: "Resolves a residency violation by hand (audited); it stops blocking runs",
            auth: Auth::Token,
            params: &[
                Param {
                    name: "id",
                    location: "path",
                    required: true,
                    kind: "string",
                    description: "Violation id",
                },
                TENANT,
            ],
            request: Some((&["application/json"], schema::<residency::ResolveRequest>)),
            responses: {
                let mut r = vec![
                    ok::<crate::domain::residency::Violation>("The resolved violation"),
                    error(400, "No reason given"),
                    error(403, "The token's roles do not grant auditing"),
                    error(409, "Resolved already"),
                ];
                r.extend(token_errors());
                r
            },
            handler: post(residency::resolve),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/catalog",
            summary: "The package catalog: workflow packages and policy bundles with their verification verdicts",
            auth: Auth::Shared,
            params: &[
                Param {
                    name: "kind",
                    location: "query",
                    required: false,
                    kind: "string",
                    description: "workflow-package or policy-bundle",
                },
                Param {
                    name: "name",
                    location: "query",
                    required: false,
                    kind: "string",
                    description: "Package name",
                },
            ],
            request: None,
            responses: {
                let mut r = vec![
                    ok::<catalog::CatalogList>("The entries, by kind, name and version"),
                    error(403, "The token's roles do not grant reading"),
                ];
                r.extend(token_errors());
                r
            },
            handler: get(catalog::list),
        },
        Route {
            method: Method::POST,
            path: "/api/v1/catalog",
            summary: "Publishes a signed release (a tar.gz of its directory: archive, links, provenance, Sigstore bundle) after verifying its supply chain",
            auth: Auth::Shared,
            params: &[],
            request: Some((&["application/gzip"], binary_schema)),
            responses: {
                let mut r = vec![
                    Resp {
                        status: 201,
                        description: "Published",
                        body: Some((JSON, schema::<crate::domain::package::CatalogEntry>)),
                    },
                    ok::<crate::domain::package::CatalogEntry>(
                        "The same archive was published already; nothing changed",
                    ),
                    error(400, "Not a release (what is wrong, and where)"),
                    error(403, "Only appliance-wide administrators publish"),
                    error(409, "Another archive is published under this version"),
                    error(413, "The release exceeds limits.max_release_bytes"),
                    error(
                        422,
                        "The supply chain does not verify and intoto_verify_enforce refuses it (every failure listed)",
                    ),
                ];
                r.extend(token_errors());
                r
            },
            handler: post(catalog::publish),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/catalog/{kind}/{name}/{version}",
            summary: "One catalog entry",
            auth: Auth::Shared,
            params: CATALOG_ENTRY,
            request: None,
            responses: {
                let mut r = vec![ok::<crate::domain::package::CatalogEntry>("The entry")];
                r.extend(token_errors());
                r
            },
            handler: get(catalog::get),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/catalog/{kind}/{name}/{version}/release",
            summary: "The release as published (tar.gz), to verify offline with maestro package verify",
            auth: Auth::Shared,
            params: CATALOG_ENTRY,
            request: None,
            responses: {
                let mut r = vec![Resp {
                    status: 200,
                    description: "The release",
                    body: Some(("application/gzip", binary_schema)),
                }];
                r.extend(token_errors());
                r
            },
            handler: get(catalog::release),
        },
        Route {
            method: Method::POST,
            path: "/api/v1/catalog/{kind}/{name}/{version}/install",
            summary: "Installs a published release: verifies it again now (layout expiry, trusted keys) and records the verdict",
            auth: Auth::Shared,
            params: CATALOG_ENTRY,
            request: None,
            responses: {
                let mut r = vec![
                    ok::<crate::domain::package::CatalogEntry>("Installed"),
                    error(403, "Only appliance-wide administrators install"),
                    error(
                        422,
                        "The supply chain does not verify now and intoto_verify_enforce refuses it",
                    ),
                ];
                r.extend(token_errors());
                r
            },
            handler: post(catalog::install),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/postrelease",
            summary: "The last post-release validation: canaries, receipts, log consistency, decision replays, and its evidence bundle's digest",
            auth: Auth::Appliance,
            params: &[],
            request: None,
            responses: {
                let mut r = vec![
                    ok::<crate::app::postrelease::Report>("The last validation"),
                    error(403, "Only appliance-wide actors read it"),
                    error(404, "No validation has run yet"),
                ];
                r.extend(token_errors());
                r
            },
            handler: get(postrelease::last),
        },
        Route {
            method: Method::POST,
            path: "/api/v1/postrelease",
            summary: "Runs post-release validation now and archives its evidence; /readyz follows the result",
            auth: Auth::Appliance,
            params: &[],
            request: None,
            responses: {
                let mut r = vec![
                    ok::<crate::app::postrelease::Report>(
                        "The validation; `passed` is false when a check failed",
                    ),
                    error(
                        403,
                        "Only appliance-wide auditors and administrators run it",
                    ),
                ];
                r.extend(token_errors());
                r
            },
            handler: post(postrelease::run),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/postrelease/{id}/evidence",
            summary: "An archived post-release evidence bundle (deterministic tar.gz with a signed index)",
            auth: Auth::Appliance,
            params: &[Param {
                name: "id",
                location: "path",
                required: true,
                kind: "string",
                description: "Evidence id (`id` of a validation)",
            }],
            request: None,
            responses: {
                let mut r = vec![
                    Resp {
                        status: 200,
                        description: "The bundle",
                        body: Some(("application/gzip", binary_schema)),
                    },
                    error(403, "Only appliance-wide actors read it"),
                    error(404, "No such evidence"),
                ];
                r.extend(token_errors());
                r
            },
            handler: get(postrelease::evidence),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/backup",
            summary: "A consistent backup of the whole data directory (store copy, signing key, trust), taken while serving; restore it with `maestro restore`",
            auth: Auth::Appliance,
            params: &[Param {
                name: "keys",
                location: "query",
                required: false,
                kind: "boolean",
                description: "Include the appliance signing key (default true; the backup is then a secret)",
            }],
            request: None,
            responses: {
                let mut r = vec![
                    Resp {
                        status: 200,
                        description: "The backup (tar.gz); its SHA-256 is in X-Maestro-Backup-Sha256",
                        body: Some(("application/gzip", binary_schema)),
                    },
                    error(403, "Only appliance-wide administrators take backups"),
                    error(409, "A backup is being taken"),
                    error(
                        507,
                        "The data volume has too little free space for the copy and the archive",
                    ),
                ];
                r.extend(token_errors());
                r
            },
            handler: get(backup::backup),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/goldens",
            summary: "The golden workflows: their signed package, whether it is installed, and the last run of each",
            auth: Auth::Shared,
            params: &[],
            request: None,
            responses: {
                let mut r = vec![
                    ok::<golden::GoldenList>("Every golden, by name"),
                    error(403, "The token's roles do not grant reading"),
                ];
                r.extend(token_errors());
                r
            },
            handler: get(golden::list),
        },
        Route {
            method: Method::POST,
            path: "/api/v1/goldens/run",
            summary: "Runs the goldens now (all, or those named) from their signed packages as synthetic canary runs of the tenant, and checks each against its expectation",
            auth: Auth::Token,
            params: &[Param {
                name: "tenant",
                location: "query",
                required: false,
                kind: "string",
                description: "Tenant to run in (appliance-wide tokens must name one)",
            }],
            request: Some((&[JSON], schema::<golden::RunRequest>)),
            responses: {
                let mut r = vec![
                    ok::<golden::RunResult>("The runs; `passed` is false when a golden is red"),
                    error(400, "The body is not a golden run request"),
                    error(403, "The token's roles do not grant running"),
                    error(404, "No such tenant or golden"),
                ];
                r.extend(token_errors());
                r
            },
            handler: post(golden::run),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/log",
            summary: "Log origin and latest checkpoint",
            auth: Auth::Public,
            params: &[],
            request: None,
            responses: vec![ok::<log::LogInfo>("The log state")],
            handler: get(log::info),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/log/checkpoint",
            summary: "The latest signed checkpoint (C2SP tlog-checkpoint signed note)",
            auth: Auth::Public,
            params: &[],
            request: None,
            responses: vec![
                Resp {
                    status: 200,
                    description: "Signed note",
                    body: Some(("text/plain", text_schema)),
                },
                error(404, "The log is empty"),
            ],
            handler: get(log::checkpoint),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/log/consistency",
            summary: "Consistency proof between two tree sizes",
            auth: Auth::Public,
            params: &[
                Param {
                    name: "from",
                    location: "query",
                    required: true,
                    kind: "integer",
                    description: "Older tree size",
                },
                Param {
                    name: "to",
                    location: "query",
                    required: false,
                    kind: "integer",
                    description: "Newer tree size (default: current)",
                },
            ],
            request: None,
            responses: vec![
                ok::<crate::engine::evidence::ConsistencyProof>("The proof"),
                error(400, "Sizes out of range"),
            ],
            handler: get(log::consistency),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/keys",
            summary: "Public keys that verify receipts and checkpoints",
            auth: Auth::Public,
            params: &[],
            request: None,
            responses: vec![ok::<log::Keys>("The keys")],
            handler: get(log::keys),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/workflows",
            summary: "Embedded workflows",
            auth: Auth::Public,
            params: &[],
            request: None,
            responses: vec![ok::<meta::Workflows>("Workflow names")],
            handler: get(meta::list_workflows),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/schema/manifest-v1.json",
            summary: "JSON Schema of Manifest v1",
            auth: Auth::Public,
            params: &[],
            request: None,
            responses: vec![Resp {
                status: 200,
                description: "JSON Schema",
                body: Some(("application/schema+json", text_schema)),
            }],
            handler: get(meta::manifest_schema),
        },
        Route {
            method: Method::GET,
            path: "/api/v1/version",
            summary: "Version, store schema version and log origin",
            auth: Auth::Public,
            params: &[],
            request: None,
            responses: vec![ok::<meta::Version>("Version")],
            handler: get(meta::version),
        },
        Route {
            method: Method::GET,
            path: "/api/openapi.json",
            summary: "This OpenAPI document",
            auth: Auth::Public,
            params: &[],
            request: None,
            responses: vec![Resp {
                status: 200,
                description: "OpenAPI 3.1",
                body: Some((JSON, text_schema)),
            }],
            handler: get(meta::openapi),
        },
        Route {
            method: Method::GET,
            path: "/healthz",
            summary: "Liveness",
            auth: Auth::Public,
            params: &[],
            request: None,
            responses: vec![Resp {
                status: 200,
                description: "ok",
                body: Some(("text/plain", text_schema)),
            }],
            handler: get(meta::healthz),
        },
        Route {
            method: Method::GET,
            path: "/readyz",
            summary: "Readiness: 200 when the appliance accepts work, 503 otherwise",
            auth: Auth::Public,
            params: &[],
            request: None,
            responses: vec![
                ok::<meta::Readiness>("Ready"),
                Resp {
                    status: 503,
                    description: "Not ready",
                    body: Some((JSON, schema::<meta::Readiness>)),
                },
            ],
            handler: get(meta::readyz),
        },
        Route {
            method: Method::GET,
            path: "/metrics",
            summary: "Prometheus metrics",
            auth: Auth::Public,
            params: &[],
            request: None,
            responses: vec![Resp {
                status: 200,
                description: "Prometheus text format",
                body: Some(("text/plain", text_schema)),
            }],
            handler: get(meta::metrics),
        },
    ]
}

/// The router with every route, limits and middleware.
pub fn router(app: Arc<App>) -> Router {
    let max_body = app.config.limits.max_body_bytes;
    let mut by_path: BTreeMap<&'static str, MethodRouter<Arc<App>>> = BTreeMap::new();
    for r in routes() {
        let handler = match by_path.remove(r.path) {
            Some(existing) => existing.merge(r.handler),
            None => r.handler,
        };
        by_path.insert(r.path, handler);
    }
    let mut router = Router::new();
    for (path, handler) in by_path {
        router = router.route(path, handler.fallback(method_not_allowed));
    }
    with_middleware(
        router
            .fallback(route_not_found)
            .layer(DefaultBodyLimit::max(max_body)),
        app,
    )
}

/// `router` with the appliance's middleware (metrics, security headers, the guard check).
pub fn with_middleware(router: Router<Arc<App>>, app: Arc<App>) -> Router {
    router
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

async fn route_not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!(
            "no route for {method} {}; GET /api/openapi.json lists the API",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// The content security policy of every answer: nothing but this origin's files, no inline
/// script or style, no framing, forms only to this origin.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// (method, path) of every token route.
fn token_routes() -> &'static HashSet<(Method, String)> {
    static ROUTES: OnceLock<HashSet<(Method, String)>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        routes()
            .into_iter()
            .filter(|r| {
                matches!(
                    r.auth,
                    Auth::Token | Auth::Shared | Auth::Appliance | Auth::Console
                )
            })
            .map(|r| (r.method, r.path.to_owned()))
            .collect()
    })
}

/// Metrics, security headers, the guard check (a token route that answered successfully
/// without asking the guard serves nothing), and JSON bodies for framework rejections (bad query strings,
/// oversized bodies) that would otherwise be plain text.
async fn observe(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().clone();
    let mark = GuardMark::default();
    request.extensions_mut().insert(mark.clone());
    let mut response = next.run(request).await;
    if response.status().is_success()
        && token_routes().contains(&(method.clone(), route.clone()))
        && !mark.consulted()
    {
        response = ApiError::internal(format!(
            "{method} {route} answered without asking the guard; nothing was served"
        ))
        .into_response();
    }
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let is_json = content_type.contains("json");
    let is_html = content_type.starts_with("text/html");
    if (status.is_client_error() || status.is_server_error()) && !is_json && !is_html {
        let text = match axum::body::to_bytes(
            std::mem::replace(response.body_mut(), Body::empty()),
            64 * 1024,
        )
        .await
        {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => String::new(),
        };
        let code = match status {
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "bad_request",
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::NOT_FOUND => "not_found",
            _ => "error",
        };
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the request body exceeds limits.max_body_bytes ({} bytes)",
                app.config.limits.max_body_bytes
            )
        } else if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_lowercase()
        } else {
            text
        };
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        response = ApiError::new(status, code, message).into_response();
    }
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    let status = response.status();
    app.metrics
        .http_requests
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
        .inc();
    app.metrics
        .http_seconds
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The OpenAPI 3.1 document of [`routes`].
pub fn openapi() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths = serde_json::Map::new();
    for r in api_routes() {
        let mut op = json!({
            "summary": r.summary,
            "operationId": format!("{}_{}", r.method.as_str().to_lowercase(), r.path.trim_start_matches('/').replace(['/', '{', '}', '.', '-'], "_")),
            "parameters": r.params.iter().map(|p| json!({
                "name": p.name,
                "in": p.location,
                "required": p.required,
                "description": p.description,
                "schema": {"type": p.kind},
            })).collect::<Vec<_>>(),
            "responses": {},
        });
        if matches!(r.auth, Auth::Token | Auth::Shared | Auth::Appliance) {
            op["security"] = json!([{"bearer": []}]);
        } else {
            op["security"] = json!([]);
        }
        if let Some((types, f)) = r.request {
            let s = f(&mut generator);
            let mut content = serde_json::Map::new();
            for t in types {
                let body = if *t == "application/json" {
                    json!({"schema": s})
                } else {
                    json!({"schema": {"$ref": "#/components/schemas/Manifest"}})
                };
                content.insert((*t).to_owned(), body);
            }
            op["requestBody"] = json!({"required": true, "content": content});
        }
        for resp in &r.responses {
            let mut v = json!({"description": resp.description});
            if let Some((media, f)) = resp.body {
                v["content"] = json!({media: {"schema": f(&mut generator)}});
            }
            op["responses"][resp.status.to_string()] = v;
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        entry[r.method.as_str().to_lowercase()] = op;
    }
    generator.subschema_for::<crate::domain::manifest::Manifest>();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Maestro Conductor API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Runs multi-tenant workflows and proves what it did: signed receipts in a transparency log.",
        },
        "paths": paths,
        "components": {
            "schemas": generator.take_definitions(true),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}
