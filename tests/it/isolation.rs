//! The guard on every route: the route table is enumerated so no token route can skip
//! `mc.isolation`; cross-tenant attempts answer like missing data yet are audited and
//! counted; auditors read across tenants only where policy grants it; role denials are
//! recorded; the audit log is tenant-scoped and hash-linked; decisions replay and explain.
//! Shared routes (the package catalog) show every tenant the same, and only appliance-wide
//! administrators write through them.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use maestro::domain::audit::{AuditEvent, verify_chain};
use maestro::http::router::{Auth, routes};
use serde_json::{Value, json};

use crate::support::TestApp;

/// Policy data granting `token:globex-auditor` cross-tenant reads of acme.
const AUDITOR_GRANT: &str = r#"
[policy.data.mc.cross_tenant_readers]
"token:globex-auditor" = ["acme"]
"#;

fn cross_count(t: &TestApp, route: &str, outcome: &str) -> u64 {
    t.app
        .metrics
        .cross_tenant_access
        .with_label_values(&[route, outcome, "request"])
        .get()
}

fn all_audit(t: &TestApp) -> Vec<AuditEvent> {
    t.app
        .engine
        .store()
        .read()
        .unwrap()
        .audit_all(None, 100_000)
        .unwrap()
}

/// Fills a route's path parameters with ids of another tenant's real objects.
fn concrete(path: &str, exec: &str, decision: &str, digest: &str) -> String {
    let id = if path.starts_with("/api/v1/decisions/") || path.starts_with("/decisions/") {
        decision
    } else {
        exec
    };
    path.replace("{id}", id).replace("{digest}", digest)
}

