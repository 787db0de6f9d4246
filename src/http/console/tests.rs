//! Rendering tests: hostile strings stay text on every page, and the pages carry no inline
//! script or style (the CSP would refuse them).

use super::pages::*;
use super::view::*;
use crate::domain::search::{DocKind, Hit, Results};

/// Payloads from the usual XSS corpora: tags, attribute breakouts, URLs, SVG, encodings.
pub const XSS: &[&str] = &[
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "'><svg/onload=alert(1)>",
    "javascript:alert(1)",
    "</title><script>alert(1)</script>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "{{constructor.constructor('alert(1)')()}}",
    "<style>@import 'http://evil'</style>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "\u{0}<script>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
];

fn viewer(subject: &str) -> Viewer {
    Viewer {
        subject: subject.into(),
        tenant: Some("acme".into()),
        roles: vec!["viewer".into()],
        session: true,
    }
}

/// The elements and attribute names of a page, in order (text and values left out).
pub fn skeleton(html: &str) -> Vec<String> {
    let b = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<'
            && b.get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'/' || *c == b'!')
        {
            let mut j = i + 1;
            let mut quoted = false;
            while j < b.len() && (quoted || b[j] != b'>') {
                if b[j] == b'"' {
                    quoted = !quoted;
                }
                j += 1;
            }
            let inner = &html[i + 1..j.min(b.len())];
            let mut tag = String::new();
            let mut quoted = false;
            for c in inner.chars() {
                match c {
                    '"' => quoted = !quoted,
                    _ if quoted => {}
                    '=' => tag.push('='),
                    c if c.is_whitespace() => tag.push(' '),
                    c => tag.push(c),
                }
            }
            out.push(tag);
            i = j;
        }
        i += 1;
    }
    out
}

/// A page rendered with a payload has the structure of the page rendered with plain text:
/// no element, attribute or breakout came from the payload.
pub fn assert_inert(hostile: &str, benign: &str) {
    assert_eq!(
        skeleton(hostile),
        skeleton(benign),
        "the payload changed the page structure:\n{hostile}"
    );
    assert!(!hostile.contains(" style="), "inline style");
    assert!(!hostile.contains("<script"), "script");
}

fn pages(p: &str) -> Vec<String> {
    let hit = Hit {
        kind: DocKind::Execution,
        tenant: "acme".into(),
        id: p.into(),
        status: p.into(),
        name: p.into(),
        version: Some(p.into()),
        region: Some(p.into()),
        at: p.into(),
        receipt: Some(p.into()),
        summary: Some(p.into()),
    };
    let results = Ok(Results {
        hits: vec![hit],
        total: 1,
        total_exact: true,
        next_cursor: Some(p.into()),
    });
    let v = viewer(p);
    let demo = [DemoLogin {
        name: p.into(),
        tenant: Some(p.into()),
        roles: vec![p.into()],
    }];
    let filters = ListFilters {
        status: p.into(),
        name: p.into(),
        tenant: p.into(),
        tenants: vec![p.into(), "x".into()],
        limit: 10,
    };
    vec![
        search(&v, p, p, &[p.into(), "b".into()], Some(&results)).into_string(),
        search(&v, p, "", &[], Some(&Err(p.into()))).into_string(),
        login(Some(p), &demo, p, Some(p)).into_string(),
        error(Some(&v), 404, p, p).into_string(),
        executions(&v, &[], &filters, Some(p)).into_string(),
        catalog(
            &v,
            crate::domain::actions::BUILTINS,
            &[(p.into(), p.into())],
            &[entry(p)],
        )
        .into_string(),
    ]
}

/// A catalog entry whose free text (names, actors, failures) is `p`.
fn entry(p: &str) -> crate::domain::package::CatalogEntry {
    let verdict = crate::domain::package::Verdict {
        at: jiff::Timestamp::UNIX_EPOCH,
        by: p.into(),
        verified: false,
        failures: vec![p.into()],
    };
    crate::domain::package::CatalogEntry {
        kind: crate::domain::package::Kind::WorkflowPackage,
        name: p.into(),
        version: p.into(),
        digest: crate::domain::ids::Digest::of(p.as_bytes()),
        files: Default::default(),
        policy_digest: None,
        release: Default::default(),
        published: verdict.clone(),
        installed: Some(verdict),
    }
}

#[test]
fn hostile_strings_render_as_text_on_every_page() {
    let benign = pages("plain");
    for p in XSS {
        for (hostile, plain) in pages(p).iter().zip(&benign) {
            assert_inert(hostile, plain);
        }
    }
}

#[test]
fn query_strings_are_percent_encoded() {
    assert_eq!(
        query(&[("q", "a b&c=\"<x>"), ("empty", ""), ("t", "acme")]),
        "?q=a%20b%26c%3D%22%3Cx%3E&t=acme"
    );
}
