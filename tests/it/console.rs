//! The console and the search API in process: sign-in required, GET only (405 otherwise),
//! strict headers, hostile strings escaped, the demo login only in demo mode, sessions that
//! end on logout, and the search index following new executions with the guard's tenant
//! filter.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use maestro::http::router::{Auth, CSP, routes};
use serde_json::json;

use crate::support::{Resp, TestApp};

fn page(r: &Resp) -> &str {
    r.json.as_str().unwrap_or_default()
}

async fn get_with_cookie(t: &TestApp, path: &str, cookie: &str) -> Resp {
    t.send(
        Request::get(path)
            .header(header::COOKIE, format!("maestro_session={cookie}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "ex_01jd0000000000000000000000")
        .replace("{name}", "style.css")
}

#[tokio::test]
async fn console_pages_need_a_sign_in_answer_only_get_and_carry_strict_headers() {
    let t = TestApp::new().await;
    let console: Vec<_> = routes()
        .into_iter()
        .filter(|r| r.auth == Auth::Console)
        .collect();
    assert!(console.len() >= 7);
    for r in &console {
        let path = concrete(r.path);
        // Nobody signed in: to the login page, and back afterwards.
        let anon = t.get(&path, None).await;
        assert_eq!(anon.status, StatusCode::SEE_OTHER, "{path}");
        let to = anon.headers[header::LOCATION].to_str().unwrap();
        assert!(to.starts_with("/login?next=%2F"), "{path}: {to}");
        // Read-only by construction: every other method is refused, signed in or not.
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let resp = t
                .send(
                    Request::builder()
                        .method(m.clone())
                        .uri(&path)
                        .header("authorization", format!("Bearer {}", t.tokens.admin))
                        .body(Body::from("{}"))
                        .unwrap(),
                )
                .await;
            assert_eq!(resp.status, StatusCode::METHOD_NOT_ALLOWED, "{m} {path}");
        }
    }
    // Every page, asset and API answer carries the headers.
    let e = t.run(&t.tokens.acme_operator, "hello").await;
    let id = e["id"].as_str().unwrap();
    for path in [
        "/".to_owned(),
        "/executions".into(),
        format!("/executions/{id}"),
        "/search?q=status%3Asucceeded".into(),
        "/audit".into(),
        "/catalog".into(),
        "/goldens".into(),
    ] {
        let token = if path == "/audit" {
            &t.tokens.acme_auditor
        } else {
            &t.tokens.acme_operator
        };
        let r = t.get(&path, Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", page(&r));
        assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(r.headers["content-security-policy"], CSP);
        assert_eq!(r.headers["x-frame-options"], "DENY");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.headers["referrer-policy"], "no-referrer");
        let html = page(&r);
        assert!(!html.contains("<script"), "{path}");
        assert!(!html.contains(" style="), "{path}");
        assert!(!html.contains("method=\"post\""), "{path}");
    }
    let head = t
        .send(
            Request::head("/executions")
                .header("authorization", format!("Bearer {}", t.tokens.acme_viewer))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    // The stylesheet is embedded, versioned and cacheable; its URL is in every page.
    let home = t.get("/", Some(&t.tokens.acme_viewer)).await;
    let href = page(&home)
        .split("href=\"")
        .find_map(|s| s.strip_prefix("/assets/style.css"))
        .map(|s| format!("/assets/style.css{}", &s[..s.find('"').unwrap()]))
        .unwrap();
    let css = t.get(&href, None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert!(
        css.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    // The execution page shows the verified receipt and the explained decisions.
    let detail = t
        .get(&format!("/executions/{id}"), Some(&t.tokens.acme_viewer))
        .await;
    let html = page(&detail);
    assert!(html.contains(">verified<"), "{html}");
    assert!(html.contains("mc.admission") && html.contains("same outcome"));
    assert!(html.contains(e["receipt"]["digest"].as_str().unwrap()));
    let metrics = t.get("/metrics", None).await;
    assert!(page(&metrics).contains("mc_console_view_ms_bucket{page=\"execution\""));
    // A bad token is refused and recorded like on the API.
    let bad = t.get("/executions", Some("mct_forged")).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    t.stop().await;
}

const XSS: &[&str] = &[
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "'><svg/onload=alert(1)>",
    "</title><script>alert(1)</script>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<a href=\"javascript:alert(1)\">x</a>",
];

#[tokio::test]
async fn hostile_strings_in_manifests_outputs_and_queries_render_escaped() {
    let t = TestApp::new().await;
    let token = t.tokens.acme_operator.clone();
    for (i, p) in XSS.iter().enumerate() {
        let manifest = json!({
            "name": format!("xss-{i}"),
            "version": "1.0.0",
            "region": "eu-west",
            "description": p,
            "tasks": [{"id": "a", "uses": "builtin/echo", "with": {"message": p}}],
        });
        let r = t
            .post_json(
                "/api/v1/executions?wait=30s",
                Some(&token),
                &json!({"manifest": manifest}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        let id = r.json["id"].as_str().unwrap().to_owned();
        let q: String = url_encode(p);
        for path in [
            format!("/executions/{id}"),
            "/executions".into(),
            format!("/search?q={q}"),
            format!("/search?q=name%3A{q}"),
            format!("/login?next={q}"),
        ] {
            let resp = t.get(&path, Some(&token)).await;
            let html = page(&resp);
            assert!(!html.contains(p), "{path}: payload rendered raw");
            assert!(!html.contains("<script"), "{path}");
            assert!(!html.contains("href=\"javascript:"), "{path}");
            assert!(
                !html.contains("<iframe") && !html.contains("<img") && !html.contains("<svg/"),
                "{path}"
            );
        }
        let detail = t.get(&format!("/executions/{id}"), Some(&token)).await;
        let escaped = p
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;");
        assert!(
            page(&detail).contains(&escaped),
            "the description is shown, as text"
        );
    }
    t.stop().await;
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn the_demo_login_exists_only_in_demo_mode_and_sessions_end_on_logout() {
    // Not in demo mode: no local login.
    let t = TestApp::new().await;
    let r = t.get("/login/demo?as=acme-operator", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    assert!(!page(&t.get("/login", None).await).contains("/login/demo"));
    t.stop().await;

    let t = TestApp::with(|c| c.demo = true, "").await;
    let login = t.get("/login", None).await;
    assert!(page(&login).contains("/login/demo?as=acme-operator"));
    let r = t
        .get("/login/demo?as=acme-viewer&next=%2Fexecutions", None)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/executions");
    let set: Vec<String> = r
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("maestro_session="))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(flag), "{session}");
    }
    assert!(
        !session.contains("Secure"),
        "plain http on loopback: {session}"
    );
    let cookie = session["maestro_session=".len()..session.find(';').unwrap()].to_owned();
    let home = get_with_cookie(&t, "/", &cookie).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(page(&home).contains("token:acme-viewer"));
    // The session is a viewer of acme: globex's data is not there for it.
    let other = get_with_cookie(&t, "/executions?tenant=globex", &cookie).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    // A redirect target elsewhere is ignored; unknown identities are refused.
    let r = t
        .get(
            "/login/demo?as=acme-viewer&next=https%3A%2F%2Fevil.example",
            None,
        )
        .await;
    assert_eq!(r.headers[header::LOCATION], "/");
    assert_eq!(
        t.get("/login/demo?as=nobody", None).await.status,
        StatusCode::BAD_REQUEST
    );
    // Logout ends it for good.
    let out = get_with_cookie(&t, "/logout", &cookie).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        get_with_cookie(&t, "/", &cookie).await.status,
        StatusCode::SEE_OTHER
    );
    // Without oidc.client_id there is no single sign-on.
    assert_eq!(
        t.get("/login/oidc", None).await.status,
        StatusCode::NOT_FOUND
    );
    t.stop().await;
}

async fn search(t: &TestApp, token: &str, q: &str) -> Resp {
    t.get(&format!("/api/v1/search?q={}", url_encode(q)), Some(token))
        .await
}

#[tokio::test]
async fn new_executions_become_searchable_and_only_for_their_tenant() {
    let t = TestApp::new().await;
    let acme = t.tokens.acme_operator.clone();
    let globex = t.tokens.globex_operator.clone();
    let e = t.run(&acme, "artifacts").await;
    let digest = e["receipt"]["digest"].as_str().unwrap().to_owned();
    let artifact = e["artifacts"][0]["digest"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let found = loop {
        let r = search(&t, &acme, &digest).await;
        if r.json["total"] == 1 {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not indexed: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(found.json["hits"][0]["id"], e["id"]);
    assert_eq!(found.json["hits"][0]["receipt"], json!(digest));
    // A prefix of an artifact digest, and a task, find it too.
    let prefix = &artifact["sha256:".len().."sha256:".len() + 10];
    assert_eq!(search(&t, &acme, prefix).await.json["total"], 1, "{prefix}");
    // Globex finds nothing of acme's, with any query; naming acme is refused and recorded.
    for q in [digest.as_str(), artifact.as_str(), "name:artifacts", ""] {
        let r = search(&t, &globex, q).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.json["hits"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["tenant"] == "globex"),
            "{q}: {}",
            r.json
        );
    }
    let cross = t
        .get(
            "/api/v1/search?tenant=acme&q=status%3Asucceeded",
            Some(&globex),
        )
        .await;
    assert_eq!(cross.status, StatusCode::NOT_FOUND);
    let smuggled = search(&t, &globex, "tenant:acme").await;
    assert_eq!(smuggled.status, StatusCode::BAD_REQUEST);
    assert_eq!(smuggled.json["code"], "bad_query");
    assert!(
        smuggled.json["message"]
            .as_str()
            .unwrap()
            .contains("column 1")
    );
    // The admin sees both tenants; a denied run is found by its reason.
    t.run(&acme, "policy-deny").await;
    let started = Instant::now();
    loop {
        let r = search(&t, &t.tokens.admin, "reason:action_disabled").await;
        if r.json["total"] == 1 {
            assert_eq!(r.json["hits"][0]["status"], "denied");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{}", r.json);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = t.get("/metrics", None).await;
    let text: &str = metrics.json.as_str().unwrap();
    assert!(text.contains("mc_index_documents") && text.contains("mc_index_lag_changes"));
    t.stop().await;
}