#[tokio::test]
async fn every_token_route_asks_the_guard_and_hides_other_tenants() {
    let t = TestApp::new().await;
    let acme = t.tokens.acme_operator.clone();
    let globex = t.tokens.globex_operator.clone();
    // Real acme objects: an execution, its receipt, and a decision.
    let e = t.run(&acme, "hello").await;
    let exec = e["id"].as_str().unwrap().to_owned();
    let digest = e["receipt"]["digest"].as_str().unwrap().to_owned();
    let decision = e["decisions"][0]["id"].as_str().unwrap().to_owned();

    let token_routes: Vec<_> = routes()
        .into_iter()
        .filter(|r| matches!(r.auth, Auth::Token | Auth::Console))
        .collect();
    assert!(token_routes.len() >= 16, "{}", token_routes.len());
    for r in &token_routes {
        let key = format!("{} {}", r.method, r.path);
        let before_events = all_audit(&t).len();
        let before = cross_count(&t, &key, "denied");
        // Globex names acme explicitly: the guard must refuse, record and count.
        let path = concrete(r.path, &exec, &decision, &digest);
        let uri = format!("{path}?tenant=acme");
        let body = if r.method == Method::POST {
            json!({"workflow": "hello", "tenant": "acme"}).to_string()
        } else {
            String::new()
        };
        let resp = t
            .send(
                Request::builder()
                    .method(r.method.clone())
                    .uri(&uri)
                    .header("authorization", format!("Bearer {globex}"))
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(resp.status, StatusCode::NOT_FOUND, "{key}: {}", resp.json);
        if r.auth == Auth::Token {
            assert_eq!(resp.json["code"], "not_found", "{key}");
        } else {
            // Console pages answer with an HTML page that names nothing of acme's.
            let page = resp.json.as_str().unwrap();
            assert!(page.contains("Not found"), "{key}: {page}");
            assert!(!page.contains(&exec) || path.contains(&exec), "{key}");
        }
        assert_eq!(
            cross_count(&t, &key, "denied"),
            before + 1,
            "{key} not counted"
        );
        let events = all_audit(&t);
        assert_eq!(events.len(), before_events + 1, "{key} not audited");
        let ev = events.last().unwrap();
        assert_eq!(
            serde_json::to_value(ev.kind).unwrap(),
            json!("cross_tenant_denied")
        );
        assert_eq!(ev.route.as_deref(), Some(key.as_str()));
        assert_eq!(ev.tenant.as_ref().unwrap().as_str(), "acme");
        assert_eq!(ev.actor_tenant.as_ref().unwrap().as_str(), "globex");
        assert_eq!(ev.actor, "token:globex-operator");
        // The access decision is stored with the event, under the tenant whose data it was.
        let d = t
            .get(
                &format!(
                    "/api/v1/decisions/{}?tenant=acme",
                    ev.decision.as_ref().unwrap()
                ),
                Some(&t.tokens.admin),
            )
            .await;
        assert_eq!(
            d.json["reasons"][0]["code"], "cross_tenant_access",
            "{key}: {}",
            d.json
        );
    }
    // Nothing crossed: globex's own view holds nothing of acme.
    let mine = t.get("/api/v1/executions", Some(&globex)).await;
    assert_eq!(mine.json["items"], json!([]));
    verify_chain(&all_audit(&t)).unwrap();
    t.stop().await;
}

#[tokio::test]
async fn guessed_ids_of_other_tenants_answer_like_missing_ids_and_are_recorded() {
    let t = TestApp::new().await;
    let acme = t.tokens.acme_operator.clone();
    let globex = t.tokens.globex_operator.clone();
    let e = t.run(&acme, "hello").await;
    let id = e["id"].as_str().unwrap();
    let decision = e["decisions"][0]["id"].as_str().unwrap();
    let missing = "ex_01aaaaaaaaaaaaaaaaaaaaaaaa";
    let route = "GET /api/v1/executions/{id}";
    let theirs = t
        .get(&format!("/api/v1/executions/{id}"), Some(&globex))
        .await;
    let absent = t
        .get(&format!("/api/v1/executions/{missing}"), Some(&globex))
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(absent.status, theirs.status);
    assert_eq!(
        theirs.json["message"].as_str().unwrap().replace(id, "X"),
        absent.json["message"]
            .as_str()
            .unwrap()
            .replace(missing, "X")
    );
    // The hit on acme's real id is recorded; the miss is not an attempt on anyone.
    assert_eq!(cross_count(&t, route, "denied"), 1);
    let ev = all_audit(&t).pop().unwrap();
    assert_eq!(ev.detail["id"], json!(id));
    assert_eq!(ev.tenant.unwrap().as_str(), "acme");
    // Decisions are guarded the same way.
    let r = t
        .get(&format!("/api/v1/decisions/{decision}"), Some(&globex))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(cross_count(&t, "GET /api/v1/decisions/{id}", "denied"), 1);
    t.stop().await;
}

#[tokio::test]
async fn auditors_read_across_tenants_only_where_policy_grants_and_every_read_is_audited() {
    let t = TestApp::with(|_| {}, AUDITOR_GRANT).await;
    let e = t.run(&t.tokens.acme_operator, "hello").await;
    let id = e["id"].as_str().unwrap();
    let path = format!("/api/v1/executions/{id}?tenant=acme");
    // Granted: globex's auditor reads acme, and the read is audited.
    let r = t.get(&path, Some(&t.tokens.globex_auditor)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let ev = all_audit(&t).pop().unwrap();
    assert_eq!(
        serde_json::to_value(ev.kind).unwrap(),
        json!("cross_tenant_read")
    );
    assert_eq!(ev.actor, "token:globex-auditor");
    assert_eq!(cross_count(&t, "GET /api/v1/executions/{id}", "allowed"), 1);
    // An auditor reads but never runs across tenants.
    let r = t
        .post_json(
            "/api/v1/executions",
            Some(&t.tokens.globex_auditor),
            &json!({"workflow": "hello", "tenant": "acme"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Not granted: acme's auditor may not read globex.
    let g = t.run(&t.tokens.globex_operator, "hello").await;
    let r = t
        .get(
            &format!(
                "/api/v1/executions/{}?tenant=globex",
                g["id"].as_str().unwrap()
            ),
            Some(&t.tokens.acme_auditor),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    t.stop().await;
}

#[tokio::test]
async fn role_denials_are_forbidden_recorded_and_explained() {
    let t = TestApp::new().await;
    let viewer = t.tokens.acme_viewer.clone();
    let r = t
        .post_json(
            "/api/v1/executions",
            Some(&viewer),
            &json!({"workflow": "hello"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("do not grant run"),
        "{}",
        r.json
    );
    let ev = all_audit(&t).pop().unwrap();
    assert_eq!(
        serde_json::to_value(ev.kind).unwrap(),
        json!("access_denied")
    );
    assert_eq!(ev.route.as_deref(), Some("POST /api/v1/executions"));
    // The stored access decision replays on its pinned bundle to the same outcome.
    let dec = ev.decision.unwrap();
    let x = t
        .get(
            &format!("/api/v1/decisions/{dec}/explain"),
            Some(&t.tokens.acme_auditor),
        )
        .await;
    assert_eq!(x.status, StatusCode::OK, "{}", x.json);
    assert_eq!(x.json["matches_recorded"], true);
    assert_eq!(x.json["policy"], "mc.isolation");
    assert_eq!(x.json["explanation"]["allow"], false);
    let fired: Vec<&str> = x.json["explanation"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "fired")
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(fired.contains(&"deny"), "{fired:?}");
    // Deterministic: the same replay twice.
    let again = t
        .get(
            &format!("/api/v1/decisions/{dec}/explain"),
            Some(&t.tokens.acme_auditor),
        )
        .await;
    assert_eq!(x.json, again.json);
    t.stop().await;
}

#[tokio::test]
async fn admission_decisions_replay_and_explain() {
    let t = TestApp::new().await;
    // acme may not run in us-east: denied by mc.residency, recorded with a receipt.
    let yaml = crate::support::echo_manifest("far", "us-east");
    let r = t
        .post_yaml("/api/v1/executions", &t.tokens.acme_operator, &yaml)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    let exec = &r.json["execution"];
    for d in exec["decisions"].as_array().unwrap() {
        let x = t
            .get(
                &format!("/api/v1/decisions/{}/explain", d["id"].as_str().unwrap()),
                Some(&t.tokens.acme_viewer),
            )
            .await;
        assert_eq!(x.status, StatusCode::OK, "{}", x.json);
        assert_eq!(x.json["matches_recorded"], true, "{}", x.json);
        assert_eq!(x.json["recorded"]["allow"], d["allow"]);
        assert_eq!(x.json["policy_digest"], d["policy_digest"]);
    }
    t.stop().await;
}

#[tokio::test]
async fn the_audit_log_is_tenant_scoped_and_admins_see_all() {
    let t = TestApp::new().await;
    // An attempt by globex on acme, a role denial in acme, a role denial in globex.
    t.get(
        "/api/v1/executions?tenant=acme",
        Some(&t.tokens.globex_operator),
    )
    .await;
    t.post_json(
        "/api/v1/executions",
        Some(&t.tokens.acme_viewer),
        &json!({"workflow": "hello"}),
    )
    .await;
    t.get("/api/v1/audit", Some(&t.tokens.globex_operator))
        .await;
    let acme = t.get("/api/v1/audit", Some(&t.tokens.acme_auditor)).await;
    assert_eq!(acme.status, StatusCode::OK, "{}", acme.json);
    let items = acme.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", acme.json);
    assert!(items.iter().all(|e| e["tenant"] == "acme"));
    // Globex's view holds its own denial, not its attempt on acme.
    let globex = t.get("/api/v1/audit", Some(&t.tokens.globex_auditor)).await;
    let items = globex.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", globex.json);
    assert_eq!(items[0]["kind"], "access_denied");
    // Operators and viewers do not read the audit log.
    let r = t.get("/api/v1/audit", Some(&t.tokens.acme_operator)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Another tenant's audit log answers like a missing tenant.
    let r = t
        .get("/api/v1/audit?tenant=globex", Some(&t.tokens.acme_auditor))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The admin sees every event (policy activation included), hash-linked, paged.
    let all = t.get("/api/v1/audit?limit=2", Some(&t.tokens.admin)).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.json);
    assert_eq!(all.json["items"][0]["kind"], "policy_activated");
    let mut events: Vec<Value> = all.json["items"].as_array().unwrap().clone();
    let mut after = all.json["next_after"].as_u64();
    while let Some(a) = after {
        let page = t
            .get(
                &format!("/api/v1/audit?limit=2&after={a}"),
                Some(&t.tokens.admin),
            )
            .await;
        events.extend(page.json["items"].as_array().unwrap().iter().cloned());
        after = page.json["next_after"].as_u64();
    }
    let parsed: Vec<AuditEvent> = events
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    assert!(parsed.len() >= 6, "{}", parsed.len());
    verify_chain(&parsed).unwrap();
    t.stop().await;
}

#[tokio::test]
async fn a_token_route_that_skips_the_guard_serves_nothing() {
    let t = TestApp::new().await;
    // A handler on a token route's path that answers without asking the guard.
    let leaky = axum::Router::new().route(
        "/api/v1/executions/{id}",
        axum::routing::get(|| async { "another tenant's data" }),
    );
    let router = maestro::http::router::with_middleware(leaky, t.app.clone());
    let resp = tower::ServiceExt::oneshot(
        router,
        Request::get("/api/v1/executions/ex_1")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&body).contains("another tenant"));
    t.stop().await;
}

#[tokio::test]
async fn another_tenants_data_answers_like_missing_data() {
    let t = TestApp::new().await;
    let acme = t.tokens.acme_operator.clone();
    let globex = t.tokens.globex_operator.clone();
    let e = t.run(&acme, "hello").await;
    let id = e["id"].as_str().unwrap();
    let digest = e["receipt"]["digest"].as_str().unwrap();
    let missing = "ex_01aaaaaaaaaaaaaaaaaaaaaaaa";
    let pairs = [
        (
            format!("/api/v1/executions/{id}"),
            format!("/api/v1/executions/{missing}"),
        ),
        (
            format!("/api/v1/executions/{id}/receipt"),
            format!("/api/v1/executions/{missing}/receipt"),
        ),
        (
            format!("/api/v1/executions/{id}/proof"),
            format!("/api/v1/executions/{missing}/proof"),
        ),
        (
            format!("/api/v1/executions/{id}?tenant=acme"),
            format!("/api/v1/executions/{missing}?tenant=nobody"),
        ),
        (
            format!("/api/v1/receipts/{digest}"),
            format!("/api/v1/receipts/sha256:{}", "0".repeat(64)),
        ),
        (
            "/api/v1/executions?tenant=acme".into(),
            "/api/v1/executions?tenant=nobody".into(),
        ),
    ];
    for (theirs, absent) in pairs {
        let a = t.get(&theirs, Some(&globex)).await;
        let b = t.get(&absent, Some(&globex)).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{theirs}");
        assert_eq!(b.status, StatusCode::NOT_FOUND, "{absent}");
        assert_eq!(a.json["code"], b.json["code"]);
        // Same message shape: only the id differs.
        let strip = |v: &Value, s: &str| v["message"].as_str().unwrap().replace(s, "X");
        assert_eq!(
            strip(&a.json, id).replace(digest, "X").replace("acme", "X"),
            strip(&b.json, missing)
                .replace(&format!("sha256:{}", "0".repeat(64)), "X")
                .replace("nobody", "X"),
            "{theirs} vs {absent}"
        );
    }
    // Submitting into another tenant is refused the same way.
    let r = t
        .post_json(
            "/api/v1/executions",
            Some(&globex),
            &json!({"workflow": "hello", "tenant": "acme"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The appliance admin sees acme's execution without naming the tenant.
    let admin = t.tokens.admin.clone();
    assert_eq!(
        t.get(&format!("/api/v1/executions/{id}"), Some(&admin))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.get("/api/v1/executions", Some(&admin)).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.get("/api/v1/executions?tenant=acme", Some(&admin))
            .await
            .json["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    t.stop().await;
}

#[tokio::test]
async fn shared_routes_show_every_tenant_the_same_and_only_appliance_admins_write() {
    let t = TestApp::new().await;
    // A catalog entry (unverified: this appliance has no layout, and does not enforce).
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("maestro.yaml"),
        crate::support::echo_manifest("hello", "eu-west"),
    )
    .unwrap();
    let key =
        maestro::attest::keys::SigningKey::generate(maestro::attest::keys::Algorithm::Ed25519)
            .unwrap();
    let built = maestro::app::package::build(
        maestro::domain::package::Kind::WorkflowPackage,
        src.path(),
        None,
        &key,
        &src.path().join("dist"),
    )
    .unwrap();
    let release = maestro::app::package::Release::from_dir(&built.archive).unwrap();
    let admin = maestro::domain::actor::Actor::system();
    let published = t.app.publish(&admin, &release.to_tar().unwrap()).unwrap();
    assert!(!published.entry.published.verified);
    let version = published.entry.version.clone();

    let shared: Vec<_> = routes()
        .into_iter()
        .filter(|r| r.auth == Auth::Shared)
        .collect();
    assert!(shared.len() >= 5, "{}", shared.len());
    let readers = [
        t.tokens.acme_viewer.clone(),
        t.tokens.globex_operator.clone(),
        t.tokens.acme_auditor.clone(),
        t.tokens.admin.clone(),
    ];
    let writers = [
        t.tokens.acme_operator.clone(),
        t.tokens.globex_operator.clone(),
        t.tokens.globex_auditor.clone(),
    ];
    for r in &shared {
        let key = format!("{} {}", r.method, r.path);
        let path = r
            .path
            .replace("{kind}", "workflow-package")
            .replace("{name}", "hello")
            .replace("{version}", &version);
        if r.method == Method::GET {
            // Every reader of every tenant sees exactly the same answer.
            let first = t.get(&path, Some(&readers[0])).await;
            assert_eq!(first.status, StatusCode::OK, "{key}: {}", first.json);
            for token in &readers[1..] {
                let other = t.get(&path, Some(token)).await;
                assert_eq!(
                    (other.status, &other.json),
                    (first.status, &first.json),
                    "{key}"
                );
            }
            continue;
        }
        for token in &writers {
            let before = all_audit(&t).len();
            let resp = t.post_json(&path, Some(token), &json!({})).await;
            assert_eq!(resp.status, StatusCode::FORBIDDEN, "{key}: {}", resp.json);
            assert_eq!(resp.json["code"], "forbidden", "{key}");
            let events = all_audit(&t);
            assert_eq!(events.len(), before + 1, "{key} not audited");
            let ev = events.last().unwrap();
            assert_eq!(
                serde_json::to_value(ev.kind).unwrap(),
                json!("access_denied")
            );
            assert_eq!(ev.route.as_deref(), Some(key.as_str()));
            assert_eq!(ev.detail["kind"], "catalog");
        }
    }
    // Nothing was written by them: the catalog still holds the one entry, not installed.
    let list = t.get("/api/v1/catalog", Some(&t.tokens.admin)).await;
    assert_eq!(list.json["items"].as_array().unwrap().len(), 1);
    assert!(list.json["items"][0].get("installed").is_none());
    verify_chain(&all_audit(&t)).unwrap();
    t.stop().await;
}

#[tokio::test]
async fn appliance_routes_answer_appliance_wide_actors_only() {
    let t = TestApp::new().await;
    let report = t
        .post_json("/api/v1/postrelease", Some(&t.tokens.admin), &json!({}))
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.json);
    let id = report.json["id"].as_str().unwrap().to_owned();
    let appliance: Vec<_> = routes()
        .into_iter()
        .filter(|r| r.auth == Auth::Appliance)
        .collect();
    assert!(appliance.len() >= 3, "{}", appliance.len());
    let tenants = [
        t.tokens.acme_operator.clone(),
        t.tokens.acme_viewer.clone(),
        t.tokens.acme_auditor.clone(),
        t.tokens.globex_operator.clone(),
        t.tokens.globex_auditor.clone(),
    ];
    for r in &appliance {
        let key = format!("{} {}", r.method, r.path);
        let path = r.path.replace("{id}", &id);
        for token in &tenants {
            let before = all_audit(&t).len();
            let resp = if r.method == Method::GET {
                t.get(&format!("{path}?tenant=acme"), Some(token)).await
            } else {
                t.post_json(&format!("{path}?tenant=acme"), Some(token), &json!({}))
                    .await
            };
            assert_eq!(resp.status, StatusCode::FORBIDDEN, "{key}: {}", resp.json);
            assert!(
                resp.json["message"]
                    .as_str()
                    .unwrap()
                    .contains("only appliance-wide"),
                "{key}: {}",
                resp.json
            );
            let events = all_audit(&t);
            assert_eq!(events.len(), before + 1, "{key} not audited");
            assert_eq!(
                serde_json::to_value(events.last().unwrap().kind).unwrap(),
                json!("access_denied")
            );
        }
        let resp = if r.method == Method::GET {
            t.get(&path, Some(&t.tokens.admin)).await
        } else {
            t.post_json(&path, Some(&t.tokens.admin), &json!({})).await
        };
        assert_eq!(resp.status, StatusCode::OK, "{key}: {}", resp.json);
    }
    verify_chain(&all_audit(&t)).unwrap();
    t.stop().await;
}
