//! The console's page frame and small views: layout, navigation, badges, times, digests,
//! query strings. The console is server-rendered HTML (maud) with an embedded stylesheet
//! (rust-embed) and SVG charts drawn on the server. No JavaScript, no inline script or style
//! (the pages run under a strict CSP), no form that posts: every form is a GET of filters.
//!
//! The views only render: the handlers (`http/console/mod.rs`) authenticate, ask the guard
//! for scopes, read the data and hand it here. maud escapes every string it
//! inserts, so hostile text in manifests, task ids or deny reasons stays text.

use maud::{DOCTYPE, Markup, html};

use super::assets;

/// Who is looking, as the header shows it.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Subject (`oidc:…`, `token:…`, `demo:…`).
    pub subject: String,
    /// Tenant, or `None` for appliance-wide actors.
    pub tenant: Option<String>,
    /// Role names.
    pub roles: Vec<String>,
    /// Whether the viewer came with a session cookie (and so can log out).
    pub session: bool,
}

/// The sections of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `/`
    Overview,
    /// `/executions`
    Executions,
    /// `/search`
    Search,
    /// `/audit`
    Audit,
    /// `/catalog`
    Catalog,
    /// `/goldens`
    Goldens,
    /// Login and errors.
    None,
}

const NAV: &[(Section, &str, &str)] = &[
    (Section::Overview, "/", "Status"),
    (Section::Executions, "/executions", "Executions"),
    (Section::Search, "/search", "Search"),
    (Section::Audit, "/audit", "Audit"),
    (Section::Catalog, "/catalog", "Catalog"),
    (Section::Goldens, "/goldens", "Goldens"),
];

/// A whole page: header, navigation, the viewer, and `body`.
pub fn layout(title: &str, section: Section, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · Maestro" }
                link rel="stylesheet" href=(assets::url("style.css"));
                link rel="icon" href=(assets::url("favicon.svg")) type="image/svg+xml";
            }
            body {
                header.top {
                    a.brand href="/" { "Maestro Conductor" }
                    @if let Some(v) = viewer {
                        nav {
                            @for (s, href, label) in NAV {
                                a href=(href) class=[(*s == section).then_some("active")] { (label) }
                            }
                        }
                        div.who {
                            span title=(v.roles.join(", ")) { (v.subject) }
                            " · "
                            span { (v.tenant.as_deref().unwrap_or("all tenants")) }
                            @if v.session {
                                a href="/logout" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
                footer { "Maestro Conductor " (env!("CARGO_PKG_VERSION")) " · read-only console" }
            }
        }
    }
}

/// A status word as a coloured badge.
pub fn badge(status: &str) -> Markup {
    let class: String = status
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    html! { span class={"badge s-" (class)} { (status) } }
}

/// A time as `2026-11-25 18:15:35 UTC`.
pub fn when(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A digest shortened for tables (`sha256:1234abcd…`), the full one in the title.
pub fn short_digest(d: &str) -> Markup {
    let short: String = d.chars().take(19).collect();
    html! { span.digest title=(d) { (short) @if d.len() > 19 { "…" } } }
}

/// A query string from pairs, percent-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Pretty JSON for `<pre>` blocks (escaped by maud like any text).
pub fn pretty(v: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre { (text) } }
}
